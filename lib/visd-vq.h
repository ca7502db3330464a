/*
 * visd-vq.h - ViSD-Boost's VQ-VAE normality model (method.md 4.1): it reconstructs an organ's
 * stage-4 tokens [N4, 256] through the nearest codes of a 400 x 768 codebook.
 *
 *   x   = (roi - mn) / mx - 0.5          mn = min(roi), mx = max(roi - mn), over all N4 x 256 values
 *   z   = Enc([id_projs(o); x])[1:]      input1, input2 (no activation), 2 pre-norm layers of
 *                                        16 x 64 attention + 2048 GELU MLP, final LayerNorm
 *   k_i = argmin_k |z_i - e_k|^2         global over the 400 codes (lowest index on ties), or the
 *                                        organ's 100-code block [100 o, 100 o + 100) (per_organ)
 *   recon = (Dec(e_k) + 0.5) * mx + mn   2 layers + final LN, output1, output2 (no activation)
 *
 * The weights are borrowed: pointers into the tensors of the ct.weights/1 record, which must
 * outlive the model.  The record may hold only the tensors visd_vq_wants() accepts.
 *
 *     struct visd_vq *vq = visd_vq_new(&weights_record);
 *     visd_vq_recon(vq, roi, n4, organ, 0, recon, code, n_threads);
 */
#ifndef CT_VISD_VQ_H
#define CT_VISD_VQ_H

#include <stdint.h>

#include "stream.h"

#define VISD_VQ_IN     256            /* token width */
#define VISD_VQ_DIM    768            /* latent width */
#define VISD_VQ_CODES  400            /* 4 organ blocks of 100 */
#define VISD_VQ_BLOCK  100

struct visd_vq;

/* The f32 tensor named by fmt... in the weights record with shape [d0] (d1 < 0) or [d0, d1];
 * NULL + lasterr "weights: missing key K [shape]" or "weights: key K has shape S, expected ...".
 * Shared by the VQ-VAE and the organ head (visd-head.c). */
const float *visd_weight(const struct rec *w, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 1 when name is one of the VQ-VAE's tensors (method.md 8.3), for rec_reader_set_tensor_filter. */
int visd_vq_wants(const char *name);

/* Check every key and shape and build the model.  NULL + lasterr: without the VQ-VAE keys
 * "no VQ-VAE in the weights (...checkpoint_vqvae.pth...)", else the first missing or mis-shaped
 * key with its expected shape. */
struct visd_vq *visd_vq_new(const struct rec *weights);
void            visd_vq_free(struct visd_vq *m);     /* NULL-safe; the record is not touched */

/* Reconstruct roi [n, 256] (n >= 1, finite) of model organ o (0..3): recon [n, 256], code [n]
 * (NULL to skip).  per_organ restricts the search to the organ's block.  Returns 0; 1 when the
 * roi is constant (mx = 0: the normalisation would divide by zero; nothing computed); -1 +
 * lasterr on bad arguments. */
int visd_vq_recon(const struct visd_vq *m, const float *roi, int64_t n, int organ, int per_organ, float *recon,
                  int32_t *code, int n_threads);

#endif
