"""The suite-wide fixtures tests/conftest.py installs: the per-test deadline, and the suite
tracer.

Deadline: every test runs under alarm_guard(TEST_DEADLINE_S) (a module may set its own
`TEST_DEADLINE_S = N`; default DEFAULT_DEADLINE_S), so no bug can hang the suite.

Suite tracer (issue 14): ONE host-wide `pyhang-trace --json -t 1 -o FILE` runs from the first
test to the last.  Every `hang` it reports must come from a process that a test made hang on
purpose (Registry.popen(..., hangs=True) or mark_hanging(pid): harness/procs.py).  A `hang`
of one of the suite's processes that nobody marked fails the session (an error at the
teardown of the last test) with the hang's summary.  Processes of other users of the host
(other test suites running at the same time) are not ours and only counted, and so is
pytest's own process (its threads wait for its GIL: that is no program under test).

A process is ours when, at the time its `hang` is read (the file is tailed every 0.1 s,
while the process still hangs), pytest is among its ancestors, or, whatever happened since, when a frame of its stacks is a file of this tests
directory or of this session's pytest temporary directory.  It hangs on purpose when its pid
or its session was marked, or a marked process is among its ancestors.

PYHANG_SUITE_TRACER=0 turns the suite tracer off (e.g. a second run of some files under ASan).
"""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from . import procs
from .procs import alarm_guard, session_of
from .pythons import BINARY, TESTS

DEFAULT_DEADLINE_S = 150


@pytest.fixture(autouse=True)
def _test_deadline(request):
    """No test runs longer than its module's TEST_DEADLINE_S (default 150 s)."""
    seconds = getattr(request.module, "TEST_DEADLINE_S", DEFAULT_DEADLINE_S)
    with alarm_guard(seconds, request.node.name):
        yield


