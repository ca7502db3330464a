/*
 * resample.c - torch-exact trilinear / legacy-nearest resizing, HU window,
 * organ-box crop and symmetric padding of CT volumes (see resample.h).
 *
 * The image is computed separably in torch's nesting order: for one output
 * slice, the two source slices are blended along z into float rows (only the
 * rows and columns the crop box needs), those rows are blended along y, then
 * along x, then windowed.  Work and memory traffic are proportional to the
 * output box, and the source is read in its stored type (int16 for CT)
 * without a float copy of the volume.  Threads take contiguous slabs of
 * output slices.
 */
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"

/* One blend, as torch 1.13's CPU kernel computes `t0 * w0 + t1 * w1`: compiled
 * with FMA contraction into fma(t0, w0, t1 * w1) (bit-identical to torch on
 * random data).  Without FMA hardware (ARCH= builds) the plain expression,
 * one float ulp away at most. */
#ifdef __FMA__
#define LERP(t0, w0, t1, w1) fmaf((t0), (w0), (t1) * (w1))
#else
#define LERP(t0, w0, t1, w1) ((t0) * (w0) + (t1) * (w1))
#endif

/* ---- per-axis tables ---- */

void rs_axis_linear(int64_t n_in, int64_t n_out, int32_t *i0, int32_t *i1, float *w0, float *w1) {
    /* area_pixel_compute_scale<float>: (float)input_size / output_size */
    float scale = (float)n_in / (float)n_out;
    for (int64_t i = 0; i < n_out; i++) {
        if (n_in == n_out) {                          /* torch copies: weights 1, 0 */
            i0[i] = i1[i] = (int32_t)i;
            w0[i] = 1.0f;
            w1[i] = 0.0f;
            continue;
        }
        /* compute_source_index_and_lambda: the source index in acc_type<float> = double */
        double src = (double)scale * ((double)i + 0.5) - 0.5;
        if (src < 0) src = 0;
        int64_t a = (int64_t)src;
        i0[i] = (int32_t)a;
        i1[i] = (int32_t)(a + (a < n_in - 1 ? 1 : 0));
        w1[i] = (float)(src - (double)a);
        w0[i] = 1.0f - w1[i];
    }
}

void rs_axis_nearest(int64_t n_in, int64_t n_out, int32_t *idx) {
    float scale = (float)n_in / (float)n_out;
    for (int64_t i = 0; i < n_out; i++) {
        float s = (float)i * scale;                   /* float, as nearest_neighbor_compute_source_index */
        int64_t a = (int64_t)floorf(s);
        idx[i] = (int32_t)(a < n_in - 1 ? a : n_in - 1);
    }
}

/* ---- sizes and geometry ---- */

int64_t rs_out_size(int64_t n, double spacing_in, double spacing_out, enum rs_size_rule rule) {
    if (!(spacing_in > 0) || !isfinite(spacing_in)) return ct_seterr("invalid source spacing %g", spacing_in);
    if (!(spacing_out > 0) || !isfinite(spacing_out)) return ct_seterr("invalid target spacing %g", spacing_out);
    double x = (double)n * (spacing_in / spacing_out);   /* Python: int(n * (s / t)) */
    double r = rule == RS_SIZE_CEIL ? ceil(x) : rule == RS_SIZE_ROUND ? floor(x + 0.5) : floor(x);
    if (r < 1) return ct_seterr("%lld voxels of %g mm give %g voxels of %g mm (less than one)", (long long)n,
                                spacing_in, x, spacing_out);
    if (r > 65535) return ct_seterr("%lld voxels of %g mm give %.0f voxels of %g mm (too many)", (long long)n,
                                    spacing_in, r, spacing_out);
    return (int64_t)r;
}

