#!/usr/bin/env python3
"""What finding long I/O waits costs (user/iosample.c, user/iowait.c). Needs root and
build/pyhang-trace. Not part of `make test`.

    tests/bench/io_sample_bench.py [-r ROUNDS] [-w WINDOW_S] [-n PROCS] [-m THREADS]
                                   [--python PATH]

Workload: PROCS Python processes x THREADS threads, each thread in recv() on a loopback
socket that never gets data (no timeout), plus one process whose thread reads and writes a
pipe in a tight loop (the hot path: no BPF program is attached to read/write, so its rate
must not change).

Each round runs the tracer (`--json -q -o FILE -t 5`, host-wide) twice, alternating: with
the I/O sampler, and with PYHANG_NO_IO_SAMPLE=1 (everything else the same). Printed:
  * the tracer's CPU over a WINDOW-second window after WARM seconds (utime+stime, % of one
    core), both ways, and their difference;
  * the sampler's own counters (PYHANG_IO_SAMPLE_STATS=1): passes, task reads, CPU ms,
    so CPU per pass and per task read;
  * the pipe loop's round trips per second with and without the sampler (ratio);
  * `dump PID --json --repeat 20` of one process: the CPU of one wait-for graph build,
    which includes describing every I/O wait (fd links, socket tables of the target's
    network namespace), first build and per build.
Medians over rounds; ratios come from one run, configurations alternating."""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))

BLOCKER = r"""
import socket, sys, threading, time
n = int(sys.argv[1])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(n + 8)
port = srv.getsockname()[1]
def reader():
    c = socket.create_connection(("127.0.0.1", port))
    c.recv(1)
for i in range(n):
    t = threading.Thread(target=reader); t.daemon = True; t.start()
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(3600)
"""

PIPE_LOOP = r"""
import os, sys, time
r1, w1 = os.pipe(); r2, w2 = os.pipe()
if os.fork() == 0:
    while True:
        b = os.read(r1, 1)
        os.write(w2, b)
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    dur = float(line)
    end = time.time() + dur; n = 0
    while time.time() < end:
        os.write(w1, b"x"); os.read(r2, 1); n += 1
    sys.stdout.write("%f\n" % (n / dur)); sys.stdout.flush()
"""


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def run_tracer(window, warm, sample, loop):
    env = dict(os.environ)
    env["PYHANG_IO_SAMPLE_STATS"] = "1"
    if not sample:
        env["PYHANG_NO_IO_SAMPLE"] = "1"
    out = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
    out.close()
    os.unlink(out.name)
    tr = subprocess.Popen([BINARY, "--json", "-q", "-o", out.name, "-t", "5"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(out.name) and os.path.getsize(out.name) > 0:
            break
        time.sleep(0.1)
    time.sleep(warm)
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(tr.pid)
    loop.stdin.write("%f\n" % window)
    loop.stdin.flush()
    rate = float(loop.stdout.readline())
    c1 = cpu_ticks(tr.pid)
    tr.send_signal(signal.SIGINT)
    err = tr.communicate(timeout=30)[1].decode()
    os.unlink(out.name)
    m = re.search(r"io sampler: passes=(\d+) reads=(\d+) cpu_ms=([\d.]+) reports=(\d+) "
                  r"report_cpu_ms=([\d.]+)", err)
    stats = tuple(float(x) for x in m.groups()) if m else None
    return 100.0 * (c1 - c0) / hz / window, rate, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-w", "--window", type=float, default=10.0)
    ap.add_argument("--warm", type=float, default=12.0)
    ap.add_argument("-n", "--procs", type=int, default=10)
    ap.add_argument("-m", "--threads", type=int, default=100)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    procs = []
    try:
        for _ in range(a.procs):
            p = subprocess.Popen([a.python, "-c", BLOCKER, str(a.threads)], stdout=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True)
            p.stdout.readline()
            procs.append(p)
        loop = subprocess.Popen([a.python, "-c", PIPE_LOOP], stdout=subprocess.PIPE,
                                stdin=subprocess.PIPE, text=True, start_new_session=True)
        loop.stdout.readline()
        procs.append(loop)
        time.sleep(1)
        res = {True: [], False: []}
        for r in range(a.rounds):
            for sample in (True, False):
                res[sample].append(run_tracer(a.window, a.warm, sample, loop))
                cpu, rate, st = res[sample][-1]
                print("round %d %-10s tracer CPU %.3f%%  pipe round trips/s %.0f  %s" % (
                    r + 1, "sampler" if sample else "no sampler", cpu, rate,
                    "passes=%d reads=%d cpu_ms=%.1f reports=%d report_cpu_ms=%.1f" % st if st else ""),
                    flush=True)
        on_cpu, off_cpu = median([x[0] for x in res[True]]), median([x[0] for x in res[False]])
        on_rate, off_rate = median([x[1] for x in res[True]]), median([x[1] for x in res[False]])
        print("\n%d processes x %d threads in recv(), -t 5 (a pass every 2.5 s), window %.0f s, medians of %d:" %
              (a.procs, a.threads, a.window, a.rounds))
        print("  tracer CPU: %.3f%% with the sampler, %.3f%% without: +%.3f%% of one core" %
              (on_cpu, off_cpu, on_cpu - off_cpu))
        print("  pipe loop round trips/s: %.0f with, %.0f without: ratio %.3f" %
              (on_rate, off_rate, on_rate / off_rate if off_rate else float("nan")))
        sts = [x[2] for x in res[True] if x[2]]
        if sts:
            passes, reads, ms, reps, rms = (median([s[i] for s in sts]) for i in range(5))
            samp = ms - rms
            print("  sampler (whole tracer run): %d passes, %d task reads, %.1f ms CPU sampling: "
                  "%.3f ms per pass, %.1f us per task read" %
                  (passes, reads, samp, samp / passes if passes else 0, 1000 * samp / reads if reads else 0))
            print("  reporting: %d long_waits (each with every thread of its process), %.1f ms CPU: "
                  "%.2f ms each" % (reps, rms, rms / reps if reps else 0))
        d = subprocess.run([BINARY, "dump", str(procs[0].pid), "--json", "--repeat", "20"],
                           capture_output=True, text=True)
        m = re.search(r"threads=(\d+) first_cpu_ms=([\d.]+) cpu_ms_per_build=([\d.]+)", d.stderr)
        if m:
            print("  one snapshot's wait-for graph with %s threads in recv() described: first %s ms, "
                  "then %s ms per build (CPU)" % m.groups())
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL) if p is procs[-1] else p.kill()
            except OSError:
                pass
            p.wait()


if __name__ == "__main__":
    main()
