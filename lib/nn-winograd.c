/*
 * nn-winograd.c - 3x3x3 stride-1 convolutions ("same" padding = dilation) by Winograd's minimal
 * filtering F(2x2x2, 3x3x3).  See nn.h (nn_wino_new, nn_conv3d_wino) for the interface.
 *
 * Why: the encoder's trunk is GEMM-bound and OpenBLAS's sgemm already runs near its peak, so the
 * only way to go faster is fewer multiplications.  In 1-D, F(2,3) gets two outputs y0, y1 of a
 * 3-tap filter g over four inputs d0..d3 with 4 multiplications instead of 6:
 *
 *     y = A^T [ (G g) .* (B^T d) ]
 *
 *     B^T = | 1  0 -1  0 |     G = | 1    0    0   |     A^T = | 1  1  1  0 |
 *           | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
 *           | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
 *           | 0  1  0 -1 |         | 0    0    1   |
 *
 * In 3-D the same matrices act along each axis: a 4x4x4 input tile gives a 2x2x2 output tile with
 * 64 products per (c_out, c_in) pair instead of 8 * 27 = 216, 3.375x fewer.  Summed over the
 * input channels, the products at each of the 64 transformed positions k form one GEMM:
 *
 *     M[k] [c_out x tiles] = U[k] [c_out x c_in] . V[k] [c_in x tiles],   k = 0 .. 63
 *
 * with U = (G x G x G) w per (c_out, c_in) (once, at nn_wino_new, in double precision),
 * V = (B^T x B^T x B^T) d per tile and input channel, and the output tile = (A^T x A^T x A^T) M[.]:
 * the transforms of the data are additions and subtractions only.  F(2,3) is numerically mild
 * (no coefficient beyond 1/2): float32 results stay within ~1e-6 of the exact ones here, as the
 * direct GEMM path does (tests/unit/test-nn.c, tests/ref/test_encode.py).
 *
 * How, per conv:
 *  1. prepare: the input is copied once into a zero-padded layout in which every row is split
 *     into its even and odd positions (E, O), padded to whole vectors; a tile t of a row then
 *     reads E[t], O[t], E[t+1], O[t+1], so the input transform runs on 16 tiles at a time with
 *     plain vector loads.  With dilation d the input is first split into its d^3 interleaved
 *     sub-grids (phases: positions p, p + d, p + 2d ... on each axis): a dilated conv is an
 *     undilated conv on each sub-grid, so the same tiles serve dilated convs (layer3 of the
 *     encoder), the sub-grids' tiles sharing the chunks and GEMMs.
 *  2. the tile rows (sub-grid, tile depth, tile row) are cut into chunks of 128 tiles or more;
 *     per chunk (spread over the threads): input transform into V (64 x c_in x tiles, a few MB),
 *     64 sgemm calls into M, output transform + bias + residual + ReLU straight into y.
 *  Tiles hanging over the border read zero padding; their outputs outside the grid are dropped.
 *
 * The data transforms use GCC/clang vector extensions (16 floats: one AVX-512 register; the
 * compiler splits them on narrower machines); the only intrinsic is a masked store for the last
 * partial vector of a row when AVX-512 is there (a scalar loop otherwise).
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ct.h"
#include "nn-impl.h"
#include "nn.h"

#if defined(__GNUC__) && !defined(__clang__)
/* without AVX-512 (ARCH= builds) gcc notes that 64-byte vector returns change the ABI: these
 * helpers are static inline, no ABI is involved */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/* The helpers and the bodies of the three data kernels (prepare, input and output transform)
 * are inlined into each of their instruction-set variants (see "run-time choice" below). */
#define SIMD_INLINE static inline __attribute__((always_inline))

#define VL 16   /* floats per vector */
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int   vi __attribute__((vector_size(VL * sizeof(int))));

