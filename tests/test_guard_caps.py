"""The CI guard's hang_timeout record obeys the output caps like every other record.

--max-threads and --max-frames say what one output record carries at most; the guard's
JSON record (written by user/tracer/guard.c, not through the event writers) must be cut and
marked the same way: at most N threads with `thread_list_error`, at most N frames per
stack with `truncated`. A real deadlocked interpreter (tests/programs/diag_deadlock.py,
three threads) traced with -p, so the guard exits 124 and leaves the process alone.
"""
import json
import os
import time

from test_guard import GUARD_STATUS, HANG_TIMEOUT, PROGRAMS, PYTHON, THRESHOLD, read_report, run

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)


def test_hang_timeout_record_is_capped(binary, tmp_path, reg):
    report = str(tmp_path / "report")
    p = reg.hanging([PYTHON, os.path.join(PROGRAMS, "diag_deadlock.py"), report])
    deadline = time.monotonic() + 30
    while "joining" not in read_report(report) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "joining" in read_report(report), "diag_deadlock.py did not start"
    r, _ = run(binary, ["-q", "--json", "-p", str(p.pid), "-t", THRESHOLD, "--hang-timeout",
                        str(HANG_TIMEOUT), "--max-threads", "2", "--max-frames", "1"],
               tmp_path, {})
    assert r.returncode == GUARD_STATUS, (r.returncode, r.stderr[-2000:])
    events = [json.loads(l) for l in r.stdout.splitlines()]
    by_kind = {e["event"]: e for e in events}
    assert "hang" in by_kind and "hang_timeout" in by_kind, [e["event"] for e in events]
    for kind in ("hang", "hang_timeout"):
        e = by_kind[kind]
        assert len(e["threads"]) == 2, (kind, len(e["threads"]))
        assert "1 threads of 3 not written" in e.get("thread_list_error", ""), (kind, e)
        for t in e["threads"]:
            assert len(t["stack"]) <= 1, (kind, t)
        assert any(t.get("truncated") for t in e["threads"]), (kind, e["threads"])
