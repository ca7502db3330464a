/*
 * test-transformer.c - edge cases of lib/transformer.c, and (with --ops) the driver that
 * tests/ref/test_transformer.py feeds with records to compare every op against PyTorch.
 *
 *   test-transformer            unit tests: "ok NAME" lines
 *   test-transformer --ops      read records {meta op, params; tensors x, w, b, ...} on stdin,
 *                               write each back with the result tensor "y"
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ct.h"
#include "stream.h"
#include "transformer.h"

/* ---- the --ops driver ---- */

static const float *fdata(const struct rec *r, const char *name) {
    struct tn_tensor *t = rec_tensor(r, name);
    return t && t->dtype == TN_F32 ? t->data : NULL;
}

static double meta_num(const struct rec *r, const char *key, double dflt) {
    double v;
    return rec_meta_f64(r, key, &v, 1) == 1 ? v : dflt;
}

static int run_ops(void) {
    struct rec_reader *in = rec_reader_open("-");
    struct rec_writer *out = rec_writer_open("-", NULL);
    if (!in || !out) {
        fprintf(stderr, "test-transformer: %s\n", ct_lasterr());
        return 1;
    }
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc;
    while ((rc = rec_read(in, a, &r)) > 0) {
        const char *op = rec_meta_str(&r, "op");
        struct tn_tensor *x = rec_tensor(&r, "x");
        int nt = (int)meta_num(&r, "threads", 1);
        if (!op || !x || x->dtype != TN_F32) {
            fprintf(stderr, "test-transformer: record %ld: op or x missing\n", r.index);
            return 1;
        }
        int64_t n = x->ndim >= 1 ? x->shape[0] : 1;
        int dim = x->ndim >= 2 ? (int)x->shape[x->ndim - 1] : (int)tn_numel(x);
        struct tn_tensor *y = NULL;
        int err = 0;
        if (!strcmp(op, "linear")) {
            struct tn_tensor *w = rec_tensor(&r, "w");
            int64_t shp[2] = { n, w->shape[0] };
            y = tn_new(a, TN_F32, 2, shp, "y");
            err = tfm_linear(y->data, x->data, n, dim, (int)w->shape[0], w->data, fdata(&r, "b"), nt);
        } else if (!strcmp(op, "layernorm")) {
            y = tn_new(a, TN_F32, x->ndim, x->shape, "y");
            tfm_layernorm(y->data, x->data, n, dim, fdata(&r, "g"), fdata(&r, "b"), (float)meta_num(&r, "eps", 1e-5));
        } else if (!strcmp(op, "gelu")) {
            y = tn_new(a, TN_F32, x->ndim, x->shape, "y");
            memcpy(y->data, x->data, tn_nbytes(x));
            tfm_gelu(y->data, tn_numel(x));
        } else if (!strcmp(op, "softmax")) {
            y = tn_new(a, TN_F32, x->ndim, x->shape, "y");
            memcpy(y->data, x->data, tn_nbytes(x));
            tfm_softmax_rows(y->data, n, dim);
        } else if (!strcmp(op, "l2")) {
            y = tn_new(a, TN_F32, x->ndim, x->shape, "y");
            tfm_l2_normalize(y->data, x->data, (int)tn_numel(x), 1e-12f);
        } else if (!strcmp(op, "attention")) {
            /* x = q [nq, ldq], k [nk, ldk], v [nk, ldv]; heads, dh; q/k/v start at column 0 */
            struct tn_tensor *k = rec_tensor(&r, "k"), *v = rec_tensor(&r, "v");
            int heads = (int)meta_num(&r, "heads", 1), dh = (int)meta_num(&r, "dh", 1);
            int64_t shp[2] = { n, (int64_t)heads * dh };
            y = tn_new(a, TN_F32, 2, shp, "y");
            err = tfm_attention(y->data, x->data, x->shape[1], k->data, k->shape[1], v->data, v->shape[1], n,
                                k->shape[0], heads, dh, (float)meta_num(&r, "scale", 1.0), nt);
        } else {
            fprintf(stderr, "test-transformer: unknown op %s\n", op);
            return 1;
        }
        if (err) {
            fprintf(stderr, "test-transformer: %s\n", ct_lasterr());
            return 1;
        }
        struct rec o;
        rec_init(&o, a, "test.y/1", r.id);
        rec_add_tensor(&o, y);
        if (rec_write(out, &o) != 0) {
            fprintf(stderr, "test-transformer: %s\n", ct_lasterr());
            return 1;
        }
        tn_arena_reset(a);
    }
    if (rc < 0 || rec_writer_close(out) != 0) {
        fprintf(stderr, "test-transformer: %s\n", ct_lasterr());
        return 1;
    }
    rec_reader_close(in);
    tn_arena_free(a);
    return 0;
}

