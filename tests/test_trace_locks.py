"""End-to-end tests of the tracer on futex waits: `long_wait` / `wait_end` for a blocked
Lock (gated, and blocked before the tracer started), a fork while locked, many blocked
threads, short waits, a container-like pid namespace, no false reports from the start scan.

The per-interpreter lock scenarios run the workload of every interpreter under ONE tracer
(module-scoped "sessions"); the parametrized tests then check each interpreter's part.

How they run (real kernel, real processes, root; Tracer, Registry, timeouts): see
tests/harness.  Workloads: tests/programs/trace_*.  The test_trace_*.py files split the
former test_trace.py by subject: locks, children, cli, command.
"""
import os
import re
import shlex
import subprocess
import time

import pytest

from harness import (INTERPRETER_PATHS as INTERPRETERS, LATE_SLACK, PROGRAMS, START_TIMEOUT,
                     STOP_TIMEOUT, SYS_FUTEX, SYSTEM_PYTHON, ProcWatcher, Registry, Tracer,
                     alarm_guard, check_stream, expect_words, public, task_syscall, wait_in_futex,
                     parse_time)

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
FLICKER_PROG = os.path.join(PROGRAMS, "trace_flicker.py")
FORK_PROG = os.path.join(PROGRAMS, "trace_fork_deadlock.py")


# --------------------------------------------------------------------------- sessions

def _lock_session(binary, pre_blocked, threshold):
    """Every interpreter runs trace_lock_hang.py; its worker thread blocks on a Lock.

    pre_blocked=False: programs are gated, the tracer (-p each pid) starts first, then they
    block.  pre_blocked=True: they block first (>= 2 s), then the tracer starts.
    Returns {interpreter path: result dict} plus "_tracer"/"_rc"."""
    reg = Registry()
    res = {}
    try:
        progs = {}
        args = ["--release"] + ([] if pre_blocked else ["--gate"])
        for py in INTERPRETERS:
            p = reg.hanging([py, LOCK_PROG] + args, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, bufsize=0)
            progs[py] = p
        for py, p in progs.items():
            pid = int(expect_words(p, "ready", 30, py)[0])
            res[py] = {"pid": pid, "errors": []}

        def block_info(py):
            words = expect_words(progs[py], "blocking", 15, py)
            r = res[py]
            r["tid"], r["blocked_wall"] = int(words[0]), float(words[1])
            sc = wait_in_futex(r["pid"], r["tid"], 15)
            r["futex_addr"], r["futex_op_arg"] = int(sc[1], 16), int(sc[2], 16)

        if pre_blocked:
            for py in progs:
                block_info(py)
            # blocked for at least 2 s before the tracer starts
            time.sleep(max(0.0, max(r["blocked_wall"] for r in res.values()) + 2.0 - time.time()))
        pid_args = []
        for py in INTERPRETERS:
            pid_args += ["-p", str(res[py]["pid"])]
        # watch the targets from before the tracer attaches until after it detached
        watcher = ProcWatcher([res[py]["pid"] for py in INTERPRETERS])
        res["_watcher"] = watcher
        tr = Tracer(reg, binary, ["--json", "-t", str(threshold)] + pid_args)
        res["_tracer"] = tr
        tr.wait_start()
        res["_start_wall"] = time.time()
        if not pre_blocked:
            for py, p in progs.items():
                p.stdin.write(b"go\n")
            for py in progs:
                block_info(py)
        # every worker's long_wait, while it is still blocked
        for py in INTERPRETERS:
            r = res[py]
            try:
                left = max(1.0, r["blocked_wall"] + threshold + LATE_SLACK + 5 - time.time())
                ev = tr.wait_for(lambda e, r=r: e.get("event") == "long_wait" and e.get("tid") == r["tid"],
                                 left, "long_wait for tid %d (%s)" % (r["tid"], py))
                r["long_wait"] = ev
                sc = task_syscall(r["pid"], r["tid"])
                r["blocked_after_event"] = bool(sc and sc[0] == str(SYS_FUTEX))
                if r["blocked_after_event"]:
                    # the futex of the lock wait: the one seen when "blocking" was printed
                    # may be a GIL wait on the way to it (the print released the GIL;
                    # taking it back can block a loaded machine's thread), not the lock's
                    r["futex_addr"], r["futex_op_arg"] = int(sc[1], 16), int(sc[2], 16)
            except AssertionError as e:
                r["errors"].append(str(e))
        # release them all; each reports "acquired"
        release_wall = time.time()
        for py, p in progs.items():
            p.stdin.write(b"release\n")
        for py, p in progs.items():
            expect_words(p, "acquired", 15, py)
            res[py]["release_wall"] = release_wall
            res[py]["rc"] = p.wait(15)
        for py in INTERPRETERS:
            r = res[py]
            if "long_wait" not in r:
                continue
            try:
                r["wait_end"] = tr.wait_for(
                    lambda e, r=r: e.get("event") == "wait_end" and e.get("tid") == r["tid"], 5,
                    "wait_end for tid %d (%s)" % (r["tid"], py))
            except AssertionError as e:
                r["errors"].append(str(e))
        time.sleep(0.3)
        res["_rc"] = tr.stop()
        watcher.stop()
        return res
    finally:
        if "_watcher" in res:
            res["_watcher"].stop()
        reg.cleanup()


