/* pngio.c - PNG output through libpng (see pngio.h). */
#include "pngio.h"

#include <png.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "ct.h"

struct sink {
    int  fd;
    int  failed;                /* a write failed: lasterr holds why */
};

static void write_fn(png_structp p, png_bytep data, png_size_t n) {
    struct sink *s = png_get_io_ptr(p);
    if (s->failed) return;
    if (ct_write_all(s->fd, data, n) != 0) {
        s->failed = 1;
        png_error(p, "write failed");
    }
}

static void flush_fn(png_structp p) { (void)p; }

static char png_msg[256];

static void error_fn(png_structp p, png_const_charp msg) {
    snprintf(png_msg, sizeof png_msg, "%s", msg);
    png_longjmp(p, 1);
}

static void warning_fn(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

/* Encode into fd; 0 or -1 + lasterr.  Kept apart from the file handling so that
 * the setjmp frame holds no variables the caller changes. */
static int encode(int fd, const uint8_t *rgb, int w, int h, const char *software) {
    struct sink s = { fd, 0 };
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, error_fn, warning_fn);
    if (!p) return ct_seterr("png: cannot create the libpng writer");
    png_infop info = png_create_info_struct(p);
    if (!info) {
        png_destroy_write_struct(&p, NULL);
        return ct_seterr("png: cannot create the libpng writer");
    }
    png_msg[0] = 0;
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        if (s.failed) return ct_prefixerr("png");         /* the write's own message */
        return ct_seterr("png: %s", png_msg[0] ? png_msg : "libpng error");
    }
    png_set_write_fn(p, &s, write_fn, flush_fn);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(p, 6);
    if (software) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        t.key = (png_charp) "Software";
        t.text = (png_charp)software;
        png_set_text(p, info, &t, 1);
    }
    png_write_info(p, info);
    for (int y = 0; y < h; y++) png_write_row(p, (png_const_bytep)(rgb + (size_t)y * (size_t)w * 3));
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    return 0;
}

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, const char *software) {
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000)
        return ct_seterr("png: bad picture size %d x %d", w, h);
    if (!strcmp(path, "-")) {
        if (isatty(STDOUT_FILENO)) return ct_seterr("refusing to write a PNG to a terminal; use -o FILE.png");
        signal(SIGPIPE, SIG_IGN);          /* a closed reader is reported as an EPIPE error, not a silent death */
        if (encode(STDOUT_FILENO, rgb, w, h, software) != 0) return ct_prefixerr("stdout");
        return 0;
    }
    struct ct_atomic a;
    if (ct_atomic_open(&a, path) != 0) return -1;
    if (encode(a.fd, rgb, w, h, software) != 0) {
        ct_atomic_abort(&a);
        return ct_prefixerr("%s", path);
    }
    if (ct_atomic_commit(&a) != 0) return -1;
    return 0;
}
