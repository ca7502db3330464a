/* test-metrics.c - lib/metrics and the formatting helpers of lib/zeroshot.
 * Expected values are worked out by hand (method.md §7.3), taken from
 * scikit-learn's and numpy's documentation examples, from Python's repr(), or
 * from the published SplitMix64 reference outputs; none is computed by ctvis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ct.h"
#include "metrics.h"
#include "zeroshot.h"

static int near(double a, double b) { return fabs(a - b) <= 1e-12; }

int main(void) {
    ct_init("test-metrics");
    /* sklearn.metrics.roc_auc_score docs: y = [0 0 1 1], p = [0.1 0.4 0.35 0.8] -> 0.75 */
    double p[4] = { 0.1, 0.4, 0.35, 0.8 };
    uint8_t y[4] = { 0, 0, 1, 1 };
    struct met_col c;
    CHECK(met_col_prepare(&c, p, y, 4, MET_NAN_SKIP) == 0, "prepare");
    double m[MET_N];
    int k;
    met_eval(&c, NULL, m, &k);
    CHECK(near(m[MET_AUC], 0.75), "auc sklearn doc example = 0.75");
    /* d = 0.5 for t in [10/99, 34/99] (TPR 1, FPR .5) and for t in [40/99, 79/99] (TPR .5, FPR 0):
     * the tie goes to the larger t, 79/99; then only 0.8 is predicted positive */
    CHECK(k == 79 && m[MET_THRESH] == 79.0 * (1.0 / 99), "threshold: ties to the larger grid point (79/99)");
    CHECK(near(m[MET_ACC], 0.75) && near(m[MET_SPEC], 1) && near(m[MET_SENS], 0.5) && near(m[MET_PREC], 1),
          "acc spec sens prec at 79/99");
    /* weighted F1: class 1 P=1 R=1/2 -> 2/3; class 0 P=2/3 R=1 -> 4/5; supports 2 and 2 */
    CHECK(near(m[MET_F1], (2.0 / 3 + 0.8) / 2), "weighted f1");
    /* weights: case 2 (p .35, positive) counted twice = y [0 0 1 1 1], p [.1 .4 .35 .35 .8]:
     * each .35 beats .1 only, .8 beats both: 4 of 6 pairs */
    uint32_t w[4] = { 1, 1, 2, 1 };
    met_eval(&c, w, m, NULL);
    CHECK(near(m[MET_AUC], 4.0 / 6), "auc with case weights");
    met_col_free(&c);

    /* ties across classes count 1/2: p [.5 .5], y [0 1] -> 0.5 */
    double pt[3] = { 0.5, 0.5, NAN };
    uint8_t yt[3] = { 0, 1, 1 };
    met_col_prepare(&c, pt, yt, 3, MET_NAN_SKIP);
    met_eval(&c, NULL, m, NULL);
    CHECK(c.n == 2 && c.n_nan == 1 && near(m[MET_AUC], 0.5), "ties count 1/2; NaN skipped");
    met_col_free(&c);
    met_col_prepare(&c, pt, yt, 3, MET_NAN_ZERO);
    met_eval(&c, NULL, m, NULL);
    /* p [.5 .5 0], y [0 1 1]: positive pairs (0.5 vs 0.5: 1/2) + (0 vs 0.5: 0) = 1/2 of 2 -> 0.25 */
    CHECK(c.n == 3 && near(m[MET_AUC], 0.25), "NaN set to 0 (fVLM)");
    met_col_free(&c);

    /* single class: AUC undefined, threshold keeps its initial 0, no crash */
    uint8_t y0[3] = { 0, 0, 0 };
    double p0[3] = { 0.0, 0.2, 0.9 };
    met_col_prepare(&c, p0, y0, 3, MET_NAN_SKIP);
    met_eval(&c, NULL, m, &k);
    CHECK(isnan(m[MET_AUC]) && k == 0 && isnan(m[MET_SENS]) && near(m[MET_SPEC], 1.0 / 3) && m[MET_PREC] == 0,
          "single class: AUC NaN, t = 0, sens NaN, spec 1/3, precision 0 (zero_division)");
    double fpr[4], tpr[4], th[4];
    CHECK(met_roc(&c, fpr, tpr, th) == 0, "single class: no ROC");
    met_col_free(&c);
    uint8_t ybad[1] = { 2 };
    CHECK(met_col_prepare(&c, p0, ybad, 1, MET_NAN_SKIP) == -1, "label 2 refused");

    /* the grid is np.linspace(0, 1, 100) */
    CHECK(met_grid(0) == 0 && met_grid(1) == 1.0 / 99 && met_grid(99) == 1.0, "grid");

    /* numpy.percentile([1, 2, 3, 4], 25) = 1.75; 97.5 -> 3.925; nanpercentile skips NaN */
    double v[5] = { 4, 2, NAN, 1, 3 };
    CHECK(near(met_percentile(v, 5, 25), 1.75), "percentile 25");
    CHECK(near(met_percentile(v, 5, 97.5), 3.925), "percentile 97.5");
    double mv[3] = { 1, NAN, 2 };
    CHECK(isnan(met_mean(mv, 3)), "mean is NaN when an item is (np.mean)");

    /* SplitMix64 reference outputs for seed 0 */
    struct met_rng r;
    met_rng_seed(&r, 0);
    uint64_t a = met_rng_next(&r), b = met_rng_next(&r), d = met_rng_next(&r);
    CHECK(a == 0xe220a8397b1dcdafull && b == 0x6e789e6aa1b965f4ull && d == 0x06c45d188009454full,
          "splitmix64 seed 0");
    met_rng_seed(&r, 0);
    CHECK(met_rng_below(&r, 1000) == 0xe220a8397b1dcdafull % 1000, "below: x mod n when no rejection");

    /* Python repr() */
    static const struct { double v; const char *s; } rp[] = {
        { 0.1, "0.1" }, { 1e-05, "1e-05" }, { 0.0001, "0.0001" }, { 1.0, "1.0" }, { 0.0, "0.0" },
        { 1e16, "1e+16" }, { 1234567890123456.0, "1234567890123456.0" }, { 0.30000000000000004, "0.30000000000000004" },
        { 6.014117388986051e-05, "6.014117388986051e-05" }, { 1.0 / 3, "0.3333333333333333" }, { -2.5, "-2.5" },
        { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" }, { 0.20251056551933289, "0.20251056551933289" },
        { 123.0, "123.0" }, { 1.5e-07, "1.5e-07" },
    };
    for (size_t i = 0; i < sizeof rp / sizeof rp[0]; i++) {
        char s[40];
        zs_repr(rp[i].v, s);
        CHECK(!strcmp(s, rp[i].s), "repr %s (got %s)", rp[i].s, s);
    }
    char fn[64];
    zs_file_name("valid_1_a_1", fn, sizeof fn);
    CHECK(!strcmp(fn, "valid_1_a_1.nii.gz"), "file name of a case id");
    return check_failures != 0;
}
