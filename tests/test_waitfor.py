"""End-to-end tests of issue 14: no false hangs, lock ownership, the wait-for graph and the
proven diagnoses (deadlock, self_deadlock, orphaned_lock), hang_end, on every interpreter.

Real kernel, real processes; needs root.  Sessions and jobs come from tests/harness/session.py
(one tracer in `-- sh -c` mode runs a program under every interpreter; each program appends
its pid and its threads' tids to a report file).  Expected files, lines and functions come
from the programs' `# MARK: name` comments, never from the tool's output.
"""
import os
import re
import signal

import pytest

from harness.procs import remember_hanging_members

from test_diagnose import (INTERPRETERS, Job, check_stream, label_of, mark_line, run_session,
                           short, version_of)

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
HEALTHY = os.path.join(PROGRAMS, "waitfor_healthy.py")
HEALTHY_KINDS = ["service", "pool_io", "idle_pool", "mp_pool", "prodcons", "exit_busy"]


# --------------------------------------------------------------------------- A. no false hangs

@pytest.fixture(scope="module")
def healthy_session(binary, tmp_path_factory):
    """Half the interpreters at a time, every kind side by side (they mostly sleep; their
    waits last SECONDS=4 whatever the load: no work is counted)."""
    d = str(tmp_path_factory.mktemp("waitfor_healthy"))
    half = (len(INTERPRETERS) + 1) // 2
    batches = [[Job((py, k), py, HEALTHY, [k, "4"], d) for py in INTERPRETERS[i:i + half] for k in HEALTHY_KINDS]
               for i in range(0, len(INTERPRETERS), half)]
    return run_session(binary, d, "waitfor_healthy", batches, ["-t", "1"], limit=240)


def test_healthy_waits_stream(healthy_session):
    check_stream(healthy_session)


@pytest.mark.parametrize("kind", HEALTHY_KINDS)
def test_healthy_waits_no_hang(healthy_session, python, kind):
    """Long untimed waits while another thread sleeps, polls, reads a socket or waits for
    a child process: at -t 1 there are long waits, and not one `hang`."""
    s = healthy_session
    job = s[(python, kind)]
    assert job.get("done") is not None, "the program did not finish cleanly%s" % job.describe()
    hangs = s.events(job, "hang")
    assert not hangs, "false hang(s) for a healthy %s program (%s):\n%s" % (
        kind, label_of(python), "\n".join(short(e, 1500) for e in hangs[:5]))
    if kind in ("service", "idle_pool", "prodcons", "exit_busy"):
        assert s.events(job, "long_wait"), "no long_wait at all: the test proves nothing%s" % job.describe()


# --------------------------------------------------------------------------- hang_end

RELEASE = os.path.join(PROGRAMS, "waitfor_release.py")
QUEUE_JOIN = os.path.join(PROGRAMS, "waitfor_queue_join.py")


def _py2(python):
    return version_of(python) < (3, 0)


@pytest.fixture(scope="module")
def release_session(binary, tmp_path_factory):
    """Once a job's all_threads_blocked hang is out, the test releases it: SIGUSR1 (the
    handler releases the locks) on 3.x, SIGKILL on 2.7 (whose lock waits never run a
    handler); it is over once its hang_end is seen."""
    d = str(tmp_path_factory.mktemp("waitfor_release"))
    jobs = [Job(py, py, RELEASE, [], d) for py in INTERPRETERS]
    sent = set()

    def pred(tr, job):
        if not job.pid:
            return False
        if job.key not in sent and tr.select("hang", pid=job.pid):
            sent.add(job.key)
            # the suite tracer may report the same hang a moment later (a second look):
            # it must still know this process for one made to hang on purpose
            remember_hanging_members()
            try:
                os.kill(job.pid, signal.SIGKILL if _py2(job.python) else signal.SIGUSR1)
            except OSError:
                pass
        return bool(tr.select("hang_end", pid=job.pid))

    return run_session(binary, d, "waitfor_release", [jobs], ["-t", "1"], hang_pred=pred)


