/*
 * report-label - radiology reports split by organ (by an LLM, e.g. Qwen as in
 * fVLM and ViSD-Boost) into per-organ normal/abnormal labels and texts with
 * fVLM's impression-based rule (method.md §6.1); CT-RATE's ground-truth label
 * CSV into per-volume label records (§6.3); and, to get the LLM answers in the
 * first place, structuring prompts from CT-RATE's report CSV plus a validator
 * for the answers.
 *
 * Reads: structured reports (JSON, YAML, JSON lines, raw LLM answers), fVLM's
 * desc_info.json + conc_info.json, CT-RATE CSVs, ct.report/1 and ct.labels/1
 * streams (--from-stream).  Writes: ct.report/1, ct.labels/1, CSV, JSON lines.
 *
 *   report-label answers.jsonl > reports.ctv
 *   report-label --labels dataset_multi_abnormality_labels_valid_predicted_labels.csv > labels.ctv
 *   report-label --prompts valid_reports.csv -o prompts.jsonl
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "ct.h"
#include "names.h"
#include "idset.h"
#include "report.h"
#include "stream.h"
#include "textout.h"

enum mode { M_REPORTS, M_FVLM, M_LABELS, M_PROMPTS, M_VALIDATE, M_FROM_STREAM };
enum fmt { F_DEFAULT, F_STREAM, F_CSV, F_JSONL };

struct opts {
    enum mode               mode;            /* M_REPORTS */
    enum fmt                format;          /* F_DEFAULT: see resolve_format() */
    enum report_syntax      syntax;          /* --input: REPORT_AUTO; jsonl is its own flag */
    int                     jsonl;           /* --input jsonl */
    const char             *desc, *conc;     /* --desc / --conc (fVLM pair) */
    const char             *organs_path;     /* --organs YAML (default compiled in) */
    const char             *abn_path;        /* --abnormalities YAML (default compiled in) */
    const char             *template_path;   /* --template (default report_prompt_template) */
    int                     keep_going;      /* skip bad reports/rows, list them, exit 1 */
    int                     rule_flags;      /* REPORT_RELEASED_EMPTY */
    int                     strict;          /* --validate: normalised answers count as problems */
    struct org_set    organs;
    struct org_abn       abn;
    char                   *tmpl;            /* the prompt template text */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: report-label [OPTION]... [FILE]...\n"
            "       report-label --desc desc_info.json --conc conc_info.json [OPTION]...\n"
            "       report-label --labels [OPTION]... LABELS.csv...\n"
            "       report-label --prompts [OPTION]... REPORTS.csv...\n"
            "       report-label --validate [OPTION]... [FILE]...\n"
            "       report-label --from-stream --format csv|jsonl [FILE.ctv]...\n"
            "Turn LLM-structured radiology reports into per-organ labels and texts with\n"
            "fVLM's impression-based rule: text = impression + findings, '\"' ''' '(' ')' removed,\n"
            "abnormal = 0 exactly when the organ has no impression text.  FILE '-' or none: stdin.\n"
            "\n"
            "Modes (default: structured reports -> ct.report/1, one record per scan):\n"
            "      --desc FILE      fVLM's findings file, desc_info.json {scan: {organ: text}}\n"
            "      --conc FILE      fVLM's impression file, conc_info.json (with --desc)\n"
            "      --labels         CT-RATE multi-abnormality label CSVs -> ct.labels/1, one\n"
            "                       record per volume\n"
            "      --prompts        CT-RATE report CSVs (VolumeName, Findings_EN, Impressions_EN)\n"
            "                       -> JSON lines, one structuring prompt per scan\n"
            "      --validate       check LLM answers against the shape the prompt asks for;\n"
            "                       prints one line per problem, exit 1 on any error or warning\n"
            "      --from-stream    ct.report/1 or ct.labels/1 streams -> --format csv|jsonl\n"
            "\n"
            "Options:\n"
            "  -f, --format F       stream, csv or jsonl (default: stream; jsonl when stdout is a\n"
            "                       terminal; by the suffix of -o FILE.csv / FILE.jsonl)\n"
            "      --input KIND     structured report files: auto (default), json, jsonl, yaml\n"
            "      --organs FILE    organ set and aliases (default pipelines/report-organs.yaml)\n"
            "      --abnormalities FILE  CT-RATE abnormalities, organs and prompts\n"
            "                       (default pipelines/ct-rate-abnormalities.yaml)\n"
            "      --template FILE  prompt template for --prompts (placeholders {{organs}}\n"
            "                       {{example}} {{findings}} {{impression}})\n"
            "      --released-empty a present but empty text gets '.' as in fVLM's released code\n"
            "                       (an empty impression then makes the organ abnormal)\n"
            "  -k, --keep-going     skip bad reports or rows, list them on stderr, exit 1\n"
            "      --strict         with --validate: answers that needed normalising fail too\n"
            CLI_COMMON_HELP
            "\n"
            "Structured reports: JSON or YAML objects {\"scan_id\", \"findings\": {organ: text},\n"
            "\"impression\": {organ: text}}, one per file, a JSON array, YAML documents or JSON lines\n"
            "(.jsonl); or LLM answers {\"scan_id\", \"answer\": \"<the LLM's text>\"}.  Code fences,\n"
            "organ synonyms and key variants are accepted and listed under 'normalised'.\n"
            "\n"
            "Exit status: 0 ok, 1 bad input (or skipped input with --keep-going, or problems\n"
            "found by --validate), 2 usage.\n"
            "Example: report-label answers.jsonl -f csv -o labels.csv\n");
}

/* ---- output sinks: a stream, or CSV / JSON-lines text ---- */

struct sink {
    enum fmt           fmt;
    struct rec_writer *rw;           /* F_STREAM */
    struct textout     txt;          /* CSV, JSON lines, --validate listings */
    int                header;       /* CSV header written */
    int                kind;         /* 0 none yet, 1 reports, 2 labels (CSV/JSONL from streams) */
    int                n_cols;       /* columns of the CSV header */
    char             **cols;         /* organ / abnormality names of the header */
    long               n_written;
};

