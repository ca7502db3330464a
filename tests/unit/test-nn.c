/*
 * test-nn.c - known-answer tests of the ops of nn.h (lib/nn-*.c): delta kernels, constant volumes, and every
 * stride/padding/dilation/residual combination the encoder uses (and odd sizes it does not)
 * against a naive 7-deep loop written here.  Parity with PyTorch is tests/ref/test_encode.py.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "check.h"
#include "ct.h"
#include "nn-impl.h"
#include "nn-visd.h"
#include "nn.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}
static float *rand_buf(int64_t n) {
    float *p = ct_xaligned((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = frand();
    return p;
}
static int64_t vol3(const int64_t g[3]) { return g[0] * g[1] * g[2]; }

/* naive conv3d in double: y = act(conv(x) + b + res) */
static void conv_naive(double *y, const float *x, int cin, const int64_t in[3], int cout, const float *w,
                       const float *b, const struct nn_conv3d_params *p, const struct nn_residual *res, int relu) {
    int64_t out[3];
    nn_conv3d_out_shape(in, p, out);
    for (int co = 0; co < cout; co++)
        for (int64_t od = 0; od < out[0]; od++)
            for (int64_t oh = 0; oh < out[1]; oh++)
                for (int64_t ow = 0; ow < out[2]; ow++) {
                    double acc = b ? b[co] : 0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int a = 0; a < p->k[0]; a++)
                            for (int bb = 0; bb < p->k[1]; bb++)
                                for (int e = 0; e < p->k[2]; e++) {
                                    int64_t id = od * p->stride[0] - p->pad[0] + a * p->dil[0];
                                    int64_t ih = oh * p->stride[1] - p->pad[1] + bb * p->dil[1];
                                    int64_t iw = ow * p->stride[2] - p->pad[2] + e * p->dil[2];
                                    if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2]) continue;
                                    double wv = w[(((co * cin + ci) * p->k[0] + a) * p->k[1] + bb) * p->k[2] + e];
                                    acc += wv * x[((ci * in[0] + id) * in[1] + ih) * in[2] + iw];
                                }
                    if (res && co < res->c) {
                        int64_t s = res->step;
                        acc += res->x[((co * res->shape[0] + s * od) * res->shape[1] + s * oh) * res->shape[2] + s * ow];
                    }
                    if (relu && acc < 0) acc = 0;
                    y[((co * out[0] + od) * out[1] + oh) * out[2] + ow] = acc;
                }
}

static double max_rel_err(const float *y, const double *ref, int64_t n) {
    double m = 1e-30, e = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(y[i] - ref[i]));
    return e / m;
}

static struct nn_conv3d_params P(int k0, int k1, int k2, int s0, int s1, int s2, int p0, int p1, int p2, int d) {
    struct nn_conv3d_params p = { { k0, k1, k2 }, { s0, s1, s2 }, { p0, p1, p2 }, { d, d, d } };
    return p;
}

static void test_delta(void) {
    /* a delta at the kernel centre reproduces the input, whatever the dilation */
    int64_t in[3] = { 5, 6, 7 };
    float *x = rand_buf(2 * vol3(in));
    for (int dil = 1; dil <= 3; dil++) {
        struct nn_conv3d_params p = P(3, 3, 3, 1, 1, 1, dil, dil, dil, dil);
        float w[2 * 2 * 27] = { 0 };
        w[(0 * 2 + 0) * 27 + 13] = 1;   /* out 0 <- in 0 */
        w[(1 * 2 + 1) * 27 + 13] = 1;   /* out 1 <- in 1 */
        float *y = ct_xaligned((size_t)(2 * vol3(in)) * sizeof(float));
        CHECK(nn_conv3d(y, x, 2, in, 2, w, NULL, &p, NULL, 0, 1) == 0, "delta dil %d runs", dil);
        /* exact by construction, in any summation order: each output is one product x * 1 plus
         * products with weight 0, which are exact zeros */
        CHECK(memcmp(x, y, (size_t)(2 * vol3(in)) * sizeof(float)) == 0, "delta kernel dil %d = identity", dil);
        free(y);
    }
    /* a delta at corner tap (0,0,0) with pad 1 shifts by one voxel and fills zeros */
    struct nn_conv3d_params p = P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    float w[27] = { 0 };
    w[0] = 1;
    float *y = ct_xaligned((size_t)vol3(in) * sizeof(float));
    nn_conv3d(y, x, 1, in, 1, w, NULL, &p, NULL, 0, 1);
    int good = 1;
    for (int64_t d = 0; d < in[0]; d++)
        for (int64_t h = 0; h < in[1]; h++)
            for (int64_t v = 0; v < in[2]; v++) {
                float want = (d && h && v) ? x[((d - 1) * in[1] + h - 1) * in[2] + v - 1] : 0.0f;
                good &= y[(d * in[1] + h) * in[2] + v] == want;   /* exact: as the delta above */
            }
    CHECK(good, "corner delta shifts by (1,1,1) with zero fill");
    free(y);
    free(x);
}

