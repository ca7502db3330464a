/*
 * ct-phantom - write a deterministic synthetic chest CT and its
 * TotalSegmentator-style label map as NIfTI: the bundled example that needs
 * no download.  Anatomy is defined in millimetres, so any grid works; the
 * default grid is small enough for CI.
 *
 * Writes: DIR/ct.nii.gz (int16 HU) and DIR/seg.nii.gz (uint8, TotalSegmentator
 * v2 `total` class ids: 10-14 lung lobes, 15 esophagus, 16 trachea, 51 heart,
 * 52 aorta, 53 pulmonary vein, 61 left atrial appendage, 5 liver, 32-43 vertebrae).
 *
 *   ct-phantom -o examples/phantom && ct-import examples/phantom/ct.nii.gz | ct-ls
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ct.h"
#include "nii.h"
#include "tensor.h"

/* TotalSegmentator v2 "total" class ids used here */
enum {
    TS_LIVER = 5, TS_LUNG_UL_L = 10, TS_LUNG_LL_L = 11, TS_LUNG_UL_R = 12, TS_LUNG_ML_R = 13,
    TS_LUNG_LL_R = 14, TS_ESOPHAGUS = 15, TS_TRACHEA = 16, TS_T12 = 32, TS_T1 = 43,
    TS_HEART = 51, TS_AORTA = 52, TS_PULM_VEIN = 53, TS_ATRIAL_APPENDAGE_L = 61,
};

struct opts {
    long     shape[3];               /* nx, ny, nz voxels */
    double   spacing[3];             /* sx, sy, sz mm */
    double   noise_hu;               /* Gaussian noise sigma */
    long     seed;
    const char *outdir;
    unsigned char unlabel[256];      /* class ids left out of the label map */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-phantom -o DIR [OPTION]...\n"
            "Write a deterministic synthetic chest CT (DIR/ct.nii.gz, int16 HU) and its\n"
            "TotalSegmentator-style label map (DIR/seg.nii.gz, uint8) on the same grid.\n"
            "\n"
            "  -o, --output DIR     output directory (created if missing)\n"
            "      --shape X,Y,Z    grid in voxels (default 192,160,64)\n"
            "      --spacing X,Y,Z  voxel size in mm (default 2,2,5)\n"
            "      --noise HU       Gaussian noise sigma (default 10)\n"
            "      --seed N         noise seed (default 1)\n"
            "      --unlabel IDS    leave these class ids (comma-separated, 1..255) out of\n"
            "                       the label map, as if TotalSegmentator had missed them;\n"
            "                       the CT is unchanged (e.g. --unlabel 15: no esophagus)\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "Class ids (TotalSegmentator v2 'total'): 10 lung_upper_lobe_left, 11\n"
            "lung_lower_lobe_left, 12 lung_upper_lobe_right, 13 lung_middle_lobe_right,\n"
            "14 lung_lower_lobe_right, 15 esophagus, 16 trachea, 51 heart, 52 aorta,\n"
            "53 pulmonary_vein, 61 atrial_appendage_left, 5 liver, 32..43 vertebrae T12..T1.\n"
            "Orientation: i runs to the patient's left, j posterior, k superior (affine\n"
            "diag(-sx,-sy,sz), as dcm2niix writes axial CT).\n"
            "Example: ct-phantom -o phantom && ct-import phantom/ct.nii.gz | ct-ls\n");
}

/* ---- deterministic noise: xorshift64* + Box-Muller ---- */
static uint64_t rng_state;
static double rng_uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545F4914F6CDD1DULL;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0;   /* (0,1) */
}
static double rng_gauss(void) {
    return sqrt(-2 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform());
}

/* ---- shapes in patient mm: X + = left, Y + = posterior, Z + = superior ---- */

