"""End-to-end tests of the diagnoses: `hang` (shutdown_join, all_threads_blocked) and the
explained `sigchld_ignored` / `child_status_lost` events, on every interpreter.

Real kernel, real processes; needs root.  Each scenario is one module-scoped "session": ONE
tracer in `-- sh -c '...'` mode runs the scenario's program under every interpreter (in
parallel where that cannot disturb the scenario), each program appending what it knows (its
pid, its threads' kernel tids, return codes) to its own report file.  The parametrized tests
then check each interpreter's part, so a failure names the interpreter.

Expected files, lines and functions come from the programs' sources (`# MARK: name`
comments in tests/programs/diag_*.py), never from the tool's output.

Safety: every wait has a timeout (SIGALRM guards around sessions and tests), the tracer is
always stopped and every process we started is killed and reaped; the hanging programs
also kill themselves after 90 s (signal.alarm).
"""
import os
import re

import pytest

import conftest
from harness import mark_line, public, short
from harness.session import RAN, Job, label_of, run_session

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
WHISPERER = os.path.join(PROGRAMS, "diag_whisperer.py")
JOBS = os.path.join(PROGRAMS, "diag_jobs.py")
DEPLOY_HELPER = os.path.join(PROGRAMS, "diag_deploy_helper.py")
DEADLOCK = os.path.join(PROGRAMS, "diag_deadlock.py")
HEALTHY_LOCKS = os.path.join(PROGRAMS, "diag_healthy_locks.py")
HEALTHY_SUBPROCS = os.path.join(PROGRAMS, "diag_healthy_subprocs.py")
REAPER = os.path.join(PROGRAMS, "diag_reaper.py")

FINDINGS = ("hang", "long_wait", "child_status_lost", "sigchld_ignored")

# path -> (label, version)
INTERP = dict((path, (label, version)) for label, path, version in conftest.INTERPRETERS)
INTERPRETERS = [path for _, path, _ in conftest.INTERPRETERS]


def version_of(python):
    return tuple(int(x) for x in INTERP[python][1].split(".")[:2])


def qualified(python, cls, function):
    """co_qualname on 3.11+, plain co_name before."""
    return "%s.%s" % (cls, function) if version_of(python) >= (3, 11) else function


# --------------------------------------------------------------------------- sessions

class _Summary(object):
    def pytest_terminal_summary(self, terminalreporter):
        if RAN:
            terminalreporter.write_sep("-", "test_diagnose: interpreters per scenario")
            for name in sorted(RAN):
                terminalreporter.write_line("%s: %s" % (name, ", ".join(RAN[name])))


@pytest.fixture(scope="module", autouse=True)
def _report_interpreters(request):
    plugin = _Summary()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "test_diagnose_summary")
    yield


def check_stream(session, want_rc=0):
    """What holds for every session: JSON only, start first, stop last, nothing lost."""
    tr = session.tracer
    assert not tr.bad, "non-JSON lines on stdout with --json: %r%s" % (tr.bad[:5], tr.describe())
    evs = tr.select()
    assert evs and evs[0].get("event") == "start", "first event is not 'start'%s" % tr.describe()
    assert evs[-1].get("event") == "stop", "last event is not 'stop'%s" % tr.describe()
    stop = evs[-1]
    assert stop.get("lost_events") == 0, "lost_events: %r" % public(stop)
    if want_rc is not None:
        assert session.rc == want_rc, "tracer exit status %r, want %r%s" % (session.rc, want_rc, tr.describe())
    counts = stop.get("counts") or {}
    for kind in FINDINGS:
        assert counts.get(kind) == len(tr.select(kind)), \
            "stop.counts.%s = %r but %d such events were printed" % (kind, counts.get(kind), len(tr.select(kind)))


