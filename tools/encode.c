/*
 * encode - the ViSD-Boost image encoder (3-D ResNet-18, shortcut A, dilations 1/1/2/4, then
 * proj1..4 to 256 channels; method.md 2.1-2.2) on each organ window from mask-pool, emitting the
 * organ's tokens of each stage: emb{s}/X = proj_s(layer_s(window)) at the flagged tokens tok{s}/X.
 * The trunk runs densely on the window (once for consecutive windows with identical images);
 * the projections run only at flagged tokens.
 *
 * Reads: ct.window/1 (mask-pool) and ct.weights/1 (--weights).  Writes: ct.tokens/1.
 *
 *   mask-pool ... | encode -w visd-boost.ctv -j 2 | vq-recon ...
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "cli.h"
#include "ct.h"
#include "names.h"
#include "nn-visd.h"
#include "nn.h"
#include "stream.h"
#include "weights.h"

struct opts {
    const char *weights;             /* ct.weights/1 file (required) */
    int         maps;                /* also emit map{s} [L_s, 256] for every stage */
    int         any_shape;           /* debugging: any window size, maps only, no tokens */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: encode -w WEIGHTS [OPTION]... [FILE]...\n"
            "Run the ViSD-Boost image encoder (3-D ResNet-18 + proj1..4) on each ct.window/1 record\n"
            "(FILE '-' or none: stdin) and write one ct.tokens/1 record per window: for each organ X\n"
            "of meta window_organs and stage s = 1..4, emb{s}/X f32 [N_s, 256] = proj_s at the\n"
            "flagged tokens tok{s}/X (carried along), in ascending token order.\n"
            "\n"
            "  -w, --weights FILE   ct.weights/1 file from tools/ctvis-convert.py (required)\n"
            "      --maps           also write map{s} f32 [L_s, 256]: proj_s at every token of\n"
            "                       stage s (row-major over the stage grid), for debugging\n"
            "      --any-shape      accept windows of any size (not only multiples of 16x32x32);\n"
            "                       needs --maps, ignores the token flags (debugging the trunk)\n"
            CLI_COMMON_HELP
            "\n"
            "Windows must be f32 [D,H,W] with D,H,W multiples of (16,32,32), finite, with\n"
            "tok1..4/X for every organ X of window_organs.  Exit status: 0 ok, 1 bad input or\n"
            "weights (nothing is written for a failing record), 2 usage.\n"
            "Example: encode -w visd-boost.ctv -j 2 windows.ctv > tokens.ctv\n");
}

/* ---- the trunk cache: consecutive windows with the same image reuse the trunk run ---- */
struct cache {
    float  *image;                   /* copy of the last image run */
    int64_t shape[3];
    int     valid;
};

static int cache_hit(const struct cache *c, const struct tn_tensor *img) {
    if (!c->valid) return 0;
    for (int a = 0; a < 3; a++)
        if (c->shape[a] != img->shape[a]) return 0;
    return memcmp(c->image, img->data, tn_nbytes(img)) == 0;
}

static void cache_store(struct cache *c, const struct tn_tensor *img) {
    free(c->image);
    c->image = ct_xaligned(tn_nbytes(img));
    memcpy(c->image, img->data, tn_nbytes(img));
    memcpy(c->shape, img->shape, sizeof c->shape);
    c->valid = 1;
}

#define MAX_WINDOW_ORGANS 64

/* window_organs (pointers into the record's arena): the count, or -1 + lasterr */
static int organ_names(const struct rec *r, const char ***names) {
    if (!rec_meta_has(r, NM_M_WINDOW_ORGANS)) return ct_seterr("missing meta 'window_organs' (not a mask-pool window?)");
    int n = rec_meta_strv(r, NM_M_WINDOW_ORGANS, names);
    if (n > MAX_WINDOW_ORGANS) return ct_seterr("more than %d window organs", MAX_WINDOW_ORGANS);
    return n;
}

/* tok{s}/X: 1-D i32, strictly ascending, in [0, len) */
static struct tn_tensor *token_tensor(const struct rec *r, int s, const char *organ, int64_t len) {
    char name[TN_NAME_MAX];
    snprintf(name, sizeof name, NM_T_TOK, s, organ);
    struct tn_tensor *t = rec_tensor(r, name);
    if (!t) {
        ct_seterr("missing token flags '%s' (encode needs mask-pool's tok1..4 for each window organ)", name);
        return NULL;
    }
    if (t->dtype != TN_I32 || t->ndim != 1) {
        ct_seterr("'%s' must be a 1-D i32 tensor", name);
        return NULL;
    }
    const int32_t *v = t->data;
    for (int64_t i = 0; i < t->shape[0]; i++) {
        if (v[i] < 0 || v[i] >= len) {
            ct_seterr("'%s': token %d outside the stage grid [0, %lld)", name, v[i], (long long)len);
            return NULL;
        }
        if (i > 0 && v[i] <= v[i - 1]) {
            ct_seterr("'%s': token indices are not strictly ascending", name);
            return NULL;
        }
    }
    return t;
}

