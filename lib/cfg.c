/*
 * cfg.c - YAML documents into cfg_node trees with libyaml's event parser.
 */
#include "cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ct.h"

#define CFG_MAX_DEPTH 256
#define CFG_MAX_ANCHORS 1024
/* Aliases share their anchor's node, but whoever walks the tree visits every
 * copy: a document whose aliases add more than this many nodes to the walk
 * (the "billion laughs": 8 levels of 10 aliases are 10^8) is refused. */
#define CFG_MAX_ALIAS_NODES 1000000
#define OPEN ((size_t)-1)                    /* anchor weight while its node is being parsed */

struct builder {
    yaml_parser_t    parser;
    struct tn_arena *a;
    const char      *name;
    int              n_anchors;
    size_t           alias_nodes;            /* nodes added by aliases in this input (all documents) */
    const char      *anchor_names[CFG_MAX_ANCHORS];
    struct cfg_node *anchor_nodes[CFG_MAX_ANCHORS];
    size_t           anchor_weight[CFG_MAX_ANCHORS];   /* nodes in the anchored subtree, expanded */
};

int cfg_error(const struct cfg_node *n, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n) return ct_seterr("%s", msg);
    return ct_seterr("%s:%d:%d: %s", n->source ? n->source : "?", n->line, n->col, msg);
}

static int parse_error(struct builder *b) {
    yaml_parser_t *p = &b->parser;
    return ct_seterr("%s:%zu:%zu: %s%s%s", b->name, p->problem_mark.line + 1, p->problem_mark.column + 1,
                     p->problem ? p->problem : "syntax error", p->context ? " " : "", p->context ? p->context : "");
}

static struct cfg_node *node_new(struct builder *b, enum cfg_type t, const yaml_event_t *ev) {
    struct cfg_node *n = tn_arena_alloc(b->a, sizeof *n);
    memset(n, 0, sizeof *n);
    n->type = t;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->source = b->name;
    return n;
}

/* Returns the anchor's slot (its weight is set when the node is complete), or -1. */
static int remember_anchor(struct builder *b, const yaml_char_t *anchor, struct cfg_node *n) {
    if (!anchor || b->n_anchors >= CFG_MAX_ANCHORS) return -1;
    b->anchor_names[b->n_anchors] = tn_arena_strdup(b->a, (const char *)anchor);
    b->anchor_nodes[b->n_anchors] = n;
    b->anchor_weight[b->n_anchors] = OPEN;
    return b->n_anchors++;
}

/* A set of map keys, so that the duplicate check stays linear in the number of keys. */
struct keyset {
    const char **slot;
    size_t       cap, n;
};
static size_t str_hash(const char *k) {
    size_t h = 1469598103934665603u;          /* FNV-1a */
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}
/* Insert k; 1 when it was already there. */
static int keyset_add(struct keyset *ks, const char *k) {
    if (2 * (ks->n + 1) > ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 16;
        const char **slot = ct_xcalloc(cap, sizeof *slot);
        for (size_t i = 0; i < ks->cap; i++)
            if (ks->slot[i]) {
                size_t h = str_hash(ks->slot[i]) & (cap - 1);
                while (slot[h]) h = (h + 1) & (cap - 1);
                slot[h] = ks->slot[i];
            }
        free(ks->slot);
        ks->slot = slot;
        ks->cap = cap;
    }
    size_t h = str_hash(k) & (ks->cap - 1);
    for (; ks->slot[h]; h = (h + 1) & (ks->cap - 1))
        if (!strcmp(ks->slot[h], k)) return 1;
    ks->slot[h] = k;
    ks->n++;
    return 0;
}

/* Growable pointer arrays built in malloc memory, copied to the arena at the end. */
struct vec {
    void **p;
    int    n, cap;
};
static void vec_push(struct vec *v, void *x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->p = ct_xrealloc(v->p, (size_t)v->cap * sizeof *v->p);
    }
    v->p[v->n++] = x;
}
static void **vec_to_arena(struct builder *b, struct vec *v) {
    void **out = tn_arena_alloc(b->a, (size_t)(v->n ? v->n : 1) * sizeof *out);
    if (v->n) memcpy(out, v->p, (size_t)v->n * sizeof *out);
    free(v->p);
    v->p = NULL;
    return out;
}

