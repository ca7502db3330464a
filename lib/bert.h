/*
 * bert.h - the CXR-BERT text encoder of ViSD-Boost and its prompt features (method.md 3.1-3.2),
 * on the transformer ops of transformer.h.
 *
 *     struct bert *b = bert_new(&weights_record, 0);    // borrows the record's tensors
 *     const int32_t *ids[2] = { neg_ids, pos_ids };
 *     int lens[2] = { n_neg, n_pos };
 *     float feat[2 * 256];
 *     bert_prompt_features(b, 2, ids, lens, feat, n_threads);   // [CLS] -> text_proj -> L2
 *     bert_free(b);                                      // before the record's arena goes
 *
 * Forward, as LAVIS med.py in mode "text" with token_type_ids=None: x = LayerNorm(word[id] +
 * position[i]) (eps 1e-12, no token-type embedding), then per layer (post-LN): a = LN(x +
 * Wo attn(Wq x, Wk x, Wv x)), x = LN(a + W2 gelu(W1 a)) with exact erf GELU, heads of width
 * hidden / heads, scale 1/sqrt(width).  Every sequence attends only to itself (this equals the
 * released padded batch with its attention mask).  The layer count, hidden width, intermediate
 * width, vocabulary and position table sizes come from the tensor shapes.
 */
#ifndef CT_BERT_H
#define CT_BERT_H

#include <stdint.h>

#include "stream.h"

#define BERT_PREFIX "text_encoder."
#define BERT_LN_EPS 1e-12f

struct bert;

/* From the tensors text_encoder.* (method.md 8.3), text_proj.{weight,bias} and temp of a
 * ct.weights/1 record, without copying them: the record's arena must outlive the model.  heads 0:
 * meta text_heads when present, else hidden / 64.  NULL + lasterr when a tensor is missing,
 * mis-shaped or not f32 ("no text encoder (text_encoder.*) in the weights" when there is none). */
struct bert *bert_new(const struct rec *w, int heads);
void bert_free(struct bert *b);

struct bert_dims {
    int layers, hidden, heads, intermediate, vocab, max_positions, proj;
};
void   bert_dims(const struct bert *b, struct bert_dims *d);
double bert_temp(const struct bert *b);     /* the checkpoint's scalar temp */

/* The [CLS] state of the last layer of each of n sequences (ids[s][0 .. lens[s]), ids < vocab,
 * 1 <= lens[s] <= max_positions) through text_proj, L2-normalised: out [n, proj].  All sequences
 * run together through the Linear layers.  0, or -1 + lasterr. */
int bert_prompt_features(const struct bert *b, int n, const int32_t *const *ids, const int *lens, float *out,
                         int n_threads);

#endif
