"""A flood of SIGCHLD disposition changes, for tests/test_load.py.

Usage: load_sigchld_flood.py REPORT N
Waits for a line on stdin, then switches SIGCHLD to SIG_IGN and back N times as fast as it
can (2N changes, each one an event with a stack captured in the kernel), from the function
flip_sigchld. Appends pid <pid> at start and done <2N> at the end, then waits for a line
on stdin before exiting. Runs on CPython 2.7 and 3.x.
"""
import os
import signal
import sys

from progutil import report


def flip_sigchld(n):
    for _ in range(n):
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # MARK: ignore
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # MARK: restore


def main():
    n = int(sys.argv[2])
    signal.alarm(120)
    report("pid", os.getpid())
    sys.stdin.readline()
    flip_sigchld(n)
    report("done", 2 * n)
    sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
