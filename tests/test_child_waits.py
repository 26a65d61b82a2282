"""End-to-end tests of issue 15 (F1): waits for children are waits, the wait-for graph
across processes (thread -> child -> its wait; thread -> pipe -> the other end), and the
diagnoses `pipe_deadlock` and `child_hung`, on every interpreter.

Real kernel, real processes; needs root.  One tracer in `-- sh -c` mode runs every program
under every interpreter at once (tests/programs/childwait_cases.py, and the field case
../shared/field/06_popen_pipe_wait.py); a second tracer attaches with `-p` to parents that
are already blocked in their wait (found at start-up); a third shows the text report.
Expected files, lines and functions come from the programs' `# MARK: name` comments, pids
and tids from the programs' own reports, never from the tool's output.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import conftest
import harness.session as harness_session
from harness import START_TIMEOUT, Registry, Tracer, alarm_guard, short
from test_diagnose import (INTERPRETERS, Job, check_python_field, check_stream, frame_index,
                           label_of, mark_line, run_session, thread_by_tid)

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "programs", "childwait_cases.py")
FIELD06 = os.path.realpath(os.path.join(HERE, "..", "..", "shared", "field", "06_popen_pipe_wait.py"))
if not os.path.exists(FIELD06):
    FIELD06 = "/work/shared/field/06_popen_pipe_wait.py"
# every program of a session starts at once (70 interpreters and their children): on a
# loaded machine (load 40 on 2 CPUs seen) that takes far longer than the usual 25 s
WAIT_ALL = 90.0
HANGING = ("popen_wait", "check_call_thread", "child_hung")
HEALTHY = ("child_3s", "reader_thread", "pipeline")
KINDS = HANGING + HEALTHY


def _children_of(pid):
    out = []
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _kill_tree(pid):
    """SIGKILL pid's descendants, then pid (the chatty children and deadlocked grandchildren
    of a job)."""
    if not pid:
        return
    for c in _children_of(pid):
        _kill_tree(c)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


class TreeJob(Job):
    def kill(self):
        pid = self.pid
        if pid:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    mine = self.prog.encode() in f.read()
            except OSError:
                mine = False
            if mine:
                _kill_tree(pid)


def _hangs(tr, pid, code):
    return [e for e in tr.select("hang", pid=pid)
            if isinstance(e.get("diagnosis"), dict) and e["diagnosis"].get("code") == code]


def _field06_pid(tr, python):
    """The pid of field 06 under this interpreter: the process whose long_wait threads run
    06_popen_pipe_wait.py with this interpreter's version."""
    want = INTERPRETERS_VERSION[python]
    for e in tr.select("long_wait"):
        if e.get("python") != want:
            continue
        for t in e.get("threads") or []:
            if frame_index(t.get("stack") or [], FIELD06) >= 0:
                return e["pid"]
    return None


INTERPRETERS_VERSION = dict((p, v) for _, p, v in conftest.INTERPRETERS)


class Field06Job(object):
    """Field 06 as it is (it takes no arguments and reports nothing): found by its stack."""
    needs_tracer = True   # run_session hands it the session's tracer

    def __init__(self, python, workdir):
        self.key = ("field06", python)
        self.python, self.prog = python, FIELD06
        self.out = os.path.join(workdir, "field06_%s.out" % re.sub(r"\W+", "_", label_of(python)))
        self.tracer = None

    def shell(self):
        return "%s %s >%s 2>&1 </dev/null &" % (self.python, self.prog, self.out)

    @property
    def pid(self):
        return _field06_pid(self.tracer, self.python) if self.tracer else None

    def kill(self):
        pid = self.pid
        if pid:
            _kill_tree(pid)

    def lines(self):
        return []   # no report file: run_session's clock for it runs from its fork

    def output(self):
        try:
            with open(self.out) as f:
                return f.read()
        except OSError:
            return ""

    report = os.devnull

    def describe(self):
        try:
            with open(self.out) as f:
                return "\n  output: %r" % f.read()[-800:]
        except OSError:
            return ""


# --------------------------------------------------------------------------- `--` session

