/*
 * visd-vq.c - the VQ-VAE normality model of visd-vq.h (method.md 4.1), on the transformer ops of
 * transformer.h.  Weights borrowed from the ct.weights/1 record.
 */
#include "visd-vq.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "transformer.h"

#define HEADS   16
#define DHEAD   64
#define INNER   (HEADS * DHEAD)       /* 1024 */
#define MLP     2048
#define LN_EPS  1e-5f

const float *visd_weight(const struct rec *w, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[TN_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char want[64];
    if (d1 < 0) snprintf(want, sizeof want, "[%lld]", (long long)d0);
    else snprintf(want, sizeof want, "[%lld,%lld]", (long long)d0, (long long)d1);
    struct tn_tensor *t = rec_tensor(w, name);
    if (!t) {
        ct_seterr("weights: missing key %s %s", name, want);
        return NULL;
    }
    int nd = d1 < 0 ? 1 : 2;
    if (t->dtype != TN_F32 || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        char sh[128];
        ct_seterr("weights: key %s is %s %s, expected f32 %s (weights of another architecture?)", name,
                  tn_dtype_name(t->dtype), tn_shape_str(t, sh, sizeof sh), want);
        return NULL;
    }
    return t->data;
}

struct tf_layer {
    const float *ln1_g, *ln1_b, *qkv_w, *out_w, *out_b, *ln2_g, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};

struct tf {
    struct tf_layer l[2];
    const float    *norm_g, *norm_b;
};

struct visd_vq {
    const float *id_w, *id_b, *in1_w, *in1_b, *in2_w, *in2_b;
    struct tf    enc, dec;
    const float *codes;                          /* [400, 768] */
    double       code_n2[VISD_VQ_CODES];         /* |e_k|^2 */
    const float *out1_w, *out1_b, *out2_w, *out2_b;
};

int visd_vq_wants(const char *name) {
    static const char *pre[] = { "encoder.", "decoder.", "id_projs." };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strncmp(name, pre[i], strlen(pre[i]))) return 1;
    return !strcmp(name, "vq_layer.embeddings");
}

#define W(dst, d0, d1, ...)                                                                        \
    do {                                                                                           \
        if (!((dst) = visd_weight(w, d0, d1, __VA_ARGS__))) return -1;                            \
    } while (0)

