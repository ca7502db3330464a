/*
 * nii.c - NIfTI reading and writing (see nii.h for the policy).
 */
#define _GNU_SOURCE
#include "nii.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ct.h"
#include "stream.h"

/* ---- datatypes ---- */

static int dt_to_tn(int dt, enum tn_dtype *out) {
    switch (dt) {
    case DT_UINT8: *out = TN_U8; return 0;
    case DT_INT8: *out = TN_I8; return 0;
    case DT_UINT16: *out = TN_U16; return 0;
    case DT_INT16: *out = TN_I16; return 0;
    case DT_UINT32: *out = TN_U32; return 0;
    case DT_INT32: *out = TN_I32; return 0;
    case DT_UINT64: *out = TN_U64; return 0;
    case DT_INT64: *out = TN_I64; return 0;
    case DT_FLOAT32: *out = TN_F32; return 0;
    case DT_FLOAT64: *out = TN_F64; return 0;
    default: return -1;
    }
}

static int tn_to_dt(enum tn_dtype t) {
    static const int map[TN_DTYPE_COUNT] = {
        [TN_U8] = DT_UINT8,   [TN_I8] = DT_INT8,   [TN_U16] = DT_UINT16, [TN_I16] = DT_INT16,
        [TN_U32] = DT_UINT32, [TN_I32] = DT_INT32, [TN_U64] = DT_UINT64, [TN_I64] = DT_INT64,
        [TN_F32] = DT_FLOAT32, [TN_F64] = DT_FLOAT64,
    };
    return map[t];
}

/* ---- raw file access ---- */

struct filebuf {
    int            fd;               /* open while reading, -1 after */
    const uint8_t *p;                /* gzip files: the whole file, mmap'd; NULL for plain files */
    size_t         n;                /* file size */
    int            gz;
};

/* Open path; gzip files (magic 1f 8b) are mapped whole (populated at once
 * when their data will be inflated: one fault-around pass instead of
 * thousands of faults), plain files are read with pread. */
static int file_open(const char *path, struct filebuf *fb, int populate) {
    memset(fb, 0, sizeof *fb);
    fb->fd = open(path, O_RDONLY);
    if (fb->fd < 0) return ct_seterr("%s", strerror(errno));
    struct stat st;
    if (fstat(fb->fd, &st) != 0) return ct_seterr("%s", strerror(errno));
    if (S_ISDIR(st.st_mode)) return ct_seterr("is a directory");
    if (st.st_size == 0) return ct_seterr("empty file");
    fb->n = (size_t)st.st_size;
    uint8_t magic[2] = { 0, 0 };
    if (pread(fb->fd, magic, 2, 0) < 0) return ct_seterr("read: %s", strerror(errno));
    fb->gz = fb->n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!fb->gz) return 0;
    void *p = mmap(NULL, fb->n, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fb->fd, 0);
    if (p == MAP_FAILED) return ct_seterr("mmap: %s", strerror(errno));
    madvise(p, fb->n, MADV_SEQUENTIAL);
    fb->p = p;
    return 0;
}

static void file_close(struct filebuf *fb) {
    if (fb->p) munmap((void *)fb->p, fb->n);
    if (fb->fd >= 0) close(fb->fd);
    fb->p = NULL;
    fb->fd = -1;
}

/* pread exactly n bytes at off (or fewer at the end of the file); returns the count or -1. */
static int64_t pread_all(int fd, void *buf, size_t n, int64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)buf + got, n - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - got,
                          (off_t)(off + (int64_t)got));
        if (k < 0) {
            if (errno == EINTR) continue;
            return ct_seterr("read: %s", strerror(errno));
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    return (int64_t)got;
}

/* Inflate the first `want` bytes of a gzip stream (handles multi-member files)
 * with zlib.  Returns the number of bytes produced (< want when the stream
 * ends early), or -1 + lasterr on corrupt data. */
