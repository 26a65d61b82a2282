"""End-to-end tests of issue 16 (items 1, 2, 4): the resource behind a blocking system call,
single-threaded I/O hangs found as `long_wait`s, and diagnosis chains that end in I/O, on
every interpreter.

Real kernel, real processes; needs root.  One program per mode and interpreter
(tests/programs/io_waits.py) blocks for good; then one JSON tracer and one text tracer
(`-t 1 -p PID...`) watch all of them at once, and `dump --json` reads each multi-thread
one.  Expected lines come from the program's `# MARK: name` comments, ports, pids and
tids from the program's own report file, never from the tool's output.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import sys
import time

import pytest

from conftest import NOBODY, SYSTEM_PYTHON
from harness import Registry, Tracer, alarm_guard
from test_diagnose import INTERPRETERS, Job, label_of, mark_line, short, version_of

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "io_waits.py")
READY_TIMEOUT = 30.0
SEEN_TIMEOUT = 25.0
MULTI_NAMES = ("recv-to", "piper", "locker", "unixer", "epoller", "io-holder", "lock-waiter")


def _py3(python):
    return version_of(python) >= (3, 0)


class IoSession(object):
    pass


def _expected(job):
    """(tid, what) of every wait the job's program blocks in for good."""
    want = []
    if job.key[0] in ("single", "hostile"):
        want.append(_tid(job, "MainThread"))
        if job.key[0] == "hostile":
            want.append(_tid(job, "poller"))
    else:
        names = dict((w[0], int(w[1])) for w in job.all("tid"))
        want.extend(names[n] for n in MULTI_NAMES)
        if _py3(job.python):
            want.extend([names["MainThread"], names["worker_0"]])
    return want


