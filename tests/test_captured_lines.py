"""Every kernel-captured frame has its line, or says why not (issue 11, item 3).

The BPF stack walker copies the first 512 bytes of each frame's line table. Functions with
longer tables (3.11+ location tables take ~5 bytes per instruction: asyncio's
BaseEventLoop._run_once is 659-775 bytes) had "line": null and no error (3.10+), or a wrong
line, the last one the copy reached (2.7-3.9 lnotab).

One tracer runs (`-- sh -c ...`, harness/session.py), per interpreter, a set of programs whose events carry
captured stacks (child_status_lost: `stack`, `reaper.stack`, `ignored_since.stack`;
sigchld_ignored: `stack`):
  * long_tables.py, written by this test: a reaper thread and a waiter and a SIGCHLD
    ignorer, each at the end of a function whose line table is longer than 512 bytes on
    every version (the program checks that and says so);
  * trace_reaper.py and trace_sigchld.py (the tracer's own test programs);
  * field_asyncio_fastwatcher.py (3.6+: asyncio's FastChildWatcher steals a status).
It prints the share of captured frames with a line, and asserts: every frame has a line or
an `error`; every frame whose code object is readable (error not "... code object is
gone") has its line; and the lines at the marked places are the right ones.
"""
import os
import re

import pytest

import conftest
from harness import check_stream
from harness.session import Job, run_session

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
GONE = "code object is gone"
FILLER = 300  # statements per long function: > 512 bytes of line table on 2.7-3.13


def long_tables_source():
    """The program, and the line of each marker."""
    body = ["    x += %d" % (i % 7) for i in range(FILLER)]
    src = ["import os, signal, subprocess, sys, threading, time",
           "",
           "def table_len(f):",
           "    c = getattr(f, '__code__', None) or f.func_code",
           "    return len(getattr(c, 'co_linetable', None) or c.co_lnotab)",
           "",
           "def long_reaper(started, stop, reaped):",
           "    x = 0"] + body + [
           "    started.set()",
           "    while not stop.is_set():",
           "        try:",
           "            pid, status = os.waitpid(-1, 0)  # REAP-HERE",
           "        except OSError:",
           "            time.sleep(0.01)",
           "            continue",
           "        reaped.append((pid, status))",
           "",
           "def long_waiter():",
           "    x = 0"] + body + [
           "    p = subprocess.Popen(['sh', '-c', 'exit 5'])",
           "    time.sleep(0.5)",
           "    return p.wait()  # WAIT-HERE",
           "",
           "def long_ignorer():",
           "    x = 0"] + body + [
           "    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # IGNORE-HERE",
           "    p = subprocess.Popen(['sh', '-c', 'exit 3'])",
           "    time.sleep(0.3)",
           "    return p.wait()  # WAIT2-HERE",
           "",
           "def main():",
           "    for f in (long_reaper, long_waiter, long_ignorer):",
           "        sys.stdout.write('table %s %d\\n' % (f.__name__, table_len(f)))",
           "    started, stop, reaped = threading.Event(), threading.Event(), []",
           "    t = threading.Thread(target=long_reaper, args=(started, stop, reaped))",
           "    t.daemon = True",
           "    t.start()",
           "    started.wait(10)",
           "    sys.stdout.write('rc %d\\n' % long_waiter())",
           "    stop.set()",
           "    t.join(5)",
           "    sys.stdout.write('rc %d\\n' % long_ignorer())",
           "    sys.stdout.flush()",
           "",
           "main()  # MAIN-HERE",
           ""]
    marks = {}
    for i, line in enumerate(src):
        m = re.search(r"# (\w+)-HERE", line)
        if m:
            marks[m.group(1)] = i + 1
    return "\n".join(src), marks


def captured_stacks(evs):
    """(event, key, stack) for every captured stack in the events."""
    for e in evs:
        if e.get("event") == "child_status_lost":
            for key, st in (("stack", e.get("stack")),
                            ("reaper.stack", (e.get("reaper") or {}).get("stack")),
                            ("ignored_since.stack", (e.get("ignored_since") or {}).get("stack"))):
                if st:
                    yield e, key, st
        elif e.get("event") == "sigchld_ignored" and e.get("stack"):
            yield e, "stack", e["stack"]


def base(f):
    return os.path.basename(f.get("file") or "")


