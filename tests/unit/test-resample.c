/* test-resample.c - lib/resample: index tables (known answers worked out by
 * hand from torch's formulas), sizes, crop/pad geometry, the output affine,
 * constant and delta volumes, label merge + counts, organ sets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "check.h"
#include "ct.h"
#include "resample.h"

static int eq_i32(const int32_t *a, const int32_t *b, int n) { return !memcmp(a, b, (size_t)n * sizeof *a); }
static int eq_f(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void test_tables(void) {
    int32_t i0[8], i1[8], idx[8];
    float w0[8], w1[8];
    /* 4 -> 8: scale 0.5, src = 0.5 (i + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, ... 3.25 */
    rs_axis_linear(4, 8, i0, i1, w0, w1);
    CHECK(eq_i32(i0, (int32_t[]){ 0, 0, 0, 1, 1, 2, 2, 3 }, 8), "linear 4->8: i0");
    CHECK(eq_i32(i1, (int32_t[]){ 1, 1, 1, 2, 2, 3, 3, 3 }, 8), "linear 4->8: i1 (last index repeats)");
    CHECK(eq_f(w1, (float[]){ 0, .25f, .75f, .25f, .75f, .25f, .75f, .25f }, 8), "linear 4->8: lambda1");
    CHECK(eq_f(w0, (float[]){ 1, .75f, .25f, .75f, .25f, .75f, .25f, .75f }, 8), "linear 4->8: lambda0 = 1 - lambda1");
    /* 6 -> 3: scale 2, src = 0.5, 2.5, 4.5 */
    rs_axis_linear(6, 3, i0, i1, w0, w1);
    CHECK(eq_i32(i0, (int32_t[]){ 0, 2, 4 }, 3) && eq_i32(i1, (int32_t[]){ 1, 3, 5 }, 3) &&
              eq_f(w1, (float[]){ .5f, .5f, .5f }, 3), "linear 6->3: midpoints");
    /* equal sizes: torch copies */
    rs_axis_linear(5, 5, i0, i1, w0, w1);
    CHECK(eq_i32(i0, (int32_t[]){ 0, 1, 2, 3, 4 }, 5) && eq_i32(i1, i0, 5) && w0[3] == 1 && w1[3] == 0,
          "linear 5->5: identity");
    /* legacy nearest: floor(dst * in/out) in float */
    rs_axis_nearest(5, 3, idx);
    CHECK(eq_i32(idx, (int32_t[]){ 0, 1, 3 }, 3), "nearest 5->3 = [0, 1, 3] (not nearest-exact [0, 2, 4])");
    rs_axis_nearest(3, 6, idx);
    CHECK(eq_i32(idx, (int32_t[]){ 0, 0, 1, 1, 2, 2 }, 6), "nearest 3->6");
    rs_axis_nearest(3, 7, idx);
    CHECK(eq_i32(idx, (int32_t[]){ 0, 0, 0, 1, 1, 2, 2 }, 7), "nearest 3->7");
}

