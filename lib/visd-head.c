/*
 * visd-head.c - the organ head of visd-head.h: weights folded at load, then two passes over the
 * tokens (scores, then softmax-weighted sums), threaded over fixed blocks of tokens and reduced in
 * block order, so the result does not depend on the thread count.
 */
#include "visd-head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "transformer.h"
#include "visd-vq.h"

#define D      VISD_HEAD_DIM          /* 256 */
#define HEADS  4
#define DH     64
#define BLOCK  2048                   /* tokens per work item */

struct organ_fold {
    double m[D][2 * D];               /* W2 W1 */
    double c[D];                      /* W2 b1 + b2 */
    double g[2 * D][HEADS];           /* per input channel, the 4 heads' score weights */
};

struct visd_head {
    struct organ_fold o[VISD_HEAD_ORGANS];
    double wv[D][D], bv[D];           /* V rows of in_proj */
    double wo[D][D], bo[D];           /* out_proj */
    double wp[VISD_HEAD_ORGANS][D][D], bp[VISD_HEAD_ORGANS][D];   /* vision_projs */
};

int visd_head_wants(const char *name) {
    static const char *pre[] = { "query_tokens", "attention.", "res_projs1.", "res_projs2.", "vision_projs." };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strncmp(name, pre[i], strlen(pre[i]))) return 1;
    return 0;
}

struct visd_head *visd_head_new(const struct rec *w) {
    const float *qt, *wi, *bi, *wo, *bo, *w1[4], *b1[4], *w2[4], *b2[4], *wp[4], *bp[4];
    if (!(qt = visd_weight(w, VISD_HEAD_ORGANS, D, "query_tokens")) ||
        !(wi = visd_weight(w, 3 * D, D, "attention.in_proj_weight")) ||
        !(bi = visd_weight(w, 3 * D, -1, "attention.in_proj_bias")) ||
        !(wo = visd_weight(w, D, D, "attention.out_proj.weight")) ||
        !(bo = visd_weight(w, D, -1, "attention.out_proj.bias")))
        return NULL;
    for (int o = 0; o < VISD_HEAD_ORGANS; o++)
        if (!(w1[o] = visd_weight(w, D, 2 * D, "res_projs1.%d.weight", o)) ||
            !(b1[o] = visd_weight(w, D, -1, "res_projs1.%d.bias", o)) ||
            !(w2[o] = visd_weight(w, D, D, "res_projs2.%d.weight", o)) ||
            !(b2[o] = visd_weight(w, D, -1, "res_projs2.%d.bias", o)) ||
            !(wp[o] = visd_weight(w, D, D, "vision_projs.%d.weight", o)) ||
            !(bp[o] = visd_weight(w, D, -1, "vision_projs.%d.bias", o)))
            return NULL;
    struct visd_head *m = ct_xcalloc(1, sizeof *m);
    for (int i = 0; i < D; i++) {
        m->bv[i] = bi[2 * D + i];
        m->bo[i] = bo[i];
        for (int j = 0; j < D; j++) {
            m->wv[i][j] = wi[(size_t)(2 * D + i) * D + j];
            m->wo[i][j] = wo[(size_t)i * D + j];
        }
    }
    double *u = ct_xcalloc((size_t)HEADS * D, sizeof *u);
    for (int o = 0; o < VISD_HEAD_ORGANS; o++) {
        struct organ_fold *f = &m->o[o];
        for (int i = 0; i < D; i++) {
            m->bp[o][i] = bp[o][i];
            for (int j = 0; j < D; j++) m->wp[o][i][j] = wp[o][(size_t)i * D + j];
        }
        /* M = W2 W1, c = W2 b1 + b2 */
        for (int i = 0; i < D; i++) {
            double cs = b2[o][i];
            for (int k = 0; k < 2 * D; k++) f->m[i][k] = 0;
            for (int j = 0; j < D; j++) {
                double a = w2[o][(size_t)i * D + j];
                cs += a * b1[o][j];
                const float *r = w1[o] + (size_t)j * 2 * D;
                for (int k = 0; k < 2 * D; k++) f->m[i][k] += a * r[k];
            }
            f->c[i] = cs;
        }
        /* q = Wq qt[o] + bq; u_h = Wk_h^T q_h / 8; g_h = M^T u_h */
        double q[D];
        for (int i = 0; i < D; i++) {
            double s = bi[i];
            for (int j = 0; j < D; j++) s += (double)wi[(size_t)i * D + j] * qt[(size_t)o * D + j];
            q[i] = s;
        }
        memset(u, 0, (size_t)HEADS * D * sizeof *u);
        for (int i = 0; i < D; i++) {
            int h = i / DH;
            const float *r = wi + (size_t)(D + i) * D;
            for (int j = 0; j < D; j++) u[h * D + j] += q[i] * r[j] * 0.125;
        }
        for (int k = 0; k < 2 * D; k++)
            for (int h = 0; h < HEADS; h++) {
                double s = 0;
                for (int j = 0; j < D; j++) s += u[h * D + j] * f->m[j][k];
                f->g[k][h] = s;
            }
    }
    free(u);
    return m;
}

