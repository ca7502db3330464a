/*
 * textout.c - buffered text to stdout or an atomically written file (see textout.h).
 */
#include "textout.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

int textout_open(struct textout *t, const char *path) {
    memset(t, 0, sizeof *t);
    /* a closed reader must surface as an EPIPE error we report, not a silent death */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(path, "-")) {
        if (ct_atomic_open(&t->at, path) != 0) return -1;
        t->fd = t->at.fd;
        t->is_file = 1;
    } else {
        t->fd = 1;
    }
    return 0;
}

int textout_flush(struct textout *t, int force) {
    if (!force && t->buf.n < (1u << 20)) return 0;
    if (t->buf.n && ct_write_all(t->fd, t->buf.p, t->buf.n) != 0)
        return ct_prefixerr("%s", t->is_file ? t->at.path : "stdout");
    t->buf.n = 0;
    return 0;
}

int textout_close(struct textout *t) {
    int rc = textout_flush(t, 1);
    if (t->is_file) {
        if (rc == 0) rc = ct_atomic_commit(&t->at);
        else ct_atomic_abort(&t->at);
    } else if (rc == 0 && close(1) != 0 && errno != EBADF) {
        rc = ct_seterr("stdout: close: %s", strerror(errno));
    }
    t->is_file = 0;                          /* a later textout_abort leaves the file alone */
    csv_buf_free(&t->buf);
    return rc;
}

void textout_abort(struct textout *t) {
    if (t->is_file) ct_atomic_abort(&t->at);
    t->is_file = 0;
    csv_buf_free(&t->buf);
}
