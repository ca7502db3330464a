/*
 * vq-recon - ViSD-Boost's VQ-VAE normality model and organ head (method.md 2.4, 2.5, 4.1-4.2) on
 * encode's tokens: per organ of each window, the stage-4 tokens reconstructed through the nearest
 * codes, the hybrid [original | normalised] tokens through res_projs1/2 and the query-token
 * attention to the 256-d organ feature, and the anomaly evidence (per-token reconstruction error,
 * chosen code, an error map on the window's stage-4 grid that overlays the CT).
 *
 * Reads: ct.tokens/1 (encode) and ct.weights/1 (--weights, only the VQ-VAE and head tensors are
 * kept in memory).  Writes: ct.organ/1, one record per organ result.
 *
 *   ... | encode -w visd.ctv | vq-recon -w visd.ctv -j 2 > organs.ctv
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "cli.h"
#include "ct.h"
#include "organs.h"
#include "stream.h"
#include "visd-head.h"
#include "visd-vq.h"
#include "weights.h"

/* the model's organ order: query_tokens[o], res_projs*[o], id_projs(o), code block o */
/* the model's organ order is CT-RATE's (lib/organs.h) */
#define MAX_MAP_CELLS (1 << 20)   /* stage-4 cells of one window (4 MB of anomaly map) */

_Static_assert(VISD_HEAD_ORGANS == ORG_CT_RATE_N, "one query token per CT-RATE organ");
/* stage-4 cell in window voxels (D, H, W): method.md 2.2 */
static const int cell4[3] = { 16, 32, 32 };

struct opts {
    const char *weights;
    int         recon;                /* also write recon4 */
    int         per_organ;            /* --per-organ-codebook */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: vq-recon -w WEIGHTS [OPTION]... [FILE]...\n"
            "Run ViSD-Boost's VQ-VAE normality model and organ head on encode's ct.tokens/1 records\n"
            "(FILE '-' or none: stdin) and write one ct.organ/1 record per organ of each window\n"
            "(window_organs: the window's organ, or in multi-organ mode every organ that passed the\n"
            "boundary and whole-organ rules): the L2-normalised 256-d organ feature, per stage-4 token\n"
            "the reconstruction error |token - recon|^2 (err4) and chosen code (code4), the mean error,\n"
            "and the error map 'anomaly' on the window's stage-4 grid whose affine overlays the CT\n"
            "(ct-export -t anomaly).\n"
            "\n"
            "  -w, --weights FILE     ct.weights/1 file with the VQ-VAE and head keys (tools/ctvis-convert.py\n"
            "                         --checkpoint checkpoint.pth --vqvae checkpoint_vqvae.pth); required\n"
            "      --recon            also write recon4 f32 [N4, 256], the reconstructed stage-4 tokens\n"
            "      --per-organ-codebook  search only the organ's 100-code block (the paper) instead of all\n"
            "                         400 codes (the released code, default)\n"
            CLI_COMMON_HELP
            "\n"
            "An organ without tokens at some stage gets an empty result (feature of shape [0], meta\n"
            "empty = true, empty_reason), said on stderr.  Exit status: 0 ok, 1 bad input or weights\n"
            "(nothing is written), 2 usage.\n"
            "Example: encode -w visd.ctv windows.ctv | vq-recon -w visd.ctv -j 2 -o organs.ctv\n");
}

struct ctx {
    const struct opts *o;
    struct visd_vq    *vq;
    struct visd_head  *head;
    const char        *weights_id;
    int                weights_untrained;
    int                threads;
    long               n_written, n_empty;
    double             t_vq, t_head;
    int64_t            n_keys_max;
    int                warned_weights;
};

static int model_index(const char *organ) {
    for (int i = 0; i < VISD_HEAD_ORGANS; i++)
        if (!strcmp(organ, org_ct_rate[i])) return i;
    return -1;
}

