/*
 * ct-import - NIfTI volumes (and optionally their label map) into ct.image/1
 * records, unchanged: native grid, stored voxel type (f32 when the header
 * scales intensities), geometry in the metadata.  The entry point for
 * inspecting a NIfTI file with ct-ls or feeding it to Python.
 *
 * Reads: NIfTI-1/2 (.nii, .nii.gz).  Writes: ct.image/1.
 *
 *   ct-import ct.nii.gz --label seg.nii.gz | ct-ls
 */
#include <string.h>

#include "cli.h"
#include "ct.h"
#include "nii.h"
#include "stream.h"

struct opts {
    const char *label;               /* label map on the same grid (one input only) */
    const char *id;                  /* record id (one input only); default: file name */
    int         f32;                 /* always convert the image to f32 */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-import [OPTION]... FILE.nii[.gz]...\n"
            "Read NIfTI volumes and write one ct.image/1 record per file: tensor 'image'\n"
            "[z,y,x] in its stored type (f32 when scl_slope/scl_inter apply), plus 'label'\n"
            "with --label.  Metadata: affine (C order), spacing_mm, source, nifti header facts.\n"
            "\n"
            "  -l, --label FILE     a label map on the same grid (only with one input)\n"
            "      --id ID          record id (only with one input; default: file name\n"
            "                       without .nii/.nii.gz)\n"
            "      --f32            convert the image to f32 even without scaling\n"
            CLI_COMMON_HELP
            "\n"
            "Exit status: 0 ok, 1 unreadable input or failed write, 2 usage.\n"
            "Example: ct-import ct.nii.gz --label seg.nii.gz | ct-ls\n");
}

static void set_geometry(struct rec *r, const struct nii_image *im, const char *path) {
    double A[4][4];
    nii_affine_flip_axes(im->affine, A);
    rec_meta_set_mat4(r, "affine", A);
    double sp[3];
    nii_spacing_c(im, 1, sp);
    rec_meta_set_f64v(r, "spacing_mm", sp, 3);
    rec_meta_set_str(r, "source", path);
    nii_meta_header(r, "nifti", im);
}

static int import_one(const struct opts *o, const char *path, struct tn_arena *a, struct rec_writer *out, int argc,
                      char **argv) {
    struct nii_image im, lab;
    if (nii_read(path, a, &im) != 0) return ct_prefixerr("%s", path);
    nii_squeeze_3d(im.data);
    if (im.data->ndim != 3) return ct_seterr("%s: %d-D volume (ct-import reads 3-D volumes)", path, im.data->ndim);
    char id[512];
    if (o->id) snprintf(id, sizeof id, "%s", o->id);
    else ct_case_id(path, id, sizeof id);
    struct rec r;
    rec_init(&r, a, "ct.image/1", id);
    struct tn_tensor *img = im.data;
    if (nii_has_scaling(&im) || o->f32) img = nii_scaled_f32(a, &im);
    snprintf(img->name, sizeof img->name, "image");
    rec_add_tensor(&r, img);
    set_geometry(&r, &im, path);
    if (o->label) {
        if (nii_read(o->label, a, &lab) != 0) return ct_prefixerr("%s", o->label);
        nii_squeeze_3d(lab.data);
        if (lab.data->ndim != 3)                  /* as ct-resample: one 3-D label map, never [2,D,H,W] */
            return ct_seterr("%s: %d-D label map (ct-import reads 3-D label maps)", o->label, lab.data->ndim);
        char why[160];
        if (!nii_same_grid(&im, &lab, why, sizeof why))
            return ct_seterr("%s: label map is on another grid than %s (%s)",
                             o->label, path, why);
        snprintf(lab.data->name, sizeof lab.data->name, "label");
        rec_add_tensor(&r, lab.data);
        rec_meta_set_str(&r, "label_source", o->label);
    }
    rec_history_append(&r, argc, argv);
    return rec_write(out, &r);
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = { 0 };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_ID = 256, OPT_F32 };
    static const struct option longopts[] = {
        { "label", required_argument, 0, 'l' }, { "id", required_argument, 0, OPT_ID },
        { "f32", no_argument, 0, OPT_F32 },     CLI_COMMON_LONGOPTS,
        { 0, 0, 0, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "l:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': o.label = optarg; break;
        case OPT_ID: o.id = optarg; break;
        case OPT_F32: o.f32 = 1; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (optind == argc) ct_usage_die("no input file");
    if (argc - optind > 1 && (o.label || o.id)) ct_usage_die("--label and --id take a single input file");
    struct rec_writer *out = rec_writer_open(cc.output, &cc.wopts);
    if (!out) ct_die("%s", ct_lasterr());
    struct tn_arena *a = tn_arena_new(0);
    for (int i = optind; i < argc; i++) {
        if (import_one(&o, argv[i], a, out, argc, argv) != 0) {
            rec_writer_abort(out);
            ct_die("%s", ct_lasterr());
        }
        tn_arena_reset(a);
    }
    tn_arena_free(a);
    if (rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
    return CT_EXIT_OK;
}
