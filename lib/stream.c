/*
 * stream.c - msgpack record streams (see stream.h and schemas/README.md).
 *
 * This is the only file that includes <msgpack.h>.  Writing uses msgpack-c's
 * packer.  Reading uses a small pull parser of our own over a buffered fd,
 * because msgpack-c's unpacker buffers a whole message: with it a 512 MB
 * tensor would be held twice and copied once more.  Here a tensor payload is
 * read (or zstd-decompressed) straight into its 64-byte aligned arena buffer,
 * and only the small metadata values are handed to msgpack_unpack_next().
 */
#define _GNU_SOURCE
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "ct.h"
#include "csv.h"

#define RD_BUFSZ   ((size_t)1 << 20)   /* reader buffer */
#define WR_BUFSZ   ((size_t)1 << 20)   /* writer buffer */
#define PIPE_SZ    (1 << 20)           /* pipe capacity we ask the kernel for */
#define MAX_DEPTH  30                  /* nesting allowed inside meta values (msgpack-c decodes 32) */
#define MAX_SHORT  65536               /* longest schema/id/key string */
#define MAX_META   ((size_t)64 << 20)  /* meta of one record, decoded (below) */
#define META_ITEM  64                  /* decoded cost of one meta item beyond its bytes:
                                          a msgpack_object (24) and a rec_val (32), rounded up */
#define MAX_META_KEYS 65536            /* top-level meta keys of one record */
#ifndef CT_MAX_TENSOR_BYTES
#define CT_MAX_TENSOR_BYTES 0xffffffffu /* one tensor: 4 GiB - 1 (msgpack bin32); make fuzz lowers it */
#endif
#define MAX_TENSOR_BYTES ((size_t)CT_MAX_TENSOR_BYTES)
#define ZSTD_MIN   256                 /* tensors smaller than this stay raw */

/* ====================================================================== */
/* ---- building records ---- */

void rec_init(struct rec *r, struct tn_arena *a, const char *schema, const char *id) {
    memset(r, 0, sizeof *r);
    r->index = -1;
    r->arena = a;
    r->schema = tn_arena_strdup(a, schema);
    r->id = tn_arena_strdup(a, id ? id : "");
}

void rec_add_tensor(struct rec *r, struct tn_tensor *t) {
    for (int i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i]->name, t->name)) {
            r->tensors[i] = t;
            return;
        }
    CT_ASSERT(r->n_tensors < REC_MAX_TENSORS);
    r->tensors[r->n_tensors++] = t;
}

int rec_drop_tensor(struct rec *r, const char *name) {
    for (int i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i]->name, name)) {
            memmove(&r->tensors[i], &r->tensors[i + 1], (size_t)(r->n_tensors - i - 1) * sizeof r->tensors[0]);
            r->n_tensors--;
            return 1;
        }
    return 0;
}

struct tn_tensor *rec_tensor(const struct rec *r, const char *name) {
    for (int i = 0; i < r->n_tensors; i++)
        if (!strcmp(r->tensors[i]->name, name)) return r->tensors[i];
    return NULL;
}

struct tn_tensor *rec_tensor_req(const struct rec *r, const char *name) {
    struct tn_tensor *t = rec_tensor(r, name);
    if (!t) ct_seterr("missing tensor '%s'", name);
    return t;
}

int rec_schema_split(const char *schema, char *name, size_t name_n, int *major) {
    const char *slash = schema ? strrchr(schema, '/') : NULL;
    if (!slash || slash == schema || !slash[1]) return -1;
    char *end;
    long m = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || m < 0 || m > 1000000 || (*end && *end != '.')) return -1;
    if ((size_t)(slash - schema) >= name_n) return -1;
    memcpy(name, schema, (size_t)(slash - schema));
    name[slash - schema] = 0;
    *major = (int)m;
    return 0;
}

int rec_expect(const struct rec *r, const char *name, int major) {
    char got[256];
    int got_major;
    if (rec_schema_split(r->schema, got, sizeof got, &got_major) != 0)
        return ct_seterr("malformed schema '%s' (expected name/major, e.g. %s/%d)", r->schema, name, major);
    if (strcmp(got, name) != 0)
        return ct_seterr("expected a %s/%d record, got %s", name, major, r->schema);
    if (got_major != major)
        return ct_seterr("schema %s has major version %d; this tool reads %s/%d", r->schema, got_major, name, major);
    return 0;
}

/* ---- metadata ---- */

static struct rec_meta_entry *meta_find(const struct rec *r, const char *key) {
    for (int i = 0; i < r->n_meta; i++)
        if (!strcmp(r->meta[i].key, key)) return &r->meta[i];
    return NULL;
}

static void meta_append(struct rec *r, const char *key, const uint8_t *val, size_t n);

void rec_meta_set_raw(struct rec *r, const char *key, const uint8_t *val, size_t n) {
    uint8_t *copy = tn_arena_alloc(r->arena, n);
    memcpy(copy, val, n);
    struct rec_meta_entry *e = meta_find(r, key);
    if (!e) {
        meta_append(r, tn_arena_strdup(r->arena, key), copy, n);
        return;
    }
    e->val = copy;
    e->val_nbytes = n;
}

int rec_meta_del(struct rec *r, const char *key) {
    struct rec_meta_entry *e = meta_find(r, key);
    if (!e) return 0;
    int i = (int)(e - r->meta);
    memmove(&r->meta[i], &r->meta[i + 1], (size_t)(r->n_meta - i - 1) * sizeof *e);
    r->n_meta--;
    return 1;
}

int rec_meta_has(const struct rec *r, const char *key) { return meta_find(r, key) != NULL; }

/* Append an entry known to be absent (no search). */
static void meta_append(struct rec *r, const char *key, const uint8_t *val, size_t n) {
    if (r->n_meta == r->cap_meta) {
        int cap = r->cap_meta ? 2 * r->cap_meta : 16;
        struct rec_meta_entry *m = tn_arena_alloc(r->arena, (size_t)cap * sizeof *m);
        if (r->n_meta) memcpy(m, r->meta, (size_t)r->n_meta * sizeof *m);
        r->meta = m;
        r->cap_meta = cap;
    }
    struct rec_meta_entry *e = &r->meta[r->n_meta++];
    e->key = key;
    e->val = val;
    e->val_nbytes = n;
}

void rec_meta_copy(struct rec *dst, const struct rec *src) {
    if (dst->n_meta == 0 && dst != src) {     /* the usual case: keys are unique, no search (linear) */
        int same = dst->arena == src->arena;
        for (int i = 0; i < src->n_meta; i++) {
            const struct rec_meta_entry *e = &src->meta[i];
            if (same) {
                meta_append(dst, e->key, e->val, e->val_nbytes);
            } else {
                uint8_t *copy = tn_arena_alloc(dst->arena, e->val_nbytes);
                memcpy(copy, e->val, e->val_nbytes);
                meta_append(dst, tn_arena_strdup(dst->arena, e->key), copy, e->val_nbytes);
            }
        }
        return;
    }
    for (int i = 0; i < src->n_meta; i++) {
        /* share the value bytes when both records use the same arena */
        if (dst->arena == src->arena) {
            struct rec_meta_entry *e = meta_find(dst, src->meta[i].key);
            if (e) {
                e->val = src->meta[i].val;
                e->val_nbytes = src->meta[i].val_nbytes;
                continue;
            }
        }
        rec_meta_set_raw(dst, src->meta[i].key, src->meta[i].val, src->meta[i].val_nbytes);
    }
}

/* ---- msgpack builder (msgpack-c packer into a growable buffer) ---- */

static int mp_cb(void *data, const char *buf, size_t len) {
    struct rec_mp *m = data;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        while (cap < m->n + len) cap *= 2;
        m->buf = ct_xrealloc(m->buf, cap);
        m->cap = cap;
    }
    memcpy(m->buf + m->n, buf, len);
    m->n += len;
    return 0;
}

#define MP_PACKER(m) msgpack_packer pk; msgpack_packer_init(&pk, (m), mp_cb)

