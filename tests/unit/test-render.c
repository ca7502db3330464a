/* test-render.c - the pieces of lib/render.c and lib/pngio.c that the picture tests do not
 * reach one by one: 4x4 inversion, slice geometry at the edges, the font, the blend rule,
 * the colour map's ends, and PNG output (a file, atomic failure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ct.h"
#include "pngio.h"
#include "render.h"

int main(void) {
    /* inverse of an oblique affine with scale and translation: A @ inv(A) = I within 1e-12 */
    double A[4][4] = { { 0.2, 0, -0.98, 175.5 }, { 0.1, -1, 0, 120 }, { 3.0, 0.05, 0.2, -167 }, { 0, 0, 0, 1 } }, I[4][4];
    CHECK(rn_mat4_inverse(A, I) == 0, "mat4: invertible");
    double err = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double acc = 0;
            for (int k = 0; k < 4; k++) acc += A[i][k] * I[k][j];
            err = fmax(err, fabs(acc - (i == j)));
        }
    CHECK(err < 1e-12, "mat4: A inv(A) = I (max error %.1e)", err);
    double S[4][4] = { { 1, 2, 3, 0 }, { 2, 4, 6, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } };
    CHECK(rn_mat4_inverse(S, I) != 0, "mat4: singular refused");

    /* geometry: 5 slices of 3 mm, 4 x 6 of 1 mm; coronal is 15 x 6 pixels, each slice 3 rows */
    int64_t shape[3] = { 5, 4, 6 };
    double sp[3] = { 3, 1, 1 };
    struct rn_slice s;
    CHECK(rn_slice_init(&s, shape, RN_CORONAL, 2, NULL, sp, 1, 1) == 0 && s.out_h == 15 && s.out_w == 6,
          "slice: coronal 5 x 3 mm -> 15 rows");
    int rows_ok = 1;
    for (int r = 0; r < 15; r++) rows_ok &= s.src_r[r] == r / 3;
    CHECK(rows_ok, "slice: each 3 mm slice fills 3 rows, no flip without an affine");
    rn_slice_free(&s);
    int rc = rn_slice_init(&s, shape, RN_SAGITTAL, 6, NULL, sp, 1, 1);
    CHECK(rc != 0 && !strcmp(ct_lasterr(), "sagittal slice 6 out of range 0..5"), "slice: index out of range (%s)", ct_lasterr());
    rn_slice_free(&s);
    double L[4][4] = { { 0, 0, -1, 0 }, { 0, -1, 0, 0 }, { 3, 0, 0, 0 }, { 0, 0, 0, 1 } };
    CHECK(rn_slice_init(&s, shape, RN_CORONAL, 0, (const double(*)[4])L, NULL, 1, 1) == 0 && s.flip_r && !s.flip_c &&
              s.src_r[0] == 4 && !strcmp(s.letters[0], "S") && !strcmp(s.letters[1], "I") && !strcmp(s.letters[2], "R") &&
              !strcmp(s.letters[3], "L") && s.out_h == 15,
          "slice: LPS-stored coronal is superior-up, right-left, spacing from the affine");
    rn_slice_free(&s);
    CHECK(rn_slice_init(&s, shape, RN_AXIAL, 0, NULL, sp, 0.25, 1) == 0 && s.out_h == 1 && s.out_w == 2,
          "slice: --scale 0.25 shrinks (4 x 6 -> 1 x 2)");
    rn_slice_free(&s);

    /* font and canvas */
    const uint8_t bg[3] = { 0, 0, 0 }, fg[3] = { 255, 255, 255 };
    struct rn_image im;
    rn_image_init(&im, 40, 10, bg);
    int w = rn_text(&im, 1, 1, "1-", fg, 1);
    int lit = 0, outside = 0;
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 40; x++) {
            int on = im.rgb[(y * 40 + x) * 3] == 255;
            lit += on;
            outside += on && (x < 1 || x >= 1 + w || y < 1 || y >= 8);
        }
    CHECK(w == 12 && rn_text_width("1-", 1) == 12 && lit == 10 + 5 && !outside, "font: '1' has 10 pixels, '-' 5, inside the cells");
    rn_image_free(&im);
    uint8_t p[3] = { 100, 0, 255 };
    const uint8_t c[3] = { 200, 255, 0 };
    rn_blend(p, c, 128);
    CHECK(p[0] == 150 && p[1] == 128 && p[2] == 128, "blend: (p (256 - a) + c a + 128) >> 8");
    uint8_t lo[3], hi[3];
    rn_colormap(-1, lo);
    rn_colormap(2, hi);
    CHECK(lo[0] == 68 && lo[1] == 1 && lo[2] == 84 && hi[0] == 253 && hi[1] == 231 && hi[2] == 37, "colormap: clamped ends");

    /* PNG: written, and a failed write leaves nothing */
    char dir[] = "/tmp/test-render.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "png: scratch dir");
    char path[128];
    snprintf(path, sizeof path, "%s/a.png", dir);
    uint8_t rgb[2 * 3 * 3] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9, 1, 2, 3, 4, 5, 6 };
    struct stat st;
    CHECK(png_write_rgb(path, rgb, 3, 2, "test") == 0 && stat(path, &st) == 0 && st.st_size > 60, "png: a 3 x 2 file");
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = { 0 };
    CHECK(f && fread(sig, 1, 8, f) == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8), "png: signature");
    if (f) fclose(f);
    unlink(path);
    snprintf(path, sizeof path, "%s/no/a.png", dir);
    rc = png_write_rgb(path, rgb, 3, 2, NULL);
    CHECK(rc != 0 && strstr(ct_lasterr(), "no/a.png"), "png: unwritable path (%s)", ct_lasterr());
    CHECK(png_write_rgb(path, rgb, 0, 2, NULL) != 0, "png: empty picture refused");
    CHECK(rmdir(dir) == 0, "png: nothing left behind");
    return check_failures != 0;
}