static void test_constant(void) {
    /* ones * ones: each output counts the taps inside the volume */
    int64_t in[3] = { 4, 9, 10 };
    struct nn_conv3d_params p = P(3, 5, 7, 1, 2, 2, 1, 2, 3, 1);
    int64_t out[3];
    nn_conv3d_out_shape(in, &p, out);
    float *x = ct_xaligned((size_t)vol3(in) * sizeof(float)), *w = ct_xaligned(105 * sizeof(float));
    for (int64_t i = 0; i < vol3(in); i++) x[i] = 1;
    for (int i = 0; i < 105; i++) w[i] = 1;
    float *y = ct_xaligned((size_t)vol3(out) * sizeof(float));
    float b = 0.5f;
    nn_conv3d(y, x, 1, in, 1, w, &b, &p, NULL, 0, 1);
    int good = 1;
    for (int64_t d = 0; d < out[0]; d++)
        for (int64_t h = 0; h < out[1]; h++)
            for (int64_t v = 0; v < out[2]; v++) {
                int n = 0;
                for (int a = 0; a < 3; a++)
                    for (int bb = 0; bb < 5; bb++)
                        for (int e = 0; e < 7; e++) {
                            int64_t id = d - 1 + a, ih = 2 * h - 2 + bb, iw = 2 * v - 3 + e;
                            n += id >= 0 && id < in[0] && ih >= 0 && ih < in[1] && iw >= 0 && iw < in[2];
                        }
                good &= y[(d * out[1] + h) * out[2] + v] == n + 0.5f;   /* small integers + 0.5: exact */
            }
    CHECK(out[0] == 4 && out[1] == 5 && out[2] == 5, "constant volume: output grid 4x5x5");
    CHECK(good, "constant volume: tap counts at borders and inside");
    free(x);
    free(w);
    free(y);
}

struct conv_case {
    const char             *name;
    int                     cin, cout;
    int64_t                 in[3];
    struct nn_conv3d_params p;
    int                     res;     /* 0 none, 1 identity, 2 shortcut A, 3 identity in place */
};

