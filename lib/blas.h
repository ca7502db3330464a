/*
 * blas.h - which OpenBLAS kernels the tools run with: the one owner of the BLAS set-up.
 *
 * A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels ("core") once, when the library is loaded,
 * before main(): from OPENBLAS_CORETYPE when set, else from the CPU's model number.  A CPU model
 * newer than the library gets a fallback: Debian 12's OpenBLAS 0.3.21 runs Prescott (SSE3) kernels
 * on an Intel Xeon of family 6 model 207 that has AVX-512, 5x slower than its SkylakeX kernels.
 * ct_blas_init() compares the core in use with the CPU's features (CPUID, not model numbers) and,
 * when the core is weaker, runs the program once more with OPENBLAS_CORETYPE set:
 *
 *     int main(int argc, char **argv) {
 *         ct_init(argv[0]);
 *         ct_blas_init(argv);        // first thing: may replace the process (execv, same argv)
 *         ... parse options ...
 *         ct_log(1, "BLAS: %s", ct_blas_describe());
 *
 * Rules: an OPENBLAS_CORETYPE already in the environment is never changed (the user's choice, or
 * the one a parent ctvis tool made); the re-exec happens at most once (the variable is then set);
 * nothing happens for a BLAS that is not a DYNAMIC_ARCH OpenBLAS, for a core name this file does
 * not know, or under valgrind (whose emulated CPU differs).  If execv fails the program goes on
 * with the library's own kernels (ct_blas_describe says so).  Only tools that call the BLAS call
 * ct_blas_init; it must run before the tool reads input, starts threads or creates files.
 * Docs: docs/encode.md ("BLAS kernels").
 */
#ifndef CT_BLAS_H
#define CT_BLAS_H

/* Instruction-set levels of CPUs and of OpenBLAS cores. */
enum ct_isa {
    CT_ISA_SSE    = 1,               /* Prescott, Core2, Nehalem, Barcelona, ... */
    CT_ISA_AVX    = 2,               /* Sandybridge, Bulldozer .. Excavator */
    CT_ISA_AVX2   = 3,               /* AVX2 + FMA: Haswell, Zen */
    CT_ISA_AVX512 = 4,               /* AVX-512 F/BW/DQ/VL: SkylakeX, Cooperlake, SapphireRapids */
};

/* Check the kernels and re-exec /proc/self/exe with OPENBLAS_CORETYPE set if they are weaker
 * than the CPU (see above).  argv: main's, NULL-terminated.  Returns only when no re-exec was
 * done (or it failed). */
void ct_blas_init(char **argv);

/* One line for -v: the core in use, its level, and why ("chosen by ctvis ...", "set by the user",
 * "OpenBLAS's own choice ...").  Valid after ct_blas_init; never NULL. */
const char *ct_blas_describe(void);

/* The pieces, for tests and benchmarks. */
enum ct_isa ct_blas_cpu_isa(void);                 /* what this CPU (and OS) can run */
int         ct_blas_core_isa(const char *core);    /* level of an OpenBLAS core name, -1 unknown */
const char *ct_blas_core_for(enum ct_isa isa);     /* the core to ask for at that level, NULL for SSE */
/* The core to switch to: ct_blas_core_for(cpu) when core (OpenBLAS's choice) is known and weaker
 * than cpu, else NULL. */
const char *ct_blas_upgrade(const char *core, enum ct_isa cpu);
const char *ct_blas_isa_name(int isa);             /* "AVX-512", "AVX2", ..., "?" */

#endif
