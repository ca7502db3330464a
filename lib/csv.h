/*
 * csv.h - RFC 4180 CSV read and written carefully, plus the small text helpers
 * (a growable byte buffer, UTF-8 validation) that CSV and JSON-lines output need.
 *
 * The reader streams: one row at a time from a file, stdin or memory, memory
 * bounded by the longest row.  It accepts what RFC 4180 allows and what real
 * files (pandas, CT-RATE) contain:
 *   - fields separated by ',', rows ended by LF or CRLF (the last row may lack it);
 *   - quoted fields ("...") holding commas, CR, LF and doubled quotes ("");
 *   - a UTF-8 byte-order mark at the very start (skipped, csv_reader_bom() says so);
 *   - empty lines between rows (skipped: pandas does the same).
 * It refuses, with "name:line:col: problem", a quote inside an unquoted field,
 * text after a closing quote, a bare CR outside quotes, a NUL byte, invalid
 * UTF-8 and an unterminated quoted field (naming the line where it opened).
 *
 *     struct csv_reader *r = csv_reader_open("labels.csv");
 *     struct csv_row row;
 *     int rc;
 *     while ((rc = csv_read(r, &row)) > 0)
 *         printf("line %ld: %d fields, first '%s'\n", row.line, row.n, row.fields[0]);
 *     if (rc < 0) ct_die("%s", ct_lasterr());     // "labels.csv:7:12: ..."
 *     csv_reader_close(r);
 *
 * Writing: csv_put_field() quotes a field only when it must (it holds ',', '"',
 * CR or LF), as pandas and Python's csv module do by default, so a minimally
 * quoted file read and written again comes back byte for byte.
 */
#ifndef CT_CSV_H
#define CT_CSV_H

#include <stdarg.h>
#include <stddef.h>

/* ---- growable byte buffer (malloc'd; always NUL-terminated when n > 0) ---- */
struct csv_buf {
    char  *p;                        /* bytes, NUL-terminated after any put */
    size_t n;                        /* bytes used (excluding the NUL) */
    size_t cap;                      /* bytes allocated */
};
void csv_buf_put(struct csv_buf *b, const void *s, size_t n);
void csv_buf_puts(struct csv_buf *b, const char *s);
void csv_buf_putc(struct csv_buf *b, int c);
void csv_buf_printf(struct csv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void csv_buf_free(struct csv_buf *b);          /* NULL-safe; leaves b empty */

/* Append s[0..n) as one CSV field, in quotes with '"' doubled when it holds
 * ',', '"', CR or LF, verbatim otherwise. */
void csv_put_field(struct csv_buf *b, const char *s, size_t n);

/* Append s[0..n) as a JSON string literal: quoted; '"', '\\', control characters,
 * DEL and the C1 controls escaped (\n, \u001b, \u009b); other valid UTF-8 passes
 * through; each byte that is not valid UTF-8 becomes \ufffd, so the output is
 * always valid UTF-8 JSON.  The one JSON string escaper of ctvis. */
void csv_put_json_str(struct csv_buf *b, const char *s, size_t n);
/* Append s[0..n) as text safe for a terminal: control characters, DEL, C1
 * controls and invalid UTF-8 bytes as \xNN (\n, \t, \r and \\ as such); no quotes. */
void csv_put_term_str(struct csv_buf *b, const char *s, size_t n);

/* Offset of the first byte of s[0..n) that is not part of valid UTF-8
 * (overlong forms, surrogates and code points above U+10FFFF are invalid),
 * or n when all of s is valid. */
size_t csv_utf8_check(const char *s, size_t n);
/* 1-based line and column (in bytes) of offset off in s, for messages. */
void csv_line_col(const char *s, size_t off, long *line, long *col);

/* ---- reader ---- */
struct csv_row {
    int          n;                  /* number of fields (>= 1) */
    const char **fields;             /* NUL-terminated, valid until the next csv_read() */
    size_t      *lens;               /* byte length of each field */
    long         line;               /* 1-based line where the row starts */
    long         end_line;           /* line where it ends (> line for multi-line quoted fields) */
};

struct csv_reader;
/* path "-" = stdin.  NULL + lasterr "path: No such file or directory". */
struct csv_reader *csv_reader_open(const char *path);
/* Read from memory; buf must outlive the reader; name is used in messages. */
struct csv_reader *csv_reader_mem(const char *buf, size_t n, const char *name);
/* The next row: 1, 0 at the end, or -1 + lasterr "name:line:col: problem". */
int  csv_read(struct csv_reader *r, struct csv_row *row);
void csv_reader_close(struct csv_reader *r);   /* NULL-safe */
int  csv_reader_bom(const struct csv_reader *r);     /* 1 if a UTF-8 BOM was skipped */
int  csv_reader_crlf(const struct csv_reader *r);    /* 1 if any row ended with CRLF */
const char *csv_reader_name(const struct csv_reader *r);

#endif
