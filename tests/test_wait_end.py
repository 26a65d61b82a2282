"""wait_end says what really ended a reported wait: `return`, `signal` (a handler ran and the
thread lives on), `thread_exit`, or `process_exit` with the signal that killed the process;
and its `comm` is the waiting thread's own, for every thread, even when the process is gone.

Real kernel, real interpreters (every version), real signals.

One tracer for the module (CI time): the fixture `targets` starts every test's program
(every interpreter, every scenario) first, then ONE `pyhang-trace --json -t 0.5 -p PID ...`
(at most 64 pids per tracer) for all of them, as each test did for its one program before;
each test acts on its own program and reads its events by pid.  The SIGSTOP/SIGCONT tests
share one stop/continue phase (stop_phase).  The last test stops the tracer(s) and checks
their whole streams.
"""
import os
import signal
import time

import pytest

import conftest
from harness import Registry, Timeout, Tracer, check_stream

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

PROG = (
    "import ctypes, os, signal, sys, threading, time\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def gettid():\n"
    "    return libc.syscall(186)\n"          # SYS_gettid, x86_64
    "hits = []\n"
    "def on_usr1(sig, frame):\n"
    "    hits.append(sig)\n"
    "signal.signal(signal.SIGUSR1, on_usr1)\n"
    "held = threading.Lock()\n"
    "held.acquire()\n"
    "ready = threading.Lock()\n"
    "ready.acquire()\n"
    "tids = {}\n"
    "def worker():\n"
    "    libc.prctl(15, ctypes.c_char_p(b'lockwaiter'), 0, 0, 0)\n"   # PR_SET_NAME
    "    tids['worker'] = gettid()\n"
    "    ready.release()\n"
    "    held.acquire()\n"
    "t = threading.Thread(target=worker)\n"
    "t.daemon = True\n"
    "t.start()\n"
    "ready.acquire()\n"
    "f = open(sys.argv[1] + '.tmp', 'w')\n"
    "f.write('%d %d %d\\n' % (os.getpid(), gettid(), tids['worker']))\n"
    "f.close()\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "main_lock = threading.Lock()\n"
    "main_lock.acquire()\n"
    "main_lock.acquire()\n")


STOP_PROG = (
    "import ctypes, os, sys, threading, time\n"
    "libc = ctypes.CDLL(None)\n"
    "held = threading.Lock()\n"
    "held.acquire()\n"
    "tids = []\n"
    "def worker():\n"
    "    tids.append(libc.syscall(186))\n"
    "    if sys.argv[2] == 'timed':\n"
    "        held.acquire(True, 900)\n"      # 3.2+: a futex wait with a deadline
    "    else:\n"
    "        held.acquire()\n"
    "t = threading.Thread(target=worker)\n"
    "t.daemon = True\n"
    "t.start()\n"
    "while not tids:\n"
    "    time.sleep(0.01)\n"
    "open(sys.argv[1], 'w').write('%d' % tids[0])\n"
    "while not os.path.exists(sys.argv[1] + '.go'):\n"
    "    time.sleep(0.02)\n"
    "held.release()\n"
    "t.join()\n"
    "time.sleep(60)\n")



MAX_PIDS = 64                      # -p options per tracer (cli.c)
KILLS = [signal.SIGKILL, signal.SIGTERM]
KINDS = ["untimed", "timed"]


def _scenarios(python, version):
    out = [("killed", int(s)) for s in KILLS] + [("signal", None)]
    out += [("stop", k) for k in KINDS if not (k == "timed" and version.startswith("2."))]
    return out


class Target(object):
    """One test's program, started before the tracer."""

    def __init__(self, reg, python, scenario, arg, d):
        self.python, self.scenario, self.arg = python, scenario, arg
        os.makedirs(d)
        if scenario == "stop":
            prog = os.path.join(d, "stop.py")
            with open(prog, "w") as f:
                f.write(STOP_PROG)
            self.info = os.path.join(d, "tid")
            self.p = reg.hanging([python, prog, self.info, arg])
        else:
            prog = os.path.join(d, "prog.py")
            with open(prog, "w") as f:
                f.write(PROG)
            self.info = os.path.join(d, "tids")
            self.p = reg.hanging([python, prog, self.info])
        self.pid = self.p.pid
        self.tracer = None

    def ready(self):
        """True once the program wrote its tids (fails if it ended)."""
        if self.p.poll() is not None:
            raise Timeout("program did not start (exit %r): %s" % (self.p.poll(), self.scenario))
        try:
            with open(self.info) as f:
                words = f.read().split()
        except OSError:
            return False
        if self.scenario == "stop":
            if not words:
                return False
            self.tid = int(words[0])
            return True
        pid, self.main_tid, self.worker_tid = [int(x) for x in words]
        assert pid == self.pid
        with open("/proc/%d/task/%d/comm" % (pid, self.main_tid)) as f:
            self.main_comm = f.read().strip()
        return True


@pytest.fixture(scope="module")
def targets(binary, tmp_path_factory):
    """{(python, scenario, arg): Target}, all traced (Target.tracer) before the first test."""
    reg = Registry()
    d = str(tmp_path_factory.mktemp("wait_end"))
    out = {}
    try:
        for i, (label, python, version) in enumerate(conftest.INTERPRETERS):
            for scenario, arg in _scenarios(python, version):
                out[(python, scenario, arg)] = Target(reg, python, scenario, arg,
                                                      os.path.join(d, "%s-%s-%s" % (label, scenario, arg)))
        deadline = time.monotonic() + 60
        pending = list(out.values())
        while pending:
            pending = [t for t in pending if not t.ready()]
            if pending and time.monotonic() > deadline:
                raise Timeout("programs did not start: %r" % [(t.python, t.scenario) for t in pending])
            time.sleep(0.02)
        ts = list(out.values())
        tracers = []
        for k in range(0, len(ts), MAX_PIDS):
            group = ts[k:k + MAX_PIDS]
            args = ["--json", "-t", "0.5"]
            for t in group:
                args += ["-p", str(t.pid)]
            tr = Tracer(reg, binary, args)
            tracers.append(tr)
            for t in group:
                t.tracer = tr
        for tr in tracers:
            tr.wait_start()
        out["_tracers"] = tracers
        yield out
    finally:
        reg.cleanup()


