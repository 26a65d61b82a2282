# THREADS threads (default 50), each DEPTH frames deep with a `with` of its own lock in every
# frame (the most a wait-for graph has to look at), then blocked on one shared lock; for
# tests/bench/waitgraph_bench.py. Valid on Python 2.7 and 3.x.
# Usage: waitfor_bench_threads.py READY_FILE [THREADS] [DEPTH]
import os
import sys
import threading

READY = sys.argv[1]
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
DEPTH = int(sys.argv[3]) if len(sys.argv) > 3 else 20
BLOCK = threading.Lock()
BLOCK.acquire()
started = threading.Semaphore(0)


def descend(n, locks):
    with locks[n]:
        if n > 0:
            return descend(n - 1, locks)
        started.release()
        BLOCK.acquire()


def body():
    descend(DEPTH - 1, [threading.Lock() for _ in range(DEPTH)])


for i in range(THREADS):
    t = threading.Thread(target=body, name="bench-%d" % i)
    t.daemon = True
    t.start()
for i in range(THREADS):
    started.acquire()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
BLOCK.acquire()