def frame_index(stack, path, line=None, function=None, start=0):
    """Index of the first frame at or after `start` in file `path` (and at line / in
    function, when given), or -1."""
    real = os.path.realpath(path)
    for i in range(start, len(stack)):
        f = stack[i]
        if not isinstance(f, dict) or not isinstance(f.get("file"), str):
            continue
        if os.path.realpath(f["file"]) != real:
            continue
        if line is not None and f.get("line") != line:
            continue
        if function is not None and f.get("function") != function:
            continue
        return i
    return -1


def fmt_stack(stack):
    if not isinstance(stack, list):
        return repr(stack)
    return "\n      " + "\n      ".join(
        "%s %s:%s" % (f.get("function"), os.path.basename(str(f.get("file"))), f.get("line"))
        if isinstance(f, dict) else repr(f) for f in stack)


def thread_by_tid(ev, tid):
    for t in ev.get("threads") or []:
        if t.get("tid") == tid:
            return t
    return None


def check_python_field(ev, python):
    want = "%d.%d." % version_of(python)
    assert isinstance(ev.get("python"), str) and (ev["python"] + ".").startswith(want), \
        "python %r, the interpreter is %s" % (ev.get("python"), INTERP[python][1])


# --------------------------------------------------------------------------- 1. shutdown_join

def _has_hang(codes):
    def pred(tr, job):
        return bool(job.pid) and any(e["diagnosis"].get("code") in codes
                                     for e in tr.select("hang", pid=job.pid) if isinstance(e.get("diagnosis"), dict))
    return pred


@pytest.fixture(scope="module")
def shutdown_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("shutdown"))
    jobs = [Job(py, py, WHISPERER, [], d) for py in INTERPRETERS]
    return run_session(binary, d, "shutdown_join", [jobs], ["-t", "1"],
                       hang_pred=_has_hang(("shutdown_join",)))


def test_shutdown_session_stream(shutdown_session):
    # the programs were killed (SIGKILL) at the end: sh still exits 0 (`wait; exit 0`)
    check_stream(shutdown_session)


def test_shutdown_join(shutdown_session, python):
    s = shutdown_session
    job = s[python]
    pid = job.pid
    assert pid and job.get("main_done") is not None, "program did not get to its end%s" % job.describe()
    wtid = job.int("whisperer")
    line = mark_line(WHISPERER, "whisper_get")
    base = os.path.basename(WHISPERER)
    hangs = s.events(job, "hang")
    assert hangs, "no hang event for pid %d (%s)%s%s" % (
        pid, label_of(python), "".join("\n  " + short(e, 600) for e in s.events(job)), s.tracer.describe())
    shut = [e for e in hangs if e["diagnosis"].get("code") == "shutdown_join"]
    assert shut, "no shutdown_join hang, got codes %r:\n%s" % (
        [e["diagnosis"].get("code") for e in hangs], "\n".join(short(e) for e in hangs))
    ev = shut[0]
    diag = ev["diagnosis"]
    assert diag.get("culprit_tids") == [wtid], "culprit_tids %r, the Whisperer is tid %d\n%s" % (
        diag.get("culprit_tids"), wtid, short(ev))
    assert diag.get("waiter_tid") == pid, "waiter_tid %r, the main thread is %d" % (diag.get("waiter_tid"), pid)
    summary = diag.get("summary") or ""
    assert "Whisperer-1" in summary, "summary does not name the thread: %r" % summary
    assert "%s:%d" % (base, line) in summary, "summary does not say %s:%d: %r" % (base, line, summary)
    assert "get() at %s:%d" % (base, line) in summary, "summary does not say get() at %s:%d: %r" % (
        base, line, summary)
    check_python_field(ev, python)
    t = thread_by_tid(ev, wtid)
    assert t is not None, "threads do not include the Whisperer (tid %d): %r" % (
        wtid, [(x.get("tid"), x.get("name")) for x in ev.get("threads") or []])
    assert t.get("name") == "Whisperer-1", t
    assert t.get("daemon") is False, "Whisperer daemon flag %r, want false" % t.get("daemon")
    fn = qualified(python, "Whisperer", "run")
    assert frame_index(t.get("stack") or [], WHISPERER, line, fn) >= 0, \
        "Whisperer stack lacks %s at %s:%d:%s" % (fn, base, line, fmt_stack(t.get("stack")))
    main = thread_by_tid(ev, pid)
    assert main is not None and main.get("daemon") is False, "main thread %r" % (main,)


