/*
 * sgemm-peak - OpenBLAS sgemm throughput on this machine, the ceiling bench/encode.sh compares
 * the encoder with.  Best of 5 runs of C[n,n] = A[n,n] B[n,n], and of the encoder's GEMM shapes.
 * It picks its kernels as the tools do (ct_blas_init, lib/blas.c); OPENBLAS_CORETYPE=X measures
 * core X instead (bench/encode.sh CORES="..." compares candidates that way).
 *
 *   cc -O2 -Ilib bench/sgemm-peak.c lib/blas.c $(pkg-config --cflags --libs openblas) -o sgemm-peak
 *   ./sgemm-peak 1
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blas.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double gflops(int M, int N, int K) {
    float *A = aligned_alloc(64, (size_t)M * K * 4), *B = aligned_alloc(64, (size_t)K * N * 4),
          *C = aligned_alloc(64, (size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C, N);
        t = now() - t;
        if (t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return 2.0 * M * N * K / best * 1e-9;
}

int main(int argc, char **argv) {
    ct_blas_init(argv);
    int th = argc > 1 ? atoi(argv[1]) : 1;
    openblas_set_num_threads(th);
    printf("openblas core %s, %d thread%s  (%s)\n", openblas_get_corename(), th, th > 1 ? "s" : "",
           ct_blas_describe());
    printf("sgemm 4096^3                      %6.1f GFLOP/s  (peak)\n", gflops(4096, 4096, 4096));
    printf("sgemm 64 x 2112 x 343   (conv1)   %6.1f GFLOP/s\n", gflops(64, 2112, 343));
    printf("sgemm 64 x 1056 x 1728  (layer1)  %6.1f GFLOP/s\n", gflops(64, 1056, 1728));
    printf("sgemm 128 x 528 x 3456  (layer2)  %6.1f GFLOP/s\n", gflops(128, 528, 3456));
    return 0;
}
