#!/bin/bash
# Futex tracing-cost benchmark driver.  Needs root.  Not part of `make test`.
#
#   tests/bench/run_futex_bench.sh [-r ROUNDS] [-n ITERS] [-c CONFIGS] [-f]
#
# Builds tests/bench (into build/bench) and expects build/pyhang-trace to exist (`make`;
# override with PYHANG_BINARY).  In every round it runs futex_bench once under each
# configuration, alternating configurations so that drift of a noisy VM hits all alike:
#
#   untraced   nothing attached
#   floor      empty BPF programs on tp/syscalls/sys_{enter,exit}_futex (futex_floor)
#   v:NAME     one design option of variants.bpf.c (design_variant NAME <bench pid>): hash vs
#              array vs task-storage records, bpf_ktime_get_ns vs bpf_jiffies64, e.g.
#              -c "untraced floor v:hash_ktime v:task_ktime v:array_ktime v:hash_jiffies v:array_jiffies"
#   rawfloor   the other design's floor: raw_tp sys_enter/sys_exit keeping only futex by its
#              syscall number (futex_floor --raw); not in the default set, add it with -c
#   all        pyhang-trace --all        (every process: the bench's futex waits ARE recorded)
#   default    pyhang-trace              (Python processes only: the bench is not Python, so its
#                                         waits are filtered out; measures the filter's cost)
#   pid        pyhang-trace -p <bench>   (only the bench process; it is not Python, so its
#                                         waits are still filtered out)
#   pidall     pyhang-trace --all -p <bench>  (only the bench process, waits recorded)
#
# futex_bench measures (best of 3 x ITERS calls, per op):
#   wake     FUTEX_WAKE, nobody waiting: returns at once
#   wait     FUTEX_WAIT with a value mismatch: returns EAGAIN at once (a wait-type op)
#   getppid  an unrelated syscall: pays only the syscall-tracing slow path
#
# Prints the median ns/call over the rounds per configuration, the added cost over
# "untraced", and that added cost as a multiple of the floor's added cost.
#
# Any other BPF program attached to a syscall tracepoint (another tracer running on the
# host) slows every configuration down, "untraced" included, and makes the table
# meaningless: before each run the driver waits up to 120 s for such programs to go
# away (`bpftool perf show`), then aborts; -f measures anyway and flags the table.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$ROOT/build/bench"
TRACER="${PYHANG_BINARY:-$ROOT/build/pyhang-trace}"
ROUNDS=5
ITERS=1000000
CONFIGS="untraced floor all default pid pidall"
FORCE=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while getopts "r:n:c:fh" opt; do
    case "$opt" in
        f) FORCE=1 ;;
        r) ROUNDS="$OPTARG" ;;
        n) ITERS="$OPTARG" ;;
        c) CONFIGS="$OPTARG" ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "run_futex_bench: must run as root" >&2
    exit 2
fi
if [ ! -d /sys/kernel/tracing/events ]; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi
make -s -C "$HERE" BUILD="$BUILD" >&2
case " $CONFIGS " in
    *" all "*|*" default "*|*" pid "*|*" pidall "*)
        if [ ! -x "$TRACER" ]; then
            echo "run_futex_bench: $TRACER missing (run make first)" >&2
            exit 2
        fi ;;
esac

TMP="$(mktemp -d /tmp/futex_bench.XXXXXX)"
BG_PIDS=()
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.2
    for p in "${BG_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX PID SECONDS: until FILE has a line matching REGEX; fails if PID dies.
wait_for() {
    local file="$1" re="$2" pid="$3" deadline=$((SECONDS + $4))
    while ! grep -Eq "$re" "$file" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.05
    done
}

