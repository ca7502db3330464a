/* test-maskpool.c - window geometry, padding, flags and rules on hand-worked cases.
 * Every expected value below is worked out in the comment next to it from the
 * rules of method.md §2.3, §2.5 and §7.1 (eval.py center_crop), not from this code. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ct.h"
#include "maskpool.h"

static int same3(const int64_t *a, int64_t x, int64_t y, int64_t z) { return a[0] == x && a[1] == y && a[2] == z; }

static struct mp_window place(int64_t l0, int64_t l1, int64_t l2, int64_t h0, int64_t h1, int64_t h2,
                              const int64_t shape[3], const int64_t roi[3]) {
    struct mp_box b = { .n = 1, .lo = { l0, l1, l2 }, .hi = { h0, h1, h2 } };
    struct mp_window w;
    mp_window_place(&b, shape, roi, &w);
    return w;
}

static void test_place(void) {
    const int64_t roi[3] = { 112, 256, 352 };
    /* centred: c = (105,155,205), start = c - roi/2 = (49,27,29), inside the volume */
    int64_t s1[3] = { 300, 400, 500 };
    struct mp_window w = place(100, 150, 200, 110, 160, 210, s1, roi);
    CHECK(same3(w.offset, 49, 27, 29) && same3(w.size, 112, 256, 352), "place: centred window");
    /* near the start: c - roi/2 < 0 -> start 0 */
    w = place(10, 20, 30, 20, 40, 60, s1, roi);
    CHECK(same3(w.offset, 0, 0, 0) && same3(w.size, 112, 256, 352), "place: clamped at 0");
    /* near the end of a (150,300,400) volume: c = (144,294,394), start (88,166,218) runs past
     * the end, so start = n - roi = (38,44,48) */
    int64_t s2[3] = { 150, 300, 400 };
    w = place(140, 290, 390, 149, 299, 399, s2, roi);
    CHECK(same3(w.offset, 38, 44, 48) && same3(w.size, 112, 256, 352), "place: shifted back inside");
    /* organ of 200 planes (0..199): size = max(112, 199 - 0) = 199, c = 99, start 0,
     * window [0,199): the last plane is lost (max - min quirk) */
    int64_t s3[3] = { 250, 300, 400 };
    w = place(0, 0, 0, 199, 10, 10, s3, roi);
    CHECK(w.offset[0] == 0 && w.size[0] == 199, "place: max - min quirk (199 planes for 200)");
    /* volume smaller than the roi: the window is the whole axis */
    int64_t s4[3] = { 50, 100, 100 };
    w = place(25, 50, 50, 25, 50, 50, s4, roi);
    CHECK(same3(w.offset, 0, 0, 0) && same3(w.size, 50, 100, 100), "place: volume smaller than roi");
    /* odd roi 5 around voxels 3..4: extent 1, size 5, c = 3, start = 3 - 2 = 1 */
    int64_t s5[3] = { 10, 10, 10 }, r5[3] = { 5, 5, 5 };
    w = place(3, 3, 3, 4, 4, 4, s5, r5);
    CHECK(same3(w.offset, 1, 1, 1) && same3(w.size, 5, 5, 5), "place: odd roi, floor of size/2");
}

static void test_pad(void) {
    const int64_t m[3] = { 16, 32, 32 };
    struct mp_window w = { .size = { 112, 256, 352 } };
    CHECK(mp_window_pad(&w, m) == 0 && same3(w.padded, 112, 256, 352), "pad: multiples stay");
    w = (struct mp_window){ .size = { 113, 257, 353 } };
    CHECK(mp_window_pad(&w, m) == 0 && same3(w.padded, 128, 288, 384), "pad: round up at the end");
    w = (struct mp_window){ .size = { 1, 1, 1 } };
    CHECK(mp_window_pad(&w, m) == 0 && same3(w.padded, 16, 32, 32), "pad: one voxel -> one stage-4 cell");
    const int64_t m2[3] = { 32, 64, 96 };
    w = (struct mp_window){ .size = { 33, 64, 97 } };
    CHECK(mp_window_pad(&w, m2) == 0 && same3(w.padded, 64, 64, 192), "pad: a larger multiple");
    w = (struct mp_window){ .size = { 0, 10, 10 } };
    CHECK(mp_window_pad(&w, m) != 0 && strstr(ct_lasterr(), "empty axis"), "pad: empty axis refused");
    w = (struct mp_window){ .size = { 2000, 2000, 2000 } };
    CHECK(mp_window_pad(&w, m) != 0 && strstr(ct_lasterr(), "4 GiB"), "pad: window too big for a tensor");
    const int64_t bad[3] = { 16, 32, 30 };
    w = (struct mp_window){ .size = { 20, 20, 20 } };
    CHECK(mp_window_pad(&w, bad) != 0 && strstr(ct_lasterr(), "multiple of the stage-4 cell"),
          "pad: multiple not aligned with the stage-4 cell refused");
    const int64_t zero[3] = { 0, 32, 32 };
    CHECK(mp_pad_multiple_check(zero) != 0, "pad: zero multiple refused");
}

