"""A thread that reaps every child (waitpid(-1)) steals the status another thread waits for.

Runs on CPython 2.7 and 3.x.  Usage: trace_reaper.py [--gate]
Protocol on stdout (one flushed line each):
  ready <pid>          at start (then, with --gate, waits for a line on stdin)
  reaper <tid>         the reaper thread's kernel tid
  child <pid>          the main thread started `sh -c 'exit 5'`
  rc <returncode>      what Popen.wait() returned in the main thread (0: status lost)
  reaped <pid> <status>   what the reaper got (raw waitpid status)
"""
import errno
import os
import subprocess
import sys
import threading
import time

from progutil import gettid


def say(*words):
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def main(argv):
    say("ready", os.getpid())
    if "--gate" in argv:
        sys.stdin.readline()
    stop = threading.Event()
    started = threading.Event()
    reaped = []

    def reaper():
        say("reaper", gettid())
        started.set()
        while not stop.is_set():
            try:
                pid, status = os.waitpid(-1, 0)
            except OSError as e:
                if e.errno != errno.ECHILD:
                    raise
                time.sleep(0.01)
                continue
            reaped.append((pid, status))

    t = threading.Thread(target=reaper)
    t.daemon = True
    t.start()
    started.wait(10)
    p = subprocess.Popen(["sh", "-c", "exit 5"])
    say("child", p.pid)
    time.sleep(0.5)  # the child is long gone and reaped by the reaper by now
    say("rc", p.wait())
    stop.set()
    t.join(5)
    for pid, status in reaped:
        say("reaped", pid, status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