def test_shutdown_reported_once(shutdown_session, python):
    """One hang, one cause: exactly one `hang` for the process, whichever thread's long wait
    (the Whisperer's or the main thread's) triggered it."""
    job = shutdown_session[python]
    hangs = shutdown_session.events(job, "hang")
    assert len(hangs) == 1, "want exactly one hang for pid %r, got %d (codes %r, waiter_tids %r)" % (
        job.pid, len(hangs), [e["diagnosis"].get("code") for e in hangs],
        [e["diagnosis"].get("waiter_tid") for e in hangs])


# --------------------------------------------------------------------------- 2. SIGCHLD ignored by an import

@pytest.fixture(scope="module")
def sigchld_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sigchld"))
    jobs = [Job(py, py, JOBS, [], d) for py in INTERPRETERS]
    return run_session(binary, d, "sigchld_import", [jobs], [])


def test_sigchld_session_stream(sigchld_session):
    check_stream(sigchld_session)


def test_sigchld_incident_reproduced(sigchld_session, python):
    """The program itself saw the incident: subprocess.call() returned 0 for `exit 23`."""
    job = sigchld_session[python]
    assert job.get("rc") == ["0"], "subprocess.call returned %r, want 0 (status lost)%s" % (
        job.get("rc"), job.describe())
    assert job.output().split() == ["0"], "program output %r" % job.output()


def _check_ignore_stack(stack, what):
    helper_line = mark_line(DEPLOY_HELPER, "ignore_sigchld")
    import_line = mark_line(JOBS, "import_helper")
    i = frame_index(stack, DEPLOY_HELPER, helper_line, "<module>")
    assert i >= 0, "%s: no <module> frame at diag_deploy_helper.py:%d:%s" % (what, helper_line, fmt_stack(stack))
    k = frame_index(stack, JOBS, import_line, start=i + 1)
    assert k > i, "%s: no frame at diag_jobs.py:%d (the import) further out than the helper's:%s" % (
        what, import_line, fmt_stack(stack))
    assert stack[k].get("function") == "helper_script", \
        "%s: the import frame's function %r, want helper_script" % (what, stack[k].get("function"))


def test_sigchld_ignored_at_import(sigchld_session, python):
    s = sigchld_session
    job = s[python]
    evs = s.events(job, "sigchld_ignored")
    assert len(evs) == 1, "want one sigchld_ignored for pid %r, got:\n%s%s" % (
        job.pid, "\n".join(short(e) for e in evs), job.describe())
    ev = evs[0]
    assert ev.get("action") == "SIG_IGN" and ev.get("before_start") is False, short(ev)
    assert ev.get("stack_status") == "ok", "stack_status %r: %s" % (ev.get("stack_status"), short(ev))
    _check_ignore_stack(ev.get("stack") or [], "sigchld_ignored.stack")