SIMD_INLINE vf vld(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
SIMD_INLINE void vst(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* store the first n lanes */
SIMD_INLINE void vst_n(float *p, vf v, int64_t n) {
    if (n >= VL) {
        vst(p, v);
    } else {
#if defined(__AVX512F__) && VL == 16
        _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
        for (int64_t k = 0; k < n; k++) p[k] = v[k];
#endif
    }
}
SIMD_INLINE vf vsplat(float x) { return (vf){ 0 } + x; }

#if defined(__clang__)
#define SHUF2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF2(a, b, ...) __builtin_shuffle(a, b, (vi){ __VA_ARGS__ })
#endif
/* (a, b) -> even lanes of the pair, odd lanes; and back */
#define EVENS(a, b) SHUF2(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b)  SHUF2(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define ZIP_LO(a, b) SHUF2(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_HI(a, b) SHUF2(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

/* ------------------------------------------------------------------------------------------ */
/* weights                                                                                    */
/* ------------------------------------------------------------------------------------------ */

struct nn_wino {
    int    c_out, c_in;
    float *u;                         /* [64][c_out][c_in], k = (i * 4 + j) * 4 + l (D, H, W) */
};

static const double G[4][3] = { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } };

struct nn_wino *nn_wino_new(const float *w, int c_out, int c_in) {
    if (c_out < 1 || c_in < 1) {
        ct_seterr("winograd: bad channel counts %d -> %d", c_in, c_out);
        return NULL;
    }
    struct nn_wino *u = ct_xcalloc(1, sizeof *u);
    u->c_out = c_out;
    u->c_in = c_in;
    const int64_t n = (int64_t)c_out * c_in;
    u->u = ct_xaligned((size_t)(64 * n) * sizeof(float));
    for (int64_t pair = 0; pair < n; pair++) {
        const float *g = w + pair * 27;   /* [3][3][3] */
        double t1[4][3][3], t2[4][4][3];
        for (int i = 0; i < 4; i++)       /* along D */
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 3; c++)
                    t1[i][b][c] = G[i][0] * g[b * 3 + c] + G[i][1] * g[9 + b * 3 + c] + G[i][2] * g[18 + b * 3 + c];
        for (int i = 0; i < 4; i++)       /* along H */
            for (int j = 0; j < 4; j++)
                for (int c = 0; c < 3; c++)
                    t2[i][j][c] = G[j][0] * t1[i][0][c] + G[j][1] * t1[i][1][c] + G[j][2] * t1[i][2][c];
        for (int i = 0; i < 4; i++)       /* along W */
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 4; l++) {
                    double v = G[l][0] * t2[i][j][0] + G[l][1] * t2[i][j][1] + G[l][2] * t2[i][j][2];
                    u->u[((i * 4 + j) * 4 + l) * n + pair] = (float)v;
                }
    }
    return u;
}

void nn_wino_free(struct nn_wino *u) {
    if (!u) return;
    free(u->u);
    free(u);
}

/* ------------------------------------------------------------------------------------------ */
/* the convolution                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* One sub-grid (phase) of the map: positions org + d * i along each axis, i < n. */
struct sub {
    int64_t org[3], n[3];
    int64_t nt[3];                    /* tiles per axis: ceil(n / 2) */
    int64_t dq, hq;                   /* prepared planes and rows: 2 * nt + 2 (zero borders) */
    int64_t rows0;                    /* first tile row of this sub-grid in the global order */
    size_t  prep0;                    /* offset of its prepared data (channel 0) in wj.prep */
};

struct wino_kernels;

struct wino_job {
    float                    *y;
    const float              *x;
    int                       c_in, c_out, dil, relu;
    int64_t                   in[3], L;
    const float              *u, *b;
    const struct nn_residual *res;
    struct sub               *subs;
    int                       n_subs;
    int64_t                   elen;   /* floats of E (and of O) per prepared row */
    int64_t                   n_rows; /* tile rows of all sub-grids */
    float                    *prep;   /* per sub-grid: [c_in][dq][hq][2 * elen] */
    size_t                    prep_c; /* floats per channel of every sub-grid, summed */
    int64_t                  *chunk;  /* chunk c = tile rows chunk[c] .. chunk[c + 1] */
    int64_t                   n_chunks, ldt;
    int64_t                   vk, mk; /* floats between the 64 planes of V and of M (see plane_stride) */
    float                   **buf;    /* per thread: V [64][vk], then M [64][mk] */
    const struct wino_kernels *k;     /* the instruction-set variant of the data kernels */
};

