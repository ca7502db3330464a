/*
 * maskpool.h - organ windows and per-stage organ token flags (the mask side of
 * ViSD-Boost's evaluation, method.md §2.3, §2.5, §7.1).
 *
 * A processed case is an image and a label map `mask` [D,H,W] whose value k in
 * 1..n_organs means organs[k-1].  For each organ, the reference evaluation cuts
 * a window centred on the organ's bounding box, pads it at the end to
 * multiples of (16,32,32), and flags, for each of the encoder's four stages,
 * the tokens whose aligned cell of (2,4,4), (4,8,8), (8,16,16) or (16,32,32)
 * voxels holds at least one voxel of the organ (torch: max_pool3d of the
 * one-hot mask with kernel = stride = cell).  This module does the geometry and
 * the flag maths; tools/mask-pool.c does the records.
 *
 *     struct mp_box box[MP_MAX_ORGANS];
 *     if (mp_boxes(mask, shape, n_organs, box) != 0) return -1;      // counts + bboxes
 *     struct mp_window w;
 *     mp_window_place(&box[k], shape, roi, &w);                       // reference crop
 *     if (mp_window_pad(&w, mult) != 0) return -1;                    // end padding
 *     mp_window_copy_f32(img, shape, &w, img_win);                    // [w.padded]
 *     mp_window_copy_u8(mask, shape, &w, k + 1, mask_win);            // only organ k kept
 *     struct mp_flags f;
 *     mp_flags_compute(mask_win, w.padded, n_organs, arena, &f);      // all stages, all organs
 *     int64_t n = mp_flags_list(&f, 0, k + 1, list);                  // stage 1 token indices
 *
 * Nothing here prints or exits: functions that can fail return -1 with
 * ct_lasterr() set.  Labels are the mask values (1-based); organ indices are
 * 0-based (label = index + 1), as in the reference.
 */
#ifndef CT_MASKPOOL_H
#define CT_MASKPOOL_H

#include <stdint.h>

#include "tensor.h"

#define MP_N_STAGES   4
#define MP_MAX_ORGANS 255            /* mask values are u8: labels 1..255 */

/* Cell (= pool kernel = stride) of each encoder stage, (D,H,W) voxels. */
extern const int64_t mp_stage_cell[MP_N_STAGES][3];

/* ---- whole-volume organ statistics ---- */

/* Voxel count and inclusive bounding box of one label in a volume. */
struct mp_box {
    int64_t n;                       /* voxels with this label (fVLM whole_organ_sizes) */
    int64_t lo[3];                   /* min index per axis (D,H,W); meaningless when n == 0 */
    int64_t hi[3];                   /* max index per axis, inclusive */
};

/* One pass over mask [shape] (C order): box[k-1] for every label k in
 * 1..n_organs.  A voxel with a value above n_organs is an error naming the
 * value and its position (d,h,w).  Returns 0 or -1. */
int mp_boxes(const uint8_t *mask, const int64_t shape[3], int n_organs, struct mp_box *box);

/* ---- window geometry (V eval.py center_crop + DivisiblePadd) ---- */

struct mp_window {
    int64_t offset[3];               /* first voxel of the window in the volume (D,H,W) */
    int64_t size[3];                 /* window extent in the volume, before padding */
    int64_t padded[3];               /* size rounded up to the pad multiple (tensor shape) */
};

/* The reference window of an organ with box b (n > 0) in a volume of shape
 * `shape`: per axis size = max(roi, hi - lo) (hi - lo, not + 1: the released
 * code's quirk), centre c = (lo + hi) / 2, start = max(0, c - size/2),
 * end = min(n, start + size), and when end - start < size the start moves back
 * to max(0, end - size).  The window is [start, end); it is smaller than size
 * only when the volume is.  Sets offset and size; padded = size. */
void mp_window_place(const struct mp_box *b, const int64_t shape[3], const int64_t roi[3], struct mp_window *w);

/* padded[a] = ceil(size[a] / mult[a]) * mult[a] (MONAI DivisiblePad, method
 * "end").  -1 when a size is not positive or when the padded window would not
 * fit a stream tensor (f32 image over 4 GiB) or an i32 token index. */
int mp_window_pad(struct mp_window *w, const int64_t mult[3]);

/* Check that mult is a positive multiple of the stage-4 cell (16,32,32) on
 * every axis, so that every stage grid divides the padded window exactly. */
