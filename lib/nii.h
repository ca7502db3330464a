/*
 * nii.h - NIfTI-1/NIfTI-2 volumes <-> ctvis tensors.  The only file that
 * includes <nifti2_io.h>.
 *
 * Reading opens exactly the path it is given (libnifti's own reader prefers a
 * sibling "x.nii" over "x.nii.gz"), inflates gzip with libdeflate (about 3x
 * zlib) and uses libnifti only to decode the header.  Voxels keep their
 * stored type; byte order is made native.  The voxel array is returned in C
 * order, slowest axis first: a 3-D file (nx, ny, nz) becomes [nz, ny, nx],
 * the same bytes as on disk.
 *
 * Geometry policy: nibabel's, exactly (MONAI's NibabelReader and therefore
 * the fVLM preprocessing read geometry through nibabel).  First nibabel's
 * load-time header fixes: an sform/qform code outside 0..5 counts as 0,
 * qfac (pixdim[0]) other than -1/1 counts as 1, a zero pixdim[1..3] as 1 and
 * a negative one as its absolute value (the raw values stay available).
 * Then get_best_affine: the sform when sform_code != 0, else the qform when
 * qform_code != 0 (quaternion completed and rotated in long double as
 * nibabel does, so the affine is bit-identical), else a pixdim-only affine
 * (x flipped, origin at the volume centre).  The affine maps (i, j, k, 1) ->
 * world mm, i = x = the fastest (last C) axis.  libnifti's own decoding
 * differs on the fixes (negative pixdim -> 1, negative codes) and is not used.
 *
 * Scaling: nibabel's get_slope_inter: none when scl_slope is 0 or not finite,
 * or when (slope, inter) = (1, 0); an invalid intercept with a valid slope is
 * an error.  Scaled values are computed in double and rounded to f32, as
 * nibabel (float64) followed by MONAI's cast to float32.
 *
 *     struct nii_image im;
 *     if (nii_read("ct.nii.gz", arena, &im) != 0) ct_die("%s", ct_lasterr());
 *     struct tn_tensor *hu = nii_scaled_f32(arena, &im);  // scl_slope/inter applied
 */
#ifndef CT_NII_H
#define CT_NII_H

#include <stdint.h>

#include "tensor.h"

struct nii_image {
    struct tn_tensor *data;          /* stored dtype, native byte order, C order [.., nz, ny, nx] */
    int         version;             /* 1 or 2 */
    int         datatype;            /* NIfTI DT_* code */
    int         ndim;                /* dim[0] */
    int64_t     dim[8];              /* dim[1..7] = nx, ny, nz, nt, ... */
    double      pixdim[8];           /* after nibabel's fixes (qfac +-1, pixdim[1..3] > 0) */
    double      pixdim_raw[8];       /* as stored */
    double      scl_slope;           /* 0 when the header asks for no scaling */
    double      scl_inter;
    int         qform_code, sform_code;         /* after the fix (outside 0..5 -> 0) */
    int         qform_code_raw, sform_code_raw; /* as stored */
    double      qform[4][4];         /* nibabel's get_qform() (valid when qform_code != 0) */
    double      sform[4][4];         /* srow_x/y/z (valid when sform_code != 0) */
    double      affine[4][4];        /* the one the policy picks */
    const char *affine_source;       /* "sform", "qform" or "pixdim" */
    int         big_endian;          /* file was big-endian */
    int64_t     file_nbytes;         /* size on disk */
    int         gzip;                /* file is gzip-compressed */
    int64_t     vox_offset;          /* voxel data offset in the (inflated) file */
    int64_t     data_nbytes;         /* voxel bytes */
};

/* Read a whole .nii or .nii.gz (NIfTI-1 or -2).  Voxel data from arena.
 * Returns 0, or -1 with lasterr ("truncated file: ...", "not a NIfTI file ..."). */
int nii_read(const char *path, struct tn_arena *arena, struct nii_image *im);

/* Header only (im->data stays NULL): cheap, even for .nii.gz. */
int nii_read_header(const char *path, struct nii_image *im);

/* Same as nii_read, with the voxels in a caller buffer of cap >= nii_read_nbytes(hdr)
 * bytes (64-byte aligned), hdr coming from nii_read_header of the same file; only
 * the tensor struct comes from arena.  Lets a caller reuse (and prefault) one
 * buffer across files.  im->data->data points inside buf. */
int nii_read_into(const char *path, struct tn_arena *arena, struct nii_image *im, void *buf, size_t cap);
size_t nii_read_nbytes(const struct nii_image *hdr);

/* 1 when the header asks for intensity scaling (slope not 0/NaN and not 1/0). */
int nii_has_scaling(const struct nii_image *im);

/* nibabel's scale factors: 1 and *slope, *inter set when scaling applies, 0
 * when it does not (slope 1, inter 0), -1 + lasterr for a finite non-zero
 * slope with a NaN/inf intercept (nibabel refuses those files). */
int nii_scaling(const struct nii_image *im, double *slope, double *inter);

/* The voxels as f32 with scl_slope/scl_inter applied (computed in double). */
struct tn_tensor *nii_scaled_f32(struct tn_arena *arena, const struct nii_image *im);

/* Voxel size per C axis [z, y, x] of the chosen affine: |A[i,i]| (norm = 0, what
 * the fVLM resize step reads; wrong for oblique volumes) or the column norms
 * (norm = 1, the true voxel size). */
void nii_spacing_c(const struct nii_image *im, int norm, double sp[3]);

/* 1 when b lies on a's grid: the same first three dims and affines equal within
 * 1e-4 (relative); else 0 with the first difference described in why. */
int nii_same_grid(const struct nii_image *a, const struct nii_image *b, char *why, size_t n);

/* Drop leading C-order dims of size 1 beyond three ((x, y, z, 1) files are 3-D). */
void nii_squeeze_3d(struct tn_tensor *t);

/* The header facts ctvis records keep, as a msgpack map value for meta:
 * {version, datatype, affine_source, qform_code, sform_code, scl_slope, scl_inter}. */
struct rec;
void nii_meta_header(struct rec *r, const char *key, const struct nii_image *im);

/* Reverse the first three columns: converts between the NIfTI affine, which
 * takes (i, j, k) = (last, middle, first C axis), and the C-order affine that
 * ctvis records carry, which takes (a0, a1, a2) in tensor order.  Its own inverse. */
void nii_affine_flip_axes(const double in[4][4], double out[4][4]);

/* Write a 1-D to 7-D tensor as NIfTI-1 (".nii" or ".nii.gz", gzip level 1..9,
 * default 1 when level is 0).  The C-order tensor [.., k, j, i] is stored as
 * NIfTI (i, j, k, ..).  affine may be NULL (identity).  sform and qform are
 * both set (code 1, scanner).  Written to a temporary file and renamed, so a
 * failed write leaves nothing behind.  0, or -1 + lasterr. */
int nii_write(const char *path, const struct tn_tensor *t, const double affine[4][4], int gzip_level);

#endif
