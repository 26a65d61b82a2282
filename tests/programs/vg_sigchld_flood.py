"""Flips SIGCHLD between SIG_IGN and SIG_DFL N times as fast as it can, for
tests/test_valgrind.py: a tracer under valgrind cannot keep up, so the ring buffer drops
records and some sigchld_ignored events come without their stack (stack_status
not_captured), the path that released an uninitialised captured_stack.

Runs on CPython 2.7 and 3.x.  Usage: vg_sigchld_flood.py N
Protocol: prints "ready <pid>", waits for a line on stdin, flips, prints "done", then waits
for another line (or EOF) before exiting.  Dies of SIGALRM after 120 s, should nobody kill it.
"""
import os
import signal
import sys


def main():
    signal.alarm(120)
    n = int(sys.argv[1])
    sys.stdout.write("ready %d\n" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
    for _ in range(n):
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    sys.stdin.readline()


main()
