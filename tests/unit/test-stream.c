/*
 * test-stream.c - record streams: round trips of every dtype and codec,
 * metadata, key order, unknown keys, truncation at every byte, malformed
 * records, a 320 MB tensor through a pipe, and write errors.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "csv.h"
#include "ct.h"
#include "stream.h"

static char tmpdir[] = "/tmp/ctvis-test-stream-XXXXXX";

static char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CT_ASSERT(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    CT_ASSERT(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = ct_xmalloc(*n + 1);
    CT_ASSERT(fread(p, 1, *n, f) == *n);
    fclose(f);
    return p;
}

/* Read the one record of a file: returns rec_read's code, lasterr on failure. */
static int read_one(const char *path, struct tn_arena *a, struct rec *r) {
    struct rec_reader *rd = rec_reader_open(path);
    if (!rd) return -2;
    int rc = rec_read(rd, a, r);
    rec_reader_close(rd);
    return rc;
}

/* Parse a crafted byte string as a stream; returns rec_read's code. */
static int read_bytes(const struct rec_mp *m, struct tn_arena *a, struct rec *r) {
    char *p = tmp("crafted.ctv");
    write_file(p, m->buf, m->n);
    return read_one(p, a, r);
}

static uint64_t fill(void *p, size_t n, uint64_t seed) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        b[i] = (uint8_t)(seed >> 56);
    }
    return seed;
}

static struct rec build_record(struct tn_arena *a) {
    struct rec r;
    rec_init(&r, a, "ct.test/1", "case-é1");
    uint64_t seed = 42;
    for (int d = 0; d < TN_DTYPE_COUNT; d++) {
        int64_t shape[3] = { 3, 5, 7 };
        char name[32];
        snprintf(name, sizeof name, "t_%s", tn_dtype_name((enum tn_dtype)d));
        struct tn_tensor *t = tn_new(a, (enum tn_dtype)d, 3, shape, name);
        seed = fill(t->data, tn_nbytes(t), seed);
        if (d == TN_F32) {                       /* keep floats finite and compressible */
            float *f = t->data;
            for (int i = 0; i < 105; i++) f[i] = (float)(i % 9) * 0.25f;
        }
        if (d == TN_F64) {
            double *f = t->data;
            for (int i = 0; i < 105; i++) f[i] = (double)(i % 5) - 1.5;
        }
        rec_add_tensor(&r, t);
    }
    struct tn_tensor *sc = tn_new(a, TN_F64, 0, NULL, "scalar");
    *(double *)sc->data = 3.25;
    rec_add_tensor(&r, sc);
    int64_t eshape[2] = { 0, 5 };
    rec_add_tensor(&r, tn_new(a, TN_I32, 2, eshape, "empty"));
    int64_t big[5] = { 2, 3, 4, 5, 60 };
    struct tn_tensor *z = tn_zeros(a, TN_U16, 5, big, "five_d");   /* compresses well */
    ((uint16_t *)z->data)[77] = 9;
    rec_add_tensor(&r, z);

    rec_meta_set_str(&r, "source", "a b/c.nii.gz");
    rec_meta_set_i64(&r, "count", -12345678901LL);
    double sp[3] = { 3, 1, 0.75 };
    rec_meta_set_f64v(&r, "spacing_mm", sp, 3);
    int64_t iv[2] = { 7, -8 };
    rec_meta_set_i64v(&r, "ints", iv, 2);
    const char *organs[] = { "lung", "heart" };
    rec_meta_set_strv(&r, "organs", organs, 2);
    double A[4][4] = { { 0, 0, -0.7, 10 }, { 0, -0.7, 0, 20 }, { 3, 0, 0, -30 }, { 0, 0, 0, 1 } };
    rec_meta_set_mat4(&r, "affine", A);
    struct rec_mp m = { 0 };
    rec_mp_map(&m, 2);
    rec_mp_str(&m, "nested");
    rec_mp_array(&m, 2);
    rec_mp_bool(&m, 1);
    rec_mp_nil(&m);
    rec_mp_str(&m, "x");
    rec_mp_f64(&m, NAN);
    rec_meta_set_mp(&r, "deep", &m);
    char *argv1[] = { "ct-a", "--flag", "v" };
    rec_history_append(&r, 3, argv1);
    char *argv2[] = { "ct-b" };
    rec_history_append(&r, 1, argv2);
    return r;
}

