#!/bin/bash
# text-encode: options, the ct.prompts/1 record, --tokens, and one error line for each bad input.
source tests/cli/lib.sh
CONVERT="$PYTHON tools/ctvis-convert.py"

# a vocabulary covering the CT-RATE prompts letter by letter, and a small random text encoder
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\nnot\n'
  for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do printf '%s\n##%s\n' $c $c; done; } >"$T/vocab.txt"
$CONVERT --random 2 --text-only --text-layers 1 --text-hidden 64 --vocab "$T/vocab.txt" -o "$T/w.ctv" 2>/dev/null
$CONVERT --random 2 --text-only --text-layers 1 --text-hidden 64 -o "$T/w-novocab.ctv" 2>/dev/null

check encode text-encode -w "$T/w.ctv" -o "$T/p.ctv"
check ct-ls ct-ls "$T/p.ctv"
if grep -q 'ct.prompts/1' "$T/.out" && grep -q 'text_feat *f32 *\[16,2,256\]' "$T/.out"; then ok record
else notok record "$(head -c 300 "$T/.out")"; fi

# zeroshot reads the record (ct.prompts/1 is its input): one lung feature -> one ct.probs/1 record
$PYTHON - "$T/o.ctv" <<'EOF'
import sys, numpy as np
sys.path.insert(0, "tests/ref")
import reflib
x = np.random.default_rng(0).standard_normal(256).astype(np.float32)
with open(sys.argv[1], "wb") as f:
    reflib.write_record(f, "ct.organ/1", "valid_1_a_1", {"feature": x / np.linalg.norm(x)}, {"organ": "lung", "empty": False})
EOF
if command -v zeroshot >/dev/null; then
    check zeroshot-reads-it zeroshot --prompts "$T/p.ctv" --abnormalities pipelines/ct-rate-abnormalities.yaml \
        -o "$T/probs.ctv" "$T/o.ctv"
else skip zeroshot-reads-it "zeroshot not built"; fi

# --tokens: 32 lines, [CLS] ... [SEP]; "Not Emphysema." = [CLS] not e ##m ##p ##h ##y ##s ##e ##m ##a . [SEP]
# (ids by hand: letter number k from 0 is 7 + 2k, its ## piece 8 + 2k)
text-encode --tokens --vocab "$T/vocab.txt" >"$T/tok.txt"
if [ "$(wc -l <"$T/tok.txt")" = 32 ] && [ "$(head -1 "$T/tok.txt")" = "2 6 15 32 38 22 56 44 16 32 8 5 3" ] &&
   ! grep -qv '^2 .* 3$' "$T/tok.txt"; then ok tokens
else notok tokens "$(head -2 "$T/tok.txt")"; fi
text-encode --tokens -w "$T/w.ctv" >"$T/tok2.txt"
same tokens-vocab-in-weights "$T/tok.txt" "$T/tok2.txt"
printf 'Not\tEMPHYSEMA.\n' | text-encode --tokens --vocab "$T/vocab.txt" --lines - >"$T/tok3.txt"
if [ "$(cat "$T/tok3.txt")" = "$(head -1 "$T/tok.txt")" ]; then ok tokens-lines; else notok tokens-lines "$(cat "$T/tok3.txt")"; fi
# a long line is truncated at --max-length, said on stderr
printf 'a b c d e f g\n' | text-encode --tokens --vocab "$T/vocab.txt" --lines - --max-length 5 >"$T/tok4.txt" 2>"$T/err4"
if [ "$(cat "$T/tok4.txt")" = "2 7 9 11 3" ] && grep -q 'line 1: 9 tokens, truncated to 5' "$T/err4"; then ok truncate-lines
else notok truncate-lines "$(cat "$T/tok4.txt" "$T/err4")"; fi

# bad input
cat >"$T/items-missing.yaml" <<'EOF'
abnormalities: [Emphysema]
items:
  - {organ: lung, abnormality: Emphysema, negative: Not Emphysema.}
EOF
cat >"$T/items-dup.yaml" <<'EOF'
abnormalities: [Emphysema, Atelectasis]
items:
  - {organ: lung, abnormality: Emphysema, negative: Not Emphysema., positive: Emphysema.}
  - {organ: lung, abnormality: Emphysema, negative: Not E., positive: E.}
EOF
cat >"$T/items-empty.yaml" <<'EOF'
abnormalities: [Emphysema]
items:
  - {organ: lung, abnormality: Emphysema, negative: "", positive: Emphysema.}
EOF
cat >"$T/items-blank.yaml" <<'EOF'
abnormalities: [Emphysema]
items:
  - {organ: lung, abnormality: Emphysema, negative: "  ", positive: Emphysema.}
