/*
 * tensor.c - dtypes, contiguous tensors, the record arena and statistics.
 */
#define _DEFAULT_SOURCE
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ct.h"

static const struct {
    const char *name;
    size_t      size;
    int         is_float;
} dtypes[TN_DTYPE_COUNT] = {
    [TN_U8] = { "u8", 1, 0 },   [TN_I8] = { "i8", 1, 0 },   [TN_U16] = { "u16", 2, 0 },
    [TN_I16] = { "i16", 2, 0 }, [TN_U32] = { "u32", 4, 0 }, [TN_I32] = { "i32", 4, 0 },
    [TN_U64] = { "u64", 8, 0 }, [TN_I64] = { "i64", 8, 0 }, [TN_F32] = { "f32", 4, 1 },
    [TN_F64] = { "f64", 8, 1 },
};

const char *tn_dtype_name(enum tn_dtype t) {
    return (unsigned)t < TN_DTYPE_COUNT ? dtypes[t].name : "?";
}

int tn_dtype_from_name(const char *s, enum tn_dtype *out) {
    for (int i = 0; i < TN_DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *out = (enum tn_dtype)i;
            return 0;
        }
    return -1;
}

size_t tn_dtype_size(enum tn_dtype t) {
    CT_ASSERT((unsigned)t < TN_DTYPE_COUNT);
    return dtypes[t].size;
}

int tn_dtype_is_float(enum tn_dtype t) { return (unsigned)t < TN_DTYPE_COUNT && dtypes[t].is_float; }

int64_t tn_shape_numel(int ndim, const int64_t *shape) {
    const int64_t max = (int64_t)1 << TN_MAX_NUMEL_LOG2;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] && n > max / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t tn_numel(const struct tn_tensor *t) { return tn_shape_numel(t->ndim, t->shape); }

size_t tn_nbytes(const struct tn_tensor *t) { return (size_t)tn_numel(t) * tn_dtype_size(t->dtype); }

