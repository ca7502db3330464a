/*
 * ct-export - write a 3-D tensor of a ctvis stream as NIfTI, for viewers such
 * as ITK-SNAP or 3D Slicer.  The record's meta.affine (C order) becomes the
 * NIfTI sform/qform; without it meta.spacing_mm gives a diagonal affine.
 *
 * Reads: any ctvis stream.  Writes: .nii or .nii.gz files.
 *
 *   ct-resample ct.nii.gz --label seg.nii.gz | ct-export -t mask -o mask.nii.gz
 *   ct-export -t image -o 'out/%s.nii.gz' cases.ctv      # one file per record, %s = id
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "ct.h"
#include "nii.h"
#include "stream.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-export -t TENSOR -o OUT.nii[.gz] [OPTION]... [FILE]...\n"
            "Write a 3-D tensor of the selected record as NIfTI-1 (FILE '-' or none: stdin).\n"
            "\n"
            "  -t, --tensor NAME    the tensor to export (required)\n"
            "  -o, --output PATH    output file; '%%s' in PATH is replaced by the record id,\n"
            "                       which exports every selected record\n"
            "  -r, --record LIST    select records by index (from 0): 3 | 0,2,5-9 | 4-\n"
            "  -i, --id ID          select records by id (repeatable)\n"
            "  -l, --level N        gzip level for .nii.gz (1..9, default 1)\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "Geometry: meta.affine (4x4, C-order index -> world mm) when present, else a\n"
            "diagonal affine from meta.spacing_mm, else identity (with a warning).\n"
            "Without '%%s', exactly one record must be selected (nothing is written otherwise);\n"
            "with '%%s', two records with the same id are an error.\n"
            "Exit status: 0 ok, 1 bad input or failed write (nothing half-written), 2 usage.\n"
            "Example: ct-import ct.nii.gz | ct-export -t image -o copy.nii.gz\n");
}

/* Build the output path: replace one "%s" by the id (ids with '/' refused). */
static int out_path(const char *pattern, const char *id, char *buf, size_t n) {
    const char *p = strstr(pattern, "%s");
    if (!p) {
        snprintf(buf, n, "%s", pattern);
        return 0;
    }
    if (strchr(id, '/') || !strcmp(id, "..") || !id[0]) return ct_seterr("id '%s' cannot be used in a file name", id);
    snprintf(buf, n, "%.*s%s%s", (int)(p - pattern), pattern, id, p + 2);
    return 0;
}

static char **ids;                             /* ids written with %s: one file each (static: reachable at exit) */

static int export_record(const struct rec *r, const char *tensor, const char *pattern, int level) {
    struct tn_tensor *t = rec_tensor_req(r, tensor);
    if (!t) return -1;
    if (t->ndim != 3) return ct_seterr("tensor '%s' is %d-D; NIfTI export takes 3-D tensors", tensor, t->ndim);
    double A[4][4], N[4][4];
    int have = rec_meta_mat4(r, "affine", A), identity = 0;
    if (have < 0) return -1;
    if (!have) {
        double sp[3] = { 1, 1, 1 };
        int n = rec_meta_f64(r, "spacing_mm", sp, 3);
        if (n < 0) return -1;
        if (n > 0 && n != 3) return ct_seterr("meta 'spacing_mm': expected 3 numbers, got %d", n);
        for (int i = 0; i < n; i++)
            if (!(sp[i] > 0) || !isfinite(sp[i]))
                return ct_seterr("meta 'spacing_mm': voxel size %g is not a positive finite number", sp[i]);
        identity = n != 3;
        memset(A, 0, sizeof A);
        for (int i = 0; i < 3; i++) A[i][i] = n == 3 ? sp[i] : 1;
        A[3][3] = 1;
    } else {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                if (!isfinite(A[i][j])) return ct_seterr("meta 'affine' holds %g at [%d][%d]", A[i][j], i, j);
    }
    nii_affine_flip_axes(A, N);
    char path[4096];
    if (out_path(pattern, r->id, path, sizeof path) != 0) return -1;
    if (nii_write(path, t, N, level) != 0) return -1;
    /* after the write: a failure is one line, never a warning and then the error */
    if (identity) ct_warn("record %ld (id %s): no affine or spacing_mm in meta; wrote an identity affine", r->index, r->id);
    return 0;
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct cli_select sel = { 0 };
    const char *tensor = NULL, *output = NULL;
    long level = 1;
    static const struct option longopts[] = {
        { "tensor", required_argument, 0, 't' }, { "output", required_argument, 0, 'o' },
        { "record", required_argument, 0, 'r' }, { "id", required_argument, 0, 'i' },
        { "level", required_argument, 0, 'l' },  { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, 'V' },      { 0, 0, 0, 0 },
    };
    struct cli_common cc;
    cli_common_init(&cc);
    int ch;
    while ((ch = getopt_long(argc, argv, "t:o:r:i:l:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': tensor = optarg; break;
        case 'o': output = optarg; break;
        case 'l':
            if (ct_parse_long(optarg, &level) != 0 || level < 1 || level > 9)
                ct_usage_die("--level: expected 1..9, got '%s'", optarg);
            break;
        default:
            if (!cli_select_option(ch, optarg, &sel) && !cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (!tensor) ct_usage_die("missing --tensor");
    if (!output) ct_usage_die("missing --output");
    int many = strstr(output, "%s") != NULL;

    struct rec_reader *in = rec_reader_open_many(argc - optind, argv + optind);
    if (!in) ct_die("%s", ct_lasterr());
    /* Without %s exactly one record may be selected: it is kept in its own arena and
     * written only after the whole stream has been read, so a refused selection
     * writes nothing. */
    struct tn_arena *a = tn_arena_new(0), *keep = tn_arena_new(0);
    struct rec r, chosen;
    int rc, n_done = 0;
    while ((rc = rec_read(in, n_done && !many ? a : keep, &r)) > 0) {
        if (!cli_select_match(&sel, &r)) {
            tn_arena_reset(n_done && !many ? a : keep);
            continue;
        }
        if (!many) {
            if (n_done == 1)
                ct_die("record %ld (id %s): more than one record selected; use -r/-i or '%%s' in -o", r.index, r.id);
            chosen = r;
            n_done = 1;
            continue;
        }
        for (int i = 0; i < n_done; i++)
            if (!strcmp(ids[i], r.id)) {
                char path[4096];
                out_path(output, r.id, path, sizeof path);
                ct_die("record %ld (id %s): another record with id '%s' was written to %s", r.index, r.id, r.id, path);
            }
        if (export_record(&r, tensor, output, (int)level) != 0)
            ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
        ids = ct_xrealloc(ids, (size_t)(n_done + 1) * sizeof *ids);
        ids[n_done++] = ct_xstrdup(r.id);
        tn_arena_reset(keep);
    }
    if (rc < 0) ct_die("%s", ct_lasterr());
    if (n_done == 0) ct_die("no record selected");
    if (!many && export_record(&chosen, tensor, output, (int)level) != 0)
        ct_die("record %ld (id %s): %s", chosen.index, chosen.id, ct_lasterr());
    rec_reader_close(in);
    for (int i = 0; many && i < n_done; i++) free(ids[i]);
    free(ids);
    tn_arena_free(a);
    tn_arena_free(keep);
    return CT_EXIT_OK;
}
