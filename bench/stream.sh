#!/usr/bin/env bash
# Stream throughput: one record holding a 512 MiB f32 tensor, written by one
# process and read by another through a pipe, raw and zstd, beside `cat | cat`
# of the same bytes, all in the same run.  Prints MB/s (10^6 bytes), the
# ratio to cat, and each side's peak RSS.
#   writer: ct-pick FILE (reads the record from the page cache, writes it to the pipe)
#   reader: ct-ls -S     (parses the record, payload into memory, no statistics)
set -eu
N=${BENCH_STREAM_MB:-512}
REPS=${BENCH_REPS:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
f=$dir/big.ctv
"$PYTHON" - "$f" "$N" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
path, mb = sys.argv[1], int(sys.argv[2])
n = mb * 2**20 // 4
rng = np.random.default_rng(0)
# CT-like content: a smooth field in [0,1] quantised to 1/1500 (HU steps) plus noise
x = np.sin(np.arange(n, dtype=np.float32) * 1e-4) * 0.3 + 0.5 + rng.standard_normal(n, dtype=np.float32) * 0.01
x = (np.round(x * 1500) / 1500).astype(np.float32)
with open(path, "wb") as fh:
    reflib.write_record(fh, "ct.bench/1", "big", {"x": x.reshape(-1, 1024)})
PY
bytes=$(stat -c %s "$f")
cat "$f" >/dev/null                       # page cache
best() { sort -n | head -1; }
t_cat=$(for i in $(seq "$REPS"); do /usr/bin/time -f %e sh -c "cat '$f' | cat >/dev/null" 2>&1; done | best)
run() {   # run CODEC -> best wall time; peak RSS of writer and reader in $dir/rss
    local codec=$1 t
    t=$(for i in $(seq "$REPS"); do
        /usr/bin/time -f %e sh -c "/usr/bin/time -f %M -o '$dir/w.rss' ct-pick -z $codec '$f' |
                                    /usr/bin/time -f %M -o '$dir/r.rss' ct-ls -S >/dev/null" 2>&1
    done | best)
    echo "$t $(cat "$dir/w.rss") $(cat "$dir/r.rss")"
}
read -r t_raw w_raw r_raw <<<"$(run raw)"
read -r t_z w_z r_z <<<"$(run zstd)"
zbytes=$(ct-pick -z zstd "$f" | wc -c)
mbs() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }
printf 'payload %d MiB f32 (%d bytes in the stream file), best of %d runs\n' "$N" "$bytes" "$REPS"
printf '%-34s %8s %10s %12s %12s\n' "path" "wall s" "MB/s" "writer RSS" "reader RSS"
printf '%-34s %8.3f %10s %12s %12s\n' "cat | cat" "$t_cat" "$(mbs "$t_cat")" "-" "-"
printf '%-34s %8.3f %10s %9d KB %9d KB\n' "ct-pick | ct-ls -S (raw)" "$t_raw" "$(mbs "$t_raw")" "$w_raw" "$r_raw"
printf '%-34s %8.3f %10s %9d KB %9d KB\n' "ct-pick -z zstd | ct-ls -S" "$t_z" "$(mbs "$t_z")" "$w_z" "$r_z"
awk -v a="$t_cat" -v b="$t_raw" -v c="$t_z" -v zb="$zbytes" -v rb="$bytes" 'BEGIN {
    printf "raw stream rate / cat rate: %.2f (aim >= 0.50)\n", a / b
    printf "zstd stream rate / cat rate: %.2f (zstd level 1, ratio %.2f)\n", a / c, rb / zb }'
