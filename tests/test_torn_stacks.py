"""Stacks of threads that run while `dump` reads them (issue 11, item 7).

tests/programs/torn_recursers.py runs two threads that recurse to a random depth and return,
nonstop, under recurser_entry(), itself under threading's bootstrap frames. A stack read
while its thread pushes and pops frames can come out torn (on <= 3.10 a popped frame object
is freed or reused under the reader). Each stack of a recurser thread is classified:

  complete        no truncated/error marker, the outermost frame is the thread's own entry
                  frame (threading's _bootstrap, 2.7: __bootstrap) with run() and
                  recurser_entry() above it, and everything above recurser_entry() one
                  call chain of it (only down() frames, or only random.py frames);
  marked          `truncated` or `error` set: the reader says the stack is not whole;
  silently wrong  anything else: a stack that never existed, given as if it were whole.

40 reads (`dump PID --json`, a new tracer process each time) per interpreter; the counts are
printed (pytest -s) and silently wrong must be 0.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import interpreter_params

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "programs", "torn_recursers.py")
READS = 40


def short(fn):
    return (fn or "").rsplit(".", 1)[-1]


def base(path):
    return os.path.basename(path or "")


def classify(t):
    """'complete', 'marked' or 'silent' for one recurser thread's JSON stack."""
    if t.get("truncated") or t.get("error"):
        return "marked"
    st = t["stack"]  # innermost first
    if len(st) < 4:
        return "silent"
    outer = st[-1]
    if short(outer["function"]) not in ("_bootstrap", "__bootstrap") or base(outer["file"]) != "threading.py":
        return "silent"
    idx = [i for i, f in enumerate(st) if short(f["function"]) == "recurser_entry"]
    if len(idx) != 1 or short(st[idx[0] + 1]["function"]) != "run":
        return "silent"
    above = st[:idx[0]]
    if not (all(short(f["function"]) == "down" and base(f["file"]) == "torn_recursers.py" for f in above)
            or all(base(f["file"]) == "random.py" for f in above)):
        return "silent"
    return "complete"


def start(reg, python, tmp_path):
    ready = str(tmp_path / "ready")
    p = reg.hanging([python, PROGRAM, ready, "2"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        assert p.poll() is None, "torn_recursers.py exited (%s)" % p.returncode
        assert time.monotonic() < deadline, "torn_recursers.py did not start"
        time.sleep(0.02)
    time.sleep(0.3)  # both recursers running
    return p


@pytest.mark.parametrize("python", interpreter_params())
def test_running_threads_stacks_whole_or_marked(reg, binary, python, tmp_path):
    p = start(reg, python, tmp_path)
    counts = {"complete": 0, "marked": 0, "silent": 0}
    wrong = []
    for _ in range(READS):
        out = subprocess.run([binary, "dump", str(p.pid), "--json"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        rec = [t for t in d["threads"] if (t.get("name") or "").startswith("recurser-")]
        assert len(rec) == 2, "want the two recurser threads: %r" % d["threads"]
        for t in rec:
            k = classify(t)
            counts[k] += 1
            if k == "silent" and len(wrong) < 3:
                wrong.append([(f["function"], base(f["file"]), f["line"]) for f in t["stack"]])
        main = [t for t in d["threads"] if t.get("name") == "MainThread"]
        assert len(main) == 1 and main[0]["stack"] and \
            main[0]["stack"][-1]["function"] == "<module>", "main thread: %r" % main
    print("\ntorn stacks %s: %d reads of 2 running threads: complete %d, marked %d, "
          "silently wrong %d" % ("%s %s" % (d.get("python"), python), READS, counts["complete"],
                                 counts["marked"], counts["silent"]))
    assert counts["silent"] == 0, "silently wrong stacks (unmarked, not whole): %r" % wrong