/* Parse one node whose first event is ev (owned by the caller); *w = its node
 * count with every alias expanded. */
static struct cfg_node *parse_node(struct builder *b, yaml_event_t *ev, int depth, size_t *w);

static int next_event(struct builder *b, yaml_event_t *ev) {
    if (!yaml_parser_parse(&b->parser, ev)) return parse_error(b);
    return 0;
}

static struct cfg_node *parse_node(struct builder *b, yaml_event_t *ev, int depth, size_t *w) {
    *w = 1;
    if (depth > CFG_MAX_DEPTH) {
        ct_seterr("%s:%zu: nesting deeper than %d", b->name, ev->start_mark.line + 1, CFG_MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        struct cfg_node *n = node_new(b, CFG_SCALAR, ev);
        size_t len = ev->data.scalar.length;
        char *s = tn_arena_alloc(b->a, len + 1);
        memcpy(s, ev->data.scalar.value, len);
        s[len] = 0;
        n->str = s;
        n->len = len;
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        int slot = remember_anchor(b, ev->data.scalar.anchor, n);
        if (slot >= 0) b->anchor_weight[slot] = 1;
        return n;
    }
    case YAML_ALIAS_EVENT:
        for (int i = b->n_anchors - 1; i >= 0; i--)
            if (!strcmp(b->anchor_names[i], (const char *)ev->data.alias.anchor)) {
                if (b->anchor_weight[i] == OPEN) {    /* &a [*a]: a cycle no walker would leave */
                    ct_seterr("%s:%zu:%zu: alias *%s refers to a node that contains it", b->name,
                              ev->start_mark.line + 1, ev->start_mark.column + 1, b->anchor_names[i]);
                    return NULL;
                }
                *w = b->anchor_weight[i];
                if ((b->alias_nodes += *w) > CFG_MAX_ALIAS_NODES) {
                    ct_seterr("%s:%zu:%zu: aliases expand the document by more than %d nodes", b->name,
                              ev->start_mark.line + 1, ev->start_mark.column + 1, CFG_MAX_ALIAS_NODES);
                    return NULL;
                }
                return b->anchor_nodes[i];
            }
        ct_seterr("%s:%zu:%zu: unknown alias *%s", b->name, ev->start_mark.line + 1, ev->start_mark.column + 1,
                  (const char *)ev->data.alias.anchor);
        return NULL;
    case YAML_SEQUENCE_START_EVENT: {
        struct cfg_node *n = node_new(b, CFG_SEQ, ev);
        int slot = remember_anchor(b, ev->data.sequence_start.anchor, n);
        struct vec items = { 0 };
        for (;;) {
            yaml_event_t e;
            if (next_event(b, &e) != 0) break;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                n->n = items.n;
                n->items = (struct cfg_node **)vec_to_arena(b, &items);
                if (slot >= 0) b->anchor_weight[slot] = *w;
                return n;
            }
            size_t cw;
            struct cfg_node *c = parse_node(b, &e, depth + 1, &cw);
            yaml_event_delete(&e);
            if (!c) break;
            *w += cw;
            vec_push(&items, c);
        }
        free(items.p);
        return NULL;
    }
    case YAML_MAPPING_START_EVENT: {
        struct cfg_node *n = node_new(b, CFG_MAP, ev);
        int slot = remember_anchor(b, ev->data.mapping_start.anchor, n);
        struct vec keys = { 0 }, vals = { 0 };
        struct keyset seen = { 0 };
        for (;;) {
            yaml_event_t e;
            if (next_event(b, &e) != 0) break;
            if (e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                n->n = keys.n;
                n->keys = (const char **)vec_to_arena(b, &keys);
                n->vals = (struct cfg_node **)vec_to_arena(b, &vals);
                free(seen.slot);
                if (slot >= 0) b->anchor_weight[slot] = *w;
                return n;
            }
            size_t kw, vw;
            struct cfg_node *k = parse_node(b, &e, depth + 1, &kw);
            yaml_event_delete(&e);
            if (!k) break;
            if (k->type != CFG_SCALAR) {
                cfg_error(k, "map keys must be scalars");
                break;
            }
            if (keyset_add(&seen, k->str)) {
                cfg_error(k, "duplicate key '%s'", k->str);
                break;
            }
            if (next_event(b, &e) != 0) break;
            struct cfg_node *v = parse_node(b, &e, depth + 1, &vw);
            yaml_event_delete(&e);
            if (!v) break;
            *w += kw + vw;
            vec_push(&keys, (void *)k->str);
            vec_push(&vals, v);
        }
        free(seen.slot);
        free(keys.p);
        free(vals.p);
        return NULL;
    }
    default:
        ct_seterr("%s:%zu: unexpected YAML event", b->name, ev->start_mark.line + 1);
        return NULL;
    }
}

