"""Many threads in one process, for tests/test_load.py. Python 3 only (threading.Barrier).

Usage: load_threads.py REPORT NTHREADS NBLOCKED [--shared]
  NTHREADS - NBLOCKED threads sleep (time.sleep: no futex), NBLOCKED threads block on a lock
  held by the main thread: each on its own lock, or with --shared all on one lock, after a
  barrier so that they all start waiting within a millisecond of each other.
  The main thread sleeps too. A line on stdin releases the lock(s); the blocked threads then
  finish and the process exits once every blocked thread has been released.
Appends to REPORT: pid <pid>, blocked <tid> (one per blocked thread, once it is about to
block), sleepers <n> (once every sleeper runs), released (after the release).
signal.alarm: the process dies by itself after 120 s.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report


def main():
    nthreads, nblocked = int(sys.argv[2]), int(sys.argv[3])
    shared = "--shared" in sys.argv[4:]
    signal.alarm(120)
    threading.stack_size(256 << 10)
    report("pid", os.getpid())
    locks = [threading.Lock() for _ in range(1 if shared else nblocked)]
    for lock in locks:
        lock.acquire()
    barrier = threading.Barrier(nblocked) if nblocked else None
    tid_lock = threading.Lock()
    tids = []

    def blocked(i):
        lock = locks[0 if shared else i]
        with tid_lock:
            tids.append(gettid())
        barrier.wait()
        lock.acquire()  # MARK: blocked_here
        lock.release()

    started = threading.Semaphore(0)

    def sleeper():
        started.release()
        time.sleep(3600)

    workers = [threading.Thread(target=blocked, args=(i,)) for i in range(nblocked)]
    sleepers = [threading.Thread(target=sleeper) for _ in range(nthreads - nblocked)]
    for t in sleepers + workers:
        t.daemon = True
        t.start()
    for _ in sleepers:
        started.acquire()
    while len(tids) < nblocked:
        time.sleep(0.01)
    with open(sys.argv[1], "a") as f:
        f.write("".join("blocked %d\n" % tid for tid in tids))
    report("sleepers", len(sleepers))
    sys.stdin.readline()
    for lock in locks:
        lock.release()
    for t in workers:
        t.join()
    report("released")
    return 0


if __name__ == "__main__":
    sys.exit(main())
