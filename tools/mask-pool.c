/*
 * mask-pool - cut the evaluation window of each organ out of a processed case
 * and list, for each of the encoder's four stages, the tokens that hold the
 * organ: what `encode` and the organ head consume (method.md §2.3, §2.5, §7.1).
 * Windows are the reference's (ViSD-Boost eval.py center_crop: size
 * max(roi, max - min) centred on the organ's bounding box, kept inside the
 * volume, other organs erased, zero-padded at the end to multiples of
 * (16,32,32)); flags are torch's max_pool3d of the one-hot mask, as index lists.
 *
 * Reads: ct.case/1.  Writes: ct.window/1, one record per window.
 *
 *   ct-resample ... | mask-pool | encode ...        (the evaluation pipeline)
 *   mask-pool --organs lung,heart cases.ctv | ct-ls
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ct.h"
#include "maskpool.h"
#include "names.h"
#include "organs.h"
#include "stream.h"

#define MAX_SELECT     MP_MAX_ORGANS

struct opts {
    int         n_select;            /* 0 = every organ of the case */
    const char *select[MAX_SELECT];  /* --organs: centre organs, by name */
    int64_t     roi[3];              /* minimum window size, (112,256,352) voxels */
    int64_t     mult[3];             /* end padding multiple, (16,32,32) */
    int         multi;               /* keep every organ in the window, apply the §2.5 rules */
    int         margin;              /* boundary rule margin (multi), 2 planes */
    double      min_fraction;        /* whole-organ rule threshold (multi), 0.9 */
    int         bits;                /* also write bit-packed flags bits{s}/X */
    int         allow_empty;         /* a case without any window is a warning, not an error */
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mask-pool [OPTION]... [FILE]...\n"
            "Read ct.case/1 records (image f32 + organ mask u8, FILE '-' or none: stdin) and\n"
            "write one ct.window/1 record per organ window: the image and mask window of\n"
            "the organ, zero-padded at the end to multiples of 16,32,32, and for each\n"
            "encoder stage s = 1..4 the ascending row-major indices of the tokens whose\n"
            "cell of 2x4x4, 4x8x8, 8x16x16 or 16x32x32 voxels holds the organ, as\n"
            "i32 tensors 'tok{s}/ORGAN'.  Windows are ViSD-Boost's: size max(roi, max-min)\n"
            "centred on the organ's bounding box, shifted inside the volume, every other\n"
            "organ erased from the window mask.\n"
            "\n"
            "      --organs LIST    centre organs, comma-separated names from the case's\n"
            "                       'organs' (default: every organ with voxels)\n"
            "      --multi          multi-organ windows: keep every organ in the window mask\n"
            "                       and give tokens for each organ that passes the boundary\n"
            "                       and whole-organ rules (the centre organ always does);\n"
            "                       the others are listed in meta 'excluded' with a reason\n"
            "      --margin N       boundary rule: planes at each window face (default 2)\n"
            "      --min-fraction F whole-organ rule: in-window / whole-volume voxels below F\n"
            "                       excludes an organ (default 0.9)\n"
            "      --roi D,H,W      minimum window size (default 112,256,352)\n"
            "      --pad-multiple D,H,W  end padding (default 16,32,32; multiples of it only)\n"
            "      --bits           also write bit-packed flags 'bits{s}/ORGAN' (u8, little)\n"
            "      --allow-empty    a case that yields no window (no voxel of any selected\n"
            "                       organ) is a warning instead of an error\n"
            CLI_COMMON_HELP
            "\n"
            "Organs without voxels get no window; they are listed in meta 'skipped' of the\n"
            "case's other windows (and on stderr with -v).  mask-pool is single-threaded\n"
            "(-j has no effect).\n"
            "Exit status: 0 ok, 1 bad record or failed write (nothing is left at -o FILE),\n"
            "2 usage.\n"
            "Example: mask-pool --organs lung,heart case.ctv | ct-ls\n");
}

/* ---- buffers reused from window to window and case to case ---- */

/* A 112x256x352 window is 40 MB of image and 10 MB of mask: fresh pages for
 * each would cost more page faults than the work itself. */
struct scratch {
    void  *p;
    size_t cap;
};
static struct scratch scratch_mask[MP_MAX_ORGANS];   /* window masks of the current case */
static struct scratch scratch_image;                 /* image of the window being written */

static void *scratch_get(struct scratch *s, size_t n) {
    if (n > s->cap) {
        free(s->p);
        s->p = ct_xaligned(n);
        s->cap = n;
    }
    return s->p;
}

