"""An attacker for tests/test_ratelimit.py: flips SIGCHLD between SIG_IGN and SIG_DFL as fast
as it can. Runs on CPython 2.7 and 3.x, as any user.

Usage: rl_sigchld_flood.py SECONDS
Prints "pid <pid>" at start, then flips for SECONDS and prints "changes <n>" (each call
changes the disposition, so n changes), then exits.
"""
import os
import signal
import sys
import time


def flip(seconds):
    n = 0
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(100):
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        n += 200
    return n


def main():
    print("pid %d" % os.getpid())
    sys.stdout.flush()
    n = flip(float(sys.argv[1]))
    print("changes %d" % n)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
