/*
 * maskpool.c - organ windows and per-stage organ token flags (maskpool.h).
 *
 * Everything here is a streaming pass over uint8 labels or a row copy: the
 * reference does the same work with one-hot float masks and four max_pool3d
 * calls per window (method.md §2.3), about 0.3 s and 500 MB for a
 * 112x256x352 window; here it is one read of the window mask.
 */
#include "maskpool.h"

#include <string.h>

#include "ct.h"

const int64_t mp_stage_cell[MP_N_STAGES][3] = { { 2, 4, 4 }, { 4, 8, 8 }, { 8, 16, 16 }, { 16, 32, 32 } };

/* Largest f32 window a stream tensor holds (msgpack bin32: < 4 GiB). */
#define MP_MAX_WINDOW_VOXELS (((int64_t)1 << 32) / 4 - 1)

/* ---- whole-volume statistics ---- */

/* Counts and bounding boxes in one pass.  Zero runs are skipped 8 bytes at a
 * time; for a nonzero voxel the count and the W extent are updated, and the
 * D and H extents once per row and label (rows are visited in (d, h) order, so
 * the D extent is "first row seen" / "last row seen"). */
int mp_boxes(const uint8_t *mask, const int64_t shape[3], int n_organs, struct mp_box *box) {
    CT_ASSERT(n_organs >= 0 && n_organs <= MP_MAX_ORGANS);
    int64_t n[MP_MAX_ORGANS + 1] = { 0 };
    int64_t wlo[MP_MAX_ORGANS + 1], whi[MP_MAX_ORGANS + 1];
    int64_t dlo[MP_MAX_ORGANS + 1], dhi[MP_MAX_ORGANS + 1], hlo[MP_MAX_ORGANS + 1], hhi[MP_MAX_ORGANS + 1];
    for (int k = 0; k <= MP_MAX_ORGANS; k++) {
        wlo[k] = dlo[k] = hlo[k] = INT64_MAX;
        whi[k] = dhi[k] = hhi[k] = -1;
    }
    const int64_t D = shape[0], H = shape[1], W = shape[2];
    uint8_t seen[MP_MAX_ORGANS + 1] = { 0 };       /* label met in the current row */
    uint8_t row_labels[MP_MAX_ORGANS + 1];         /* those labels, in order met */
    for (int64_t d = 0; d < D; d++) {
        for (int64_t h = 0; h < H; h++) {
            const uint8_t *row = mask + (d * H + h) * W;
            int n_row = 0;
            int64_t w = 0;
            while (w < W) {
                if (w + 8 <= W) {
                    uint64_t x;
                    memcpy(&x, row + w, 8);
                    if (!x) {
                        w += 8;
                        continue;
                    }
                    unsigned v = row[w];
                    if (x == v * (uint64_t)0x0101010101010101 && (int)v <= n_organs) {
                        n[v] += 8;                          /* 8 voxels of one organ */
                        if (w < wlo[v]) wlo[v] = w;
                        if (w + 7 > whi[v]) whi[v] = w + 7;
                        if (!seen[v]) {
                            seen[v] = 1;
                            row_labels[n_row++] = (uint8_t)v;
                        }
                        w += 8;
                        continue;
                    }
                }
                int64_t end = w + 8 < W ? w + 8 : W;
                for (; w < end; w++) {
                    unsigned v = row[w];
                    if (!v) continue;
                    if ((int)v > n_organs)
                        return ct_seterr("mask value %u at voxel (%lld,%lld,%lld) has no organ (%d organ%s)", v,
                                         (long long)d, (long long)h, (long long)w, n_organs,
                                         n_organs == 1 ? "" : "s");
                    n[v]++;
                    if (w < wlo[v]) wlo[v] = w;
                    if (w > whi[v]) whi[v] = w;
                    if (!seen[v]) {
                        seen[v] = 1;
                        row_labels[n_row++] = (uint8_t)v;
                    }
                }
            }
            for (int i = 0; i < n_row; i++) {
                unsigned v = row_labels[i];
                seen[v] = 0;
                if (dlo[v] == INT64_MAX) dlo[v] = d;
                dhi[v] = d;
                if (h < hlo[v]) hlo[v] = h;
                if (h > hhi[v]) hhi[v] = h;
            }
        }
    }
    for (int k = 1; k <= n_organs; k++) {
        struct mp_box *b = &box[k - 1];
        b->n = n[k];
        b->lo[0] = dlo[k], b->lo[1] = hlo[k], b->lo[2] = wlo[k];
        b->hi[0] = dhi[k], b->hi[1] = hhi[k], b->hi[2] = whi[k];
        if (!b->n) memset(b->lo, 0, sizeof b->lo), memset(b->hi, 0, sizeof b->hi);
    }
    return 0;
}

