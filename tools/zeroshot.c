/*
 * zeroshot - per-organ abnormality probabilities from organ features and
 * prompt features (method.md §7.1-7.2), and the metrics the papers report
 * (§7.3), with bootstrap confidence intervals and ROC curves.
 *
 *   zeroshot --prompts prompts.ctv organs.ctv > probs.ctv        ct.probs/1, one record per case
 *   zeroshot --prompts prompts.ctv organs.ctv --csv res.csv      the released evaluation's CSV
 *   zeroshot --metrics --labels labels.csv res.csv --json m.json --roc roc.svg
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "ct.h"
#include "metrics.h"
#include "idset.h"
#include "organs.h"
#include "stream.h"
#include "svg.h"
#include "textout.h"
#include "zeroshot.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: zeroshot --prompts PROMPTS.ctv [OPTION]... [ORGANS.ctv]...\n"
            "       zeroshot --metrics --labels LABELS [OPTION]... PROBS\n"
            "Zero-shot abnormality scoring as in ViSD-Boost / fVLM (method.md §7).\n"
            "\n"
            "Probabilities (default mode): reads ct.organ/1 records (from vq-recon; FILE '-' or\n"
            "none: stdin) and the prompt features of --prompts (ct.prompts/1, from text-encode).\n"
            "For each case and each item whose organ has a result, p = softmax([f.t_neg, f.t_pos]\n"
            "/ temp)[1], averaged over the organ's windows.  Writes ct.probs/1 records (one per\n"
            "case; the records of a case must be consecutive) and/or the released CSV.  Organs\n"
            "without items are ignored.\n"
            "      --prompts FILE   ct.prompts/1: text_feat f32 [items, 2, dim], meta items, temp\n"
            "      --abnormalities FILE  require the prompts' items to equal this item YAML\n"
            "                       (e.g. pipelines/ct-rate-abnormalities.yaml)\n"
            "      --csv FILE       also write the CSV of the released evaluation: file_name, then\n"
            "                       one organ_abnormality_negative_positive column per item, empty\n"
            "                       cells for missing organs ('-': stdout, then no stream there\n"
            "                       unless -o FILE)\n"
            "\n"
            "Metrics (--metrics): PROBS is a ct.probs/1 stream or a CSV in the released layout\n"
            "(also CSVs written by the released Python code); LABELS is CT-RATE's label CSV\n"
            "(VolumeName + 0/1 columns) or ct.labels/1 records (report-label --labels).  A path\n"
            "ending in .csv is read as CSV, '-' (stdin) as a stream, any other file by its first\n"
            "byte.  Prints a table (to -o FILE or stdout).  Cases are joined on the id (the file\n"
            "name without .nii.gz); cases in only one input are listed in a warning and left out.\n"
            "      --labels FILE    ground truth\n"
            "      --nan skip|zero  a NaN (empty) probability is left out (skip, ViSD-Boost;\n"
            "                       default) or counts as 0 (zero, fVLM)\n"
            "  -B, --bootstrap N    bootstrap resamples for the CIs (default 1000; 0: none)\n"
            "      --seed S         bootstrap seed (default 0; the generator is in docs/zeroshot.md)\n"
            "      --ci LEVEL       CI level (default 0.95: the 2.5th and 97.5th percentiles)\n"
            "      --csv FILE       metrics per item and their mean, with CIs, as CSV\n"
            "      --json FILE      everything (metrics, CIs, counts, unmatched cases) as JSON\n"
            "      --roc FILE       ROC curves as SVG, one panel per item (AUC, threshold marked)\n"
            "      --bootstrap-indices FILE  every resample's case indices, one line per resample\n"
            "                       (0-based rows of the joined cases, in PROBS order)\n"
            CLI_COMMON_HELP
            "\n"
            "Exit status: 0 ok, 1 bad input, 2 usage.\n"
            "Example: zeroshot --metrics --labels valid_labels.csv epoch_17.csv --nan zero --roc roc.svg\n");
}

/* ---- probabilities ---- */

struct item { const char *organ, *abn, *neg, *pos; };

struct prompts {
    int          n_items, dim;
    struct item *items;
    const float *feat;               /* [n_items][2][dim] */
    double       temp;
    const char  *weights_id;
    int          untrained;
    char       **columns;
    struct rec   rec;                /* the record (its arena lives until exit) */
};

static const char *map_str(const struct rec_val *m, const char *key) {
    const struct rec_val *v = rec_val_map_get(m, key);
    return v && v->type == RV_STR ? v->v.s.p : NULL;
}