struct ctx {
    const struct opts  *o;
    struct nn_visd     *model;
    struct cache        cache;
    const char         *weights_id, *weights_sha;
    int                 weights_untrained;
    long                n_written;       /* records written */
    struct nn_visd_opts model_opts;
    int                 threads;
    long                n_runs, n_reused;
    double              t_trunk, macs;
};

static int process(struct ctx *c, struct rec *r, struct rec_writer *out, int argc, char **argv) {
    if (rec_expect(r, NM_WINDOW_NAME, NM_WINDOW_MAJOR) != 0) return -1;
    struct tn_tensor *img = rec_tensor_req(r, NM_T_IMAGE);
    if (!img) return -1;
    char sh[96];
    if (img->dtype != TN_F32 || img->ndim != 3)
        return ct_seterr("'image' must be a 3-D f32 tensor, got %s %s", tn_dtype_name(img->dtype),
                         tn_shape_str(img, sh, sizeof sh));
    static const int mult[3] = { 16, 32, 32 };
    for (int a = 0; a < 3; a++)
        if (img->shape[a] < 1 || (!c->o->any_shape && img->shape[a] % mult[a]))
            return ct_seterr("window shape %s is not a multiple of (16,32,32) (pad it as mask-pool does)",
                             tn_shape_str(img, sh, sizeof sh));
    {
        const float *v = img->data;
        int64_t n = tn_numel(img), bad = 0;
        for (int64_t i = 0; i < n; i++) bad += !isfinite(v[i]);
        if (bad) return ct_seterr("'image' has %lld non-finite voxels (NaN or Inf)", (long long)bad);
    }
    int64_t grid[4][3];
    nn_visd_grids(img->shape, grid);
    const char **organs = NULL;
    int n_organs = 0;
    struct tn_tensor *tok[4][MAX_WINDOW_ORGANS];
    if (!c->o->any_shape) {
        if ((n_organs = organ_names(r, &organs)) < 0) return -1;
        for (int i = 0; i < n_organs; i++)
            for (int s = 0; s < 4; s++)
                if (!(tok[s][i] = token_tensor(r, s + 1, organs[i], grid[s][0] * grid[s][1] * grid[s][2]))) return -1;
    }
    /* trunk */
    if (cache_hit(&c->cache, img)) {
        c->n_reused++;
        ct_log(1, "record %ld (id %s): same window as the previous record, trunk reused", r->index, r->id);
    } else {
        c->cache.valid = 0;
        double t0 = ct_now();
        if (nn_visd_trunk(c->model, img->data, img->shape, c->threads) != 0) return -1;
        double dt = ct_now() - t0, macs = nn_visd_trunk_macs(img->shape);
        c->t_trunk += dt;
        c->macs += macs;
        c->n_runs++;
        ct_log(1, "record %ld (id %s): trunk on %s in %.2f s (%.1f GFLOP/s effective)", r->index, r->id,
               tn_shape_str(img, sh, sizeof sh), dt, 2 * macs / dt * 1e-9);
        cache_store(&c->cache, img);
    }
    /* output */
    struct rec o;
    rec_init(&o, r->arena, NM_TOKENS, r->id);
    rec_meta_copy(&o, r);
    rec_meta_set_str(&o, NM_M_WEIGHTS_ID, c->weights_id);
    if (c->weights_sha) rec_meta_set_str(&o, NM_M_WEIGHTS_SHA256, c->weights_sha);
    struct rec_mp mp = { 0 };
    rec_mp_bool(&mp, c->weights_untrained);
    rec_meta_set_mp(&o, NM_M_WEIGHTS_UNTRAINED, &mp);
    rec_mp_array(&mp, 4);
    for (int s = 0; s < 4; s++) {
        rec_mp_array(&mp, 3);
        for (int a = 0; a < 3; a++) rec_mp_i64(&mp, grid[s][a]);
    }
    rec_meta_set_mp(&o, NM_M_STAGE_GRIDS, &mp);
    rec_meta_set_i64(&o, "embed_dim", NN_VISD_EMBED);
    for (int i = 0; i < n_organs; i++)
        for (int s = 0; s < 4; s++) {
            char name[TN_NAME_MAX];
            int64_t n = tok[s][i]->shape[0];
            int64_t shape[2] = { n, NN_VISD_EMBED };
            snprintf(name, sizeof name, NM_T_EMB, s + 1, organs[i]);
            struct tn_tensor *e = tn_new(r->arena, TN_F32, 2, shape, name);
            if (nn_visd_proj(c->model, s + 1, tok[s][i]->data, n, e->data, c->threads) != 0) return -1;
            rec_add_tensor(&o, e);
            rec_add_tensor(&o, tok[s][i]);
        }
    if (c->o->maps)
        for (int s = 0; s < 4; s++) {
            char name[TN_NAME_MAX];
            int64_t len = grid[s][0] * grid[s][1] * grid[s][2];
            int64_t shape[2] = { len, NN_VISD_EMBED };
            snprintf(name, sizeof name, NM_T_MAP, s + 1);
            struct tn_tensor *m = tn_new(r->arena, TN_F32, 2, shape, name);
            if (nn_visd_proj(c->model, s + 1, NULL, len, m->data, c->threads) != 0) return -1;
            rec_add_tensor(&o, m);
        }
    rec_history_append(&o, argc, argv);
    c->n_written++;
    return rec_write(out, &o);
}

