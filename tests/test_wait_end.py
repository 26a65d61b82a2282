"""wait_end says what really ended a reported wait: `return`, `signal` (a handler ran and the
thread lives on), `thread_exit`, or `process_exit` with the signal that killed the process;
and its `comm` is the waiting thread's own, for every thread, even when the process is gone.

Real kernel, real interpreters (every version), real signals.
"""
import os
import signal
import time

import pytest

from harness import Timeout
from harness import Tracer, check_stream

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


def start(reg, python, tmp_path):
    prog = str(tmp_path / "prog.py")
    with open(prog, "w") as f:
        f.write(PROG)
    info = str(tmp_path / "tids")
    p = reg.hanging([python, prog, info])
    deadline = time.monotonic() + 30
    while not os.path.exists(info):
        if p.poll() is not None or time.monotonic() > deadline:
            raise Timeout("program did not start (exit %r)" % p.poll())
        time.sleep(0.02)
    with open(info) as f:
        pid, main_tid, worker_tid = [int(x) for x in f.read().split()]
    assert pid == p.pid
    with open("/proc/%d/task/%d/comm" % (pid, main_tid)) as f:
        main_comm = f.read().strip()
    return p, main_tid, worker_tid, main_comm


def wait_long(tr, pid, tid):
    return tr.wait_for(lambda e: e.get("event") == "long_wait" and e["pid"] == pid and e["tid"] == tid,
                       20, "long_wait of %d/%d" % (pid, tid))


def wait_end_of(tr, pid, tid):
    return tr.wait_for(lambda e: e.get("event") == "wait_end" and e["pid"] == pid and e["tid"] == tid,
                       20, "wait_end of %d/%d" % (pid, tid))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_wait_end_when_process_killed(reg, binary, python, tmp_path, sig):
    """A worker thread blocked in a lock (named by prctl) and the main thread blocked too;
    the process gets SIGKILL/SIGTERM: each thread's wait_end says process_exit with that
    signal, and carries the thread's own comm (the process is gone when it is read)."""
    p, main_tid, worker_tid, main_comm = start(reg, python, tmp_path)
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(p.pid)])
    tr.wait_start()
    wait_long(tr, p.pid, worker_tid)
    wait_long(tr, p.pid, main_tid)
    os.kill(p.pid, sig)
    p.wait(10)
    ends = {}
    for tid in (worker_tid, main_tid):
        e = wait_end_of(tr, p.pid, tid)
        ends[tid] = (e["ended_by"], e.get("exit_signal"), e["comm"])
    tr.stop()
    check_stream(tr)
    assert ends == {worker_tid: ("process_exit", int(sig), "lockwaiter"),
                    main_tid: ("process_exit", int(sig), main_comm)}, ends


def test_wait_end_interrupted_by_signal(reg, binary, python, tmp_path):
    """The main thread blocked in a lock gets SIGUSR1, whose (Python) handler runs: its wait
    ended by that signal and the thread lives on; the worker's wait is untouched."""
    p, main_tid, worker_tid, main_comm = start(reg, python, tmp_path)
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(p.pid)])
    tr.wait_start()
    wait_long(tr, p.pid, main_tid)
    wait_long(tr, p.pid, worker_tid)
    os.kill(p.pid, signal.SIGUSR1)
    e = wait_end_of(tr, p.pid, main_tid)
    assert (e["ended_by"], e.get("signal"), e["comm"]) == ("signal", int(signal.SIGUSR1), main_comm), e
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
    tr.stop()
    check_stream(tr)


STOP_PROG = (
    "import ctypes, os, sys, threading, time\n"
    "libc = ctypes.CDLL(None)\n"
    "held = threading.Lock()\n"
    "held.acquire()\n"
    "tids = []\n"
    "def worker():\n"
    "    tids.append(libc.syscall(186))\n"
    "    if sys.argv[2] == 'timed':\n"
    "        held.acquire(True, 120)\n"      # 3.2+: a futex wait with a deadline
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


@pytest.mark.parametrize("kind", ["untimed", "timed"])
def test_wait_goes_on_across_stop_and_continue(reg, binary, python, tmp_path, kind):
    """SIGSTOP then SIGCONT of a process whose thread waits for a lock: the kernel restarts the
    call (futex again, or restart_syscall for a wait with a deadline), so it is ONE wait: one
    long_wait, and one wait_end (`return`) when the lock is released, not at the stop."""
    if kind == "timed" and "2.7" in os.path.basename(python):
        pytest.skip("2.7 has no lock acquire with a timeout")
    prog = str(tmp_path / "stop.py")
    with open(prog, "w") as f:
        f.write(STOP_PROG)
    info = str(tmp_path / "tid")
    p = reg.hanging([python, prog, info, kind])
    deadline = time.monotonic() + 30
    while not os.path.exists(info) or not open(info).read():
        if p.poll() is not None or time.monotonic() > deadline:
            raise Timeout("program did not start")
        time.sleep(0.02)
    tid = int(open(info).read())
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(p.pid)])
    tr.wait_start()
    wait_long(tr, p.pid, tid)
    os.kill(p.pid, signal.SIGSTOP)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGCONT)
    time.sleep(1.5)  # past the threshold again: a wait taken for a new one would be reported
    released = time.time()
    open(info + ".go", "w").close()
    e = wait_end_of(tr, p.pid, tid)
    tr.stop()
    check_stream(tr)
    longs = [x for x in tr.select("long_wait", pid=p.pid) if x["tid"] == tid]
    ends = [x for x in tr.select("wait_end", pid=p.pid) if x["tid"] == tid]
    assert len(longs) == 1 and len(ends) == 1, ([(x["event"], x.get("ended_by")) for x in longs + ends])
    assert e["ended_by"] == "return" and e["_recv"] >= released, e
    assert e["waited_s"] >= 1.5, e
