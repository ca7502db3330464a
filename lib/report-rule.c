/*
 * report-rule.c - fVLM's impression-based label rule (method.md §6.1), volume
 * and scan ids, and the columns of CT-RATE's label and report CSVs (§6.3).
 * See report.h.
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

/* ---- volume names and scan ids ---- */

void report_volume_id(const char *name, char *out, size_t n) { ct_case_id(name, out, n); }

/* p points at one or more digits followed by end or '_': their length, else 0 */
static size_t digits(const char *p) {
    size_t k = 0;
    while (p[k] >= '0' && p[k] <= '9') k++;
    return k;
}

int report_scan_id(const char *name, char *out, size_t n) {
    report_volume_id(name, out, n);
    const char *p = out;
    if (!strncmp(p, "train_", 6)) p += 6;
    else if (!strncmp(p, "valid_", 6)) p += 6;
    else if (!strncmp(p, "test_", 5)) p += 5;
    else return 0;
    size_t k = digits(p);                    /* patient */
    if (!k || p[k] != '_') return 0;
    p += k + 1;
    k = 0;
    while (p[k] >= 'a' && p[k] <= 'z') k++;  /* scan letter(s) */
    if (!k || p[k] != '_') return 0;
    char *cut = (char *)p + k;
    p += k + 1;
    k = digits(p);                           /* reconstruction */
    if (!k || p[k]) return 0;
    *cut = 0;
    return 1;
}

/* ---- the rule (method.md §6.1, fVLM caption_datasets.py) ---- */

int report_rule(const char *organ, const char *desc, size_t desc_n, const char *conc, size_t conc_n, int flags,
                struct csv_buf *text) {
    int released = flags & REPORT_RELEASED_EMPTY;
    text->n = 0;
    char normal[320];                        /* organ names are < 256 bytes */
    int k = snprintf(normal, sizeof normal, "%s shows no significant abnormalities.", organ);
    CT_ASSERT(k > 0 && (size_t)k < sizeof normal);
    if (conc && (conc_n > 0 || released)) {
        csv_buf_put(text, conc, conc_n);
        if (conc_n == 0 || conc[conc_n - 1] != '.') csv_buf_putc(text, '.');
    } else {
        csv_buf_put(text, normal, (size_t)k);
    }
    if (desc && (desc_n > 0 || released)) {
        csv_buf_put(text, desc, desc_n);
        if (desc_n == 0 || desc[desc_n - 1] != '.') csv_buf_putc(text, '.');
    }
    size_t w = 0;                            /* remove " ' ( ) in place */
    for (size_t r = 0; r < text->n; r++) {
        char c = text->p[r];
        if (c == '"' || c == '\'' || c == '(' || c == ')') continue;
        text->p[w++] = c;
    }
    text->n = w;
    if (text->p) text->p[w] = 0;
    return !(w >= (size_t)k && !memcmp(text->p, normal, (size_t)k));
}

void report_apply(const struct org_set *o, const struct report_in *in, int flags, struct tn_arena *a,
                  struct report_out *out) {
    memset(out, 0, sizeof *out);
    out->scan_id = in->scan_id;
    out->n = o->n;
    out->organs = (const char **)o->names;
    struct csv_buf b = { 0 };
    for (int i = 0; i < o->n; i++) {
        out->abnormal[i] = report_rule(o->names[i], in->desc[i], in->desc_n[i], in->conc[i], in->conc_n[i], flags, &b);
        out->text[i] = tn_arena_strndup(a, b.p ? b.p : "", b.n);
        out->text_n[i] = b.n;
    }
    csv_buf_free(&b);
}

/* ---- CT-RATE CSV columns ---- */

int report_label_header(const struct org_abn *t, const struct csv_row *row, const char *name,
                        struct report_label_cols *c) {
    c->n_cols = row->n;
    c->volume = -1;
    for (int i = 0; i < t->n; i++) c->abn[i] = -1;
    for (int f = 0; f < row->n; f++) {
        const char *h = row->fields[f];
        int hit = 0;
        if (!strcmp(h, "VolumeName")) {
            if (c->volume >= 0) return ct_seterr("%s:%ld: column 'VolumeName' given twice", name, row->line);
            c->volume = f;
            continue;
        }
        for (int i = 0; i < t->n && !hit; i++)
            if (!strcmp(h, t->names[i])) {
                if (c->abn[i] >= 0) return ct_seterr("%s:%ld: column '%s' given twice", name, row->line, h);
                c->abn[i] = f;
                hit = 1;
            }
        if (!hit)
            return ct_seterr("%s:%ld: unexpected column '%.80s' (expected VolumeName and the %d abnormalities)", name,
                             row->line, h, t->n);
    }
    if (c->volume < 0) return ct_seterr("%s:%ld: missing column 'VolumeName'", name, row->line);
    for (int i = 0; i < t->n; i++)
        if (c->abn[i] < 0) return ct_seterr("%s:%ld: missing column '%s'", name, row->line, t->names[i]);
    return 0;
}

int report_label_row(const struct org_abn *t, const struct report_label_cols *c, const struct csv_row *row,
                     const char *name, const char **volume, int *labels) {
    if (row->n != c->n_cols)
        return ct_seterr("%s:%ld: %d fields, expected %d as in the header", name, row->line, row->n, c->n_cols);
    *volume = row->fields[c->volume];
    if (!**volume) return ct_seterr("%s:%ld: empty VolumeName", name, row->line);
    for (int i = 0; i < t->n; i++) {
        const char *v = row->fields[c->abn[i]];
        if ((v[0] != '0' && v[0] != '1') || v[1])
            return ct_seterr("%s:%ld: %s: '%.40s' is not 0 or 1 (volume %.80s)", name, row->line, t->names[i], v,
                             *volume);
        labels[i] = v[0] - '0';
    }
    return 0;
}

int report_text_header(const struct csv_row *row, const char *name, struct report_text_cols *c) {
    static const char *const want[3] = { "VolumeName", "Findings_EN", "Impressions_EN" };
    int *slot[3] = { &c->volume, &c->findings, &c->impression };
    c->n_cols = row->n;
    for (int k = 0; k < 3; k++) *slot[k] = -1;
    for (int f = 0; f < row->n; f++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(row->fields[f], want[k])) {
                if (*slot[k] >= 0) return ct_seterr("%s:%ld: column '%s' given twice", name, row->line, want[k]);
                *slot[k] = f;
            }
    for (int k = 0; k < 3; k++)
        if (*slot[k] < 0) return ct_seterr("%s:%ld: missing column '%s'", name, row->line, want[k]);
    return 0;
}