/* ---- unit tests ---- */

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--ops")) return run_ops();
    unsigned seed = 1;

    /* attention with one key: softmax weight 1, so out = v exactly for every query */
    {
        float q[3 * 8], k[8], v[8], o[3 * 8];
        for (int i = 0; i < 24; i++) q[i] = frand(&seed) * 100.0f;
        for (int i = 0; i < 8; i++) k[i] = frand(&seed) * 100.0f, v[i] = frand(&seed);
        int rc = tfm_attention(o, q, 8, k, 8, v, 8, 3, 1, 2, 4, 0.5f, 1);
        int same = 1;
        for (int i = 0; i < 3; i++)
            for (int c = 0; c < 8; c++) same &= o[i * 8 + c] == v[c];
        CHECK(rc == 0 && same, "attention one key gives v");
    }
    /* equal scores: the mean of the values; huge scores must not overflow (max subtracted) */
    {
        enum { NK = 1000 };
        float *k = calloc(NK * 4, sizeof(float)), *v = malloc(NK * 4 * sizeof(float)), q[4] = { 1e6f, 0, 0, 0 }, o[4];
        double mean[4] = { 0 };
        for (int i = 0; i < NK; i++)
            for (int c = 0; c < 4; c++) {
                k[i * 4 + c] = c == 0 ? 1e3f : 0.0f;
                v[i * 4 + c] = frand(&seed);
                mean[c] += v[i * 4 + c] / NK;
            }
        int rc = tfm_attention(o, q, 4, k, 4, v, 4, 1, NK, 1, 4, 1.0f, 2);
        double e = 0;
        for (int c = 0; c < 4; c++) e = fmax(e, fabs(o[c] - mean[c]));
        CHECK(rc == 0 && isfinite(o[0]) && e < 1e-5, "attention equal huge scores: mean of v (err %.2g)", e);
        free(k);
        free(v);
    }
    /* a fused qkv matrix: q, k, v as column slices with stride 3*width, several threads agree */
    {
        enum { N = 300, H = 4, DH = 16, W = H * DH };
        float *qkv = malloc(sizeof(float) * N * 3 * W), *o1 = malloc(sizeof(float) * N * W),
              *o2 = malloc(sizeof(float) * N * W);
        for (int i = 0; i < N * 3 * W; i++) qkv[i] = frand(&seed) * 4.0f;
        int rc = tfm_attention(o1, qkv, 3 * W, qkv + W, 3 * W, qkv + 2 * W, 3 * W, N, N, H, DH, 0.25f, 1);
        rc |= tfm_attention(o2, qkv, 3 * W, qkv + W, 3 * W, qkv + 2 * W, 3 * W, N, N, H, DH, 0.25f, 3);
        double e = 0;
        for (int i = 0; i < N * W; i++) e = fmax(e, fabs(o1[i] - o2[i]));
        /* same blocks, same sgemm calls per block: threads only change who runs them, but the
         * query blocking may differ with the thread count, hence a tolerance */
        CHECK(rc == 0 && e < 1e-6, "attention 1 vs 3 threads (err %.2g)", e);
        free(qkv);
        free(o1);
        free(o2);
    }
    /* errors */
    {
        float z[4] = { 0 }, o[4];
        CHECK(tfm_attention(o, z, 4, z, 4, z, 4, 1, 0, 1, 4, 1.0f, 1) == -1 && strstr(ct_lasterr(), "0 keys"),
              "attention 0 keys is an error");
        CHECK(tfm_attention(o, z, 4, z, 4, z, 4, 0, 1, 1, 4, 1.0f, 1) == -1, "attention 0 queries is an error");
        CHECK(tfm_attention(o, z, 3, z, 4, z, 4, 1, 1, 1, 4, 1.0f, 1) == -1, "attention ldq < width is an error");
        CHECK(tfm_linear(o, z, 1, 4, 0, z, NULL, 1) == -1, "linear out 0 is an error");
        CHECK(tfm_linear_ld(o, 1, z, 4, 1, 4, 2, z, NULL, 1) == -1, "linear ldy < out is an error");
        CHECK(tfm_linear(NULL, NULL, 0, 4, 2, NULL, NULL, 1) == 0, "linear of 0 rows is a no-op");
    }
    /* linear: strided rows, bias, NULL bias; exact small integers (sgemm exact on them) */
    {
        float x[2 * 5] = { 1, 2, 3, 99, 99, 4, 5, 6, 99, 99 }, w[2 * 3] = { 1, 0, -1, 2, 1, 0 }, b[2] = { 10, 20 };
        float y[2 * 4];
        for (int i = 0; i < 8; i++) y[i] = -7;
        int rc = tfm_linear_ld(y, 4, x, 5, 2, 3, 2, w, b, 1);
        CHECK(rc == 0 && y[0] == 8 && y[1] == 24 && y[2] == -7 && y[4] == 8 && y[5] == 33 && y[7] == -7,
              "linear_ld strides and bias");
        rc = tfm_linear_ld(y, 4, x, 5, 2, 3, 2, w, NULL, 2);
        CHECK(rc == 0 && y[0] == -2 && y[1] == 4 && y[4] == -2 && y[5] == 13, "linear without bias");
    }
    /* many rows split among threads equals one thread */
    {
        enum { N = 1000, I = 37, O = 19 };
        float *x = malloc(sizeof(float) * N * I), *w = malloc(sizeof(float) * O * I), b[O], *y1 = malloc(sizeof(float) * N * O),
              *y2 = malloc(sizeof(float) * N * O);
        for (int i = 0; i < N * I; i++) x[i] = frand(&seed);
        for (int i = 0; i < O * I; i++) w[i] = frand(&seed);
        for (int i = 0; i < O; i++) b[i] = frand(&seed);
        tfm_linear(y1, x, N, I, O, w, b, 1);
        tfm_linear(y2, x, N, I, O, w, b, 4);
        double e = 0;
        for (int i = 0; i < N * O; i++) e = fmax(e, fabs(y1[i] - y2[i]));
        CHECK(e < 1e-5, "linear 1 vs 4 threads (err %.2g)", e);
        free(x), free(w), free(y1), free(y2);
    }
    /* layernorm: constant row gives beta (variance 0, eps keeps it finite); in place */
    {
        float x[6] = { 3, 3, 3, 1, 2, 3 }, g[3] = { 2, 2, 2 }, be[3] = { 0.5f, -1, 0 };
        tfm_layernorm(x, x, 2, 3, g, be, 1e-5f);
        double s = sqrt(2.0 / 3.0 + 1e-5);
        CHECK(x[0] == 0.5f && x[1] == -1 && x[2] == 0, "layernorm constant row = beta");
        CHECK(fabs(x[3] - (2 * (-1 / s) + 0.5)) < 1e-6 && fabs(x[4] + 1) < 1e-6 && fabs(x[5] - 2 / s) < 1e-6,
              "layernorm in place");
    }
    /* gelu: values known in closed form, odd part x/2 */
    {
        float x[5] = { 0, 1, -1, 40, -40 };
        tfm_gelu(x, 5);
        /* 0.5 (1 + erf(1/sqrt 2)) = Phi(1) = 0.8413447460685429 */
        CHECK(x[0] == 0 && fabs(x[1] - 0.8413447460685429) < 1e-7 && fabs(x[2] + 0.15865525393145707) < 1e-7 &&
                  x[3] == 40 && x[4] == 0,
              "gelu exact erf values");
    }
    /* softmax: single column is 1; -inf entries get 0; rows sum to 1 */
    {
        float x[6] = { 5, -INFINITY, -INFINITY, 1000, 1000, 0 };
        tfm_softmax_rows(x, 2, 3);
        CHECK(x[0] == 1 && x[1] == 0 && x[2] == 0 && fabs(x[3] - 0.5) < 1e-7 && x[5] == 0, "softmax rows");
        float one[3] = { -3, 7, 1e30f };
        tfm_softmax_rows(one, 3, 1);
        CHECK(one[0] == 1 && one[1] == 1 && one[2] == 1, "softmax of one column is 1");
    }
    /* l2: zero vector stays zero (eps guard), unit result otherwise, in place */
    {
        float z[3] = { 0, 0, 0 }, x[2] = { 3, 4 };
        tfm_l2_normalize(z, z, 3, 1e-12f);
        tfm_l2_normalize(x, x, 2, 1e-12f);
        CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0, "l2 of zero is zero");
        CHECK(fabs(x[0] - 0.6) < 1e-7 && fabs(x[1] - 0.8) < 1e-7, "l2 of (3,4)");
    }
    return check_failures != 0;
}
