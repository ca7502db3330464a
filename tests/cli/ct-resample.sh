# ct-resample: the phantom end to end, outputs (stream, NIfTI, manifest, many files), the
# built-in organ set = pipelines/organs-ct-rate.yaml, and every bad-input class of issue 3:
# exit 1, nothing on stdout, one stderr line, nothing half-written on disk.
source tests/cli/lib.sh

crc() {  # crc TENSOR STREAM -> the crc32 ct-ls prints for that tensor of record 0
    ct-ls --crc -S -r 0 -t "$1" "$2" | sed -n 's/.*crc32=\([0-9a-f]*\).*/\1/p'
}

# ---- the phantom, end to end ----
ct-phantom -o "$T/ph" >/dev/null
check "phantom: resample" ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" -o "$T/ph.ctv"
ct-ls "$T/ph.ctv" >"$T/ph.txt"
if grep -q 'image *f32 *\[112,256,352\].*min=0 max=1' "$T/ph.txt" && grep -q 'mask *u8 *\[112,256,352\].*max=4' "$T/ph.txt" \
    && grep -q 'schema=ct.case/1' "$T/ph.txt" && grep -q 'organs = \["lung", "heart", "esophagus", "aorta"\]' "$T/ph.txt"; then
    ok "phantom: image f32 and mask u8 [112,256,352], four organs"
else notok "phantom: image f32 and mask u8 [112,256,352], four organs" "$(head -c 600 "$T/ph.txt")"; fi

# the built-in organ set is the shipped file, byte for byte, and using the file changes nothing
ct-resample --print-organs >"$T/organs.yaml"
same "organs: --print-organs = pipelines/organs-ct-rate.yaml" "$T/organs.yaml" pipelines/organs-ct-rate.yaml
ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" --organs pipelines/organs-ct-rate.yaml -o "$T/ph2.ctv"
if [ "$(crc mask "$T/ph.ctv")" = "$(crc mask "$T/ph2.ctv")" ] && [ -n "$(crc mask "$T/ph.ctv")" ]; then
    ok "organs: --organs pipelines/organs-ct-rate.yaml = built-in"
else notok "organs: --organs pipelines/organs-ct-rate.yaml = built-in" "mask crc differs"; fi

# NIfTI files for viewers: same voxels as the record
check "nifti: --write-nifti" ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" --write-nifti "$T/view" -o "$T/ph3.ctv"
ct-import "$T/view/ct_image.nii.gz" >"$T/vi.ctv" && ct-import "$T/view/ct_mask.nii.gz" >"$T/vm.ctv"
if [ "$(crc image "$T/vi.ctv")" = "$(crc image "$T/ph3.ctv")" ] && [ "$(crc image "$T/vm.ctv")" = "$(crc mask "$T/ph3.ctv")" ]; then
    ok "nifti: ID_image.nii.gz and ID_mask.nii.gz hold the record's voxels"
else notok "nifti: ID_image.nii.gz and ID_mask.nii.gz hold the record's voxels" "crc differs"; fi
check "nifti: --nifti-gzip 0 writes .nii" ct-resample "$T/ph/ct.nii.gz" --write-nifti "$T/view0" --nifti-gzip 0 -o /dev/null
if [ -f "$T/view0/ct_image.nii" ] && [ ! -e "$T/view0/ct_mask.nii" ]; then ok "nifti: .nii without a mask when there is no label map"
else notok "nifti: .nii without a mask when there is no label map" "$(ls "$T/view0")"; fi

# many cases: files, and a manifest with ids and an unlabelled case
cp "$T/ph/ct.nii.gz" "$T/other.nii.gz"
ct-resample "$T/ph/ct.nii.gz" "$T/other.nii.gz" | ct-ls >"$T/two.txt"
if [ "$(grep -c '^record' "$T/two.txt")" = 2 ] && grep -q 'id=other ' "$T/two.txt" && ! grep -q 'mask' "$T/two.txt" \
    && grep -q 'cropped = false' "$T/two.txt"; then ok "many files: one record each, no mask, no crop"
