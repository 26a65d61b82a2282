"""A healthy program whose threads trade the GIL: THREADS threads (default 16) count in
pure Python for SECONDS seconds (default 6), then end.  Each thread waits long for the GIL
(one of many), yet gets it again and again: no thread is stuck.  Python 2.7 and 3.x.

Usage: python gil_busy.py [THREADS [SECONDS]]"""
import sys
import threading
import time


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    stop = time.time() + secs
    counts = [0] * n

    def count(i):
        while time.time() < stop:
            counts[i] += 1

    threads = [threading.Thread(target=count, args=(i,), name="count%d" % i) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every thread ran: none was starved for the whole run
    sys.stdout.write("threads that ran: %d of %d\n" % (sum(1 for c in counts if c), n))


main()
