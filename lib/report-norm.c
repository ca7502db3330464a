/*
 * report-norm.c - one parsed report (or LLM answer wrapper) into struct
 * report_in: organ aliases, key variants, texts joined and trimmed, and every
 * problem collected as a note (normalised / warning / error), so that a
 * validator can list them all at once.  See report.h.
 */
#include "report.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ct.h"

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- notes ---- */

void report_note_add(struct report_in *in, struct tn_arena *a, enum report_sev sev, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (in->n_notes == in->cap_notes) {
        int cap = in->cap_notes ? 2 * in->cap_notes : 8;
        struct report_note *v = tn_arena_alloc(a, (size_t)cap * sizeof *v);
        if (in->n_notes) memcpy(v, in->notes, (size_t)in->n_notes * sizeof *v);
        in->notes = v;
        in->cap_notes = cap;
    }
    in->notes[in->n_notes].sev = sev;
    in->notes[in->n_notes].msg = tn_arena_strdup(a, msg);
    in->n_notes++;
    if (sev == REPORT_FIX) in->n_fix++;
    else if (sev == REPORT_WARN) in->n_warn++;
    else in->n_error++;
}

const char *report_first_error(const struct report_in *in) {
    for (int i = 0; i < in->n_notes; i++)
        if (in->notes[i].sev == REPORT_ERROR) return in->notes[i].msg;
    return "";
}

/* " (line L:C)" for nodes with positions */
static const char *at(const struct report_node *n, char *buf, size_t sz) {
    if (n && n->line) snprintf(buf, sz, " (at %d:%d)", n->line, n->col);
    else buf[0] = 0;
    return buf;
}

/* ---- normalisation ---- */

enum { K_SCAN, K_FINDINGS, K_IMPRESSION, K_ANSWER, K_COUNT };
static const char *const key_canon[K_COUNT] = { "scan_id", "findings", "impression", "answer" };
static const struct {
    const char *form;                        /* key form */
    int         role;
} key_forms[] = {
    { "scan id", K_SCAN },           { "scanid", K_SCAN },         { "scan", K_SCAN },
    { "id", K_SCAN },                { "volume", K_SCAN },         { "volumename", K_SCAN },
    { "volume name", K_SCAN },       { "findings", K_FINDINGS },   { "finding", K_FINDINGS },
    { "desc", K_FINDINGS },          { "description", K_FINDINGS }, { "impression", K_IMPRESSION },
    { "impressions", K_IMPRESSION }, { "conclusion", K_IMPRESSION }, { "conclusions", K_IMPRESSION },
    { "conc", K_IMPRESSION },        { "answer", K_ANSWER },       { "response", K_ANSWER },
};

static int key_role(const char *key) {
    char k[64];
    if (strlen(key) >= sizeof k - 1) return -1;
    org_key_norm(key, k, sizeof k);
    for (int i = 0; i < NELEM(key_forms); i++)
        if (!strcmp(k, key_forms[i].form)) return key_forms[i].role;
    return -1;
}

/* 1 when every root is a map holding at least one report key (findings, scan_id, ...). */
static int report_maps(struct report_node **roots, int n) {
    for (int k = 0; k < n; k++) {
        int known = 0;
        if (roots[k]->type != RN_MAP) return 0;
        for (int i = 0; i < roots[k]->n && !known; i++) known = key_role(roots[k]->keys[i]) >= 0;
        if (!known) return 0;
    }
    return n > 0;
}

/* An LLM answer: JSON, in a code fence or cut out of prose.  When that fails
 * and the answer has no code fence, YAML before refusing: a bare
 * "findings:\n  lung: ..." is a common answer shape.  The YAML reading is
 * taken only when it gives report maps (so prose stays an error), with
 * REPORT_F_YAML in *flags; otherwise the JSON error stands. */
