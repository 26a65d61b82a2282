"""End-to-end tests of `pyhang-trace [OPTIONS] -- COMMAND` (exit status, descendants, the
Python filter, embedded and renamed interpreters, host-wide default) and of the kernel
tables' slot collisions (a pid on a full slot uses the overflow).

How they run (real kernel, real processes, root; Tracer, Registry, timeouts): see
tests/harness.  Workloads: tests/programs/trace_*.  The test_trace_*.py files split the
former test_trace.py by subject: locks, children, cli, command.
"""
import os
import shlex
import subprocess
import time

import pytest

from harness import (INTERPRETER_PATHS as INTERPRETERS, LATE_SLACK, PROGRAMS, SYSTEM_PYTHON, Tracer,
                     check_stream, expect_words, public, wait_in_futex)

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
FUTEX_C = os.path.join(PROGRAMS, "trace_futex_block.c")
EMBED_C = os.path.join(PROGRAMS, "trace_embed.c")


# --------------------------------------------------------------------------- 7. -- COMMAND

@pytest.mark.parametrize("status", [0, 7])
def test_command_exit_status(reg, binary, status):
    tr = Tracer(reg, binary, ["--json", "--", "sh", "-c", "exit %d" % status])
    rc = tr.wait_exit(30)
    check_stream(tr)
    assert rc == status, "exit status %s, the command exited %d%s" % (rc, status, tr.describe())


def test_command_options_not_parsed(reg, binary):
    """Everything after -- belongs to the command."""
    tr = Tracer(reg, binary, ["--json", "--", "sh", "-c", 'exit $#', "x", "-p", "5", "--json", "-t"])
    rc = tr.wait_exit(30)
    check_stream(tr)
    assert rc == 4, "the command got %s arguments, want 4%s" % (rc, tr.describe())


def test_command_not_found(reg, binary):
    tr = Tracer(reg, binary, ["--json", "--", "/nonexistent/command"])
    rc = tr.wait_exit(30)
    assert rc != 0, tr.describe()


@pytest.mark.parametrize("mode", ["default", "all"])
def test_command_descendants_and_python_filter(reg, binary, tmp_path, mode):
    """`-- sh -c 'C & PY &'`: both are descendants, blocked from their first instructions.
    The Python worker is reported in both modes; the non-Python C program only with --all."""
    exe = str(tmp_path / "trace_futex_block")
    subprocess.check_call(["cc", "-O2", "-o", exe, FUTEX_C], timeout=60)
    c_out, py_out = str(tmp_path / "c.out"), str(tmp_path / "py.out")
    script = "%s 3 > %s & %s %s --alarm 3 > %s & wait; exit 0" % (
        shlex.quote(exe), shlex.quote(c_out), shlex.quote(SYSTEM_PYTHON), shlex.quote(LOCK_PROG),
        shlex.quote(py_out))
    args = ["--json", "-t", "0.5"] + (["--all"] if mode == "all" else []) + ["--", "sh", "-c", script]
    tr = Tracer(reg, binary, args, hangs=True)   # the Python worker's process deadlocks
    rc = tr.wait_exit(40)
    check_stream(tr)
    assert rc == 0, tr.describe()
    with open(c_out) as f:
        _, c_pid, c_tid, c_addr = f.read().split()[:4]
    c_pid, c_tid, c_addr = int(c_pid), int(c_tid), int(c_addr, 16)
    with open(py_out) as f:
        words = f.read().split()
    py_pid, py_tid = int(words[words.index("ready") + 1]), int(words[words.index("blocking") + 1])
    py_waits = tr.select("long_wait", pid=py_pid, tid=py_tid)
    assert len(py_waits) == 1, "Python worker: want one long_wait, got %r%s" % (
        [public(e) for e in py_waits], tr.describe())
    assert py_waits[0]["before_start"] is False and py_waits[0]["waited_s"] >= 0.5
    c_waits = tr.select("long_wait", pid=c_pid)
    if mode == "all":
        assert len(c_waits) == 1, "--all: want one long_wait for the C program, got %r" % [public(e) for e in c_waits]
        e = c_waits[0]
        assert e["tid"] == c_tid and int(e["futex"]["addr"], 16) == c_addr, \
            "want tid %d addr %#x: %r" % (c_tid, c_addr, public(e))
        assert e["before_start"] is False and e["comm"] == os.path.basename(exe)[:15], public(e)
    else:
        assert not c_waits, "default mode reported a non-Python process: %r" % [public(e) for e in c_waits]