static int sink_open(struct sink *s, const char *path, enum fmt fmt, const struct rec_wopts *wo) {
    memset(s, 0, sizeof *s);
    s->fmt = fmt;
    if (fmt == F_STREAM) {
        s->rw = rec_writer_open(path, wo);
        return s->rw ? 0 : -1;
    }
    return textout_open(&s->txt, path);
}

static int sink_flush(struct sink *s, int force) { return s->fmt == F_STREAM ? 0 : textout_flush(&s->txt, force); }

static void sink_free_cols(struct sink *s) {
    for (int i = 0; i < s->n_cols; i++) free(s->cols[i]);
    free(s->cols);
    s->cols = NULL;
    s->n_cols = 0;
}

static int sink_close(struct sink *s) {
    int rc = s->fmt == F_STREAM ? rec_writer_close(s->rw) : textout_close(&s->txt);
    sink_free_cols(s);
    return rc;
}

static void sink_abort(struct sink *s) {
    if (s->fmt == F_STREAM) rec_writer_abort(s->rw);
    else textout_abort(&s->txt);
    sink_free_cols(s);
}

/* The CSV/JSONL column names must be the same for every record (kind 1 reports, 2 labels). */
static int sink_columns(struct sink *s, int kind, int n, const char *const *names) {
    if (!s->kind) {
        s->kind = kind;
        s->n_cols = n;
        s->cols = ct_xcalloc((size_t)n, sizeof *s->cols);
        for (int i = 0; i < n; i++) s->cols[i] = ct_xstrdup(names[i]);
        return 1;                            /* first record */
    }
    if (s->kind != kind) return ct_seterr("ct.report/1 and ct.labels/1 records mixed in one output");
    int same = s->n_cols == n;
    for (int i = 0; i < n && same; i++) same = !strcmp(s->cols[i], names[i]);
    if (!same)
        return ct_seterr("the %s differ from those of the first record (one CSV has one header)",
                         kind == 1 ? "organs" : "abnormalities");
    return 0;
}

/* ---- one report / one label row in any format ---- */

struct out_report {
    const char        *scan_id;
    int                n;            /* organs */
    const char *const *organs;
    const int         *abnormal;
    const char *const *texts;
    int                n_norm;
    const char *const *norm;         /* what was normalised */
    int                n_warn;
    const char *const *warn;
    const char        *source;       /* "answers.jsonl:3" */
};

static void put_strs_json(struct csv_buf *b, int n, const char *const *v) {
    csv_buf_putc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i) csv_buf_puts(b, ", ");
        csv_put_json_str(b, v[i], strlen(v[i]));
    }
    csv_buf_putc(b, ']');
}

static void put_joined_field(struct csv_buf *b, int n, const char *const *v) {
    struct csv_buf j = { 0 };
    for (int i = 0; i < n; i++) {
        if (i) csv_buf_puts(&j, "; ");
        csv_buf_puts(&j, v[i]);
    }
    csv_put_field(b, j.p ? j.p : "", j.n);
    csv_buf_free(&j);
}

static int emit_report(struct sink *s, const struct out_report *r, struct tn_arena *a, int argc, char **argv) {
    if (s->fmt == F_STREAM) {
        struct rec rec;
        rec_init(&rec, a, NM_REPORT, r->scan_id);
        int64_t ab[ORG_MAX];
        for (int i = 0; i < r->n; i++) ab[i] = r->abnormal[i];
        rec_meta_set_strv(&rec, NM_M_ORGANS, r->organs, r->n);
        rec_meta_set_i64v(&rec, NM_M_ABNORMAL, ab, r->n);
        rec_meta_set_strv(&rec, NM_M_TEXTS, r->texts, r->n);
        rec_meta_set_strv(&rec, NM_M_NORMALISED, r->norm, r->n_norm);
        rec_meta_set_strv(&rec, NM_M_WARNINGS, r->warn, r->n_warn);
        rec_meta_set_str(&rec, NM_M_SOURCE, r->source);
        rec_history_append(&rec, argc, argv);
        s->n_written++;
        return rec_write(s->rw, &rec);
    }
    int first = sink_columns(s, 1, r->n, r->organs);
    if (first < 0) return -1;
    struct csv_buf *b = &s->txt.buf;
    if (s->fmt == F_CSV) {
        if (first) {
            csv_buf_puts(b, "scan_id");
            for (int i = 0; i < r->n; i++) csv_buf_printf(b, ",%s", r->organs[i]);
            for (int i = 0; i < r->n; i++) csv_buf_printf(b, ",%s_text", r->organs[i]);
            csv_buf_puts(b, ",normalised,warnings,source\n");
        }
        csv_put_field(b, r->scan_id, strlen(r->scan_id));
        for (int i = 0; i < r->n; i++) csv_buf_printf(b, ",%d", r->abnormal[i]);
        for (int i = 0; i < r->n; i++) {
            csv_buf_putc(b, ',');
            csv_put_field(b, r->texts[i], strlen(r->texts[i]));
        }
        csv_buf_putc(b, ',');
        put_joined_field(b, r->n_norm, r->norm);
        csv_buf_putc(b, ',');
        put_joined_field(b, r->n_warn, r->warn);
        csv_buf_putc(b, ',');
        csv_put_field(b, r->source, strlen(r->source));
        csv_buf_putc(b, '\n');
    } else {
        csv_buf_puts(b, "{\"scan_id\": ");
        csv_put_json_str(b, r->scan_id, strlen(r->scan_id));
        csv_buf_puts(b, ", \"abnormal\": {");
        for (int i = 0; i < r->n; i++) {
            if (i) csv_buf_puts(b, ", ");
            csv_put_json_str(b, r->organs[i], strlen(r->organs[i]));
            csv_buf_printf(b, ": %d", r->abnormal[i]);
        }
        csv_buf_puts(b, "}, \"texts\": {");
        for (int i = 0; i < r->n; i++) {
            if (i) csv_buf_puts(b, ", ");
            csv_put_json_str(b, r->organs[i], strlen(r->organs[i]));
            csv_buf_puts(b, ": ");
            csv_put_json_str(b, r->texts[i], strlen(r->texts[i]));
        }
        csv_buf_puts(b, "}, \"normalised\": ");
        put_strs_json(b, r->n_norm, r->norm);
        csv_buf_puts(b, ", \"warnings\": ");
        put_strs_json(b, r->n_warn, r->warn);
        csv_buf_puts(b, ", \"source\": ");
        csv_put_json_str(b, r->source, strlen(r->source));
        csv_buf_puts(b, "}\n");
    }
    s->n_written++;
    return sink_flush(s, 0);
}

