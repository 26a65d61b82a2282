"""End-to-end tests of issue 15's fork and worker parts, on every interpreter: a fork that
copies a lock another thread holds (`fork_held_lock`), a pool worker killed by SIGKILL
(`worker_died`), idle pools (no `hang`), `-p PID` covering the descendants, and the field
cases 04, 05 and 13.

Real kernel, real processes; needs root.  One tracer per session runs the programs of
tests/programs/fork_workers.py under every interpreter in parallel, either as `-- sh -c`
or attached with `-p` to programs started before it (they wait for a "go" file before the
fork, so the tracer sees it happen).  Expected pids, tids and lines come from the programs'
reports and `# MARK:` comments, never from the tool's output.
"""
import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from harness import STOP_TIMEOUT, Registry, Tracer, alarm_guard
from harness.procs import remember_hanging_members
from harness.session import HANG_TIMEOUT, SETTLE, Session
from test_child_waits import _children_of, _kill_tree
from test_diagnose import (INTERPRETERS, Job, check_stream,
                           frame_index, label_of, mark_line, run_session, short, version_of)

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "fork_workers.py")
FIELD = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "field"))
if not os.path.isdir(FIELD):
    FIELD = "/work/shared/field"
FIELD04 = os.path.join(FIELD, "04_fork_child_lock.py")
FIELD05 = os.path.join(FIELD, "05_pool_worker_killed.py")
FIELD13 = os.path.join(FIELD, "13_queue_join_worker_died.py")
PY3 = [py for py in INTERPRETERS if version_of(py) >= (3, 0)]


