/*
 * zeroshot.h - zero-shot abnormality probabilities (method.md §7.1-7.2) and the
 * tables zeroshot scores (§7.3): the reference CSV layout of the released
 * evaluation, ct.probs/1 streams, and ground-truth labels (CT-RATE's label CSV
 * or ct.labels/1 streams), joined on case id.
 *
 * Case ids and file names: a case id is the volume's file name without its
 * directory and without .nii.gz / .nii (ct_case_id in ct.h, the one
 * place that defines it); the reference CSV's file_name column and CT-RATE's
 * VolumeName hold "valid_1_a_1.nii.gz", ct.probs/1 records have id
 * "valid_1_a_1" and meta file_name "valid_1_a_1.nii.gz" (zs_file_name).
 *
 *     struct zs_table t;      zs_table_read("probs.csv", &t);
 *     struct zs_labels l;     zs_labels_read("labels.csv", &l);
 *     struct zs_join j;       zs_join(&t, &l, &j);    // y[item][case] on the intersection
 */
#ifndef CT_ZEROSHOT_H
#define CT_ZEROSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "csv.h"

/* ---- probabilities ---- */
/* p_pos = softmax([f.t_neg, f.t_pos] / temp)[1], in double precision (the
 * released code does it in float32 with torch: they agree to ~1e-7). */
double zs_prob_pos(const float *f, const float *t_neg, const float *t_pos, int dim, double temp);

/* The CSV column of an item: '_'.join((organ, abnormality, negative, positive)). */
void zs_column_name(struct csv_buf *b, const char *organ, const char *abn, const char *neg, const char *pos);

/* A double as Python's repr() writes it (what pandas' to_csv writes for a
 * float64): the shortest digits that read back to the same double; fixed
 * notation when the decimal exponent is in [-4, 16), with ".0" on integers,
 * else d.ddde[+-]XX.  buf holds >= 32 bytes.  NaN -> "nan", inf -> "inf". */
void zs_repr(double v, char *buf);

/* "valid_1_a_1" -> "valid_1_a_1.nii.gz" (the CT-RATE volume name of a case id;
 * a name already ending in .nii.gz or .nii is kept). */
void zs_file_name(const char *id, char *out, size_t n);

/* ---- probability tables (reference CSV or ct.probs/1 stream) ---- */
struct zs_table {
    const char *source;              /* file name for messages */
    int         n_items;
    char      **columns;             /* [n_items] CSV column names */
    char      **abn;                 /* [n_items] abnormality = column.split('_')[1] (the released rule) */
    int         n_cases, cap;
    char      **ids;                 /* [n_cases] case ids (ct_case_id of file_name) */
    char      **names;               /* [n_cases] file names as given */
    double     *p;                   /* [n_cases][n_items], NaN = empty cell */
};
/* Reads a CSV in the reference layout (a path ending in .csv, or any file not
 * starting with a msgpack map) or a ct.probs/1 stream.  -1 + lasterr:
 * "probs.csv:1: column 3 'x' is not organ_abnormality_negative_positive",
 * "probs.csv:7: duplicate case valid_1_a_1 (first at line 3)", ... */
int  zs_table_read(const char *path, struct zs_table *t);
void zs_table_free(struct zs_table *t);

/* ---- labels ---- */
struct zs_labels {
    const char *source;
    int         n_abn;
    char      **abn;                 /* [n_abn] label columns (abnormality names) */
    int         n_cases;
    char      **ids;                 /* [n_cases] */
    uint8_t    *y;                   /* [n_cases][n_abn] 0/1 */
    struct idset *index;      /* id -> row */
};
/* CT-RATE's label CSV (VolumeName plus one 0/1 column per abnormality, any
 * order and any set of abnormalities) or ct.labels/1 records. */
int  zs_labels_read(const char *path, struct zs_labels *l);
void zs_labels_free(struct zs_labels *l);

/* ---- joining ---- */
struct zs_join {
    int      n_cases;                /* cases in both */
    int     *row;                    /* [n_cases] row of the table, in table order */
    uint8_t *y;                      /* [n_items][n_cases] labels */
    double  *p;                      /* [n_items][n_cases] probabilities */
    int      n_no_label;             /* table cases without labels */
    char   **no_label;               /* borrowed ids */
    int      n_no_prob;              /* label cases without probabilities */
    char   **no_prob;
};
/* -1 + lasterr "labels.csv: no label column 'X' for item 'COLUMN'" when an
 * item's abnormality has no label column. */
int  zs_join(const struct zs_table *t, const struct zs_labels *l, struct zs_join *j);
void zs_join_free(struct zs_join *j);

/* 1 when the file at path starts like a ctvis stream (a msgpack map). */
int  zs_is_stream(const char *path);

#endif
