/*
 * fuzz.h - shared helpers of the libFuzzer targets (make fuzz; see fuzz/README.md).
 * The readers under test take paths, so each target keeps one private temporary
 * file per suffix and rewrites it with every input.
 */
#ifndef CT_FUZZ_H
#define CT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ct.h"   /* no ct_init(): its SIGALRM handler would end libFuzzer's timer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_paths[4];
static inline void fuzz_cleanup(void) {
    for (int i = 0; i < 4; i++)
        if (fuzz_paths[i]) unlink(fuzz_paths[i]);
}

/* A temporary file ending in suffix, created once (removed at exit); its path stays valid. */
static inline const char *fuzz_file(const char *suffix, int *fd_out) {
    char *path = malloc(256);
    /* tmpfs when there is one: rewriting a file per input costs less than on a disk */
    snprintf(path, 256, "%s/ctvis-fuzz-XXXXXX%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) abort();
    for (int i = 0; i < 4; i++)
        if (!fuzz_paths[i]) {
            if (i == 0) atexit(fuzz_cleanup);
            fuzz_paths[i] = path;
            break;
        }
    *fd_out = fd;
    return path;
}

/* Replace the file's contents with data[0..n). */
static inline void fuzz_put(int fd, const uint8_t *data, size_t n) {
    if (ftruncate(fd, 0) != 0) abort();
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(fd, data + off, n - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
}

#endif