static const struct sub *sub_of_row(const struct wino_job *j, int64_t r) {
    int s = 0;
    while (s + 1 < j->n_subs && j->subs[s + 1].rows0 <= r) s++;
    return &j->subs[s];
}

/* prepare one (sub-grid, channel): row (a', b') of the padded sub-grid holds input position
 * (a' - 1, b' - 1) of it, E[i] = x[2i - 1] and O[i] = x[2i] along W (zeros outside). */
SIMD_INLINE void prep_body(const struct wino_job *j, int64_t item) {
    const struct sub *s = &j->subs[item / j->c_in];
    const int64_t ci = item % j->c_in, d = j->dil, H = j->in[1], W = j->in[2], elen = j->elen;
    const int64_t n2 = s->n[2];
    float *dst = j->prep + s->prep0 * (size_t)j->c_in + (size_t)ci * (size_t)(s->dq * s->hq * 2 * elen);
    const float *xc = j->x + ci * j->L;
    for (int64_t a = 0; a < s->dq; a++)
        for (int64_t b = 0; b < s->hq; b++, dst += 2 * elen) {
            float *E = dst, *O = dst + elen;
            if (a < 1 || a > s->n[0] || b < 1 || b > s->n[1]) {
                memset(dst, 0, (size_t)(2 * elen) * sizeof *dst);
                continue;
            }
            const float *src = xc + ((s->org[0] + d * (a - 1)) * H + s->org[1] + d * (b - 1)) * W + s->org[2];
            int64_t i = 0;
            if (d == 1) {
                /* E[i] = x[2i-1], O[i] = x[2i]: 32 inputs from x[2i-1] give 16 of each */
                E[0] = 0.0f;
                O[0] = src[0];
                for (i = 1; 2 * i + 2 * VL - 2 < n2; i += VL) {
                    vf lo = vld(src + 2 * i - 1), hi = vld(src + 2 * i - 1 + VL);
                    vst(E + i, EVENS(lo, hi));
                    vst(O + i, ODDS(lo, hi));
                }
            }
            for (; i < elen; i++) {
                E[i] = i >= 1 && 2 * i - 1 < n2 ? src[d * (2 * i - 1)] : 0.0f;
                O[i] = 2 * i < n2 ? src[d * 2 * i] : 0.0f;
            }
        }
}

/* B^T along one axis: d0..d3 -> v0..v3 */
#define BT(d0, d1, d2, d3, v0, v1, v2, v3)                                                 \
    do {                                                                                   \
        vf bt0_ = (d0) - (d2), bt1_ = (d1) + (d2), bt2_ = (d2) - (d1), bt3_ = (d1) - (d3); \
        v0 = bt0_;                                                                         \
        v1 = bt1_;                                                                         \
        v2 = bt2_;                                                                         \
        v3 = bt3_;                                                                         \
    } while (0)

/* input transform of the chunk's tiles into V: plane k = [c_in][ldt] at V + k * vk.  Stores are
 * whole vectors: the lanes past a tile row's last tile land on the next row's tiles (written
 * next) or, after the chunk's last row, in the slack of ldt. */