void rec_mp_map(struct rec_mp *m, uint32_t n) { MP_PACKER(m); msgpack_pack_map(&pk, n); }
void rec_mp_array(struct rec_mp *m, uint32_t n) { MP_PACKER(m); msgpack_pack_array(&pk, n); }
void rec_mp_str(struct rec_mp *m, const char *s) {
    MP_PACKER(m);
    size_t n = strlen(s);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, s, n);
}
void rec_mp_i64(struct rec_mp *m, int64_t v) { MP_PACKER(m); msgpack_pack_int64(&pk, v); }
void rec_mp_f64(struct rec_mp *m, double v) { MP_PACKER(m); msgpack_pack_double(&pk, v); }
void rec_mp_bool(struct rec_mp *m, int v) {
    MP_PACKER(m);
    if (v) msgpack_pack_true(&pk);
    else msgpack_pack_false(&pk);
}
void rec_mp_nil(struct rec_mp *m) { MP_PACKER(m); msgpack_pack_nil(&pk); }
void rec_mp_bin(struct rec_mp *m, const void *p, size_t n) {
    MP_PACKER(m);
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, p, n);
}
void rec_mp_free(struct rec_mp *m) {
    free(m->buf);
    m->buf = NULL;
    m->n = m->cap = 0;
}

void rec_meta_set_mp(struct rec *r, const char *key, struct rec_mp *m) {
    rec_meta_set_raw(r, key, m->buf, m->n);
    rec_mp_free(m);
}

void rec_meta_set_str(struct rec *r, const char *key, const char *s) {
    struct rec_mp m = { 0 };
    rec_mp_str(&m, s);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_i64(struct rec *r, const char *key, int64_t v) {
    struct rec_mp m = { 0 };
    rec_mp_i64(&m, v);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_f64(struct rec *r, const char *key, double v) {
    struct rec_mp m = { 0 };
    rec_mp_f64(&m, v);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_f64v(struct rec *r, const char *key, const double *v, int n) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)n);
    for (int i = 0; i < n; i++) rec_mp_f64(&m, v[i]);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_i64v(struct rec *r, const char *key, const int64_t *v, int n) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)n);
    for (int i = 0; i < n; i++) rec_mp_i64(&m, v[i]);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_strv(struct rec *r, const char *key, const char *const *s, int n) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)n);
    for (int i = 0; i < n; i++) rec_mp_str(&m, s[i]);
    rec_meta_set_mp(r, key, &m);
}

void rec_meta_set_mat4(struct rec *r, const char *key, const double m[4][4]) {
    struct rec_mp mp = { 0 };
    rec_mp_array(&mp, 4);
    for (int i = 0; i < 4; i++) {
        rec_mp_array(&mp, 4);
        for (int j = 0; j < 4; j++) rec_mp_f64(&mp, m[i][j]);
    }
    rec_meta_set_mp(r, key, &mp);
}

int rec_meta_mat4(const struct rec *r, const char *key, double m[4][4]) {
    const struct rec_val *v = rec_meta_get(r, key);
    if (!v) return 0;
    if (v->type != RV_ARRAY || v->v.a.n != 4) return ct_seterr("meta '%s': expected 4 rows of 4 numbers", key);
    for (int i = 0; i < 4; i++)
        if (rec_val_f64(&v->v.a.items[i], m[i], 4) != 4)
            return ct_seterr("meta '%s': expected 4 rows of 4 numbers", key);
    return 1;
}

/* Length of the array header at p and its item count; 0 when p is not an array. */
static size_t array_header(const uint8_t *p, size_t n, uint32_t *count) {
    if (n >= 1 && (p[0] & 0xf0) == 0x90) { *count = p[0] & 0x0f; return 1; }
    if (n >= 3 && p[0] == 0xdc) { *count = (uint32_t)p[1] << 8 | p[2]; return 3; }
    if (n >= 5 && p[0] == 0xdd) {
        *count = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        return 5;
    }
    return 0;
}

void rec_history_append(struct rec *r, int argc, char **argv) {
    struct rec_mp m = { 0 };
    const struct rec_meta_entry *e = meta_find(r, "history");
    uint32_t count = 0;
    size_t hdr = e ? array_header(e->val, e->val_nbytes, &count) : 0;
    if (hdr && count == UINT32_MAX) hdr = 0;       /* cannot grow: start a new history */
    rec_mp_array(&m, hdr ? count + 1 : 1);
    if (hdr) {                             /* keep the earlier steps byte for byte */
        size_t body = e->val_nbytes - hdr;
        mp_cb(&m, (const char *)e->val + hdr, body);
    }
    rec_mp_map(&m, 3);
    rec_mp_str(&m, "tool");
    rec_mp_str(&m, ct_progname());
    rec_mp_str(&m, "version");
    rec_mp_str(&m, CT_VERSION);
    rec_mp_str(&m, "args");
    /* The packed args array is built once per process: reading /proc for every
     * record costs more than writing the record. */
    static struct rec_mp args;
    static int args_argc = -1;
    if (args_argc != argc) {
        rec_mp_free(&args);
        args_argc = argc;
        /* getopt_long permutes argv; /proc/self/cmdline keeps the order the user typed */
        char cmd[8192];
        size_t n = 0;
        FILE *f = fopen("/proc/self/cmdline", "rb");
        if (f) {
            n = fread(cmd, 1, sizeof cmd - 1, f);
            fclose(f);
        }
        int n_args = 0;
        for (size_t i = 0; i < n; i++) n_args += cmd[i] == 0;
        if (f && n > 0 && n < sizeof cmd - 1 && n_args == argc) {
            rec_mp_array(&args, (uint32_t)(argc - 1));
            const char *p = cmd + strlen(cmd) + 1;         /* skip argv[0] */
            for (int i = 1; i < argc; i++, p += strlen(p) + 1) rec_mp_str(&args, p);
        } else {
            rec_mp_array(&args, argc > 1 ? (uint32_t)(argc - 1) : 0);
            for (int i = 1; i < argc; i++) rec_mp_str(&args, argv[i]);
        }
    }
    mp_cb(&m, (const char *)args.buf, args.n);
    rec_meta_set_mp(r, "history", &m);
}

/* ---- decoding meta values ---- */

static void obj_to_val(struct tn_arena *a, const msgpack_object *o, struct rec_val *v) {
    memset(v, 0, sizeof *v);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: v->type = RV_NIL; break;
    case MSGPACK_OBJECT_BOOLEAN: v->type = RV_BOOL; v->v.b = o->via.boolean; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: v->type = RV_UINT; v->v.u = o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v->type = RV_INT; v->v.i = o->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: v->type = RV_FLOAT; v->v.f = o->via.f64; break;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
        uint32_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
        const char *p = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
        char *s = tn_arena_alloc(a, (size_t)n + 1);
        if (n) memcpy(s, p, n);
        s[n] = 0;
        v->type = o->type == MSGPACK_OBJECT_STR ? RV_STR : RV_BIN;
        v->v.s.p = s;
        v->v.s.n = n;
        break;
    }
    case MSGPACK_OBJECT_ARRAY:
        v->type = RV_ARRAY;
        v->v.a.n = o->via.array.size;
        v->v.a.items = tn_arena_alloc(a, (size_t)o->via.array.size * sizeof(struct rec_val));
        for (uint32_t i = 0; i < o->via.array.size; i++) obj_to_val(a, &o->via.array.ptr[i], &v->v.a.items[i]);
        break;
    case MSGPACK_OBJECT_MAP:
        v->type = RV_MAP;
        v->v.m.n = o->via.map.size;
        v->v.m.keys = tn_arena_alloc(a, (size_t)o->via.map.size * sizeof(char *));
        v->v.m.vals = tn_arena_alloc(a, (size_t)o->via.map.size * sizeof(struct rec_val));
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR) {
                char *s = tn_arena_alloc(a, (size_t)k->via.str.size + 1);
                if (k->via.str.size) memcpy(s, k->via.str.ptr, k->via.str.size);   /* "" has no pointer */
                s[k->via.str.size] = 0;
                v->v.m.keys[i] = s;
            } else {
                v->v.m.keys[i] = "";
            }
            obj_to_val(a, &o->via.map.ptr[i].val, &v->v.m.vals[i]);
        }
        break;
    default: v->type = RV_EXT; break;
    }
}