static int same_tensor(const struct tn_tensor *a, const struct tn_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || strcmp(a->name, b->name)) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return memcmp(a->data, b->data, tn_nbytes(a)) == 0 && ((uintptr_t)b->data % 64) == 0;
}

static void test_roundtrip(enum rec_codec codec) {
    const char *cname = codec == REC_ZSTD ? "zstd" : "raw";
    struct tn_arena *a = tn_arena_new(0), *b = tn_arena_new(0);
    struct rec r = build_record(a);
    struct rec_wopts o = { codec, 3, 0 };
    struct rec_writer *w = rec_writer_open(tmp("rt.ctv"), &o);
    CHECK(w != NULL, "%s: writer opens", cname);
    CHECK(rec_write(w, &r) == 0 && rec_write(w, &r) == 0 && rec_writer_close(w) == 0, "%s: two records written", cname);
    struct rec_reader *rd = rec_reader_open(tmp("rt.ctv"));
    struct rec q;
    int n = 0, all_same = 1;
    int rc;
    while ((rc = rec_read(rd, b, &q)) > 0) {
        all_same &= q.index == n && !strcmp(q.schema, r.schema) && !strcmp(q.id, r.id) && q.n_tensors == r.n_tensors;
        for (int i = 0; i < r.n_tensors && all_same; i++) all_same &= same_tensor(r.tensors[i], q.tensors[i]);
        all_same &= q.n_meta == r.n_meta;
        for (int i = 0; i < r.n_meta && all_same; i++)
            all_same &= !strcmp(q.meta[i].key, r.meta[i].key) && q.meta[i].val_nbytes == r.meta[i].val_nbytes &&
                        !memcmp(q.meta[i].val, r.meta[i].val, r.meta[i].val_nbytes);
        if (n == 1) {
            double sp[3];
            int64_t iv[2];
            double A[4][4];
            CHECK(rec_meta_f64(&q, "spacing_mm", sp, 3) == 3 && sp[2] == 0.75, "%s: meta f64 array", cname);
            CHECK(rec_meta_i64(&q, "ints", iv, 2) == 2 && iv[1] == -8, "%s: meta int array", cname);
            CHECK(rec_meta_i64(&q, "count", iv, 1) == 1 && iv[0] == -12345678901LL, "%s: meta int64", cname);
            CHECK(rec_meta_f64(&q, "spacing_mm", sp, 2) == -1, "%s: meta array longer than asked is an error", cname);
            CHECK(rec_meta_f64(&q, "absent", sp, 3) == 0, "%s: absent meta key reads 0 values", cname);
            const char **sv = NULL;
            CHECK(rec_meta_strv(&q, "organs", &sv) == 2 && !strcmp(sv[0], "lung") && !strcmp(sv[1], "heart") &&
                      sv[2] == NULL, "%s: meta string array", cname);
            CHECK(rec_meta_strv(&q, "absent", &sv) == 0 && sv == NULL, "%s: absent string array reads 0", cname);
            CHECK(rec_meta_strv(&q, "source", &sv) == -1 && strstr(ct_lasterr(), "meta 'source': not an array"),
                  "%s: a string is not a string array", cname);
            CHECK(rec_meta_strv(&q, "ints", &sv) == -1 && strstr(ct_lasterr(), "meta 'ints': item 0 is not a string"),
                  "%s: numbers are not a string array", cname);
            CHECK(rec_meta_str(&q, "source") && !strcmp(rec_meta_str(&q, "source"), "a b/c.nii.gz"), "%s: meta str",
                  cname);
            CHECK(rec_meta_mat4(&q, "affine", A) == 1 && A[2][0] == 3 && A[0][2] == -0.7, "%s: meta mat4", cname);
            const struct rec_val *h = rec_meta_get(&q, "history");
            CHECK(h && h->type == RV_ARRAY && h->v.a.n == 2 &&
                      !strcmp(rec_val_map_get(&h->v.a.items[0], "tool")->v.s.p, ct_progname()) &&
                      rec_val_map_get(&h->v.a.items[0], "args")->v.a.n == 2,
                  "%s: history keeps both steps in order", cname);
            const struct rec_val *d = rec_meta_get(&q, "deep");
            CHECK(d && rec_val_map_get(d, "nested")->v.a.items[0].type == RV_BOOL &&
                      isnan(rec_val_map_get(d, "x")->v.f),
                  "%s: nested meta", cname);
        }
        tn_arena_reset(b);
        n++;
    }
    CHECK(rc == 0 && n == 2 && all_same, "%s: records, tensors and meta read back identical (%s)", cname, ct_lasterr());
    rec_reader_close(rd);
    tn_arena_free(a);
    tn_arena_free(b);
}

