/*
 * metrics.c - calc_metrics.py's metrics, bootstrap and ROC points (see metrics.h).
 *
 * Floating point: the threshold search must pick the same grid point as the
 * Python loop, including its ties, so d is computed with the same operations
 * in the same order (TP/(TP+FN), (1-TPR)*(1-TPR) + FPR*FPR, sqrt: each one
 * correctly rounded, and -std=c11 keeps GCC from contracting them into FMAs).
 * The counts are integers held exactly in doubles.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"

const char *const met_names[MET_N] = { "auc", "acc", "spec", "sens", "f1", "prec", "threshold" };

double met_grid(int k) {
    /* numpy.linspace: step = (stop - start) / (num - 1); y = arange(num) * step + start; y[-1] = stop */
    if (k >= MET_GRID - 1) return 1.0;
    return (double)k * (1.0 / (MET_GRID - 1));
}

/* ---- preparing a column ---- */

struct pc { double p; int cas; uint8_t y; };

static int pc_cmp(const void *a, const void *b) {
    const struct pc *x = a, *y = b;
    if (x->p < y->p) return -1;
    if (x->p > y->p) return 1;
    return (x->cas > y->cas) - (x->cas < y->cas);
}

int met_col_prepare(struct met_col *c, const double *p, const uint8_t *y, int n_cases, enum met_nan nan) {
    memset(c, 0, sizeof *c);
    struct pc *v = ct_xmalloc(sizeof *v * (size_t)(n_cases > 0 ? n_cases : 1));
    int n = 0;
    for (int i = 0; i < n_cases; i++) {
        if (y[i] > 1) {
            free(v);
            return ct_seterr("case %d: label %d is not 0 or 1", i, y[i]);
        }
        double q = p[i];
        if (isnan(q)) {
            c->n_nan++;
            if (nan == MET_NAN_SKIP) continue;
            q = 0.0;
        } else if (isinf(q)) {
            free(v);
            return ct_seterr("case %d: probability is infinite", i);
        }
        v[n].p = q;
        v[n].cas = i;
        v[n].y = y[i];
        n++;
    }
    qsort(v, (size_t)n, sizeof *v, pc_cmp);
    c->n = n;
    c->cas = ct_xmalloc(sizeof *c->cas * (size_t)(n + 1));
    c->p = ct_xmalloc(sizeof *c->p * (size_t)(n + 1));
    c->y = ct_xmalloc((size_t)n + 1);
    for (int i = 0; i < n; i++) {
        c->cas[i] = v[i].cas;
        c->p[i] = v[i].p;
        c->y[i] = v[i].y;
        if (v[i].y) c->n_pos++;
        else c->n_neg++;
    }
    free(v);
    return 0;
}

void met_col_free(struct met_col *c) {
    if (!c) return;
    free(c->cas);
    free(c->p);
    free(c->y);
    memset(c, 0, sizeof *c);
}

/* ---- the metrics ---- */

static double safe_div0(double a, double b) { return b != 0 ? a / b : 0.0; }   /* sklearn zero_division -> 0 */

static double f1_of(double tp, double fp, double fn) {
    double pr = safe_div0(tp, tp + fp), re = safe_div0(tp, tp + fn);
    double den = pr + re;
    return den != 0 ? 2 * pr * re / den : 0.0;
}

