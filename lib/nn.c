/*
 * nn.c - what the ops of nn.h share at run time: OpenBLAS's thread count, the worker threads,
 * the scratch-buffer pool and the tuning (nn-impl.h, nn.h).  The ops: nn-conv.c (convolutions,
 * the fused stem), nn-winograd.c (Winograd convs), nn-pool.c (max-pooling), nn-linear.c
 * (projections at tokens, BN folding).  BLAS kernels: blas.c.
 */
#include "nn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "nn-impl.h"

/* OpenBLAS extension (declared by its cblas.h too, repeated here for other BLAS headers) */
void openblas_set_num_threads(int num_threads);

/* the tuning of the conv paths (nn_tuning_set in nn.h); zeros = the measured defaults */
static struct nn_tuning tuning;

void nn_tuning_set(const struct nn_tuning *t) {
    static const struct nn_tuning defaults;
    tuning = t ? *t : defaults;
}

const struct nn_tuning *nn_tuning_get(void) { return &tuning; }

/* see nn-impl.h */
void nn_blas_threads(int n) {
    static int cur = -1;
    if (n != cur) {
        openblas_set_num_threads(n);
        cur = n;
    }
}

/* see nn-impl.h */
void nn_parallel_for(int n_threads, int64_t n_items, nn_work_fn fn, void *ctx) {
    nn_blas_threads(1);                        /* each worker calls a single-threaded sgemm */
    ct_parallel_for(n_threads, n_items, fn, ctx);
}

/* Scratch buffers (column buffers, planes) are kept in a small pool between calls: a fresh
 * multi-MB allocation per conv would be page-faulted in again every time. */
#define POOL_SLOTS 16
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { float *p; size_t n; } pool_free[POOL_SLOTS];

float *nn_scratch_get(size_t nfloats) {
    float *p = NULL;
    pthread_mutex_lock(&pool_mu);
    int best = -1;
    for (int i = 0; i < POOL_SLOTS; i++)
        if (pool_free[i].p && pool_free[i].n >= nfloats && (best < 0 || pool_free[i].n < pool_free[best].n)) best = i;
    if (best >= 0) {
        p = pool_free[best].p;
        pool_free[best].p = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (!p) {
        /* the size is recorded in the 16 floats (64 bytes) in front of the buffer */
        float *base = ct_xaligned((16 + nfloats) * sizeof(float));
        memcpy(base, &nfloats, sizeof nfloats);
        p = base + 16;
    }
    return p;
}

void nn_scratch_put(float *p) {
    if (!p) return;
    size_t n;
    memcpy(&n, p - 16, sizeof n);
    pthread_mutex_lock(&pool_mu);
    int slot = -1;
    for (int i = 0; i < POOL_SLOTS && slot < 0; i++)
        if (!pool_free[i].p) slot = i;
    if (slot < 0) {   /* full: drop the smallest */
        slot = 0;
        for (int i = 1; i < POOL_SLOTS; i++)
            if (pool_free[i].n < pool_free[slot].n) slot = i;
        free(pool_free[slot].p - 16);
    }
    pool_free[slot].p = p;
    pool_free[slot].n = n;
    pthread_mutex_unlock(&pool_mu);
}

void nn_scratch_release(void) {
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (pool_free[i].p) free(pool_free[i].p - 16);
        pool_free[i].p = NULL;
        pool_free[i].n = 0;
    }
    pthread_mutex_unlock(&pool_mu);
}

float **nn_scratch_get_n(int n, size_t nfloats) {
    float **c = ct_xcalloc((size_t)n, sizeof *c);
    for (int t = 0; t < n; t++) c[t] = nn_scratch_get(nfloats);
    return c;
}

void nn_scratch_put_n(float **c, int n) {
    if (!c) return;
    for (int t = 0; t < n; t++) nn_scratch_put(c[t]);
    free(c);
}