@pytest.fixture(scope="module")
def lock_session(binary):
    with alarm_guard(120, "lock session"):
        return _lock_session(binary, pre_blocked=False, threshold=1)


@pytest.fixture(scope="module")
def preblocked_session(binary):
    with alarm_guard(120, "pre-blocked lock session"):
        return _lock_session(binary, pre_blocked=True, threshold=1)


def _check_session_basics(res):
    tr = res["_tracer"]
    check_stream(tr)
    assert res["_rc"] == 0, "tracer exit status %s after SIGINT (want 0)%s" % (res["_rc"], tr.describe())

# --------------------------------------------------------------------------- 1. lock hang

def test_lock_session_stream(lock_session):
    _check_session_basics(lock_session)


def test_long_wait_while_blocked(lock_session, python):
    r = lock_session[python]
    tr = lock_session["_tracer"]
    assert "long_wait" in r, "\n".join(r["errors"])
    ev = r["long_wait"]
    threshold = 1
    assert ev["pid"] == r["pid"], public(ev)
    assert ev["before_start"] is False, "wait began after 'start': %r" % public(ev)
    assert ev["waited_s"] >= threshold, "waited_s below the threshold: %r" % public(ev)
    # reported while still blocked: we had not released it, and the thread is still in futex
    assert r["blocked_after_event"], "thread no longer in futex() after its long_wait"
    since_block = ev["_recv"] - r["blocked_wall"]
    assert since_block >= threshold - 0.05, "long_wait %.2f s after blocking, before the threshold" % since_block
    assert since_block <= threshold + LATE_SLACK, \
        "long_wait only %.2f s after blocking (threshold %s)" % (since_block, threshold)
    assert ev["waited_s"] <= since_block + 0.2, \
        "waited_s %.3f longer than the thread has been blocked (%.3f s)" % (ev["waited_s"], since_block)
    assert int(ev["futex"]["addr"], 16) == r["futex_addr"], \
        "futex.addr %s, /proc/PID/task/TID/syscall says %#x" % (ev["futex"]["addr"], r["futex_addr"])
    op = ev["futex"]["op"]
    if isinstance(op, str):
        assert "WAIT" in op.upper(), "futex.op %r for a futex wait (op arg %#x)" % (op, r["futex_op_arg"])
    # once per wait; and no other thread of the program waited that long
    same = [e for e in tr.select("long_wait", pid=r["pid"]) if e.get("futex")]  # not stdin's I/O wait
    assert [e["tid"] for e in same] == [r["tid"]], \
        "want exactly one long_wait for this pid (tid %d): %r" % (r["tid"], [public(e) for e in same])


def test_wait_end_after_release(lock_session, python):
    r = lock_session[python]
    assert "wait_end" in r, "\n".join(r["errors"])
    lw, we = r["long_wait"], r["wait_end"]
    assert we["pid"] == r["pid"] and we["_idx"] > lw["_idx"], public(we)
    assert we["waited_s"] >= lw["waited_s"], "wait_end %r < long_wait %r" % (we["waited_s"], lw["waited_s"])
    total = r["release_wall"] - r["blocked_wall"]
    assert total - 0.3 <= we["waited_s"] <= total + 0.5, \
        "wait_end.waited_s %.3f, but the thread was blocked ~%.3f s" % (we["waited_s"], total)
    assert parse_time(we["time"]) >= parse_time(lw["time"])
    assert r["rc"] == 0


