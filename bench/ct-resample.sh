#!/usr/bin/env bash
# Benchmark of ct-resample (issue 3): a 512 x 512 x 300 int16 CT (0.7 x 0.7 x 1.0 mm, single-member
# gzip -6 as SimpleITK/ITK write it) and its TotalSegmentator-style label map, end to end (read,
# merge, resample, window, crop, pad, write the stream to a file), against the Python path a user
# runs today (nibabel + torch interpolate + numpy, bench/ct-resample-peer.py python) and against
# scipy.ndimage.zoom(order=1) (peer scipy), in the same run, with 1 and 2 threads.
# Prints the median wall time of REPS runs (after one untimed warm-up run each), the ratios and peak RSS (/usr/bin/time -f %M), the
# stage timings of ct-resample -vv, and the gzip inflate alone (zlib's gzip -d, nibabel, ours).
#
#   bench/ct-resample.sh            (make bench runs it)   REPS=5 CT_BENCH_DIR=/tmp/b bench/ct-resample.sh
#
# The input is generated once with ct-phantom (about 30 s) and kept in $CT_BENCH_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CT_BUILD:-build}
export PATH=$PWD/$BUILD/bin:$PATH
PYTHON=${PYTHON:-/usr/bin/python3}
DIR=${CT_BENCH_DIR:-$BUILD/bench/ct-resample}
REPS=${REPS:-3}
mkdir -p "$DIR"
command -v ct-resample >/dev/null || { echo "bench: build first (make)" >&2; exit 1; }

if [ ! -f "$DIR/ct.nii.gz" ] || [ ! -f "$DIR/seg.nii.gz" ]; then
    echo "generating the 512x512x300 input in $DIR (once) ..." >&2
    ct-phantom -o "$DIR/phantom" --shape 512,512,300 --spacing 0.7,0.7,1.0 >/dev/null
    # one gzip member at level 6, like the files SimpleITK writes (CT-RATE) and unlike our
    # multi-member writer
    gzip -dc "$DIR/phantom/seg.nii.gz" | gzip -6 >"$DIR/seg.nii.gz.tmp" && mv "$DIR/seg.nii.gz.tmp" "$DIR/seg.nii.gz"
    gzip -dc "$DIR/phantom/ct.nii.gz" | gzip -6 >"$DIR/ct.nii.gz.tmp" && mv "$DIR/ct.nii.gz.tmp" "$DIR/ct.nii.gz"
    rm -rf "$DIR/phantom"
fi
CT=$DIR/ct.nii.gz SEG=$DIR/seg.nii.gz

