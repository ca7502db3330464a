/*
 * resample.h - the maths of ct-resample: resizing a CT volume and its label
 * map to a target voxel size exactly as torch.nn.functional.interpolate does
 * (MONAI 1.3 Resize, used by the fVLM preprocessing), HU windowing, cropping
 * to the organs' bounding box and symmetric padding; plus the merge table of
 * an organ set (which TotalSegmentator classes merge into which organ: the
 * sets themselves are lib/organs.h).
 *
 * Everything is in C order: a volume is [D, H, W] = [z, y, x], the NIfTI file
 * (x, y, z) read as is.  The reference (method.md 1.4-1.5) works on (x, y, z)
 * tensors; the arithmetic below is written so that the numbers are the same:
 *
 *   trilinear  align_corners=False: per axis scale = (float)n_in / n_out,
 *              src = max(scale * (dst + 0.5) - 0.5, 0) in double (torch's
 *              acc_type), i0 = (int)src, i1 = i0 + (i0 < n_in - 1),
 *              w1 = (float)(src - i0), w0 = 1 - w1 in float; the lerps are
 *              nested with the NIfTI z axis innermost (torch's last dim),
 *              then y, then x, each fma(t0, w0, t1 * w1) in float as torch's
 *              compiled kernel does (bit-identical on F-ordered input).
 *   nearest    legacy "nearest": src = min(floor((float)dst * scale), n_in - 1)
 *              in float, scale = (float)n_in / n_out.  Not nearest-exact.
 *
 *     struct rs_params p = { .spacing_mm = {3, 1, 1}, .xy_swap = 1, .rule = RS_SIZE_FLOOR,
 *                            .margin = {5, 20, 20}, .pad_to = {112, 256, 352} };
 *     struct rs_grid g;
 *     rs_grid_init(&g, in_shape, spacing_in, &p);               // resized sizes
 *     if (rs_labels_bbox(&lab, &lut, &g, bmin, bmax, threads) == 1)
 *         rs_grid_crop(&g, bmin, bmax, p.margin);               // organ box
 *     rs_grid_pad(&g, p.pad_to);                                // g.out_shape
 *     rs_labels_write(&lab, &lut, &g, mask, counts, n_organs + 1, threads);  // [D,H,W] u8
 *     rs_image_write(&img, &g, &win, image, threads);           // [D,H,W] f32
 *     rs_grid_affine(&g, src_affine, out_affine);               // output index -> world
 *
 * Functions return 0 or -1 with ct_seterr(); nothing here prints or exits.
 */
#ifndef CT_RESAMPLE_H
#define CT_RESAMPLE_H

#include <stdint.h>

#include "organs.h"
#include "tensor.h"

/* ---- per-axis index tables ---- */

/* torch's linear source indices and weights for one axis (align_corners=False).
 * i0, i1: [n_out] source indices; w0, w1: [n_out] weights (w0 + w1 = 1). */
void rs_axis_linear(int64_t n_in, int64_t n_out, int32_t *i0, int32_t *i1, float *w0, float *w1);
/* torch's legacy nearest source index for one axis: idx [n_out]. */
void rs_axis_nearest(int64_t n_in, int64_t n_out, int32_t *idx);

/* ---- output sizes ---- */
enum rs_size_rule {
    RS_SIZE_FLOOR,                   /* int(n * (s_in / s_out)): fVLM, CT-CLIP */
    RS_SIZE_ROUND,                   /* round half up: scipy zoom */
    RS_SIZE_CEIL,                    /* TorchIO */
};
/* n * (spacing_in / spacing_out) under the rule; -1 + lasterr when < 1 or huge. */
int64_t rs_out_size(int64_t n, double spacing_in, double spacing_out, enum rs_size_rule rule);

/* ---- the geometry of one case ---- */
struct rs_params {
    double            spacing_mm[3]; /* target voxel size [z, y, x]: 3, 1, 1 */
    int               xy_swap;       /* fVLM quirk: x size uses the y scale and vice versa (1) */
    enum rs_size_rule rule;          /* RS_SIZE_FLOOR */
    int64_t           margin[3];     /* crop margin before the organs [D, H, W]: 5, 20, 20 */
    int64_t           pad_to[3];     /* minimum output size [D, H, W]: 112, 256, 352 */
};