static int64_t gz_inflate_prefix(const struct filebuf *fb, uint8_t *out, size_t want) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) return ct_seterr("zlib init failed");
    const uint8_t *in = fb->p;
    size_t in_left = fb->n, produced = 0;
    while (produced < want) {
        z.next_in = (Bytef *)in;
        z.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        z.next_out = out + produced;
        size_t room = want - produced;
        z.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt ai = z.avail_in, ao = z.avail_out;
        int rc = inflate(&z, Z_NO_FLUSH);
        in += ai - z.avail_in;
        in_left -= ai - z.avail_in;
        produced += ao - z.avail_out;
        if (rc == Z_STREAM_END) {
            /* another gzip member may follow */
            if (in_left >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            break;
        }
        if (rc == Z_BUF_ERROR && in_left == 0) break;   /* input ran out: truncated */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            inflateEnd(&z);
            return ct_seterr("corrupt gzip data (%s)", z.msg ? z.msg : "inflate failed");
        }
    }
    inflateEnd(&z);
    return (int64_t)produced;
}

/* Decompress into out[0..want) with libdeflate (all members), falling back to
 * zlib.  Fails unless exactly `want` bytes are available (extra bytes after
 * them are ignored). */
static int gz_inflate_all(const struct filebuf *fb, uint8_t *out, size_t want) {
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) return ct_seterr("out of memory");
    const uint8_t *in = fb->p;
    size_t in_left = fb->n, produced = 0;
    int ok = 0;
    while (in_left > 0 && produced < want) {
        size_t in_used = 0, out_n = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(d, in, in_left, out + produced, want - produced, &in_used, &out_n);
        if (r != LIBDEFLATE_SUCCESS) break;       /* let zlib produce the precise diagnosis */
        produced += out_n;
        in += in_used;
        in_left -= in_used;
        if (produced == want) ok = 1;
    }
    libdeflate_free_decompressor(d);
    if (ok) return 0;
    /* Slow path: more data than `want` in one member, trailing garbage, or a
     * damaged stream.  zlib tells truncation from corruption. */
    int64_t got = gz_inflate_prefix(fb, out, want);
    if (got < 0) return -1;
    if ((size_t)got < want)
        return ct_seterr("truncated file (gzip data ends after %lld of the %zu bytes the header promises)",
                         (long long)got, want);
    return 0;
}

/* ---- header decoding ---- */

/* The header fields the geometry and scaling come from, as stored (NIfTI-1
 * floats widened exactly to double). */
struct raw_hdr {
    int     version;
    double  pixdim[8];
    double  quatern[3];              /* b, c, d */
    double  qoffset[3];
    double  srow[3][4];
    int     qform_code, sform_code;
    double  scl_slope, scl_inter;
    int64_t dim[8];
    int     datatype;
    int64_t vox_offset;
};

/* nibabel's header fixes applied at load (check_fix): an xform code outside
 * 0..5 becomes 0, a qfac (pixdim[0]) other than -1/1 becomes 1, a zero
 * pixdim[1..3] becomes 1 and a negative one its absolute value. */
static int fix_code(int c) { return c >= 0 && c <= 5 ? c : 0; }

/* nibabel's get_qform(): the quaternion completed with a = sqrt(1 - b²-c²-d²)
 * and turned into a rotation in long double (numpy's longdouble is x87
 * extended precision, as here), scaled by the (fixed) pixdims with qfac on
 * the third column, then rounded to double. */