static void scratch_free(void) {
    for (int i = 0; i < MP_MAX_ORGANS; i++) free(scratch_mask[i].p);
    free(scratch_image.p);
}

/* ---- the case: what every window of one record shares ---- */

struct window_plan {
    int              organ;          /* centre organ, 0-based */
    struct mp_window win;
    uint8_t         *mask;           /* [win.padded], scratch_mask[window number] */
    struct mp_flags  flags;
    uint8_t          touch[MP_MAX_ORGANS + 1];
    enum mp_reason   reason[MP_MAX_ORGANS]; /* per organ: kept or why not */
};

struct skip {
    int            organ;
    enum mp_reason reason;           /* MP_NO_VOXELS or MP_NOT_IN_WINDOW */
};

struct case_ctx {
    const struct rec   *in;
    const float        *image;
    const uint8_t      *mask;
    int64_t             shape[3];
    int                 n_organs;
    const char         *organs[MP_MAX_ORGANS];
    struct mp_box       box[MP_MAX_ORGANS];
    int64_t             organ_voxels[MP_MAX_ORGANS];
    int                 have_affine;
    double              affine[4][4];
    int                 n_windows;
    struct window_plan *plans;       /* [n_organs], case arena */
    int                 n_skipped;
    struct skip         skipped[MP_MAX_ORGANS];
};

/* The case's organ names: meta 'organs' or the CT-RATE default. */
static int read_organs(const struct rec *r, struct case_ctx *c) {
    if (!rec_meta_has(r, NM_M_ORGANS)) {
        c->n_organs = ORG_CT_RATE_N;
        for (int k = 0; k < ORG_CT_RATE_N; k++) c->organs[k] = org_ct_rate[k];
        return 0;
    }
    const char **names;
    c->n_organs = rec_meta_strv(r, NM_M_ORGANS, &names);
    if (c->n_organs < 0) return -1;
    if (c->n_organs == 0 || c->n_organs > MP_MAX_ORGANS)
        return ct_seterr("meta 'organs' must be an array of 1 to %d names", MP_MAX_ORGANS);
    memcpy(c->organs, names, (size_t)c->n_organs * sizeof *names);
    for (int k = 0; k < c->n_organs; k++) {
        if (!org_name_valid(c->organs[k], strlen(c->organs[k])))
            return ct_seterr("meta 'organs'[%d] is not an organ name (1-%d characters, no '/')", k, ORG_NAME_MAX);
        for (int j = 0; j < k; j++)
            if (!strcmp(c->organs[j], c->organs[k])) return ct_seterr("meta 'organs' names '%s' twice", c->organs[k]);
    }
    return 0;
}

static int organ_index(const struct case_ctx *c, const char *name) {
    for (int k = 0; k < c->n_organs; k++)
        if (!strcmp(c->organs[k], name)) return k;
    return -1;
}

