/*
 * svg.c - ROC panels as SVG text (see svg.h).
 */
#include "svg.h"

#include <math.h>
#include <string.h>

void svg_escape(struct csv_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': csv_buf_puts(b, "&amp;"); break;
        case '<': csv_buf_puts(b, "&lt;"); break;
        case '>': csv_buf_puts(b, "&gt;"); break;
        case '"': csv_buf_puts(b, "&quot;"); break;
        default: csv_buf_putc(b, *s);
        }
    }
}

enum { PW = 200, PH = 200, ML = 46, MR = 14, MT = 44, MB = 40 };   /* plot area and margins, px */

static void panel(struct csv_buf *b, const struct svg_roc_panel *p, double x0, double y0) {
    double L = x0 + ML, T = y0 + MT;
#define X(v) (L + (v) * PW)
#define Y(v) (T + (1 - (v)) * PH)
    csv_buf_printf(b, "<g>\n<text x=\"%.1f\" y=\"%.1f\" class=\"t\">", L + PW / 2.0, y0 + 16);
    svg_escape(b, p->title);
    csv_buf_puts(b, "</text>\n");
    if (p->subtitle) {
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"s\">", L + PW / 2.0, y0 + 30);
        svg_escape(b, p->subtitle);
        csv_buf_puts(b, "</text>\n");
    }
    csv_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", L, T, PW, PH);
    for (int k = 1; k < 4; k++) {
        double v = k / 4.0;
        csv_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", X(v), Y(0), X(v), Y(1));
        csv_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", X(0), Y(v), X(1), Y(v));
    }
    for (int k = 0; k <= 2; k++) {
        double v = k / 2.0;
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"ax\">%g</text>\n", X(v), Y(0) + 13, v);
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"ay\">%g</text>\n", X(0) - 4, Y(v) + 4, v);
    }
    csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"ax\">1 - specificity (FPR)</text>\n", X(0.5), Y(0) + 28);
    csv_buf_printf(b, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" class=\"ax\">sensitivity (TPR)</text>\n",
                   X(0) - 30, Y(0.5));
    csv_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"diag\"/>\n", X(0), Y(0), X(1), Y(1));
    if (p->n <= 0) {
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"undef\">", X(0.5), Y(0.55));
        svg_escape(b, p->note ? p->note : "ROC undefined");
        csv_buf_puts(b, "</text>\n</g>\n");
        return;
    }
    csv_buf_puts(b, "<polyline class=\"roc\" points=\"");
    double lx = -1, ly = -1;
    for (int i = 0; i < p->n; i++) {
        double x = X(p->fpr[i]), y = Y(p->tpr[i]);
        /* points within 0.5 px of the last one drawn add nothing visible; the last point is always kept */
        if (i && i < p->n - 1 && fabs(x - lx) < 0.5 && fabs(y - ly) < 0.5) continue;
        csv_buf_printf(b, "%.2f,%.2f ", x, y);
        lx = x;
        ly = y;
    }
    csv_buf_puts(b, "\"/>\n");
    csv_buf_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" class=\"thr\"/>\n", X(p->thr_fpr), Y(p->thr_tpr));
    double tx = X(p->thr_fpr) + 7, anchor_end = p->thr_fpr > 0.6;
    if (anchor_end) tx = X(p->thr_fpr) - 7;
    csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"%s\">t = %.3f</text>\n", tx, Y(p->thr_tpr) + 12,
                   anchor_end ? "tlr" : "tl", p->thr);
    if (isnan(p->auc))
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"auc\">AUC undefined</text>\n", X(0.97), Y(0.05));
    else if (!isnan(p->auc_lo))
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"auc\">AUC %.3f [%.3f, %.3f]</text>\n", X(0.97), Y(0.05),
                       p->auc, p->auc_lo, p->auc_hi);
    else
        csv_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"auc\">AUC %.3f</text>\n", X(0.97), Y(0.05), p->auc);
    csv_buf_puts(b, "</g>\n");
#undef X
#undef Y
}

void svg_roc_grid(struct csv_buf *b, const struct svg_roc_panel *p, int n, int ncols, const char *title) {
    if (ncols < 1) ncols = 1;
    int nrows = (n + ncols - 1) / ncols;
    int cw = ML + PW + MR, ch = MT + PH + MB, top = title ? 30 : 0;
    int W = ncols * cw, H = nrows * ch + top;
    csv_buf_printf(b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
                   "<style>\n"
                   "text { font-family: DejaVu Sans, Arial, sans-serif; fill: #222; }\n"
                   ".h { font-size: 16px; font-weight: bold; text-anchor: middle; }\n"
                   ".t { font-size: 12px; font-weight: bold; text-anchor: middle; }\n"
                   ".s { font-size: 10px; text-anchor: middle; fill: #555; }\n"
                   ".ax { font-size: 9px; text-anchor: middle; fill: #555; }\n"
                   ".ay { font-size: 9px; text-anchor: end; fill: #555; }\n"
                   ".auc { font-size: 11px; text-anchor: end; font-weight: bold; fill: #1f4e9c; }\n"
                   ".tl { font-size: 10px; fill: #c0392b; }\n"
                   ".tlr { font-size: 10px; fill: #c0392b; text-anchor: end; }\n"
                   ".undef { font-size: 11px; text-anchor: middle; fill: #c0392b; }\n"
                   ".frame { fill: white; stroke: #444; stroke-width: 1; }\n"
                   ".grid { stroke: #e3e3e3; stroke-width: 1; }\n"
                   ".diag { stroke: #999; stroke-width: 1; stroke-dasharray: 4 3; }\n"
                   ".roc { fill: none; stroke: #1f4e9c; stroke-width: 1.6; stroke-linejoin: round; }\n"
                   ".thr { fill: #c0392b; stroke: white; stroke-width: 1; }\n"
                   "</style>\n"
                   "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                   W, H, W, H);
    if (title) {
        csv_buf_printf(b, "<text x=\"%d\" y=\"21\" class=\"h\">", W / 2);
        svg_escape(b, title);
        csv_buf_puts(b, "</text>\n");
    }
    for (int i = 0; i < n; i++) panel(b, &p[i], (double)(i % ncols) * cw, top + (double)(i / ncols) * ch);
    csv_buf_puts(b, "</svg>\n");
}