static void test_boxes(void) {
    int64_t shape[3] = { 4, 5, 19 };      /* W = 19: 8-byte chunks plus a 3-byte tail */
    uint8_t m[4 * 5 * 19] = { 0 };
#define AT(d, h, w) m[((d) * 5 + (h)) * 19 + (w)]
    AT(1, 2, 3) = 1;
    AT(3, 0, 18) = 1;                      /* in the tail */
    for (int x = 8; x < 16; x++) AT(2, 4, x) = 2;   /* one whole 8-byte chunk (the uniform fast path) */
    AT(1, 1, 16) = 2;
    AT(0, 1, 7) = 3;
    struct mp_box b[4];
    CHECK(mp_boxes(m, shape, 4, b) == 0, "boxes: pass");
    CHECK(b[0].n == 2 && same3(b[0].lo, 1, 0, 3) && same3(b[0].hi, 3, 2, 18), "boxes: organ 1 across rows");
    CHECK(b[1].n == 9 && same3(b[1].lo, 1, 1, 8) && same3(b[1].hi, 2, 4, 16), "boxes: organ 2, a uniform chunk");
    CHECK(b[2].n == 1 && same3(b[2].lo, 0, 1, 7) && same3(b[2].hi, 0, 1, 7), "boxes: organ 3, one voxel");
    CHECK(b[3].n == 0, "boxes: absent organ has n = 0");
    AT(1, 2, 3) = 5;
    CHECK(mp_boxes(m, shape, 4, b) != 0 && strstr(ct_lasterr(), "mask value 5 at voxel (1,2,3)"),
          "boxes: value above the organ count names the voxel");
#undef AT
}

static void test_copy(void) {
    /* 3x4x5 volume, window offset (1,1,2) size (2,3,3), padded (16,32,32) */
    int64_t shape[3] = { 3, 4, 5 };
    float img[60];
    uint8_t msk[60];
    for (int i = 0; i < 60; i++) img[i] = (float)i, msk[i] = (uint8_t)(i % 3);
    struct mp_window w = { .offset = { 1, 1, 2 }, .size = { 2, 3, 3 }, .padded = { 16, 32, 32 } };
    float *fo = malloc(16 * 32 * 32 * sizeof *fo);
    uint8_t *uo = malloc(16 * 32 * 32), *ua = malloc(16 * 32 * 32);
    mp_window_copy_f32(img, shape, &w, fo);
    mp_window_copy_u8(msk, shape, &w, 2, uo);
    mp_window_copy_u8(msk, shape, &w, 0, ua);
    int ok_f = 1, ok_u = 1, ok_a = 1;
    for (int d = 0; d < 16; d++)
        for (int h = 0; h < 32; h++)
            for (int x = 0; x < 32; x++) {
                int in = d < 2 && h < 3 && x < 3;
                int src = ((1 + d) * 4 + 1 + h) * 5 + 2 + x;
                float ef = in ? img[src] : 0.0f;
                uint8_t eall = in ? msk[src] : 0, ekeep = eall == 2 ? 2 : 0;
                int i = (d * 32 + h) * 32 + x;
                ok_f &= fo[i] == ef;
                ok_u &= uo[i] == ekeep;
                ok_a &= ua[i] == eall;
            }
    CHECK(ok_f, "copy f32: window values, zeros in the end padding");
    CHECK(ok_u, "copy u8: only the kept label survives");
    CHECK(ok_a, "copy u8: keep 0 copies every label");
    free(fo), free(uo), free(ua);
}

