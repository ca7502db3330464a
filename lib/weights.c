/* weights.c - the one ct.weights/1 record of a weights file (weights.h). */
#include "weights.h"

#include <string.h>

#include "ct.h"
#include "names.h"

int weights_read(const char *path, int (*keep)(const char *name, void *ctx), void *ctx, struct tn_arena *a,
                 struct weights *w) {
    memset(w, 0, sizeof *w);
    struct rec_reader *in = rec_reader_open(path);
    if (!in) return -1;                                  /* the reader names the file */
    if (keep) rec_reader_set_tensor_filter(in, keep, ctx);
    int rc = rec_read(in, a, &w->rec);
    rec_reader_close(in);
    if (rc < 0) return -1;                               /* "FILE: record N (id X): ..." */
    if (rc == 0) return ct_seterr("%s: empty stream (no %s record)", path, NM_WEIGHTS);
    if (rec_expect(&w->rec, NM_WEIGHTS_NAME, NM_WEIGHTS_MAJOR) != 0) return ct_prefixerr("%s", path);
    w->id = w->rec.id;
    w->sha256 = rec_meta_str(&w->rec, NM_M_SHA256);
    const struct rec_val *u = rec_meta_get(&w->rec, NM_M_UNTRAINED);
    w->untrained = u && u->type == RV_BOOL && u->v.b;
    return 0;
}
