/*
 * ct-resample - the first stage: a CT in Hounsfield units (NIfTI) and its
 * TotalSegmentator label map into the image and organ mask the encoder
 * expects, exactly as the fVLM preprocessing that ViSD-Boost relies on
 * (method.md 1.4-1.5): merge TotalSegmentator classes into organs, resize to
 * 1 x 1 x 3 mm (trilinear image, legacy-nearest labels, torch's
 * align_corners=False arithmetic, the x/y quirk kept), window HU to [0, 1],
 * crop to the organs' bounding box plus margins, pad symmetrically to at
 * least 112 x 256 x 352.  Without a label map: resample, window, pad.
 *
 * Reads: NIfTI-1/2 (.nii, .nii.gz), an organ set (YAML).  Writes: ct.case/1
 * (and optionally NIfTI files of each output for viewers).
 *
 *   ct-resample ct.nii.gz --label seg.nii.gz | ct-ls
 *   ct-resample --manifest cases.tsv -j 2 -o cases.ctv
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, madvise */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cli.h"
#include "ct.h"
#include "nii.h"
#include "resample.h"
#include "stream.h"

struct opts {
    const char      *label;          /* label map (one input only) */
    const char      *id;             /* record id (one input only) */
    const char      *manifest;       /* "ct [label [id]]" per line */
    const char      *organs;         /* organ set YAML (NULL = built-in CT-RATE) */
    struct rs_params rp;             /* spacing 3,1,1 mm; xy_swap 1; floor; margin 5,20,20; pad 112,256,352 */
    struct rs_window win;            /* on, -1150 .. 350 HU */
    int              crop;           /* crop to the organ box (1) */
    int              spacing_norm;   /* spacing from column norms instead of |diagonal| (0) */
    const char      *nifti_dir;      /* also write DIR/ID_image.nii.gz and DIR/ID_mask.nii.gz */
    int              nifti_level;    /* gzip level of those (1; 0 = .nii) */
    int              keep_going;     /* skip bad cases, exit 1 at the end */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-resample [OPTION]... CT.nii[.gz] [--label SEG.nii[.gz]]\n"
            "       ct-resample [OPTION]... CT.nii[.gz]...          (no label maps)\n"
            "       ct-resample [OPTION]... --manifest FILE\n"
            "Resample CT volumes (HU) and their TotalSegmentator label maps to the grid of the\n"
            "fVLM/ViSD-Boost encoder and write one ct.case/1 record per case: 'image' f32\n"
            "[D,H,W] in [0,1] and 'mask' u8 [D,H,W] (0 = background, k = organs[k-1]).\n"
            "Steps (each number an option): merge classes into organs, resize to 3x1x1 mm\n"
            "(trilinear image, legacy nearest labels, as torch interpolate with\n"
            "align_corners=False), window HU, crop to the organs' box, pad to 112x256x352.\n"
            "Per-axis values are in output order D,H,W = z,y,x.\n"
            "\n"
            "Inputs:\n"
            "  -l, --label FILE       label map on the CT's grid (only with one CT)\n"
            "      --id ID            record id (one CT; default: file name without .nii[.gz])\n"
            "  -m, --manifest FILE    one case per line: CT [LABEL [ID]] separated by tabs, or by\n"
            "                         spaces when the line has no tab; LABEL '-' = none; '#'\n"
            "                         comments; relative paths are relative to the current\n"
            "                         directory; FILE '-' = stdin\n"
            "      --organs FILE      organ set YAML (default: built-in CT-RATE lung, heart,\n"
            "                         esophagus, aorta; see --print-organs)\n"
            "      --print-organs     print the built-in organ set as YAML and exit\n"
            "Reference parameters (defaults = fVLM):\n"
            "      --spacing Z,Y,X    target voxel size in mm (3,1,1)\n"
            "      --no-xy-swap       size x from the x scale and y from the y scale (fVLM swaps them)\n"
            "      --size-rule R      floor (int(n*s/t), fVLM), round or ceil (floor)\n"
            "      --spacing-from S   diag: |affine[i,i]| as fVLM (wrong for oblique scans); norm:\n"
            "                         affine column norms (diag)\n"
            "      --hu-window LO,HI  v = clip((HU - LO) / (HI - LO), 0, 1) (-1150,350)\n"
            "      --no-window        keep HU values\n"
            "      --margin D,H,W     crop margin in voxels around the organs (5,20,20)\n"
            "      --no-crop          do not crop (always the case without a label map)\n"
            "      --pad-to D,H,W     pad symmetrically with zeros up to this size (112,256,352)\n"
            "Outputs:\n"
            "      --write-nifti DIR  also write DIR/ID_image.nii.gz and DIR/ID_mask.nii.gz\n"
            "      --nifti-gzip N     gzip level of those, 1..9, or 0 for .nii (1)\n"
            "  -k, --keep-going       report a bad case, skip it, go on; exit 1 at the end\n"
            CLI_COMMON_HELP
            "\n"
            "Exit status: 0 ok, 1 bad input or failed write, 2 usage.\n"
            "Example: ct-resample ct.nii.gz --label seg.nii.gz --write-nifti view | ct-ls\n");
}

