/*
 * stream.h - ctvis record streams: the msgpack records that flow between tools.
 *
 * A stream is a plain concatenation of msgpack maps, one map per record, no outer
 * array, so `cat a b | tool` works and memory stays bounded to one record.  A
 * record is
 *
 *     { "schema": "ct.image/1",            name/major version, required
 *       "id":     "valid_1_a_1",           case id, required
 *       "meta":   { ... },                 any msgpack map, optional
 *       "tensors": { "image": { "dtype": "f32", "shape": [D, H, W],
 *                               "codec": "raw" | "zstd", "data": <bin> }, ... } }
 *
 * Full specification: schemas/README.md.  Readers ignore unknown keys and fail
 * on a missing required key, a malformed tensor or truncation, with messages
 * "record N (id X): problem" (records are numbered from 0).
 *
 *     struct rec_reader *in = rec_reader_open("-");          // stdin
 *     struct rec_writer *out = rec_writer_open("-", NULL);   // stdout, CT_COMPRESS default
 *     struct tn_arena *a = tn_arena_new(0);
 *     struct rec r;
 *     int rc;
 *     while ((rc = rec_read(in, a, &r)) > 0) {
 *         if (rec_expect(&r, "ct.image", 1) != 0) ct_die("%s", ct_lasterr());
 *         struct tn_tensor *img = rec_tensor(&r, "image");
 *         ...
 *         if (rec_write(out, &r) != 0) ct_die("%s", ct_lasterr());
 *         tn_arena_reset(a);                                  // record's memory ends here
 *     }
 *     if (rc < 0 || rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
 *
 * Threads: a reader, a writer and a record (with its arena) belong to one
 * thread at a time; different ones may be used from different threads, except
 * rec_history_append (a per-process cache, below).  Decoded meta values
 * (rec_meta_get) and string arrays (rec_meta_strv) live in the record's arena.
 */
#ifndef CT_STREAM_H
#define CT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tensor.h"

#define REC_MAX_TENSORS 1024

/* ---- decoded metadata values (read-only views in the record's arena) ---- */
enum rec_vtype { RV_NIL, RV_BOOL, RV_INT, RV_UINT, RV_FLOAT, RV_STR, RV_BIN, RV_ARRAY, RV_MAP, RV_EXT };

struct rec_val {
    enum rec_vtype type;
    union {
        int      b;                  /* RV_BOOL */
        int64_t  i;                  /* RV_INT (negative) */
        uint64_t u;                  /* RV_UINT */
        double   f;                  /* RV_FLOAT */
        struct { const char *p; uint32_t n; } s;                  /* RV_STR (NUL-terminated), RV_BIN */
        struct { struct rec_val *items; uint32_t n; } a;          /* RV_ARRAY */
        struct { const char **keys; struct rec_val *vals; uint32_t n; } m; /* RV_MAP (non-str keys: "") */
    } v;
};

/* One metadata entry: the key and its value as raw msgpack bytes. */
struct rec_meta_entry {
    const char    *key;
    const uint8_t *val;              /* one msgpack value */
    size_t         val_nbytes;
};

struct rec {
    long                    index;   /* 0-based position in the input stream; -1 for new records */
    const char             *schema;  /* "ct.image/1" */
    const char             *id;      /* case id */
    int                     n_meta;
    int                     cap_meta;
    struct rec_meta_entry  *meta;    /* in arena */
    int                     n_tensors;
    struct tn_tensor       *tensors[REC_MAX_TENSORS];
    struct tn_arena        *arena;   /* owner of everything above */
};