const struct rec_val *rec_meta_get(const struct rec *r, const char *key) {
    const struct rec_meta_entry *e = meta_find(r, key);
    if (!e) return NULL;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    struct rec_val *v = tn_arena_alloc(r->arena, sizeof *v);
    if (msgpack_unpack_next(&u, (const char *)e->val, e->val_nbytes, &off) == MSGPACK_UNPACK_SUCCESS)
        obj_to_val(r->arena, &u.data, v);
    else
        v->type = RV_NIL;
    msgpack_unpacked_destroy(&u);
    return v;
}

const struct rec_val *rec_val_map_get(const struct rec_val *v, const char *key) {
    if (!v || v->type != RV_MAP) return NULL;
    for (uint32_t i = 0; i < v->v.m.n; i++)
        if (!strcmp(v->v.m.keys[i], key)) return &v->v.m.vals[i];
    return NULL;
}

static int val_num(const struct rec_val *v, double *d, int64_t *i) {
    switch (v->type) {
    case RV_UINT:
        *d = (double)v->v.u;
        if (v->v.u > (uint64_t)INT64_MAX) return *i = 0, 2;     /* 2^63 and above: no int64 */
        *i = (int64_t)v->v.u;
        return 0;
    case RV_INT: *d = (double)v->v.i; *i = v->v.i; return 0;
    case RV_FLOAT:
        *d = v->v.f;
        /* an int64 only when the float is integral and in range (the cast is UB otherwise) */
        if (!(v->v.f >= -9.2e18 && v->v.f <= 9.2e18) || v->v.f != floor(v->v.f)) return *i = 0, 1;
        *i = (int64_t)v->v.f;
        return 0;
    default: return -1;
    }
}

/* Shared body of rec_val_f64/i64: scalar or array of numbers. */
static int val_nums(const struct rec_val *v, double *df, int64_t *di, int max) {
    if (!v) return 0;
    const struct rec_val *items = v;
    int n = 1;
    if (v->type == RV_ARRAY) {
        items = v->v.a.items;
        n = (int)v->v.a.n;
    }
    if (n > max) return ct_seterr("expected at most %d numbers, got %d", max, n);
    for (int k = 0; k < n; k++) {
        double d;
        int64_t i;
        int rc = val_num(&items[k], &d, &i);
        if (di && rc == 2)
            return ct_seterr("integer %llu is out of range (largest %lld)", (unsigned long long)items[k].v.u,
                             (long long)INT64_MAX);
        if (rc < 0 || (di && rc > 0)) return ct_seterr(di ? "expected integers" : "expected numbers");
        if (df) df[k] = d;
        if (di) di[k] = i;
    }
    return n;
}

int rec_val_f64(const struct rec_val *v, double *out, int max) { return val_nums(v, out, NULL, max); }
int rec_val_i64(const struct rec_val *v, int64_t *out, int max) { return val_nums(v, NULL, out, max); }

int rec_meta_f64(const struct rec *r, const char *key, double *out, int max) {
    int n = val_nums(rec_meta_get(r, key), out, NULL, max);
    if (n < 0) ct_prefixerr("meta '%s'", key);
    return n;
}

int rec_meta_i64(const struct rec *r, const char *key, int64_t *out, int max) {
    int n = val_nums(rec_meta_get(r, key), NULL, out, max);
    if (n < 0) ct_prefixerr("meta '%s'", key);
    return n;
}

const char *rec_meta_str(const struct rec *r, const char *key) {
    const struct rec_val *v = rec_meta_get(r, key);
    return v && v->type == RV_STR ? v->v.s.p : NULL;
}

int rec_meta_strv(const struct rec *r, const char *key, const char ***out) {
    const struct rec_val *v = rec_meta_get(r, key);
    *out = NULL;
    if (!v) return 0;
    if (v->type != RV_ARRAY) return ct_seterr("meta '%s': not an array", key);
    const char **s = tn_arena_alloc(r->arena, ((size_t)v->v.a.n + 1) * sizeof *s);
    for (uint32_t i = 0; i < v->v.a.n; i++) {
        if (v->v.a.items[i].type != RV_STR) return ct_seterr("meta '%s': item %u is not a string", key, i);
        s[i] = v->v.a.items[i].v.s.p;
    }
    s[v->v.a.n] = NULL;
    *out = s;
    return (int)v->v.a.n;
}

/* ---- JSON printing ---- */

/* JSON strings through the one escaper of ctvis (csv_put_json_str): valid UTF-8 out. */
static void json_str(FILE *f, const char *p, size_t n) {
    struct csv_buf b = { 0 };
    csv_put_json_str(&b, p, n);
    fwrite(b.p, 1, b.n, f);
    csv_buf_free(&b);
}

void rec_json_str(FILE *f, const char *s) { json_str(f, s, strlen(s)); }

static void json_obj(FILE *f, const msgpack_object *o, int max_items) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", f); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isnan(o->via.f64)) fputs("NaN", f);
        else if (isinf(o->via.f64)) fputs(o->via.f64 > 0 ? "Infinity" : "-Infinity", f);
        else fprintf(f, "%.10g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR: json_str(f, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: fprintf(f, "\"<bin %u bytes>\"", o->via.bin.size); break;
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t n = o->via.array.size, show = n;
        if (max_items > 0 && n > (uint32_t)max_items) show = (uint32_t)max_items;
        fputc('[', f);
        for (uint32_t i = 0; i < show; i++) {
            if (i) fputs(", ", f);
            json_obj(f, &o->via.array.ptr[i], max_items);
        }
        if (show < n) fprintf(f, ", \"...(%u items)\"", n);
        fputc(']', f);
        break;
    }
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i) fputs(", ", f);
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR) json_str(f, k->via.str.ptr, k->via.str.size);
            else {
                fputc('"', f);
                json_obj(f, k, max_items);
                fputc('"', f);
            }
            fputs(": ", f);
            json_obj(f, &o->via.map.ptr[i].val, max_items);
        }
        fputc('}', f);
        break;
    default: fputs("\"<ext>\"", f); break;
    }
}

void rec_val_print_json(const uint8_t *val, size_t n, FILE *f, int max_items) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)val, n, &off) == MSGPACK_UNPACK_SUCCESS)
        json_obj(f, &u.data, max_items);
    else
        fputs("\"<undecodable>\"", f);
    msgpack_unpacked_destroy(&u);
}

/* ====================================================================== */
/* ---- reader: a pull parser over a buffered fd ---- */

struct rec_reader {
    int        fd;
    int        owns_fd;
    char      *path;                 /* the input being read */
    char     **paths;                /* every input, in order */
    int        n_paths, cur;
    uint8_t   *buf;
    size_t     pos, end;             /* unread bytes are buf[pos..end) */
    int        eof;
    long       index;                /* index of the next record */
    uint64_t   consumed;             /* bytes of the stream consumed so far */
    uint64_t   rec_start;            /* offset where the current record started */
    ZSTD_DCtx *dctx;
    /* capture of raw bytes (metadata values) */
    struct rec_mp *cap;
    /* rec_reader_set_tensor_filter */
    int      (*keep)(const char *name, void *ctx);
    void      *keep_ctx;
    uint64_t   meta_used;            /* decoded size of this record's meta so far (MAX_META) */
    int64_t    input_left;           /* bytes of a regular-file input after input_start; -1 unknown */
    int64_t    input_off0;           /* its file offset when opened */
    uint64_t   input_start;          /* rd->consumed when the current input was opened */
    char       ctx[160];             /* "FILE: record N (id X)" for out-of-memory messages */
};

static void set_pipe_size(int fd) {
#ifdef F_SETPIPE_SZ
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && fcntl(fd, F_GETPIPE_SZ) < PIPE_SZ)
        (void)fcntl(fd, F_SETPIPE_SZ, PIPE_SZ);   /* best effort: fewer, larger transfers */
#else
    (void)fd;
#endif
}

/* Open input path ("-" = stdin) as the reader's current input.  -1 + lasterr. */
static int rd_open_input(struct rec_reader *rd, const char *path) {
    int fd;
    if (!strcmp(path, "-")) {
        if (isatty(0)) return ct_seterr("refusing to read a binary stream from a terminal (give a file or a pipe)");
        fd = 0;
    } else {
        fd = open(path, O_RDONLY);
        if (fd < 0) return ct_seterr("%s: %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            close(fd);
            return ct_seterr("%s: is a directory", path);
        }
    }
    set_pipe_size(fd);
    /* a regular file says how many bytes are left: a payload longer than that is
     * refused before its buffer is allocated (a pipe cannot tell) */
    struct stat st;
    off_t at = lseek(fd, 0, SEEK_CUR);
    rd->input_left = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && at >= 0 && st.st_size >= at ? st.st_size - at : -1;
    rd->input_off0 = at;
    rd->input_start = rd->consumed;
    rd->fd = fd;
    rd->owns_fd = fd != 0;
    rd->path = (char *)path;
    rd->pos = rd->end = 0;
    rd->eof = 0;
    return 0;
}