/* Parse documents until the stream ends; keep at most max_docs (0 = all). */
static int load_docs(const char *text, size_t n, const char *name, struct tn_arena *a, int max_docs,
                     struct cfg_node ***out) {
    struct builder *b = ct_xcalloc(1, sizeof *b);
    b->a = a;
    b->name = tn_arena_strdup(a, name);
    if (!yaml_parser_initialize(&b->parser)) {
        free(b);
        return ct_seterr("yaml: out of memory");
    }
    yaml_parser_set_input_string(&b->parser, (const unsigned char *)text, n);
    struct vec docs = { 0 };
    int rc = -1;
    for (;;) {
        yaml_event_t e;
        if (next_event(b, &e) != 0) goto done;
        yaml_event_type_t t = e.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&e);
            continue;
        }
        if (t == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&e);
            b->n_anchors = 0;                       /* anchors are per document; the alias budget per input */
            yaml_event_t root;
            if (next_event(b, &root) != 0) goto done;
            size_t w;
            struct cfg_node *node = parse_node(b, &root, 0, &w);
            yaml_event_delete(&root);
            if (!node) goto done;
            vec_push(&docs, node);
            if (max_docs && docs.n >= max_docs) break;
            continue;
        }
        yaml_event_delete(&e);
    }
    rc = docs.n;
    *out = (struct cfg_node **)vec_to_arena(b, &docs);
done:
    if (rc < 0) free(docs.p);
    yaml_parser_delete(&b->parser);
    free(b);
    return rc;
}

struct cfg_node *cfg_load_string(const char *text, size_t n, const char *name, struct tn_arena *a) {
    struct cfg_node **docs;
    int k = load_docs(text, n, name, a, 1, &docs);
    if (k < 0) return NULL;
    if (k == 0) {
        ct_seterr("%s: empty document", name);
        return NULL;
    }
    return docs[0];
}

int cfg_load_all(const char *text, size_t n, const char *name, struct tn_arena *a, struct cfg_node ***docs) {
    return load_docs(text, n, name, a, 0, docs);
}

struct cfg_node *cfg_load_file(const char *path, struct tn_arena *a) {
    char *buf;
    size_t n;
    if (ct_read_file(path, &buf, &n) != 0) return NULL;
    struct cfg_node *doc = cfg_load_string(buf, n, path, a);
    free(buf);
    return doc;
}

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key) {
    if (!map || map->type != CFG_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->vals[i];
    return NULL;
}

int cfg_long(const struct cfg_node *n, long *out) {
    if (!n || n->type != CFG_SCALAR || ct_parse_long(n->str, out) != 0)
        return cfg_error(n, "expected an integer%s%s", n && n->type == CFG_SCALAR ? ", got " : "",
                         n && n->type == CFG_SCALAR ? n->str : "");
    return 0;
}

int cfg_double(const struct cfg_node *n, double *out) {
    if (!n || n->type != CFG_SCALAR || ct_parse_double(n->str, out) != 0)
        return cfg_error(n, "expected a number%s%s", n && n->type == CFG_SCALAR ? ", got " : "",
                         n && n->type == CFG_SCALAR ? n->str : "");
    return 0;
}

int cfg_bool(const struct cfg_node *n, int *out) {
    static const char *yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "1" };
    static const char *no[] = { "false", "False", "FALSE", "no", "No", "off", "0" };
    if (n && n->type == CFG_SCALAR)
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (!strcmp(n->str, yes[i])) return *out = 1, 0;
            if (!strcmp(n->str, no[i])) return *out = 0, 0;
        }
    return cfg_error(n, "expected true or false");
}