static int unknown_organ(const struct case_ctx *c, const char *name) {
    char list[1024] = "";
    size_t n = 0;
    for (int k = 0; k < c->n_organs && n < sizeof list - 8; k++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", c->organs[k]);
    if (n >= sizeof list) strcpy(list + sizeof list - 5, "...");
    return ct_seterr("unknown organ '%s' (the case's organs: %s)", name, list);
}

/* Check the record and compute everything but the image windows, so that a
 * bad case fails before any of its windows is written. */
static int plan_case(const struct opts *o, struct rec *r, struct case_ctx *c) {
    memset(c, 0, sizeof *c);
    c->in = r;
    if (rec_expect(r, NM_CASE_NAME, NM_CASE_MAJOR) != 0) return -1;
    struct tn_tensor *img = rec_tensor(r, NM_T_IMAGE), *msk = rec_tensor(r, NM_T_MASK);
    if (!msk) return ct_seterr("no 'mask' tensor (a ct.case/1 record carries 'image' and 'mask')");
    if (!img) return ct_seterr("no 'image' tensor (a ct.case/1 record carries 'image' and 'mask')");
    char s1[64], s2[64];
    if (msk->dtype != TN_U8 || msk->ndim != 3)
        return ct_seterr("mask is %s %s; ct.case/1 needs u8 [D,H,W]", tn_dtype_name(msk->dtype),
                         tn_shape_str(msk, s1, sizeof s1));
    if (img->dtype != TN_F32 || img->ndim != 3)
        return ct_seterr("image is %s %s; ct.case/1 needs f32 [D,H,W]", tn_dtype_name(img->dtype),
                         tn_shape_str(img, s1, sizeof s1));
    for (int a = 0; a < 3; a++)
        if (img->shape[a] != msk->shape[a])
            return ct_seterr("image %s and mask %s differ in shape", tn_shape_str(img, s1, sizeof s1),
                             tn_shape_str(msk, s2, sizeof s2));
    for (int a = 0; a < 3; a++) {
        c->shape[a] = msk->shape[a];
        if (!c->shape[a]) return ct_seterr("mask %s is empty: no window to cut", tn_shape_str(msk, s1, sizeof s1));
    }
    c->image = img->data;
    c->mask = msk->data;
    if (read_organs(r, c) != 0) return -1;
    int selected[MP_MAX_ORGANS] = { 0 };
    if (o->n_select == 0) {
        for (int k = 0; k < c->n_organs; k++) selected[k] = 1;
    } else {
        for (int i = 0; i < o->n_select; i++) {
            int k = organ_index(c, o->select[i]);
            if (k < 0) return unknown_organ(c, o->select[i]);
            selected[k] = 1;
        }
    }
    double t0 = ct_now();
    if (mp_boxes(c->mask, c->shape, c->n_organs, c->box) != 0) return -1;
    ct_log(2, "record %ld (id %s): organ boxes %.1f ms", r->index, r->id, 1e3 * (ct_now() - t0));

    /* organ_voxels: the whole-volume counts (fVLM whole_organ_sizes).  They are
     * exactly the mask's counts, so when absent they are computed; when present
     * they must agree, or the mask was changed after the counts were made. */
    for (int k = 0; k < c->n_organs; k++) c->organ_voxels[k] = c->box[k].n;
    if (rec_meta_has(r, NM_M_ORGAN_VOXELS)) {
        int64_t given[MP_MAX_ORGANS + 1];
        int n = rec_meta_i64(r, NM_M_ORGAN_VOXELS, given, MP_MAX_ORGANS + 1);
        if (n < 0) return -1;
        if (n != c->n_organs)
            return ct_seterr("meta 'organ_voxels' has %d counts for %d organs", n, c->n_organs);
        for (int k = 0; k < n; k++)
            if (given[k] != c->box[k].n)
                return ct_seterr("meta 'organ_voxels' gives %s %lld voxels but the mask holds %lld", c->organs[k],
                                 (long long)given[k], (long long)c->box[k].n);
    }
    if (rec_meta_has(r, NM_M_AFFINE)) {
        if (rec_meta_mat4(r, NM_M_AFFINE, c->affine) != 1) return ct_prefixerr("meta 'affine'");
        c->have_affine = 1;
    }

    c->plans = tn_arena_alloc(r->arena, (size_t)c->n_organs * sizeof *c->plans);
    for (int k = 0; k < c->n_organs; k++) {
        if (!selected[k]) continue;
        if (c->box[k].n == 0) {
            c->skipped[c->n_skipped++] = (struct skip){ k, MP_NO_VOXELS };
            continue;
        }
        struct window_plan *p = &c->plans[c->n_windows];
        p->organ = k;
        mp_window_place(&c->box[k], c->shape, o->roi, &p->win);
        if (mp_window_pad(&p->win, o->mult) != 0) return ct_prefixerr("%s", c->organs[k]);
        const int64_t *pd = p->win.padded;
        double t1 = ct_now();
        p->mask = scratch_get(&scratch_mask[c->n_windows], (size_t)(pd[0] * pd[1] * pd[2]));
        mp_window_copy_u8(c->mask, c->shape, &p->win, o->multi ? 0 : k + 1, p->mask);
        double t2 = ct_now();
        if (mp_flags_compute(p->mask, pd, c->n_organs, r->arena, &p->flags) != 0) return -1;
        double t3 = ct_now();
        mp_boundary(p->mask, pd, o->margin, p->touch);
        ct_log(2, "record %ld (id %s): %s window %lldx%lldx%lld: mask %.1f ms, flags %.1f ms, boundary %.1f ms",
               r->index, r->id, c->organs[k], (long long)pd[0], (long long)pd[1], (long long)pd[2], 1e3 * (t2 - t1),
               1e3 * (t3 - t2), 1e3 * (ct_now() - t3));
        mp_rules(c->n_organs, k, p->flags.voxels + 1, c->organ_voxels, p->touch, o->min_fraction, p->reason);
        if (!o->multi)                          /* single-organ window: only the centre organ is there */
            for (int j = 0; j < c->n_organs; j++)
                if (j != k && p->reason[j] == MP_KEPT) p->reason[j] = MP_NOT_IN_WINDOW;
        if (p->flags.voxels[k + 1] == 0) {      /* max - min cut every voxel of the organ */
            c->skipped[c->n_skipped++] = (struct skip){ k, MP_NOT_IN_WINDOW };
            continue;
        }
        c->n_windows++;
    }
    return 0;
}

/* ---- writing one window ---- */

static void set_skipped(struct rec *w, const struct case_ctx *c) {
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)c->n_skipped);
    for (int i = 0; i < c->n_skipped; i++) {
        rec_mp_map(&m, 2);
        rec_mp_str(&m, "organ");
        rec_mp_str(&m, c->organs[c->skipped[i].organ]);
        rec_mp_str(&m, "reason");
        rec_mp_str(&m, mp_reason_name(c->skipped[i].reason));
    }
    rec_meta_set_mp(w, "skipped", &m);
}