struct rec_reader *rec_reader_open_many(int n, char *const *paths) {
    struct rec_reader *rd = ct_xcalloc(1, sizeof *rd);
    rd->n_paths = n > 0 ? n : 1;
    rd->paths = ct_xcalloc((size_t)rd->n_paths, sizeof *rd->paths);
    for (int i = 0; i < rd->n_paths; i++) rd->paths[i] = ct_xstrdup(n > 0 && paths[i] ? paths[i] : "-");
    rd->fd = -1;
    rd->buf = ct_xaligned(RD_BUFSZ);
    if (rd_open_input(rd, rd->paths[0]) != 0) {
        rec_reader_close(rd);
        return NULL;
    }
    return rd;
}

struct rec_reader *rec_reader_open(const char *path) {
    char *p = (char *)(path ? path : "-");
    return rec_reader_open_many(1, &p);
}

void rec_reader_close(struct rec_reader *rd) {
    if (!rd) return;
    if (rd->owns_fd && rd->fd >= 0) close(rd->fd);
    if (rd->dctx) ZSTD_freeDCtx(rd->dctx);
    for (int i = 0; i < rd->n_paths; i++) free(rd->paths[i]);
    free(rd->paths);
    free(rd->buf);
    free(rd);
}

const char *rec_reader_path(const struct rec_reader *rd) { return rd->path; }

void rec_reader_set_tensor_filter(struct rec_reader *rd, int (*keep)(const char *name, void *ctx), void *ctx) {
    rd->keep = keep;
    rd->keep_ctx = ctx;
}

