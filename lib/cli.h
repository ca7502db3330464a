/*
 * cli.h - the options every ctvis stream tool shares, so that they read the
 * same everywhere:
 *
 *   -o, --output FILE     write the stream to FILE (atomically) instead of stdout
 *   -z, --compress C      raw | zstd | zstd:LEVEL (default: $CT_COMPRESS or raw)
 *   -j, --threads N       threads for the computation and zstd compression (1..64)
 *   -v, --verbose         progress and timings on stderr (repeat for debug)
 *   -h, --help            usage on stdout, exit 0
 *   -V, --version         version on stdout, exit 0
 *
 * A tool appends CLI_COMMON_LONGOPTS to its own struct option table and
 * CLI_COMMON_SHORTOPTS to its getopt string, and passes every option it does
 * not handle itself to cli_common().
 */
#ifndef CT_CLI_H
#define CT_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "stream.h"

struct cli_common {
    const char      *output;         /* "-" = stdout */
    struct rec_wopts wopts;          /* codec for written tensors */
    int              threads;        /* >= 1 */
};

#define CLI_COMMON_SHORTOPTS "o:z:j:vhV"
#define CLI_COMMON_LONGOPTS                                                                        \
    { "output", required_argument, 0, 'o' }, { "compress", required_argument, 0, 'z' },            \
    { "threads", required_argument, 0, 'j' }, { "verbose", no_argument, 0, 'v' },                  \
    { "help", no_argument, 0, 'h' }, { "version", no_argument, 0, 'V' }

/* Help text for the common options, for usage() functions. */
#define CLI_COMMON_HELP                                                                            \
    "  -o, --output FILE    write to FILE (atomically: temp file + rename) instead of stdout\n"   \
    "  -z, --compress C     tensor payloads: raw, zstd or zstd:LEVEL (default $CT_COMPRESS or raw)\n" \
    "  -j, --threads N      threads for the computation and zstd compression (1..64, default 1)\n" \
    "  -v, --verbose        progress and timings on stderr (-vv: debug)\n"                         \
    "  -h, --help           show this help\n"                                                      \
    "  -V, --version        show the version\n"

/* Defaults (reads $CT_COMPRESS). */
void cli_common_init(struct cli_common *c);
/* Handle one common option; exits on --help/--version/bad values.
 * Returns 1 when handled, 0 when ch is not a common option. */
int cli_common(int ch, const char *arg, struct cli_common *c, void (*usage)(FILE *));
/* The usual tail of an option switch: '?' and anything unknown. */
void cli_unknown(void) __attribute__((noreturn));

/* ---- record and tensor selection (ct-ls, ct-pick, ct-export) ---- */
#define CLI_SEL_MAX 64
struct cli_select {
    int         n_ranges;            /* 0 = every record */
    long        lo[CLI_SEL_MAX], hi[CLI_SEL_MAX];   /* inclusive record index ranges */
    int         n_ids;
    const char *ids[CLI_SEL_MAX];    /* 0 = any id */
    int         n_tensors;
    const char *tensors[CLI_SEL_MAX];/* 0 = every tensor */
};
/* "3", "0,2,5-9", "4-" (open end) into sel; -1 + lasterr */
int cli_select_records(struct cli_select *s, const char *list);
void cli_select_id(struct cli_select *s, const char *id);
void cli_select_tensor(struct cli_select *s, const char *name);
/* Handle -r/--record, -i/--id, -t/--tensor; 1 when ch was one of them (exits 2 on a bad list). */
int  cli_select_option(int ch, const char *arg, struct cli_select *s);
int  cli_select_match(const struct cli_select *s, const struct rec *r);     /* record selected? */
int  cli_select_tensor_match(const struct cli_select *s, const char *name); /* tensor selected? */

#endif
