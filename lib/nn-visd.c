/*
 * nn-visd.c - the ViSD-Boost image encoder (method.md 2.1-2.2): a 3-D ResNet-18 with shortcut A
 * and dilations 1/1/2/4, then proj1..4 (1x1x1 conv to 256 channels), on the ops of nn.h.
 *
 *   conv1 7^3 stride (1,2,2) pad 3 + bn1 + ReLU + maxpool 3^3/2 pad 1    [64, D/2, H/4, W/4]
 *   layer1: 2 BasicBlocks, 64 ch, dilation 1                             stage 1
 *   layer2: 2 BasicBlocks, 128 ch, first stride 2, dilation 1            stage 2 [.., D/4, H/8, W/8]
 *   layer3: 2 BasicBlocks, 256 ch, first stride 2, dilation 2 (pad 2)    stage 3
 *   layer4: 2 BasicBlocks, 512 ch, first stride 2, dilation 4 (pad 4)    stage 4
 *   BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), both convs 3^3 dilated;
 *   shortcut A of a strided block: x at even indices, channels zero-padded.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "nn-visd.h"
#include "nn.h"
#include "stream.h"

static const int stage_c[NN_VISD_STAGES] = { 64, 128, 256, 512 };
static const int stage_dil[NN_VISD_STAGES] = { 1, 1, 2, 4 };

struct conv {
    struct nn_conv3d_params p;
    int                     c_in, c_out;
    float                  *w;        /* [c_out, c_in, k0, k1, k2], BN folded (NULL with wino) */
    float                  *b;        /* [c_out] */
    struct nn_wino         *wino;     /* Winograd weights of a stride-1 conv, or NULL */
    int                     boxes;    /* w is tap-major, [27][c_out][c_in], for nn_conv3d_boxes */
};

struct nn_visd {
    struct conv stem;                 /* conv1 + bn1 */
    struct conv blk[4][2][2];         /* [layer][block][conv1|conv2] + bn */
    float      *proj_w[4];            /* [256, C_s] */
    float      *proj_b[4];            /* [256] */
    /* last trunk run */
    int64_t     grid[4][3];
    float      *stage[4];             /* [C_s, grid] */
    size_t      stage_cap[4];         /* floats allocated */
    int         have_run;
};

/* ---- the key table (method.md 8.3) ---- */

struct key {
    char    name[128];
    int     ndim;
    int64_t shape[5];
};

#define N_KEYS (1 + 4 + 4 * 2 * (2 + 8) + 8)
static struct key keys[N_KEYS];
static int n_keys;