/* ---- building records ---- */
/* Start an empty record; schema and id are copied into the arena. */
void rec_init(struct rec *r, struct tn_arena *a, const char *schema, const char *id);
/* Add (or replace, by name) a tensor; the record borrows t, which must outlive it. */
void rec_add_tensor(struct rec *r, struct tn_tensor *t);
/* Remove a tensor by name; returns 1 if found. */
int  rec_drop_tensor(struct rec *r, const char *name);
/* The tensor with this name, or NULL. */
struct tn_tensor *rec_tensor(const struct rec *r, const char *name);
/* Same, but NULL with lasterr "missing tensor 'name'" */
struct tn_tensor *rec_tensor_req(const struct rec *r, const char *name);
/* Copy every meta entry of src into dst (values are shared, not duplicated). */
void rec_meta_copy(struct rec *dst, const struct rec *src);

/* Check the schema name and major version: "name/major".  -1 + lasterr. */
int rec_expect(const struct rec *r, const char *name, int major);
/* Split r->schema into name and major; -1 when malformed. */
int rec_schema_split(const char *schema, char *name, size_t name_n, int *major);

/* ---- metadata: reading ---- */
int  rec_meta_has(const struct rec *r, const char *key);
/* Decoded value of key (arena), or NULL when absent. */
const struct rec_val *rec_meta_get(const struct rec *r, const char *key);
/* Numbers: a scalar or an array of numbers.  Returns the count (0 when absent),
 * or -1 + lasterr when not numeric or longer than max. */
int  rec_meta_f64(const struct rec *r, const char *key, double *out, int max);
int  rec_meta_i64(const struct rec *r, const char *key, int64_t *out, int max);
/* String value or NULL (absent or not a string). */
const char *rec_meta_str(const struct rec *r, const char *key);
/* Strings: an array of strings, beside rec_meta_set_strv.  Returns the count
 * (0 when absent) and sets *out to an array of that many pointers (plus a
 * NULL), all in the record's arena (valid until it is reset), or -1 + lasterr
 * "meta 'KEY': ..." when not an array or an item is not a string. */
int  rec_meta_strv(const struct rec *r, const char *key, const char ***out);

/* Helpers on decoded values */
const struct rec_val *rec_val_map_get(const struct rec_val *v, const char *key);
int  rec_val_f64(const struct rec_val *v, double *out, int max);   /* like rec_meta_f64 */
int  rec_val_i64(const struct rec_val *v, int64_t *out, int max);

/* ---- metadata: writing (values are msgpack-encoded into the arena) ---- */
void rec_meta_set_raw(struct rec *r, const char *key, const uint8_t *val, size_t n);
void rec_meta_set_str(struct rec *r, const char *key, const char *s);
void rec_meta_set_i64(struct rec *r, const char *key, int64_t v);
void rec_meta_set_f64(struct rec *r, const char *key, double v);
void rec_meta_set_f64v(struct rec *r, const char *key, const double *v, int n);   /* array */
void rec_meta_set_i64v(struct rec *r, const char *key, const int64_t *v, int n);  /* array */
void rec_meta_set_strv(struct rec *r, const char *key, const char *const *s, int n);
int  rec_meta_del(struct rec *r, const char *key);
/* 4x4 matrices as an array of 4 rows of 4 numbers (numpy: np.array(meta[key])). */
void rec_meta_set_mat4(struct rec *r, const char *key, const double m[4][4]);
/* 1 found, 0 absent, -1 + lasterr when malformed */
int  rec_meta_mat4(const struct rec *r, const char *key, double m[4][4]);
/* Append {"tool": progname, "version": CT_VERSION, "args": argv[1..]} to meta "history".
 * Process state: the packed args (read from /proc/self/cmdline, in the order
 * the user typed them) are built on the first call and cached for the process
 * (rebuilt when argc changes), so call it from one thread at a time. */
void rec_history_append(struct rec *r, int argc, char **argv);

