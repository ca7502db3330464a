# pipelines/: the demo's stages chained in a pipe, and pipelines/dataset.mk on three small
# cases (parallel, resumable, sharded, a bad case failing alone without a partial output).
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

mkdir -p "$T/ct" "$T/seg"
for i in 1 2 3; do
    ct-phantom -o "$T/p$i" --shape 48,40,20 --spacing 8,8,16 --seed $i
    mv "$T/p$i/ct.nii.gz" "$T/ct/case$i.nii.gz"
    mv "$T/p$i/seg.nii.gz" "$T/seg/case$i.nii.gz"
done
"$PYTHON" "$ROOT/tools/ctvis-convert.py" --random 3 --encoder-only -o "$T/w.ctv" 2>/dev/null ||
    { notok "setup: random weights" "ctvis-convert failed"; exit 1; }
mk() { make -s -f "$ROOT/pipelines/dataset.mk" CT_DIR="$T/ct" SEG_DIR="$T/seg" OUT="$T/out" WEIGHTS="$T/w.ctv" \
       RESAMPLE_FLAGS="--spacing 16,8,8 --pad-to 32,64,64" MASKPOOL_FLAGS="--roi 32,64,64" "$@"; }

check "dataset.mk: three cases with -j 2" mk -j 2
n=$(ls "$T/out"/*.tokens.ctv 2>/dev/null | wc -l)
[ "$n" = 3 ] && ok "dataset.mk: one tokens file per case" || notok "dataset.mk: one tokens file per case" "$n files"
ids=$(ct-ls -S "$T/out/case2.tokens.ctv" | awk '/^record/ {print $3}' | sort -u)
[ "$ids" = "id=case2" ] && ok "dataset.mk: records carry the case id" || notok "dataset.mk: records carry the case id" "$ids"

# the same case through an explicit pipe gives the same bytes (history aside)
ct-resample "$T/ct/case1.nii.gz" --label "$T/seg/case1.nii.gz" --id case1 --spacing 16,8,8 --pad-to 32,64,64 |
    mask-pool --roi 32,64,64 | encode -w "$T/w.ctv" >"$T/pipe1.ctv"
a=$(ct-ls -S --crc "$T/pipe1.ctv" | grep crc32 | sed 's/^ *//')
b=$(ct-ls -S --crc "$T/out/case1.tokens.ctv" | grep crc32 | sed 's/^ *//')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "pipe: same tensors as the make target" || notok "pipe: same tensors as the make target" "differ"

touch -d '1 hour ago' "$T/ct"/* "$T/seg"/* "$T/w.ctv"
before=$(stat -c %Y "$T/out/case1.tokens.ctv")
mk -j 2
[ "$(stat -c %Y "$T/out/case1.tokens.ctv")" = "$before" ] && ok "dataset.mk: done cases are not redone" ||
    notok "dataset.mk: done cases are not redone" "case1 rewritten"

s0=$(mk SHARD=0/2 list | tr '\n' ' ')
s1=$(mk SHARD=1/2 list | tr '\n' ' ')
[ "$s0" = "case1 case3 " ] && [ "$s1" = "case2 " ] && ok "dataset.mk: SHARD=i/N splits the cases" ||
    notok "dataset.mk: SHARD=i/N splits the cases" "'$s0' / '$s1'"

head -c 2000 "$T/ct/case3.nii.gz" >"$T/ct/case4.nii.gz"
cp "$T/seg/case3.nii.gz" "$T/seg/case4.nii.gz"
mk -k -j 2 >/dev/null 2>"$T/mk.err"
rc=$?
if [ $rc != 0 ] && [ ! -e "$T/out/case4.tokens.ctv" ] && grep -q "truncated file" "$T/mk.err"; then
    ok "dataset.mk: a bad case fails alone and leaves no partial output"
else notok "dataset.mk: a bad case fails alone and leaves no partial output" "rc $rc: $(ls "$T/out")"; fi