static void set_window_meta(const struct opts *o, struct rec *w, const struct case_ctx *c,
                            const struct window_plan *p) {
    const int n = c->n_organs, k = p->organ;
    rec_meta_set_str(w, NM_M_ORGAN, c->organs[k]);
    rec_meta_set_i64(w, NM_M_ORGAN_INDEX, k);
    rec_meta_set_strv(w, NM_M_ORGANS, c->organs, n);
    const char *kept[MP_MAX_ORGANS];
    int n_kept = 0;
    for (int j = 0; j < n; j++)
        if (p->reason[j] == MP_KEPT) kept[n_kept++] = c->organs[j];
    rec_meta_set_strv(w, NM_M_WINDOW_ORGANS, kept, n_kept);
    rec_meta_set_str(w, NM_M_MODE, o->multi ? "multi" : "single");
    rec_meta_set_i64v(w, NM_M_WINDOW_OFFSET, p->win.offset, 3);
    rec_meta_set_i64v(w, NM_M_WINDOW_SIZE, p->win.size, 3);
    rec_meta_set_i64v(w, NM_M_CASE_SHAPE, c->shape, 3);
    rec_meta_set_i64v(w, NM_M_ORGAN_VOXELS, c->organ_voxels, n);
    rec_meta_set_i64v(w, "window_voxels", p->flags.voxels + 1, n);
    double frac[MP_MAX_ORGANS];
    for (int j = 0; j < n; j++)
        frac[j] = c->organ_voxels[j] ? (double)p->flags.voxels[j + 1] / (double)c->organ_voxels[j] : 0.0;
    rec_meta_set_f64v(w, "window_fraction", frac, n);
    struct rec_mp m = { 0 };
    rec_mp_array(&m, (uint32_t)n);
    for (int j = 0; j < n; j++) rec_mp_bool(&m, p->touch[j + 1]);
    rec_meta_set_mp(w, "boundary", &m);
    rec_mp_array(&m, MP_N_STAGES);
    for (int s = 0; s < MP_N_STAGES; s++) {
        rec_mp_array(&m, 3);
        for (int a = 0; a < 3; a++) rec_mp_i64(&m, p->flags.grid[s][a]);
    }
    rec_meta_set_mp(w, NM_M_TOKEN_GRIDS, &m);
    rec_meta_set_i64v(w, "roi", o->roi, 3);
    rec_meta_set_i64v(w, "pad_multiple", o->mult, 3);
    if (o->multi) {
        int n_ex = n - n_kept;
        rec_mp_array(&m, (uint32_t)n_ex);
        for (int j = 0; j < n; j++) {
            if (p->reason[j] == MP_KEPT) continue;
            rec_mp_map(&m, 2);
            rec_mp_str(&m, "organ");
            rec_mp_str(&m, c->organs[j]);
            rec_mp_str(&m, "reason");
            rec_mp_str(&m, mp_reason_name(p->reason[j]));
        }
        rec_meta_set_mp(w, "excluded", &m);
        rec_meta_set_i64(w, "margin", o->margin);
        rec_meta_set_f64(w, "min_fraction", o->min_fraction);
    }
    set_skipped(w, c);
    if (c->have_affine) {
        /* the window's voxel (0,0,0) is the case's voxel offset */
        double A[4][4];
        memcpy(A, c->affine, sizeof A);
        for (int i = 0; i < 3; i++)
            for (int a = 0; a < 3; a++) A[i][3] += c->affine[i][a] * (double)p->win.offset[a];
        rec_meta_set_mat4(w, NM_M_AFFINE, A);
        rec_meta_set_mat4(w, NM_M_CASE_AFFINE, c->affine);
    }
}

