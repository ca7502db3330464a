/*
 * ct.c - program name, messages, thread-local errors, checked allocation,
 * strict option parsing and atomic file output.  See ct.h for the contracts.
 */
#define _GNU_SOURCE
#include "ct.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- program name and messages ---- */

static const char *progname = "ctvis";
int ct_log_level = 0;

/* Temporary files that must disappear if the process dies or is interrupted. */
#define CT_MAX_PENDING 16
static char *pending_tmp[CT_MAX_PENDING];
static void (*atdie_fn)(void);

static void remove_pending(void) {
    for (int i = 0; i < CT_MAX_PENDING; i++)
        if (pending_tmp[i]) unlink(pending_tmp[i]);
}

static void on_signal(int sig) {
    remove_pending();                        /* unlink is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void ct_init(const char *argv0) {
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    progname = slash ? slash + 1 : (argv0 && *argv0 ? argv0 : "ctvis");
    const char *lv = getenv("CT_LOG");
    if (lv) {
        if (!strcmp(lv, "debug")) ct_log_level = 2;
        else if (!strcmp(lv, "info")) ct_log_level = 1;
    }
    /* every signal whose default action ends the process removes the temporary
     * files first (SIGPIPE stays default: a stdout reader closing is handled by
     * the writers; SIGKILL cannot be caught) */
    static const int fatal[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
                                 SIGPROF, SIGXCPU };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], on_signal);
    /* the file-size limit (ulimit -f): a write past it fails with EFBIG, which
     * every writer reports and cleans up after, instead of killing the process */
    signal(SIGXFSZ, SIG_IGN);
}

const char *ct_progname(void) { return progname; }

void ct_atdie(void (*fn)(void)) { atdie_fn = fn; }

static void vmsg(const char *fmt, va_list ap) {
    /* one write() per message so that lines of parallel tools do not interleave */
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s: ", progname);
    if (n < 0) n = 0;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    if (m < 0) m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2) len = sizeof buf - 2;
    /* keep the message on one line, and inert on a terminal: control characters
     * (an id holding ESC [ ...) become '?', C1 controls (UTF-8 C2 80..9F) too */
    for (size_t i = (size_t)n; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n' || c == '\r' || c == '\t') buf[i] = ' ';
        else if (c < 0x20 || c == 0x7f) buf[i] = '?';
        else if (c == 0xc2 && i + 1 < len && (unsigned char)buf[i + 1] >= 0x80 && (unsigned char)buf[i + 1] < 0xa0)
            buf[i] = '?', buf[i + 1] = '?';
    }
    buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
}

void ct_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    if (atdie_fn) atdie_fn();
    remove_pending();
#if defined(__SANITIZE_ADDRESS__)
    /* make asan: a tool dying on bad input leaves its buffers allocated on purpose;
     * skip LeakSanitizer's exit-time report (leaks on success still count) */
    fflush(stdout);
    _exit(CT_EXIT_FAIL);
#else
    exit(CT_EXIT_FAIL);
#endif
}

void ct_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void ct_usage_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", progname);
    exit(CT_EXIT_USAGE);
}

void ct_log(int level, const char *fmt, ...) {
    if (level > ct_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void ct_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "%s: %s:%d: internal error: assertion '%s' failed\n", progname, file, line, expr);
    remove_pending();
    abort();
}

/* ---- thread-local last error ---- */

static _Thread_local char lasterr[1024];

int ct_seterr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lasterr, sizeof lasterr, fmt, ap);
    va_end(ap);
    return -1;
}

int ct_prefixerr(const char *fmt, ...) {
    char old[sizeof lasterr], pre[512];
    memcpy(old, lasterr, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t k = strlen(pre);
    if (!strncmp(old, pre, k) && old[k] == ':' && old[k + 1] == ' ') return -1;   /* already there */
    snprintf(lasterr, sizeof lasterr, "%s: %s", pre, old);
    return -1;
}

const char *ct_lasterr(void) { return lasterr; }

/* ---- memory ---- */

static _Thread_local const char *oom_ctx;

void ct_oom_context(const char *ctx) { oom_ctx = ctx; }

void ct_oom(size_t n) {
    if (oom_ctx && *oom_ctx) ct_die("%s: out of memory (asked for %zu bytes)", oom_ctx, n);
    ct_die("out of memory (asked for %zu bytes)", n);
}

void *ct_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) ct_oom(n);
    return p;
}

