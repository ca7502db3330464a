/*
 * transformer.c - the transformer operations of transformer.h: Linear (one sgemm per block of
 * rows), LayerNorm, exact GELU, row softmax, multi-head attention blocked over queries, L2
 * normalisation.  Threads: nn_parallel_for (nn-impl.h) with one single-threaded sgemm per item.
 */
#include "transformer.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ct.h"
#include "nn-impl.h"

/* ------------------------------------------------------------------------------------------ */
/* Linear                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* rows per work item: large enough for an efficient sgemm, small enough to share the rows
 * among the threads */
#define LIN_MIN_ROWS 32

struct lin_job {
    float *y;
    const float *x, *w, *b;
    int64_t ldy, ldx, n, rows;
    int in, out;
};

static void lin_item(void *ctx, int64_t item, int tid) {
    (void)tid;
    const struct lin_job *j = ctx;
    int64_t r0 = item * j->rows;
    int64_t m = j->n - r0 < j->rows ? j->n - r0 : j->rows;
    float *y = j->y + r0 * j->ldy;
    float beta = 0.0f;
    if (j->b) {
        for (int64_t i = 0; i < m; i++) memcpy(y + i * j->ldy, j->b, (size_t)j->out * sizeof(float));
        beta = 1.0f;
    }
    /* y [m, out] = x [m, in] . W^T, W [out, in] row-major */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, j->out, j->in, 1.0f, j->x + r0 * j->ldx,
                (int)j->ldx, j->w, j->in, beta, y, (int)j->ldy);
}

int tfm_linear_ld(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t n, int in, int out, const float *w,
                  const float *b, int n_threads) {
    if (n < 0 || in <= 0 || out <= 0 || ldx < in || ldy < out || ldx > INT_MAX || ldy > INT_MAX)
        return ct_seterr("tfm_linear: bad shape (n %lld, in %d, out %d, ldx %lld, ldy %lld)", (long long)n, in, out,
                         (long long)ldx, (long long)ldy);
    if (n == 0) return 0;
    if (!y || !x || !w) return ct_seterr("tfm_linear: NULL argument");
    if (n_threads < 1) n_threads = 1;
    int64_t rows = (n + n_threads - 1) / n_threads;
    if (rows < LIN_MIN_ROWS) rows = LIN_MIN_ROWS;
    if (rows > 4096) rows = 4096;
    struct lin_job j = { y, x, w, b, ldy, ldx, n, rows, in, out };
    nn_parallel_for(n_threads, (n + rows - 1) / rows, lin_item, &j);
    return 0;
}

int tfm_linear(float *y, const float *x, int64_t n, int in, int out, const float *w, const float *b,
               int n_threads) {
    return tfm_linear_ld(y, out, x, in, n, in, out, w, b, n_threads);
}

/* ------------------------------------------------------------------------------------------ */
/* element-wise and row-wise                                                                  */
/* ------------------------------------------------------------------------------------------ */

void tfm_layernorm(float *y, const float *x, int64_t n, int dim, const float *gamma, const float *beta, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double s = 0.0;
        for (int i = 0; i < dim; i++) s += xr[i];
        double mean = s / dim, v = 0.0;
        for (int i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            v += d * d;
        }
        double inv = 1.0 / sqrt(v / dim + (double)eps);
        for (int i = 0; i < dim; i++) {
            float t = (float)((xr[i] - mean) * inv);
            yr[i] = t * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
        }
    }
}

void tfm_gelu(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752440f));
}

void tfm_softmax_rows(float *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        float mx = -INFINITY;
        for (int64_t i = 0; i < cols; i++)
            if (xr[i] > mx) mx = xr[i];
        double s = 0.0;
        for (int64_t i = 0; i < cols; i++) {
            xr[i] = expf(xr[i] - mx);
            s += xr[i];
        }
        float inv = (float)(1.0 / s);
        for (int64_t i = 0; i < cols; i++) xr[i] *= inv;
    }
}

void tfm_l2_normalize(float *y, const float *x, int n, float eps) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    double nrm = sqrt(s);
    if (nrm < eps) nrm = eps;
    for (int i = 0; i < n; i++) y[i] = (float)(x[i] / nrm);
}

/* ------------------------------------------------------------------------------------------ */
/* attention                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* score floats per work item (4 MB): a block of queries x all keys */
#define ATT_SCORE_FLOATS ((int64_t)1 << 20)

struct att_job {
    float *out;
    const float *q, *k, *v;
    float **scr;
    int64_t ldq, ldk, ldv, nq, nk, bq, nblk;
    int heads, dh;
    float scale;
};

static void att_item(void *ctx, int64_t item, int tid) {
    const struct att_job *j = ctx;
    int h = (int)(item / j->nblk);
    int64_t q0 = (item % j->nblk) * j->bq;
    int64_t m = j->nq - q0 < j->bq ? j->nq - q0 : j->bq;
    float *s = j->scr[tid];
    int64_t ldo = (int64_t)j->heads * j->dh;
    /* s [m, nk] = scale * q_h [m, dh] . k_h^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)j->nk, j->dh, j->scale,
                j->q + q0 * j->ldq + (int64_t)h * j->dh, (int)j->ldq, j->k + (int64_t)h * j->dh, (int)j->ldk, 0.0f,
                s, (int)j->nk);
    tfm_softmax_rows(s, m, j->nk);
    /* out_h [m, dh] = s . v_h [nk, dh] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, j->dh, (int)j->nk, 1.0f, s, (int)j->nk,
                j->v + (int64_t)h * j->dh, (int)j->ldv, 0.0f, j->out + q0 * ldo + (int64_t)h * j->dh, (int)ldo);
}

int tfm_attention(float *out, const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                  int64_t nq, int64_t nk, int heads, int dh, float scale, int n_threads) {
    int64_t width = (int64_t)heads * dh;
    if (nq <= 0 || nk <= 0) return ct_seterr("tfm_attention: %lld queries, %lld keys", (long long)nq, (long long)nk);
    if (heads <= 0 || dh <= 0 || ldq < width || ldk < width || ldv < width || ldq > INT_MAX || ldk > INT_MAX ||
        ldv > INT_MAX || width > INT_MAX || nk > INT_MAX)
        return ct_seterr("tfm_attention: bad shape (heads %d, dh %d, ldq %lld, ldk %lld, ldv %lld, keys %lld)", heads,
                         dh, (long long)ldq, (long long)ldk, (long long)ldv, (long long)nk);
    if (!out || !q || !k || !v) return ct_seterr("tfm_attention: NULL argument");
    if (n_threads < 1) n_threads = 1;
    int64_t bq = ATT_SCORE_FLOATS / nk;
    if (bq < 1) bq = 1;
    if (bq > 256) bq = 256;
    if (bq > nq) bq = nq;
    /* enough items for every thread: split the queries further when there are few heads */
    while (bq > 16 && heads * ((nq + bq - 1) / bq) < 2 * n_threads) bq = (bq + 1) / 2;
    int64_t nblk = (nq + bq - 1) / bq;
    int64_t n_items = heads * nblk;
    int nt = n_items < n_threads ? (int)n_items : n_threads;
    float **scr = nn_scratch_get_n(nt, (size_t)(bq * nk));
    if (!scr) return ct_seterr("tfm_attention: out of memory (%lld x %lld scores)", (long long)bq, (long long)nk);
    struct att_job j = { out, q, k, v, scr, ldq, ldk, ldv, nq, nk, bq, nblk, heads, dh, scale };
    nn_parallel_for(nt, n_items, att_item, &j);
    nn_scratch_put_n(scr, nt);
    return 0;
}
