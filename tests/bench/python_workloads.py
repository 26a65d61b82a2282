#!/usr/bin/env python3
"""Python workloads traced vs untraced: throughput ratios. Needs root and
build/pyhang-trace. Not part of `make test`.

    tests/bench/python_workloads.py [-r ROUNDS] [-d SECONDS] [--python PATH]
                                    [--workloads lock,condition,queue,run,popen]
                                    [--configs untraced,default,pid]

Workloads (tests/bench/pyworkload.py, run by --python, pyenv 3.12 by default):
  lock        4 threads contending on one threading.Lock      (acquisitions/s)
  condition   2 threads ping-ponging through a Condition      (hand-overs/s)
  queue       2 producers + 2 consumers on a queue.Queue      (items/s)
  run         subprocess.run(["/bin/true"]) in a loop         (runs/s)
  popen       Popen(["/bin/true"]).wait() in a loop           (runs/s)
Configurations:
  untraced    no tracer running
  default     pyhang-trace --json -q -o FILE       (host-wide, Python processes only)
  pid         pyhang-trace --json -q -o FILE -p PID (only the workload's process)

Method: the machine is shared and noisy, so absolute numbers from separate invocations
mean nothing. In each round every workload runs once under every configuration, one after
the other, in an order that rotates from round to round; the tracer is started before and
stopped after each traced run (the workload process is started first and waits on stdin,
so -p gets its pid, and the tracer's start-up scan is not in the measured time). The table
gives the median throughput per configuration and two ratios to untraced: of the medians,
and the median of the per-round ratios (each traced run against the untraced run of the
same round). Goal: a ratio of at least 0.98."""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil as bu  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ("lock", "condition", "queue", "run", "popen")
CONFIGS = ("untraced", "default", "pid")
UNITS = {"lock": "acq/s", "condition": "handoffs/s", "queue": "items/s", "run": "runs/s",
         "popen": "runs/s"}


def run_once(python, workload, duration, config):
    """Throughput (ops/s) of one run of workload under config."""
    p = subprocess.Popen([python, os.path.join(HERE, "pyworkload.py"), workload, str(duration)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    tracer = None
    try:
        pid, ready = p.stdout.readline().split()
        assert ready == b"ready"
        if config == "default":
            tracer = bu.Tracer().start()
        elif config == "pid":
            tracer = bu.Tracer(["-p", pid.decode()]).start()
        p.stdin.write(b"go\n")
        p.stdin.flush()
        ops, elapsed = p.stdout.readline().split()
        p.wait()
        return int(ops) / float(elapsed)
    finally:
        if tracer:
            tracer.stop()
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdin.close()
        p.stdout.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("-d", "--duration", type=float, default=3.0, help="seconds per run")
    ap.add_argument("--python", default=bu.DEFAULT_PYTHON)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    args = ap.parse_args()
    bu.require_root()
    workloads = [w for w in args.workloads.split(",") if w]
    configs = [c for c in args.configs.split(",") if c]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %s" % w)
    for c in configs:
        if c not in CONFIGS:
            ap.error("unknown configuration %s" % c)
    if "untraced" not in configs:
        configs.insert(0, "untraced")

    tput = {(w, c): [] for w in workloads for c in configs}
    for rnd in range(args.rounds):
        for w in workloads:
            order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
            for c in order:
                v = run_once(args.python, w, args.duration, c)
                tput[(w, c)].append(v)
            print("round %d %-9s %s" % (rnd + 1, w, "  ".join(
                "%s %.0f" % (c, tput[(w, c)][-1]) for c in configs)), file=sys.stderr)

    print("\n%s: medians of %d rounds x %.0f s, configurations alternating" % (
        args.python, args.rounds, args.duration))
    head = "%-10s %-11s" % ("workload", "unit") + "".join("%12s" % c for c in configs)
    traced = [c for c in configs if c != "untraced"]
    head += "".join("  %-20s" % ("%s/untraced" % c) for c in traced)
    print(head)
    for w in workloads:
        base = tput[(w, "untraced")]
        line = "%-10s %-11s" % (w, UNITS[w])
        line += "".join("%12.0f" % bu.median(tput[(w, c)]) for c in configs)
        for c in traced:
            r_med = bu.median(tput[(w, c)]) / bu.median(base)
            r_pair = bu.median([t / b for t, b in zip(tput[(w, c)], base)])
            line += "  %-20s" % ("%.3f (paired %.3f)" % (r_med, r_pair))
        print(line)
    print("goal: ratio >= 0.98 (within 2% of untraced)")


if __name__ == "__main__":
    main()
