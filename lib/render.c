/* render.c - slices, overlays, a bitmap font and RGB canvases (see render.h). */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"

/* ---- canvases ---- */

void rn_image_init(struct rn_image *im, int w, int h, const uint8_t bg[3]) {
    CT_ASSERT(w > 0 && h > 0);
    im->w = w;
    im->h = h;
    im->rgb = ct_xmalloc((size_t)w * (size_t)h * 3);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) memcpy(im->rgb + 3 * i, bg, 3);
}

void rn_image_free(struct rn_image *im) {
    free(im->rgb);
    im->rgb = NULL;
    im->w = im->h = 0;
}

void rn_blit(struct rn_image *dst, const struct rn_image *src, int x, int y) {
    for (int r = 0; r < src->h; r++) {
        int yy = y + r;
        if (yy < 0 || yy >= dst->h) continue;
        int c0 = x < 0 ? -x : 0, c1 = src->w;
        if (x + c1 > dst->w) c1 = dst->w - x;
        if (c1 <= c0) continue;
        memcpy(dst->rgb + ((size_t)yy * (size_t)dst->w + (size_t)(x + c0)) * 3,
               src->rgb + ((size_t)r * (size_t)src->w + (size_t)c0) * 3, (size_t)(c1 - c0) * 3);
    }
}

void rn_fill_rect(struct rn_image *im, int x, int y, int w, int h, const uint8_t c[3]) {
    for (int r = y < 0 ? 0 : y; r < y + h && r < im->h; r++)
        for (int q = x < 0 ? 0 : x; q < x + w && q < im->w; q++)
            memcpy(im->rgb + ((size_t)r * (size_t)im->w + (size_t)q) * 3, c, 3);
}

void rn_blend(uint8_t *p, const uint8_t c[3], int a) {
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] * (256 - a) + c[k] * a + 128) >> 8);
}

/* ---- font: 5x7 glyphs (descenders squeezed into the 7 rows), one string per row ---- */