static void load_prompts(const char *path, struct prompts *P, struct tn_arena *a) {
    struct rec_reader *rd = rec_reader_open(path);
    if (!rd) ct_die("%s", ct_lasterr());
    int rc = rec_read(rd, a, &P->rec);
    if (rc < 0) ct_die("%s", ct_lasterr());
    if (rc == 0) ct_die("%s: no ct.prompts/1 record", path);
    struct rec *r = &P->rec;
    char where[1200];
    snprintf(where, sizeof where, "%s: record 0 (id %s)", path, r->id);
    if (rec_expect(r, "ct.prompts", 1) != 0) ct_die("%s: %s", where, ct_lasterr());
    const struct rec_val *items = rec_meta_get(r, "items");
    if (!items || items->type != RV_ARRAY || items->v.a.n == 0) ct_die("%s: meta items missing or empty", where);
    P->n_items = (int)items->v.a.n;
    P->items = ct_xcalloc((size_t)P->n_items, sizeof *P->items);
    P->columns = ct_xcalloc((size_t)P->n_items, sizeof *P->columns);
    for (int i = 0; i < P->n_items; i++) {
        const struct rec_val *m = &items->v.a.items[i];
        struct item *it = &P->items[i];
        if (m->type != RV_MAP || !(it->organ = map_str(m, "organ")) || !(it->abn = map_str(m, "abnormality")) ||
            !(it->neg = map_str(m, "negative")) || !(it->pos = map_str(m, "positive")))
            ct_die("%s: meta items[%d] is not a map {organ, abnormality, negative, positive} of str", where, i);
        if (strchr(it->organ, '_') || strchr(it->abn, '_'))
            ct_die("%s: items[%d]: organ and abnormality names must not contain '_' (the CSV column "
                   "'%s_%s_...' would not split back)", where, i, it->organ, it->abn);
        struct csv_buf b = { 0 };
        zs_column_name(&b, it->organ, it->abn, it->neg, it->pos);
        P->columns[i] = b.p;
    }
    struct tn_tensor *t = rec_tensor_req(r, "text_feat");
    if (!t) ct_die("%s: %s", where, ct_lasterr());
    if (t->dtype != TN_F32 || t->ndim != 3 || t->shape[0] != P->n_items || t->shape[1] != 2 || t->shape[2] < 1)
        ct_die("%s: text_feat is %s [%lld%s%lld%s%lld], expected f32 [%d, 2, dim] for %d items", where,
               tn_dtype_name(t->dtype), t->ndim > 0 ? (long long)t->shape[0] : 0LL, t->ndim > 1 ? ", " : "",
               t->ndim > 1 ? (long long)t->shape[1] : 0LL, t->ndim > 2 ? ", " : "",
               t->ndim > 2 ? (long long)t->shape[2] : 0LL, P->n_items, P->n_items);
    P->dim = (int)t->shape[2];
    P->feat = t->data;
    if (rec_meta_f64(r, "temp", &P->temp, 1) != 1 || !isfinite(P->temp) || P->temp <= 0)
        ct_die("%s: meta temp missing or not a positive number", where);
    P->weights_id = rec_meta_str(r, "weights_id");
    const struct rec_val *u = rec_meta_get(r, "weights_untrained");
    P->untrained = u && u->type == RV_BOOL && u->v.b;
    struct rec extra;
    struct tn_arena *a2 = tn_arena_new(0);
    if ((rc = rec_read(rd, a2, &extra)) != 0)
        ct_die("%s: %s", path, rc < 0 ? ct_lasterr() : "more than one record (expected one ct.prompts/1)");
    tn_arena_free(a2);
    rec_reader_close(rd);
}

static void check_items_yaml(const struct prompts *P, const char *path, struct tn_arena *a) {
    struct org_abn t;
    if (org_abn_load(path, a, &t) != 0) ct_die("%s", ct_lasterr());
    if (t.n_items != P->n_items)
        ct_die("--prompts: %d items, %s has %d", P->n_items, path, t.n_items);
    for (int i = 0; i < t.n_items; i++) {
        const struct org_item *y = &t.items[i];
        const struct item *x = &P->items[i];
        if (strcmp(x->organ, y->organ) || strcmp(x->abn, t.names[y->abn]) || strcmp(x->neg, y->negative) ||
            strcmp(x->pos, y->positive))
            ct_die("--prompts: item %d is '%s', %s says '%s_%s_%s_%s'", i, P->columns[i], path, y->organ,
                   t.names[y->abn], y->negative, y->positive);
    }
}

struct case_acc {
    char    id[1024];
    int     active;
    long    first_index;
    double *sum;                     /* [n_items] */
    int    *cnt;
    int     untrained;
};

static void put_items_meta(struct rec *r, const struct prompts *P) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)P->n_items);
    for (int i = 0; i < P->n_items; i++) {
        rec_mp_map(&m, 4);
        rec_mp_str(&m, "organ"); rec_mp_str(&m, P->items[i].organ);
        rec_mp_str(&m, "abnormality"); rec_mp_str(&m, P->items[i].abn);
        rec_mp_str(&m, "negative"); rec_mp_str(&m, P->items[i].neg);
        rec_mp_str(&m, "positive"); rec_mp_str(&m, P->items[i].pos);
    }
    rec_meta_set_mp(r, "items", &m);
}