struct out_labels {
    const char        *id;           /* volume id: VolumeName without .nii.gz */
    const char        *volume_name;  /* the CSV cell as written */
    const char        *scan_id;
    int                n;
    const char *const *names;        /* abnormalities, CSV column order */
    const int         *labels;
    const char        *source;
};

static int emit_labels(struct sink *s, const struct out_labels *l, const struct org_abn *t, struct tn_arena *a,
                       int argc, char **argv) {
    if (s->fmt == F_STREAM) {
        struct rec rec;
        rec_init(&rec, a, NM_LABELS, l->id);
        rec_meta_set_str(&rec, NM_M_VOLUME_NAME, l->volume_name);
        rec_meta_set_str(&rec, NM_M_SCAN_ID, l->scan_id);
        rec_meta_set_strv(&rec, NM_M_ABNORMALITIES, l->names, l->n);
        int64_t v[ORG_MAX_ABN];
        for (int i = 0; i < l->n; i++) v[i] = l->labels[i];
        rec_meta_set_i64v(&rec, NM_M_LABELS, v, l->n);
        struct rec_mp m = { 0 };
        static const char *const keys[4] = { "abnormality", "organ", "negative", "positive" };
        rec_mp_map(&m, 4);
        for (int k = 0; k < 4; k++) {
            rec_mp_str(&m, keys[k]);
            rec_mp_array(&m, (uint32_t)t->n_items);
            for (int i = 0; i < t->n_items; i++) {
                const struct org_item *it = &t->items[i];
                rec_mp_str(&m, k == 0 ? t->names[it->abn] : k == 1 ? it->organ : k == 2 ? it->negative : it->positive);
            }
        }
        rec_meta_set_mp(&rec, NM_M_ITEMS, &m);
        rec_meta_set_str(&rec, NM_M_SOURCE, l->source);
        rec_history_append(&rec, argc, argv);
        s->n_written++;
        return rec_write(s->rw, &rec);
    }
    int first = sink_columns(s, 2, l->n, l->names);
    if (first < 0) return -1;
    struct csv_buf *b = &s->txt.buf;
    if (s->fmt == F_CSV) {                   /* CT-RATE's own layout, so that it round-trips */
        if (first) {
            csv_buf_puts(b, "VolumeName");
            for (int i = 0; i < l->n; i++) {
                csv_buf_putc(b, ',');
                csv_put_field(b, l->names[i], strlen(l->names[i]));
            }
            csv_buf_putc(b, '\n');
        }
        csv_put_field(b, l->volume_name, strlen(l->volume_name));
        for (int i = 0; i < l->n; i++) csv_buf_printf(b, ",%d", l->labels[i]);
        csv_buf_putc(b, '\n');
    } else {
        csv_buf_puts(b, "{\"id\": ");
        csv_put_json_str(b, l->id, strlen(l->id));
        csv_buf_puts(b, ", \"volume_name\": ");
        csv_put_json_str(b, l->volume_name, strlen(l->volume_name));
        csv_buf_puts(b, ", \"scan_id\": ");
        csv_put_json_str(b, l->scan_id, strlen(l->scan_id));
        csv_buf_puts(b, ", \"labels\": {");
        for (int i = 0; i < l->n; i++) {
            if (i) csv_buf_puts(b, ", ");
            csv_put_json_str(b, l->names[i], strlen(l->names[i]));
            csv_buf_printf(b, ": %d", l->labels[i]);
        }
        csv_buf_puts(b, "}, \"source\": ");
        csv_put_json_str(b, l->source, strlen(l->source));
        csv_buf_puts(b, "}\n");
    }
    s->n_written++;
    return sink_flush(s, 0);
}

/* ---- run state: bad inputs, duplicates, counts ---- */

struct run {
    const struct opts   *o;
    struct sink          out;
    struct tn_arena     *a;
    struct idset *ids;        /* scan ids / volume ids seen */
    int                  argc;
    char               **argv;
    long                 n_in;       /* reports / rows read */
    long                 n_skipped;
    long                 n_fixed, n_warned;
    long                 n_invalid;  /* --validate */
};

/* A bad report or row: stop (nothing more written), or with --keep-going list it and go on. */
static void bad(struct run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct run *R, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!R->o->keep_going) {
        sink_abort(&R->out);
        ct_die("%s", msg);
    }
    fprintf(stderr, "%s: skipped: %s\n", ct_progname(), msg);
    R->n_skipped++;
}

/* A write failure is never skippable. */
static void write_failed(struct run *R) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_lasterr());
    sink_abort(&R->out);
    ct_die("%s", msg);
}

/* ---- structured reports ---- */

