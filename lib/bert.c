/*
 * bert.c - BERT forward for prompt features (see bert.h).  The last layer runs its queries, its
 * attention output and its feed-forward only at the [CLS] rows: nothing else of it is used.
 */
#include "bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "transformer.h"

struct bert_layer {
    const float *qw, *qb, *kw, *kb, *vw, *vb;    /* attention.self.{query,key,value} */
    const float *ow, *ob, *ln1g, *ln1b;         /* attention.output.{dense,LayerNorm} */
    const float *iw, *ib;                       /* intermediate.dense */
    const float *o2w, *o2b, *ln2g, *ln2b;       /* output.{dense,LayerNorm} */
};

struct bert {
    struct bert_dims   d;
    const float       *word, *pos, *lng, *lnb, *projw, *projb;
    double             temp;
    struct bert_layer *layer;
};

/* The f32 tensor name with ndim dims; want[i] < 0 accepts any size and stores it. */
static const float *get(const struct rec *w, const char *name, int ndim, int *want0, int *want1) {
    char full[TN_NAME_MAX];
    snprintf(full, sizeof full, "%s", name);
    const struct tn_tensor *t = rec_tensor(w, full);
    if (!t) {
        ct_seterr("missing tensor '%s'", full);
        return NULL;
    }
    char sh[96];
    int *want[2] = { want0, want1 };
    int ok = t->dtype == TN_F32 && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) {
        if (*want[i] < 0 && t->shape[i] > 0 && t->shape[i] < (1 << 24)) *want[i] = (int)t->shape[i];
        ok = t->shape[i] == *want[i];
    }
    if (!ok) {
        char exp[64] = "";
        if (ndim == 1) snprintf(exp, sizeof exp, "[%d]", *want0);
        else snprintf(exp, sizeof exp, "[%d, %d]", *want0, *want1);
        ct_seterr("tensor '%s' is %s %s, expected f32 %s", full, tn_dtype_name(t->dtype), tn_shape_str(t, sh, sizeof sh),
                  exp);
        return NULL;
    }
    return t->data;
}

#define GET1(dst, name, n0)                                                                        \
    do {                                                                                           \
        int a0_ = (n0);                                                                            \
        if (!((dst) = get(w, name, 1, &a0_, NULL))) goto fail;                                      \
    } while (0)
#define GET2(dst, name, n0, n1)                                                                    \
    do {                                                                                           \
        int a0_ = (n0), a1_ = (n1);                                                                \
        if (!((dst) = get(w, name, 2, &a0_, &a1_))) goto fail;                                      \
    } while (0)