SIMD_INLINE void input_transform_body(const struct wino_job *j, int64_t r0, int64_t r1, float *V) {
    const int64_t elen = j->elen, rl = 2 * elen, ldt = j->ldt, vk = j->vk;
    for (int64_t ci = 0; ci < j->c_in; ci++) {
        int64_t t0 = 0;
        for (int64_t r = r0; r < r1; r++) {
            const struct sub *s = sub_of_row(j, r);
            const int64_t rr = r - s->rows0, td = rr / s->nt[1], th = rr % s->nt[1], ntw = s->nt[2], hq = s->hq;
            const float *base = j->prep + s->prep0 * (size_t)j->c_in +
                                (size_t)(((ci * s->dq + 2 * td) * hq + 2 * th) * rl);
            float *vrow = V + ci * ldt + t0;
            for (int64_t t = 0; t < ntw; t += VL) {
#pragma GCC unroll 4
                for (int l = 0; l < 4; l++) {
                    /* along W, component l, for the 4 x 4 rows (a, b) of the tile row */
                    vf w[4][4];
#pragma GCC unroll 4
                    for (int a = 0; a < 4; a++)
#pragma GCC unroll 4
                        for (int b = 0; b < 4; b++) {
                            const float *E = base + (a * hq + b) * rl + t, *O = E + elen;
                            w[a][b] = l == 0 ? vld(E) - vld(E + 1)
                                    : l == 1 ? vld(O) + vld(E + 1)
                                    : l == 2 ? vld(E + 1) - vld(O)
                                             : vld(O) - vld(O + 1);
                        }
                    /* along D (a -> i), then H (b -> j) */
#pragma GCC unroll 4
                    for (int b = 0; b < 4; b++)
                        BT(w[0][b], w[1][b], w[2][b], w[3][b], w[0][b], w[1][b], w[2][b], w[3][b]);
#pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) {
                        vf v0, v1, v2, v3;
                        BT(w[i][0], w[i][1], w[i][2], w[i][3], v0, v1, v2, v3);
                        float *o = vrow + (int64_t)((i * 4) * 4 + l) * vk + t;
                        vst(o, v0);
                        vst(o + 4 * vk, v1);
                        vst(o + 8 * vk, v2);
                        vst(o + 12 * vk, v3);
                    }
                }
            }
            t0 += ntw;
        }
    }
}

/* A^T along one axis: m0..m3 -> y0, y1 */
#define AT(m0, m1, m2, m3, y0, y1) \
    do {                           \
        y0 = (m0) + (m1) + (m2);   \
        y1 = (m1) - (m2) - (m3);   \
    } while (0)

/* output transform of M (plane k = [c_out][ldt] at M + k * mk) + bias + residual, ReLU, into y */
SIMD_INLINE void output_transform_body(const struct wino_job *j, int64_t r0, int64_t r1, const float *M) {
    const int64_t ldt = j->ldt, mk = j->mk, d = j->dil;
    const int64_t H = j->in[1], W = j->in[2];
    const struct nn_residual *res = j->res;
    for (int64_t co = 0; co < j->c_out; co++) {
        const vf bias = vsplat(j->b ? j->b[co] : 0.0f);
        const int has_res = res && co < res->c;
        int64_t t0 = 0;
        for (int64_t r = r0; r < r1; r++) {
            const struct sub *s = sub_of_row(j, r);
            const int64_t rr = r - s->rows0, td = rr / s->nt[1], th = rr % s->nt[1], ntw = s->nt[2];
            const float *mrow = M + co * ldt + t0;
            for (int64_t t = 0; t < ntw; t += VL) {
                /* per W component l: along D (i -> od), then H (j -> oh) */
                vf q[2][2][4];
#pragma GCC unroll 4
                for (int l = 0; l < 4; l++) {
                    vf z[2][4];
#pragma GCC unroll 4
                    for (int jj = 0; jj < 4; jj++) {
                        const float *m = mrow + (int64_t)(jj * 4 + l) * mk + t;
                        AT(vld(m), vld(m + 16 * mk), vld(m + 32 * mk), vld(m + 48 * mk), z[0][jj], z[1][jj]);
                    }
#pragma GCC unroll 2
                    for (int od = 0; od < 2; od++) AT(z[od][0], z[od][1], z[od][2], z[od][3], q[od][0][l], q[od][1][l]);
                }
                for (int od = 0; od < 2; od++) {
                    const int64_t pd = 2 * td + od;
                    if (pd >= s->n[0]) break;
                    for (int oh = 0; oh < 2; oh++) {
                        const int64_t ph = 2 * th + oh;
                        if (ph >= s->n[1]) break;
                        /* along W (l -> even / odd output), interleaved into 2 * VL outputs */
                        vf ye, yo;
                        AT(q[od][oh][0], q[od][oh][1], q[od][oh][2], q[od][oh][3], ye, yo);
                        vf lo = ZIP_LO(ye, yo) + bias, hi = ZIP_HI(ye, yo) + bias;
                        const int64_t w0 = 2 * t, nw = s->n[2] - w0 < 2 * VL ? s->n[2] - w0 : 2 * VL;
                        const int64_t D0 = s->org[0] + d * pd, H0 = s->org[1] + d * ph, W0 = s->org[2] + d * w0;
                        float *yr = j->y + co * j->L + (D0 * H + H0) * W + W0;
                        /* the residual at these outputs: x[co, D0, H0, W0 + d k] (may be yr: in
                         * place), or shortcut A, x[co, 2 D0, 2 H0, 2 (W0 + d k)] */
                        const float *xr = NULL;
                        int64_t rs = d;
                        if (has_res && res->step == 1) {
                            xr = res->x + co * j->L + (D0 * H + H0) * W + W0;
                        } else if (has_res) {
                            const int64_t *g = res->shape;
                            xr = res->x + ((co * g[0] + 2 * D0) * g[1] + 2 * H0) * g[2] + 2 * W0;
                            rs = 2 * d;
                        }
                        if (d == 1) {
                            if (xr && rs == 1 && nw == 2 * VL) {
                                lo += vld(xr);
                                hi += vld(xr + VL);
                            } else if (xr) {
                                float tmp[2 * VL] = { 0 };
                                for (int64_t k = 0; k < nw; k++) tmp[k] = xr[rs * k];
                                lo += vld(tmp);
                                hi += vld(tmp + VL);
                            }
                            if (j->relu) {   /* v < 0 ? 0 : v, as the scalar paths (NaN kept) */
                                const vf zero = { 0 };
                                lo = (vf)((vi)lo & ~(lo < zero));
                                hi = (vf)((vi)hi & ~(hi < zero));
                            }
                            vst_n(yr, lo, nw);
                            if (nw > VL) vst_n(yr + VL, hi, nw - VL);
                        } else {
                            float tmp[2 * VL];
                            vst(tmp, lo);
                            vst(tmp + VL, hi);
                            for (int64_t k = 0; k < nw; k++) {
                                float v = tmp[k] + (xr ? xr[rs * k] : 0.0f);
                                yr[d * k] = j->relu && v < 0.0f ? 0.0f : v;
                            }
                        }
                    }
                }
            }
            t0 += ntw;
        }
    }
}