int rs_grid_init(struct rs_grid *g, const int64_t in_shape[3], const double spacing_in[3],
                 const struct rs_params *p) {
    memset(g, 0, sizeof *g);
    for (int a = 0; a < 3; a++) {
        g->in_shape[a] = in_shape[a];
        g->spacing_in[a] = spacing_in[a];
        if (!(spacing_in[a] > 0) || !isfinite(spacing_in[a]))
            return ct_seterr("zero or invalid voxel spacing %g mm along %c", spacing_in[a], "zyx"[a]);
    }
    /* C axes: 0 = z, 1 = y, 2 = x.  The fVLM quirk: the x size is computed from
     * the y scale (sy / ty) and the y size from the x scale (sx / tx). */
    int src_axis[3] = { 0, 1, 2 };
    if (p->xy_swap) src_axis[1] = 2, src_axis[2] = 1;
    for (int a = 0; a < 3; a++) {
        int b = src_axis[a];
        int64_t n = rs_out_size(in_shape[a], spacing_in[b], p->spacing_mm[b], p->rule);
        if (n < 0) return ct_prefixerr("axis %c", "zyx"[a]);
        g->res_shape[a] = n;
        g->lo[a] = 0;
        g->hi[a] = n;
        g->out_shape[a] = n;
    }
    return 0;
}

void rs_grid_crop(struct rs_grid *g, const int64_t bmin[3], const int64_t bmax[3], const int64_t margin[3]) {
    for (int a = 0; a < 3; a++) {
        int64_t lo = bmin[a] - margin[a], hi = bmax[a] + margin[a];
        g->lo[a] = lo > 0 ? lo : 0;
        g->hi[a] = hi < g->res_shape[a] ? hi : g->res_shape[a];
        g->out_shape[a] = g->hi[a] - g->lo[a] + g->pad_before[a] + g->pad_after[a];
    }
}

void rs_grid_pad(struct rs_grid *g, const int64_t pad_to[3]) {
    for (int a = 0; a < 3; a++) {
        int64_t s = g->hi[a] - g->lo[a];
        int64_t w = pad_to[a] > s ? pad_to[a] - s : 0;
        g->pad_before[a] = w / 2;
        g->pad_after[a] = w - w / 2;
        g->out_shape[a] = s + w;
    }
}

void rs_grid_affine(const struct rs_grid *g, const double src[4][4], double out[4][4]) {
    /* output index p -> resampled index p - pad + lo -> source index
     * s = scale * (r + 0.5) - 0.5, scale = n_in / n_res (exact ratio) */
    double scale[3], off[3];
    for (int a = 0; a < 3; a++) {
        scale[a] = (double)g->in_shape[a] / (double)g->res_shape[a];
        off[a] = scale[a] * ((double)(g->lo[a] - g->pad_before[a]) + 0.5) - 0.5;
    }
    for (int r = 0; r < 4; r++) {
        double t = src[r][3];
        for (int a = 0; a < 3; a++) {
            out[r][a] = src[r][a] * scale[a];
            t += src[r][a] * off[a];
        }
        out[r][3] = t;
    }
}

/* ---- threads: a parallel for over [0, n) in contiguous chunks ---- */