void *ct_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ct_oom(n * size);
    return p;
}

void *ct_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) ct_oom(n);
    return q;
}

char *ct_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ct_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void *ct_xaligned(size_t nbytes) {
    size_t n = (nbytes + 63) & ~(size_t)63;
    if (n < nbytes) ct_oom(nbytes);
    void *p = aligned_alloc(64, n ? n : 64);
    if (!p) ct_oom(nbytes);
    return p;
}

/* ---- parsing ---- */

int ct_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || isnan(v))
        return ct_seterr("invalid number '%s'", s);
    *out = v;
    return 0;
}

int ct_parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return ct_seterr("invalid integer '%s'", s);
    *out = v;
    return 0;
}

/* Split "a,b,c" (or "a x b x c") and parse each part with fn. */
static int parse_list(const char *s, void *out, int n, int allow_one, int is_long) {
    char buf[512];
    if (strlen(s) >= sizeof buf) return ct_seterr("list too long '%s'", s);
    strcpy(buf, s);
    int k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",x", &save); tok; tok = strtok_r(NULL, ",x", &save)) {
        if (k >= n) return ct_seterr("expected %d values in '%s'", n, s);
        int rc = is_long ? ct_parse_long(tok, (long *)out + k) : ct_parse_double(tok, (double *)out + k);
        if (rc) return ct_seterr("invalid value '%s' in '%s'", tok, s);
        k++;
    }
    if (k == 1 && allow_one) {
        for (int i = 1; i < n; i++) {
            if (is_long) ((long *)out)[i] = ((long *)out)[0];
            else ((double *)out)[i] = ((double *)out)[0];
        }
        return 0;
    }
    if (k != n) return ct_seterr("expected %d values in '%s'", n, s);
    return 0;
}

int ct_parse_doubles(const char *s, double *out, int n, int allow_one) {
    return parse_list(s, out, n, allow_one, 0);
}

int ct_parse_longs(const char *s, long *out, int n, int allow_one) {
    return parse_list(s, out, n, allow_one, 1);
}

/* ---- threads ---- */

struct par_pool {
    ct_work_fn   fn;
    void        *ctx;
    int64_t      n_items;
    atomic_llong next;                       /* the next item to hand out */
};

struct par_worker {
    struct par_pool *p;
    int              tid;
};

static void *par_worker_main(void *arg) {
    struct par_worker *w = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&w->p->next, 1);
        if (i >= w->p->n_items) break;
        w->p->fn(w->p->ctx, i, w->tid);
    }
    return NULL;
}

void ct_parallel_for(int n_threads, int64_t n_items, ct_work_fn fn, void *ctx) {
    if (n_threads > n_items) n_threads = (int)n_items;
    if (n_threads > CT_MAX_THREADS) n_threads = CT_MAX_THREADS;
    if (n_threads <= 1) {
        for (int64_t i = 0; i < n_items; i++) fn(ctx, i, 0);
        return;
    }
    struct par_pool p = { fn, ctx, n_items, 0 };
    pthread_t th[CT_MAX_THREADS];
    struct par_worker wk[CT_MAX_THREADS];
    int started[CT_MAX_THREADS] = { 0 };
    for (int t = 1; t < n_threads; t++) {
        wk[t] = (struct par_worker){ &p, t };
        started[t] = pthread_create(&th[t], NULL, par_worker_main, &wk[t]) == 0;
    }
    wk[0] = (struct par_worker){ &p, 0 };
    par_worker_main(&wk[0]);
    for (int t = 1; t < n_threads; t++)
        if (started[t]) pthread_join(th[t], NULL);
}