@pytest.fixture(scope="module")
def io_session(binary, tmp_path_factory, request):
    d = str(tmp_path_factory.mktemp("io_waits"))
    hd = tempfile.mkdtemp(prefix="io_waits_hostile_")  # reachable by nobody, who makes a FIFO there
    os.chmod(hd, 0o1777)
    request.addfinalizer(lambda: shutil.rmtree(hd, ignore_errors=True))
    reg = Registry()
    s = IoSession()
    s.jobs = {}
    try:
        with alarm_guard(110, "io_waits session"):
            for py in INTERPRETERS:
                for mode in ("single", "multi"):
                    j = Job((mode, py), py, PROG, [mode], d)
                    with open(j.out, "wb") as out:
                        reg.popen(j.argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=os.path.dirname(PROG))
                    s.jobs[(mode, py)] = j
            j = Job(("hostile", SYSTEM_PYTHON), SYSTEM_PYTHON, PROG, ["hostile"], hd)
            open(j.report, "w").close()
            os.chmod(j.report, 0o666)  # the program writes its report as nobody
            with open(j.out, "wb") as out:
                reg.popen(NOBODY + j.argv, stdout=out, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, cwd="/")
            s.jobs[("hostile", SYSTEM_PYTHON)] = j
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and not all(j.get("ready") is not None
                                                          for j in s.jobs.values()):
                time.sleep(0.1)
            for j in s.jobs.values():
                assert j.get("ready") is not None, "%s never got ready%s" % (j.key, j.describe())
            time.sleep(0.5)  # every thread in its call
            pids = []
            for j in s.jobs.values():
                pids += ["-p", str(j.pid)]
            s.dumps = {}
            for (mode, py), j in s.jobs.items():
                if mode == "multi":
                    out = subprocess.run([binary, "dump", str(j.pid), "--json"], capture_output=True,
                                         timeout=30)
                    s.dumps[py] = (out.returncode, out.stdout.decode("utf-8", "replace"),
                                   out.stderr.decode("utf-8", "replace"))
                    out = subprocess.run([binary, "dump", str(j.pid)], capture_output=True, timeout=30)
                    s.dumps[(py, "text")] = out.stdout.decode("utf-8", "replace")
            s.text_path = os.path.join(d, "text.out")
            text_out = open(s.text_path, "wb")
            text = reg.popen([binary, "-t", "1"] + pids, stdout=text_out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
            tr = Tracer(reg, binary, ["--json", "-t", "1"] + pids)
            tr.saved = os.path.join(d, "tracer.jsonl")
            s.tracer = tr
            tr.wait_start()
            want = [(j.pid, tid) for j in s.jobs.values() for tid in _expected(j)]
            deadline = time.monotonic() + SEEN_TIMEOUT
            while time.monotonic() < deadline and not all(
                    tr.select("long_wait", pid=pid, tid=tid) for pid, tid in want):
                time.sleep(0.2)
            time.sleep(1.0)  # room for wrong duplicates
            # the single-thread programs end while blocked: their waits end with them
            for (mode, py), j in s.jobs.items():
                if mode == "single":
                    j.kill()
            ends = [(j.pid, _tid(j, "MainThread")) for (m, _), j in s.jobs.items() if m == "single"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(
                    tr.select("wait_end", pid=pid, tid=tid) for pid, tid in ends):
                time.sleep(0.2)
            s.rc = tr.stop(signal.SIGINT)
            text.send_signal(signal.SIGINT)
            text.wait(15)
            text_out.close()
            with open(s.text_path, "rb") as f:
                s.text = f.read().decode("utf-8", "replace")
            with open(tr.saved, "w") as f:
                f.write("\n".join(tr.lines) + "\n")
            for j in s.jobs.values():
                w = j.get("holder")
                if w:
                    try:
                        os.kill(int(w[0]), signal.SIGKILL)
                    except OSError:
                        pass
                j.kill()
                for ext in ("lock", "sock"):
                    try:
                        os.unlink("/tmp/io_waits_%d.%s" % (j.pid, ext))
                    except OSError:
                        pass
        return s
    finally:
        reg.cleanup()


def _long_wait(s, job, tid):
    lws = s.tracer.select("long_wait", pid=job.pid, tid=tid)
    assert len(lws) == 1, "want one long_wait of tid %d (%s), got %d%s%s" % (
        tid, label_of(job.python), len(lws), job.describe(), s.tracer.describe())
    return lws[0]


def _tid(job, name):
    for w in job.all("tid"):
        if w[0] == name:
            return int(w[1])
    raise AssertionError("no tid for %s in the report%s" % (name, job.describe()))


def _port(job):
    return job.int("port")


def test_stream(io_session):
    tr = io_session.tracer
    assert not tr.bad, "non-JSON lines: %r" % tr.bad[:3]
    evs = tr.select()
    assert evs[0].get("event") == "start" and evs[-1].get("event") == "stop", tr.describe()
    assert evs[-1].get("lost_events") == 0, short(evs[-1])
    assert io_session.rc == 0, tr.describe()
    # every wait the programs block in for good is one long_wait; the killed ones end
    want = sum(len(_expected(j)) for j in io_session.jobs.values())
    counts = evs[-1].get("counts") or {}
    assert counts.get("long_wait", 0) >= want, "%r long waits, want %d or more" % (counts, want)
    assert counts.get("wait_end", 0) >= len(INTERPRETERS), counts
    # I/O waits are never a hang by themselves
    hangs = tr.select("hang")
    assert not hangs, "hang(s) for programs that only wait for I/O: %s" % [short(h, 800) for h in hangs]


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_recv_without_timeout(io_session, python):
    """A single-threaded program in recv() on a loopback TCP server that never answers, no
    socket timeout: a long_wait of kind I/O naming the socket, its peer address, the TCP
    state and "no timeout set"; no futex; its wait_end when the process is killed."""
    job = io_session.jobs[("single", python)]
    tid = _tid(job, "MainThread")
    assert tid == job.pid
    e = _long_wait(io_session, job, tid)
    assert e.get("futex") is None, short(e)
    wf = e["waiting_for"]
    assert wf["kind"] == "I/O" and wf["syscall"] == "recvfrom", short(wf)
    b = wf["blocked_on"]
    assert b["type"] == "tcp" and b["remote"] == "127.0.0.1:%d" % _port(job), short(wf)
    assert b["local"].startswith("127.0.0.1:") and b["state"] == "ESTABLISHED", short(wf)
    assert wf["no_timeout_set"] is True and wf["syscall_timeout_s"] is None, short(wf)
    assert wf["timeout_s"] is None and wf["in_syscall_estimated"] is True, short(wf)
    assert isinstance(wf["in_syscall_s"], float) and wf["in_syscall_s"] >= 1.0, short(wf)
    assert e["waited_s"] >= 1.0, short(e)
    me = [t for t in e["threads"] if t["tid"] == tid]
    assert me and me[0]["waiting_for"] == wf, short(e)
    assert me[0]["stack"][0]["line"] == mark_line(PROG, "single"), short(me[0])
    ends = io_session.tracer.select("wait_end", pid=job.pid, tid=tid)
    assert len(ends) == 1 and ends[0]["ended_by"] == "process_exit", [short(x) for x in ends]


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_recv_with_timeout(io_session, python):
    """The same read with a socket timeout: Python polls first, so the thread is in poll()
    on that socket with the socket's timeout, and no "no timeout set"."""
    job = io_session.jobs[("multi", python)]
    wf = _long_wait(io_session, job, _tid(job, "recv-to"))["waiting_for"]
    assert wf["kind"] == "I/O" and wf["syscall"] == "poll", short(wf)
    assert wf["waits_on_total"] == 1 and len(wf["waits_on"]) == 1, short(wf)
    w = wf["waits_on"][0]
    assert w["type"] == "tcp" and w["remote"] == "127.0.0.1:%d" % _port(job), short(wf)
    assert w["events"] == ["in"], short(wf)
    assert wf["syscall_timeout_s"] == 300.0 and wf["timeout_s"] == 300.0, short(wf)
    assert wf["no_timeout_set"] is False, short(wf)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_pipe_read(io_session, python):
    """A read of a pipe whose write end stays open: read() on a pipe, no timeout."""
    job = io_session.jobs[("multi", python)]
    e = _long_wait(io_session, job, _tid(job, "piper"))
    wf = e["waiting_for"]
    assert wf["kind"] == "I/O" and wf["syscall"] == "read", short(wf)
    assert wf["blocked_on"]["type"] == "pipe" and wf["no_timeout_set"] is False, short(wf)
    assert wf["syscall_timeout_s"] is None, short(wf)
    me = [t for t in e["threads"] if t["tid"] == _tid(job, "piper")][0]
    assert me["stack"][0]["line"] == mark_line(PROG, "pipe"), short(me)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_flock_held_elsewhere(io_session, python):
    """flock(LOCK_EX) on a file another process holds: flock() on that file, and the
    holder's pid from /proc/locks."""
    job = io_session.jobs[("multi", python)]
    wf = _long_wait(io_session, job, _tid(job, "locker"))["waiting_for"]
    assert wf["kind"] == "I/O" and wf["syscall"] == "flock", short(wf)
    b = wf["blocked_on"]
    assert b["type"] == "file" and b["path"].endswith("io_waits_%d.lock" % job.pid), short(wf)
    assert b["lock_holder"]["pid"] == job.int("holder"), short(wf)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_dump_names_resources(io_session, python):
    """`dump --json` gives every blocked thread its resource too."""
    rc, out, err = io_session.dumps[python]
    assert rc == 0, err
    d = json.loads(out)
    job = io_session.jobs[("multi", python)]
    by = dict((t["tid"], t) for t in d["threads"])
    assert by[_tid(job, "piper")]["waiting_for"]["blocked_on"]["type"] == "pipe", out[:2000]
    assert by[_tid(job, "locker")]["waiting_for"]["blocked_on"]["lock_holder"]["pid"] == job.int("holder")
    assert by[_tid(job, "recv-to")]["waiting_for"]["waits_on"][0]["remote"] == "127.0.0.1:%d" % _port(job)
    text = io_session.dumps[(python, "text")]
    want = ['Thread "locker" (tid %d, daemon, sleep in flock() on file /tmp/io_waits_%d.lock, locked by '
            "'python" % (_tid(job, "locker"), job.pid),
            'Thread "unixer" (tid %d, daemon, sleep in recvfrom() on unix socket -> /tmp/io_waits_%d.sock, peer '
            % (_tid(job, "unixer"), job.pid)]
    for w in want:
        assert w in text, "%r not in the text dump:\n%s" % (w, text[:3000])


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_future_chain_ends_in_io(io_session, python):
    """The main thread waits for a ThreadPoolExecutor future whose worker is in recv() with
    no timeout: its waiting_for holder is that worker, and the text sentence names the
    future's worker, the socket, the missing timeout and the worker's line."""
    if not _py3(python):
        pytest.skip("concurrent.futures is 3.x only")
    job = io_session.jobs[("multi", python)]
    worker = _tid(job, "worker_0")
    e = _long_wait(io_session, job, job.pid)
    wf = e["waiting_for"]
    assert wf["kind"] == "Future.result" and wf["holder"]["tid"] == worker, short(wf)
    assert wf.get("holder_runs_future") is True, short(wf)
    ww = _long_wait(io_session, job, worker)["waiting_for"]
    assert ww["syscall"] == "recvfrom" and ww["no_timeout_set"] is True, short(ww)
    text = io_session.text
    want = ("has waited", "for a future run by 'worker_0' (tid %d), which has been in recvfrom() on "
            "TCP 127.0.0.1:" % worker, " -> 127.0.0.1:%d (ESTABLISHED) for " % _port(job),
            " s with no timeout set, at io_waits.py:%d: pass timeout=" % mark_line(PROG, "fetch"))
    lines = [l for l in text.splitlines() if "(pid %d)" % job.pid in l and "future run by" in l]
    assert lines, "no text sentence for pid %d:\n%s" % (job.pid, text[-3000:])
    for part in want:
        assert part in lines[0], "%r not in %r" % (part, lines[0])


def test_hostile_waits(io_session):
    """An unprivileged program polls a million fds (all -1) and reads a FIFO whose name
    carries terminal escapes: the poll is described within its bounds (the total counted,
    nothing listed), the FIFO's name is escaped in JSON and text, nothing raw gets out."""
    job = io_session.jobs[("hostile", SYSTEM_PYTHON)]
    wf = _long_wait(io_session, job, _tid(job, "poller"))["waiting_for"]
    assert wf["syscall"] == "poll" and wf["waits_on"] == [], short(wf)
    assert wf["waits_on_total"] == job.int("nfds") and wf["syscall_timeout_s"] is None, short(wf)
    wf = _long_wait(io_session, job, job.pid)["waiting_for"]
    b = wf["blocked_on"]
    assert wf["syscall"] == "read" and b["type"] == "fifo", short(wf)
    assert "fifo\x1b[31mRED\x07\n\u2028end" in b["path"], short(wf)
    raw = "\n".join(io_session.tracer.lines)
    assert "\x1b" not in raw and "\u2028" not in raw and "\x07" not in raw
    assert "\x1b" not in io_session.text and "\x07" not in io_session.text
    assert "\\x1b[31mRED" in io_session.text, io_session.text[-2000:]


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_unix_socket_peer(io_session, python):
    """A read of a unix socket connected to another process's listening socket: the peer
    process (SO_PEERCRED) and the path."""
    job = io_session.jobs[("multi", python)]
    wf = _long_wait(io_session, job, _tid(job, "unixer"))["waiting_for"]
    b = wf["blocked_on"]
    assert wf["syscall"] == "recvfrom" and b["type"] == "unix", short(wf)
    assert b["remote"] == "/tmp/io_waits_%d.sock" % job.pid, short(wf)
    assert b["peer"]["pid"] == job.int("holder") and wf["no_timeout_set"] is True, short(wf)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_epoll_wait(io_session, python):
    """epoll_wait with no timeout on one TCP connection: the epoll fd, and the fd it watches
    from /proc/PID/fdinfo."""
    job = io_session.jobs[("multi", python)]
    wf = _long_wait(io_session, job, _tid(job, "epoller"))["waiting_for"]
    assert wf["syscall"] in ("epoll_wait", "epoll_pwait"), short(wf)
    assert wf["blocked_on"]["type"] == "epoll" and wf["waits_on_total"] == 1, short(wf)
    w = wf["waits_on"][0]
    assert w["type"] == "tcp" and w["remote"] == "127.0.0.1:%d" % _port(job), short(wf)
    assert "in" in w["events"] and wf["syscall_timeout_s"] is None, short(wf)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_lock_chain_ends_in_io(io_session, python):
    """A thread waits for a Lock whose holder (by `with`) is in recv() with no timeout: its
    waiting_for names that holder, and the text sentence follows the chain to the socket,
    the missing timeout and the holder's line."""
    job = io_session.jobs[("multi", python)]
    holder = _tid(job, "io-holder")
    wf = _long_wait(io_session, job, _tid(job, "lock-waiter"))["waiting_for"]
    assert wf["kind"] == "Lock" and wf["holder"]["tid"] == holder, short(wf)
    assert wf["holder"]["since"]["line"] == mark_line(PROG, "io_lock_taken"), short(wf)
    want = ("held by 'io-holder' (tid %d, taken at io_waits.py:%d), which has been in recvfrom() on "
            "TCP 127.0.0.1:" % (holder, mark_line(PROG, "io_lock_taken")),
            " -> 127.0.0.1:%d (ESTABLISHED) for " % _port(job),
            " s with no timeout set, at io_waits.py:%d: pass timeout=" % mark_line(PROG, "io_holder"))
    lines = [l for l in io_session.text.splitlines()
             if "(pid %d, thread %d)" % (job.pid, _tid(job, "lock-waiter")) in l and "LONG WAIT" in l]
    assert lines, "no text sentence for the lock waiter of pid %d:\n%s" % (job.pid, io_session.text[-3000:])
    for part in want:
        assert part in lines[0], "%r not in %r" % (part, lines[0])
