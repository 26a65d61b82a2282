#!/usr/bin/env python3
"""Python workloads traced vs untraced: throughput ratios. Needs root and
build/pyhang-trace. Not part of `make test`.

    tests/bench/python_workloads.py [-r ROUNDS] [-d SECONDS] [--python PATH]
                                    [--workloads lock,condition,queue,run,popen]
                                    [--configs untraced,default,pid]
                                    [--before OLD_BINARY]

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
  before      OLD_BINARY --json -q -o FILE         (with --before: an older build, host-wide;
              the cost of a change is then printed as default/before ratios)

Method: the machine is shared and noisy, so absolute numbers from separate invocations
mean nothing. In each round every workload runs once under every configuration, one after
the other, in an order that rotates from round to round; the tracer is started before and
stopped after each traced run (the workload process is started first and waits on stdin,
so -p gets its pid, and the tracer's start-up scan is not in the measured time). The table
gives the median throughput per configuration and two ratios to untraced: of the medians,
and the median of the per-round ratios (each traced run against the untraced run of the
same round). Goal: a ratio of at least 0.98.

Wall-clock throughput on this kind of machine varies by 10-20% from run to run, more than
the 2% to resolve, so two steadier figures are printed too:
  cpu/op    CPU time per operation of the workload (its threads and its reaped children,
            user + system: the BPF programs run in the context of the process whose
            syscall they hook, so their cost is in it), traced over untraced, median of
            the per-round ratios;
  bpf/op    with --bpf-stats (kernel.bpf_stats_enabled on during the runs): the run time
            of the tracer's BPF programs per operation, in ns and as a share of the
            untraced CPU time per operation, with the program runs per operation. It
            leaves out the tracepoints' own dispatch (tests/bench/run_futex_bench.sh
            measures that floor), and it includes what bpf_stats itself adds to every
            run (a clock read: an empty program measures 64-66 ns a run here, see
            design_options.py), so the programs' own code costs about runs x 65 ns less."""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil as bu  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = ("lock", "condition", "queue", "run", "popen")
CONFIGS = ("untraced", "default", "pid", "before")
BEFORE = None  # --before: the older build
UNITS = {"lock": "acq/s", "condition": "handoffs/s", "queue": "items/s", "run": "runs/s",
         "popen": "runs/s"}


def tracer_prog_time(tracer_pid):
    """(run_cnt, run_time_ns) summed over the BPF programs the tracer holds open: the
    fdinfo of a program fd has prog_id, run_time_ns and run_cnt (counted while
    kernel.bpf_stats_enabled is 1)."""
    seen = {}
    fd_dir = "/proc/%d/fdinfo" % tracer_pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                info = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if "prog_id" in info and "run_time_ns" in info:
            seen[int(info["prog_id"])] = (int(info["run_cnt"]), int(info["run_time_ns"]))
    by_name = {}
    for pid_, (c, n) in seen.items():
        name = prog_name(pid_)
        oc, on = by_name.get(name, (0, 0))
        by_name[name] = (oc + c, on + n)
    return sum(c for c, _ in seen.values()), sum(n for _, n in seen.values()), by_name


PROG_NAMES = {}


def prog_name(prog_id):
    """A BPF program's name (bpftool prog show), cached; str(prog_id) when unknown."""
    if prog_id not in PROG_NAMES:
        try:
            out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                                 capture_output=True, text=True, timeout=10).stdout
            PROG_NAMES[prog_id] = json.loads(out).get("name") or str(prog_id)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            PROG_NAMES[prog_id] = str(prog_id)
    return PROG_NAMES[prog_id]


WAIT_PROGS = ("wait4_enter", "wait4_exit", "waitid_enter", "waitid_exit")


