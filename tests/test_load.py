"""Load and race tests of the tracer (issue #6): many threads, many processes, fork bursts,
a ring buffer forced to overflow, and a pid taken over by a new process while events about
the old one are still queued.

Every test checks what was reported, not only that the tracer survived: each long wait once,
with the right pid and stack; losses counted (stop.lost / the text "events LOST" line) and
consistent with what arrived; the tracer's memory bounded; targets never stopped nor
ptraced (harness ProcWatcher, polled during the whole run).

Workloads: tests/programs/load_*.py, on the Debian python3.11 only (the per-interpreter
paths are covered by test_trace_*.py; here the load is the point). Total runtime ~60 s.
"""
import collections
import os
import re
import signal
import subprocess
import time

import pytest

from harness import kill_group
from harness import (LATE_SLACK, SYSTEM_PYTHON, ProcWatcher, Tracer, check_stream, public,
                        wait_in_futex)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
THREADS_PROG = os.path.join(PROGRAMS, "load_threads.py")
PROCS_PROG = os.path.join(PROGRAMS, "load_procs.py")
FORKER_PROG = os.path.join(PROGRAMS, "load_forker.py")
FLOOD_PROG = os.path.join(PROGRAMS, "load_sigchld_flood.py")
PIDREUSE_PROG = os.path.join(PROGRAMS, "load_pidreuse.py")
DEADLOCK_PROG = os.path.join(PROGRAMS, "diag_deadlock.py")

MIB = 1 << 20
SMALLEST_RING = "64K"

# The tracer's memory is bounded by construction: fixed-size tables (pending.h: 1024
# layouts, names, reaps and command lines, 256 ignores, 64 stacks; 1024 exec checks), the
# ring buffer mapped twice (its data pages appear at two addresses), one block cache for
# /proc/PID/mem reads (procmem.h: at most 8 MiB), the reader's state for at most 64
# processes (READER_MAX_PROCS, ~100-200 KiB each: ~12 MiB) and one snapshot of one process
# (at most PY_MAX_THREADS = 4096 threads). Binary, libbpf, libc: ~12 MiB. Measured peaks
# (VmHWM, 2-core VM, 4 MiB ring): 28 MiB idle host-wide, 40-54 MiB in these tests. Before
# READER_MAX_PROCS it grew by ~170 KiB per Python process ever read (98 MiB with 200).
RSS_BASE_BOUND = 64 * MIB


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)



def report_path(tmp_path, name="report"):
    return str(tmp_path / name)


def read_report(path):
    try:
        with open(path) as f:
            return [line.split() for line in f.read().splitlines() if line.strip()]
    except OSError:
        return []