struct bert *bert_new(const struct rec *w, int heads) {
    struct bert *b = ct_xcalloc(1, sizeof *b);
    struct bert_dims *d = &b->d;
    char n[TN_NAME_MAX];
    if (!rec_tensor(w, BERT_PREFIX "embeddings.word_embeddings.weight")) {
        ct_seterr("no text encoder in the weights (no tensor '" BERT_PREFIX "embeddings.word_embeddings.weight'; "
                  "convert a checkpoint with its text encoder, or --random without --no-text)");
        goto fail;
    }
    d->vocab = d->hidden = d->max_positions = d->proj = d->intermediate = -1;
    int v = -1, h = -1;
    if (!(b->word = get(w, BERT_PREFIX "embeddings.word_embeddings.weight", 2, &v, &h))) goto fail;
    d->vocab = v;
    d->hidden = h;
    int p = -1;
    if (!(b->pos = get(w, BERT_PREFIX "embeddings.position_embeddings.weight", 2, &p, &h))) goto fail;
    d->max_positions = p;
    GET1(b->lng, BERT_PREFIX "embeddings.LayerNorm.weight", h);
    GET1(b->lnb, BERT_PREFIX "embeddings.LayerNorm.bias", h);
    for (d->layers = 0;; d->layers++) {
        snprintf(n, sizeof n, BERT_PREFIX "encoder.layer.%d.attention.self.query.weight", d->layers);
        if (!rec_tensor(w, n)) break;
    }
    if (d->layers == 0) {
        ct_seterr("no text encoder layers (no tensor '" BERT_PREFIX "encoder.layer.0.attention.self.query.weight')");
        goto fail;
    }
    {
        int i_ = -1;
        snprintf(n, sizeof n, BERT_PREFIX "encoder.layer.0.intermediate.dense.weight");
        if (!get(w, n, 2, &i_, &h)) goto fail;
        d->intermediate = i_;
    }
    int pr = -1;
    if (!(b->projw = get(w, "text_proj.weight", 2, &pr, &h))) goto fail;
    d->proj = pr;
    GET1(b->projb, "text_proj.bias", pr);
    {
        const struct tn_tensor *t = rec_tensor(w, "temp");
        if (!t || t->dtype != TN_F32 || tn_numel(t) != 1) {
            ct_seterr(t ? "tensor 'temp' is not one f32" : "missing tensor 'temp'");
            goto fail;
        }
        b->temp = *(const float *)t->data;
    }
    if (heads <= 0) {
        int64_t mh;
        int k = rec_meta_i64(w, "text_heads", &mh, 1);
        if (k < 0) goto fail;
        if (k == 1) {
            if (mh < 1 || mh > h) {
                ct_seterr("meta text_heads %lld out of range 1..%d", (long long)mh, h);
                goto fail;
            }
            heads = (int)mh;
        } else {
            if (h % 64) {
                ct_seterr("hidden width %d is not a multiple of 64 and the weights have no meta text_heads", h);
                goto fail;
            }
            heads = h / 64;
        }
    }
    if (h % heads) {
        ct_seterr("hidden width %d is not divisible by %d heads", h, heads);
        goto fail;
    }
    d->heads = heads;
    b->layer = ct_xcalloc((size_t)d->layers, sizeof *b->layer);
    int in = d->intermediate;
    for (int l = 0; l < d->layers; l++) {
        struct bert_layer *L = &b->layer[l];
/* module.weight [out, cin] and module.bias [out] (a Linear; LayerNorm: cin 0, weight [out]) */
#define MOD(wp, bp, mod, out, cin)                                                                 \
    do {                                                                                           \
        snprintf(n, sizeof n, BERT_PREFIX "encoder.layer.%d." mod ".weight", l);                   \
        if (cin) GET2(wp, n, out, cin);                                                            \
        else GET1(wp, n, out);                                                                     \
        snprintf(n, sizeof n, BERT_PREFIX "encoder.layer.%d." mod ".bias", l);                     \
        GET1(bp, n, out);                                                                          \
    } while (0)
        MOD(L->qw, L->qb, "attention.self.query", h, h);
        MOD(L->kw, L->kb, "attention.self.key", h, h);
        MOD(L->vw, L->vb, "attention.self.value", h, h);
        MOD(L->ow, L->ob, "attention.output.dense", h, h);
        MOD(L->ln1g, L->ln1b, "attention.output.LayerNorm", h, 0);
        MOD(L->iw, L->ib, "intermediate.dense", in, h);
        MOD(L->o2w, L->o2b, "output.dense", h, in);
        MOD(L->ln2g, L->ln2b, "output.LayerNorm", h, 0);
#undef MOD
    }
    return b;
fail:
    bert_free(b);
    return NULL;
}

void bert_free(struct bert *b) {
    if (!b) return;
    free(b->layer);
    free(b);
}

void bert_dims(const struct bert *b, struct bert_dims *d) { *d = b->d; }
double bert_temp(const struct bert *b) { return b->temp; }

struct bufs {
    float *q, *k, *v, *ctx, *a, *inter;
};