def test_child_status_lost_sigchld_ignored(sigchld_session, python):
    s = sigchld_session
    job = s[python]
    evs = s.events(job, "child_status_lost")
    assert len(evs) == 1, "want one child_status_lost for pid %r, got:\n%s%s" % (
        job.pid, "\n".join(short(e) for e in evs), job.describe())
    ev = evs[0]
    assert ev.get("cause") == "sigchld_ignored", short(ev)
    c = ev.get("child") or {}
    assert c.get("exit_status") == 23 and c.get("signal") is None, "child %r" % c
    assert c.get("comm") == "sh", "child.comm %r" % c.get("comm")
    assert isinstance(c.get("cmdline"), str) and "exit 23" in c["cmdline"], "child.cmdline %r" % c.get("cmdline")
    call_line = mark_line(JOBS, "call")
    assert ev.get("stack_status") == "ok", "stack_status %r: %s" % (ev.get("stack_status"), short(ev))
    stack = ev.get("stack") or []
    assert frame_index(stack, JOBS, call_line, "main") >= 0, \
        "the failing wait's stack lacks main() at diag_jobs.py:%d:%s" % (call_line, fmt_stack(stack))
    since = ev.get("ignored_since")
    assert isinstance(since, dict), "no ignored_since: %s" % short(ev)
    _check_ignore_stack(since.get("stack") or [], "ignored_since.stack")
    summary = ev.get("summary") or ""
    for want in ("diag_deploy_helper.py:%d" % mark_line(DEPLOY_HELPER, "ignore_sigchld"),
                 "diag_jobs.py:%d" % mark_line(JOBS, "import_helper"), "23"):
        assert want in summary, "summary lacks %r: %r" % (want, summary)


# --------------------------------------------------------------------------- 3. lock-order deadlock

VARIANTS = ["Lock", "RLock"]


@pytest.fixture(scope="module")
def deadlock_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("deadlock"))
    jobs = [Job((py, v), py, DEADLOCK, ["--rlock"] if v == "RLock" else [], d)
            for py in INTERPRETERS for v in VARIANTS]
    return run_session(binary, d, "deadlock", [jobs], ["-t", "1"],
                       hang_pred=_has_hang(("deadlock",)))


def test_deadlock_session_stream(deadlock_session):
    check_stream(deadlock_session)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lock_order_deadlock(deadlock_session, python, variant):
    s = deadlock_session
    job = s[(python, variant)]
    pid = job.pid
    assert pid and job.get("joining") is not None, "program did not get to its joins%s" % job.describe()
    hangs = s.events(job, "hang")
    blocked = [e for e in hangs if e["diagnosis"].get("code") == "deadlock"]
    assert blocked, "no deadlock hang for pid %d, got codes %r%s%s" % (
        pid, [e["diagnosis"].get("code") for e in hangs],
        "".join("\n  " + short(e, 800) for e in s.events(job)), job.describe())
    assert not [e for e in hangs if e["diagnosis"].get("code") == "shutdown_join"], \
        "a deadlock reported as shutdown_join"
    for ev in blocked:
        _check_deadlock_report(ev, job, python)


def _check_deadlock_report(ev, job, python):
    pid, ta, tb = job.pid, job.int("A"), job.int("B")
    diag = ev["diagnosis"]
    culprits = diag.get("culprit_tids") or []
    assert ta in culprits and tb in culprits, "culprit_tids %r, want A=%d and B=%d among them" % (
        culprits, ta, tb)
    assert set(culprits) <= set([pid, ta, tb]), "culprit_tids %r name threads that do not exist" % culprits
    summary = diag.get("summary") or ""
    assert "'A'" in summary and "'B'" in summary, "summary does not name 'A' and 'B': %r" % summary
    check_python_field(ev, python)
    for name, tid, mark in (("A", ta, "a_blocks"), ("B", tb, "b_blocks")):
        line = mark_line(DEADLOCK, mark)
        assert "diag_deadlock.py:%d" % line in summary, \
            "summary lacks where %s is blocked (diag_deadlock.py:%d): %r" % (name, line, summary)
        t = thread_by_tid(ev, tid)
        assert t is not None and t.get("name") == name, "thread %s (tid %d) missing: %r" % (
            name, tid, [(x.get("tid"), x.get("name")) for x in ev.get("threads") or []])
        fn = "take_a" if name == "A" else "take_b"
        assert frame_index(t.get("stack") or [], DEADLOCK, line, fn) >= 0, \
            "thread %s's stack lacks %s at diag_deadlock.py:%d:%s" % (name, fn, line, fmt_stack(t.get("stack")))