/* The conv paths and their tuning, for A/B tests and measurements only (docs/encode.md): the
 * environment variables CT_NN_NO_WINOGRAD, CT_NN_NO_BOXES, CT_NN_NO_TAPS (1 = on),
 * CT_NN_WINO_TILES and CT_NN_COL_BYTES (numbers); unset or unparsable = the default. */
static int env_long(const char *name, long min) {
    const char *e = getenv(name);
    long n;
    return e && ct_parse_long(e, &n) == 0 && n >= min ? (int)(n > 1L << 30 ? 1L << 30 : n) : 0;
}

static void env_tuning(struct ctx *c) {
    c->model_opts.no_winograd = env_long("CT_NN_NO_WINOGRAD", 1) != 0;
    c->model_opts.no_boxes = env_long("CT_NN_NO_BOXES", 1) != 0;
    struct nn_tuning t = { .col_bytes = (size_t)env_long("CT_NN_COL_BYTES", 4096),
                           .no_taps = env_long("CT_NN_NO_TAPS", 1) != 0,
                           .wino_tiles = env_long("CT_NN_WINO_TILES", 1) };
    nn_tuning_set(&t);
}

/* Read the one ct.weights/1 record of path and build the model. */
static void load_weights(struct ctx *c, const char *path, struct tn_arena *a) {
    struct weights w;
    if (weights_read(path, NULL, NULL, a, &w) != 0) ct_die("%s", ct_lasterr());
    c->model = nn_visd_new(&w.rec, &c->model_opts);
    if (!c->model) ct_die("%s: %s", path, ct_lasterr());
    c->weights_id = ct_xstrdup(w.id);
    c->weights_sha = w.sha256 ? ct_xstrdup(w.sha256) : NULL;
    c->weights_untrained = w.untrained;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    ct_blas_init(argv);   /* may re-exec once with stronger BLAS kernels (lib/blas.h) */
    struct opts o = { 0 };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_MAPS = 256, OPT_ANY };
    static const struct option longopts[] = {
        { "weights", required_argument, 0, 'w' }, { "maps", no_argument, 0, OPT_MAPS },
        { "any-shape", no_argument, 0, OPT_ANY }, CLI_COMMON_LONGOPTS,
        { 0, 0, 0, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "w:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'w': o.weights = optarg; break;
        case OPT_MAPS: o.maps = 1; break;
        case OPT_ANY: o.any_shape = 1; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (!o.weights) ct_usage_die("no weights (-w FILE, a ct.weights/1 file from tools/ctvis-convert.py)");
    if (o.any_shape && !o.maps) ct_usage_die("--any-shape needs --maps (tokens need a (16,32,32)-multiple window)");
    struct ctx c = { .o = &o, .threads = cc.threads };
    ct_log(1, "BLAS: %s", ct_blas_describe());
    ct_log(1, "Winograd data kernels: %s", nn_wino_isa());
    env_tuning(&c);
    struct tn_arena *a = tn_arena_new(0);
    double t0 = ct_now();
    load_weights(&c, o.weights, a);
    tn_arena_reset(a);
    ct_log(1, "weights %s loaded in %.2f s", o.weights, ct_now() - t0);

    struct rec_reader *in = rec_reader_open_many(argc - optind, argv + optind);   /* before any output */
    if (!in) ct_die("%s", ct_lasterr());
    struct rec_writer *out = rec_writer_open(cc.output, &cc.wopts);
    if (!out) ct_die("%s", ct_lasterr());
    struct rec r;
    int rc;
    while ((rc = rec_read(in, a, &r)) > 0) {
        if (process(&c, &r, out, argc, argv) != 0) {
            rec_writer_abort(out);
            ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
        }
        tn_arena_reset(a);
    }
    rec_reader_close(in);
    if (rc < 0) {
        rec_writer_abort(out);
        ct_die("%s", ct_lasterr());
    }
    if (rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
    if (c.weights_untrained && c.n_written)
        ct_warn("%s: untrained (random) weights: the %ld records written are for testing only", o.weights, c.n_written);
    if (c.n_runs)
        ct_log(1, "%ld trunk runs (%ld reused) in %.2f s, %.1f GFLOP/s effective, peak RSS %ld MB", c.n_runs,
               c.n_reused, c.t_trunk, 2 * c.macs / c.t_trunk * 1e-9, ct_peak_rss_kb() / 1024);
    nn_visd_free(c.model);
    free(c.cache.image);
    free((void *)c.weights_id);
    free((void *)c.weights_sha);
    tn_arena_free(a);
    return CT_EXIT_OK;
}