def test_target_never_stopped(lock_session, python):
    r = lock_session[python]
    w = lock_session["_watcher"]
    assert w.samples[r["pid"]] >= 5, "watcher hardly sampled /proc/%d/status" % r["pid"]
    assert not w.violations[r["pid"]], w.violations[r["pid"]][:5]


# --------------------------------------------------------------------------- 2. blocked before start

def test_preblocked_session_stream(preblocked_session):
    _check_session_basics(preblocked_session)


def test_long_wait_before_start(preblocked_session, python):
    r = preblocked_session[python]
    assert "long_wait" in r, "\n".join(r["errors"])
    ev = r["long_wait"]
    assert ev["pid"] == r["pid"], public(ev)
    assert ev["before_start"] is True, "the wait began before the tracer started: %r" % public(ev)
    blocked = ev["_recv"] - r["blocked_wall"]   # how long it had been blocked when reported
    assert preblocked_session["_start_wall"] - r["blocked_wall"] >= 2.0
    assert ev["waited_s"] >= blocked - 0.5, \
        "waited_s %.3f but the thread had been blocked %.3f s (counted from tracer start?)" % (ev["waited_s"], blocked)
    assert ev["waited_s"] <= blocked + 0.3, \
        "waited_s %.3f but the thread had been blocked only %.3f s" % (ev["waited_s"], blocked)
    assert ev["_recv"] - preblocked_session["_start_wall"] <= 1 + LATE_SLACK, \
        "already over the threshold at start, but reported %.2f s after start" % (
            ev["_recv"] - preblocked_session["_start_wall"])
    assert int(ev["futex"]["addr"], 16) == r["futex_addr"], \
        "futex.addr %s, /proc says %#x" % (ev["futex"]["addr"], r["futex_addr"])
    tr = preblocked_session["_tracer"]
    assert len(tr.select("long_wait", pid=r["pid"], tid=r["tid"])) == 1, "more than one long_wait for one wait"


def test_wait_end_of_preblocked_wait(preblocked_session, python):
    r = preblocked_session[python]
    assert "wait_end" in r, "\n".join(r["errors"])
    assert r["wait_end"]["waited_s"] >= r["long_wait"]["waited_s"], public(r["wait_end"])


def test_preblocked_target_never_stopped(preblocked_session, python):
    r = preblocked_session[python]
    w = preblocked_session["_watcher"]
    assert w.samples[r["pid"]] >= 5, "watcher hardly sampled /proc/%d/status" % r["pid"]
    assert not w.violations[r["pid"]], w.violations[r["pid"]][:5]


# --------------------------------------------------------------------------- fork while locked

@pytest.fixture(scope="module")
def fork_session(binary, tmp_path_factory):
    """`-- sh -c`: trace_fork_deadlock.py with every interpreter at once (children forked,
    not exec'd, are Python processes too)."""
    d = tmp_path_factory.mktemp("fork")
    reports = dict((py, str(d / ("fork%d.txt" % i))) for i, py in enumerate(INTERPRETERS))
    script = " ".join("%s %s %s &" % (shlex.quote(py), shlex.quote(FORK_PROG), shlex.quote(reports[py]))
                      for py in INTERPRETERS) + " wait; exit 0"
    reg = Registry()
    try:
        with alarm_guard(90, "fork session"):
            tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", "sh", "-c", script], hangs=True)
            tr.wait_start()
            rc = tr.wait_exit(60)
        out = {"_tracer": tr, "_rc": rc}
        for py in INTERPRETERS:
            try:
                with open(reports[py]) as f:
                    out[py] = [int(x) for x in f.read().split()]
            except (OSError, ValueError) as e:
                out[py] = "no report: %s" % e
        return out
    finally:
        reg.cleanup()


def test_fork_session_stream(fork_session):
    tr = fork_session["_tracer"]
    check_stream(tr)
    assert fork_session["_rc"] == 0, tr.describe()


