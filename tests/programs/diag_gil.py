"""The main thread holds the GIL for seconds in one C call (a regular expression that
backtracks catastrophically) while a thread named 'worker' waits for the GIL.

Runs on CPython 2.7 and 3.x.  Usage: diag_gil.py REPORT
Writes to REPORT: "pid <pid>", "worker <tid>", "main <tid>", then "done <seconds>".
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
    start = time.time()
    re.match(r"(a+)+$", "a" * 26 + "b")  # MARK: hog
    report("done", "%.1f" % (time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