/* ---- run-time choice of the instruction set ----
 * The kernels above are written once, with vector extensions; each variant below is the same
 * code compiled for one instruction set (target attribute), and nn_conv3d_wino takes the best
 * one the CPU runs (__builtin_cpu_supports, which includes the OS's support).  A portable build
 * (ARCH= or -march=x86-64-v3) so gets AVX-512 transforms on AVX-512 CPUs and never executes them
 * elsewhere; a build whose target already has AVX-512 (-march=native here) compiles only the one
 * variant.  The kernels only add, subtract and move floats (no FMA, no reassociation without
 * -ffast-math), so every variant gives bit-identical results. */
struct wino_kernels {
    const char *name;
    void (*prep)(const struct wino_job *j, int64_t item);
    void (*input)(const struct wino_job *j, int64_t r0, int64_t r1, float *V);
    void (*output)(const struct wino_job *j, int64_t r0, int64_t r1, const float *M);
};

#define WINO_VARIANT(sfx, attr)                                                                   \
    attr static void prep_##sfx(const struct wino_job *j, int64_t item) { prep_body(j, item); }   \
    attr static void input_##sfx(const struct wino_job *j, int64_t r0, int64_t r1, float *V) {    \
        input_transform_body(j, r0, r1, V);                                                       \
    }                                                                                             \
    attr static void output_##sfx(const struct wino_job *j, int64_t r0, int64_t r1, const float *M) { \
        output_transform_body(j, r0, r1, M);                                                      \
    }

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define BUILD_NAME "AVX-512 (build target)"
#elif defined(__AVX2__)
#define BUILD_NAME "AVX2 (build target)"
#else
#define BUILD_NAME "baseline (build target)"
#endif

