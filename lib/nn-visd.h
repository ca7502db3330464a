/*
 * nn-visd.h - the ViSD-Boost image encoder (method.md 2.1-2.2): a 3-D ResNet-18 with shortcut A
 * and dilations 1/1/2/4, then proj1..4 to 256 channels, built on the ops of nn.h.  The model owns
 * its (BN-folded, transformed) weights and its last stage maps; the ops' process-wide state
 * (OpenBLAS threads, scratch pool, tuning) is described in nn.h.
 *
 *     struct nn_visd *m = nn_visd_new(weights_record, NULL);
 *     nn_visd_trunk(m, image, shape, n_threads);
 *     nn_visd_proj(m, 1, tok, n, out, n_threads);    // out [n, 256]
 *     nn_visd_free(m);
 */
#ifndef CT_NN_VISD_H
#define CT_NN_VISD_H

#include <stdint.h>

struct rec;                          /* stream.h */

#define NN_VISD_STAGES 4
#define NN_VISD_EMBED  256

/* Checkpoint key prefix of the encoder tensors (method.md 8.3). */
#define NN_VISD_PREFIX "visual_encoder."

struct nn_visd;

/* Which conv paths the encoder uses (NULL = the defaults, all zero: the measured fastest). */
struct nn_visd_opts {
    int no_winograd;                 /* 1: layers 1-3 on the direct convs instead of Winograd */
    int no_boxes;                    /* 1: layer4 on vol2col instead of per-tap GEMMs without padding */
};

/* Build the encoder from a ct.weights/1 record: every key of method.md 8.3 under
 * "visual_encoder." must be present as f32 with its exact shape, and no other key may use that
 * prefix (keys ending in ".num_batches_tracked" are ignored).  BatchNorm is folded here; the
 * record can be freed afterwards.  NULL + lasterr naming the offending key. */
struct nn_visd *nn_visd_new(const struct rec *weights, const struct nn_visd_opts *opts);
void            nn_visd_free(struct nn_visd *m);       /* NULL-safe */

/* The expected tensors, for tools that list them: key i (0 <= i < count) and its shape.  The
 * key table is built on first use (process-wide, not thread-safe on that first call). */
int         nn_visd_key_count(void);
const char *nn_visd_key(int i, int *ndim, int64_t shape[5]);

/* Run the trunk (conv1 .. layer4) on image [shape[0], shape[1], shape[2]] (any size >= 1).
 * The four stage maps stay inside m until the next run. */
int nn_visd_trunk(struct nn_visd *m, const float *image, const int64_t shape[3], int n_threads);

/* Stage s (1..4) of the last trunk run: its map [c, grid] (c = 64, 128, 256, 512). */
const float *nn_visd_stage(const struct nn_visd *m, int s, int *c, int64_t grid[3]);

/* proj_s of the last trunk run at tokens tok[0..n) (row-major indices on the stage grid), or at
 * every token when tok is NULL: out [n, 256]. */
int nn_visd_proj(const struct nn_visd *m, int s, const int32_t *tok, int64_t n, float *out, int n_threads);

/* Stage grids (D', H', W') of stages 1..4 for an input of this shape: each axis through conv1
 * (7, stride 1 or 2, pad 3), the max-pool (3/2/1) and the strided first convs of layers 2..4
 * (ceil halving); for multiples of (16,32,32): (D/2,H/4,W/4) ... (D/16,H/32,W/32). */
void nn_visd_grids(const int64_t shape[3], int64_t grid[4][3]);

/* Multiply-accumulates of the trunk (conv1 .. layer4) for an input of this shape. */
double nn_visd_trunk_macs(const int64_t shape[3]);

#endif