static int write_window(const struct opts *o, const struct case_ctx *c, const struct window_plan *p,
                        struct tn_arena *a, struct rec_writer *out, int argc, char **argv) {
    struct rec w;
    rec_init(&w, a, NM_WINDOW, c->in->id);
    rec_meta_copy(&w, c->in);                  /* spacing_mm, source, history ... pass through */
    set_window_meta(o, &w, c, p);
    const int64_t *pd = p->win.padded, *ws = p->win.size;
    float *img;
    if (ws[1] == c->shape[1] && ws[2] == c->shape[2] && pd[0] == ws[0] && pd[1] == ws[1] && pd[2] == ws[2]) {
        /* whole planes, no padding: the window is a contiguous slab of the case image */
        img = (float *)c->image + p->win.offset[0] * c->shape[1] * c->shape[2];
    } else {
        img = scratch_get(&scratch_image, (size_t)(pd[0] * pd[1] * pd[2]) * sizeof *img);
        mp_window_copy_f32(c->image, c->shape, &p->win, img);
    }
    rec_add_tensor(&w, tn_view(a, TN_F32, 3, pd, img, NM_T_IMAGE));
    rec_add_tensor(&w, tn_view(a, TN_U8, 3, pd, p->mask, NM_T_MASK));
    for (int j = 0; j < c->n_organs; j++) {
        if (p->reason[j] != MP_KEPT) continue;
        for (int s = 0; s < MP_N_STAGES; s++) {
            char name[TN_NAME_MAX];
            int64_t n = mp_flags_list(&p->flags, s, j + 1, NULL);
            snprintf(name, sizeof name, NM_T_TOK, s + 1, c->organs[j]);
            struct tn_tensor *t = tn_new(a, TN_I32, 1, &n, name);
            mp_flags_list(&p->flags, s, j + 1, t->data);
            rec_add_tensor(&w, t);
            if (o->bits) {
                int64_t nb = (p->flags.n_tokens[s] + 7) / 8;
                snprintf(name, sizeof name, NM_T_BITS, s + 1, c->organs[j]);
                t = tn_new(a, TN_U8, 1, &nb, name);
                mp_flags_pack(&p->flags, s, j + 1, t->data);
                rec_add_tensor(&w, t);
            }
        }
    }
    rec_history_append(&w, argc, argv);
    return rec_write(out, &w);
}

/* "the mask holds no organ voxels" or "heart: no voxels, aorta: not in window" */
static void no_window_reason(const struct case_ctx *c, char *buf, size_t n) {
    int64_t total = 0;
    for (int k = 0; k < c->n_organs; k++) total += c->organ_voxels[k];
    if (total == 0) {
        snprintf(buf, n, "the mask holds no organ voxels (values 1..%d)", c->n_organs);
        return;
    }
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < c->n_skipped && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s: %s", i ? ", " : "", c->organs[c->skipped[i].organ],
                                mp_reason_name(c->skipped[i].reason));
}

/* ---- main ---- */

static void parse_list3(const char *opt, const char *arg, int64_t out[3]) {
    long v[3];
    if (ct_parse_longs(arg, v, 3, 0) != 0) ct_usage_die("%s: %s", opt, ct_lasterr());
    for (int a = 0; a < 3; a++) {
        if (v[a] <= 0) ct_usage_die("%s: '%s' must be three positive integers D,H,W", opt, arg);
        out[a] = v[a];
    }
}