static const struct {
    char        ch;
    const char *rows[7];
} glyphs[] = {
    { '0', { "01110", "10001", "10011", "10101", "11001", "10001", "01110" } },
    { '1', { "00100", "01100", "00100", "00100", "00100", "00100", "01110" } },
    { '2', { "01110", "10001", "00001", "00010", "00100", "01000", "11111" } },
    { '3', { "11111", "00010", "00100", "00010", "00001", "10001", "01110" } },
    { '4', { "00010", "00110", "01010", "10010", "11111", "00010", "00010" } },
    { '5', { "11111", "10000", "11110", "00001", "00001", "10001", "01110" } },
    { '6', { "00110", "01000", "10000", "11110", "10001", "10001", "01110" } },
    { '7', { "11111", "00001", "00010", "00100", "01000", "01000", "01000" } },
    { '8', { "01110", "10001", "10001", "01110", "10001", "10001", "01110" } },
    { '9', { "01110", "10001", "10001", "01111", "00001", "00010", "01100" } },
    { 'A', { "01110", "10001", "10001", "11111", "10001", "10001", "10001" } },
    { 'B', { "11110", "10001", "10001", "11110", "10001", "10001", "11110" } },
    { 'C', { "01110", "10001", "10000", "10000", "10000", "10001", "01110" } },
    { 'D', { "11100", "10010", "10001", "10001", "10001", "10010", "11100" } },
    { 'E', { "11111", "10000", "10000", "11110", "10000", "10000", "11111" } },
    { 'F', { "11111", "10000", "10000", "11110", "10000", "10000", "10000" } },
    { 'G', { "01110", "10001", "10000", "10111", "10001", "10001", "01111" } },
    { 'H', { "10001", "10001", "10001", "11111", "10001", "10001", "10001" } },
    { 'I', { "01110", "00100", "00100", "00100", "00100", "00100", "01110" } },
    { 'J', { "00111", "00010", "00010", "00010", "00010", "10010", "01100" } },
    { 'K', { "10001", "10010", "10100", "11000", "10100", "10010", "10001" } },
    { 'L', { "10000", "10000", "10000", "10000", "10000", "10000", "11111" } },
    { 'M', { "10001", "11011", "10101", "10101", "10001", "10001", "10001" } },
    { 'N', { "10001", "10001", "11001", "10101", "10011", "10001", "10001" } },
    { 'O', { "01110", "10001", "10001", "10001", "10001", "10001", "01110" } },
    { 'P', { "11110", "10001", "10001", "11110", "10000", "10000", "10000" } },
    { 'Q', { "01110", "10001", "10001", "10001", "10101", "10010", "01101" } },
    { 'R', { "11110", "10001", "10001", "11110", "10100", "10010", "10001" } },
    { 'S', { "01111", "10000", "10000", "01110", "00001", "00001", "11110" } },
    { 'T', { "11111", "00100", "00100", "00100", "00100", "00100", "00100" } },
    { 'U', { "10001", "10001", "10001", "10001", "10001", "10001", "01110" } },
    { 'V', { "10001", "10001", "10001", "10001", "10001", "01010", "00100" } },
    { 'W', { "10001", "10001", "10001", "10101", "10101", "10101", "01010" } },
    { 'X', { "10001", "10001", "01010", "00100", "01010", "10001", "10001" } },
    { 'Y', { "10001", "10001", "10001", "01010", "00100", "00100", "00100" } },
    { 'Z', { "11111", "00001", "00010", "00100", "01000", "10000", "11111" } },
    { 'a', { "00000", "00000", "01110", "00001", "01111", "10001", "01111" } },
    { 'b', { "10000", "10000", "10110", "11001", "10001", "10001", "11110" } },
    { 'c', { "00000", "00000", "01110", "10000", "10000", "10001", "01110" } },
    { 'd', { "00001", "00001", "01101", "10011", "10001", "10001", "01111" } },
    { 'e', { "00000", "00000", "01110", "10001", "11111", "10000", "01110" } },
    { 'f', { "00110", "01001", "01000", "11100", "01000", "01000", "01000" } },
    { 'g', { "00000", "01111", "10001", "10001", "01111", "00001", "01110" } },
    { 'h', { "10000", "10000", "10110", "11001", "10001", "10001", "10001" } },
    { 'i', { "00100", "00000", "01100", "00100", "00100", "00100", "01110" } },
    { 'j', { "00010", "00000", "00110", "00010", "00010", "10010", "01100" } },
    { 'k', { "10000", "10000", "10010", "10100", "11000", "10100", "10010" } },
    { 'l', { "01100", "00100", "00100", "00100", "00100", "00100", "01110" } },
    { 'm', { "00000", "00000", "11010", "10101", "10101", "10001", "10001" } },
    { 'n', { "00000", "00000", "10110", "11001", "10001", "10001", "10001" } },
    { 'o', { "00000", "00000", "01110", "10001", "10001", "10001", "01110" } },
    { 'p', { "00000", "00000", "11110", "10001", "11110", "10000", "10000" } },
    { 'q', { "00000", "00000", "01101", "10011", "01111", "00001", "00001" } },
    { 'r', { "00000", "00000", "10110", "11001", "10000", "10000", "10000" } },
    { 's', { "00000", "00000", "01110", "10000", "01110", "00001", "11110" } },
    { 't', { "01000", "01000", "11100", "01000", "01000", "01001", "00110" } },
    { 'u', { "00000", "00000", "10001", "10001", "10001", "10011", "01101" } },
    { 'v', { "00000", "00000", "10001", "10001", "10001", "01010", "00100" } },
    { 'w', { "00000", "00000", "10001", "10001", "10101", "10101", "01010" } },
    { 'x', { "00000", "00000", "10001", "01010", "00100", "01010", "10001" } },
    { 'y', { "00000", "00000", "10001", "10001", "01111", "00001", "01110" } },
    { 'z', { "00000", "00000", "11111", "00010", "00100", "01000", "11111" } },
    { ' ', { "00000", "00000", "00000", "00000", "00000", "00000", "00000" } },
    { '.', { "00000", "00000", "00000", "00000", "00000", "01100", "01100" } },
    { ',', { "00000", "00000", "00000", "00000", "01100", "00100", "01000" } },
    { '-', { "00000", "00000", "00000", "11111", "00000", "00000", "00000" } },
    { '+', { "00000", "00100", "00100", "11111", "00100", "00100", "00000" } },
    { ':', { "00000", "01100", "01100", "00000", "01100", "01100", "00000" } },
    { '/', { "00000", "00001", "00010", "00100", "01000", "10000", "00000" } },
    { '=', { "00000", "00000", "11111", "00000", "11111", "00000", "00000" } },
    { '(', { "00010", "00100", "01000", "01000", "01000", "00100", "00010" } },
    { ')', { "01000", "00100", "00010", "00010", "00010", "00100", "01000" } },
    { '[', { "01110", "01000", "01000", "01000", "01000", "01000", "01110" } },
    { ']', { "01110", "00010", "00010", "00010", "00010", "00010", "01110" } },
    { '_', { "00000", "00000", "00000", "00000", "00000", "00000", "11111" } },
    { '%', { "11000", "11001", "00010", "00100", "01000", "10011", "00011" } },
    { '<', { "00010", "00100", "01000", "10000", "01000", "00100", "00010" } },
    { '>', { "01000", "00100", "00010", "00001", "00010", "00100", "01000" } },
    { '#', { "01010", "01010", "11111", "01010", "11111", "01010", "01010" } },
    { '*', { "00000", "00100", "10101", "01110", "10101", "00100", "00000" } },
    { '\'', { "01100", "00100", "01000", "00000", "00000", "00000", "00000" } },
    { '?', { "01110", "10001", "00001", "00010", "00100", "00000", "00100" } },
};