/* ---- window geometry ---- */

void mp_window_place(const struct mp_box *b, const int64_t shape[3], const int64_t roi[3], struct mp_window *w) {
    CT_ASSERT(b->n > 0);
    for (int a = 0; a < 3; a++) {
        int64_t extent = b->hi[a] - b->lo[a];                  /* max - min: no +1 (quirk kept) */
        int64_t size = roi[a] > extent ? roi[a] : extent;
        int64_t c = (b->lo[a] + b->hi[a]) / 2;                 /* non-negative: floor */
        int64_t start = c - size / 2;
        if (start < 0) start = 0;
        int64_t end = start + size < shape[a] ? start + size : shape[a];
        if (end - start < size) start = end - size > 0 ? end - size : 0;
        w->offset[a] = start;
        w->size[a] = end - start;
        w->padded[a] = end - start;
    }
}

int mp_pad_multiple_check(const int64_t mult[3]) {
    const int64_t *c = mp_stage_cell[MP_N_STAGES - 1];
    for (int a = 0; a < 3; a++)
        if (mult[a] <= 0 || mult[a] % c[a])
            return ct_seterr("cannot pad windows to multiples of %lld,%lld,%lld: each must be a positive multiple "
                             "of the stage-4 cell %lld,%lld,%lld",
                             (long long)mult[0], (long long)mult[1], (long long)mult[2], (long long)c[0],
                             (long long)c[1], (long long)c[2]);
    return 0;
}

int mp_window_pad(struct mp_window *w, const int64_t mult[3]) {
    if (mp_pad_multiple_check(mult) != 0) return -1;
    for (int a = 0; a < 3; a++)
        if (w->size[a] <= 0)
            return ct_seterr("window %lldx%lldx%lld has an empty axis: nothing to pad", (long long)w->size[0],
                             (long long)w->size[1], (long long)w->size[2]);
    int64_t p[3], numel = 1;
    for (int a = 0; a < 3; a++) {
        if (w->size[a] > MP_MAX_WINDOW_VOXELS)
            return ct_seterr("window axis of %lld voxels cannot be padded into a stream tensor",
                             (long long)w->size[a]);
        p[a] = (w->size[a] + mult[a] - 1) / mult[a] * mult[a];
        if (numel > MP_MAX_WINDOW_VOXELS / p[a])
            return ct_seterr("window %lldx%lldx%lld pads to more than %lld voxels: its f32 image would exceed "
                             "the 4 GiB stream tensor limit",
                             (long long)w->size[0], (long long)w->size[1], (long long)w->size[2],
                             (long long)MP_MAX_WINDOW_VOXELS);
        numel *= p[a];
    }
    memcpy(w->padded, p, sizeof p);
    return 0;
}

void mp_window_copy_f32(const float *img, const int64_t shape[3], const struct mp_window *w, float *out) {
    const int64_t H = shape[1], W = shape[2];
    const int64_t *o = w->offset, *s = w->size, *p = w->padded;
    for (int64_t d = 0; d < p[0]; d++) {
        float *plane = out + d * p[1] * p[2];
        if (d >= s[0]) {
            memset(plane, 0, (size_t)(p[1] * p[2]) * sizeof *out);
            continue;
        }
        for (int64_t h = 0; h < s[1]; h++) {
            const float *src = img + ((o[0] + d) * H + o[1] + h) * W + o[2];
            float *dst = plane + h * p[2];
            memcpy(dst, src, (size_t)s[2] * sizeof *out);
            memset(dst + s[2], 0, (size_t)(p[2] - s[2]) * sizeof *out);
        }
        memset(plane + s[1] * p[2], 0, (size_t)((p[1] - s[1]) * p[2]) * sizeof *out);
    }
}

/* dst[i] = src[i] == k ? k : 0.  Blocks of 64 with a constant trip count so
 * that -O2 (gcc's very-cheap vectoriser: no epilogue, no alias versioning)
 * turns them into vector compares. */
static void keep_label(const uint8_t *restrict src, uint8_t *restrict dst, int64_t n, uint8_t k) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 64; j++) dst[i + j] = src[i + j] == k ? k : 0;
    for (; i < n; i++) dst[i] = src[i] == k ? k : 0;
}

