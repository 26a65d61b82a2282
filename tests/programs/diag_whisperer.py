"""The pytest-at-exit incident: a non-daemon thread blocked in queue.get() keeps the
interpreter from exiting after the main thread falls off the end of the script.

Runs on CPython 2.7 and 3.x.  Usage: diag_whisperer.py REPORT
Appends to REPORT (one line each, as they happen):
  pid <pid>
  whisperer <tid>      the Whisperer thread's kernel tid, just before it blocks
  main_done            the main thread is about to fall off the end
signal.alarm: the process dies by itself after 90 s, should nobody kill it.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue


jobs = queue.Queue()


class Whisperer(threading.Thread):
    def __init__(self):
        threading.Thread.__init__(self, name="Whisperer-1")

    def run(self):
        report("whisperer", gettid())
        while True:
            item = jobs.get()  # MARK: whisper_get
            if item is None:
                return


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
w = Whisperer()
w.start()
time.sleep(0.2)
report("main_done")
# falls off the end: the interpreter now waits for the non-daemon Whisperer forever