static int glyph_index(char ch) {
    int n = (int)(sizeof glyphs / sizeof glyphs[0]);
    for (int i = 0; i < n; i++)
        if (glyphs[i].ch == ch) return i;
    return n - 1;                               /* '?' */
}

int rn_text_width(const char *s, int scale) { return (int)strlen(s) * RN_GLYPH_W * scale; }

int rn_text(struct rn_image *im, int x, int y, const char *s, const uint8_t c[3], int scale) {
    int x0 = x;
    for (; *s; s++, x += RN_GLYPH_W * scale) {
        int g = glyph_index(*s);
        for (int r = 0; r < 7; r++)
            for (int q = 0; q < 5; q++)
                if (glyphs[g].rows[r][q] == '1') rn_fill_rect(im, x + q * scale, y + r * scale, scale, scale, c);
    }
    return x - x0;
}

/* ---- colours ---- */

static const uint8_t palette[10][3] = {
    { 255, 64, 64 },   /* red */
    { 64, 160, 255 },  /* blue */
    { 64, 230, 64 },   /* green */
    { 255, 200, 0 },   /* yellow */
    { 170, 110, 40 },  /* brown (magenta is the token-flag colour) */
    { 0, 230, 230 },   /* cyan */
    { 255, 140, 0 },   /* orange */
    { 160, 100, 255 }, /* violet */
    { 150, 255, 150 }, /* light green */
    { 255, 160, 200 }, /* pink */
};

const uint8_t *rn_label_colour(int k) { return palette[(k - 1 + 10 * 1000) % 10]; }

/* Anchors of the map at t = 0, 1/4, 1/2, 3/4, 1 (samples of matplotlib's viridis). */
static const double cmap_anchor[5][3] = {
    { 68, 1, 84 }, { 59, 82, 139 }, { 33, 145, 140 }, { 94, 201, 98 }, { 253, 231, 37 },
};

void rn_colormap(double t, uint8_t out[3]) {
    if (!(t > 0)) t = 0;                        /* also NaN */
    if (t > 1) t = 1;
    double x = t * 4;
    int i = (int)x;
    if (i > 3) i = 3;
    double f = x - i;
    for (int k = 0; k < 3; k++)
        out[k] = (uint8_t)floor(cmap_anchor[i][k] + (cmap_anchor[i + 1][k] - cmap_anchor[i][k]) * f + 0.5);
}

/* ---- slices ---- */

const char *rn_plane_name(enum rn_plane p) {
    return p == RN_AXIAL ? "axial" : p == RN_CORONAL ? "coronal" : "sagittal";
}

int rn_plane_parse(const char *s, enum rn_plane *out) {
    if (!strcmp(s, "axial") || !strcmp(s, "a")) *out = RN_AXIAL;
    else if (!strcmp(s, "coronal") || !strcmp(s, "c")) *out = RN_CORONAL;
    else if (!strcmp(s, "sagittal") || !strcmp(s, "s")) *out = RN_SAGITTAL;
    else return ct_seterr("unknown plane '%s' (axial, coronal or sagittal)", s);
    return 0;
}

/* Dominant world axis of affine column a and its sign. */
static int dominant(const double (*A)[4], int a, int *sign) {
    int k = 0;
    for (int i = 1; i < 3; i++)
        if (fabs(A[i][a]) > fabs(A[k][a])) k = i;
    *sign = A[k][a] > 0 ? 1 : -1;
    return k;
}