static double ellipsoid(double x, double y, double z, double cx, double cy, double cz, double rx, double ry,
                        double rz) {
    double a = (x - cx) / rx, b = (y - cy) / ry, c = (z - cz) / rz;
    return a * a + b * b + c * c;                 /* <= 1 inside */
}

/* Distance from p to a polyline of n points. */
struct tube {
    int    n;
    double p[16][3];
    double r;                                      /* outer radius mm */
};

static double seg_dist(const double *a, const double *b, double x, double y, double z) {
    double d[3] = { b[0] - a[0], b[1] - a[1], b[2] - a[2] };
    double w[3] = { x - a[0], y - a[1], z - a[2] };
    double dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    double t = dd > 0 ? (w[0] * d[0] + w[1] * d[1] + w[2] * d[2]) / dd : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double e[3] = { w[0] - t * d[0], w[1] - t * d[1], w[2] - t * d[2] };
    return sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
}

static double tube_dist(const struct tube *t, double x, double y, double z) {
    double best = 1e30;
    for (int i = 0; i + 1 < t->n; i++) {
        double d = seg_dist(t->p[i], t->p[i + 1], x, y, z);
        if (d < best) best = d;
    }
    return best;
}

/* The aorta: root at the heart, ascending, arch to the left and back, descending. */
static const struct tube aorta = {
    8, { { 12, -25, 5 }, { 8, -28, 40 }, { 6, -26, 70 }, { 8, -15, 92 }, { 16, 5, 100 },
         { 24, 30, 90 }, { 26, 48, 65 }, { 26, 52, -170 } }, 13.0,
};
static const struct tube esophagus = {
    5, { { 4, 18, 175 }, { 6, 20, 60 }, { 10, 22, -40 }, { 22, 10, -110 }, { 40, -5, -150 } }, 8.0,
};
static const struct tube trachea = { 2, { { 0, -8, 175 }, { 0, -5, 65 } }, 10.0 };
static const struct tube bronchus_r = { 2, { { 0, -5, 65 }, { -35, 2, 40 } }, 6.5 };
static const struct tube bronchus_l = { 2, { { 0, -5, 65 }, { 38, 4, 35 } }, 6.0 };
static const struct tube pulm_vein = { 2, { { 25, -5, -5 }, { 55, 5, 15 } }, 5.0 };