static void add_key(int ndim, const int64_t *shape, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_key(int ndim, const int64_t *shape, const char *fmt, ...) {
    CT_ASSERT(n_keys < N_KEYS);
    struct key *k = &keys[n_keys++];
    int n = snprintf(k->name, sizeof k->name, "%s", NN_VISD_PREFIX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->name + n, sizeof k->name - (size_t)n, fmt, ap);
    va_end(ap);
    k->ndim = ndim;
    memcpy(k->shape, shape, (size_t)ndim * sizeof *shape);
}

static void add_bn(int c, const char *mod) {
    static const char *f[4] = { "weight", "bias", "running_mean", "running_var" };
    int64_t s[1] = { c };
    for (int i = 0; i < 4; i++) add_key(1, s, "%s.%s", mod, f[i]);
}

static void build_keys(void) {
    if (n_keys) return;
    int64_t s[5] = { 64, 1, 7, 7, 7 };
    add_key(5, s, "res_model.conv1.weight");
    add_bn(64, "res_model.bn1");
    int cin = 64;
    for (int l = 0; l < 4; l++)
        for (int blk = 0; blk < 2; blk++) {
            int c = stage_c[l];
            char mod[96];
            int64_t s1[5] = { c, blk == 0 ? cin : c, 3, 3, 3 }, s2[5] = { c, c, 3, 3, 3 };
            add_key(5, s1, "res_model.layer%d.%d.conv1.weight", l + 1, blk);
            snprintf(mod, sizeof mod, "res_model.layer%d.%d.bn1", l + 1, blk);
            add_bn(c, mod);
            add_key(5, s2, "res_model.layer%d.%d.conv2.weight", l + 1, blk);
            snprintf(mod, sizeof mod, "res_model.layer%d.%d.bn2", l + 1, blk);
            add_bn(c, mod);
            if (blk == 1) cin = c;
        }
    for (int l = 0; l < 4; l++) {
        int64_t w[5] = { NN_VISD_EMBED, stage_c[l], 1, 1, 1 }, b[1] = { NN_VISD_EMBED };
        add_key(5, w, "proj%d.weight", l + 1);
        add_key(1, b, "proj%d.bias", l + 1);
    }
    CT_ASSERT(n_keys == N_KEYS);
}

int nn_visd_key_count(void) {
    build_keys();
    return n_keys;
}

const char *nn_visd_key(int i, int *ndim, int64_t shape[5]) {
    build_keys();
    if (i < 0 || i >= n_keys) return NULL;
    if (ndim) *ndim = keys[i].ndim;
    if (shape) memcpy(shape, keys[i].shape, sizeof keys[i].shape);
    return keys[i].name;
}

/* ---- loading ---- */

static const float *get(const struct rec *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const float *get(const struct rec *w, const char *fmt, ...) {
    char name[160];
    int n = snprintf(name, sizeof name, "%s", NN_VISD_PREFIX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + n, sizeof name - (size_t)n, fmt, ap);
    va_end(ap);
    struct tn_tensor *t = rec_tensor(w, name);
    CT_ASSERT(t && t->dtype == TN_F32);   /* checked by validate() */
    return t->data;
}

static int shape_eq(const struct tn_tensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int a = 0; a < ndim; a++)
        if (t->shape[a] != shape[a]) return 0;
    return 1;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int a = 0; a < ndim && o < n; a++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", a ? "," : "", (long long)shape[a]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int validate(const struct rec *w) {
    build_keys();
    for (int i = 0; i < n_keys; i++) {
        struct tn_tensor *t = rec_tensor(w, keys[i].name);
        if (!t) return ct_seterr("weights: missing key '%s' (not ViSD-Boost image encoder weights?)", keys[i].name);
        char want[96], got[96];
        shape_str(keys[i].ndim, keys[i].shape, want, sizeof want);
        if (t->dtype != TN_F32) return ct_seterr("weights: key '%s' is %s, expected f32", keys[i].name, tn_dtype_name(t->dtype));
        if (!shape_eq(t, keys[i].ndim, keys[i].shape)) {
            shape_str(t->ndim, t->shape, got, sizeof got);
            return ct_seterr("weights: key '%s' has shape %s, expected %s (weights of another architecture)",
                             keys[i].name, got, want);
        }
        int64_t n = tn_numel(t);
        const float *v = t->data;
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(v[k])) return ct_seterr("weights: key '%s' holds a non-finite value", keys[i].name);
    }
    for (int i = 0; i < w->n_tensors; i++) {
        const char *name = w->tensors[i]->name;
        if (strncmp(name, NN_VISD_PREFIX, strlen(NN_VISD_PREFIX)) || ends_with(name, ".num_batches_tracked")) continue;
        int found = 0;
        for (int k = 0; k < n_keys && !found; k++) found = !strcmp(keys[k].name, name);
        if (!found) return ct_seterr("weights: unexpected key '%s' (weights of another architecture)", name);
    }
    return 0;
}