def test_release_stream(release_session):
    check_stream(release_session)


def test_hang_end(release_session, python):
    """The all_threads_blocked hang is withdrawn by one hang_end when its threads move
    again (3.x) or its process ends (2.7): code, ended_by, a duration."""
    s = release_session
    job = s[python]
    hangs = s.events(job, "hang")
    assert [h["diagnosis"]["code"] for h in hangs] == ["all_threads_blocked"], \
        "want one all_threads_blocked hang, got %s" % [short(h, 600) for h in hangs]
    ends = s.events(job, "hang_end")
    assert len(ends) == 1, "want one hang_end, got %s%s" % ([short(e) for e in ends], job.describe())
    e = ends[0]
    assert e.get("code") == "all_threads_blocked", short(e)
    if _py2(python):
        # SIGKILL: the kernel ends the futex call first (wait_end "return" or
        # "thread_exit"), or the exit is seen first
        assert e.get("ended_by") in ("return", "thread_exit", "process_exit"), short(e)
    else:
        # SIGUSR1's handler releases the lock: the main thread's wait is ended by that
        # signal (wait_end's "signal"), the worker's by its call returning
        assert (e.get("ended_by"), e.get("tid")) in (("signal", job.pid), ("return", job.pid),
                                                     ("return", job.int("W"))), short(e)
        assert job.get("done") is not None, "the program did not finish after SIGUSR1%s" % job.describe()
    # the hang began when the last of its waits did: at most the hang's age plus the threshold
    assert isinstance(e.get("duration_s"), float) and e["duration_s"] >= 1.0, short(e)
    assert e["duration_s"] >= e.get("reported_s_ago", 0), short(e)


# --------------------------------------------------------------------------- queue.join, dead worker

@pytest.fixture(scope="module")
def queue_join_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("waitfor_queue_join"))
    jobs = [Job(py, py, QUEUE_JOIN, [], d) for py in INTERPRETERS]

    def pred(tr, job):
        return bool(job.pid) and len(tr.select("long_wait", pid=job.pid)) >= 2
    return run_session(binary, d, "waitfor_queue_join", [jobs], ["-t", "1"], hang_pred=pred)


def test_queue_join_stream(queue_join_session):
    check_stream(queue_join_session)


def test_queue_join_dead_worker_is_no_deadlock(queue_join_session, python):
    s = queue_join_session
    job = s[python]
    assert job.get("joining") is not None, job.describe()
    codes = [h["diagnosis"]["code"] for h in s.events(job, "hang")]
    assert not [c for c in codes if "deadlock" in c], "a dead worker called a deadlock: %r" % codes
    assert codes in ([], ["all_threads_blocked"]), codes


# --------------------------------------------------------------------------- B/C. ownership, proven diagnoses

LOCKS = os.path.join(PROGRAMS, "waitfor_locks.py")
CYCLES = [("cycle2", "Lock"), ("cycle2", "RLock"), ("cycle2", "Condition"), ("cycle3", "Lock"),
          ("cycle3", "Condition")]
OTHERS = [("self", "Lock"), ("orphan", "Lock"), ("sleeper", "Lock")]


def _want(codes):
    def pred(tr, job):
        if not job.pid:
            return False
        if job.key[1] == "sleeper":
            return job.get("done") is not None
        return any(e["diagnosis"].get("code") in codes for e in tr.select("hang", pid=job.pid))
    return pred


@pytest.fixture(scope="module")
def cycle_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("waitfor_cycles"))
    jobs = [Job((py, mode, kind), py, LOCKS, [mode, kind], d) for py in INTERPRETERS
            for mode, kind in CYCLES + [("join", "Lock")]]
    return run_session(binary, d, "waitfor_cycles", [jobs], ["-t", "1"], hang_pred=_want(("deadlock",)))


