/* fuzz-nifti - the NIfTI-1/2 reader (lib/nii.c), plain and gzip'd. */
#include "fuzz.h"
#include "nii.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1, fdz = -1;
    static const char *path, *pathz;
    static struct tn_arena *a;
    if (fd < 0) {
        path = fuzz_file(".nii", &fd);
        pathz = fuzz_file(".nii.gz", &fdz);
        a = tn_arena_new(0);
    }
    int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    fuzz_put(gz ? fdz : fd, data, size);
    struct nii_image im;
    if (nii_read(gz ? pathz : path, a, &im) == 0) {
        double sp[3], s, b;
        nii_spacing_c(&im, 1, sp);
        nii_spacing_c(&im, 0, sp);
        if (nii_scaling(&im, &s, &b) == 1) (void)nii_scaled_f32(a, &im);
        nii_squeeze_3d(im.data);
        char why[160];
        (void)nii_same_grid(&im, &im, why, sizeof why);
    }
    tn_arena_reset(a);
    return 0;
}