@pytest.fixture(scope="module")
def child_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("child_waits"))
    jobs = [TreeJob((py, k), py, CASES, [k], d) for py in INTERPRETERS for k in KINDS]
    f06 = [Field06Job(py, d) for py in INTERPRETERS]

    def pred(tr, job):
        if isinstance(job, Field06Job):
            job.tracer = tr
            pid = job.pid
            return bool(pid) and bool(_hangs(tr, pid, "pipe_deadlock"))
        if not job.pid:
            return False
        kind = job.key[1]
        if kind in HEALTHY:
            return job.get("done") is not None
        code = "child_hung" if kind == "child_hung" else "pipe_deadlock"
        return bool(_hangs(tr, job.pid, code))

    old = harness_session.HANG_TIMEOUT
    harness_session.HANG_TIMEOUT = WAIT_ALL  # ends as soon as every job is where it should be
    try:
        s = run_session(binary, d, "child_waits", [jobs + f06], ["-t", "1"], hang_pred=pred,
                        limit=WAIT_ALL + 60)
    finally:
        harness_session.HANG_TIMEOUT = old
    for j in f06:
        j.tracer = s.tracer
    s.f06 = dict((j.python, j) for j in f06)
    return s


def _sanitizers_quiet(tr):
    err = tr.stderr()
    assert "Sanitizer" not in err and "runtime error" not in err, err[-3000:]


def test_stream(child_session):
    """JSON only, start first, stop last, nothing lost, counts right; and no sanitizer report
    (PYHANG_BINARY=build/pyhang-trace-asan)."""
    check_stream(child_session, want_rc=None)
    _sanitizers_quiet(child_session.tracer)


def test_attached_stream(attached):
    jobs, tr, rc, f06 = attached
    assert rc == 0, tr.describe()
    _sanitizers_quiet(tr)


def _one_hang(s, job, code):
    hs = _hangs(s.tracer, job.pid, code)
    assert len(hs) == 1, "want exactly one %s hang of pid %s, got %d%s\n  hangs: %s" % (
        code, job.pid, len(hs), job.describe(),
        [short(e, 600) for e in s.tracer.select("hang", pid=job.pid)])
    return hs[0]