static int parse_answer(const char *s, size_t n, struct tn_arena *a, struct report_node ***roots, int *nr,
                        int *flags) {
    if (report_parse_text(s, n, "answer", 1, REPORT_JSON, a, roots, nr, flags) == 0) return 0;
    if (*flags & REPORT_F_FENCE) return -1;
    char json_err[1024];
    snprintf(json_err, sizeof json_err, "%s", ct_lasterr());
    struct report_node **yroots;
    int yn, yflags;
    if (report_parse_text(s, n, "answer", 1, REPORT_YAML, a, &yroots, &yn, &yflags) == 0 && report_maps(yroots, yn)) {
        *roots = yroots;
        *nr = yn;
        *flags = yflags | REPORT_F_YAML;
        return 0;
    }
    return ct_seterr("%s", json_err);
}

static const char *const placeholders[] = {
    "none", "n/a", "na", "nil", "null", "normal", "not mentioned", "no abnormality", "no abnormalities",
    "unremarkable", "-", "no", "nothing", "not applicable", "no findings",
};

static int is_placeholder(const char *s, size_t n) {
    char k[32];
    if (n >= sizeof k) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) k[m++] = (char)tolower((unsigned char)s[i]);
    while (m && (k[m - 1] == '.' || k[m - 1] == ' ')) m--;
    k[m] = 0;
    for (int i = 0; i < NELEM(placeholders); i++)
        if (!strcmp(k, placeholders[i])) return 1;
    return 0;
}

static int is_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A text value of field.organ into out and out_n (NULL = absent).  0, or -1 after an error note. */
static int take_text(struct report_in *in, struct tn_arena *a, const char *field, const char *organ,
                     const struct report_node *v, int options, const char **out, size_t *out_n) {
    char pos[48];
    *out = NULL;
    *out_n = 0;
    int fvlm = options & REPORT_N_FVLM;
    if (v->type == RN_STR) {
        const char *s = v->s;
        size_t n = v->len;
        if (!fvlm) {
            while (n && is_ws((unsigned char)*s)) s++, n--;
            while (n && is_ws((unsigned char)s[n - 1])) n--;
            if (n != v->len) report_note_add(in, a, REPORT_FIX, "surrounding whitespace removed from %s.%s", field, organ);
            if (n == 0)
                report_note_add(in, a, REPORT_WARN, "%s.%s is empty (leave the organ out instead)", field, organ);
            else if (!strcmp(field, "impression") && is_placeholder(s, n))
                report_note_add(in, a, REPORT_WARN,
                                "impression.%s is '%.*s': any impression text makes the organ abnormal", organ, (int)n,
                                s);
        }
        *out = n == v->len ? s : tn_arena_strndup(a, s, n);   /* NUL-terminated either way */
        *out_n = n;
        return 0;
    }
    if (!fvlm && v->type == RN_NULL) {
        report_note_add(in, a, REPORT_FIX, "%s.%s is null: read as absent", field, organ);
        return 0;
    }
    if (!fvlm && v->type == RN_LIST) {
        struct csv_buf b = { 0 };
        for (int i = 0; i < v->n; i++) {
            const struct report_node *it = v->items[i];
            if (it->type != RN_STR) {
                csv_buf_free(&b);
                report_note_add(in, a, REPORT_ERROR, "%s.%s: item %d of the list is %s, expected text%s", field, organ,
                                i, report_ntype_name(it->type), at(it, pos, sizeof pos));
                return -1;
            }
            const char *s = it->s;
            size_t n = it->len;
            while (n && is_ws((unsigned char)*s)) s++, n--;
            while (n && is_ws((unsigned char)s[n - 1])) n--;
            if (!n) continue;
            if (b.n) csv_buf_putc(&b, ' ');
            csv_buf_put(&b, s, n);
        }
        report_note_add(in, a, REPORT_FIX, "%s.%s is a list of %d strings: joined with spaces", field, organ, v->n);
        *out = b.n ? tn_arena_strndup(a, b.p, b.n) : NULL;
        *out_n = b.n;
        csv_buf_free(&b);
        return 0;
    }
    report_note_add(in, a, REPORT_ERROR, "%s.%s is %s, expected text%s", field, organ, report_ntype_name(v->type),
                    at(v, pos, sizeof pos));
    return -1;
}