static int qform_nibabel(const struct raw_hdr *h, const double pix[4], double A[4][4]) {
    long double x = h->quatern[0], y = h->quatern[1], z = h->quatern[2];
    long double w2 = 1.0L - (((0.0L + x * x) + y * y) + z * z);
    long double thresh = h->version == 1 ? -3.0L * 1.1920928955078125e-07L : -3.0L * 2.220446049250313e-16L;
    long double w;
    if (w2 < 0) {
        if (w2 < thresh) return ct_seterr("invalid qform quaternion (b²+c²+d² > 1)");
        w = 0;
    } else {
        w = sqrtl(w2);
    }
    long double R[3][3];
    long double nq = w * w + x * x + y * y + z * z;
    if (nq < 2.220446049250313e-16L) {
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) R[r][c] = r == c;
    } else {
        long double s = 2.0L / nq;
        long double X = x * s, Y = y * s, Z = z * s;
        long double wX = w * X, wY = w * Y, wZ = w * Z;
        long double xX = x * X, xY = x * Y, xZ = x * Z;
        long double yY = y * Y, yZ = y * Z, zZ = z * Z;
        long double M[3][3] = { { 1.0L - (yY + zZ), xY - wZ, xZ + wY },
                                { xY + wZ, 1.0L - (xX + zZ), yZ - wX },
                                { xZ - wY, yZ + wX, 1.0L - (xX + yY) } };
        memcpy(R, M, sizeof R);
    }
    /* vox[-1] *= qfac (in the header's precision: exact, qfac is +-1) */
    long double vox[3] = { pix[1], pix[2], pix[3] * pix[0] };
    memset(A, 0, 16 * sizeof(double));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            /* np.dot(R, diag(vox)): 0 + R[r][0]*S[0][c] + R[r][1]*S[1][c] + R[r][2]*S[2][c] */
            long double acc = 0.0L;
            for (int k = 0; k < 3; k++) acc += R[r][k] * (k == c ? vox[c] : 0.0L);
            A[r][c] = (double)acc;
        }
    for (int r = 0; r < 3; r++) A[r][3] = h->qoffset[r];
    A[3][3] = 1;
    return 0;
}

/* The fields NIfTI-1 and NIfTI-2 headers share by name (with different types),
 * copied into raw_hdr. */
#define COPY_GEOMETRY(h, f)                                                                        \
    do {                                                                                           \
        for (int i = 0; i < 8; i++) {                                                              \
            (h).dim[i] = (f).dim[i];                                                               \
            (h).pixdim[i] = (f).pixdim[i];                                                         \
        }                                                                                          \
        (h).quatern[0] = (f).quatern_b, (h).quatern[1] = (f).quatern_c, (h).quatern[2] = (f).quatern_d; \
        (h).qoffset[0] = (f).qoffset_x, (h).qoffset[1] = (f).qoffset_y, (h).qoffset[2] = (f).qoffset_z; \
        for (int c = 0; c < 4; c++) {                                                              \
            (h).srow[0][c] = (f).srow_x[c];                                                        \
            (h).srow[1][c] = (f).srow_y[c];                                                        \
            (h).srow[2][c] = (f).srow_z[c];                                                        \
        }                                                                                          \
        (h).qform_code = (f).qform_code, (h).sform_code = (f).sform_code;                          \
        (h).scl_slope = (f).scl_slope, (h).scl_inter = (f).scl_inter;                              \
        (h).datatype = (f).datatype;                                                               \
    } while (0)

