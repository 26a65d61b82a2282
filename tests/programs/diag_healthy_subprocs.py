"""Healthy subprocess use: 40 subprocess.call(['true']), Popen/communicate, and calls from
several threads at once.  Every exit status arrives; nothing is lost.

Runs on CPython 2.7 and 3.x.  Usage: diag_healthy_subprocs.py REPORT
Appends to REPORT:  pid <pid>, then  done <number of children>  or  bad <what went wrong>.
"""
import os
import signal
import subprocess
import sys
import threading
import time


def report(*words):
    with open(sys.argv[1], "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
bad = []
n = 0
for i in range(40):
    rc = subprocess.call(["true"])
    n += 1
    if rc != 0:
        bad.append("true -> %r" % rc)
for i in range(5):
    p = subprocess.Popen(["sh", "-c", "echo out%d; exit %d" % (i, i)], stdout=subprocess.PIPE)
    out, _ = p.communicate()
    n += 1
    if p.returncode != i or out.strip() != ("out%d" % i).encode():
        bad.append("communicate %d -> %r %r" % (i, p.returncode, out))
results = []


def worker(k):
    for j in range(5):
        status = 10 + k
        results.append((status, subprocess.call(["sh", "-c", "exit %d" % status])))


threads = [threading.Thread(target=worker, args=(k,), name="spawner-%d" % k) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    while t.is_alive():
        t.join(0.1)
n += len(results)
bad += ["exit %d -> %r" % (want, got) for want, got in results if want != got]
if len(results) != 20:
    bad.append("%d threaded results" % len(results))
report("bad" if bad else "done", "; ".join(bad) if bad else n)
