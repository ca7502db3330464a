/*
 * csv.c - RFC 4180 reader and writer helpers (see csv.h).
 *
 * The reader is a byte-at-a-time state machine over a 64 KiB window of the
 * input, validating UTF-8 as it goes so that an error names the exact line and
 * column of the bad byte.  A row's fields are gathered in one buffer, each
 * NUL-terminated; the pointers handed out stay valid until the next row.
 */
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ct.h"

/* ---- byte buffer ---- */

static void buf_reserve(struct csv_buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = ct_xrealloc(b->p, cap);
    b->cap = cap;
}

void csv_buf_put(struct csv_buf *b, const void *s, size_t n) {
    buf_reserve(b, n);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void csv_buf_puts(struct csv_buf *b, const char *s) { csv_buf_put(b, s, strlen(s)); }

void csv_buf_putc(struct csv_buf *b, int c) {
    buf_reserve(b, 1);
    b->p[b->n++] = (char)c;
    b->p[b->n] = 0;
}

void csv_buf_printf(struct csv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k <= 0) return;
    buf_reserve(b, (size_t)k);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void csv_buf_free(struct csv_buf *b) {
    if (!b) return;
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

void csv_put_field(struct csv_buf *b, const char *s, size_t n) {
    int quote = 0;
    for (size_t i = 0; i < n && !quote; i++) quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        csv_buf_put(b, s, n);
        return;
    }
    csv_buf_putc(b, '"');
    size_t run = 0;                          /* copy runs between quotes in one go */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            csv_buf_put(b, s + run, i + 1 - run);
            csv_buf_putc(b, '"');
            run = i + 1;
        }
    }
    csv_buf_put(b, s + run, n - run);
    csv_buf_putc(b, '"');
}

/* ---- UTF-8 ---- */

/* Incremental validator (Unicode 15, table 3-7): need = continuation bytes
 * still expected, [lo, hi] = the range allowed for the next one. */
struct utf8_state {
    int           need;
    unsigned char lo, hi;
};

/* Feed one byte: 0 ok, -1 invalid. */
static inline int utf8_step(struct utf8_state *u, unsigned char c) {
    if (u->need) {
        if (c < u->lo || c > u->hi) return -1;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return 0;
    }
    if (c < 0x80) return 0;
    u->lo = 0x80;
    u->hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) u->need = 1;
    else if (c == 0xe0) u->need = 2, u->lo = 0xa0;
    else if (c >= 0xe1 && c <= 0xec) u->need = 2;
    else if (c == 0xed) u->need = 2, u->hi = 0x9f;          /* no surrogates */
    else if (c >= 0xee && c <= 0xef) u->need = 2;
    else if (c == 0xf0) u->need = 3, u->lo = 0x90;          /* no overlong 4-byte forms */
    else if (c >= 0xf1 && c <= 0xf3) u->need = 3;
    else if (c == 0xf4) u->need = 3, u->hi = 0x8f;          /* <= U+10FFFF */
    else return -1;                                          /* 80..c1, f5..ff */
    return 0;
}

size_t csv_utf8_check(const char *s, size_t n) {
    struct utf8_state u = { 0, 0x80, 0xbf };
    size_t start = 0;                        /* first byte of the current sequence */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!u.need) {
            if (c < 0x80) continue;
            start = i;
        }
        if (utf8_step(&u, c) != 0) return start;
    }
    return u.need ? start : n;
}

/* The one escaper behind JSON strings and terminal text.  Valid UTF-8 passes
 * through except '"', '\\', the C0 controls, DEL and the C1 controls
 * (U+0080..U+009F, which terminals obey too); an invalid byte becomes U+FFFD in
 * JSON (the output stays valid UTF-8) and \xNN on a terminal.  One pass: plain
 * ASCII runs are copied in one go, multi-byte sequences validated where they are. */
static void put_escaped(struct csv_buf *b, const char *s, size_t n, int json) {
    static const char hex[] = "0123456789abcdef";
    if (n == 0) return;                                   /* s may be NULL (msgpack's empty string) */
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && (c != '"' || !json)) {
            i++;
            continue;
        }
        size_t len = 1;                                   /* bytes of this character */
        unsigned cp = c;                                  /* what to escape, when escaped */
        int bad = 0;
        if (c >= 0x80) {
            struct utf8_state st = { 0 };
            if (utf8_step(&st, c) != 0) bad = 1;
            while (!bad && st.need) {
                if (i + len >= n || utf8_step(&st, u[i + len]) != 0) bad = 1;
                else len++;
            }
            if (bad) len = 1;
            else if (c == 0xc2 && u[i + 1] < 0xa0) cp = u[i + 1];      /* C1 control */
            else {                                        /* any other character: as is */
                i += len;
                continue;
            }
        }
        csv_buf_put(b, s + run, i - run);
        i += len;
        run = i;
        if (bad) {
            if (json) {
                csv_buf_puts(b, "\\ufffd");
            } else {
                char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
                csv_buf_put(b, e, 4);
            }
            continue;
        }
        const char *e = NULL;
        switch (cp) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = json ? "\\b" : NULL; break;
        case '\f': e = json ? "\\f" : NULL; break;
        default: break;
        }
        if (e) {
            csv_buf_puts(b, e);
        } else if (json) {
            char x[6] = { '\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15] };
            csv_buf_put(b, x, 6);
        } else if (cp >= 0x80) {                          /* C1: the two bytes, escaped */
            char x[8] = { '\\', 'x', 'c', '2', '\\', 'x', hex[cp >> 4], hex[cp & 15] };
            csv_buf_put(b, x, 8);
        } else {
            char x[4] = { '\\', 'x', hex[cp >> 4], hex[cp & 15] };
            csv_buf_put(b, x, 4);
        }
    }
    csv_buf_put(b, s + run, n - run);
}

