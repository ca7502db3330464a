/*
 * zeroshot.c - probabilities, the reference CSV layout, labels and their join (see zeroshot.h).
 */
#include "zeroshot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "idset.h"
#include "stream.h"

double zs_prob_pos(const float *f, const float *t_neg, const float *t_pos, int dim, double temp) {
    double sn = 0, sp = 0;
    for (int i = 0; i < dim; i++) {
        sn += (double)f[i] * t_neg[i];
        sp += (double)f[i] * t_pos[i];
    }
    double l0 = sn / temp, l1 = sp / temp, m = l0 > l1 ? l0 : l1;
    double e0 = exp(l0 - m), e1 = exp(l1 - m);
    return e1 / (e0 + e1);
}

void zs_column_name(struct csv_buf *b, const char *organ, const char *abn, const char *neg, const char *pos) {
    csv_buf_printf(b, "%s_%s_%s_%s", organ, abn, neg, pos);
}

void zs_repr(double v, char *buf) {
    if (isnan(v)) { strcpy(buf, "nan"); return; }
    if (isinf(v)) { strcpy(buf, v > 0 ? "inf" : "-inf"); return; }
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {            /* shortest correctly rounded digits that round-trip */
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]d[.ddd]e[+-]XX: collect the digits and the exponent */
    char dig[24];
    int nd = 0, neg = 0;
    const char *s = e;
    if (*s == '-') { neg = 1; s++; }
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') dig[nd++] = *s;
    int x = atoi(s + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;      /* %.Ne may pad; repr never does */
    dig[nd] = 0;
    int decpt = x + 1;                              /* digits d1 d2 ... times 10^(decpt - nd) */
    char *o = buf;
    if (neg) *o++ = '-';
    if (v == 0) { strcpy(o, "0.0"); return; }
    if (decpt <= -4 || decpt > 16) {
        *o++ = dig[0];
        if (nd > 1) { *o++ = '.'; memcpy(o, dig + 1, (size_t)nd - 1); o += nd - 1; }
        sprintf(o, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    } else if (decpt <= 0) {
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        strcpy(o, dig);
    } else if (decpt < nd) {
        memcpy(o, dig, (size_t)decpt); o += decpt;
        *o++ = '.';
        strcpy(o, dig + decpt);
    } else {
        memcpy(o, dig, (size_t)nd); o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        strcpy(o, ".0");
    }
}

void zs_file_name(const char *id, char *out, size_t n) {
    size_t l = strlen(id);
    if ((l > 7 && !strcmp(id + l - 7, ".nii.gz")) || (l > 4 && !strcmp(id + l - 4, ".nii")))
        snprintf(out, n, "%s", id);
    else
        snprintf(out, n, "%s.nii.gz", id);
}

int zs_is_stream(const char *path) {
    size_t l = strlen(path);
    if (l >= 4 && !strcmp(path + l - 4, ".csv")) return 0;
    if (!strcmp(path, "-")) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;                               /* the reader names the error */
    int c = fgetc(f);
    fclose(f);
    return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
}

/* ---- probability tables ---- */

static void table_add_case(struct zs_table *t, const char *name, const double *p) {
    if (t->n_cases == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->ids = ct_xrealloc(t->ids, sizeof *t->ids * (size_t)t->cap);
        t->names = ct_xrealloc(t->names, sizeof *t->names * (size_t)t->cap);
        t->p = ct_xrealloc(t->p, sizeof *t->p * (size_t)t->cap * (size_t)(t->n_items ? t->n_items : 1));
    }
    char id[1024];
    ct_case_id(name, id, sizeof id);
    t->ids[t->n_cases] = ct_xstrdup(id);
    t->names[t->n_cases] = ct_xstrdup(name);
    memcpy(t->p + (size_t)t->n_cases * t->n_items, p, sizeof *p * (size_t)t->n_items);
    t->n_cases++;
}

/* abnormality of a column: column.split('_')[1], or NULL when there is no '_' */
static char *column_abn(const char *col) {
    const char *a = strchr(col, '_');
    if (!a || a == col) return NULL;
    a++;
    const char *b = strchr(a, '_');
    size_t n = b ? (size_t)(b - a) : strlen(a);
    if (n == 0) return NULL;
    char *s = ct_xmalloc(n + 1);
    memcpy(s, a, n);
    s[n] = 0;
    return s;
}

static int set_columns(struct zs_table *t, int n, const char *const *cols, const char *where) {
    t->n_items = n;
    t->columns = ct_xcalloc((size_t)n + 1, sizeof *t->columns);
    t->abn = ct_xcalloc((size_t)n + 1, sizeof *t->abn);
    for (int i = 0; i < n; i++) {
        t->columns[i] = ct_xstrdup(cols[i]);
        t->abn[i] = column_abn(cols[i]);
        if (!t->abn[i])
            return ct_seterr("%s: column %d '%s' is not organ_abnormality_negative_positive", where, i + 2, cols[i]);
        for (int k = 0; k < i; k++)
            if (!strcmp(cols[k], cols[i])) return ct_seterr("%s: column '%s' appears twice", where, cols[i]);
    }
    return 0;
}

static int dup_check(struct idset *seen, const char *id, const char *origin) {
    const char *first = idset_add(seen, id, origin, 0, NULL);
    if (first) return ct_seterr("%s: duplicate case %s (first at %s)", origin, id, first);
    return 0;
}

static int table_read_csv(const char *path, struct zs_table *t) {
    struct csv_reader *r = csv_reader_open(path);
    if (!r) return -1;
    struct csv_row row;
    int rc = csv_read(r, &row);
    if (rc <= 0) {
        if (rc == 0) ct_seterr("%s: empty file (expected the header file_name,<items>)", path);
        csv_reader_close(r);
        return -1;
    }
    if (strcmp(row.fields[0], "file_name") || row.n < 2) {
        ct_seterr("%s:%ld: header must be file_name followed by organ_abnormality_negative_positive columns "
                  "(first field '%s', %d fields)", path, row.line, row.fields[0], row.n);
        csv_reader_close(r);
        return -1;
    }
    char where[512];
    snprintf(where, sizeof where, "%s:%ld", path, row.line);
    if (set_columns(t, row.n - 1, row.fields + 1, where) != 0) { csv_reader_close(r); return -1; }
    double *p = ct_xmalloc(sizeof *p * (size_t)t->n_items);
    struct idset *seen = idset_new();
    while ((rc = csv_read(r, &row)) > 0) {
        snprintf(where, sizeof where, "%s:%ld", path, row.line);
        if (row.n != t->n_items + 1) {
            rc = ct_seterr("%s: %d fields, the header has %d", where, row.n, t->n_items + 1);
            break;
        }
        if (!row.lens[0]) { rc = ct_seterr("%s: empty file_name", where); break; }
        for (int i = 0; i < t->n_items && rc > 0; i++) {
            const char *s = row.fields[i + 1];
            if (!*s || !strcmp(s, "nan") || !strcmp(s, "NaN")) p[i] = NAN;
            else if (ct_parse_double(s, &p[i]) != 0 || isinf(p[i]))
                rc = ct_seterr("%s: column '%s': '%s' is not a probability", where, t->columns[i], s);
        }
        if (rc < 0) break;
        char id[1024];
        ct_case_id(row.fields[0], id, sizeof id);
        if (dup_check(seen, id, where) != 0) { rc = -1; break; }
        table_add_case(t, row.fields[0], p);
    }
    free(p);
    idset_free(seen);
    csv_reader_close(r);
    return rc < 0 ? -1 : 0;
}

static int table_read_stream(const char *path, struct zs_table *t) {
    struct rec_reader *rd = rec_reader_open(path);
    if (!rd) return -1;
    struct tn_arena *a = tn_arena_new(0);
    struct idset *seen = idset_new();
    struct rec r;
    int rc;
    char where[1200];
    while ((rc = rec_read(rd, a, &r)) > 0) {
        snprintf(where, sizeof where, "%s: record %ld (id %s)", path, r.index, r.id);
        if (rec_expect(&r, "ct.probs", 1) != 0) { rc = ct_prefixerr("%s", where); break; }
        const struct rec_val *cols = rec_meta_get(&r, "columns");
        if (!cols || cols->type != RV_ARRAY || cols->v.a.n == 0) {
            rc = ct_seterr("%s: meta columns missing or not an array of str", where);
            break;
        }
        int n = (int)cols->v.a.n;
        if (!t->columns) {
            const char **c = ct_xmalloc(sizeof *c * (size_t)n);
            for (int i = 0; i < n; i++) {
                if (cols->v.a.items[i].type != RV_STR) { free(c); rc = ct_seterr("%s: meta columns: not a str", where); goto out; }
                c[i] = cols->v.a.items[i].v.s.p;
            }
            rc = set_columns(t, n, c, where) != 0 ? -1 : 1;
            free(c);
            if (rc < 0) break;
        } else {
            int same = n == t->n_items;
            for (int i = 0; same && i < n; i++)
                same = cols->v.a.items[i].type == RV_STR && !strcmp(cols->v.a.items[i].v.s.p, t->columns[i]);
            if (!same) { rc = ct_seterr("%s: its columns differ from those of record 0", where); break; }
        }
        struct tn_tensor *pp = rec_tensor_req(&r, "p_pos");
        if (!pp) { rc = ct_prefixerr("%s", where); break; }
        if (pp->dtype != TN_F64 || pp->ndim != 1 || pp->shape[0] != n) {
            rc = ct_seterr("%s: p_pos must be f64 [%d]", where, n);
            break;
        }
        if (dup_check(seen, r.id, where) != 0) { rc = -1; break; }
        const char *fn = rec_meta_str(&r, "file_name");
        char name[1024];
        if (fn) snprintf(name, sizeof name, "%s", fn);
        else zs_file_name(r.id, name, sizeof name);
        table_add_case(t, name, (const double *)pp->data);
        tn_arena_reset(a);
    }
out:
    idset_free(seen);
    tn_arena_free(a);
    rec_reader_close(rd);
    if (rc == 0 && !t->columns) return ct_seterr("%s: no ct.probs/1 records", path);
    return rc < 0 ? -1 : 0;
}

int zs_table_read(const char *path, struct zs_table *t) {
    memset(t, 0, sizeof *t);
    t->source = path;
    return zs_is_stream(path) ? table_read_stream(path, t) : table_read_csv(path, t);
}

static void free_strv(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void zs_table_free(struct zs_table *t) {
    if (!t) return;
    free_strv(t->columns, t->n_items);
    free_strv(t->abn, t->n_items);
    free_strv(t->ids, t->n_cases);
    free_strv(t->names, t->n_cases);
    free(t->p);
    memset(t, 0, sizeof *t);
}

/* ---- labels ---- */

static int labels_add(struct zs_labels *l, int *cap, const char *volume, const uint8_t *y, const char *where) {
    char id[1024];
    ct_case_id(volume, id, sizeof id);
    const char *first = idset_add(l->index, id, where, (uint64_t)l->n_cases, NULL);
    if (first) return ct_seterr("%s: duplicate case %s (first at %s)", where, id, first);
    if (l->n_cases == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        l->ids = ct_xrealloc(l->ids, sizeof *l->ids * (size_t)*cap);
        l->y = ct_xrealloc(l->y, (size_t)*cap * (size_t)(l->n_abn ? l->n_abn : 1));
    }
    l->ids[l->n_cases] = ct_xstrdup(id);
    memcpy(l->y + (size_t)l->n_cases * l->n_abn, y, (size_t)l->n_abn);
    l->n_cases++;
    return 0;
}

static int labels_read_csv(const char *path, struct zs_labels *l) {
    struct csv_reader *r = csv_reader_open(path);
    if (!r) return -1;
    struct csv_row row;
    int rc = csv_read(r, &row), vcol = -1, cap = 0;
    if (rc <= 0) {
        if (rc == 0) ct_seterr("%s: empty file (expected a header VolumeName,<abnormalities>)", path);
        csv_reader_close(r);
        return -1;
    }
    int ncol = row.n;
    int *map = ct_xmalloc(sizeof *map * (size_t)ncol);
    l->abn = ct_xcalloc((size_t)ncol, sizeof *l->abn);
    for (int i = 0; i < ncol; i++) {
        map[i] = -1;
        if (!strcmp(row.fields[i], "VolumeName")) {
            if (vcol >= 0) { rc = ct_seterr("%s:%ld: VolumeName appears twice", path, row.line); goto out; }
            vcol = i;
            continue;
        }
        for (int k = 0; k < l->n_abn; k++)
            if (!strcmp(l->abn[k], row.fields[i])) {
                rc = ct_seterr("%s:%ld: column '%s' appears twice", path, row.line, row.fields[i]);
                goto out;
            }
        map[i] = l->n_abn;
        l->abn[l->n_abn++] = ct_xstrdup(row.fields[i]);
    }
    if (vcol < 0) { rc = ct_seterr("%s:%ld: no VolumeName column", path, row.line); goto out; }
    uint8_t *y = ct_xmalloc((size_t)l->n_abn + 1);
    char where[512];
    while ((rc = csv_read(r, &row)) > 0) {
        snprintf(where, sizeof where, "%s:%ld", path, row.line);
        if (row.n != ncol) { rc = ct_seterr("%s: %d fields, the header has %d", where, row.n, ncol); break; }
        if (!row.lens[vcol]) { rc = ct_seterr("%s: empty VolumeName", where); break; }
        for (int i = 0; i < ncol && rc > 0; i++) {
            if (map[i] < 0) continue;
            const char *s = row.fields[i];
            if (!strcmp(s, "0") || !strcmp(s, "0.0")) y[map[i]] = 0;
            else if (!strcmp(s, "1") || !strcmp(s, "1.0")) y[map[i]] = 1;
            else rc = ct_seterr("%s: column '%s': label '%s' is not 0 or 1", where, l->abn[map[i]], s);
        }
        if (rc < 0) break;
        if (labels_add(l, &cap, row.fields[vcol], y, where) != 0) { rc = -1; break; }
    }
    free(y);
out:
    free(map);
    csv_reader_close(r);
    return rc < 0 ? -1 : 0;
}

static int labels_read_stream(const char *path, struct zs_labels *l) {
    struct rec_reader *rd = rec_reader_open(path);
    if (!rd) return -1;
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc, cap = 0;
    char where[1200];
    uint8_t *y = NULL;
    while ((rc = rec_read(rd, a, &r)) > 0) {
        snprintf(where, sizeof where, "%s: record %ld (id %s)", path, r.index, r.id);
        if (rec_expect(&r, "ct.labels", 1) != 0) { rc = ct_prefixerr("%s", where); break; }
        const struct rec_val *ab = rec_meta_get(&r, "abnormalities"), *lb = rec_meta_get(&r, "labels");
        if (!ab || ab->type != RV_ARRAY || !lb || lb->type != RV_ARRAY || ab->v.a.n != lb->v.a.n) {
            rc = ct_seterr("%s: meta abnormalities / labels missing or of different lengths", where);
            break;
        }
        int n = (int)ab->v.a.n;
        if (!l->abn) {
            l->n_abn = n;
            l->abn = ct_xcalloc((size_t)n + 1, sizeof *l->abn);
            y = ct_xmalloc((size_t)n + 1);
            for (int i = 0; i < n; i++) {
                if (ab->v.a.items[i].type != RV_STR) { rc = ct_seterr("%s: abnormalities: not a str", where); goto out; }
                l->abn[i] = ct_xstrdup(ab->v.a.items[i].v.s.p);
            }
        } else {
            int same = n == l->n_abn;
            for (int i = 0; same && i < n; i++)
                same = ab->v.a.items[i].type == RV_STR && !strcmp(ab->v.a.items[i].v.s.p, l->abn[i]);
            if (!same) { rc = ct_seterr("%s: its abnormalities differ from those of record 0", where); break; }
        }
        for (int i = 0; i < n; i++) {
            int64_t v;
            if (rec_val_i64(&lb->v.a.items[i], &v, 1) != 1 || (v != 0 && v != 1)) {
                rc = ct_seterr("%s: labels[%d] is not 0 or 1", where, i);
                goto out;
            }
            y[i] = (uint8_t)v;
        }
        const char *vn = rec_meta_str(&r, "volume_name");
        if (labels_add(l, &cap, vn ? vn : r.id, y, where) != 0) { rc = -1; break; }
        tn_arena_reset(a);
    }
out:
    free(y);
    tn_arena_free(a);
    rec_reader_close(rd);
    if (rc == 0 && !l->abn) return ct_seterr("%s: no ct.labels/1 records", path);
    return rc < 0 ? -1 : 0;
}

int zs_labels_read(const char *path, struct zs_labels *l) {
    memset(l, 0, sizeof *l);
    l->source = path;
    l->index = idset_new();
    return zs_is_stream(path) ? labels_read_stream(path, l) : labels_read_csv(path, l);
}

void zs_labels_free(struct zs_labels *l) {
    if (!l) return;
    free_strv(l->abn, l->n_abn);
    free_strv(l->ids, l->n_cases);
    free(l->y);
    idset_free(l->index);
    memset(l, 0, sizeof *l);
}

/* ---- join ---- */

int zs_join(const struct zs_table *t, const struct zs_labels *l, struct zs_join *j) {
    memset(j, 0, sizeof *j);
    int *col = ct_xmalloc(sizeof *col * (size_t)(t->n_items + 1));
    for (int i = 0; i < t->n_items; i++) {
        col[i] = -1;
        for (int k = 0; k < l->n_abn; k++)
            if (!strcmp(l->abn[k], t->abn[i])) col[i] = k;
        if (col[i] < 0) {
            ct_seterr("%s: no label column '%s' for item '%s'", l->source, t->abn[i], t->columns[i]);
            free(col);
            return -1;
        }
    }
    int *lrow = ct_xmalloc(sizeof *lrow * (size_t)(t->n_cases + 1));
    uint8_t *used = ct_xcalloc((size_t)l->n_cases + 1, 1);
    j->row = ct_xmalloc(sizeof *j->row * (size_t)(t->n_cases + 1));
    j->no_label = ct_xmalloc(sizeof *j->no_label * (size_t)(t->n_cases + 1));
    for (int c = 0; c < t->n_cases; c++) {
        uint64_t tag;
        if (!idset_get(l->index, t->ids[c], &tag)) {
            j->no_label[j->n_no_label++] = t->ids[c];
            continue;
        }
        lrow[j->n_cases] = (int)tag;
        used[tag] = 1;
        j->row[j->n_cases++] = c;
    }
    j->no_prob = ct_xmalloc(sizeof *j->no_prob * (size_t)(l->n_cases + 1));
    for (int c = 0; c < l->n_cases; c++)
        if (!used[c]) j->no_prob[j->n_no_prob++] = l->ids[c];
    size_t n = (size_t)j->n_cases;
    j->y = ct_xmalloc((size_t)t->n_items * n + 1);
    j->p = ct_xmalloc(sizeof *j->p * ((size_t)t->n_items * n + 1));
    for (int i = 0; i < t->n_items; i++)
        for (size_t c = 0; c < n; c++) {
            j->y[i * n + c] = l->y[(size_t)lrow[c] * l->n_abn + col[i]];
            j->p[i * n + c] = t->p[(size_t)j->row[c] * t->n_items + i];
        }
    free(used);
    free(lrow);
    free(col);
    return 0;
}

void zs_join_free(struct zs_join *j) {
    if (!j) return;
    free(j->row);
    free(j->y);
    free(j->p);
    free(j->no_label);
    free(j->no_prob);
    memset(j, 0, sizeof *j);
}