def _shared_libpython():
    """(libpython path, PYTHONHOME) of the first tested interpreter built with a shared
    libpython, or None."""
    q = ("import os, sys, sysconfig\n"
         "lib = os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('INSTSONAME') or '')\n"
         "sys.stdout.write(lib + '\\n' + sys.prefix + '\\n')\n")
    for py in [SYSTEM_PYTHON] + INTERPRETERS:
        try:
            out = subprocess.run([py, "-c", q], stdout=subprocess.PIPE, timeout=30).stdout.decode().split("\n")
        except (OSError, subprocess.TimeoutExpired):
            continue
        if len(out) >= 2 and out[0].endswith(".so.1.0") and os.path.exists(out[0]):
            return out[0], out[1]
    return None


@pytest.mark.parametrize("how", ["command", "host"])
def test_embedded_interpreter_is_python(reg, binary, tmp_path, how):
    """A process that dlopen()s libpython runs a CPython interpreter: default mode reports
    its long waits, whether it is the `-- COMMAND` or a process started later on the host."""
    found = _shared_libpython()
    if not found:
        pytest.skip("no tested interpreter has a shared libpython")
    lib, home = found
    exe = str(tmp_path / "trace_embed")
    subprocess.check_call(["cc", "-O2", "-o", exe, EMBED_C, "-ldl"], timeout=60)
    out = str(tmp_path / "embed.out")
    code = ("import os, signal, threading, ctypes\n"
            "signal.alarm(3)\n"
            "lock = threading.Lock(); lock.acquire()\n"
            "def worker():\n"
            "    open(%r, 'w').write('%%d %%d' %% (os.getpid(), ctypes.CDLL(None).syscall(186)))\n"
            "    lock.acquire()\n"
            "t = threading.Thread(target=worker); t.daemon = True; t.start(); t.join()\n" % out)
    env = dict(os.environ, PYTHONHOME=home)
    if how == "command":
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", exe, lib, code], env=env, hangs=True)
        tr.wait_start()
        tr.wait_exit(30)
    else:
        tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
        tr.wait_start()
        reg.hanging([exe, lib, code], env=env).wait(30)
        time.sleep(0.5)
        assert tr.stop() == 0
    check_stream(tr)
    with open(out) as f:
        pid, tid = [int(x) for x in f.read().split()]
    waits = tr.select("long_wait", pid=pid, tid=tid)
    assert len(waits) == 1, ("process %d (%s, libpython loaded with dlopen) blocked 3 s on a lock: "
                             "want one long_wait for tid %d, got %r%s" % (
                                 pid, os.path.basename(exe), tid, [public(e) for e in waits], tr.describe()))


@pytest.mark.parametrize("how", ["command", "pid"])
def test_renamed_interpreter_is_python(reg, binary, tmp_path, how):
    """The interpreter binary under another name (an application shipping its own copy of
    python, here a copy of SYSTEM_PYTHON, which links libpython statically) is still CPython."""
    exe = str(tmp_path / "myservice")
    subprocess.check_call(["cp", os.path.realpath(SYSTEM_PYTHON), exe])
    if how == "command":
        out = str(tmp_path / "lock.out")
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", "sh", "-c", '"$0" "$1" --alarm 3 > "$2"',
                                  exe, LOCK_PROG, out], hangs=True)
        tr.wait_start()
        tr.wait_exit(30)
        with open(out) as f:
            words = f.read().split()
        pid, tid = int(words[words.index("ready") + 1]), int(words[words.index("blocking") + 1])
    else:
        p = reg.hanging([exe, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, bufsize=0)
        pid = int(expect_words(p, "ready", 30, "myservice")[0])
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(pid)])
        tr.wait_start()
        p.stdin.write(b"go\n")
        tid = int(expect_words(p, "blocking", 15, "myservice")[0])
        try:
            tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == tid, 0.5 + LATE_SLACK + 2, "")
        except AssertionError:
            pass
        p.stdin.write(b"release\n")
        p.wait(15)
        assert tr.stop() == 0
    check_stream(tr)
    waits = tr.select("long_wait", pid=pid, tid=tid)
    assert len(waits) == 1, ("'myservice' (a copy of %s) blocked on a lock: want one long_wait for tid %d, got %r%s"
                             % (SYSTEM_PYTHON, tid, [public(e) for e in waits], tr.describe()))


