"""Who holds the other end of a pipe (issue 16): `blocked_on.peer` for pipes, on every
interpreter, and the subprocess an asyncio task awaits (3.7-3.13): its pid, whether it
exited, and which process still holds its stdout pipe open.

Real processes, real pipes, real `dump` (root).  What is expected comes from the programs
(tests/programs/pipe_peers.py, pipe_peers_aio.py print their children's pids and their
threads' tids) and from /proc as the test reads it itself (the grandchild `sleep`, found by
its session), never from the tool's output.  Every program blocks for good on purpose and is
marked so.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import INTERPRETERS, NOBODY, SYSTEM_PYTHON
from harness import Registry, Tracer, alarm_guard, mark_line, read_line, short, task_syscall

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "pipe_peers.py")
AIO = os.path.join(HERE, "programs", "pipe_peers_aio.py")

VERSIONS = [(label, path, tuple(int(x) for x in v.split(".")[:2])) for label, path, v in INTERPRETERS]
ALL = [pytest.param(p, id=l) for l, p, v in VERSIONS]
AIO_READ = [pytest.param(p, v, id=l) for l, p, v in VERSIONS if v >= (3, 7)]
HOSTILE_FDS = 12000       # fds of the hostile program (more than one scan reads of one process)
HOSTILE_CHILDREN = 80     # its children (more than the candidates looked at)


def start(reg, argv, **kw):
    """Start a program that blocks for good (marked as hanging), read up to "ready"."""
    p = reg.popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0, hangs=True, **kw)
    pid = int(read_line(p, 30, "%s pid" % argv).split()[1])
    lines = []
    while True:
        line = read_line(p, 60, "%s ready" % argv)
        if line == "ready":
            return p, pid, lines
        lines.append(line)


def wait_in_read(pid, tid, timeout=20):
    """Poll until the thread sits in read() (x86_64 number 0): "ready" is printed just
    before the call, and under load the call may come a while later."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = task_syscall(pid, tid)
        if s and s[0] == "0":
            return
        time.sleep(0.05)
    raise AssertionError("thread %d of %d never got into read(): %r" % (tid, pid, task_syscall(pid, tid)))