# stop_bg PID: SIGINT, then SIGKILL after 10 s.
stop_bg() {
    local pid="$1" i
    kill -INT "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# foreign_attached [OUR_PID]: `bpftool perf show` lines of syscall-tracepoint programs held
# by any process but OUR_PID.
foreign_attached() {
    bpftool perf show 2>/dev/null | awk -v ours="${1:-0}" '$2 != ours && / sys_(enter|exit)_|raw_tracepoint +sys_/'
}

# wait_quiet [OUR_PID]: wait for other tracers to detach (see the header).
CONTAMINATED=0
wait_quiet() {
    local deadline=$((SECONDS + 120)) warned=0
    while [ -n "$(foreign_attached "${1:-0}")" ]; do
        if [ "$warned" -eq 0 ]; then
            echo "run_futex_bench: other BPF programs are attached to syscall tracepoints; waiting:" >&2
            { foreign_attached "${1:-0}" | sed 's/^/    /' | head -5 >&2; } || true  # head ends the pipe early: not a failure
            warned=1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            if [ "$FORCE" -eq 1 ]; then
                CONTAMINATED=$((CONTAMINATED + 1))
                return 0
            fi
            echo "run_futex_bench: still attached after 120 s; stop them or use -f" >&2
            exit 1
        fi
        sleep 1
    done
}

# run_one CONFIG ROUND: appends "CONFIG ROUND OP NS" lines to $TMP/results.
run_one() {
    local cfg="$1" round="$2" attach_pid="" bench tracer_args=()
    rm -f "$TMP/gate" "$TMP/bench.out" "$TMP/attach.out" "$TMP/attach.err"
    mkfifo "$TMP/gate"
    # The bench is gated: it prints its pid, then waits for a line on the fifo.
    "$BUILD/futex_bench" -g -n "$ITERS" < "$TMP/gate" > "$TMP/bench.out" &
    bench=$!
    BG_PIDS+=("$bench")
    exec 3> "$TMP/gate"
    wait_for "$TMP/bench.out" '^pid ' "$bench" 10 || { echo "bench did not start" >&2; return 1; }

    case "$cfg" in
        untraced) ;;
        floor)
            "$BUILD/futex_floor" > "$TMP/attach.out" 2> "$TMP/attach.err" &
            attach_pid=$! ;;
        rawfloor)
            "$BUILD/futex_floor" --raw > "$TMP/attach.out" 2> "$TMP/attach.err" &
            attach_pid=$! ;;
        v:*)
            "$BUILD/design_variant" "${cfg#v:}" "$bench" > "$TMP/attach.out" 2> "$TMP/attach.err" &
            attach_pid=$! ;;
        all)     tracer_args=(--all) ;;
        default) tracer_args=() ;;
        pid)     tracer_args=(-p "$bench") ;;
        pidall)  tracer_args=(--all -p "$bench") ;;
        *) echo "unknown config $cfg" >&2; exit 2 ;;
    esac
    if [ -z "$attach_pid" ] && [ "$cfg" != untraced ]; then
        "$TRACER" --json "${tracer_args[@]}" > "$TMP/attach.out" 2> "$TMP/attach.err" &
        attach_pid=$!
    fi
    if [ -n "$attach_pid" ]; then
        BG_PIDS+=("$attach_pid")
        if ! wait_for "$TMP/attach.out" '^attached$|"event": *"start"' "$attach_pid" 30; then
            echo "run_futex_bench: $cfg: no start/attached line within 30 s; stderr:" >&2
            sed 's/^/    /' "$TMP/attach.err" >&2
            stop_bg "$attach_pid"
            exec 3>&-
            kill -KILL "$bench" 2>/dev/null || true
            wait "$bench" 2>/dev/null || true
            echo "$cfg $round FAILED 0" >> "$TMP/results"
            return 0
        fi
    fi
    wait_quiet "${attach_pid:-0}"
    echo go >&3
    exec 3>&-
    wait "$bench" || { echo "run_futex_bench: futex_bench failed" >&2; exit 1; }
    [ -n "$attach_pid" ] && stop_bg "$attach_pid"
    awk -v c="$cfg" -v r="$round" '$1 != "pid" { print c, r, $1, $2 }' "$TMP/bench.out" >> "$TMP/results"
}

: > "$TMP/results"
echo "futex_bench: $ROUNDS rounds x {$CONFIGS}, best of 3 x $ITERS calls per op" >&2
for round in $(seq "$ROUNDS"); do
    for cfg in $CONFIGS; do
        run_one "$cfg" "$round"
    done
    echo "  round $round done" >&2
done

if [ "$CONTAMINATED" -gt 0 ]; then
    echo "WARNING: $CONTAMINATED run(s) measured while another tracer was attached (-f): the table is not trustworthy" >&2
fi
python3 - "$TMP/results" "$CONFIGS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
configs = sys.argv[2].split()
ops = ["wake", "wait", "getppid"]
failed = {c for c, r, op, v in rows if op == "FAILED"}
val = {}
for c, r, op, v in rows:
    if op != "FAILED":
        val.setdefault((c, op), []).append(float(v))
med = {k: statistics.median(v) for k, v in val.items()}
notes = {
    "untraced": "nothing attached",
    "floor": "empty progs on sys_{enter,exit}_futex",
    "rawfloor": "raw_tp sys_enter/exit, futex nr filter",
    "all": "pyhang-trace --all (bench waits recorded)",
    "default": "pyhang-trace (bench not Python: filtered)",
    "pid": "pyhang-trace -p BENCH (not Python: filtered)",
    "pidall": "pyhang-trace --all -p BENCH (waits recorded)",
}
def cell(c, op):
    return med.get((c, op))
print()
print("median ns/call (added = minus untraced; xfloor = added / floor's added)")
hdr = "| config           | " + " | ".join("%-7s ns | added | xfloor" % op for op in ops) + " | what"
print(hdr)
print("|" + "---|" * (1 + 3 * len(ops)) + "---|")
for c in configs:
    cells = []
    for op in ops:
        v = cell(c, op)
        if v is None:
            cells.append("%10s | %5s | %6s" % ("FAILED" if c in failed else "-", "-", "-"))
            continue
        base = cell("untraced", op)
        fl = cell("floor", op)
        added = v - base if base is not None else None
        fadd = fl - base if (fl is not None and base is not None) else None
        ratio = (added / fadd) if (added is not None and fadd and fadd > 0) else None
        cells.append("%10.0f | %5s | %6s" % (
            v, "-" if added is None or c == "untraced" else "%+.0f" % added,
            "-" if ratio is None or c in ("untraced",) else "%.2f" % ratio))
    print("| %-16s | " % c + " | ".join(cells) + " | " + notes.get(c, ""))
n = {k: len(v) for k, v in val.items()}
print("\nruns per cell: %s" % (min(n.values()) if n else 0))
if failed:
    print("FAILED configs (tracer did not start): " + ", ".join(sorted(failed)))
PY
