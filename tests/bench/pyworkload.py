"""One Python workload for python_workloads.py. Runs under the interpreter being measured
(2.7 and 3.6+). Prints its pid and "ready", waits for a line on stdin (so that a tracer can
be attached with -p PID first), runs the workload for DURATION seconds, and prints
"OPS ELAPSED CPU": operations completed, seconds, and the CPU seconds the workload used,
its own and its reaped children's, user and system (in-kernel BPF programs run in the
context of the process whose syscall they hook, so their time is in there).

    pyworkload.py NAME DURATION

NAME:
  lock        4 threads increment a counter under one threading.Lock
  condition   2 threads hand a token back and forth through a threading.Condition
  queue       2 producers, 2 consumers on a queue.Queue(maxsize=64); ops = items consumed
  run         subprocess.run(["/bin/true"]) (call() on 2.7) in a loop; ops = runs
  popen       subprocess.Popen(["/bin/true"]).wait() in a loop; ops = runs"""
import os
import subprocess
import sys
import threading
import time

try:
    import queue
except ImportError:  # 2.7
    import Queue as queue

now = getattr(time, "monotonic", time.time)


def run_threads(targets, duration):
    stop = [False]
    counts = [0] * len(targets)
    threads = [threading.Thread(target=t, args=(i, stop, counts)) for i, t in enumerate(targets)]
    t0 = now()
    for t in threads:
        t.start()
    time.sleep(duration)
    stop[0] = True
    return threads, counts, t0


def lock_workload(duration):
    lock = threading.Lock()
    shared = [0]

    def worker(i, stop, counts):
        n = 0
        while not stop[0]:
            for _ in range(100):
                with lock:
                    shared[0] += 1
            n += 100
        counts[i] = n

    threads, counts, t0 = run_threads([worker] * 4, duration)
    for t in threads:
        t.join()
    return sum(counts), now() - t0


def condition_workload(duration):
    cond = threading.Condition()
    state = {"turn": 0}

    def player(i, stop, counts):
        n = 0
        with cond:
            while not stop[0]:
                while state["turn"] != i and not stop[0]:
                    cond.wait(0.1)
                state["turn"] = 1 - i
                n += 1
                cond.notify()
        counts[i] = n

    threads, counts, t0 = run_threads([player, player], duration)
    for t in threads:
        t.join()
    return sum(counts), now() - t0


def queue_workload(duration):
    q = queue.Queue(maxsize=64)
    done = object()

    def producer(i, stop, counts):
        while not stop[0]:
            q.put(i)
        q.put(done)

    def consumer(i, stop, counts):
        n = 0
        while True:
            item = q.get()
            if item is done:
                break
            n += 1
        counts[i] = n

    threads, counts, t0 = run_threads([producer, producer, consumer, consumer], duration)
    for t in threads:
        t.join()
    return sum(counts), now() - t0


def process_loop(duration, once):
    n = 0
    t0 = now()
    while now() - t0 < duration:
        once()
        n += 1
    return n, now() - t0


def run_workload(duration):
    if hasattr(subprocess, "run"):
        return process_loop(duration, lambda: subprocess.run(["/bin/true"]))
    return process_loop(duration, lambda: subprocess.call(["/bin/true"]))


def popen_workload(duration):
    return process_loop(duration, lambda: subprocess.Popen(["/bin/true"]).wait())


WORKLOADS = {"lock": lock_workload, "condition": condition_workload, "queue": queue_workload,
             "run": run_workload, "popen": popen_workload}


def main():
    name, duration = sys.argv[1], float(sys.argv[2])
    sys.stdout.write("%d ready\n" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
    t0 = os.times()
    ops, elapsed = WORKLOADS[name](duration)
    t1 = os.times()
    cpu = sum(t1[i] - t0[i] for i in range(4))  # user, system, children's user and system
    sys.stdout.write("%d %.6f %.6f\n" % (ops, elapsed, cpu))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