@pytest.mark.parametrize("variant", VARIANTS)
def test_deadlock_reported_once(deadlock_session, python, variant):
    """One deadlock, one cause: exactly one `hang` for the process, although each of its
    three blocked threads has a long wait that can trigger the diagnosis."""
    job = deadlock_session[(python, variant)]
    hangs = deadlock_session.events(job, "hang")
    assert len(hangs) == 1, "want exactly one hang for pid %r, got %d (codes %r, waiter_tids %r)" % (
        job.pid, len(hangs), [e["diagnosis"].get("code") for e in hangs],
        [e["diagnosis"].get("waiter_tid") for e in hangs])


# --------------------------------------------------------------------------- 4. healthy programs

@pytest.fixture(scope="module")
def healthy_session(binary, tmp_path_factory):
    """Two interpreters at a time (2 CPUs: two lock-heavy programs, each a fixed amount of
    work of a fraction of a second): per interpreter the lock program and the subprocess
    program side by side."""
    d = str(tmp_path_factory.mktemp("healthy"))
    per_py = [[Job((py, "locks"), py, HEALTHY_LOCKS, [], d), Job((py, "subprocs"), py, HEALTHY_SUBPROCS, [], d)]
              for py in INTERPRETERS]
    batches = [sum(per_py[i:i + 2], []) for i in range(0, len(per_py), 2)]
    return run_session(binary, d, "healthy", batches, ["-t", "1"], limit=140)


def test_healthy_session_stream(healthy_session):
    check_stream(healthy_session)
    tr = healthy_session.tracer
    bad = [e for e in tr.select() if e["event"] in FINDINGS]
    assert not bad, "healthy programs yielded findings:\n%s" % "\n".join(short(e, 1500) for e in bad[:10])


@pytest.mark.parametrize("program", ["locks", "subprocs"])
def test_healthy_no_findings(healthy_session, python, program):
    s = healthy_session
    job = s[(python, program)]
    assert job.get("done") is not None, "the program did not finish cleanly%s" % job.describe()
    if program == "locks":
        acquisitions, rounds = [int(x) for x in job.get("done")]
        # the program's fixed amount of work (diag_healthy_locks.py: 4 x 5000, 400 rounds)
        assert acquisitions >= 20000 and rounds >= 400, "not all the lock traffic: %r" % job.get("done")
    bad = [e for e in s.events(job) if e["event"] in FINDINGS]
    assert not bad, "findings for a healthy program (%s):\n%s" % (
        label_of(python), "\n".join(short(e, 1500) for e in bad[:10]))


# --------------------------------------------------------------------------- 5. child stolen by a reaper thread

@pytest.fixture(scope="module")
def reaper_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("reaper"))
    jobs = [Job(py, py, REAPER, [], d) for py in INTERPRETERS]
    return run_session(binary, d, "reaper", [jobs], [])


def test_reaper_session_stream(reaper_session):
    check_stream(reaper_session)


