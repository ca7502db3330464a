/*
 * test-blas.c - lib/blas.c: the core-name table, the upgrade rule, and that after ct_blas_init
 * this process runs OpenBLAS kernels at least as strong as the CPU's features allow (unless the
 * user chose OPENBLAS_CORETYPE, or the library's core is one lib/blas.c does not know).
 */
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "check.h"
#include "ct.h"

char *openblas_get_corename(void);

static int streq(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

int main(int argc, char **argv) {
    (void)argc;
    ct_blas_init(argv);
    /* after a re-exec by ct_blas_init the variable is set, with CT_BLAS_AUTO naming it */
    const char *env = getenv("OPENBLAS_CORETYPE"), *aut = getenv("CT_BLAS_AUTO");
    const int user_set = env && !(aut && !strncmp(aut, env, strlen(env)) && aut[strlen(env)] == ' ');
    printf("# BLAS: %s\n", ct_blas_describe());

    CHECK(ct_blas_core_isa("Prescott") == CT_ISA_SSE && ct_blas_core_isa("Nehalem") == CT_ISA_SSE, "SSE cores");
    CHECK(ct_blas_core_isa("Sandybridge") == CT_ISA_AVX, "AVX core");
    CHECK(ct_blas_core_isa("Haswell") == CT_ISA_AVX2 && ct_blas_core_isa("Zen") == CT_ISA_AVX2, "AVX2 cores");
    CHECK(ct_blas_core_isa("SkylakeX") == CT_ISA_AVX512 && ct_blas_core_isa("COOPERLAKE") == CT_ISA_AVX512 &&
              ct_blas_core_isa("SapphireRapids") == CT_ISA_AVX512,
          "AVX-512 cores, any case");
    CHECK(ct_blas_core_isa("NoSuchCore") == -1 && ct_blas_core_isa(NULL) == -1, "unknown core names");
    /* every name asked for maps back to its level (else the re-exec could not tell it worked) */
    for (int isa = CT_ISA_AVX; isa <= CT_ISA_AVX512; isa++)
        CHECK(ct_blas_core_isa(ct_blas_core_for(isa)) == isa, "core for %s is of that level", ct_blas_isa_name(isa));
    CHECK(ct_blas_core_for(CT_ISA_SSE) == NULL, "no core asked for at SSE level");

    CHECK(streq(ct_blas_upgrade("Prescott", CT_ISA_AVX512), "SkylakeX"), "Prescott on AVX-512 CPU -> SkylakeX");
    CHECK(streq(ct_blas_upgrade("Zen", CT_ISA_AVX512), "SkylakeX"), "Zen on AVX-512 CPU (Zen 4) -> SkylakeX");
    CHECK(streq(ct_blas_upgrade("Prescott", CT_ISA_AVX2), "Haswell"), "Prescott on AVX2 CPU -> Haswell");
    CHECK(ct_blas_upgrade("Cooperlake", CT_ISA_AVX512) == NULL, "Cooperlake on AVX-512 CPU kept");
    CHECK(ct_blas_upgrade("Zen", CT_ISA_AVX2) == NULL, "Zen on AVX2 CPU kept");
    CHECK(ct_blas_upgrade("SkylakeX", CT_ISA_AVX2) == NULL, "never a downgrade");
    CHECK(ct_blas_upgrade("Prescott", CT_ISA_SSE) == NULL, "SSE CPU: nothing to ask for");
    CHECK(ct_blas_upgrade("NoSuchCore", CT_ISA_AVX512) == NULL, "unknown core kept");

    const char *core = openblas_get_corename();
    const int have = ct_blas_core_isa(core), cpu = (int)ct_blas_cpu_isa();
    const char *d = ct_blas_describe();
    if (user_set || have < 0 || strstr(d, "valgrind") || strstr(d, "no DYNAMIC_ARCH"))
        printf("skip kernels-match-cpu: %s\n", d);
    else
        CHECK(have >= cpu, "kernels in use (%s, %s) match the CPU (%s)", core, ct_blas_isa_name(have),
              ct_blas_isa_name(cpu));
    CHECK(user_set == (strstr(d, "set by the user") != NULL), "describe says whether the user chose the core");
    return check_failures != 0;
}
