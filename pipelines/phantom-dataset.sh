#!/usr/bin/env bash
# pipelines/phantom-dataset.sh - a synthetic dataset in CT-RATE's layout, for tests and benchmarks.
#
#   pipelines/phantom-dataset.sh [--cases N] [--full] [--corrupt] DIR
#
# Writes N phantoms (default 6; tools ct-phantom) as
#   DIR/valid/valid_I/valid_I_a/valid_I_a_1.nii.gz          the CT (int16 HU)
#   DIR/masks/valid/valid_I/valid_I_a/valid_I_a_1.nii.gz    its TotalSegmentator-style labels
#   DIR/multi_abnormality_labels/dataset_multi_abnormality_labels_valid_predicted_labels.csv
#     (VolumeName + CT-RATE's 18 abnormality columns, seeded random 0/1: a format fixture)
# Case I cycles through three grids of different size and spacing (small ones, a few seconds per
# case with pipelines' test flags; --full: the default 192x160x64 phantom at 2x2x5 mm, which
# ct-resample makes a 112x256x352 case) and through four organ sets: all four organs, no
# esophagus, no aorta, no heart (--unlabel).  --corrupt truncates the CT of the last case.
# Prints "ID<TAB>organs missing" per case.
set -euo pipefail
die() { echo "phantom-dataset.sh: $*" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
n=6 full=0 corrupt=0 dir=
while [ $# -gt 0 ]; do
    case $1 in
    --cases) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--cases: expected a positive count"; n=$2; shift ;;
    --full) full=1 ;;
    --corrupt) corrupt=1 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1'" ;;
    *) [ -z "$dir" ] || die "one DIR only"; dir=$1 ;;
    esac
    shift
done
[ -n "$dir" ] || die "usage: phantom-dataset.sh [--cases N] [--full] [--corrupt] DIR"

small=("48,40,20 8,8,16" "64,52,24 6,6,13" "40,32,16 10,10,20")
sets=("" "15" "52" "51,61")
names=("-" "esophagus" "aorta" "heart")
for i in $(seq 1 "$n"); do
    rel="valid_$i/valid_${i}_a/valid_${i}_a_1.nii.gz"
    mkdir -p "$dir/valid/$(dirname "$rel")" "$dir/masks/valid/$(dirname "$rel")"
    if [ $full = 1 ]; then grid=(--shape 192,160,64 --spacing 2,2,5)
    else read -r shape spacing <<<"${small[$(((i - 1) % 3))]}"; grid=(--shape "$shape" --spacing "$spacing"); fi
    k=$(((i - 1) % 4))
    un=(); [ -n "${sets[$k]}" ] && un=(--unlabel "${sets[$k]}")
    tmp="$dir/.phantom.$$"
    ct-phantom -o "$tmp" "${grid[@]}" --seed "$i" "${un[@]}"
    mv "$tmp/ct.nii.gz" "$dir/valid/$rel"
    mv "$tmp/seg.nii.gz" "$dir/masks/valid/$rel"
    rmdir "$tmp"
    if [ $corrupt = 1 ] && [ "$i" = "$n" ]; then
        head -c 2000 "$dir/valid/$rel" >"$dir/valid/$rel.tmp" && mv "$dir/valid/$rel.tmp" "$dir/valid/$rel"
        printf 'valid_%s_a_1\t%s (CT truncated)\n' "$i" "${names[$k]}"
    else
        printf 'valid_%s_a_1\t%s\n' "$i" "${names[$k]}"
    fi
done

mkdir -p "$dir/multi_abnormality_labels"
csv="$dir/multi_abnormality_labels/dataset_multi_abnormality_labels_valid_predicted_labels.csv"
awk '/^abnormalities:/ { on = 1; next } on && /^  - / { sub(/^  - /, ""); a[++k] = $0; next } on { exit }
     END { printf "VolumeName"; for (j = 1; j <= k; j++) printf ",%s", a[j]; print "" }' \
    "$root/pipelines/ct-rate-abnormalities.yaml" >"$csv"
awk -v n="$n" -v k="$(head -1 "$csv" | tr ',' '\n' | tail -n +2 | wc -l)" 'BEGIN { srand(14)
    for (i = 1; i <= n; i++) { printf "valid_%d_a_1.nii.gz", i; for (j = 0; j < k; j++) printf ",%d", rand() < 0.3; print "" } }' >>"$csv"
