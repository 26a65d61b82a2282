# 50 threads (by default), each blocked 40 Python frames deep; for tests/bench/dump_bench.py.
# Valid on Python 2.7 and 3.x. Usage: many_threads.py READY_FILE [THREADS] [DEPTH]
import os
import sys
import threading

READY = sys.argv[1]
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
DEPTH = int(sys.argv[3]) if len(sys.argv) > 3 else 40
BLOCK = threading.Lock()
BLOCK.acquire()
started = threading.Semaphore(0)


def descend(n):
    if n > 1:
        return descend(n - 1)
    started.release()
    BLOCK.acquire()


def body():
    # _bootstrap, _bootstrap_inner, run, body: 4 frames (3 on 2.7's __bootstrap path too)
    descend(DEPTH - 4)


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