void csv_put_json_str(struct csv_buf *b, const char *s, size_t n) {
    csv_buf_putc(b, '"');
    put_escaped(b, s, n, 1);
    csv_buf_putc(b, '"');
}

void csv_put_term_str(struct csv_buf *b, const char *s, size_t n) { put_escaped(b, s, n, 0); }


void csv_line_col(const char *s, size_t off, long *line, long *col) {
    long l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') l++, c = 1;
        else c++;
    }
    *line = l;
    *col = c;
}

/* ---- reader ---- */

#define CSV_CHUNK ((size_t)1 << 16)

struct csv_reader {
    int             fd;              /* -1 when reading memory */
    int             owns_fd;
    const char     *mem;             /* memory input (not owned) */
    char           *name;
    char           *chunk;           /* file input window */
    const char     *p;               /* unread bytes are p[pos..end) */
    size_t          pos, end;
    int             eof;
    int             started;         /* BOM check done */
    int             bom, crlf;
    long            line, col;       /* position of the next byte */
    long            at_line, at_col; /* position of the byte last returned */
    struct csv_buf  data;            /* the row's fields, NUL-separated */
    size_t         *offs;            /* field start offsets into data */
    size_t         *lens;
    const char    **ptrs;
    int             cap_fields;
};

static struct csv_reader *reader_new(const char *name) {
    struct csv_reader *r = ct_xcalloc(1, sizeof *r);
    r->fd = -1;
    r->name = ct_xstrdup(name);
    r->line = r->col = 1;
    return r;
}

struct csv_reader *csv_reader_open(const char *path) {
    int fd = 0;
    if (strcmp(path, "-")) {
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            ct_seterr("%s: %s", path, strerror(errno));
            return NULL;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            close(fd);
            ct_seterr("%s: is a directory", path);
            return NULL;
        }
    }
    struct csv_reader *r = reader_new(path);
    r->fd = fd;
    r->owns_fd = fd != 0;
    r->chunk = ct_xmalloc(CSV_CHUNK);
    r->p = r->chunk;
    return r;
}

struct csv_reader *csv_reader_mem(const char *buf, size_t n, const char *name) {
    struct csv_reader *r = reader_new(name);
    r->mem = buf;
    r->p = buf;
    r->end = n;
    r->eof = 1;
    return r;
}

void csv_reader_close(struct csv_reader *r) {
    if (!r) return;
    if (r->owns_fd) close(r->fd);
    free(r->chunk);
    free(r->name);
    csv_buf_free(&r->data);
    free(r->offs);
    free(r->lens);
    free(r->ptrs);
    free(r);
}

int csv_reader_bom(const struct csv_reader *r) { return r->bom; }
int csv_reader_crlf(const struct csv_reader *r) { return r->crlf; }
const char *csv_reader_name(const struct csv_reader *r) { return r->name; }

