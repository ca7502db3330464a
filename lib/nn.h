/*
 * nn.h - the neural-network ops of ctvis: 3-D convolution, pooling, token projections, BN
 * folding.  Models built from them have their own headers (nn-visd.h: the ViSD-Boost image
 * encoder).  BLAS kernels: lib/blas.h (the tool calls ct_blas_init first).
 *
 * Activations are float32, channels first, C order: a feature map is [C, D, H, W] (one sample,
 * no batch axis), exactly PyTorch's NCDHW memory with N = 1.  Convolution weights are PyTorch's
 * [C_out, C_in, kD, kH, kW] (cross-correlation).  BatchNorm is folded into the convolution
 * before inference (nn_fold_bn), so every conv here has a bias.
 *
 *     struct nn_conv3d_params p = { .k = {3,3,3}, .stride = {1,1,1}, .pad = {1,1,1}, .dil = {1,1,1} };
 *     int64_t in[3] = { 56, 64, 88 }, out[3];
 *     nn_conv3d_out_shape(in, &p, out);                       // { 56, 64, 88 }
 *     nn_conv3d(y, x, 64, in, 64, w, b, &p, NULL, 1, n_threads);  // y = relu(conv(x) + b)
 *
 * Convolution runs over chunks of output rows as GEMMs accumulating onto bias + residual, then
 * ReLU, while the chunk is in cache: stride-1 convs whose zero padding adds few positions as one
 * GEMM per kernel tap on a padded copy of the input (no vol2col), the others as vol2col (a
 * column buffer of a few MB) + one sgemm.  n_threads > 1 splits the chunks over pthreads, each
 * calling a single-threaded sgemm (measured faster than OpenBLAS's own threads here: see
 * docs/encode.md).  The 3x3x3 stride-1 convs can instead run as Winograd F(2x2x2, 3x3x3)
 * (nn_conv3d_wino below, lib/nn-winograd.c): 3.375x fewer multiplications, same results to ~1e-6.
 * Results are deterministic for a given n_threads; the chunking, and so the last bits, may change
 * with it.
 *
 * Functions return 0, or -1 with ct_lasterr() set; they never print or exit.
 *
 * Process-wide state (one set per process; the ops are not meant to run concurrently from
 * several caller threads):
 *  - OpenBLAS's thread count: the ops set it to 1 while their own workers call sgemm, and to
 *    n_threads for the standalone GEMM of nn_pointwise_at (openblas_set_num_threads).
 *  - the scratch pool: the ops keep their multi-MB work buffers between calls (mutex-protected);
 *    nn_scratch_release frees them.
 *  - the tuning below (nn_tuning_set), read by every conv.
 */
#ifndef CT_NN_H
#define CT_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- ops ---- */

struct nn_conv3d_params {
    int k[3];                        /* kernel size (D, H, W) */
    int stride[3];                   /* stride (D, H, W) */
    int pad[3];                      /* zero padding on both sides (D, H, W) */
    int dil[3];                      /* dilation (D, H, W) */
};

/* Output length of a conv/pool along one axis: floor((n + 2p - dil(k-1) - 1) / s) + 1, or 0 when
 * the padded input is shorter than the (dilated) kernel. */
int64_t nn_conv_out_len(int64_t n, int k, int stride, int pad, int dil);
void    nn_conv3d_out_shape(const int64_t in[3], const struct nn_conv3d_params *p, int64_t out[3]);

/* A residual added before the final ReLU of a conv (ResNet shortcut).  With step 1 it is the
 * identity: res[c, i] = x[c, i] (x has the output's grid).  With step 2 it is shortcut "A":
 * res[c, d, h, w] = x[c, 2d, 2h, 2w] (x's grid is [D, H, W], the output's ceil(n/2)).  Channels
 * c >= res.c get no residual (zero padding of the channels). */
struct nn_residual {
    const float *x;                  /* [c, shape[0], shape[1], shape[2]] */
    int          c;                  /* channels of x (<= C_out) */
    int64_t      shape[3];           /* grid of x */
    int          step;               /* 1 or 2 */
};

/* y[C_out, out] = act(conv3d(x, w) + b[co] + res), act = ReLU when relu != 0.
 * x [c_in, in[0], in[1], in[2]]; w [c_out, c_in, k0, k1, k2]; b [c_out] (NULL = 0); res may be
 * NULL.  y must not alias x; it may be res->x itself for an identity residual (step 1), which
 * is then updated in place. */
int nn_conv3d(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *w,
              const float *b, const struct nn_conv3d_params *p, const struct nn_residual *res, int relu,
              int n_threads);