static void test_flags(struct tn_arena *a) {
    /* one voxel of label 1 at (5,13,27) in a 16x32x32 window:
     * stage 1 grid 8x8x8, cell (2,3,6) -> (2*8+3)*8+6 = 158
     * stage 2 grid 4x4x4, cell (1,1,3) -> (1*4+1)*4+3 = 23
     * stage 3 grid 2x2x2, cell (0,0,1) -> 1
     * stage 4 grid 1x1x1 -> 0 */
    int64_t dims[3] = { 16, 32, 32 };
    uint8_t *m = calloc(16 * 32 * 32, 1);
    m[(5 * 32 + 13) * 32 + 27] = 1;
    struct mp_flags f;
    CHECK(mp_flags_compute(m, dims, 4, a, &f) == 0, "flags: delta voxel computes");
    int32_t t[8];
    const int32_t want[4] = { 158, 23, 1, 0 };
    for (int s = 0; s < 4; s++)
        CHECK(mp_flags_list(&f, s, 1, t) == 1 && t[0] == want[s], "flags: delta voxel, stage %d token %d", s + 1,
              want[s]);
    CHECK(mp_flags_list(&f, 0, 2, NULL) == 0 && f.voxels[1] == 1 && f.voxels[0] == 16 * 32 * 32 - 1,
          "flags: other labels empty, voxel counts");
    uint8_t packed[64];
    mp_flags_pack(&f, 0, 1, packed);       /* 512 tokens: byte 158/8 = 19, bit 158%8 = 6 */
    int pack_ok = packed[19] == 0x40;
    for (int i = 0; i < 64; i++) pack_ok &= i == 19 || packed[i] == 0;
    CHECK(pack_ok, "flags: bit-packed, little bit order");
    free(m);

    /* 32x64x64 window: label 1 at the origin, label 2 at the last voxel.
     * stage 1 grid 16x16x16: tokens 0 and 4095; stage 4 grid 2x2x2: tokens 0 and 7 */
    int64_t d2[3] = { 32, 64, 64 };
    m = calloc(32 * 64 * 64, 1);
    m[0] = 1;
    m[32 * 64 * 64 - 1] = 2;
    CHECK(mp_flags_compute(m, d2, 2, a, &f) == 0, "flags: corners compute");
    CHECK(mp_flags_list(&f, 0, 1, t) == 1 && t[0] == 0 && mp_flags_list(&f, 0, 2, t) == 1 && t[0] == 4095,
          "flags: corners at stage 1");
    CHECK(mp_flags_list(&f, 3, 1, t) == 1 && t[0] == 0 && mp_flags_list(&f, 3, 2, t) == 1 && t[0] == 7,
          "flags: corners at stage 4");
    /* whole window label 2: every token of every stage */
    memset(m, 2, 32 * 64 * 64);
    CHECK(mp_flags_compute(m, d2, 2, a, &f) == 0, "flags: full window computes");
    int all = 1;
    for (int s = 0; s < 4; s++) all &= mp_flags_list(&f, s, 2, NULL) == f.n_tokens[s];
    CHECK(all && f.n_tokens[0] == 16 * 16 * 16 && f.n_tokens[3] == 8, "flags: full window flags every token");
    /* label 200: the 4th 64-bit word of each cell; one voxel at (17,40,3):
     * stage 1 grid 16x16x16, cell (8,10,0) -> (8*16+10)*16 = 2208 */
    memset(m, 0, 32 * 64 * 64);
    m[(17 * 64 + 40) * 64 + 3] = 200;
    m[(17 * 64 + 40) * 64 + 2] = 63;
    CHECK(mp_flags_compute(m, d2, 200, a, &f) == 0 && f.n_words == 4, "flags: 200 labels use 4 words");
    CHECK(mp_flags_list(&f, 0, 200, t) == 1 && t[0] == 2208 && mp_flags_list(&f, 0, 63, t) == 1 && t[0] == 2208 &&
              mp_flags_list(&f, 0, 64, NULL) == 0 && mp_flags_list(&f, 0, 199, NULL) == 0,
          "flags: labels 63 and 200 in one cell, neighbours unset");
    CHECK(mp_flags_compute(m, d2, 100, a, &f) != 0 && strstr(ct_lasterr(), "mask value 200"),
          "flags: value above the label count refused");
    int64_t bad[3] = { 16, 32, 33 };
    CHECK(mp_flags_compute(m, bad, 4, a, &f) != 0 && strstr(ct_lasterr(), "not a multiple"),
          "flags: unpadded window refused");
    free(m);
}