/* Decode a header at p (>= 540 bytes available or the whole file). */
static int header_decode(const uint8_t *p, size_t n, struct nii_image *im, int64_t *vox_offset) {
    memset(im, 0, sizeof *im);
    if (n < 348) return ct_seterr("not a NIfTI file (only %zu bytes)", n);
    int32_t sz;
    memcpy(&sz, p, 4);
    int swap = 0;
    struct raw_hdr h;
    memset(&h, 0, sizeof h);
    if (sz == 348 || sz == 0x5c010000) {              /* NIfTI-1 (or ANALYZE) */
        swap = sz != 348;
        nifti_1_header f;
        memcpy(&f, p, sizeof f);
        if (swap) nifti_swap_as_nifti1(&f);
        if (memcmp(f.magic, "n+1", 4) != 0) {
            if (memcmp(f.magic, "ni1", 4) == 0)
                return ct_seterr("NIfTI-1 header/image pair (.hdr/.img) is not supported; convert to .nii");
            return ct_seterr("not a NIfTI file (ANALYZE 7.5 or bad magic)");
        }
        h.version = 1;
        COPY_GEOMETRY(h, f);
        if (!(f.vox_offset >= 0 && f.vox_offset < 1e15)) return ct_seterr("invalid vox_offset %g", f.vox_offset);
        h.vox_offset = (int64_t)f.vox_offset;
    } else if (sz == 540 || sz == 0x1c020000) {       /* NIfTI-2 */
        if (n < 540) return ct_seterr("truncated file (NIfTI-2 header needs 540 bytes, got %zu)", n);
        swap = sz != 540;
        nifti_2_header f;
        memcpy(&f, p, sizeof f);
        if (swap) nifti_swap_as_nifti2(&f);
        if (memcmp(f.magic, "n+2", 4) != 0)
            return ct_seterr(memcmp(f.magic, "ni2", 4) == 0 ? "NIfTI-2 header/image pair is not supported"
                                                             : "not a NIfTI-2 file (bad magic)");
        h.version = 2;
        COPY_GEOMETRY(h, f);
        if (f.vox_offset < 0) return ct_seterr("invalid vox_offset %lld", (long long)f.vox_offset);
        h.vox_offset = f.vox_offset;
    } else {
        return ct_seterr("not a NIfTI file (header size field is %d, expected 348 or 540)", (int)sz);
    }
    im->version = h.version;
    im->datatype = h.datatype;
    im->ndim = (int)h.dim[0];
    for (int i = 0; i < 8; i++) {
        im->dim[i] = h.dim[i];
        im->pixdim_raw[i] = h.pixdim[i];
    }
    im->scl_slope = h.scl_slope;
    im->scl_inter = h.scl_inter;
    im->qform_code_raw = h.qform_code;
    im->sform_code_raw = h.sform_code;
    im->qform_code = fix_code(h.qform_code);
    im->sform_code = fix_code(h.sform_code);
    im->big_endian = swap;                            /* host is little-endian (x86-64, arm64) */
    *vox_offset = h.vox_offset;

    if (im->ndim < 1 || im->ndim > 7) return ct_seterr("invalid dim[0] = %d", im->ndim);
    for (int i = 1; i <= im->ndim; i++)
        if (im->dim[i] < 1) return ct_seterr("invalid dim[%d] = %lld", i, (long long)im->dim[i]);
    enum tn_dtype t;
    if (dt_to_tn(im->datatype, &t) != 0)
        return ct_seterr("unsupported NIfTI datatype %d (%s)", im->datatype, nifti_datatype_string(im->datatype));
    if (*vox_offset < (im->version == 1 ? 348 : 540)) *vox_offset = im->version == 1 ? 352 : 544;

    /* nibabel's load-time fixes, then its get_best_affine */
    double pix[8];
    memcpy(pix, h.pixdim, sizeof pix);
    if (pix[0] != -1 && pix[0] != 1) pix[0] = 1;
    for (int a = 1; a <= 3; a++) {
        if (pix[a] == 0) pix[a] = 1;
        else if (pix[a] < 0) pix[a] = -pix[a];
    }
    for (int i = 0; i < 8; i++) im->pixdim[i] = pix[i];
    memset(im->sform, 0, sizeof im->sform);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) im->sform[r][c] = h.srow[r][c];
    im->sform[3][3] = 1;
    int qok = qform_nibabel(&h, pix, im->qform);
    if (im->sform_code != 0) {
        memcpy(im->affine, im->sform, sizeof im->affine);
        im->affine_source = "sform";
    } else if (im->qform_code != 0) {
        if (qok != 0) return -1;
        memcpy(im->affine, im->qform, sizeof im->affine);
        im->affine_source = "qform";
    } else {
        /* shape_zoom_affine(dim[1:4], pixdim[1:4], x_flip=True), 1 for missing axes */
        memset(im->affine, 0, sizeof im->affine);
        for (int a = 0; a < 3; a++) {
            double z = a < im->ndim ? pix[a + 1] : 1.0;
            if (a == 0) z = -z;                       /* ANALYZE x flip */
            double n_a = a < im->ndim ? (double)im->dim[a + 1] : 1.0;
            im->affine[a][a] = z;
            im->affine[a][3] = -((n_a - 1) / 2.0) * z;
        }
        im->affine[3][3] = 1;
        im->affine_source = "pixdim";
    }
    return 0;
}