def _pids_running(needle, argi=None):
    """Pids whose command line contains needle (bytes); with argi, as that argument."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if (argi is None and any(needle in a for a in args)) or \
                (argi is not None and len(args) > argi and args[argi] == needle):
            out.append(int(d))
    return out


class ForkJob(Job):
    """A Job whose kill() also ends the processes it forked (same command line)."""

    def kill(self):
        for pid in _pids_running(self.report.encode(), 2):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class FieldJob(ForkJob):
    """A field program (no arguments): its pid is reported by the shell that execs it."""

    def __init__(self, key, python, prog, workdir):
        Job.__init__(self, key, python, prog, [], workdir)
        self.argv = [python, prog]

    def shell(self):
        return "sh -c 'echo pid $$ >%s; exec \"$0\" \"$@\"' %s >%s 2>&1 </dev/null &" % (
            shlex.quote(self.report), " ".join(shlex.quote(a) for a in self.argv), shlex.quote(self.out))

    def kill(self):
        pid = self.pid
        targets = set()
        if pid:
            targets.add(pid)
            # the field programs' children (forks, pool workers) have pid as an ancestor
            for d in os.listdir("/proc"):
                if d.isdigit() and _has_ancestor(int(d), pid):
                    targets.add(int(d))
        for p in targets:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def _has_ancestor(pid, anc):
    for _ in range(16):
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if ppid == anc:
            return True
        if ppid <= 1:
            return False
        pid = ppid
    return False


def _codes(evs):
    return [e["diagnosis"].get("code") for e in evs]


def _hangs_of(s, pid, code=None):
    return [e for e in s.tracer.select("hang", pid=pid) if code is None or e["diagnosis"].get("code") == code]


# --------------------------------------------------------------------------- sessions

FORK_MODES = ["fork_lock", "mp_fork_lock"]


def _fork_pred(tr, job):
    if not job.pid:
        return False
    if job.key[1] in ("pool_killed", "pool_oom"):
        return bool(tr.select("hang", pid=job.pid))
    child = job.get("child")
    return bool(child) and bool(tr.select("hang", pid=int(child[0])))


def _memory_cgroup(name):
    """A new memory cgroup limited to 48 MiB without swap (v2 if mounted with the memory
    controller, else v1 under our own): the path of its cgroup.procs, and its directory."""
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "memory" in f.read().split():
                    d = os.path.join(root, name)
                    os.mkdir(d)
                    with open(os.path.join(d, "memory.max"), "w") as f:
                        f.write(str(48 << 20))
                    if os.path.exists(os.path.join(d, "memory.swap.max")):
                        with open(os.path.join(d, "memory.swap.max"), "w") as f:
                            f.write("0")
                    return os.path.join(d, "cgroup.procs"), d
    with open("/proc/self/cgroup") as f:
        own = [l.split(":", 2)[2].strip() for l in f if l.split(":")[1] == "memory"]
    assert own, "no memory cgroup controller (v1 or v2) to run the OOM killer in"
    d = os.path.join("/sys/fs/cgroup/memory" + own[0], name)
    os.mkdir(d)
    with open(os.path.join(d, "memory.limit_in_bytes"), "w") as f:
        f.write(str(48 << 20))
    with open(os.path.join(d, "memory.swappiness"), "w") as f:
        f.write("0")
    return os.path.join(d, "cgroup.procs"), d


@pytest.fixture(scope="module")
def cmd_session(binary, tmp_path_factory):
    """Under `-- sh -c`: both fork modes and the killed pool workers (SIGKILL, and the OOM
    killer in a small memory cgroup), every interpreter."""
    d = str(tmp_path_factory.mktemp("fork_cmd"))
    procs, cg = _memory_cgroup("pyhang-test-oom-%d" % os.getpid())
    try:
        jobs = [ForkJob((py, mode), py, PROG, [mode], d) for py in INTERPRETERS
                for mode in FORK_MODES + ["pool_killed"]]
        jobs += [ForkJob((py, "pool_oom"), py, PROG, ["pool_oom", "-", procs], d) for py in INTERPRETERS]
        return run_session(binary, d, "fork_cmd", [jobs], ["-t", "1"], hang_pred=_fork_pred)
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)


def run_attached(binary, workdir, name, jobs, args, pred, hangs, limit=100, late=False):
    """Start the jobs, attach ONE tracer with -p to each job's first process, then let them
    go (their go file); once pred holds for every job (or HANG_TIMEOUT), kill them. hangs:
    the programs hang on purpose (for the suite tracer). late: no go file; the tracer is
    attached once each job has forked (its report's `child` line)."""
    reg = Registry()
    try:
        with alarm_guard(limit, "%s session" % name):
            for j in jobs:
                j.go = os.path.join(workdir, os.path.basename(j.report) + ".go")
                j.argv = j.argv[:3] + [j.argv[3], "-" if late else j.go] + j.argv[4:]
                reg.popen(["sh", "-c", j.shell().rstrip(" &")], stdin=subprocess.DEVNULL, hangs=hangs)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(j.pid and (j.get("child" if late else "flusher") or
                                                                     j.key[1].startswith("idle"))
                                                          for j in jobs):
                time.sleep(0.05)
            assert all(j.pid for j in jobs), "programs did not start: %s" % [j.describe() for j in jobs]
            pids = []
            for j in jobs:
                pids += ["-p", str(j.pid)]
            tr = Tracer(reg, binary, ["--json"] + list(args) + pids)
            tr.saved = os.path.join(workdir, "tracer.jsonl")
            try:
                tr.wait_start()
                for j in jobs:
                    open(j.go, "w").close()
                deadline = time.monotonic() + HANG_TIMEOUT
                while time.monotonic() < deadline and not all(pred(tr, j) for j in jobs):
                    time.sleep(0.1)
                time.sleep(SETTLE)
                rc = tr.stop(signal.SIGINT)
            finally:
                for j in jobs:
                    j.kill()
                if tr.proc.poll() is None:
                    tr.stop(signal.SIGKILL)
                with open(tr.saved, "w") as f:
                    f.write("\n".join(tr.lines) + "\n")
        return Session(name, tr, rc, jobs)
    finally:
        for j in jobs:
            j.kill()
        reg.cleanup()


@pytest.fixture(scope="module")
def pid_session(binary, tmp_path_factory):
    """Attached with -p to the parents only, before they fork."""
    d = str(tmp_path_factory.mktemp("fork_pid"))
    jobs = [ForkJob((py, mode), py, PROG, [mode], d) for py in INTERPRETERS for mode in FORK_MODES]
    return run_attached(binary, d, "fork_pid", jobs, ["-t", "1"], _fork_pred, hangs=True)


@pytest.fixture(scope="module")
def late_session(binary, tmp_path_factory):
    """Attached with -p to the parents only AFTER they forked: the kernel saw no fork."""
    d = str(tmp_path_factory.mktemp("fork_late"))
    jobs = [ForkJob((py, "fork_lock"), py, PROG, ["fork_lock"], d) for py in INTERPRETERS]
    return run_attached(binary, d, "fork_late", jobs, ["-t", "1"], _fork_pred, hangs=True, late=True)


IDLE_SECS = 5


@pytest.fixture(scope="module")
def idle_session(binary, tmp_path_factory):
    """Idle Pool and ProcessPoolExecutor for IDLE_SECS at -t 1, attached with -p to the
    parents only: the workers are covered as descendants."""
    d = str(tmp_path_factory.mktemp("fork_idle"))
    jobs = [ForkJob((py, "idle_pool"), py, PROG, ["idle_pool", str(IDLE_SECS)], d) for py in INTERPRETERS]
    jobs += [ForkJob((py, "idle_ppe"), py, PROG, ["idle_ppe", str(IDLE_SECS)], d) for py in PY3]
    return run_attached(binary, d, "fork_idle", jobs, ["-t", "1"],
                        lambda tr, j: j.get("done") is not None, hangs=False, limit=110)


@pytest.fixture(scope="module")
def field_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("fork_field"))
    jobs = [FieldJob((py, f), py, f, d) for py in INTERPRETERS for f in (FIELD04, FIELD05, FIELD13)]

    def pred(tr, job):
        if not job.pid:
            return False
        if job.key[1] == FIELD04:
            return any(_is_child_of(e, job.pid) for e in tr.select("hang"))
        return bool(tr.select("hang", pid=job.pid))
    return run_session(binary, d, "fork_field", [jobs], ["-t", "1"], hang_pred=pred)