@pytest.fixture(scope="module")
def other_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("waitfor_others"))
    jobs = [Job((py, mode, kind), py, LOCKS, [mode, kind], d) for py in INTERPRETERS for mode, kind in OTHERS]
    return run_session(binary, d, "waitfor_others", [jobs], ["-t", "1"],
                       hang_pred=_want(("self_deadlock", "orphaned_lock")))


def test_cycle_stream(cycle_session):
    check_stream(cycle_session)


def test_other_stream(other_session):
    check_stream(other_session)


def _thread(ev, tid):
    for t in ev.get("threads") or []:
        if t.get("tid") == tid:
            return t
    return None


def _where(obj, line, function=None):
    return (isinstance(obj, dict) and obj.get("line") == line and
            os.path.realpath(str(obj.get("file"))) == os.path.realpath(LOCKS) and
            (function is None or obj.get("function") == function))


def _with_name(line):
    """The name the `with NAME:` at this line of LOCKS loads."""
    with open(LOCKS) as f:
        m = re.match(r"\s*with ([A-Za-z_][\w.]*):", f.read().splitlines()[line - 1])
    assert m, "no `with NAME:` at %s:%d" % (LOCKS, line)
    return m.group(1)


@pytest.mark.parametrize("mode,kind", CYCLES)
def test_deadlock_cycle(cycle_session, python, mode, kind):
    """A lock-order cycle of 2 or 3 threads (Lock, RLock, Condition) while 'runner' keeps
    running: one `deadlock` whose cycle names, in order, each thread, the lock it holds
    (where it took it) and the lock it waits for (where)."""
    s = cycle_session
    job = s[(python, mode, kind)]
    names = "AB" if mode == "cycle2" else "ABC"
    hangs = s.events(job, "hang")
    codes = [h["diagnosis"]["code"] for h in hangs]
    assert codes == ["deadlock"], "want one deadlock, got %r%s" % (
        [short(h, 1500) for h in hangs], job.describe())
    diag = hangs[0]["diagnosis"]
    tids = dict((n, job.int(n)) for n in names)
    assert sorted(diag["culprit_tids"]) == sorted(tids.values()), diag
    assert job.int("runner") not in diag["culprit_tids"]
    cycle = diag.get("cycle") or []
    assert [c.get("tid") for c in cycle] == diag["culprit_tids"], diag
    take_first, take_second = mark_line(LOCKS, "take_first"), mark_line(LOCKS, "take_second")
    for k, c in enumerate(cycle):
        nxt = cycle[(k + 1) % len(cycle)]
        assert c.get("name") in names, c
        assert _where(c["holds"].get("since"), take_first, "step"), \
            "holds.since %r, want line %d" % (c["holds"], take_first)
        assert _where(c["waits_for"].get("where"), take_second), "waits_for.where %r" % c["waits_for"]
        # what c waits for is what the next one holds
        assert c["waits_for"]["object"] == nxt["holds"]["object"] and c["waits_for"]["object"], (c, nxt)
        # the source names (read from the bytecode), as the program's `with` lines write them
        assert (c["holds"]["name"], c["waits_for"]["name"]) == (
            _with_name(take_first), _with_name(take_second)), c
        want_kind = "RLock" if kind == "Condition" and _py2(python) else kind
        assert c["waits_for"]["kind"] in (kind, want_kind), c
    summary = diag["summary"]
    for n in names:
        assert "'%s' holds" % n in summary, summary
    assert "holds %s (" % _with_name(take_first) in summary, summary
    assert "waits for %s (" % _with_name(take_second) in summary, summary
    assert "waitfor_locks.py:%d" % take_first in summary and "waitfor_locks.py:%d" % take_second in summary
    assert "one order" in summary
    # the cycle's threads carry waiting_for with the holder
    ev = hangs[0]
    for n in names:
        t = _thread(ev, tids[n])
        wf = t.get("waiting_for") or {}
        assert (wf.get("holder") or {}).get("tid") in tids.values(), t
        assert wf.get("timeout_s") is None, wf
        assert [h for h in t.get("holds") or [] if _where(h.get("since"), take_first)], t.get("holds")
    runner = _thread(ev, job.int("runner"))
    assert runner is not None and (runner.get("waiting_for") or {}).get("kind") in (None, "sleep", "GIL"), runner


