/*
 * ct-view - pictures of ctvis streams: a slice of any 3-D tensor of a record as
 * PNG, with a HU or value window, organ outlines, the token-flag cells of an
 * encoder stage and the anomaly map of vq-recon as overlays; or a contact sheet
 * of a whole case (every window, its flags, its anomaly map).
 *
 * Reads: any stream with 3-D tensors (ct.case/1, ct.window/1, ct.image/1, ...;
 * ct.tokens/1 for flags alone); ct.organ/1 (-a), ct.probs/1 (--probs).
 * Writes: PNG files (libpng), atomically.
 *
 *   ct-view -p coronal -O heart --outline -o heart.png case.ctv
 *   ct-view --sheet -a organs.ctv -o 'pics/%s.png' windows.ctv
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ct.h"
#include "pngio.h"
#include "render.h"
#include "stream.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: ct-view [OPTION]... -o OUT.png [FILE]...\n"
            "Render a slice of a 3-D tensor of each selected record as PNG (FILE '-' or none:\n"
            "stdin), or with --sheet one contact sheet per case.\n"
            "\n"
            "What to draw:\n"
            "  -t, --tensor NAME      the 3-D tensor (default image; a ct.tokens/1 record without\n"
            "                         one gets a black canvas of its window for --flags)\n"
            "  -p, --plane LIST       axial, coronal, sagittal (a, c, s), comma-separated: several\n"
            "                         planes are drawn side by side (default axial)\n"
            "  -n, --slice N          slice index along the plane's fixed axis (one plane only)\n"
            "  -O, --organ NAME       slice through the organ's centre (mask value k = organs[k-1])\n"
            "      --centre MODE      com: the organ's centre of mass (default), bbox: its bounding-\n"
            "                         box centre, area: per plane the slice with most of the organ\n"
            "                         (default slice: the middle of the axis; --sheet: through the\n"
            "                         window's organ with --centre area)\n"
            "Grey levels:\n"
            "  -w, --hu-window L,W    HU window level,width, or lung (-600,1500), mediastinum (40,400),\n"
            "                         bone (400,1800); on a record with meta hu_window (an image\n"
            "                         already windowed to [0,1]) it is converted to image values\n"
            "  -R, --range LO,HI      tensor values LO..HI to black..white (e.g. 0,1)\n"
            "                         (default: 0,1 with meta hu_window, else the tensor's min,max)\n"
            "Overlays:\n"
            "  -m, --outline          organ outlines from the mask tensor, with a legend\n"
            "      --mask NAME        the label tensor for outlines and -O (default mask, else label)\n"
            "  -f, --flags S[:ORGAN]  token-flag cells of stage S (1..4) from tensor tokS/ORGAN\n"
            "                         (ORGAN default: the record's meta organ); --sheet: the stage\n"
            "  -a, --anomaly FILE     ct.organ/1 stream: the anomaly maps of the record's id (and\n"
            "                         window organ) as a colour overlay with a scale bar\n"
            "      --anomaly-range LO,HI  colour scale (default 0 to the largest value of the maps)\n"
            "      --probs FILE       ct.probs/1 stream: per-organ probabilities on the sheet\n"
            "Layout:\n"
            "  -S, --sheet            one contact sheet per case (consecutive records with one id):\n"
            "                         a row per record with axial, coronal, sagittal + outlines,\n"
            "                         axial and coronal flags (-f S, default 4) and the anomaly map (-a)\n"
            "  -s, --scale F          pixels per smallest voxel spacing (default 1; 2 zooms in)\n"
            "      --no-aspect        one pixel per voxel on both axes, whatever the spacing\n"
            "      --no-orient        voxel index order (default: radiological orientation from\n"
            "                         meta affine: patient right on the left, anterior/superior up)\n"
            "      --bare             the slice(s) only: no title, captions, letters, legend, bar\n"
            "Records and output:\n"
            "  -r, --record LIST      select records by index (from 0): 3 | 0,2,5-9 | 4-\n"
            "  -i, --id ID            select records by id (repeatable)\n"
            "  -o, --output PATH      PNG file ('-' stdout); %%s = id, %%d = record index, %%o = organ\n"
            "                         (meta organ, or 'case'), %%%% = %%: one file per record / case\n"
            "  -v, --verbose          say what was written\n"
            "  -h, --help             show this help\n"
            "  -V, --version          show the version\n"
            "\n"
            "Without a pattern in -o exactly one record (--sheet: one case) must be selected;\n"
            "nothing is written otherwise.  Files are written atomically (temp file + rename).\n"
            "Exit status: 0 ok, 1 bad input or failed write, 2 usage.\n"
            "Example: ct-view -p a,c,s -O lung -m -f 4 -o lung.png windows.ctv\n");
}

/* ---- options ---- */

struct opts {
    const char   *tensor;               /* NULL: "image" (default) */
    enum rn_plane planes[3];
    int           n_planes;
    long          slice;                /* -1: none */
    const char   *organ;
    int           centre;               /* CENTRE_*; -1: default */
    int           have_hu, have_range;
    double        hu[2], range[2];
    int           outline;
    const char   *mask;
    int           flag_stage;           /* 0: none */
    const char   *flag_organ;
    const char   *anomaly_file, *probs_file;
    int           have_arange;
    double        arange[2];
    int           sheet;
    double        scale;
    int           aspect, orient, bare;
};

static const uint8_t BG[3] = { 24, 24, 24 }, FG[3] = { 235, 235, 235 }, DIM[3] = { 150, 150, 150 },
                     LETTER[3] = { 255, 230, 90 }, FLAG_COLOUR[3] = { 255, 0, 255 };
#define GAP 8

/* ---- ct.organ/1 and ct.probs/1 side inputs (small: kept whole) ---- */

struct organ_map {
    char  *id, *organ, *window_organ;
    double affine[4][4];
    int    have_affine;
    int64_t offset[3];
    struct tn_tensor anom;              /* data malloc'd */
    int    untrained;
};
static struct organ_map *maps;
static int n_maps;

struct probs {
    char    *id;
    int      n;
    char   **organ, **abnormality;
    double  *p;
};
static struct probs *probs;
static int n_probs;

static int meta_bool(const struct rec *r, const char *key) {
    const struct rec_val *v = rec_meta_get(r, key);
    return v && v->type == RV_BOOL && v->v.b;
}

/* Read every record of a side input (ct.organ/1, ct.probs/1) through take(). */
static void load_side(const char *path, const char *schema, void (*take)(const char *path, const struct rec *r)) {
    struct rec_reader *in = rec_reader_open(path);
    if (!in) ct_die("%s", ct_lasterr());
    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc;
    while ((rc = rec_read(in, a, &r)) > 0) {
        if (rec_expect(&r, schema, 1) != 0) ct_die("%s: record %ld (id %s): %s", path, r.index, r.id, ct_lasterr());
        take(path, &r);
        tn_arena_reset(a);
    }
    if (rc < 0) ct_die("%s", ct_lasterr());
    rec_reader_close(in);
    tn_arena_free(a);
}