struct rs_grid {
    int64_t in_shape[3];             /* source [nz, ny, nx] */
    double  spacing_in[3];           /* source spacing used [sz, sy, sx] mm */
    int64_t res_shape[3];            /* resampled grid [D, H, W] before crop */
    int64_t lo[3], hi[3];            /* crop box in the resampled grid, [lo, hi) */
    int64_t pad_before[3];           /* zeros before the crop box, per axis */
    int64_t pad_after[3];
    int64_t out_shape[3];            /* hi - lo + pads */
};

/* Sizes of the resampled grid; the crop box starts as the whole grid with no
 * padding.  -1 + lasterr on a zero or non-finite spacing. */
int rs_grid_init(struct rs_grid *g, const int64_t in_shape[3], const double spacing_in[3],
                 const struct rs_params *p);
/* The crop box around organ voxels bbox_min..bbox_max (inclusive, in the
 * resampled grid): lo = max(min - margin, 0), hi = min(max + margin, size)
 * (exclusive, so margin voxels before and margin - 1 after: fVLM's slicing). */
void rs_grid_crop(struct rs_grid *g, const int64_t bbox_min[3], const int64_t bbox_max[3], const int64_t margin[3]);
/* Symmetric zero padding up to pad_to (never crops): before = (t - s) / 2. */
void rs_grid_pad(struct rs_grid *g, const int64_t pad_to[3]);
/* Output voxel index (d, h, w, 1) -> world mm, given the source C-order affine
 * (columns z, y, x): the corner-aligned geometry of align_corners=False. */
void rs_grid_affine(const struct rs_grid *g, const double src[4][4], double out[4][4]);

/* ---- sources ---- */
struct rs_src {
    const struct tn_tensor *t;       /* 3-D [nz, ny, nx], any dtype */
    int    scaled;                   /* apply slope/inter (computed in double, as nibabel) */
    double slope, inter;
};

/* Non-finite voxels of a float source (0 for integer types). */
int64_t rs_count_nonfinite(const struct rs_src *s, int threads);
/* First voxel of a float label source that is not an integer (or not finite):
 * 1 and *flat set when there is one, else 0. */
int rs_find_noninteger(const struct rs_src *s, int64_t *flat, double *value);

/* ---- labels: merge (lut) + legacy nearest ---- */
/* lut[v] = mask value (0 = background) for label values 0 <= v < n_lut; any
 * other value maps to 0. */
struct rs_lut {
    const uint8_t *map;
    int64_t        n;
};
/* Bounding box of non-zero merged labels over the whole resampled grid.
 * Returns 1 (found, bmin/bmax inclusive), 0 (no organ voxel), -1 on error. */
int rs_labels_bbox(const struct rs_src *lab, const struct rs_lut *lut, const struct rs_grid *g, int64_t bmin[3],
                   int64_t bmax[3], int threads);
/* Write the merged, resampled, cropped and padded mask [out_shape] (u8,
 * zeroed here) and count voxels per mask value: counts[0..n_values). */
int rs_labels_write(const struct rs_src *lab, const struct rs_lut *lut, const struct rs_grid *g, uint8_t *mask,
                    int64_t *counts, int n_values, int threads);

/* ---- image: trilinear + window ---- */
struct rs_window {
    int   on;                        /* 0: values stay HU */
    double lo, hi;                   /* v = clamp((x - (float)lo) / (float)(hi - lo), 0, 1) in float */
};
/* Write the resampled, windowed, cropped and padded image [out_shape] (f32,
 * padding zeroed here). */
int rs_image_write(const struct rs_src *img, const struct rs_grid *g, const struct rs_window *w, float *out,
                   int threads);

/* ---- the merge table of an organ set (struct org_classes, lib/organs.h) ---- */
/* The merge table: lut with n = n_classes + 1 entries (arena). */
void rs_organs_lut(const struct org_classes *o, struct tn_arena *a, struct rs_lut *lut);

#endif
