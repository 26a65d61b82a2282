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
one run. Other tracers attached to syscall tracepoints on the host slow every
configuration alike (untraced too); the ratios are what to read."""
import argparse
import os
import statistics
import subprocess
import sys

import benchutil

ROOT = benchutil.ROOT
BENCH = os.path.join(ROOT, "build", "bench", "futex_bench")
NEW = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))
OPS = ["wait", "sigchld", "sigusr1"]


def run_one(binary, extra, iters):
    b = subprocess.Popen([BENCH, "-g", "-n", str(iters), "-r", "3"] + OPS, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    pid = int(b.stdout.readline().split()[1])
    tr = None
    if binary:
        benchutil.TRACER = binary
        tr = benchutil.Tracer(["--all", "-p", str(pid)] + extra).start()
    try:
        b.stdin.write(b"go\n")
        b.stdin.flush()
        out = {}
        for _ in OPS:
            name, ns = b.stdout.readline().split()
            out[name.decode()] = float(ns)
        b.wait(60)
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
    res = {c[0]: {op: [] for op in OPS} for c in configs}
    for r in range(a.rounds):
        for name, binary, extra in configs:
            for op, ns in run_one(binary, extra, a.iters).items():
                res[name][op].append(ns)
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    med = {c: {op: statistics.median(v) for op, v in ops.items()} for c, ops in res.items()}
    print("median ns/call over %d rounds (%d calls, best of 3)" % (a.rounds, a.iters))
    print("%-9s" % "config" + "".join("%12s %9s" % (op, "+cost") for op in OPS))
    for c, _, _ in configs:
        print("%-9s" % c + "".join("%12.1f %9.1f" % (med[c][op], med[c][op] - med["untraced"][op])
                                   for op in OPS))
    for c in ("off", "on"):
        print("%s/before  " % c + "  ".join("%s %.3f" % (op, med[c][op] / med["before"][op]) for op in OPS))


if __name__ == "__main__":
    main()
