#!/usr/bin/env python3
"""Design options of the futex wait path, compared by what their programs cost to run.

    tests/bench/design_options.py [-r ROUNDS] [-n ITERS]

Needs root, `make bench` (build/bench) and `make` (build/pyhang-trace). Not part of
`make test`.

Method: kernel.bpf_stats_enabled makes the kernel count, per BPF program, how often it ran
and for how long (run_cnt, run_time_ns). For each configuration, futex_bench runs ITERS
FUTEX_WAIT calls that return at once (EAGAIN; a wait-type op that a tracer records on entry
and marks done on exit), in a process that the configuration watches, and the ns per run
of the configuration's sys_enter_futex and sys_exit_futex programs are read before and
after. Configurations alternate within every round (a noisy machine drifts alike for all);
the medians over the rounds are printed. The per-call "body" is enter + exit minus the
empty pair's: what the programs' own work adds to the tracepoints' fixed cost (which
run_futex_bench.sh measures in wall-clock time, far more noisily). bpf_stats timing adds the
same ~2 clock reads to every program, empty ones included, so it cancels out in the body.

Configurations: the variants of variants.bpf.c (design_variant NAME PID: hash / task
storage / direct-mapped array records, bpf_ktime_get_ns / bpf_jiffies64) and pyhang-trace
itself (`--all -p BENCH`, its futex_enter/futex_exit programs)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build", "bench")
TRACER = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))
VARIANTS = ["empty", "hash_ktime", "task_ktime", "array_ktime", "hash_jiffies", "array_jiffies"]
TRACER_CFG = "pyhang-trace"


def prog_stats():
    """{prog id: (name, run_cnt, run_time_ns)} of every loaded program."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True, capture_output=True).stdout
    return {p["id"]: (p.get("name", ""), p.get("run_cnt", 0), p.get("run_time_ns", 0))
            for p in json.loads(out)}


def wait_line(proc, prefix, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise RuntimeError("no %r line from %s" % (prefix, proc.args[0]))


def attach(cfg, bench_pid):
    if cfg == TRACER_CFG:
        argv = [TRACER, "--json", "--all", "-p", str(bench_pid)]
        ready = '{"event":"start"'
    else:
        argv = [os.path.join(BUILD, "design_variant"), cfg, str(bench_pid)]
        ready = "attached"
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wait_line(p, ready, 30)
    return p


def futex_progs(cfg, new_ids, stats):
    """(enter id, exit id) of cfg's programs on sys_enter_futex / sys_exit_futex."""
    names = ("futex_enter", "futex_exit") if cfg == TRACER_CFG else (cfg + "_enter", cfg + "_exit")
    # the kernel keeps 15 characters of a name; bpftool shows the whole one from BTF
    found = {}
    for i in new_ids:
        for n in names:
            if stats[i][0] in (n, n[:15]):
                found[n] = i
    if len(found) != 2:
        raise RuntimeError("%s: programs %s not found among %r" % (cfg, names, [stats[i][0] for i in new_ids]))
    return found[names[0]], found[names[1]]


def run_one(cfg, iters):
    """ns per run of cfg's (enter, exit) programs over one futex_bench run."""
    bench = subprocess.Popen([os.path.join(BUILD, "futex_bench"), "-g", "-n", str(iters), "-r", "1", "wait"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(wait_line(bench, "pid ", 10).split()[1])
    before_ids = set(prog_stats())
    att = attach(cfg, pid)
    try:
        s0 = prog_stats()
        enter, exit_ = futex_progs(cfg, set(s0) - before_ids, s0)
        bench.stdin.write("go\n")
        bench.stdin.close()
        bench.wait(120)
        s1 = prog_stats()
    finally:
        att.terminate()
        att.wait(30)
    res = []
    for i in (enter, exit_):
        runs = s1[i][1] - s0[i][1]
        res.append((s1[i][2] - s0[i][2]) / runs if runs else float("nan"))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("-n", "--iters", type=int, default=1000000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("design_options: must run as root")
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    configs = VARIANTS + [TRACER_CFG]
    got = {c: ([], []) for c in configs}
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for cfg in order:
                e, x = run_one(cfg, args.iters)
                got[cfg][0].append(e)
                got[cfg][1].append(x)
            print("  round %d done" % (r + 1), file=sys.stderr)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    med = {c: (statistics.median(got[c][0]), statistics.median(got[c][1])) for c in configs}
    base = sum(med["empty"])
    print("ns per program run (bpf_stats), medians of %d rounds x %d FUTEX_WAIT calls" % (args.rounds, args.iters))
    print("| configuration | enter ns | exit ns | body ns per call (over empty) |")
    print("|---|---|---|---|")
    for c in configs:
        e, x = med[c]
        body = "-" if c == "empty" else "%+.0f" % (e + x - base)
        print("| %s | %.0f | %.0f | %s |" % (c, e, x, body))


if __name__ == "__main__":
    main()