def wait_report(path, pred, timeout, what, proc=None):
    """Wait until pred(lines) is true for the report file; returns the lines."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_report(path)
        if pred(lines):
            return lines
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s: workload exited (%s) first; report: %r" % (what, proc.returncode, lines[-10:]))
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s; report: %r" % (what, timeout, lines[-10:]))
        time.sleep(0.05)


def words(lines, first):
    return [l[1:] for l in lines if l and l[0] == first]


def memory_of(pid):
    """(VmRSS, VmHWM) of pid in bytes."""
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) * 1024
    hwm = int(re.search(r"^VmHWM:\s+(\d+) kB", text, re.M).group(1)) * 1024
    return rss, hwm


def rss_bound(tr):
    start = tr.select("start")[0]
    return RSS_BASE_BOUND + 2 * start["ringbuf_bytes"]


def check_memory(tr, what):
    rss, hwm = memory_of(tr.proc.pid)
    bound = rss_bound(tr)
    assert hwm <= bound, "%s: tracer peak RSS %.1f MiB > bound %.1f MiB" % (what, hwm / MIB, bound / MIB)
    print("%s: tracer RSS %.1f MiB, peak %.1f MiB (bound %.1f MiB)" % (what, rss / MIB, hwm / MIB, bound / MIB))
    return rss, hwm


def check_lost_consistent(stop):
    lost = stop["lost"]
    assert all(isinstance(v, int) and v >= 0 for v in lost.values()), stop
    assert stop["lost_events"] == sum(lost.values()), "lost_events is not the sum of lost{}: %r" % stop
    return lost


def check_never_stopped(watcher, pids):
    for pid in pids:
        assert not watcher.violations[pid], watcher.violations[pid][:5]
    assert sum(watcher.samples[p] for p in pids) >= 3, "the watcher hardly sampled the targets"


def functions(ev, tid=None):
    """Every function name in the threads of a long_wait/hang event (of one thread if tid)."""
    out = []
    for t in ev.get("threads") or []:
        if tid is None or t.get("tid") == tid:
            out.extend(f.get("function") for f in t.get("stack") or [])
    return out


# --------------------------------------------------------------------------- 2,000 threads

def test_2000_threads_long_waits_once_each(reg, binary, tmp_path):
    """2,000 threads in one process, 20 blocked on locks, the rest asleep: one long_wait and
    one wait_end per blocked thread, nothing for the sleepers, on time, bounded memory."""
    nthreads, nblocked = 2000, 20
    rep = report_path(tmp_path)
    p = reg.hanging([SYSTEM_PYTHON, THREADS_PROG, rep, str(nthreads), str(nblocked)],
                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    pid = int(words(wait_report(rep, lambda l: words(l, "pid"), 20, "threads: pid", p), "pid")[0][0])
    tr = Tracer(reg, binary, ["--json", "-t", "1", "-p", str(pid)])
    tr.wait_start()
    watcher = ProcWatcher([pid], interval=0.25)
    try:
        lines = wait_report(rep, lambda l: words(l, "sleepers"), 60, "threads: all started", p)
        blocked = set(int(w[0]) for w in words(lines, "blocked"))
        assert len(blocked) == nblocked
        assert len(os.listdir("/proc/%d/task" % pid)) >= nthreads
        for tid in blocked:
            wait_in_futex(pid, tid, 15)
        blocked_at = time.time()
        deadline = time.monotonic() + 1 + LATE_SLACK + 3
        while time.monotonic() < deadline and \
                set(e["tid"] for e in tr.select("long_wait", pid=pid)) < blocked:
            time.sleep(0.1)
        got = [e["tid"] for e in tr.select("long_wait", pid=pid)]
        assert set(got) == blocked, "long_wait missing for %d of %d blocked threads, or for a sleeper%s" % (
            len(blocked - set(got)), nblocked, tr.describe())
        late = [e for e in tr.select("long_wait", pid=pid) if e["_recv"] - blocked_at > 1 + LATE_SLACK + 1]
        assert not late, "the tracer fell behind: %r" % [public(e) for e in late[:3]]
        # every thread of the process, read from userspace, in the events
        ev = tr.select("long_wait", pid=pid)[0]
        assert len(ev.get("threads") or []) >= nthreads, "threads: %d" % len(ev.get("threads") or [])
        assert any(f.split(".")[-1] == "blocked" for f in functions(ev, ev["tid"])), functions(ev, ev["tid"])
        rss, hwm = check_memory(tr, "2000 threads")
        p.stdin.write(b"release\n")
        p.stdin.flush()
        wait_report(rep, lambda l: words(l, "released"), 20, "threads: released", p)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(tr.select("wait_end", pid=pid)) < nblocked:
            time.sleep(0.1)
    finally:
        watcher.stop()
    check_memory(tr, "2000 threads")
    assert tr.stop() == 0
    check_stream(tr)
    got = sorted(e["tid"] for e in tr.select("long_wait", pid=pid))
    assert got == sorted(blocked), "want exactly one long_wait per blocked thread: %r" % got
    ends = sorted(e["tid"] for e in tr.select("wait_end", pid=pid))
    assert ends == sorted(blocked), "want exactly one wait_end per blocked thread: %r" % ends
    lost = check_lost_consistent(tr.select("stop")[0])
    assert tr.select("stop")[0]["lost_events"] == 0, lost
    check_never_stopped(watcher, [pid])


# --------------------------------------------------------------------------- 200 processes

def test_200_processes_each_reported_with_its_own_stack(reg, binary, tmp_path):
    """200 Python processes, each blocked in its own wait_<i>: one long_wait per process, with
    that process's pid and a stack naming its own function, no other's."""
    n = 200
    rep = report_path(tmp_path)
    tr = Tracer(reg, binary, ["--json", "-t", "1"])  # host-wide: forks inherit the watch
    tr.wait_start()
    p = reg.popen([SYSTEM_PYTHON, PROCS_PROG, rep, str(n)], stdout=subprocess.DEVNULL)
    lines = wait_report(rep, lambda l: words(l, "all_forked"), 30, "procs: forked", p)
    index = dict((int(w[1]), int(w[0])) for w in words(lines, "child"))
    assert len(index) == n
    watcher = ProcWatcher(list(index), interval=0.5)
    try:
        deadline = time.monotonic() + 1 + LATE_SLACK + 15
        while time.monotonic() < deadline and \
                len(set(e["pid"] for e in tr.select("long_wait") if e["pid"] in index)) < n:
            time.sleep(0.2)
        check_memory(tr, "200 processes")
    finally:
        watcher.stop()
    kill_group(p)
    assert tr.stop() == 0
    check_stream(tr)
    evs = [e for e in tr.select("long_wait") if e["pid"] in index]
    seen = sorted(e["pid"] for e in evs)
    assert seen == sorted(index), "want one long_wait per process: %d missing, %d extra" % (
        len(set(index) - set(seen)), len(seen) - len(set(seen)))
    for e in evs:
        i = index[e["pid"]]
        assert e["tid"] == e["pid"], public(e)  # the main thread waits
        mine = functions(e, e["tid"])
        assert "wait_%d" % i in mine, "pid %d (child %d): stack %r, threads_error %r" % (
            e["pid"], i, mine, e.get("threads_error"))
        others = [f for f in functions(e) if f and f.startswith("wait_") and f != "wait_%d" % i]
        assert not others, "pid %d has another child's frames: %r" % (e["pid"], others)
    check_lost_consistent(tr.select("stop")[0])
    check_never_stopped(watcher, list(index))


# --------------------------------------------------------------------------- fork bursts

def test_fork_bursts_do_not_hide_a_hang(reg, binary, tmp_path):
    """500 forks a second (children exit at once, each reap captured in the kernel) while a
    Python process deadlocks: the deadlock is still diagnosed, with its culprits; losses, if
    any, are counted; memory stays bounded."""
    rate = 500
    dl_rep = report_path(tmp_path, "deadlock")
    fk_rep = report_path(tmp_path, "forker")
    fk_stop = str(tmp_path / "forker.stop")
    tr = Tracer(reg, binary, ["--json", "-t", "1"])
    tr.wait_start()
    # the forker bursts until told to stop: from before the hang begins (its first burst
    # is done) until the hang is found, however slow a loaded machine makes the forks
    forker = reg.popen([SYSTEM_PYTHON, FORKER_PROG, fk_rep, str(rate), fk_stop],
                       stdout=subprocess.DEVNULL)
    wait_report(fk_rep, lambda l: words(l, "forking"), 20, "forker: forking", forker)
    target = reg.hanging([SYSTEM_PYTHON, DEADLOCK_PROG, dl_rep], stdout=subprocess.DEVNULL)
    lines = wait_report(dl_rep, lambda l: words(l, "joining"), 20, "deadlock: joining", target)
    pid = int(words(lines, "pid")[0][0])
    culprits = set(int(w[0]) for k in ("A", "B") for w in words(lines, k))
    watcher = ProcWatcher([pid, forker.pid], interval=0.1)
    peak = 0
    try:
        deadline = time.monotonic() + 1 + LATE_SLACK + 8
        while time.monotonic() < deadline and not tr.select("hang", pid=pid):
            peak = max(peak, check_memory(tr, "fork bursts")[0])
            time.sleep(0.2)
        # the bursts lasted as long as the wait for the hang
        assert forker.poll() is None, "the forker ended before the hang was looked for: %r" % forker.poll()
        open(fk_stop, "w").close()
        wait_report(fk_rep, lambda l: words(l, "forks"), 30, "forker: done", forker)
    finally:
        watcher.stop()
    forks, took = words(read_report(fk_rep), "forks")[0]
    print("forker: %s forks in %s s" % (forks, took))
    check_memory(tr, "fork bursts")
    kill_group(target)
    assert tr.stop() == 0
    check_stream(tr)
    hangs = tr.select("hang", pid=pid)
    assert hangs, "no hang diagnosed under fork load%s" % tr.describe()
    d = hangs[0]["diagnosis"]
    # the two workers cross two locks: a proven lock-order deadlock (its cycle is both)
    assert d["code"] == "deadlock" and len(d["cycle"]) == 2, public(hangs[0])
    assert set(d["culprit_tids"]) <= culprits | {pid} and set(d["culprit_tids"]) & culprits, public(hangs[0])
    # the forker and its children never wait long: nothing to report about them
    assert not tr.select("long_wait", pid=forker.pid)
    check_lost_consistent(tr.select("stop")[0])
    check_never_stopped(watcher, [pid])


# --------------------------------------------------------------------------- ring overflow

def _sigchld_flood(reg, binary, tmp_path, n, json_mode):
    rep = report_path(tmp_path)
    p = reg.popen([SYSTEM_PYTHON, FLOOD_PROG, rep, str(n)], stdin=subprocess.PIPE,
                  stdout=subprocess.DEVNULL)
    pid = int(words(wait_report(rep, lambda l: words(l, "pid"), 20, "flood: pid", p), "pid")[0][0])
    # --rate-limit 0: the subject is the ring buffer's overflow accounting, which the
    # per-process rate limits would otherwise keep from happening (tests/test_ratelimit.py)
    args = ["--ringbuf-size", SMALLEST_RING, "--rate-limit", "0", "-p", str(pid)] + \
        (["--json"] if json_mode else [])
    tr = Tracer(reg, binary, args)
    if json_mode:
        tr.wait_start()
    else:
        deadline = time.monotonic() + 30
        while "tracing" not in tr.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    time.sleep(0.5)  # `start` comes before the tracer reads the process it was given
    watcher = ProcWatcher([pid], interval=0.05)
    try:
        p.stdin.write(b"go\n")
        p.stdin.flush()
        wait_report(rep, lambda l: words(l, "done"), 60, "flood: done", p)
        time.sleep(1.0)  # let the tracer drain what fitted
    finally:
        watcher.stop()
    assert tr.stop() == 0
    p.stdin.write(b"exit\n")
    p.stdin.flush()
    assert p.wait(10) == 0
    check_never_stopped(watcher, [pid])
    return tr, pid


def _mark_lines(path):
    marks = {}
    with open(path) as f:
        for no, line in enumerate(f, 1):
            m = re.search(r"# MARK: (\w+)", line)
            if m:
                marks[m.group(1)] = no
    return marks


def test_ring_overflow_counted_and_arrivals_correct(reg, binary, tmp_path):
    """4,000 SIGCHLD changes, each a 35 KiB stack record plus an event, into a 64 KiB ring:
    what did not fit is counted (every change either arrived or was counted), and every
    event that arrived has its own stack (the SIG_IGN line for SIG_IGN, the restore line for
    'restored'), never the stack of a neighbour whose event was lost."""
    n = 2000
    tr, pid = _sigchld_flood(reg, binary, tmp_path, n, json_mode=True)
    check_stream(tr)
    stop = tr.select("stop")[0]
    lost = check_lost_consistent(stop)
    evs = tr.select("sigchld_ignored", pid=pid)
    changes = 2 * n
    arrived = len(evs)
    with_stack = [e for e in evs if e.get("stack_status") == "ok"]
    assert lost["ringbuf_full"] > 0, "a 64K ring did not overflow (%d of %d arrived)?" % (arrived, changes)
    assert 0 < arrived <= changes, arrived
    # each change is one stack record and one event: the lost ones are all counted...
    assert arrived + lost["ringbuf_full"] >= changes, \
        "%d arrived + %d counted lost < %d changes: losses went uncounted" % (arrived, lost["ringbuf_full"], changes)
    # ...and nothing is counted twice
    assert arrived + len(with_stack) + lost["ringbuf_full"] <= 2 * changes, (arrived, len(with_stack), lost)
    assert stop["counts"]["sigchld_ignored"] == arrived
    marks = _mark_lines(FLOOD_PROG)
    want_line = {"SIG_IGN": marks["ignore"], "restored": marks["restore"]}
    for e in evs:
        assert e["action"] in want_line, public(e)
        # unknown_layout: before the tracer had read the process (just after `start`)
        assert e["stack_status"] in ("ok", "not_captured", "unknown_layout"), public(e)
        if e["stack_status"] == "ok":
            # signal.signal is itself Python code in 3.x (signal.py): the caller's frame counts
            mine = [f for f in e["stack"] if f["function"] == "flip_sigchld"]
            assert mine and mine[0]["line"] == want_line[e["action"]], \
                "%s event with the stack %r" % (e["action"], e["stack"][:3])
    assert with_stack, "no event arrived with its stack"


def test_ring_overflow_text_line(reg, binary, tmp_path):
    """The text output's summary names the losses, and its parts add up."""
    tr, pid = _sigchld_flood(reg, binary, tmp_path, 1000, json_mode=False)
    err = tr.stderr()
    m = re.search(r"(\d+) events LOST \(ring buffer full (\d+), wait table full (\d+), "
                  r"other tables full (\d+), exec check queue full (\d+), "
                  r"left unread at an overdue stop (\d+)\)", err)
    assert m, "no 'events LOST' line:\n%s" % err[-1500:]
    total, parts = int(m.group(1)), [int(x) for x in m.groups()[1:]]
    assert total == sum(parts) and parts[0] > 0, m.group(0)
    shown = int(re.search(r"(\d+) SIGCHLD changes", err).group(1))
    assert 0 < shown < 2000 and shown + parts[0] >= 2000, (shown, parts)