static void take_map(const char *path, const struct rec *r) {
    if (meta_bool(r, "empty")) return;                    /* an organ without tokens has no map */
    struct tn_tensor *t = rec_tensor_req(r, "anomaly");
    if (!t) ct_die("%s: record %ld (id %s): %s", path, r->index, r->id, ct_lasterr());
    if (t->ndim != 3) ct_die("%s: record %ld (id %s): tensor 'anomaly' is %d-D, expected 3-D", path, r->index, r->id, t->ndim);
    struct organ_map m = { 0 };
    m.id = ct_xstrdup(r->id);
    const char *o = rec_meta_str(r, "organ"), *wo = rec_meta_str(r, "window_organ");
    m.organ = ct_xstrdup(o ? o : "");
    m.window_organ = ct_xstrdup(wo ? wo : o ? o : "");
    m.have_affine = rec_meta_mat4(r, "affine", m.affine);
    if (m.have_affine < 0) ct_die("%s: record %ld (id %s): %s", path, r->index, r->id, ct_lasterr());
    if (rec_meta_i64(r, "window_offset", m.offset, 3) < 0) ct_die("%s: record %ld (id %s): %s", path, r->index, r->id, ct_lasterr());
    m.untrained = meta_bool(r, "weights_untrained");
    m.anom = *t;
    m.anom.data = ct_xmalloc(tn_nbytes(t) ? tn_nbytes(t) : 1);
    memcpy(m.anom.data, t->data, tn_nbytes(t));
    maps = ct_xrealloc(maps, (size_t)(n_maps + 1) * sizeof *maps);
    maps[n_maps++] = m;
}

static const char *val_str(const struct rec_val *v) { return v && v->type == RV_STR ? v->v.s.p : NULL; }

static void take_probs(const char *path, const struct rec *r) {
    struct tn_tensor *t = rec_tensor_req(r, "p_pos");
    const struct rec_val *items = rec_meta_get(r, "items");
    if (!t) ct_die("%s: record %ld (id %s): %s", path, r->index, r->id, ct_lasterr());
    if (!items || items->type != RV_ARRAY || (int64_t)items->v.a.n != tn_numel(t))
        ct_die("%s: record %ld (id %s): meta items does not match tensor 'p_pos'", path, r->index, r->id);
    struct probs p = { 0 };
    p.id = ct_xstrdup(r->id);
    p.n = (int)items->v.a.n;
    p.organ = ct_xcalloc((size_t)p.n + 1, sizeof *p.organ);
    p.abnormality = ct_xcalloc((size_t)p.n + 1, sizeof *p.abnormality);
    p.p = ct_xcalloc((size_t)p.n + 1, sizeof *p.p);
    for (int i = 0; i < p.n; i++) {
        const char *o = val_str(rec_val_map_get(&items->v.a.items[i], "organ"));
        const char *ab = val_str(rec_val_map_get(&items->v.a.items[i], "abnormality"));
        if (!o || !ab) ct_die("%s: record %ld (id %s): meta items[%d] lacks organ or abnormality", path, r->index, r->id, i);
        p.organ[i] = ct_xstrdup(o);
        p.abnormality[i] = ct_xstrdup(ab);
        p.p[i] = tn_get(t, i);
    }
    probs = ct_xrealloc(probs, (size_t)(n_probs + 1) * sizeof *probs);
    probs[n_probs++] = p;
}

static void free_side_inputs(void) {
    for (int i = 0; i < n_maps; i++) {
        free(maps[i].id);
        free(maps[i].organ);
        free(maps[i].window_organ);
        free(maps[i].anom.data);
    }
    free(maps);
    for (int i = 0; i < n_probs; i++) {
        for (int j = 0; j < probs[i].n; j++) {
            free(probs[i].organ[j]);
            free(probs[i].abnormality[j]);
        }
        free(probs[i].organ);
        free(probs[i].abnormality);
        free(probs[i].p);
        free(probs[i].id);
    }
    free(probs);
}

/* Does map m belong to record r?  Same id; for a window (meta organ) the map's window organ. */
static int map_matches(const struct organ_map *m, const struct rec *r) {
    if (strcmp(m->id, r->id)) return 0;
    const char *o = rec_meta_str(r, "organ");
    return !o || !strcmp(m->window_organ, o);
}

static double map_max(const struct organ_map *m) {
    double mx = 0;
    for (int64_t i = 0; i < tn_numel(&m->anom); i++) {
        double v = tn_get(&m->anom, i);
        if (isfinite(v) && v > mx) mx = v;
    }
    return mx;
}

/* ---- one record's drawing context ---- */

struct ctx {
    const struct rec       *r;
    const struct tn_tensor *t;          /* the volume drawn */
    const struct tn_tensor *mask;       /* label tensor or NULL */
    double                  lo, hi;     /* grey window in tensor units */
    double                  affine[4][4];
    int                     have_affine;
    double                  spacing[3];
    int                     have_spacing;
    const char            **organs;     /* meta organs (names of mask values 1..n) */
    int                     n_organs;
};

static int get_organs(const struct rec *r, const char ***out) {
    const struct rec_val *v = rec_meta_get(r, "organs");
    *out = NULL;
    if (!v || v->type != RV_ARRAY) return 0;
    const char **names = tn_arena_alloc(r->arena, (v->v.a.n + 1) * sizeof *names);
    int n = 0;
    for (uint32_t i = 0; i < v->v.a.n; i++) names[n++] = val_str(&v->v.a.items[i]) ? val_str(&v->v.a.items[i]) : "?";
    *out = names;
    return n;
}

/* Tensor min/max (finite values). */
static void minmax(const struct tn_tensor *t, double *lo, double *hi) {
    struct tn_stats st;
    tn_stats_compute(t, &st);
    *lo = st.min;
    *hi = st.max;
    if (!(*hi > *lo)) *hi = *lo + 1;
}

/* meta token_grids (ct.window/1) or stage_grids (ct.tokens/1): 4 grids of 3 sizes into g[12]. */
static int meta_grids(const struct rec *r, int64_t g[12]) {
    const char *key = rec_meta_has(r, "token_grids") ? "token_grids" : "stage_grids";
    const struct rec_val *v = rec_meta_get(r, key);
    if (!v) return ct_seterr("no meta token_grids or stage_grids");
    if (v->type != RV_ARRAY || v->v.a.n != 4) return ct_seterr("meta %s: expected 4 grids of 3 sizes", key);
    for (int s = 0; s < 4; s++)
        if (rec_val_i64(&v->v.a.items[s], g + 3 * s, 3) != 3 || g[3 * s] < 1 || g[3 * s + 1] < 1 || g[3 * s + 2] < 1)
            return ct_seterr("meta %s: expected 4 grids of 3 sizes", key);
    return 0;
}

