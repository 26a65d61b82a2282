"""A thread blocked on a threading.Lock (futex wait), for tests/test_trace_*.py.

Runs on CPython 2.7 and 3.x.  Protocol on stdout (one flushed line each):
  ready <pid>                      at start
  blocking <tid> <wall time>       the worker thread is about to block on the lock
  acquired                         the worker got the lock (after a release)
Options:
  --gate        wait for a line on stdin before starting the worker
  --release     after the worker blocks, wait for a line on stdin, then release the lock
                (otherwise the main thread just joins the worker: blocked forever)
  --alarm N     alarm(N) with the default action: the process dies of SIGALRM after N s
  --threads N   N worker threads block on the same lock (each prints its "blocking" line;
                after the release they take the lock in turn, each printing "acquired")
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid


def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def main(argv):
    if "--alarm" in argv:
        signal.alarm(int(argv[argv.index("--alarm") + 1]))
    say("ready", os.getpid())
    if "--gate" in argv:
        sys.stdin.readline()
    lock = threading.Lock()
    lock.acquire()

    def worker():
        say("blocking", gettid(), "%.3f" % time.time())
        lock.acquire()
        say("acquired")
        lock.release()

    n = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 1
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.daemon = True
        t.start()
    if "--release" in argv:
        sys.stdin.readline()
        lock.release()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
