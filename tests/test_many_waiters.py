"""Many threads waiting at once in one process (a pool of hundreds of idle workers, or a
stuck process with a thousand blocked threads): the output grows with the number of waits,
not waits x threads, and the tracer still stops at once when asked.

Found by running `make test` beside other work (issue 11): one process with 1,000 threads,
each 20 frames deep, gave 1,000 `long_wait` events of 5.3 MB each (every one carried every
thread): 5.3 GB written, and the tracer needed 164 s to stop after SIGTERM. Now the first
long_wait of a read of the process carries every thread, the next ones of the same read
carry their own thread and the chain of holders it waits for, with `threads_same_as_tid`
naming where the rest is; and work still queued 3 s after SIGINT/SIGTERM is left undone
(counted in the stop event's `lost.unread_at_stop`).

The tracer writes to a file (-o): the old behaviour would have put gigabytes in a pipe.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from harness import BINARY, INTERPRETERS, PROGRAMS, SYSTEM_PYTHON

PROG = os.path.join(PROGRAMS, "waitfor_bench_threads.py")
TEST_DEADLINE_S = 240


def events_of(path):
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    out.append(json.loads(line))
    except OSError:
        pass
    return out


def start_pool(reg, python, tmp_path, threads, depth):
    ready = str(tmp_path / "ready")
    p = reg.hanging([python, PROG, ready, str(threads), str(depth)])
    deadline = time.monotonic() + 120
    while not os.path.exists(ready):
        assert p.poll() is None, "the program exited with %s" % p.returncode
        assert time.monotonic() < deadline, "the program did not start its threads"
        time.sleep(0.05)
    return p


def stop(tr, timeout):
    """SIGTERM; the seconds it took the tracer to exit (rc 0)."""
    t0 = time.monotonic()
    tr.send_signal(signal.SIGTERM)
    try:
        rc = tr.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the tracer did not exit within %d s of SIGTERM" % timeout)
    assert rc == 0, rc
    return time.monotonic() - t0


def pythons():
    """The oldest and the newest interpreter, and Debian's static build."""
    def key(item):
        return tuple(int(x) for x in item[2].split(".")[:3] if x.isdigit())
    found = sorted(INTERPRETERS, key=key)
    picked = []
    for label, path, _ in (found[:1] + found[-1:] + [i for i in found if i[1] == SYSTEM_PYTHON]):
        if path not in [p.values[0] for p in picked]:
            picked.append(pytest.param(path, id=label))
    return picked


@pytest.mark.parametrize("python", pythons())
def test_waits_of_one_read_do_not_repeat_every_thread(reg, tmp_path, python):
    threads = 300
    pool = start_pool(reg, python, tmp_path, threads, 3)
    out = str(tmp_path / "events.jsonl")
    tr = reg.popen([BINARY, "--json", "-q", "-t", "1", "-o", out, "-p", str(pool.pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while sum(e["event"] == "long_wait" for e in events_of(out)) < threads:
        assert tr.poll() is None, "tracer exited %s" % tr.returncode
        assert time.monotonic() < deadline, "not every thread's long_wait came in 90 s"
        time.sleep(0.2)
    stop(tr, 20)
    evs = events_of(out)
    waits = [e for e in evs if e["event"] == "long_wait"]
    full = {}      # tid -> the long_wait that carried every thread
    written = 0
    for e in waits:
        assert "threads" in e, e.get("threads_error")
        written += len(e["threads"])
        same = e.get("threads_same_as_tid")
        if same is None:
            assert len(e["threads"]) == threads + 1, (len(e["threads"]), e.get("thread_list_error"))
            full[e["tid"]] = e
            continue
        # the rest of this read is in an EARLIER long_wait of the same process
        assert same in full and full[same]["pid"] == e["pid"], (same, sorted(full))
        tids = [t["tid"] for t in e["threads"]]
        assert e["tid"] in tids and len(tids) <= 16, tids
        assert "not repeated" in e["thread_list_error"], e["thread_list_error"]
        mine = [t for t in e["threads"] if t["tid"] == e["tid"]][0]
        want = "<module>" if mine["name"] == "MainThread" else "descend"
        assert any(f["function"] == want for f in mine["stack"]), mine["stack"][:3]
        assert mine["waiting_for"]["kind"] == "Lock", mine.get("waiting_for")
    # each read of the process is written in full once: the long waits of one scan share
    # it (before: threads x waits = 90,000 thread records for 300 waits)
    assert len(full) <= 10, len(full)
    assert written <= len(full) * (threads + 1) + 16 * len(waits), written
    stop_ev = evs[-1]
    assert stop_ev["event"] == "stop" and stop_ev["lost"]["unread_at_stop"] == 0, stop_ev


def test_stops_at_once_while_a_thousand_waits_are_reported(reg, tmp_path):
    """1,000 threads 20 frames deep (20,000 held locks), host-wide; SIGTERM as the long
    waits come in: the tracer ends within seconds (it took 164 s before)."""
    pool = start_pool(reg, SYSTEM_PYTHON, tmp_path, 1000, 20)
    out = str(tmp_path / "events.jsonl")
    tr = reg.popen([BINARY, "--json", "-q", "-t", "1", "-o", out],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not any(e["event"] == "long_wait" and e["pid"] == pool.pid for e in events_of(out)):
        assert tr.poll() is None, "tracer exited %s" % tr.returncode
        assert time.monotonic() < deadline, "no long_wait of the pool in 90 s"
        time.sleep(0.1)
    took = stop(tr, 15)
    evs = events_of(out)
    assert evs[-1]["event"] == "stop", [e["event"] for e in evs[-3:]]
    assert "unread_at_stop" in evs[-1]["lost"], evs[-1]
    size = os.path.getsize(out)
    print("\nstopped %.2f s after SIGTERM; %d events, %.1f MB written" % (took, len(evs), size / 1e6))
    # a read of the pool is ~5 MB; without the sharing every one of the 1,000 waits wrote one
    assert size < 400e6, size