void visd_head_free(struct visd_head *m) { free(m); }

/* ---- the two passes ---- */

struct pass {
    const struct organ_fold *f;
    double       gs[D][HEADS];        /* g over both halves: the score weights of stage 1-3 tokens */
    const float *key[4], *recon4;
    int64_t      n[4], start[5];      /* start[s]: first global token index of stage s */
    int64_t      n_blocks;
    double      *score;               /* [N][HEADS] */
    double       mx[HEADS], l[HEADS];
    double      *part;                /* [n_blocks][HEADS][2 * D] */
};

/* token t of the global order (stage 1 first): its orig half, and its vae half (== orig before stage 4) */
static void token(const struct pass *p, int64_t t, const float **a, const float **b) {
    int s = 0;
    while (t >= p->start[s + 1]) s++;
    int64_t i = t - p->start[s];
    *a = p->key[s] + i * D;
    *b = s == 3 ? p->recon4 + i * D : NULL;
}

static void score_block(void *ctx, int64_t blk, int tid) {
    (void)tid;
    struct pass *p = ctx;
    int64_t t0 = blk * BLOCK, t1 = t0 + BLOCK < p->start[4] ? t0 + BLOCK : p->start[4];
    for (int64_t t = t0; t < t1; t++) {
        const float *a, *b;
        token(p, t, &a, &b);
        double acc[HEADS] = { 0 };
        if (!b) {
            for (int c = 0; c < D; c++)
                for (int h = 0; h < HEADS; h++) acc[h] += p->gs[c][h] * a[c];
        } else {
            for (int c = 0; c < D; c++)
                for (int h = 0; h < HEADS; h++) acc[h] += p->f->g[c][h] * a[c] + p->f->g[D + c][h] * b[c];
        }
        for (int h = 0; h < HEADS; h++) p->score[t * HEADS + h] = acc[h];
    }
}

static void sum_block(void *ctx, int64_t blk, int tid) {
    (void)tid;
    struct pass *p = ctx;
    int64_t t0 = blk * BLOCK, t1 = t0 + BLOCK < p->start[4] ? t0 + BLOCK : p->start[4];
    double *acc = p->part + blk * HEADS * 2 * D;
    memset(acc, 0, HEADS * 2 * D * sizeof *acc);
    for (int64_t t = t0; t < t1; t++) {
        const float *a, *b;
        token(p, t, &a, &b);
        if (!b) b = a;
        for (int h = 0; h < HEADS; h++) {
            double w = exp(p->score[t * HEADS + h] - p->mx[h]);
            double *x = acc + h * 2 * D;
            for (int c = 0; c < D; c++) x[c] += w * a[c];
            for (int c = 0; c < D; c++) x[D + c] += w * b[c];
        }
    }
}