static void flush_case(struct case_acc *c, const struct prompts *P, struct rec_writer *w, struct csv_buf *csv,
                       int argc, char **argv) {
    if (!c->active) return;
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    rec_init(&r, a, "ct.probs/1", c->id);
    int64_t sh = P->n_items;
    struct tn_tensor *tp = tn_new(a, TN_F64, 1, &sh, "p_pos");
    struct tn_tensor *tw = tn_new(a, TN_I32, 1, &sh, "n_windows");
    double *p = tp->data;
    int32_t *nw = tw->data;
    char fname[1100];
    zs_file_name(c->id, fname, sizeof fname);
    if (csv) csv_put_field(csv, fname, strlen(fname));
    for (int i = 0; i < P->n_items; i++) {
        p[i] = c->cnt[i] ? c->sum[i] / c->cnt[i] : NAN;
        nw[i] = c->cnt[i];
        if (csv) {
            csv_buf_putc(csv, ',');
            if (c->cnt[i]) {
                char s[40];
                zs_repr(p[i], s);
                csv_buf_puts(csv, s);
            }
        }
    }
    if (csv) csv_buf_putc(csv, '\n');
    if (w) {
        rec_add_tensor(&r, tp);
        rec_add_tensor(&r, tw);
        put_items_meta(&r, P);
        rec_meta_set_strv(&r, "columns", (const char *const *)P->columns, P->n_items);
        rec_meta_set_str(&r, "file_name", fname);
        rec_meta_set_f64(&r, "temp", P->temp);
        if (P->weights_id) rec_meta_set_str(&r, "weights_id", P->weights_id);
        struct rec_mp m = { 0 };
        rec_mp_bool(&m, P->untrained || c->untrained);
        rec_meta_set_mp(&r, "weights_untrained", &m);
        rec_history_append(&r, argc, argv);
        if (rec_write(w, &r) != 0) ct_die("%s", ct_lasterr());
    }
    tn_arena_free(a);
    c->active = 0;
}

