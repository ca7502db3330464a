# pipelines/driver.sh - sourced by the drivers parallel.sh and slurm/submit.sh: their common
# command line  [OPT N] MANIFEST [-- OPTIONS...]  (--help prints the caller's header comment).
#   driver_args NAME OPT "$@"   sets count (empty without OPT), manifest, and more=(OPTIONS...)
driver_die() { echo "$DRIVER: $*" >&2; exit 1; }
driver_args() {
    DRIVER=$1
    local opt=$2
    shift 2
    count=
    if [ "${1:-}" = "$opt" ]; then
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || driver_die "$opt: expected a positive count"
        count=$2; shift 2
    fi
    case "${1:-}" in -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
    [ $# -ge 1 ] || driver_die "usage: $DRIVER [$opt N] MANIFEST [-- OPTIONS...]"
    manifest=$1; shift
    [ "${1:-}" = -- ] && shift
    more=("$@")
    [ -r "$manifest" ] || driver_die "$manifest: cannot read the manifest"
}