typedef void (*rs_range_fn)(void *ctx, int64_t a, int64_t b, int tid);
struct par_ranges {
    rs_range_fn fn;
    void       *ctx;
    int64_t     n;
    int         parts;
};
static void par_range_item(void *p, int64_t t, int tid) {
    const struct par_ranges *r = p;
    r->fn(r->ctx, r->n * t / r->parts, r->n * (t + 1) / r->parts, tid);
}
/* fn over [0, n) split into one contiguous range per thread */
static void par_for(int threads, int64_t n, rs_range_fn fn, void *ctx) {
    if (threads > n) threads = (int)(n > 0 ? n : 1);
    if (threads > CT_MAX_THREADS) threads = CT_MAX_THREADS;
    if (threads <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    struct par_ranges r = { fn, ctx, n, threads };
    ct_parallel_for(threads, threads, par_range_item, &r);
}

/* ---- reading source voxels as float ---- */

/* dst[0..n) = voxels src[off .. off + n) as float, scaled as nibabel does
 * (double arithmetic) when s->scaled. */
static void load_row(const struct rs_src *s, int64_t off, int64_t n, float *dst) {
    const void *base = s->t->data;
#define LOAD(T)                                                                                        \
    do {                                                                                           \
        const T *p = (const T *)base + off;                                                        \
        if (s->scaled)                                                                             \
            for (int64_t i = 0; i < n; i++) dst[i] = (float)((double)p[i] * s->slope + s->inter);  \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) dst[i] = (float)p[i];                                  \
    } while (0)
    switch (s->t->dtype) {
    case TN_U8: LOAD(uint8_t); break;
    case TN_I8: LOAD(int8_t); break;
    case TN_U16: LOAD(uint16_t); break;
    case TN_I16: LOAD(int16_t); break;
    case TN_U32: LOAD(uint32_t); break;
    case TN_I32: LOAD(int32_t); break;
    case TN_U64: LOAD(uint64_t); break;
    case TN_I64: LOAD(int64_t); break;
    case TN_F32: LOAD(float); break;
    case TN_F64: LOAD(double); break;
    default: CT_ASSERT(!"dtype");
    }
#undef LOAD
}

struct nonfinite_ctx {
    const struct rs_src *s;
    int64_t              count[64];
};
static void nonfinite_range(void *p, int64_t a, int64_t b, int tid) {
    struct nonfinite_ctx *c = p;
    int64_t k = 0;
    if (c->s->t->dtype == TN_F32) {
        const float *v = c->s->t->data;
        for (int64_t i = a; i < b; i++) k += !isfinite(v[i]);
    } else {
        const double *v = c->s->t->data;
        for (int64_t i = a; i < b; i++) k += !isfinite(v[i]);
    }
    c->count[tid] = k;
}

int64_t rs_count_nonfinite(const struct rs_src *s, int threads) {
    if (s->t->dtype != TN_F32 && s->t->dtype != TN_F64) return 0;
    struct nonfinite_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    par_for(threads, tn_numel(s->t), nonfinite_range, &c);
    int64_t k = 0;
    for (int t = 0; t < 64; t++) k += c.count[t];
    return k;
}

int rs_find_noninteger(const struct rs_src *s, int64_t *flat, double *value) {
    int64_t n = tn_numel(s->t);
    if (!tn_dtype_is_float(s->t->dtype) && !s->scaled) return 0;
    for (int64_t i = 0; i < n; i++) {
        double v = tn_get(s->t, i);
        if (s->scaled) v = v * s->slope + s->inter;
        if (!isfinite(v) || v != floor(v)) {
            *flat = i;
            *value = v;
            return 1;
        }
    }
    return 0;
}

/* ---- labels ---- */

struct lab_ctx {
    const struct rs_src  *lab;
    const struct rs_lut  *lut;
    const struct rs_grid *g;
    int32_t              *iz, *iy, *ix;            /* nearest tables over the whole resampled grid */
    uint8_t              *mask;                    /* write pass: output */
    int                   n_values;
    int64_t               bmin[64][3], bmax[64][3];
    int                   found[64];
    int64_t               counts[64][256];
};

static inline uint8_t lut_at(const struct rs_lut *L, int64_t v) { return v >= 0 && v < L->n ? L->map[v] : 0; }

