/*
 * nn-conv.c - 3-D convolution (nn.h): vol2col + one sgemm per chunk of output rows, one GEMM per
 * kernel tap on a padded copy (stride 1), one GEMM per tap over only the outputs it reaches (convs
 * whose padding dominates), and the ResNet stem fused with its max-pool.  Winograd convs are
 * nn-winograd.c; threads and scratch buffers nn.c.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "nn-impl.h"

/* Column-buffer budget per thread (bytes): 3 MB unless tuned (nn_tuning). */
static size_t nn_col_budget(void) {
    const size_t b = nn_tuning_get()->col_bytes;
    return b >= 4096 ? b : (size_t)3 << 20;
}

/* ------------------------------------------------------------------------------------------ */
/* shapes                                                                                     */
/* ------------------------------------------------------------------------------------------ */

int64_t nn_conv_out_len(int64_t n, int k, int stride, int pad, int dil) {
    int64_t span = (int64_t)dil * (k - 1) + 1;
    int64_t m = n + 2 * (int64_t)pad - span;
    if (m < 0) return 0;
    return m / stride + 1;
}

void nn_conv3d_out_shape(const int64_t in[3], const struct nn_conv3d_params *p, int64_t out[3]) {
    for (int a = 0; a < 3; a++) out[a] = nn_conv_out_len(in[a], p->k[a], p->stride[a], p->pad[a], p->dil[a]);
}

