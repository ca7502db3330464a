# pipelines/slurm: a dataset on a real single-node Slurm (Debian's slurmctld + slurmd + munge),
# configured and started here on loopback in the scratch directory and stopped at the end:
# submit.sh's job array runs the manifest's cases in shards, the merge job waits for it
# (afterok) and merges the probabilities (probs.ctv, the released probs.csv) and computes the
# metrics from the label CSV, a corrupt case fails alone and is listed, a re-submission redoes
# only it, and the results equal those of make on the same manifest.  Skips (saying why) where the daemons are not
# installed or cannot start; needs root, as CI has (slurmd runs the jobs as their user).
source "$(dirname "$0")/lib.sh"
ROOT=${CT_ROOT:-$PWD}

for d in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v $d >/dev/null || { skip "slurm" "$d not installed (scripts/deps.sh test installs munge slurmctld slurmd slurm-client)"; exit 0; }
done
[ "$(id -u)" = 0 ] || { skip "slurm" "not root: slurmd must run as root to start jobs"; exit 0; }

S=$T/slurm
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge"
chmod 700 "$S/munge"
stop_all() {
    local f
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
        for _ in $(seq 50); do [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$T"
}
trap stop_all EXIT
daemons_fail() { skip "slurm" "$1: $(tail -n 2 "$2" 2>/dev/null | tr '\n' ' ')"; exit 0; }

head -c 1024 /dev/urandom >"$S/munge/munge.key" && chmod 400 "$S/munge/munge.key"
munged -f -S "$S/munge/munge.socket" --key-file="$S/munge/munge.key" --log-file="$S/munge/munged.log" \
    --pid-file="$S/munge/munged.pid" --seed-file="$S/munge/seed" 2>>"$S/munge/munged.log" ||
    daemons_fail "munged does not start" "$S/munge/munged.log"

# two free TCP ports on loopback for slurmctld and slurmd
read -r p1 p2 < <("$PYTHON" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
cat >"$S/slurm.conf" <<CONF
ClusterName=ctvistest
SlurmctldHost=localhost
SlurmctldPort=$p1
SlurmdPort=$p2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$S/slurm.conf
slurmctld -f "$S/slurm.conf" 2>>"$S/log/slurmctld.log" || daemons_fail "slurmctld does not start" "$S/log/slurmctld.log"
slurmd -f "$S/slurm.conf" -N localhost 2>>"$S/log/slurmd.log" || daemons_fail "slurmd does not start" "$S/log/slurmd.log"
state=
for _ in $(seq 100); do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.2
done
[ "$state" = idle ] || daemons_fail "the node is not idle after 20 s (state '$state')" "$S/log/slurmd.log"
ok "slurm: slurmctld, slurmd and munged up on loopback (ports $p1, $p2)"

# ---- the dataset: four small phantoms in CT-RATE's layout, the last one corrupt ----
random_weights "$T/w.ctv" 3 ||
    { notok "setup: random weights" "ctvis-convert failed"; exit 1; }
"$ROOT/pipelines/phantom-dataset.sh" --cases 4 --corrupt "$T/rate" >/dev/null &&
    "$ROOT/pipelines/manifest.sh" "$T/rate/valid" "$T/rate/masks/valid" >"$T/manifest.tsv" ||
    { notok "setup: dataset" "phantom-dataset.sh or manifest.sh failed"; exit 1; }
export RESAMPLE_FLAGS="--spacing 16,8,8 --pad-to 32,64,64" MASKPOOL_FLAGS="--roi 32,64,64" WEIGHTS=$T/w.ctv
export LABELS=$(echo "$T/rate/multi_abnormality_labels/"*.csv)

# submit.sh, then wait for the merge job to leave the queue; prints the job ids
run_slurm() {
    local ids merge
    ids=$(OUT="$T/sout" "$ROOT/pipelines/slurm/submit.sh" -n 2 "$T/manifest.tsv") || return 1
    merge=${ids##* }
    for _ in $(seq 600); do
        squeue -h -j "$merge" 2>/dev/null | grep -q . || break
        sleep 0.2
    done
    echo "$ids"
}
field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }   # field JOB KEY (one line per task)
epoch() { while read -r t; do date -d "$t" +%s; done; }

ids=$(run_slurm) || { notok "slurm: submit.sh" "submission failed"; exit 1; }
read -r once array merge <<<"$ids"
states=$(field "$array" JobState | sort | uniq -c | tr -s ' ' | sed 's/^ //')
[ "$(field "$once" JobState)" = COMPLETED ] && [ "$states" = "2 COMPLETED" ] &&
    ok "slurm: the once job and the 2 array tasks complete" ||
    notok "slurm: the once job and the 2 array tasks complete" "once $(field "$once" JobState), array $states; $(cat "$T/sout/slurm/"*.out 2>/dev/null | head -c 400)"
a_start=$(field "$array" StartTime | epoch | sort -n | head -1)
a_end=$(field "$array" EndTime | epoch | sort -n | tail -1)
m_start=$(field "$merge" StartTime | epoch)
o_end=$(field "$once" EndTime | epoch)
[ -n "$m_start" ] && [ "$a_start" -ge "$o_end" ] && [ "$m_start" -ge "$a_end" ] &&
    ok "slurm: afterok: the array after the once job, the merge after the array" ||
    notok "slurm: afterok: the array after the once job, the merge after the array" "once end $o_end, array $a_start..$a_end, merge $m_start"
# the corrupt case does not fail its task, but the merge job reports it
if [ "$(field "$merge" JobState)" = FAILED ] && [ "$(field "$merge" ExitCode)" = 1:0 ] &&
   grep -q "^summary: 3 of 4 cases done, 1 failed" "$T/sout/slurm/${merge}_merge.out" &&
   grep -q "^  failed valid_4_a_1: ct-resample: .*truncated file" "$T/sout/slurm/${merge}_merge.out"; then
    ok "slurm: the merge job lists the failed case and exits 1"
else notok "slurm: the merge job lists the failed case and exits 1" "$(field "$merge" JobState): $(cat "$T/sout/slurm/"*merge.out 2>/dev/null)"; fi
grep -qE '^valid_[0-9]_a_1 ok [0-9.]+ s \| [0-9]/4 done' "$T/sout/slurm/${array}_0.out" &&
    ok "slurm: the tasks' logs show the progress" || notok "slurm: the tasks' logs show the progress" "$(cat "$T/sout/slurm/${array}_0.out")"

if grep -q "^metrics: $T/sout/metrics.txt" "$T/sout/slurm/${merge}_merge.out" && grep -q '^3 cases' "$T/sout/metrics.txt" &&
   [ "$(head -1 "$T/sout/probs.csv" | cut -d, -f1-2)" = "file_name,lung_Emphysema_Not Emphysema._Emphysema." ] &&
   [ "$(cut -d, -f1 "$T/sout/probs.csv" | tail -n +2 | tr '\n' ' ')" = "valid_1_a_1.nii.gz valid_2_a_1.nii.gz valid_3_a_1.nii.gz " ]; then
    ok "slurm: the merge job writes probs.csv and the metrics of the done cases"
else notok "slurm: the merge job writes probs.csv and the metrics of the done cases" "$(ls "$T/sout"; head -c 300 "$T/sout/probs.csv")"; fi

# the same manifest with make: the same results (the weights and labels paths are absolute in both)
make -s -f "$ROOT/pipelines/dataset.mk" -j 2 MANIFEST="$T/manifest.tsv" OUT="$T/mout" >/dev/null 2>&1
same "slurm: the same probabilities CSV as make" "$T/mout/probs.csv" "$T/sout/probs.csv"
same "slurm: the same metrics as make" "$T/mout/metrics.csv" "$T/sout/metrics.csv"

# repaired and re-submitted: only that case runs, the merge job succeeds
before=$(stat -c %Y "$T/sout/cases/valid_1_a_1.ctv")
cp "$T/rate/valid/valid_1/valid_1_a/valid_1_a_1.nii.gz" "$T/rate/valid/valid_4/valid_4_a/valid_4_a_1.nii.gz"
sleep 1
ids=$(run_slurm) || { notok "slurm: re-submission" "submission failed"; exit 1; }
read -r once array merge <<<"$ids"
ran=$(cat "$T/sout/slurm/${array}"_*.out | grep -cE '^valid_[0-9]_a_1 (ok|failed) ')
if [ "$(field "$merge" JobState)" = COMPLETED ] && [ "$ran" = 1 ] && [ -e "$T/sout/cases/valid_4_a_1.ctv" ] &&
   [ "$(stat -c %Y "$T/sout/cases/valid_1_a_1.ctv")" = "$before" ] && [ "$(grep -c . "$T/sout/probs.csv")" = 5 ] &&
   grep -q "^summary: 4 of 4 cases done, 0 failed, 0 missing" "$T/sout/slurm/${merge}_merge.out"; then
    ok "slurm: a re-submission redoes only the failed case"
else notok "slurm: a re-submission redoes only the failed case" "ran $ran, $(field "$merge" JobState): $(cat "$T/sout/slurm/${merge}_merge.out" 2>/dev/null)"; fi