static int64_t image_nbytes(const struct nii_image *im) {
    enum tn_dtype t;
    dt_to_tn(im->datatype, &t);
    int64_t n = 1;
    for (int i = 1; i <= im->ndim; i++) {
        if (n > INT64_MAX / im->dim[i]) return -1;
        n *= im->dim[i];
    }
    if (n > INT64_MAX / 8) return -1;
    return n * (int64_t)tn_dtype_size(t);
}

/* The bytes a data read needs in its buffer (gzip: header + data, placed so
 * the data is 64-byte aligned; plain: the data). */
size_t nii_read_nbytes(const struct nii_image *im) {
    if (!im->gzip) return (size_t)im->data_nbytes;
    size_t pad = (size_t)((64 - im->vox_offset % 64) % 64);
    return pad + (size_t)im->vox_offset + (size_t)im->data_nbytes;
}

static int read_common(const char *path, struct tn_arena *arena, struct nii_image *im, int with_data, void *buf,
                       size_t cap) {
    struct filebuf fb;
    int rc = -1;
    if (file_open(path, &fb, with_data) != 0) goto done;
    uint8_t hdr[544];
    size_t hn;
    if (fb.gz) {
        int64_t got = gz_inflate_prefix(&fb, hdr, sizeof hdr);
        if (got < 0) goto done;
        hn = (size_t)got;
    } else {
        int64_t got = pread_all(fb.fd, hdr, sizeof hdr, 0);
        if (got < 0) goto done;
        hn = (size_t)got;
    }
    int64_t vox_offset = 0;
    if (header_decode(hdr, hn, im, &vox_offset) != 0) goto done;
    im->file_nbytes = (int64_t)fb.n;
    im->gzip = fb.gz;
    im->vox_offset = vox_offset;
    double slope_, inter_;
    if (nii_scaling(im, &slope_, &inter_) < 0) goto done;
    int64_t nbytes = image_nbytes(im);
    if (nbytes < 0) {
        ct_seterr("image size overflows");
        goto done;
    }
    im->data_nbytes = nbytes;
    /* Refuse a header that promises more than the file can hold before any memory is
     * committed for it: a plain file must contain it all; deflate expands at most
     * 1032:1, so no gzip file of n bytes holds more than 1032 n. */
    if (vox_offset > INT64_MAX / 2 || nbytes > INT64_MAX / 2 ||
        (!fb.gz && (uint64_t)(vox_offset + nbytes) > fb.n)) {
        /* the sum in unsigned: both may be near INT64_MAX here */
        ct_seterr("truncated file (%zu bytes; the header promises %llu)", fb.n,
                  (unsigned long long)vox_offset + (unsigned long long)nbytes);
        goto done;
    }
    if (fb.gz && (uint64_t)(vox_offset + nbytes) / 1032 > fb.n + 1024) {
        ct_seterr("truncated or corrupt file (the header promises %lld bytes, more than a gzip file of %zu bytes "
                  "can hold)", (long long)(vox_offset + nbytes), fb.n);
        goto done;
    }
    if (!with_data) {
        rc = 0;
        goto done;
    }
    size_t need = nii_read_nbytes(im);
    if (buf && cap < need) {
        ct_seterr("the file changed while being read (needs %zu bytes, %zu reserved)", need, cap);
        goto done;
    }
    /* C-order tensor: reverse the NIfTI dims */
    int64_t shape[TN_MAX_DIMS];
    for (int i = 0; i < im->ndim; i++) shape[i] = im->dim[im->ndim - i];
    enum tn_dtype t;
    dt_to_tn(im->datatype, &t);
    uint8_t *base = buf ? buf : tn_arena_alloc(arena, need);
    uint8_t *data;
    if (fb.gz) {
        /* decompress header + data into one buffer placed so the data is 64-byte aligned */
        size_t pad = need - (size_t)vox_offset - (size_t)nbytes;
        if (gz_inflate_all(&fb, base + pad, (size_t)vox_offset + (size_t)nbytes) != 0) goto done;
        data = base + pad + vox_offset;
    } else {
        int64_t got = pread_all(fb.fd, base, (size_t)nbytes, vox_offset);
        if (got < 0) goto done;
        if (got < nbytes) {
            ct_seterr("truncated file (%zu bytes; the header promises %lld)", fb.n, (long long)(vox_offset + nbytes));
            goto done;
        }
        data = base;
    }
    im->data = tn_arena_alloc(arena, sizeof *im->data);
    memset(im->data, 0, sizeof *im->data);
    im->data->data = data;
    im->data->dtype = t;
    im->data->ndim = im->ndim;
    for (int i = 0; i < im->ndim; i++) im->data->shape[i] = shape[i];
    tn_set_contiguous(im->data);
    snprintf(im->data->name, sizeof im->data->name, "image");
    if (im->big_endian && tn_dtype_size(t) > 1)
        nifti_swap_Nbytes(tn_numel(im->data), (int)tn_dtype_size(t), im->data->data);
    rc = 0;
done:
    file_close(&fb);
    if (rc != 0) im->data = NULL;
    return rc;
}