def _check_pipe_deadlock(s, job, python, mark, waiter_name):
    h = _one_hang(s, job, "pipe_deadlock")
    d = h["diagnosis"]
    waiter, child = job.int("waiter"), job.get("child")
    assert d["waiter_tid"] == waiter and h["tid"] == waiter, short(h)
    check_python_field(h, python)
    line = mark_line(CASES, mark)
    assert ("childwait_cases.py:%d" % line) in d["summary"], d["summary"]
    assert d["summary"].startswith("'%s' waits in " % waiter_name), d["summary"]
    assert "communicate()" in d["summary"], d["summary"]
    c = d.get("child") or {}
    if child:
        assert c.get("pid") == int(child[0]), short(h)
    wf = c.get("waiting_for") or {}
    assert wf.get("kind") == "I/O" and wf.get("syscall") in ("write", "writev"), short(h)
    pipe = wf.get("pipe") or {}
    assert [r.get("pid") for r in pipe.get("readers", [])] == [job.pid], short(h)
    assert wf.get("pid") in [r.get("pid") for r in pipe.get("writers", [])], short(h)
    assert pipe.get("holders_complete") is True, short(h)
    assert isinstance(pipe.get("queued_bytes"), int) and pipe["queued_bytes"] > 0, short(h)
    t = thread_by_tid(h, waiter)
    assert t and frame_index(t.get("stack") or [], CASES, line) >= 0, short(h)
    # the long wait itself: a wait for a child (the kernel's record says so: `syscall`), with
    # the child in waiting_for
    lws = [e for e in s.tracer.select("long_wait", pid=job.pid, tid=waiter)
           if e.get("syscall") in ("wait4", "waitid")]
    assert len(lws) == 1, [short(e, 500) for e in s.tracer.select("long_wait", pid=job.pid)]
    lw = lws[0]
    assert lw.get("futex") is None and lw.get("syscall") in ("wait4", "waitid"), short(lw)
    if child:
        assert lw["waiting_for"]["child"]["pid"] == int(child[0]), short(lw)
    return h


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_popen_wait_chatty_child(child_session, python):
    """Popen(stdout=PIPE).wait() on a child that writes 1 MB: pipe_deadlock, naming the
    wait's line, the child, the full pipe and its only reader."""
    job = child_session[(python, "popen_wait")]
    _check_pipe_deadlock(child_session, job, python, "popen_wait", "MainThread")


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_check_call_in_thread(child_session, python):
    """check_call(stdout=PIPE) in a thread that the main thread joins: the pipe deadlock is
    found from the thread's wait; the main thread's join is not a hang of its own."""
    job = child_session[(python, "check_call_thread")]
    h = _check_pipe_deadlock(child_session, job, python, "check_call", "caller")
    # one finding: the main thread's join adds none of its own (a gil_wait of a starved
    # machine aside)
    assert [e["diagnosis"]["code"] for e in child_session.tracer.select("hang", pid=job.pid)
            if e["diagnosis"]["code"] != "gil_wait"] == ["pipe_deadlock"], short(h)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_child_hung(child_session, python):
    """A parent waits for a child that deadlocks: one child_hung finding chaining both, with
    the child's own deadlock and its stack."""
    job = child_session[(python, "child_hung")]
    h = _one_hang(child_session, job, "child_hung")
    d = h["diagnosis"]
    waiter = job.int("waiter")
    child = job.int("child")
    assert d["waiter_tid"] == waiter, short(h)
    want = "'MainThread' waits in "
    assert d["summary"].startswith(want), d["summary"]
    assert ("childwait_cases.py:%d for pid %d" % (mark_line(CASES, "child_hung_wait"), child)) in \
        d["summary"] and "which is deadlocked: " in d["summary"], d["summary"]
    c = d.get("child") or {}
    assert c.get("pid") == child and (c.get("diagnosis") or {}).get("code") == "deadlock", short(h)
    lines = (mark_line(CASES, "child_takes_a"), mark_line(CASES, "child_takes_b"))
    stack = c.get("stack") or []
    assert any(frame_index(stack, CASES, l) >= 0 for l in lines), short(h)
    # the child's own hang is reported too, for the child
    assert _hangs(child_session.tracer, child, "deadlock"), short(h)


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_child_ends_after_3s(child_session, python):
    """A child that sleeps 3 s and exits: the parent's wait is a long_wait naming the child
    (sleeping), it ends with a wait_end, and there is no hang."""
    job = child_session[(python, "child_3s")]
    assert job.get("done") == ["0"], job.describe()
    waiter, child = job.int("waiter"), job.int("child")
    lws = [e for e in child_session.tracer.select("long_wait", pid=job.pid, tid=waiter)
           if e.get("syscall") in ("wait4", "waitid")]
    assert len(lws) == 1, [short(e, 500) for e in lws]
    wf = lws[0].get("waiting_for") or {}
    assert wf.get("kind") == "child" and wf["child"].get("pid") == child, short(lws[0])
    # sleeping in its time.sleep, still starting up, or (a tracer far behind on a loaded
    # machine: the long_wait is read after the child ended) gone
    assert wf["child"].get("state") in ("sleeping", "running", "zombie", "gone"), short(lws[0])
    wrong = [e for e in child_session.tracer.select("hang", pid=job.pid)
             if e["diagnosis"]["code"] in ("pipe_deadlock", "child_hung")]
    assert not wrong, short(wrong[0])
    ends = child_session.tracer.select("wait_end", pid=job.pid, tid=waiter)
    assert [e.get("ended_by") for e in ends] == ["return"], [short(e) for e in ends]