/* emb{s}/X f32 [N, 256] and tok{s}/X i32 [N] of one organ and stage, checked */
static int stage_tensors(const struct rec *r, const char *organ, int s, int64_t grid_len, struct tn_tensor **emb,
                         struct tn_tensor **tok) {
    char en[TN_NAME_MAX], tn[TN_NAME_MAX], sh[96];
    snprintf(en, sizeof en, "emb%d/%s", s + 1, organ);
    snprintf(tn, sizeof tn, "tok%d/%s", s + 1, organ);
    *emb = rec_tensor(r, en);
    *tok = rec_tensor(r, tn);
    if (!*emb || !*tok)
        return ct_seterr("no '%s' for window organ '%s' (a ct.tokens/1 record from encode has emb1..4/X and tok1..4/X)",
                         *emb ? tn : en, organ);
    if ((*emb)->dtype != TN_F32 || (*emb)->ndim != 2 || (*emb)->shape[1] != VISD_HEAD_DIM)
        return ct_seterr("'%s' must be f32 [N, %d], got %s %s", en, VISD_HEAD_DIM, tn_dtype_name((*emb)->dtype),
                         tn_shape_str(*emb, sh, sizeof sh));
    if ((*tok)->dtype != TN_I32 || (*tok)->ndim != 1 || (*tok)->shape[0] != (*emb)->shape[0])
        return ct_seterr("'%s' must be i32 [%lld] like '%s', got %s %s", tn, (long long)(*emb)->shape[0], en,
                         tn_dtype_name((*tok)->dtype), tn_shape_str(*tok, sh, sizeof sh));
    const int32_t *t = (*tok)->data;
    for (int64_t i = 0; i < (*tok)->shape[0]; i++)
        if (t[i] < 0 || t[i] >= grid_len || (i && t[i] <= t[i - 1]))
            return ct_seterr("'%s': token %d outside the stage grid [0, %lld) or not ascending", tn, t[i],
                             (long long)grid_len);
    const float *v = (*emb)->data;
    int64_t bad = 0, n = tn_numel(*emb);
    for (int64_t i = 0; i < n; i++) bad += !isfinite(v[i]);
    if (bad) return ct_seterr("'%s' has %lld non-finite values (NaN or Inf)", en, (long long)bad);
    return 0;
}

/* The anomaly map's affine: stage-4 index (i, j, k) -> world at the centre of its cell of
 * window voxels, i.e. window voxel (16 i + 7.5, 32 j + 15.5, 32 k + 15.5).  From the window's
 * affine, else the case affine moved to window_offset, else spacing_mm (or 1 mm).  Returns 1 when
 * the geometry came from an affine. */
static int anomaly_affine(const struct rec *r, const int64_t off[3], double A[4][4]) {
    double W[4][4] = { { 0 } };
    int have = rec_meta_mat4(r, "affine", W);
    if (have < 0) return -1;
    if (!have) {
        double C[4][4];
        int hc = rec_meta_mat4(r, "case_affine", C);
        if (hc < 0) return -1;
        if (hc) {
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 3; j++) W[i][j] = C[i][j];
                W[i][3] = C[i][3] + C[i][0] * off[0] + C[i][1] * off[1] + C[i][2] * off[2];
            }
            have = 1;
        } else {
            double sp[3] = { 1, 1, 1 };
            if (rec_meta_f64(r, "spacing_mm", sp, 3) != 3) sp[0] = sp[1] = sp[2] = 1;
            for (int a = 0; a < 3; a++) W[a][a] = sp[a], W[a][3] = sp[a] * off[a];
            W[3][3] = 1;
        }
    }
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 3; j++) A[i][j] = W[i][j] * cell4[j];
        A[i][3] = W[i][3] + W[i][0] * (cell4[0] - 1) / 2.0 + W[i][1] * (cell4[1] - 1) / 2.0 +
                  W[i][2] * (cell4[2] - 1) / 2.0;
    }
    return have;
}