void met_eval(const struct met_col *c, const uint32_t *w, double out[MET_N], int *thr_k) {
    const int n = c->n;
    const double *p = c->p;
    const uint8_t *y = c->y;
    /* class totals and the AUC: one pass over groups of equal probability */
    double P = 0, N = 0, num = 0;
    for (int i = 0; i < n;) {
        double gp = 0, gn = 0;
        int j = i;
        do {
            double wt = w ? (double)w[c->cas[j]] : 1.0;
            if (y[j]) gp += wt;
            else gn += wt;
            j++;
        } while (j < n && p[j] == p[i]);
        num += gp * (N + 0.5 * gn);          /* positives of the group beat every negative below it */
        P += gp;
        N += gn;
        i = j;
    }
    out[MET_AUC] = (P > 0 && N > 0) ? num / (P * N) : NAN;

    /* the threshold: sweep the grid upwards, counting what falls at or below t */
    double pos_le = 0, neg_le = 0, best = 10000.0;
    double ctp = P, cfp = N, ctn = 0, cfn = 0;    /* counts at the kept threshold (t = 0 before any) */
    int kbest = 0, j = 0;
    for (int k = 0; k < MET_GRID; k++) {
        double t = met_grid(k);
        while (j < n && p[j] <= t) {
            double wt = w ? (double)w[c->cas[j]] : 1.0;
            if (y[j]) pos_le += wt;
            else neg_le += wt;
            j++;
        }
        double tp = P - pos_le, fn = pos_le, fp = N - neg_le, tn = neg_le;
        double tpr = tp / (tp + fn), fpr = fp / (fp + tn);      /* NaN when a class is absent */
        double d = sqrt((1 - tpr) * (1 - tpr) + fpr * fpr);
        if (d <= best) {                     /* NaN never compares true: such a t is never kept */
            best = d;
            kbest = k;
            ctp = tp; cfp = fp; ctn = tn; cfn = fn;
        }
        if (k == 0 && isnan(d)) {            /* a class is absent: best_threshold keeps its initial 0 */
            ctp = tp; cfp = fp; ctn = tn; cfn = fn;
        }
    }
    if (thr_k) *thr_k = kbest;
    out[MET_THRESH] = met_grid(kbest);
    double tot = ctp + ctn + cfp + cfn;
    out[MET_ACC] = tot > 0 ? (ctp + ctn) / tot : NAN;
    out[MET_SPEC] = (ctn + cfp) != 0 ? ctn / (ctn + cfp) : NAN;
    out[MET_SENS] = (ctp + cfn) != 0 ? ctp / (ctp + cfn) : NAN;
    out[MET_PREC] = safe_div0(ctp, ctp + cfp);
    /* weighted F1: class 1 (support TP+FN) and class 0 (TN, FP and FN swapped; support TN+FP) */
    double s1 = ctp + cfn, s0 = ctn + cfp;
    out[MET_F1] = tot > 0 ? (f1_of(ctn, cfn, cfp) * s0 + f1_of(ctp, cfp, cfn) * s1) / (s0 + s1) : NAN;
}

void met_counts(const struct met_col *c, int k, long *tp, long *fp, long *tn, long *fn) {
    double t = met_grid(k);
    long a = 0, b = 0, cc = 0, d = 0;
    for (int i = 0; i < c->n; i++) {
        int pred = c->p[i] > t;
        if (pred && c->y[i]) a++;
        else if (pred) b++;
        else if (c->y[i]) d++;
        else cc++;
    }
    *tp = a; *fp = b; *tn = cc; *fn = d;
}

int met_roc(const struct met_col *c, double *fpr, double *tpr, double *thr) {
    if (c->n_pos == 0 || c->n_neg == 0) return 0;
    int m = 0;
    fpr[m] = 0; tpr[m] = 0; thr[m] = INFINITY; m++;
    long tp = 0, fp = 0;
    for (int i = c->n - 1; i >= 0;) {
        int j = i;
        while (j >= 0 && c->p[j] == c->p[i]) {
            if (c->y[j]) tp++;
            else fp++;
            j--;
        }
        fpr[m] = (double)fp / c->n_neg;
        tpr[m] = (double)tp / c->n_pos;
        thr[m] = c->p[i];
        m++;
        i = j;
    }
    return m;
}

