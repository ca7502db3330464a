#!/usr/bin/env bash
# The main job on the bundled example: a synthetic chest CT with its
# TotalSegmentator-style labels, through the ctvis stages that exist.
#   pipelines/demo.sh [OUTDIR]      (make demo: OUTDIR = build/demo)
set -euo pipefail
out=${1:-build/demo}
bin=${CT_BIN:-$(cd "$(dirname "$0")/.." && pwd)/${CT_BUILD:-build}/bin}
export PATH=$bin:$PATH
mkdir -p "$out"

echo "== 1. bundled example: synthetic chest CT + TotalSegmentator-style label map (NIfTI)"
ct-phantom -o "$out/phantom"
ls -l "$out/phantom"

echo "== 2. NIfTI -> ct.image/1 stream (native grid, HU, labels), listed"
ct-import "$out/phantom/ct.nii.gz" --label "$out/phantom/seg.nii.gz" -o "$out/phantom.ctv"
ct-ls "$out/phantom.ctv"

echo "== 3. back to NIfTI for a viewer (ITK-SNAP, 3D Slicer)"
ct-export -t label -o "$out/label.nii.gz" "$out/phantom.ctv"
ls -l "$out/label.nii.gz"
echo "demo outputs are in $out"