def test_deadlock_through_join(cycle_session, python):
    """'J' holds l1 and joins 'W', which waits for l1: a deadlock through Thread.join."""
    s = cycle_session
    job = s[(python, "join", "Lock")]
    hangs = s.events(job, "hang")
    assert [h["diagnosis"]["code"] for h in hangs] == ["deadlock"], [short(h, 1500) for h in hangs]
    d = hangs[0]["diagnosis"]
    assert sorted(d["culprit_tids"]) == sorted([job.int("J"), job.int("W")]), d
    for mark in ("join_holds", "join_waits", "join_worker_waits"):
        assert "waitfor_locks.py:%d" % mark_line(LOCKS, mark) in d["summary"], (mark, d["summary"])
    assert "'W' to finish" in d["summary"], d["summary"]
    j = _thread(hangs[0], job.int("J"))
    assert j["waiting_for"]["kind"] == "Thread.join" and j["waiting_for"]["holder"]["tid"] == job.int("W"), j


def test_self_deadlock(other_session, python):
    s = other_session
    job = s[(python, "self", "Lock")]
    hangs = s.events(job, "hang")
    assert [h["diagnosis"]["code"] for h in hangs] == ["self_deadlock"], [short(h, 1200) for h in hangs]
    d = hangs[0]["diagnosis"]
    assert d["culprit_tids"] == [job.int("S")], d
    for mark in ("self_first", "self_again"):
        assert "waitfor_locks.py:%d" % mark_line(LOCKS, mark) in d["summary"], d["summary"]


def test_orphaned_lock(other_session, python):
    s = other_session
    job = s[(python, "orphan", "Lock")]
    hangs = s.events(job, "hang")
    assert [h["diagnosis"]["code"] for h in hangs] == ["orphaned_lock"], [short(h, 1200) for h in hangs]
    d = hangs[0]["diagnosis"]
    assert d["waiter_tid"] == job.int("W"), d
    assert "waitfor_locks.py:%d" % mark_line(LOCKS, "orphan_wait") in d["summary"], d["summary"]
    lws = [e for e in s.events(job, "long_wait") if e["tid"] == job.int("W")]
    assert lws and lws[0]["waiting_for"]["kind"] == "RLock" and lws[0]["waiting_for"].get("holder_exited"), \
        short(lws[0]) if lws else "no long_wait for W"


def test_holder_sleeps_is_long_wait(other_session, python):
    """'W' waits for a lock that 'H' holds while it sleeps inside its `with`: a long_wait
    naming the holder and where it took the lock, and no hang."""
    s = other_session
    job = s[(python, "sleeper", "Lock")]
    assert job.get("done") is not None, job.describe()
    assert not s.events(job, "hang"), [short(h, 800) for h in s.events(job, "hang")]
    lws = [e for e in s.events(job, "long_wait") if e["tid"] == job.int("W")]
    assert lws, "no long_wait for W%s" % job.describe()
    wf = lws[0].get("waiting_for") or {}
    assert wf.get("kind") == "Lock", wf
    h = wf.get("holder") or {}
    assert h.get("tid") == job.int("H") and h.get("name") == "H", wf
    assert _where(h.get("since"), mark_line(LOCKS, "sleeper_holds"), "holder"), h
    ht = _thread(lws[0], job.int("H"))
    assert (ht.get("waiting_for") or {}).get("kind") == "sleep", ht


# --------------------------------------------------------------------------- D. the text report

