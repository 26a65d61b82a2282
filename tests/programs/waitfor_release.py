"""Every thread blocked for good, until a signal handler releases the locks: an
all_threads_blocked hang that ends.  The main thread took `gate` and `stop` with bare
acquire(); the worker waits for `gate`, the main thread for `stop` (both untimed).  On
SIGUSR1 the handler (run by the main thread: on 3.x a lock wait is interrupted by signals)
releases both, the worker gets `gate`, and the program ends.

Runs on CPython 2.7 and 3.x (2.7 never runs the handler while the main thread waits).
Usage: waitfor_release.py REPORT
Appends to REPORT:  pid <pid>, W <tid>, blocked, then  done.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report

gate = threading.Lock()
stop = threading.Lock()
tids = {}


def on_usr1(signum, frame):
    gate.release()
    stop.release()


def worker():
    tids["W"] = gettid()
    gate.acquire()  # MARK: worker_waits
    gate.release()


signal.alarm(90)
signal.signal(signal.SIGUSR1, on_usr1)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
gate.acquire()
stop.acquire()
w = threading.Thread(target=worker, name="W")
w.start()
while "W" not in tids:
    time.sleep(0.01)
report("W", tids["W"])
report("blocked")
stop.acquire()  # MARK: main_waits
w.join()
report("done")
