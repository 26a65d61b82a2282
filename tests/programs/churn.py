# Creates, runs and frees a new function every ~30 ms (fn_<i> in file gen_<i>.py, first line
# i % 40 + 1), so that new code objects and strings reuse the addresses of freed ones. For the
# cache-staleness test of test_dump.py. Valid on Python 2.7 and 3.x.
# Usage: churn.py READY_FILE
import os
import sys
import threading

READY = sys.argv[1]
ev = threading.Event()


def churn():
    i = 0
    while True:
        src = "\n" * (i % 40) + "def fn_%d(ev):\n    ev.wait(0.03)\n" % i
        ns = {}
        exec(compile(src, "gen_%d.py" % i, "exec"), ns)
        ns["fn_%d" % i](ev)
        del ns
        i += 1


t = threading.Thread(target=churn, name="churn")
t.daemon = True
t.start()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
ev.wait(3600)
