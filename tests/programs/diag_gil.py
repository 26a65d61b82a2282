"""The main thread holds the GIL in one C call (a regular expression that backtracks
catastrophically: 2**40 steps, it never returns) while a thread named 'worker' waits for the
GIL.  The test kills it once the tracer has reported the hang (it kills itself after 60 s).
No amount of work is timed: the GIL stays held however loaded the host is.

Runs on CPython 2.7 and 3.x.  Usage: diag_gil.py REPORT
Writes to REPORT: "pid <pid>", "main <tid>", "worker <tid>", then "hogging" just before the
call that holds the GIL.
"""
import os
import re
import signal
import sys
import threading
import time

from progutil import gettid, report


def spin():
    report("worker", gettid())
    x = 0
    while True:  # pure Python: needs the GIL for every few bytecodes
        x += 1


def main():
    signal.alarm(60)
    report("pid", os.getpid())
    report("main", gettid())
    t = threading.Thread(target=spin, name="worker")
    t.daemon = True
    t.start()
    time.sleep(0.5)  # the tracer gets to know the process first
    report("hogging")
    re.match(r"(a+)+$", "a" * 40 + "b")  # MARK: hog
    report("done")  # never reached
    return 0


if __name__ == "__main__":
    sys.exit(main())