/* one organ of one window; appends its record to out */
static int organ_result(struct ctx *c, const struct rec *r, const char *organ, const int64_t grid[4][3],
                        struct rec_writer *out, int argc, char **argv) {
    int mo = model_index(organ);                        /* organ and tensors checked by process() */
    struct tn_tensor *emb[4], *tok[4];
    int64_t n[4];
    for (int s = 0; s < 4; s++) {
        if (stage_tensors(r, organ, s, grid[s][0] * grid[s][1] * grid[s][2], &emb[s], &tok[s]) != 0) return -1;
        n[s] = emb[s]->shape[0];
    }
    struct tn_arena *a = r->arena;
    struct rec o;
    rec_init(&o, a, "ct.organ/1", r->id);
    rec_meta_copy(&o, r);
    const char *wo = rec_meta_str(r, "organ");
    rec_meta_set_str(&o, "window_organ", wo ? wo : organ);
    rec_meta_set_str(&o, "organ", organ);
    rec_meta_set_i64(&o, "organ_index", mo);
    const char *twid = rec_meta_str(r, "weights_id");
    if (twid && strcmp(twid, c->weights_id) && !c->warned_weights) {
        ct_warn("the tokens were encoded with weights '%s', the head and VQ-VAE are '%s'", twid, c->weights_id);
        c->warned_weights = 1;
    }
    if (twid) rec_meta_set_str(&o, "encoder_weights_id", twid);
    rec_meta_set_str(&o, "weights_id", c->weights_id);
    struct rec_mp mp = { 0 };
    rec_mp_bool(&mp, c->weights_untrained);
    rec_meta_set_mp(&o, "weights_untrained", &mp);
    rec_meta_set_str(&o, "codebook", c->o->per_organ ? "per-organ" : "global");

    /* the anomaly map and its affine */
    int64_t off[3] = { 0, 0, 0 };
    if (rec_meta_i64(r, "window_offset", off, 3) != 3) off[0] = off[1] = off[2] = 0;
    double A[4][4];
    if (anomaly_affine(r, off, A) < 0) return -1;
    rec_meta_set_mat4(&o, "affine", A);
    struct tn_tensor *map = tn_zeros(a, TN_F32, 3, grid[3], "anomaly");
    rec_add_tensor(&o, map);

    const char *empty = NULL;
    static const char *reasons[4] = { "no stage-1 tokens", "no stage-2 tokens", "no stage-3 tokens",
                                      "no stage-4 tokens" };
    for (int s = 3; s >= 0; s--)
        if (n[s] == 0) empty = reasons[s];
    int64_t n4 = empty ? 0 : n[3];
    struct tn_tensor *err4 = tn_new(a, TN_F32, 1, &n4, "err4"), *code4 = tn_new(a, TN_I32, 1, &n4, "code4");
    int64_t rshape[2] = { n4, VISD_HEAD_DIM }, fdim = VISD_HEAD_DIM;
    struct tn_tensor *recon = tn_new(a, TN_F32, 2, rshape, "recon4");
    struct tn_tensor *feat = NULL;
    double mean_err = 0;
    if (!empty) {
        double t0 = ct_now();
        int rc = visd_vq_recon(c->vq, emb[3]->data, n4, mo, c->o->per_organ, recon->data, code4->data, c->threads);
        if (rc < 0) return ct_prefixerr("organ '%s'", organ);
        if (rc == 1) {
            empty = "constant stage-4 tokens (max - min = 0: the VQ-VAE normalisation is undefined)";
            n4 = 0;
            err4->shape[0] = code4->shape[0] = recon->shape[0] = 0;
        }
        c->t_vq += ct_now() - t0;
    }
    if (!empty) {
        double t0 = ct_now();
        feat = tn_new(a, TN_F32, 1, &fdim, "feature");
        const float *keys[4] = { emb[0]->data, emb[1]->data, emb[2]->data, emb[3]->data };
        if (visd_head_feature(c->head, mo, keys, n, recon->data, feat->data, c->threads) != 0)
            return ct_prefixerr("organ '%s'", organ);
        c->t_head += ct_now() - t0;
        int64_t nk = n[0] + n[1] + n[2] + n[3];
        if (nk > c->n_keys_max) c->n_keys_max = nk;
        const float *x = emb[3]->data, *y = recon->data;
        float *e = err4->data, *m = map->data;
        const int32_t *t = tok[3]->data;
        for (int64_t i = 0; i < n4; i++) {
            double s = 0;
            for (int k = 0; k < VISD_HEAD_DIM; k++) {
                double d = (double)x[i * VISD_HEAD_DIM + k] - y[i * VISD_HEAD_DIM + k];
                s += d * d;
            }
            e[i] = (float)s;
            m[t[i]] = (float)s;
            mean_err += s / (double)n4;
        }
    } else {
        int64_t zero = 0;
        feat = tn_new(a, TN_F32, 1, &zero, "feature");
        ct_warn("record %ld (id %s): organ '%s': empty result (%s)", r->index, r->id, organ, empty);
        c->n_empty++;
    }
    rec_add_tensor(&o, feat);
    rec_add_tensor(&o, err4);
    rec_add_tensor(&o, code4);
    struct tn_tensor *tok4 = tn_new(a, TN_I32, 1, &n4, "tok4");
    if (n4) memcpy(tok4->data, tok[3]->data, (size_t)n4 * sizeof(int32_t));
    rec_add_tensor(&o, tok4);
    if (c->o->recon) rec_add_tensor(&o, recon);
    rec_meta_set_f64(&o, "mean_err", mean_err);
    rec_mp_bool(&mp, empty != NULL);
    rec_meta_set_mp(&o, "empty", &mp);
    if (empty) rec_meta_set_str(&o, "empty_reason", empty);
    rec_history_append(&o, argc, argv);
    c->n_written++;
    ct_log(1, "record %ld (id %s): organ %s: %lld+%lld+%lld+%lld tokens, mean err %.4g", r->index, r->id, organ,
           (long long)n[0], (long long)n[1], (long long)n[2], (long long)n[3], mean_err);
    return rec_write(out, &o);
}