static void test_conv_cases(void) {
    struct conv_case cases[] = {
        { "stem 7^3 s(1,2,2) p3", 1, 8, { 9, 13, 17 }, P(7, 7, 7, 1, 2, 2, 3, 3, 3, 1), 0 },
        { "3^3 s1 p1", 5, 6, { 6, 7, 9 }, P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1), 1 },
        { "3^3 s1 p1 in place", 6, 6, { 6, 7, 9 }, P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3 },
        { "3^3 s2 p1 shortcut A", 4, 8, { 7, 9, 10 }, P(3, 3, 3, 2, 2, 2, 1, 1, 1, 1), 2 },
        { "3^3 s2 dil2 p2 shortcut A", 4, 8, { 7, 9, 11 }, P(3, 3, 3, 2, 2, 2, 2, 2, 2, 2), 2 },
        { "3^3 s1 dil4 p4 on 3x2x5", 3, 5, { 3, 2, 5 }, P(3, 3, 3, 1, 1, 1, 4, 4, 4, 4), 1 },
        { "3^3 s2 dil4 p4 on 1x1x1", 2, 4, { 1, 1, 1 }, P(3, 3, 3, 2, 2, 2, 4, 4, 4, 4), 2 },
        { "2x3x4 s(3,1,2) p(0,1,2)", 3, 2, { 8, 6, 9 }, P(2, 3, 4, 3, 1, 2, 0, 1, 2, 1), 0 },
        { "1^3 pointwise", 7, 3, { 2, 3, 4 }, P(1, 1, 1, 1, 1, 1, 0, 0, 0, 1), 0 },
        /* large enough in (H, W) for the per-tap GEMM path (stride 1, >= 16 input channels) */
        { "taps 3^3 s1 p1 on 3x30x40", 16, 20, { 3, 30, 40 }, P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1), 1 },
        { "taps 3^3 s1 p1 in place", 16, 16, { 4, 31, 37 }, P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1), 3 },
        { "taps 3^3 s1 dil2 p2", 17, 5, { 5, 44, 41 }, P(3, 3, 3, 1, 1, 1, 2, 2, 2, 2), 0 },
        { "taps 2x3x1 s1 p(1,0,0)", 16, 3, { 4, 33, 50 }, P(2, 3, 1, 1, 1, 1, 1, 0, 0, 1), 0 },
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct conv_case *c = &cases[t];
        int64_t out[3];
        nn_conv3d_out_shape(c->in, &c->p, out);
        int64_t K = (int64_t)c->cin * c->p.k[0] * c->p.k[1] * c->p.k[2];
        float *x = rand_buf(c->cin * vol3(c->in)), *w = rand_buf(c->cout * K), *b = rand_buf(c->cout);
        int64_t ny = c->cout * vol3(out);
        double *ref = ct_xmalloc((size_t)ny * sizeof(double));
        struct nn_residual r = { 0 }, *rp = NULL;
        float *rx = NULL;
        if (c->res == 1 || c->res == 3) {
            rx = rand_buf(ny);
            r = (struct nn_residual){ .x = rx, .c = c->cout, .step = 1 };
            memcpy(r.shape, out, sizeof r.shape);
            rp = &r;
        } else if (c->res == 2) {
            r = (struct nn_residual){ .x = x, .c = c->cin, .step = 2 };
            memcpy(r.shape, c->in, sizeof r.shape);
            rp = &r;
        }
        conv_naive(ref, x, c->cin, c->in, c->cout, w, b, &c->p, rp, 1);
        float *y1 = ct_xaligned((size_t)ny * sizeof(float)), *y2 = ct_xaligned((size_t)ny * sizeof(float));
        if (c->res == 3) memcpy(y1, rx, (size_t)ny * sizeof(float));
        struct nn_residual r1 = r;
        if (c->res == 3) r1.x = y1;
        int rc = nn_conv3d(y1, x, c->cin, c->in, c->cout, w, b, &c->p, rp ? &r1 : NULL, 1, 1);
        CHECK(rc == 0, "conv %s runs", c->name);
        double e = max_rel_err(y1, ref, ny);
        CHECK(e < 1e-5, "conv %s vs naive loop: max err %.2g of max |ref|", c->name, e);
        /* 2 threads (the column chunks differ, so the last bits may too) */
        if (c->res == 3) memcpy(y2, rx, (size_t)ny * sizeof(float));
        struct nn_residual r2 = r;
        if (c->res == 3) r2.x = y2;
        nn_conv3d(y2, x, c->cin, c->in, c->cout, w, b, &c->p, rp ? &r2 : NULL, 1, 2);
        e = max_rel_err(y2, ref, ny);
        CHECK(e < 1e-5, "conv %s with 2 threads vs naive loop: max err %.2g", c->name, e);
        free(x);
        free(w);
        free(b);
        free(rx);
        free(ref);
        free(y1);
        free(y2);
    }
}

