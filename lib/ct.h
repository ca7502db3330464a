/*
 * ct.h - process-wide basics shared by every ctvis tool and library module.
 *
 * lib/ never prints and never exits: a failing lib function returns -1 (or NULL)
 * after recording a one-line message with ct_seterr(); the tool that called it
 * decides what to do, usually ct_die("%s", ct_lasterr()).  Only two things stop
 * the process from inside lib/: CT_ASSERT (a programmer error, on in release
 * builds) and ct_xmalloc() running out of memory.
 *
 *     ct_init(argv[0]);                        // sets the "tool: " prefix
 *     if (nii_read(path, arena, &img) != 0)
 *         ct_die("%s: %s", path, ct_lasterr()); // "ct-import: a.nii: truncated file"
 */
#ifndef CT_H
#define CT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CT_VERSION "0.1.0"

/* Exit codes shared by every tool (house style 7.3). */
enum ct_exit {
    CT_EXIT_OK    = 0,   /* all records processed */
    CT_EXIT_FAIL  = 1,   /* bad input, unreadable file, failed write */
    CT_EXIT_USAGE = 2,   /* bad command line */
};

/* ---- process identity and messages ---- */
/* Record the program name for messages.  Process state: reads CT_LOG
 * (debug|info) for ct_log, and installs handlers for SIGINT, SIGTERM and SIGHUP
 * that remove the temporary file of a pending ct_atomic write, then re-raise
 * the signal with its default action (the exit status still says which). */
void        ct_init(const char *argv0);
const char *ct_progname(void);              /* "ct-import", never NULL */
void ct_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void ct_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* misuse of the command line: "tool: msg" + "Try 'tool --help'.", exit 2 */
void ct_usage_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Optional cleanup run by ct_die() before exiting (removes temporary files). */
void ct_atdie(void (*fn)(void));

/* ---- logging (stderr only; stdout carries data) ---- */
/* Level comes from -v (ct_log_level++) or CT_LOG=debug|info|warn. */
extern int ct_log_level;                    /* 0 warn, 1 info, 2 debug */
void ct_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- errors inside lib/ ---- */
/* Set the calling thread's last error message (printf-style); returns -1 so
 * that "return ct_seterr(...)" reads naturally. */
int         ct_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message: "ctx: old message". Returns -1. */
int         ct_prefixerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ct_lasterr(void);               /* never NULL; "" when unset */

/* Assertion that stays on in release builds (a bug in ctvis, not bad input). */
#define CT_ASSERT(x)                                                          \
    do {                                                                      \
        if (!(x)) ct_assert_fail(__FILE__, __LINE__, #x);                     \
    } while (0)
void ct_assert_fail(const char *file, int line, const char *expr) __attribute__((noreturn));

/* ---- memory: these never return NULL; they die with "out of memory" ---- */
void *ct_xmalloc(size_t n);
/* Context named by the calling thread's out-of-memory message ("a.ctv: record 3
 * (id x)"); the string must stay valid until reset with NULL. */
void  ct_oom_context(const char *ctx);
/* Die with "[context: ]out of memory (asked for n bytes)". */
void  ct_oom(size_t n) __attribute__((noreturn));
void *ct_xcalloc(size_t n, size_t size);
void *ct_xrealloc(void *p, size_t n);
char *ct_xstrdup(const char *s);
/* 64-byte aligned, free with free(); nbytes may be 0 */
void *ct_xaligned(size_t nbytes);

/* ---- strict number parsing for options ---- */
/* Parse the whole string; return 0, or -1 with ct_lasterr() naming the value. */
int ct_parse_double(const char *s, double *out);
int ct_parse_long(const char *s, long *out);
/* "a,b,c" into exactly n doubles (or 1 value repeated when allow_one) */
int ct_parse_doubles(const char *s, double *out, int n, int allow_one);
int ct_parse_longs(const char *s, long *out, int n, int allow_one);

/* ---- threads ---- */
#define CT_MAX_THREADS 64                    /* -j/--threads accepts 1..CT_MAX_THREADS */
/* Run fn(ctx, item, tid) for every item in [0, n_items) on up to n_threads
 * pthreads; the calling thread is tid 0 and every tid is < n_threads.  Items
 * are handed out in order, one at a time, to whichever thread is free; a
 * thread that cannot be started leaves its share to the others. */
typedef void (*ct_work_fn)(void *ctx, int64_t item, int tid);
void ct_parallel_for(int n_threads, int64_t n_items, ct_work_fn fn, void *ctx);

/* ---- misc ---- */
/* The case id of a NIfTI path: the file name without its directory and without
 * .nii.gz / .nii ("dir/valid_1_a_1.nii.gz" -> "valid_1_a_1"). */
void   ct_case_id(const char *path, char *out, size_t n);
double ct_now(void);                        /* monotonic seconds */
long   ct_peak_rss_kb(void);                /* VmHWM of this process, -1 if unknown */

/* ---- files written atomically: temp file in the same directory, rename on commit ----
 * A path that names a device, FIFO or socket (/dev/null, /dev/stdout, a named
 * pipe) is written through directly; a symbolic link to a file has its target
 * replaced, the link kept. */
struct ct_atomic {
    char *path;                             /* final name (the link's target for a symlink) */
    char *tmp;                              /* temporary name while writing; NULL when direct */
    int   fd;                               /* open on tmp (or on path when direct), -1 when closed */
    int   direct;                           /* 1: writing straight into a device or FIFO */
};
int  ct_atomic_open(struct ct_atomic *a, const char *path);  /* -1 + lasterr */
int  ct_atomic_commit(struct ct_atomic *a);                  /* fsync-less close + rename */
void ct_atomic_abort(struct ct_atomic *a);                   /* close + unlink tmp; NULL-safe */

/* Write all n bytes to fd (EINTR-safe); -1 + lasterr ("write: No space left ...") */
int ct_write_all(int fd, const void *buf, size_t n);
/* Text on stdout: ct_stdout_text() ignores SIGPIPE so a closed reader surfaces
 * as an error; ct_flush_stdout() flushes and returns -1 + lasterr ("stdout:
 * write: broken pipe (the reading end has closed)") when any write failed. */
void ct_stdout_text(void);
int  ct_flush_stdout(void);

/* The whole of a file ("-": stdin) into *buf (malloc'd, the caller frees it,
 * with a NUL after the n bytes).  -1 + lasterr "PATH: No such file or
 * directory" / "PATH: read error". */
int ct_read_file(const char *path, char **buf, size_t *n);

#endif