static void test_sizes(void) {
    CHECK(rs_out_size(512, 0.7, 1.0, RS_SIZE_FLOOR) == 358, "size: int(512 * 0.7) = 358");
    CHECK(rs_out_size(512, 0.7, 1.0, RS_SIZE_CEIL) == 359, "size: ceil 359");
    CHECK(rs_out_size(512, 0.7, 1.0, RS_SIZE_ROUND) == 358, "size: round 358");
    CHECK(rs_out_size(300, 1.0, 3.0, RS_SIZE_FLOOR) == 100, "size: int(300 * (1/3)) = 100");
    CHECK(rs_out_size(2, 0.4, 1.0, RS_SIZE_FLOOR) < 0 && strstr(ct_lasterr(), "less than one"), "size: < 1 refused");
    CHECK(rs_out_size(10, 0.0, 1.0, RS_SIZE_FLOOR) < 0, "size: zero spacing refused");

    struct rs_params p = { .spacing_mm = { 3, 1, 1 }, .xy_swap = 1, .rule = RS_SIZE_FLOOR };
    struct rs_grid g;
    /* x/y quirk: W = int(nx * sy), H = int(ny * sx) */
    CHECK(rs_grid_init(&g, (int64_t[]){ 30, 100, 200 }, (double[]){ 2.0, 0.5, 0.8 }, &p) == 0 &&
              g.res_shape[0] == 20 && g.res_shape[1] == 80 && g.res_shape[2] == 100,
          "grid: x/y swap gives H = int(100 * 0.8), W = int(200 * 0.5)");
    p.xy_swap = 0;
    CHECK(rs_grid_init(&g, (int64_t[]){ 30, 100, 200 }, (double[]){ 2.0, 0.5, 0.8 }, &p) == 0 &&
              g.res_shape[1] == 50 && g.res_shape[2] == 160, "grid: without the swap H = 50, W = 160");
    CHECK(rs_grid_init(&g, (int64_t[]){ 30, 100, 200 }, (double[]){ 2.0, 0.0, 0.8 }, &p) != 0 &&
              strstr(ct_lasterr(), "zero"), "grid: zero spacing refused");
}

static void test_crop_pad(void) {
    struct rs_params p = { .spacing_mm = { 1, 1, 1 } };
    struct rs_grid g;
    rs_grid_init(&g, (int64_t[]){ 106, 320, 384 }, (double[]){ 1, 1, 1 }, &p);
    rs_grid_crop(&g, (int64_t[]){ 10, 50, 60 }, (int64_t[]){ 20, 100, 200 }, (int64_t[]){ 5, 20, 20 });
    CHECK(g.lo[0] == 5 && g.lo[1] == 30 && g.lo[2] == 40 && g.hi[0] == 25 && g.hi[1] == 120 && g.hi[2] == 220,
          "crop: [min - e, max + e) (5/20 voxels before, 4/19 after)");
    rs_grid_pad(&g, (int64_t[]){ 112, 256, 352 });
    CHECK(g.pad_before[0] == 46 && g.pad_after[0] == 46 && g.pad_before[1] == 83 && g.pad_after[1] == 83 &&
              g.out_shape[2] == 352, "pad: symmetric");
    rs_grid_crop(&g, (int64_t[]){ 2, 0, 370 }, (int64_t[]){ 104, 319, 383 }, (int64_t[]){ 5, 20, 20 });
    rs_grid_pad(&g, (int64_t[]){ 112, 256, 0 });
    CHECK(g.lo[0] == 0 && g.hi[0] == 106 && g.lo[2] == 350 && g.hi[2] == 384 && g.pad_before[0] == 3 &&
              g.pad_after[0] == 3 && g.pad_before[1] == 0 && g.out_shape[1] == 320 && g.out_shape[2] == 34,
          "crop clipped at the borders; odd padding puts the extra voxel after; no crop by padding");

    /* affine: 6 -> 3 voxels of 1 mm along every axis: output voxel 0 is centred
     * between source voxels 0 and 1 (0.5), spacing 2; a crop at 1 and one voxel
     * of padding shift it by (1 - 1) = 0 */
    struct rs_grid h;
    rs_grid_init(&h, (int64_t[]){ 6, 6, 6 }, (double[]){ 1, 1, 1 }, &(struct rs_params){ .spacing_mm = { 2, 2, 2 } });
    double I[4][4] = { { 1, 0, 0, 10 }, { 0, 1, 0, 20 }, { 0, 0, 1, 30 }, { 0, 0, 0, 1 } }, A[4][4];
    rs_grid_affine(&h, I, A);
    CHECK(A[0][0] == 2 && A[0][3] == 10.5 && A[1][3] == 20.5 && A[2][3] == 30.5, "affine: downsampled grid centre");
    h.lo[0] = 1, h.pad_before[0] = 1;
    rs_grid_affine(&h, I, A);
    CHECK(A[0][3] == 10.5, "affine: crop and padding compensate");
    h.pad_before[0] = 0;
    rs_grid_affine(&h, I, A);
    CHECK(A[0][3] == 12.5, "affine: crop start moves the origin by one output voxel");
}

