/*
 * textout.h - a text output (CSV, JSON lines, listings): stdout, or a file
 * written atomically (temporary file renamed into place on success, removed on
 * failure: ct_atomic_*), buffered in a csv_buf that callers append to.  The
 * text counterpart of rec_writer (stream.h); report-label and zeroshot write
 * their CSV and JSON lines through it.
 *
 *     struct textout t;
 *     if (textout_open(&t, path) != 0) ct_die("%s", ct_lasterr());   // "-": stdout
 *     csv_buf_puts(&t.buf, "scan_id,lung\n");                          // lib/csv.h
 *     if (textout_flush(&t, 0) != 0) { textout_abort(&t); ct_die("%s", ct_lasterr()); }
 *     if (textout_close(&t) != 0) ct_die("%s", ct_lasterr());
 *
 * Errors name the output: "stdout: write: No space left on device",
 * "out.csv: write: ...".  Process state: textout_open ignores SIGPIPE, as
 * rec_writer_open does, so a reader that goes away (`| head`) is the error
 * "stdout: write: broken pipe (the reading end has closed)" rather than a
 * silent death by signal (exit 141).  Not thread-safe: one writer per output.
 */
#ifndef CT_TEXTOUT_H
#define CT_TEXTOUT_H

#include "csv.h"
#include "ct.h"

struct textout {
    struct csv_buf   buf;            /* text not yet written: append here */
    int              fd;             /* 1, or the temporary file */
    int              is_file;        /* written through at (atomically) */
    struct ct_atomic at;
};

/* path "-" = stdout.  -1 + lasterr when the file cannot be created. */
int  textout_open(struct textout *t, const char *path);
/* Write the buffer out when it holds 1 MiB or more, or always with force.
 * -1 + lasterr on a failed write. */
int  textout_flush(struct textout *t, int force);
/* Flush, then rename the file into place, or for stdout close fd 1 so that a
 * late write error shows (so a stdout textout is closed last, after anything
 * else written to stdout).  On failure the file is removed.  -1 + lasterr.
 * textout_abort after textout_close does nothing. */
int  textout_close(struct textout *t);
/* Drop unwritten text; a file output is removed.  What already reached stdout stays. */
void textout_abort(struct textout *t);

#endif