/* A small msgpack builder for nested metadata values (maps of arrays ...). */
struct rec_mp {
    uint8_t *buf;                    /* malloc'd; free with rec_mp_free */
    size_t   n, cap;
};
void rec_mp_map(struct rec_mp *m, uint32_t n);
void rec_mp_array(struct rec_mp *m, uint32_t n);
void rec_mp_str(struct rec_mp *m, const char *s);
void rec_mp_i64(struct rec_mp *m, int64_t v);
void rec_mp_f64(struct rec_mp *m, double v);
void rec_mp_bool(struct rec_mp *m, int v);
void rec_mp_nil(struct rec_mp *m);
void rec_mp_bin(struct rec_mp *m, const void *p, size_t n);
void rec_mp_free(struct rec_mp *m);
/* Shorthand: rec_meta_set_raw(r, key, m->buf, m->n) then rec_mp_free(m). */
void rec_meta_set_mp(struct rec *r, const char *key, struct rec_mp *m);

/* Print one msgpack value as JSON text (bin as "<bin N bytes>"); arrays longer
 * than max_items (0 = no limit) are cut with a "...(N items)" marker. */
void rec_val_print_json(const uint8_t *val, size_t n, FILE *f, int max_items);
/* Print s as a JSON string literal (quoted, escaped). */
void rec_json_str(FILE *f, const char *s);

/* ---- reading streams ---- */
struct rec_reader;
/* path "-" = stdin (refused when it is a terminal).  NULL + lasterr. */
struct rec_reader *rec_reader_open(const char *path);
/* Several inputs read one after the other as one stream, as `cat` would
 * (n == 0: stdin).  Later files are opened when reached.  NULL + lasterr. */
struct rec_reader *rec_reader_open_many(int n, char *const *paths);
/* Read the next record into r, allocating from arena.
 * Returns 1 (a record), 0 (clean end of every input) or -1 (lasterr:
 * "FILE: record N (id X): problem", without "FILE: " for stdin).  Records are
 * numbered from 0 across all inputs.  r is valid until the arena is reset. */
int  rec_read(struct rec_reader *rd, struct tn_arena *arena, struct rec *r);
void rec_reader_close(struct rec_reader *rd);
/* The input being read ("-" for stdin). */
const char *rec_reader_path(const struct rec_reader *rd);
/* Keep only the tensors whose name keep(name, ctx) accepts (nonzero); the others are skipped
 * without being stored (their bytes are still read, so truncation is still an error).  For a
 * stage that needs a few tensors of a large weights record.  keep NULL = every tensor (default). */
void rec_reader_set_tensor_filter(struct rec_reader *rd, int (*keep)(const char *name, void *ctx), void *ctx);

/* ---- writing streams ---- */
enum rec_codec { REC_RAW, REC_ZSTD };

struct rec_wopts {
    enum rec_codec codec;            /* REC_RAW; tensors under 256 bytes are always raw */
    int            level;            /* zstd level, 1 by default */
    int            threads;          /* zstd worker threads (0 = in the calling thread) */
};
/* "raw", "zstd" or "zstd:LEVEL" into o; -1 + lasterr */
int  rec_wopts_parse(const char *s, struct rec_wopts *o);
/* Defaults from the environment: CT_COMPRESS=raw|zstd[:LEVEL] */
void rec_wopts_default(struct rec_wopts *o);

struct rec_writer;
/* path "-" = stdout (refused when it is a terminal); any other path is written
 * to a temporary file renamed into place by rec_writer_close().  o NULL =
 * rec_wopts_default().  NULL + lasterr.
 * Process state: sets SIGPIPE to SIG_IGN for the whole process (never
 * restored), so that a reader that goes away is the error "write: broken pipe"
 * from rec_write / rec_writer_close rather than a silent death by signal (exit
 * 141); textout_open (textout.h) does the same for text outputs. */
struct rec_writer *rec_writer_open(const char *path, const struct rec_wopts *o);
int  rec_write(struct rec_writer *w, const struct rec *r);   /* 0, or -1 + lasterr */
/* Flush and close (rename into place for files); -1 + lasterr on any failed write. */
int  rec_writer_close(struct rec_writer *w);
/* Close without committing: a file output is removed; on stdout the records
 * already written completely are flushed, a partial one is dropped.  NULL-safe. */
void rec_writer_abort(struct rec_writer *w);

#endif