def target(targets, python, scenario, arg=None):
    return targets[(python, scenario, arg)]


def wait_long(tr, pid, tid):
    return tr.wait_for(lambda e: e.get("event") == "long_wait" and e["pid"] == pid and e["tid"] == tid,
                       20, "long_wait of %d/%d" % (pid, tid))


def wait_end_of(tr, pid, tid):
    return tr.wait_for(lambda e: e.get("event") == "wait_end" and e["pid"] == pid and e["tid"] == tid,
                       20, "wait_end of %d/%d" % (pid, tid))


@pytest.mark.parametrize("sig", KILLS, ids=["SIGKILL", "SIGTERM"])
def test_wait_end_when_process_killed(targets, python, sig):
    """A worker thread blocked in a lock (named by prctl) and the main thread blocked too;
    the process gets SIGKILL/SIGTERM: each thread's wait_end says process_exit with that
    signal, and carries the thread's own comm (the process is gone when it is read)."""
    t = target(targets, python, "killed", int(sig))
    p, tr = t.p, t.tracer
    wait_long(tr, p.pid, t.worker_tid)
    wait_long(tr, p.pid, t.main_tid)
    os.kill(p.pid, sig)
    p.wait(10)
    ends = {}
    for tid in (t.worker_tid, t.main_tid):
        e = wait_end_of(tr, p.pid, tid)
        ends[tid] = (e["ended_by"], e.get("exit_signal"), e["comm"])
    assert ends == {t.worker_tid: ("process_exit", int(sig), "lockwaiter"),
                    t.main_tid: ("process_exit", int(sig), t.main_comm)}, ends


def test_wait_end_interrupted_by_signal(targets, python):
    """The main thread blocked in a lock gets SIGUSR1, whose (Python) handler runs: its wait
    ended by that signal and the thread lives on; the worker's wait is untouched."""
    t = target(targets, python, "signal")
    p, tr, main_tid, worker_tid = t.p, t.tracer, t.main_tid, t.worker_tid
    wait_long(tr, p.pid, main_tid)
    wait_long(tr, p.pid, worker_tid)
    os.kill(p.pid, signal.SIGUSR1)
    e = wait_end_of(tr, p.pid, main_tid)
    assert (e["ended_by"], e.get("signal"), e["comm"]) == ("signal", int(signal.SIGUSR1), t.main_comm), e
    assert p.poll() is None, "the program should live on after SIGUSR1"
    # the thread waits again (the lock is retried): a new wait, reported again
    tr.wait_for(lambda x: x.get("event") == "long_wait" and x["tid"] == main_tid and x["_idx"] > e["_idx"],
                20, "the retried wait of the main thread")
    assert not [x for x in tr.select("wait_end", pid=p.pid) if x["tid"] == worker_tid], \
        "the worker's wait did not end"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    w = wait_end_of(tr, p.pid, worker_tid)
    assert (w["ended_by"], w.get("exit_signal"), w["comm"]) == ("process_exit", 9, "lockwaiter"), w


@pytest.fixture(scope="module")
def stop_phase(targets):
    """Every stop target at once: its long_wait seen, SIGSTOP, 0.3 s, SIGCONT, 1.5 s (past
    the threshold again: a wait taken for a new one would be reported), then released.
    Returns the time of the release."""
    ts = [t for k, t in targets.items() if k != "_tracers" and t.scenario == "stop"]
    for t in ts:
        wait_long(t.tracer, t.pid, t.tid)
    for t in ts:
        os.kill(t.pid, signal.SIGSTOP)
    time.sleep(0.3)
    for t in ts:
        os.kill(t.pid, signal.SIGCONT)
    time.sleep(1.5)
    released = time.time()
    for t in ts:
        open(t.info + ".go", "w").close()
    return released


@pytest.mark.parametrize("kind", KINDS)
def test_wait_goes_on_across_stop_and_continue(targets, stop_phase, python, kind):
    """SIGSTOP then SIGCONT of a process whose thread waits for a lock: the kernel restarts the
    call (futex again, or restart_syscall for a wait with a deadline), so it is ONE wait: one
    long_wait, and one wait_end (`return`) when the lock is released, not at the stop."""
    if kind == "timed" and (python, "stop", kind) not in targets:
        pytest.skip("2.7 has no lock acquire with a timeout")
    t = target(targets, python, "stop", kind)
    released = stop_phase
    tr, tid = t.tracer, t.tid
    e = wait_end_of(tr, t.pid, tid)
    longs = [x for x in tr.select("long_wait", pid=t.pid) if x["tid"] == tid]
    ends = [x for x in tr.select("wait_end", pid=t.pid) if x["tid"] == tid]
    assert len(longs) == 1 and len(ends) == 1, ([(x["event"], x.get("ended_by")) for x in longs + ends])
    assert e["ended_by"] == "return" and e["_recv"] >= released, e
    assert e["waited_s"] >= 1.5, e


def test_wait_end_streams(targets):
    """Last: every tracer stops cleanly and its whole stream keeps the contract."""
    for tr in targets["_tracers"]:
        tr.stop()
        check_stream(tr)