/* Label (TotalSegmentator id) and HU of one point. */
static void tissue(double x, double y, double z, int *label, double *hu) {
    *label = 0;
    /* body: elliptic cylinder with a subcutaneous fat ring, air outside */
    double bx = x / 165, by = (y - 5) / 118;
    double body = bx * bx + by * by;
    if (body > 1) {
        *hu = -1000;
        return;
    }
    *hu = body > 0.84 ? -100 : 40;                  /* fat ring, then muscle */

    /* ribs: a thin bony ring inside the fat ring, broken every 25 mm of z */
    if (body > 0.70 && body < 0.76 && fmod(z + 400, 25) < 11) *hu = 500;

    /* liver (below the right diaphragm) */
    if (ellipsoid(x, y, z, -40, 0, -175, 110, 95, 75) <= 1) {
        *label = TS_LIVER;
        *hu = 60;
    }
    /* lungs, with the right dome lower than the left */
    double er = ellipsoid(x, y, z, -72, 8, 15, 62, 88, 140);
    double el = ellipsoid(x, y, z, 74, 10, 22, 60, 86, 135);
    if (er <= 1) {
        *hu = -860;
        if (z > 35 - 0.6 * y) *label = z > 28 + 0.1 * y ? TS_LUNG_UL_R : TS_LUNG_ML_R;
        else *label = TS_LUNG_LL_R;
    } else if (el <= 1) {
        *hu = -860;
        *label = z > 30 - 0.6 * y ? TS_LUNG_UL_L : TS_LUNG_LL_L;
    }
    /* vessels inside the lungs: a lattice of small denser nodes (texture only) */
    if (*label >= TS_LUNG_UL_L && *label <= TS_LUNG_LL_R) {
        double vx = fmod(x + 400, 18) - 9, vy = fmod(y + 400, 18) - 9;
        if (vx * vx + vy * vy < 4) *hu = -300;
    }
    /* spine: vertebral bodies T1 (top) .. T12 along z, discs in between */
    double sx = x, sy = y - 78;
    if (sx * sx + sy * sy < 20 * 20) {
        double zz = 175 - z;                       /* mm below the top of T1 */
        int v = (int)floor(zz / 28);
        if (v >= 0 && v <= TS_T1 - TS_T12 && fmod(zz, 28) < 24) {
            *label = TS_T1 - v;
            *hu = sx * sx + sy * sy > 17 * 17 ? 700 : 250;
        } else {
            *label = 0;
            *hu = 80;
        }
    }
    /* heart with an epicardial fat rim and the left atrial appendage */
    double eh = ellipsoid(x, y, z, 22, -32, -35, 62, 50, 56);
    if (eh <= 1.25 && eh > 1 && *label >= TS_LUNG_UL_L && *label <= TS_LUNG_LL_R) {
        *label = 0;
        *hu = -90;
    }
    if (eh <= 1) {
        *label = TS_HEART;
        *hu = eh > 0.75 ? 48 : 38;                 /* myocardium, blood */
    }
    if (ellipsoid(x, y, z, 58, -28, 2, 13, 10, 12) <= 1) {
        *label = TS_ATRIAL_APPENDAGE_L;
        *hu = 40;
    }
    double d;
    if ((d = tube_dist(&pulm_vein, x, y, z)) < pulm_vein.r) {
        *label = TS_PULM_VEIN;
        *hu = 40;
    }
    if ((d = tube_dist(&aorta, x, y, z)) < aorta.r) {
        *label = TS_AORTA;
        *hu = d > aorta.r - 1.5 ? 55 : 42;         /* wall, blood */
        if (z < 60 && z > 30 && d > aorta.r - 1.5 && x > 26) *hu = 450;   /* a calcified plaque */
    }
    if ((d = tube_dist(&esophagus, x, y, z)) < esophagus.r) {
        *label = TS_ESOPHAGUS;
        *hu = d < 2 ? -700 : 35;                   /* a little air in the lumen */
    }
    if ((d = tube_dist(&trachea, x, y, z)) < trachea.r) {
        *label = TS_TRACHEA;
        *hu = d < trachea.r - 2 ? -1000 : 30;
    }
    if (tube_dist(&bronchus_r, x, y, z) < bronchus_r.r || tube_dist(&bronchus_l, x, y, z) < bronchus_l.r) {
        *hu = -980;                                /* main bronchi: air, unlabelled */
        if (*label == TS_TRACHEA || *label == TS_AORTA || *label == TS_ESOPHAGUS) *hu = 30;
    }
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = { { 192, 160, 64 }, { 2, 2, 5 }, 10, 1, NULL, { 0 } };
    enum { OPT_SHAPE = 256, OPT_SPACING, OPT_NOISE, OPT_SEED, OPT_UNLABEL };
    static const struct option longopts[] = {
        { "output", required_argument, 0, 'o' },      { "shape", required_argument, 0, OPT_SHAPE },
        { "spacing", required_argument, 0, OPT_SPACING }, { "noise", required_argument, 0, OPT_NOISE },
        { "seed", required_argument, 0, OPT_SEED },   { "unlabel", required_argument, 0, OPT_UNLABEL },
        { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, 'V' },           { 0, 0, 0, 0 },
    };
    struct cli_common cc;
    cli_common_init(&cc);
    int ch;
    while ((ch = getopt_long(argc, argv, "o:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': o.outdir = optarg; break;
        case OPT_SHAPE:
            if (ct_parse_longs(optarg, o.shape, 3, 0) != 0 || o.shape[0] < 1 || o.shape[1] < 1 || o.shape[2] < 1 ||
                o.shape[0] > 2048 || o.shape[1] > 2048 || o.shape[2] > 2048)
                ct_usage_die("--shape: expected X,Y,Z from 1 to 2048, got '%s'", optarg);
            break;
        case OPT_SPACING:
            if (ct_parse_doubles(optarg, o.spacing, 3, 1) != 0 || !(o.spacing[0] > 0) || !(o.spacing[1] > 0) ||
                !(o.spacing[2] > 0))
                ct_usage_die("--spacing: expected positive X,Y,Z in mm, got '%s'", optarg);
            break;
        case OPT_NOISE:
            if (ct_parse_double(optarg, &o.noise_hu) != 0 || o.noise_hu < 0)
                ct_usage_die("--noise: expected a non-negative HU value, got '%s'", optarg);
            break;
        case OPT_SEED:
            if (ct_parse_long(optarg, &o.seed) != 0) ct_usage_die("--seed: %s", ct_lasterr());
            break;
        case OPT_UNLABEL: {
            const char *p = optarg;
            for (;;) {
                char *end;
                errno = 0;
                long id = strtol(p, &end, 10);
                if (end == p || errno || id < 1 || id > 255 || (*end && *end != ','))
                    ct_usage_die("--unlabel: expected class ids 1..255 separated by commas, got '%s'", optarg);
                o.unlabel[id] = 1;
                if (!*end) break;
                p = end + 1;
            }
            break;
        }
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (!o.outdir) ct_usage_die("missing --output DIR");
    if (optind < argc) ct_usage_die("unexpected argument '%s'", argv[optind]);
    if (mkdir(o.outdir, 0755) != 0 && errno != EEXIST) ct_die("%s: cannot create directory: %s", o.outdir, strerror(errno));

    int64_t nx = o.shape[0], ny = o.shape[1], nz = o.shape[2];
    int64_t shape[3] = { nz, ny, nx };
    struct tn_arena *a = tn_arena_new(0);
    struct tn_tensor *ct = tn_new(a, TN_I16, 3, shape, "image");
    struct tn_tensor *seg = tn_new(a, TN_U8, 3, shape, "label");
    int16_t *hu = ct->data;
    uint8_t *lab = seg->data;
    rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)o.seed * 0xD1B54A32D192ED03ULL;
    if (!rng_state) rng_state = 1;
    double cx = (double)(nx - 1) / 2, cy = (double)(ny - 1) / 2, cz = (double)(nz - 1) / 2;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++) {
                double x = ((double)i - cx) * o.spacing[0];
                double y = ((double)j - cy) * o.spacing[1];
                double z = ((double)k - cz) * o.spacing[2];
                int l;
                double h;
                tissue(x, y, z, &l, &h);
                h += o.noise_hu * rng_gauss();
                if (h < -1024) h = -1024;
                if (h > 3071) h = 3071;
                int64_t idx = (k * ny + j) * nx + i;
                hu[idx] = (int16_t)lrint(h);
                lab[idx] = o.unlabel[l] ? 0 : (uint8_t)l;
            }
    /* RAS affine of an axial CT stored LPS-style: i -> left, j -> posterior */
    double A[4][4] = {
        { -o.spacing[0], 0, 0, cx * o.spacing[0] },
        { 0, -o.spacing[1], 0, cy * o.spacing[1] },
        { 0, 0, o.spacing[2], -cz * o.spacing[2] },
        { 0, 0, 0, 1 },
    };
    char path[4096];
    snprintf(path, sizeof path, "%s/ct.nii.gz", o.outdir);
    if (nii_write(path, ct, A, 6) != 0) ct_die("%s", ct_lasterr());
    snprintf(path, sizeof path, "%s/seg.nii.gz", o.outdir);
    if (nii_write(path, seg, A, 6) != 0) ct_die("%s", ct_lasterr());
    tn_arena_free(a);
    return CT_EXIT_OK;
}