/* Winograd F(2x2x2, 3x3x3) against the naive loop: 3^3 stride 1, pad = dilation; odd sizes,
 * 1-voxel axes, rows longer than one vector (32 outputs), residual / in place / ReLU fusion,
 * dilations 2..4 (sub-grids), fewer residual channels than outputs, tiny and 1-row chunks. */
struct wino_case {
    const char *name;
    int         cin, cout;
    int64_t     in[3];
    int         dil, res, relu;   /* res: 0 none, 1 identity, 3 identity in place, 4 on 2 channels,
                                   * 2 shortcut A (x on the doubled grid, 2 channels) */
    const char *tiles;            /* nn_tuning wino_tiles for the case, NULL = default */
};

static void test_winograd(void) {
    struct wino_case cases[] = {
        { "1x1x1", 3, 5, { 1, 1, 1 }, 1, 0, 1, NULL },
        { "5x7x9 residual", 4, 6, { 5, 7, 9 }, 1, 1, 1, NULL },
        { "1x2x1 no relu", 2, 3, { 1, 2, 1 }, 1, 0, 0, NULL },
        { "4x31x37 in place", 16, 16, { 4, 31, 37 }, 1, 3, 1, NULL },
        { "6x9x70 rows of 3 vectors", 17, 19, { 6, 9, 70 }, 1, 1, 0, NULL },
        { "3x5x66 1-tile chunks", 5, 7, { 3, 5, 66 }, 1, 3, 1, "1" },
        { "7x8x33 5-tile chunks", 6, 4, { 7, 8, 33 }, 1, 4, 1, "5" },
        { "3x4x37 shortcut A", 6, 5, { 3, 4, 37 }, 1, 2, 1, NULL },
        { "dil 2 on 2x1x3", 5, 3, { 2, 1, 3 }, 2, 0, 1, NULL },
        { "dil 2 on 5x6x7 shortcut A", 2, 4, { 5, 6, 7 }, 2, 2, 1, "4" },
        { "dil 2 on 14x16x22 in place", 8, 8, { 14, 16, 22 }, 2, 3, 1, NULL },
        { "dil 3 on 3x70x45", 3, 4, { 3, 70, 45 }, 3, 1, 0, NULL },
        { "dil 4 on 7x8x11 residual", 6, 8, { 7, 8, 11 }, 4, 1, 1, NULL },
        { "dil 4 on 7x8x11 3-tile chunks", 6, 8, { 7, 8, 11 }, 4, 3, 1, "3" },
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct wino_case *c = &cases[t];
        struct nn_conv3d_params p = P(3, 3, 3, 1, 1, 1, c->dil, c->dil, c->dil, c->dil);
        const int64_t n = vol3(c->in), ny = c->cout * n;
        float *x = rand_buf(c->cin * n), *w = rand_buf(c->cout * c->cin * 27), *b = rand_buf(c->cout);
        int64_t big[3] = { 2 * c->in[0] - 1, 2 * c->in[1], 2 * c->in[2] - 1 };   /* ceil(big / 2) = in */
        float *rx = c->res == 2 ? rand_buf(2 * vol3(big)) : c->res ? rand_buf(ny) : NULL;
        struct nn_residual r = { .x = rx, .c = c->res == 4 || c->res == 2 ? 2 : c->cout, .step = c->res == 2 ? 2 : 1 };
        memcpy(r.shape, c->res == 2 ? big : c->in, sizeof r.shape);
        double *ref = ct_xmalloc((size_t)ny * sizeof(double));
        conv_naive(ref, x, c->cin, c->in, c->cout, w, b, &p, c->res ? &r : NULL, c->relu);
        struct nn_wino *u = nn_wino_new(w, c->cout, c->cin);
        if (c->tiles) nn_tuning_set(&(struct nn_tuning){ .wino_tiles = atoi(c->tiles) });
        for (int th = 1; th <= 2; th++) {
            float *y = ct_xaligned((size_t)ny * sizeof(float));
            struct nn_residual ry = r;
            if (c->res == 3) {
                memcpy(y, rx, (size_t)ny * sizeof(float));
                ry.x = y;
            }
            int rc = nn_conv3d_wino(y, x, c->in, u, b, c->dil, c->res ? &ry : NULL, c->relu, th);
            double e = rc == 0 ? max_rel_err(y, ref, ny) : 1;
            CHECK(rc == 0 && e < 1e-5, "winograd %s, %d thread(s), vs naive loop: max err %.2g of max |ref|", c->name,
                  th, e);
            /* the narrower instruction-set variants of the data kernels (nn_wino_force_isa; in a
             * build for AVX-512 they are all the build's own).  Bit-identical by construction:
             * the same float additions in the same order (no FMA, no reassociation). */
            int same = rc == 0;
            for (int cap = 3; cap >= 1; cap -= 2) {
                float *y2 = ct_xaligned((size_t)ny * sizeof(float));
                if (c->res == 3) {
                    memcpy(y2, rx, (size_t)ny * sizeof(float));
                    ry.x = y2;
                }
                nn_wino_force_isa(cap);
                same &= nn_conv3d_wino(y2, x, c->in, u, b, c->dil, c->res ? &ry : NULL, c->relu, th) == 0 &&
                        memcmp(y, y2, (size_t)ny * sizeof(float)) == 0;
                nn_wino_force_isa(0);
                free(y2);
            }
            CHECK(same, "winograd %s, %d thread(s): AVX2 and baseline kernels give the same bits", c->name, th);
            free(y);
        }
        nn_tuning_set(NULL);
        nn_wino_free(u);
        free(x);
        free(w);
        free(b);
        free(rx);
        free(ref);
    }
    /* refusals: a residual step other than 1 or 2, a residual on another grid */
    int64_t in[3] = { 2, 2, 2 };
    float x[8] = { 0 }, w[27] = { 0 }, y[8];
    struct nn_wino *u = nn_wino_new(w, 1, 1);
    struct nn_residual r = { .x = x, .c = 1, .step = 3, .shape = { 4, 4, 4 } };
    CHECK(nn_conv3d_wino(y, x, in, u, NULL, 1, &r, 1, 1) == -1 && strstr(ct_lasterr(), "step"),
          "winograd refuses a residual of step 3");
    r.step = 1;
    CHECK(nn_conv3d_wino(y, x, in, u, NULL, 1, &r, 1, 1) == -1 && strstr(ct_lasterr(), "grid"),
          "winograd refuses a residual on another grid");
    nn_wino_free(u);
}