WINO_VARIANT(build, )
static const struct wino_kernels k_build = { BUILD_NAME, prep_build, input_build, output_build };

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__AVX512F__)
#define WINO_DISPATCH 1
WINO_VARIANT(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))))
static const struct wino_kernels k_avx512 = { "AVX-512 (chosen at run time)", prep_avx512, input_avx512, output_avx512 };
#if !defined(__AVX2__)
WINO_VARIANT(avx2, __attribute__((target("avx2,fma"))))
static const struct wino_kernels k_avx2 = { "AVX2 (chosen at run time)", prep_avx2, input_avx2, output_avx2 };
#endif
#endif

static int wino_cap;   /* nn_wino_force_isa: 0 = best available */

void nn_wino_force_isa(int level) { wino_cap = level; }

static const struct wino_kernels *wino_kernels(void) {
#ifdef WINO_DISPATCH
    __builtin_cpu_init();
    if ((!wino_cap || wino_cap >= 4) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return &k_avx512;
#if !defined(__AVX2__)
    if ((!wino_cap || wino_cap >= 3) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &k_avx2;
#endif
#endif
    return &k_build;
}

const char *nn_wino_isa(void) { return wino_kernels()->name; }

static void prep_item(void *ctx, int64_t item, int tid) {
    (void)tid;
    const struct wino_job *j = ctx;
    j->k->prep(j, item);
}

static void chunk_item(void *ctx, int64_t c, int tid) {
    const struct wino_job *j = ctx;
    const int64_t r0 = j->chunk[c], r1 = j->chunk[c + 1], ldt = j->ldt;
    int64_t T = 0;
    for (int64_t r = r0; r < r1; r++) T += sub_of_row(j, r)->nt[2];
    float *V = j->buf[tid], *M = V + 64 * j->vk;
    j->k->input(j, r0, r1, V);
    for (int k = 0; k < 64; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->c_out, (int)T, j->c_in, 1.0f,
                    j->u + (int64_t)k * j->c_out * j->c_in, j->c_in, V + k * j->vk, (int)ldt, 0.0f, M + k * j->mk,
                    (int)ldt);
    j->k->output(j, r0, r1, M);
}

/* The transforms touch the 64 planes of V (and M) at the same offset in each: with plane sizes
 * that are multiples of 4 KB those 64 addresses would fall into the same L1 set and evict one
 * another.  Planes n floats long are therefore spaced by a multiple of 4 KB plus one cache line. */
static int64_t plane_stride(int64_t n) { return round_up(n, 1024) + 16; }

/* Tiles per chunk.  Each chunk streams all of U (64 * c_out * c_in floats: 1 MB for 64 channels,
 * 16 MB for 256) through the cache for its GEMMs, so wide convs want long chunks; narrow ones
 * gain nothing beyond ~128 tiles, where V and M (64 * (c_in + c_out) floats per tile) still sit
 * in L2/L3.  Measured on layers 1-3 of the encoder; nn_tuning's wino_tiles overrides. */
static int64_t chunk_tiles(int c_in, int c_out) {
    if (nn_tuning_get()->wino_tiles >= 1) return nn_tuning_get()->wino_tiles;
    int64_t t = (int64_t)c_in * c_out / 32;
    return t < 128 ? 128 : t;
}

int nn_conv3d_wino(float *y, const float *x, const int64_t in[3], const struct nn_wino *u, const float *b, int dil,
                   const struct nn_residual *res, int relu, int n_threads) {
    struct wino_job j = { .y = y, .x = x, .c_in = u->c_in, .c_out = u->c_out, .dil = dil, .relu = relu, .u = u->u,
                          .b = b, .res = res };
    if (dil < 1) return ct_seterr("winograd: dilation %d", dil);
    for (int a = 0; a < 3; a++)
        if (in[a] < 1) return ct_seterr("winograd: empty input axis %d", a);
    if (y == x) return ct_seterr("winograd: output aliases the input");
    if (res) {
        if (res->step != 1 && res->step != 2) return ct_seterr("winograd: residual step %d", res->step);
        if (res->step == 2 && res->x == y) return ct_seterr("winograd: output aliases the residual");
        if (res->c > u->c_out) return ct_seterr("winograd: residual has more channels than the output");
        for (int a = 0; a < 3; a++) {
            int64_t want = res->step == 1 ? res->shape[a] : (res->shape[a] + 1) / 2;
            if (want != in[a]) return ct_seterr("winograd: residual grid does not match the output");
        }
    }
    if (n_threads < 1) n_threads = 1;
    j.k = wino_kernels();
    memcpy(j.in, in, sizeof j.in);
    j.L = in[0] * in[1] * in[2];
    /* the sub-grids: d^3 phases (one for d = 1), skipping empty ones */
    const int64_t d = dil;
    j.subs = ct_xcalloc((size_t)(d * d * d), sizeof *j.subs);
    int64_t max_ntw = 1;
    for (int64_t p0 = 0; p0 < d && p0 < in[0]; p0++)
        for (int64_t p1 = 0; p1 < d && p1 < in[1]; p1++)
            for (int64_t p2 = 0; p2 < d && p2 < in[2]; p2++) {
                struct sub *s = &j.subs[j.n_subs++];
                const int64_t p[3] = { p0, p1, p2 };
                for (int a = 0; a < 3; a++) {
                    s->org[a] = p[a];
                    s->n[a] = (in[a] - p[a] + d - 1) / d;
                    s->nt[a] = (s->n[a] + 1) / 2;
                }
                if (s->nt[2] > max_ntw) max_ntw = s->nt[2];
                s->dq = 2 * s->nt[0] + 2;
                s->hq = 2 * s->nt[1] + 2;
            }
    /* E[t + 1] of the last block of VL tiles is read too */
    j.elen = round_up(max_ntw + 1, VL);
    for (int i = 0; i < j.n_subs; i++) {
        struct sub *s = &j.subs[i];
        s->rows0 = j.n_rows;
        j.n_rows += s->nt[0] * s->nt[1];
        s->prep0 = j.prep_c;
        j.prep_c += (size_t)(s->dq * s->hq * 2 * j.elen);
    }
    /* + VL: the last row's O[t + 1 ..] vector reads run up to VL floats past its end */
    j.prep = nn_scratch_get(j.prep_c * (size_t)j.c_in + VL);
    memset(j.prep + j.prep_c * (size_t)j.c_in, 0, VL * sizeof(float));
    nn_parallel_for(n_threads, (int64_t)j.n_subs * j.c_in, prep_item, &j);
    /* chunks of whole tile rows, about chunk_tiles() tiles each, at least 2 per thread */
    int64_t total = 0;
    for (int i = 0; i < j.n_subs; i++) total += j.subs[i].nt[0] * j.subs[i].nt[1] * j.subs[i].nt[2];
    int64_t target = chunk_tiles(j.c_in, j.c_out);
    if (n_threads > 1 && total / target < 2 * n_threads) target = total / (2 * n_threads);
    if (target < 1) target = 1;
    j.chunk = ct_xmalloc((size_t)(j.n_rows + 1) * sizeof *j.chunk);
    int64_t max_t = 0, cur = 0;
    j.chunk[0] = 0;
    for (int64_t r = 0; r < j.n_rows; r++) {
        cur += sub_of_row(&j, r)->nt[2];
        if (cur >= target || r + 1 == j.n_rows) {
            j.chunk[++j.n_chunks] = r + 1;
            if (cur > max_t) max_t = cur;
            cur = 0;
        }
    }
    /* M rows are read in whole vectors past the chunk's last tile: VL floats of slack */
    j.ldt = round_up(max_t, VL) + VL;
    const int nt = n_threads < j.n_chunks ? n_threads : (int)j.n_chunks;
    j.vk = plane_stride((int64_t)j.c_in * j.ldt);
    j.mk = plane_stride((int64_t)j.c_out * j.ldt);
    const size_t per = (size_t)(64 * (j.vk + j.mk));
    j.buf = nn_scratch_get_n(nt, per);
    for (int t = 0; t < nt; t++) memset(j.buf[t], 0, per * sizeof(float));
    nn_parallel_for(nt, j.n_chunks, chunk_item, &j);
    nn_scratch_put_n(j.buf, nt);
    nn_scratch_put(j.prep);
    free(j.chunk);
    free(j.subs);
    return 0;
}
