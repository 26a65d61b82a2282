#!/usr/bin/env python3
"""Benchmark (not a test): CPU time of `pyhang-trace dump` on a process with 50 threads of
40 frames each, for every interpreter the test suite finds.

For each interpreter it starts tests/programs/many_threads.py, runs
`pyhang-trace dump PID --json --repeat N` (a hidden option that reads the process N times in
one run and reports CPU time per read on stderr, caches warm after the first read), and also
measures whole cold runs (`dump PID --json`, a new process each time: ELF parsing, symbol
lookup and empty caches included) with getrusage of the children.

Usage: /usr/bin/python3 tests/bench/dump_bench.py [--repeat N] [--cold K] [python ...]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import conftest  # noqa: E402  (interpreter discovery shared with the tests)

BINARY = conftest.BINARY
PROGRAM = os.path.join(ROOT, "tests", "programs", "many_threads.py")


def start_target(python, threads, depth):
    tmp = tempfile.mkdtemp(prefix="pyhang-bench-")
    ready = os.path.join(tmp, "ready")
    proc = subprocess.Popen([python, PROGRAM, ready, str(threads), str(depth)])
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("%s: target did not start" % python)
        time.sleep(0.02)
    return proc


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_one(python, repeat, cold, threads, depth):
    proc = start_target(python, threads, depth)
    try:
        out = subprocess.run([BINARY, "dump", str(proc.pid), "--json", "--repeat", str(repeat)],
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return "FAILED: " + out.stderr.strip()
        line = [l for l in out.stderr.splitlines() if l.startswith("dump-bench:")][0]
        fields = dict(kv.split("=") for kv in line.split()[1:])
        before = children_cpu()
        for _ in range(cold):
            subprocess.run([BINARY, "dump", str(proc.pid), "--json"], stdout=subprocess.DEVNULL,
                           check=True, timeout=60)
        cold_ms = (children_cpu() - before) * 1e3 / cold
        return ("threads=%s frames=%s  warm: %.3f ms CPU/dump (%s preads)  first read: %s ms"
                "  cold process: %.2f ms CPU/run" % (fields["threads"], fields["frames"],
                                                      float(fields["cpu_ms_per_read"]),
                                                      fields["preads_per_read"],
                                                      fields["first_read_cpu_ms"], cold_ms))
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=500)
    ap.add_argument("--cold", type=int, default=20)
    ap.add_argument("--threads", type=int, default=50)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("pythons", nargs="*")
    args = ap.parse_args()
    pythons = args.pythons or [p for _, p, _ in conftest.INTERPRETERS]
    if not pythons:
        print("no interpreter found")
        return 1
    print("budget: 2 ms CPU per dump of %d threads x %d frames" % (args.threads, args.depth))
    for py in pythons:
        print("%-45s %s" % (py, bench_one(py, args.repeat, args.cold, args.threads, args.depth)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
