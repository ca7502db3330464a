/*
 * render.h - pictures of 3-D tensors: a slice of a volume as grey pixels, with
 * overlays (organ outlines, token-flag cells, an anomaly colour map), a colour
 * scale bar, a built-in 5x7 bitmap font for labels, and RGB canvases to lay
 * panels out on.  PNG output is pngio.h's.
 *
 * Geometry of a slice (struct rn_slice).  The tensor is C order [a0, a1, a2] =
 * [D, H, W] = [z, y, x].  The plane fixes one axis: axial fixes a0 (rows = a1,
 * columns = a2), coronal fixes a1 (rows = a0, columns = a2), sagittal fixes a2
 * (rows = a0, columns = a1).  With an affine and orientation on, a display
 * axis is reversed when the affine column of its voxel axis has a positive
 * dominant world component, so that on screen the dominant world coordinate
 * decreases to the right and downwards: the radiological convention (patient's
 * right on the viewer's left, anterior up in axial, superior up in coronal and
 * sagittal, anterior left in sagittal).  Without an affine the index order is kept.
 *
 * Aspect: display axis k of n_k voxels of spacing s_k (mm) becomes
 *     out_k = max(1, floor(n_k * s_k / p + 0.5)) pixels, p = min(s_rows, s_cols) / scale,
 * and output pixel o shows voxel i = ((2 o + 1) n_k) div (2 out_k) (integer division;
 * nearest neighbour), then n_k - 1 - i when the axis is reversed.
 *
 * Grey: g = (v - lo) / (hi - lo) in double, pixel = 0 when g <= 0 or v is NaN,
 * 255 when g >= 1, else floor(g * 255 + 0.5).  R = G = B.
 */
#ifndef CT_RENDER_H
#define CT_RENDER_H

#include <stdint.h>

#include "tensor.h"

/* ---- RGB canvases ---- */
struct rn_image {
    int      w, h;
    uint8_t *rgb;                   /* h rows of w pixels, 3 bytes each; malloc'd */
};
/* A w x h canvas filled with colour bg (3 bytes). */
void rn_image_init(struct rn_image *im, int w, int h, const uint8_t bg[3]);
void rn_image_free(struct rn_image *im);
/* Copy src into dst with its top-left corner at (x, y); clipped. */
void rn_blit(struct rn_image *dst, const struct rn_image *src, int x, int y);
void rn_fill_rect(struct rn_image *im, int x, int y, int w, int h, const uint8_t c[3]);
/* One pixel blended: p = (p (256 - a) + c a + 128) >> 8 per channel, a in 0..256. */
void rn_blend(uint8_t *p, const uint8_t c[3], int a);

/* ---- text: a 5x7 font in 6x8 cells (digits, letters, common punctuation; other
 * characters are drawn as '?'), scaled by an integer ---- */
#define RN_GLYPH_W 6
#define RN_GLYPH_H 8
int  rn_text_width(const char *s, int scale);
/* Draw s with its cell's top-left corner at (x, y); returns the width drawn. */
int  rn_text(struct rn_image *im, int x, int y, const char *s, const uint8_t c[3], int scale);

/* ---- colours ---- */
/* Organ colour for mask label k >= 1 (a fixed palette of 10, cycled). */
const uint8_t *rn_label_colour(int k);
/* The anomaly colour map at t in [0, 1] (clamped): viridis-like, dark blue -> yellow. */
void rn_colormap(double t, uint8_t out[3]);

/* ---- slices ---- */
enum rn_plane { RN_AXIAL, RN_CORONAL, RN_SAGITTAL };
const char *rn_plane_name(enum rn_plane p);
int         rn_plane_parse(const char *s, enum rn_plane *out);   /* axial|coronal|sagittal (or a|c|s) */