/* the per-tap box path (no multiplication on padding) against the naive loop: layer4-like
 * dilation 4 on 7x8x11 and its strided conv, inputs smaller than the dilated kernel (taps with no
 * output), anisotropic kernels and strides, residual / in place / shortcut A, 1 and 2 threads */
static void test_boxes(void) {
    struct conv_case cases[] = {
        { "boxes dil 4 on 7x8x11", 9, 7, { 7, 8, 11 }, P(3, 3, 3, 1, 1, 1, 4, 4, 4, 4), 3 },
        { "boxes s2 dil 4 shortcut A", 5, 8, { 14, 16, 21 }, P(3, 3, 3, 2, 2, 2, 4, 4, 4, 4), 2 },
        { "boxes dil 4 on 1x1x1", 3, 4, { 1, 1, 1 }, P(3, 3, 3, 1, 1, 1, 4, 4, 4, 4), 1 },
        { "boxes dil 3 on 2x5x3", 4, 3, { 2, 5, 3 }, P(3, 3, 3, 1, 1, 1, 3, 3, 3, 3), 0 },
        { "boxes 2x3x4 s(3,1,2) p(0,1,2)", 3, 2, { 8, 6, 9 }, P(2, 3, 4, 3, 1, 2, 0, 1, 2, 1), 0 },
        { "boxes 7^3 s(1,2,2) p3", 1, 5, { 5, 9, 8 }, P(7, 7, 7, 1, 2, 2, 3, 3, 3, 1), 0 },
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        struct conv_case *c = &cases[t];
        int64_t out[3];
        nn_conv3d_out_shape(c->in, &c->p, out);
        const int nk = c->p.k[0] * c->p.k[1] * c->p.k[2];
        float *x = rand_buf(c->cin * vol3(c->in)), *w = rand_buf(c->cout * c->cin * nk), *b = rand_buf(c->cout);
        float *wt = ct_xaligned((size_t)(c->cout * c->cin * nk) * sizeof(float));
        nn_weights_tap_major(wt, w, c->cout, c->cin, nk);
        int64_t ny = c->cout * vol3(out);
        double *ref = ct_xmalloc((size_t)ny * sizeof(double));
        float *rx = c->res == 1 || c->res == 3 ? rand_buf(ny) : NULL;
        struct nn_residual r = { .x = rx, .c = c->cout, .step = 1 };
        memcpy(r.shape, out, sizeof r.shape);
        if (c->res == 2) {
            r = (struct nn_residual){ .x = x, .c = c->cin, .step = 2 };
            memcpy(r.shape, c->in, sizeof r.shape);
        }
        conv_naive(ref, x, c->cin, c->in, c->cout, w, b, &c->p, c->res ? &r : NULL, 1);
        for (int th = 1; th <= 2; th++) {
            float *y = ct_xaligned((size_t)ny * sizeof(float));
            struct nn_residual ry = r;
            if (c->res == 3) {
                memcpy(y, rx, (size_t)ny * sizeof(float));
                ry.x = y;
            }
            int rc = nn_conv3d_boxes(y, x, c->cin, c->in, c->cout, wt, b, &c->p, c->res ? &ry : NULL, 1, th);
            double e = rc == 0 ? max_rel_err(y, ref, ny) : 1;
            CHECK(rc == 0 && e < 1e-5, "conv %s, %d thread(s), vs naive loop: max err %.2g", c->name, th, e);
            free(y);
        }
        free(x);
        free(w);
        free(wt);
        free(b);
        free(rx);
        free(ref);
    }
    /* layer4 of a 112x256x352 window: 5200 of its 27 * 616 (tap, output) pairs meet the input */
    int64_t g4[3] = { 7, 8, 11 };
    struct nn_conv3d_params p4 = P(3, 3, 3, 1, 1, 1, 4, 4, 4, 4);
    double f = nn_conv3d_valid_fraction(g4, &p4);
    CHECK(fabs(f - 5200.0 / 16632.0) < 1e-12, "valid fraction of dilation 4 on 7x8x11: %.4f", f);
}

