/* fuzz-cfg - YAML/JSON documents into cfg trees (lib/cfg.c) and the organ sets
 * built from them: ct-resample's label organs and report-label's organ and
 * abnormality sets (their loaders read files). */
#include "cfg.h"
#include "fuzz.h"
#include "report.h"
#include "organs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static const char *path;
    static struct tn_arena *a;
    if (fd < 0) {
        path = fuzz_file(".yaml", &fd);
        a = tn_arena_new(0);
    }
    struct cfg_node **docs;
    int n = cfg_load_all((const char *)data, size, "fuzz.yaml", a, &docs);
    for (int i = 0; i < n && i < 16; i++) {
        struct org_classes o;
        (void)org_classes_parse(docs[i], a, &o);
        long v;
        double d;
        int b;
        if (docs[i]->type == CFG_SCALAR) (void)(cfg_long(docs[i], &v) + cfg_double(docs[i], &d) + cfg_bool(docs[i], &b));
    }
    tn_arena_reset(a);
    fuzz_put(fd, data, size);
    struct org_set ro;
    struct org_abn ab;
    (void)org_set_load(path, a, &ro);
    tn_arena_reset(a);
    (void)org_abn_load(path, a, &ab);
    tn_arena_reset(a);
    return 0;
}