/* out[w] = lut(row[ix[w]]) for w in [0, n) */
static void gather_row(const struct lab_ctx *c, int64_t row_off, const int32_t *ix, int64_t n, uint8_t *out) {
    const struct rs_lut *L = c->lut;
    const void *base = c->lab->t->data;
#define GATHER_INT(T)                                                                                  \
    do {                                                                                           \
        const T *p = (const T *)base + row_off;                                                    \
        for (int64_t w = 0; w < n; w++) {                                                          \
            T v = p[ix[w]];                                                                        \
            out[w] = lut_at(L, (int64_t)v);                                                        \
        }                                                                                          \
    } while (0)
#define GATHER_ANY(T)                                                                                  \
    do {                                                                                           \
        const T *p = (const T *)base + row_off;                                                    \
        for (int64_t w = 0; w < n; w++) {                                                          \
            double v = (double)p[ix[w]];                                                           \
            if (c->lab->scaled) v = v * c->lab->slope + c->lab->inter;                             \
            out[w] = (v >= 0 && v < (double)L->n) ? L->map[(int64_t)v] : 0;                        \
        }                                                                                          \
    } while (0)
    if (c->lab->scaled) {
        switch (c->lab->t->dtype) {
        case TN_U8: GATHER_ANY(uint8_t); break;
        case TN_I8: GATHER_ANY(int8_t); break;
        case TN_U16: GATHER_ANY(uint16_t); break;
        case TN_I16: GATHER_ANY(int16_t); break;
        case TN_U32: GATHER_ANY(uint32_t); break;
        case TN_I32: GATHER_ANY(int32_t); break;
        case TN_U64: GATHER_ANY(uint64_t); break;
        case TN_I64: GATHER_ANY(int64_t); break;
        case TN_F32: GATHER_ANY(float); break;
        case TN_F64: GATHER_ANY(double); break;
        default: CT_ASSERT(!"dtype");
        }
        return;
    }
    switch (c->lab->t->dtype) {
    case TN_U8: {
        const uint8_t *p = (const uint8_t *)base + row_off;
        uint8_t m[256];
        for (int v = 0; v < 256; v++) m[v] = v < L->n ? L->map[v] : 0;
        for (int64_t w = 0; w < n; w++) out[w] = m[p[ix[w]]];
        break;
    }
    case TN_I8: GATHER_INT(int8_t); break;
    case TN_U16: GATHER_INT(uint16_t); break;
    case TN_I16: GATHER_INT(int16_t); break;
    case TN_U32: GATHER_INT(uint32_t); break;
    case TN_I32: GATHER_INT(int32_t); break;
    case TN_I64: GATHER_INT(int64_t); break;
    case TN_U64: {
        const uint64_t *p = (const uint64_t *)base + row_off;
        for (int64_t w = 0; w < n; w++) {
            uint64_t v = p[ix[w]];
            out[w] = v < (uint64_t)L->n ? L->map[v] : 0;
        }
        break;
    }
    case TN_F32: GATHER_ANY(float); break;
    case TN_F64: GATHER_ANY(double); break;
    default: CT_ASSERT(!"dtype");
    }
#undef GATHER_INT
#undef GATHER_ANY
}

/* 1 when a u8 label row holds only zeros (background whatever the organ set:
 * class ids start at 1): most rows of a label map, skipped without a gather. */
static int u8_row_zero(const struct lab_ctx *c, int64_t row_off, int64_t nx) {
    if (c->lab->t->dtype != TN_U8 || c->lab->scaled) return 0;
    const uint8_t *p = (const uint8_t *)c->lab->t->data + row_off;
    uint64_t acc = 0;
    int64_t i = 0;
    for (; i + 8 <= nx; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < nx; i++) acc |= p[i];
    return acc == 0;
}

static void bbox_range(void *p, int64_t a, int64_t b, int tid) {
    struct lab_ctx *c = p;
    const struct rs_grid *g = c->g;
    int64_t H = g->res_shape[1], W = g->res_shape[2];
    int64_t ny = g->in_shape[1], nx = g->in_shape[2];
    uint8_t *row = ct_xmalloc((size_t)W);
    int64_t *mn = c->bmin[tid], *mx = c->bmax[tid];
    int found = 0;
    for (int64_t d = a; d < b; d++) {
        for (int64_t h = 0; h < H; h++) {
            int64_t off = ((int64_t)c->iz[d] * ny + c->iy[h]) * nx;
            if (u8_row_zero(c, off, nx)) continue;
            gather_row(c, off, c->ix, W, row);
            int64_t first = -1, last = -1;
            for (int64_t w = 0; w < W; w++)
                if (row[w]) {
                    first = w;
                    break;
                }
            if (first < 0) continue;
            for (int64_t w = W - 1; w >= first; w--)
                if (row[w]) {
                    last = w;
                    break;
                }
            if (!found) {
                mn[0] = mx[0] = d, mn[1] = mx[1] = h, mn[2] = first, mx[2] = last;
                found = 1;
            } else {
                if (d < mn[0]) mn[0] = d;
                if (d > mx[0]) mx[0] = d;
                if (h < mn[1]) mn[1] = h;
                if (h > mx[1]) mx[1] = h;
                if (first < mn[2]) mn[2] = first;
                if (last > mx[2]) mx[2] = last;
            }
        }
    }
    c->found[tid] = found;
    free(row);
}