def test_forked_child_deadlock(fork_session, python):
    rep = fork_session[python]
    assert isinstance(rep, list), rep
    parent, child = rep
    tr = fork_session["_tracer"]
    waits = tr.select("long_wait", pid=child)
    assert len(waits) == 1, "forked child %d blocked on a copied lock: want one long_wait, got %r%s" % (
        child, [public(e) for e in waits], tr.describe())
    e = waits[0]
    assert e["tid"] == child and e["before_start"] is False and e["waited_s"] >= 0.5, public(e)
    # the parent only waits in wait4() for that child: a wait for a child, never a futex wait
    for pw in tr.select("long_wait", pid=parent):
        wf = pw.get("waiting_for") or {}
        assert pw.get("futex") is None and pw.get("syscall") in ("wait4", "waitid"), public(pw)
        assert wf.get("kind") == "child" and (wf.get("child") or {}).get("pid") == child, public(pw)


# --------------------------------------------------------------------------- more waits

def test_many_blocked_threads_each_reported_once(reg, binary):
    """64 threads blocked on one lock: 64 long_waits (one per thread), 64 wait_ends."""
    n = 64
    p = reg.hanging([SYSTEM_PYTHON, LOCK_PROG, "--gate", "--release", "--threads", str(n)],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    pid = int(expect_words(p, "ready", 30, "many threads")[0])
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(pid)])
    tr.wait_start()
    p.stdin.write(b"go\n")
    tids = set(int(expect_words(p, "blocking", 15, "many threads")[0]) for _ in range(n))
    for tid in tids:
        wait_in_futex(pid, tid, 10)
    deadline = time.monotonic() + 0.5 + LATE_SLACK + 3
    while time.monotonic() < deadline and set(e["tid"] for e in tr.select("long_wait", pid=pid)) < tids:
        time.sleep(0.1)
    got = [e["tid"] for e in tr.select("long_wait", pid=pid)]
    assert set(got) == tids, "long_wait missing for %d of %d blocked threads%s" % (
        len(tids - set(got)), n, tr.describe())
    p.stdin.write(b"release\n")
    for _ in range(n):
        expect_words(p, "acquired", 15, "many threads")
    assert p.wait(15) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(tr.select("wait_end", pid=pid)) < n:
        time.sleep(0.1)
    assert tr.stop() == 0
    check_stream(tr)
    got = sorted(e["tid"] for e in tr.select("long_wait", pid=pid))
    assert got == sorted(tids), "want exactly one long_wait per thread, got %d events for %d threads" % (
        len(got), n)
    ends = sorted(e["tid"] for e in tr.select("wait_end", pid=pid))
    assert ends == sorted(tids), "want one wait_end per thread: %d for %d threads" % (len(ends), n)
    assert tr.select("stop")[0]["lost_events"] == 0


def test_short_waits_not_reported(reg, binary):
    """Waits shorter than the threshold (timed waits, brief lock contention) give nothing."""
    code = ("import threading, time\n"
            "ev = threading.Event()\n"
            "for i in range(4):\n"
            "    ev.wait(0.3)\n"
            "lock = threading.Lock()\n"
            "def hold():\n"
            "    with lock:\n"
            "        time.sleep(0.3)\n"
            "for i in range(3):\n"
            "    t = threading.Thread(target=hold); t.start(); time.sleep(0.05)\n"
            "    with lock:\n"
            "        pass\n"
            "    t.join()\n")
    tr = Tracer(reg, binary, ["--json", "-t", "1", "--", SYSTEM_PYTHON, "-c", code])
    tr.wait_start()
    assert tr.wait_exit(30) == 0, tr.describe()
    check_stream(tr)
    bad = [public(e) for e in tr.select() if e["event"] in ("long_wait", "wait_end")]
    assert not bad, "waits under the 1 s threshold reported: %r" % bad


def _host_ids(ns_leader_parent, ns_tid):
    """Host pid of the only child of `ns_leader_parent`, and the host tid of its thread whose
    innermost-namespace tid is `ns_tid` (from NSpid in /proc/PID/task/TID/status)."""
    with open("/proc/%d/task/%d/children" % (ns_leader_parent, ns_leader_parent)) as f:
        kids = [int(x) for x in f.read().split()]
    assert len(kids) == 1, kids
    host_pid = kids[0]
    for tid in os.listdir("/proc/%d/task" % host_pid):
        with open("/proc/%d/task/%s/status" % (host_pid, tid)) as f:
            nspid = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M).group(1).split()
        if int(nspid[-1]) == ns_tid:
            return host_pid, int(tid)
    raise AssertionError("no thread of %d has namespace tid %d" % (host_pid, ns_tid))