# run NAME CMD...: REPS runs; prints and records the median wall time and the max peak RSS
declare -A WALL RSS
run() {
    local name=$1; shift
    local walls=() rss=0 i
    "$@" >/dev/null 2>&1 || true                 # one untimed warm-up run (page cache, imports)
    for ((i = 0; i < REPS; i++)); do
        /usr/bin/time -f '%e %M' -o "$DIR/time.txt" "$@" 2>>"$DIR/stderr.txt" >/dev/null
        read -r w m <"$DIR/time.txt"
        walls+=("$w")
        [ "$m" -gt "$rss" ] && rss=$m
    done
    WALL[$name]=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
    RSS[$name]=$((rss / 1024))
    printf '%-34s %7.2f s  (runs: %s)  peak RSS %5d MB\n' "$name" "${WALL[$name]}" "${walls[*]}" "${RSS[$name]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a / b}'; }

: >"$DIR/stderr.txt"
echo "ct-resample benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS"
echo "input: $CT ($(du -m "$CT" | cut -f1) MB gz) + $SEG ($(du -k "$SEG" | cut -f1) KB gz)"
echo
echo "== end to end (read, resample, window, crop, pad, write the stream to a file) =="
for j in 1 2; do
    run "ct-resample -j $j" ct-resample -j "$j" "$CT" --label "$SEG" -o "$DIR/ours.ctv"
    run "python (nibabel+torch), $j thread(s)" "$PYTHON" bench/ct-resample-peer.py python "$CT" "$SEG" "$DIR/py.ctv" "$j"
done
run "scipy zoom order 1 (1 thread)" "$PYTHON" bench/ct-resample-peer.py scipy "$CT" "$SEG" "$DIR/scipy.ctv" 1

printf '%s\t%s\tcase%d\n' "$CT" "$SEG" 1 "$CT" "$SEG" 2 "$CT" "$SEG" 3 "$CT" "$SEG" 4 >"$DIR/batch.tsv"
for j in 1 2; do
    run "ct-resample -j $j, 4 cases (manifest)" ct-resample -j "$j" --manifest "$DIR/batch.tsv" -o "$DIR/batch.ctv"
done
rm -f "$DIR/batch.ctv"

echo
echo "== ratios (peer time / ct-resample time, same thread count) =="
echo "python path, 1 thread : $(ratio "${WALL[python (nibabel+torch), 1 thread(s)]}" "${WALL[ct-resample -j 1]}")x"
echo "python path, 2 threads: $(ratio "${WALL[python (nibabel+torch), 2 thread(s)]}" "${WALL[ct-resample -j 2]}")x"
echo "batch of 4, per case  : $(awk -v a="${WALL[ct-resample -j 1, 4 cases (manifest)]}" 'BEGIN{printf "%.2f", a / 4}') s (-j 1)," \
    "$(awk -v a="${WALL[ct-resample -j 2, 4 cases (manifest)]}" 'BEGIN{printf "%.2f", a / 4}') s (-j 2)"
echo "scipy zoom (1 thread) : $(ratio "${WALL[scipy zoom order 1 (1 thread)]}" "${WALL[ct-resample -j 1]}")x vs -j 1," \
    "$(ratio "${WALL[scipy zoom order 1 (1 thread)]}" "${WALL[ct-resample -j 2]}")x vs -j 2"

echo
echo "== memory =="
in_raw=$(( $(gzip -l "$CT" | awk 'NR==2{print $2}') + $(gzip -l "$SEG" | awk 'NR==2{print $2}') ))
out_raw=$(stat -c %s "$DIR/ours.ctv")
aim=$(( (in_raw + 2 * out_raw) / 1048576 ))
echo "input raw (CT + labels) $((in_raw / 1048576)) MB, output raw (the record) $((out_raw / 1048576)) MB," \
    "aim: peak RSS <= input + 2 x output = $aim MB"
for name in "ct-resample -j 1" "ct-resample -j 2" "ct-resample -j 1, 4 cases (manifest)" "ct-resample -j 2, 4 cases (manifest)"; do
    r=${RSS[$name]}
    echo "$name: peak RSS $r MB ($([ "$r" -le "$aim" ] && echo within || echo OVER) the aim)"
done

echo
echo "== where ct-resample spends its time (-vv, median of $REPS, -j 1) =="
for ((i = 0; i < REPS; i++)); do ct-resample -vv "$CT" --label "$SEG" -o "$DIR/ours.ctv" 2>&1; done |
    awk -F': ' '/ ms$/ {split($3, a, " "); n = split($3, b, "  *"); name = $3; sub(/ +[0-9.]+ ms$/, "", name);
                        v = $3; sub(/^.* /, "", v); sub(/ ms$/, "", v); gsub(/ ms/, "", v);
                        split($0, c, " "); val = c[length(c) - 1]; t[name] = t[name] " " val}
                 END {for (k in t) print k ":" t[k]}' |
    while IFS=: read -r stage vals; do
        med=$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
        printf '  %-14s %8.1f ms\n' "$stage" "$med"
    done

echo
echo "== gzip inflate of the CT alone (median of $REPS) =="
run "gzip -d (zlib) > /dev/null" sh -c "gzip -dc '$CT' >/dev/null"
run "nibabel load (zlib) + asarray" "$PYTHON" -c "import nibabel as n, numpy as np; np.asanyarray(n.load('$CT').dataobj)"
echo "ct-resample's 'read CT' stage above is libdeflate (one whole-buffer call), header and page faults included"
echo
echo "(timings on a shared 2-core machine: other jobs add noise; see the runs column)"
