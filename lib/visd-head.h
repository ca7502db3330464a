/*
 * visd-head.h - ViSD-Boost's organ head (method.md 2.4 steps 4-7): from an organ's tokens of the
 * four stages and the VQ-VAE's reconstruction of its stage-4 tokens to the 256-d organ feature.
 *
 *   hybrid = [key1..key4 | key1..key3, recon4]                     [N, 512]
 *   h      = res_projs2[o](res_projs1[o](hybrid))                   no activation between them
 *   a      = MHA(query_tokens[o], h, h)   4 heads of 64, in_proj q|k|v, softmax((q.k)/8), out_proj
 *   f      = L2(vision_projs[o](a))                                 eps 1e-12
 *
 * Computed without materialising hybrid, h, K or V (N reaches 10^5 stage-1 tokens): with a single
 * query and no activation, the head is linear in the tokens up to the softmax, so per organ and
 * head the score of a token is g_h . x + const, with g_h = (W2 W1)^T Wk_h^T q_h / 8 folded once at
 * load (the constant q_h . (Wk_h c + bk_h) / 8 cancels in the softmax), and the attention output is
 * Wv_h (W2 W1 (sum_i p_hi x_i) + c) + bv_h because sum_i p_hi = 1 (c = W2 b1 + b2).  The folds
 * and sums run in double; exactness against torch.nn.MultiheadAttention is the parity test's.
 *
 * Weights borrowed from the ct.weights/1 record (visd_head_wants()) while the model is built;
 * the model keeps its own folded copies (about 100 KB per organ).
 */
#ifndef CT_VISD_HEAD_H
#define CT_VISD_HEAD_H

#include <stdint.h>

#include "stream.h"

#define VISD_HEAD_DIM    256
#define VISD_HEAD_ORGANS 4

struct visd_head;

/* 1 when name is one of the head's tensors (method.md 8.3), for rec_reader_set_tensor_filter. */
int visd_head_wants(const char *name);

/* Check keys and shapes, fold the weights.  NULL + lasterr naming the missing/mis-shaped key. */
struct visd_head *visd_head_new(const struct rec *weights);
void              visd_head_free(struct visd_head *m);    /* NULL-safe */

/* The organ feature feat [256] of model organ o (0..3) from key[s] [n[s], 256] (s = 0..3, stages
 * 1..4, n[s] >= 0, n[3] >= 1) and recon4 [n[3], 256].  -1 + lasterr on bad arguments. */
int visd_head_feature(const struct visd_head *m, int organ, const float *const key[4], const int64_t n[4],
                      const float *recon4, float feat[VISD_HEAD_DIM], int n_threads);

#endif
