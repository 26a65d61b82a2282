"""valgrind memcheck over real sessions of the plain build (build/pyhang-trace, -O2 -g).

One deadlocked Python process (tests/programs/diag_deadlock.py: every thread blocked on a
lock, before the tracer starts), then, each under
`valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect`:

  * the tracer, `-p PID -p FLOODER -t 0.5 --json --metrics-addr 127.0.0.1:PORT`: it must
    report the waits (long_wait, before_start) and the diagnosis (hang, deadlock)
    and serve /metrics once; then a second process flips SIGCHLD 20000 times
    (tests/programs/vg_sigchld_flood.py), more than a tracer at valgrind speed can read
    through its smallest ring (`--ringbuf-size 64K`: with the default 4 MiB, a loaded
    machine once slowed the flood enough that nothing was dropped, and the test waited for a
    dropped record until its alarm), so records are dropped and sigchld_ignored events come without a stack (not_captured: the
    path that once freed an uninitialised struct); then it must stop cleanly on SIGINT;
  * `dump PID` and `dump PID --json`: every thread's stack.

Each run must come out with the expected output, and valgrind must report no error and no
definite or indirect leak (exit status VG_ERROR if it does; its log is in the message).
valgrind 3.19 misreads one libbpf feature probe (a bpf(2) attr shorter than the whole
union): tests/valgrind.supp suppresses exactly that, and explains why.

Runtime: about 15-25 s (BPF load and the reads run at valgrind speed).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

import conftest
from harness import SYSTEM_PYTHON, Registry, alarm_guard, free_port

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
DEADLOCK = os.path.join(HERE, "programs", "diag_deadlock.py")
FLOOD = os.path.join(HERE, "programs", "vg_sigchld_flood.py")
FLIPS = 20000
SUPP = os.path.join(HERE, "valgrind.supp")
PYTHON = SYSTEM_PYTHON
VG_ERROR = 99
# the plain build only: valgrind cannot run ASan binaries
BINARY = conftest.BINARY if not conftest.BINARY.endswith("-asan") else \
    os.path.join(conftest.ROOT, "build", "pyhang-trace")


def _valgrind(log):
    vg = shutil.which("valgrind")
    assert vg, "valgrind missing: `make deps` installs it"
    return [vg, "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=%d" % VG_ERROR,
            "-s", "--suppressions=" + SUPP, "--log-file=" + log]


def _vg_summary(log):
    with open(log) as f:
        text = f.read()
    # valgrind 3.19 warns once per call about bpf(2) commands it has no wrapper for
    # (BPF_LINK_CREATE, BPF_PROG_BIND_MAP): warnings, not errors; left out of messages
    lines = [l for l in text.splitlines() if "unhandled eBPF command" not in l]
    return text, "\n".join(lines[-80:])


def _check_clean(rc, log, what):
    text, tail = _vg_summary(log)
    assert "ERROR SUMMARY: 0 errors" in text, "%s: valgrind found errors:\n%s" % (what, tail)
    assert "definitely lost:" not in text or "definitely lost: 0 bytes" in text, tail
    assert rc != VG_ERROR, "%s: valgrind exit status %d:\n%s" % (what, rc, tail)
    # the suppression must stay narrow: only the libbpf probe it was written for
    for l in text.splitlines():
        if "used_suppression" in l:
            assert "libbpf-probe-kern-prog-name" in l, l


@pytest.fixture(scope="module")
def deadlocked():
    """A Python process whose threads are all blocked on locks (pid, [tids])."""
    reg = Registry()
    tmp = tempfile.mkdtemp(prefix="pyhang-vg-")
    report = os.path.join(tmp, "report")
    try:
        with alarm_guard(60, "deadlock workload"):
            p = reg.hanging([PYTHON, DEADLOCK, report], stdin=subprocess.DEVNULL)
            words = {}
            while "joining" not in words:
                assert p.poll() is None, "diag_deadlock.py exited %s" % p.returncode
                time.sleep(0.05)
                if os.path.exists(report):
                    with open(report) as f:
                        words = dict((l.split() + [""])[:2] for l in f if l.strip())
            time.sleep(0.3)  # the main thread gets into join()
        yield int(words["pid"]), [int(words["A"]), int(words["B"])], tmp
    finally:
        reg.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_valgrind_trace_session(deadlocked):
    assert os.path.exists(BINARY), "build the tool first (make): %s missing" % BINARY
    pid, tids, tmp = deadlocked
    log = os.path.join(tmp, "vg-trace.log")
    port = free_port()
    reg = Registry()
    err = tempfile.TemporaryFile()
    events = []
    try:
        flood = reg.popen([PYTHON, FLOOD, str(FLIPS)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, bufsize=0)
        with alarm_guard(110, "tracer under valgrind"):
            words = flood.stdout.readline().split()
            assert words and words[0] == b"ready", words
            # --rate-limit 0: the flood must overflow the ring (see the module's docstring)
            # and the smallest ring (64 KiB, a few dozen records with stacks) makes that certain
            # however fast the flood and the tracer run on this machine at the moment
            argv = _valgrind(log) + [BINARY, "--json", "-t", "0.5", "--rate-limit", "0",
                                     "--ringbuf-size", "64K", "-p", str(pid),
                                     "-p", words[1].decode(), "--metrics-addr", "127.0.0.1:%d" % port]
            tr = reg.popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
            for raw in iter(tr.stdout.readline, b""):
                ev = json.loads(raw)
                events.append(ev)
                if ev["event"] == "hang":
                    break
            kinds = [e["event"] for e in events]
            assert "hang" in kinds, "no hang event under valgrind: %r" % kinds
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=20) as r:
                body = r.read().decode()
            assert 'pyhang_findings_total{kind="hang"} 1' in body, body[:2000]
            flood.stdin.write(b"go\n")
            assert flood.stdout.readline() == b"done\n"
            # what the tracer reads of the flood, up to a record whose stack was lost (the
            # path this test is for); a stop leaves what is still queued 3 s later unread,
            # and under valgrind the flood takes longer than that to work off
            for raw in iter(tr.stdout.readline, b""):
                ev = json.loads(raw)
                events.append(ev)
                if ev["event"] == "sigchld_ignored" and ev.get("stack_status") == "not_captured":
                    break
            tr.send_signal(signal.SIGINT)
            # the rest through the same buffered reader: communicate() with a timeout reads
            # the raw fd and would skip what readline() had already buffered
            rest = tr.stdout.read()
            tr.wait(60)
        events += [json.loads(l) for l in rest.decode().splitlines() if l.strip()]
    finally:
        reg.cleanup()
    err.seek(0)
    stderr = err.read().decode("utf-8", "replace")
    kinds = [e["event"] for e in events]
    what = "tracer under valgrind (stderr %r, %d events)" % (stderr[-500:], len(kinds))
    _check_clean(tr.returncode, log, what)
    assert tr.returncode == 0, what
    assert kinds[0] == "start" and kinds[-1] == "stop", what
    waits = [e for e in events if e["event"] == "long_wait"]
    assert {e["tid"] for e in waits} >= set(tids), what
    assert all(e["before_start"] for e in waits if e["tid"] in tids), what
    hang = [e for e in events if e["event"] == "hang"][0]
    # diag_deadlock.py's workers cross two locks: a proven lock-order deadlock
    assert hang["pid"] == pid and hang["diagnosis"]["code"] == "deadlock", hang
    assert len(hang["diagnosis"]["cycle"]) == 2, hang
    assert set(hang["diagnosis"]["culprit_tids"]) | {hang["diagnosis"]["waiter_tid"]} >= set(tids), hang
    statuses = set(e.get("stack_status") for e in events if e["event"] == "sigchld_ignored")
    assert "not_captured" in statuses, "the flood lost no stack record (%r): the path " \
        "this test is for was not taken" % statuses
    assert events[-1]["lost"]["ringbuf_full"] > 0, events[-1]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_valgrind_dump(deadlocked, fmt):
    assert os.path.exists(BINARY), "build the tool first (make): %s missing" % BINARY
    pid, tids, tmp = deadlocked
    log = os.path.join(tmp, "vg-dump-%s.log" % fmt)
    argv = _valgrind(log) + [BINARY, "dump", str(pid)] + (["--json"] if fmt == "json" else [])
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    what = "dump under valgrind (stderr %r)" % p.stderr.decode("utf-8", "replace")[-500:]
    _check_clean(p.returncode, log, what)
    assert p.returncode == 0, what
    if fmt == "json":
        d = json.loads(out)
        assert d["pid"] == pid
        threads = {t["tid"]: t for t in d["threads"]}
        assert set(threads) >= set(tids), out
        for tid in tids:
            assert any(f["file"].endswith("diag_deadlock.py") for f in threads[tid]["stack"]), out
    else:
        assert "Process %d" % pid in out and "diag_deadlock.py" in out, out
        assert "take_a" in out and "take_b" in out, out
