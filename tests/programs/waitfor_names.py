"""The source names of locks, in the forms a `with` loads them: a module global read from a
function (LOAD_GLOBAL), an attribute of self (LOAD_FAST + LOAD_ATTR), a local (LOAD_FAST)
and a global read by module-level code (LOAD_NAME).

Runs on CPython 2.7 and 3.x.  Usage: waitfor_names.py REPORT
'A' (Books.post) takes ledger_lock then self._audit; 'B' (Books.rotate) takes the same
_audit through a local, then ledger_lock: a lock-order deadlock, while 'runner' keeps
running.  Both functions first run 200 times without contention, so that 3.11+ runs them
specialized (adaptive opcodes and inline caches in co_code_adaptive).  Then the main thread,
at module level, waits for ledger_lock too.
Appends to REPORT:  pid <pid>, then  <thread name> <tid>  for each thread, then  ready.
signal.alarm: the process dies by itself after 90 s.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report

ledger_lock = threading.Lock()
tids = {}
stop = threading.Event()


class Books(object):
    def __init__(self):
        self._audit = threading.Lock()

    def post(self, go, other, pause):
        with ledger_lock:  # MARK: post_holds
            go.set()
            other.wait(30)
            time.sleep(pause)
            with self._audit:  # MARK: post_waits
                pass

    def rotate(self, go, other, pause):
        audit = self._audit
        with audit:  # MARK: rotate_holds
            go.set()
            other.wait(30)
            time.sleep(pause)
            with ledger_lock:  # MARK: rotate_waits
                pass


def runner():
    tids["runner"] = gettid()
    while not stop.is_set():
        time.sleep(0.01)


def thread(name, method, go, other):
    def run():
        tids[name] = gettid()
        method(go, other, 0.2)
    return threading.Thread(target=run, name=name)


signal.alarm(90)
report("pid", os.getpid())
books = Books()
done = threading.Event()
done.set()
for _ in range(200):  # warm up: specialized on 3.11+
    books.post(threading.Event(), done, 0)
    books.rotate(threading.Event(), done, 0)
time.sleep(0.5)  # the tracer gets to know the process first
tids["MainThread"] = gettid()
a_go, b_go = threading.Event(), threading.Event()
threads = [threading.Thread(target=runner, name="runner"),
           thread("A", books.post, a_go, b_go), thread("B", books.rotate, b_go, a_go)]
for t in threads:
    t.daemon = True
    t.start()
while len(tids) < len(threads) + 1:
    time.sleep(0.01)
for name in sorted(tids):
    report(name, tids[name])
time.sleep(0.5)  # A holds ledger_lock by now
report("ready")
with ledger_lock:  # MARK: main_waits
    pass
