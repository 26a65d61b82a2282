# Threads whose stacks change all the time: two threads recurse to a random depth and
# return, nonstop, under an entry function with a known name; the main thread sleeps.
# For test_torn_stacks.py (a dump must give each thread's stack whole, from its entry
# frame, or mark it as cut). Valid on Python 2.7 and 3.x.
# Usage: torn_recursers.py READY_FILE [THREADS]
import os
import random
import sys
import threading
import time

READY = sys.argv[1]
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2


def down(n):
    if n:
        return down(n - 1) + 1
    return 0


def recurser_entry():
    rnd = random.Random()
    while True:
        down(rnd.randint(1, 40))


for i in range(THREADS):
    t = threading.Thread(target=recurser_entry, name="recurser-%d" % i)
    t.daemon = True
    t.start()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
while True:
    time.sleep(1)
