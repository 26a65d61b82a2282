"""A thread blocks in a C call while it holds the GIL: a call through ctypes.PyDLL keeps
the GIL (ctypes.CDLL releases it), so libc's sleep() called that way stops every other
Python thread. The main thread, back from its own sleep, waits for the GIL for good.

The holder is off the CPU (stat S) the whole time: what proves its hold is that it stays
blocked, not that it runs.

Runs on CPython 2.7 and 3.x.  Usage: gil_held_blocked.py REPORT
Writes to REPORT: "main <tid>", "holder <tid>" (just before the call).
Kills itself after 90 s (signal.alarm).
"""
import ctypes
import signal
import threading
import time

from progutil import gettid, report


def hold():
    libc = ctypes.PyDLL(None)
    report("holder", gettid())
    libc.sleep(600)  # MARK: holding


def main():
    signal.alarm(90)
    report("main", gettid())
    t = threading.Thread(target=hold, name="sleeps-holding-gil")
    t.daemon = True
    t.start()
    time.sleep(0.5)  # MARK: wants_gil
    report("never")


main()
