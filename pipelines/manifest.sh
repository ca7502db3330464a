#!/usr/bin/env bash
# pipelines/manifest.sh - the list of a dataset's cases that make, Slurm and GNU parallel share.
#
#   pipelines/manifest.sh IMAGES MASKS > manifest.tsv
#   pipelines/manifest.sh --shard I/N manifest.tsv      the lines of shard I (0-based) of N
#
# One line per case, tab-separated:  ID  CT  SEG  (absolute paths), sorted by ID.
# Every IMAGES/**/NAME.nii.gz is a case with ID = NAME and SEG = MASKS/<same relative path>: both
# CT-RATE's tree (valid/valid_1/valid_1_a/valid_1_a_1.nii.gz, the TotalSegmentator masks in a tree
# of the same shape) and flat directories fit.  A missing mask is listed anyway (the case will fail
# and be reported) with a warning.  Shard I of N holds the lines I, I+N, I+2N, ... (from 0).
set -euo pipefail
die() { echo "manifest.sh: $*" >&2; exit 1; }

if [ "${1:-}" = --shard ]; then
    [ $# = 3 ] || die "usage: manifest.sh --shard I/N MANIFEST"
    [[ $2 =~ ^([0-9]+)/([1-9][0-9]*)$ ]] && [ "${BASH_REMATCH[1]}" -lt "${BASH_REMATCH[2]}" ] ||
        die "--shard: expected I/N with 0 <= I < N, got '$2'"
    [ -r "$3" ] || die "$3: cannot read the manifest"
    exec awk -v i="${BASH_REMATCH[1]}" -v n="${BASH_REMATCH[2]}" 'NF && (NR - 1) % n == i' "$3"
fi
case "${1:-}" in -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# = 2 ] || die "usage: manifest.sh IMAGES MASKS (or --shard I/N MANIFEST)"
[ -d "$1" ] || die "$1: not a directory"
[ -d "$2" ] || die "$2: not a directory"
img=$(cd "$1" && pwd) msk=$(cd "$2" && pwd)
(cd "$img" && find . -name '*.nii.gz' \( -type f -o -type l \) | LC_ALL=C sort) | awk -v img="$img" -v msk="$msk" '
    { rel = substr($0, 3); id = rel; sub(/.*\//, "", id); sub(/\.nii\.gz$/, "", id)
      if (rel ~ /[ \t]/) { print "manifest.sh: " img "/" rel ": whitespace in a path" > "/dev/stderr"; bad = 1; exit 1 }
      if (id in seen) { print "manifest.sh: case " id " twice: " seen[id] " and " rel > "/dev/stderr"; bad = 1; exit 1 }
      seen[id] = rel
      print id "\t" img "/" rel "\t" msk "/" rel }' | LC_ALL=C sort -t "$(printf '\t')" -k1,1 >"${TMPDIR:-/tmp}/manifest.$$" ||
    { rm -f "${TMPDIR:-/tmp}/manifest.$$"; exit 1; }
n=0
while IFS=$'\t' read -r id ct seg; do
    [ -e "$seg" ] || echo "manifest.sh: warning: $id: no mask $seg" >&2
    n=$((n + 1))
done <"${TMPDIR:-/tmp}/manifest.$$"
[ $n -gt 0 ] || { rm -f "${TMPDIR:-/tmp}/manifest.$$"; die "$1: no *.nii.gz volume"; }
cat "${TMPDIR:-/tmp}/manifest.$$"
rm -f "${TMPDIR:-/tmp}/manifest.$$"