/* Every prefix of a valid stream is either empty (clean end) or truncated. */
static void test_truncation(void) {
    struct tn_arena *a = tn_arena_new(0);
    struct rec r = build_record(a);
    for (int c = 0; c < 2; c++) {
        struct rec_wopts o = { c ? REC_ZSTD : REC_RAW, 1, 0 };
        struct rec_writer *w = rec_writer_open(tmp("full.ctv"), &o);
        CT_ASSERT(w && rec_write(w, &r) == 0 && rec_writer_close(w) == 0);
        size_t n;
        uint8_t *all = read_file(tmp("full.ctv"), &n);
        int bad = 0;
        struct tn_arena *b = tn_arena_new(0);
        /* every byte of the header part, every 97th inside the payloads, every byte of the end */
        for (size_t len = 0; len < n; len = len < 2048 || len + 512 > n ? len + 1 : len + 97) {
            write_file(tmp("cut.ctv"), all, len);
            struct rec q;
            int rc = read_one(tmp("cut.ctv"), b, &q);
            if (len == 0 ? rc != 0 : (rc != -1 || !strstr(ct_lasterr(), "record 0 (id ") || !strstr(ct_lasterr(), "truncated"))) {
                if (!bad) printf("# prefix %zu of %zu: rc %d: %s\n", len, n, rc, ct_lasterr());
                bad++;
            }
            tn_arena_reset(b);
        }
        CHECK(bad == 0, "%s: prefixes of a %zu-byte stream are reported as truncated", c ? "zstd" : "raw", n);
        free(all);
        tn_arena_free(b);
    }
    tn_arena_free(a);
}

/* Start a crafted record {schema, id, tensors: {name: {...}}} with k tensor fields to follow. */
static void craft_head(struct rec_mp *m, const char *schema, const char *name, int k) {
    rec_mp_map(m, 3);
    rec_mp_str(m, "schema");
    rec_mp_str(m, schema);
    rec_mp_str(m, "id");
    rec_mp_str(m, "c1");
    rec_mp_str(m, "tensors");
    rec_mp_map(m, 1);
    rec_mp_str(m, name);
    rec_mp_map(m, (uint32_t)k);
}

static void craft_shape(struct rec_mp *m, int n, const int64_t *s) {
    rec_mp_str(m, "shape");
    rec_mp_array(m, (uint32_t)n);
    for (int i = 0; i < n; i++) rec_mp_i64(m, s[i]);
}

static void expect_error(struct tn_arena *a, struct rec_mp *m, const char *want, const char *name) {
    struct rec r;
    int rc = read_bytes(m, a, &r);
    CHECK(rc == -1 && strstr(ct_lasterr(), want), "error: %s (got: %s)", name, rc == -1 ? ct_lasterr() : "no error");
    rec_mp_free(m);
    tn_arena_reset(a);
}