/* ---- misc ---- */

void ct_case_id(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    size_t len = strlen(out);
    if (len > 7 && !strcmp(out + len - 7, ".nii.gz")) out[len - 7] = 0;
    else if (len > 4 && !strcmp(out + len - 4, ".nii")) out[len - 4] = 0;
}

double ct_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

long ct_peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* ---- atomic output files ---- */

static void pending_add(char *tmp) {
    for (int i = 0; i < CT_MAX_PENDING; i++)
        if (!pending_tmp[i]) {
            pending_tmp[i] = tmp;
            return;
        }
}

static void pending_del(const char *tmp) {
    for (int i = 0; i < CT_MAX_PENDING; i++)
        if (pending_tmp[i] == tmp) pending_tmp[i] = NULL;
}

/* The process umask, read without changing it (umask(2) can only set it). */
static mode_t current_umask(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "Umask:", 6)) {
                fclose(f);
                return (mode_t)strtoul(line + 6, NULL, 8) & 0777;
            }
        fclose(f);
    }
    mode_t m = umask(077);                    /* fallback: set and restore at once */
    umask(m);
    return m;
}

/* "/dev/stdout", "/dev/fd/3", "/proc/self/fd/3": the descriptor the path names, else -1. */
static int fd_alias(const char *path) {
    if (!strcmp(path, "/dev/stdout")) return 1;
    if (!strcmp(path, "/dev/stderr")) return 2;
    const char *num = !strncmp(path, "/dev/fd/", 8) ? path + 8 : !strncmp(path, "/proc/self/fd/", 14) ? path + 14 : NULL;
    if (!num || !*num) return -1;
    char *end;
    long fd = strtol(num, &end, 10);
    return *end || fd < 0 || fd > INT_MAX ? -1 : (int)fd;
}

int ct_atomic_open(struct ct_atomic *a, const char *path) {
    struct stat st;
    a->direct = 0;
    int alias = fd_alias(path);
    int exists = stat(path, &st) == 0;
    /* a missing node right under /dev or anywhere under /proc is a typo, never a new file */
    int devname = (!strncmp(path, "/dev/", 5) && !strchr(path + 5, '/')) || !strncmp(path, "/proc/", 6);
    if (alias >= 0 || (exists && !S_ISREG(st.st_mode)) || (!exists && devname)) {
        /* a device, FIFO or socket (/dev/null, /dev/stdout, a named pipe): write
         * through it; renaming a temporary file over it would replace the node.
         * Never O_TRUNC: "-o /dev/stdout >> acc.ctv" must append, not empty acc.ctv */
        if (exists && S_ISDIR(st.st_mode)) return ct_seterr("%s: is a directory", path);
        /* the descriptor itself (shares its offset and O_APPEND), else open without O_CREAT */
        a->fd = alias >= 0 ? fcntl(alias, F_DUPFD_CLOEXEC, 3) : open(path, O_WRONLY | O_CLOEXEC);
        if (a->fd < 0) return ct_seterr("%s: cannot open: %s", path, strerror(errno));
        a->path = ct_xstrdup(path);
        a->tmp = NULL;
        a->direct = 1;
        return 0;
    }
    /* a symbolic link to a file: replace the file it points to, keep the link */
    char *real = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        real = realpath(path, NULL);
        if (!real) {                          /* dangling: the target is created */
            char target[4096];
            ssize_t k = readlink(path, target, sizeof target - 1);
            if (k > 0) {
                target[k] = 0;
                const char *slash = strrchr(path, '/');
                int dirlen = target[0] != '/' && slash ? (int)(slash - path + 1) : 0;
                real = ct_xmalloc((size_t)dirlen + (size_t)k + 1);
                snprintf(real, (size_t)dirlen + (size_t)k + 1, "%.*s%s", dirlen, path, target);
            }
        }
    }
    if (real) path = real;
    a->path = ct_xstrdup(path);
    free(real);
    path = a->path;
    size_t n = strlen(path) + 32;
    a->tmp = ct_xmalloc(n);
    /* ".name.tmpXXXXXX" next to the target so rename() stays on one filesystem */
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    snprintf(a->tmp, n, "%.*s.%s.tmpXXXXXX", dirlen, path, path + dirlen);
    a->fd = mkostemp(a->tmp, O_CLOEXEC);          /* mode 0600 until the fchmod below */
    if (a->fd < 0) {
        int e = errno;
        char shown[4096];
        snprintf(shown, sizeof shown, "%s", a->path);
        free(a->path);
        free(a->tmp);
        a->path = a->tmp = NULL;
        return ct_seterr("%s: cannot create: %s", shown, strerror(e));
    }
    pending_add(a->tmp);
    /* The mode a plain open(O_CREAT, 0666) would give: the umask's, or the
     * replaced file's own mode (and group, when we may set it), never looser. */
    struct stat old;
    mode_t mode;
    if (stat(a->path, &old) == 0 && S_ISREG(old.st_mode)) {
        mode = old.st_mode & 07777;
        struct stat now;
        /* a group we cannot give the new file must not inherit the old group's access */
        if (fchown(a->fd, (uid_t)-1, old.st_gid) != 0 && (fstat(a->fd, &now) != 0 || now.st_gid != old.st_gid))
            mode &= ~(mode_t)(S_ISGID | 070);
    } else {
        mode = 0666 & ~current_umask();
    }
    if (fchmod(a->fd, mode) != 0) {
        int e = errno;
        char shown[4096];
        snprintf(shown, sizeof shown, "%s", a->path);
        ct_atomic_abort(a);
        return ct_seterr("%s: cannot set the file mode: %s", shown, strerror(e));
    }
    return 0;
}