int visd_head_feature(const struct visd_head *m, int organ, const float *const key[4], const int64_t n[4],
                      const float *recon4, float feat[VISD_HEAD_DIM], int n_threads) {
    if (organ < 0 || organ >= VISD_HEAD_ORGANS || n[3] < 1 || n[0] < 0 || n[1] < 0 || n[2] < 0)
        return ct_seterr("visd_head_feature: organ %d, stage-4 tokens %lld", organ, (long long)n[3]);
    struct pass *p = ct_xcalloc(1, sizeof *p);
    p->f = &m->o[organ];
    for (int c = 0; c < D; c++)
        for (int h = 0; h < HEADS; h++) p->gs[c][h] = p->f->g[c][h] + p->f->g[D + c][h];
    p->recon4 = recon4;
    for (int s = 0; s < 4; s++) {
        p->key[s] = key[s];
        p->n[s] = n[s];
        p->start[s + 1] = p->start[s] + n[s];
    }
    int64_t N = p->start[4];
    p->n_blocks = (N + BLOCK - 1) / BLOCK;
    p->score = malloc((size_t)N * HEADS * sizeof(double));
    p->part = malloc((size_t)p->n_blocks * HEADS * 2 * D * sizeof(double));
    if (!p->score || !p->part) {
        free(p->score), free(p->part), free(p);
        return ct_seterr("out of memory (organ head over %lld tokens)", (long long)N);
    }
    ct_parallel_for(n_threads, p->n_blocks, score_block, p);
    for (int h = 0; h < HEADS; h++) {
        double mx = -INFINITY;
        for (int64_t t = 0; t < N; t++) mx = fmax(mx, p->score[t * HEADS + h]);
        p->mx[h] = mx;
    }
    ct_parallel_for(n_threads, p->n_blocks, sum_block, p);
    /* reduce in block order; the softmax denominators are the sums of the weights themselves */
    double sx[HEADS][2 * D] = { { 0 } }, l[HEADS] = { 0 };
    for (int64_t t = 0; t < N; t++)
        for (int h = 0; h < HEADS; h++) l[h] += exp(p->score[t * HEADS + h] - p->mx[h]);
    for (int64_t blk = 0; blk < p->n_blocks; blk++)
        for (int h = 0; h < HEADS; h++)
            for (int c = 0; c < 2 * D; c++) sx[h][c] += p->part[(blk * HEADS + h) * 2 * D + c];
    /* per head: hbar = M xbar + c, v_h = Wv_h hbar + bv_h; then out_proj, vision_projs, L2 */
    double att[D], o1[D], f[D];
    for (int h = 0; h < HEADS; h++) {
        double hbar[D];
        for (int i = 0; i < D; i++) {
            double s = p->f->c[i];
            for (int k = 0; k < 2 * D; k++) s += p->f->m[i][k] * (sx[h][k] / l[h]);
            hbar[i] = s;
        }
        for (int i = h * DH; i < (h + 1) * DH; i++) {
            double s = m->bv[i];
            for (int j = 0; j < D; j++) s += m->wv[i][j] * hbar[j];
            att[i] = s;
        }
    }
    for (int i = 0; i < D; i++) {
        double s = m->bo[i];
        for (int j = 0; j < D; j++) s += m->wo[i][j] * att[j];
        o1[i] = s;
    }
    double nrm = 0;
    for (int i = 0; i < D; i++) {
        double s = m->bp[organ][i];
        for (int j = 0; j < D; j++) s += m->wp[organ][i][j] * o1[j];
        f[i] = s;
        nrm += s * s;
    }
    nrm = fmax(sqrt(nrm), 1e-12);
    for (int i = 0; i < D; i++) feat[i] = (float)(f[i] / nrm);
    free(p->score), free(p->part), free(p);
    return 0;
}