static int check_params(const struct nn_conv3d_params *p, const int64_t in[3], int64_t out[3]) {
    for (int a = 0; a < 3; a++) {
        if (p->k[a] < 1 || p->k[a] > 64 || p->stride[a] < 1 || p->pad[a] < 0 || p->dil[a] < 1)
            return ct_seterr("conv3d: bad parameters on axis %d (k %d, stride %d, pad %d, dil %d)", a, p->k[a],
                             p->stride[a], p->pad[a], p->dil[a]);
        if (in[a] < 1) return ct_seterr("conv3d: empty input axis %d", a);
    }
    nn_conv3d_out_shape(in, p, out);
    for (int a = 0; a < 3; a++)
        if (out[a] < 1) return ct_seterr("conv3d: input axis %d (%lld) shorter than the kernel", a, (long long)in[a]);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* vol2col                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* col[k, (r - r0) * Wo + ow] for the output rows r in [r0, r1) (r = od * Ho + oh) and every
 * kernel tap k = ((ci * k0 + a) * k1 + b) * k2 + e, the weight's own order.  ldcol is the row
 * length of col ((r1 - r0) * Wo).
 *
 * Each input row (ci, id, ih) is first laid out in row buffers with zeros around it, one per
 * phase of the W stride (x[ph], x[s + ph], x[2s + ph] ...), so that every tap e of that row is one
 * memcpy of Wo floats: iw = ow * s + e * dil - pad = s * (ow + q) + ph with off = e*dil - pad =
 * s * q + ph (0 <= ph < s), read from phase ph at ow + q. */
struct vol2col_geom {
    int64_t q[64];                   /* per tap e: shift q (floor((e*dil - pad) / s)) */
    int     ph[64];                  /* per tap e: phase */
    int64_t q_min, len;              /* phase buffers hold indices q_min .. q_min + len - 1 */
};

static void vol2col_geom_init(struct vol2col_geom *g, const struct nn_conv3d_params *p, int64_t Wo) {
    const int s = p->stride[2];
    int64_t qmin = 0, qmax = 0;
    for (int e = 0; e < p->k[2]; e++) {
        int64_t off = (int64_t)e * p->dil[2] - p->pad[2];
        int64_t q = off >= 0 ? off / s : -((-off + s - 1) / s);
        g->q[e] = q;
        g->ph[e] = (int)(off - q * s);
        if (e == 0 || q < qmin) qmin = q;
        if (e == 0 || q > qmax) qmax = q;
    }
    g->q_min = qmin;
    g->len = Wo + qmax - qmin;
}

static void vol2col_rows(float *col, int64_t ldcol, const float *x, int c_in, const int64_t in[3],
                         const int64_t out[3], const struct nn_conv3d_params *p, int64_t r0, int64_t r1,
                         float *rowbuf) {
    const int64_t D = in[0], H = in[1], W = in[2], Ho = out[1], Wo = out[2];
    const int s2 = p->stride[2], k2 = p->k[2];
    struct vol2col_geom g;
    vol2col_geom_init(&g, p, Wo);
    const size_t row_nbytes = (size_t)Wo * sizeof(float);
    int64_t k = 0;
    for (int ci = 0; ci < c_in; ci++)
        for (int a = 0; a < p->k[0]; a++)
            for (int b = 0; b < p->k[1]; b++, k += k2) {
                float *dst = col + k * ldcol;
                for (int64_t r = r0; r < r1; r++, dst += Wo) {
                    int64_t od = r / Ho, oh = r % Ho;
                    int64_t id = od * p->stride[0] - p->pad[0] + (int64_t)a * p->dil[0];
                    int64_t ih = oh * p->stride[1] - p->pad[1] + (int64_t)b * p->dil[1];
                    if (id < 0 || id >= D || ih < 0 || ih >= H) {
                        for (int e = 0; e < k2; e++) memset(dst + e * ldcol, 0, row_nbytes);
                        continue;
                    }
                    const float *src = x + ((ci * D + id) * H + ih) * W;
                    /* phase buffers: buf[ph][i - q_min] = x[s2 * i + ph] (0 outside the row) */
                    for (int ph = 0; ph < s2; ph++) {
                        float *pb = rowbuf + ph * g.len;
                        int64_t lo = -g.q_min > 0 ? -g.q_min : 0;
                        int64_t hi = W - 1 - ph < 0 ? 0 : (W - 1 - ph) / s2 - g.q_min + 1;
                        if (hi > g.len) hi = g.len;
                        if (lo > hi) lo = hi;
                        if (lo > 0) memset(pb, 0, (size_t)lo * sizeof *pb);
                        const float *sp = src + s2 * (lo + g.q_min) + ph;
                        if (s2 == 1) memcpy(pb + lo, sp, (size_t)(hi - lo) * sizeof *pb);
                        else
                            for (int64_t i = lo; i < hi; i++) pb[i] = sp[(i - lo) * s2];
                        if (hi < g.len) memset(pb + hi, 0, (size_t)(g.len - hi) * sizeof *pb);
                    }
                    for (int e = 0; e < k2; e++)
                        memcpy(dst + e * ldcol, rowbuf + g.ph[e] * g.len + (g.q[e] - g.q_min), row_nbytes);
                }
            }
}

/* floats of the row buffer vol2col_rows needs */
static size_t vol2col_rowbuf(const struct nn_conv3d_params *p, int64_t Wo) {
    struct vol2col_geom g;
    vol2col_geom_init(&g, p, Wo);
    return (size_t)(g.len * p->stride[2]);
}

/* ------------------------------------------------------------------------------------------ */
/* convolution                                                                                */
/* ------------------------------------------------------------------------------------------ */

struct conv_job {
    float                         *y;         /* [c_out, L] */
    const float                   *x;
    int                            c_in, c_out;
    int64_t                        in[3], out[3], L, K;
    const float                   *w, *b;
    const struct nn_conv3d_params *p;
    const struct nn_residual      *res;
    int                            relu;
    int64_t                        rows_per_item, n_rows;
    float                        **col;       /* per thread: col_floats + the vol2col row buffer */
    size_t                         col_floats;
};

/* y[:, r0*Wo .. r1*Wo) = bias + residual, the starting value of the accumulation (the GEMM then
 * runs with beta = 1, which also spares OpenBLAS its zeroing pass over C) */
static void conv_prefill(const struct conv_job *j, int64_t r0, int64_t r1) {
    const int64_t Ho = j->out[1], Wo = j->out[2];
    const int64_t P = (r1 - r0) * Wo;
    const struct nn_residual *res = j->res;
    for (int co = 0; co < j->c_out; co++) {
        float *yr = j->y + co * j->L + r0 * Wo;
        const float bias = j->b ? j->b[co] : 0.0f;
        if (res && co < res->c && res->step == 1) {
            const float *xr = res->x + co * j->L + r0 * Wo;   /* may be yr itself (in place) */
            for (int64_t i = 0; i < P; i++) yr[i] = xr[i] + bias;
        } else if (res && co < res->c) {
            const int64_t Dx = res->shape[0], Hx = res->shape[1], Wx = res->shape[2];
            float *dst = yr;
            for (int64_t r = r0; r < r1; r++, dst += Wo) {
                int64_t od = r / Ho, oh = r % Ho;
                const float *xr = res->x + ((co * Dx + 2 * od) * Hx + 2 * oh) * Wx;
                for (int64_t ow = 0; ow < Wo; ow++) dst[ow] = xr[2 * ow] + bias;
            }
        } else {
            for (int64_t i = 0; i < P; i++) yr[i] = bias;
        }
    }
}

static void relu_rows(float *y, int c, int64_t ld, int64_t P) {
    for (int co = 0; co < c; co++) {
        float *yr = y + co * ld;
        for (int64_t i = 0; i < P; i++) yr[i] = yr[i] > 0.0f ? yr[i] : 0.0f;
    }
}

static void conv_item(void *ctx, int64_t item, int tid) {
    const struct conv_job *j = ctx;
    int64_t r0 = item * j->rows_per_item, r1 = r0 + j->rows_per_item;
    if (r1 > j->n_rows) r1 = j->n_rows;
    const int64_t P = (r1 - r0) * j->out[2];
    float *col = j->col[tid], *y = j->y + r0 * j->out[2];
    vol2col_rows(col, P, j->x, j->c_in, j->in, j->out, j->p, r0, r1, col + j->col_floats);
    conv_prefill(j, r0, r1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->c_out, (int)P, (int)j->K, 1.0f, j->w, (int)j->K, col,
                (int)P, 1.0f, y, (int)j->L);
    if (j->relu) relu_rows(y, j->c_out, j->L, P);
}

/* Rows of output per work item: the column buffer (K x rows*Wo floats) within the budget, at
 * least one row, and at least 2 items per thread when there is enough work. */
static int64_t rows_per_item(int64_t K, int64_t Wo, int64_t n_rows, int n_threads) {
    int64_t r = (int64_t)(nn_col_budget() / sizeof(float)) / (K * Wo);
    /* at least ~512 GEMM columns, or the GEMMs of the deep layers (K up to 13824) get thin */
    if (r * Wo < 512) r = (512 + Wo - 1) / Wo;
    if (r < 1) r = 1;
    int64_t want = 2 * (int64_t)n_threads;
    if (n_threads > 1 && (n_rows + r - 1) / r < want) {
        r = n_rows / want;
        if (r < 1) r = 1;
    }
    if (r > n_rows) r = n_rows;
    return r;
}

/* ---- stride-1 convolutions without vol2col: one GEMM per kernel tap on a padded copy ----
 *
 * With stride 1, output (od, oh, ow) reads padded input (od + a*dil, oh + b*dil, ow + e*dil) for
 * tap (a, b, e).  Over the padded grid's flat index q = (od*Hp + oh)*Wp + ow that is q + off(tap)
 * with one constant offset per tap, so for a chunk of q the tap's input is the matrix
 * xp[ci, q0 + off .. + P) with row stride = the padded channel size: a plain strided operand for
 * sgemm, no copy.  The chunk is computed over whole padded rows (oh < Hp, ow < Wp); positions
 * outside the output (oh >= Ho or ow >= Wo) are computed and dropped, which is why this path is
 * only taken when they are few (layer1/layer2 of the encoder: 5.5% and 11%). */
struct tap_job {
    const struct conv_job *j;
    float                 *xp;        /* [c_in][ldx]: padded input, zeros around */
    int64_t                Dp, Hp, Wp, ldx;
    float                 *wt;        /* [n_taps][c_out][c_in] */
    int64_t                off[64 * 4];
    int                    n_taps;
    int64_t                prows_per_item, n_prows;
    float                **cbuf;      /* per thread [c_out][prows_per_item * Wp] */
};

static void tap_pad_item(void *ctx, int64_t ci, int tid) {
    (void)tid;
    const struct tap_job *t = ctx;
    const struct conv_job *j = t->j;
    const int64_t D = j->in[0], H = j->in[1], W = j->in[2];
    const int p0 = j->p->pad[0], p1 = j->p->pad[1], p2 = j->p->pad[2];
    float *dst = t->xp + ci * t->ldx;
    memset(dst, 0, (size_t)t->ldx * sizeof *dst);
    for (int64_t d = 0; d < D; d++)
        for (int64_t h = 0; h < H; h++)
            memcpy(dst + ((d + p0) * t->Hp + h + p1) * t->Wp + p2, j->x + ((ci * D + d) * H + h) * W,
                   (size_t)W * sizeof *dst);
}

static void tap_item(void *ctx, int64_t item, int tid) {
    const struct tap_job *t = ctx;
    const struct conv_job *j = t->j;
    const int64_t Ho = j->out[1], Wo = j->out[2], Wp = t->Wp;
    int64_t pr0 = item * t->prows_per_item, pr1 = pr0 + t->prows_per_item;
    if (pr1 > t->n_prows) pr1 = t->n_prows;
    const int64_t P = (pr1 - pr0) * Wp, q0 = pr0 * Wp;
    float *c = t->cbuf[tid];
    for (int co = 0; co < j->c_out; co++) {
        const float bias = j->b ? j->b[co] : 0.0f;
        for (int64_t i = 0; i < P; i++) c[co * P + i] = bias;
    }
    for (int k = 0; k < t->n_taps; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->c_out, (int)P, j->c_in, 1.0f,
                    t->wt + (int64_t)k * j->c_out * j->c_in, j->c_in, t->xp + q0 + t->off[k], (int)t->ldx, 1.0f, c,
                    (int)P);
    /* keep the output positions; + residual, ReLU */
    const struct nn_residual *res = j->res;
    for (int64_t pr = pr0; pr < pr1; pr++) {
        int64_t od = pr / t->Hp, oh = pr % t->Hp;
        if (oh >= Ho) continue;
        for (int co = 0; co < j->c_out; co++) {
            const float *src = c + co * P + (pr - pr0) * Wp;
            float *dst = j->y + co * j->L + (od * Ho + oh) * Wo;
            if (res && co < res->c) {
                const int64_t s = res->step;
                const float *xr = res->x + ((co * res->shape[0] + s * od) * res->shape[1] + s * oh) * res->shape[2];
                if (s == 1)
                    for (int64_t ow = 0; ow < Wo; ow++) {
                        float v = src[ow] + xr[ow];   /* xr may be dst itself (in place) */
                        dst[ow] = j->relu && v < 0.0f ? 0.0f : v;
                    }
                else
                    for (int64_t ow = 0; ow < Wo; ow++) {
                        float v = src[ow] + xr[s * ow];
                        dst[ow] = j->relu && v < 0.0f ? 0.0f : v;
                    }
            } else {
                for (int64_t ow = 0; ow < Wo; ow++) {
                    float v = src[ow];
                    dst[ow] = j->relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

/* the per-tap path pays off for stride 1, enough input channels and few dropped positions */
static int use_taps(const struct conv_job *j) {
    const struct nn_conv3d_params *p = j->p;
    if (nn_tuning_get()->no_taps) return 0;
    for (int a = 0; a < 3; a++)
        if (p->stride[a] != 1) return 0;
    if (j->c_in < 16 || p->k[0] * p->k[1] * p->k[2] > 64 * 4) return 0;
    double hp = (double)(j->in[1] + 2 * p->pad[1]), wp = (double)(j->in[2] + 2 * p->pad[2]);
    return hp * wp <= 1.2 * (double)(j->out[1] * j->out[2]);
}

static void conv_taps(struct conv_job *j, int n_threads) {
    struct tap_job t = { .j = j };
    const struct nn_conv3d_params *p = j->p;
    t.Dp = j->in[0] + 2 * p->pad[0];
    t.Hp = j->in[1] + 2 * p->pad[1];
    t.Wp = j->in[2] + 2 * p->pad[2];
    /* reads run past the last padded plane by up to the kernel's extent in (H, W) */
    int64_t slack = (int64_t)p->dil[1] * (p->k[1] - 1) * t.Wp + (int64_t)p->dil[2] * (p->k[2] - 1) + t.Wp;
    t.ldx = (t.Dp * t.Hp * t.Wp + slack + 15) & ~(int64_t)15;
    t.n_taps = p->k[0] * p->k[1] * p->k[2];
    int k = 0;
    for (int a = 0; a < p->k[0]; a++)
        for (int b = 0; b < p->k[1]; b++)
            for (int e = 0; e < p->k[2]; e++, k++)
                t.off[k] = ((int64_t)a * p->dil[0] * t.Hp + (int64_t)b * p->dil[1]) * t.Wp + (int64_t)e * p->dil[2];
    /* weights per tap: wt[k][co][ci] = w[co][ci][k] */
    t.wt = nn_scratch_get((size_t)t.n_taps * j->c_out * j->c_in);
    nn_weights_tap_major(t.wt, j->w, j->c_out, j->c_in, t.n_taps);
    t.xp = nn_scratch_get((size_t)(j->c_in * t.ldx));
    nn_parallel_for(n_threads, j->c_in, tap_pad_item, &t);
    t.n_prows = j->out[0] * t.Hp;
    t.prows_per_item = 2048 / t.Wp < 1 ? 1 : 2048 / t.Wp;
    if (n_threads > 1 && (t.n_prows + t.prows_per_item - 1) / t.prows_per_item < 2 * n_threads)
        t.prows_per_item = t.n_prows / (2 * n_threads) < 1 ? 1 : t.n_prows / (2 * n_threads);
    if (t.prows_per_item > t.n_prows) t.prows_per_item = t.n_prows;
    int64_t n_items = (t.n_prows + t.prows_per_item - 1) / t.prows_per_item;
    int nt = n_threads < n_items ? n_threads : (int)n_items;
    t.cbuf = nn_scratch_get_n(nt, (size_t)(j->c_out * t.prows_per_item * t.Wp));
    nn_parallel_for(nt, n_items, tap_item, &t);
    nn_scratch_put_n(t.cbuf, nt);
    nn_scratch_put(t.xp);
    nn_scratch_put(t.wt);
}

/* ---- convs whose zero padding dominates: one GEMM per tap over only the outputs it reaches ----
 *
 * Along one axis, the outputs o whose input o*s - p + t*dil for tap t lies inside [0, n) form an
 * interval, so per kernel tap they form a box, and so do their inputs (stepping by the stride).
 * Layer4 of the encoder (dilation 4 on a 7x8x11 grid) meets real input in only 31% of its dense
 * (tap, output) pairs.  Each tap's box of inputs is gathered once into [c_in, n_box]; then
 * W_tap [c_out, c_in] x that gathered block is added onto the output box, which was pre-filled
 * with bias + residual; ReLU last.  The threads split the output channels. */
struct box {
    int64_t lo[3], n[3];              /* outputs lo .. lo + n - 1 along each axis */
    int64_t i0[3];                    /* the input of output lo */
    int64_t nb;                       /* n[0] * n[1] * n[2] */
    size_t  off;                      /* its gathered inputs [c_in][nb] at xb + off */
};

struct box_job {
    struct conv_job *j;
    const float     *wt;              /* [n_taps][c_out][c_in] */
    float           *xb;              /* gathered inputs of every tap */
    int              n_taps;
    struct box      *bx;              /* [n_taps], box_plan allocates it */
    int64_t          max_nb, co_per_item;
    float          **tbuf;            /* per thread [co_per_item][max_nb] */
};

/* the tap's outputs (and first input) along one axis: i = o*s - p + off in [0, n), o in [0, out) */
static void box_axis(int64_t n, int64_t out, int s, int p, int64_t off, int64_t *lo, int64_t *cnt, int64_t *i0) {
    int64_t d = off - p;                          /* i = o*s + d */
    int64_t a = d >= 0 ? 0 : (-d + s - 1) / s;    /* first o with i >= 0 */
    int64_t b = n - 1 - d < 0 ? -1 : (n - 1 - d) / s;   /* last o with i <= n - 1 */
    if (b > out - 1) b = out - 1;
    *lo = a;
    *cnt = b >= a ? b - a + 1 : 0;
    *i0 = a * s + d;
}

static void box_gather_item(void *ctx, int64_t k, int tid) {
    (void)tid;
    const struct box_job *t = ctx;
    const struct conv_job *j = t->j;
    const struct box *bx = &t->bx[k];
    if (!bx->nb) return;
    const int64_t D = j->in[0], H = j->in[1], W = j->in[2];
    const int *s = j->p->stride;
    float *dst = t->xb + bx->off;
    for (int ci = 0; ci < j->c_in; ci++)
        for (int64_t a = 0; a < bx->n[0]; a++)
            for (int64_t b = 0; b < bx->n[1]; b++, dst += bx->n[2]) {
                const float *src =
                    j->x + ((ci * D + bx->i0[0] + a * s[0]) * H + bx->i0[1] + b * s[1]) * W + bx->i0[2];
                if (s[2] == 1) memcpy(dst, src, (size_t)bx->n[2] * sizeof *dst);
                else
                    for (int64_t e = 0; e < bx->n[2]; e++) dst[e] = src[e * s[2]];
            }
}

static void box_item(void *ctx, int64_t item, int tid) {
    const struct box_job *t = ctx;
    const struct conv_job *j = t->j;
    const int co0 = (int)(item * t->co_per_item);
    const int nco = (int)(co0 + t->co_per_item <= j->c_out ? t->co_per_item : j->c_out - co0);
    const int64_t Ho = j->out[1], Wo = j->out[2];
    float *tb = t->tbuf[tid];
    for (int k = 0; k < t->n_taps; k++) {
        const struct box *bx = &t->bx[k];
        if (!bx->nb) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nco, (int)bx->nb, j->c_in, 1.0f,
                    t->wt + ((int64_t)k * j->c_out + co0) * j->c_in, j->c_in, t->xb + bx->off, (int)bx->nb, 0.0f, tb,
                    (int)bx->nb);
        for (int c = 0; c < nco; c++) {
            const float *src = tb + c * bx->nb;
            for (int64_t a = 0; a < bx->n[0]; a++)
                for (int64_t b = 0; b < bx->n[1]; b++, src += bx->n[2]) {
                    float *dst = j->y + (co0 + c) * j->L + ((bx->lo[0] + a) * Ho + bx->lo[1] + b) * Wo + bx->lo[2];
                    for (int64_t e = 0; e < bx->n[2]; e++) dst[e] += src[e];
                }
        }
    }
    if (j->relu) relu_rows(j->y + (int64_t)co0 * j->L, nco, j->L, j->L);
}

/* the boxes of every tap; returns the fraction of the dense (tap, output) pairs they hold */
static double box_plan(struct box_job *t) {
    const struct conv_job *j = t->j;
    const struct nn_conv3d_params *p = j->p;
    size_t off = 0;
    int64_t valid = 0;
    t->n_taps = p->k[0] * p->k[1] * p->k[2];
    t->bx = ct_xcalloc((size_t)t->n_taps, sizeof *t->bx);
    t->max_nb = 0;
    int k = 0;
    for (int a = 0; a < p->k[0]; a++)
        for (int b = 0; b < p->k[1]; b++)
            for (int e = 0; e < p->k[2]; e++, k++) {
                struct box *bx = &t->bx[k];
                const int tap[3] = { a, b, e };
                bx->nb = 1;
                for (int ax = 0; ax < 3; ax++) {
                    box_axis(j->in[ax], j->out[ax], p->stride[ax], p->pad[ax], (int64_t)tap[ax] * p->dil[ax],
                             &bx->lo[ax], &bx->n[ax], &bx->i0[ax]);
                    bx->nb *= bx->n[ax];
                }
                bx->off = off;
                off += (size_t)(bx->nb * j->c_in);
                valid += bx->nb;
                if (bx->nb > t->max_nb) t->max_nb = bx->nb;
            }
    return (double)valid / ((double)t->n_taps * (double)j->L);
}

static void conv_boxes(struct box_job *t, int n_threads) {
    struct conv_job *j = t->j;
    size_t n_xb = 0;
    for (int k = 0; k < t->n_taps; k++) n_xb += (size_t)(t->bx[k].nb * j->c_in);
    t->xb = nn_scratch_get(n_xb ? n_xb : 1);
    nn_parallel_for(n_threads, t->n_taps, box_gather_item, t);
    conv_prefill(j, 0, j->n_rows);
    t->co_per_item = (j->c_out + n_threads - 1) / n_threads;
    int64_t n_items = (j->c_out + t->co_per_item - 1) / t->co_per_item;
    t->tbuf = nn_scratch_get_n(n_threads, (size_t)(t->co_per_item * (t->max_nb ? t->max_nb : 1)));
    nn_parallel_for(n_threads, n_items, box_item, t);
    nn_scratch_put_n(t->tbuf, n_threads);
    nn_scratch_put(t->xb);
}

/* the checks and sizes common to the conv paths */
static int conv_setup(struct conv_job *j, float *y, const float *x, int c_in, const int64_t in[3], int c_out,
                      const float *w, const float *b, const struct nn_conv3d_params *p,
                      const struct nn_residual *res, int relu) {
    *j = (struct conv_job){ .y = y, .x = x, .c_in = c_in, .c_out = c_out, .w = w, .b = b, .p = p, .res = res,
                            .relu = relu };
    if (c_in < 1 || c_out < 1) return ct_seterr("conv3d: bad channel counts %d -> %d", c_in, c_out);
    if (check_params(p, in, j->out) != 0) return -1;
    memcpy(j->in, in, sizeof j->in);
    if (y == x) return ct_seterr("conv3d: output aliases the input");
    if (res) {
        if (res->step != 1 && res->step != 2) return ct_seterr("conv3d: residual step %d", res->step);
        if (res->step == 2 && res->x == y) return ct_seterr("conv3d: output aliases the residual");
        if (res->c > c_out) return ct_seterr("conv3d: residual has more channels than the output");
        for (int a = 0; a < 3; a++) {
            int64_t want = res->step == 1 ? res->shape[a] : (res->shape[a] + 1) / 2;
            if (want != j->out[a]) return ct_seterr("conv3d: residual grid does not match the output");
        }
    }
    j->L = j->out[0] * j->out[1] * j->out[2];
    j->K = (int64_t)c_in * p->k[0] * p->k[1] * p->k[2];
    j->n_rows = j->out[0] * j->out[1];
    return 0;
}

int nn_conv3d(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *w,
              const float *b, const struct nn_conv3d_params *p, const struct nn_residual *res, int relu,
              int n_threads) {
    struct conv_job j;
    if (conv_setup(&j, y, x, c_in, in, c_out, w, b, p, res, relu) != 0) return -1;
    if (n_threads < 1) n_threads = 1;
    if (use_taps(&j)) {
        conv_taps(&j, n_threads);
        return 0;
    }
    j.rows_per_item = rows_per_item(j.K, j.out[2], j.n_rows, n_threads);
    int64_t n_items = (j.n_rows + j.rows_per_item - 1) / j.rows_per_item;
    int nt = n_threads < n_items ? n_threads : (int)n_items;
    j.col_floats = (size_t)(j.K * j.rows_per_item * j.out[2]);
    j.col = nn_scratch_get_n(nt, j.col_floats + vol2col_rowbuf(p, j.out[2]));
    nn_parallel_for(nt, n_items, conv_item, &j);
    nn_scratch_put_n(j.col, nt);
    return 0;
}

int nn_conv3d_boxes(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *wt,
                    const float *b, const struct nn_conv3d_params *p, const struct nn_residual *res, int relu,
                    int n_threads) {
    struct conv_job j;
    if (conv_setup(&j, y, x, c_in, in, c_out, wt, b, p, res, relu) != 0) return -1;
    struct box_job t = { .j = &j, .wt = wt };
    box_plan(&t);
    conv_boxes(&t, n_threads < 1 ? 1 : n_threads);
    free(t.bx);
    return 0;
}

void nn_weights_tap_major(float *wt, const float *w, int c_out, int c_in, int n_taps) {
    for (int co = 0; co < c_out; co++)
        for (int ci = 0; ci < c_in; ci++) {
            const float *src = w + ((int64_t)co * c_in + ci) * n_taps;
            for (int k = 0; k < n_taps; k++) wt[((int64_t)k * c_out + co) * c_in + ci] = src[k];
        }
}

double nn_conv3d_valid_fraction(const int64_t in[3], const struct nn_conv3d_params *p) {
    struct conv_job j = { .p = p };
    if (check_params(p, in, j.out) != 0) return 1.0;
    memcpy(j.in, in, sizeof j.in);
    j.L = j.out[0] * j.out[1] * j.out[2];
    struct box_job t = { .j = &j };
    double f = box_plan(&t);
    free(t.bx);
    return f;
}

/* ---- stem: conv + bias + ReLU + maxpool(3, 2, 1), fused per conv output plane ---- */

struct stem_job {
    struct conv_job cj;              /* the conv, y unused (plane buffers instead) */
    float         **plane;           /* per thread: [c_out, H1 * W1] */
    float          *hp;              /* [D1, c_out, Hp, Wp]: each conv plane pooled in (H, W) */
    int64_t         pooled[3];       /* Dp, Hp, Wp */
    float          *y;               /* [c_out, Dp, Hp, Wp] */
};

/* conv plane d (all its rows, in column chunks), bias + ReLU, then 3x3 stride-2 max in (H, W) */
static void stem_plane(void *ctx, int64_t d, int tid) {
    const struct stem_job *s = ctx;
    const struct conv_job *j = &s->cj;
    const int64_t H1 = j->out[1], W1 = j->out[2], L1 = H1 * W1;
    const int64_t Hp = s->pooled[1], Wp = s->pooled[2];
    float *plane = s->plane[tid], *col = j->col[tid];
    for (int64_t h0 = 0; h0 < H1; h0 += j->rows_per_item) {
        int64_t h1 = h0 + j->rows_per_item < H1 ? h0 + j->rows_per_item : H1;
        int64_t P = (h1 - h0) * W1;
        vol2col_rows(col, P, j->x, j->c_in, j->in, j->out, j->p, d * H1 + h0, d * H1 + h1, col + j->col_floats);
        for (int co = 0; co < j->c_out; co++) {
            float *yr = plane + co * L1 + h0 * W1;
            const float bias = j->b ? j->b[co] : 0.0f;
            for (int64_t i = 0; i < P; i++) yr[i] = bias;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->c_out, (int)P, (int)j->K, 1.0f, j->w, (int)j->K,
                    col, (int)P, 1.0f, plane + h0 * W1, (int)L1);
    }
    /* 3x3 stride-2 max in (H, W): first over the 3 rows (contiguous, vectorised), then over 3
     * columns of that row; ReLU last, on the 4x fewer pooled values (max and ReLU commute) */
    float *tmp = plane + (int64_t)j->c_out * L1;   /* one row of W1 floats */
    for (int co = 0; co < j->c_out; co++) {
        const float *pl = plane + co * L1;
        float *dst = s->hp + (d * j->c_out + co) * Hp * Wp;
        for (int64_t oh = 0; oh < Hp; oh++) {
            const float *r1 = pl + 2 * oh * W1;
            const float *r0 = oh > 0 ? r1 - W1 : r1, *r2 = 2 * oh + 1 < H1 ? r1 + W1 : r1;
            for (int64_t w = 0; w < W1; w++) {
                float m = r0[w] > r1[w] ? r0[w] : r1[w];
                tmp[w] = r2[w] > m ? r2[w] : m;
            }
            float *o = dst + oh * Wp;
            for (int64_t ow = 0; ow < Wp; ow++) {
                float m = tmp[2 * ow];
                if (ow > 0 && tmp[2 * ow - 1] > m) m = tmp[2 * ow - 1];
                if (2 * ow + 1 < W1 && tmp[2 * ow + 1] > m) m = tmp[2 * ow + 1];
                o[ow] = m > 0.0f ? m : 0.0f;
            }
        }
    }
}

/* pooled output plane (co, od): max over conv planes 2od-1 .. 2od+1 */
static void stem_depth(void *ctx, int64_t item, int tid) {
    (void)tid;
    const struct stem_job *s = ctx;
    const int64_t D1 = s->cj.out[0], Dp = s->pooled[0], n = s->pooled[1] * s->pooled[2];
    const int c_out = s->cj.c_out;
    int64_t co = item / Dp, od = item % Dp;
    int64_t da = 2 * od - 1 < 0 ? 0 : 2 * od - 1, db = 2 * od + 1 < D1 ? 2 * od + 1 : D1 - 1;
    float *dst = s->y + item * n;
    memcpy(dst, s->hp + (da * c_out + co) * n, (size_t)n * sizeof *dst);
    for (int64_t d = da + 1; d <= db; d++) {
        const float *src = s->hp + (d * c_out + co) * n;
        for (int64_t i = 0; i < n; i++) dst[i] = src[i] > dst[i] ? src[i] : dst[i];
    }
}

int nn_conv3d_relu_maxpool(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *w,
                           const float *b, const struct nn_conv3d_params *p, int n_threads) {
    struct stem_job s = { .y = y };
    struct conv_job *j = &s.cj;
    *j = (struct conv_job){ .x = x, .c_in = c_in, .c_out = c_out, .w = w, .b = b, .p = p, .relu = 1 };
    if (c_in < 1 || c_out < 1) return ct_seterr("conv3d: bad channel counts %d -> %d", c_in, c_out);
    if (check_params(p, in, j->out) != 0) return -1;
    memcpy(j->in, in, sizeof j->in);
    for (int a = 0; a < 3; a++) s.pooled[a] = nn_conv_out_len(j->out[a], 3, 2, 1, 1);
    j->K = (int64_t)c_in * p->k[0] * p->k[1] * p->k[2];
    j->n_rows = j->out[0] * j->out[1];
    if (n_threads < 1) n_threads = 1;
    int64_t r = (int64_t)(nn_col_budget() / sizeof(float)) / (j->K * j->out[2]);
    j->rows_per_item = r < 1 ? 1 : r > j->out[1] ? j->out[1] : r;
    int nt = n_threads < j->out[0] ? n_threads : (int)j->out[0];
    j->col_floats = (size_t)(j->K * j->rows_per_item * j->out[2]);
    j->col = nn_scratch_get_n(nt, j->col_floats + vol2col_rowbuf(p, j->out[2]));
    s.plane = nn_scratch_get_n(nt, (size_t)(c_out * j->out[1] * j->out[2] + j->out[2]));   /* + a row buffer */
    s.hp = nn_scratch_get((size_t)(j->out[0] * c_out * s.pooled[1] * s.pooled[2]));
    nn_parallel_for(nt, j->out[0], stem_plane, &s);
    nn_scratch_put_n(j->col, nt);
    nn_scratch_put_n(s.plane, nt);
    nn_parallel_for(n_threads, (int64_t)c_out * s.pooled[0], stem_depth, &s);
    nn_scratch_put(s.hp);
    return 0;
}
