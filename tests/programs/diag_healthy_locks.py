"""Healthy lock traffic: 4 threads take and release one shared Lock ACQUISITIONS times
each, and two threads play ROUNDS rounds of ping-pong on a Condition.  Nothing waits long.
A fixed amount of work, not a fixed time: on a loaded host it takes longer, never does less.

Runs on CPython 2.7 and 3.x.  Usage: diag_healthy_locks.py REPORT [ACQUISITIONS [ROUNDS]]
Appends to REPORT:  pid <pid>, then  done <acquisitions> <ping-pong rounds>.
The main thread joins with short timeouts (a join of a long-running worker would be a long
wait).
"""
import os
import signal
import sys
import threading
import time


def report(*words):
    with open(sys.argv[1], "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
per_thread = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 400

lock = threading.Lock()
counts = [0, 0, 0, 0]


def hammer(i):
    while counts[i] < per_thread:
        for _ in range(100):
            with lock:
                counts[i] += 1


cond = threading.Condition()
game = {"turn": 0, "done": False, "rounds": 0}


def ping_pong(me):
    while True:
        with cond:
            while game["turn"] != me and not game["done"]:
                cond.wait()
            if game["done"]:
                return
            game["rounds"] += 1
            if game["rounds"] >= rounds:
                game["done"] = True
            game["turn"] = 1 - me
            cond.notify_all()


threads = [threading.Thread(target=hammer, args=(i,), name="hammer-%d" % i) for i in range(4)]
threads += [threading.Thread(target=ping_pong, args=(me,), name="pingpong-%d" % me) for me in (0, 1)]
for t in threads:
    t.start()
for t in threads:
    while t.is_alive():
        t.join(0.1)
report("done", sum(counts), game["rounds"])
