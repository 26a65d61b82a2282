"""Issue 14: the source names of locks (`waiting_for.name`, `holds[].name`) on every
interpreter, 2.7 and 3.6-3.13 (3.11+ read from specialized bytecode: adaptive opcodes,
inline caches, LOAD_GLOBAL/LOAD_ATTR opargs, co_localsplusnames).

Real kernel, real processes; needs root.  One tracer runs tests/programs/waitfor_names.py
under every interpreter (tests/test_diagnose.py sessions).  The expected names come from the
program's own source: the expression of the `with` on each `# MARK:` line, never from the
tool's output.
"""
import os
import re

import pytest

from test_diagnose import INTERPRETERS, Job, check_stream, mark_line, run_session, short

TEST_DEADLINE_S = 300

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "waitfor_names.py")


def source_name(mark):
    """The name the source's `with NAME:` on the line of `# MARK: mark` loads."""
    with open(PROGRAM) as f:
        line = f.read().splitlines()[mark_line(PROGRAM, mark) - 1]
    m = re.match(r"\s*with ([A-Za-z_][\w.]*):", line)
    assert m, "no `with NAME:` on the line of MARK %s: %r" % (mark, line)
    return m.group(1)


def _ready(tr, job):
    """The deadlock is out and the main thread's wait has been reported."""
    if not job.pid or not job.get("ready"):
        return False
    main = job.int("MainThread")
    return (any(h["diagnosis"].get("code") == "deadlock" for h in tr.select("hang", pid=job.pid))
            and any(e.get("tid") == main for e in tr.select("long_wait", pid=job.pid)))


@pytest.fixture(scope="module")
def names_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("waitfor_names"))
    jobs = [Job(py, py, PROGRAM, [], d) for py in INTERPRETERS]
    return run_session(binary, d, "waitfor_names", [jobs], ["-t", "1"], hang_pred=_ready)


def test_names_stream(names_session):
    check_stream(names_session)


def test_names_in_deadlock_cycle(names_session, python):
    """Each thread of the cycle: the name of the lock it holds and of the lock it waits for,
    as its `with` wrote it (a global, self._audit, a local)."""
    s = names_session
    job = s[python]
    hangs = [h for h in s.events(job, "hang") if h["diagnosis"].get("code") == "deadlock"]
    assert hangs, "no deadlock%s" % job.describe()
    cycle = hangs[0]["diagnosis"].get("cycle") or []
    want = {job.int("A"): ("post_holds", "post_waits"), job.int("B"): ("rotate_holds", "rotate_waits")}
    assert sorted(c.get("tid") for c in cycle) == sorted(want), short(hangs[0], 2000)
    for c in cycle:
        holds, waits = want[c["tid"]]
        got = (c["holds"].get("name"), c["waits_for"].get("name"))
        assert got == (source_name(holds), source_name(waits)), "thread %s: %r, want %r" % (
            c.get("name"), got, (source_name(holds), source_name(waits)))
        t = [t for t in hangs[0]["threads"] if t.get("tid") == c["tid"]][0]
        assert (t.get("waiting_for") or {}).get("name") == source_name(waits), t
        assert source_name(holds) in [h.get("name") for h in t.get("holds") or []], t.get("holds")
    for n in [source_name(m) for m in ("post_holds", "post_waits", "rotate_holds")]:
        assert " %s (" % n in hangs[0]["diagnosis"]["summary"], hangs[0]["diagnosis"]["summary"]


def test_name_module_level(names_session, python):
    """The main thread waits at module level (LOAD_NAME) for the global held by 'A'."""
    s = names_session
    job = s[python]
    main = job.int("MainThread")
    lws = [e for e in s.events(job, "long_wait") if e.get("tid") == main]
    assert lws, "no long_wait of the main thread%s" % job.describe()
    wf = lws[0].get("waiting_for") or {}
    assert wf.get("name") == source_name("main_waits"), short(lws[0], 1500)
    assert (wf.get("holder") or {}).get("tid") == job.int("A"), wf
