"""A daemon thread named 'reaper' loops os.waitpid(-1, 0) and steals the exit status of the
child the main thread waits for: Popen(...'exit 5').wait() returns 0.

Runs on CPython 2.7 and 3.x.  Usage: diag_reaper.py REPORT
Appends to REPORT:  pid <pid>, reaper <tid>, child <pid>, reaped <pid> <raw status>...,
rc <what Popen.wait() returned>.
"""
import errno
import os
import signal
import subprocess
import sys
import threading
import time

from progutil import gettid, report


stop = threading.Event()
started = threading.Event()
reaped_one = threading.Event()
reaped = []


def reap_children():
    report("reaper", gettid())
    started.set()
    while not stop.is_set():
        try:
            pid, status = os.waitpid(-1, 0)  # MARK: reaper_waitpid
        except OSError as e:
            if e.errno != errno.ECHILD:
                raise
            time.sleep(0.01)
            continue
        reaped.append((pid, status))
        reaped_one.set()


def main():
    signal.alarm(90)
    report("pid", os.getpid())
    time.sleep(0.5)  # the tracer gets to know the process first
    t = threading.Thread(target=reap_children, name="reaper")
    t.daemon = True
    t.start()
    started.wait(10)
    p = subprocess.Popen(["sh", "-c", "exit 5"])
    report("child", p.pid)
    reaped_one.wait(10)  # the reaper took it
    rc = p.wait()  # MARK: main_wait
    for pid, status in reaped:
        report("reaped", pid, status)
    report("rc", rc)
    # A long-running program: the reaper thread outlives the report by a second.
    # pyhang-trace learns thread names from userspace, after the fact, so a thread that is
    # gone within milliseconds of the reap may stay unnamed (documented), and a busy tracer
    # (ASan build, ten interpreters starting at once) reads the process tens of ms late.
    time.sleep(1.0)
    stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