else notok "many files: one record each, no mask, no crop" "$(head -c 400 "$T/two.txt")"; fi
ct-resample "$T/ph/ct.nii.gz" "$T/other.nii.gz" -o /dev/null 2>"$T/nolab.err"
if [ "$(wc -l <"$T/nolab.err")" = 1 ] && grep -q '^ct-resample: ct: no label map: resampled, windowed and padded, not cropped' "$T/nolab.err"; then
    ok "many files: says once that cases without a label map are not cropped"
else notok "many files: says once that cases without a label map are not cropped" "$(cat "$T/nolab.err")"; fi
printf '# ct\tlabel\tid\n%s\t%s\tcase_a\n\n%s\t-\tcase_b\n' "$T/ph/ct.nii.gz" "$T/ph/seg.nii.gz" "$T/other.nii.gz" >"$T/m.tsv"
ct-resample --manifest "$T/m.tsv" | ct-ls >"$T/man.txt"
if grep -q 'record 0  id=case_a' "$T/man.txt" && grep -q 'record 1  id=case_b' "$T/man.txt" \
    && [ "$(grep -c 'mask ' "$T/man.txt")" = 1 ]; then ok "manifest: tab-separated CT, LABEL ('-' = none), ID"
else notok "manifest: tab-separated CT, LABEL ('-' = none), ID" "$(head -c 400 "$T/man.txt")"; fi
printf '%s %s\n' "$T/ph/ct.nii.gz" "$T/ph/seg.nii.gz" >"$T/m2.txt"
ct-resample -m - <"$T/m2.txt" | ct-ls >"$T/man2.txt"
if grep -q 'record 0  id=ct ' "$T/man2.txt" && grep -q 'mask ' "$T/man2.txt"; then ok "manifest: space-separated, from stdin, id from the file name"
else notok "manifest: space-separated, from stdin, id from the file name" "$(head -c 300 "$T/man2.txt")"; fi

# ---- bad inputs ----
"$PYTHON" - "$T" <<'EOF'
import sys, os, numpy as np, nibabel as nib
T = sys.argv[1]
rng = np.random.default_rng(3)
aff = np.diag([-0.8, -0.8, 2.5, 1.0])
ct = rng.integers(-1000, 1000, (40, 36, 12)).astype(np.int16)
seg = np.zeros(ct.shape, np.uint8); seg[10:30, 8:28, 2:10] = 11; seg[18:22, 16:20, 4:8] = 51
def save(name, data, affine=aff, **hdr):
    img = nib.Nifti1Image(data, affine)
    for k, v in hdr.items():
        img.header[k] = v
    nib.save(img, os.path.join(T, name))
save("ok.nii.gz", ct); save("ok_seg.nii.gz", seg)
save("four_d.nii.gz", np.stack([ct, ct], -1))
save("seg_shape.nii.gz", seg[:-1])
a2 = aff.copy(); a2[0, 3] = 5.0
save("seg_affine.nii.gz", seg, a2)
save("seg_float.nii.gz", seg.astype(np.float32) + np.float32(0.5) * (seg == 51))
save("seg_empty.nii.gz", np.where(seg > 0, 16, 0).astype(np.uint8))          # trachea only: no organ
img = nib.Nifti1Image(ct, aff); img.header["pixdim"][2] = 0.0; img.set_qform(None, code=0); img.set_sform(None, code=0)
nib.save(img, os.path.join(T, "zero_pixdim.nii.gz"))
img = nib.Nifti1Image(ct, aff); nib.save(img, os.path.join(T, "neg.nii"))
raw = bytearray(open(os.path.join(T, "neg.nii"), "rb").read())
raw[80:84] = np.array([-0.8], "<f4").tobytes()                               # pixdim[1] at byte 80
open(os.path.join(T, "neg.nii"), "wb").write(bytes(raw))
perm = np.array([[0, 0.8, 0, 0], [0.8, 0, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]])  # permuted axes: zero diagonal
save("permuted.nii.gz", ct, perm)
f = ct.astype(np.float32); f[3, 4, 5] = np.nan
save("nan.nii.gz", f)
EOF
P="$T/ph/ct.nii.gz"
expect_fail "bad: missing file" 1 '^ct-resample: .*/nope\.nii\.gz: No such file' ct-resample "$T/nope.nii.gz"
expect_fail "bad: missing label map" 1 '^ct-resample: .*/nope_seg\.nii\.gz: No such file' ct-resample "$T/ok.nii.gz" --label "$T/nope_seg.nii.gz"
head -c 40000 "$P" >"$T/trunc.nii.gz"
expect_fail "bad: truncated .nii.gz" 1 '^ct-resample: .*/trunc\.nii\.gz: (truncated|corrupt)' ct-resample "$T/trunc.nii.gz"
gzip -dc "$T/ok.nii.gz" | head -c 20000 >"$T/trunc.nii"
expect_fail "bad: truncated .nii" 1 '^ct-resample: .*/trunc\.nii: truncated file' ct-resample "$T/trunc.nii"
echo "not a volume" >"$T/text.nii"
expect_fail "bad: not a NIfTI file" 1 '^ct-resample: .*/text\.nii: not a NIfTI file' ct-resample "$T/text.nii"
expect_fail "bad: 4-D volume" 1 '^ct-resample: .*/four_d\.nii\.gz: 4-D CT volume' ct-resample "$T/four_d.nii.gz"
expect_fail "bad: label map of another shape" 1 'seg_shape\.nii\.gz: label map is on another grid than .*\(shape 39x36x12 vs 40x36x12\)' \
    ct-resample "$T/ok.nii.gz" --label "$T/seg_shape.nii.gz"