int nii_read(const char *path, struct tn_arena *arena, struct nii_image *im) {
    return read_common(path, arena, im, 1, NULL, 0);
}

int nii_read_into(const char *path, struct tn_arena *arena, struct nii_image *im, void *buf, size_t cap) {
    return read_common(path, arena, im, 1, buf, cap);
}

int nii_read_header(const char *path, struct nii_image *im) { return read_common(path, NULL, im, 0, NULL, 0); }

int nii_scaling(const struct nii_image *im, double *slope, double *inter) {
    double s = im->scl_slope, b = im->scl_inter;
    *slope = 1, *inter = 0;
    if (!isfinite(s) || s == 0) return 0;
    if (!isfinite(b)) return ct_seterr("invalid scl_inter %g with scl_slope %g", b, s);
    if (s == 1 && b == 0) return 0;
    *slope = s, *inter = b;
    return 1;
}

int nii_has_scaling(const struct nii_image *im) {
    double s, b;
    return nii_scaling(im, &s, &b) == 1;
}

struct tn_tensor *nii_scaled_f32(struct tn_arena *arena, const struct nii_image *im) {
    struct tn_tensor *out = tn_new(arena, TN_F32, im->data->ndim, im->data->shape, "image");
    int64_t n = tn_numel(out);
    float *o = out->data;
    double s, b;
    if (nii_scaling(im, &s, &b) < 0) s = 1, b = 0;   /* callers check nii_scaling first */
    for (int64_t i = 0; i < n; i++) o[i] = (float)(tn_get(im->data, i) * s + b);
    return out;
}

void nii_spacing_c(const struct nii_image *im, int norm, double sp[3]) {
    for (int i = 0; i < 3; i++) {              /* NIfTI axis i = C axis 2 - i */
        double s = fabs(im->affine[i][i]);
        if (norm)
            s = sqrt(im->affine[0][i] * im->affine[0][i] + im->affine[1][i] * im->affine[1][i] +
                     im->affine[2][i] * im->affine[2][i]);
        sp[2 - i] = s;
    }
}

