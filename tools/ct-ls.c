/*
 * ct-ls - list the records of ctvis streams: id, schema, metadata and, for
 * each tensor, dtype, shape, size, min/max/mean and NaN/Inf counts.
 *
 * Reads: any ctvis stream.  Writes: text (or JSON lines with --json) on stdout.
 *
 *   ct-resample ct.nii.gz --label seg.nii.gz | ct-ls
 *   ct-ls -r 2 -t mask --crc cases.ctv
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli.h"
#include "csv.h"
#include "ct.h"
#include "stream.h"

struct opts {
    struct cli_select sel;           /* which records and tensors */
    int               full_meta;     /* print every metadata array in full */
    int               stats;         /* min/max/mean/NaN/Inf (default on) */
    int               crc;           /* crc32 of each tensor's bytes */
    int               json;          /* one JSON object per record */
    const char       *expect;        /* "name/major" every record must have */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-ls [OPTION]... [FILE]...\n"
            "List the records of ctvis streams (FILE '-' or none: stdin), numbered from 0\n"
            "across all inputs.\n"
            "\n"
            "  -r, --record LIST    only records with these indices (from 0): 3 | 0,2,5-9 | 4-\n"
            "  -i, --id ID          only records with this id (repeatable)\n"
            "  -t, --tensor NAME    only this tensor (repeatable)\n"
            "  -m, --meta           print metadata in full (default: arrays cut after 16 items;\n"
            "                       --json output is always in full)\n"
            "  -S, --no-stats       skip min/max/mean/NaN/Inf (faster on large streams)\n"
            "      --crc            add the crc32 of each tensor's raw bytes\n"
            "      --json           one JSON object per record (for jq and scripts)\n"
            "      --expect SCHEMA  fail on a record whose schema is not SCHEMA (name/major)\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "Statistics are over finite values; nan= and inf= count the others.\n"
            "Exit status: 0 ok, 1 bad or truncated stream, 2 usage.\n"
            "\n"
            "Example: ct-import ct.nii.gz | ct-ls --crc\n");
}

/* s made safe for a terminal (escape sequences, C1 controls, invalid UTF-8 as \xNN). */
static const char *term(struct csv_buf *b, const char *s) {
    b->n = 0;
    csv_put_term_str(b, s, strlen(s));
    csv_buf_putc(b, 0);
    return b->p;
}

static struct csv_buf tb[3];                 /* scratch for term(): up to three strings per line */

static void print_tensor(const struct opts *o, const struct tn_tensor *t, int first) {
    char sh[160];
    double mib = (double)tn_nbytes(t) / (1 << 20);
    if (o->json) {
        printf("%s", first ? "" : ", ");
        rec_json_str(stdout, t->name);
        printf(": {\"dtype\": \"%s\", \"shape\": %s", tn_dtype_name(t->dtype), tn_shape_str(t, sh, sizeof sh));
    } else {
        printf("  %-16s %-4s %-18s %9.3f MiB", term(&tb[0], t->name), tn_dtype_name(t->dtype), tn_shape_str(t, sh, sizeof sh), mib);
    }
    if (o->stats) {
        struct tn_stats s;
        tn_stats_compute(t, &s);
        if (o->json) {
            if (s.n_finite) printf(", \"min\": %.17g, \"max\": %.17g, \"mean\": %.17g", s.min, s.max, s.mean);
            else printf(", \"min\": null, \"max\": null, \"mean\": null");
            printf(", \"nan\": %lld, \"inf\": %lld", (long long)s.n_nan, (long long)s.n_inf);
        } else {
            printf("  min=%.6g max=%.6g mean=%.6g nan=%lld inf=%lld", s.min, s.max, s.mean, (long long)s.n_nan,
                   (long long)s.n_inf);
        }
    }
    if (o->crc) {
        /* zlib's crc32 takes uInt lengths: feed it in 1 GiB pieces */
        uLong c = crc32(0L, Z_NULL, 0);
        const unsigned char *p = t->data;
        size_t n = tn_nbytes(t);
        while (n) {
            uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
            c = crc32(c, p, k);
            p += k;
            n -= k;
        }
        printf(o->json ? ", \"crc32\": \"%08lx\"" : "  crc32=%08lx", (unsigned long)c);
    }
    printf(o->json ? "}" : "\n");
}

