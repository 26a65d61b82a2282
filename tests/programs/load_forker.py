"""Bursts of forks whose children exit at once, for tests/test_load.py.

Usage: load_forker.py REPORT RATE STOP_FILE
Forks RATE children a second (in bursts every 10 ms) until STOP_FILE exists; each child
calls os._exit(0) at once and is reaped with waitpid. Appends "forking" to REPORT after its
first burst and "forks <n> <seconds taken>" at the end. Kills itself after 120 s
(signal.alarm: no "forks" line then). Runs on CPython 2.7 and 3.x.
"""
import os
import signal
import sys
import time

from progutil import report


def main():
    rate, stop = int(sys.argv[2]), sys.argv[3]
    signal.alarm(120)
    per_tick = max(1, rate // 100)
    t0 = time.time()
    n = 0
    tick = t0
    while not os.path.exists(stop):
        for _ in range(per_tick):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            n += 1
        if n == per_tick:
            report("forking")
        tick += 0.01
        delay = tick - time.time()
        if delay > 0:
            time.sleep(delay)
    report("forks", n, "%.3f" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