def _is_child_of(ev, pid):
    return (ev["diagnosis"].get("fork") or {}).get("parent_pid") == pid


# --------------------------------------------------------------------------- fork_held_lock

def _check_fork_held_lock(s, job, python, mode, stack_required):
    parent = job.pid
    assert parent, job.describe()
    child = job.get("child")
    assert child, "the program did not fork%s" % job.describe()
    child = int(child[0])
    flusher = job.int("flusher")
    hangs = _hangs_of(s, child)
    assert _codes(hangs) == ["fork_held_lock"], "want one fork_held_lock for the child %d (%s), got %s%s" % (
        child, label_of(python), [short(h, 1500) for h in hangs], job.describe())
    # the parent waits in waitpid (fork_lock) or join (mp_fork_lock): never the culprit (a
    # gil_wait of its two threads on a starved machine is another story)
    wrong = [h for h in _hangs_of(s, parent) if h["diagnosis"].get("code") != "gil_wait"]
    assert not wrong, "a hang for the parent: %s" % [short(h, 800) for h in wrong]
    diag = hangs[0]["diagnosis"]
    assert diag["waiter_tid"] == child, diag
    fork = diag.get("fork") or {}
    assert fork.get("parent_pid") == parent, fork
    assert fork.get("parent_threads") == 2, "the parent had 2 threads at the fork: %r" % fork
    # the fork site, captured in the kernel at the fork: always when attached with -p (the
    # parent is described before tracing starts); under `--` a fork within milliseconds of
    # the exec may come before the description, and then says so
    line = mark_line(PROG, "fork_site" if mode == "fork_lock" else "mp_start")
    if stack_required or fork.get("stack_status") != "unknown_layout":
        assert fork.get("stack_status") == "ok", fork
        assert frame_index(fork.get("stack") or [], PROG, line) >= 0, \
            "fork stack lacks %s:%d: %r" % (os.path.basename(PROG), line, fork.get("stack"))
    else:
        assert fork.get("stack") is None, fork
    holder = fork.get("holder") or {}
    assert holder.get("tid") == flusher and holder.get("pid") == parent, \
        "the holder is the parent's 'flusher' (tid %d): %r" % (flusher, holder)
    assert holder.get("name") == "flusher", holder
    assert (holder.get("since") or {}).get("line") == mark_line(PROG, "flusher_with"), holder
    summary = diag.get("summary") or ""
    assert "forked" in summary and str(parent) in summary and "'flusher'" in summary, summary
    assert "%s:%d" % (os.path.basename(PROG), mark_line(PROG, "child_take")) in summary, summary
    assert not re.search(r"0x[0-9a-f]{6,}", summary), "a raw address in the summary: %r" % summary