static int process(struct ctx *c, struct rec *r, struct rec_writer *out, int argc, char **argv) {
    if (rec_expect(r, "ct.tokens", 1) != 0) return -1;
    const struct rec_val *wv = rec_meta_get(r, "window_organs");
    if (!wv || wv->type != RV_ARRAY) return ct_seterr("meta 'window_organs' missing or not an array (not from encode?)");
    int64_t g[12];
    if (rec_meta_i64(r, "stage_grids", g, 12) != 12) {
        /* an array of 4 arrays: read item by item */
        const struct rec_val *sg = rec_meta_get(r, "stage_grids");
        if (!sg || sg->type != RV_ARRAY || sg->v.a.n != 4) return ct_seterr("meta 'stage_grids' missing or malformed");
        for (int s = 0; s < 4; s++)
            if (rec_val_i64(&sg->v.a.items[s], g + 3 * s, 3) != 3) return ct_seterr("meta 'stage_grids' malformed");
    }
    int64_t grid[4][3];
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 3; k++) {
            grid[s][k] = g[3 * s + k];
            if (grid[s][k] < 1 || grid[s][k] > 1 << 20) return ct_seterr("meta 'stage_grids' holds %lld", (long long)grid[s][k]);
        }
    /* the anomaly map is allocated on the stage-4 grid: bound it before allocating.  A window the
     * stream can hold (an f32 image of at most 4 GiB, 2^30 voxels) has at most 2^30 / (16*32*32)
     * = 65,536 stage-4 cells; MAX_MAP_CELLS leaves room for the ceil of each axis. */
    if (grid[3][0] * grid[3][1] * grid[3][2] > MAX_MAP_CELLS)
        return ct_seterr("meta 'stage_grids': stage-4 grid %lldx%lldx%lld is larger than any window a stream can hold",
                         (long long)grid[3][0], (long long)grid[3][1], (long long)grid[3][2]);
    /* every organ's tensors checked before the first result is written: nothing partial of a window */
    for (uint32_t i = 0; i < wv->v.a.n; i++) {
        if (wv->v.a.items[i].type != RV_STR) return ct_seterr("meta 'window_organs' item %u is not a string", i);
        const char *organ = wv->v.a.items[i].v.s.p;
        if (model_index(organ) < 0)
            return ct_seterr("organ '%s' is not one of the model's organs (lung heart esophagus aorta)", organ);
        for (int s = 0; s < 4; s++) {
            struct tn_tensor *e, *t;
            if (stage_tensors(r, organ, s, grid[s][0] * grid[s][1] * grid[s][2], &e, &t) != 0)
                return ct_prefixerr("organ '%s'", organ);
        }
    }
    for (uint32_t i = 0; i < wv->v.a.n; i++)
        if (organ_result(c, r, wv->v.a.items[i].v.s.p, grid, out, argc, argv) != 0) return -1;
    return 0;
}

