/*
 * cfg.h - YAML (and therefore most JSON) documents as a plain tree of
 * scalars, sequences and maps, with line numbers for messages.  The only file
 * that includes <yaml.h>.  Aliases (*name) are resolved to their anchors.
 *
 *     struct cfg_node *doc = cfg_load_file("organs.yaml", arena);
 *     if (!doc) ct_die("%s", ct_lasterr());        // "organs.yaml:3:5: ..."
 *     const struct cfg_node *o = cfg_get(doc, "organs");
 *     for (int i = 0; i < o->n; i++) puts(cfg_get(o->items[i], "name")->str);
 *
 * All nodes live in the arena given to the loader.
 */
#ifndef CT_CFG_H
#define CT_CFG_H

#include <stddef.h>

#include "tensor.h"

enum cfg_type { CFG_SCALAR, CFG_SEQ, CFG_MAP };

struct cfg_node {
    enum cfg_type     type;
    const char       *str;           /* CFG_SCALAR: the text (NUL-terminated, may hold no NUL) */
    size_t            len;           /* CFG_SCALAR: length of str */
    int               quoted;        /* CFG_SCALAR: written in quotes ('x' or "x") */
    int               n;             /* CFG_SEQ: items; CFG_MAP: pairs */
    struct cfg_node **items;         /* CFG_SEQ */
    const char      **keys;          /* CFG_MAP: keys (scalar keys only) */
    struct cfg_node **vals;          /* CFG_MAP */
    int               line, col;     /* 1-based position in the source */
    const char       *source;        /* file name for messages */
};

/* Load the first document of a file / of a memory buffer.  NULL + lasterr
 * "name:line:col: problem" on a syntax error, an empty document or a missing file. */
struct cfg_node *cfg_load_file(const char *path, struct tn_arena *a);
struct cfg_node *cfg_load_string(const char *text, size_t n, const char *name, struct tn_arena *a);

/* Every document of a multi-document stream ("---" separated).  Returns the
 * count and sets *docs (arena), or -1 + lasterr. */
int cfg_load_all(const char *text, size_t n, const char *name, struct tn_arena *a, struct cfg_node ***docs);

/* Map lookup (exact key); NULL when absent or when map is not a map. */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);

/* Scalar conversions: 0, or -1 + lasterr "name:line:col: expected ...". */
int cfg_long(const struct cfg_node *n, long *out);
int cfg_double(const struct cfg_node *n, double *out);
int cfg_bool(const struct cfg_node *n, int *out);      /* true/false/yes/no/on/off/1/0 */
/* -1 + lasterr "name:line:col: msg" (printf-style) */
int cfg_error(const struct cfg_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
