"""The classic fork-while-locked hang, for tests/test_trace_*.py.  Runs on CPython 2.7 and 3.x.

A thread takes a lock and keeps it; the main thread forks; the child (a copy of the process
with only the forking thread) acquires the copied, still-locked lock and blocks forever
(alarm(3): it dies of SIGALRM).  The parent waits for the child.
Usage: trace_fork_deadlock.py REPORT_FILE     writes "<parent pid> <child pid>" to it."""
import os
import signal
import sys
import threading
import time


def main(argv):
    lock = threading.Lock()
    held = threading.Event()

    def holder():
        lock.acquire()
        held.set()
        time.sleep(30)

    t = threading.Thread(target=holder)
    t.daemon = True
    t.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:
        signal.alarm(3)
        lock.acquire()  # never returns: its holder does not exist in this process
        os._exit(0)
    with open(argv[0], "w") as f:
        f.write("%d %d\n" % (os.getpid(), pid))
    os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