static int run_probs(const char *prompts_path, const char *abn_path, const char *csv_path,
                     const struct cli_common *cc, int nin, char **inputs, int argc, char **argv) {
    struct tn_arena *pa = tn_arena_new(0);
    struct prompts P;
    memset(&P, 0, sizeof P);
    load_prompts(prompts_path, &P, pa);
    if (abn_path) check_items_yaml(&P, abn_path, pa);
    struct rec_reader *rd = rec_reader_open_many(nin, inputs);
    if (!rd) ct_die("%s", ct_lasterr());
    int csv_stdout = csv_path && !strcmp(csv_path, "-");
    int stream_out = !csv_path || strcmp(cc->output, "-") || !csv_stdout;
    struct textout tf;
    struct csv_buf *csv = NULL;
    if (csv_path) {
        if (textout_open(&tf, csv_path) != 0) ct_die("%s", ct_lasterr());
        csv = &tf.buf;
        csv_buf_puts(csv, "file_name");
        for (int i = 0; i < P.n_items; i++) {
            csv_buf_putc(csv, ',');
            csv_put_field(csv, P.columns[i], strlen(P.columns[i]));
        }
        csv_buf_putc(csv, '\n');
    }
    struct rec_writer *w = NULL;
    if (stream_out && (w = rec_writer_open(cc->output, &cc->wopts)) == NULL) {
        if (csv) textout_abort(&tf);
        ct_die("%s", ct_lasterr());
    }
    struct case_acc c;
    memset(&c, 0, sizeof c);
    c.sum = ct_xcalloc((size_t)P.n_items, sizeof *c.sum);
    c.cnt = ct_xcalloc((size_t)P.n_items, sizeof *c.cnt);
    struct idset *seen = idset_new();
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc;
    long n_cases = 0, n_rec = 0;
    double t0 = ct_now();
    char err[1400] = "";
    while ((rc = rec_read(rd, a, &r)) > 0) {
        n_rec++;
        char where[1200];
        snprintf(where, sizeof where, "record %ld (id %s)", r.index, r.id);
        if (rec_expect(&r, "ct.organ", 1) != 0) { snprintf(err, sizeof err, "%s: %s", where, ct_lasterr()); break; }
        if (!c.active || strcmp(c.id, r.id)) {
            flush_case(&c, &P, w, csv, argc, argv);
            if (csv && textout_flush(&tf, 0) != 0) { snprintf(err, sizeof err, "%s", ct_lasterr()); break; }
            char origin[64];
            snprintf(origin, sizeof origin, "record %ld", r.index);
            const char *first = idset_add(seen, r.id, origin, 0, NULL);
            if (first) {
                snprintf(err, sizeof err, "%s: duplicate case id (its records must be consecutive; first at %s)",
                         where, first);
                break;
            }
            snprintf(c.id, sizeof c.id, "%s", r.id);
            c.active = 1;
            c.untrained = 0;
            memset(c.sum, 0, sizeof *c.sum * (size_t)P.n_items);
            memset(c.cnt, 0, sizeof *c.cnt * (size_t)P.n_items);
            n_cases++;
        }
        const char *organ = rec_meta_str(&r, "organ");
        if (!organ) { snprintf(err, sizeof err, "%s: meta organ missing or not a str", where); break; }
        const struct rec_val *u = rec_meta_get(&r, "weights_untrained");
        if (u && u->type == RV_BOOL && u->v.b) c.untrained = 1;
        struct tn_tensor *f = rec_tensor_req(&r, "feature");
        if (!f) { snprintf(err, sizeof err, "%s: %s", where, ct_lasterr()); break; }
        if (f->dtype != TN_F32 || f->ndim != 1) {
            snprintf(err, sizeof err, "%s: feature must be f32 [dim]", where);
            break;
        }
        if (f->shape[0] == 0) {              /* an empty result (method.md §10.7): an empty cell */
            tn_arena_reset(a);
            continue;
        }
        if (f->shape[0] != P.dim) {
            snprintf(err, sizeof err, "%s: feature has %lld values, the prompt features %d", where,
                     (long long)f->shape[0], P.dim);
            break;
        }
        const float *fv = f->data;
        for (int i = 0; i < P.n_items; i++) {
            if (strcmp(P.items[i].organ, organ)) continue;
            const float *tn = P.feat + (size_t)i * 2 * P.dim;
            c.sum[i] += zs_prob_pos(fv, tn, tn + P.dim, P.dim, P.temp);
            c.cnt[i]++;
        }
        tn_arena_reset(a);
    }
    if (rc < 0) snprintf(err, sizeof err, "%s", ct_lasterr());
    if (!err[0]) {
        flush_case(&c, &P, w, csv, argc, argv);
        if (csv && textout_flush(&tf, 1) != 0) snprintf(err, sizeof err, "%s", ct_lasterr());
    }
    if (err[0]) {
        if (csv) textout_abort(&tf);
        rec_writer_abort(w);
        ct_die("%s", err);
    }
    if (w && rec_writer_close(w) != 0) {
        if (csv) textout_abort(&tf);
        ct_die("%s", ct_lasterr());
    }
    if (csv && textout_close(&tf) != 0) ct_die("%s", ct_lasterr());
    ct_log(1, "%ld records, %ld cases, %d items: %.3f s", n_rec, n_cases, P.n_items, ct_now() - t0);
    idset_free(seen);
    free(c.sum);
    free(c.cnt);
    free(P.items);
    for (int i = 0; i < P.n_items; i++) free(P.columns[i]);
    free(P.columns);
    rec_reader_close(rd);
    tn_arena_free(a);
    tn_arena_free(pa);
    return 0;
}

/* ---- metrics ---- */

struct mopts {
    const char *labels, *csv, *json, *roc, *idx_out;
    enum met_nan nan;
    int          n_boot;
    uint64_t     seed;
    double       level;
};

static const char *const met_heads[MET_N] = { "AUC", "ACC", "Spec", "Sens", "F1", "Prec", "thr" };

static void put_num(struct csv_buf *b, double v, int json) {
    char s[40];
    if (isnan(v)) { csv_buf_puts(b, json ? "null" : ""); return; }
    zs_repr(v, s);
    csv_buf_puts(b, s);
}

static void list_ids(char *out, size_t n, char **ids, int k) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < k && i < 5; i++) o += (size_t)snprintf(out + o, o < n ? n - o : 0, "%s%s", i ? ", " : "", ids[i]);
    if (k > 5 && o < n) snprintf(out + o, n - o, ", ... (%d more)", k - 5);
}