/* read() into p up to n bytes; returns bytes read, 0 at EOF, -1 on error */
static ssize_t rd_sys(struct rec_reader *rd, void *p, size_t n) {
    for (;;) {
        ssize_t k = read(rd->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return ct_seterr("read: %s", strerror(errno));
        if (k == 0) rd->eof = 1;
        return k;
    }
}

/* Ensure at least n (<= RD_BUFSZ) unread bytes are buffered.  Returns 0, or -1
 * with lasterr ("truncated stream" at EOF). */
static int rd_need(struct rec_reader *rd, size_t n) {
    CT_ASSERT(n <= RD_BUFSZ);
    if (rd->end - rd->pos >= n) return 0;
    if (rd->pos > 0) {                       /* slide unread bytes to the front */
        memmove(rd->buf, rd->buf + rd->pos, rd->end - rd->pos);
        rd->end -= rd->pos;
        rd->pos = 0;
    }
    while (rd->end < n) {
        ssize_t k = rd_sys(rd, rd->buf + rd->end, RD_BUFSZ - rd->end);
        if (k < 0) return -1;
        if (k == 0)
            return ct_seterr("truncated stream (ends %llu bytes into the record)",
                             (unsigned long long)(rd->consumed + rd->end - rd->rec_start));
        rd->end += (size_t)k;
    }
    return 0;
}

/* A payload of n bytes that the rest of a regular file cannot hold: -1 + lasterr. */
static int rd_fits(struct rec_reader *rd, uint64_t n) {
    if (rd->input_left < 0) return 0;
    uint64_t used = rd->consumed - rd->input_start;
    struct stat st;
    /* a file still being written may have grown since it was opened: look again */
    if (n > (uint64_t)rd->input_left - used && fstat(rd->fd, &st) == 0 && st.st_size - rd->input_off0 > rd->input_left)
        rd->input_left = st.st_size - rd->input_off0;
    uint64_t left = (uint64_t)rd->input_left - used;
    if (n > left)
        return ct_seterr("truncated stream (a payload of %llu bytes, but the input ends %llu bytes later)",
                         (unsigned long long)n, (unsigned long long)left);
    return 0;
}

static void rd_capture(struct rec_reader *rd, const void *p, size_t n) {
    if (rd->cap) mp_cb(rd->cap, p, n);
}

/* Consume n buffered bytes (after rd_need). */
static const uint8_t *rd_take(struct rec_reader *rd, size_t n) {
    const uint8_t *p = rd->buf + rd->pos;
    rd_capture(rd, p, n);
    rd->pos += n;
    rd->consumed += n;
    return p;
}

/* Copy n payload bytes into dst (NULL = discard), reading large payloads
 * directly into dst without going through the buffer. */
static int rd_copy(struct rec_reader *rd, void *dst, uint64_t n) {
    uint8_t *d = dst;
    size_t have = rd->end - rd->pos;
    size_t k = have < n ? have : (size_t)n;
    if (k) {
        if (d) memcpy(d, rd->buf + rd->pos, k);
        rd_capture(rd, rd->buf + rd->pos, k);
        rd->pos += k;
        rd->consumed += k;
        if (d) d += k;
        n -= k;
    }
    while (n > 0) {
        if (d && !rd->cap && n >= RD_BUFSZ / 2) {      /* large: straight into dst */
            ssize_t got = rd_sys(rd, d, n > (1u << 30) ? (1u << 30) : (size_t)n);
            if (got < 0) return -1;
            if (got == 0)
                return ct_seterr("truncated stream (ends %llu bytes into the record)",
                                 (unsigned long long)(rd->consumed - rd->rec_start));
            d += got;
            n -= (uint64_t)got;
            rd->consumed += (uint64_t)got;
            continue;
        }
        if (rd_need(rd, 1) != 0) return -1;     /* buffer is empty here: refill it */
        size_t avail = rd->end - rd->pos;
        k = avail < n ? avail : (size_t)n;
        if (d) {
            memcpy(d, rd->buf + rd->pos, k);
            d += k;
        }
        rd_capture(rd, rd->buf + rd->pos, k);
        rd->pos += k;
        rd->consumed += k;
        n -= k;
    }
    return 0;
}

/* ---- msgpack tokens ---- */

enum tok_kind { T_NIL, T_BOOL, T_INT, T_UINT, T_FLOAT, T_STR, T_BIN, T_ARRAY, T_MAP, T_EXT };

struct tok {
    enum tok_kind kind;
    uint64_t      n;                 /* STR/BIN/EXT: payload bytes; ARRAY/MAP: items */
    int64_t       i;
    uint64_t      u;
    double        f;
    uint8_t       byte;              /* the type byte, for messages */
};

static const char *tok_name(enum tok_kind k) {
    static const char *n[] = { "nil", "bool", "int", "int", "float", "str", "bin", "array", "map", "ext" };
    return n[k];
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Read a token header; payloads of STR/BIN/EXT are left unread. */
static int rd_tok(struct rec_reader *rd, struct tok *t) {
    if (rd_need(rd, 1) != 0) return -1;
    uint8_t b = *rd_take(rd, 1);
    memset(t, 0, sizeof *t);
    t->byte = b;
    const uint8_t *p;
#define NEED(k) do { if (rd_need(rd, (k)) != 0) return -1; p = rd_take(rd, (k)); } while (0)
    if (b <= 0x7f) { t->kind = T_UINT; t->u = b; t->i = b; return 0; }
    if (b >= 0xe0) { t->kind = T_INT; t->i = (int8_t)b; return 0; }
    if ((b & 0xf0) == 0x80) { t->kind = T_MAP; t->n = b & 0x0f; return 0; }
    if ((b & 0xf0) == 0x90) { t->kind = T_ARRAY; t->n = b & 0x0f; return 0; }
    if ((b & 0xe0) == 0xa0) { t->kind = T_STR; t->n = b & 0x1f; return 0; }
    switch (b) {
    case 0xc0: t->kind = T_NIL; return 0;
    case 0xc2: case 0xc3: t->kind = T_BOOL; t->u = b & 1; return 0;
    case 0xc4: NEED(1); t->kind = T_BIN; t->n = p[0]; return 0;
    case 0xc5: NEED(2); t->kind = T_BIN; t->n = be(p, 2); return 0;
    case 0xc6: NEED(4); t->kind = T_BIN; t->n = be(p, 4); return 0;
    case 0xc7: NEED(2); t->kind = T_EXT; t->n = p[0]; return 0;    /* + type byte, counted below */
    case 0xc8: NEED(3); t->kind = T_EXT; t->n = be(p, 2); return 0;
    case 0xc9: NEED(5); t->kind = T_EXT; t->n = be(p, 4); return 0;
    case 0xca: { NEED(4); uint32_t u = (uint32_t)be(p, 4); float f; memcpy(&f, &u, 4); t->kind = T_FLOAT; t->f = f; return 0; }
    case 0xcb: { NEED(8); uint64_t u = be(p, 8); double f; memcpy(&f, &u, 8); t->kind = T_FLOAT; t->f = f; return 0; }
    case 0xcc: NEED(1); t->kind = T_UINT; t->u = p[0]; return 0;
    case 0xcd: NEED(2); t->kind = T_UINT; t->u = be(p, 2); return 0;
    case 0xce: NEED(4); t->kind = T_UINT; t->u = be(p, 4); return 0;
    case 0xcf: NEED(8); t->kind = T_UINT; t->u = be(p, 8); return 0;
    case 0xd0: NEED(1); t->kind = T_INT; t->i = (int8_t)p[0]; return 0;
    case 0xd1: NEED(2); t->kind = T_INT; t->i = (int16_t)be(p, 2); return 0;
    case 0xd2: NEED(4); t->kind = T_INT; t->i = (int32_t)be(p, 4); return 0;
    case 0xd3: NEED(8); t->kind = T_INT; t->i = (int64_t)be(p, 8); return 0;
    case 0xd4: NEED(1); t->kind = T_EXT; t->n = 1; return 0;        /* fixext: type byte read */
    case 0xd5: NEED(1); t->kind = T_EXT; t->n = 2; return 0;
    case 0xd6: NEED(1); t->kind = T_EXT; t->n = 4; return 0;
    case 0xd7: NEED(1); t->kind = T_EXT; t->n = 8; return 0;
    case 0xd8: NEED(1); t->kind = T_EXT; t->n = 16; return 0;
    case 0xd9: NEED(1); t->kind = T_STR; t->n = p[0]; return 0;
    case 0xda: NEED(2); t->kind = T_STR; t->n = be(p, 2); return 0;
    case 0xdb: NEED(4); t->kind = T_STR; t->n = be(p, 4); return 0;
    case 0xdc: NEED(2); t->kind = T_ARRAY; t->n = be(p, 2); return 0;
    case 0xdd: NEED(4); t->kind = T_ARRAY; t->n = be(p, 4); return 0;
    case 0xde: NEED(2); t->kind = T_MAP; t->n = be(p, 2); return 0;
    case 0xdf: NEED(4); t->kind = T_MAP; t->n = be(p, 4); return 0;
    default: return ct_seterr("invalid msgpack byte 0x%02x", b);
    }
#undef NEED
}

/* Skip (or capture, when rd->cap is set) the rest of a value whose header is t. */
static int rd_skip_rest(struct rec_reader *rd, const struct tok *t, int depth) {
    if (depth > MAX_DEPTH) return ct_seterr("msgpack nesting deeper than %d", MAX_DEPTH);
    switch (t->kind) {
    case T_STR: case T_BIN: case T_EXT:
        if (rd->cap && (rd->meta_used += t->n) > MAX_META)     /* refuse before buffering it */
            return ct_seterr("metadata value larger than %zu MiB (decoded)", MAX_META >> 20);
        return rd_copy(rd, NULL, t->n);
    case T_ARRAY:
    case T_MAP: {
        uint64_t n = t->kind == T_MAP ? 2 * t->n : t->n;
        /* every item decodes to ~META_ITEM bytes however small its encoding (a nil is
         * one byte): refuse an oversized count before reading the items */
        if (rd->cap && rd->meta_used + n * META_ITEM > MAX_META)
            return ct_seterr("metadata value larger than %zu MiB (decoded: %llu items at %d bytes each)",
                             MAX_META >> 20, (unsigned long long)n, META_ITEM);
        for (uint64_t i = 0; i < n; i++) {
            struct tok c;
            if (rd_tok(rd, &c) != 0) return -1;
            if (rd->cap) rd->meta_used += META_ITEM;
            if (rd_skip_rest(rd, &c, depth + 1) != 0) return -1;
        }
        return 0;
    }
    default: return 0;
    }
}

/* Read a string token's payload into arena memory (NUL-terminated). */
static char *rd_str(struct rec_reader *rd, struct tn_arena *a, const char *what) {
    struct tok t;
    if (rd_tok(rd, &t) != 0) return NULL;
    if (t.kind != T_STR) {
        ct_seterr("%s: expected a string, got %s", what, tok_name(t.kind));
        return NULL;
    }
    if (t.n > MAX_SHORT) {
        ct_seterr("%s: string of %llu bytes is too long", what, (unsigned long long)t.n);
        return NULL;
    }
    char *s = tn_arena_alloc(a, t.n + 1);
    if (rd_copy(rd, s, t.n) != 0) return NULL;
    s[t.n] = 0;
    if (memchr(s, 0, t.n)) {
        ct_seterr("%s: string contains a NUL byte", what);
        return NULL;
    }
    return s;
}

/* Read a short string key into buf (truncation is an error). */
static int rd_key(struct rec_reader *rd, char *buf, size_t bufn, const char *what) {
    struct tok t;
    if (rd_tok(rd, &t) != 0) return -1;
    if (t.kind != T_STR) return ct_seterr("%s: key is %s, expected a string", what, tok_name(t.kind));
    if (t.n >= bufn) {
        /* keep unknown long keys readable: consume and report */
        if (rd_copy(rd, NULL, t.n) != 0) return -1;
        buf[0] = 0;
        return 1;                           /* "too long": the caller skips the value */
    }
    if (rd_copy(rd, buf, t.n) != 0) return -1;
    buf[t.n] = 0;
    return 0;
}

/* ---- tensors ---- */

enum { DATA_NONE, DATA_IN_TENSOR, DATA_BLOB };

static int zstd_error(size_t rc) { return ct_seterr("corrupt zstd frame: %s", ZSTD_getErrorName(rc)); }

/* Decompress a zstd payload of n bytes from the stream into dst (exactly want bytes). */
static int rd_zstd(struct rec_reader *rd, void *dst, size_t want, uint64_t n) {
    if (!rd->dctx) rd->dctx = ZSTD_createDCtx();
    ZSTD_DCtx_reset(rd->dctx, ZSTD_reset_session_only);
    ZSTD_outBuffer out = { dst, want, 0 };
    size_t last = 1;
    while (n > 0) {
        size_t chunk = n < RD_BUFSZ ? (size_t)n : RD_BUFSZ;
        if (rd->end == rd->pos && rd_need(rd, 1) != 0) return -1;
        size_t avail = rd->end - rd->pos;
        if (avail > chunk) avail = chunk;
        ZSTD_inBuffer in = { rd->buf + rd->pos, avail, 0 };
        while (in.pos < in.size) {
            /* one or more frames, skippable ones included: decompressStream starts the
             * next frame by itself; the output never grows past want */
            size_t out_before = out.pos, in_before = in.pos;
            last = ZSTD_decompressStream(rd->dctx, &out, &in);
            if (ZSTD_isError(last)) return zstd_error(last);
            if (out.pos == out_before && in.pos == in_before) {
                if (out.pos == out.size)
                    return ct_seterr("zstd payload decompresses to more than the %zu bytes its shape needs", want);
                return ct_seterr("corrupt zstd frame: no progress");
            }
        }
        rd->pos += avail;
        rd->consumed += avail;
        n -= avail;
    }
    if (last != 0) return ct_seterr("corrupt zstd frame: truncated frame");
    if (out.pos != want)
        return ct_seterr("zstd payload decompresses to %zu bytes but its shape needs %zu", out.pos, want);
    return 0;
}

/* The first frame header (avail bytes of it) against the size the shape needs:
 * a frame that alone holds more is refused before any decoding; one holding
 * less may be followed by more frames (the decoder checks the total).  A
 * skippable frame reports 0. */
static int check_content_size(const void *p, size_t avail, size_t want) {
    unsigned long long cs = ZSTD_getFrameContentSize(p, avail);
    if (cs == ZSTD_CONTENTSIZE_ERROR) return ct_seterr("corrupt zstd frame: bad frame header");
    if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs > want)
        return ct_seterr("zstd payload holds %llu bytes but its shape needs %zu", cs, want);
    return 0;
}

/* A whole payload in memory: the sum over all its frames, when every frame records it. */
static int check_total_size(const void *p, size_t n, size_t want) {
    const uint8_t *b = p;
    unsigned long long total = 0;
    while (n > 0) {
        unsigned long long cs = ZSTD_getFrameContentSize(b, n);      /* skippable: 0 */
        if (cs == ZSTD_CONTENTSIZE_ERROR) return ct_seterr("corrupt zstd frame: bad frame header");
        if (cs == ZSTD_CONTENTSIZE_UNKNOWN) return 0;                 /* the decoder checks */
        if ((total += cs) > want) break;
        size_t fn = ZSTD_findFrameCompressedSize(b, n);
        if (ZSTD_isError(fn)) return zstd_error(fn);
        b += fn;
        n -= fn;
    }
    if (total != want) return ct_seterr("zstd payload holds %llu%s bytes but its shape needs %zu", total,
                                        n ? " or more" : "", want);
    return 0;
}

/* Once dtype and shape are both known: the 4 GiB - 1 limit, before any allocation. */
static int check_tensor_size(const struct tn_tensor *t) {
    size_t nb = tn_nbytes(t);
    if (nb > MAX_TENSOR_BYTES) {
        char sh[128];
        return ct_seterr("tensor '%s': shape %s of %s needs %zu bytes; a tensor is limited to 4 GiB - 1 (%zu)", t->name,
                         tn_shape_str(t, sh, sizeof sh), tn_dtype_name(t->dtype), nb, MAX_TENSOR_BYTES);
    }
    return 0;
}

static int read_tensor(struct rec_reader *rd, struct tn_arena *a, struct tn_tensor *t) {
    struct tok mt;
    if (rd_tok(rd, &mt) != 0) return -1;
    if (mt.kind != T_MAP) return ct_seterr("tensor '%s': expected a map, got %s", t->name, tok_name(mt.kind));
    int have_dtype = 0, have_shape = 0, have_codec = 0, codec = -1, data_state = DATA_NONE;
    void *blob = NULL;
    uint64_t blob_n = 0;
    size_t in_tensor_n = 0;                      /* bytes at t->data in state DATA_IN_TENSOR */
    for (uint64_t f = 0; f < mt.n; f++) {
        char key[32];
        int kr = rd_key(rd, key, sizeof key, "tensor field");
        if (kr < 0) return ct_prefixerr("tensor '%s'", t->name);
        struct tok v;
        if (rd_tok(rd, &v) != 0) return -1;
        /* a repeated key could change the size after the payload was read: refuse it */
        if (kr == 0 && ((!strcmp(key, "dtype") && have_dtype) || (!strcmp(key, "shape") && have_shape) ||
                        (!strcmp(key, "codec") && have_codec)))
            return ct_seterr("tensor '%s': duplicate key '%s'", t->name, key);
        if (kr == 0 && !strcmp(key, "dtype")) {
            char s[32];
            if (v.kind != T_STR || v.n >= sizeof s)
                return ct_seterr("tensor '%s': dtype must be a short string", t->name);
            if (rd_copy(rd, s, v.n) != 0) return -1;
            s[v.n] = 0;
            if (tn_dtype_from_name(s, &t->dtype) != 0)
                return ct_seterr("tensor '%s': unknown dtype '%s' (known: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64)",
                                 t->name, s);
            have_dtype = 1;
            if (have_shape && check_tensor_size(t) != 0) return -1;
        } else if (kr == 0 && !strcmp(key, "shape")) {
            if (v.kind != T_ARRAY) return ct_seterr("tensor '%s': shape must be an array", t->name);
            if (v.n > TN_MAX_DIMS) return ct_seterr("tensor '%s': %llu dimensions (at most %d)", t->name,
                                                  (unsigned long long)v.n, TN_MAX_DIMS);
            t->ndim = (int)v.n;
            for (int i = 0; i < t->ndim; i++) {
                struct tok d;
                if (rd_tok(rd, &d) != 0) return -1;
                if (d.kind != T_UINT || d.u > (uint64_t)1 << 40)
                    return ct_seterr("tensor '%s': shape[%d] is not a non-negative integer", t->name, i);
                t->shape[i] = (int64_t)d.u;
            }
            if (tn_shape_numel(t->ndim, t->shape) < 0)
                return ct_seterr("tensor '%s': shape holds more than 2^%d elements", t->name, TN_MAX_NUMEL_LOG2);
            tn_set_contiguous(t);
            have_shape = 1;
            if (have_dtype && check_tensor_size(t) != 0) return -1;
        } else if (kr == 0 && !strcmp(key, "codec")) {
            char s[16];
            if (v.kind != T_STR || v.n >= sizeof s) return ct_seterr("tensor '%s': codec must be a short string", t->name);
            if (rd_copy(rd, s, v.n) != 0) return -1;
            s[v.n] = 0;
            if (!strcmp(s, "raw")) codec = REC_RAW;
            else if (!strcmp(s, "zstd")) codec = REC_ZSTD;
            else return ct_seterr("tensor '%s': unknown codec '%s' (known: raw zstd)", t->name, s);
            have_codec = 1;
        } else if (kr == 0 && !strcmp(key, "data")) {
            if (v.kind != T_BIN) return ct_seterr("tensor '%s': data must be bin, got %s", t->name, tok_name(v.kind));
            if (data_state != DATA_NONE) return ct_seterr("tensor '%s': duplicate data", t->name);
            if (rd_fits(rd, v.n) != 0) return ct_prefixerr("tensor '%s'", t->name);
            /* before dtype and shape: the payload is kept as it comes, never beyond the tensor limit */
            if (!(have_dtype && have_shape) && v.n > MAX_TENSOR_BYTES)
                return ct_seterr("tensor '%s': a payload of %llu bytes is over the tensor limit", t->name,
                                 (unsigned long long)v.n);
            size_t want = have_dtype && have_shape ? tn_nbytes(t) : 0;
            if (have_dtype && have_shape && codec == REC_ZSTD) {
                /* streaming decompression straight into the tensor */
                size_t peek = v.n < 18 ? (size_t)v.n : 18;
                if (rd_need(rd, peek) != 0) return -1;
                if (check_content_size(rd->buf + rd->pos, peek, want) != 0) return ct_prefixerr("tensor '%s'", t->name);
                t->data = tn_arena_alloc(a, want);
                if (rd_zstd(rd, t->data, want, v.n) != 0) return ct_prefixerr("tensor '%s'", t->name);
                data_state = DATA_IN_TENSOR;
                in_tensor_n = want;
                codec = REC_RAW;            /* already decoded */
            } else if (have_dtype && have_shape && v.n == want) {
                t->data = tn_arena_alloc(a, want);
                if (rd_copy(rd, t->data, v.n) != 0) return -1;
                data_state = DATA_IN_TENSOR;   /* raw, unless a later codec says zstd */
                in_tensor_n = want;
            } else {
                blob = tn_arena_alloc(a, (size_t)v.n);
                blob_n = v.n;
                if (rd_copy(rd, blob, v.n) != 0) return -1;
                data_state = DATA_BLOB;
            }
        } else {
            if (rd_skip_rest(rd, &v, 0) != 0) return -1;   /* unknown key: ignored */
        }
    }
    if (!have_dtype) return ct_seterr("tensor '%s': missing required key 'dtype'", t->name);
    if (!have_shape) return ct_seterr("tensor '%s': missing required key 'shape'", t->name);
    if (data_state == DATA_NONE) return ct_seterr("tensor '%s': missing required key 'data'", t->name);
    if (check_tensor_size(t) != 0) return -1;      /* shape and dtype after the data */
    size_t want = tn_nbytes(t);
    CT_ASSERT(data_state != DATA_IN_TENSOR || in_tensor_n == want);   /* keys cannot repeat */
    if (data_state == DATA_IN_TENSOR && codec == REC_ZSTD) {   /* codec came after data */
        blob = t->data;
        blob_n = want;
        data_state = DATA_BLOB;
    }
    if (data_state == DATA_BLOB) {
        if (codec == REC_ZSTD) {
            if (check_total_size(blob, (size_t)blob_n, want) != 0) return ct_prefixerr("tensor '%s'", t->name);
            t->data = tn_arena_alloc(a, want);
            size_t got = ZSTD_decompress(t->data, want, blob, (size_t)blob_n);
            if (ZSTD_isError(got)) return zstd_error(got), ct_prefixerr("tensor '%s'", t->name);
            if (got != want)
                return ct_seterr("tensor '%s': zstd payload decompresses to %zu bytes but its shape needs %zu",
                                 t->name, got, want);
        } else {
            if (blob_n != want) {
                char sh[128];
                return ct_seterr("tensor '%s': payload is %llu bytes but shape %s of %s needs %zu", t->name,
                                 (unsigned long long)blob_n, tn_shape_str(t, sh, sizeof sh), tn_dtype_name(t->dtype),
                                 want);
            }
            t->data = blob;
        }
    }
    return 0;
}

/* ---- records ---- */

static uint32_t key_hash(const char *k) {
    uint32_t h = 2166136261u;                    /* FNV-1a */
    for (; *k; k++) h = (h ^ (uint8_t)*k) * 16777619u;
    return h;
}

/* The meta map: every key found through a hash table (linear in the number of
 * keys; a repeated key replaces the earlier value, as Python's msgpack does). */
static int read_meta(struct rec_reader *rd, struct tn_arena *a, struct rec *r, const struct tok *mt) {
    if (mt->kind != T_MAP) return ct_seterr("meta: expected a map, got %s", tok_name(mt->kind));
    if (mt->n > MAX_META_KEYS) return ct_seterr("meta: %llu keys (at most %d)", (unsigned long long)mt->n, MAX_META_KEYS);
    if (rd->meta_used + mt->n * META_ITEM > MAX_META)
        return ct_seterr("meta larger than %zu MiB (decoded)", MAX_META >> 20);
    uint32_t tn = 16;
    while (tn < 2 * mt->n + r->n_meta) tn *= 2;
    int *slot = tn_arena_alloc(a, tn * sizeof *slot);
    memset(slot, 0xff, tn * sizeof *slot);        /* -1: empty */
    for (int i = 0; i < r->n_meta; i++) {         /* a second meta map in the same record */
        uint32_t h = key_hash(r->meta[i].key) & (tn - 1);
        while (slot[h] >= 0 && strcmp(r->meta[slot[h]].key, r->meta[i].key)) h = (h + 1) & (tn - 1);
        slot[h] = i;
    }
    for (uint64_t i = 0; i < mt->n; i++) {
        char *key = rd_str(rd, a, "meta key");
        if (!key) return -1;
        rd->meta_used += META_ITEM + strlen(key);
        struct rec_mp cap = { 0 };
        rd->cap = &cap;
        struct tok v;
        int rc = rd_tok(rd, &v);
        if (rc == 0) rc = rd_skip_rest(rd, &v, 0);
        rd->cap = NULL;
        if (rc != 0) {
            ct_prefixerr("meta '%s'", key);
            rec_mp_free(&cap);
            return -1;
        }
        size_t vn = cap.n;
        uint8_t *val = tn_arena_alloc(a, vn);
        memcpy(val, cap.buf, vn);
        rec_mp_free(&cap);
        uint32_t h = key_hash(key) & (tn - 1);
        while (slot[h] >= 0 && strcmp(r->meta[slot[h]].key, key)) h = (h + 1) & (tn - 1);
        if (slot[h] >= 0) {
            r->meta[slot[h]].val = val;
            r->meta[slot[h]].val_nbytes = vn;
        } else {
            slot[h] = r->n_meta;
            meta_append(r, key, val, vn);
        }
    }
    return 0;
}

/* Name the record in out-of-memory messages (ct_die from an allocation). */
static void rd_set_ctx(struct rec_reader *rd, const char *id) {
    int stdin_ = !strcmp(rd->path, "-");
    snprintf(rd->ctx, sizeof rd->ctx, "%s%srecord %ld (id %.64s)", stdin_ ? "" : rd->path, stdin_ ? "" : ": ",
             rd->index, id);
    ct_oom_context(rd->ctx);
}

static int read_record(struct rec_reader *rd, struct tn_arena *a, struct rec *r) {
    struct tok rt;
    if (rd_need(rd, 1) != 0) return -1;
    uint8_t first = rd->buf[rd->pos];
    if (rd_tok(rd, &rt) != 0) return -1;
    if (rt.kind != T_MAP)
        return ct_seterr("not a ctvis record (expected a msgpack map, found byte 0x%02x)", first);
    for (uint64_t k = 0; k < rt.n; k++) {
        char key[32];
        int kr = rd_key(rd, key, sizeof key, "record");
        if (kr < 0) return -1;
        if (kr == 0 && !strcmp(key, "schema")) {
            if (!(r->schema = rd_str(rd, a, "schema"))) return -1;
        } else if (kr == 0 && !strcmp(key, "id")) {
            if (!(r->id = rd_str(rd, a, "id"))) return -1;
            rd_set_ctx(rd, r->id);
        } else if (kr == 0 && !strcmp(key, "meta")) {
            struct tok mt;
            if (rd_tok(rd, &mt) != 0 || read_meta(rd, a, r, &mt) != 0) return -1;
        } else if (kr == 0 && !strcmp(key, "tensors")) {
            struct tok tt;
            if (rd_tok(rd, &tt) != 0) return -1;
            if (tt.kind != T_MAP) return ct_seterr("tensors: expected a map, got %s", tok_name(tt.kind));
            for (uint64_t i = 0; i < tt.n; i++) {
                struct tn_tensor *t = tn_arena_alloc(a, sizeof *t);
                memset(t, 0, sizeof *t);
                int kr2 = rd_key(rd, t->name, sizeof t->name, "tensor name");
                if (kr2 < 0) return -1;
                if (kr2 > 0) return ct_seterr("tensor name longer than %d bytes", TN_NAME_MAX - 1);
                if (rec_tensor(r, t->name)) return ct_seterr("duplicate tensor '%s'", t->name);
                if (r->n_tensors >= REC_MAX_TENSORS) return ct_seterr("more than %d tensors", REC_MAX_TENSORS);
                if (rd->keep && !rd->keep(t->name, rd->keep_ctx)) {    /* filtered out: skip unread */
                    struct tok v;
                    if (rd_tok(rd, &v) != 0 || rd_skip_rest(rd, &v, 0) != 0) return ct_prefixerr("tensor '%s'", t->name);
                    continue;
                }
                if (read_tensor(rd, a, t) != 0) return -1;
                r->tensors[r->n_tensors++] = t;
            }
        } else {
            struct tok v;
            if (rd_tok(rd, &v) != 0 || rd_skip_rest(rd, &v, 0) != 0) return -1;
        }
    }
    if (!r->schema) return ct_seterr("missing required key 'schema'");
    if (!r->id) return ct_seterr("missing required key 'id'");
    char name[256];
    int major;
    if (rec_schema_split(r->schema, name, sizeof name, &major) != 0)
        return ct_seterr("malformed schema '%s' (expected name/major, e.g. ct.image/1)", r->schema);
    return 0;
}

int rec_read(struct rec_reader *rd, struct tn_arena *arena, struct rec *r) {
    memset(r, 0, sizeof *r);
    r->arena = arena;
    r->index = rd->index;
    r->schema = r->id = NULL;
    /* clean end of an input: no byte at a record boundary; then the next input */
    while (rd->end == rd->pos) {
        rd->pos = rd->end = 0;
        ssize_t k = rd_sys(rd, rd->buf, RD_BUFSZ);
        if (k < 0) return strcmp(rd->path, "-") ? ct_prefixerr("%s", rd->path) : -1;
        if (k > 0) {
            rd->end = (size_t)k;
            break;
        }
        if (rd->cur + 1 >= rd->n_paths) return 0;
        if (rd->owns_fd) close(rd->fd);
        rd->fd = -1;
        if (rd_open_input(rd, rd->paths[++rd->cur]) != 0) return -1;
    }
    rd->rec_start = rd->consumed;
    rd->meta_used = 0;
    rd_set_ctx(rd, "?");
    int bad = read_record(rd, arena, r) != 0;
    ct_oom_context(NULL);
    if (bad) {
        ct_prefixerr("record %ld (id %s)", rd->index, r->id ? r->id : "?");
        if (strcmp(rd->path, "-")) ct_prefixerr("%s", rd->path);
        return -1;
    }
    rd->index++;
    return 1;
}

/* ====================================================================== */
/* ---- writer ---- */

struct rec_writer {
    int              fd;
    int              is_file;
    struct ct_atomic at;
    char            *path;
    uint8_t         *buf;
    size_t           n;
    size_t           committed;      /* buf[0..committed) holds only whole records */
    struct rec_wopts o;
    ZSTD_CCtx       *cctx;
    uint8_t         *zbuf;
    size_t           zcap;
    int              err;            /* sticky: first failure */
    msgpack_packer   pk;
};

int rec_wopts_parse(const char *s, struct rec_wopts *o) {
    if (!strcmp(s, "raw")) {
        o->codec = REC_RAW;
        return 0;
    }
    if (!strncmp(s, "zstd", 4) && (s[4] == 0 || s[4] == ':')) {
        o->codec = REC_ZSTD;
        o->level = 1;
        if (s[4] == ':') {
            long lv;
            if (ct_parse_long(s + 5, &lv) != 0 || lv < 1 || lv > 19)
                return ct_seterr("invalid zstd level '%s' (1..19)", s + 5);
            o->level = (int)lv;
        }
        return 0;
    }
    return ct_seterr("unknown compression '%s' (raw, zstd or zstd:LEVEL)", s);
}

void rec_wopts_default(struct rec_wopts *o) {
    o->codec = REC_RAW;
    o->level = 1;
    o->threads = 0;
    const char *e = getenv("CT_COMPRESS");
    if (e && *e && rec_wopts_parse(e, o) != 0) ct_warn("ignoring CT_COMPRESS: %s", ct_lasterr());
}

static int wr_flush(struct rec_writer *w) {
    if (w->err) return -1;
    if (w->n && ct_write_all(w->fd, w->buf, w->n) != 0) {
        w->err = 1;
        return -1;
    }
    w->n = 0;
    w->committed = 0;
    return 0;
}

static int wr_cb(void *data, const char *p, size_t len) {
    struct rec_writer *w = data;
    if (w->err) return -1;
    if (len >= WR_BUFSZ / 4) {               /* big payload: no copy */
        if (wr_flush(w) != 0) return -1;
        if (ct_write_all(w->fd, p, len) != 0) {
            w->err = 1;
            return -1;
        }
        return 0;
    }
    if (w->n + len > WR_BUFSZ && wr_flush(w) != 0) return -1;
    memcpy(w->buf + w->n, p, len);
    w->n += len;
    return 0;
}

struct rec_writer *rec_writer_open(const char *path, const struct rec_wopts *o) {
    struct rec_writer *w = ct_xcalloc(1, sizeof *w);
    if (o) w->o = *o;
    else rec_wopts_default(&w->o);
    if (!path || !strcmp(path, "-")) {
        if (isatty(1)) {
            ct_seterr("refusing to write a binary stream to a terminal (redirect stdout or use -o FILE)");
            free(w);
            return NULL;
        }
        w->fd = 1;
        set_pipe_size(1);
    } else {
        if (ct_atomic_open(&w->at, path) != 0) {
            free(w);
            return NULL;
        }
        w->fd = w->at.fd;
        w->is_file = 1;
    }
    /* a closed reader must surface as an EPIPE error we report, not a silent death */
    signal(SIGPIPE, SIG_IGN);
    w->path = ct_xstrdup(path && strcmp(path, "-") ? path : "stdout");
    w->buf = ct_xaligned(WR_BUFSZ);
    msgpack_packer_init(&w->pk, w, wr_cb);
    return w;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Compress n bytes of p into w->zbuf; returns compressed size or 0 on error. */
static size_t wr_zstd(struct rec_writer *w, const void *p, size_t n) {
    if (!w->cctx) {
        w->cctx = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->o.level);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);   /* corruption is detected, not decoded */
        if (w->o.threads > 1) ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_nbWorkers, w->o.threads);
    }
    size_t bound = ZSTD_compressBound(n);
    if (bound > w->zcap) {
        free(w->zbuf);
        w->zbuf = ct_xmalloc(bound);
        w->zcap = bound;
    }
    size_t z = ZSTD_compress2(w->cctx, w->zbuf, w->zcap, p, n);
    if (ZSTD_isError(z)) {
        ct_seterr("zstd compression failed: %s", ZSTD_getErrorName(z));
        return 0;
    }
    return z;
}