void mp_window_copy_u8(const uint8_t *mask, const int64_t shape[3], const struct mp_window *w, int keep,
                       uint8_t *out) {
    const int64_t H = shape[1], W = shape[2];
    const int64_t *o = w->offset, *s = w->size, *p = w->padded;
    const uint8_t k = (uint8_t)keep;
    for (int64_t d = 0; d < p[0]; d++) {
        uint8_t *plane = out + d * p[1] * p[2];
        if (d >= s[0]) {
            memset(plane, 0, (size_t)(p[1] * p[2]));
            continue;
        }
        for (int64_t h = 0; h < s[1]; h++) {
            const uint8_t *src = mask + ((o[0] + d) * H + o[1] + h) * W + o[2];
            uint8_t *dst = plane + h * p[2];
            if (keep) {
                keep_label(src, dst, s[2], k);          /* other organs erased */
            } else {
                memcpy(dst, src, (size_t)s[2]);
            }
            memset(dst + s[2], 0, (size_t)(p[2] - s[2]));
        }
        memset(plane + s[1] * p[2], 0, (size_t)((p[1] - s[1]) * p[2]));
    }
}

/* ---- token flags ---- */

int mp_flags_compute(const uint8_t *mask, const int64_t dims[3], int n_labels, struct tn_arena *arena,
                     struct mp_flags *f) {
    CT_ASSERT(n_labels >= 1 && n_labels <= MP_MAX_ORGANS);
    const int64_t *c4 = mp_stage_cell[MP_N_STAGES - 1];
    for (int a = 0; a < 3; a++)
        if (dims[a] <= 0 || dims[a] % c4[a])
            return ct_seterr("window %lldx%lldx%lld is not a multiple of %lld,%lld,%lld: pad it first",
                             (long long)dims[0], (long long)dims[1], (long long)dims[2], (long long)c4[0],
                             (long long)c4[1], (long long)c4[2]);
    memset(f, 0, sizeof *f);
    f->n_labels = n_labels;
    f->n_words = (n_labels + 63) / 64;
    const int nw = f->n_words;
    for (int s = 0; s < MP_N_STAGES; s++) {
        f->n_tokens[s] = 1;
        for (int a = 0; a < 3; a++) {
            f->grid[s][a] = dims[a] / mp_stage_cell[s][a];
            f->n_tokens[s] *= f->grid[s][a];
        }
        size_t nb = (size_t)f->n_tokens[s] * (size_t)nw * sizeof(uint64_t);
        f->bits[s] = tn_arena_alloc(arena, nb);
        memset(f->bits[s], 0, nb);
    }

    /* Stage 1: every voxel ORs its label's bit into its (2,4,4) cell. */
    const int64_t H = dims[1], W = dims[2];
    const int64_t G1 = f->grid[0][1], G2 = f->grid[0][2];
    uint64_t *b1 = f->bits[0];
    int64_t *cnt = f->voxels;
    for (int64_t d = 0; d < dims[0]; d++) {
        for (int64_t h = 0; h < H; h++) {
            const uint8_t *row = mask + (d * H + h) * W;
            uint64_t *cells = b1 + ((d >> 1) * G1 + (h >> 2)) * G2 * nw;
            for (int64_t w = 0; w < W; w += 8) {       /* W is a multiple of 32 */
                uint64_t x;
                memcpy(&x, row + w, 8);
                if (!x) continue;
                unsigned v0 = row[w];
                if (x == v0 * (uint64_t)0x0101010101010101 && (int)v0 <= n_labels) {
                    /* inside an organ: 8 voxels of one label, two cells */
                    uint64_t bit = (uint64_t)1 << ((v0 - 1) % 64);
                    int64_t q = (v0 - 1) / 64;
                    cnt[v0] += 8;
                    cells[(w >> 2) * nw + q] |= bit;
                    cells[((w >> 2) + 1) * nw + q] |= bit;
                    continue;
                }
                for (int64_t j = w; j < w + 8; j++) {
                    unsigned v = row[j];
                    if (!v) continue;
                    if ((int)v > n_labels)
                        return ct_seterr("mask value %u at window voxel (%lld,%lld,%lld) exceeds %d labels", v,
                                         (long long)d, (long long)h, (long long)j, n_labels);
                    cnt[v]++;
                    cells[(j >> 2) * nw + (v - 1) / 64] |= (uint64_t)1 << ((v - 1) % 64);
                }
            }
        }
    }
    int64_t total = 1;
    for (int a = 0; a < 3; a++) total *= dims[a];
    int64_t labelled = 0;
    for (int k = 1; k <= n_labels; k++) labelled += cnt[k];
    cnt[0] = total - labelled;

    /* Stages 2-4: each cell is the OR of the 2x2x2 block below it (cells double per stage). */
    for (int s = 1; s < MP_N_STAGES; s++) {
        const int64_t *gp = f->grid[s - 1], *g = f->grid[s];
        const uint64_t *src = f->bits[s - 1];
        uint64_t *dst = f->bits[s];
        for (int64_t d = 0; d < gp[0]; d++)
            for (int64_t h = 0; h < gp[1]; h++) {
                const uint64_t *in = src + (d * gp[1] + h) * gp[2] * nw;
                uint64_t *out = dst + ((d >> 1) * g[1] + (h >> 1)) * g[2] * nw;
                if (nw == 1) {
                    for (int64_t w = 0; w < gp[2]; w++) out[w >> 1] |= in[w];
                } else {
                    for (int64_t w = 0; w < gp[2]; w++)
                        for (int q = 0; q < nw; q++) out[(w >> 1) * nw + q] |= in[w * nw + q];
                }
            }
    }
    return 0;
}