/* Letters of the world directions +x, +y, +z (RAS+) and their opposites. */
static const char pos_letter[3] = { 'R', 'A', 'S' }, neg_letter[3] = { 'L', 'P', 'I' };

static int64_t *axis_map(int64_t n, int out, int flip) {
    int64_t *m = ct_xmalloc((size_t)out * sizeof *m);
    for (int o = 0; o < out; o++) {
        int64_t i = ((2 * (int64_t)o + 1) * n) / (2 * (int64_t)out);
        m[o] = flip ? n - 1 - i : i;
    }
    return m;
}

int rn_slice_init(struct rn_slice *s, const int64_t shape[3], enum rn_plane plane, int64_t index,
                  const double (*affine)[4], const double *spacing, double scale, int orient) {
    memset(s, 0, sizeof *s);
    s->plane = plane;
    s->fixed = plane == RN_AXIAL ? 0 : plane == RN_CORONAL ? 1 : 2;
    s->axis_r = plane == RN_AXIAL ? 1 : 0;
    s->axis_c = plane == RN_SAGITTAL ? 1 : 2;
    memcpy(s->shape, shape, sizeof s->shape);
    for (int k = 0; k < 3; k++)
        if (shape[k] < 1) return ct_seterr("tensor has an empty axis");
    if (index < 0 || index >= shape[s->fixed])
        return ct_seterr("%s slice %lld out of range 0..%lld", rn_plane_name(plane), (long long)index,
                         (long long)shape[s->fixed] - 1);
    s->index = index;
    double sp[3] = { 1, 1, 1 };
    for (int a = 0; a < 3; a++) {
        if (spacing) sp[a] = spacing[a];
        else if (affine) sp[a] = sqrt(affine[0][a] * affine[0][a] + affine[1][a] * affine[1][a] + affine[2][a] * affine[2][a]);
        if (!(sp[a] > 0) || !isfinite(sp[a])) sp[a] = 1;
    }
    s->sp_r = sp[s->axis_r];
    s->sp_c = sp[s->axis_c];
    double p = (s->sp_r < s->sp_c ? s->sp_r : s->sp_c) / scale;
    double fh = floor((double)shape[s->axis_r] * s->sp_r / p + 0.5);
    double fw = floor((double)shape[s->axis_c] * s->sp_c / p + 0.5);
    if (fh < 1) fh = 1;
    if (fw < 1) fw = 1;
    if (!(fh <= 30000 && fw <= 30000)) return ct_seterr("picture of %.0f x %.0f pixels is too large (max 30000)", fw, fh);
    s->out_h = (int)fh;
    s->out_w = (int)fw;
    int axes[2] = { s->axis_r, s->axis_c }, flips[2] = { 0, 0 };
    for (int j = 0; j < 2; j++) {
        if (!affine) continue;
        int sign, k = dominant(affine, axes[j], &sign);
        flips[j] = orient && sign > 0;
        int dir = flips[j] ? -sign : sign;     /* world sign along the screen's increasing direction */
        /* letters[0] top, [1] bottom, [2] left, [3] right */
        s->letters[2 * j][0] = dir > 0 ? neg_letter[k] : pos_letter[k];
        s->letters[2 * j + 1][0] = dir > 0 ? pos_letter[k] : neg_letter[k];
    }
    s->flip_r = flips[0];
    s->flip_c = flips[1];
    s->src_r = axis_map(shape[s->axis_r], s->out_h, s->flip_r);
    s->src_c = axis_map(shape[s->axis_c], s->out_w, s->flip_c);
    return 0;
}

void rn_slice_free(struct rn_slice *s) {
    free(s->src_r);
    free(s->src_c);
    s->src_r = s->src_c = NULL;
}

int64_t rn_slice_voxel(const struct rn_slice *s, int r, int c) {
    int64_t idx[3];
    idx[s->fixed] = s->index;
    idx[s->axis_r] = s->src_r[r];
    idx[s->axis_c] = s->src_c[c];
    return (idx[0] * s->shape[1] + idx[1]) * s->shape[2] + idx[2];
}

static void voxel_index(const struct rn_slice *s, int r, int c, int64_t idx[3]) {
    idx[s->fixed] = s->index;
    idx[s->axis_r] = s->src_r[r];
    idx[s->axis_c] = s->src_c[c];
}

