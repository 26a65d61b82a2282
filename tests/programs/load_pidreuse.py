"""A process replaced by a new one with the same pid, for tests/test_load.py.

Usage: load_pidreuse.py REPORT
On a line on stdin: forks A, which blocks in old_process_wait (main thread, on a lock
nobody releases). On a second line: kills and reaps A, then forks B so that B gets A's pid
(writes A's pid - 1 to /proc/sys/kernel/ns_last_pid just before each fork; other
processes forking at the same moment can take the pid, so it tries up to 200 times). B
blocks in new_process_wait. Appends to REPORT: A <pid>, then B <pid> <tries> (B's pid
equals A's unless the pid was taken by someone else), or nopid <A's pid>.
Runs on CPython 2.7 and 3.x. Needs root (ns_last_pid).
"""
import os
import signal
import sys
import threading
import time

from progutil import report


def old_process_wait(lock):
    lock.acquire()
    lock.acquire()  # MARK: old_blocks


def new_process_wait(lock):
    lock.acquire()
    lock.acquire()  # MARK: new_blocks


def spawn(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn(threading.Lock())
        finally:
            os._exit(1)
    return pid


def main():
    signal.alarm(120)
    sys.stdin.readline()
    a = spawn(old_process_wait)
    report("A", a)
    sys.stdin.readline()
    os.kill(a, signal.SIGKILL)
    os.waitpid(a, 0)
    for tries in range(1, 201):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(a - 1))
        b = spawn(new_process_wait)
        if b == a:
            report("B", b, tries)
            break
        os.kill(b, signal.SIGKILL)
        os.waitpid(b, 0)
        if os.path.exists("/proc/%d" % a):
            break  # someone else has the pid now
    else:
        b = None
    if b != a:
        report("nopid", a)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
