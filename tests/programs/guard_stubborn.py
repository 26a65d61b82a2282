"""Ignores SIGTERM, then hangs at exit joining a non-daemon thread blocked on a lock it
holds. The thread's name tries to start GitHub Actions workflow commands of its own
(newline, '::', '%', ','). Usage: guard_stubborn.py REPORT; appends "pid <pid>".
Runs on CPython 2.7 and 3.x; signal.alarm ends it after 90 s should nobody kill it."""
import os
import signal
import threading

from progutil import report

EVIL = "evil\n::warning file=x.py,line=1::injected %0A,"

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.alarm(90)
lock = threading.Lock()
started = threading.Event()


def worker():
    lock.acquire()
    started.set()
    lock.acquire()  # MARK: blocks


threading.Thread(target=worker, name=EVIL).start()
started.wait(10)
report("pid", os.getpid())
