/*
 * metrics.h - the zero-shot classification metrics of ViSD-Boost / fVLM's
 * calc_metrics.py (method.md §7.3), exact to its quirks, plus seeded bootstrap
 * confidence intervals and ROC points.
 *
 * One column = one test item: a probability and a 0/1 label per case.
 *
 *   AUC        sklearn.roc_auc_score: the probability that a positive scores
 *              above a negative, ties counting 1/2 (exact, with ties); NaN
 *              (undefined) when the column holds one class only.
 *   threshold  find_threshold: t over np.linspace(0, 1, 100) (met_grid), predict
 *              p > t (strict), d = sqrt((1-TPR)^2 + FPR^2), keep the smallest d
 *              with `<=`, so ties go to the LARGER t; a t whose d is NaN (no
 *              positives or no negatives) is never kept, so a single-class
 *              column keeps the initial t = 0, as the released loop would.
 *   with pred = p > t*:
 *   ACC        (TP+TN)/n
 *   spec       TN/(TN+FP), NaN when TN+FP = 0
 *   sens       TP/(TP+FN), NaN when TP+FN = 0
 *   F1         sklearn f1_score(average="weighted"): each class's F1 weighted by
 *              its support in the labels; a class's precision, recall or F1 with
 *              a zero denominator is 0 (sklearn's zero_division="warn" value)
 *   precision  sklearn precision_score (positive class): TP/(TP+FP), 0 when
 *              nothing is predicted positive (zero_division="warn" value)
 *
 * The released code computes each metric per item and prints unweighted means
 * over the items (np.mean: NaN when any item is NaN; met_mean does the same).
 *
 * Speed: met_col_prepare sorts a column once; met_eval then evaluates every
 * metric in O(n) for any case weights, so a bootstrap resample is a vector of
 * per-case counts (how often each case was drawn), never a re-sort.
 *
 *     struct met_col c;
 *     met_col_prepare(&c, p, y, n, MET_NAN_SKIP);
 *     double m[MET_N];
 *     met_eval(&c, NULL, m);          // m[MET_AUC], m[MET_THRESH], ...
 *     met_col_free(&c);
 *
 * Bootstrap (met_boot_*): resample b (0..B-1) draws n case indices with
 * replacement, idx[i] = met_rng_below(&rng, n) for i = 0..n-1 in order, all
 * from one generator seeded once with the seed (met_rng: SplitMix64, see
 * below).  The same indices serve every item, so the CI of a mean is the
 * percentile of per-resample means.  Every metric (threshold included, found
 * again on each resample, as CT-CLIP's bootstrap does) is computed on each
 * resample; the interval is the percentile interval of the resamples whose
 * value is defined (numpy.nanpercentile, linear interpolation).
 */
#ifndef CT_METRICS_H
#define CT_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum met_id { MET_AUC, MET_ACC, MET_SPEC, MET_SENS, MET_F1, MET_PREC, MET_THRESH, MET_N };
extern const char *const met_names[MET_N];   /* "auc" "acc" "spec" "sens" "f1" "prec" "threshold" */

#define MET_GRID 100
/* np.linspace(0, 1, 100)[k]: k * (1/99) for k < 99, exactly 1 for k = 99. */
double met_grid(int k);

enum met_nan {
    MET_NAN_SKIP,                    /* ViSD-Boost: a case with a NaN probability is left out of that item */
    MET_NAN_ZERO,                    /* fVLM: a NaN probability counts as 0 */
};

/* One prepared column: its usable cases sorted by probability. */
struct met_col {
    int       n;                     /* usable cases */
    int       n_nan;                 /* NaN probabilities skipped or zeroed */
    int      *cas;                   /* [n] case index (0..n_cases-1) of each, ascending p */
    double   *p;                     /* [n] probabilities, ascending */
    uint8_t  *y;                     /* [n] labels 0/1 */
    int       n_pos, n_neg;          /* class counts (unweighted) */
};

/* p[i], y[i] for cases i = 0..n_cases-1 (y must be 0 or 1).  Returns 0, or
 * -1 + lasterr on a label other than 0/1 or an infinite probability. */
int  met_col_prepare(struct met_col *c, const double *p, const uint8_t *y, int n_cases, enum met_nan nan);
void met_col_free(struct met_col *c);

/* Every metric (out[MET_*]) of the column with case weights w[case] (how often
 * each case counts; NULL = once each).  A metric that is undefined is NaN.
 * thr_k, when not NULL, receives the grid index of the threshold (0..99). */
void met_eval(const struct met_col *c, const uint32_t *w, double out[MET_N], int *thr_k);

/* Confusion counts at a grid threshold (unweighted): pred = p > met_grid(k). */
void met_counts(const struct met_col *c, int k, long *tp, long *fp, long *tn, long *fn);

/* ROC points as sklearn.roc_curve(drop_intermediate=False): (0,0) and then one
 * point per distinct probability, highest first; fpr/tpr/thr hold at least
 * c->n + 1 entries (thr[0] = +inf).  Returns the number of points, 0 when the
 * column holds one class only (the curve is undefined). */
int  met_roc(const struct met_col *c, double *fpr, double *tpr, double *thr);

/* Unweighted mean of v[0..n) (np.mean: NaN when any value is NaN). */
double met_mean(const double *v, int n);

/* Percentile q in [0, 100] of the non-NaN values of v[0..n), numpy's default
 * linear interpolation; v is sorted in place (NaNs last).  NaN when none. */
double met_percentile(double *v, int n, double q);

/* ---- the bootstrap generator ----
 * SplitMix64 (Steele, Lea, Flood 2014): state += 0x9E3779B97F4A7C15;
 * z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
 * z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31)   (mod 2^64).
 * met_rng_below(n): draw x until x < 2^64 - (2^64 mod n), return x mod n
 * (uniform, no modulo bias).  Seeding sets state = seed. */
struct met_rng { uint64_t s; };
void     met_rng_seed(struct met_rng *r, uint64_t seed);
uint64_t met_rng_next(struct met_rng *r);
uint32_t met_rng_below(struct met_rng *r, uint32_t n);

/* ---- bootstrap over n_cases cases and n_cols columns ---- */
struct met_boot {
    int      n_boot, n_cols;
    double  *val;                    /* [n_boot][n_cols + 1][MET_N]; column n_cols = the mean over columns */
};
/* Runs n_boot resamples with the generator seeded with seed, the resamples
 * evaluated on n_threads threads (the draws are made first, in one sequence,
 * so the numbers do not depend on n_threads).  When idx_out is not NULL it
 * receives every resample's indices ([n_boot][n_cases], for tests and for
 * reproducing the numbers elsewhere). */
void met_boot_run(struct met_boot *b, const struct met_col *cols, int n_cols, int n_cases, int n_boot, uint64_t seed,
                  int n_threads, int32_t *idx_out);
/* Percentile interval [lo, hi] at level (0.95: the 2.5th and 97.5th
 * percentiles) of metric m of column j (j = n_cols: the mean); *n_def gets
 * the number of resamples where it was defined. */
void met_boot_ci(const struct met_boot *b, int j, int m, double level, double *lo, double *hi, int *n_def);
void met_boot_free(struct met_boot *b);

#endif