def test_long_wait_flood_into_small_ring_each_reported_once(reg, binary, tmp_path):
    """300 threads start waiting within a millisecond, threshold 0.5 s, 64 KiB ring (about
    110 events): the scan that finds them cannot send them all. Those that did not fit are
    counted and sent at a later scan: every thread still gets exactly one long_wait for its
    wait on the shared lock, and no wait_end comes without its long_wait.  (On a loaded
    host the first threads may also wait over 0.5 s at the barrier while the last ones are
    created: each on a lock of its own, another wait with a long_wait of its own.)"""
    nblocked = 300
    rep = report_path(tmp_path)
    p = reg.hanging([SYSTEM_PYTHON, THREADS_PROG, rep, str(nblocked), str(nblocked), "--shared"],
                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    pid = int(words(wait_report(rep, lambda l: words(l, "pid"), 20, "flood waits: pid", p), "pid")[0][0])
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--ringbuf-size", SMALLEST_RING, "-p", str(pid)])
    tr.wait_start()
    watcher = ProcWatcher([pid], interval=0.1)
    try:
        lines = wait_report(rep, lambda l: words(l, "sleepers"), 30, "flood waits: started", p)
        blocked = set(int(w[0]) for w in words(lines, "blocked"))
        # each long_wait carries all 300 threads' stacks: the tracer needs a few seconds
        deadline = time.monotonic() + 0.5 + LATE_SLACK + 20
        while time.monotonic() < deadline and \
                set(e["tid"] for e in tr.select("long_wait", pid=pid)) < blocked:
            time.sleep(0.1)
        p.stdin.write(b"release\n")
        p.stdin.flush()
        wait_report(rep, lambda l: words(l, "released"), 30, "flood waits: released", p)
        time.sleep(1.0)
    finally:
        watcher.stop()
    assert tr.stop() == 0
    check_stream(tr)  # includes: no wait_end without an earlier long_wait
    waits = tr.select("long_wait", pid=pid)
    addr = lambda e: (e.get("futex") or {}).get("addr")  # noqa: E731
    shared = collections.Counter(addr(e) for e in waits).most_common(1)[0][0]
    got = sorted(e["tid"] for e in waits if addr(e) == shared)
    assert got == sorted(blocked), "want one long_wait per thread: %d events, %d distinct, %d threads" % (
        len(got), len(set(got)), len(blocked))
    # any other long_wait is of another wait: a wait on a lock of the thread's own, once
    others = [(e["tid"], addr(e)) for e in waits if addr(e) != shared]
    assert len(others) == len(set(others)) and all(a for _, a in others), others[:10]
    ends = [e["tid"] for e in tr.select("wait_end", pid=pid)]
    per_thread = collections.Counter(e["tid"] for e in waits)
    assert set(ends) <= blocked and all(n <= per_thread[t] for t, n in collections.Counter(ends).items())
    lost = check_lost_consistent(tr.select("stop")[0])
    print("long-wait flood: %d long_waits, %d wait_ends, lost %r" % (len(got), len(ends), lost))
    # the wait_ends come one at a time (the threads take the lock in turn): all should fit
    assert len(ends) + lost["ringbuf_full"] >= nblocked
    check_never_stopped(watcher, [pid])


# --------------------------------------------------------------------------- pid reuse

def test_pid_reused_while_events_queued(reg, binary, tmp_path):
    """A (pid X) waits past the threshold while the tracer is held (SIGSTOP: the kernel
    queues A's long_wait), A dies and B gets pid X, then the tracer resumes. A's long_wait
    must not carry B's threads (B blocks in new_process_wait); B's own long_wait must."""
    rep = report_path(tmp_path)
    p = reg.hanging([SYSTEM_PYTHON, PIDREUSE_PROG, rep], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # host-wide: A and B are forks of a watched process. While the tracer is held, the ring
    # must hold everything the host's Python processes do (a reap is a 35 KiB record)
    tr = Tracer(reg, binary, ["--json", "-t", "1", "--ringbuf-size", "64M"])
    tr.wait_start()
    stopped = False
    try:
        time.sleep(0.5)  # the tracer has seen the parent start (its Python is described)
        p.stdin.write(b"fork A\n")
        p.stdin.flush()
        a = int(words(wait_report(rep, lambda l: words(l, "A"), 10, "pidreuse: A", p), "A")[0][0])
        wait_in_futex(a, a, 10)
        time.sleep(0.3)  # the tracer knows A (it reads its layout right after the fork)
        os.kill(tr.proc.pid, signal.SIGSTOP)
        stopped = True
        time.sleep(1 + 0.6)  # past the threshold: the kernel scanner queued A's long_wait
        p.stdin.write(b"replace\n")
        p.stdin.flush()
        lines = wait_report(rep, lambda l: words(l, "B") or words(l, "nopid"), 30, "pidreuse: B", p)
        if words(lines, "nopid"):
            pytest.skip("pid %d was taken by another process before B could have it" % a)
        b = int(words(lines, "B")[0][0])
        assert b == a
        wait_in_futex(b, b, 10)
    finally:
        if stopped:
            os.kill(tr.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 1 + LATE_SLACK + 3
    while time.monotonic() < deadline and len(tr.select("long_wait", pid=a)) < 2:
        time.sleep(0.1)
    kill_group(p)
    assert tr.stop() == 0
    check_stream(tr)
    evs = tr.select("long_wait", pid=a)
    assert tr.select("stop")[0]["lost"]["ringbuf_full"] == 0 or len(evs) == 2, \
        "the 64M ring overflowed while the tracer was held: %r" % tr.select("stop")[0]
    assert len(evs) == 2, "want A's and B's long_wait: %r%s" % ([public(e) for e in evs], tr.describe())
    old, new = evs
    assert "new_process_wait" not in functions(old), \
        "A's long_wait carries B's stack (pid %d reused): %r" % (a, functions(old))
    assert old.get("threads_error") or "old_process_wait" in functions(old), public(old)
    assert "new_process_wait" in functions(new, new["tid"]), (public(new), functions(new))
    assert "old_process_wait" not in functions(new)
    # A's wait ended when A was killed, reported before B's long_wait; by then pid X was
    # B's: nothing read from /proc is kept (comm is A's own, taken in the kernel at its exit)
    ends = tr.select("wait_end", pid=a)
    assert ends and ends[0]["_idx"] < new["_idx"], [public(e) for e in ends]
    assert ends[0]["ended_by"] == "process_exit" and ends[0].get("exit_signal") == 9, public(ends[0])
    assert ends[0]["comm"] == os.path.basename(SYSTEM_PYTHON)[:15] and "cgroup" not in ends[0], public(ends[0])