expect_fail "bad: label map with another affine" 1 'seg_affine\.nii\.gz: label map is on another grid .*\(affine' \
    ct-resample "$T/ok.nii.gz" --label "$T/seg_affine.nii.gz"
expect_fail "bad: non-integer labels" 1 'seg_float\.nii\.gz: non-integer label value 51\.5 at voxel \(x=18, y=16, z=4\)' \
    ct-resample "$T/ok.nii.gz" --label "$T/seg_float.nii.gz"
expect_fail "bad: zero pixdim" 1 'zero_pixdim\.nii\.gz: zero or negative voxel size in the header \(pixdim\[2\] = 0\)' \
    ct-resample "$T/zero_pixdim.nii.gz"
expect_fail "bad: negative pixdim" 1 'neg\.nii: zero or negative voxel size in the header \(pixdim\[1\] = -0\.8\)' \
    ct-resample "$T/neg.nii"
expect_fail "bad: zero spacing on the affine diagonal" 1 'permuted\.nii\.gz: zero or invalid voxel spacing 0 mm along y .*--spacing-from norm' \
    ct-resample "$T/permuted.nii.gz"
expect_fail "bad: NaN voxels" 1 'nan\.nii\.gz: 1 NaN or infinite voxels' ct-resample "$T/nan.nii.gz"
printf 'name: bad\norgans:\n  - name: lung\n    ids: [10, 200]\n' >"$T/bad_organs.yaml"
expect_fail "bad: organ set with an unknown class id" 1 'bad_organs\.yaml:4:15: unknown class id 200 \(known classes are 1\.\.117\)' \
    ct-resample "$T/ok.nii.gz" --label "$T/ok_seg.nii.gz" --organs "$T/bad_organs.yaml"
expect_fail "bad: missing organ set file" 1 'nope\.yaml: No such file' ct-resample "$T/ok.nii.gz" --organs "$T/nope.yaml"
expect_fail "bad: no organ voxel in the label map" 1 'seg_empty\.nii\.gz: no voxel of any organ of the set .ct-rate.' \
    ct-resample "$T/ok.nii.gz" --label "$T/seg_empty.nii.gz"
check "bad: ... but --no-crop keeps it" ct-resample "$T/ok.nii.gz" --label "$T/seg_empty.nii.gz" --no-crop -o /dev/null
printf 'a b c d\n' >"$T/m_bad.txt"
expect_fail "bad: manifest line with 4 fields" 1 'm_bad\.txt:1: more than 3 fields' ct-resample --manifest "$T/m_bad.txt"
expect_fail "bad: write error" 1 'ct-resample: .*(No space left|write)' sh -c "ct-resample '$T/ok.nii.gz' > /dev/full"

