/* fuzz-report - structured reports and LLM answers (lib/report*.c): payload
 * extraction (code fences, prose), JSON (jansson) and YAML (lib/cfg) parsing,
 * normalisation against the CT-RATE organ set, and the rule labels.  The first
 * byte picks the syntax hint. */
#include "fuzz.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct org_set organs;
    static struct tn_arena *a;
    if (!a) {
        org_set_default(&organs);
        a = tn_arena_new(0);
    }
    if (size < 1) return 0;
    enum report_syntax hint = (enum report_syntax)(data[0] % 4);
    struct report_node **roots;
    int n_roots = 0, flags = 0;
    if (report_parse_text((const char *)data + 1, size - 1, "fuzz", 1, hint, a, &roots, &n_roots, &flags) == 0) {
        for (int i = 0; i < n_roots && i < 64; i++) {
            struct report_in in;
            memset(&in, 0, sizeof in);
            (void)report_normalise(&organs, roots[i], flags, "valid_1_a", data[0] & 4 ? REPORT_N_FVLM : 0, a, &in);
        }
    }
    tn_arena_reset(a);
    return 0;
}
