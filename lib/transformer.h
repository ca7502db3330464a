/*
 * transformer.h - the transformer operations shared by the models of ctvis: the VQ-VAE and the
 * organ head (vq-recon, method.md 2.4, 4.1) and the BERT text encoder (text-encode, method.md 3).
 *
 * Activations are float32 row-major matrices, one token per row: x [n, dim].  Weights are
 * PyTorch's: a Linear's weight is [out, in] and computes y = x W^T + b.  Every function works on
 * caller-owned memory, keeps no state between calls apart from the nn scratch pool (nn-impl.h),
 * is safe to call from several threads on different outputs, and never prints or exits: the
 * functions that can fail return 0, or -1 with ct_lasterr() set.
 *
 *     tfm_linear(h, x, n, 256, 512, w1, b1, nt);          // h [n, 512] = x [n, 256] W1^T + b1
 *     tfm_layernorm(h, h, n, 512, gamma, beta, 1e-5f);     // in place
 *     tfm_gelu(h, n * 512);                                // exact erf GELU, in place
 *     tfm_attention(o, q, 3 * 1024, k, 3 * 1024, v, 3 * 1024, n, n, 16, 64, 0.125f, nt);
 *
 * n_threads is the number of threads a call may use (>= 1).
 */
#ifndef CT_TRANSFORMER_H
#define CT_TRANSFORMER_H

#include <stdint.h>

/* y [n, out] = x [n, in] W^T + b; W [out, in] (PyTorch Linear), b [out] or NULL.  y must not
 * alias x.  ldx / ldy variants: tfm_linear_ld reads rows of x with stride ldx floats and writes
 * rows of y with stride ldy (ldx >= in, ldy >= out), for slices of wider matrices. */
int tfm_linear(float *y, const float *x, int64_t n, int in, int out, const float *w, const float *b,
               int n_threads);
int tfm_linear_ld(float *y, int64_t ldy, const float *x, int64_t ldx, int64_t n, int in, int out, const float *w,
                  const float *b, int n_threads);

/* LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance,
 * as torch.nn.LayerNorm (accumulated in double).  y may alias x. */
void tfm_layernorm(float *y, const float *x, int64_t n, int dim, const float *gamma, const float *beta, float eps);

/* GELU, exact form 0.5 x (1 + erf(x / sqrt 2)) (torch nn.GELU(), transformers "gelu"), in place. */
void tfm_gelu(float *x, int64_t n);

/* Softmax of each row of x [rows, cols], in place: exp(x - max) / sum, as torch.softmax. */
void tfm_softmax_rows(float *x, int64_t rows, int64_t cols);

/* Multi-head scaled dot-product attention without masking:
 *   for each head h (columns h*dh .. h*dh+dh-1 of q, k and v):
 *     out[:, h] = softmax(q[:, h] k[:, h]^T * scale) v[:, h]
 * q [nq, heads*dh] with row stride ldq, k and v [nk, heads*dh] with row strides ldk, ldv (so q, k
 * and v may be column slices of one fused qkv matrix), out [nq, heads*dh] contiguous, not
 * aliasing q, k or v.  nk may be large (10^5 keys for the organ head's single query): the scores
 * are computed in blocks of queries, never more than a few MB at a time.  nq or nk of 0 is an
 * error (the softmax over no keys is undefined; callers handle empty inputs themselves). */
int tfm_attention(float *out, const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                  int64_t nq, int64_t nk, int heads, int dh, float scale, int n_threads);

/* y [n] = x [n] / max(||x||_2, eps) (F.normalize, eps 1e-12 by the callers).  y may alias x. */
void tfm_l2_normalize(float *y, const float *x, int n, float eps);

#endif
