/*
 * idset.h - a set of string ids, each with the origin where it was first seen
 * ("answers.jsonl:3") and a caller's tag: duplicate detection and lookups by
 * id in O(1) expected time (report-label: scan and volume ids).
 *
 *     struct idset *s = idset_new();
 *     const char *first = idset_add(s, id, "a.jsonl:3", 0, NULL);
 *     if (first) ... "duplicated id (first at %s)", first ...
 *     idset_free(s);
 *
 * The set copies ids and origins (malloc; ct_xmalloc stops the process when
 * memory runs out).  Not thread-safe: one set per thread, or a lock.
 */
#ifndef CT_IDSET_H
#define CT_IDSET_H

#include <stdint.h>

struct idset;
struct idset *idset_new(void);
/* Insert id with its origin and a tag.  Returns NULL when id is new, else
 * (leaving the set unchanged) the origin of the first occurrence, with its tag
 * in *old_tag when old_tag is not NULL.  The origin returned is the set's. */
const char *idset_add(struct idset *s, const char *id, const char *origin, uint64_t tag, uint64_t *old_tag);
/* Origin of id (and its tag), or NULL when absent. */
const char *idset_get(const struct idset *s, const char *id, uint64_t *tag);
void idset_free(struct idset *s);   /* NULL-safe */

#endif