int mp_pad_multiple_check(const int64_t mult[3]);

/* Copy the window of img [shape] into out [w->padded], zeros in the padding. */
void mp_window_copy_f32(const float *img, const int64_t shape[3], const struct mp_window *w, float *out);

/* Copy the window of mask into out [w->padded], zeros in the padding.  With
 * keep > 0 only voxels equal to keep survive (the others become 0: the
 * reference erases every other organ from a single-organ window); keep == 0
 * copies every label.  (mp_flags_compute counts the labels of the result.) */
void mp_window_copy_u8(const uint8_t *mask, const int64_t shape[3], const struct mp_window *w, int keep,
                       uint8_t *out);

/* ---- token flags ---- */

/* Flags of every label at every stage for one padded window mask.  A cell's
 * labels are a bitset of n_words 64-bit words: bit (k-1) of the cell set when
 * label k occurs in it. */
struct mp_flags {
    int      n_labels;               /* labels 1..n_labels are tracked */
    int      n_words;                /* 64-bit words per cell = ceil(n_labels / 64) */
    int64_t  grid[MP_N_STAGES][3];   /* token grid per stage: padded / cell */
    int64_t  n_tokens[MP_N_STAGES];  /* grid product = number of tokens */
    uint64_t *bits[MP_N_STAGES];     /* [n_tokens[s] * n_words], arena memory */
    int64_t  voxels[MP_MAX_ORGANS + 1]; /* voxels per label in the window; [0] = background */
};

/* One pass over the window mask [dims] (dims multiples of (16,32,32)) for the
 * stage-1 cells, then 2x2x2 ORs for stages 2-4.  Memory comes from arena.
 * -1 when dims are not multiples of the stage-4 cell or a value exceeds
 * n_labels. */
int mp_flags_compute(const uint8_t *mask, const int64_t dims[3], int n_labels, struct tn_arena *arena,
                     struct mp_flags *f);

/* Is label's bit set in token t of stage s (0-based)? */
static inline int mp_flags_get(const struct mp_flags *f, int s, int label, int64_t t) {
    int b = label - 1;
    return (int)((f->bits[s][t * f->n_words + b / 64] >> (b % 64)) & 1u);
}

/* Ascending token indices t = (d'H' + h')W' + w' of the cells of stage s
 * (0-based) holding label.  out may be NULL to count.  Returns the count. */
int64_t mp_flags_list(const struct mp_flags *f, int s, int label, int32_t *out);

/* The same flags as a bit array: bit t of byte t/8 at position t%8 (numpy
 * np.unpackbits(..., bitorder="little")); out has (n_tokens + 7) / 8 bytes. */
void mp_flags_pack(const struct mp_flags *f, int s, int label, uint8_t *out);

/* ---- intact-organ rules (V model.py forward_test_win, method.md §2.5) ---- */

/* touch[k] = 1 for every label k that occurs in the first or last `margin`
 * planes along any axis of mask [dims] (the padded window), else 0; touch has
 * MP_MAX_ORGANS + 1 entries, touch[0] is always 0.  margin >= 1 (the torch
 * slices [:margin] and [-margin:]; clamped to the axis length). */
void mp_boundary(const uint8_t *mask, const int64_t dims[3], int margin, uint8_t *touch);

/* Why an organ's tokens are or are not in a multi-organ window. */
enum mp_reason {
    MP_KEPT = 0,                     /* tokens provided */
    MP_NO_VOXELS,                    /* the organ has no voxel in the whole volume */
    MP_NOT_IN_WINDOW,                /* voxels in the volume, none in this window */
    MP_BOUNDARY,                     /* touches the window border (margin) and is not the centre organ */
    MP_INCOMPLETE,                   /* in-window / whole-volume voxels < min_fraction, not the centre organ */
    MP_REASON_COUNT
};
const char *mp_reason_name(enum mp_reason r);   /* "kept", "no voxels", ... */

/* The reference's decision for every organ k (0-based) of a window centred on
 * organ `centre` (0-based, or -1 for none): boundary organs other than the
 * centre are dropped first, then intact organs other than the centre whose
 * fraction window_voxels/whole_voxels is below min_fraction (0.9).  Arrays
 * have n_organs entries; touch is indexed by label (k + 1). */
void mp_rules(int n_organs, int centre, const int64_t *window_voxels, const int64_t *whole_voxels,
              const uint8_t *touch, double min_fraction, enum mp_reason *out);

#endif