int rec_write(struct rec_writer *w, const struct rec *r) {
    if (w->err) return ct_seterr("%s: earlier write failed", w->path);
    for (int i = 0; i < r->n_tensors; i++)      /* before any byte of the record is written */
        if (tn_nbytes(r->tensors[i]) > 0xffffffffu)
            return ct_seterr("tensor '%s' is %zu bytes; a record tensor is limited to 4 GiB", r->tensors[i]->name,
                             tn_nbytes(r->tensors[i]));
    msgpack_packer *pk = &w->pk;
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "schema");
    pack_cstr(pk, r->schema);
    pack_cstr(pk, "id");
    pack_cstr(pk, r->id ? r->id : "");
    pack_cstr(pk, "meta");
    msgpack_pack_map(pk, (size_t)r->n_meta);
    for (int i = 0; i < r->n_meta; i++) {
        pack_cstr(pk, r->meta[i].key);
        wr_cb(w, (const char *)r->meta[i].val, r->meta[i].val_nbytes);
    }
    pack_cstr(pk, "tensors");
    msgpack_pack_map(pk, (size_t)r->n_tensors);
    for (int i = 0; i < r->n_tensors; i++) {
        const struct tn_tensor *t = r->tensors[i];
        size_t nb = tn_nbytes(t);
        int z = w->o.codec == REC_ZSTD && nb >= ZSTD_MIN;
        size_t zn = 0;
        if (z && !(zn = wr_zstd(w, t->data, nb))) {
            w->err = 1;
            return -1;
        }
        pack_cstr(pk, t->name);
        msgpack_pack_map(pk, 4);
        pack_cstr(pk, "dtype");
        pack_cstr(pk, tn_dtype_name(t->dtype));
        pack_cstr(pk, "shape");
        msgpack_pack_array(pk, (size_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) msgpack_pack_uint64(pk, (uint64_t)t->shape[d]);
        pack_cstr(pk, "codec");
        pack_cstr(pk, z ? "zstd" : "raw");
        pack_cstr(pk, "data");
        msgpack_pack_bin(pk, z ? zn : nb);
        msgpack_pack_bin_body(pk, z ? (const void *)w->zbuf : t->data, z ? zn : nb);
    }
    if (w->err) return ct_prefixerr("%s", w->path);
    w->committed = w->n;
    return 0;
}

int rec_writer_close(struct rec_writer *w) {
    if (!w) return 0;
    int rc = wr_flush(w);
    if (rc != 0) ct_prefixerr("%s", w->path);
    if (w->is_file) {
        if (rc == 0) {
            rc = ct_atomic_commit(&w->at);
        } else {
            ct_atomic_abort(&w->at);
        }
    } else if (rc == 0 && close(1) != 0 && errno != EBADF) {
        rc = ct_seterr("stdout: close: %s", strerror(errno));
    }
    if (w->cctx) ZSTD_freeCCtx(w->cctx);
    free(w->zbuf);
    free(w->buf);
    free(w->path);
    free(w);
    return rc;
}

void rec_writer_abort(struct rec_writer *w) {
    if (!w) return;
    if (w->is_file) ct_atomic_abort(&w->at);
    else if (!w->err && w->committed) {        /* records already complete still reach the reader */
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", ct_lasterr());
        (void)ct_write_all(w->fd, w->buf, w->committed);
        ct_seterr("%s", keep);
    }
    if (w->cctx) ZSTD_freeCCtx(w->cctx);
    free(w->zbuf);
    free(w->buf);
    free(w->path);
    free(w);
}