def test_child_reaped_by_thread(reaper_session, python):
    s = reaper_session
    job = s[python]
    assert job.get("rc") is not None, "program did not finish%s" % job.describe()
    child, rtid = job.int("child"), job.int("reaper")
    # the scenario itself: the reaper thread got the status, Popen.wait() returned 0
    assert job.get("rc") == ["0"] and [str(child), str(5 << 8)] in job.all("reaped"), job.describe()
    evs = s.events(job, "child_status_lost")
    assert len(evs) == 1, "want one child_status_lost for pid %r, got:\n%s" % (
        job.pid, "\n".join(short(e) for e in evs))
    ev = evs[0]
    assert ev.get("cause") == "reaped_elsewhere", short(ev)
    c = ev.get("child") or {}
    assert c.get("pid") == child and c.get("comm") == "sh", "child %r, want pid %d comm sh" % (c, child)
    assert c.get("exit_status") == 5 and c.get("signal") is None, "child %r" % c
    r = ev.get("reaper") or {}
    assert r.get("tid") == rtid, "reaper.tid %r, the reaper thread is %d" % (r.get("tid"), rtid)
    line = mark_line(REAPER, "reaper_waitpid")
    assert frame_index(r.get("stack") or [], REAPER, line, "reap_children") >= 0, \
        "reaper.stack lacks reap_children at diag_reaper.py:%d:%s" % (line, fmt_stack(r.get("stack")))
    wait_line = mark_line(REAPER, "main_wait")
    assert frame_index(ev.get("stack") or [], REAPER, wait_line, "main") >= 0, \
        "the failing wait's stack lacks main() at diag_reaper.py:%d:%s" % (wait_line, fmt_stack(ev.get("stack")))
    summary = ev.get("summary") or ""
    assert re.search(r"\b5\b", summary), "summary does not mention the exit status 5: %r" % summary
    assert not s.events(job, "sigchld_ignored"), "SIGCHLD was never ignored here"


def test_reaper_named(reaper_session, python):
    """reaper.name is the Python name of the thread that took the status, and the summary
    says who it was.  The reaper thread lives on for a second after the lost status (names
    are read from userspace, after the fact: one gone within milliseconds stays unnamed)."""
    s = reaper_session
    job = s[python]
    evs = s.events(job, "child_status_lost")
    assert len(evs) == 1, "want one child_status_lost for pid %r, got %d" % (job.pid, len(evs))
    ev = evs[0]
    r = ev.get("reaper") or {}
    assert r.get("name") == "reaper", "reaper.name %r (tid %r), the thread is named 'reaper'" % (
        r.get("name"), r.get("tid"))
    assert "'reaper'" in (ev.get("summary") or ""), "summary does not name the thread 'reaper': %r" % ev.get("summary")


# --------------------------------------------------------------------------- 6. GIL held by a C call

GIL_PROG = os.path.join(PROGRAMS, "diag_gil.py")


@pytest.fixture(scope="module")
def gil_session(binary, tmp_path_factory):
    """All interpreters at once: each program holds its GIL in a C call that never returns,
    and is killed once the tracer reported its gil_wait hang (whatever the load, the hang is
    a fact the tracer reports, not an amount of work done in a fixed time)."""
    d = str(tmp_path_factory.mktemp("gil"))
    jobs = [Job(py, py, GIL_PROG, [], d) for py in INTERPRETERS]
    return run_session(binary, d, "gil", [jobs], ["-t", "1"], hang_pred=_has_hang(("gil_wait",)))


def test_gil_session_stream(gil_session):
    check_stream(gil_session)


def test_gil_held_by_c_call(gil_session, python):
    """The main thread holds the GIL for seconds inside re.match (C code); the 'worker'
    thread waits for it: a gil_wait hang naming the holder and where it holds the GIL."""
    job = gil_session[python]
    assert job.get("hogging") is not None, "program did not get to its C call%s" % job.describe()
    worker, main = job.int("worker"), job.int("main")
    hangs = [e for e in gil_session.events(job, "hang")
             if isinstance(e.get("diagnosis"), dict) and e["diagnosis"].get("code") == "gil_wait"]
    assert len(hangs) == 1, "want one gil_wait hang, got:\n%s" % "\n".join(
        short(e) for e in gil_session.events(job, "hang"))
    d = hangs[0]["diagnosis"]
    assert d.get("waiter_tid") == worker and d.get("culprit_tids") == [main], d
    line = mark_line(GIL_PROG, "hog")
    summary = d.get("summary") or ""
    assert "match() at diag_gil.py:%d" % line in summary, summary
    assert "'worker'" in summary and "'MainThread'" in summary, summary
    holder = thread_by_tid(hangs[0], main)
    assert holder and holder.get("gil") is True, holder