/* ---- cases ---- */

struct ct_case {
    char *ct, *label, *id;
    long  line;                      /* manifest line (0 for command-line cases) */
};

/* Split a manifest line into up to 4 fields (tabs, or spaces when there is no tab). */
static int split_fields(char *s, char **f, int max) {
    const char *sep = strchr(s, '\t') ? "\t" : " ";
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
        if (*t == 0) continue;
        if (n == max) return max + 1;
        f[n++] = t;
    }
    return n;
}

static int read_manifest(const char *path, struct ct_case **out, int *n_out) {
    int from_stdin = !strcmp(path, "-");
    FILE *fp = from_stdin ? stdin : fopen(path, "r");
    if (!fp) return ct_seterr("%s: %s", path, strerror(errno));
    struct ct_case *cs = NULL;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == 0 || *s == '#') continue;
        char *f[4] = { 0 };
        int k = split_fields(s, f, 3);
        if (k > 3) {
            rc = ct_seterr("%s:%ld: more than 3 fields (CT, LABEL, ID)", path, lineno);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            cs = ct_xrealloc(cs, (size_t)cap * sizeof *cs);
        }
        struct ct_case *c = &cs[n++];
        c->ct = ct_xstrdup(f[0]);
        c->label = k > 1 && strcmp(f[1], "-") ? ct_xstrdup(f[1]) : NULL;
        c->line = lineno;
        char id[512];
        if (k > 2) snprintf(id, sizeof id, "%s", f[2]);
        else ct_case_id(c->ct, id, sizeof id);
        c->id = ct_xstrdup(id);
    }
    if (rc == 0 && ferror(fp)) rc = ct_seterr("%s: %s", path, strerror(errno));
    free(line);
    if (!from_stdin) fclose(fp);
    if (rc == 0 && n == 0) rc = ct_seterr("%s: no cases", path);
    *out = cs;
    *n_out = n;
    return rc;
}

/* ---- checks on NIfTI inputs ---- */

/* 3-D after dropping trailing singleton axes (x, y, z, 1, 1 is 3-D). */
static int spatial_ndim(const struct nii_image *im) {
    int nd = im->ndim;
    while (nd > 3 && im->dim[nd] == 1) nd--;
    return nd;
}

static int check_volume(const struct nii_image *im, const char *what) {
    int nd = spatial_ndim(im);
    if (nd != 3) return ct_seterr("%d-D %s (dim = %lld,%lld,%lld,%lld; expected one 3-D volume)", nd, what,
                                  (long long)im->dim[1], (long long)im->dim[2], (long long)im->dim[3],
                                  (long long)im->dim[4]);
    for (int a = 1; a <= 3; a++)
        if (!(im->pixdim_raw[a] > 0) || !isfinite(im->pixdim_raw[a]))
            return ct_seterr("zero or negative voxel size in the header (pixdim[%d] = %g)", a, im->pixdim_raw[a]);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(im->affine[r][c])) return ct_seterr("non-finite %s affine", im->affine_source);
    return 0;
}

/* Integer voxels scaled as the resampler reads them, (float)(v * slope + inter):
 * how many are not finite.  Linear in v, so when both ends of the dtype's range
 * stay finite no voxel can overflow and the data is not read at all. */