@pytest.fixture(scope="module")
def lines_session(binary, tmp_path_factory):
    """ONE tracer (`--json -- sh -c ...`) runs every interpreter's programs, one
    interpreter's at a time (harness/session.py); each program's output goes to a file of
    its own, its events are read by pid."""
    d = str(tmp_path_factory.mktemp("captured_lines"))
    src, marks = long_tables_source()
    prog = os.path.join(d, "long_tables.py")
    with open(prog, "w") as f:
        f.write(src)
    batches = []
    for label, python, version in conftest.INTERPRETERS:
        batch = [Job((python, "long_tables.py"), python, prog, [], d, report=False),
                 Job((python, "trace_reaper.py"), python, os.path.join(PROGRAMS, "trace_reaper.py"), [], d,
                     report=False),
                 Job((python, "trace_sigchld.py"), python, os.path.join(PROGRAMS, "trace_sigchld.py"), [], d)]
        if not version.startswith("2.7"):
            batch.append(Job((python, "field_asyncio_fastwatcher.py"), python,
                             os.path.join(PROGRAMS, "field_asyncio_fastwatcher.py"), [], d, report=False))
        batches.append(batch)
    s = run_session(binary, d, "captured_lines", batches, [], limit=TEST_DEADLINE_S - 60)
    s.marks = marks
    return s


def test_captured_lines_session_stream(lines_session):
    check_stream(lines_session.tracer)
    assert lines_session.rc == 0, "tracer exit status %r%s" % (lines_session.rc, lines_session.tracer.describe())


def test_captured_frames_have_their_lines(lines_session, python):
    s, marks = lines_session, lines_session.marks
    version = [v for _, p, v in conftest.INTERPRETERS if p == python][0]
    version = ".".join(version.split(".")[:2])
    runs = ["long_tables.py", "trace_reaper.py", "trace_sigchld.py"]
    if version != "2.7":
        runs.append("field_asyncio_fastwatcher.py")
    total = lined = readable = readable_lined = 0
    problems, gone = [], []
    by_prog = {}
    for name in runs:
        job = s[(python, name)]
        evs, out = s.events(job), job.output()
        by_prog[name] = (evs, out)
        n_stacks = 0
        for e, key, st in captured_stacks(evs):
            n_stacks += 1
            for fr in st:
                total += 1
                has_line = isinstance(fr.get("line"), int)
                lined += has_line
                if not has_line and not fr.get("error"):
                    problems.append("%s %s %s: frame without line nor error: %r" % (name, e["event"], key, fr))
                if GONE in (fr.get("error") or ""):
                    gone.append("%s %s %s %s" % (name, e["event"], key, fr["function"]))
                    continue
                readable += 1
                readable_lined += has_line
                if not has_line:
                    problems.append("%s %s %s: readable frame without its line: %r" % (name, e["event"], key, fr))
        assert n_stacks, "%s: no captured stack at all%s" % (name, job.describe())

    # the long functions really have tables longer than what the kernel copies
    evs, out = by_prog["long_tables.py"]
    tables = dict((m.group(1), int(m.group(2))) for m in re.finditer(r"table (\w+) (\d+)", out))
    assert len(tables) == 3 and min(tables.values()) > 512, "line tables not long enough: %r" % tables

    # and the lines at the marked places are the right ones
    def frame_of(st, function):
        fs = [f for f in st if (f.get("function") or "").rsplit(".", 1)[-1] == function
              and base(f) == "long_tables.py"]
        return fs[0] if fs else None

    lost = [e for e in evs if e.get("event") == "child_status_lost"]
    stolen = [e for e in lost if e.get("cause") == "reaped_elsewhere"]
    assert stolen, "long_tables.py: no reaped_elsewhere event: %r" % lost
    f = frame_of(stolen[0]["reaper"]["stack"], "long_reaper")
    assert f and f["line"] == marks["REAP"], "reaper frame %r, want line %d" % (f, marks["REAP"])
    f = frame_of(stolen[0]["stack"], "long_waiter")
    assert f and f["line"] == marks["WAIT"], "waiter frame %r, want line %d" % (f, marks["WAIT"])
    ign = [e for e in evs if e.get("event") == "sigchld_ignored" and e.get("action") == "SIG_IGN"]
    assert ign, "long_tables.py: no sigchld_ignored"
    f = frame_of(ign[0]["stack"], "long_ignorer")
    assert f and f["line"] == marks["IGNORE"], "ignorer frame %r, want line %d" % (f, marks["IGNORE"])
    if version != "2.7":
        evs, out = by_prog["field_asyncio_fastwatcher.py"]
        ff = [e for e in evs if e.get("event") == "child_status_lost" and e.get("reaper")]
        assert ff, "field program: no reaped_elsewhere event"
        st = ff[0]["reaper"]["stack"]
        ro = [f for f in st if (f.get("function") or "").endswith("_run_once")]
        assert ro and ro[0]["line"] is not None, "BaseEventLoop._run_once without its line: %r" % st

    print("\ncaptured frames %s: %d, with a line %d (%.1f%%); code object readable %d, with a "
          "line %d (%.1f%%)" % (version, total, lined, 100.0 * lined / max(total, 1), readable,
                                readable_lined, 100.0 * readable_lined / max(readable, 1)))
    if gone:
        print("  code object gone: %s" % "; ".join(gone))
    assert not problems, "\n".join(problems[:10])
