"""Forks past the tracer's rate limit, for tests/test_fork_workers.py: thread 'holder' takes a
Lock and sleeps with it, and the program creates GO_FILE.ready; once GO_FILE exists, the
main thread forks COUNT children that exit at once (reaped), then one more whose child
takes the lock (never returns); the parent waits in os.waitpid(). Traced with -p and
`--rate-limit 0.001/1`, the last fork's kernel record is rate limited. Kills itself after
60 s (signal.alarm). Runs on 2.7 and 3.x.

    fork_rate_limited.py COUNT GO_FILE
"""
import os
import signal
import sys
import threading
import time

signal.alarm(60)
lock = threading.Lock()
held = threading.Event()


def hold():
    with lock:
        held.set()
        time.sleep(60)


t = threading.Thread(target=hold, name="holder")
t.daemon = True
t.start()
held.wait()
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
pid = os.fork()                             # MARK: fork_site
if pid == 0:
    with lock:                              # MARK: child_take
        pass
    os._exit(0)
os.waitpid(pid, 0)