double met_mean(const double *v, int n) {
    if (n <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s / n;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : 1;
    if (isnan(y)) return -1;
    return (x > y) - (x < y);
}

double met_percentile(double *v, int n, double q) {
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    int m = 0;
    while (m < n && !isnan(v[m])) m++;
    if (m == 0) return NAN;
    double h = (m - 1) * (q / 100.0);
    int lo = (int)floor(h);
    if (lo >= m - 1) return v[m - 1];
    double f = h - lo;
    return v[lo] + (v[lo + 1] - v[lo]) * f;
}

/* ---- generator ---- */

void met_rng_seed(struct met_rng *r, uint64_t seed) { r->s = seed; }

uint64_t met_rng_next(struct met_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t met_rng_below(struct met_rng *r, uint32_t n) {
    CT_ASSERT(n > 0);
    uint64_t lim = UINT64_MAX - (UINT64_MAX % n + 1) % n;   /* largest multiple of n, minus 1 */
    /* x <= lim  <=>  x < 2^64 - (2^64 mod n) */
    uint64_t x;
    do x = met_rng_next(r);
    while (x > lim);
    return (uint32_t)(x % n);
}

/* ---- bootstrap ---- */

struct boot_ctx {
    struct met_boot       *b;
    const struct met_col  *cols;
    const uint32_t        *w;        /* [n_boot][n_cases] draw counts */
    int                    n_cases;
};

static void boot_one(void *ctx, int64_t r, int tid) {
    (void)tid;
    struct boot_ctx *x = ctx;
    int nc = x->b->n_cols;
    double *row = x->b->val + (size_t)r * (nc + 1) * MET_N;
    const uint32_t *w = x->w + (size_t)r * x->n_cases;
    for (int j = 0; j < nc; j++) met_eval(&x->cols[j], w, row + (size_t)j * MET_N, NULL);
    for (int m = 0; m < MET_N; m++) {
        double s = 0;                    /* met_mean, in place */
        for (int j = 0; j < nc; j++) s += row[(size_t)j * MET_N + m];
        row[(size_t)nc * MET_N + m] = nc > 0 ? s / nc : NAN;
    }
}

void met_boot_run(struct met_boot *b, const struct met_col *cols, int n_cols, int n_cases, int n_boot, uint64_t seed,
                  int n_threads, int32_t *idx_out) {
    b->n_boot = n_boot;
    b->n_cols = n_cols;
    b->val = ct_xmalloc(sizeof *b->val * (size_t)n_boot * (size_t)(n_cols + 1) * MET_N + 1);
    /* the draws, in one sequence from one generator (so the result does not depend on -j) */
    uint32_t *w = ct_xcalloc((size_t)n_boot * (size_t)n_cases + 1, sizeof *w);
    struct met_rng rng;
    met_rng_seed(&rng, seed);
    for (int r = 0; r < n_boot; r++)
        for (int i = 0; i < n_cases; i++) {
            uint32_t k = met_rng_below(&rng, (uint32_t)n_cases);
            w[(size_t)r * n_cases + k]++;
            if (idx_out) idx_out[(size_t)r * n_cases + i] = (int32_t)k;
        }
    struct boot_ctx x = { b, cols, w, n_cases };
    ct_parallel_for(n_threads, n_boot, boot_one, &x);
    free(w);
}

void met_boot_ci(const struct met_boot *b, int j, int m, double level, double *lo, double *hi, int *n_def) {
    double *v = ct_xmalloc(sizeof *v * (size_t)(b->n_boot + 1));
    int nd = 0;
    for (int r = 0; r < b->n_boot; r++) {
        v[r] = b->val[((size_t)r * (b->n_cols + 1) + j) * MET_N + m];
        if (!isnan(v[r])) nd++;
    }
    double a = (1 - level) / 2 * 100;
    *lo = met_percentile(v, b->n_boot, a);
    *hi = met_percentile(v, b->n_boot, 100 - a);
    if (n_def) *n_def = nd;
    free(v);
}

void met_boot_free(struct met_boot *b) {
    if (!b) return;
    free(b->val);
    b->val = NULL;
}