static void lab_tables(struct lab_ctx *c, const struct rs_grid *g) {
    c->iz = ct_xmalloc((size_t)g->res_shape[0] * sizeof(int32_t));
    c->iy = ct_xmalloc((size_t)g->res_shape[1] * sizeof(int32_t));
    c->ix = ct_xmalloc((size_t)g->res_shape[2] * sizeof(int32_t));
    rs_axis_nearest(g->in_shape[0], g->res_shape[0], c->iz);
    rs_axis_nearest(g->in_shape[1], g->res_shape[1], c->iy);
    rs_axis_nearest(g->in_shape[2], g->res_shape[2], c->ix);
}
static void lab_free(struct lab_ctx *c) {
    free(c->iz);
    free(c->iy);
    free(c->ix);
}

static int check_src(const struct rs_src *s, const struct rs_grid *g, const char *what) {
    if (s->t->ndim != 3) return ct_seterr("%s is %d-D, expected 3-D", what, s->t->ndim);
    for (int a = 0; a < 3; a++)
        if (s->t->shape[a] != g->in_shape[a]) return ct_seterr("%s shape differs from the grid", what);
    return 0;
}

int rs_labels_bbox(const struct rs_src *lab, const struct rs_lut *lut, const struct rs_grid *g, int64_t bmin[3],
                   int64_t bmax[3], int threads) {
    if (check_src(lab, g, "label map") != 0) return -1;
    struct lab_ctx *c = ct_xcalloc(1, sizeof *c);
    c->lab = lab, c->lut = lut, c->g = g;
    lab_tables(c, g);
    par_for(threads, g->res_shape[0], bbox_range, c);
    int found = 0;
    for (int t = 0; t < 64; t++) {
        if (!c->found[t]) continue;
        for (int a = 0; a < 3; a++) {
            if (!found || c->bmin[t][a] < bmin[a]) bmin[a] = c->bmin[t][a];
            if (!found || c->bmax[t][a] > bmax[a]) bmax[a] = c->bmax[t][a];
        }
        found = 1;
    }
    lab_free(c);
    free(c);
    return found;
}

static void write_range(void *p, int64_t a, int64_t b, int tid) {
    struct lab_ctx *c = p;
    const struct rs_grid *g = c->g;
    int64_t ny = g->in_shape[1], nx = g->in_shape[2];
    int64_t OH = g->out_shape[1], OW = g->out_shape[2];
    int64_t wn = g->hi[2] - g->lo[2];
    int64_t *cnt = c->counts[tid];
    for (int64_t od = a; od < b; od++) {
        uint8_t *slice = c->mask + od * OH * OW;
        int64_t d = od - g->pad_before[0] + g->lo[0];
        memset(slice, 0, (size_t)(OH * OW));
        if (d < g->lo[0] || d >= g->hi[0]) continue;
        for (int64_t h = g->lo[1]; h < g->hi[1]; h++) {
            uint8_t *row = slice + (h - g->lo[1] + g->pad_before[1]) * OW + g->pad_before[2];
            int64_t off = ((int64_t)c->iz[d] * ny + c->iy[h]) * nx;
            if (u8_row_zero(c, off, nx)) {            /* the row stays 0 (memset above) */
                cnt[0] += wn;
                continue;
            }
            gather_row(c, off, c->ix + g->lo[2], wn, row);
            for (int64_t w = 0; w < wn; w++) cnt[row[w]]++;
        }
    }
}

