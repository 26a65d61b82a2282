"""Lose children's exit statuses by ignoring SIGCHLD, for tests/test_trace_*.py.

Runs on CPython 2.7 and 3.x.  Usage: trace_sigchld.py REPORT_FILE [--gate] [--ign-first]
Steps (each child is `sh -c ...`, waited for with Popen.wait()):
  SIGCHLD = SIG_IGN              (skipped when --ign-first: then it is set before the gate)
  ign_exit:       exit 3         status lost (wait gets ECHILD, returncode 0)
  ign_kill:       kill -9 $$     status lost (killed by signal 9)
  SIGCHLD = SIG_DFL              ("restored")
  dfl_exit:       exit 4         status kept (returncode 4)
  sigaction(SIGCHLD, SIG_DFL, SA_NOCLDWAIT) via ctypes
  nocldwait_exit: exit 6         status lost
  SIGCHLD = SIG_DFL              ("restored")
--gate: print "ready <pid>" and wait for a line on stdin before the steps.
The report (JSON) has pid and, per step, the child's pid and the returncode Python saw.
"""
import ctypes
import json
import os
import signal
import subprocess
import sys

SA_NOCLDWAIT = 2  # x86_64 (asm-generic)


class Sigaction(ctypes.Structure):
    # glibc's struct sigaction on x86_64
    _fields_ = [("sa_handler", ctypes.c_void_p),
                ("sa_mask", ctypes.c_ulong * 16),
                ("sa_flags", ctypes.c_int),
                ("sa_restorer", ctypes.c_void_p)]


def set_nocldwait():
    libc = ctypes.CDLL(None, use_errno=True)
    act = Sigaction()
    act.sa_handler = 0  # SIG_DFL
    act.sa_flags = SA_NOCLDWAIT
    if libc.sigaction(signal.SIGCHLD, ctypes.byref(act), None) != 0:
        raise OSError(ctypes.get_errno(), "sigaction")


def run(report, name, script):
    p = subprocess.Popen(["sh", "-c", script])
    rc = p.wait()
    report["steps"][name] = {"pid": p.pid, "rc": rc}


def main(argv):
    out = argv[0]
    report = {"pid": os.getpid(), "steps": {}}
    if "--ign-first" in argv:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    if "--gate" in argv:
        sys.stdout.write("ready %d\n" % os.getpid())
        sys.stdout.flush()
        sys.stdin.readline()
    if "--ign-first" not in argv:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    run(report, "ign_exit", "exit 3")
    run(report, "ign_kill", "kill -9 $$")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    run(report, "dfl_exit", "exit 4")
    set_nocldwait()
    run(report, "nocldwait_exit", "exit 6")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    with open(out + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