def test_cmd_session_stream(cmd_session):
    check_stream(cmd_session)


@pytest.mark.parametrize("mode", FORK_MODES)
def test_fork_held_lock_command(cmd_session, python, mode):
    """Under `--`: the child of a fork made while 'flusher' held buf_lock waits for it
    forever: one fork_held_lock naming the parent, the fork site, its 2 threads and the
    holder (the parent's 'flusher', at its `with`)."""
    _check_fork_held_lock(cmd_session, cmd_session[(python, mode)], python, mode, False)


def test_pid_session_stream(pid_session):
    check_stream(pid_session)


@pytest.mark.parametrize("mode", FORK_MODES)
def test_fork_held_lock_attached_to_parent(pid_session, python, mode):
    """Attached with -p to the parent only: its child (forked after the start) is covered,
    and the same fork_held_lock is found."""
    s = pid_session
    start = s.tracer.select("start")[0]
    assert start.get("descendants") is True, start
    _check_fork_held_lock(s, s[(python, mode)], python, mode, True)


def test_late_session_stream(late_session):
    check_stream(late_session)


def test_fork_held_lock_forked_before_start(late_session, python):
    """The fork happened before tracing: the child is found as a descendant of -p, its fork
    proven from its memory layout (same main stack as its parent's), and the parent's
    'flusher' holding that very lock makes it fork_held_lock (no thread count, no time)."""
    s = late_session
    job = s[(python, "fork_lock")]
    child = int(job.get("child")[0])
    hangs = _hangs_of(s, child)
    assert _codes(hangs) == ["fork_held_lock"], "want one fork_held_lock for the child %d, got %s%s" % (
        child, [short(h, 1500) for h in hangs], job.describe())
    fork = hangs[0]["diagnosis"]["fork"]
    assert fork.get("before_start") is True and fork.get("parent_pid") == job.pid, fork
    assert fork.get("parent_threads") is None and fork.get("seconds_ago") is None, fork
    holder = fork.get("holder") or {}
    assert holder.get("tid") == job.int("flusher") and holder.get("name") == "flusher", holder
    assert "before tracing started" in hangs[0]["diagnosis"]["summary"], hangs[0]["diagnosis"]["summary"]


# --------------------------------------------------------------------------- worker_died

def test_pool_worker_killed(cmd_session, python):
    """Pool.map() whose worker was SIGKILLed: one worker_died for the parent naming the
    worker's pid, the signal, not the OOM killer, and the map() call."""
    s = cmd_session
    job = s[(python, "pool_killed")]
    killed = job.int("killed")
    hangs = _hangs_of(s, job.pid)
    assert _codes(hangs) == ["worker_died"], "want one worker_died, got %s%s" % (
        [short(h, 1500) for h in hangs], job.describe())
    diag = hangs[0]["diagnosis"]
    child = diag.get("child") or {}
    assert child.get("pid") == killed, "the killed worker is %d: %r" % (killed, child)
    assert child.get("signal") == 9 and child.get("exit_status") is None, child
    assert child.get("oom_killed") is False, child
    assert diag.get("waiter_tid") == job.pid, diag
    where = "%s:%d" % (os.path.basename(PROG), mark_line(PROG, "pool_map"))
    assert "map() at " + where in (child.get("waiting_call") or ""), child
    summary = diag.get("summary") or ""
    assert "worker pid %d" % killed in summary and "SIGKILL" in summary and where in summary, summary
    # no other process of the session got a hang (the pool's idle workers)
    others = [e for e in s.tracer.select("hang") if e.get("pid") not in
              [j.pid for j in s.jobs] + [int(j.get("child")[0]) for j in s.jobs if j.get("child")]]
    assert not others, "hangs of other processes: %s" % [short(e, 600) for e in others]


