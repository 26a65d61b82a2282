# Threads that never block: they take turns on the GIL. For the GIL tests of test_dump.py.
# Valid on Python 2.7 and 3.x. Usage: busy.py READY_FILE [THREADS]
import os
import sys
import threading

READY = sys.argv[1]
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def spin():
    n = 0
    while True:
        n += 1


for i in range(THREADS):
    t = threading.Thread(target=spin, name="spin-%d" % i)
    t.daemon = True
    t.start()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
spin()