int nii_same_grid(const struct nii_image *a, const struct nii_image *b, char *why, size_t n) {
    for (int i = 1; i <= 3; i++)
        if (a->dim[i] != b->dim[i]) {
            snprintf(why, n, "shape %lldx%lldx%lld vs %lldx%lldx%lld", (long long)b->dim[1], (long long)b->dim[2],
                     (long long)b->dim[3], (long long)a->dim[1], (long long)a->dim[2], (long long)a->dim[3]);
            return 0;
        }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (fabs(a->affine[r][c] - b->affine[r][c]) > 1e-4 * (1 + fabs(a->affine[r][c]))) {
                snprintf(why, n, "affine[%d][%d] %g vs %g", r, c, b->affine[r][c], a->affine[r][c]);
                return 0;
            }
    return 1;
}

void nii_squeeze_3d(struct tn_tensor *t) {
    while (t->ndim > 3 && t->shape[0] == 1) {
        memmove(t->shape, t->shape + 1, (size_t)(t->ndim - 1) * sizeof t->shape[0]);
        t->ndim--;
    }
    tn_set_contiguous(t);
}

void nii_meta_header(struct rec *r, const char *key, const struct nii_image *im) {
    struct rec_mp m = { 0 };
    rec_mp_map(&m, 7);
    rec_mp_str(&m, "version");
    rec_mp_i64(&m, im->version);
    rec_mp_str(&m, "datatype");
    rec_mp_i64(&m, im->datatype);
    rec_mp_str(&m, "affine_source");
    rec_mp_str(&m, im->affine_source);
    rec_mp_str(&m, "qform_code");
    rec_mp_i64(&m, im->qform_code);
    rec_mp_str(&m, "sform_code");
    rec_mp_i64(&m, im->sform_code);
    rec_mp_str(&m, "scl_slope");
    rec_mp_f64(&m, im->scl_slope);
    rec_mp_str(&m, "scl_inter");
    rec_mp_f64(&m, im->scl_inter);
    rec_meta_set_mp(r, key, &m);
}

void nii_affine_flip_axes(const double in[4][4], double out[4][4]) {
    double t[4][4];
    for (int r = 0; r < 4; r++) {
        t[r][0] = in[r][2];
        t[r][1] = in[r][1];
        t[r][2] = in[r][0];
        t[r][3] = in[r][3];
    }
    memcpy(out, t, sizeof t);
}

/* ---- writing ---- */

/* Append one gzip member holding p[0..n) to the file. */
static int gz_member(int fd, struct libdeflate_compressor *c, const void *p, size_t n, uint8_t **buf,
                     size_t *cap) {
    size_t bound = libdeflate_gzip_compress_bound(c, n);
    if (bound > *cap) {
        free(*buf);
        *buf = ct_xmalloc(bound);
        *cap = bound;
    }
    size_t z = libdeflate_gzip_compress(c, p, n, *buf, *cap);
    if (z == 0) return ct_seterr("gzip compression failed");
    return ct_write_all(fd, *buf, z);
}