def run_once(python, workload, duration, config):
    """(ops/s, CPU s per op, (BPF ns per op, BPF program runs per op) or None) of one run
    of workload under config."""
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
        elif config == "before":
            tracer = bu.Tracer(binary=BEFORE).start()
        before = tracer_prog_time(tracer.pid) if tracer else None
        p.stdin.write(b"go\n")
        p.stdin.flush()
        ops, elapsed, cpu = p.stdout.readline().split()
        after = tracer_prog_time(tracer.pid) if tracer else None
        p.wait()
        ops = int(ops)
        bpf = None
        if tracer and after[0] > before[0]:
            # the wait programs' own share: ns per op of wait4/waitid enter+exit
            wait_ns = sum(after[2].get(n, (0, 0))[1] - before[2].get(n, (0, 0))[1] for n in WAIT_PROGS)
            wait_runs = sum(after[2].get(n, (0, 0))[0] - before[2].get(n, (0, 0))[0] for n in WAIT_PROGS)
            bpf = ((after[1] - before[1]) / ops, (after[0] - before[0]) / float(ops),
                   wait_ns / float(ops), wait_runs / float(ops))
        return ops / float(elapsed), float(cpu) / ops, bpf
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
    ap.add_argument("--bpf-stats", action="store_true",
                    help="turn kernel.bpf_stats_enabled on and print the BPF time per op")
    ap.add_argument("--before", help="an older pyhang-trace: adds the configuration 'before' "
                    "and prints default/before ratios")
    args = ap.parse_args()
    global BEFORE
    BEFORE = args.before
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
    if args.before and "before" not in configs:
        configs.append("before")
    if "before" in configs and not args.before:
        ap.error("configuration 'before' needs --before OLD_BINARY")

    tput = {(w, c): [] for w in workloads for c in configs}
    cpu = {(w, c): [] for w in workloads for c in configs}
    bpf = {(w, c): [] for w in workloads for c in configs}
    stats_file = "/proc/sys/kernel/bpf_stats_enabled"
    old_stats = open(stats_file).read().strip() if args.bpf_stats else None
    try:
        if args.bpf_stats:
            with open(stats_file, "w") as f:
                f.write("1")
        for rnd in range(args.rounds):
            for w in workloads:
                order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
                for c in order:
                    v, per_op, bpf_ns = run_once(args.python, w, args.duration, c)
                    tput[(w, c)].append(v)
                    cpu[(w, c)].append(per_op)
                    if bpf_ns is not None:
                        bpf[(w, c)].append(bpf_ns)
                print("round %d %-9s %s" % (rnd + 1, w, "  ".join(
                    "%s %.0f" % (c, tput[(w, c)][-1]) for c in configs)), file=sys.stderr)
    finally:
        if old_stats is not None:
            with open(stats_file, "w") as f:
                f.write(old_stats)

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
    print("\nCPU time per operation (workload and its children, user+system), traced over "
          "untraced, median of per-round ratios; BPF program time per operation")
    print("%-10s %12s" % ("workload", "untraced") + "".join(
        "  %-36s" % ("%s: cpu/op, bpf/op" % c) for c in traced))
    for w in workloads:
        base = cpu[(w, "untraced")]
        line = "%-10s %10.2fus" % (w, bu.median(base) * 1e6)
        for c in traced:
            ratio = bu.median([t / b for t, b in zip(cpu[(w, c)], base)])
            if bpf[(w, c)]:
                ns = bu.median([b[0] for b in bpf[(w, c)]])
                runs = bu.median([b[1] for b in bpf[(w, c)]])
                cell = "%.3f, %.0f ns/%.1f runs (%.2f%%)" % (
                    ratio, ns, runs, 100.0 * ns / (bu.median(base) * 1e9))
            else:
                cell = "%.3f" % ratio
            line += "  %-36s" % cell
        print(line)


    if "before" in configs and "default" in configs:
        print("\nThe change's cost: the new build (default) over the older one (before), "
              "host-wide, median of per-round ratios")
        print("%-10s %14s %14s %22s %30s" % ("workload", "throughput", "cpu/op", "bpf ns/op new/old",
                                             "wait4/waitid progs ns/op (runs)"))
        for w in workloads:
            t = bu.median([n / o for n, o in zip(tput[(w, "default")], tput[(w, "before")])])
            c = bu.median([n / o for n, o in zip(cpu[(w, "default")], cpu[(w, "before")])])
            cell = wcell = "-"
            if bpf[(w, "default")] and bpf[(w, "before")]:
                nb = bu.median([b[0] for b in bpf[(w, "default")]])
                ob = bu.median([b[0] for b in bpf[(w, "before")]])
                cell = "%.0f/%.0f = %.3f" % (nb, ob, nb / ob)
                nw = bu.median([b[2] for b in bpf[(w, "default")]])
                ow = bu.median([b[2] for b in bpf[(w, "before")]])
                rw = bu.median([b[3] for b in bpf[(w, "default")]])
                wcell = "%.0f/%.0f = %.3f (%.1f)" % (nw, ow, nw / ow if ow else 0, rw)
            print("%-10s %14.3f %14.3f %22s %30s" % (w, t, c, cell, wcell))


if __name__ == "__main__":
    main()