@pytest.mark.parametrize("kind", ["reader_thread", "pipeline"])
@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_full_pipe_that_is_read(child_session, python, kind):
    """A parent waits for a child blocked on a full pipe that IS read, slowly: by another
    thread of the parent, or by another process. A long_wait for the child, no hang."""
    job = child_session[(python, kind)]
    assert job.get("done") is not None, "the program did not finish%s" % job.describe()
    # the child-wait diagnoses (a GIL wait of a starved machine is gil_wait's own business)
    wrong = [e for e in child_session.tracer.select("hang", pid=job.pid)
             if e["diagnosis"]["code"] in ("pipe_deadlock", "child_hung")]
    assert not wrong, [short(e, 1500) for e in wrong]
    waiter = job.int("waiter")
    lws = [e for e in child_session.tracer.select("long_wait", pid=job.pid, tid=waiter)
           if e.get("syscall") in ("wait4", "waitid")]
    assert lws, "no long_wait for the child at all: the test proves nothing%s" % job.describe()


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_field06(child_session, python):
    """../shared/field/06_popen_pipe_wait.py as it is: the perfect diagnosis of its header."""
    job = child_session.f06[python]
    pid = job.pid
    assert pid, "field 06 under %s: no long_wait found%s" % (label_of(python), job.describe())
    hs = _hangs(child_session.tracer, pid, "pipe_deadlock")
    assert len(hs) == 1, [short(e, 600) for e in child_session.tracer.select("hang", pid=pid)]
    d = hs[0]["diagnosis"]
    line = [i + 1 for i, l in enumerate(open(FIELD06)) if "p.wait()" in l][0]
    assert "06_popen_pipe_wait.py:%d" % line in d["summary"], d["summary"]
    assert "only reader is this process" in d["summary"] and "communicate()" in d["summary"], d["summary"]
    wf = d["child"]["waiting_for"]
    assert wf["comm"] == "head" and [r["pid"] for r in wf["pipe"]["readers"]] == [pid], short(hs[0])


# --------------------------------------------------------------------------- `-p PARENT`

