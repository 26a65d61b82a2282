"""Bursts of forks whose children exit at once, for tests/test_load.py.

Usage: load_forker.py REPORT RATE SECONDS [MIN_FORKS]
Forks RATE children a second (in bursts every 10 ms) for SECONDS seconds, and on until
MIN_FORKS children were forked in all when a loaded machine kept it below the rate; each child
calls os._exit(0) at once and is reaped with waitpid. Appends forks <n> <seconds taken> to
REPORT at the end. Runs on CPython 2.7 and 3.x.
"""
import os
import signal
import sys
import time

from progutil import report


def main():
    rate, seconds = int(sys.argv[2]), float(sys.argv[3])
    least = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    signal.alarm(int(seconds) + 60)
    per_tick = max(1, rate // 100)
    t0 = time.time()
    n = 0
    tick = t0
    while time.time() - t0 < seconds or n < least:
        for _ in range(per_tick):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            n += 1
        tick += 0.01
        delay = tick - time.time()
        if delay > 0:
            time.sleep(delay)
    report("forks", n, "%.3f" % (time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
