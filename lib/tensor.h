/*
 * tensor.h - the tensor struct every ctvis stage passes around, its dtypes,
 * and the per-record arena the tensors live in.
 *
 * Shapes are C order, slowest axis first, everywhere (memory, stream records,
 * Python): a CT volume is [D, H, W] = [z, y, x], the same bytes as a NIfTI file
 * ((x, y, z) in Fortran order).  This is numpy's order, not ggml's ne[] order.
 *
 *     struct tn_arena *a = tn_arena_new(0);
 *     int64_t shape[3] = { 112, 256, 352 };
 *     struct tn_tensor *img = tn_new(a, TN_F32, 3, shape, "image");
 *     float *v = img->data;                       // 64-byte aligned, uninitialised
 *     ...
 *     tn_arena_reset(a);                          // every tensor of the record is gone
 *     tn_arena_free(a);
 */
#ifndef TN_TENSOR_H
#define TN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* Element types.  Append only: the names are serialised in streams. */
enum tn_dtype {
    TN_U8, TN_I8, TN_U16, TN_I16, TN_U32, TN_I32, TN_U64, TN_I64, TN_F32, TN_F64,
    TN_DTYPE_COUNT
};

#define TN_MAX_DIMS 8
/* Largest element count (2^56): numel x itemsize never overflows a size_t. */
#define TN_MAX_NUMEL_LOG2 56
#define TN_NAME_MAX 128

struct tn_tensor {
    enum tn_dtype dtype;            /* element type */
    int           ndim;             /* 0..TN_MAX_DIMS (0 = scalar) */
    int64_t       shape[TN_MAX_DIMS];  /* C order, slowest first */
    int64_t       stride[TN_MAX_DIMS]; /* in elements; contiguous C strides for every tensor in ctvis */
    void         *data;             /* 64-byte aligned when allocated by tn_new() */
    char          name[TN_NAME_MAX];   /* "image", "mask", "tokens/s1" ... */
};

/* dtype helpers; names are the stream spelling: "u8" "i16" "f32" ... */
const char   *tn_dtype_name(enum tn_dtype t);
int           tn_dtype_from_name(const char *s, enum tn_dtype *out); /* 0 ok, -1 unknown */
size_t        tn_dtype_size(enum tn_dtype t);
int           tn_dtype_is_float(enum tn_dtype t);

int64_t tn_numel(const struct tn_tensor *t);
size_t  tn_nbytes(const struct tn_tensor *t);
/* numel of a shape, or -1 for a negative dimension or more than 2^TN_MAX_NUMEL_LOG2 elements */
int64_t tn_shape_numel(int ndim, const int64_t *shape);
void    tn_set_contiguous(struct tn_tensor *t);   /* fill stride[] from shape[] */
/* "[112,256,352]" into buf */
char   *tn_shape_str(const struct tn_tensor *t, char *buf, size_t n);

/* Element i (flat, C order) as double, whatever the dtype. */
double tn_get(const struct tn_tensor *t, int64_t i);

/* ---- arena: all tensors of one record ---- */
struct tn_arena;
/* block_nbytes: size of the regular blocks (0 = 4 MiB).  Requests larger than a
 * block get their own allocation.  Never returns NULL. */
struct tn_arena *tn_arena_new(size_t block_nbytes);
/* 64-byte aligned, uninitialised memory that lives until reset/free. */
void *tn_arena_alloc(struct tn_arena *a, size_t nbytes);
char *tn_arena_strdup(struct tn_arena *a, const char *s);
/* The n bytes at s (which may hold no NUL) and a NUL. */
char *tn_arena_strndup(struct tn_arena *a, const char *s, size_t n);
/* Releases everything allocated since creation (keeps the first block). */
void  tn_arena_reset(struct tn_arena *a);
void  tn_arena_free(struct tn_arena *a);
size_t tn_arena_used(const struct tn_arena *a); /* bytes handed out since reset */

/* A new contiguous tensor with uninitialised data from the arena. */
struct tn_tensor *tn_new(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape,
                         const char *name);
/* A contiguous tensor over memory the arena does not own (a scratch or mapped
 * buffer, another tensor's data): only the struct is in the arena; data must
 * outlive every use of the view (a record written with it, for one). */
struct tn_tensor *tn_view(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape, void *data,
                          const char *name);
/* Same, data zero-filled. */
struct tn_tensor *tn_zeros(struct tn_arena *a, enum tn_dtype dtype, int ndim, const int64_t *shape,
                           const char *name);
/* A copy of t converted to dtype (values cast as C casts them; float->int truncates). */
struct tn_tensor *tn_convert(struct tn_arena *a, const struct tn_tensor *t, enum tn_dtype dtype);

/* ---- statistics (for inspection and tests) ---- */
struct tn_stats {
    double  min, max, mean;         /* over finite values; NaN when there are none */
    int64_t n_finite, n_nan, n_inf;
};
void tn_stats_compute(const struct tn_tensor *t, struct tn_stats *s);

#endif
