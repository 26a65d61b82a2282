"""Waits for a child through a pidfd: os.waitid(os.P_PIDFD, fd, ...) (Python 3.9+, Linux
5.4+) waits for the one child the pidfd names, not for any child.

The kernel hook records the wait with the waiter's fd (it cannot tell which process the
pidfd names); the tracer reads the child from /proc/PID/fdinfo/FD while the wait lasts. An
ECHILD from a pidfd wait proves no loss (the pidfd may not name a child at all), so it is
never reported as one: a wait(-1) after it still is.

Real kernel, real interpreters (3.9+), one tracer in `-- sh -c` mode for the programs of
tests/programs/childwait_cases.py and one attached with -p to parents already blocked in
their pidfd wait. Pids, fds and lines come from the programs' reports and `# MARK:`
comments, never from the tool's output. Every test here failed before the fix: the wait was
"any child" ({pid: -1, children: [...]}) and the pidfd's ECHILD took the loss of the last
auto-reaped child for itself.
"""
import os
import signal
import subprocess
import time

import pytest

import harness.session as harness_session
from harness import Registry, Tracer, alarm_guard, mark_line, short, task_syscall
from test_child_waits import TreeJob, _hangs, _kill_tree
from test_diagnose import INTERP, INTERPRETERS, check_stream, frame_index, label_of, run_session, \
    thread_by_tid

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "programs", "childwait_cases.py")
PIDFD_PYTHONS = [p for p in INTERPRETERS if tuple(int(x) for x in INTERP[p][1].split(".")[:2]) >= (3, 9)]
IDS = [label_of(p) for p in PIDFD_PYTHONS]
KINDS = ("pidfd_chatty", "pidfd_sleeper", "pidfd_nonchild")
WAIT_ALL = 90.0


def _child_long_waits(tr, pid, tid):
    return [e for e in tr.select("long_wait", pid=pid, tid=tid) if e.get("syscall") == "waitid"]


@pytest.fixture(scope="module")
def pidfd_session(binary, tmp_path_factory):
    if not PIDFD_PYTHONS:
        pytest.skip("no Python 3.9+ (os.pidfd_open, os.P_PIDFD)")
    d = str(tmp_path_factory.mktemp("pidfd_waits"))
    jobs = [TreeJob((py, k), py, CASES, [k], d) for py in PIDFD_PYTHONS for k in KINDS]

    def pred(tr, job):
        if not job.pid:
            return False
        if job.key[1] == "pidfd_chatty":
            return bool(_hangs(tr, job.pid, "pipe_deadlock"))
        return job.get("done") is not None

    old = harness_session.HANG_TIMEOUT
    harness_session.HANG_TIMEOUT = WAIT_ALL
    try:
        s = run_session(binary, d, "pidfd_waits", [jobs], ["-t", "1"], hang_pred=pred,
                        limit=WAIT_ALL + 60)
    finally:
        harness_session.HANG_TIMEOUT = old
    return s


def test_stream(pidfd_session):
    check_stream(pidfd_session, want_rc=None)
    err = pidfd_session.tracer.stderr()
    assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]


@pytest.mark.parametrize("python", PIDFD_PYTHONS, ids=IDS)
def test_pidfd_wait_names_its_child(pidfd_session, python):
    """A pidfd wait on a child that sleeps 6 s: one long_wait whose child is that child
    (with the waiter's pidfd), not "any child"; it ends with a return; no hang."""
    job = pidfd_session[(python, "pidfd_sleeper")]
    assert job.get("done") == ["0"], job.describe()
    waiter, child, fd = job.int("waiter"), job.int("child"), job.int("pidfd")
    lws = _child_long_waits(pidfd_session.tracer, job.pid, waiter)
    assert len(lws) == 1, [short(e, 500) for e in pidfd_session.tracer.select("long_wait", pid=job.pid)]
    wf = lws[0].get("waiting_for") or {}
    assert wf.get("kind") == "child", short(lws[0])
    c = wf.get("child") or {}
    assert c.get("pid") == child and c.get("pidfd") == fd and "children" not in c, short(lws[0])
    assert c.get("state") in ("sleeping", "running", "zombie"), short(lws[0])
    t = thread_by_tid(lws[0], waiter)
    assert t and frame_index(t.get("stack") or [], CASES, mark_line(CASES, "pidfd_sleeper_wait")) >= 0, \
        short(lws[0])
    assert not pidfd_session.tracer.select("hang", pid=job.pid), \
        short(pidfd_session.tracer.select("hang", pid=job.pid)[0])
    ends = pidfd_session.tracer.select("wait_end", pid=job.pid, tid=waiter)
    assert [e.get("ended_by") for e in ends] == ["return"], [short(e) for e in ends]


@pytest.mark.parametrize("python", PIDFD_PYTHONS, ids=IDS)
def test_pidfd_reap_has_its_stack(pidfd_session, python):
    """The child a pidfd wait reaped is later polled by its Popen object (Popen.__del__ gets
    ECHILD): a reaped_elsewhere loss whose reaper stack is the pidfd wait's line (a pidfd
    wait is the program's own call, so its reap takes the stack, like a wait(-1))."""
    job = pidfd_session[(python, "pidfd_sleeper")]
    assert job.get("done") == ["0"], job.describe()
    child = job.int("child")
    lost = [e for e in pidfd_session.tracer.select("child_status_lost", pid=job.pid)
            if (e.get("child") or {}).get("pid") == child]
    assert len(lost) == 1 and lost[0].get("cause") == "reaped_elsewhere", [short(e, 600) for e in lost]
    reaper = lost[0].get("reaper") or {}
    assert reaper.get("tid") == job.int("waiter"), short(lost[0], 1500)
    assert frame_index(reaper.get("stack") or [], CASES, mark_line(CASES, "pidfd_sleeper_wait")) >= 0, \
        short(lost[0], 1500)


