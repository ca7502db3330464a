/*
 * idset.c - a set of string ids with an origin and a tag each (open
 * addressing, linear probing, FNV-1a, grown at half full).  See idset.h.
 */
#include "idset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"

struct idset {
    size_t    cap, n;                /* cap is a power of two */
    char    **keys;
    char    **origins;
    uint64_t *tags;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void slots_alloc(struct idset *s, size_t cap) {
    s->cap = cap;
    s->keys = ct_xcalloc(cap, sizeof *s->keys);
    s->origins = ct_xcalloc(cap, sizeof *s->origins);
    s->tags = ct_xcalloc(cap, sizeof *s->tags);
}

struct idset *idset_new(void) {
    struct idset *s = ct_xcalloc(1, sizeof *s);
    slots_alloc(s, 1024);
    return s;
}

static size_t slot_of(const struct idset *s, const char *id) {
    size_t i = fnv1a(id) & (s->cap - 1);
    while (s->keys[i] && strcmp(s->keys[i], id)) i = (i + 1) & (s->cap - 1);
    return i;
}

const char *idset_add(struct idset *s, const char *id, const char *origin, uint64_t tag,
                             uint64_t *old_tag) {
    size_t i = slot_of(s, id);
    if (s->keys[i]) {
        if (old_tag) *old_tag = s->tags[i];
        return s->origins[i];
    }
    if (2 * (s->n + 1) > s->cap) {           /* grow at half full */
        struct idset old = *s;
        slots_alloc(s, old.cap * 2);
        for (size_t k = 0; k < old.cap; k++)
            if (old.keys[k]) {
                size_t j = slot_of(s, old.keys[k]);
                s->keys[j] = old.keys[k];
                s->origins[j] = old.origins[k];
                s->tags[j] = old.tags[k];
            }
        free(old.keys);
        free(old.origins);
        free(old.tags);
        i = slot_of(s, id);
    }
    s->keys[i] = ct_xstrdup(id);
    s->origins[i] = ct_xstrdup(origin ? origin : "");
    s->tags[i] = tag;
    s->n++;
    return NULL;
}

const char *idset_get(const struct idset *s, const char *id, uint64_t *tag) {
    size_t i = slot_of(s, id);
    if (!s->keys[i]) return NULL;
    if (tag) *tag = s->tags[i];
    return s->origins[i];
}

void idset_free(struct idset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->cap; i++) {
        free(s->keys[i]);
        free(s->origins[i]);
    }
    free(s->keys);
    free(s->origins);
    free(s->tags);
    free(s);
}