static int64_t count_nonfinite_scaled(const struct tn_tensor *t, double slope, double inter) {
    if (tn_dtype_is_float(t->dtype)) {            /* float data: checked before scaling too */
        int64_t k = 0, n = tn_numel(t);
        for (int64_t i = 0; i < n; i++) k += !isfinite((float)(tn_get(t, i) * slope + inter));
        return k;
    }
    static const double lo[] = { [TN_U8] = 0, [TN_I8] = -128, [TN_U16] = 0, [TN_I16] = -32768, [TN_U32] = 0,
                                 [TN_I32] = -2147483648.0, [TN_U64] = 0, [TN_I64] = -9223372036854775808.0 };
    static const double hi[] = { [TN_U8] = 255, [TN_I8] = 127, [TN_U16] = 65535, [TN_I16] = 32767,
                                 [TN_U32] = 4294967295.0, [TN_I32] = 2147483647, [TN_U64] = 18446744073709551615.0,
                                 [TN_I64] = 9223372036854775807.0 };
    if (isfinite((float)(lo[t->dtype] * slope + inter)) && isfinite((float)(hi[t->dtype] * slope + inter))) return 0;
    int64_t k = 0, n = tn_numel(t);
    for (int64_t i = 0; i < n; i++) k += !isfinite((float)(tn_get(t, i) * slope + inter));
    return k;
}

static int is_oblique(const struct nii_image *im) {
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            if (r != c && fabs(im->affine[r][c]) > 1e-6 * (fabs(im->affine[c][c]) + 1e-12)) return 1;
    return 0;
}

/* ---- metadata helpers ---- */

static void meta_bool(struct rec *r, const char *key, int v) {
    struct rec_mp m = { 0 };
    rec_mp_bool(&m, v);
    rec_meta_set_mp(r, key, &m);
}

static void meta_organs(struct rec *r, const struct org_classes *o) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)o->n);
    for (int k = 0; k < o->n; k++) {
        rec_mp_array(&m, (uint32_t)o->organs[k].n_ids);
        for (int i = 0; i < o->organs[k].n_ids; i++) rec_mp_i64(&m, o->organs[k].ids[i]);
    }
    rec_meta_set_mp(r, "organ_classes", &m);
}

/* ---- reusable buffers ---- */

/* A 2 MiB-aligned anonymous mapping kept across cases (grows when needed);
 * its pages are faulted in at once (populate) and given back after use
 * (vbuf_release), so a batch peaks no higher than one case. */
struct vbuf {
    void  *p;
    size_t cap;
};

static void vbuf_free(struct vbuf *b) {
    if (b->p) munmap(b->p, b->cap);
    b->p = NULL, b->cap = 0;
}

static void *vbuf_get(struct vbuf *b, size_t n) {
    if (n <= b->cap) return b->p;
    vbuf_free(b);
    /* 2 MiB-aligned so that transparent huge pages can back it (as lib/tensor.c
     * does for big tensors): 512x fewer page faults for a CT volume */
    const size_t huge = (size_t)2 << 20;
    size_t cap = (n + huge - 1) & ~(huge - 1);
    uint8_t *m = mmap(NULL, cap + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) ct_die("out of memory (%zu MB)", cap >> 20);
    uint8_t *p = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
    if (p > m) munmap(m, (size_t)(p - m));
    if (p + cap < m + cap + huge) munmap(p + cap, (size_t)(m + cap + huge - (p + cap)));
    madvise(p, cap, MADV_HUGEPAGE);
    b->p = p, b->cap = cap;
    return p;
}

/* Give the pages back but keep the address range (the next case faults again). */
static void vbuf_release(struct vbuf *b) {
    if (b->p) madvise(b->p, b->cap, MADV_DONTNEED);
}

/* Fault pages in, writable, without touching their content (Linux >= 5.14;
 * a no-op elsewhere).  One call replaces thousands of page faults and is safe
 * while another thread writes the same pages. */
static void populate(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095, e = (uintptr_t)p + n;
    if (e > a) madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
    (void)p, (void)n;
#endif
}

/* Reading the CT in a second thread while the label map is processed. */
struct ct_job {
    const char      *path;
    struct tn_arena *arena;
    struct nii_image img;
    void            *buf;
    size_t           cap;
    int              rc;
    char             err[512];
};

static void *ct_job_main(void *p) {
    struct ct_job *j = p;
    j->rc = nii_read_into(j->path, j->arena, &j->img, j->buf, j->cap);
    if (j->rc != 0) snprintf(j->err, sizeof j->err, "%s", ct_lasterr());
    return NULL;
}

/* ---- one case ---- */

struct run {
    const struct opts *o;
    struct org_classes   organs;
    struct rs_lut      lut;
    struct tn_arena   *a, *alab, *act;   /* record, label map, CT tensor structs */
    struct vbuf        ctbuf, labbuf;    /* CT and label voxels, reused across cases */
    struct vbuf        imgbuf, maskbuf;  /* output tensors, reused across cases */
    struct rec_writer *out;
    int                threads;
    int                told_no_label;    /* the "not cropped" note was printed */
    int                argc;
    char             **argv;
};