static void pool_naive(float *y, const float *x, int c, const int64_t in[3], int k, int s, int p) {
    int64_t o[3];
    for (int a = 0; a < 3; a++) o[a] = nn_conv_out_len(in[a], k, s, p, 1);
    for (int ci = 0; ci < c; ci++)
        for (int64_t d = 0; d < o[0]; d++)
            for (int64_t h = 0; h < o[1]; h++)
                for (int64_t w = 0; w < o[2]; w++) {
                    float m = -INFINITY;
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++)
                            for (int e = 0; e < k; e++) {
                                int64_t id = d * s - p + a, ih = h * s - p + b, iw = w * s - p + e;
                                if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2]) continue;
                                float v = x[((ci * in[0] + id) * in[1] + ih) * in[2] + iw];
                                if (v > m) m = v;
                            }
                    y[((ci * o[0] + d) * o[1] + h) * o[2] + w] = m;
                }
}

static void test_pool(void) {
    int64_t ins[][3] = { { 7, 8, 9 }, { 1, 2, 3 }, { 6, 5, 4 } };
    for (int t = 0; t < 3; t++) {
        int64_t o[3];
        for (int a = 0; a < 3; a++) o[a] = nn_conv_out_len(ins[t][a], 3, 2, 1, 1);
        /* all-negative input: -inf padding must never win */
        float *x = rand_buf(3 * vol3(ins[t]));
        for (int64_t i = 0; i < 3 * vol3(ins[t]); i++) x[i] = -2 - x[i];
        float *y = ct_xaligned((size_t)(3 * vol3(o)) * sizeof(float)), *r = ct_xaligned((size_t)(3 * vol3(o)) * sizeof(float));
        pool_naive(r, x, 3, ins[t], 3, 2, 1);
        nn_maxpool3d(y, x, 3, ins[t], 3, 2, 1, 2);
        /* exact by construction: a maximum selects one of its inputs, in any order */
        CHECK(memcmp(y, r, (size_t)(3 * vol3(o)) * sizeof(float)) == 0, "maxpool 3/2/1 on %lldx%lldx%lld (negative input)",
              (long long)ins[t][0], (long long)ins[t][1], (long long)ins[t][2]);
        free(x);
        free(y);
        free(r);
    }
}

