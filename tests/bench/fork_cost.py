#!/usr/bin/env python3
"""The cost of the fork and exit hooks (bpf/fork.bpf.h) on forking Python programs: CPU
time per fork, untraced, under a BEFORE binary and under this tree's build, in one run.
Needs root. Not part of `make test`.

    tests/bench/fork_cost.py --before OLD_BINARY [-r ROUNDS] [-d SECONDS] [--python PATH]
                             [--configs default,pid] [--bpf-stats]

Workloads (run by --python, pyenv 3.12 by default; each fork's child exits at once):
  fork      os.fork() + os._exit(0) + os.waitpid() from a single-threaded parent
  forkmt    the same while a second thread of the parent sleeps (the hook records the
            fork and captures the forking thread's stack: multi-threaded parents only)
  popenmt   subprocess.Popen(["/bin/true"]).wait() while a second thread sleeps (fork +
            exec: the record is taken, then dropped at the exec)
  failmt    forkmt whose children exit with status 1 (a child_died record each)
Configurations: untraced; `before` and `after` in fleet mode (`--json -q -o FILE`,
host-wide) or, with --configs pid, attached with -p to the workload.

Method as python_workloads.py: rounds alternate the configurations (rotating order); the
figure is the median of per-round ratios of CPU time per fork (the workload and its reaped
children, user + system: the BPF programs run in their context), after over before and
each over untraced. With --bpf-stats, the BPF run time per fork (kernel.bpf_stats_enabled)."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil as bu  # noqa: E402
from python_workloads import tracer_prog_time  # noqa: E402

WORKLOADS = ("fork", "forkmt", "popenmt", "failmt")


def child_main(name, duration):
    if name != "fork":
        t = threading.Thread(target=time.sleep, args=(duration + 60,))
        t.daemon = True
        t.start()
    sys.stdout.write("%d ready\n" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
    t0, c0 = time.monotonic(), os.times()
    n = 0
    status = 1 if name == "failmt" else 0
    while time.monotonic() - t0 < duration:
        if name == "popenmt":
            subprocess.Popen(["/bin/true"]).wait()
        else:
            pid = os.fork()
            if pid == 0:
                os._exit(status)
            os.waitpid(pid, 0)
        n += 1
    c1 = os.times()
    cpu = sum(c1[i] - c0[i] for i in range(4))
    sys.stdout.write("%d %.6f %.6f\n" % (n, time.monotonic() - t0, cpu))
    sys.stdout.flush()


HOOKS = ("on_fork", "on_exit", "on_exec")


def hook_time(tracer_pid):
    """{name: (run_cnt, run_time_ns)} of the fork/exit/exec programs the tracer holds open
    (prog_id from /proc/PID/fdinfo; names and counters from `bpftool prog show -j`,
    counted while bpf_stats_enabled is 1)."""
    ids = set()
    fd_dir = "/proc/%d/fdinfo" % tracer_pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split(":")[1]))
        except OSError:
            continue
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout
    res = {}
    for p in json.loads(out or "[]"):
        if p.get("id") in ids and p.get("name") in HOOKS:
            res[p["name"]] = (p.get("run_cnt", 0), p.get("run_time_ns", 0))
    return res


def run_once(args, workload, config):
    p = subprocess.Popen([args.python, os.path.abspath(__file__), "--child", workload, str(args.duration)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    tracer = None
    try:
        pid, ready = p.stdout.readline().split()
        assert ready == b"ready"
        if config != "untraced":
            bu.TRACER = args.before if config == "before" else args.after
            tracer = bu.Tracer(["-p", pid.decode()] if args.mode == "pid" else []).start()
        b0 = tracer_prog_time(tracer.pid) if tracer else None
        h0 = hook_time(tracer.pid) if tracer and args.bpf_stats else {}
        p.stdin.write(b"go\n")
        p.stdin.flush()
        ops, elapsed, cpu = p.stdout.readline().split()
        b1 = tracer_prog_time(tracer.pid) if tracer else None
        h1 = hook_time(tracer.pid) if tracer and args.bpf_stats else {}
        p.wait()
        ops = int(ops)
        bpf = None
        if tracer and b1[0] > b0[0]:
            # per fork: each hook's run time (ns), and all the tracer's programs together
            bpf = dict((k, (h1[k][1] - h0.get(k, (0, 0))[1]) / float(ops)) for k in h1)
            bpf["all"] = (b1[1] - b0[1]) / float(ops)
        return ops / float(elapsed), float(cpu) / ops, bpf
    finally:
        if tracer:
            tracer.stop()
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child_main(sys.argv[2], float(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="the binary to compare with")
    ap.add_argument("--after", default=bu.TRACER)
    ap.add_argument("-r", "--rounds", type=int, default=5)
    ap.add_argument("-d", "--duration", type=float, default=2.0)
    ap.add_argument("--python", default=bu.DEFAULT_PYTHON)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--mode", choices=("default", "pid"), default="default")
    ap.add_argument("--bpf-stats", action="store_true")
    args = ap.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    configs = ["untraced", "before", "after"]
    cpu = {(w, c): [] for w in workloads for c in configs}
    tput = {(w, c): [] for w in workloads for c in configs}
    bpf = {(w, c): [] for w in workloads for c in configs}
    stats_file = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(stats_file).read().strip() if args.bpf_stats else None
    try:
        if args.bpf_stats:
            with open(stats_file, "w") as f:
                f.write("1")
        for rnd in range(args.rounds):
            for w in workloads:
                order = configs[rnd % 3:] + configs[:rnd % 3]
                for c in order:
                    t, per_op, b = run_once(args, w, c)
                    tput[(w, c)].append(t)
                    cpu[(w, c)].append(per_op)
                    if b is not None:
                        bpf[(w, c)].append(b)
                print("round %d %-8s %s" % (rnd + 1, w, "  ".join(
                    "%s %.0f/s" % (c, tput[(w, c)][-1]) for c in configs)), file=sys.stderr)
    finally:
        if old is not None:
            with open(stats_file, "w") as f:
                f.write(old)
    print("%s, %s mode: %d rounds x %.0f s; CPU per fork (parent + children), median of "
          "per-round ratios" % (args.python, args.mode, args.rounds, args.duration))
    print("%-8s %11s %11s %11s %15s %15s %14s" % ("workload", "untraced", "before", "after",
                                                  "before/untr", "after/untr", "after/before"))
    for w in workloads:
        med = lambda c: bu.median(cpu[(w, c)]) * 1e6  # noqa: E731
        ratio = lambda a, b: bu.median([x / y for x, y in zip(cpu[(w, a)], cpu[(w, b)])])  # noqa: E731
        print("%-8s %9.1fus %9.1fus %9.1fus %15.3f %15.3f %14.3f" % (
            w, med("untraced"), med("before"), med("after"), ratio("before", "untraced"),
            ratio("after", "untraced"), ratio("after", "before")))
    if args.bpf_stats:
        print("\nBPF run time per fork, ns (median of rounds; `all`: every program of the tracer, "
              "which also runs for the rest of the host)")
        print("%-8s %s" % ("workload", "".join("%22s" % k for k in HOOKS + ("all",))))
        for w in workloads:
            cells = []
            for k in HOOKS + ("all",):
                b = [x.get(k, 0) for x in bpf[(w, "before")]]
                a = [x.get(k, 0) for x in bpf[(w, "after")]]
                cells.append("%22s" % ("%.0f -> %.0f" % (bu.median(b or [0]), bu.median(a or [0]))))
            print("%-8s %s" % (w, "".join(cells)))


if __name__ == "__main__":
    main()