static void parse_organs(struct opts *o, char *arg) {
    for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
        if (!*tok) continue;
        if (o->n_select == MAX_SELECT) ct_usage_die("--organs: more than %d names", MAX_SELECT);
        o->select[o->n_select++] = tok;
    }
    if (!o->n_select) ct_usage_die("--organs: no organ name in '%s'", arg);
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct opts o = {
        .roi = { 112, 256, 352 }, .mult = { 16, 32, 32 }, .margin = 2, .min_fraction = 0.9,
    };
    struct cli_common cc;
    cli_common_init(&cc);
    enum { OPT_ORGANS = 256, OPT_MULTI, OPT_MARGIN, OPT_MINFRAC, OPT_ROI, OPT_PAD, OPT_BITS, OPT_EMPTY };
    static const struct option longopts[] = {
        { "organs", required_argument, 0, OPT_ORGANS },     { "multi", no_argument, 0, OPT_MULTI },
        { "margin", required_argument, 0, OPT_MARGIN },     { "min-fraction", required_argument, 0, OPT_MINFRAC },
        { "roi", required_argument, 0, OPT_ROI },           { "pad-multiple", required_argument, 0, OPT_PAD },
        { "bits", no_argument, 0, OPT_BITS },               { "allow-empty", no_argument, 0, OPT_EMPTY },
        CLI_COMMON_LONGOPTS,                                { 0, 0, 0, 0 },
    };
    int ch, margin_set = 0, frac_set = 0;
    long l;
    double d;
    while ((ch = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_ORGANS: parse_organs(&o, optarg); break;
        case OPT_MULTI: o.multi = 1; break;
        case OPT_MARGIN:
            if (ct_parse_long(optarg, &l) != 0 || l < 1 || l > 1000000)
                ct_usage_die("--margin: '%s' is not a positive number of planes", optarg);
            o.margin = (int)l;
            margin_set = 1;
            break;
        case OPT_MINFRAC:
            if (ct_parse_double(optarg, &d) != 0 || !(d >= 0 && d <= 1))
                ct_usage_die("--min-fraction: '%s' is not a number in [0,1]", optarg);
            o.min_fraction = d;
            frac_set = 1;
            break;
        case OPT_ROI: parse_list3("--roi", optarg, o.roi); break;
        case OPT_PAD:
            parse_list3("--pad-multiple", optarg, o.mult);
            if (mp_pad_multiple_check(o.mult) != 0) ct_usage_die("--pad-multiple: %s", ct_lasterr());
            break;
        case OPT_BITS: o.bits = 1; break;
        case OPT_EMPTY: o.allow_empty = 1; break;
        default:
            if (!cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if ((margin_set || frac_set) && !o.multi) ct_usage_die("--margin and --min-fraction apply to --multi");

    struct rec_reader *in = rec_reader_open_many(argc - optind, argv + optind);   /* before any output */
    if (!in) ct_die("%s", ct_lasterr());
    struct rec_writer *out = rec_writer_open(cc.output, &cc.wopts);
    if (!out) ct_die("%s", ct_lasterr());
    /* The input arena's first block is kept across resets: at 256 MiB it holds a case of up
     * to 64 MiB of image (a 112x256x352 case is 50 MB with its mask) and every case reuses
     * the same pages instead of faulting fresh ones (untouched pages cost nothing). */
    struct tn_arena *ain = tn_arena_new((size_t)256 << 20), *aout = tn_arena_new(0);
    struct rec r;
    int rc;
    while ((rc = rec_read(in, ain, &r)) > 0) {
        double t0 = ct_now();
        struct case_ctx c;
        if (plan_case(&o, &r, &c) != 0) {
            rec_writer_abort(out);
            ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
        }
        for (int i = 0; i < c.n_skipped; i++)
            ct_log(1, "record %ld (id %s): no window for %s: %s", r.index, r.id, c.organs[c.skipped[i].organ],
                   mp_reason_name(c.skipped[i].reason));
        if (c.n_windows == 0) {
            char why[512];
            no_window_reason(&c, why, sizeof why);
            if (!o.allow_empty) {
                rec_writer_abort(out);
                ct_die("record %ld (id %s): no window to write: %s (--allow-empty skips such cases)", r.index,
                       r.id, why);
            }
            ct_warn("record %ld (id %s): no window written: %s", r.index, r.id, why);
        }
        double t1 = ct_now();
        for (int i = 0; i < c.n_windows; i++) {
            if (write_window(&o, &c, &c.plans[i], aout, out, argc, argv) != 0) {
                rec_writer_abort(out);
                ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
            }
            tn_arena_reset(aout);
        }
        ct_log(1, "record %ld (id %s): %d window%s, plan %.1f ms, write %.1f ms", r.index, r.id, c.n_windows,
               c.n_windows == 1 ? "" : "s", 1e3 * (t1 - t0), 1e3 * (ct_now() - t1));
        tn_arena_reset(ain);
    }
    rec_reader_close(in);
    if (rc < 0) {
        rec_writer_abort(out);
        ct_die("%s", ct_lasterr());
    }
    tn_arena_free(ain);
    tn_arena_free(aout);
    scratch_free();
    if (rec_writer_close(out) != 0) ct_die("%s", ct_lasterr());
    return CT_EXIT_OK;
}
