#!/usr/bin/env bash
# Issue 15 items 1 and 11: output files are private when the umask says so and keep a
# replaced file's mode; special files are written through without truncation; a
# broken pipe is reported; no temporary file survives a file-size limit or a signal.
source "$(dirname "$0")/lib.sh"
D=$PWD/tests/data/reports

ct-phantom -o "$T/ph" --shape 48,40,16 --spacing 8,8,20 >/dev/null || { notok setup "ct-phantom failed"; exit 1; }
ct-import "$T/ph/ct.nii.gz" -l "$T/ph/seg.nii.gz" >"$T/a.ctv"
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
is_mode() {  # is_mode NAME WANT FILE
    local got; got=$(mode "$3")
    if [ "$got" = "$2" ]; then ok "$1"; else notok "$1" "mode $got, expected $2"; fi
}
notmp() {  # notmp NAME DIR: no .NAME.tmpXXXXXX left in DIR
    local left; left=$(find "$2" -maxdepth 1 -name '.*.tmp*' | head -3)
    if [ -z "$left" ]; then ok "$1"; else notok "$1" "left behind: $left"; fi
}

# ---- item 1: the umask, and a replaced file's mode ----
( umask 077
  ct-pick "$T/a.ctv" -o "$T/p.ctv"
  ct-export -t image -o "$T/x.nii.gz" "$T/a.ctv"
  ct-resample "$T/ph/ct.nii.gz" --label "$T/ph/seg.nii.gz" -o "$T/r.ctv" --write-nifti "$T/view"
  report-label -f csv "$D"/valid_101_a.json -o "$T/l.csv" )
is_mode "umask 077: ct-pick -o is private" 600 "$T/p.ctv"
is_mode "umask 077: ct-export is private" 600 "$T/x.nii.gz"
is_mode "umask 077: ct-resample -o is private" 600 "$T/r.ctv"
is_mode "umask 077: ct-resample --write-nifti image is private" 600 "$T/view/ct_image.nii.gz"
is_mode "umask 077: ct-resample --write-nifti mask is private" 600 "$T/view/ct_mask.nii.gz"
is_mode "umask 077: report-label -o is private" 600 "$T/l.csv"
( umask 027; ct-pick "$T/a.ctv" -o "$T/g.ctv" )
is_mode "umask 027: group may read, others not" 640 "$T/g.ctv"
( umask 022; ct-pick "$T/a.ctv" -o "$T/w.ctv" )
is_mode "umask 022: the usual 644" 644 "$T/w.ctv"
: >"$T/keep.ctv"; chmod 600 "$T/keep.ctv"
( umask 022; ct-pick "$T/a.ctv" -o "$T/keep.ctv"; ct-export -t image -o "$T/keep.ctv.nii" "$T/a.ctv" )
is_mode "replacing a 0600 file keeps 0600" 600 "$T/keep.ctv"
: >"$T/keep2.nii"; chmod 640 "$T/keep2.nii"
( umask 000; ct-export -t image -o "$T/keep2.nii" "$T/a.ctv" )
is_mode "replacing a 0640 file keeps 0640 (ct-export, umask 000)" 640 "$T/keep2.nii"
ln -sf keep.ctv "$T/link.ctv"
( umask 022; ct-pick "$T/a.ctv" -o "$T/link.ctv" )
is_mode "replacing through a symlink keeps the target's 0600" 600 "$T/keep.ctv"

# ---- item 11: special files are not truncated ----
cp "$T/a.ctv" "$T/acc.ctv"
ct-pick -o /dev/stdout "$T/a.ctv" >>"$T/acc.ctv"
cat "$T/a.ctv" "$T/a.ctv" >"$T/two.ctv"
same "-o /dev/stdout >> acc.ctv appends" "$T/acc.ctv" "$T/two.ctv"
cp "$T/a.ctv" "$T/acc2.nii"
ct-export -t image -o /dev/stdout "$T/a.ctv" >>"$T/acc2.nii"
n=$(( $(wc -c <"$T/acc2.nii") - $(wc -c <"$T/a.ctv") ))
ct-export -t image -o "$T/one.nii" "$T/a.ctv"
[ "$n" = "$(wc -c <"$T/one.nii")" ] && ok "ct-export -o /dev/stdout >> appends" || notok "ct-export -o /dev/stdout >> appends" "$n bytes added"
ct-pick -o /dev/stdout "$T/a.ctv" >"$T/over.ctv"
same "-o /dev/stdout > file still writes the file" "$T/a.ctv" "$T/over.ctv"