/* The same as nn_conv3d, as one GEMM per kernel tap over only the outputs whose input for that
 * tap lies inside the volume, so that no multiplication meets the zero padding: for convs where
 * the padding dominates (layer4 of the encoder, dilation 4 on a 7x8x11 grid: 31% of the dense
 * work, nn_conv3d_valid_fraction).  wt holds the weights tap-major, [k0 * k1 * k2][c_out][c_in]
 * (nn_weights_tap_major converts PyTorch's [c_out][c_in][k0 * k1 * k2]). */
int    nn_conv3d_boxes(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *wt,
                       const float *b, const struct nn_conv3d_params *p, const struct nn_residual *res, int relu,
                       int n_threads);
void   nn_weights_tap_major(float *wt, const float *w, int c_out, int c_in, int n_taps);
double nn_conv3d_valid_fraction(const int64_t in[3], const struct nn_conv3d_params *p);

/* Winograd F(2x2x2, 3x3x3) for the 3x3x3 stride-1 convs with padding = dilation (the output keeps
 * the input's grid): 3.375x fewer multiplications than the direct conv (lib/nn-winograd.c says
 * how).  nn_wino_new transforms the weights w [c_out, c_in, 3, 3, 3] once (64 * c_out * c_in
 * floats); nn_conv3d_wino then computes the same as nn_conv3d with k 3, stride 1, pad = dil and
 * dilation dil (any dil >= 1, any grid >= 1x1x1). */
struct nn_wino;
struct nn_wino *nn_wino_new(const float *w, int c_out, int c_in);
void            nn_wino_free(struct nn_wino *u);   /* NULL-safe */
int nn_conv3d_wino(float *y, const float *x, const int64_t in[3], const struct nn_wino *u, const float *b, int dil,
                   const struct nn_residual *res, int relu, int n_threads);

/* Which instruction-set variant of its data transforms nn_conv3d_wino runs on this CPU, for -v:
 * "AVX-512 (chosen at run time)", "AVX2 (build target)", ... */
const char *nn_wino_isa(void);

/* y = maxpool3d(x) with cubic kernel k, stride s, padding p on every axis; the padding counts as
 * -inf (PyTorch's max_pool3d).  x [c, in[0..2]]; y [c, out] with out = nn_conv_out_len(in, k, s, p, 1). */
int nn_maxpool3d(float *y, const float *x, int c, const int64_t in[3], int k, int s, int p, int n_threads);

/* y = maxpool3d(relu(conv3d(x, w) + b), k 3, stride 2, pad 1): the ResNet stem, fused so that the
 * full-resolution conv output is never stored (only one plane per thread).  out = the pooled grid. */
int nn_conv3d_relu_maxpool(float *y, const float *x, int c_in, const int64_t in[3], int c_out, const float *w,
                           const float *b, const struct nn_conv3d_params *p, int n_threads);

/* A 1x1x1 convolution at selected voxels: out[i, :] = w @ x[:, tok[i]] + b, for i < n.
 * x [c_in, len] (a feature map flattened), w [c_out, c_in], b [c_out], out [n, c_out].
 * tok NULL = every voxel (n must equal len).  Indices must lie in [0, len). */
int nn_pointwise_at(float *out, const float *x, int c_in, int64_t len, const int32_t *tok, int64_t n, int c_out,
                    const float *w, const float *b, int n_threads);

/* Fold an eval-mode BatchNorm that follows a convolution into it, in place:
 * s = gamma / sqrt(var + eps); w[co, :] *= s; b[co] = (b[co] - mean) * s + beta.
 * w [c_out, per_out]; b [c_out] (input: the conv's bias, zeros when it has none). */
void nn_fold_bn(float *w, float *b, int c_out, int64_t per_out, const float *gamma, const float *beta,
                const float *mean, const float *var, double eps);

/* Tuning of the conv paths, for A/B tests and measurements (the defaults are the measured best).
 * Zero fields keep the default.  Set before running convs; it stays until set again (NULL =
 * all defaults).  The tool decides where the values come from (encode: CT_NN_* variables). */
struct nn_tuning {
    size_t col_bytes;                /* vol2col column buffer per thread, bytes (default 3 MB) */
    int    no_taps;                  /* 1: vol2col for the stride-1 convs that take one GEMM per tap */
    int    wino_tiles;               /* Winograd tiles per chunk (default: by channel counts) */
};
void nn_tuning_set(const struct nn_tuning *t);

/* The ops keep their scratch buffers (column buffers, pooled planes) in a small pool between
 * calls; this frees it (nn_visd_free calls it too). */
void nn_scratch_release(void);

#endif