@pytest.mark.parametrize("python", PIDFD_PYTHONS, ids=IDS)
def test_pidfd_pipe_deadlock(pidfd_session, python):
    """A pidfd wait on a child blocked writing into a pipe only the waiter could read, with a
    second child alive: pipe_deadlock naming the pidfd's child (not the other one) and the
    wait's line."""
    job = pidfd_session[(python, "pidfd_chatty")]
    waiter, child, other = job.int("waiter"), job.int("child"), job.int("other")
    hs = _hangs(pidfd_session.tracer, job.pid, "pipe_deadlock")
    assert len(hs) == 1, [short(e, 600) for e in pidfd_session.tracer.select("hang", pid=job.pid)] + \
        [job.describe()]
    d = hs[0]["diagnosis"]
    assert d["waiter_tid"] == waiter, short(hs[0])
    assert (d.get("child") or {}).get("pid") == child != other, short(hs[0])
    assert "childwait_cases.py:%d" % mark_line(CASES, "pidfd_chatty_wait") in d["summary"], d["summary"]
    lws = _child_long_waits(pidfd_session.tracer, job.pid, waiter)
    assert len(lws) == 1, short(lws)
    assert lws[0]["waiting_for"]["child"]["pid"] == child, short(lws[0])


@pytest.mark.parametrize("python", PIDFD_PYTHONS, ids=IDS)
def test_pidfd_echild_is_no_loss(pidfd_session, python):
    """SIGCHLD ignored, a child auto-reaped, then ECHILD from a pidfd wait on a process that
    is not a child: not a lost status (nothing proves the pidfd named that child). The
    os.waitpid(-1) after it is the one loss, of that child, from wait4."""
    job = pidfd_session[(python, "pidfd_nonchild")]
    assert job.get("pidfd_echild") and job.get("waitpid_echild") and job.get("done"), job.describe()
    child = job.int("child")
    lost = pidfd_session.tracer.select("child_status_lost", pid=job.pid)
    assert [(e.get("syscall"), (e.get("child") or {}).get("pid")) for e in lost] == \
        [("wait4", child)], [short(e, 600) for e in lost]
    assert frame_index(lost[0].get("stack") or [], CASES, mark_line(CASES, "pidfd_nonchild_waitpid")) >= 0, \
        short(lost[0])


@pytest.fixture(scope="module")
def attached(binary, tmp_path_factory):
    """Parents blocked in a pidfd wait before the tracer starts, traced with -p: found at
    start-up from /proc/PID/task/TID/syscall (waitid, P_PIDFD)."""
    if not PIDFD_PYTHONS:
        pytest.skip("no Python 3.9+ (os.pidfd_open, os.P_PIDFD)")
    d = str(tmp_path_factory.mktemp("pidfd_waits_p"))
    jobs = [TreeJob((py, "pidfd_chatty"), py, CASES, ["pidfd_chatty"], d) for py in PIDFD_PYTHONS]
    reg = Registry()
    try:
        with alarm_guard(2 * WAIT_ALL + 30, "pidfd_waits -p session"):
            procs = [reg.popen(j.argv, stdout=open(j.out, "w"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, hangs=True) for j in jobs]
            deadline = time.monotonic() + WAIT_ALL
            while time.monotonic() < deadline and not all(
                    j.get("waiter") and (task_syscall(j.pid, j.int("waiter")) or ["?"])[0] == "247"
                    for j in jobs):  # in waitid (x86_64 247), before the tracer starts
                time.sleep(0.1)
            args = ["--json", "-t", "1"]
            for j in jobs:
                args += ["-p", str(j.pid)]
            tr = Tracer(reg, binary, args)
            tr.saved = os.path.join(d, "tracer.jsonl")
            try:
                tr.wait_start()
                deadline = time.monotonic() + WAIT_ALL
                while time.monotonic() < deadline and not all(
                        _hangs(tr, j.pid, "pipe_deadlock") for j in jobs):
                    time.sleep(0.1)
            finally:
                for j in jobs:
                    j.kill()
                rc = tr.stop(signal.SIGINT)
                with open(tr.saved, "w") as f:
                    f.write("\n".join(tr.lines) + "\n")
            del procs
            return dict((j.key, j) for j in jobs), tr, rc
    finally:
        reg.cleanup()


@pytest.mark.parametrize("python", PIDFD_PYTHONS, ids=IDS)
def test_attached_pidfd_wait(attached, python):
    """-p PARENT blocked in waitid(P_PIDFD) since before the tracer started: a before_start
    long wait naming the pidfd's child, and the pipe deadlock proven."""
    jobs, tr, rc = attached
    assert rc == 0, tr.describe()
    job = jobs[(python, "pidfd_chatty")]
    waiter, child, fd = job.int("waiter"), job.int("child"), job.int("pidfd")
    lws = _child_long_waits(tr, job.pid, waiter)
    assert len(lws) == 1 and lws[0].get("before_start") is True, [short(e, 600) for e in lws]
    c = lws[0]["waiting_for"]["child"]
    assert c.get("pid") == child and c.get("pidfd") == fd, short(lws[0])
    hs = _hangs(tr, job.pid, "pipe_deadlock")
    assert len(hs) == 1 and hs[0]["diagnosis"]["child"]["pid"] == child, \
        [short(e, 600) for e in tr.select("hang", pid=job.pid)]