int64_t mp_flags_list(const struct mp_flags *f, int s, int label, int32_t *out) {
    CT_ASSERT(s >= 0 && s < MP_N_STAGES && label >= 1 && label <= f->n_labels);
    const uint64_t *b = f->bits[s] + (label - 1) / 64;
    const uint64_t bit = (uint64_t)1 << ((label - 1) % 64);
    const int nw = f->n_words;
    int64_t n = 0;
    for (int64_t t = 0; t < f->n_tokens[s]; t++)
        if (b[t * nw] & bit) {
            if (out) out[n] = (int32_t)t;
            n++;
        }
    return n;
}

void mp_flags_pack(const struct mp_flags *f, int s, int label, uint8_t *out) {
    CT_ASSERT(s >= 0 && s < MP_N_STAGES && label >= 1 && label <= f->n_labels);
    memset(out, 0, (size_t)((f->n_tokens[s] + 7) / 8));
    for (int64_t t = 0; t < f->n_tokens[s]; t++)
        if (mp_flags_get(f, s, label, t)) out[t >> 3] |= (uint8_t)(1u << (t & 7));
}

/* ---- intact-organ rules ---- */

static void touch_span(const uint8_t *p, int64_t n, uint8_t *touch) {
    for (int64_t i = 0; i < n; i++) touch[p[i]] = 1;
}

void mp_boundary(const uint8_t *mask, const int64_t dims[3], int margin, uint8_t *touch) {
    CT_ASSERT(margin >= 1);
    memset(touch, 0, MP_MAX_ORGANS + 1);
    const int64_t D = dims[0], H = dims[1], W = dims[2];
    int64_t m[3];
    for (int a = 0; a < 3; a++) m[a] = margin < dims[a] ? margin : dims[a];
    /* axis 0: whole planes [0, m) and [D - m, D) */
    for (int64_t d = 0; d < D; d++)
        if (d < m[0] || d >= D - m[0]) touch_span(mask + d * H * W, H * W, touch);
    for (int64_t d = 0; d < D; d++) {
        const uint8_t *plane = mask + d * H * W;
        for (int64_t h = 0; h < H; h++) {
            const uint8_t *row = plane + h * W;
            if (h < m[1] || h >= H - m[1]) {            /* axis 1: whole rows */
                touch_span(row, W, touch);
            } else {                                    /* axis 2: row ends */
                touch_span(row, m[2], touch);
                touch_span(row + W - m[2], m[2], touch);
            }
        }
    }
    touch[0] = 0;
}

const char *mp_reason_name(enum mp_reason r) {
    static const char *names[MP_REASON_COUNT] = {
        [MP_KEPT] = "kept",
        [MP_NO_VOXELS] = "no voxels",
        [MP_NOT_IN_WINDOW] = "not in window",
        [MP_BOUNDARY] = "boundary",
        [MP_INCOMPLETE] = "incomplete",
    };
    return (unsigned)r < MP_REASON_COUNT ? names[r] : "?";
}

void mp_rules(int n_organs, int centre, const int64_t *window_voxels, const int64_t *whole_voxels,
              const uint8_t *touch, double min_fraction, enum mp_reason *out) {
    for (int k = 0; k < n_organs; k++) {
        if (whole_voxels[k] == 0) out[k] = MP_NO_VOXELS;
        else if (window_voxels[k] == 0) out[k] = MP_NOT_IN_WINDOW;
        else if (k != centre && touch[k + 1]) out[k] = MP_BOUNDARY;
        /* the reference's test: v / whole < 0.9 in double precision, centre exempt */
        else if (k != centre && (double)window_voxels[k] / (double)whole_voxels[k] < min_fraction)
            out[k] = MP_INCOMPLETE;
        else out[k] = MP_KEPT;
    }
}