# ---- item 11: a broken pipe is reported by ct-ls ----
ct-phantom -o "$T/big" --shape 96,96,32 >/dev/null
ct-import "$T/big/ct.nii.gz" >"$T/big.ctv"
for i in 1 2 3 4 5 6 7 8; do cat "$T/big.ctv"; done >"$T/many.ctv"
( ct-ls -m "$T/many.ctv" "$T/many.ctv" "$T/many.ctv" 2>"$T/ls.err" | head -c 10 >/dev/null
  echo "${PIPESTATUS[0]}" >"$T/ls.rc" )
if [ "$(cat "$T/ls.rc")" = 1 ] && grep -q "^ct-ls: stdout: write: broken pipe" "$T/ls.err" && [ "$(wc -l <"$T/ls.err")" = 1 ]; then
    ok "ct-ls: broken pipe reported (exit 1, one line)"
else notok "ct-ls: broken pipe reported (exit 1, one line)" "rc $(cat "$T/ls.rc"): $(head -c 300 "$T/ls.err")"; fi
( ct-ls --json "$T/many.ctv" "$T/many.ctv" 2>"$T/ls2.err" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}" >"$T/ls2.rc" )
[ "$(cat "$T/ls2.rc")" = 1 ] && grep -q "broken pipe" "$T/ls2.err" && ok "ct-ls --json: broken pipe reported" ||
    notok "ct-ls --json: broken pipe reported" "rc $(cat "$T/ls2.rc"): $(head -c 300 "$T/ls2.err")"

# ---- item 11: the file-size limit and signals leave no temporary file ----
mkdir -p "$T/lim"
( ulimit -f 64; ct-pick -z raw -o "$T/lim/out.ctv" "$T/many.ctv" 2>"$T/lim.err"; echo $? >"$T/lim.rc" )
if [ "$(cat "$T/lim.rc")" = 1 ] && [ ! -e "$T/lim/out.ctv" ] && grep -q "File too large" "$T/lim.err"; then
    ok "ulimit -f: the write fails with a message, exit 1"
else notok "ulimit -f: the write fails with a message, exit 1" "rc $(cat "$T/lim.rc"): $(head -c 300 "$T/lim.err")"; fi
notmp "ulimit -f: no temporary file left" "$T/lim"
( ulimit -f 64; ct-export -t image -o "$T/lim/x.nii" "$T/big.ctv" 2>/dev/null )
[ ! -e "$T/lim/x.nii" ] && notmp "ulimit -f (ct-export): no temporary file left" "$T/lim" ||
    notok "ulimit -f (ct-export): no temporary file left" "x.nii exists"
for sig in USR1 USR2 ALRM TERM; do
    mkdir -p "$T/sig$sig"
    rm -f "$T/fifo"; mkfifo "$T/fifo"
    ct-pick -o "$T/sig$sig/out.ctv" "$T/fifo" &
    pid=$!
    exec 3>"$T/fifo"                     # held open: ct-pick waits for more records
    cat "$T/a.ctv" >&3
    started=0
    for _ in $(seq 400); do [ -n "$(find "$T/sig$sig" -name '.*.tmp*')" ] && started=1 && break; sleep 0.05; done
    [ $started = 1 ] || notok "SIG$sig while writing: the temporary file appeared" "not within 20 s"
    kill -"$sig" "$pid"
    wait "$pid" 2>/dev/null
    exec 3>&-
    [ ! -e "$T/sig$sig/out.ctv" ] && notmp "SIG$sig while writing: no temporary file left" "$T/sig$sig" ||
        notok "SIG$sig while writing: no temporary file left" "out.ctv exists"
done