void tn_set_contiguous(struct tn_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

char *tn_shape_str(const struct tn_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

double tn_get(const struct tn_tensor *t, int64_t i) {
    switch (t->dtype) {
    case TN_U8: return ((const uint8_t *)t->data)[i];
    case TN_I8: return ((const int8_t *)t->data)[i];
    case TN_U16: return ((const uint16_t *)t->data)[i];
    case TN_I16: return ((const int16_t *)t->data)[i];
    case TN_U32: return ((const uint32_t *)t->data)[i];
    case TN_I32: return ((const int32_t *)t->data)[i];
    case TN_U64: return (double)((const uint64_t *)t->data)[i];
    case TN_I64: return (double)((const int64_t *)t->data)[i];
    case TN_F32: return ((const float *)t->data)[i];
    case TN_F64: return ((const double *)t->data)[i];
    default: CT_ASSERT(0 && "bad dtype");
    }
    return 0;
}

/* ---- arena ----
 * Regular blocks are carved linearly; a request bigger than a block gets its
 * own "big" allocation.  reset() frees all but the first regular block. */

struct arena_block {
    struct arena_block *next;
    size_t              size, used;
    char               *mem;         /* 64-byte aligned */
};

struct tn_arena {
    size_t              block_nbytes;
    struct arena_block *blocks;      /* newest first; the last one is kept on reset */
    struct arena_block *big;         /* oversized allocations */
    size_t              used;
};

static struct arena_block *block_new(size_t size) {
    struct arena_block *b = ct_xmalloc(sizeof *b);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    if (size >= ((size_t)8 << 20)) {
        /* big tensors: 2 MiB-aligned so transparent huge pages can back them
         * (512x fewer page faults when a record's payload is read into it) */
        void *p = NULL;
        size_t n = (size + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
        if (posix_memalign(&p, (size_t)2 << 20, n) != 0 || !p) ct_oom(size);
        madvise(p, n, MADV_HUGEPAGE);
        b->mem = p;
    } else {
        b->mem = ct_xaligned(size);
    }
    return b;
}

struct tn_arena *tn_arena_new(size_t block_nbytes) {
    struct tn_arena *a = ct_xcalloc(1, sizeof *a);
    a->block_nbytes = block_nbytes ? block_nbytes : (size_t)4 << 20;
    a->blocks = block_new(a->block_nbytes);
    return a;
}

void *tn_arena_alloc(struct tn_arena *a, size_t nbytes) {
    size_t n = (nbytes + 63) & ~(size_t)63;
    CT_ASSERT(n >= nbytes);
    a->used += n;
#if defined(__SANITIZE_ADDRESS__)
    /* make asan: every allocation its own, exactly sized block, so that AddressSanitizer
     * sees an overrun past any tensor (inside a shared block it could not) */
    {
        struct arena_block *b = ct_xmalloc(sizeof *b);
        void *p = NULL;
        if (posix_memalign(&p, 64, nbytes ? nbytes : 1) != 0 || !p) ct_oom(nbytes);
        b->mem = p;
        b->size = b->used = nbytes;
        b->next = a->big;
        a->big = b;
        return p;
    }
#endif
    if (n > a->block_nbytes / 4) {           /* big: its own allocation */
        struct arena_block *b = block_new(n ? n : 64);
        b->used = n;
        b->next = a->big;
        a->big = b;
        return b->mem;
    }
    struct arena_block *b = a->blocks;
    if (b->size - b->used < n) {
        b = block_new(a->block_nbytes);
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = b->mem + b->used;
    b->used += n;
    return p;
}

char *tn_arena_strdup(struct tn_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = tn_arena_alloc(a, n);
    memcpy(d, s, n);
    return d;
}

char *tn_arena_strndup(struct tn_arena *a, const char *s, size_t n) {
    char *d = tn_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void blocks_free(struct arena_block *b, struct arena_block *stop) {
    while (b && b != stop) {
        struct arena_block *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
}

void tn_arena_reset(struct tn_arena *a) {
    if (!a) return;
    blocks_free(a->big, NULL);
    a->big = NULL;
    struct arena_block *last = a->blocks;
    while (last->next) last = last->next;
    blocks_free(a->blocks, last);
    a->blocks = last;
    last->used = 0;
    a->used = 0;
}

void tn_arena_free(struct tn_arena *a) {
    if (!a) return;
    blocks_free(a->big, NULL);
    blocks_free(a->blocks, NULL);
    free(a);
}

size_t tn_arena_used(const struct tn_arena *a) { return a->used; }

struct tn_tensor *tn_view(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape, void *data,
                          const char *name) {
    CT_ASSERT(ndim >= 0 && ndim <= TN_MAX_DIMS);
    CT_ASSERT((unsigned)dtype < TN_DTYPE_COUNT);
    struct tn_tensor *t = tn_arena_alloc(a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    tn_set_contiguous(t);
    CT_ASSERT(tn_numel(t) >= 0);
    t->data = data;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    return t;
}

struct tn_tensor *tn_new(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape,
                         const char *name) {
    struct tn_tensor *t = tn_view(a, dtype, ndim, shape, NULL, name);
    t->data = tn_arena_alloc(a, (size_t)tn_numel(t) * tn_dtype_size(dtype));
    return t;
}

struct tn_tensor *tn_zeros(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape,
                           const char *name) {
    struct tn_tensor *t = tn_new(a, dtype, ndim, shape, name);
    memset(t->data, 0, tn_nbytes(t));
    return t;
}

/* Typed conversion loop: dst[i] = (DT)src[i] for every source type. */
#define CONVERT_TO(DT)                                                                             \
    do {                                                                                           \
        DT *d = out->data;                                                                         \
        switch (t->dtype) {                                                                        \
        case TN_U8: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const uint8_t *)t->data)[i]; break; \
        case TN_I8: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const int8_t *)t->data)[i]; break; \
        case TN_U16: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const uint16_t *)t->data)[i]; break; \
        case TN_I16: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const int16_t *)t->data)[i]; break; \
        case TN_U32: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const uint32_t *)t->data)[i]; break; \
        case TN_I32: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const int32_t *)t->data)[i]; break; \
        case TN_U64: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const uint64_t *)t->data)[i]; break; \
        case TN_I64: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const int64_t *)t->data)[i]; break; \
        case TN_F32: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const float *)t->data)[i]; break; \
        case TN_F64: for (int64_t i = 0; i < n; i++) d[i] = (DT)((const double *)t->data)[i]; break; \
        default: CT_ASSERT(0 && "bad dtype");                                                      \
        }                                                                                          \
    } while (0)