static void test_stem_fused(void) {
    /* conv + ReLU + maxpool fused = the three ops one after the other */
    int64_t shapes[][3] = { { 9, 13, 17 }, { 4, 6, 8 }, { 1, 1, 1 }, { 16, 32, 32 }, { 7, 12, 9 } };
    for (int t = 0; t < 5; t++) {
        int64_t *in = shapes[t], c1[3], o[3];
        /* the encoder's stem; last: 3 input channels, strides (2,1,3), dilation 2, mixed pads */
        struct nn_conv3d_params p = t < 4 ? P(7, 7, 7, 1, 2, 2, 3, 3, 3, 1) : P(3, 2, 3, 2, 1, 3, 2, 1, 0, 2);
        int cin = t < 4 ? 1 : 3, K = cin * p.k[0] * p.k[1] * p.k[2];
        nn_conv3d_out_shape(in, &p, c1);
        for (int a = 0; a < 3; a++) o[a] = nn_conv_out_len(c1[a], 3, 2, 1, 1);
        float *x = rand_buf(cin * vol3(in)), *w = rand_buf(8 * K), *b = rand_buf(8);
        float *mid = ct_xaligned((size_t)(8 * vol3(c1)) * sizeof(float));
        float *r = ct_xaligned((size_t)(8 * vol3(o)) * sizeof(float)), *y = ct_xaligned((size_t)(8 * vol3(o)) * sizeof(float));
        nn_conv3d(mid, x, cin, in, 8, w, b, &p, NULL, 1, 1);
        nn_maxpool3d(r, mid, 8, c1, 3, 2, 1, 1);
        CHECK(nn_conv3d_relu_maxpool(y, x, cin, in, 8, w, b, &p, 2) == 0, "stem fused runs on %lldx%lldx%lld",
              (long long)in[0], (long long)in[1], (long long)in[2]);
        double e = 0, m = 1e-30;
        for (int64_t i = 0; i < 8 * vol3(o); i++) {
            e = fmax(e, fabs(y[i] - r[i]));
            m = fmax(m, fabs(r[i]));
        }
        CHECK(e <= 1e-6 * m, "stem fused = conv, relu, maxpool on %lldx%lldx%lld (err %.2g)", (long long)in[0],
              (long long)in[1], (long long)in[2], e / m);
        free(x);
        free(w);
        free(b);
        free(mid);
        free(r);
        free(y);
    }
}

static void test_pointwise(void) {
    int cin = 9, cout = 5;
    int64_t len = 40;
    float *x = rand_buf(cin * len), *w = rand_buf(cout * cin), *b = rand_buf(cout);
    int32_t tok[] = { 0, 3, 4, 17, 39 };
    float out[5 * 5], all[40 * 5];
    CHECK(nn_pointwise_at(out, x, cin, len, tok, 5, cout, w, b, 1) == 0, "pointwise at tokens runs");
    CHECK(nn_pointwise_at(all, x, cin, len, NULL, len, cout, w, b, 2) == 0, "pointwise dense runs");
    double e = 0, ed = 0;
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < cout; c++) {
            double acc = b[c];
            for (int k = 0; k < cin; k++) acc += (double)w[c * cin + k] * x[k * len + tok[i]];
            e = fmax(e, fabs(out[i * cout + c] - acc));
            ed = fmax(ed, fabs(all[tok[i] * cout + c] - acc));
        }
    CHECK(e < 1e-5 && ed < 1e-5, "pointwise = w @ x[:, tok] + b (err %.2g, dense %.2g)", e, ed);
    int32_t bad[] = { 40 };
    CHECK(nn_pointwise_at(out, x, cin, len, bad, 1, cout, w, b, 1) == -1 && strstr(ct_lasterr(), "outside"),
          "pointwise refuses a token outside the grid");
    free(x);
    free(w);
    free(b);
}