int rs_labels_write(const struct rs_src *lab, const struct rs_lut *lut, const struct rs_grid *g, uint8_t *mask,
                    int64_t *counts, int n_values, int threads) {
    if (check_src(lab, g, "label map") != 0) return -1;
    if (n_values > 256) return ct_seterr("too many mask values");
    struct lab_ctx *c = ct_xcalloc(1, sizeof *c);
    c->lab = lab, c->lut = lut, c->g = g, c->mask = mask, c->n_values = n_values;
    lab_tables(c, g);
    par_for(threads, g->out_shape[0], write_range, c);
    for (int v = 0; v < n_values; v++) {
        counts[v] = 0;
        for (int t = 0; t < 64; t++) counts[v] += c->counts[t][v];
    }
    /* padding voxels are background too */
    if (n_values > 0) {
        int64_t total = g->out_shape[0] * g->out_shape[1] * g->out_shape[2], inside = 0;
        for (int v = 0; v < 256; v++)
            for (int t = 0; t < 64; t++) inside += c->counts[t][v];
        counts[0] += total - inside;
    }
    lab_free(c);
    free(c);
    return 0;
}

/* ---- image ---- */

struct img_ctx {
    const struct rs_src    *img;
    const struct rs_grid   *g;
    const struct rs_window *win;
    float                  *out;
    int32_t *z0, *z1, *y0, *y1, *x0, *x1;        /* linear tables over the whole resampled grid */
    float   *wz0, *wz1, *wy0, *wy1, *wx0, *wx1;
};

static void image_range(void *p, int64_t a, int64_t b, int tid) {
    (void)tid;
    struct img_ctx *c = p;
    const struct rs_grid *g = c->g;
    int64_t ny = g->in_shape[1], nx = g->in_shape[2];
    int64_t OH = g->out_shape[1], OW = g->out_shape[2];
    /* the source rows and columns the crop box reads */
    int64_t ylo = c->y0[g->lo[1]], yhi = c->y1[g->hi[1] - 1];
    int64_t xlo = c->x0[g->lo[2]], xhi = c->x1[g->hi[2] - 1];
    int64_t nyr = yhi - ylo + 1, nxr = xhi - xlo + 1;
    float *rows = ct_xaligned((size_t)(nyr * nxr) * sizeof(float));   /* z-blended rows [nyr, nxr] */
    float *ra = ct_xaligned((size_t)nxr * sizeof(float)), *rb = ct_xaligned((size_t)nxr * sizeof(float));
    float *ry = ct_xaligned((size_t)nxr * sizeof(float));
    const int win = c->win && c->win->on;
    const float wlo = win ? (float)c->win->lo : 0, wden = win ? (float)(c->win->hi - c->win->lo) : 1;
    for (int64_t od = a; od < b; od++) {
        float *slice = c->out + od * OH * OW;
        int64_t d = od - g->pad_before[0] + g->lo[0];
        memset(slice, 0, (size_t)(OH * OW) * sizeof(float));
        if (d < g->lo[0] || d >= g->hi[0]) continue;
        /* z: t = v(z0) * wz0 + v(z1) * wz1 (torch's innermost lerp: the NIfTI k axis) */
        const float wz0 = c->wz0[d], wz1 = c->wz1[d];
        for (int64_t y = ylo; y <= yhi; y++) {
            int64_t off0 = ((int64_t)c->z0[d] * ny + y) * nx + xlo, off1 = ((int64_t)c->z1[d] * ny + y) * nx + xlo;
            float *r = rows + (y - ylo) * nxr;
            if (c->img->t->dtype == TN_I16 && !c->img->scaled) {   /* CT's usual type: one fused pass */
                const int16_t *va = (const int16_t *)c->img->t->data + off0;
                const int16_t *vb = (const int16_t *)c->img->t->data + off1;
                for (int64_t x = 0; x < nxr; x++) r[x] = LERP((float)va[x], wz0, (float)vb[x], wz1);
                continue;
            }
            load_row(c->img, off0, nxr, ra);
            load_row(c->img, off1, nxr, rb);
            for (int64_t x = 0; x < nxr; x++) r[x] = LERP(ra[x], wz0, rb[x], wz1);
        }
        for (int64_t h = g->lo[1]; h < g->hi[1]; h++) {
            /* y */
            const float *r0 = rows + (c->y0[h] - ylo) * nxr, *r1 = rows + (c->y1[h] - ylo) * nxr;
            const float wy0 = c->wy0[h], wy1 = c->wy1[h];
            for (int64_t x = 0; x < nxr; x++) ry[x] = LERP(r0[x], wy0, r1[x], wy1);
            /* x, then the window */
            float *o = slice + (h - g->lo[1] + g->pad_before[1]) * OW + g->pad_before[2];
            const int64_t wn = g->hi[2] - g->lo[2];
            const int32_t *x0 = c->x0 + g->lo[2], *x1 = c->x1 + g->lo[2];
            const float *wx0 = c->wx0 + g->lo[2], *wx1 = c->wx1 + g->lo[2];
            for (int64_t w = 0; w < wn; w++) o[w] = LERP(ry[x0[w] - xlo], wx0[w], ry[x1[w] - xlo], wx1[w]);
            if (win)                                  /* true division, as torch: a separate, vectorised pass */
                for (int64_t w = 0; w < wn; w++) {
                    float v = (o[w] - wlo) / wden;
                    o[w] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                }
        }
    }
    free(rows);
    free(ra);
    free(rb);
    free(ry);
}