EOF
cat >"$T/items-long.yaml" <<'EOF'
abnormalities: [Emphysema]
items:
  - {organ: lung, abnormality: Emphysema, negative: Not Emphysema at all here., positive: Emphysema.}
EOF
printf '[PAD]\n[CLS]\n[SEP]\na\n' >"$T/vocab-nounk.txt"
printf '[UNK]\n[CLS]\n[SEP]\n\xff\xfe\n' >"$T/vocab-bin.txt"
: >"$T/vocab-empty.txt"
$PYTHON - "$T/notext.ctv" <<'EOF'
import sys, msgpack
t = {"temp": {"dtype": "f32", "shape": [], "codec": "raw", "data": b"\x29\x5c\x8f\x3d"}}
open(sys.argv[1], "wb").write(msgpack.packb({"schema": "ct.weights/1", "id": "x", "meta": {}, "tensors": t}))
EOF

expect_fail vocab-missing 1 'text-encode: .*nonexistent.txt: No such file' text-encode --tokens --vocab "$T/nonexistent.txt"
expect_fail vocab-no-unk 1 'text-encode: .*vocab-nounk.txt: no \[UNK\] token' text-encode --tokens --vocab "$T/vocab-nounk.txt"
expect_fail vocab-binary 1 'text-encode: .*vocab-bin.txt: line 4: invalid UTF-8' text-encode --tokens --vocab "$T/vocab-bin.txt"
expect_fail vocab-empty 1 'text-encode: .*vocab-empty.txt: empty vocabulary' text-encode --tokens --vocab "$T/vocab-empty.txt"
expect_fail vocab-absent 1 'text-encode: .*w-novocab.ctv: no vocabulary in the weights.*--vocab' text-encode -w "$T/w-novocab.ctv"
expect_fail no-text-encoder 1 'text-encode: .*notext.ctv: no text encoder in the weights' \
    text-encode -w "$T/notext.ctv" --vocab "$T/vocab.txt"
expect_fail prompt-missing 1 "text-encode: .*items-missing.yaml:3:.*missing key 'positive'" \
    text-encode -w "$T/w.ctv" --items "$T/items-missing.yaml"
expect_fail item-duplicate 1 "text-encode: .*items-dup.yaml:.*'Emphysema' evaluated twice" \
    text-encode -w "$T/w.ctv" --items "$T/items-dup.yaml"
expect_fail prompt-empty 1 "text-encode: .*items-empty.yaml:.*'negative' must be non-empty" \
    text-encode -w "$T/w.ctv" --items "$T/items-empty.yaml"
expect_fail prompt-blank 1 "text-encode: item 1 \(Emphysema\): the negative prompt '  ' has no tokens" \
    text-encode -w "$T/w.ctv" --items "$T/items-blank.yaml"
expect_fail prompt-too-long 1 'text-encode: item 1 \(Emphysema\): the negative prompt has [0-9]+ tokens, more than --max-length 8' \
    text-encode -w "$T/w.ctv" --items "$T/items-long.yaml" --max-length 8
check prompt-truncated text-encode -w "$T/w.ctv" --items "$T/items-long.yaml" --max-length 8 --truncate -o "$T/trunc.ctv"
if grep -q 'truncated to 8' "$T/.err"; then ok prompt-truncated-said; else notok prompt-truncated-said "$(cat "$T/.err")"; fi
expect_fail max-length-positions 1 'text-encode: --max-length 600 is more than the 512 positions' \
    text-encode -w "$T/w.ctv" --max-length 600
expect_fail no-weights 2 'text-encode: no weights' text-encode
expect_fail lines-without-tokens 2 'text-encode: --lines needs --tokens' text-encode -w "$T/w.ctv" --lines -
expect_fail bad-heads 1 'text-encode: .*w.ctv: hidden width 64 is not divisible by 3 heads' text-encode -w "$T/w.ctv" --heads 3
expect_fail lines-missing 1 'text-encode: .*nothere.txt: No such file' \
    text-encode --tokens --vocab "$T/vocab.txt" --lines "$T/nothere.txt"
printf 'lung \xff\n' >"$T/bad.txt"
expect_fail lines-invalid-utf8 1 'text-encode: .*bad.txt: line 1: invalid UTF-8' \
    text-encode --tokens --vocab "$T/vocab.txt" --lines "$T/bad.txt"
# nothing on disk after a failure with -o
text-encode -w "$T/w.ctv" --items "$T/items-dup.yaml" -o "$T/none.ctv" 2>/dev/null
if [ ! -e "$T/none.ctv" ] && ! ls -A "$T" | grep -v '^\.out$\|^\.err$' | grep -q '^\.'; then ok no-partial-output; else notok no-partial-output "file left"; fi