static void test_fold_bn(void) {
    /* conv with folded BN = BN applied to the conv output */
    int64_t in[3] = { 3, 4, 5 };
    struct nn_conv3d_params p = P(3, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    int cin = 2, cout = 3;
    float *x = rand_buf(cin * vol3(in)), *w = rand_buf(cout * cin * 27);
    float g[3] = { 1.5f, 0.7f, 1.1f }, be[3] = { 0.1f, -0.2f, 0.3f }, mu[3] = { 0.05f, -0.1f, 0.2f },
          var[3] = { 0.5f, 2.0f, 1.2f };
    double *ref = ct_xmalloc((size_t)(cout * vol3(in)) * sizeof(double));
    conv_naive(ref, x, cin, in, cout, w, NULL, &p, NULL, 0);
    for (int c = 0; c < cout; c++)
        for (int64_t i = 0; i < vol3(in); i++) {
            double *v = &ref[c * vol3(in) + i];
            *v = (*v - mu[c]) / sqrt(var[c] + 1e-5) * g[c] + be[c];
        }
    float b[3] = { 0 };
    nn_fold_bn(w, b, cout, cin * 27, g, be, mu, var, 1e-5);
    float *y = ct_xaligned((size_t)(cout * vol3(in)) * sizeof(float));
    nn_conv3d(y, x, cin, in, cout, w, b, &p, NULL, 0, 1);
    double e = max_rel_err(y, ref, cout * vol3(in));
    CHECK(e < 1e-5, "folded BatchNorm = conv then BN (err %.2g)", e);
    free(x);
    free(w);
    free(ref);
    free(y);
}

static void test_errors_and_keys(void) {
    int64_t in[3] = { 2, 2, 2 };
    float x[8] = { 0 }, w[27] = { 0 }, y[8];
    struct nn_conv3d_params p = P(3, 3, 3, 1, 1, 1, 0, 0, 0, 1);
    CHECK(nn_conv3d(y, x, 1, in, 1, w, NULL, &p, NULL, 0, 1) == -1 && strstr(ct_lasterr(), "shorter than the kernel"),
          "conv refuses an input smaller than the kernel");
    p.stride[1] = 0;
    CHECK(nn_conv3d(y, x, 1, in, 1, w, NULL, &p, NULL, 0, 1) == -1, "conv refuses stride 0");
    CHECK(nn_visd_key_count() == 93, "encoder has 93 checkpoint keys");
    int nd;
    int64_t sh[5];
    const char *k0 = nn_visd_key(0, &nd, sh);
    CHECK(!strcmp(k0, "visual_encoder.res_model.conv1.weight") && nd == 5 && sh[0] == 64 && sh[1] == 1 && sh[4] == 7,
          "first key is conv1.weight [64,1,7,7,7]");
    int64_t full[3] = { 112, 256, 352 };
    double g = nn_visd_trunk_macs(full) / 1e9;
    CHECK(g > 301.7 && g < 301.8, "trunk MACs of 112x256x352: %.3f G", g);
}

int main(int argc, char **argv) {
    (void)argc;
    ct_blas_init(argv);   /* the kernels the tools run with */
    printf("# BLAS: %s\n# Winograd data kernels: %s\n", ct_blas_describe(), nn_wino_isa());
    test_delta();
    test_constant();
    test_conv_cases();
    test_winograd();
    test_boxes();
    test_pool();
    test_stem_fused();
    test_pointwise();
    test_fold_bn();
    test_errors_and_keys();
    return check_failures != 0;
}