/* copy a conv weight, fold the BN "mod" that follows it */
static void load_conv(struct conv *c, const struct rec *w, const char *conv_key, const char *bn_mod, int c_in,
                      int c_out, int k, int stride[3], int pad, int dil) {
    c->c_in = c_in;
    c->c_out = c_out;
    for (int a = 0; a < 3; a++) {
        c->p.k[a] = k;
        c->p.stride[a] = stride[a];
        c->p.pad[a] = pad;
        c->p.dil[a] = dil;
    }
    int64_t per = (int64_t)c_in * k * k * k;
    c->w = ct_xaligned((size_t)(c_out * per) * sizeof(float));
    c->b = ct_xcalloc((size_t)c_out, sizeof(float));
    memcpy(c->w, get(w, "%s", conv_key), (size_t)(c_out * per) * sizeof(float));
    nn_fold_bn(c->w, c->b, c_out, per, get(w, "%s.weight", bn_mod), get(w, "%s.bias", bn_mod),
               get(w, "%s.running_mean", bn_mod), get(w, "%s.running_var", bn_mod), 1e-5);
}

/* replace c's weights by their Winograd transform (64 / 27 times their size) */
static void use_wino(struct conv *c) {
    c->wino = nn_wino_new(c->w, c->c_out, c->c_in);
    CT_ASSERT(c->wino);
    free(c->w);
    c->w = NULL;
}

/* replace c's weights by their tap-major layout (same size) for nn_conv3d_boxes */
static void use_boxes(struct conv *c) {
    const int n_taps = c->p.k[0] * c->p.k[1] * c->p.k[2];
    const size_t n = (size_t)c->c_out * (size_t)c->c_in * (size_t)n_taps;
    float *wt = ct_xaligned(n * sizeof(float));
    nn_weights_tap_major(wt, c->w, c->c_out, c->c_in, n_taps);
    free(c->w);
    c->w = wt;
    c->boxes = 1;
}

struct nn_visd *nn_visd_new(const struct rec *w, const struct nn_visd_opts *opts) {
    if (validate(w) != 0) return NULL;
    struct nn_visd *m = ct_xcalloc(1, sizeof *m);
    int s122[3] = { 1, 2, 2 }, s1[3] = { 1, 1, 1 }, s2[3] = { 2, 2, 2 };
    load_conv(&m->stem, w, "res_model.conv1.weight", "res_model.bn1", 1, 64, 7, s122, 3, 1);
    const int no_wino = opts && opts->no_winograd, no_boxes = opts && opts->no_boxes;
    int cin = 64;
    for (int l = 0; l < 4; l++)
        for (int blk = 0; blk < 2; blk++) {
            char ck[96], bk[96];
            int c = stage_c[l], d = stage_dil[l];
            snprintf(ck, sizeof ck, "res_model.layer%d.%d.conv1.weight", l + 1, blk);
            snprintf(bk, sizeof bk, "res_model.layer%d.%d.bn1", l + 1, blk);
            struct conv *c1 = &m->blk[l][blk][0], *c2 = &m->blk[l][blk][1];
            load_conv(c1, w, ck, bk, blk == 0 ? cin : c, c, 3, (l > 0 && blk == 0) ? s2 : s1, d, d);
            snprintf(ck, sizeof ck, "res_model.layer%d.%d.conv2.weight", l + 1, blk);
            snprintf(bk, sizeof bk, "res_model.layer%d.%d.bn2", l + 1, blk);
            load_conv(c2, w, ck, bk, c, c, 3, s1, d, d);
            /* Winograd for the stride-1 convs of layers 1-3 (docs/encode.md: the direct path takes
             * 2.7x, 1.8x and 2.1x longer on these convs of a 112x256x352 window).  Not layer4:
             * with dilation 4 on its 7x8x11 grid the sub-grids are 2x2x3 voxels, the tiles mostly
             * padding: 1.4x faster per conv (0.07 s instead of 0.1) but its transformed weights
             * would take 192 MB.  opts->no_winograd keeps the direct path (A/B tests). */
            if (l < 3 && !no_wino) {
                if (c1->p.stride[0] == 1) use_wino(c1);
                use_wino(c2);
            }
            /* layer4: one GEMM per tap over the outputs whose input is not padding
             * (nn_conv3d_boxes: 31% of the dense work on the 7x8x11 grid, 59% for the strided
             * conv; measured 2.9x and 1.6x faster than the direct path; on layers 2-3 it is not
             * faster).  opts->no_boxes keeps the direct path (A/B tests). */
            if (l == 3 && !no_boxes) {
                use_boxes(c1);
                use_boxes(c2);
            }
            cin = c;
        }
    for (int l = 0; l < 4; l++) {
        size_t nw = (size_t)NN_VISD_EMBED * (size_t)stage_c[l];
        m->proj_w[l] = ct_xaligned(nw * sizeof(float));
        m->proj_b[l] = ct_xaligned(NN_VISD_EMBED * sizeof(float));
        memcpy(m->proj_w[l], get(w, "proj%d.weight", l + 1), nw * sizeof(float));
        memcpy(m->proj_b[l], get(w, "proj%d.bias", l + 1), NN_VISD_EMBED * sizeof(float));
    }
    return m;
}

