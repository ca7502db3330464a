/* fuzz-stream - the msgpack record reader (lib/stream.c): every record of the
 * input, every meta value decoded and printed as JSON, tensor statistics. */
#include "fuzz.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static const char *path;
    static struct tn_arena *a;
    static FILE *sink;
    if (fd < 0) {
        path = fuzz_file(".ctv", &fd);
        a = tn_arena_new(0);
        sink = fopen("/dev/null", "w");
    }
    fuzz_put(fd, data, size);
    struct rec_reader *rd = rec_reader_open(path);
    if (!rd) return 0;
    struct rec r;
    while (rec_read(rd, a, &r) > 0) {
        for (int i = 0; i < r.n_meta; i++) {
            const struct rec_val *v = rec_meta_get(&r, r.meta[i].key);
            double d[8];
            (void)rec_val_f64(v, d, 8);
            rec_val_print_json(r.meta[i].val, r.meta[i].val_nbytes, sink, 0);
        }
        for (int i = 0; i < r.n_tensors; i++) {
            struct tn_stats s;
            tn_stats_compute(r.tensors[i], &s);
        }
        double m[4][4];
        (void)rec_meta_mat4(&r, "affine", m);
        (void)rec_expect(&r, "ct.image", 1);
        tn_arena_reset(a);
    }
    rec_reader_close(rd);
    tn_arena_reset(a);
    return 0;
}