/* Make at least one unread byte available: 1, 0 at end of input, -1 on a read error. */
static int fill(struct csv_reader *r) {
    if (r->pos < r->end) return 1;
    if (r->eof) return 0;
    for (;;) {
        ssize_t k = read(r->fd, r->chunk, CSV_CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return ct_seterr("%s: read: %s", r->name, strerror(errno));
        r->pos = 0;
        r->end = (size_t)k;
        if (k == 0) {
            r->eof = 1;
            return 0;
        }
        return 1;
    }
}

#define CSV_EOF (-1)
#define CSV_ERR (-2)

/* Next byte (0..255), CSV_EOF or CSV_ERR; keeps line/col. */
static inline int get(struct csv_reader *r) {
    if (r->pos >= r->end) {
        int k = fill(r);
        if (k <= 0) return k == 0 ? CSV_EOF : CSV_ERR;
    }
    unsigned char c = (unsigned char)r->p[r->pos++];
    r->at_line = r->line;
    r->at_col = r->col;
    if (c == '\n') r->line++, r->col = 1;
    else r->col++;
    return c;
}

static inline int peek(struct csv_reader *r) {
    if (r->pos >= r->end) {
        int k = fill(r);
        if (k <= 0) return k == 0 ? CSV_EOF : CSV_ERR;
    }
    return (unsigned char)r->p[r->pos];
}

static int err_at(struct csv_reader *r, const char *what) {
    return ct_seterr("%s:%ld:%ld: %s", r->name, r->at_line, r->at_col, what);
}

static void field_begin(struct csv_reader *r, int idx) {
    if (idx >= r->cap_fields) {
        r->cap_fields = r->cap_fields ? 2 * r->cap_fields : 32;
        r->offs = ct_xrealloc(r->offs, (size_t)r->cap_fields * sizeof *r->offs);
        r->lens = ct_xrealloc(r->lens, (size_t)r->cap_fields * sizeof *r->lens);
        r->ptrs = ct_xrealloc(r->ptrs, (size_t)r->cap_fields * sizeof *r->ptrs);
    }
    r->offs[idx] = r->data.n;
}

static void field_end(struct csv_reader *r, int idx) {
    r->lens[idx] = r->data.n - r->offs[idx];
    csv_buf_putc(&r->data, 0);
}

/* Append byte c of the current field after validating it. */
static inline int field_byte(struct csv_reader *r, struct utf8_state *u, int c) {
    if (c == 0) return err_at(r, "NUL byte");
    if (utf8_step(u, (unsigned char)c) != 0) return err_at(r, "invalid UTF-8");
    csv_buf_putc(&r->data, c);
    return 0;
}

int csv_read(struct csv_reader *r, struct csv_row *row) {
    if (!r->started) {                       /* UTF-8 byte-order mark */
        r->started = 1;
        if (peek(r) == 0xef) {
            /* a BOM is 3 bytes; they may straddle a chunk boundary only for
             * tiny reads, so compare byte by byte */
            static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };
            int k = 0;
            while (k < 3 && peek(r) == bom[k]) {
                get(r);
                k++;
            }
            if (k == 3) {
                r->bom = 1;
                r->col = 1;
            } else if (k > 0) {
                return err_at(r, "invalid UTF-8");
            }
        }
    }
    int c;
    for (;;) {                               /* skip empty lines */
        c = get(r);
        if (c == CSV_ERR) return -1;
        if (c == CSV_EOF) return 0;
        if (c == '\n') continue;
        if (c == '\r' && peek(r) == '\n') {
            get(r);
            r->crlf = 1;
            continue;
        }
        break;
    }
    r->data.n = 0;
    row->line = r->at_line;
    int nf = 0;
    for (;;) {                               /* one field per iteration; c is its first byte */
        struct utf8_state u = { 0, 0x80, 0xbf };
        field_begin(r, nf);
        if (c == '"') {
            long q_line = r->at_line, q_col = r->at_col;
            for (;;) {
                c = get(r);
                if (c == CSV_ERR) return -1;
                if (c == CSV_EOF)
                    return ct_seterr("%s:%ld:%ld: unterminated quoted field (the file ends inside it)", r->name,
                                     q_line, q_col);
                if (c == '"') {
                    if (peek(r) == '"') {
                        get(r);
                        if (u.need) return err_at(r, "invalid UTF-8 (truncated sequence)");
                        csv_buf_putc(&r->data, '"');
                        continue;
                    }
                    break;
                }
                if (field_byte(r, &u, c) != 0) return -1;
            }
            if (u.need) return err_at(r, "invalid UTF-8 (truncated sequence before the closing quote)");
            c = get(r);
            if (c == CSV_ERR) return -1;
            if (c != ',' && c != '\n' && c != '\r' && c != CSV_EOF)
                return err_at(r, "unexpected text after a closing quote (a quote inside a field must be doubled)");
        } else {
            while (c != ',' && c != '\n' && c != '\r' && c != CSV_EOF) {
                if (c == CSV_ERR) return -1;
                if (c == '"') return err_at(r, "quote inside an unquoted field (quote the whole field)");
                if (field_byte(r, &u, c) != 0) return -1;
                c = get(r);
            }
            if (c == CSV_ERR) return -1;
            if (u.need) return err_at(r, "invalid UTF-8 (truncated sequence)");
        }
        field_end(r, nf);
        nf++;
        if (c == ',') {
            c = get(r);
            if (c == CSV_ERR) return -1;
            continue;
        }
        if (c == '\r') {
            if (peek(r) != '\n') return err_at(r, "carriage return outside quotes not followed by a line feed");
            get(r);
            r->crlf = 1;
        }
        break;                               /* '\n', CRLF or end of input */
    }
    for (int i = 0; i < nf; i++) r->ptrs[i] = r->data.p + r->offs[i];
    row->n = nf;
    row->fields = r->ptrs;
    row->lens = r->lens;
    row->end_line = r->at_line;
    return 1;
}