static int load_tf(struct tf *t, const struct rec *w, const char *mod) {
    for (int l = 0; l < 2; l++) {
        struct tf_layer *y = &t->l[l];
        W(y->ln1_g, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.0.norm.weight", mod, l);
        W(y->ln1_b, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.0.norm.bias", mod, l);
        W(y->qkv_w, 3 * INNER, VISD_VQ_DIM, "%s.transformer.layers.%d.0.to_qkv.weight", mod, l);
        W(y->out_w, VISD_VQ_DIM, INNER, "%s.transformer.layers.%d.0.to_out.0.weight", mod, l);
        W(y->out_b, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.0.to_out.0.bias", mod, l);
        W(y->ln2_g, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.1.net.0.weight", mod, l);
        W(y->ln2_b, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.1.net.0.bias", mod, l);
        W(y->fc1_w, MLP, VISD_VQ_DIM, "%s.transformer.layers.%d.1.net.1.weight", mod, l);
        W(y->fc1_b, MLP, -1, "%s.transformer.layers.%d.1.net.1.bias", mod, l);
        W(y->fc2_w, VISD_VQ_DIM, MLP, "%s.transformer.layers.%d.1.net.4.weight", mod, l);
        W(y->fc2_b, VISD_VQ_DIM, -1, "%s.transformer.layers.%d.1.net.4.bias", mod, l);
    }
    W(t->norm_g, VISD_VQ_DIM, -1, "%s.transformer.norm.weight", mod);
    W(t->norm_b, VISD_VQ_DIM, -1, "%s.transformer.norm.bias", mod);
    return 0;
}

static int load(struct visd_vq *m, const struct rec *w) {
    W(m->id_w, VISD_VQ_IN, 1, "id_projs.weight");
    W(m->id_b, VISD_VQ_IN, -1, "id_projs.bias");
    W(m->in1_w, 2 * VISD_VQ_IN, VISD_VQ_IN, "encoder.input1.weight");
    W(m->in1_b, 2 * VISD_VQ_IN, -1, "encoder.input1.bias");
    W(m->in2_w, VISD_VQ_DIM, 2 * VISD_VQ_IN, "encoder.input2.weight");
    W(m->in2_b, VISD_VQ_DIM, -1, "encoder.input2.bias");
    if (load_tf(&m->enc, w, "encoder") != 0 || load_tf(&m->dec, w, "decoder") != 0) return -1;
    W(m->codes, VISD_VQ_CODES, VISD_VQ_DIM, "vq_layer.embeddings");
    W(m->out1_w, 2 * VISD_VQ_IN, VISD_VQ_DIM, "decoder.output1.weight");
    W(m->out1_b, 2 * VISD_VQ_IN, -1, "decoder.output1.bias");
    W(m->out2_w, VISD_VQ_IN, 2 * VISD_VQ_IN, "decoder.output2.weight");
    W(m->out2_b, VISD_VQ_IN, -1, "decoder.output2.bias");
    return 0;
}
#undef W

struct visd_vq *visd_vq_new(const struct rec *w) {
    if (!rec_tensor(w, "encoder.input1.weight") && !rec_tensor(w, "decoder.output2.weight")) {
        ct_seterr("weights '%s' have no VQ-VAE (encoder.*, decoder.*, id_projs.*): the released checkpoint.pth lacks "
                  "it; convert with tools/ctvis-convert.py --vqvae checkpoint_vqvae.pth",
                  w->id);
        return NULL;
    }
    struct visd_vq *m = ct_xcalloc(1, sizeof *m);
    if (load(m, w) != 0) {
        free(m);
        return NULL;
    }
    for (int k = 0; k < VISD_VQ_CODES; k++) {
        const float *e = m->codes + (size_t)k * VISD_VQ_DIM;
        double s = 0;
        for (int c = 0; c < VISD_VQ_DIM; c++) s += (double)e[c] * e[c];
        m->code_n2[k] = s;
    }
    return m;
}

void visd_vq_free(struct visd_vq *m) { free(m); }

/* scratch of one transformer pass over n tokens */
struct tf_buf {
    float *h, *qkv, *a, *t, *f;
};

/* x [n, 768] in place: 2 pre-norm layers, then the final LayerNorm */
static int tf_forward(const struct tf *t, float *x, int64_t n, const struct tf_buf *b, int nt) {
    const int64_t D = VISD_VQ_DIM;
    for (int l = 0; l < 2; l++) {
        const struct tf_layer *y = &t->l[l];
        tfm_layernorm(b->h, x, n, (int)D, y->ln1_g, y->ln1_b, LN_EPS);
        if (tfm_linear(b->qkv, b->h, n, (int)D, 3 * INNER, y->qkv_w, NULL, nt) != 0 ||
            tfm_attention(b->a, b->qkv, 3 * INNER, b->qkv + INNER, 3 * INNER, b->qkv + 2 * INNER, 3 * INNER, n, n,
                          HEADS, DHEAD, 0.125f, nt) != 0 ||
            tfm_linear(b->t, b->a, n, INNER, (int)D, y->out_w, y->out_b, nt) != 0)
            return -1;
        for (int64_t i = 0; i < n * D; i++) x[i] += b->t[i];
        tfm_layernorm(b->h, x, n, (int)D, y->ln2_g, y->ln2_b, LN_EPS);
        if (tfm_linear(b->f, b->h, n, (int)D, MLP, y->fc1_w, y->fc1_b, nt) != 0) return -1;
        tfm_gelu(b->f, n * MLP);
        if (tfm_linear(b->t, b->f, n, MLP, (int)D, y->fc2_w, y->fc2_b, nt) != 0) return -1;
        for (int64_t i = 0; i < n * D; i++) x[i] += b->t[i];
    }
    tfm_layernorm(x, x, n, (int)D, t->norm_g, t->norm_b, LN_EPS);
    return 0;
}

int visd_vq_recon(const struct visd_vq *m, const float *roi, int64_t n, int organ, int per_organ, float *recon,
                  int32_t *code, int nt) {
    if (n < 1 || organ < 0 || organ > 3) return ct_seterr("visd_vq_recon: %lld tokens, organ %d", (long long)n, organ);
    const int64_t C = VISD_VQ_IN, D = VISD_VQ_DIM, n1 = n + 1;
    /* normalisation: exactly the float operations of the reference (min, subtract, max, divide) */
    float mn = roi[0];
    for (int64_t i = 0; i < n * C; i++)
        if (roi[i] < mn) mn = roi[i];
    float mx = roi[0] - mn;
    for (int64_t i = 0; i < n * C; i++)
        if (roi[i] - mn > mx) mx = roi[i] - mn;
    if (!(mx > 0)) return 1;                          /* constant tokens: (roi - mn) / 0 */
    /* one allocation for everything */
    size_t nf = (size_t)(n1 * C + n1 * 2 * C + n1 * D + n1 * D + n1 * 3 * INNER + n1 * INNER + n1 * D + n1 * MLP +
                         n * VISD_VQ_CODES + n * D + n * 2 * C);
    float *buf = malloc(nf * sizeof(float));
    if (!buf) return ct_seterr("out of memory (VQ-VAE on %lld tokens)", (long long)n);
    float *x0 = buf, *x1 = x0 + n1 * C, *z = x1 + n1 * 2 * C;
    struct tf_buf b;
    b.h = z + n1 * D;
    b.qkv = b.h + n1 * D;
    b.a = b.qkv + n1 * 3 * INNER;
    b.t = b.a + n1 * INNER;
    b.f = b.t + n1 * D;
    float *dots = b.f + n1 * MLP, *e = dots + n * VISD_VQ_CODES, *o1 = e + n * D;
    int rc = -1;
    /* condition token id_projs(o) then the normalised tokens */
    for (int64_t c = 0; c < C; c++) x0[c] = (float)organ * m->id_w[c] + m->id_b[c];
    for (int64_t i = 0; i < n * C; i++) x0[C + i] = (roi[i] - mn) / mx - 0.5f;
    if (tfm_linear(x1, x0, n1, (int)C, (int)(2 * C), m->in1_w, m->in1_b, nt) != 0 ||
        tfm_linear(z, x1, n1, (int)(2 * C), (int)D, m->in2_w, m->in2_b, nt) != 0 ||
        tf_forward(&m->enc, z, n1, &b, nt) != 0)
        goto out;
    /* nearest code of z[1:]: |z|^2 + |e_k|^2 - 2 z.e_k; |z|^2 is the same for every k */
    const float *zq = z + D;
    if (tfm_linear(dots, zq, n, (int)D, VISD_VQ_CODES, m->codes, NULL, nt) != 0) goto out;
    int k0 = per_organ ? organ * VISD_VQ_BLOCK : 0, k1 = per_organ ? k0 + VISD_VQ_BLOCK : VISD_VQ_CODES;
    for (int64_t i = 0; i < n; i++) {
        const float *d = dots + i * VISD_VQ_CODES;
        int best = k0;
        double bd = m->code_n2[k0] - 2.0 * d[k0];
        for (int k = k0 + 1; k < k1; k++) {
            double v = m->code_n2[k] - 2.0 * d[k];
            if (v < bd) bd = v, best = k;             /* strict: lowest index on ties (torch.argmin) */
        }
        if (code) code[i] = best;
        memcpy(e + i * D, m->codes + (size_t)best * D, (size_t)D * sizeof(float));
    }
    /* decoder */
    if (tf_forward(&m->dec, e, n, &b, nt) != 0 ||
        tfm_linear(o1, e, n, (int)D, (int)(2 * C), m->out1_w, m->out1_b, nt) != 0 ||
        tfm_linear(recon, o1, n, (int)(2 * C), (int)C, m->out2_w, m->out2_b, nt) != 0)
        goto out;
    for (int64_t i = 0; i < n * C; i++) recon[i] = (recon[i] + 0.5f) * mx + mn;
    rc = 0;
out:
    free(buf);
    return rc;
}
