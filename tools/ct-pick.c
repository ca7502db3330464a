/*
 * ct-pick - select records and tensors from ctvis streams and write them as a
 * new stream: the cut, grep and recompress of the toolkit.  Every record is
 * parsed and validated, so `ct-pick --expect ct.case/1` also checks a stream.
 *
 * Reads: any ctvis stream.  Writes: the same records, possibly fewer.
 *
 *   ct-pick -i valid_1_a_1 -t mask cases.ctv > one.ctv
 *   ct-pick -z zstd:3 -o archive.ctv big.ctv
 */
#include <string.h>

#include "cli.h"
#include "ct.h"
#include "stream.h"

struct opts {
    struct cli_select sel;           /* records and tensors to keep */
    int               n_drop;
    const char       *drop[CLI_SEL_MAX];   /* tensors to remove */
    const char       *expect;        /* "name/major" every record must have */
    int               history;       /* append this step to meta.history */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-pick [OPTION]... [FILE]...\n"
            "Copy the selected records and tensors of ctvis streams to a new stream\n"
            "(FILE '-' or none: stdin).\n"
            "\n"
            "  -r, --record LIST    keep records with these indices (from 0): 3 | 0,2,5-9 | 4-\n"
            "  -i, --id ID          keep records with this id (repeatable)\n"
            "  -t, --tensor NAME    keep only this tensor (repeatable)\n"
            "  -x, --drop NAME      remove this tensor (repeatable)\n"
            "      --expect SCHEMA  fail on a record whose schema is not SCHEMA (name/major)\n"
            "      --history        record this step in meta.history\n"
            CLI_COMMON_HELP
            "\n"
            "Record indices count across all inputs.  Exit status: 0 ok, 1 bad stream or\n"
            "failed write (nothing is left at -o FILE), 2 usage.\n"
            "Example: ct-pick -z zstd -o cases.zst.ctv cases.ctv\n");
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = { 0 };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_EXPECT = 256, OPT_HISTORY };
    static const struct option longopts[] = {
        { "record", required_argument, 0, 'r' },      { "id", required_argument, 0, 'i' },
        { "tensor", required_argument, 0, 't' },      { "drop", required_argument, 0, 'x' },
        { "expect", required_argument, 0, OPT_EXPECT }, { "history", no_argument, 0, OPT_HISTORY },
        CLI_COMMON_LONGOPTS,                          { 0, 0, 0, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "r:i:t:x:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'x':
            if (o.n_drop >= CLI_SEL_MAX) ct_usage_die("too many --drop options");
            o.drop[o.n_drop++] = optarg;
            break;
        case OPT_EXPECT: o.expect = optarg; break;
        case OPT_HISTORY: o.history = 1; break;
        default:
            if (!cli_select_option(ch, optarg, &o.sel) && !cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    char ename[256];
    int emajor = 0;
    if (o.expect && rec_schema_split(o.expect, ename, sizeof ename, &emajor) != 0)
        ct_usage_die("--expect: '%s' is not name/major", o.expect);

    struct rec_reader *in = rec_reader_open_many(argc - optind, argv + optind);   /* before any output */
    if (!in) ct_die("%s", ct_lasterr());
    struct rec_writer *out = rec_writer_open(cc.output, &cc.wopts);
    if (!out) ct_die("%s", ct_lasterr());
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc;
    while ((rc = rec_read(in, a, &r)) > 0) {
        if (o.expect && rec_expect(&r, ename, emajor) != 0) {
            rec_writer_abort(out);
            ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
        }
        if (cli_select_match(&o.sel, &r)) {
            for (int i = r.n_tensors - 1; i >= 0; i--)
                if (!cli_select_tensor_match(&o.sel, r.tensors[i]->name)) rec_drop_tensor(&r, r.tensors[i]->name);
            for (int i = 0; i < o.n_drop; i++) rec_drop_tensor(&r, o.drop[i]);
            if (o.history) rec_history_append(&r, argc, argv);
            if (rec_write(out, &r) != 0) {
                rec_writer_abort(out);
                ct_die("%s", ct_lasterr());
            }
        }
        tn_arena_reset(a);
    }
    rec_reader_close(in);
    if (rc < 0) {
        rec_writer_abort(out);
        ct_die("%s", ct_lasterr());
    }
    tn_arena_free(a);
    if (rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
    return CT_EXIT_OK;
}