def test_pool_worker_oom_killed(cmd_session, python):
    """The same with the kernel's OOM killer choosing the worker (a memory cgroup's limit):
    worker_died says so (oom_killed, "out of memory")."""
    s = cmd_session
    job = s[(python, "pool_oom")]
    killed = job.int("killed")
    hangs = _hangs_of(s, job.pid)
    assert _codes(hangs) == ["worker_died"], "want one worker_died, got %s%s" % (
        [short(h, 1500) for h in hangs], job.describe())
    diag = hangs[0]["diagnosis"]
    child = diag.get("child") or {}
    assert child.get("pid") == killed and child.get("signal") == 9, child
    assert child.get("oom_killed") is True, child
    assert "out of memory" in diag.get("summary", ""), diag.get("summary")
    where = "%s:%d" % (os.path.basename(PROG), mark_line(PROG, "pool_oom_map"))
    assert "map() at " + where in (child.get("waiting_call") or ""), child


# --------------------------------------------------------------------------- idle pools

def test_idle_session_stream(idle_session):
    check_stream(idle_session)


def test_idle_pools_no_hang(idle_session):
    """Idle Pool / ProcessPoolExecutor workers for IDLE_SECS at -t 1, attached to the
    parents: the workers are traced (their long waits are seen) and nothing is a hang."""
    s = idle_session
    for j in s.jobs:
        assert j.get("done") is not None, "did not finish%s" % j.describe()
    hangs = s.tracer.select("hang")
    assert not hangs, "false hang(s) for idle pools:\n%s" % "\n".join(short(e, 1200) for e in hangs[:5])
    parents = set(j.pid for j in s.jobs)
    worker_waits = [e for e in s.tracer.select("long_wait") if e.get("pid") not in parents]
    assert worker_waits, "no long_wait of any pool worker: descendants of -p are not traced%s" % (
        s.tracer.describe())


# --------------------------------------------------------------------------- field cases

def test_field_session_stream(field_session):
    check_stream(field_session)


def test_field_04_fork_child_lock(field_session, python):
    s = field_session
    job = s[(python, FIELD04)]
    hangs = [e for e in s.tracer.select("hang") if e["diagnosis"].get("code") == "fork_held_lock"
             and _is_child_of(e, job.pid)]
    assert len(hangs) == 1, "want one fork_held_lock for a child of %r, got %s%s" % (
        job.pid, [short(e, 800) for e in s.tracer.select("hang")], job.describe())
    fork = hangs[0]["diagnosis"]["fork"]
    assert (fork.get("holder") or {}).get("name") == "metrics-flusher", fork
    assert fork.get("parent_threads") == 2, fork


def test_field_05_pool_worker_killed(field_session, python):
    s = field_session
    job = s[(python, FIELD05)]
    hangs = _hangs_of(s, job.pid)
    assert _codes(hangs) == ["worker_died"], [short(h, 1200) for h in hangs]
    child = hangs[0]["diagnosis"]["child"]
    assert child.get("signal") == 9, child
    assert "05_pool_worker_killed.py:30" in (child.get("waiting_call") or ""), child


def test_field_13_queue_join_worker_died(field_session, python):
    """queue.join() whose worker thread died without task_done(): not a deadlock; the
    summary names the unfinished task and task_done()."""
    s = field_session
    job = s[(python, FIELD13)]
    hangs = _hangs_of(s, job.pid)
    assert hangs, "no hang; events of the process: %s%s" % (
        [short(e, 600) for e in s.events(job)], job.describe())
    assert not [c for c in _codes(hangs) if "deadlock" in c], _codes(hangs)
    summary = hangs[0]["diagnosis"].get("summary") or ""
    assert "task_done()" in summary and "unfinished task" in summary and "join()" in summary, \
        "%s\nall events of the process: %s" % (short(hangs[0], 4000), [short(e, 1500) for e in s.events(job)])


# --------------------------------------------------------------------------- text

def _text_until_hang(tr_argv, out, reg, then=None, prog=None):
    """Run a text tracer (tr_argv) writing to out until it prints a fork_held_lock (then()
    runs once it has printed its first line: the start), SIGKILL the programs (the tracer's
    descendants, and prog and its descendants: nothing else on the host), stop the tracer;
    returns the text."""
    with alarm_guard(60, "text run"):
        with open(out, "w") as f:
            tr = reg.popen(tr_argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           hangs=True)
            deadline = time.monotonic() + 30
            text = ""
            while time.monotonic() < deadline and "[fork_held_lock]" not in text:
                time.sleep(0.2)
                with open(out) as g:
                    text = g.read()
                if then and "\n" in text:
                    then()
                    then = None
            time.sleep(0.5)
            remember_hanging_members()   # before they are gone (the suite tracer's verdict)
            for pid in _children_of(tr.pid) + ([prog.pid] if prog else []):
                _kill_tree(pid)
            try:
                tr.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                tr.send_signal(signal.SIGINT)
                tr.wait(STOP_TIMEOUT)
    with open(out) as g:
        return g.read()


