"""The one-sentence summary names the frame that performed the action, even in library code,
then the program's frame that led there (issue 11, item 4).

  * field_asyncio_fastwatcher.py (3.6+): asyncio's FastChildWatcher reaps, with
    waitpid(-1), the child a thread waits for through subprocess.run. The summary must name
    _do_waitpid_all at its waitpid(-1) call in that interpreter's asyncio/unix_events.py
    (found by reading its source), run by the event loop started at the program's
    run_until_complete line.
  * a framework-like SIGCHLD handler (2.7+): a package under a site-packages directory
    installs a Python SIGCHLD handler that reaps every child (waitpid(-1, WNOHANG)); the
    program's worker thread then waits for its child in vain. The summary must name the
    handler at its waitpid line in the package, then the program frame it interrupted.
Before, both named only the program's frame (the run_until_complete line, the sleep line).
One tracer runs both programs under every interpreter (harness/session.py).
"""
import os
import subprocess

import pytest

import conftest
from harness import check_stream
from harness.session import Job, run_session

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
FIELD = os.path.join(HERE, "programs", "field_asyncio_fastwatcher.py")

MINIFW = '''"""A framework that supervises its children (test package)."""
import os
import signal


class Supervisor(object):
    def __init__(self):
        self.exited = []

    def install(self):
        signal.signal(signal.SIGCHLD, self._on_sigchld)

    def _on_sigchld(self, signum, frame):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)  # REAP-HERE
            except OSError:
                return
            if pid == 0:
                return
            self.exited.append((pid, status))
'''

APP = '''import os, subprocess, sys, threading, time
sys.path.insert(0, sys.argv[1])
import minifw

result = []
sup = minifw.Supervisor()


ready = threading.Event()


def worker():
    ready.wait(10)
    time.sleep(0.1)
    p = subprocess.Popen(["sh", "-c", "exit 7"])
    deadline = time.time() + 5
    while not sup.exited and time.time() < deadline:  # the handler reaps it first
        time.sleep(0.05)
    result.append(p.wait())


def main():
    sup.install()
    t = threading.Thread(target=worker)
    t.start()
    ready.set()
    deadline = time.time() + 2
    while time.time() < deadline:  # LOOP-HERE
        time.sleep(0.05)  # SLEEP-HERE
    t.join()
    sys.stdout.write("rc %d\\n" % result[0])


main()
'''


def marker(text, name):
    for i, line in enumerate(text.splitlines()):
        if "# %s-HERE" % name in line:
            return i + 1
    raise AssertionError("no %s marker" % name)


def lost_of(session, key):
    """The reaped_elsewhere events of one job's process."""
    job = session[key]
    lost = [e for e in session.events(job, "child_status_lost") if e.get("cause") == "reaped_elsewhere"]
    assert lost, "no reaped_elsewhere event%s" % job.describe()
    return lost


@pytest.fixture(scope="module")
def summaries_session(binary, tmp_path_factory):
    """ONE tracer (`--json -- sh -c ...`, harness/session.py) runs both programs under every
    interpreter, two interpreters at a time; events are read by pid."""
    d = tmp_path_factory.mktemp("summaries")
    site = d / "venv" / "lib" / "site-packages"
    (site / "minifw").mkdir(parents=True)
    (site / "minifw" / "__init__.py").write_text(MINIFW)
    app = d / "app.py"
    app.write_text(APP)
    per_py = []
    for label, python, version in conftest.INTERPRETERS:
        jobs = [Job((python, "framework"), python, str(app), [str(site)], str(d), report=False)]
        if tuple(int(x) for x in version.split(".")[:2]) >= (3, 6):
            jobs.append(Job((python, "asyncio"), python, FIELD, [], str(d), report=False))
        per_py.append(jobs)
    batches = [sum(per_py[i:i + 2], []) for i in range(0, len(per_py), 2)]
    return run_session(binary, str(d), "summaries", batches, [], limit=TEST_DEADLINE_S - 60)


def test_summaries_session_stream(summaries_session):
    check_stream(summaries_session.tracer)
    assert summaries_session.rc == 0, "tracer exit status %r%s" % (
        summaries_session.rc, summaries_session.tracer.describe())


def version_of(python):
    out = subprocess.check_output([python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"])
    return tuple(int(x) for x in out.split())


def test_summary_names_asyncio_child_watcher(summaries_session, python):
    version = version_of(python)
    if version < (3, 6):
        pytest.skip("asyncio (FastChildWatcher) exists on 3.4-3.13 only")
    # the waitpid(-1) call site in this interpreter's asyncio, from its source
    src = subprocess.check_output([python, "-c", (
        "import asyncio.unix_events as u, inspect, sys\n"
        "lines, first = inspect.getsourcelines(u.FastChildWatcher._do_waitpid_all)\n"
        "sys.stdout.write('%d' % [first + i for i, l in enumerate(lines) if 'waitpid(-1' in l][0])\n")],
        stderr=subprocess.DEVNULL).decode().strip()
    call_line = int(src)
    run_line = marker(open(FIELD).read(), "RUN")
    lost = lost_of(summaries_session, (python, "asyncio"))
    s = lost[0]["summary"]
    qual = "FastChildWatcher._do_waitpid_all" if version >= (3, 11) else "_do_waitpid_all"
    want = ("reaped it in asyncio's %s (unix_events.py:%d), run by the event loop started at "
            "field_asyncio_fastwatcher.py:%d" % (qual, call_line, run_line))
    assert want in s, "summary %r\n  should contain %r" % (s, want)


def test_summary_names_framework_sigchld_handler(summaries_session, python):
    lost = lost_of(summaries_session, (python, "framework"))
    s = lost[0]["summary"]
    handler = "Supervisor._on_sigchld" if version_of(python) >= (3, 11) else "_on_sigchld"
    # the handler runs where the main thread was interrupted: in its sleep, or (the sleep
    # over) at the loop's test
    wants = ["reaped it in minifw's %s (__init__.py:%d), reached from app.py:%d in main()"
             % (handler, marker(MINIFW, "REAP"), marker(APP, where)) for where in ("SLEEP", "LOOP")]
    assert any(w in s for w in wants), "summary %r\n  should contain one of %r" % (s, wants)