static void test_errors(void) {
    struct tn_arena *a = tn_arena_new(0);
    float data[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t s23[2] = { 2, 3 }, s24[2] = { 2, 4 };
    struct rec_mp m = { 0 };

    craft_head(&m, "ct.x/1", "t", 3);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 2, s24);
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    expect_error(a, &m, "record 0 (id c1): tensor 't': payload is 24 bytes but shape [2,4] of f32 needs 32",
                 "payload size does not match the shape");

    craft_head(&m, "ct.x/1", "t", 3);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f16");
    craft_shape(&m, 2, s23);
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, 12);
    expect_error(a, &m, "tensor 't': unknown dtype 'f16'", "unknown dtype");

    craft_head(&m, "ct.x/1", "t", 4);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 2, s23);
    rec_mp_str(&m, "codec"); rec_mp_str(&m, "lz4");
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    expect_error(a, &m, "unknown codec 'lz4'", "unknown codec");

    /* a real zstd frame with its body damaged */
    uint8_t zbuf[256];
    float zsrc[64];
    for (int i = 0; i < 64; i++) zsrc[i] = (float)(i * i % 17);
    size_t zn = ZSTD_compress(zbuf, sizeof zbuf, zsrc, sizeof zsrc, 3);
    CT_ASSERT(!ZSTD_isError(zn) && zn > 12);
    for (size_t i = 8; i < zn; i++) zbuf[i] ^= 0x5a;
    int64_t s64[1] = { 64 };
    craft_head(&m, "ct.x/1", "t", 4);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 1, s64);
    rec_mp_str(&m, "codec"); rec_mp_str(&m, "zstd");
    rec_mp_str(&m, "data"); rec_mp_bin(&m, zbuf, zn);
    expect_error(a, &m, "tensor 't': corrupt zstd frame", "corrupt zstd frame");

    /* a valid frame whose content size disagrees with the shape */
    zn = ZSTD_compress(zbuf, sizeof zbuf, zsrc, sizeof zsrc, 3);
    int64_t s32[1] = { 32 };
    craft_head(&m, "ct.x/1", "t", 4);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 1, s32);
    rec_mp_str(&m, "codec"); rec_mp_str(&m, "zstd");
    rec_mp_str(&m, "data"); rec_mp_bin(&m, zbuf, zn);
    expect_error(a, &m, "zstd payload holds 256 bytes but its shape needs 128", "zstd content size vs shape");

    craft_head(&m, "ct.x/1", "t", 2);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    expect_error(a, &m, "tensor 't': missing required key 'shape'", "tensor without shape");

    craft_head(&m, "ct.x/1", "t", 3);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    int64_t neg[2] = { 2, -3 };
    craft_shape(&m, 2, neg);
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    expect_error(a, &m, "shape[1] is not a non-negative integer", "negative dimension");

    craft_head(&m, "ct.x/1", "t", 3);
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 2, s23);
    rec_mp_str(&m, "data"); rec_mp_str(&m, "not bytes");
    expect_error(a, &m, "data must be bin, got str", "data as a string");

    rec_mp_map(&m, 1);
    rec_mp_str(&m, "id"); rec_mp_str(&m, "c9");
    expect_error(a, &m, "record 0 (id c9): missing required key 'schema'", "missing schema");

    rec_mp_map(&m, 1);
    rec_mp_str(&m, "schema"); rec_mp_str(&m, "ct.x/1");
    expect_error(a, &m, "missing required key 'id'", "missing id");

    rec_mp_map(&m, 2);
    rec_mp_str(&m, "schema"); rec_mp_str(&m, "ct.x");
    rec_mp_str(&m, "id"); rec_mp_str(&m, "c2");
    expect_error(a, &m, "malformed schema 'ct.x'", "schema without a major version");

    uint8_t nifti[4] = { 0x5c, 0x01, 0x00, 0x00 };     /* a NIfTI-1 header's first bytes */
    m.buf = ct_xmalloc(4);
    memcpy(m.buf, nifti, 4);
    m.n = m.cap = 4;
    expect_error(a, &m, "not a ctvis record (expected a msgpack map, found byte 0x5c)", "not a stream");

    /* tensors named twice */
    rec_mp_map(&m, 3);
    rec_mp_str(&m, "schema"); rec_mp_str(&m, "ct.x/1");
    rec_mp_str(&m, "id"); rec_mp_str(&m, "c3");
    rec_mp_str(&m, "tensors");
    rec_mp_map(&m, 2);
    for (int k = 0; k < 2; k++) {
        rec_mp_str(&m, "t");
        rec_mp_map(&m, 3);
        rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
        craft_shape(&m, 2, s23);
        rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    }
    expect_error(a, &m, "duplicate tensor 't'", "duplicate tensor name");
    tn_arena_free(a);
}

