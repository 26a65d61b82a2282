"""Many Python processes at once, each with one long lock wait, for tests/test_load.py.

Usage: load_procs.py REPORT N
Forks N children. Child i defines a function named wait_<i> (so its stack says which child
it is) and blocks in it on a lock nobody releases, in its main thread. The parent appends
child <i> <pid> for each child to REPORT, then all_forked, and sleeps; killing the process
group ends everything. signal.alarm: everything dies by itself after 120 s.
Runs on CPython 2.7 and 3.x.
"""
import os
import signal
import sys
import threading
import time

from progutil import report


def child(i):
    ns = {}
    exec("def wait_%d(lock):\n    lock.acquire()\n    lock.acquire()\n" % i, ns)
    lock = threading.Lock()
    ns["wait_%d" % i](lock)
    os._exit(1)


def main():
    n = int(sys.argv[2])
    signal.alarm(120)
    lines = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                child(i)
            finally:
                os._exit(1)
        lines.append("child %d %d\n" % (i, pid))
    with open(sys.argv[1], "a") as f:
        f.write("".join(lines))
    report("all_forked")
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