static int ctx_init(struct ctx *c, const struct rec *r, const struct opts *o) {
    memset(c, 0, sizeof *c);
    c->r = r;
    const char *name = o->tensor ? o->tensor : "image";
    struct tn_tensor *t = rec_tensor(r, name);
    int64_t grid[3];
    if (!t && !o->tensor && rec_meta_has(r, "stage_grids")) {
        /* ct.tokens/1: no image; a black canvas of the padded window (stage-1 cells 2x4x4) */
        int64_t g[12];
        if (meta_grids(r, g) == 0) {
            grid[0] = g[0] * 2, grid[1] = g[1] * 4, grid[2] = g[2] * 4;
            t = tn_zeros(r->arena, TN_U8, 3, grid, "canvas");
        }
    }
    if (!t) return ct_seterr("missing tensor '%s'", name);
    if (t->ndim != 3) {
        char b[64];
        return ct_seterr("tensor '%s' is %d-D %s; ct-view draws 3-D tensors", name, t->ndim, tn_shape_str(t, b, sizeof b));
    }
    c->t = t;
    const char *mname = o->mask ? o->mask : rec_tensor(r, "mask") ? "mask" : "label";
    c->mask = rec_tensor(r, mname);
    if (o->mask && !c->mask) return ct_seterr("missing tensor '%s'", o->mask);
    if (c->mask && (c->mask->ndim != 3 || memcmp(c->mask->shape, t->shape, 3 * sizeof t->shape[0])))
        return ct_seterr("mask tensor '%s' does not have the shape of '%s'", mname, t->name);
    if ((o->outline || o->organ) && !c->mask) return ct_seterr("missing tensor 'mask' (no label map for %s)", o->organ ? "--organ" : "--outline");
    c->n_organs = get_organs(r, &c->organs);
    c->have_affine = rec_meta_mat4(r, "affine", c->affine);
    if (c->have_affine < 0) return -1;
    int ns = rec_meta_f64(r, "spacing_mm", c->spacing, 3);
    if (ns < 0) return -1;
    c->have_spacing = ns == 3;
    /* grey window */
    double huw[2];
    int nhu = rec_meta_f64(r, "hu_window", huw, 2);
    if (nhu < 0) return -1;
    if (o->have_range) c->lo = o->range[0], c->hi = o->range[1];
    else if (o->have_hu) {
        c->lo = o->hu[0] - o->hu[1] / 2;
        c->hi = o->hu[0] + o->hu[1] / 2;
        if (nhu == 2 && huw[1] != huw[0]) {     /* the tensor holds (HU - lo) / (hi - lo) */
            c->lo = (c->lo - huw[0]) / (huw[1] - huw[0]);
            c->hi = (c->hi - huw[0]) / (huw[1] - huw[0]);
        }
    } else if (nhu == 2 && !strcmp(t->name, "image")) c->lo = 0, c->hi = 1;
    else if (!strcmp(t->name, "canvas")) c->lo = 0, c->hi = 1;
    else minmax(t, &c->lo, &c->hi);
    return 0;
}