def dump(binary, pid, json_out=True):
    argv = [binary, "dump", str(pid)] + (["--json"] if json_out else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "dump failed: %s" % out.stderr
    return json.loads(out.stdout) if json_out else out.stdout


def comm(pid):
    """/proc/PID/comm as text (other processes on the host may name themselves in any bytes)."""
    with open("/proc/%d/comm" % pid, "rb") as f:
        return f.read().rstrip(b"\n").decode("utf-8", "replace")


def value(lines, key):
    for l in lines:
        w = l.split()
        if w[0] == key:
            return w[1:]
    raise AssertionError("no %r line in %r" % (key, lines))


@pytest.mark.parametrize("python", ALL)
def test_pipe_peer_threads(binary, python):
    """A thread reads a pipe whose write end only a forked child holds: `peer` is that
    child; a thread reads a pipe whose write end its own process holds: `peer` is the
    process itself (`self` true). JSON and the text dump say so."""
    reg = Registry()
    try:
        with alarm_guard(60, "pipe peers"):
            p, pid, lines = start(reg, [python, PROG, "threads"])
            child = int(value(lines, "child")[0])
            tids = dict((l.split()[1], int(l.split()[2])) for l in lines if l.startswith("tid "))
            for tid in tids.values():
                wait_in_read(pid, tid)
            d = dump(binary, pid)
            text = dump(binary, pid, False)
            child_comm = comm(child)
            my_comm = comm(pid)
    finally:
        reg.cleanup()
    by = dict((t["tid"], t) for t in d["threads"])
    other = by[tids["reader-other"]]["waiting_for"]["blocked_on"]
    assert other["type"] == "pipe" and other["pipe_end"] == "read", other
    assert other["peer"] == {"pid": child, "comm": child_comm}, other
    assert [(x["pid"], x["self"]) for x in other["peers"]] == [(child, False)], other
    assert other["peers_total"] == 1 and other["peers_searched"] >= 2, other
    mine = by[tids["reader-self"]]["waiting_for"]["blocked_on"]
    assert mine["type"] == "pipe" and mine["pipe_end"] == "read", mine
    assert mine["peer"] == {"pid": pid, "comm": my_comm}, mine
    assert [(x["pid"], x["self"]) for x in mine["peers"]] == [(pid, True)], mine
    want = ["(tid %d, daemon, sleep in read() on pipe (fd %d), its write end held by '%s' (pid %d)"
            % (tids["reader-other"], other["fd"], child_comm, child),
            "(tid %d, daemon, sleep in read() on pipe (fd %d), its write end held by itself ('%s' pid %d)"
            % (tids["reader-self"], mine["fd"], my_comm, pid)]
    for w in want:
        assert w in text, "%r not in the text dump:\n%s" % (w, text[:3000])


def _session_sleepers(sid, arg):
    """Processes running `sleep ARG` in session sid, as /proc shows them."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % e, "rb") as f:
                argv = f.read().split(b"\0")
            if comm(int(e)) == "sleep" and argv[1:2] == [arg.encode()] and os.getsid(int(e)) == sid:
                out.append(int(e))
        except (OSError, IndexError):
            pass
    return out


def _tasks(d, named):
    loops = d["asyncio"]["loops"]
    assert len(loops) == 1, loops
    out = {}
    for t in loops[0]["tasks"]:
        if named:
            out[t["name"]] = t
        else:  # 3.7: no names; the outermost coroutine's function
            out[t["coroutine_stack"][-1]["function"].rsplit(".", 1)[-1] if t["coroutine_stack"] else None] = t
    return out


@pytest.mark.parametrize("python,version", AIO_READ)
def test_asyncio_subprocess_grandchild_holds_pipe(binary, python, version):
    """Task 'runner' awaits communicate() of `sh -c 'sleep 1000 & exit 0'`: sh has exited
    (asyncio reaped it, return code 0) but its child `sleep` keeps the stdout pipe open, so
    the task never sees EOF. The task's `awaits.subprocess` names sh's pid, "exited", and the
    grandchild as the holder of the pipe; the text tree says it in one sentence. Task
    'waiter' awaits a running child; task 'reader' reads proc.stdout itself (followed from
    the StreamReader's transport to the subprocess); task 'forged' awaits a fake Process whose pid is 1,
    which is no child: its state stays "unknown" and nothing about pid 1 is reported."""
    reg = Registry()
    named = version >= (3, 8)
    try:
        with alarm_guard(60, "asyncio subprocess"):
            p, pid, lines = start(reg, [python, AIO])
            sub = int(value(lines, "sub")[0])
            waitsub = int(value(lines, "waitsub")[0])
            deadline = time.monotonic() + 20
            while True:  # sh exits at once; asyncio reaps it in its own time
                d = dump(binary, pid)
                tasks = _tasks(d, named)
                s = tasks["runner"]["awaits"].get("subprocess") or {}
                r = tasks["reader"]["awaits"].get("subprocess") or {}
                if (s.get("state") == "exited" and s.get("pipe_holders") and r.get("state") == "exited"
                        and r.get("pipe_holders")) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            text = dump(binary, pid, False)
            grand = _session_sleepers(pid, "1000")
            grand = [g for g in grand if g != waitsub]
            grand_r = _session_sleepers(pid, "1001")
            readsub = int(value(lines, "readsub")[0])
    finally:
        reg.cleanup()
    assert len(grand) == 1, "the test found grandchildren %r" % grand
    g = grand[0]
    runner = tasks["runner"]["awaits"]
    s = runner.get("subprocess")
    assert s, "no subprocess for 'runner': %s" % json.dumps(runner)
    assert s["pid"] == sub and s["state"] == "exited" and s["returncode"] == 0, s
    assert [x["stream"] for x in s["pipes"]] == ["stdout"], s
    assert [(h["pid"], h["comm"], h["stream"], h["self"]) for h in s["pipe_holders"]] == \
        [(g, "sleep", "stdout", False)], s
    assert s["pipe_holders_total"] == 1, s
    w = tasks["waiter"]["awaits"]
    assert w["kind"] == "subprocess", w
    assert w["subprocess"]["pid"] == waitsub and w["subprocess"]["state"] == "running", w
    assert w["subprocess"]["returncode"] is None and w["subprocess"]["pipe_holders"] == [], w
    r = tasks["reader"]["awaits"]
    assert r["kind"] == "io", r  # it reads proc.stdout itself: no subprocess.py frame
    assert len(grand_r) == 1, "the test found grandchildren %r" % grand_r
    assert r["subprocess"]["pid"] == readsub and r["subprocess"]["state"] == "exited", r
    assert [(h["pid"], h["stream"]) for h in r["subprocess"]["pipe_holders"]] == [(grand_r[0], "stdout")], r
    f = tasks["forged" if named else "wait"]["awaits"]
    assert f["subprocess"]["pid"] == 1 and f["subprocess"]["state"] == "unknown", f
    want = "for subprocess %d (exited, return code 0), whose stdout pipe is still held open by " \
        "'sleep' (pid %d)" % (sub, g)
    label = "\u2500\u2500 " + ("Task 'runner'" if named else "Task running runner()")
    line = [l for l in text.splitlines() if label in l]
    assert line and want in line[0], "%r not in the runner's line of:\n%s" % (want, text[-3000:])
    assert "awaits subprocess %d (running)" % waitsub in text, text[-3000:]


def test_hostile_many_fds_and_children(binary):
    """An unprivileged program with 12,000 fds and 80 children that all keep them reads a
    pipe whose write end only its last child holds, at its highest fd: the search stays
    within its bounds (at most 64 processes, reads cut) and says it was cut, names no
    holder it did not see, and the dump still answers."""
    reg = Registry()
    try:
        with alarm_guard(90, "hostile pipe peers"):
            p, pid, lines = start(reg, NOBODY + [SYSTEM_PYTHON, PROG, "hostile", str(HOSTILE_FDS),
                                                 str(HOSTILE_CHILDREN)], cwd="/")
            assert int(value(lines, "fds")[0]) > 4096, lines
            wait_in_read(pid, pid)
            t0 = time.monotonic()
            d = dump(binary, pid)
            took = time.monotonic() - t0
    finally:
        reg.cleanup()
    b = d["threads"][0]["waiting_for"]["blocked_on"]
    assert b["type"] == "pipe" and b["pipe_end"] == "read", b
    assert b["peers_cut"] is True, b
    assert 1 <= b["peers_searched"] <= 64, b
    assert b["peer"] is None and b["peers"] == [] and b["peers_total"] == 0, b
    print("hostile dump: %.2f s for %d fds x %d children" % (took, HOSTILE_FDS, HOSTILE_CHILDREN))


def test_pipe_peers_in_events(binary):
    """The same pipes seen by the tracer (`-t 1 -p ...`, every interpreter at once): the
    `long_wait` of each reading thread carries `blocked_on.peer` (the child, or the process
    itself); the event loop's `long_wait` of the asyncio programs carries the tasks, the
    runner's with its subprocess's pid. No `hang` for any of them: a pipe nobody else
    writes, and a subprocess's pipe held by a grandchild, are long waits only."""
    reg = Registry()
    jobs = {}
    try:
        with alarm_guard(100, "pipe peers in events"):
            for label, python, version in VERSIONS:
                p, pid, lines = start(reg, [python, PROG, "threads"])
                tids = dict((l.split()[1], int(l.split()[2])) for l in lines if l.startswith("tid "))
                jobs[("threads", label)] = (pid, int(value(lines, "child")[0]), tids)
                if version >= (3, 7):
                    p, pid, lines = start(reg, [python, AIO])
                    jobs[("aio", label)] = (pid, int(value(lines, "sub")[0]), version)
            args = ["--json", "-t", "1"]
            for pid, _, _ in jobs.values():
                args += ["-p", str(pid)]
            tr = Tracer(reg, binary, args)
            tr.wait_start()
            want = []
            for (kind, label), (pid, x, y) in jobs.items():
                if kind == "threads":
                    want += [(pid, y["reader-other"]), (pid, y["reader-self"])]
                else:
                    want.append((pid, pid))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                    tr.select("long_wait", pid=pid, tid=tid) for pid, tid in want):
                time.sleep(0.2)
            rc = tr.stop()
    finally:
        reg.cleanup()
    assert rc == 0, tr.describe()
    missing = [w for w in want if not tr.select("long_wait", pid=w[0], tid=w[1])]
    assert not missing, "no long_wait for (pid, tid) %r%s" % (missing, tr.describe())
    for (kind, label), (pid, x, y) in jobs.items():
        if kind == "threads":
            for name, peer in (("reader-other", x), ("reader-self", pid)):
                e = tr.select("long_wait", pid=pid, tid=y[name])[0]
                b = e["waiting_for"]["blocked_on"]
                assert b["type"] == "pipe" and b["peer"]["pid"] == peer, (label, name, b)
                assert [h["pid"] for h in b["peers"]] == [peer], (label, name, b)
        else:
            e = tr.select("long_wait", pid=pid, tid=pid)[0]
            tasks = [t for L in e["asyncio"]["loops"] for t in L["tasks"]]
            subs = [t["awaits"]["subprocess"]["pid"] for t in tasks if t["awaits"].get("subprocess")]
            assert x in subs, (label, [t["awaits"] for t in tasks])
    hangs = [h for h in tr.select("hang") if h.get("pid") in [j[0] for j in jobs.values()]]
    assert not hangs, [h["diagnosis"] for h in hangs]


def test_pipe_own_writer_hang(binary):
    """A single-threaded program reads a pipe whose write end only it holds (it never closed
    it): a `hang` with code pipe_own_writer naming the read and its line, on every
    interpreter, and a hang_end when the process is killed. A single-threaded program whose
    write end a child holds (the child may still write) gets a long_wait only, and so does
    one whose signal handler (or signal.set_wakeup_fd) writes to its own pipe: it waits for a
    signal, and SIGUSR1 then wakes it."""
    reg = Registry()
    jobs = {}
    try:
        with alarm_guard(100, "pipe_own_writer"):
            for label, python, version in VERSIONS:
                p, pid, lines = start(reg, [python, PROG, "selfonly"])
                jobs[("self", label)] = (p, pid)
                p, pid, lines = start(reg, [python, PROG, "childonly"])
                jobs[("child", label)] = (p, pid)
                for mode in ("selfsignal", "selfwakeup"):
                    p, pid, lines = start(reg, [python, PROG, mode])
                    jobs[(mode, label)] = (p, pid)
            for p, pid in jobs.values():
                wait_in_read(pid, pid)
            args = ["--json", "-t", "1"]
            for p, pid in jobs.values():
                args += ["-p", str(pid)]
            tr = Tracer(reg, binary, args)
            tr.wait_start()
            selfs = [pid for (k, _), (p, pid) in jobs.items() if k == "self"]
            children = [pid for (k, _), (p, pid) in jobs.items() if k != "self"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    all(tr.select("hang", pid=pid) for pid in selfs) and
                    all(tr.select("long_wait", pid=pid, tid=pid) for pid in children)):
                time.sleep(0.2)
            time.sleep(1.0)  # room for a wrong hang of the others
            woke = {}
            for (k, label), (p, pid) in jobs.items():
                if k in ("selfsignal", "selfwakeup"):  # it was waiting for a signal, not hung
                    os.kill(pid, signal.SIGUSR1)
                    woke[(k, label)] = read_line(p, 30, "%s %s woke" % (k, label))
            for (k, _), (p, pid) in jobs.items():
                if k == "self":
                    p.kill()
                    p.wait(10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(tr.select("hang_end", pid=pid) for pid in selfs):
                time.sleep(0.2)
            rc = tr.stop()
    finally:
        reg.cleanup()
    assert rc == 0, tr.describe()
    for (k, label), (p, pid) in jobs.items():
        hangs = tr.select("hang", pid=pid)
        if k != "self":
            assert tr.select("long_wait", pid=pid, tid=pid), (k, label, tr.describe())
            assert not hangs, (k, label, [h["diagnosis"] for h in hangs])
            if k != "child":
                assert woke[(k, label)] == "woke", (k, label, woke[(k, label)])
            continue
        assert len(hangs) == 1, (label, len(hangs), tr.describe())
        d = hangs[0]["diagnosis"]
        assert d["code"] == "pipe_own_writer" and d["waiter_tid"] == pid, (label, d)
        assert "read() on an empty pipe" in d["summary"], d
        assert "pipe_peers.py:%d" % mark_line(PROG, "selfonly") in d["summary"], d
        me = [t for t in hangs[0]["threads"] if t["tid"] == pid][0]
        assert me["waiting_for"]["blocked_on"]["peers"][0]["self"] is True, me
        ends = tr.select("hang_end", pid=pid)
        assert len(ends) == 1 and ends[0]["code"] == "pipe_own_writer", (label, ends)
        assert ends[0]["ended_by"] == "process_exit", ends


HUNG_WITH_THREADS = ("mpqueue", "selflate")
# the re-look is the tracer's, not the interpreter's: the oldest, 3.6 and the newest (each
# proof costs a host scan, 10 at once then one per 5 s: 13 keep the test short)
LATE_LABELS = set(l for l, _, v in VERSIONS if v in (min(x[2] for x in VERSIONS), (3, 6),
                                                      max(x[2] for x in VERSIONS)))


def test_pipe_own_writer_with_stuck_threads(binary, tmp_path):
    """pipe_own_writer with more than one thread: a multiprocessing worker killed before it
    put its result leaves its parent in the result Queue's get() (a read of a pipe only the
    parent holds the write end of) while the parent's feeder thread waits, untimed, on a
    private lock only the parent's threads could release: a hang naming the read's line and
    both threads, on every interpreter (a long_wait only before). selflate: the read is a
    long_wait while its second thread still sleeps; that thread is stuck only after, and the
    hang comes when the read is looked at again (reported once, never before). Controls,
    long_wait and no hang: a second thread in a timed wait (it may wake and write), and one
    waiting for a process-shared lock a live child could release."""
    reg = Registry()
    jobs = {}
    trigger = str(tmp_path / "late-go")
    try:
        with alarm_guard(150, "pipe_own_writer with threads"):
            for label, python, version in VERSIONS:
                for mode in ("mpqueue", "selflate", "selftimed", "selfshared"):
                    if mode == "selflate" and label not in LATE_LABELS:
                        continue
                    p, pid, lines = start(reg, [python, PROG, mode, trigger])
                    jobs[(mode, label)] = (p, pid)
            for p, pid in jobs.values():
                wait_in_read(pid, pid)
            args = ["--json", "-t", "1"]
            for p, pid in jobs.values():
                args += ["-p", str(pid)]
            tr = Tracer(reg, binary, args)
            tr.wait_start()
            # selflate: its second thread gets stuck only once its read is a long_wait
            late = [pid for (k, _), (p, pid) in jobs.items() if k == "selflate"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                    tr.select("long_wait", pid=pid, tid=pid) for pid in late):
                time.sleep(0.2)
            open(trigger, "w").close()
            hung = [pid for (k, _), (p, pid) in jobs.items() if k in HUNG_WITH_THREADS]
            others = [pid for (k, _), (p, pid) in jobs.items() if k not in HUNG_WITH_THREADS]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                    all(tr.select("hang", pid=pid) for pid in hung) and
                    all(tr.select("long_wait", pid=pid, tid=pid) for pid in others)):
                time.sleep(0.2)
            time.sleep(2.0)  # room for a wrong hang of the controls
            rc = tr.stop()
    finally:
        reg.cleanup()
    assert rc == 0, tr.describe()
    for (k, label), (p, pid) in jobs.items():
        hangs = tr.select("hang", pid=pid)
        if k not in HUNG_WITH_THREADS:
            assert tr.select("long_wait", pid=pid, tid=pid), (k, label, tr.describe())
            assert not hangs, (k, label, [h["diagnosis"] for h in hangs])
            # and the second thread is what the control is about (so that the rule it
            # tests, not another, kept it from a hang)
            lws = tr.select("long_wait", pid=pid)
            other = [t for e in lws for t in e.get("threads") or [] if t.get("tid") != pid]
            assert other, (k, label, [short(e, 800) for e in lws])
            if k == "selfshared":  # its own long_wait: a futex op without _PRIVATE
                own = [e for e in lws if e["tid"] != pid and e.get("futex")]
                assert own and all("PRIVATE" not in e["futex"]["op"] for e in own), \
                    (label, [short(e, 600) for e in own])
            else:  # timed: a timeout on its wait, or (2.7) a sleep between polls
                assert all(t.get("state") == "sleep" or
                           (t.get("waiting_for") or {}).get("timeout_s") is not None
                           for t in other), (label, other)
            continue
        assert len(hangs) == 1, (label, len(hangs), [short(e, 800) for e in tr.select("long_wait", pid=pid)])
        d = hangs[0]["diagnosis"]
        assert d["code"] == "pipe_own_writer" and d["waiter_tid"] == pid, (label, d)
        assert "whose other threads all wait, untimed" in d["summary"], d
        assert "pipe_peers.py:%d" % mark_line(PROG, k) in d["summary"], d
        tids = [t["tid"] for t in hangs[0]["threads"]]
        assert len(tids) == 2 and sorted(d["culprit_tids"]) == sorted(tids), (label, d, tids)
        other = [t for t in hangs[0]["threads"] if t["tid"] != pid][0]
        want = "_feed" if k == "mpqueue" else "late"
        assert any(f.get("function", "").endswith(want) for f in other.get("stack") or []), \
            (label, other)
        if k == "selflate":  # the long_wait came first (the second thread slept), then
            lw = [e for e in tr.select("long_wait", pid=pid, tid=pid)]  # the hang, later
            assert lw and lw[0]["_idx"] < hangs[0]["_idx"], (label, short(lw[0], 600))


def test_pipe_own_writer_ends_the_command_under_hang_timeout(binary):
    """The CI guard acts on pipe_own_writer like on any hang: `--hang-timeout 3 -- python
    reader-of-its-own-pipe` prints the hang first (its long_wait one line after it), ends
    the command and exits 124 (it ran on until --duration before)."""
    reg = Registry()
    try:
        with alarm_guard(90, "pipe_own_writer under --hang-timeout"):
            p = reg.popen([binary, "-t", "1", "--hang-timeout", "3", "--duration", "60", "--",
                           SYSTEM_PYTHON, PROG, "selfonly"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, hangs=True)
            out, err = p.communicate(timeout=80)
    finally:
        reg.cleanup()
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    assert p.returncode == 124, (p.returncode, err[-2000:])
    hang, lw = out.find(" HANG "), out.find(" LONG WAIT ")
    assert 0 <= hang < lw, out[-3000:]
    assert "(part of the hang reported above)" in out[lw:].splitlines()[0], out[lw:][:500]
    assert "exit status 124 (hang timeout)" in err, err[-2000:]