/* Unknown keys are ignored; data may come before dtype/shape; codec after data. */
static void test_lenient(void) {
    struct tn_arena *a = tn_arena_new(0);
    struct rec_mp m = { 0 };
    float data[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t s23[2] = { 2, 3 };
    uint8_t zbuf[128];
    size_t zn = ZSTD_compress(zbuf, sizeof zbuf, data, sizeof data, 1);
    rec_mp_map(&m, 5);
    rec_mp_str(&m, "future_key");
    rec_mp_map(&m, 1);
    rec_mp_str(&m, "deep");
    rec_mp_array(&m, 2);
    rec_mp_bin(&m, "xy", 2);
    rec_mp_f64(&m, 1.5);
    rec_mp_str(&m, "tensors");
    rec_mp_map(&m, 2);
    rec_mp_str(&m, "late_codec");
    rec_mp_map(&m, 4);
    rec_mp_str(&m, "data"); rec_mp_bin(&m, zbuf, zn);
    rec_mp_str(&m, "shape");
    rec_mp_array(&m, 2); rec_mp_i64(&m, 2); rec_mp_i64(&m, 3);
    rec_mp_str(&m, "codec"); rec_mp_str(&m, "zstd");
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    rec_mp_str(&m, "data_first");
    rec_mp_map(&m, 4);
    rec_mp_str(&m, "data"); rec_mp_bin(&m, data, sizeof data);
    rec_mp_str(&m, "extra"); rec_mp_str(&m, "ignored");
    rec_mp_str(&m, "dtype"); rec_mp_str(&m, "f32");
    craft_shape(&m, 2, s23);
    rec_mp_str(&m, "id"); rec_mp_str(&m, "late-id");
    rec_mp_str(&m, "schema"); rec_mp_str(&m, "ct.x/2.3");
    rec_mp_str(&m, "v"); rec_mp_i64(&m, 1);
    struct rec r;
    int rc = read_bytes(&m, a, &r);
    CHECK(rc == 1, "lenient: unknown keys ignored, any key order (%s)", ct_lasterr());
    if (rc == 1) {
        struct tn_tensor *x = rec_tensor(&r, "late_codec"), *y = rec_tensor(&r, "data_first");
        CHECK(x && !memcmp(x->data, data, sizeof data), "lenient: codec after data still decompresses");
        CHECK(y && !memcmp(y->data, data, sizeof data) && ((uintptr_t)y->data % 64) == 0,
              "lenient: data before dtype/shape");
        CHECK(rec_expect(&r, "ct.x", 2) == 0, "schema: minor version accepted");
        CHECK(rec_expect(&r, "ct.x", 1) == -1 &&
                  strstr(ct_lasterr(), "schema ct.x/2.3 has major version 2; this tool reads ct.x/1"),
              "schema: other major refused with a clear message");
        CHECK(rec_expect(&r, "ct.y", 2) == -1 && strstr(ct_lasterr(), "expected a ct.y/2 record, got ct.x/2.3"),
              "schema: other name refused");
    }
    rec_mp_free(&m);
    tn_arena_free(a);
}

/* A 320 MB tensor through a pipe, raw and zstd, checked element by element. */
static void test_big_pipe(enum rec_codec codec) {
    const int64_t n = 80LL << 20;                 /* 80 Mi f32 = 320 MiB */
    int fds[2];
    CT_ASSERT(pipe(fds) == 0);
    pid_t pid = fork();
    CT_ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        close(fds[1]);
        struct tn_arena *a = tn_arena_new(0);
        struct rec r;
        rec_init(&r, a, "ct.big/1", "big");
        struct tn_tensor *t = tn_new(a, TN_F32, 1, &n, "x");
        float *v = t->data;
        for (int64_t i = 0; i < n; i++) v[i] = (float)(i % 1000003);
        rec_add_tensor(&r, t);
        struct rec_wopts o = { codec, 1, 0 };
        struct rec_writer *w = rec_writer_open("-", &o);
        int rc = !w || rec_write(w, &r) != 0 || rec_writer_close(w) != 0;
        _exit(rc);
    }
    close(fds[1]);
    int saved = dup(0);
    dup2(fds[0], 0);
    close(fds[0]);
    struct tn_arena *a = tn_arena_new(0);
    struct rec_reader *rd = rec_reader_open("-");
    struct rec r;
    int rc = rec_read(rd, a, &r);
    int good = rc == 1 && r.n_tensors == 1 && r.tensors[0]->shape[0] == n;
    if (good) {
        const float *v = r.tensors[0]->data;
        for (int64_t i = 0; i < n && good; i++) {
            good = v[i] == (float)(i % 1000003);
            if (!good) printf("# element %lld is %g, expected %g\n", (long long)i, v[i], (float)(i % 1000003));
        }
    }
    if (rc != 1) printf("# big pipe: %s\n", ct_lasterr());
    int rc2 = rec_read(rd, a, &r);
    rec_reader_close(rd);
    tn_arena_free(a);
    dup2(saved, 0);
    close(saved);
    int status;
    waitpid(pid, &status, 0);
    CHECK(good && rc2 == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: 320 MiB tensor through a pipe",
          codec == REC_ZSTD ? "zstd" : "raw");
}