static void test_volumes(void) {
    struct tn_arena *a = tn_arena_new(0);
    /* constant int16 volume: every output voxel inside the box is the windowed
     * constant, every padding voxel 0 */
    int64_t in[3] = { 7, 9, 11 };
    struct tn_tensor *v = tn_new(a, TN_I16, 3, in, "ct");
    for (int64_t i = 0; i < tn_numel(v); i++) ((int16_t *)v->data)[i] = 100;
    struct rs_params p = { .spacing_mm = { 1.7, 0.6, 1.3 }, .xy_swap = 1, .pad_to = { 20, 20, 20 } };
    struct rs_grid g;
    rs_grid_init(&g, in, (double[]){ 2.0, 1.0, 1.0 }, &p);
    rs_grid_pad(&g, p.pad_to);
    struct tn_tensor *o = tn_new(a, TN_F32, 3, g.out_shape, "image");
    struct rs_window w = { .on = 1, .lo = -1150, .hi = 350 };
    struct rs_src s = { .t = v };
    CHECK(rs_image_write(&s, &g, &w, o->data, 1) == 0, "image: constant volume");
    float want = (100.0f + 1150.0f) / 1500.0f;
    int64_t n_in = 0, n_bad = 0, n_pad = 0;
    const float *f = o->data;
    for (int64_t d = 0; d < g.out_shape[0]; d++)
        for (int64_t hh = 0; hh < g.out_shape[1]; hh++)
            for (int64_t ww = 0; ww < g.out_shape[2]; ww++) {
                float x = f[(d * g.out_shape[1] + hh) * g.out_shape[2] + ww];
                int inside = d >= g.pad_before[0] && d < g.out_shape[0] - g.pad_after[0] && hh >= g.pad_before[1] &&
                             hh < g.out_shape[1] - g.pad_after[1] && ww >= g.pad_before[2] &&
                             ww < g.out_shape[2] - g.pad_after[2];
                if (inside) n_in++, n_bad += fabsf(x - want) > 1e-6f;
                else n_pad++, n_bad += x != 0;
            }
    CHECK(n_bad == 0 && n_in == g.res_shape[0] * g.res_shape[1] * g.res_shape[2] && n_pad > 0,
          "image: constant inside, zero padding (%lld bad)", (long long)n_bad);

    /* one labelled voxel: the box is where nearest puts it, counts are exact */
    int64_t ls[3] = { 4, 6, 8 };
    struct tn_tensor *lab = tn_zeros(a, TN_U8, 3, ls, "lab");
    ((uint8_t *)lab->data)[(2 * 6 + 3) * 8 + 5] = 52;   /* aorta at z=2, y=3, x=5 */
    ((uint8_t *)lab->data)[(0 * 6 + 0) * 8 + 0] = 16;   /* trachea: not an organ of the set */
    struct org_classes org;
    CHECK(org_classes_load(NULL, a, &org) == 0 && org.n == 4, "organs: built-in set loads");
    struct rs_lut lut;
    rs_organs_lut(&org, a, &lut);
    struct rs_grid lg;
    struct rs_params lp = { .spacing_mm = { 1, 1, 1 } };
    rs_grid_init(&lg, ls, (double[]){ 1, 1, 1 }, &lp);
    int64_t bmin[3], bmax[3];
    struct rs_src lsrc = { .t = lab };
    CHECK(rs_labels_bbox(&lsrc, &lut, &lg, bmin, bmax, 2) == 1 && bmin[0] == 2 && bmax[0] == 2 && bmin[1] == 3 &&
              bmin[2] == 5 && bmax[2] == 5, "labels: box of one voxel");
    rs_grid_crop(&lg, bmin, bmax, (int64_t[]){ 1, 1, 1 });
    rs_grid_pad(&lg, (int64_t[]){ 5, 5, 5 });
    struct tn_tensor *m = tn_new(a, TN_U8, 3, lg.out_shape, "mask");
    int64_t counts[5];
    CHECK(rs_labels_write(&lsrc, &lut, &lg, m->data, counts, 5, 2) == 0 && counts[4] == 1 && counts[1] == 0 &&
              counts[0] == 124, "labels: counts (one aorta voxel, the rest background)");
    const uint8_t *mm = m->data;
    CHECK(lg.out_shape[0] == 5 && mm[(2 * 5 + 2) * 5 + 2] == 4, "labels: the voxel at the centre of the padded box");
    tn_arena_free(a);
}