static void free_conv(struct conv *c) {
    nn_wino_free(c->wino);
    free(c->w);
    free(c->b);
}

void nn_visd_free(struct nn_visd *m) {
    if (!m) return;
    free_conv(&m->stem);
    for (int l = 0; l < 4; l++) {
        for (int b = 0; b < 2; b++) {
            free_conv(&m->blk[l][b][0]);
            free_conv(&m->blk[l][b][1]);
        }
        free(m->proj_w[l]);
        free(m->proj_b[l]);
        free(m->stage[l]);
    }
    free(m);
    nn_scratch_release();
}

/* ---- running ---- */

static int64_t vol(const int64_t g[3]) { return g[0] * g[1] * g[2]; }

void nn_visd_grids(const int64_t in[3], int64_t g[4][3]) {
    for (int a = 0; a < 3; a++) {
        int64_t n = nn_conv_out_len(in[a], 7, a == 0 ? 1 : 2, 3, 1);
        n = nn_conv_out_len(n, 3, 2, 1, 1);
        g[0][a] = n;
        for (int l = 1; l < 4; l++) {
            n = nn_conv_out_len(n, 3, 2, stage_dil[l], stage_dil[l]);
            g[l][a] = n;
        }
    }
}

double nn_visd_trunk_macs(const int64_t shape[3]) {
    int64_t g[4][3], c1[3];
    for (int a = 0; a < 3; a++) c1[a] = nn_conv_out_len(shape[a], 7, a == 0 ? 1 : 2, 3, 1);
    nn_visd_grids(shape, g);
    double macs = (double)vol(c1) * 64 * 343;
    int cin = 64;
    for (int l = 0; l < 4; l++) {
        macs += (double)vol(g[l]) * stage_c[l] * 27 * (cin + 3 * stage_c[l]);
        cin = stage_c[l];
    }
    return macs;
}

static float *grow(float **p, size_t *cap, size_t n) {
    if (*cap < n) {
        free(*p);
        *p = ct_xaligned(n * sizeof(float));
        *cap = n;
    }
    return *p;
}

/* one conv of a block: Winograd when it has the weights for it */
static int conv_run(const struct conv *c, float *y, const float *x, const int64_t gin[3], const struct nn_residual *r,
                    int n_threads) {
    if (c->wino) return nn_conv3d_wino(y, x, gin, c->wino, c->b, c->p.dil[0], r, 1, n_threads);
    if (c->boxes) return nn_conv3d_boxes(y, x, c->c_in, gin, c->c_out, c->w, c->b, &c->p, r, 1, n_threads);
    return nn_conv3d(y, x, c->c_in, gin, c->c_out, c->w, c->b, &c->p, r, 1, n_threads);
}


/* One BasicBlock: out = relu(conv2(relu(conv1(x))) + shortcut(x)); t is scratch [c, grid_out].
 * out may be x itself when the block keeps the grid (identity shortcut, added in place). */
