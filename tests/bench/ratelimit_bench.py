#!/usr/bin/env python3
"""Cost of the per-process rate limits (bpf/ratelimit.bpf.h) on the paths they sit on or
next to: futex waits (untouched: the bucket is not on that path), rt_sigaction(SIGCHLD)
changes (the bucket is checked before a stack is captured) and other sigactions (filtered
before it). Needs root, build/bench/futex_bench (make -C tests/bench) and two tracers.
Not part of `make test`.

    tests/bench/ratelimit_bench.py --before OLD_BINARY [-r ROUNDS] [-n ITERS]

Configurations, alternated in every round so that drift hits all alike:
  untraced  nothing attached
  before    OLD_BINARY --all -p BENCH     (a build without rate limits)
  off       build/pyhang-trace --all -p BENCH --rate-limit 0
  on        build/pyhang-trace --all -p BENCH            (default limits, 20/s burst 100)
futex_bench -g runs `wait sigchld sigusr1` (best of 3 x ITERS calls each); the tracer is
attached to that very process (-p, --all: its waits are recorded and its SIGCHLD changes
are events). Prints the median ns/call per configuration and op, the cost each adds over
untraced, and the ratios on/before and off/before of the total ns/call, measured in this
one run; then, from the kernel's own counters (--bpf-stats), the ns per run of the futex
and sigaction programs (a SIGCHLD change past the burst skips the stack capture, which is
why the limit makes sigaction_exit cheaper under a flood), and their ratios. Other tracers attached to syscall tracepoints on the host slow every
configuration alike (untraced too); the ratios are what to read."""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import urllib.request

import benchutil

ROOT = benchutil.ROOT
BENCH = os.path.join(ROOT, "build", "bench", "futex_bench")
NEW = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))
OPS = ["wait", "sigchld", "sigusr1"]
PROGS = ["futex_enter", "futex_exit", "sigaction_enter", "sigaction_exit"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def prog_ns(port):
    """ns per run of each BPF program of the tracer (kernel run_time_ns / run_cnt)."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    runs, secs = {}, {}
    for m in re.finditer(r'^pyhang_bpf_program_(runs_total|run_seconds_total)\{program="(\w+)"\} (\S+)$',
                         body, re.M):
        (runs if m.group(1) == "runs_total" else secs)[m.group(2)] = float(m.group(3))
    return {p: secs[p] * 1e9 / runs[p] for p in PROGS if runs.get(p)}


def run_one(binary, extra, iters):
    b = subprocess.Popen([BENCH, "-g", "-n", str(iters), "-r", "3"] + OPS, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    pid = int(b.stdout.readline().split()[1])
    tr = None
    port = free_port()
    if binary:
        benchutil.TRACER = binary
        tr = benchutil.Tracer(["--all", "-p", str(pid), "--metrics-addr", "127.0.0.1:%d" % port,
                               "--bpf-stats"] + extra).start()
    try:
        b.stdin.write(b"go\n")
        b.stdin.flush()
        out = {}
        for _ in OPS:
            name, ns = b.stdout.readline().split()
            out[name.decode()] = float(ns)
        b.wait(60)
        if tr:
            out.update(("bpf:" + k, v) for k, v in prog_ns(port).items())
        return out
    finally:
        if tr:
            tr.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="a pyhang-trace built without rate limits")
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("-n", "--iters", type=int, default=200000)
    a = ap.parse_args()
    configs = [("untraced", None, []), ("before", a.before, []), ("off", NEW, ["--rate-limit", "0"]),
               ("on", NEW, [])]
    res = {c[0]: {} for c in configs}
    for r in range(a.rounds):
        for name, binary, extra in configs:
            for op, ns in run_one(binary, extra, a.iters).items():
                res[name].setdefault(op, []).append(ns)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    med = {c: {op: statistics.median(v) for op, v in ops.items()} for c, ops in res.items()}
    print("median ns/call over %d rounds (%d calls, best of 3)" % (a.rounds, a.iters))
    print("%-9s" % "config" + "".join("%12s %9s" % (op, "+cost") for op in OPS))
    for c, _, _ in configs:
        print("%-9s" % c + "".join("%12.1f %9.1f" % (med[c][op], med[c][op] - med["untraced"][op])
                                   for op in OPS))
    for c in ("off", "on"):
        print("%s/before  " % c + "  ".join("%s %.3f" % (op, med[c][op] / med["before"][op]) for op in OPS))
    print("BPF programs, median ns per run (kernel.bpf_stats_enabled), over the whole bench run:")
    print("%-9s" % "config" + "".join("%17s" % p for p in PROGS))
    for c, _, _ in configs[1:]:
        print("%-9s" % c + "".join("%17.1f" % med[c].get("bpf:" + p, float("nan")) for p in PROGS))
    for c in ("off", "on"):
        print("%s/before  " % c + "  ".join("%s %.3f" % (p, med[c]["bpf:" + p] / med["before"]["bpf:" + p])
                                            for p in PROGS if "bpf:" + p in med[c] and "bpf:" + p in med["before"]))


if __name__ == "__main__":
    main()
