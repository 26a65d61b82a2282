#!/usr/bin/env python3
"""Benchmark (not a test): the extra CPU time one diagnosis costs for the wait-for graph
(lock ownership read from the target + the graph + the proofs: user/python/lockown*.c,
user/tracer/waitgraph.c), on processes of 50 and 1,000 threads, for every interpreter the test
suite finds (goals: under 2 ms and under 20 ms).

Each target (tests/programs/waitfor_bench_threads.py) has THREADS threads, each DEPTH
frames deep with a `with` of a lock in every frame, all blocked: every frame of every
thread is looked at. `pyhang-trace dump PID --json --repeat N` reads the process, then
builds the graph N times from that snapshot and prints the CPU time of the first build
(the reader's code cache warm from the read, as in the tracer) and the mean of the others.

Usage: /usr/bin/python3 tests/bench/waitgraph_bench.py [--repeat N] [--depth D]
       [--stacks typical|worst] [--threads 50|1000] [python ...]
PYHANG_BINARY=... benchmarks another build (e.g. the previous commit's, in the same run).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import conftest  # noqa: E402

BINARY = conftest.BINARY
WORST = os.path.join(ROOT, "tests", "programs", "waitfor_bench_threads.py")
TYPICAL = os.path.join(ROOT, "tests", "programs", "many_threads.py")


def start_target(program, python, threads, depth):
    tmp = tempfile.mkdtemp(prefix="pyhang-wgbench-")
    ready = os.path.join(tmp, "ready")
    proc = subprocess.Popen([python, program, ready, str(threads), str(depth)])
    deadline = time.time() + 120
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("%s: target did not start" % python)
        time.sleep(0.02)
    return proc


def bench_one(program, python, threads, depth, repeat):
    proc = start_target(program, python, threads, depth)
    try:
        out = subprocess.run([BINARY, "dump", str(proc.pid), "--json", "--repeat", str(repeat)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
        lines = [l for l in out.stderr.splitlines() if l.startswith("waitgraph-bench:")]
        if out.returncode != 0 or not lines:
            return None, out.stderr.strip()[-300:]
        return dict(kv.split("=") for kv in lines[0].split()[1:]), None
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--stacks", choices=("typical", "worst"), help="only this case")
    ap.add_argument("--threads", type=int, choices=(50, 1000), help="only this size")
    ap.add_argument("pythons", nargs="*")
    a = ap.parse_args()
    pythons = a.pythons or [p for _, p, _ in conftest.discover_interpreters()]
    print("wait-for graph per diagnosis, CPU ms. worst: %d frames per thread, each with a `with` "
          "of its own lock; typical: 40 frames, no `with` (tests/programs/many_threads.py)" % a.depth)
    print("%-44s %-8s %8s %12s %12s %8s %7s %12s %12s" % ("interpreter", "stacks", "threads", "first build",
                                                      "per build", "goal", "ratio", "first reads",
                                                      "reads/build"))
    worst = None  # (ratio, interpreter, stacks, threads)
    for py in pythons:
        for (label, program, depth), (threads, goal) in [(w, t) for w in (("typical", TYPICAL, 40), ("worst", WORST, a.depth))
                                                        for t in ((50, 2.0), (1000, 20.0))
                                                        if a.stacks in (None, w[0]) and a.threads in (None, t[0])]:
            f, err = bench_one(program, py, threads, depth, a.repeat)
            if f is None:
                print("%-44s %-8s %8d FAILED: %s" % (py, label, threads, err))
                continue
            first, per = float(f["first_cpu_ms"]), float(f["cpu_ms_per_build"])
            print("%-44s %-8s %8s %12.3f %12.3f %8s %7.2f %12s %12s%s" % (
                py, label, f["threads"], first, per, goal, max(first, per) / goal,
                f.get("first_reads", "?"), f.get("reads_per_build", "?"),
                "" if max(first, per) < goal else "  OVER"))
            sys.stdout.flush()
            if worst is None or max(first, per) / goal > worst[0]:
                worst = (max(first, per) / goal, py, label, f["threads"])
    if worst:
        print("highest ratio to the goal: %.2f (%s, %s, %s threads)%s" % (
            worst + ("" if worst[0] < 1 else ": OVER THE GOAL",)))


if __name__ == "__main__":
    main()
