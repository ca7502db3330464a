/*
 * svg.h - small SVG figures written as text (no dependency): the ROC grid of
 * zeroshot --metrics, one panel per item, its AUC and the chosen threshold
 * marked.  Render to PNG with any SVG renderer, e.g.
 * `rsvg-convert -o roc.png roc.svg` (Debian librsvg2-bin).
 *
 *     struct svg_roc_panel p[16] = { ... };
 *     struct csv_buf b = { 0 };
 *     svg_roc_grid(&b, p, 16, 4, "fVLM epoch 17, CT-RATE validation");
 *     // b.p holds the SVG document
 */
#ifndef CT_SVG_H
#define CT_SVG_H

#include "csv.h"

struct svg_roc_panel {
    const char   *title;             /* the item: "Emphysema" */
    const char   *subtitle;          /* a second line, e.g. "lung, n=3006, 512 positive"; NULL for none */
    int           n;                 /* ROC points (0: undefined, the panel says why) */
    const double *fpr, *tpr;         /* [n], from (0,0) to (1,1) */
    double        auc;               /* NaN: undefined */
    double        auc_lo, auc_hi;    /* CI, NaN when not computed */
    double        thr;               /* the chosen threshold */
    double        thr_fpr, thr_tpr;  /* its operating point */
    const char   *note;              /* text shown when n == 0 ("single class: no positives") */
};

/* Append an SVG document holding the panels on a grid of ncols columns. */
void svg_roc_grid(struct csv_buf *b, const struct svg_roc_panel *p, int n, int ncols, const char *title);

/* Append s with &, <, >, " escaped for XML text and attributes. */
void svg_escape(struct csv_buf *b, const char *s);

#endif