int rs_image_write(const struct rs_src *img, const struct rs_grid *g, const struct rs_window *w, float *out,
                   int threads) {
    if (check_src(img, g, "image") != 0) return -1;
    struct img_ctx c = { .img = img, .g = g, .win = w, .out = out };
    int64_t n[3] = { g->res_shape[0], g->res_shape[1], g->res_shape[2] };
    int32_t **i0[3] = { &c.z0, &c.y0, &c.x0 }, **i1[3] = { &c.z1, &c.y1, &c.x1 };
    float **w0[3] = { &c.wz0, &c.wy0, &c.wx0 }, **w1[3] = { &c.wz1, &c.wy1, &c.wx1 };
    for (int a = 0; a < 3; a++) {
        *i0[a] = ct_xmalloc((size_t)n[a] * sizeof(int32_t));
        *i1[a] = ct_xmalloc((size_t)n[a] * sizeof(int32_t));
        *w0[a] = ct_xmalloc((size_t)n[a] * sizeof(float));
        *w1[a] = ct_xmalloc((size_t)n[a] * sizeof(float));
        rs_axis_linear(g->in_shape[a], n[a], *i0[a], *i1[a], *w0[a], *w1[a]);
    }
    par_for(threads, g->out_shape[0], image_range, &c);
    for (int a = 0; a < 3; a++) {
        free(*i0[a]);
        free(*i1[a]);
        free(*w0[a]);
        free(*w1[a]);
    }
    return 0;
}

/* ---- the merge table of an organ set (lib/organs.h) ---- */

void rs_organs_lut(const struct org_classes *o, struct tn_arena *a, struct rs_lut *lut) {
    uint8_t *m = tn_arena_alloc(a, (size_t)o->n_classes + 1);
    memset(m, 0, (size_t)o->n_classes + 1);
    for (int k = 0; k < o->n; k++)
        for (int i = 0; i < o->organs[k].n_ids; i++) m[o->organs[k].ids[i]] = (uint8_t)(k + 1);
    lut->map = m;
    lut->n = o->n_classes + 1;
}