void rn_grey(const struct rn_slice *s, const struct tn_tensor *t, double lo, double hi, struct rn_image *im) {
    static const uint8_t black[3] = { 0, 0, 0 };
    rn_image_init(im, s->out_w, s->out_h, black);
    for (int r = 0; r < s->out_h; r++)
        for (int c = 0; c < s->out_w; c++) {
            double v = tn_get(t, rn_slice_voxel(s, r, c));
            double g = (v - lo) / (hi - lo);
            int pix;
            if (isnan(v) || !(g > 0)) pix = 0;
            else if (g >= 1) pix = 255;
            else pix = (int)floor(g * 255 + 0.5);
            uint8_t *p = im->rgb + ((size_t)r * (size_t)im->w + (size_t)c) * 3;
            p[0] = p[1] = p[2] = (uint8_t)pix;
        }
}

int rn_outline(const struct rn_slice *s, const struct tn_tensor *mask, struct rn_image *im, uint64_t *seen) {
    if (tn_dtype_is_float(mask->dtype)) return ct_seterr("mask tensor '%s' is %s, not an integer label map", mask->name, tn_dtype_name(mask->dtype));
    int H = s->out_h, W = s->out_w;
    int64_t *lab = ct_xmalloc((size_t)H * (size_t)W * sizeof *lab);
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) lab[(size_t)r * W + c] = (int64_t)tn_get(mask, rn_slice_voxel(s, r, c));
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            int64_t k = lab[(size_t)r * W + c];
            if (k <= 0) continue;
            if (seen && k <= 64) *seen |= (uint64_t)1 << (k - 1);
            int edge = r == 0 || c == 0 || r == H - 1 || c == W - 1 || lab[(size_t)(r - 1) * W + c] != k ||
                       lab[(size_t)(r + 1) * W + c] != k || lab[(size_t)r * W + c - 1] != k || lab[(size_t)r * W + c + 1] != k;
            if (edge) memcpy(im->rgb + ((size_t)r * W + c) * 3, rn_label_colour((int)(k > 1000000 ? 1 : k)), 3);
        }
    free(lab);
    return 0;
}

int rn_flags(const struct rn_slice *s, const int64_t grid[3], const int64_t cell[3], const int32_t *tok,
             int64_t n_tok, const uint8_t colour[3], struct rn_image *im) {
    int64_t ng = grid[0] * grid[1] * grid[2];
    int64_t cf = s->index / cell[s->fixed];     /* the cell layer the slice cuts */
    int64_t gr = grid[s->axis_r], gc = grid[s->axis_c];
    uint8_t *hit = ct_xcalloc((size_t)(gr * gc), 1);
    int n_hit = 0;
    for (int64_t i = 0; i < n_tok; i++) {
        if (tok[i] < 0 || tok[i] >= ng) {
            free(hit);
            return ct_seterr("token %d out of range 0..%lld of grid %lldx%lldx%lld", tok[i], (long long)ng - 1,
                             (long long)grid[0], (long long)grid[1], (long long)grid[2]);
        }
        int64_t t = tok[i], g[3];
        g[2] = t % grid[2];
        g[1] = (t / grid[2]) % grid[1];
        g[0] = t / (grid[2] * grid[1]);
        if (g[s->fixed] != cf) continue;
        uint8_t *h = &hit[g[s->axis_r] * gc + g[s->axis_c]];
        if (!*h) n_hit++;
        *h = 1;
    }
    static const uint8_t white[3] = { 255, 255, 255 };
    for (int r = 0; r < s->out_h; r++) {
        int64_t cr = s->src_r[r] / cell[s->axis_r];
        int64_t cr_up = r > 0 ? s->src_r[r - 1] / cell[s->axis_r] : cr;
        for (int c = 0; c < s->out_w; c++) {
            int64_t cc = s->src_c[c] / cell[s->axis_c];
            int64_t cc_left = c > 0 ? s->src_c[c - 1] / cell[s->axis_c] : cc;
            uint8_t *p = im->rgb + ((size_t)r * (size_t)im->w + (size_t)c) * 3;
            if (cr != cr_up || cc != cc_left) rn_blend(p, white, 96);
            else if (hit[cr * gc + cc]) rn_blend(p, colour, 112);
        }
    }
    free(hit);
    return n_hit;
}

