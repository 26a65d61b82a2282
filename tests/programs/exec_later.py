# Blocks in a few threads, then execs into `sleep` (for the exec-during-dump test).
# Valid on Python 2.7 and 3.x. Usage: exec_later.py READY_FILE DELAY_SECONDS
import os
import sys
import threading
import time

READY, DELAY = sys.argv[1], float(sys.argv[2])
for i in range(5):
    t = threading.Thread(target=time.sleep, args=(1000,), name="sleeper-%d" % i)
    t.daemon = True
    t.start()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
time.sleep(DELAY)
os.execv("/bin/sleep", ["sleep", "1000"])