/* One organ key of a findings/impression map: organ index, -1 to skip (ignored or error noted). */
static int take_organ(const struct org_set *o, struct report_in *in, struct tn_arena *a, const char *field,
                      const char *key, const struct report_node *v, const char **seen) {
    enum org_match how;
    char pos[48];
    int k = org_find(o, key, &how);
    switch (how) {
    case ORG_EXACT: break;
    case ORG_CASE: report_note_add(in, a, REPORT_FIX, "organ key '%.80s' read as %s", key, o->names[k]); break;
    case ORG_ALIAS:
        report_note_add(in, a, REPORT_FIX, "organ key '%.80s' read as %s (alias)", key, o->names[k]);
        break;
    case ORG_IGNORED: report_note_add(in, a, REPORT_FIX, "organ key '%.80s' ignored (organ ignore list)", key); return -1;
    case ORG_UNKNOWN: {
        char known[256] = "";
        for (int i = 0; i < o->n; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", o->names[i]);
        report_note_add(in, a, REPORT_ERROR,
                        "%s: unknown organ '%.80s'%s (organs: %s; add it to aliases or ignore in the organ YAML)", field,
                        key, at(v, pos, sizeof pos), known);
        return -1;
    }
    }
    if (seen[k]) {
        report_note_add(in, a, REPORT_ERROR, "%s: organ %s given twice (as '%.60s' and '%.60s')", field, o->names[k],
                        seen[k], key);
        return -1;
    }
    seen[k] = key;
    return k;
}

/* findings or impression map into in->desc / in->conc */
static void take_field(const struct org_set *o, struct report_in *in, struct tn_arena *a, int role,
                       const struct report_node *v, int options) {
    const char *field = role == K_FINDINGS ? "findings" : "impression";
    char pos[48];
    if (v->type != RN_MAP) {
        if (v->type == RN_NULL && !(options & REPORT_N_FVLM)) {
            report_note_add(in, a, REPORT_FIX, "%s is null: read as no organ", field);
            return;
        }
        report_note_add(in, a, REPORT_ERROR, "%s is %s, expected a map from organ to text%s", field,
                        report_ntype_name(v->type), at(v, pos, sizeof pos));
        return;
    }
    const char *seen[ORG_MAX] = { 0 };
    for (int i = 0; i < v->n; i++) {
        int k = take_organ(o, in, a, field, v->keys[i], v->items[i], seen);
        if (k < 0) continue;
        const char **dst = role == K_FINDINGS ? &in->desc[k] : &in->conc[k];
        size_t *dst_n = role == K_FINDINGS ? &in->desc_n[k] : &in->conc_n[k];
        take_text(in, a, field, o->names[k], v->items[i], options, dst, dst_n);
    }
}

/* Validate and set the scan id (after mapping a volume name); where says where
 * it came from for messages ("", " inside the answer", " from the file name"). */
static void set_scan_id(struct report_in *in, struct tn_arena *a, const char *id, size_t n, const char *where) {
    char buf[520], raw[520];
    if (n == 0 || n > 512) {
        report_note_add(in, a, REPORT_ERROR, "scan id%s is %s", where, n ? "longer than 512 bytes" : "empty");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f) {
            report_note_add(in, a, REPORT_ERROR, "scan id%s holds a control character", where);
            return;
        }
    memcpy(raw, id, n);
    raw[n] = 0;
    int mapped = report_scan_id(raw, buf, sizeof buf);
    if (!buf[0]) {
        report_note_add(in, a, REPORT_ERROR, "scan id '%.80s'%s has no name part", raw, where);
        return;
    }
    if (in->scan_id && strcmp(in->scan_id, buf)) {
        report_note_add(in, a, REPORT_ERROR, "scan id '%.80s'%s differs from '%s' given with the answer", raw, where,
                        in->scan_id);
        return;
    }
    if (mapped) report_note_add(in, a, REPORT_FIX, "scan id '%.80s'%s is a volume name: read as scan %s", raw, where, buf);
    else if (strcmp(buf, raw)) report_note_add(in, a, REPORT_FIX, "scan id '%.80s'%s read as %s", raw, where, buf);
    in->scan_id = tn_arena_strdup(a, buf);
}

static int normalise_map(const struct org_set *o, const struct report_node *root, int options,
                         struct tn_arena *a, struct report_in *in, int depth) {
    char pos[48];
    if (root->type != RN_MAP) {
        report_note_add(in, a, REPORT_ERROR, "expected a map (a JSON object) with findings and impression, got %s%s",
                        report_ntype_name(root->type), at(root, pos, sizeof pos));
        return -1;
    }
    int slot[K_COUNT];
    for (int r = 0; r < K_COUNT; r++) slot[r] = -1;
    int organ_major = 0;
    for (int i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        int r = key_role(key);
        if (r < 0) continue;
        if (slot[r] >= 0) {
            report_note_add(in, a, REPORT_ERROR, "both '%.60s' and '%.60s' given for %s", root->keys[slot[r]], key,
                            key_canon[r]);
            return -1;
        }
        slot[r] = i;
        if (strcmp(key, key_canon[r])) report_note_add(in, a, REPORT_FIX, "key '%.60s' read as %s", key, key_canon[r]);
    }
    /* organ-major layout: {"lung": {"findings": ..., "impression": ...}, ...} */
    if (slot[K_FINDINGS] < 0 && slot[K_IMPRESSION] < 0 && slot[K_ANSWER] < 0) {
        for (int i = 0; i < root->n && !organ_major; i++) {
            const struct report_node *v = root->items[i];
            if (key_role(root->keys[i]) >= 0 || v->type != RN_MAP) continue;
            for (int k = 0; k < v->n; k++) {
                int r = key_role(v->keys[k]);
                if (r == K_FINDINGS || r == K_IMPRESSION) organ_major = 1;
            }
        }
    }
    /* scan id */
    if (slot[K_SCAN] >= 0) {
        const struct report_node *v = root->items[slot[K_SCAN]];
        if (v->type != RN_STR)
            report_note_add(in, a, REPORT_ERROR, "scan_id is %s, expected text%s", report_ntype_name(v->type),
                            at(v, pos, sizeof pos));
        else
            set_scan_id(in, a, v->s, v->len, depth ? " inside the answer" : "");
    }
    if (slot[K_ANSWER] >= 0) {
        const struct report_node *v = root->items[slot[K_ANSWER]];
        if (slot[K_FINDINGS] >= 0 || slot[K_IMPRESSION] >= 0) {
            report_note_add(in, a, REPORT_ERROR, "both an answer and findings/impression given");
            return -1;
        }
        if (depth > 0) {
            report_note_add(in, a, REPORT_ERROR, "an answer inside an answer");
            return -1;
        }
        for (int i = 0; i < root->n; i++)
            if (key_role(root->keys[i]) < 0)
                report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
        const struct report_node *inner = v;
        if (v->type == RN_STR) {
            struct report_node **roots;
            int nr, flags;
            if (parse_answer(v->s, v->len, a, &roots, &nr, &flags) != 0) {
                report_note_add(in, a, REPORT_ERROR, "%s", ct_lasterr());
                return -1;
            }
            if (nr != 1) {
                report_note_add(in, a, REPORT_ERROR, "the answer holds %d reports, expected 1", nr);
                return -1;
            }
            if (flags & REPORT_F_BOM) report_note_add(in, a, REPORT_FIX, "byte-order mark removed from the answer");
            if (flags & REPORT_F_FENCE) report_note_add(in, a, REPORT_FIX, "Markdown code fence removed from the answer");
            if (flags & REPORT_F_YAML) report_note_add(in, a, REPORT_FIX, "answer read as YAML (it is not JSON)");
            if (flags & REPORT_F_BRACE)
                report_note_add(in, a, REPORT_FIX, "JSON object cut out of the text around it in the answer");
            else if (flags & REPORT_F_PROSE)
                report_note_add(in, a, REPORT_FIX, "text outside the code block of the answer dropped");
            inner = roots[0];
        } else if (v->type != RN_MAP) {
            report_note_add(in, a, REPORT_ERROR, "answer is %s, expected the LLM's text or a map",
                            report_ntype_name(v->type));
            return -1;
        }
        return normalise_map(o, inner, options, a, in, depth + 1);
    }
    if (organ_major) {
        report_note_add(in, a, REPORT_FIX, "organ-major layout (organ -> findings/impression) read");
        const char *seen_f[ORG_MAX] = { 0 };
        for (int i = 0; i < root->n; i++) {
            const struct report_node *v = root->items[i];
            if (key_role(root->keys[i]) >= 0) continue;
            if (v->type != RN_MAP) {
                report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
                continue;
            }
            int k = take_organ(o, in, a, "report", root->keys[i], v, seen_f);
            if (k < 0) continue;
            for (int j = 0; j < v->n; j++) {
                int r = key_role(v->keys[j]);
                if (r != K_FINDINGS && r != K_IMPRESSION) {
                    report_note_add(in, a, REPORT_ERROR, "%s: unexpected key '%.60s' (expected findings, impression)",
                                    o->names[k], v->keys[j]);
                    continue;
                }
                const char **dst = r == K_FINDINGS ? &in->desc[k] : &in->conc[k];
                size_t *dst_n = r == K_FINDINGS ? &in->desc_n[k] : &in->conc_n[k];
                take_text(in, a, key_canon[r], o->names[k], v->items[j], options, dst, dst_n);
            }
        }
        return in->n_error ? -1 : 0;
    }
    for (int i = 0; i < root->n; i++)
        if (key_role(root->keys[i]) < 0) report_note_add(in, a, REPORT_FIX, "key '%.60s' ignored", root->keys[i]);
    if (slot[K_FINDINGS] < 0) report_note_add(in, a, REPORT_ERROR, "missing field 'findings'");
    else take_field(o, in, a, K_FINDINGS, root->items[slot[K_FINDINGS]], options);
    if (slot[K_IMPRESSION] < 0) report_note_add(in, a, REPORT_ERROR, "missing field 'impression'");
    else take_field(o, in, a, K_IMPRESSION, root->items[slot[K_IMPRESSION]], options);
    return in->n_error ? -1 : 0;
}

int report_normalise(const struct org_set *o, const struct report_node *root, int parse_flags,
                     const char *id_hint, int options, struct tn_arena *a, struct report_in *in) {
    memset(in, 0, sizeof *in);
    if (parse_flags & REPORT_F_BOM) report_note_add(in, a, REPORT_FIX, "byte-order mark removed");
    if (parse_flags & REPORT_F_FENCE) report_note_add(in, a, REPORT_FIX, "Markdown code fence removed");
    if (parse_flags & REPORT_F_BRACE) report_note_add(in, a, REPORT_FIX, "JSON object cut out of the text around it");
    else if (parse_flags & REPORT_F_PROSE) report_note_add(in, a, REPORT_FIX, "text outside the code block dropped");
    normalise_map(o, root, options, a, in, 0);
    if (!in->scan_id && id_hint) set_scan_id(in, a, id_hint, strlen(id_hint), " from the file name");
    if (!in->scan_id) report_note_add(in, a, REPORT_ERROR, "missing field 'scan_id'");
    return in->n_error ? -1 : 0;
}

int report_from_fvlm(const struct org_set *o, const char *scan_id, const struct report_node *desc,
                     const struct report_node *conc, struct tn_arena *a, struct report_in *in) {
    memset(in, 0, sizeof *in);
    set_scan_id(in, a, scan_id, strlen(scan_id), "");
    if (!in->scan_id) return -1;
    if (!desc) report_note_add(in, a, REPORT_FIX, "no entry in the findings file (desc_info)");
    else take_field(o, in, a, K_FINDINGS, desc, REPORT_N_FVLM);
    if (!conc) report_note_add(in, a, REPORT_FIX, "no entry in the impression file (conc_info): every organ normal by the rule");
    else take_field(o, in, a, K_IMPRESSION, conc, REPORT_N_FVLM);
    return in->n_error ? -1 : 0;
}

