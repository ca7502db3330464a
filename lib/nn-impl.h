/*
 * nn-impl.h - internals shared by the nn*.c files and the other BLAS users of lib/ (transformer.c):
 * the worker threads, OpenBLAS's thread count, the scratch-buffer pool and the tuning, all
 * process-wide (lib/nn.c).  Not a public interface; tools include nn.h and the model headers.
 */
#ifndef CT_NN_IMPL_H
#define CT_NN_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Run fn(ctx, item, tid) for item in [0, n_items) on up to n_threads pthreads (tid < n_threads,
 * the calling thread is tid 0); items are handed out in order.  OpenBLAS is set to one thread:
 * each worker calls a single-threaded sgemm. */
typedef void (*nn_work_fn)(void *ctx, int64_t item, int tid);   /* = ct_work_fn (ct_parallel_for) */
void nn_parallel_for(int n_threads, int64_t n_items, nn_work_fn fn, void *ctx);

/* OpenBLAS's thread count for the next sgemm calls (process-wide; set only when it changes). */
void nn_blas_threads(int n);

/* Scratch buffers kept in a small pool between calls (a fresh multi-MB allocation per conv would
 * be page-faulted in again every time): at least nfloats floats, 64-byte aligned, uninitialised. */
float *nn_scratch_get(size_t nfloats);
void   nn_scratch_put(float *p);                 /* NULL-safe */

/* n scratch buffers of nfloats each (one per thread), and their release */
float **nn_scratch_get_n(int n, size_t nfloats);
void    nn_scratch_put_n(float **c, int n);      /* NULL-safe */

/* the tuning set by nn_tuning_set (never NULL; zero fields = defaults) */
const struct nn_tuning *nn_tuning_get(void);

/* Tests only: cap the instruction set of the Winograd data kernels at level (3 = AVX2, 1 = the
 * build's baseline; 0 = the best the CPU runs, the default).  Not thread-safe: call between convs. */
void nn_wino_force_isa(int level);

#endif
