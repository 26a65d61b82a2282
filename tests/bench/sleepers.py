"""Idle Python threads for tracer_cost.py: THREADS threads that block until killed, half in
time.sleep (clock_nanosleep: not a futex wait) and half in threading.Event.wait (a futex
wait, reported once as a long wait). Prints "ready" when all of them are started.

    sleepers.py THREADS"""
import sys
import threading
import time


def main():
    n = int(sys.argv[1])
    forever = threading.Event()
    threads = []
    for i in range(n - 1):  # the main thread is the n-th
        target = (lambda: time.sleep(1e6)) if i % 2 else forever.wait
        t = threading.Thread(target=target, daemon=True)
        t.start()
        threads.append(t)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    time.sleep(1e6)


if __name__ == "__main__":
    main()
