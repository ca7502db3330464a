/*
 * blas.c - OpenBLAS kernel selection by CPU features (see blas.h for the why and the rules).
 *
 * Mechanism: OpenBLAS reads OPENBLAS_CORETYPE in its load-time constructor, so setting it inside
 * main() is too late for this process; and loading the library by hand (dlopen after setenv)
 * would take every cblas_* call of lib/ through function pointers.  Instead the process replaces
 * itself once: setenv OPENBLAS_CORETYPE, then execv("/proc/self/exe", argv).  Same pid, same
 * arguments, same open files (stdin/stdout of a pipeline are untouched: nothing has been read or
 * written yet), about 1 ms.  CT_BLAS_AUTO records what was done ("SkylakeX Prescott": the core
 * set, the one OpenBLAS had picked) so that the second run can tell -v why; it is also what tells
 * a core chosen here from one the user set.
 */
#include "blas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* OpenBLAS extensions (declared by its cblas.h too, repeated here for other BLAS headers) */
char *openblas_get_corename(void);
char *openblas_get_config(void);

#define ENV_CORE "OPENBLAS_CORETYPE"
#define ENV_AUTO "CT_BLAS_AUTO"

static char describe_buf[512] = "BLAS not set up (ct_blas_init not called)";

enum ct_isa ct_blas_cpu_isa(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* libgcc's checks include the OS's support (XCR0) for the AVX and AVX-512 register state */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return CT_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CT_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return CT_ISA_AVX;
#endif
    return CT_ISA_SSE;
}

/* OpenBLAS 0.3.x x86-64 core names (driver/others/dynamic.c corename[]), by level */
static const struct {
    const char *name;
    int         isa;
} cores[] = {
    { "SkylakeX", CT_ISA_AVX512 },    { "Cooperlake", CT_ISA_AVX512 }, { "SapphireRapids", CT_ISA_AVX512 },
    { "Haswell", CT_ISA_AVX2 },       { "Zen", CT_ISA_AVX2 },          { "Sandybridge", CT_ISA_AVX },
    { "Bulldozer", CT_ISA_AVX },      { "Piledriver", CT_ISA_AVX },    { "Steamroller", CT_ISA_AVX },
    { "Excavator", CT_ISA_AVX },      { "Prescott", CT_ISA_SSE },      { "Core2", CT_ISA_SSE },
    { "Penryn", CT_ISA_SSE },         { "Dunnington", CT_ISA_SSE },    { "Nehalem", CT_ISA_SSE },
    { "Atom", CT_ISA_SSE },           { "Nano", CT_ISA_SSE },          { "Barcelona", CT_ISA_SSE },
    { "Bobcat", CT_ISA_SSE },         { "Opteron", CT_ISA_SSE },       { "Opteron(SSE3)", CT_ISA_SSE },
    { "Athlon", CT_ISA_SSE },         { "Katmai", CT_ISA_SSE },        { "Coppermine", CT_ISA_SSE },
    { "Northwood", CT_ISA_SSE },      { "Banias", CT_ISA_SSE },
};

int ct_blas_core_isa(const char *core) {
    if (!core) return -1;
    for (size_t i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(core, cores[i].name)) return cores[i].isa;
    return -1;
}

/* The names OpenBLAS 0.3.21 accepts in OPENBLAS_CORETYPE (it does not accept "Cooperlake":
 * OpenBLAS PR #3806).  For AVX-512 the sgemm kernels of SkylakeX and Cooperlake are the same
 * (measured here: docs/encode.md).  AMD Zen 4 gets SkylakeX too, as later OpenBLAS versions do
 * by themselves (OpenBLAS PR #4303). */
const char *ct_blas_core_for(enum ct_isa isa) {
    switch (isa) {
    case CT_ISA_AVX512: return "SkylakeX";
    case CT_ISA_AVX2: return "Haswell";
    case CT_ISA_AVX: return "Sandybridge";
    default: return NULL;
    }
}

const char *ct_blas_upgrade(const char *core, enum ct_isa cpu) {
    int have = ct_blas_core_isa(core);
    if (have < 0 || have >= (int)cpu) return NULL;
    return ct_blas_core_for(cpu);
}

const char *ct_blas_isa_name(int isa) {
    switch (isa) {
    case CT_ISA_AVX512: return "AVX-512";
    case CT_ISA_AVX2: return "AVX2+FMA";
    case CT_ISA_AVX: return "AVX";
    case CT_ISA_SSE: return "SSE";
    default: return "?";
    }
}

const char *ct_blas_describe(void) { return describe_buf; }

static int under_valgrind(void) {
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

void ct_blas_init(char **argv) {
    const char *core = openblas_get_corename(), *config = openblas_get_config();
    const int have = ct_blas_core_isa(core);
    const enum ct_isa cpu = ct_blas_cpu_isa();
    const char *env = getenv(ENV_CORE), *aut = getenv(ENV_AUTO);
    char *d = describe_buf;
    const size_t dn = sizeof describe_buf;
    int n = snprintf(d, dn, "OpenBLAS core %s (%s), CPU supports %s: ", core ? core : "?", ct_blas_isa_name(have),
                     ct_blas_isa_name(cpu));
    if (n < 0 || (size_t)n >= dn) return;
    d += n;
    const size_t left = dn - (size_t)n;
    if (env) {
        char want[64] = "", was[64] = "";
        if (aut && sscanf(aut, "%63s %63s", want, was) == 2 && !strcmp(want, env)) {
            if (have >= 0 && !strcasecmp(core, env))
                snprintf(d, left, "chosen by ctvis from the CPU's features (OpenBLAS alone picked %s for this "
                         "CPU model; set OPENBLAS_CORETYPE to choose yourself)", was);
            else
                snprintf(d, left, "ctvis asked for %s (OpenBLAS alone picked %s), OpenBLAS runs %s", want, was,
                         core ? core : "?");
        } else {
            snprintf(d, left, "OPENBLAS_CORETYPE=%s set by the user, kept", env);
        }
        return;
    }
    const char *better = ct_blas_upgrade(core, cpu);
    if (!better) {
        snprintf(d, left, "%s", have < 0 ? "OpenBLAS's own choice (a core ctvis does not know: kept)"
                                         : "OpenBLAS's own choice, matches the CPU");
        return;
    }
    if (!config || !strstr(config, "DYNAMIC_ARCH")) {
        snprintf(d, left, "weaker than the CPU, but this OpenBLAS is built for one core (no DYNAMIC_ARCH): kept");
        return;
    }
    if (under_valgrind()) {
        snprintf(d, left, "weaker than the CPU, kept under valgrind");
        return;
    }
    char mark[160];
    snprintf(mark, sizeof mark, "%s %s", better, core);
    if (setenv(ENV_CORE, better, 1) == 0 && setenv(ENV_AUTO, mark, 1) == 0) execv("/proc/self/exe", argv);
    /* still here: execv failed (no /proc?); run on with OpenBLAS's choice */
    unsetenv(ENV_CORE);
    unsetenv(ENV_AUTO);
    snprintf(d, left, "weaker than the CPU; re-running with OPENBLAS_CORETYPE=%s failed: kept", better);
}