# nothing half-written: a failing second case leaves no output file and no NIfTI of its own
printf '%s\t%s\tgood\n%s\t-\tbad\n' "$T/ok.nii.gz" "$T/ok_seg.nii.gz" "$T/nan.nii.gz" >"$T/m3.tsv"
expect_fail "atomic: failing case -> exit 1" 1 'nan\.nii\.gz: 1 NaN' ct-resample -m "$T/m3.tsv" -o "$T/out.ctv" --write-nifti "$T/nv"
if [ ! -e "$T/out.ctv" ] && ! ls -a "$T" | grep -q '^\.out\.ctv' && [ ! -e "$T/nv/bad_image.nii.gz" ]; then
    ok "atomic: no output file, no temporary, no NIfTI of the failing case"
else notok "atomic: no output file, no temporary, no NIfTI of the failing case" "$(ls -a "$T" "$T/nv")"; fi
# --keep-going: the good case is written, the bad one reported, exit 1
ct-resample -k -m "$T/m3.tsv" >"$T/kg.ctv" 2>"$T/kg.err"
rc=$?
if [ $rc = 1 ] && [ "$(ct-ls "$T/kg.ctv" | grep -c '^record')" = 1 ] && grep -q 'case bad skipped' "$T/kg.err" \
    && grep -q '1 of 2 cases skipped' "$T/kg.err"; then ok "keep-going: good case written, bad one reported, exit 1"
else notok "keep-going: good case written, bad one reported, exit 1" "rc=$rc $(cat "$T/kg.err")"; fi

# ---- usage ----
usage_fail() {  # NAME PATTERN CMD...: exit 2, nothing on stdout, message + "Try" line
    local name=$1 pat=$2; shift 2
    "$@" >"$T/.out" 2>"$T/.err"
    local rc=$?
    if [ $rc = 2 ] && [ ! -s "$T/.out" ] && grep -qE -- "$pat" "$T/.err" && grep -q "Try 'ct-resample --help'" "$T/.err"; then ok "$name"
    else notok "$name" "rc=$rc $(cat "$T/.err")"; fi
}
usage_fail "usage: no input" 'no input file' ct-resample
usage_fail "usage: --label with two CTs" '--label and --id take a single CT file' ct-resample a.nii b.nii --label s.nii
usage_fail "usage: --spacing 0" '--spacing: values must be > 0' ct-resample --spacing 0,1,1 a.nii
usage_fail "usage: --pad-to needs integers" '--pad-to: expected three integers' ct-resample --pad-to 1.5,2,3 a.nii
usage_fail "usage: --hu-window LO < HI" '--hu-window: expected LO,HI' ct-resample --hu-window 350,-1150 a.nii
usage_fail "usage: --manifest with files" 'exclusive' ct-resample -m x.tsv a.nii
if ct-resample --help | grep -q '^Usage: ct-resample'; then ok "usage: --help on stdout"; else notok "usage: --help on stdout" ""; fi

# a header that promises far more than the file holds is refused before any memory is committed
"$PYTHON" - "$T" <<'PY'
import sys, gzip, struct, numpy as np, nibabel as nib
d = sys.argv[1]
nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)).to_filename(d + "/small.nii")
b = bytearray(open(d + "/small.nii", "rb").read())
for i, v in enumerate([3, 2000, 2000, 2000]):
    struct.pack_into("<h", b, 40 + 2 * i, v)
open(d + "/huge-hdr.nii", "wb").write(bytes(b))
open(d + "/huge-hdr.nii.gz", "wb").write(gzip.compress(bytes(b)))
PY
expect_fail "bad: header larger than the .nii" 1 'huge-hdr\.nii: truncated file \(480 bytes; the header promises 16000000352\)' \
    ct-resample "$T/huge-hdr.nii"
expect_fail "bad: header larger than a .nii.gz can hold" 1 'huge-hdr\.nii\.gz: truncated or corrupt file \(the header promises 16000000352 bytes' \
    ct-resample "$T/huge-hdr.nii.gz"