static int run_metrics(const char *probs_path, const struct mopts *mo, const struct cli_common *cc) {
    double t0 = ct_now();
    struct zs_table t;
    if (zs_table_read(probs_path, &t) != 0) ct_die("%s", ct_lasterr());
    struct zs_labels l;
    if (zs_labels_read(mo->labels, &l) != 0) ct_die("%s", ct_lasterr());
    struct zs_join j;
    if (zs_join(&t, &l, &j) != 0) ct_die("%s", ct_lasterr());
    if (j.n_cases == 0)
        ct_die("%s: no case in common with %s (ids are file names without .nii.gz)", probs_path, mo->labels);
    char ids[600];
    if (j.n_no_label) {
        list_ids(ids, sizeof ids, j.no_label, j.n_no_label);
        ct_warn("warning: %d of %d cases of %s have no labels in %s (%s); metrics on the %d common cases",
                j.n_no_label, t.n_cases, probs_path, mo->labels, ids, j.n_cases);
    }
    if (j.n_no_prob) {
        list_ids(ids, sizeof ids, j.no_prob, j.n_no_prob);
        ct_warn("warning: %d of %d cases of %s have no probabilities in %s (%s); metrics on the %d common cases",
                j.n_no_prob, l.n_cases, mo->labels, probs_path, ids, j.n_cases);
    }
    double t_read = ct_now();
    int ni = t.n_items, n = j.n_cases;
    struct met_col *cols = ct_xcalloc((size_t)ni, sizeof *cols);
    double *val = ct_xcalloc((size_t)(ni + 1) * MET_N, sizeof *val);
    int *thr_k = ct_xcalloc((size_t)ni, sizeof *thr_k);
    for (int i = 0; i < ni; i++) {
        if (met_col_prepare(&cols[i], j.p + (size_t)i * n, j.y + (size_t)i * n, n, mo->nan) != 0)
            ct_die("%s: column '%s': %s", probs_path, t.columns[i], ct_lasterr());
        met_eval(&cols[i], NULL, val + (size_t)i * MET_N, &thr_k[i]);
    }
    for (int m = 0; m < MET_N; m++) {
        double tmp[1024];
        double *v = ni <= 1024 ? tmp : ct_xmalloc(sizeof *v * (size_t)ni);
        for (int i = 0; i < ni; i++) v[i] = val[(size_t)i * MET_N + m];
        val[(size_t)ni * MET_N + m] = met_mean(v, ni);
        if (v != tmp) free(v);
    }
    double t_point = ct_now();
    struct met_boot b = { 0 };
    int32_t *idx = NULL;
    if (mo->n_boot > 0) {
        if (mo->idx_out) idx = ct_xmalloc(sizeof *idx * (size_t)mo->n_boot * (size_t)n);
        met_boot_run(&b, cols, ni, n, mo->n_boot, mo->seed, cc->threads, idx);
    }
    double t_boot = ct_now();
    /* CIs [item or mean][metric] = lo, hi, n_def */
    double *lo = ct_xcalloc((size_t)(ni + 1) * MET_N, sizeof *lo), *hi = ct_xcalloc((size_t)(ni + 1) * MET_N, sizeof *hi);
    int *nd = ct_xcalloc((size_t)(ni + 1) * MET_N, sizeof *nd);
    for (int i = 0; i <= ni; i++)
        for (int m = 0; m < MET_N; m++) {
            size_t k = (size_t)i * MET_N + m;
            if (mo->n_boot > 0) met_boot_ci(&b, i, m, mo->level, &lo[k], &hi[k], &nd[k]);
            else lo[k] = hi[k] = NAN;
        }

    /* ---- the table ---- */
    struct csv_buf tb = { 0 };
    int w = 12;
    for (int i = 0; i < ni; i++) if ((int)strlen(t.abn[i]) > w) w = (int)strlen(t.abn[i]);
    csv_buf_printf(&tb, "%d cases (%s: %d, %s: %d), %d items, NaN probabilities %s\n", n, probs_path, t.n_cases,
                   mo->labels, l.n_cases, ni, mo->nan == MET_NAN_SKIP ? "skipped (ViSD-Boost)" : "set to 0 (fVLM)");
    csv_buf_printf(&tb, "%-*s %5s %5s", w, "abnormality", "n", "pos");
    for (int m = 0; m < MET_N; m++) csv_buf_printf(&tb, " %6s", met_heads[m]);
    csv_buf_puts(&tb, "  note\n");
    for (int i = 0; i <= ni; i++) {
        const double *v = val + (size_t)i * MET_N;
        if (i < ni) csv_buf_printf(&tb, "%-*s %5d %5d", w, t.abn[i], cols[i].n, cols[i].n_pos);
        else csv_buf_printf(&tb, "%-*s %5s %5s", w, "mean", "", "");
        for (int m = 0; m < MET_N; m++) {
            if (i == ni && m == MET_THRESH) csv_buf_printf(&tb, " %6s", "");
            else if (isnan(v[m])) csv_buf_printf(&tb, " %6s", "undef");
            else csv_buf_printf(&tb, " %6.3f", v[m]);
        }
        csv_buf_puts(&tb, " ");
        if (i < ni) {
            if (cols[i].n_pos == 0 || cols[i].n_neg == 0)
                csv_buf_printf(&tb, " single class (no %s): AUC undefined", cols[i].n_pos ? "negatives" : "positives");
            if (cols[i].n_nan)
                csv_buf_printf(&tb, " %d NaN %s", cols[i].n_nan, mo->nan == MET_NAN_SKIP ? "skipped" : "set to 0");
        } else {
            int und = 0;
            for (int m = 0; m < MET_THRESH; m++) und |= isnan(v[m]);
            csv_buf_puts(&tb, und ? " unweighted mean over items (undef when an item is)" : " unweighted mean over items");
        }
        csv_buf_puts(&tb, "\n");
    }
    if (mo->n_boot > 0) {
        csv_buf_printf(&tb, "\n%g%% bootstrap percentile intervals (%d resamples, seed %llu)\n", mo->level * 100,
                       mo->n_boot, (unsigned long long)mo->seed);
        csv_buf_printf(&tb, "%-*s", w, "abnormality");
        for (int m = 0; m < MET_THRESH; m++) csv_buf_printf(&tb, " %13s", met_heads[m]);
        csv_buf_puts(&tb, "\n");
        for (int i = 0; i <= ni; i++) {
            csv_buf_printf(&tb, "%-*s", w, i < ni ? t.abn[i] : "mean");
            for (int m = 0; m < MET_THRESH; m++) {
                size_t k = (size_t)i * MET_N + m;
                if (isnan(lo[k])) csv_buf_printf(&tb, " %13s", "undef");
                else csv_buf_printf(&tb, "  %5.3f-%5.3f", lo[k], hi[k]);
            }
            csv_buf_puts(&tb, "\n");
        }
    }

    /* ---- CSV ---- */
    struct csv_buf mc = { 0 };
    if (mo->csv) {
        csv_buf_puts(&mc, "item,abnormality,n,n_pos,n_nan");
        for (int m = 0; m < MET_N; m++) csv_buf_printf(&mc, ",%s,%s_lo,%s_hi", met_names[m], met_names[m], met_names[m]);
        csv_buf_puts(&mc, "\n");
        for (int i = 0; i <= ni; i++) {
            if (i < ni) {
                csv_put_field(&mc, t.columns[i], strlen(t.columns[i]));
                csv_buf_putc(&mc, ',');
                csv_put_field(&mc, t.abn[i], strlen(t.abn[i]));
                csv_buf_printf(&mc, ",%d,%d,%d", cols[i].n, cols[i].n_pos, cols[i].n_nan);
            } else {
                csv_buf_puts(&mc, "mean,mean,,,");
            }
            for (int m = 0; m < MET_N; m++) {
                size_t k = (size_t)i * MET_N + m;
                csv_buf_putc(&mc, ',');
                if (!(i == ni && m == MET_THRESH)) put_num(&mc, val[k], 0);
                csv_buf_putc(&mc, ',');
                put_num(&mc, lo[k], 0);
                csv_buf_putc(&mc, ',');
                put_num(&mc, hi[k], 0);
            }
            csv_buf_puts(&mc, "\n");
        }
    }

    /* ---- JSON ---- */
    struct csv_buf js = { 0 };
    if (mo->json) {
        csv_buf_puts(&js, "{\"probs\": ");
        csv_put_json_str(&js, probs_path, strlen(probs_path));
        csv_buf_puts(&js, ", \"labels\": ");
        csv_put_json_str(&js, mo->labels, strlen(mo->labels));
        csv_buf_printf(&js, ", \"n_cases\": %d, \"nan\": \"%s\", \"bootstrap\": {\"resamples\": %d, \"seed\": %llu, "
                       "\"level\": ", n, mo->nan == MET_NAN_SKIP ? "skip" : "zero", mo->n_boot,
                       (unsigned long long)mo->seed);
        put_num(&js, mo->level, 1);
        csv_buf_puts(&js, ", \"rng\": \"splitmix64\"},\n \"items\": [");
        for (int i = 0; i <= ni; i++) {
            if (i == ni) csv_buf_puts(&js, "],\n \"mean\": {");
            else {
                csv_buf_puts(&js, i ? ",\n  {" : "\n  {");
                csv_buf_puts(&js, "\"column\": ");
                csv_put_json_str(&js, t.columns[i], strlen(t.columns[i]));
                csv_buf_puts(&js, ", \"abnormality\": ");
                csv_put_json_str(&js, t.abn[i], strlen(t.abn[i]));
                csv_buf_printf(&js, ", \"n\": %d, \"n_pos\": %d, \"n_nan\": %d, \"single_class\": %s, "
                               "\"threshold_index\": %d, ", cols[i].n, cols[i].n_pos, cols[i].n_nan,
                               (cols[i].n_pos == 0 || cols[i].n_neg == 0) ? "true" : "false", thr_k[i]);
            }
            csv_buf_puts(&js, "\"metrics\": {");
            for (int m = 0; m < MET_N; m++) {
                csv_buf_printf(&js, "%s\"%s\": ", m ? ", " : "", met_names[m]);
                put_num(&js, (i == ni && m == MET_THRESH) ? NAN : val[(size_t)i * MET_N + m], 1);
            }
            csv_buf_puts(&js, "}, \"ci\": {");
            for (int m = 0; m < MET_N; m++) {
                size_t k = (size_t)i * MET_N + m;
                csv_buf_printf(&js, "%s\"%s\": [", m ? ", " : "", met_names[m]);
                put_num(&js, lo[k], 1);
                csv_buf_puts(&js, ", ");
                put_num(&js, hi[k], 1);
                csv_buf_printf(&js, ", %d]", nd[k]);
            }
            csv_buf_puts(&js, "}}");
        }
        csv_buf_puts(&js, ",\n \"no_labels\": [");
        for (int i = 0; i < j.n_no_label; i++) {
            if (i) csv_buf_puts(&js, ", ");
            csv_put_json_str(&js, j.no_label[i], strlen(j.no_label[i]));
        }
        csv_buf_puts(&js, "],\n \"no_probabilities\": [");
        for (int i = 0; i < j.n_no_prob; i++) {
            if (i) csv_buf_puts(&js, ", ");
            csv_put_json_str(&js, j.no_prob[i], strlen(j.no_prob[i]));
        }
        csv_buf_puts(&js, "]}\n");
    }

    /* ---- ROC ---- */
    struct csv_buf sv = { 0 };
    if (mo->roc) {
        struct svg_roc_panel *pn = ct_xcalloc((size_t)ni, sizeof *pn);
        double *buf = ct_xmalloc(sizeof *buf * 3 * ((size_t)n + 1) * (size_t)ni);
        char **sub = ct_xcalloc((size_t)ni, sizeof *sub);
        for (int i = 0; i < ni; i++) {
            double *fpr = buf + 3 * ((size_t)n + 1) * i, *tpr = fpr + n + 1, *th = tpr + n + 1;
            const double *v = val + (size_t)i * MET_N;
            struct svg_roc_panel *p = &pn[i];
            p->title = t.abn[i];
            struct csv_buf s = { 0 };
            const char *organ_end = strchr(t.columns[i], '_');
            csv_buf_printf(&s, "%.*s, n = %d, %d positive", (int)(organ_end - t.columns[i]), t.columns[i], cols[i].n,
                           cols[i].n_pos);
            sub[i] = s.p;
            p->subtitle = sub[i];
            p->n = met_roc(&cols[i], fpr, tpr, th);
            p->fpr = fpr;
            p->tpr = tpr;
            p->auc = v[MET_AUC];
            p->auc_lo = lo[(size_t)i * MET_N + MET_AUC];
            p->auc_hi = hi[(size_t)i * MET_N + MET_AUC];
            p->thr = v[MET_THRESH];
            long tp, fp, tn, fn;
            met_counts(&cols[i], thr_k[i], &tp, &fp, &tn, &fn);
            p->thr_fpr = (fp + tn) ? (double)fp / (fp + tn) : 0;
            p->thr_tpr = (tp + fn) ? (double)tp / (tp + fn) : 0;
            p->note = cols[i].n_pos == 0 ? "single class: no positives" : "single class: no negatives";
        }
        char title[600];
        snprintf(title, sizeof title, "ROC: %s (%d cases; red dot: the chosen threshold t)", probs_path, n);
        svg_roc_grid(&sv, pn, ni, ni < 4 ? ni : 4, title);
        for (int i = 0; i < ni; i++) free(sub[i]);
        free(sub);
        free(buf);
        free(pn);
    }
    struct csv_buf ib = { 0 };
    if (idx) {
        for (int r = 0; r < mo->n_boot; r++)
            for (int i = 0; i < n; i++) csv_buf_printf(&ib, "%d%c", idx[(size_t)r * n + i], i == n - 1 ? '\n' : ' ');
    }

    /* ---- write everything; commit (rename into place) only when every write worked ---- */
    /* the table last: when it goes to stdout, nothing reaches stdout unless every file was written */
    const char *paths[5] = { mo->csv, mo->json, mo->roc, mo->idx_out, cc->output };
    struct csv_buf *bufs[5] = { &mc, &js, &sv, &ib, &tb };
    struct textout to[5];
    int n_open = 0, rc = 0;
    for (int i = 0; i < 5 && !rc; i++) {
        if (!paths[i]) continue;
        if ((rc = textout_open(&to[i], paths[i])) != 0) break;
        n_open = i + 1;
        to[i].buf = *bufs[i];                        /* the text moves into the output */
        memset(bufs[i], 0, sizeof *bufs[i]);
        rc = textout_flush(&to[i], 1);
    }
    for (int i = 0; i < n_open && !rc; i++)
        if (paths[i]) rc = textout_close(&to[i]);
    if (rc) {
        char e[1024];
        snprintf(e, sizeof e, "%s", ct_lasterr());
        for (int i = 0; i < n_open; i++)
            if (paths[i]) textout_abort(&to[i]);
        ct_die("%s", e);
    }
    ct_log(1, "read %.3f s, metrics %.3f s, bootstrap (%d) %.3f s, total %.3f s, peak RSS %ld kB", t_read - t0,
           t_point - t_read, mo->n_boot, t_boot - t_point, ct_now() - t0, ct_peak_rss_kb());
    csv_buf_free(&tb); csv_buf_free(&mc); csv_buf_free(&js); csv_buf_free(&sv); csv_buf_free(&ib);
    for (int i = 0; i < ni; i++) met_col_free(&cols[i]);
    free(cols); free(val); free(thr_k); free(lo); free(hi); free(nd); free(idx);
    met_boot_free(&b);
    zs_join_free(&j);
    zs_labels_free(&l);
    zs_table_free(&t);
    return 0;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    enum { OPT_PROMPTS = 256, OPT_ABN, OPT_CSV, OPT_METRICS, OPT_LABELS, OPT_NAN, OPT_SEED, OPT_CI, OPT_JSON, OPT_ROC,
           OPT_IDX };
    static const struct option longopts[] = {
        { "prompts", required_argument, 0, OPT_PROMPTS }, { "abnormalities", required_argument, 0, OPT_ABN },
        { "csv", required_argument, 0, OPT_CSV },         { "metrics", no_argument, 0, OPT_METRICS },
        { "labels", required_argument, 0, OPT_LABELS },   { "nan", required_argument, 0, OPT_NAN },
        { "bootstrap", required_argument, 0, 'B' },       { "seed", required_argument, 0, OPT_SEED },
        { "ci", required_argument, 0, OPT_CI },           { "json", required_argument, 0, OPT_JSON },
        { "roc", required_argument, 0, OPT_ROC },         { "bootstrap-indices", required_argument, 0, OPT_IDX },
        CLI_COMMON_LONGOPTS,                              { 0, 0, 0, 0 },
    };
    struct cli_common cc;
    cli_common_init(&cc);
    struct mopts mo = { .nan = MET_NAN_SKIP, .n_boot = 1000, .seed = 0, .level = 0.95 };
    const char *prompts = NULL, *abn = NULL, *csv = NULL;
    int metrics = 0, ch;
    long v;
    double d;
    while ((ch = getopt_long(argc, argv, "B:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_PROMPTS: prompts = optarg; break;
        case OPT_ABN: abn = optarg; break;
        case OPT_CSV: csv = optarg; break;
        case OPT_METRICS: metrics = 1; break;
        case OPT_LABELS: mo.labels = optarg; break;
        case OPT_NAN:
            if (!strcmp(optarg, "skip")) mo.nan = MET_NAN_SKIP;
            else if (!strcmp(optarg, "zero")) mo.nan = MET_NAN_ZERO;
            else ct_usage_die("--nan: expected skip or zero, got '%s'", optarg);
            break;
        case 'B':
            if (ct_parse_long(optarg, &v) != 0 || v < 0 || v > 10000000)
                ct_usage_die("--bootstrap: expected a count from 0 to 10000000, got '%s'", optarg);
            mo.n_boot = (int)v;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                ct_usage_die("--seed: expected a non-negative integer, got '%s'", optarg);
            mo.seed = s;
            break;
        }
        case OPT_CI:
            if (ct_parse_double(optarg, &d) != 0 || !(d > 0 && d < 1))
                ct_usage_die("--ci: expected a level between 0 and 1 (0.95), got '%s'", optarg);
            mo.level = d;
            break;
        case OPT_JSON: mo.json = optarg; break;
        case OPT_ROC: mo.roc = optarg; break;
        case OPT_IDX: mo.idx_out = optarg; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    int nin = argc - optind;
    if (metrics) {
        if (prompts || abn) ct_usage_die("--prompts and --abnormalities are for the probability mode, not --metrics");
        if (!mo.labels) ct_usage_die("--metrics needs --labels FILE");
        if (nin != 1) ct_usage_die("--metrics reads one probability file (a CSV or a ct.probs/1 stream), got %d", nin);
        if (mo.idx_out && mo.n_boot == 0) ct_usage_die("--bootstrap-indices needs --bootstrap N > 0");
        mo.csv = csv;
        return run_metrics(argv[optind], &mo, &cc);
    }
    if (mo.labels || mo.json || mo.roc || mo.idx_out)
        ct_usage_die("--labels, --json, --roc and --bootstrap-indices need --metrics");
    if (!prompts) ct_usage_die("missing --prompts FILE (the ct.prompts/1 record of text-encode)");
    return run_probs(prompts, abn, csv, &cc, nin, argv + optind, argc, argv);
}