static void test_boundary(void) {
    /* 16x32x32 window, margin 2: planes d in {0,1,14,15}, rows h in {0,1,30,31},
     * columns w in {0,1,30,31} are the border */
    int64_t dims[3] = { 16, 32, 32 };
    uint8_t *m = calloc(16 * 32 * 32, 1);
#define AT(d, h, w) m[((d) * 32 + (h)) * 32 + (w)]
    AT(1, 16, 16) = 1;                     /* d = 1: border */
    AT(8, 16, 16) = 2;                     /* centre */
    AT(8, 30, 16) = 3;                     /* h = 30: border */
    AT(8, 16, 2) = 4;                      /* w = 2: just inside */
    AT(8, 16, 31) = 5;                     /* w = 31: border */
    AT(14, 16, 16) = 6;                    /* d = 14 = 16 - 2: border */
    AT(13, 2, 29) = 7;                     /* inside on every axis */
    uint8_t touch[MP_MAX_ORGANS + 1];
    mp_boundary(m, dims, 2, touch);
    CHECK(touch[1] && !touch[2] && touch[3] && !touch[4] && touch[5] && touch[6] && !touch[7] && !touch[0],
          "boundary: margin 2 on each face");
    mp_boundary(m, dims, 1, touch);        /* margin 1: only 0 and n-1 */
    CHECK(!touch[1] && !touch[3] && touch[5] && !touch[6], "boundary: margin 1");
    mp_boundary(m, dims, 3, touch);        /* margin 3: w = 2 and h = 2, 29 are border too */
    CHECK(touch[4] && touch[7] && !touch[2], "boundary: margin 3");
#undef AT
    free(m);
}

static void test_rules(void) {
    /* centre organ 1.  organ 0: no voxels anywhere; organ 1: centre, touches and 60% -> kept;
     * organ 2: touches -> boundary; organ 3: 9/10 = 0.9 is not < 0.9 -> kept;
     * organ 4: 8/10 -> incomplete; organ 5: voxels elsewhere only -> not in window;
     * organ 6: touches and 1/2 -> boundary (boundary is tested first) */
    const int64_t whole[7] = { 0, 100, 50, 10, 10, 5, 2 };
    const int64_t win[7] = { 0, 60, 50, 9, 8, 0, 1 };
    uint8_t touch[MP_MAX_ORGANS + 1] = { 0 };
    touch[2] = touch[3] = touch[7] = 1;   /* labels = organ + 1 */
    enum mp_reason r[7];
    mp_rules(7, 1, win, whole, touch, 0.9, r);
    CHECK(r[0] == MP_NO_VOXELS && r[1] == MP_KEPT && r[2] == MP_BOUNDARY && r[3] == MP_KEPT &&
              r[4] == MP_INCOMPLETE && r[5] == MP_NOT_IN_WINDOW && r[6] == MP_BOUNDARY,
          "rules: reasons of the reference's order");
    mp_rules(7, -1, win, whole, touch, 0.9, r);
    CHECK(r[1] == MP_BOUNDARY, "rules: without a centre organ nobody is exempt");
    mp_rules(7, 1, win, whole, touch, 0.95, r);
    CHECK(r[3] == MP_INCOMPLETE, "rules: threshold 0.95 drops 0.9");
    CHECK(!strcmp(mp_reason_name(MP_NOT_IN_WINDOW), "not in window") && !strcmp(mp_reason_name(MP_KEPT), "kept"),
          "rules: reason names");
}

int main(void) {
    struct tn_arena *a = tn_arena_new(0);
    test_place();
    test_pad();
    test_boxes();
    test_copy();
    test_flags(a);
    test_boundary();
    test_rules();
    tn_arena_free(a);
    return check_failures != 0;
}
