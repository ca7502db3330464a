/*
 * weights.h - reading the weights of a model: the one ct.weights/1 record of a weights file
 * (written by tools/ctvis-convert.py; schemas/ct.weights.v1.yaml).
 *
 *     struct tn_arena *wa = tn_arena_new(0);      // lives as long as the models
 *     struct weights w;
 *     if (weights_read(path, keep, NULL, wa, &w) != 0) ct_die("%s", ct_lasterr());
 *     model = visd_vq_new(&w.rec);                 // models borrow w.rec's tensors
 *
 * Ownership: everything in *w (the record, its tensors, id, sha256) lives in the arena given to
 * weights_read; models built on it borrow, so the arena must outlive them.  No process state.
 */
#ifndef CT_WEIGHTS_H
#define CT_WEIGHTS_H

#include "stream.h"

struct weights {
    struct rec  rec;                 /* the ct.weights/1 record (only the tensors kept) */
    const char *id;                  /* rec.id: visd-boost, visd-random-SEED, ... */
    const char *sha256;              /* meta sha256 of the encoder tensors, or NULL */
    int         untrained;           /* meta untrained == true: seeded random weights */
};

/* Read the first record of path ("-": stdin) into w, allocating from a.  keep NULL reads every
 * tensor; otherwise only the tensors for which keep(name, ctx) != 0, the others are skipped
 * unread (a stage that needs a few tensors of a file holding BERT does not hold BERT).
 * -1 + lasterr naming the file: unreadable, empty ("PATH: empty stream (no ct.weights/1
 * record)"), truncated, or another schema. */
int weights_read(const char *path, int (*keep)(const char *name, void *ctx), void *ctx, struct tn_arena *a,
                 struct weights *w);

#endif
