/*
 * nn-linear.c - the 1x1x1 convolution at selected voxels (nn_pointwise_at: the token
 * projections) and BatchNorm folding (nn_fold_bn); see nn.h.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "nn-impl.h"

/* ------------------------------------------------------------------------------------------ */
/* pointwise projections                                                                      */
/* ------------------------------------------------------------------------------------------ */

int nn_pointwise_at(float *out, const float *x, int c_in, int64_t len, const int32_t *tok, int64_t n, int c_out,
                    const float *w, const float *b, int n_threads) {
    if (n == 0) return 0;
    if (n < 0 || c_in < 1 || c_out < 1) return ct_seterr("pointwise: bad sizes");
    if (n > INT32_MAX || len > INT32_MAX) return ct_seterr("pointwise: too many voxels");
    const float *g = x;
    float *gather = NULL;
    if (tok) {
        for (int64_t i = 0; i < n; i++)
            if (tok[i] < 0 || tok[i] >= len)
                return ct_seterr("pointwise: token index %d outside [0, %lld)", tok[i], (long long)len);
        gather = ct_xaligned((size_t)(c_in * n) * sizeof(float));   /* [c_in, n] */
        for (int c = 0; c < c_in; c++) {
            const float *xr = x + c * len;
            float *gr = gather + c * n;
            for (int64_t i = 0; i < n; i++) gr[i] = xr[tok[i]];
        }
        g = gather;
    } else if (n != len) {
        return ct_seterr("pointwise: %lld outputs for %lld voxels", (long long)n, (long long)len);
    }
    /* out[n, c_out] = g^T [n, c_in] @ w^T [c_in, c_out] */
    nn_blas_threads(n_threads < 1 ? 1 : n_threads);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)n, c_out, c_in, 1.0f, g, (int)(tok ? n : len), w, c_in,
                0.0f, out, c_out);
    nn_blas_threads(1);
    if (b)
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < c_out; c++) out[i * c_out + c] += b[c];
    free(gather);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* BatchNorm folding                                                                          */
/* ------------------------------------------------------------------------------------------ */

void nn_fold_bn(float *w, float *b, int c_out, int64_t per_out, const float *gamma, const float *beta,
                const float *mean, const float *var, double eps) {
    for (int co = 0; co < c_out; co++) {
        double s = (double)gamma[co] / sqrt((double)var[co] + eps);
        float *wr = w + co * per_out;
        for (int64_t i = 0; i < per_out; i++) wr[i] = (float)((double)wr[i] * s);
        b[co] = (float)(((double)b[co] - (double)mean[co]) * s + (double)beta[co]);
    }
}