static void test_write_errors(void) {
    struct tn_arena *a = tn_arena_new(0);
    struct rec r = build_record(a);
    int saved = dup(1);
    FILE *full = fopen("/dev/full", "w");
    if (!full) {
        printf("skip write: /dev/full: not available\n");
        return;
    }
    dup2(fileno(full), 1);
    struct rec_writer *w = rec_writer_open("-", NULL);
    int rc = w ? rec_write(w, &r) : -1;
    if (rc == 0) rc = rec_writer_close(w);
    else rec_writer_abort(w);
    dup2(saved, 1);
    close(saved);
    fclose(full);
    CHECK(rc == -1 && strstr(ct_lasterr(), "No space left on device"), "write: full disk reported (%s)", ct_lasterr());

    /* a file output that fails leaves nothing behind */
    w = rec_writer_open(tmp("gone.ctv"), NULL);
    rec_write(w, &r);
    rec_writer_abort(w);
    CHECK(access(tmp("gone.ctv"), F_OK) != 0, "write: aborted file output leaves no file");
    CHECK(rec_writer_open("/nonexistent-dir/x.ctv", NULL) == NULL && strstr(ct_lasterr(), "cannot create"),
          "write: unwritable path refused");
    tn_arena_free(a);
}

/* issue 15 item 13: the one escaper: JSON always valid UTF-8, terminal text inert */
static void test_escaper(void) {
    struct csv_buf b = { 0 };
    static const struct { const char *in; size_t n; const char *json, *term; } c[] = {
        { "a\"b\\c", 5, "\"a\\\"b\\\\c\"", "a\"b\\\\c" },
        { "\x1b[2J\x07\x7f", 6, "\"\\u001b[2J\\u0007\\u007f\"", "\\x1b[2J\\x07\\x7f" },
        { "\xc2\x9b" "31m", 5, "\"\\u009b31m\"", "\\xc2\\x9b31m" },                    /* C1 CSI */
        { "\xc3\xa9\xe2\x82\xac", 5, "\"\xc3\xa9\xe2\x82\xac\"", "\xc3\xa9\xe2\x82\xac" },  /* UTF-8 as is */
        { "a\xff\xfe" "b", 4, "\"a\\ufffd\\ufffdb\"", "a\\xff\\xfeb" },              /* invalid bytes */
        { "x\xe2\x82", 3, "\"x\\ufffd\\ufffd\"", "x\\xe2\\x82" },                 /* cut sequence */
        { "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"", "\\xed\\xa0\\x80" },  /* surrogate */
        { "n\0l\n", 4, "\"n\\u0000l\\n\"", "n\\x00l\\n" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        b.n = 0;
        csv_put_json_str(&b, c[i].in, c[i].n);
        CHECK(b.n == strlen(c[i].json) && !memcmp(b.p, c[i].json, b.n) && csv_utf8_check(b.p, b.n) == b.n,
              "escaper: JSON case %zu", i);
        b.n = 0;
        csv_put_term_str(&b, c[i].in, c[i].n);
        CHECK(b.n == strlen(c[i].term) && !memcmp(b.p, c[i].term, b.n), "escaper: terminal case %zu", i);
    }
    b.n = 0;
    csv_put_json_str(&b, NULL, 0);                  /* msgpack's empty string has no pointer (fuzz-stream) */
    CHECK(b.n == 2 && !memcmp(b.p, "\"\"", 2), "escaper: an empty string without a pointer");
    csv_buf_free(&b);
}

int main(int argc, char **argv) {
    (void)argc;
    ct_init(argv[0]);
    CT_ASSERT(mkdtemp(tmpdir));
    test_roundtrip(REC_RAW);
    test_roundtrip(REC_ZSTD);
    test_truncation();
    test_errors();
    test_lenient();
    test_write_errors();
    test_big_pipe(REC_RAW);
    test_big_pipe(REC_ZSTD);
    test_escaper();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
    return check_failures != 0;
}
