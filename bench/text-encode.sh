#!/usr/bin/env bash
# bench/text-encode.sh - the text side at the full BERT-base size (12 layers, 768, 12 heads, 3072,
# 30,522 rows; seeded random weights): the 32 CT-RATE prompt features by `text-encode` on one
# core, loading the weights included, beside PyTorch (torch.load of the same weights as a
# state_dict, the Python tokenizer transcription, BertText forward in float32, one thread) in the
# same run; then the tokenizer alone on 100,000 report sentences (text-encode --tokens --lines)
# beside the Python transcription of BertTokenizer.  Prints wall times, ratios, peak RSS, the
# machine load and OpenBLAS's core.  Not a test.
#
#   bench/text-encode.sh          (make bench runs every bench/*.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${CT_BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=bench/out/text-encode
mkdir -p "$OUT"
export PATH=$PWD/$BUILD/bin:$PATH
[ -x "$BUILD/bin/text-encode" ] || { echo "bench/text-encode.sh: build first (make)" >&2; exit 1; }
VOCAB=${CT_DATA:-../shared/data}/bert-vocab/vocab.txt
[ -f "$VOCAB" ] || { echo "bench/text-encode.sh: $VOCAB absent (needs ../shared/data)" >&2; exit 1; }

core=$("$PYTHON" -c "import ctypes
for n in ('libopenblas.so.0', 'libopenblasp.so.0'):
    try:
        b = ctypes.CDLL(n); b.openblas_get_corename.restype = ctypes.c_char_p; print(b.openblas_get_corename().decode()); break
    except OSError: pass")
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; OpenBLAS core $core; load $(cut -d' ' -f1-3 /proc/loadavg)"

# full-size random text encoder: the ct.weights/1 record and the same state_dict as a .pth
if [ ! -s "$OUT/weights.ctv" ] || [ ! -s "$OUT/lavis/checkpoint.pth" ]; then
    "$PYTHON" tools/ctvis-convert.py --random 1 --text-only --vocab "$VOCAB" --save-lavis "$OUT/lavis" \
        -o "$OUT/weights.ctv" 2>/dev/null
fi
ls -l "$OUT/weights.ctv" | awk '{printf "weights: %.1f MB (ct.weights/1, text encoder + text_proj + temp + vocab)\n", $5 / 1e6}'

cat >"$OUT/peer.py" <<'PY'
import sys, time
t0 = time.time()
import torch
torch.set_num_threads(1)
sys.path.insert(0, "tests/ref")
import bert_ref, yaml
ck, vocab_path, out = sys.argv[1:4]
sd = torch.load(ck, map_location="cpu")["model"]
w = sd[bert_ref.PREFIX + "embeddings.word_embeddings.weight"]
layers = len({k.split(".")[3] for k in sd if k.startswith(bert_ref.PREFIX + "encoder.layer.")})
m = bert_ref.BertText(w.shape[0], w.shape[1], layers, 12, sd[bert_ref.PREFIX + "encoder.layer.0.intermediate.dense.weight"].shape[0])
m.load_state_dict({k[len(bert_ref.PREFIX):]: v for k, v in sd.items() if k.startswith(bert_ref.PREFIX) and
                   not k.startswith(bert_ref.PREFIX + "cls.")})
proj = torch.nn.Linear(w.shape[1], 256)
proj.load_state_dict({"weight": sd["text_proj.weight"], "bias": sd["text_proj.bias"]})
m.eval()
vocab = bert_ref.load_vocab(vocab_path)
items = yaml.safe_load(open("pipelines/ct-rate-abnormalities.yaml"))["items"]
ids = [bert_ref.encode(p, vocab) for it in items for p in (it["negative"], it["positive"])]
t1 = time.time()
f = bert_ref.prompt_features(m, proj, ids)
t2 = time.time()
import numpy as np
np.save(out, f.numpy())
print("torch_forward_s %.3f" % (t2 - t1))
print("torch_total_s %.3f" % (time.time() - t0))
PY

printf '\n%-26s %8s %10s %8s\n' "32 prompts, BERT-base" wall_s forward_s rss_MB
/usr/bin/time -f "%e %M" -o "$OUT/time-ours" text-encode -v -j 1 -w "$OUT/weights.ctv" -o "$OUT/prompts.ctv" \
    2>"$OUT/ours.log"
read -r ow orss <"$OUT/time-ours"
of=$(sed -n 's/.*prompts encoded in \([0-9.]*\) s.*/\1/p' "$OUT/ours.log")
OMP_NUM_THREADS=1 /usr/bin/time -f "%e %M" -o "$OUT/time-torch" "$PYTHON" "$OUT/peer.py" \
    "$OUT/lavis/checkpoint.pth" "$VOCAB" "$OUT/torch.npy" >"$OUT/torch.log"
read -r tw trss <"$OUT/time-torch"
tf=$(awk '/torch_forward_s/ {print $2}' "$OUT/torch.log")
printf '%-26s %8.2f %10.3f %8d\n' "text-encode (-j 1)" "$ow" "$of" $((orss / 1024))
printf '%-26s %8.2f %10.3f %8d\n' "PyTorch 1 thread" "$tw" "$tf" $((trss / 1024))
awk -v a="$ow" -v b="$tw" 'BEGIN { printf "ratio PyTorch / text-encode (wall): %.1fx\n", b / a }'
"$PYTHON" - "$OUT/prompts.ctv" "$OUT/torch.npy" <<'PY'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
(r,) = reflib.records(open(sys.argv[1], "rb").read())
print("max abs difference of the features: %.2g" % np.abs(r["tensors"]["text_feat"].reshape(32, -1) - np.load(sys.argv[2])).max())
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# the tokenizer: 100,000 report-style sentences (the corpus's, repeated)
"$PYTHON" -c "
import itertools
lines = open('tests/data/text/corpus.txt', encoding='utf-8').read().split('\n')[:-1]
with open('$OUT/sentences.txt', 'w', encoding='utf-8') as f:
    f.write('\n'.join(itertools.islice(itertools.cycle(lines), 100000)) + '\n')"
printf '\n%-26s %8s %12s %8s\n' "100,000 sentences" wall_s tokenise_s rss_MB
/usr/bin/time -f "%e %M" -o "$OUT/time-tok" text-encode -v --tokens --vocab "$VOCAB" --lines "$OUT/sentences.txt" \
    >"$OUT/tokens-c.txt" 2>"$OUT/tok.log"
read -r cw crss <"$OUT/time-tok"
ct=$(sed -n 's/.*tokenised in \([0-9.]*\) s.*/\1/p' "$OUT/tok.log")
/usr/bin/time -f "%e %M" -o "$OUT/time-tok-py" "$PYTHON" -c "
import sys, time
sys.path.insert(0, 'tests/ref')
import bert_ref
v = bert_ref.load_vocab('$VOCAB')
lines = open('$OUT/sentences.txt', encoding='utf-8').read().split('\n')[:-1]
t0 = time.time()
out = [' '.join(map(str, bert_ref.encode(l, v))) for l in lines]
print('%.3f' % (time.time() - t0))
open('$OUT/tokens-py.txt', 'w').write('\n'.join(out) + '\n')" >"$OUT/tok-py.log"
read -r pw prss <"$OUT/time-tok-py"
pt=$(cat "$OUT/tok-py.log")
printf '%-26s %8.2f %12.3f %8d\n' "text-encode --tokens" "$cw" "$ct" $((crss / 1024))
printf '%-26s %8.2f %12.3f %8d\n' "Python BertTokenizer copy" "$pw" "$pt" $((prss / 1024))
awk -v a="$ct" -v b="$pt" 'BEGIN { printf "ratio Python / C (tokenising): %.0fx\n", b / a }'
cmp -s "$OUT/tokens-c.txt" "$OUT/tokens-py.txt" && echo "token ids identical" || echo "TOKEN IDS DIFFER"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
