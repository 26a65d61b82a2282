"""A victim for tests/test_ratelimit.py: loses one child's exit status by ignoring SIGCHLD.
Runs on CPython 2.7 and 3.x.

Usage: rl_victim.py
Waits for a line on stdin, then ignores SIGCHLD (from the function lose_status), runs
`sh -c "exit 7"` and waits for it (ECHILD: the status is lost), prints "child <pid>" and
waits for another line before exiting.
"""
import os
import signal
import subprocess
import sys


def lose_status():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # MARK: ignore
    p = subprocess.Popen(["sh", "-c", "exit 7"])
    p.wait()
    return p.pid


def main():
    print("pid %d" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
    print("child %d" % lose_status())
    sys.stdout.flush()
    sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
