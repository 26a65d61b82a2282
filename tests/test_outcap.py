"""Output size (issue 12): every event is valid JSON on its own line, whatever its content.

* Ordinary Python, run by an unprivileged attacker (user nobody): 10 threads, each 2,000
  frames deep in a function with a 4 KiB name defined in a file with a 4 KiB name, blocked
  on a lock. Before: one long_wait record passed the 64 MiB output buffer, was cut without
  a newline and the next events were glued onto it (one invalid 134 MB line). Now each
  record is capped before it is written (--max-frames, --max-threads, --max-event-bytes,
  default 16M): outer frames are left out, the cut is marked on the thread (truncated,
  error), and the innermost frames are kept.
* The output file's file system fills up in the middle of such a record (ENOSPC): the cut
  record stays cut, but the next events, once there is room again, start on a new line:
  one bad line at most, holding one record, never two glued together.
The tracer runs host-wide, started without a terminal; normal and ASan builds.
"""
import json
import os
import subprocess
import time


from conftest import NOBODY, SYSTEM_PYTHON
from harness import read_line
from harness import Tracer

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
ROOT = os.path.dirname(HERE)
BIG = os.path.join(PROGRAMS, "big_stacks.py")
VICTIM = os.path.join(PROGRAMS, "rl_victim.py")
THREADS, DEPTH, NAME_LEN = 10, 2000, 4096
MAX_EVENT_BYTES = 16 << 20  # the documented default


TEST_DEADLINE_S = 180   # per test (harness/fixtures.py: the deadline fixture)


def memory_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def start_attacker(reg):
    p = reg.hanging(NOBODY + [SYSTEM_PYTHON, BIG, str(THREADS), str(DEPTH), str(NAME_LEN)],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    return p, int(read_line(p, 60, "attacker ready").split()[1])


def test_deep_stacks_with_long_names_stay_valid_json(reg, tool):
    tr = Tracer(reg, tool, ["--json", "-q", "-t", "1"])
    tr.wait_start()
    att, apid = start_attacker(reg)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and \
            len([e for e in tr.select("long_wait", pid=apid) if e["tid"] != apid]) < THREADS:
        time.sleep(0.2)
    att.stdin.write(b"go\n")
    assert read_line(att, 30, "attacker released") == "released"
    # one more event after the big ones: it must be a line of its own
    tr.wait_for(lambda e: e.get("event") == "wait_end" and e.get("pid") == apid, 30, "wait_end")
    mem = memory_kib(tr.proc.pid)
    assert tr.stop(timeout=60) == 0, tr.describe()
    att.stdin.write(b"exit\n")
    print("\ntracer memory after the records: %r KiB" % mem)
    assert not tr.bad, "lines that are not JSON: %d, the first %d bytes long" % (len(tr.bad), len(tr.bad[0]))
    # the deep threads' own long_waits (the main thread may wait on their start too)
    waits = [e for e in tr.select("long_wait", pid=apid) if e["tid"] != apid]
    assert len(waits) >= THREADS, tr.describe()
    longest = max(len(l.encode("utf-8")) for l in tr.lines)
    assert longest <= MAX_EVENT_BYTES, longest
    print("longest line %d bytes" % longest)
    name = "f" * NAME_LEN
    # the first long_wait of a read carries every thread; the others of the same read their
    # own (threads_same_as_tid: see test_many_waiters.py)
    assert any("threads_same_as_tid" not in e for e in waits), "no long_wait with every thread"
    for e in waits:
        shared = "threads_same_as_tid" in e
        deep = [t for t in e["threads"] if t["stack"] and t["stack"][0]["function"] == name]
        assert len(deep) == (1 if shared else THREADS), (e["tid"], e.get("thread_list_error"), [
            (t["tid"], len(t["stack"]), t["stack"][:1], t.get("error")) for t in e["threads"]])
        for t in deep:
            # the innermost frames are kept; the cut is said where it is
            assert t["stack"][0]["line"] == 5, t["stack"][0]
            if shared and not t.get("truncated"):
                # one thread alone may fit whole: then every frame, down to the thread's start
                assert len(t["stack"]) > DEPTH, len(t["stack"])
                assert t["stack"][-1]["function"].endswith("_bootstrap"), t["stack"][-1]
                continue
            assert all(f["function"] == name for f in t["stack"]), t["stack"][-1]
            assert t["truncated"] is True and "outer frames of" in t["error"] and \
                "not written" in t["error"], t.get("error")
            assert 1 <= len(t["stack"]) < DEPTH, len(t["stack"])
    assert tr.select("stop")


def test_partial_write_then_next_event_on_a_new_line(reg, tool, tmp_path):
    mnt = str(tmp_path / "small")
    os.mkdir(mnt)
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt])
    try:
        out = os.path.join(mnt, "events.jsonl")
        # records of 256 KiB at most: there is room for all of them once the filler goes
        tr = Tracer(reg, tool, ["--json", "-q", "-t", "1", "--max-event-bytes", "256K", "-o", out])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (os.path.exists(out) and os.path.getsize(out)):
            time.sleep(0.1)
        assert os.path.getsize(out) > 0, tr.describe()
        # leave 64 KiB free: a long_wait of the attacker is megabytes
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (free - (64 << 10)))
        att, apid = start_attacker(reg)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"writing output failed" not in tr.stderr().encode():
            time.sleep(0.2)
        assert "No space left on device" in tr.stderr(), tr.describe()
        time.sleep(3)  # the other threads' long_waits (and the hang) fail too
        att.stdin.write(b"go\n")
        assert read_line(att, 30, "attacker released") == "released"
        os.unlink(filler)
        assert os.statvfs(mnt).f_bavail * st.f_frsize > (6 << 20)
        time.sleep(1.5)  # the attacker's wait_ends go out (there is room again)
        victim = reg.hanging([SYSTEM_PYTHON, VICTIM], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           bufsize=0)
        vpid = int(read_line(victim, 20, "victim pid").split()[1])
        time.sleep(0.5)
        victim.stdin.write(b"go\n")
        read_line(victim, 20, "victim child")
        time.sleep(1.0)
        assert tr.stop(timeout=60) == 0, tr.describe()
        victim.stdin.write(b"exit\n")
        att.stdin.write(b"exit\n")
        with open(out, "rb") as f:
            lines = f.read().split(b"\n")
    finally:
        subprocess.call(["umount", "-l", mnt])
    assert lines[-1] == b"", "the file does not end with a newline"
    good, bad = [], []
    for l in lines[:-1]:
        try:
            good.append(json.loads(l))
        except ValueError:
            bad.append(l)
    print("\n%d records, %d cut: %r" % (len(good), len(bad), [len(b) for b in bad]))
    assert len(bad) <= 1, [b[:100] for b in bad]
    for b in bad:
        assert b.count(b'{"event":') == 1, "records glued onto the cut one: %r" % b[-300:]
    kinds = [(e["event"], e.get("pid")) for e in good]
    assert kinds[0][0] == "start" and kinds[-1][0] == "stop", kinds[-5:]
    assert ("sigchld_ignored", vpid) in kinds and ("child_status_lost", vpid) in kinds, kinds[-8:]
