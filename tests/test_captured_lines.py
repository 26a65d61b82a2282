"""Every kernel-captured frame has its line, or says why not (issue 11, item 3).

The BPF stack walker copies the first 512 bytes of each frame's line table. Functions with
longer tables (3.11+ location tables take ~5 bytes per instruction: asyncio's
BaseEventLoop._run_once is 659-775 bytes) had "line": null and no error (3.10+), or a wrong
line, the last one the copy reached (2.7-3.9 lnotab).

Per interpreter, the tracer runs (`-- PYTHON PROGRAM`) a set of programs whose events carry
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
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import interpreter_params

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


def run_traced(reg, binary, python, argv, timeout=90):
    p = reg.popen([binary, "--json", "--", python] + argv, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout)
    evs = []
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            evs.append(json.loads(line))
        except ValueError:
            pass  # the program's own output shares stdout
    return evs, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


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


@pytest.mark.parametrize("python", interpreter_params())
def test_captured_frames_have_their_lines(reg, binary, python, tmp_path):
    src, marks = long_tables_source()
    prog = str(tmp_path / "long_tables.py")
    with open(prog, "w") as f:
        f.write(src)
    version = subprocess.check_output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).decode().strip()
    runs = [("long_tables.py", [prog]),
            ("trace_reaper.py", [os.path.join(PROGRAMS, "trace_reaper.py")]),
            ("trace_sigchld.py", [os.path.join(PROGRAMS, "trace_sigchld.py"), str(tmp_path / "sigchld.json")])]
    if version != "2.7":
        runs.append(("field_asyncio_fastwatcher.py", [os.path.join(PROGRAMS, "field_asyncio_fastwatcher.py")]))
    total = lined = readable = readable_lined = 0
    problems, gone = [], []
    by_prog = {}
    for name, argv in runs:
        evs, out, err = run_traced(reg, binary, python, argv)
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
        assert n_stacks, "%s: no captured stack at all\nstdout: %s\nstderr: %s" % (name, out[-2000:], err[-2000:])

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