struct tn_tensor *tn_convert(struct tn_arena *a, const struct tn_tensor *t, enum tn_dtype dtype) {
    struct tn_tensor *out = tn_new(a, dtype, t->ndim, t->shape, t->name);
    int64_t n = tn_numel(t);
    if (dtype == t->dtype) {
        memcpy(out->data, t->data, tn_nbytes(t));
        return out;
    }
    switch (dtype) {
    case TN_U8: CONVERT_TO(uint8_t); break;
    case TN_I8: CONVERT_TO(int8_t); break;
    case TN_U16: CONVERT_TO(uint16_t); break;
    case TN_I16: CONVERT_TO(int16_t); break;
    case TN_U32: CONVERT_TO(uint32_t); break;
    case TN_I32: CONVERT_TO(int32_t); break;
    case TN_U64: CONVERT_TO(uint64_t); break;
    case TN_I64: CONVERT_TO(int64_t); break;
    case TN_F32: CONVERT_TO(float); break;
    case TN_F64: CONVERT_TO(double); break;
    default: CT_ASSERT(0 && "bad dtype");
    }
    return out;
}

/* Integer types: one typed pass, no NaN/Inf. */
#define STATS_INT(T)                                                                               \
    do {                                                                                           \
        const T *v = t->data;                                                                      \
        T lo = v[0], hi = v[0];                                                                    \
        double sum = 0;                                                                            \
        for (int64_t i = 0; i < n; i++) {                                                          \
            if (v[i] < lo) lo = v[i];                                                              \
            if (v[i] > hi) hi = v[i];                                                              \
            sum += (double)v[i];                                                                   \
        }                                                                                          \
        s->min = (double)lo;                                                                       \
        s->max = (double)hi;                                                                       \
        s->mean = sum / (double)n;                                                                 \
        s->n_finite = n;                                                                           \
    } while (0)

#define STATS_FLOAT(T)                                                                             \
    do {                                                                                           \
        const T *v = t->data;                                                                      \
        double lo = INFINITY, hi = -INFINITY, sum = 0;                                             \
        int64_t nf = 0, nn = 0, ni = 0;                                                            \
        for (int64_t i = 0; i < n; i++) {                                                          \
            double x = (double)v[i];                                                               \
            if (isnan(x)) { nn++; continue; }                                                      \
            if (isinf(x)) { ni++; continue; }                                                      \
            if (x < lo) lo = x;                                                                    \
            if (x > hi) hi = x;                                                                    \
            sum += x;                                                                              \
            nf++;                                                                                  \
        }                                                                                          \
        s->n_finite = nf;                                                                          \
        s->n_nan = nn;                                                                             \
        s->n_inf = ni;                                                                             \
        if (nf) { s->min = lo; s->max = hi; s->mean = sum / (double)nf; }                          \
    } while (0)

void tn_stats_compute(const struct tn_tensor *t, struct tn_stats *s) {
    int64_t n = tn_numel(t);
    s->min = s->max = s->mean = NAN;
    s->n_finite = s->n_nan = s->n_inf = 0;
    if (n <= 0) return;
    switch (t->dtype) {
    case TN_U8: STATS_INT(uint8_t); break;
    case TN_I8: STATS_INT(int8_t); break;
    case TN_U16: STATS_INT(uint16_t); break;
    case TN_I16: STATS_INT(int16_t); break;
    case TN_U32: STATS_INT(uint32_t); break;
    case TN_I32: STATS_INT(int32_t); break;
    case TN_U64: STATS_INT(uint64_t); break;
    case TN_I64: STATS_INT(int64_t); break;
    case TN_F32: STATS_FLOAT(float); break;
    case TN_F64: STATS_FLOAT(double); break;
    default: CT_ASSERT(0 && "bad dtype");
    }
}
