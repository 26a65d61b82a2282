# A worker child dies while a thread waits for a lock that a LIVE thread of this process
# holds (in a `with`, sitting in recv() on a connection that never answers): the waiter
# waits for that thread, not for the dead child. For tests/test_worker_died_holder.py
# (2.7, 3.6-3.13). Prints "pid P", "child C", "tid waiter T", then "ready"; dies by itself
# after 300 s.
import os
import signal
import socket
import sys
import threading
import time


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def gettid():
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None).syscall(186)


say("pid %d" % os.getpid())
signal.alarm(300)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
conn = socket.create_connection(srv.getsockname())
peer, _ = srv.accept()
child = os.fork()
if child == 0:
    while True:
        time.sleep(100)
say("child %d" % child)
lock = threading.Lock()
held = threading.Event()


def holder():
    with lock:
        held.set()
        conn.recv(16)  # never answered


def waiter():
    held.wait()
    say("tid waiter %d" % gettid())
    with lock:  # MARK: waits
        pass


ts = [threading.Thread(target=holder, name="holder"), threading.Thread(target=waiter, name="waiter")]
for t in ts:
    t.daemon = True
    t.start()
time.sleep(0.5)
say("ready")
while True:
    time.sleep(100)