@pytest.fixture(scope="module")
def attached(binary, tmp_path_factory):
    """Parents already blocked in Popen.wait() (or check_call in a thread) on a chatty child
    when the tracer starts, traced with -p (no descendant following needed: the child is
    read from /proc); and field 06 attached the same way."""
    d = str(tmp_path_factory.mktemp("child_waits_p"))
    jobs = [TreeJob((py, k), py, CASES, [k], d) for py in INTERPRETERS
            for k in ("popen_wait", "check_call_thread")]
    reg = Registry()
    try:
        with alarm_guard(2 * WAIT_ALL + 30, "child_waits -p session"):
            procs = [reg.popen(j.argv, stdout=open(j.out, "w"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, hangs=True) for j in jobs]
            f06 = dict((py, reg.popen([py, FIELD06], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL, hangs=True)) for py in INTERPRETERS)
            for p in f06.values():   # READY: it calls wait() next
                with alarm_guard(WAIT_ALL, "field 06 READY"):
                    assert p.stdout.readline().strip() == b"READY"
            deadline = time.monotonic() + WAIT_ALL
            while time.monotonic() < deadline and not all(j.get("waiter") for j in jobs):
                time.sleep(0.1)
            time.sleep(1.5)  # in wait4 by now, long before the tracer starts
            args = ["--json", "-t", "1"]
            for j in jobs:
                args += ["-p", str(j.pid)]
            for p in f06.values():
                args += ["-p", str(p.pid)]
            pids = [j.pid for j in jobs] + [p.pid for p in f06.values()]
            tr = Tracer(reg, binary, args)
            tr.saved = os.path.join(d, "tracer.jsonl")
            try:
                tr.wait_start()
                deadline = time.monotonic() + WAIT_ALL
                while time.monotonic() < deadline and not all(
                        _hangs(tr, pid, "pipe_deadlock") for pid in pids):
                    time.sleep(0.1)
                time.sleep(1.0)
            finally:
                for j in jobs:
                    j.kill()
                for p in f06.values():
                    _kill_tree(p.pid)
                rc = tr.stop(signal.SIGINT)
                with open(tr.saved, "w") as f:
                    f.write("\n".join(tr.lines) + "\n")
            del procs
            f06_pids = dict((py, p.pid) for py, p in f06.items())
            return dict((j.key, j) for j in jobs), tr, rc, f06_pids
    finally:
        reg.cleanup()


@pytest.mark.parametrize("kind", ["popen_wait", "check_call_thread", "field06"])
@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_attached_parent_already_waiting(attached, python, kind):
    """-p PARENT, the parent blocked in wait4 since before the tracer started: found at
    start-up (before_start), and the pipe deadlock proven from /proc."""
    jobs, tr, rc, f06 = attached
    if kind == "field06":
        pid = f06[python]
        hs = _hangs(tr, pid, "pipe_deadlock")
        assert len(hs) == 1, [short(e, 600) for e in tr.select("hang", pid=pid)] + [tr.describe()]
        lws = [e for e in tr.select("long_wait", pid=pid, tid=pid)
               if e.get("syscall") in ("wait4", "waitid")]
        assert len(lws) == 1 and lws[0].get("before_start") is True, [short(e, 600) for e in lws]
        assert hs[0]["diagnosis"]["child"]["waiting_for"]["comm"] == "head", short(hs[0])
        return
    job = jobs[(python, kind)]
    waiter = job.int("waiter")
    lws = [e for e in tr.select("long_wait", pid=job.pid, tid=waiter)
           if e.get("syscall") in ("wait4", "waitid")]
    assert len(lws) == 1 and lws[0].get("before_start") is True, [short(e, 600) for e in lws]
    assert (lws[0].get("waiting_for") or {}).get("kind") == "child", short(lws[0])
    hs = _hangs(tr, job.pid, "pipe_deadlock")
    assert len(hs) == 1, [short(e, 600) for e in tr.select("hang", pid=job.pid)] + [tr.describe()]
    assert hs[0]["diagnosis"]["waiter_tid"] == waiter
    if job.get("child"):  # check_call does not tell its child's pid
        assert hs[0]["diagnosis"]["child"]["pid"] == job.int("child"), short(hs[0])


# --------------------------------------------------------------------------- text

def test_text_report(binary, tmp_path):
    """Text: one block per incident, with both processes' tracebacks and their source lines,
    no raw addresses and no syscall numbers."""
    py = conftest.SYSTEM_PYTHON
    rep1, rep2 = str(tmp_path / "hung.report"), str(tmp_path / "pipe.report")
    script = "%s %s %s child_hung & %s %s %s popen_wait & wait" % (py, CASES, rep1, py, CASES, rep2)
    reg = Registry()
    try:
        with alarm_guard(WAIT_ALL + 60, "child_waits text session"):
            p = reg.popen([binary, "-t", "1", "-o", str(tmp_path / "out.txt"), "--", "sh", "-c", script],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          hangs=True)
            deadline = time.monotonic() + START_TIMEOUT + WAIT_ALL
            text = ""
            while time.monotonic() < deadline:
                try:
                    text = open(str(tmp_path / "out.txt")).read()
                except OSError:
                    text = ""
                if "[child_hung]" in text and "[pipe_deadlock]" in text:
                    break
                time.sleep(0.2)
            time.sleep(0.5)
            for rep in (rep1, rep2):
                with open(rep) as f:
                    _kill_tree(int(f.readline().split()[1]))
            p.send_signal(signal.SIGINT)
            p.wait(15)
            text = open(str(tmp_path / "out.txt")).read()
    finally:
        reg.cleanup()
    blocks = text.split("\n\n")
    hung = [b for b in text.split(" HANG ") if "[child_hung]" in b]
    assert len(hung) == 1, text[-4000:]
    b = hung[0]
    assert "p.wait()  # MARK: child_hung_wait" in b, b            # the parent's source line
    assert ("with b:  # MARK: child_takes_b" in b or "with a:  # MARK: child_takes_a" in b), b
    assert "Child pid " in b, b
    pipe = [x for x in text.split(" HANG ") if "[pipe_deadlock]" in x]
    assert len(pipe) == 1 and "p.wait()  # MARK: popen_wait" in pipe[0], text[-4000:]
    assert "blocked in write() on fd 1, a pipe" in pipe[0], pipe[0]
    assert not re.search(r"0x[0-9a-f]{6,}", text), re.search(r".*0x[0-9a-f]{6,}.*", text).group(0)
    assert not re.search(r"syscall \d+|system call \d+", text), text[-3000:]
    del blocks


# --------------------------------------------------------------------------- dump

def _dump_when_waiting(binary, python, kind, syscall_nr):
    """Run childwait_cases.py KIND, wait until its waiter sits in the wait (x86_64 61 wait4,
    247 waitid) and its child in write() on the full pipe, then `dump` it (JSON, then
    text)."""
    import json
    from harness import task_syscall
    reg = Registry()
    d = tempfile.mkdtemp(prefix="cw_dump_")
    rep = os.path.join(d, "report")
    try:
        with alarm_guard(60, "dump of %s" % kind):
            p = reg.popen([python, CASES, rep, kind], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, hangs=True)
            deadline = time.monotonic() + 40
            facts = {}
            while time.monotonic() < deadline:
                try:
                    facts = dict(l.split(None, 1) for l in open(rep).read().splitlines() if l.strip())
                except (OSError, ValueError):
                    facts = {}
                s = task_syscall(p.pid, int(facts["waiter"])) if "waiter" in facts else None
                if s and s[0] == str(syscall_nr):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("%s never waited: %r" % (kind, facts))
            child = int(facts["child"])
            while time.monotonic() < deadline:  # and the child blocks in write() (1)
                s = task_syscall(child, child)
                if s and s[0] == "1":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the child of %s never blocked in write(): %r" % (
                    kind, task_syscall(child, child)))
            js = subprocess.run([binary, "dump", str(p.pid), "--json"], capture_output=True,
                                text=True, timeout=30)
            tx = subprocess.run([binary, "dump", str(p.pid)], capture_output=True, text=True,
                                timeout=30)
            _kill_tree(p.pid)
    finally:
        reg.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    assert js.returncode == 0 and tx.returncode == 0, (js.stderr, tx.stderr)
    waiter = int(facts["waiter"])
    t = [t for t in json.loads(js.stdout)["threads"] if t["tid"] == waiter][0]
    return facts, t, tx.stdout