static const char *rule_name(enum rs_size_rule r) {
    return r == RS_SIZE_CEIL ? "ceil" : r == RS_SIZE_ROUND ? "round" : "floor";
}

/* Process one case and write its record; 0, or -1 with lasterr "FILE: problem"
 * (FILE = the CT, the label map or the organ set the problem is in). */
static int process_case(struct run *R, const struct ct_case *cs) {
    const struct opts *o = R->o;
    struct nii_image hdr, lab, img;
    double slope, inter;

    double t0 = ct_now(), t;
#define STAGE(name) (t = ct_now(), ct_log(2, "%s: %-14s %7.1f ms", cs->id, name, (t - t0) * 1e3), t0 = t)
    /* CT header first: cheap checks before inflating anything big */
    if (nii_read_header(cs->ct, &hdr) != 0) return ct_prefixerr("%s", cs->ct);
    if (check_volume(&hdr, "CT volume") != 0) return ct_prefixerr("%s", cs->ct);
    int64_t in_shape[3] = { hdr.dim[3], hdr.dim[2], hdr.dim[1] };
    double sp_in[3];
    nii_spacing_c(&hdr, o->spacing_norm, sp_in);
    struct rs_grid g;
    if (rs_grid_init(&g, in_shape, sp_in, &o->rp) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ct_lasterr());
        if (o->spacing_norm) return ct_seterr("%s: %s", cs->ct, msg);
        return ct_seterr("%s: %s (spacing read from the affine diagonal as fVLM does; --spacing-from norm "
                         "for oblique or permuted axes)", cs->ct, msg);
    }
    /* the size limit from the header, before any work: the resampled grid is
     * walked whole (organ box) before cropping, and padding only grows it */
    {
        struct rs_grid gp = g;
        rs_grid_pad(&gp, o->rp.pad_to);
        int64_t big[3];
        for (int i = 0; i < 3; i++) big[i] = gp.out_shape[i] > g.out_shape[i] ? gp.out_shape[i] : g.out_shape[i];
        double bytes = 4.0 * (double)big[0] * (double)big[1] * (double)big[2];
        if (bytes > 4294967295.0)
            return ct_seterr("%s: resampled to [%lld,%lld,%lld] voxels of %g x %g x %g mm the image would need %.3g GiB "
                             "as f32; a tensor is limited to 4 GiB - 1 (input [%lld,%lld,%lld], voxel size %g x %g x %g mm)",
                             cs->ct, (long long)big[0], (long long)big[1], (long long)big[2], o->rp.spacing_mm[0],
                             o->rp.spacing_mm[1], o->rp.spacing_mm[2], bytes / 1073741824.0, (long long)in_shape[0],
                             (long long)in_shape[1], (long long)in_shape[2], sp_in[0], sp_in[1], sp_in[2]);
    }
    if (is_oblique(&hdr))
        ct_warn("%s: oblique or permuted affine; spacing taken from its %s", cs->ct,
                o->spacing_norm ? "column norms" : "diagonal as fVLM does (see --spacing-from)");

    struct rs_src ls = { 0 };
    struct tn_tensor *mask = NULL;
    struct tn_tensor *image = NULL;
    int64_t counts[ORG_MAX_MASK + 1] = { 0 };
    int cropped = 0;
    size_t n_out = 0;
    /* With threads, the CT inflates in a second thread from here on while the
     * label map is read and turned into the mask and the output pages are
     * faulted in. */
    size_t ct_need = nii_read_nbytes(&hdr);
    struct ct_job job = { .path = cs->ct, .arena = R->act, .buf = vbuf_get(&R->ctbuf, ct_need), .cap = R->ctbuf.cap };
    pthread_t tid;
    int async = 0;
    size_t first = ct_need < ((size_t)16 << 20) ? ct_need : ((size_t)16 << 20);
    if (R->threads > 1) {
        populate(job.buf, first);
        async = pthread_create(&tid, NULL, ct_job_main, &job) == 0;
    }
    int rc = -1;
    /* label map: merged + nearest, first pass = organ box; second pass = mask */
    if (cs->label) {
        if (nii_read_header(cs->label, &lab) != 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        if (check_volume(&lab, "label map") != 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        char why[256];
        if (!nii_same_grid(&hdr, &lab, why, sizeof why)) {
            ct_seterr("%s: label map is on another grid than %s (%s)", cs->label, cs->ct, why);
            goto join;
        }
        void *lb = vbuf_get(&R->labbuf, nii_read_nbytes(&lab));
        populate(lb, nii_read_nbytes(&lab));
        if (nii_read_into(cs->label, R->alab, &lab, lb, R->labbuf.cap) != 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        STAGE("read labels");
        nii_squeeze_3d(lab.data);
        ls.t = lab.data;
        if ((ls.scaled = nii_scaling(&lab, &slope, &inter)) < 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        ls.slope = slope, ls.inter = inter;
        int64_t flat;
        double v;
        if (rs_find_noninteger(&ls, &flat, &v) == 1) {
            int64_t nx = lab.dim[1], ny = lab.dim[2];
            ct_seterr("%s: non-integer label value %g at voxel (x=%lld, y=%lld, z=%lld)", cs->label, v,
                      (long long)(flat % nx), (long long)(flat / nx % ny), (long long)(flat / nx / ny));
            goto join;
        }
    }

    if (cs->label && o->crop) {
        int64_t bmin[3], bmax[3];
        int found = rs_labels_bbox(&ls, &R->lut, &g, bmin, bmax, async ? 1 : R->threads);
        if (found < 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        if (!found) {
            ct_seterr("%s: no voxel of any organ of the set '%s' after resampling (fVLM skips such volumes; "
                      "--no-crop keeps it)", cs->label, R->organs.name);
            goto join;
        }
        rs_grid_crop(&g, bmin, bmax, o->rp.margin);
        cropped = 1;
        STAGE("organ box");
    }
    rs_grid_pad(&g, o->rp.pad_to);
    n_out = (size_t)(g.out_shape[0] * g.out_shape[1] * g.out_shape[2]);
    if (cs->label) {
        mask = tn_view(R->a, TN_U8, 3, g.out_shape, vbuf_get(&R->maskbuf, n_out), "mask");
        populate(mask->data, n_out);
        if (rs_labels_write(&ls, &R->lut, &g, mask->data, counts, R->organs.n + 1, async ? 1 : R->threads) != 0) {
            ct_prefixerr("%s", cs->label);
            goto join;
        }
        vbuf_release(&R->labbuf);                 /* the label map's voxels end here */
        STAGE("mask");
    }
    image = tn_view(R->a, TN_F32, 3, g.out_shape, vbuf_get(&R->imgbuf, n_out * 4), "image");
    rc = 0;
join:
    if (async) {
        /* the labels are gone: fault in the rest of the CT buffer ahead of the
         * inflating thread (pages it already wrote are skipped), then the output */
        if (rc == 0) {
            populate((uint8_t *)job.buf + first, ct_need - first);
            populate(image->data, n_out * 4);
        }
        pthread_join(tid, NULL);
        if (rc == 0 && job.rc != 0) rc = ct_seterr("%s: %s", cs->ct, job.err);
    } else if (rc == 0) {
        populate(job.buf, ct_need);
        if (nii_read_into(cs->ct, R->act, &job.img, job.buf, job.cap) != 0) rc = ct_prefixerr("%s", cs->ct);
        else populate(image->data, n_out * 4);    /* after the gzip mapping is gone: lower peak RSS */
    }
    if (rc != 0) return -1;
    STAGE("read CT");

    /* CT voxels: check, then trilinear + window into the output box */
    img = job.img;
    nii_squeeze_3d(img.data);
    struct rs_src is = { .t = img.data };
    if ((is.scaled = nii_scaling(&img, &slope, &inter)) < 0) return ct_prefixerr("%s", cs->ct);
    is.slope = slope, is.inter = inter;
    int64_t bad = rs_count_nonfinite(&is, R->threads);
    if (bad > 0) return ct_seterr("%s: %lld NaN or infinite voxels", cs->ct, (long long)bad);
    if (is.scaled && (bad = count_nonfinite_scaled(img.data, slope, inter)) > 0)
        return ct_seterr("%s: %lld voxels are NaN or infinite once scaled by scl_slope %g, scl_inter %g", cs->ct,
                         (long long)bad, slope, inter);
    if (rs_image_write(&is, &g, &o->win, image->data, R->threads) != 0) return ct_prefixerr("%s", cs->ct);
    vbuf_release(&R->ctbuf);                      /* the CT's voxels end here */
    STAGE("image");

    /* the record */
    struct rec r;
    rec_init(&r, R->a, "ct.case/1", cs->id);
    rec_add_tensor(&r, image);
    if (mask) rec_add_tensor(&r, mask);
    const char *names[ORG_MAX_MASK];
    int64_t vox[ORG_MAX_MASK];
    int n_org = mask ? R->organs.n : 0;
    for (int k = 0; k < n_org; k++) names[k] = R->organs.organs[k].name, vox[k] = counts[k + 1];
    rec_meta_set_strv(&r, "organs", names, n_org);
    rec_meta_set_i64v(&r, "organ_voxels", vox, n_org);
    double A_src[4][4], A[4][4];
    nii_affine_flip_axes(hdr.affine, A_src);
    rs_grid_affine(&g, A_src, A);
    rec_meta_set_mat4(&r, "affine", A);
    double sp[3];
    for (int c = 0; c < 3; c++) sp[c] = sqrt(A[0][c] * A[0][c] + A[1][c] * A[1][c] + A[2][c] * A[2][c]);
    rec_meta_set_f64v(&r, "spacing_mm", sp, 3);
    rec_meta_set_str(&r, "source", cs->ct);
    if (cs->label) rec_meta_set_str(&r, "label_source", cs->label);
    rec_meta_set_mat4(&r, "source_affine", A_src);
    rec_meta_set_i64v(&r, "source_shape", g.in_shape, 3);
    rec_meta_set_f64v(&r, "source_spacing_mm", g.spacing_in, 3);
    rec_meta_set_str(&r, "spacing_from", o->spacing_norm ? "norm" : "diag");
    rec_meta_set_f64v(&r, "target_spacing_mm", o->rp.spacing_mm, 3);
    meta_bool(&r, "xy_swap", o->rp.xy_swap);
    rec_meta_set_str(&r, "size_rule", rule_name(o->rp.rule));
    rec_meta_set_str(&r, "image_interp", "trilinear");
    if (mask) rec_meta_set_str(&r, "mask_interp", "nearest");
    rec_meta_set_i64v(&r, "resampled_shape", g.res_shape, 3);
    meta_bool(&r, "cropped", cropped);
    rec_meta_set_i64v(&r, "crop_lo", g.lo, 3);
    rec_meta_set_i64v(&r, "crop_hi", g.hi, 3);
    rec_meta_set_i64v(&r, "crop_margin", o->rp.margin, 3);
    rec_meta_set_i64v(&r, "pad_before", g.pad_before, 3);
    rec_meta_set_i64v(&r, "pad_after", g.pad_after, 3);
    rec_meta_set_i64v(&r, "pad_to", o->rp.pad_to, 3);
    if (o->win.on) {
        double hw[2] = { o->win.lo, o->win.hi };
        rec_meta_set_f64v(&r, "hu_window", hw, 2);
    }
    if (mask) {
        rec_meta_set_str(&r, "organ_set", R->organs.name);
        rec_meta_set_str(&r, "organ_set_source", R->organs.source);
        meta_organs(&r, &R->organs);
    }
    nii_meta_header(&r, "nifti", &hdr);
    rec_history_append(&r, R->argc, R->argv);

    if (o->nifti_dir) {
        double An[4][4];
        nii_affine_flip_axes(A, An);
        const char *ext = o->nifti_level > 0 ? ".nii.gz" : ".nii";
        size_t n = strlen(o->nifti_dir) + strlen(cs->id) + 32;
        char *p = ct_xmalloc(n);
        snprintf(p, n, "%s/%s_image%s", o->nifti_dir, cs->id, ext);
        rc = nii_write(p, image, An, o->nifti_level);
        if (rc == 0 && mask) {
            snprintf(p, n, "%s/%s_mask%s", o->nifti_dir, cs->id, ext);
            rc = nii_write(p, mask, An, o->nifti_level);
        }
        free(p);
        if (rc != 0) return -1;
    }
    rc = rec_write(R->out, &r);
    STAGE("write record");
    return rc;
#undef STAGE
}

/* ---- options ---- */

static void parse_triple_double(const char *opt, const char *arg, double v[3], int positive) {
    if (ct_parse_doubles(arg, v, 3, 0) != 0) ct_usage_die("%s: expected three numbers D,H,W, got '%s'", opt, arg);
    for (int i = 0; i < 3; i++)
        if (!isfinite(v[i]) || (positive && !(v[i] > 0))) ct_usage_die("%s: values must be > 0, got '%s'", opt, arg);
}

static void parse_triple_long(const char *opt, const char *arg, int64_t v[3]) {
    long t[3];
    if (ct_parse_longs(arg, t, 3, 0) != 0) ct_usage_die("%s: expected three integers D,H,W, got '%s'", opt, arg);
    for (int i = 0; i < 3; i++) {
        if (t[i] < 0 || t[i] > 65535) ct_usage_die("%s: values must be 0..65535, got '%s'", opt, arg);
        v[i] = t[i];
    }
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = {
        .rp = { .spacing_mm = { 3, 1, 1 }, .xy_swap = 1, .rule = RS_SIZE_FLOOR, .margin = { 5, 20, 20 },
                .pad_to = { 112, 256, 352 } },
        .win = { .on = 1, .lo = -1150, .hi = 350 },
        .crop = 1,
        .nifti_level = 1,
    };
    struct cli_common cc;
    cli_common_init(&cc);
    enum {
        OPT_ID = 256, OPT_ORGANS, OPT_PRINT_ORGANS, OPT_SPACING, OPT_NO_XY_SWAP, OPT_SIZE_RULE, OPT_SPACING_FROM,
        OPT_HU, OPT_NO_WINDOW, OPT_MARGIN, OPT_NO_CROP, OPT_PAD_TO, OPT_NIFTI, OPT_NIFTI_GZIP,
    };
    static const struct option longopts[] = {
        { "label", required_argument, 0, 'l' },
        { "id", required_argument, 0, OPT_ID },
        { "manifest", required_argument, 0, 'm' },
        { "organs", required_argument, 0, OPT_ORGANS },
        { "print-organs", no_argument, 0, OPT_PRINT_ORGANS },
        { "spacing", required_argument, 0, OPT_SPACING },
        { "no-xy-swap", no_argument, 0, OPT_NO_XY_SWAP },
        { "size-rule", required_argument, 0, OPT_SIZE_RULE },
        { "spacing-from", required_argument, 0, OPT_SPACING_FROM },
        { "hu-window", required_argument, 0, OPT_HU },
        { "no-window", no_argument, 0, OPT_NO_WINDOW },
        { "margin", required_argument, 0, OPT_MARGIN },
        { "no-crop", no_argument, 0, OPT_NO_CROP },
        { "pad-to", required_argument, 0, OPT_PAD_TO },
        { "write-nifti", required_argument, 0, OPT_NIFTI },
        { "nifti-gzip", required_argument, 0, OPT_NIFTI_GZIP },
        { "keep-going", no_argument, 0, 'k' },
        CLI_COMMON_LONGOPTS,
        { 0, 0, 0, 0 },
    };
    int ch;
    long n;
    double hw[2];
    while ((ch = getopt_long(argc, argv, "l:m:k" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': o.label = optarg; break;
        case OPT_ID: o.id = optarg; break;
        case 'm': o.manifest = optarg; break;
        case 'k': o.keep_going = 1; break;
        case OPT_ORGANS: o.organs = optarg; break;
        case OPT_PRINT_ORGANS:
            fputs(org_classes_ct_rate_yaml, stdout);
            return fflush(stdout) == 0 ? CT_EXIT_OK : CT_EXIT_FAIL;
        case OPT_SPACING: parse_triple_double("--spacing", optarg, o.rp.spacing_mm, 1); break;
        case OPT_NO_XY_SWAP: o.rp.xy_swap = 0; break;
        case OPT_SIZE_RULE:
            if (!strcmp(optarg, "floor")) o.rp.rule = RS_SIZE_FLOOR;
            else if (!strcmp(optarg, "round")) o.rp.rule = RS_SIZE_ROUND;
            else if (!strcmp(optarg, "ceil")) o.rp.rule = RS_SIZE_CEIL;
            else ct_usage_die("--size-rule: expected floor, round or ceil, got '%s'", optarg);
            break;
        case OPT_SPACING_FROM:
            if (!strcmp(optarg, "diag")) o.spacing_norm = 0;
            else if (!strcmp(optarg, "norm")) o.spacing_norm = 1;
            else ct_usage_die("--spacing-from: expected diag or norm, got '%s'", optarg);
            break;
        case OPT_HU:
            if (ct_parse_doubles(optarg, hw, 2, 0) != 0 || !isfinite(hw[0]) || !isfinite(hw[1]) || !(hw[1] > hw[0]))
                ct_usage_die("--hu-window: expected LO,HI with LO < HI, got '%s'", optarg);
            o.win.lo = hw[0], o.win.hi = hw[1];
            break;
        case OPT_NO_WINDOW: o.win.on = 0; break;
        case OPT_MARGIN: parse_triple_long("--margin", optarg, o.rp.margin); break;
        case OPT_NO_CROP: o.crop = 0; break;
        case OPT_PAD_TO: parse_triple_long("--pad-to", optarg, o.rp.pad_to); break;
        case OPT_NIFTI: o.nifti_dir = optarg; break;
        case OPT_NIFTI_GZIP:
            if (ct_parse_long(optarg, &n) != 0 || n < 0 || n > 9)
                ct_usage_die("--nifti-gzip: expected a level from 0 to 9, got '%s'", optarg);
            o.nifti_level = (int)n;
            break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    int n_files = argc - optind;
    if (o.manifest && n_files) ct_usage_die("--manifest and CT files on the command line are exclusive");
    if (!o.manifest && n_files == 0) ct_usage_die("no input file (give CT files or --manifest)");
    if (n_files > 1 && (o.label || o.id)) ct_usage_die("--label and --id take a single CT file");
    if (o.manifest && (o.label || o.id)) ct_usage_die("--label and --id do not combine with --manifest");

    struct run R = { .o = &o, .threads = cc.threads, .argc = argc, .argv = argv };
    R.a = tn_arena_new(0);
    R.alab = tn_arena_new(0);
    R.act = tn_arena_new(0);
    struct tn_arena *cfg_arena = tn_arena_new(0);
    if (org_classes_load(o.organs, cfg_arena, &R.organs) != 0) ct_die("%s", ct_lasterr());
    rs_organs_lut(&R.organs, cfg_arena, &R.lut);

    struct ct_case *cases = NULL;
    int n_cases = 0;
    if (o.manifest) {
        if (read_manifest(o.manifest, &cases, &n_cases) != 0) ct_die("%s", ct_lasterr());
    } else {
        n_cases = n_files;
        cases = ct_xcalloc((size_t)n_cases, sizeof *cases);
        for (int i = 0; i < n_files; i++) {
            char id[512];
            if (o.id) snprintf(id, sizeof id, "%s", o.id);
            else ct_case_id(argv[optind + i], id, sizeof id);
            cases[i] = (struct ct_case){ .ct = ct_xstrdup(argv[optind + i]),
                                         .label = o.label ? ct_xstrdup(o.label) : NULL,
                                         .id = ct_xstrdup(id) };
        }
    }
    if (o.nifti_dir) {
        struct stat st;
        if (mkdir(o.nifti_dir, 0777) != 0 && (errno != EEXIST || stat(o.nifti_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            ct_die("%s: %s", o.nifti_dir, errno == EEXIST ? "not a directory" : strerror(errno));
    }

    R.out = rec_writer_open(cc.output, &cc.wopts);
    if (!R.out) ct_die("%s", ct_lasterr());
    int failed = 0;
    for (int i = 0; i < n_cases; i++) {
        double t0 = ct_now();
        if (process_case(&R, &cases[i]) != 0) {
            if (!o.keep_going) {
                rec_writer_abort(R.out);
                ct_die("%s", ct_lasterr());
            }
            ct_warn("%s (case %s skipped)", ct_lasterr(), cases[i].id);
            failed++;
        } else {
            ct_log(1, "%s: %.3f s, peak RSS %ld MB", cases[i].id, ct_now() - t0, ct_peak_rss_kb() / 1024);
            if (!cases[i].label && (!R.told_no_label || ct_log_level > 0)) {
                ct_warn("%s: no label map: resampled, windowed and padded, not cropped (no mask; meta cropped = "
                        "false)%s", cases[i].id, R.told_no_label ? "" : "; said once, -v for every case");
                R.told_no_label = 1;
            }
        }
        /* every buffer's pages go back between cases: a batch peaks no higher than one case */
        vbuf_release(&R.ctbuf);
        vbuf_release(&R.labbuf);
        vbuf_release(&R.imgbuf);
        vbuf_release(&R.maskbuf);
        tn_arena_reset(R.a);
        tn_arena_reset(R.alab);
        tn_arena_reset(R.act);
    }
    if (rec_writer_close(R.out) != 0) ct_die("%s", ct_lasterr());
    for (int i = 0; i < n_cases; i++) {
        free(cases[i].ct);
        free(cases[i].label);
        free(cases[i].id);
    }
    free(cases);
    vbuf_free(&R.ctbuf);
    vbuf_free(&R.labbuf);
    vbuf_free(&R.imgbuf);
    vbuf_free(&R.maskbuf);
    tn_arena_free(R.a);
    tn_arena_free(R.alab);
    tn_arena_free(R.act);
    tn_arena_free(cfg_arena);
    if (failed) {
        ct_warn("%d of %d cases skipped", failed, n_cases);
        return CT_EXIT_FAIL;
    }
    return CT_EXIT_OK;
}