int nii_write(const char *path, const struct tn_tensor *t, const double affine[4][4], int gzip_level) {
    if (t->ndim < 1 || t->ndim > 7) return ct_seterr("cannot write a %d-D tensor as NIfTI", t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > 32767) return ct_seterr("dimension %lld too large for NIfTI-1", (long long)t->shape[i]);
    /* nothing our own reader would refuse: an empty axis, a non-finite or degenerate affine */
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 1) {
            char sh[128];
            return ct_seterr("shape %s has an empty axis; NIfTI needs every dimension >= 1", tn_shape_str(t, sh, sizeof sh));
        }
    double A[4][4] = { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } };
    if (affine) memcpy(A, affine, sizeof A);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(A[r][c]) || fabs(A[r][c]) > 3e38)     /* stored as float32 */
                return ct_seterr("affine[%d][%d] = %g is not a finite float32", r, c, A[r][c]);
    for (int c = 0; c < 3; c++)
        if (!(A[0][c] * A[0][c] + A[1][c] * A[1][c] + A[2][c] * A[2][c] > 0))
            return ct_seterr("affine column %d is zero (a voxel size of 0)", c);

    nifti_1_header h;
    memset(&h, 0, sizeof h);
    h.sizeof_hdr = 348;
    h.dim[0] = (short)t->ndim;
    for (int i = 1; i <= 7; i++) h.dim[i] = 1;
    for (int i = 0; i < t->ndim; i++) h.dim[i + 1] = (short)t->shape[t->ndim - 1 - i];
    h.datatype = (short)tn_to_dt(t->dtype);
    h.bitpix = (short)(8 * tn_dtype_size(t->dtype));
    h.vox_offset = 352;
    h.scl_slope = 1;
    h.scl_inter = 0;
    h.xyzt_units = NIFTI_UNITS_MM;
    h.qform_code = NIFTI_XFORM_SCANNER_ANAT;
    h.sform_code = NIFTI_XFORM_SCANNER_ANAT;
    memcpy(h.magic, "n+1", 4);
    for (int r = 0; r < 3; r++) {
        h.srow_x[r] = (float)A[0][r];
        h.srow_y[r] = (float)A[1][r];
        h.srow_z[r] = (float)A[2][r];
    }
    h.srow_x[3] = (float)A[0][3];
    h.srow_y[3] = (float)A[1][3];
    h.srow_z[3] = (float)A[2][3];
    nifti_dmat44 m;
    memcpy(m.m, A, sizeof m.m);
    double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
    nifti_dmat44_to_quatern(m, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
    h.quatern_b = (float)qb;
    h.quatern_c = (float)qc;
    h.quatern_d = (float)qd;
    h.qoffset_x = (float)qx;
    h.qoffset_y = (float)qy;
    h.qoffset_z = (float)qz;
    h.pixdim[0] = (float)qfac;
    h.pixdim[1] = (float)dx;
    h.pixdim[2] = (float)dy;
    h.pixdim[3] = (float)dz;
    for (int i = 4; i <= 7; i++) h.pixdim[i] = 1;
    snprintf(h.descrip, sizeof h.descrip, "ctvis %s", CT_VERSION);

    uint8_t head[352];
    memcpy(head, &h, 348);
    memset(head + 348, 0, 4);                         /* no extensions */

    size_t plen = strlen(path);
    int gz = plen > 3 && !strcmp(path + plen - 3, ".gz");
    struct ct_atomic at;
    if (ct_atomic_open(&at, path) != 0) return -1;
    int rc = 0;
    size_t nb = tn_nbytes(t);
    if (!gz) {
        rc = ct_write_all(at.fd, head, sizeof head);
        if (rc == 0) rc = ct_write_all(at.fd, t->data, nb);
    } else {
        /* one gzip member for the header, then one per 32 MiB chunk: valid
         * gzip (zlib, nibabel, ITK read concatenated members) and bounded memory */
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(gzip_level > 0 ? gzip_level : 1);
        uint8_t *buf = NULL;
        size_t cap = 0;
        rc = c ? gz_member(at.fd, c, head, sizeof head, &buf, &cap) : ct_seterr("out of memory");
        const uint8_t *p = t->data;
        for (size_t off = 0; rc == 0 && off < nb; off += (size_t)32 << 20) {
            size_t k = nb - off < ((size_t)32 << 20) ? nb - off : ((size_t)32 << 20);
            rc = gz_member(at.fd, c, p + off, k, &buf, &cap);
        }
        free(buf);
        libdeflate_free_compressor(c);
    }
    if (rc != 0) {
        ct_prefixerr("%s", path);
        ct_atomic_abort(&at);
        return -1;
    }
    return ct_atomic_commit(&at);
}