def test_host_wide_default_reports_only_python(reg, binary, tmp_path):
    """No -p, no --: the whole host; a Python hang started later is reported, a C one not."""
    exe = str(tmp_path / "trace_futex_block")
    subprocess.check_call(["cc", "-O2", "-o", exe, FUTEX_C], timeout=60)
    tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
    tr.wait_start()
    c = reg.popen([exe, "5"], stdout=subprocess.PIPE, bufsize=0)
    py = reg.hanging([SYSTEM_PYTHON, LOCK_PROG, "--alarm", "5"], stdout=subprocess.PIPE, bufsize=0)
    c_pid = int(expect_words(c, "ready", 10, "C blocker")[0])
    py_pid = int(expect_words(py, "ready", 10, "Python blocker")[0])
    py_tid = int(expect_words(py, "blocking", 10, "Python blocker")[0])
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == py_tid, 0.5 + LATE_SLACK + 2,
                     "host-wide long_wait for the Python worker")
    assert ev["pid"] == py_pid and ev["before_start"] is False, public(ev)
    time.sleep(1.0)
    assert tr.stop() == 0
    check_stream(tr)
    assert not tr.select("long_wait", pid=c_pid), "default mode reported the non-Python C program"


PID_MAX = "/proc/sys/kernel/pid_max"
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
SLOTS = 65536  # PH_WAIT_SLOTS and PH_WATCH_SLOTS in bpf/pyhang.h

HANG_MAIN = ("import threading, sys\n"
             "l = threading.Lock(); l.acquire()\n"
             "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
             "l.acquire()\n")


def _spawn_with_pid(reg, want, tries=50):
    """A Python process (main thread blocked forever) whose pid is `want`, or None: the host's
    next pid is set through ns_last_pid, which another fork on the host may take first."""
    for _ in range(tries):
        with open(NS_LAST_PID, "w") as f:
            f.write(str(want - 1))
        p = reg.hanging([SYSTEM_PYTHON, "-c", HANG_MAIN], stdout=subprocess.PIPE)
        if p.pid == want:
            return p
        p.kill()
        p.wait()
    return None


def test_slot_collisions_use_overflow(reg, binary):
    """Two processes whose pids are equal modulo the slot count share a watch slot and a wait
    slot (main thread tid == pid): the second lives in the overflow tables, and both long
    waits, and both wait ends, must still be reported, once each."""
    with open(PID_MAX) as f:
        old_max = f.read().strip()
    try:
        with open(PID_MAX, "w") as f:
            f.write("4194304")
        tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
        tr.wait_start()
        first = None
        for _ in range(20):
            a = reg.hanging([SYSTEM_PYTHON, "-c", HANG_MAIN], stdout=subprocess.PIPE)
            if a.pid + SLOTS < 4194304:
                b = _spawn_with_pid(reg, a.pid + SLOTS)
                if b is not None:
                    first = (a, b)
                    break
            a.kill()
            a.wait()
        assert first, "could not get two processes with pids %d apart" % SLOTS
        pids = [p.pid for p in first]
        for p in first:
            expect_words(p, "ready", 30, "colliding process")
            wait_in_futex(p.pid, p.pid, 10)
        for pid in pids:
            tr.wait_for(lambda e, pid=pid: e.get("event") == "long_wait" and e["pid"] == pid,
                        0.5 + LATE_SLACK + 3, "long_wait of pid %d (slot %d)" % (pid, pid % SLOTS))
        for p in first:
            p.kill()
            p.wait()
        for pid in pids:
            tr.wait_for(lambda e, pid=pid: e.get("event") == "wait_end" and e["pid"] == pid,
                        5, "wait_end of pid %d" % pid)
        assert tr.stop() == 0
        check_stream(tr)
        for pid in pids:
            assert [e["tid"] for e in tr.select("long_wait", pid=pid)] == [pid], \
                "want one long_wait of pid %d's main thread: %r" % (pid, tr.select("long_wait", pid=pid))
            assert len(tr.select("wait_end", pid=pid)) == 1
        assert tr.select("stop")[0]["lost_events"] == 0
    finally:
        with open(PID_MAX, "w") as f:
            f.write(old_max)
