#!/usr/bin/env bash
# Run every benchmark in bench/ (bench/*.sh except this file); `make bench`.
#   bench/run.sh            all
#   bench/run.sh stream     only bench/stream.sh
set -u
cd "$(dirname "$0")/.."
export CT_BUILD=${CT_BUILD:-build}
export PATH=$PWD/$CT_BUILD/bin:$PATH
export PYTHON=${PYTHON:-/usr/bin/python3}
export CT_COMPRESS=
for b in bench/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    [ -n "${1:-}" ] && [[ "$b" != *"$1"* ]] && continue
    echo "== $b"
    bash "$b" || echo "!! $b failed"
    echo
done