def test_text_report_deadlock(binary, python, tmp_path):
    """In text: one block per incident, the cycle's threads as tracebacks with the source
    line under each frame (read from the target's root), the other threads one line each,
    no futex address; a later long wait of the same hang is one line."""
    import time
    from harness import Registry, Tracer, alarm_guard
    reg = Registry()
    rep = str(tmp_path / "report")
    try:
        with alarm_guard(90, "text deadlock"):
            tr = Tracer(reg, binary, ["-t", "1", "--", python, LOCKS, rep, "cycle2", "Lock"], hangs=True)
            deadline = time.time() + 45
            while time.time() < deadline and tr.proc.poll() is None:
                with tr.cond:
                    if any("[deadlock]" in l for l in tr.lines):
                        break
                time.sleep(0.1)
            # the whole incident block, however slow the host: stop the tracer and read
            # its output to the end (was: 0.5 s more, and a block cut short under load)
            tr.stop()
            with tr.cond:
                lines = list(tr.lines)
    finally:
        reg.cleanup()
    text = "\n".join(lines)
    start = [i for i, l in enumerate(lines) if "[deadlock]" in l]
    assert start, "no deadlock in text:\n%s" % text[-3000:]
    block = []
    for l in lines[start[0] + 1:]:
        if re.match(r"^\d\d:\d\d:\d\d\.\d{3} ", l):
            break
        block.append(l)
    body = "\n".join(block)
    assert "futex 0x" not in text and "syscall 2" not in text, text[-3000:]
    assert body.count("Traceback (most recent call last):") == 2, body
    assert body.count("    with second:  # MARK: take_second") == 2, body
    assert "holds: Lock taken at waitfor_locks.py:%d" % mark_line(LOCKS, "take_first") in body, body
    assert "Other threads:" in body and re.search(r'  Thread "runner" \(tid \d+, .*\) at waitfor_locks.py:\d+ in runner', body), body
    assert re.search(r'  Thread "MainThread" \(tid \d+, ', body), body


def test_text_report_wait_before_hang_one_block(binary, python, tmp_path):
    """The usual order: the cycle's threads pass the threshold in one scan, their long waits
    and the deadlock they prove come together. The deadlock is one block (its threads'
    tracebacks once each) and every long wait of its threads from that moment on is one
    line after it, not the same stacks again."""
    import time
    from harness import Registry, Tracer, alarm_guard
    reg = Registry()
    rep = str(tmp_path / "report")
    try:
        with alarm_guard(60, "text deadlock, waits first"):
            tr = Tracer(reg, binary, ["-t", "1", "--", python, LOCKS, rep, "cycle2", "Lock"], hangs=True)
            deadline = time.time() + 30
            while time.time() < deadline:
                with tr.cond:
                    if any("[deadlock]" in l for l in tr.lines):
                        break
                time.sleep(0.1)
            time.sleep(1.5)  # room for long waits printed after it
            with tr.cond:
                lines = list(tr.lines)
    finally:
        reg.cleanup()
    text = "\n".join(lines)
    stamp = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) ")
    entries = []  # (time, first line, following lines)
    for l in lines:
        m = stamp.match(l)
        if m:
            entries.append((m.group(1), l, []))
        elif entries:
            entries[-1][2].append(l)
    hangs = [k for k, e in enumerate(entries) if "[deadlock]" in e[1]]
    assert len(hangs) == 1, "want one deadlock block:\n%s" % text[-4000:]
    hang_time = entries[hangs[0]][0]
    body = "\n".join(entries[hangs[0]][2])
    assert body.count("Traceback (most recent call last):") == 2, body
    # the waits of the hang's scan (same time) and later: after the block, one line each
    same = [k for k, e in enumerate(entries) if "LONG WAIT" in e[1] and e[0] >= hang_time]
    assert same, "no long wait at or after the deadlock's scan:\n%s" % text[-4000:]
    for k in same:
        t, first, rest = entries[k]
        assert k > hangs[0], "a long wait of the deadlock's scan before its block:\n%s" % text[-4000:]
        assert not [l for l in rest if l.strip()], "a long wait covered by the deadlock printed " \
            "more than its line:\n%s\n%s" % (first, "\n".join(rest))
        assert first.endswith("(part of the hang reported above)"), first
