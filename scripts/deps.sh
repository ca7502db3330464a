#!/bin/sh
# Install the Debian/Ubuntu packages ctvis needs, only those that are missing.
#   scripts/deps.sh build   compiler and libraries (make, make demo)
#   scripts/deps.sh test    the above plus Debian's python3 reference stack, clang's libFuzzer
#                           (make check, make fuzz), GNU parallel, and munge + Slurm for
#                           tests/cli/cluster.sh
# CT_NO_DEPS=1 skips the check entirely.
set -eu
[ "${CT_NO_DEPS:-0}" = 1 ] && exit 0

build="gcc make pkg-config libc6-dev zlib1g-dev libnifti2-dev libmsgpack-dev libzstd-dev
libopenblas-dev libyaml-dev libdeflate-dev libjansson-dev libpng-dev"
test="python3 python3-numpy python3-scipy python3-torch python3-nibabel python3-sklearn
python3-msgpack python3-zstandard python3-yaml zstd librsvg2-bin clang libclang-rt-dev
parallel munge slurmctld slurmd slurm-client"

case "${1:-build}" in
build) want=$build ;;
test)  want="$build $test" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=
for p in $want; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *" installed") ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: missing packages:$missing (no apt-get here: install them by hand)" >&2
    exit 1
fi
sudo=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo
    else echo "deps: missing packages:$missing (not root and no sudo)" >&2; exit 1; fi
fi
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
