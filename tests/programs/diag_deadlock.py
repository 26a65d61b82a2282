"""Lock-order deadlock: thread 'A' takes l1 then l2, thread 'B' takes l2 then l1; the main
thread joins them.  Every thread ends up blocked on a lock, forever.

Runs on CPython 2.7 and 3.x.  Usage: diag_deadlock.py REPORT [--rlock]
Appends to REPORT:  pid <pid>, then  A <tid>  and  B <tid>  (kernel tids), then  joining.
signal.alarm: the process dies by itself after 90 s, should nobody kill it.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report


make_lock = threading.RLock if "--rlock" in sys.argv[2:] else threading.Lock
l1 = make_lock()
l2 = make_lock()
a_holds = threading.Event()
b_holds = threading.Event()
tids = {}


def take_a():
    tids["A"] = gettid()
    with l1:
        a_holds.set()
        b_holds.wait(30)
        with l2:  # MARK: a_blocks
            pass


def take_b():
    tids["B"] = gettid()
    with l2:
        b_holds.set()
        a_holds.wait(30)
        with l1:  # MARK: b_blocks
            pass


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
ta = threading.Thread(target=take_a, name="A")
tb = threading.Thread(target=take_b, name="B")
ta.start()
tb.start()
a_holds.wait(30)
b_holds.wait(30)
report("A", tids["A"])
report("B", tids["B"])
report("joining")
ta.join()  # MARK: main_join
tb.join()
