# Sourced by tests/cli/*.sh.  Gives each test a scratch directory ($T), the
# built tools on PATH, and these helpers; each prints one result line:
#
#   ok NAME / not ok NAME: why / skip NAME: why
#   check NAME CMD...            CMD succeeds
#   expect_fail NAME CODE PATTERN CMD...
#       CMD exits with CODE, prints nothing on stdout, and exactly one stderr
#       line, which matches the grep -E PATTERN (usage errors, CODE 2, may add
#       the line "Try 'tool --help'.")
#   same NAME FILE1 FILE2        files are byte-identical
#   have_data                    true when ../shared/data is present
#   random_weights FILE SEED     small seeded random weights of the whole pipeline (below)
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export PATH=${CT_BIN:-$PWD/build/bin}:$PATH
PYTHON=${PYTHON:-/usr/bin/python3}
CT_DATA=${CT_DATA:-$PWD/../shared/data}

ok()     { echo "ok $1"; }
notok()  { echo "not ok $1: $2"; }
skip()   { echo "skip $1: $2"; }

check() {
    local name=$1; shift
    if "$@" >"$T/.out" 2>"$T/.err"; then ok "$name"
    else notok "$name" "command failed ($?): $* :: $(head -c 300 "$T/.err")"; fi
}

expect_fail() {
    local name=$1 code=$2 pat=$3; shift 3
    "$@" >"$T/.out" 2>"$T/.err"
    local rc=$?
    local nlines
    nlines=$(grep -vc "^Try '.* --help'\.$" "$T/.err")
    if [ "$rc" -ne "$code" ]; then notok "$name" "exit $rc, expected $code :: $(head -c 300 "$T/.err")"
    elif [ -s "$T/.out" ]; then notok "$name" "wrote $(wc -c <"$T/.out") bytes to stdout"
    elif [ "$nlines" -ne 1 ]; then notok "$name" "stderr has $nlines lines, expected 1 :: $(head -c 300 "$T/.err")"
    elif ! grep -qE -- "$pat" "$T/.err"; then notok "$name" "stderr '$(cat "$T/.err")' does not match '$pat'"
    else ok "$name"; fi
}

same() {
    if cmp -s "$2" "$3"; then ok "$1"; else notok "$1" "$2 and $3 differ"; fi
}

have_data() { [ -d "$CT_DATA" ]; }

# random_weights FILE SEED: seeded random (untrained) weights of the whole pipeline, small: encoder,
# VQ-VAE, organ head and a 1-layer width-64 text encoder with a vocabulary of the prompts' letters
random_weights() {
    { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\n,\n'
      for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do printf '%s\n##%s\n' $c $c; done; } >"$1.vocab"
    "$PYTHON" "${CT_ROOT:-$PWD}/tools/ctvis-convert.py" --random "$2" --text-layers 1 --text-hidden 64 \
        --vocab "$1.vocab" -o "$1" 2>/dev/null
}