struct rn_slice {
    enum rn_plane plane;
    int      fixed;                 /* the fixed C axis (0, 1, 2) */
    int64_t  index;                 /* slice index along it */
    int      axis_r, axis_c;        /* C axes shown along rows and columns */
    int64_t  shape[3];              /* the volume's shape */
    int      flip_r, flip_c;        /* display axis reversed (orientation) */
    double   sp_r, sp_c;            /* voxel spacing along rows and columns (mm) */
    int      out_h, out_w;          /* picture size in pixels */
    int64_t *src_r, *src_c;         /* per output row / column: voxel index along axis_r / axis_c */
    char     letters[4][2];         /* orientation letters at the top, bottom, left, right edges ("" if unknown) */
};
/* affine: C-order index -> world (may be NULL); spacing: per C axis (NULL: from the
 * affine's column norms, else 1); scale > 0; orient: apply the affine's orientation.
 * -1 + lasterr on a slice index out of range or an absurd picture size. */
int  rn_slice_init(struct rn_slice *s, const int64_t shape[3], enum rn_plane plane, int64_t index,
                   const double (*affine)[4], const double *spacing, double scale, int orient);
void rn_slice_free(struct rn_slice *s);
/* Flat element offset of the voxel shown at output pixel (r, c). */
int64_t rn_slice_voxel(const struct rn_slice *s, int r, int c);

/* Grey pixels of tensor t (any dtype, shape == s->shape) into im (resized to the slice). */
void rn_grey(const struct rn_slice *s, const struct tn_tensor *t, double lo, double hi, struct rn_image *im);

/* Outline of every non-zero label of mask (integer tensor, shape == s->shape): an
 * output pixel whose label is k > 0 and differs from one of its 4 neighbours (or
 * touches the picture's edge) is painted rn_label_colour(k).  Labels present in
 * the slice are OR-ed into *seen as bit (k - 1) for k <= 64.  -1 + lasterr when
 * mask is not an integer tensor. */
int  rn_outline(const struct rn_slice *s, const struct tn_tensor *mask, struct rn_image *im, uint64_t *seen);

/* Token-flag cells of one stage on the slice.  grid: the stage's token grid;
 * cell: voxels per cell per C axis (grid * cell == s->shape); tok: flagged token
 * indices (row-major on grid).  Cell borders: an output pixel whose cell differs
 * from that of the pixel above it or left of it is a border pixel, blended with
 * white at alpha 96/256.  Pixels of flagged cells that are not borders are blended
 * with colour at alpha 112/256.  Returns the number of flagged cells cut by the
 * slice, or -1 + lasterr on a token out of range. */
int  rn_flags(const struct rn_slice *s, const int64_t grid[3], const int64_t cell[3], const int32_t *tok,
              int64_t n_tok, const uint8_t colour[3], struct rn_image *im);

/* Anomaly overlay, in two steps so that several maps combine by their maximum.
 * rn_anomaly_sample: the pixel's voxel v (index of the rendered volume) goes to
 * world with base_affine, back to the anomaly grid with the inverse of
 * anom_affine, and to the nearest cell floor(x + 0.5 + 1e-6) per axis; a cell
 * inside the grid raises vals[r * out_w + c] to its value when that is larger
 * (vals starts at 0).  Returns the number of pixels inside the grid; -1 + lasterr
 * when anom_affine is singular or anom is not 3-D.
 * rn_anomaly_paint: every pixel with a finite value > 0 is blended with
 * rn_colormap((value - lo) / (hi - lo)) at alpha 128/256; returns their count. */
int64_t rn_anomaly_sample(const struct rn_slice *s, const double base_affine[4][4], const struct tn_tensor *anom,
                          const double anom_affine[4][4], float *vals);
int64_t rn_anomaly_paint(const struct rn_slice *s, const float *vals, double lo, double hi, struct rn_image *im);

/* A vertical colour bar of w x h pixels at (x, y) (hi at the top), with the
 * values lo, (lo + hi) / 2 and hi written to its right in colour fg. Returns the
 * total width drawn. */
int  rn_colorbar(struct rn_image *im, int x, int y, int w, int h, double lo, double hi, const uint8_t fg[3]);

/* 4x4 inverse; -1 when singular. */
int  rn_mat4_inverse(const double m[4][4], double inv[4][4]);

#endif
