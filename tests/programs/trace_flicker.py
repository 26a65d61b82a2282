"""Many threads that each wait on a futex for a moment (Event.wait(0.002)) and then sleep
(clock_nanosleep/select, not a futex) for 0.5-0.6 s, over and over, for tests/test_trace_*.py.
No worker thread ever waits on a futex for long, so a long_wait for one of them is false.
Runs on CPython 2.7 and 3.x.
Usage: trace_flicker.py THREADS SECONDS    prints "ready <pid>" once every thread runs."""
import os
import random
import sys
import threading
import time


def main(argv):
    n, seconds = int(argv[0]), float(argv[1])
    ev = threading.Event()
    end = time.time() + seconds
    started = []

    def run():
        started.append(1)
        time.sleep(random.random() * 0.5)
        while time.time() < end:
            ev.wait(0.002)
            time.sleep(0.5 + random.random() * 0.1)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.daemon = True
        t.start()
    while len(started) < n:
        time.sleep(0.01)
    sys.stdout.write("ready %d\n" % os.getpid())
    sys.stdout.flush()
    time.sleep(max(0.0, end - time.time()))  # main thread: not a futex wait either
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