static void add_rows(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* One post-LN layer.  Keys and values from all T rows of x (sequence s at rows off[s] ..
 * off[s]+lens[s]); queries from the nq rows of xq (sequence s at qoff[s], qlen[s] rows), which
 * receive the layer's output.  xq may be x itself (every row a query). */
static int layer(const struct bert *b, const struct bert_layer *w, const float *x, int64_t T, const int *off,
                 const int *lens, int n, float *xq, int64_t nq, const int *qoff, const int *qlen, struct bufs *u,
                 int nt) {
    int h = b->d.hidden, dh = h / b->d.heads, in = b->d.intermediate;
    if (tfm_linear(u->k, x, T, h, h, w->kw, w->kb, nt) || tfm_linear(u->v, x, T, h, h, w->vw, w->vb, nt) ||
        tfm_linear(u->q, xq, nq, h, h, w->qw, w->qb, nt))
        return -1;
    float scale = (float)(1.0 / sqrt((double)dh));
    for (int s = 0; s < n; s++)
        if (tfm_attention(u->ctx + (int64_t)qoff[s] * h, u->q + (int64_t)qoff[s] * h, h, u->k + (int64_t)off[s] * h, h,
                          u->v + (int64_t)off[s] * h, h, qlen[s], lens[s], b->d.heads, dh, scale, nt))
            return -1;
    if (tfm_linear(u->a, u->ctx, nq, h, h, w->ow, w->ob, nt)) return -1;
    add_rows(u->a, xq, nq * h);
    tfm_layernorm(u->a, u->a, nq, h, w->ln1g, w->ln1b, BERT_LN_EPS);
    if (tfm_linear(u->inter, u->a, nq, h, in, w->iw, w->ib, nt)) return -1;
    tfm_gelu(u->inter, nq * in);
    if (tfm_linear(xq, u->inter, nq, in, h, w->o2w, w->o2b, nt)) return -1;
    add_rows(xq, u->a, nq * h);
    tfm_layernorm(xq, xq, nq, h, w->ln2g, w->ln2b, BERT_LN_EPS);
    return 0;
}

int bert_prompt_features(const struct bert *b, int n, const int32_t *const *ids, const int *lens, float *out,
                         int n_threads) {
    const struct bert_dims *d = &b->d;
    int h = d->hidden;
    if (n < 1) return ct_seterr("no sequences");
    int *off = ct_xmalloc((size_t)n * 4 * sizeof *off), *qoff = off + n, *one = off + 2 * n, *qlen = off + 3 * n;
    int64_t T = 0;
    for (int s = 0; s < n; s++) {
        if (lens[s] < 1 || lens[s] > d->max_positions) {
            free(off);
            return ct_seterr("sequence %d has %d tokens (1 to %d allowed by the position table)", s, lens[s],
                             d->max_positions);
        }
        for (int i = 0; i < lens[s]; i++)
            if (ids[s][i] < 0 || ids[s][i] >= d->vocab) {
                free(off);
                return ct_seterr("sequence %d: token id %d outside the embedding table [0, %d)", s, ids[s][i], d->vocab);
            }
        off[s] = (int)T;
        qoff[s] = s;
        one[s] = 1;
        qlen[s] = lens[s];
        T += lens[s];
    }
    size_t rows = (size_t)T * (size_t)h;
    float *x = ct_xaligned(rows * sizeof *x);
    struct bufs u;
    u.q = ct_xaligned(rows * sizeof(float));
    u.k = ct_xaligned(rows * sizeof(float));
    u.v = ct_xaligned(rows * sizeof(float));
    u.ctx = ct_xaligned(rows * sizeof(float));
    u.a = ct_xaligned(rows * sizeof(float));
    u.inter = ct_xaligned((size_t)T * (size_t)d->intermediate * sizeof(float));
    float *xc = ct_xaligned((size_t)n * h * sizeof *xc);
    for (int s = 0; s < n; s++)
        for (int i = 0; i < lens[s]; i++) {
            float *r = x + (int64_t)(off[s] + i) * h;
            const float *we = b->word + (int64_t)ids[s][i] * h, *pe = b->pos + (int64_t)i * h;
            for (int c = 0; c < h; c++) r[c] = we[c] + pe[c];
        }
    tfm_layernorm(x, x, T, h, b->lng, b->lnb, BERT_LN_EPS);
    int rc = 0;
    for (int l = 0; l < d->layers && !rc; l++) {
        if (l < d->layers - 1) {
            rc = layer(b, &b->layer[l], x, T, off, lens, n, x, T, off, qlen, &u, n_threads);
        } else {                     /* the last layer: only the [CLS] rows are queries */
            for (int s = 0; s < n; s++) memcpy(xc + (int64_t)s * h, x + (int64_t)off[s] * h, (size_t)h * sizeof *xc);
            rc = layer(b, &b->layer[l], x, T, off, lens, n, xc, n, qoff, one, &u, n_threads);
        }
    }
    if (!rc) rc = tfm_linear(out, xc, n, h, d->proj, b->projw, b->projb, n_threads);
    if (!rc)
        for (int s = 0; s < n; s++) tfm_l2_normalize(out + (int64_t)s * d->proj, out + (int64_t)s * d->proj, d->proj, 1e-12f);
    free(x);
    free(u.q);
    free(u.k);
    free(u.v);
    free(u.ctx);
    free(u.a);
    free(u.inter);
    free(xc);
    free(off);
    return rc ? -1 : 0;
}