/* "answers/valid_1_a.json" -> "valid_1_a" (the id of a one-report file that names none) */
static void id_from_file(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

/* Collect the notes of one severity as a string array in the arena. */
static const char **notes_of(const struct report_in *in, enum report_sev sev, struct tn_arena *a, int *n) {
    const char **v = tn_arena_alloc(a, (size_t)(in->n_notes + 1) * sizeof *v);
    *n = 0;
    for (int i = 0; i < in->n_notes; i++)
        if (in->notes[i].sev == sev) v[(*n)++] = in->notes[i].msg;
    return v;
}

static const char *sev_name(enum report_sev s) {
    return s == REPORT_ERROR ? "error" : s == REPORT_WARN ? "warning" : "normalised";
}

/* Validate mode: print every note of one answer; count it. */
static void validate_report(struct run *R, const char *source, const struct report_in *in) {
    const char *id = in->scan_id ? in->scan_id : "?";
    for (int i = 0; i < in->n_notes; i++) {
        struct csv_buf *b = &R->out.txt.buf;
        csv_buf_printf(b, "%s: scan %s: %s: %s\n", source, id, sev_name(in->notes[i].sev), in->notes[i].msg);
    }
    if (in->n_error) R->n_invalid++;
    else if (in->n_warn) R->n_warned++;
    else if (in->n_fix) R->n_fixed++;
    if (sink_flush(&R->out, 0) != 0) write_failed(R);
}

/* One parsed root: normalise, check duplicates, apply the rule, emit. */
static void one_report(struct run *R, const struct report_node *root, int parse_flags, const char *id_hint,
                       const char *source) {
    const struct opts *o = R->o;
    struct report_in in;
    R->n_in++;
    int rc = report_normalise(&o->organs, root, parse_flags, id_hint, 0, R->a, &in);
    if (rc == 0) {
        uint64_t tag;
        const char *first = idset_add(R->ids, in.scan_id, source, 0, &tag);
        if (first) report_note_add(&in, R->a, REPORT_ERROR, "duplicated scan id (first at %s)", first);
    }
    if (o->mode == M_VALIDATE) {
        validate_report(R, source, &in);
        return;
    }
    if (in.n_error) {
        const char *id = in.scan_id ? in.scan_id : "?";
        if (in.n_error > 1)
            bad(R, "%s: scan %s: %s (and %d more problems; --validate lists them)", source, id,
                report_first_error(&in), in.n_error - 1);
        else
            bad(R, "%s: scan %s: %s", source, id, report_first_error(&in));
        return;
    }
    struct report_out out;
    report_apply(&o->organs, &in, o->rule_flags, R->a, &out);
    struct out_report r = { .scan_id = out.scan_id, .n = out.n, .organs = out.organs, .abnormal = out.abnormal,
                            .texts = out.text, .source = source };
    r.norm = notes_of(&in, REPORT_FIX, R->a, &r.n_norm);
    r.warn = notes_of(&in, REPORT_WARN, R->a, &r.n_warn);
    if (r.n_norm) R->n_fixed++;
    if (r.n_warn) R->n_warned++;
    if (emit_report(&R->out, &r, R->a, R->argc, R->argv) != 0) write_failed(R);
}

/* A text unit (a file, or one JSON line): parse, then one_report per root. */
static void one_text(struct run *R, const char *text, size_t n, const char *name, long line0,
                     enum report_syntax syntax, int whole_file) {
    struct report_node **roots;
    int nr, flags;
    char src[1100];
    if (whole_file) snprintf(src, sizeof src, "%s", name);
    else snprintf(src, sizeof src, "%s:%ld", name, line0);
    if (report_parse_text(text, n, name, line0, syntax, R->a, &roots, &nr, &flags) != 0) {
        R->n_in++;
        if (R->o->mode == M_VALIDATE) {
            csv_buf_printf(&R->out.txt.buf, "%s: error: %s\n", src, ct_lasterr());
            R->n_invalid++;
            if (sink_flush(&R->out, 0) != 0) write_failed(R);
        } else {
            bad(R, "%s", ct_lasterr());
        }
        tn_arena_reset(R->a);
        return;
    }
    char hint[512];
    int use_hint = whole_file && nr == 1 && strcmp(name, "-");
    if (use_hint) id_from_file(name, hint, sizeof hint);
    for (int k = 0; k < nr; k++) {
        char s[1200];
        if (nr == 1) snprintf(s, sizeof s, "%s", src);
        else if (roots[k]->line) snprintf(s, sizeof s, "%s:%d", name, roots[k]->line + (int)line0 - 1);
        else snprintf(s, sizeof s, "%s[%d]", src, k);
        one_report(R, roots[k], flags, use_hint ? hint : NULL, s);
    }
    tn_arena_reset(R->a);
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* JSON lines from memory (auto-detected) */
static void lines_mem(struct run *R, const char *buf, size_t n, const char *name) {
    long line = 0;
    for (size_t b = 0; b < n;) {
        const char *nl = memchr(buf + b, '\n', n - b);
        size_t e = nl ? (size_t)(nl - buf) : n;
        line++;
        size_t t = b;
        while (t < e && (buf[t] == ' ' || buf[t] == '\t' || buf[t] == '\r')) t++;
        if (t < e) one_text(R, buf + b, e - b, name, line, REPORT_JSON_STRICT, 0);
        b = nl ? e + 1 : n;
    }
}

/* "Is this JSON lines?": the first non-blank line is a whole JSON object and another line follows. */
static int looks_like_jsonl(const char *buf, size_t n) {
    size_t b = 0;
    if (n >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) b = 3;
    while (b < n && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r' || buf[b] == '\n')) b++;
    if (b >= n || buf[b] != '{') return 0;
    const char *nl = memchr(buf + b, '\n', n - b);
    if (!nl) return 0;
    size_t e = (size_t)(nl - buf);
    while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r')) e--;
    if (buf[e - 1] != '}') return 0;
    for (size_t t = (size_t)(nl - buf) + 1; t < n; t++)
        if (buf[t] != ' ' && buf[t] != '\t' && buf[t] != '\r' && buf[t] != '\n') return 1;
    return 0;
}

static void reports_file(struct run *R, const char *path) {
    const struct opts *o = R->o;
    int jsonl = o->jsonl || (o->syntax == REPORT_AUTO && (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson")));
    if (jsonl) {                             /* stream line by line */
        FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
        if (!f) {
            R->n_in++;
            bad(R, "%s: %s", path, strerror(errno));
            return;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t k;
        long no = 0;
        while ((k = getline(&line, &cap, f)) >= 0) {
            no++;
            size_t n = (size_t)k;
            if (n && line[n - 1] == '\n') n--;
            size_t t = 0;
            while (t < n && (line[t] == ' ' || line[t] == '\t' || line[t] == '\r')) t++;
            if (t == n) continue;
            one_text(R, line, n, path, no, REPORT_JSON_STRICT, 0);
        }
        int err = ferror(f);
        free(line);
        if (f != stdin) fclose(f);
        if (err) bad(R, "%s: read error", path);
        return;
    }
    char *buf;
    size_t n;
    if (ct_read_file(path, &buf, &n) != 0) {
        R->n_in++;
        bad(R, "%s", ct_lasterr());
        return;
    }
    enum report_syntax syn = o->syntax;
    if (syn == REPORT_AUTO) {
        if (has_suffix(path, ".yaml") || has_suffix(path, ".yml")) syn = REPORT_YAML;
        else if (has_suffix(path, ".json")) syn = REPORT_JSON;
    }
    /* JSON lines are often named .json: read them as lines unless --input says otherwise */
    if ((syn == REPORT_AUTO || (syn == REPORT_JSON && o->syntax == REPORT_AUTO)) && looks_like_jsonl(buf, n))
        lines_mem(R, buf, n, path);
    else one_text(R, buf, n, path, 1, syn, 1);
    free(buf);
}

/* ---- fVLM's desc_info.json + conc_info.json ---- */

static const struct report_node *load_fvlm(struct run *R, const char *path, struct tn_arena *a) {
    char *buf;
    size_t n;
    struct report_node **roots;
    int nr, flags;
    if (ct_read_file(path, &buf, &n) != 0) ct_die("%s", ct_lasterr());
    if (report_parse_text(buf, n, path, 1, REPORT_JSON_STRICT, a, &roots, &nr, &flags) != 0) {
        sink_abort(&R->out);
        ct_die("%s", ct_lasterr());
    }
    free(buf);
    if (nr != 1 || roots[0]->type != RN_MAP) {
        sink_abort(&R->out);
        ct_die("%s: expected one JSON object {scan_id: {organ: text}}", path);
    }
    return roots[0];
}

static void fvlm(struct run *R) {
    const struct opts *o = R->o;
    struct tn_arena *fa = tn_arena_new(0);   /* both files, kept for the whole run */
    const struct report_node *d = load_fvlm(R, o->desc, fa);
    const struct report_node *c = load_fvlm(R, o->conc, fa);
    struct idset *cidx = idset_new();   /* conc scan -> index */
    for (int i = 0; i < c->n; i++) idset_add(cidx, c->keys[i], NULL, (uint64_t)i, NULL);
    struct idset *didx = idset_new();
    for (int i = 0; i < d->n; i++) idset_add(didx, d->keys[i], NULL, (uint64_t)i, NULL);
    for (int pass = 0; pass < 2; pass++) {   /* scans of desc_info, then those only in conc_info */
        const struct report_node *m = pass ? c : d;
        for (int i = 0; i < m->n; i++) {
            const char *scan = m->keys[i];
            uint64_t j;
            const struct report_node *dn = NULL, *cn = NULL;
            if (pass == 1 && idset_get(didx, scan, NULL)) continue;
            if (pass == 0) {
                dn = d->items[i];
                if (idset_get(cidx, scan, &j)) cn = c->items[j];
            } else {
                cn = c->items[i];
            }
            char src[1200];
            snprintf(src, sizeof src, "%s[%s]", pass ? o->conc : o->desc, scan);
            struct report_in in;
            R->n_in++;
            if (report_from_fvlm(&o->organs, scan, dn, cn, R->a, &in) == 0) {
                const char *first = idset_add(R->ids, in.scan_id, src, 0, NULL);
                if (first) report_note_add(&in, R->a, REPORT_ERROR, "duplicated scan id (first at %s)", first);
            }
            if (in.n_error) {
                bad(R, "%s: scan %s: %s", src, scan, report_first_error(&in));
                tn_arena_reset(R->a);
                continue;
            }
            struct report_out out;
            report_apply(&o->organs, &in, o->rule_flags, R->a, &out);
            struct out_report r = { .scan_id = out.scan_id, .n = out.n, .organs = out.organs,
                                    .abnormal = out.abnormal, .texts = out.text, .source = src };
            r.norm = notes_of(&in, REPORT_FIX, R->a, &r.n_norm);
            r.warn = notes_of(&in, REPORT_WARN, R->a, &r.n_warn);
            if (emit_report(&R->out, &r, R->a, R->argc, R->argv) != 0) write_failed(R);
            tn_arena_reset(R->a);
        }
    }
    idset_free(cidx);
    idset_free(didx);
    tn_arena_free(fa);
}

/* ---- CT-RATE label CSV ---- */

static void labels_file(struct run *R, const char *path) {
    const struct org_abn *t = &R->o->abn;
    struct csv_reader *cr = csv_reader_open(path);
    if (!cr) {
        R->n_in++;
        bad(R, "%s", ct_lasterr());
        return;
    }
    struct csv_row row;
    struct report_label_cols cols;
    int rc = csv_read(cr, &row);
    if (rc <= 0 || report_label_header(t, &row, path, &cols) != 0) {
        if (rc == 0) ct_seterr("%s: empty file (no header)", path);
        R->n_in++;
        bad(R, "%s%s", ct_lasterr(), R->o->keep_going ? " (the whole file is skipped)" : "");
        csv_reader_close(cr);
        return;
    }
    while ((rc = csv_read(cr, &row)) > 0) {
        const char *vol;
        int labels[ORG_MAX_ABN];
        R->n_in++;
        if (report_label_row(t, &cols, &row, path, &vol, labels) != 0) {
            bad(R, "%s", ct_lasterr());
            continue;
        }
        char id[1024], scan[1024], src[1100];
        report_volume_id(vol, id, sizeof id);
        report_scan_id(vol, scan, sizeof scan);
        snprintf(src, sizeof src, "%s:%ld", path, row.line);
        if (!id[0]) {
            bad(R, "%s: VolumeName '%.80s' has no name part", src, vol);
            continue;
        }
        const char *first = idset_add(R->ids, id, src, 0, NULL);
        if (first) {
            bad(R, "%s: duplicated volume %s (first at %s)", src, id, first);
            continue;
        }
        struct out_labels l = { .id = id, .volume_name = vol, .scan_id = scan, .n = t->n, .names = t->names,
                                .labels = labels, .source = src };
        if (emit_labels(&R->out, &l, t, R->a, R->argc, R->argv) != 0) write_failed(R);
        tn_arena_reset(R->a);
    }
    if (rc < 0) {                            /* the rest of this file cannot be read */
        R->n_in++;
        bad(R, "%s%s", ct_lasterr(), R->o->keep_going ? " (the rest of this file is skipped)" : "");
    }
    csv_reader_close(cr);
}

/* ---- CT-RATE report CSV -> prompts ---- */

static uint64_t fnv2(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ull;
    for (const char *s = a; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;       /* separator (0xff never occurs in UTF-8) */
    for (const char *s = b; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void prompts_file(struct run *R, const char *path) {
    const struct opts *o = R->o;
    struct csv_reader *cr = csv_reader_open(path);
    if (!cr) {
        R->n_in++;
        bad(R, "%s", ct_lasterr());
        return;
    }
    struct csv_row row;
    struct report_text_cols cols;
    int rc = csv_read(cr, &row);
    if (rc <= 0 || report_text_header(&row, path, &cols) != 0) {
        if (rc == 0) ct_seterr("%s: empty file (no header)", path);
        R->n_in++;
        bad(R, "%s%s", ct_lasterr(), R->o->keep_going ? " (the whole file is skipped)" : "");
        csv_reader_close(cr);
        return;
    }
    struct csv_buf prompt = { 0 }, schema = { 0 };
    report_answer_schema(&o->organs, &schema);
    while ((rc = csv_read(cr, &row)) > 0) {
        R->n_in++;
        char src[1100];
        snprintf(src, sizeof src, "%s:%ld", path, row.line);
        if (row.n != cols.n_cols) {
            bad(R, "%s: %d fields, expected %d as in the header", src, row.n, cols.n_cols);
            continue;
        }
        const char *vol = row.fields[cols.volume], *fi = row.fields[cols.findings], *im = row.fields[cols.impression];
        char scan[1024];
        report_scan_id(vol, scan, sizeof scan);
        if (!scan[0]) {
            bad(R, "%s: empty VolumeName", src);
            continue;
        }
        if (!fi[0] && !im[0]) {
            bad(R, "%s: volume %s: both Findings_EN and Impressions_EN are empty", src, vol);
            continue;
        }
        uint64_t h = fnv2(fi, im), h0;
        char origin[1200];
        snprintf(origin, sizeof origin, "%s (volume %s)", src, vol);
        const char *first = idset_add(R->ids, scan, origin, h, &h0);
        if (first) {                         /* another reconstruction of a scan already prompted */
            if (h0 != h) bad(R, "%s: volume %s: its report differs from that of scan %s at %s", src, vol, scan, first);
            continue;
        }
        report_prompt(&o->organs, o->tmpl, fi, im, &prompt);
        struct csv_buf *b = &R->out.txt.buf;
        csv_buf_puts(b, "{\"scan_id\": ");
        csv_put_json_str(b, scan, strlen(scan));
        csv_buf_puts(b, ", \"volume\": ");
        csv_put_json_str(b, vol, strlen(vol));
        csv_buf_puts(b, ", \"prompt\": ");
        csv_put_json_str(b, prompt.p, prompt.n);
        csv_buf_puts(b, ", \"answer_schema\": ");
        csv_buf_put(b, schema.p, schema.n);
        csv_buf_puts(b, "}\n");
        R->out.n_written++;
        if (sink_flush(&R->out, 0) != 0) write_failed(R);
    }
    if (rc < 0) {
        R->n_in++;
        bad(R, "%s%s", ct_lasterr(), R->o->keep_going ? " (the rest of this file is skipped)" : "");
    }
    csv_buf_free(&prompt);
    csv_buf_free(&schema);
    csv_reader_close(cr);
}

/* ---- streams back to CSV / JSON lines ---- */

/* A meta array of strings that must be there: its count, or -1 + lasterr. */
static int meta_strs(const struct rec *r, const char *key, const char ***out) {
    if (!rec_meta_has(r, key)) return ct_seterr("meta '%s': missing", key);
    return rec_meta_strv(r, key, out);
}

static int meta_flags(const struct rec *r, const char *key, int *out, int n) {
    int64_t v[ORG_MAX_ABN];
    int k = rec_meta_i64(r, key, v, ORG_MAX_ABN);
    if (k < 0) return -1;
    if (k != n) return ct_seterr("meta '%s': %d values, expected %d", key, k, n);
    for (int i = 0; i < n; i++) {
        if (v[i] != 0 && v[i] != 1) return ct_seterr("meta '%s': value %lld is not 0 or 1", key, (long long)v[i]);
        out[i] = (int)v[i];
    }
    return 0;
}

static int from_record(struct run *R, const struct rec *r) {
    char name[64];
    int major;
    if (rec_schema_split(r->schema, name, sizeof name, &major) != 0 || major != 1 ||
        (strcmp(name, NM_REPORT_NAME) && strcmp(name, NM_LABELS_NAME)))
        return ct_seterr("schema '%s' (expected ct.report/1 or ct.labels/1)", r->schema);
    const char *src = rec_meta_str(r, NM_M_SOURCE);
    if (!src) src = "";
    if (!strcmp(name, NM_REPORT_NAME)) {
        struct out_report o = { .scan_id = r->id, .source = src };
        int n_t, flags[ORG_MAX];
        const char **organs, **texts, **norm, **warn;
        if ((o.n = meta_strs(r, NM_M_ORGANS, &organs)) < 0 || (n_t = meta_strs(r, NM_M_TEXTS, &texts)) < 0 ||
            (o.n_norm = meta_strs(r, NM_M_NORMALISED, &norm)) < 0 || (o.n_warn = meta_strs(r, NM_M_WARNINGS, &warn)) < 0)
            return -1;
        if (o.n > ORG_MAX || n_t != o.n) return ct_seterr("meta 'texts' and 'organs' differ in length");
        o.organs = organs;
        o.texts = texts;
        o.norm = norm;
        o.warn = warn;
        if (meta_flags(r, NM_M_ABNORMAL, flags, o.n) != 0) return -1;
        o.abnormal = flags;
        return emit_report(&R->out, &o, R->a, R->argc, R->argv);
    }
    struct out_labels l = { .id = r->id, .source = src };
    int labels[ORG_MAX_ABN];
    l.volume_name = rec_meta_str(r, NM_M_VOLUME_NAME);
    l.scan_id = rec_meta_str(r, NM_M_SCAN_ID);
    if (!l.volume_name || !l.scan_id) return ct_seterr("meta 'volume_name' or 'scan_id' missing");
    const char **names;
    if ((l.n = meta_strs(r, NM_M_ABNORMALITIES, &names)) < 0) return -1;
    l.names = names;
    if (l.n > ORG_MAX_ABN) return ct_seterr("more than %d abnormalities", ORG_MAX_ABN);
    if (meta_flags(r, NM_M_LABELS, labels, l.n) != 0) return -1;
    l.labels = labels;
    return emit_labels(&R->out, &l, &R->o->abn, R->a, R->argc, R->argv);
}

static void stream_file(struct run *R, const char *path) {
    struct rec_reader *in = rec_reader_open(path);
    if (!in) {
        sink_abort(&R->out);
        ct_die("%s", ct_lasterr());
    }
    struct rec r;
    int rc;
    while ((rc = rec_read(in, R->a, &r)) > 0) {
        R->n_in++;
        if (from_record(R, &r) != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s: record %ld (id %s): %s", path, r.index, r.id, ct_lasterr());
            sink_abort(&R->out);
            ct_die("%s", msg);
        }
        if (sink_flush(&R->out, 0) != 0) write_failed(R);
        tn_arena_reset(R->a);
    }
    if (rc < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ct_lasterr());   /* rec_read names the file */
        sink_abort(&R->out);
        ct_die("%s", msg);
    }
    rec_reader_close(in);
}

/* ---- options ---- */

static enum fmt resolve_format(const struct opts *o, const char *output) {
    if (o->format != F_DEFAULT) return o->format;
    if (o->mode == M_PROMPTS) return F_JSONL;
    if (strcmp(output, "-")) {
        if (has_suffix(output, ".csv")) return F_CSV;
        if (has_suffix(output, ".jsonl") || has_suffix(output, ".ndjson") || has_suffix(output, ".json")) return F_JSONL;
        return o->mode == M_FROM_STREAM ? F_JSONL : F_STREAM;
    }
    if (isatty(1) || o->mode == M_FROM_STREAM) return F_JSONL;
    return F_STREAM;
}

static void set_mode(struct opts *o, enum mode m, const char *name) {
    if (o->mode != M_REPORTS && o->mode != m) ct_usage_die("%s cannot be combined with another mode", name);
    o->mode = m;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = { 0 };
    struct cli_common cc;
    cli_common_init(&cc);
    enum {
        OPT_DESC = 256, OPT_CONC, OPT_LABELS, OPT_PROMPTS, OPT_VALIDATE, OPT_FROM_STREAM, OPT_INPUT, OPT_ORGANS,
        OPT_ABN, OPT_TEMPLATE, OPT_RELEASED, OPT_STRICT,
    };
    static const struct option longopts[] = {
        { "desc", required_argument, 0, OPT_DESC },
        { "conc", required_argument, 0, OPT_CONC },
        { "labels", no_argument, 0, OPT_LABELS },
        { "prompts", no_argument, 0, OPT_PROMPTS },
        { "validate", no_argument, 0, OPT_VALIDATE },
        { "from-stream", no_argument, 0, OPT_FROM_STREAM },
        { "format", required_argument, 0, 'f' },
        { "input", required_argument, 0, OPT_INPUT },
        { "organs", required_argument, 0, OPT_ORGANS },
        { "abnormalities", required_argument, 0, OPT_ABN },
        { "template", required_argument, 0, OPT_TEMPLATE },
        { "released-empty", no_argument, 0, OPT_RELEASED },
        { "keep-going", no_argument, 0, 'k' },
        { "strict", no_argument, 0, OPT_STRICT },
        CLI_COMMON_LONGOPTS,
        { 0, 0, 0, 0 },
    };
    int ch, format_given = 0;
    while ((ch = getopt_long(argc, argv, "f:k" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_DESC: o.desc = optarg; set_mode(&o, M_FVLM, "--desc"); break;
        case OPT_CONC: o.conc = optarg; set_mode(&o, M_FVLM, "--conc"); break;
        case OPT_LABELS: set_mode(&o, M_LABELS, "--labels"); break;
        case OPT_PROMPTS: set_mode(&o, M_PROMPTS, "--prompts"); break;
        case OPT_VALIDATE: set_mode(&o, M_VALIDATE, "--validate"); break;
        case OPT_FROM_STREAM: set_mode(&o, M_FROM_STREAM, "--from-stream"); break;
        case 'f':
            format_given = 1;
            if (!strcmp(optarg, "stream")) o.format = F_STREAM;
            else if (!strcmp(optarg, "csv")) o.format = F_CSV;
            else if (!strcmp(optarg, "jsonl")) o.format = F_JSONL;
            else ct_usage_die("--format: expected stream, csv or jsonl, got '%s'", optarg);
            break;
        case OPT_INPUT:
            if (!strcmp(optarg, "auto")) o.syntax = REPORT_AUTO;
            else if (!strcmp(optarg, "json")) o.syntax = REPORT_JSON;
            else if (!strcmp(optarg, "yaml")) o.syntax = REPORT_YAML;
            else if (!strcmp(optarg, "jsonl")) o.jsonl = 1;
            else ct_usage_die("--input: expected auto, json, jsonl or yaml, got '%s'", optarg);
            break;
        case OPT_ORGANS: o.organs_path = optarg; break;
        case OPT_ABN: o.abn_path = optarg; break;
        case OPT_TEMPLATE: o.template_path = optarg; break;
        case OPT_RELEASED: o.rule_flags |= REPORT_RELEASED_EMPTY; break;
        case 'k': o.keep_going = 1; break;
        case OPT_STRICT: o.strict = 1; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (o.mode == M_FVLM) {
        if (!o.desc || !o.conc) ct_usage_die("--desc and --conc go together");
        if (optind < argc) ct_usage_die("--desc/--conc take no other input files");
    }
    if (o.mode == M_PROMPTS && format_given && o.format != F_JSONL) ct_usage_die("--prompts writes JSON lines only");
    if (o.mode == M_VALIDATE && format_given) ct_usage_die("--validate prints text; --format does not apply");
    if (o.mode == M_FROM_STREAM && o.format == F_STREAM) ct_usage_die("--from-stream writes csv or jsonl");
    if (o.strict && o.mode != M_VALIDATE) ct_usage_die("--strict goes with --validate");
    if (o.template_path && o.mode != M_PROMPTS) ct_usage_die("--template goes with --prompts");

    struct tn_arena *cfg_arena = tn_arena_new(0);
    if (o.organs_path) {
        if (org_set_load(o.organs_path, cfg_arena, &o.organs) != 0) ct_die("%s", ct_lasterr());
    } else {
        org_set_default(&o.organs);
    }
    if (o.abn_path) {
        if (org_abn_load(o.abn_path, cfg_arena, &o.abn) != 0) ct_die("%s", ct_lasterr());
    } else {
        org_abn_default(&o.abn);
    }
    if (o.mode == M_LABELS && org_abn_check_organs(&o.abn, &o.organs) != 0) ct_die("%s", ct_lasterr());
    if (o.mode == M_PROMPTS) {
        if (o.template_path) {
            size_t n;
            if (ct_read_file(o.template_path, &o.tmpl, &n) != 0) ct_die("%s", ct_lasterr());
            if (strlen(o.tmpl) != n || csv_utf8_check(o.tmpl, n) != n)
                ct_die("%s: invalid UTF-8 or NUL byte", o.template_path);
            if (report_template_check(o.tmpl) != 0) ct_die("%s: %s", o.template_path, ct_lasterr());
        } else {
            o.tmpl = ct_xstrdup(report_prompt_template);
        }
    }

    struct run R = { .o = &o, .argc = argc, .argv = argv };
    R.a = tn_arena_new(0);
    R.ids = idset_new();
    enum fmt fmt = o.mode == M_VALIDATE ? F_JSONL : resolve_format(&o, cc.output);
    if (sink_open(&R.out, cc.output, fmt, &cc.wopts) != 0) ct_die("%s", ct_lasterr());

    static const char *const stdin_only[] = { "-" };
    const char *const *inputs = optind < argc ? (const char *const *)argv + optind : stdin_only;
    int n_inputs = optind < argc ? argc - optind : 1;
    double t0 = ct_now();
    if (o.mode == M_FVLM) fvlm(&R);
    for (int i = 0; o.mode != M_FVLM && i < n_inputs; i++) {
        switch (o.mode) {
        case M_REPORTS:
        case M_VALIDATE: reports_file(&R, inputs[i]); break;
        case M_LABELS: labels_file(&R, inputs[i]); break;
        case M_PROMPTS: prompts_file(&R, inputs[i]); break;
        case M_FROM_STREAM: stream_file(&R, inputs[i]); break;
        case M_FVLM: break;
        }
    }
    long n_written = R.out.n_written;
    if (sink_close(&R.out) != 0) ct_die("%s", ct_lasterr());
    ct_log(1, "%ld inputs, %ld written, %ld normalised, %ld with warnings, %ld skipped, %.3f s", R.n_in, n_written,
           R.n_fixed, R.n_warned, R.n_skipped, ct_now() - t0);
    int rc = CT_EXIT_OK;
    if (o.mode == M_VALIDATE) {
        long bad_n = R.n_invalid + R.n_warned + (o.strict ? R.n_fixed : 0);
        fprintf(stderr, "%s: %ld answers: %ld invalid, %ld with warnings, %ld normalised, %ld as asked\n",
                ct_progname(), R.n_in, R.n_invalid, R.n_warned, R.n_fixed,
                R.n_in - R.n_invalid - R.n_warned - R.n_fixed);
        if (bad_n) rc = CT_EXIT_FAIL;
    } else if (R.n_skipped) {
        fprintf(stderr, "%s: skipped %ld of %ld inputs (listed above)\n", ct_progname(), R.n_skipped, R.n_in);
        rc = CT_EXIT_FAIL;
    }
    idset_free(R.ids);
    tn_arena_free(R.a);
    tn_arena_free(cfg_arena);
    free(o.tmpl);
    return rc;
}