UNKNOWN_SITE = "where in Python is unknown (the parent forked before the tracer had read its interpreter"


def _check_text(text, fork_line, child_lines, site_required):
    assert "[fork_held_lock]" in text, text[-3000:]
    # the fork site: a traceback with its source line, or (a fork before the tracer read
    # the parent's interpreter, only possible under `--`) why it is unknown
    unknown = UNKNOWN_SITE
    if site_required or unknown not in text:
        assert "The fork, by thread" in text, text[-3000:]
        assert fork_line in text, "the fork site's source line is missing:\n" + text[-3000:]
    assert any(l in text for l in child_lines), text[-3000:]
    incident = text[text.index("HANG"):text.index("HANG END") if "HANG END" in text else len(text)]
    assert not re.search(r"0x[0-9a-f]{6,}", incident), "raw address in the incident:\n" + incident


def test_fork_held_lock_text(binary, reg, tmp_path):
    """Text under `--` with the field program: one block with the sentence, the fork site as
    a traceback with its source line (or, for a fork within milliseconds of the exec, why
    it is unknown), the child's thread, and no raw address."""
    py = PY3[-1] if PY3 else INTERPRETERS[0]
    text = _text_until_hang([binary, "-t", "1", "--", py, FIELD04], str(tmp_path / "out.txt"), reg)
    _check_text(text, "pid = os.fork()", ["buf.add(\"worker started\")", "buf.add('worker started')",
                                          "with self._lock:"], False)


def _start_fork_lock(reg, tmp_path, mode, *extra):
    """Start PROG's fork_lock-like mode with a go file (the newest CPython 3), wait until its
    'flusher' holds the lock; returns (the process, the go file)."""
    py = PY3[-1] if PY3 else INTERPRETERS[0]
    report = str(tmp_path / "fork.report")
    go = str(tmp_path / "fork.go")
    prog = reg.popen([py, PROG, report, mode, go] + list(extra), stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, hangs=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (os.path.exists(report) and "flusher" in open(report).read()):
        time.sleep(0.05)
    return prog, go


def test_fork_held_lock_text_attached(binary, reg, tmp_path):
    """Text with -p: the parent is described before the fork, so the fork site is always
    there, as a traceback with its source line."""
    prog, go = _start_fork_lock(reg, tmp_path, "fork_lock")
    text = _text_until_hang([binary, "-t", "1", "-p", str(prog.pid)], str(tmp_path / "out.txt"), reg,
                            then=lambda: open(go, "w").close(), prog=prog)
    _check_text(text, "pid = os.fork()", ["take_buf_lock()", "with buf_lock:"], True)


def test_fork_held_lock_text_fork_not_captured(binary, reg, tmp_path):
    """A fork whose kernel record was rate limited (attached with -p and --rate-limit 0.001/1,
    the parent forks 30 children first): the kernel keeps the fork's facts without a stack,
    and the text says why the fork site is unknown instead of leaving it out."""
    prog, go = _start_fork_lock(reg, tmp_path, "fork_lock_after", "30")
    # 0.001 a second: exactly the burst's 10 forks (10 times both for forks) have their
    # record, then none for 100 s, longer than the program lives
    text = _text_until_hang([binary, "-t", "1", "--rate-limit", "0.001/1", "-p", str(prog.pid)],
                            str(tmp_path / "out.txt"), reg, then=lambda: open(go, "w").close(),
                            prog=prog)
    assert "[fork_held_lock]" in text, text[-3000:]
    assert "The fork, by thread %d of pid %d: where in Python is unknown (the kernel's record of " \
        "it was rate limited or lost)" % (prog.pid, prog.pid) in text, text[-3000:]
    assert "pid = os.fork()" not in text, text[-3000:]
    incident = text[text.index("HANG"):text.index("HANG END") if "HANG END" in text else len(text)]
    assert not re.search(r"0x[0-9a-f]{6,}", incident), "raw address in the incident:\n" + incident