/* Label value of an organ name; -1 + lasterr when unknown. */
static int organ_label(const struct ctx *c, const char *organ) {
    for (int k = 0; k < c->n_organs; k++)
        if (!strcmp(c->organs[k], organ)) return k + 1;
    char list[512] = "";
    for (int k = 0; k < c->n_organs; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", c->organs[k]);
    return ct_seterr("unknown organ '%s' (organs: %s)", organ, c->n_organs ? list : "none");
}

/* The point the planes pass through: the organ's centre, else the middle.
 * mode 0: centre of mass, floor(mean index + 0.5); 1: bounding-box centre, (min + max) div 2;
 * 2: per axis, the slice holding the most voxels of the organ (the first such). */
enum { CENTRE_COM, CENTRE_BBOX, CENTRE_AREA };
static int centre_point(const struct ctx *c, const char *organ, int mode, int64_t pt[3]) {
    for (int k = 0; k < 3; k++) pt[k] = c->t->shape[k] / 2;
    if (!organ) return 0;
    int lab = organ_label(c, organ);
    if (lab < 0) return -1;
    const int64_t *sh = c->mask->shape;
    int64_t n = 0, sum[3] = { 0, 0, 0 }, mn[3] = { INT64_MAX, INT64_MAX, INT64_MAX }, mx[3] = { -1, -1, -1 };
    int64_t *count[3];
    for (int k = 0; k < 3; k++) count[k] = ct_xcalloc((size_t)sh[k], sizeof *count[k]);
    const uint8_t *mask8 = c->mask->dtype == TN_U8 ? c->mask->data : NULL;     /* the usual label map */
    int64_t i = 0;
    for (int64_t d = 0; d < sh[0]; d++)
        for (int64_t h = 0; h < sh[1]; h++)
            for (int64_t w = 0; w < sh[2]; w++, i++) {
                if ((mask8 ? (int64_t)mask8[i] : (int64_t)tn_get(c->mask, i)) != lab) continue;
                int64_t p[3] = { d, h, w };
                n++;
                for (int k = 0; k < 3; k++) {
                    sum[k] += p[k];
                    count[k][p[k]]++;
                    if (p[k] < mn[k]) mn[k] = p[k];
                    if (p[k] > mx[k]) mx[k] = p[k];
                }
            }
    for (int k = 0; n && k < 3; k++) {
        if (mode == CENTRE_BBOX) pt[k] = (mn[k] + mx[k]) / 2;
        else if (mode == CENTRE_COM) pt[k] = (int64_t)floor((double)sum[k] / (double)n + 0.5);
        else {
            pt[k] = 0;
            for (int64_t j = 1; j < sh[k]; j++)
                if (count[k][j] > count[k][pt[k]]) pt[k] = j;
        }
    }
    for (int k = 0; k < 3; k++) free(count[k]);
    if (!n) return ct_seterr("organ '%s' has no voxels in tensor '%s'", organ, c->mask->name);
    return 0;
}

/* Stage-S flags of organ X: the tensor, grid and cell size; -1 + lasterr. */
static int flag_setup(const struct ctx *c, int stage, const char *organ, const struct tn_tensor **tok, int64_t grid[3],
                      int64_t cell[3]) {
    if (!organ) organ = rec_meta_str(c->r, "organ");
    if (!organ) return ct_seterr("no meta organ: give --flags %d:ORGAN", stage);
    char name[160];
    snprintf(name, sizeof name, "tok%d/%s", stage, organ);
    struct tn_tensor *t = rec_tensor(c->r, name);
    if (!t) return ct_seterr("missing tensor '%s'", name);
    if (t->ndim != 1 || t->dtype != TN_I32) return ct_seterr("tensor '%s' is not i32 [N]", name);
    int64_t g[12];
    if (meta_grids(c->r, g) != 0) return -1;
    static const int64_t c1[3] = { 2, 4, 4 };
    for (int k = 0; k < 3; k++) {
        grid[k] = g[3 * (stage - 1) + k];
        cell[k] = c1[k] << (stage - 1);
        if (grid[k] * cell[k] != c->t->shape[k])
            return ct_seterr("stage-%d grid %lldx%lldx%lld of %lldx%lldx%lld cells does not cover tensor '%s' %lldx%lldx%lld",
                             stage, (long long)grid[0], (long long)grid[1], (long long)grid[2], (long long)cell[0],
                             (long long)cell[1], (long long)cell[2], c->t->name, (long long)c->t->shape[0],
                             (long long)c->t->shape[1], (long long)c->t->shape[2]);
    }
    *tok = t;
    return 0;
}

/* The record's index -> world transform for placing anomaly maps: its affine,
 * else the translation by its window_offset (case voxels). */
static void base_transform(const struct ctx *c, int use_affine, double B[4][4]) {
    memset(B, 0, 16 * sizeof(double));
    if (use_affine) {
        memcpy(B, c->affine, 16 * sizeof(double));
        return;
    }
    int64_t off[3] = { 0, 0, 0 };
    rec_meta_i64(c->r, "window_offset", off, 3);
    for (int k = 0; k < 4; k++) B[k][k] = 1;
    for (int k = 0; k < 3; k++) B[k][3] = (double)off[k];
}

static void map_transform(const struct organ_map *m, int use_affine, double A[4][4]) {
    memset(A, 0, 16 * sizeof(double));
    if (use_affine) {
        memcpy(A, m->affine, 16 * sizeof(double));
        return;
    }
    static const double cell[3] = { 16, 32, 32 };      /* stage-4 cells; centre voxel (cell - 1) / 2 */
    for (int k = 0; k < 3; k++) {
        A[k][k] = cell[k];
        A[k][3] = (double)m->offset[k] + (cell[k] - 1) / 2;
    }
    A[3][3] = 1;
}

enum { DRAW_OUTLINE = 1, DRAW_FLAGS = 2, DRAW_ANOMALY = 4 };

struct panel_info {
    uint64_t seen;                      /* labels outlined */
    int      n_flag_cells;              /* flagged cells cut by the slice */
    int64_t  n_anom_px;                 /* anomaly pixels painted */
    int      n_maps;                    /* maps matched */
};

/* Render one plane of the context into im (slice geometry in *s, freed by the caller). */
static int render_panel(const struct ctx *c, const struct opts *o, enum rn_plane plane, const int64_t pt[3], int what,
                        double alo, double ahi, struct rn_slice *s, struct rn_image *im, struct panel_info *info) {
    memset(info, 0, sizeof *info);
    int fixed = plane == RN_AXIAL ? 0 : plane == RN_CORONAL ? 1 : 2;
    double one[3] = { 1, 1, 1 };
    const double *sp = !o->aspect ? one : c->have_spacing ? c->spacing : NULL;
    if (rn_slice_init(s, c->t->shape, plane, pt[fixed], c->have_affine ? c->affine : NULL, sp, o->scale, o->orient) != 0)
        return -1;
    rn_grey(s, c->t, c->lo, c->hi, im);
    if (what & DRAW_FLAGS) {
        const struct tn_tensor *tok;
        int64_t grid[3], cell[3];
        if (flag_setup(c, o->flag_stage, o->flag_organ, &tok, grid, cell) != 0) return -1;
        int n = rn_flags(s, grid, cell, tok->data, tn_numel(tok), FLAG_COLOUR, im);
        if (n < 0) return ct_prefixerr("tensor '%s'", tok->name);
        info->n_flag_cells = n;
    }
    if (what & DRAW_ANOMALY) {
        float *vals = ct_xcalloc((size_t)s->out_h * (size_t)s->out_w, sizeof *vals);
        for (int i = 0; i < n_maps; i++) {
            if (!map_matches(&maps[i], c->r)) continue;
            int use_affine = c->have_affine && maps[i].have_affine;
            double B[4][4], A[4][4];
            base_transform(c, use_affine, B);
            map_transform(&maps[i], use_affine, A);
            if (rn_anomaly_sample(s, (const double(*)[4])B, &maps[i].anom, (const double(*)[4])A, vals) < 0) {
                free(vals);
                return ct_prefixerr("ct.organ/1 id %s organ %s", maps[i].id, maps[i].organ);
            }
            info->n_maps++;
        }
        info->n_anom_px = rn_anomaly_paint(s, vals, alo, ahi, im);
        free(vals);
    }
    /* outlines last: crisp on top of the translucent overlays */
    if ((what & DRAW_OUTLINE) && c->mask && rn_outline(s, c->mask, im, &info->seen) != 0) return -1;
    return 0;
}

/* Orientation letters at the middle of each edge. */
static void draw_letters(struct rn_image *im, const struct rn_slice *s, int x, int y) {
    const char *L[4] = { s->letters[0], s->letters[1], s->letters[2], s->letters[3] };
    int w = s->out_w, h = s->out_h;
    if (L[0][0]) rn_text(im, x + w / 2 - 2, y + 2, L[0], LETTER, 1);
    if (L[1][0]) rn_text(im, x + w / 2 - 2, y + h - 9, L[1], LETTER, 1);
    if (L[2][0]) rn_text(im, x + 2, y + h / 2 - 4, L[2], LETTER, 1);
    if (L[3][0]) rn_text(im, x + w - 7, y + h / 2 - 4, L[3], LETTER, 1);
}

/* Anomaly colour range of the maps matching any of the given records. */
static void anomaly_range(const struct opts *o, const struct rec *const *rs, int n, double *lo, double *hi, int *untrained) {
    *lo = 0;
    *hi = 0;
    *untrained = 0;
    for (int i = 0; i < n_maps; i++)
        for (int j = 0; j < n; j++)
            if (map_matches(&maps[i], rs[j])) {
                double m = map_max(&maps[i]);
                if (m > *hi) *hi = m;
                *untrained |= maps[i].untrained;
                break;
            }
    if (o->have_arange) *lo = o->arange[0], *hi = o->arange[1];
    if (!(*hi > *lo)) *hi = *lo + 1;
}

/* ---- legends ---- */

struct legend {
    int  n;
    char text[80][200];
    uint8_t colour[80][3];
};

static void legend_add(struct legend *l, const uint8_t c[3], const char *text) {
    if (l->n >= 80) return;
    snprintf(l->text[l->n], sizeof l->text[0], "%s", text);
    memcpy(l->colour[l->n], c, 3);
    l->n++;
}

/* Lay the entries out in rows no wider than width; returns the height (draws when im). */
static int legend_draw(const struct legend *l, struct rn_image *im, int x0, int y0, int width) {
    int x = x0, y = y0, h = l->n ? RN_GLYPH_H + 4 : 0;
    for (int i = 0; i < l->n; i++) {
        int w = 10 + rn_text_width(l->text[i], 1) + 12;
        if (x > x0 && x + w > x0 + width) {
            x = x0;
            y += RN_GLYPH_H + 4;
            h += RN_GLYPH_H + 4;
        }
        if (im) {
            rn_fill_rect(im, x, y, 7, 7, l->colour[i]);
            rn_text(im, x + 10, y, l->text[i], FG, 1);
        }
        x += w;
    }
    return h;
}

static void outline_legend(struct legend *l, const struct ctx *c, uint64_t seen) {
    for (int k = 1; k <= 64; k++)
        if (seen >> (k - 1) & 1) {
            char t[200];
            if (k <= c->n_organs) snprintf(t, sizeof t, "%s", c->organs[k - 1]);
            else snprintf(t, sizeof t, "label %d", k);
            legend_add(l, rn_label_colour(k), t);
        }
}

/* ---- output paths ---- */

static int pattern_check(const char *p) {
    int many = 0;
    for (; *p; p++)
        if (*p == '%') {
            p++;
            if (*p == 's' || *p == 'd' || *p == 'o') many = 1;
            else if (*p != '%') return -1;
        }
    return many;
}

static int out_path(const char *pattern, const struct rec *r, const char *organ, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (const char *p = pattern; *p; p++) {
        char tmp[64];
        const char *piece = tmp;
        if (*p == '%') {
            p++;
            if (*p == 's' || *p == 'o') {
                piece = *p == 's' ? r->id : organ;
                if (strchr(piece, '/') || !strcmp(piece, "..") || !strcmp(piece, ".") || !piece[0])
                    return ct_seterr("%s '%s' cannot be used in a file name", *p == 's' ? "id" : "organ", piece);
            } else if (*p == 'd') snprintf(tmp, sizeof tmp, "%ld", r->index);
            else snprintf(tmp, sizeof tmp, "%%");
        } else snprintf(tmp, sizeof tmp, "%c", *p);
        size_t m = strlen(piece);
        if (k + m + 1 > n) return ct_seterr("output path too long");
        memcpy(buf + k, piece, m + 1);
        k += m;
    }
    return 0;
}

static char **written;                      /* paths written (pattern mode): no overwriting within one run */
static int n_written;

static int emit(const char *pattern, const struct rec *r, const char *organ, const struct rn_image *im, char **argv) {
    char path[4096];
    if (out_path(pattern, r, organ, path, sizeof path) != 0) return -1;
    for (int i = 0; i < n_written; i++)
        if (!strcmp(written[i], path)) return ct_seterr("%s was already written by this run; use %%d or %%o in -o", path);
    char software[256];
    snprintf(software, sizeof software, "ctvis %s %s", CT_VERSION, argv[0]);
    if (png_write_rgb(path, im->rgb, im->w, im->h, software) != 0) return -1;
    ct_log(1, "%s: %d x %d", path, im->w, im->h);
    written = ct_xrealloc(written, (size_t)(n_written + 1) * sizeof *written);
    written[n_written++] = ct_xstrdup(path);
    return 0;
}

/* ---- one record: panels side by side ---- */

static int render_record(const struct rec *r, const struct opts *o, struct rn_image *out) {
    struct ctx c;
    if (ctx_init(&c, r, o) != 0) return -1;
    int64_t pt[3];
    if (centre_point(&c, o->organ, o->centre < 0 ? CENTRE_COM : o->centre, pt) != 0) return -1;
    if (o->slice >= 0) pt[o->planes[0] == RN_AXIAL ? 0 : o->planes[0] == RN_CORONAL ? 1 : 2] = o->slice;
    int what = (o->outline ? DRAW_OUTLINE : 0) | (o->flag_stage ? DRAW_FLAGS : 0) | (o->anomaly_file ? DRAW_ANOMALY : 0);
    double alo = 0, ahi = 1;
    int untrained = 0;
    if (what & DRAW_ANOMALY) {
        const struct rec *rs[1] = { r };
        anomaly_range(o, rs, 1, &alo, &ahi, &untrained);
    }
    struct rn_slice s[3];
    struct rn_image im[3];
    struct panel_info info[3];
    int np = 0, rc = 0;
    for (; np < o->n_planes; np++)
        if (render_panel(&c, o, o->planes[np], pt, what, alo, ahi, &s[np], &im[np], &info[np]) != 0) {
            rn_slice_free(&s[np]);
            rc = -1;
            break;
        }
    int n_matched = 0;
    for (int i = 0; rc == 0 && (what & DRAW_ANOMALY) && i < np; i++) n_matched += info[i].n_maps;
    if (rc == 0 && (what & DRAW_ANOMALY) && !n_matched) {
        const char *org = rec_meta_str(r, "organ");
        rc = ct_seterr("no ct.organ/1 record for id %s%s%s in %s", r->id, org ? " window organ " : "", org ? org : "",
                       o->anomaly_file);
    }
    if (rc == 0) {
        int gap = o->bare ? 4 : GAP, cap = o->bare ? 0 : RN_GLYPH_H + 4, title = o->bare ? 0 : RN_GLYPH_H + 6;
        int W = 0, H = 0;
        for (int i = 0; i < np; i++) {
            W += s[i].out_w + (i ? gap : 0);
            if (s[i].out_h > H) H = s[i].out_h;
        }
        int bar_w = 0;
        if ((what & DRAW_ANOMALY) && !o->bare) bar_w = GAP + 12 + 5 + 7 * RN_GLYPH_W;
        int margin = o->bare ? 0 : GAP;
        int width = margin + W + bar_w + margin;
        struct legend lg;
        lg.n = 0;
        if (!o->bare) {
            uint64_t seen = 0;
            for (int i = 0; i < np; i++) seen |= info[i].seen;
            outline_legend(&lg, &c, seen);
            if (what & DRAW_FLAGS) {
                char tn[200];
                const char *org = o->flag_organ ? o->flag_organ : rec_meta_str(r, "organ");
                snprintf(tn, sizeof tn, "tok%d/%.100s flagged cells", o->flag_stage, org ? org : "?");
                legend_add(&lg, FLAG_COLOUR, tn);
            }
            if (what & DRAW_ANOMALY)
                legend_add(&lg, (const uint8_t[3]){ 253, 231, 37 },
                           untrained ? "anomaly err4 (untrained weights)" : "anomaly err4");
        }
        int lg_h = o->bare ? 0 : legend_draw(&lg, NULL, 0, 0, width - 2 * margin);
        int height = margin + title + cap + H + (lg_h ? GAP + lg_h : 0) + margin;
        rn_image_init(out, width, height, o->bare ? (const uint8_t[3]){ 0, 0, 0 } : BG);
        if (!o->bare) {
            char t[256];
            const char *org = rec_meta_str(r, "organ");
            snprintf(t, sizeof t, "%s  %s%s%s  %s", r->id, r->schema, org ? "  " : "", org ? org : "", c.t->name);
            rn_text(out, margin, margin, t, FG, 1);
        }
        int x = margin, y = margin + title + cap;
        for (int i = 0; i < np; i++) {
            rn_blit(out, &im[i], x, y);
            if (!o->bare) {
                char t[96];
                snprintf(t, sizeof t, "%s %lld/%lld", rn_plane_name(s[i].plane), (long long)s[i].index,
                         (long long)s[i].shape[s[i].fixed] - 1);
                rn_text(out, x, y - cap, t, DIM, 1);
                draw_letters(out, &s[i], x, y);
            }
            x += s[i].out_w + gap;
        }
        if (bar_w) rn_colorbar(out, x - gap + GAP, y, 12, H, alo, ahi, FG);
        if (lg_h) legend_draw(&lg, out, margin, y + H + GAP, width - 2 * margin);
    }
    for (int i = 0; i < np; i++) {
        rn_slice_free(&s[i]);
        rn_image_free(&im[i]);
    }
    return rc;
}

/* ---- contact sheets ---- */

struct sheet_row {
    char           *title, *sub;
    struct rn_image panel[6];
    char           *caption[6];
    int             n;
    char            legend[160];
    struct legend  *probs;              /* the organ's probabilities (--probs), or NULL */
};

struct sheet {
    char            *id;
    struct rec       first;             /* id/index for the output name (strings copied) */
    long             index;
    struct sheet_row *rows;
    int              n_rows;
    double           alo, ahi;
    int              untrained, have_anom;
    uint64_t         seen;
    const char     **organs;
    int              n_organs;
    char           **organ_names;
};

static void sheet_free(struct sheet *sh) {
    for (int i = 0; i < sh->n_rows; i++) {
        for (int j = 0; j < sh->rows[i].n; j++) {
            rn_image_free(&sh->rows[i].panel[j]);
            free(sh->rows[i].caption[j]);
        }
        free(sh->rows[i].title);
        free(sh->rows[i].sub);
        free(sh->rows[i].probs);
    }
    free(sh->rows);
    for (int k = 0; k < sh->n_organs; k++) free(sh->organ_names[k]);
    free(sh->organ_names);
    free(sh->id);
    memset(sh, 0, sizeof *sh);
}

static void row_add(struct sheet_row *row, struct rn_image *im, const struct rn_slice *s, const char *what, int letters) {
    char t[200];
    snprintf(t, sizeof t, "%.128s%s%s %lld", what, what[0] ? " " : "", rn_plane_name(s->plane), (long long)s->index);
    if (letters) draw_letters(im, s, 0, 0);
    row->panel[row->n] = *im;
    row->caption[row->n] = ct_xstrdup(t);
    row->n++;
}

/* Render the rows of one record into the sheet. */
static int sheet_add(struct sheet *sh, const struct rec *r, const struct opts *o) {
    struct ctx c;
    if (ctx_init(&c, r, o) != 0) return -1;
    const char *organ = o->organ ? o->organ : (c.mask ? rec_meta_str(r, "organ") : NULL);
    int64_t pt[3];
    if (centre_point(&c, organ, o->centre < 0 ? CENTRE_AREA : o->centre, pt) != 0) return -1;
    if (!sh->organ_names && c.n_organs) {
        sh->organ_names = ct_xcalloc((size_t)c.n_organs, sizeof *sh->organ_names);
        for (int k = 0; k < c.n_organs; k++) sh->organ_names[k] = ct_xstrdup(c.organs[k]);
        sh->n_organs = c.n_organs;
    }
    sh->rows = ct_xrealloc(sh->rows, (size_t)(sh->n_rows + 1) * sizeof *sh->rows);
    struct sheet_row *row = &sh->rows[sh->n_rows++];
    memset(row, 0, sizeof *row);
    const char *org = rec_meta_str(r, "organ");
    char t[256];
    snprintf(t, sizeof t, "%s  %s", org ? org : "case", r->schema);
    row->title = ct_xstrdup(t);
    int64_t off[3] = { 0, 0, 0 };
    rec_meta_i64(r, "window_offset", off, 3);
    snprintf(t, sizeof t, "offset %lld,%lld,%lld  shape %lldx%lldx%lld", (long long)off[0], (long long)off[1],
             (long long)off[2], (long long)c.t->shape[0], (long long)c.t->shape[1], (long long)c.t->shape[2]);
    row->sub = ct_xstrdup(t);
    /* probabilities of this organ, each with a square of its value on the colour map */
    for (int i = 0; org && i < n_probs; i++) {
        if (strcmp(probs[i].id, r->id)) continue;
        for (int j = 0; j < probs[i].n; j++) {
            if (strcmp(probs[i].organ[j], org)) continue;
            if (!row->probs) row->probs = ct_xcalloc(1, sizeof *row->probs);
            char pb[200];
            uint8_t col[3];
            if (isnan(probs[i].p[j])) {
                snprintf(pb, sizeof pb, "p(%.150s) -", probs[i].abnormality[j]);
                memcpy(col, DIM, 3);
            } else {
                snprintf(pb, sizeof pb, "p(%.150s) %.2f", probs[i].abnormality[j], probs[i].p[j]);
                rn_colormap(probs[i].p[j], col);
            }
            legend_add(row->probs, col, pb);
        }
    }
    const enum rn_plane planes[3] = { RN_AXIAL, RN_CORONAL, RN_SAGITTAL };
    struct rn_slice s;
    struct rn_image im;
    struct panel_info info;
    for (int i = 0; i < 3; i++) {
        if (render_panel(&c, o, planes[i], pt, c.mask ? DRAW_OUTLINE : 0, 0, 1, &s, &im, &info) != 0) {
            rn_slice_free(&s);
            return -1;
        }
        sh->seen |= info.seen;
        row_add(row, &im, &s, "", 1);
        rn_slice_free(&s);
    }
    const struct tn_tensor *tok;
    int64_t grid[3], cell[3];
    int stage = o->flag_stage ? o->flag_stage : 4;
    struct opts fo = *o;
    fo.flag_stage = stage;
    if (flag_setup(&c, stage, o->flag_organ, &tok, grid, cell) == 0) {
        for (int i = 0; i < 2; i++) {
            if (render_panel(&c, &fo, planes[i], pt, DRAW_FLAGS, 0, 1, &s, &im, &info) != 0) {
                rn_slice_free(&s);
                return -1;
            }
            row_add(row, &im, &s, tok->name, 0);
            rn_slice_free(&s);
        }
    } else if (o->flag_stage && (o->flag_organ || rec_meta_str(r, "organ")))
        return -1;                          /* asked for explicitly on a window: missing flags are an error */
    if (o->anomaly_file) {
        int any = 0;
        for (int i = 0; i < n_maps; i++) any |= map_matches(&maps[i], r);
        if (any) {
            if (render_panel(&c, o, RN_AXIAL, pt, DRAW_ANOMALY | (c.mask ? DRAW_OUTLINE : 0), sh->alo, sh->ahi, &s, &im,
                             &info) != 0) {
                rn_slice_free(&s);
                return -1;
            }
            row_add(row, &im, &s, "anomaly", 0);
            rn_slice_free(&s);
            sh->have_anom = 1;
        } else snprintf(row->legend, sizeof row->legend, "no ct.organ/1 result for this window");
    }
    return 0;
}

static int sheet_compose(struct sheet *sh, const struct opts *o, struct rn_image *out) {
    int margin = GAP, line = RN_GLYPH_H + 4;
    int W = 0, H = margin + line * 2 + GAP;          /* title: id + note */
    for (int i = 0; i < sh->n_rows; i++) {
        int w = 0, h = 0;
        for (int j = 0; j < sh->rows[i].n; j++) {
            w += sh->rows[i].panel[j].w + (j ? GAP : 0);
            if (sh->rows[i].panel[j].h > h) h = sh->rows[i].panel[j].h;
        }
        if (rn_text_width(sh->rows[i].sub, 1) > w) w = rn_text_width(sh->rows[i].sub, 1);
        if (w > W) W = w;
        H += 2 * line + line + h + GAP + (sh->rows[i].legend[0] ? line : 0);
    }
    for (int i = 0; i < sh->n_rows; i++)
        if (sh->rows[i].probs) H += legend_draw(sh->rows[i].probs, NULL, 0, 0, W);
    int bar_w = sh->have_anom ? GAP + 12 + 5 + 7 * RN_GLYPH_W : 0;
    int width = margin + W + bar_w + margin;
    struct legend lg;
    lg.n = 0;
    struct ctx fake;
    memset(&fake, 0, sizeof fake);
    fake.organs = (const char **)sh->organ_names;
    fake.n_organs = sh->n_organs;
    outline_legend(&lg, &fake, sh->seen);
    char tn[64];
    snprintf(tn, sizeof tn, "tok%d flagged cells", o->flag_stage ? o->flag_stage : 4);
    legend_add(&lg, FLAG_COLOUR, tn);
    int lg_h = legend_draw(&lg, NULL, 0, 0, width - 2 * margin);
    H += lg_h + margin;
    rn_image_init(out, width, H, BG);
    char t[256];
    snprintf(t, sizeof t, "%s  contact sheet  %d record%s", sh->id, sh->n_rows, sh->n_rows == 1 ? "" : "s");
    rn_text(out, margin, margin, t, FG, 1);
    int y = margin + line;
    if (sh->have_anom)
        rn_text(out, margin, y, sh->untrained ? "anomaly = stage-4 reconstruction error, untrained weights: the colours mean nothing"
                                              : "anomaly = stage-4 reconstruction error",
                DIM, 1);
    y += line + GAP;
    legend_draw(&lg, out, margin, y, width - 2 * margin);
    y += lg_h;
    int bar_y = -1, bar_h = 0;
    for (int i = 0; i < sh->n_rows; i++) {
        struct sheet_row *row = &sh->rows[i];
        rn_text(out, margin, y, row->title, FG, 1);
        rn_text(out, margin, y + line, row->sub, DIM, 1);
        y += 2 * line;
        if (row->probs) y += legend_draw(row->probs, out, margin, y, W);
        int x = margin, h = 0;
        for (int j = 0; j < row->n; j++) {
            rn_text(out, x, y, row->caption[j], DIM, 1);
            rn_blit(out, &row->panel[j], x, y + line);
            if (!strncmp(row->caption[j], "anomaly", 7) && bar_y < 0) {
                bar_y = y + line;
                bar_h = row->panel[j].h;
            }
            x += row->panel[j].w + GAP;
            if (row->panel[j].h > h) h = row->panel[j].h;
        }
        y += line + h + GAP;
        if (row->legend[0]) {
            rn_text(out, margin, y, row->legend, DIM, 1);
            y += line;
        }
    }
    if (sh->have_anom && bar_y >= 0) rn_colorbar(out, margin + W + GAP, bar_y, 12, bar_h, sh->alo, sh->ahi, FG);
    return 0;
}

/* Start the sheet of the case of record r: one colour scale for every map of its id. */
static void sheet_start(struct sheet *sh, const struct rec *r, const struct opts *o) {
    sh->id = ct_xstrdup(r->id);
    sh->first.id = sh->id;
    sh->first.index = r->index;
    sh->first.schema = "";
    if (!o->anomaly_file) return;
    sh->alo = sh->ahi = 0;
    for (int i = 0; i < n_maps; i++)
        if (!strcmp(maps[i].id, r->id)) {
            double m = map_max(&maps[i]);
            if (m > sh->ahi) sh->ahi = m;
            sh->untrained |= maps[i].untrained;
        }
    if (o->have_arange) sh->alo = o->arange[0], sh->ahi = o->arange[1];
    if (!(sh->ahi > sh->alo)) sh->ahi = sh->alo + 1;
}

static void sheet_flush(struct sheet *sh, const struct opts *o, const char *output, char **argv) {
    struct rn_image im;
    sheet_compose(sh, o, &im);
    if (emit(output, &sh->first, "case", &im, argv) != 0) ct_die("case %s: %s", sh->id, ct_lasterr());
    rn_image_free(&im);
    sheet_free(sh);
}

/* ---- main ---- */

static void parse_pair(const char *opt, const char *arg, double v[2], int positive_second) {
    if (ct_parse_doubles(arg, v, 2, 0) != 0) ct_usage_die("%s: expected two numbers A,B, got '%s'", opt, arg);
    if (positive_second ? !(v[1] > 0) : !(v[1] > v[0])) ct_usage_die("%s: '%s': %s", opt, arg, positive_second ? "width must be > 0" : "expected LO < HI");
}

int main(int argc, char **argv) {
    ct_init(argv[0]);
    struct cli_select sel = { 0 };
    struct opts o;
    memset(&o, 0, sizeof o);
    o.slice = -1;
    o.centre = -1;
    o.scale = 1;
    o.aspect = o.orient = 1;
    o.planes[0] = RN_AXIAL;
    o.n_planes = 1;
    const char *output = NULL;
    enum {
        OPT_CENTRE = 256, OPT_MASK, OPT_ARANGE, OPT_PROBS, OPT_NOASPECT, OPT_NOORIENT, OPT_BARE,
    };
    static const struct option longopts[] = {
        { "tensor", required_argument, 0, 't' },    { "plane", required_argument, 0, 'p' },
        { "slice", required_argument, 0, 'n' },     { "organ", required_argument, 0, 'O' },
        { "centre", required_argument, 0, OPT_CENTRE }, { "center", required_argument, 0, OPT_CENTRE },
        { "hu-window", required_argument, 0, 'w' }, { "range", required_argument, 0, 'R' },
        { "outline", no_argument, 0, 'm' },         { "mask", required_argument, 0, OPT_MASK },
        { "flags", required_argument, 0, 'f' },     { "anomaly", required_argument, 0, 'a' },
        { "anomaly-range", required_argument, 0, OPT_ARANGE }, { "probs", required_argument, 0, OPT_PROBS },
        { "sheet", no_argument, 0, 'S' },           { "scale", required_argument, 0, 's' },
        { "no-aspect", no_argument, 0, OPT_NOASPECT }, { "no-orient", no_argument, 0, OPT_NOORIENT },
        { "bare", no_argument, 0, OPT_BARE },       { "record", required_argument, 0, 'r' },
        { "id", required_argument, 0, 'i' },        { "output", required_argument, 0, 'o' },
        { "verbose", no_argument, 0, 'v' },         { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, 'V' },         { 0, 0, 0, 0 },
    };
    struct cli_common cc;
    cli_common_init(&cc);
    int ch;
    while ((ch = getopt_long(argc, argv, "t:p:n:O:w:R:mf:a:Ss:r:i:o:vhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': o.tensor = optarg; break;
        case 'p': {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            o.n_planes = 0;
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o.n_planes == 3) ct_usage_die("--plane: at most 3 planes");
                if (rn_plane_parse(tok, &o.planes[o.n_planes++]) != 0) ct_usage_die("--plane: %s", ct_lasterr());
            }
            if (!o.n_planes) ct_usage_die("--plane: empty list");
            break;
        }
        case 'n':
            if (ct_parse_long(optarg, &o.slice) != 0 || o.slice < 0) ct_usage_die("--slice: expected an index >= 0, got '%s'", optarg);
            break;
        case 'O': o.organ = optarg; break;
        case OPT_CENTRE:
            if (!strcmp(optarg, "com")) o.centre = CENTRE_COM;
            else if (!strcmp(optarg, "bbox")) o.centre = CENTRE_BBOX;
            else if (!strcmp(optarg, "area")) o.centre = CENTRE_AREA;
            else ct_usage_die("--centre: expected com, bbox or area, got '%s'", optarg);
            break;
        case 'w':
            if (!strcmp(optarg, "lung")) o.hu[0] = -600, o.hu[1] = 1500;
            else if (!strcmp(optarg, "mediastinum")) o.hu[0] = 40, o.hu[1] = 400;
            else if (!strcmp(optarg, "bone")) o.hu[0] = 400, o.hu[1] = 1800;
            else parse_pair("--hu-window", optarg, o.hu, 1);
            o.have_hu = 1;
            break;
        case 'R': parse_pair("--range", optarg, o.range, 0); o.have_range = 1; break;
        case 'm': o.outline = 1; break;
        case OPT_MASK: o.mask = optarg; break;
        case 'f': {
            char *end;
            long st = strtol(optarg, &end, 10);
            if (end == optarg || st < 1 || st > 4 || (*end && *end != ':') || (*end == ':' && !end[1]))
                ct_usage_die("--flags: expected STAGE (1..4) or STAGE:ORGAN, got '%s'", optarg);
            o.flag_stage = (int)st;
            o.flag_organ = *end == ':' ? end + 1 : NULL;
            break;
        }
        case 'a': o.anomaly_file = optarg; break;
        case OPT_ARANGE: parse_pair("--anomaly-range", optarg, o.arange, 0); o.have_arange = 1; break;
        case OPT_PROBS: o.probs_file = optarg; break;
        case 'S': o.sheet = 1; break;
        case 's':
            if (ct_parse_double(optarg, &o.scale) != 0 || !(o.scale >= 0.05 && o.scale <= 32))
                ct_usage_die("--scale: expected a number in 0.05..32, got '%s'", optarg);
            break;
        case OPT_NOASPECT: o.aspect = 0; break;
        case OPT_NOORIENT: o.orient = 0; break;
        case OPT_BARE: o.bare = 1; break;
        case 'o': output = optarg; break;
        default:
            if (!cli_select_option(ch, optarg, &sel) && !cli_common(ch, optarg, &cc, usage)) cli_unknown();
        }
    }
    if (!output) ct_usage_die("missing --output (a .png file, or a pattern with %%s)");
    int many = pattern_check(output);
    if (many < 0) ct_usage_die("--output: only %%s, %%d, %%o and %%%% may follow '%%' in '%s'", output);
    if (o.have_hu && o.have_range) ct_usage_die("--hu-window and --range exclude each other");
    if (o.slice >= 0 && o.n_planes > 1) ct_usage_die("--slice takes one plane; use --organ for several");
    if (o.slice >= 0 && o.organ) ct_usage_die("--slice and --organ exclude each other");
    if (o.sheet && (o.slice >= 0 || o.bare || o.n_planes > 1)) ct_usage_die("--sheet draws its own planes: no --slice, --plane or --bare");
    if (o.probs_file && !o.sheet) ct_usage_die("--probs is for --sheet");

    struct rec_reader *in = rec_reader_open_many(argc - optind, argv + optind);
    if (!in) ct_die("%s", ct_lasterr());
    if (o.anomaly_file) load_side(o.anomaly_file, "ct.organ", take_map);
    if (o.probs_file) load_side(o.probs_file, "ct.probs", take_probs);

    struct tn_arena *a = tn_arena_new(0);
    struct rec r;
    int rc, n_sel = 0;
    struct rn_image kept = { 0 };               /* single output: written after the whole stream */
    struct sheet sh;
    memset(&sh, 0, sizeof sh);
    while ((rc = rec_read(in, a, &r)) > 0) {
        if (!cli_select_match(&sel, &r)) {
            tn_arena_reset(a);
            continue;
        }
        if (!o.sheet) {
            if (!many && n_sel == 1)
                ct_die("record %ld (id %s): more than one record selected; use -r/-i or %%s/%%d in -o", r.index, r.id);
            struct rn_image im;
            if (render_record(&r, &o, &im) != 0) ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
            if (many) {
                const char *org = rec_meta_str(&r, "organ");
                if (emit(output, &r, org ? org : "case", &im, argv) != 0)
                    ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
                rn_image_free(&im);
            } else kept = im;
            n_sel++;
        } else {
            if (sh.id && strcmp(sh.id, r.id)) {       /* a new case: the previous sheet is complete */
                if (!many) ct_die("record %ld (id %s): a second case (after %s); use -i or %%s in -o", r.index, r.id, sh.id);
                sheet_flush(&sh, &o, output, argv);
            }
            if (!sh.id) sheet_start(&sh, &r, &o);
            if (sheet_add(&sh, &r, &o) != 0) ct_die("record %ld (id %s): %s", r.index, r.id, ct_lasterr());
            n_sel++;
        }
        tn_arena_reset(a);
    }
    if (rc < 0) ct_die("%s", ct_lasterr());
    if (n_sel == 0) ct_die("no record selected");
    if (o.sheet) {
        sheet_flush(&sh, &o, output, argv);
    } else if (!many) {
        struct rec fake = { 0 };
        fake.id = "";
        fake.index = 0;
        if (emit(output, &fake, "", &kept, argv) != 0) ct_die("%s", ct_lasterr());
        rn_image_free(&kept);
    }
    rec_reader_close(in);
    tn_arena_free(a);
    free_side_inputs();
    for (int i = 0; i < n_written; i++) free(written[i]);
    free(written);
    return CT_EXIT_OK;
}
