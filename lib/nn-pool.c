/*
 * nn-pool.c - 3-D max-pooling (nn.h: nn_maxpool3d); -inf padding, NaN propagates as in PyTorch.
 */
#include "nn.h"

#include <math.h>

#include "ct.h"
#include "nn-impl.h"

/* ------------------------------------------------------------------------------------------ */
/* pooling                                                                                    */
/* ------------------------------------------------------------------------------------------ */

struct pool_job {
    float       *y;
    const float *x;
    int64_t      in[3], out[3];
    int          k, s, p;
};

/* one (channel, output depth) plane */
static void maxpool_item(void *ctx, int64_t item, int tid) {
    (void)tid;
    const struct pool_job *j = ctx;
    const int64_t D = j->in[0], H = j->in[1], W = j->in[2], Do = j->out[0], Ho = j->out[1], Wo = j->out[2];
    int64_t c = item / Do, od = item % Do;
    float *yp = j->y + item * Ho * Wo;
    const float *xc = j->x + c * D * H * W;
    for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
            float m = -INFINITY;
            for (int a = 0; a < j->k; a++) {
                int64_t id = od * j->s - j->p + a;
                if (id < 0 || id >= D) continue;
                for (int bb = 0; bb < j->k; bb++) {
                    int64_t ih = oh * j->s - j->p + bb;
                    if (ih < 0 || ih >= H) continue;
                    const float *xr = xc + (id * H + ih) * W;
                    for (int e = 0; e < j->k; e++) {
                        int64_t iw = ow * j->s - j->p + e;
                        if (iw < 0 || iw >= W) continue;
                        float v = xr[iw];
                        if (v > m || isnan(v)) m = v;   /* NaN propagates, as in PyTorch */
                    }
                }
            }
            yp[oh * Wo + ow] = m;
        }
}

int nn_maxpool3d(float *y, const float *x, int c, const int64_t in[3], int k, int s, int p, int n_threads) {
    struct pool_job j = { .y = y, .x = x, .k = k, .s = s, .p = p };
    if (k < 1 || s < 1 || p < 0 || 2 * p > k) return ct_seterr("maxpool3d: bad parameters (k %d, s %d, p %d)", k, s, p);
    for (int a = 0; a < 3; a++) {
        if (in[a] < 1) return ct_seterr("maxpool3d: empty input");
        j.in[a] = in[a];
        j.out[a] = nn_conv_out_len(in[a], k, s, p, 1);
        if (j.out[a] < 1) return ct_seterr("maxpool3d: input shorter than the kernel");
    }
    nn_parallel_for(n_threads, (int64_t)c * j.out[0], maxpool_item, &j);
    return 0;
}