static int keep_tensor(const char *name, void *ctx) {
    (void)ctx;
    return visd_vq_wants(name) || visd_head_wants(name);
}

/* Read the weights record (only the tensors the models need) into arena a, which must stay
 * alive as long as the models (they borrow its tensors). */
static void load_weights(struct ctx *c, const char *path, struct tn_arena *a) {
    struct weights w;
    if (weights_read(path, keep_tensor, NULL, a, &w) != 0) ct_die("%s", ct_lasterr());
    if (!(c->vq = visd_vq_new(&w.rec)) || !(c->head = visd_head_new(&w.rec))) ct_die("%s: %s", path, ct_lasterr());
    c->weights_id = ct_xstrdup(w.id);
    c->weights_untrained = w.untrained;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    ct_blas_init(argv);   /* may re-exec once with stronger BLAS kernels (lib/blas.h) */
    struct opts o = { 0 };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_RECON = 256, OPT_PER_ORGAN };
    static const struct option longopts[] = {
        { "weights", required_argument, 0, 'w' }, { "recon", no_argument, 0, OPT_RECON },
        { "per-organ-codebook", no_argument, 0, OPT_PER_ORGAN }, CLI_COMMON_LONGOPTS,
        { 0, 0, 0, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "w:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'w': o.weights = optarg; break;
        case OPT_RECON: o.recon = 1; break;
        case OPT_PER_ORGAN: o.per_organ = 1; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (!o.weights) ct_usage_die("no weights (-w FILE, a ct.weights/1 file with the VQ-VAE, from tools/ctvis-convert.py)");
    struct ctx c = { .o = &o, .threads = cc.threads };
    struct tn_arena *wa = tn_arena_new(0), *a = tn_arena_new(0);
    double t0 = ct_now();
    load_weights(&c, o.weights, wa);
    ct_log(1, "weights %s loaded in %.2f s (VQ-VAE and head tensors only)", o.weights, ct_now() - t0);
    ct_log(1, "BLAS: %s", ct_blas_describe());

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
    ct_log(1, "%ld organ results (%ld empty): VQ-VAE %.3f s, head %.3f s (at most %lld keys), total %.2f s, peak RSS %ld MB",
           c.n_written, c.n_empty, c.t_vq, c.t_head, (long long)c.n_keys_max, ct_now() - t0, ct_peak_rss_kb() / 1024);
    visd_vq_free(c.vq);
    visd_head_free(c.head);
    free((void *)c.weights_id);
    tn_arena_free(a);
    tn_arena_free(wa);
    return CT_EXIT_OK;
}
