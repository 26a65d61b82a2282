"""queue.join() with a dead worker (../shared/field/13_queue_join_worker_died.py): a job
raises a BaseException that the worker's `except Exception` does not catch, the worker
dies without task_done(), the main thread waits in q.join() forever and the other worker
idles in q.get().  A hang, but no lock cycle: never a `deadlock`.

Runs on CPython 2.7 and 3.x.  Usage: waitfor_queue_join.py REPORT
Appends to REPORT:  pid <pid>, then  joining.
"""
import os
import signal
import threading
import time

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue

from progutil import report


class InternalError(BaseException):
    pass


def run(job):
    if job == "c":
        raise InternalError("no node_info")
    return job


def worker(q):
    while True:
        job = q.get()  # MARK: worker_get
        try:
            run(job)
        except Exception:
            pass
        q.task_done()


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
q = queue.Queue()
for i in range(2):
    t = threading.Thread(target=worker, args=(q,), name="worker-%d" % i)
    t.daemon = True
    t.start()
for job in "abcd":
    q.put(job)
time.sleep(0.3)
report("joining")
q.join()  # MARK: main_join