static void test_organs(void) {
    struct tn_arena *a = tn_arena_new(0);
    struct org_classes o, f;
    CHECK(org_classes_load(NULL, a, &o) == 0 && !strcmp(o.name, "ct-rate") && o.n == 4 &&
              !strcmp(o.organs[1].name, "heart") && o.organs[1].n_ids == 2 && o.organs[1].ids[1] == 61,
          "organs: built-in CT-RATE set");
    /* the shipped file is the built-in set */
    if (org_classes_load("pipelines/organs-ct-rate.yaml", a, &f) == 0) {
        int same = f.n == o.n && f.n_classes == o.n_classes && !strcmp(f.name, o.name);
        for (int k = 0; same && k < o.n; k++) {
            same = !strcmp(f.organs[k].name, o.organs[k].name) && f.organs[k].n_ids == o.organs[k].n_ids;
            for (int i = 0; same && i < o.organs[k].n_ids; i++) same = f.organs[k].ids[i] == o.organs[k].ids[i];
        }
        CHECK(same, "organs: pipelines/organs-ct-rate.yaml equals the built-in set");
    } else {
        CHECK(0, "organs: pipelines/organs-ct-rate.yaml loads (%s)", ct_lasterr());
    }
    struct rs_lut lut;
    rs_organs_lut(&o, a, &lut);
    CHECK(lut.n == 118 && lut.map[10] == 1 && lut.map[14] == 1 && lut.map[61] == 2 && lut.map[15] == 3 &&
              lut.map[52] == 4 && lut.map[16] == 0 && lut.map[53] == 0, "organs: merge table");

    struct { const char *yaml, *err; } bad[] = {
        { "organs:\n  - name: x\n    ids: [118]\n", "t.yaml:3:11: unknown class id 118 (known classes are 1..117)" },
        { "organs:\n  - name: x\n    ids: [0]\n", "unknown class id 0" },
        { "organs:\n  - {name: a, ids: [5]}\n  - {name: b, ids: [5]}\n", "class id 5 is merged into two organs" },
        { "organs:\n  - {name: a, ids: [5]}\n  - {name: a, ids: [6]}\n", "organ 'a' is listed twice" },
        { "organs:\n  - {name: a, idz: [5]}\n", "unknown key 'idz'" },
        { "organs:\n  - {name: a, ids: []}\n", "non-empty list 'ids'" },
        { "organs:\n  - {name: a, ids: [x]}\n", "expected an integer" },
        { "classes: 3\norgans:\n  - {name: a, ids: [4]}\n", "known classes are 1..3" },
        { "name: x\n", "missing 'organs'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cfg_node *d = cfg_load_string(bad[i].yaml, strlen(bad[i].yaml), "t.yaml", a);
        int rc = d ? org_classes_parse(d, a, &f) : -1;
        CHECK(rc != 0 && strstr(ct_lasterr(), bad[i].err), "organs: refuses '%s' (%s)", bad[i].err, ct_lasterr());
    }
    tn_arena_free(a);
}

int main(void) {
    test_tables();
    test_sizes();
    test_crop_pad();
    test_volumes();
    test_organs();
    return check_failures != 0;
}