int rn_mat4_inverse(const double m[4][4], double inv[4][4]) {
    double a[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) a[i][j] = j < 4 ? m[i][j] : (j - 4 == i);
    for (int c = 0; c < 4; c++) {
        int p = c;
        for (int i = c + 1; i < 4; i++)
            if (fabs(a[i][c]) > fabs(a[p][c])) p = i;
        if (!(fabs(a[p][c]) > 1e-12)) return -1;
        if (p != c)
            for (int j = 0; j < 8; j++) {
                double t = a[c][j];
                a[c][j] = a[p][j];
                a[p][j] = t;
            }
        double d = a[c][c];
        for (int j = 0; j < 8; j++) a[c][j] /= d;
        for (int i = 0; i < 4; i++) {
            if (i == c) continue;
            double f = a[i][c];
            for (int j = 0; j < 8; j++) a[i][j] -= f * a[c][j];
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) inv[i][j] = a[i][j + 4];
    return 0;
}

int64_t rn_anomaly_sample(const struct rn_slice *s, const double base_affine[4][4], const struct tn_tensor *anom,
                          const double anom_affine[4][4], float *vals) {
    if (anom->ndim != 3) return ct_seterr("anomaly tensor is %d-D, expected 3-D", anom->ndim);
    double inv[4][4], M[4][4];
    if (rn_mat4_inverse(anom_affine, inv) != 0) return ct_seterr("anomaly affine is singular");
    /* M = inv(anom_affine) @ base_affine: rendered voxel -> anomaly cell (continuous) */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double acc = 0;
            for (int k = 0; k < 4; k++) acc += inv[i][k] * base_affine[k][j];
            M[i][j] = acc;
        }
    int64_t n_in = 0;
    for (int r = 0; r < s->out_h; r++)
        for (int c = 0; c < s->out_w; c++) {
            int64_t v[3], g[3];
            voxel_index(s, r, c, v);
            int inside = 1;
            for (int i = 0; i < 3; i++) {
                double x = M[i][0] * (double)v[0] + M[i][1] * (double)v[1] + M[i][2] * (double)v[2] + M[i][3];
                double f = floor(x + 0.5 + 1e-6);
                if (!(f >= 0 && f < (double)anom->shape[i])) inside = 0;
                g[i] = inside ? (int64_t)f : 0;
            }
            if (!inside) continue;
            n_in++;
            double val = tn_get(anom, (g[0] * anom->shape[1] + g[1]) * anom->shape[2] + g[2]);
            float *o = &vals[(size_t)r * (size_t)s->out_w + (size_t)c];
            if (val > *o) *o = (float)val;
        }
    return n_in;
}

int64_t rn_anomaly_paint(const struct rn_slice *s, const float *vals, double lo, double hi, struct rn_image *im) {
    int64_t painted = 0;
    for (int r = 0; r < s->out_h; r++)
        for (int c = 0; c < s->out_w; c++) {
            double val = vals[(size_t)r * (size_t)s->out_w + (size_t)c];
            if (!(val > 0) || !isfinite(val)) continue;
            uint8_t col[3];
            rn_colormap(hi > lo ? (val - lo) / (hi - lo) : 1, col);
            rn_blend(im->rgb + ((size_t)r * (size_t)im->w + (size_t)c) * 3, col, 128);
            painted++;
        }
    return painted;
}

/* A number in at most 7 characters. */
static void fmt_num(double v, char *buf, size_t n) {
    double a = fabs(v);
    if (v == 0) snprintf(buf, n, "0");
    else if (a >= 1e5 || a < 1e-3) snprintf(buf, n, "%.1e", v);
    else if (a >= 100) snprintf(buf, n, "%.0f", v);
    else if (a >= 10) snprintf(buf, n, "%.1f", v);
    else if (a >= 1) snprintf(buf, n, "%.2f", v);
    else snprintf(buf, n, "%.3f", v);
}

int rn_colorbar(struct rn_image *im, int x, int y, int w, int h, double lo, double hi, const uint8_t fg[3]) {
    for (int r = 0; r < h; r++) {
        uint8_t col[3];
        rn_colormap(h > 1 ? (double)(h - 1 - r) / (h - 1) : 1, col);
        rn_fill_rect(im, x, y + r, w, 1, col);
    }
    int tw = 0;
    double vals[3] = { hi, (lo + hi) / 2, lo };
    int ys[3] = { y, y + h / 2 - RN_GLYPH_H / 2, y + h - RN_GLYPH_H + 1 };
    for (int i = 0; i < 3; i++) {
        char buf[32];
        fmt_num(vals[i], buf, sizeof buf);
        int t = rn_text(im, x + w + 5, ys[i], buf, fg, 1);
        if (t > tw) tw = t;
    }
    return w + 5 + tw;
}
