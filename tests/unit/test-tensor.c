/* test-tensor.c - dtypes, arena alignment and reuse, conversion, statistics. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "ct.h"
#include "tensor.h"

int main(void) {
    struct tn_arena *a = tn_arena_new(1 << 16);
    enum tn_dtype t;
    CHECK(tn_dtype_from_name("i16", &t) == 0 && t == TN_I16 && tn_dtype_size(t) == 2, "dtype: name round trip");
    CHECK(tn_dtype_from_name("f16", &t) != 0, "dtype: unknown name refused");
    for (int i = 0; i < TN_DTYPE_COUNT; i++) {
        enum tn_dtype u;
        CHECK(tn_dtype_from_name(tn_dtype_name((enum tn_dtype)i), &u) == 0 && u == (enum tn_dtype)i,
              "dtype: %s maps back", tn_dtype_name((enum tn_dtype)i));
    }

    {
        uint8_t buf[2 * 3 * 4];
        for (int i = 0; i < 24; i++) buf[i] = (uint8_t)i;
        const int64_t sh[3] = { 2, 3, 4 };
        struct tn_tensor *v = tn_view(a, TN_U8, 3, sh, buf, "mask");
        CHECK(v->data == buf && v->ndim == 3 && v->shape[2] == 4 && v->stride[0] == 12 && v->stride[1] == 4 &&
                  v->stride[2] == 1 && tn_numel(v) == 24 && tn_get(v, 23) == 23 && !strcmp(v->name, "mask"),
              "view: borrows the caller's memory, C strides, element access");
    }

    int aligned = 1;
    for (int i = 0; i < 1000; i++) {
        void *p = tn_arena_alloc(a, (size_t)(i * 7 + 1));
        aligned &= ((uintptr_t)p % 64) == 0;
    }
    void *big = tn_arena_alloc(a, 1 << 20);     /* larger than a block: own allocation */
    aligned &= ((uintptr_t)big % 64) == 0;
    CHECK(aligned, "arena: every allocation 64-byte aligned");
    memset(big, 1, 1 << 20);
    tn_arena_reset(a);
    CHECK(tn_arena_used(a) == 0, "arena: reset returns everything");

    int64_t shape[3] = { 2, 3, 4 };
    struct tn_tensor *x = tn_new(a, TN_F32, 3, shape, "x");
    CHECK(tn_numel(x) == 24 && tn_nbytes(x) == 96 && x->stride[0] == 12 && x->stride[1] == 4 && x->stride[2] == 1,
          "tensor: contiguous C strides");
    float *v = x->data;
    for (int i = 0; i < 24; i++) v[i] = (float)i - 10.5f;
    v[3] = NAN;
    v[4] = INFINITY;
    v[5] = -INFINITY;
    struct tn_stats s;
    tn_stats_compute(x, &s);
    double sum = 0;
    for (int i = 0; i < 24; i++)
        if (i < 3 || i > 5) sum += i - 10.5;
    CHECK(s.n_nan == 1 && s.n_inf == 2 && s.n_finite == 21, "stats: NaN and Inf counted apart");
    CHECK(s.min == -10.5 && s.max == 12.5 && fabs(s.mean - sum / 21) < 1e-12, "stats: min/max/mean over finite values");

    struct tn_tensor *c = tn_convert(a, x, TN_I32);
    CHECK(((int32_t *)c->data)[0] == -10 && ((int32_t *)c->data)[23] == 12, "convert: f32 -> i32 truncates like C");
    int64_t one[1] = { 3 };
    struct tn_tensor *u8 = tn_new(a, TN_U8, 1, one, "u");
    ((uint8_t *)u8->data)[0] = 255;
    ((uint8_t *)u8->data)[1] = 0;
    ((uint8_t *)u8->data)[2] = 7;
    struct tn_tensor *f = tn_convert(a, u8, TN_F64);
    CHECK(((double *)f->data)[0] == 255 && tn_get(f, 2) == 7, "convert: u8 -> f64");
    tn_stats_compute(u8, &s);
    CHECK(s.min == 0 && s.max == 255 && s.mean == 262.0 / 3, "stats: integer tensor");
    int64_t empty[2] = { 0, 5 };
    struct tn_tensor *e = tn_new(a, TN_F32, 2, empty, "e");
    tn_stats_compute(e, &s);
    CHECK(tn_numel(e) == 0 && isnan(s.min) && s.n_finite == 0, "stats: empty tensor");
    int64_t huge[3] = { INT64_MAX / 2, 4, 1 };
    CHECK(tn_shape_numel(3, huge) < 0, "shape: overflow detected");
    tn_arena_free(a);
    return check_failures != 0;
}