def test_container_like_target(reg, binary, tmp_path):
    """A Python process in its own pid and mount namespaces, running an interpreter binary
    that exists only in its mount namespace: default mode still recognizes CPython, and
    pid/tid are reported in the host's pid namespace."""
    d = tmp_path / "ns"
    d.mkdir()
    script = 'mount -t tmpfs none "$1" && cp "$2" "$1/python" && exec "$1/python" "$3" --gate --release'
    p = reg.hanging(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
                   "sh", "-c", script, "sh", str(d), SYSTEM_PYTHON, LOCK_PROG],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    ns_pid = int(expect_words(p, "ready", 30, "namespaced python")[0])
    host_pid, _ = _host_ids(p.pid, ns_pid)
    assert host_pid != ns_pid
    assert not os.path.exists(os.path.join(str(d), "python")), "the tmpfs leaked into the host namespace"
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(host_pid)])
    tr.wait_start()
    p.stdin.write(b"go\n")
    ns_tid = int(expect_words(p, "blocking", 15, "namespaced python")[0])
    _, host_tid = _host_ids(p.pid, ns_tid)
    wait_in_futex(host_pid, host_tid, 10)
    # the futex wait (the main thread, reading the gate's pipe, may have an I/O long_wait too)
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("pid") == host_pid and e.get("futex"),
                     0.5 + LATE_SLACK + 3,
                     "long_wait of the namespaced Python process (host pid %d)" % host_pid)
    assert ev["tid"] == host_tid, "tid %r, want the host tid %d (namespace tid %d)" % (ev["tid"], host_tid, ns_tid)
    assert ev["before_start"] is False, public(ev)
    p.stdin.write(b"release\n")
    expect_words(p, "acquired", 15, "namespaced python")
    assert p.wait(15) == 0
    tr.wait_for(lambda e: e.get("event") == "wait_end" and e.get("tid") == host_tid, 5, "wait_end")
    assert tr.stop() == 0
    check_stream(tr)


def test_no_false_long_wait_from_startup_scan(reg, binary):
    """Threads that are in a futex wait for 2 ms when the tracer starts, then sleep 0.5 s
    (not in a futex), must not be reported as blocked: the start-up scan must not leave a
    stale 'already waiting' entry behind for a wait that ended meanwhile.  Several tracer
    start-ups over 3 x 300 such threads; a long_wait is false when its thread is not in
    that futex wait when the event arrives (workers never wait long on a futex)."""
    procs = [reg.popen([SYSTEM_PYTHON, FLICKER_PROG, "300", "30"], stdout=subprocess.PIPE, bufsize=0)
             for _ in range(3)]
    pids = [int(expect_words(p, "ready", 30, "trace_flicker.py")[0]) for p in procs]
    pid_args = []
    for pid in pids:
        pid_args += ["-p", str(pid)]
    false = []
    for attempt in range(5):
        tr = Tracer(reg, binary, ["--json", "-t", "0.3", "--duration", "0.9"] + pid_args)
        seen = 0
        deadline = time.monotonic() + START_TIMEOUT + 5
        while time.monotonic() < deadline:
            with tr.cond:
                new = tr.events[seen:]
                seen = len(tr.events)
                if not new and tr.eof:
                    break
                if not new:
                    tr.cond.wait(0.1)
                    continue
            for e in new:
                if e.get("event") != "long_wait" or not e.get("futex"):
                    continue  # I/O waits are sampled where they are: test_io_waits.py
                sc = task_syscall(e["pid"], e["tid"])
                if not (sc and sc[0] == str(SYS_FUTEX) and int(sc[1], 16) == int(e["futex"]["addr"], 16)):
                    false.append("start-up %d: %s; the thread is in syscall %s"
                                 % (attempt, public(e), sc[:2] if sc else sc))
        assert tr.wait_exit(STOP_TIMEOUT) == 0, tr.describe()
        check_stream(tr)
    assert not false, "long_wait for threads not waiting on that futex:\n" + "\n".join(false)