def _ancestors(pid, limit=64):
    """[pid, parent, grandparent, ...] while they exist."""
    out = []
    while pid > 1 and len(out) < limit:
        out.append(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            pid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


class SuiteTracer(object):
    """The host-wide tracer of the whole session and the verdict on its `hang` events."""

    START_TIMEOUT = 30.0

    def __init__(self, binary, workdir):
        self.path = os.path.join(workdir, "suite-tracer.jsonl")
        self.roots = (TESTS + os.sep, str(workdir).rstrip(os.sep).rsplit(os.sep, 1)[0] + os.sep)
        self.err = tempfile.TemporaryFile()
        self.hangs = []          # (event, facts read when it was read)
        self.events = 0
        self.started = False
        self.stop_seen = False
        self.offset = 0
        self.partial = b""
        self.lock = threading.Lock()
        self.done = threading.Event()
        open(self.path, "w").close()
        # stacks capped (innermost frames kept): the host's long waits fill the file fast
        self.proc = subprocess.Popen([binary, "--json", "-q", "-t", "1", "--max-threads", "64",
                                      "--max-frames", "64", "-o", self.path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + self.START_TIMEOUT
        while not self.started:
            self._poll()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("suite tracer did not start (exit status %s): %s"
                                     % (self.proc.poll(), self.stderr()))
            time.sleep(0.05)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")[-2000:]

    def _facts(self, ev):
        pid = ev.get("pid")
        chain = _ancestors(pid) if isinstance(pid, int) else []
        return {"sid": session_of(pid) if isinstance(pid, int) else None, "ancestors": chain,
                "pytest_child": os.getpid() in chain, "read_at": time.time()}

    def _poll(self):
        with self.lock:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read()
            except OSError:
                return
            self.offset += len(data)
            data = self.partial + data
            lines = data.split(b"\n")
            self.partial = lines.pop()
            for line in lines:
                # only start, stop and hang matter: skip the rest (long_waits of the whole
                # host, megabytes a minute) without parsing them
                if b'"event":"hang"' not in line and b'"event":"st' not in line:
                    self.events += 1
                    continue
                try:
                    ev = json.loads(line.decode("utf-8", "replace"))
                except ValueError:
                    continue
                if not isinstance(ev, dict):
                    continue
                self.events += 1
                kind = ev.get("event")
                if kind == "start":
                    self.started = True
                elif kind == "stop":
                    self.stop_seen = True
                elif kind == "hang":
                    self.hangs.append((ev, self._facts(ev)))

    def _run(self):
        next_scan = 0.0
        while not self.done.wait(0.1):
            # every live process of a marked session, recorded while it lives: a test may
            # kill its program (or the program end) before this thread has read its hang
            # (the tracer writes it ~1 s into the wait; this thread can lag under load),
            # and then its session and ancestry are gone
            if time.monotonic() >= next_scan:
                procs.remember_hanging_members()
                next_scan = time.monotonic() + 0.5
            self._poll()

    def stop(self):
        """SIGINT, wait, read the rest; returns the exit status (None: it had to be killed)."""
        self.done.set()
        self.thread.join(5)
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            procs.kill_group(self.proc)
        self._poll()
        return rc

    # ---------------------------------------------------------------- the verdict

    def _frames_ours(self, ev):
        for t in ev.get("threads") or []:
            for fr in t.get("stack") or []:
                f = fr.get("file") if isinstance(fr, dict) else None
                if isinstance(f, str) and f.startswith(self.roots):
                    return True
        return False

    def classify(self):
        """(expected, unexplained, others): hang events split by whose they are."""
        expected, unexplained, others = [], [], []
        for ev, facts in self.hangs:
            pid, sid = ev.get("pid"), facts["sid"]
            if pid == os.getpid():
                # pytest itself (e.g. the tail thread waiting for the GIL that a test's
                # heavy Python holds): the runner, not a program under test
                others.append(ev)
                continue
            on_purpose = (pid in procs.HANGING_PIDS or sid in procs.HANGING
                          or any(a in procs.HANGING for a in facts["ancestors"]))
            # not by STARTED pids: over a long run other suites' processes reuse them
            ours = facts["pytest_child"] or self._frames_ours(ev)
            if not on_purpose and ours:
                ev["_facts"] = facts
            (expected if on_purpose else unexplained if ours else others).append(ev)
        return expected, unexplained, others


def describe_hang(ev):
    d = ev.get("diagnosis") or {}
    f = ev.get("_facts")
    how = ""
    if f:  # what the verdict knew: an unexplained hang read late has no session left
        how = " [read %.1f s after it was written; session %s, ancestors %s, marked pids %d]" % (
            f["read_at"] - _event_time(ev), f["sid"], f["ancestors"][:4], len(procs.HANGING_PIDS))
    return "pid %s (%s) %s%s: %s" % (ev.get("pid"), ev.get("comm"), d.get("code"), how, d.get("summary"))


def _event_time(ev):
    """An event's "time" (ISO 8601 UTC, milliseconds) in seconds since the epoch; 0 unknown."""
    import calendar
    try:
        t = ev["time"]
        return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:-1] or 0)
    except (KeyError, ValueError, TypeError):
        return 0.0


SUMMARY = []   # lines for the terminal summary (conftest.py prints them)


@pytest.fixture(scope="session", autouse=True)
def suite_tracer(tmp_path_factory):
    """The host-wide tracer kept running through the whole session (see the module comment)."""
    if os.environ.get("PYHANG_SUITE_TRACER", "1") == "0" or not os.path.exists(BINARY):
        SUMMARY.append("suite tracer: off (PYHANG_SUITE_TRACER=0 or no %s)" % BINARY)
        yield None
        return
    st = SuiteTracer(BINARY, tmp_path_factory.mktemp("suite-tracer"))
    yield st
    rc = st.stop()
    expected, unexplained, others = st.classify()
    SUMMARY.append("suite tracer: %d events, %d hang: %d from processes made to hang on purpose, "
                   "%d unexplained, %d of other processes on the host (ignored); output %s"
                   % (st.events, len(st.hangs), len(expected), len(unexplained), len(others), st.path))
    for ev in unexplained:
        SUMMARY.append("  UNEXPLAINED hang: " + describe_hang(ev))
    problems = []
    if rc != 0 or not st.stop_seen:
        problems.append("the suite tracer ended badly (exit status %s, stop event %s): %s"
                        % (rc, st.stop_seen, st.stderr()))
    if unexplained:
        problems.append("%d hang(s) of the suite's processes that no test made hang on purpose "
                        "(mark them: Registry.popen(..., hangs=True) or mark_hanging(pid)):\n  %s"
                        % (len(unexplained), "\n  ".join(describe_hang(e) for e in unexplained)))
    assert not problems, "\n".join(problems)
