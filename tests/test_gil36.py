"""GIL waits on every interpreter, 3.6 included: CPython 3.6 keeps its GIL in static
variables of ceval.c (gil_cond, gil_mutex, ...), which the reader locates from .symtab, or
without it from create_gil()'s code (user/python/gilstatic.c); where neither works the GIL is
unknown and a futex wait is said to be "unknown", never a lock wait.

The workload (tests/programs/gil_regex_join.py, after a field report) runs a regular
expression that never releases the GIL in a thread named 'reflect-regex' and guards it with
join(2.0): the main thread then waits for the GIL for as long as the regex runs.

Real kernel, real interpreters, real (stripped / altered) copies of libpython3.6m; needs
root.  Expected lines come from `# MARK:` comments of the program, tids from its report.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import conftest
from harness import check_stream, kill_group, mark_line
from harness.session import Job, run_session
from harness.tracer import Tracer

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
PROG = os.path.join(PROGRAMS, "gil_regex_join.py")
BUSY = os.path.join(PROGRAMS, "gil_busy.py")
HELD_BLOCKED = os.path.join(PROGRAMS, "gil_held_blocked.py")
THRESHOLD = 3.0        # above the 2 s join: only the GIL wait may be reported
# the tracer looks at a GIL chain again 1 s after its first look, then every 1.5 s (half
# the threshold, recheck.h): 8 s hold looks that span the threshold twice over
STRIPPED_LOOKS_S = 8.0
# Py_FatalError messages of 3.6's create_gil(), which name the variables (ceval_gil.h)
INIT_MESSAGES = (b"PyMUTEX_INIT(gil_mutex) failed", b"PyMUTEX_INIT(switch_mutex) failed",
                 b"PyCOND_INIT(gil_cond) failed", b"PyCOND_INIT(switch_cond) failed")


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)


def interpreter_36():
    found = find_36()
    if not found:
        pytest.skip("no CPython 3.6 with a shared libpython3.6m installed")
    return found


def has_section(path, name):
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, check=True).stdout.decode()
    return re.search(r"\s%s\s" % re.escape(name), out) is not None


def libpython_copy(tmp_path, lib, strip=True, alter=()):
    """A copy of libpython3.6m without .symtab (objcopy --strip-all), with the given
    Py_FatalError messages altered (same length: one letter changed)."""
    d = os.path.join(str(tmp_path), "lib")
    os.mkdir(d)
    dst = os.path.join(d, os.path.basename(lib))
    if strip:
        subprocess.run(["objcopy", "--strip-all", lib, dst], check=True)
    else:
        shutil.copy(lib, dst)
    with open(dst, "rb") as f:
        data = f.read()
    for m in alter:
        assert data.count(m + b"\0") == 1, m
        data = data.replace(m + b"\0", m.replace(b"INIT", b"INXT") + b"\0")
    with open(dst, "wb") as f:
        f.write(data)
    assert not has_section(dst, ".symtab")
    return d


def find_36():
    """(python, libpython3.6m path) of a CPython 3.6 with a shared libpython, or None."""
    for label, path, version in conftest.INTERPRETERS:
        if version.startswith("3.6."):
            lib = os.path.join(os.path.dirname(os.path.dirname(path)), "lib", "libpython3.6m.so.1.0")
            if os.path.exists(lib):
                return path, lib
    return None


def gil_hang(e):
    d = e.get("diagnosis")
    return e.get("event") == "hang" and isinstance(d, dict) and d.get("code") == "gil_wait"


@pytest.fixture(scope="module")
def gil_session(binary, tmp_path_factory):
    """ONE tracer (`pyhang-trace --json -t 3 -- sh -c ...`) runs the workload under every
    interpreter at once, and once more under 3.6 with a copy of libpython3.6m without
    .symtab (LD_LIBRARY_PATH); each program is killed once its gil_wait hang was reported
    (harness/session.py), the stripped one STRIPPED_LOOKS_S after its long_wait.  The regex
    never ends by itself: no amount of work is timed."""
    d = str(tmp_path_factory.mktemp("gil36"))
    jobs = [Job(py, py, PROG, [], d) for _, py, _ in conftest.INTERPRETERS]
    found = find_36()
    if found:
        python, lib = found
        stripped = libpython_copy(tmp_path_factory.mktemp("gil36-lib"), lib)
        jobs.append(Job("3.6-stripped", python, PROG, [], d, env={"LD_LIBRARY_PATH": stripped}))
    first_wait = {}

    def done(tr, j):
        if any(gil_hang(e) for e in tr.select("hang", pid=j.pid)):
            return True
        # stripped: no switch count, so no proof; killed once every second look was made
        if j.key == "3.6-stripped" and tr.select("long_wait", pid=j.pid):
            first_wait.setdefault(j.pid, time.monotonic())
            return time.monotonic() - first_wait[j.pid] >= STRIPPED_LOOKS_S
        return False
    return run_session(binary, d, "gil36", [jobs], ["-t", str(THRESHOLD)], hang_pred=done,
                       limit=TEST_DEADLINE_S - 10)


def check_gil_diagnosis(session, job):
    """One gil_wait hang: MainThread waits, 'reflect-regex' holds the GIL inside re.sub at
    the program's MARK: regex line; long_waits of the main thread only with merged GIL waits
    (gil: true) on 3.x, one on 2.7."""
    main, = [int(w[0]) for w in job.all("main")]
    regex, = [int(w[0]) for w in job.all("regex")]
    hangs = [e for e in session.events(job, "hang") if gil_hang(e)]
    assert len(hangs) == 1, "want one gil_wait hang, got %d%s%s" % (
        len(hangs), job.describe(), session.tracer.describe())
    hang = hangs[0]
    d = hang["diagnosis"]
    assert d.get("waiter_tid") == main and d.get("culprit_tids") == [regex], d
    summary = d.get("summary") or ""
    assert "'MainThread'" in summary and "'reflect-regex'" in summary, summary
    assert "sub() at gil_regex_join.py:%d" % mark_line(PROG, "regex") in summary, summary
    holder = [t for t in hang.get("threads") or [] if t.get("tid") == regex]
    assert holder and holder[0].get("gil") is True, hang.get("threads")
    waits = [e for e in session.events(job, "long_wait") if e.get("tid") == main]
    # gil: true = waits merged in the kernel; 2.7 waits on one semaphore (README, GIL waits)
    merged = not hang.get("python", "").startswith("2.")
    # 3.x: the proof takes looks that span the threshold after the first long_wait; a chain
    # may break meanwhile (a wait preempted for over 1 ms on a loaded host) and a new
    # one pass the threshold again
    assert (len(waits) >= 1 if merged else len(waits) == 1) and \
        all(w.get("gil") is merged for w in waits), \
        "want long_waits of the main thread with gil: %s, got %r%s" % (merged, waits, job.describe())


def test_gil_session_stream(gil_session):
    check_stream(gil_session.tracer)
    assert gil_session.rc == 0, "tracer exit status %r%s" % (gil_session.rc, gil_session.tracer.describe())
    assert gil_session.tracer.select("stop")[0].get("lost_events") == 0, gil_session.tracer.describe()


def test_gil_wait_named_every_interpreter(gil_session, python):
    """The field case on every interpreter (3.6 was the only one where it went unseen: its
    5 ms timed waits on the static gil_cond were never merged into one wait)."""
    check_gil_diagnosis(gil_session, gil_session[python])


def test_gil36_without_symtab(gil_session):
    """libpython3.6m without .symtab: the GIL is found in create_gil()'s code, so the main
    thread's waits are merged into one GIL wait; but gil_switch_number is not located, so
    nothing proves that no thread took the GIL between two looks: a long_wait, never a
    gil_wait hang (diagnose.c, gil_wait_proven)."""
    python, lib = interpreter_36()
    job = gil_session["3.6-stripped"]
    d = job.env["LD_LIBRARY_PATH"]
    maps = subprocess.run([python, "-c", "print(open('/proc/self/maps').read())"],
                          env=dict(os.environ, **job.env), capture_output=True,
                          check=True).stdout.decode()
    assert os.path.join(d, "libpython3.6m.so.1.0") in maps, "the stripped copy is not the one loaded"
    main, = [int(w[0]) for w in job.all("main")]
    hangs = [e for e in gil_session.events(job, "hang") if gil_hang(e)]
    assert not hangs, "a gil_wait hang without a switch count: %r%s" % (hangs, job.describe())
    # one chain, or more if a wait was preempted for over 1 ms on a loaded host
    waits = [e for e in gil_session.events(job, "long_wait") if e.get("tid") == main]
    assert waits and all(w.get("gil") is True for w in waits), \
        "want merged GIL long_waits of the main thread, got %r%s" % (waits, job.describe())


@pytest.fixture(scope="module")
def busy_session(binary, tmp_path_factory):
    """ONE tracer (`--json -t 1`) runs tests/programs/gil_busy.py under every interpreter at
    once: 16 threads each that trade the GIL for 6 s and end by themselves."""
    d = str(tmp_path_factory.mktemp("gilbusy"))
    jobs = [Job(py, py, BUSY, [], d, report=False) for _, py, _ in conftest.INTERPRETERS]
    return run_session(binary, d, "gilbusy", [jobs], ["-t", "1"], limit=TEST_DEADLINE_S - 10)


def test_gil_traded_is_no_hang(busy_session, python):
    """Threads that trade the GIL are no hang, although each waits long for it: on 3.x the
    kernel merges a waiter's GIL waits into one chain that lasts seconds while the GIL goes
    round (the chain goes on through the GIL's mutex), and a thread other than the waiter
    always holds the GIL.  Before the second look (the GIL's switch count unchanged), every
    such chain was a gil_wait hang on 3.8 and 3.12 (16 of 16)."""
    job = busy_session[python]
    assert busy_session.rc == 0, busy_session.tracer.describe()
    hangs = [e for e in busy_session.events(job, "hang") if gil_hang(e)]
    assert not hangs, "gil_wait hangs of a healthy program: %r%s" % (
        [h["diagnosis"].get("summary") for h in hangs], job.describe())
    version = dict((p, v) for _, p, v in conftest.INTERPRETERS)[python]
    if not version.startswith("2."):
        # the case is there: waits for the GIL that passed the threshold
        waits = [e for e in busy_session.events(job, "long_wait") if e.get("gil") is True]
        assert waits, "no GIL wait passed the threshold%s" % job.describe()


@pytest.fixture(scope="module")
def blocked_session(binary, tmp_path_factory):
    """ONE tracer (`--json -t 1`) runs tests/programs/gil_held_blocked.py under every
    interpreter at once; each is killed once its gil_wait hang was reported."""
    d = str(tmp_path_factory.mktemp("gilblocked"))
    jobs = [Job(py, py, HELD_BLOCKED, [], d) for _, py, _ in conftest.INTERPRETERS]
    return run_session(binary, d, "gilblocked", [jobs], ["-t", "1"],
                       hang_pred=lambda tr, j: any(gil_hang(e) for e in tr.select("hang", pid=j.pid)),
                       limit=TEST_DEADLINE_S - 10)


def test_gil_held_while_blocked(blocked_session, python):
    """A holder blocked in a C call that keeps the GIL (ctypes.PyDLL sleep): it does not
    run, so the proof is that it stays blocked (stat S) at every look while the switch
    count stays: one gil_wait naming it and its line."""
    job = blocked_session[python]
    main, = [int(w[0]) for w in job.all("main")]
    holder, = [int(w[0]) for w in job.all("holder")]
    hangs = [e for e in blocked_session.events(job, "hang") if gil_hang(e)]
    assert len(hangs) == 1, "want one gil_wait hang, got %d%s%s" % (
        len(hangs), job.describe(), blocked_session.tracer.describe())
    d = hangs[0]["diagnosis"]
    assert d.get("waiter_tid") == main and d.get("culprit_tids") == [holder], d
    summary = d.get("summary") or ""
    assert "'sleeps-holding-gil'" in summary, summary
    assert "hold() at gil_held_blocked.py:%d" % mark_line(HELD_BLOCKED, "holding") in summary, summary


def start_waiting(reg, python, tmp_path, env):
    """Runs the workload without the tracer until the main thread wants the GIL back (the
    join timed out; the regex runs for minutes). Returns the process and the tids."""
    report = os.path.join(str(tmp_path), "report")
    p = reg.hanging([python, PROG, report], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (os.path.exists(report) and "regex" in open(report).read()):
        time.sleep(0.05)
    time.sleep(3.0)  # join(2.0) has timed out
    with open(report) as f:
        tids = dict((l.split()[0], int(l.split()[1])) for l in f if len(l.split()) == 2)
    return p, tids["main"], tids["regex"]


def dump_threads(binary, pid, main, regex, env=None):
    """The main and regex threads of `dump --json`, from the first of up to 50 dumps that
    finds the main thread off the CPU (a GIL waiter wakes every 5 ms, and a dump may catch
    it between two waits)."""
    for _ in range(50):
        out = subprocess.run([binary, "dump", str(pid), "--json"], capture_output=True,
                             timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        threads = dict((t.get("tid"), t) for t in json.loads(out.stdout.decode())["threads"])
        if threads[main].get("state") != "running":
            break
    return threads[main], threads[regex]


def test_gil36_dump_with_and_without_symtab(reg, binary, tmp_path):
    """dump of the field case on 3.6, with libpython's .symtab and with a stripped copy
    (create_gil's code): the main thread is in gil_wait, the regex thread holds the GIL."""
    python, lib = interpreter_36()
    stripped = libpython_copy(tmp_path, lib)
    for libdir in (None, stripped):
        env = dict(os.environ, LD_LIBRARY_PATH=libdir) if libdir else None
        p, main_tid, regex_tid = start_waiting(reg, python, tmp_path, env)
        main, regex = dump_threads(binary, p.pid, main_tid, regex_tid)
        kill_group(p)
        os.unlink(os.path.join(str(tmp_path), "report"))
        assert main.get("state") == "gil_wait", (libdir or "with .symtab", main)
        assert regex.get("gil") is True and main.get("gil") is False, (regex, main)


def test_gil36_unknown_is_not_a_lock_wait(reg, binary, tmp_path):
    """A 3.6 libpython without .symtab whose create_gil() messages do not name the variables
    (altered copy): the GIL cannot be located, so the main thread's futex wait is 'unknown',
    never called a lock wait (nor a GIL wait); the holder is still known
    (_PyThreadState_Current is exported)."""
    python, lib = interpreter_36()
    d = libpython_copy(tmp_path, lib, alter=INIT_MESSAGES[2:3])  # gil_cond's message
    p, main_tid, regex_tid = start_waiting(reg, python, tmp_path, dict(os.environ, LD_LIBRARY_PATH=d))
    main, regex = dump_threads(binary, p.pid, main_tid, regex_tid)
    assert main.get("state") == "unknown", main
    assert regex.get("gil") is True, regex


def _vkey(version):
    return tuple(int(x) for x in re.findall(r"\d+", version)[:2])


# the oldest and the newest 3.x: the GIL as statics (3.6) and in the interpreter (3.12+);
# what a stop does to a chain of GIL waits does not depend on the interpreter
_THREES = sorted(((v, p) for _, p, v in conftest.INTERPRETERS if v.startswith("3.")),
                 key=lambda vp: _vkey(vp[0]))
STOP_PYTHONS = sorted(set([_THREES[0][1], _THREES[-1][1]])) if _THREES else []
STOP_THRESHOLD = 3     # the first look that can prove the hang comes 3 s after the long_wait
STOPPED_S = 8.0        # several looks while stopped


@pytest.mark.parametrize("py3", STOP_PYTHONS)
def test_gil_hog_stopped_is_no_gil_wait(reg, binary, tmp_path, py3):
    """A process stopped (SIGSTOP: ^Z, a debugger) keeps its GIL's switch count still: that
    proves no long call.  While it is stopped, its GIL hog is no gil_wait hang (the waiter's
    wait was interrupted and its holder is stopped); once continued, the hog is proven
    (the wait goes on; looks that span the threshold, the holder running between them)."""
    p, main, regex = start_waiting(reg, py3, tmp_path, dict(os.environ))
    tr = Tracer(reg, binary, ["--json", "-t", str(STOP_THRESHOLD), "-p", str(p.pid)])
    tr.wait_start()
    tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == main and e.get("gil") is True,
                30, "the main thread's GIL long_wait")
    os.kill(p.pid, signal.SIGSTOP)
    stopped_at = time.time()
    time.sleep(STOPPED_S)
    hangs = [e for e in tr.select("hang") if gil_hang(e)]
    assert not hangs, "a gil_wait of a stopped process: %r%s" % (
        [h["diagnosis"].get("summary") for h in hangs], tr.describe())
    os.kill(p.pid, signal.SIGCONT)
    hang = tr.wait_for(lambda e: gil_hang(e) and e["_recv"] > stopped_at, 40,
                       "the gil_wait hang once continued")
    d = hang["diagnosis"]
    assert d.get("waiter_tid") == main and d.get("culprit_tids") == [regex], d
    assert "has waited at least" in d.get("summary", ""), d
    tr.stop()
    kill_group(p)
