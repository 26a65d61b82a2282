#!/usr/bin/env python3
"""The tracer's own cost: its CPU time and memory in fleet mode (host-wide, Python processes
only, `pyhang-trace --json -q -o FILE`). Needs root and build/pyhang-trace. Not part of
`make test`.

    tests/bench/tracer_cost.py [-r ROUNDS] [-w WINDOW_S] [--python PATH] [--smaps]
                               [--scenarios idle,mix,py,true] [-- EXTRA TRACER ARGS]

Scenarios (each round runs every scenario once, in turn, with a fresh tracer):
  idle   10 Python processes x 100 threads (1,000 threads) blocked for good, half in
         time.sleep and half in Event.wait, started 6 s before the tracer: the start-up
         scan finds them, and the 500 Event.wait ones are reported at once as long waits
         (a one-time burst, before the window; its CPU is in the "start-up" column).
  mix    200 process starts+exits per second: 100/s `PYTHON -c pass` and 100/s /bin/true.
  py     200/s `PYTHON -c pass` (each is described to the BPF stack walker).
  true   200/s /bin/true (fork+exec+exit of a process the tracer does not watch).
A Python parent (tests/bench/churn.py) starts and reaps the children. When the machine
cannot start Python 200 times a second, the achieved rate is printed.

Method: after the tracer has started (its `start` event is written) and WARM seconds have
passed, utime+stime from /proc/PID/stat is read at both ends of a WINDOW-second window:
CPU is that difference as % of one core. VmRSS is sampled every 0.25 s in the window (the
max is printed); VmHWM (the peak since the tracer started, start-up included) is read at
the end; "start-up CPU" is the CPU used before the window (load, scan, first reports).
The numbers are absolute, not ratios: a busy machine inflates the CPU a little
(more cache misses), so several rounds are run and the medians printed. "CPU per Python
exec" is (cpu[py] - cpu[true]) / Python starts, from the medians.

The tracer is host-wide: Python processes started by anything else on the machine are
traced too and their cost is in every row. Run it on a quiet machine.

--smaps prints where the RSS is (per kind of mapping, /proc/PID/smaps) at the end of each
scenario's last round. The ring buffer's 4 MiB of data pages are mapped twice, so they
count twice in RSS but take 4 MiB of memory."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchutil as bu  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ("idle", "mix", "py", "true")
RATES = {"mix": (100, 100), "py": (200, 0), "true": (0, 200)}


def start_sleepers(python, nprocs, nthreads):
    procs = []
    for _ in range(nprocs):
        procs.append(subprocess.Popen([python, os.path.join(HERE, "sleepers.py"), str(nthreads)],
                                      stdout=subprocess.PIPE, start_new_session=True))
    for p in procs:
        if p.stdout.readline().strip() != b"ready":
            raise RuntimeError("sleepers.py did not start")
    return procs


def stop_all(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    for p in procs:
        p.wait()
        if p.stdout:
            p.stdout.close()


def measure(tracer, warm, window):
    time.sleep(warm)
    tracer.check_alive()
    pid = tracer.pid
    c0, t0 = bu.cpu_seconds(pid), time.monotonic()
    startup_s = c0
    rss_max = 0
    while time.monotonic() - t0 < window:
        tracer.check_alive()
        rss_max = max(rss_max, bu.status_kib(pid)["VmRSS"])
        time.sleep(0.25)
    c1, t1 = bu.cpu_seconds(pid), time.monotonic()
    st = bu.status_kib(pid)
    return {"cpu_pct": 100.0 * (c1 - c0) / (t1 - t0), "cpu_s": c1 - c0, "startup_s": startup_s,
            "rss_max_kib": max(rss_max, st["VmRSS"]), "hwm_kib": st["VmHWM"],
            "smaps": bu.smaps_breakdown(pid), "status": st}


def run_scenario(name, args):
    if name == "idle":
        sleepers = start_sleepers(args.python, 10, 100)
        time.sleep(6)  # past the 5 s threshold: their waits are reported at start-up
        try:
            with bu.Tracer(args.tracer_args) as tr:
                r = measure(tr, args.warm + 2, args.window)  # the burst needs ~2 s
                r["events"] = tr.events()
        finally:
            stop_all(sleepers)
        return r
    py_rate, true_rate = RATES[name]
    with bu.Tracer(args.tracer_args) as tr:
        churn = subprocess.Popen(
            [args.python, os.path.join(HERE, "churn.py"), str(args.warm + args.window + 1),
             str(py_rate), str(true_rate), args.python],
            stdout=subprocess.PIPE, start_new_session=True)
        try:
            r = measure(tr, args.warm, args.window)
            r["churn"] = json.loads(churn.communicate()[0])
        finally:
            stop_all([churn])
        r["events"] = tr.events()
    return r


def fmt_mib(kib):
    return "%.1f" % (kib / 1024.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-w", "--window", type=float, default=20.0, help="measurement window, s")
    ap.add_argument("--warm", type=float, default=3.0, help="seconds after start before measuring")
    ap.add_argument("--python", default=bu.DEFAULT_PYTHON, help="interpreter of the workloads")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--smaps", action="store_true", help="print the RSS by mapping kind")
    ap.add_argument("tracer_args", nargs="*", help="extra tracer arguments (after --)")
    args = ap.parse_args()
    bu.require_root()
    names = [s for s in args.scenarios.split(",") if s]
    for s in names:
        if s not in SCENARIOS:
            ap.error("unknown scenario %s" % s)

    results = {s: [] for s in names}
    for rnd in range(args.rounds):
        for s in names:
            r = run_scenario(s, args)
            results[s].append(r)
            extra = ""
            if "churn" in r:
                extra = " py %.0f/s true %.0f/s" % (r["churn"]["py_rate"], r["churn"]["true_rate"])
            print("round %d %-5s cpu %.2f%% rss %s MiB hwm %s MiB%s" % (
                rnd + 1, s, r["cpu_pct"], fmt_mib(r["rss_max_kib"]), fmt_mib(r["hwm_kib"]), extra),
                file=sys.stderr)

    print("\npyhang-trace %s: medians of %d rounds, %.0f s windows (%s)" % (
        " ".join(["--json -q -o FILE"] + args.tracer_args), args.rounds, args.window, args.python))
    print("%-6s %-34s %9s %12s %12s %15s" % ("", "load", "CPU %core", "VmRSS MiB", "VmHWM MiB",
                                              "start-up CPU s"))
    med = {}
    for s in names:
        rs = results[s]
        m = {k: bu.median([r[k] for r in rs])
             for k in ("cpu_pct", "cpu_s", "rss_max_kib", "hwm_kib", "startup_s")}
        if s == "idle":
            load = "1,000 threads blocked (10 procs)"
        else:
            m["py_rate"] = bu.median([r["churn"]["py_rate"] for r in rs])
            m["true_rate"] = bu.median([r["churn"]["true_rate"] for r in rs])
            m["py_starts"] = bu.median([r["churn"]["py_rate"] * args.window for r in rs])
            load = "py %.0f/s + /bin/true %.0f/s" % (m["py_rate"], m["true_rate"])
        med[s] = m
        print("%-6s %-34s %8.2f%% %12s %12s %15.2f" % (
            s, load, m["cpu_pct"], fmt_mib(m["rss_max_kib"]), fmt_mib(m["hwm_kib"]), m["startup_s"]))
    print("goal: under 1% of one core, under 30 MiB RSS")
    if "py" in med and "true" in med and med["py"]["py_starts"] > 0:
        per = (med["py"]["cpu_s"] - med["true"]["cpu_s"]) / med["py"]["py_starts"]
        print("CPU per Python exec (py - true): %.0f us" % (per * 1e6))
    if "py" in med and med["py"]["py_rate"] < 190:
        print("note: this machine started only %.0f Python processes/s of the 200/s asked" %
              med["py"]["py_rate"])
    for s in names:
        ev = results[s][-1]["events"]
        print("events (%s, last round): %s" % (s, ", ".join("%s %d" % kv for kv in sorted(ev.items()))))
    if args.smaps:
        for s in names:
            r = results[s][-1]
            print("\nRSS by mapping, %s (last round), KiB:" % s)
            for kind, kib in sorted(r["smaps"].items(), key=lambda kv: -kv[1]):
                print("  %-34s %8d" % (kind, kib))
            print("  %-34s %8d  (RssAnon %d, RssFile %d, RssShmem %d)" % (
                "total (VmRSS)", r["status"]["VmRSS"], r["status"].get("RssAnon", 0),
                r["status"].get("RssFile", 0), r["status"].get("RssShmem", 0)))


if __name__ == "__main__":
    main()