int ct_atomic_commit(struct ct_atomic *a) {
    int rc = 0;
    if (a->direct) {
        if (a->fd >= 0 && close(a->fd) != 0) rc = ct_seterr("%s: close: %s", a->path, strerror(errno));
        a->fd = -1;
        free(a->path);
        a->path = NULL;
        return rc;
    }
    if (a->fd >= 0 && close(a->fd) != 0) rc = ct_seterr("%s: close: %s", a->path, strerror(errno));
    a->fd = -1;
    if (rc == 0 && rename(a->tmp, a->path) != 0)
        rc = ct_seterr("%s: rename: %s", a->path, strerror(errno));
    if (rc != 0) unlink(a->tmp);
    pending_del(a->tmp);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
    return rc;
}

void ct_atomic_abort(struct ct_atomic *a) {
    if (a && a->direct) {                     /* nothing to remove on a device or FIFO */
        if (a->fd >= 0) close(a->fd);
        a->fd = -1;
        free(a->path);
        a->path = NULL;
        a->direct = 0;
        return;
    }
    if (!a || !a->tmp) return;
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
    unlink(a->tmp);
    pending_del(a->tmp);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
}

static int write_err(int e) {
    if (e == EPIPE) return ct_seterr("write: broken pipe (the reading end has closed)");
    if (e == EFBIG) return ct_seterr("write: %s (the file-size limit, ulimit -f)", strerror(e));
    return ct_seterr("write: %s", strerror(e));
}

void ct_stdout_text(void) { signal(SIGPIPE, SIG_IGN); }

int ct_flush_stdout(void) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    int e = errno ? errno : EIO;
    write_err(e);
    return ct_prefixerr("stdout");
}

int ct_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return write_err(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ct_read_file(const char *path, char **buf, size_t *n) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return ct_seterr("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *p = ct_xmalloc(cap);
    for (;;) {
        if (len == cap) p = ct_xrealloc(p, cap *= 2);
        size_t k = fread(p + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (err) {
        free(p);
        return ct_seterr("%s: read error", path);
    }
    if (len == cap) p = ct_xrealloc(p, cap + 1);
    p[len] = 0;
    *buf = p;
    *n = len;
    return 0;
}