@pytest.mark.parametrize("python", INTERPRETERS, ids=[label_of(p) for p in INTERPRETERS])
def test_dump_shows_the_child(binary, python):
    """`dump` of a process blocked in Popen.wait() on a child that writes into a full pipe:
    the thread's waiting_for names the child and what it is blocked in (read from the
    blocked call's arguments, without the kernel's records), in JSON and in the text's
    thread line. Before, dump said only {kind: child} and "in wait4()"."""
    facts, t, text = _dump_when_waiting(binary, python, "popen_wait", 61)
    child = int(facts["child"])
    wf = t.get("waiting_for") or {}
    assert wf.get("kind") == "child" and (wf.get("child") or {}).get("pid") == child, t
    cwf = wf["child"].get("waiting_for") or {}
    assert cwf.get("kind") == "I/O" and cwf.get("syscall") in ("write", "writev"), wf
    assert [r.get("pid") for r in cwf["pipe"]["readers"]] == [int(facts["pid"])], wf
    assert "in wait4() for child pid %d (" % child in text, text[:2000]
    assert "which is blocked in write" in text, text[:2000]


@pytest.mark.parametrize("python", [p for p in INTERPRETERS if tuple(
    int(x) for x in INTERPRETERS_VERSION[p].split(".")[:2]) >= (3, 9)],
    ids=lambda p: label_of(p))
def test_dump_shows_a_pidfd_child(binary, python):
    """`dump` of a process in waitid(P_PIDFD): the child the pidfd names (fdinfo), and the fd."""
    facts, t, text = _dump_when_waiting(binary, python, "pidfd_chatty", 247)
    c = (t.get("waiting_for") or {}).get("child") or {}
    assert c.get("pid") == int(facts["child"]) and c.get("pidfd") == int(facts["pidfd"]), t
    assert "in waitid() for child pid %s (" % facts["child"] in text, text[:2000]
