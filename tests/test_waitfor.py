"""End-to-end tests of issue 14: no false hangs, lock ownership, the wait-for graph and the
proven diagnoses (deadlock, self_deadlock, orphaned_lock), hang_end, on every interpreter.

Real kernel, real processes; needs root.  Sessions and jobs come from tests/test_diagnose.py
(one tracer in `-- sh -c` mode runs a program under every interpreter; each program appends
its pid and its threads' tids to a report file).  Expected files, lines and functions come
from the programs' `# MARK: name` comments, never from the tool's output.
"""
import os
import signal

import pytest

from test_diagnose import (INTERPRETERS, Job, check_stream, label_of, run_session, short,
                           version_of)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
HEALTHY = os.path.join(PROGRAMS, "waitfor_healthy.py")
HEALTHY_KINDS = ["service", "pool_io", "idle_pool", "mp_pool", "prodcons"]


def _pairs(seq):
    return [seq[i:i + 2] for i in range(0, len(seq), 2)]


# --------------------------------------------------------------------------- A. no false hangs

@pytest.fixture(scope="module")
def healthy_session(binary, tmp_path_factory):
    """Two interpreters at a time, every kind side by side (they mostly sleep)."""
    d = str(tmp_path_factory.mktemp("waitfor_healthy"))
    batches = [[Job((py, k), py, HEALTHY, [k, "4"], d) for py in pair for k in HEALTHY_KINDS]
               for pair in _pairs(INTERPRETERS)]
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
    if kind in ("service", "idle_pool", "prodcons"):
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
        assert e.get("ended_by") == "return", short(e)
        assert e.get("tid") in (job.pid, job.int("W")), short(e)
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