static int block(const struct conv cv[2], float *out, float *t, const float *x, const int64_t gin[3],
                 const int64_t gout[3], int n_threads) {
    if (conv_run(&cv[0], t, x, gin, NULL, n_threads) != 0) return -1;
    struct nn_residual r = { .x = x, .c = cv[0].c_in, .step = cv[0].p.stride[0] };
    memcpy(r.shape, gin, sizeof r.shape);
    return conv_run(&cv[1], out, t, gout, &r, n_threads);
}

int nn_visd_trunk(struct nn_visd *m, const float *image, const int64_t shape[3], int n_threads) {
    for (int a = 0; a < 3; a++)
        if (shape[a] < 1) return ct_seterr("encoder: empty image");
    nn_visd_grids(shape, m->grid);
    m->have_run = 0;
    for (int l = 0; l < 4; l++) grow(&m->stage[l], &m->stage_cap[l], (size_t)(stage_c[l] * vol(m->grid[l])));
    /* scratch for the first conv of each block: the largest block output (layer1's, in practice) */
    size_t n_tmp = 0;
    for (int l = 0; l < 4; l++)
        if ((size_t)(stage_c[l] * vol(m->grid[l])) > n_tmp) n_tmp = (size_t)(stage_c[l] * vol(m->grid[l]));
    float *tmp = ct_xaligned(n_tmp * sizeof(float));
    int rc = -1;
    const struct conv *st = &m->stem;
    double t0 = ct_now();
    if (nn_conv3d_relu_maxpool(m->stage[0], image, 1, shape, 64, st->w, st->b, &st->p, n_threads) != 0) goto out;
    ct_log(2, "trunk: conv1 + maxpool %.3f s", ct_now() - t0);
    t0 = ct_now();
    /* layer1: both blocks in place on stage[0]; layer l > 1: block 0 from stage[l-1] into
     * stage[l] (stride 2, shortcut A), block 1 in place */
    if (block(m->blk[0][0], m->stage[0], tmp, m->stage[0], m->grid[0], m->grid[0], n_threads) != 0) goto out;
    if (block(m->blk[0][1], m->stage[0], tmp, m->stage[0], m->grid[0], m->grid[0], n_threads) != 0) goto out;
    ct_log(2, "trunk: layer1 %.3f s", ct_now() - t0);
    for (int l = 1; l < 4; l++) {
        t0 = ct_now();
        if (block(m->blk[l][0], m->stage[l], tmp, m->stage[l - 1], m->grid[l - 1], m->grid[l], n_threads) != 0) goto out;
        if (block(m->blk[l][1], m->stage[l], tmp, m->stage[l], m->grid[l], m->grid[l], n_threads) != 0) goto out;
        ct_log(2, "trunk: layer%d %.3f s", l + 1, ct_now() - t0);
    }
    m->have_run = 1;
    rc = 0;
out:
    free(tmp);
    return rc;
}

const float *nn_visd_stage(const struct nn_visd *m, int s, int *c, int64_t grid[3]) {
    if (!m->have_run || s < 1 || s > 4) return NULL;
    if (c) *c = stage_c[s - 1];
    if (grid) memcpy(grid, m->grid[s - 1], 3 * sizeof *grid);
    return m->stage[s - 1];
}

int nn_visd_proj(const struct nn_visd *m, int s, const int32_t *tok, int64_t n, float *out, int n_threads) {
    if (!m->have_run) return ct_seterr("encoder: no trunk run yet");
    if (s < 1 || s > 4) return ct_seterr("encoder: no stage %d", s);
    int64_t len = vol(m->grid[s - 1]);
    return nn_pointwise_at(out, m->stage[s - 1], stage_c[s - 1], len, tok, tok ? n : len, NN_VISD_EMBED,
                           m->proj_w[s - 1], m->proj_b[s - 1], n_threads);
}