static void print_record(const struct opts *o, const struct rec *r) {
    int max_items = o->full_meta || o->json ? 0 : 16;     /* JSON is for programs: never cut */
    if (o->json) {
        printf("{\"index\": %ld, \"id\": ", r->index);
        rec_json_str(stdout, r->id);
        printf(", \"schema\": ");
        rec_json_str(stdout, r->schema);
        printf(", \"meta\": {");
        for (int i = 0; i < r->n_meta; i++) {
            printf("%s", i ? ", " : "");
            rec_json_str(stdout, r->meta[i].key);
            printf(": ");
            rec_val_print_json(r->meta[i].val, r->meta[i].val_nbytes, stdout, max_items);
        }
        printf("}, \"tensors\": {");
        int first = 1;
        for (int i = 0; i < r->n_tensors; i++)
            if (cli_select_tensor_match(&o->sel, r->tensors[i]->name)) {
                print_tensor(o, r->tensors[i], first);
                first = 0;
            }
        printf("}}\n");
        return;
    }
    printf("record %ld  id=%s  schema=%s\n", r->index, term(&tb[0], r->id), term(&tb[1], r->schema));
    for (int i = 0; i < r->n_meta; i++) {
        printf("  meta %s = ", term(&tb[0], r->meta[i].key));
        rec_val_print_json(r->meta[i].val, r->meta[i].val_nbytes, stdout, max_items);
        printf("\n");
    }
    for (int i = 0; i < r->n_tensors; i++)
        if (cli_select_tensor_match(&o->sel, r->tensors[i]->name)) print_tensor(o, r->tensors[i], 0);
}

/* List every record of the inputs; returns 0, or -1 with lasterr on a bad record. */
static int list_streams(const struct opts *o, int n, char **paths, struct tn_arena *arena) {
    struct rec_reader *in = rec_reader_open_many(n, paths);
    if (!in) return -1;
    char name[256];
    int major = 0;
    if (o->expect && rec_schema_split(o->expect, name, sizeof name, &major) != 0)
        ct_usage_die("--expect: '%s' is not name/major", o->expect);
    struct rec r;
    int rc;
    while ((rc = rec_read(in, arena, &r)) > 0) {
        if (o->expect && rec_expect(&r, name, major) != 0) {
            ct_prefixerr("record %ld (id %s)", r.index, r.id);
            rc = -1;
            break;
        }
        if (cli_select_match(&o->sel, &r)) print_record(o, &r);
        tn_arena_reset(arena);
        if (ct_flush_stdout() != 0) {          /* a closed reader: stop now, say so */
            rc = -1;
            break;
        }
    }
    rec_reader_close(in);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    ct_stdout_text();
    struct opts o = { .stats = 1 };
    enum { OPT_CRC = 256, OPT_JSON, OPT_EXPECT };
    static const struct option longopts[] = {
        { "record", required_argument, 0, 'r' }, { "id", required_argument, 0, 'i' },
        { "tensor", required_argument, 0, 't' }, { "meta", no_argument, 0, 'm' },
        { "no-stats", no_argument, 0, 'S' },     { "crc", no_argument, 0, OPT_CRC },
        { "json", no_argument, 0, OPT_JSON },    { "expect", required_argument, 0, OPT_EXPECT },
        { "help", no_argument, 0, 'h' },         { "version", no_argument, 0, 'V' },
        { 0, 0, 0, 0 },
    };
    struct cli_common cc;
    cli_common_init(&cc);
    int ch;
    while ((ch = getopt_long(argc, argv, "r:i:t:mShV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o.full_meta = 1; break;
        case 'S': o.stats = 0; break;
        case OPT_CRC: o.crc = 1; break;
        case OPT_JSON: o.json = 1; break;
        case OPT_EXPECT: o.expect = optarg; break;
        default:
            if (!cli_select_option(ch, optarg, &o.sel) && !cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    struct tn_arena *arena = tn_arena_new(0);
    if (list_streams(&o, argc - optind, argv + optind, arena) != 0) ct_die("%s", ct_lasterr());
    tn_arena_free(arena);
    for (int i = 0; i < 3; i++) csv_buf_free(&tb[i]);
    if (ct_flush_stdout() != 0) ct_die("%s", ct_lasterr());
    return CT_EXIT_OK;
}
