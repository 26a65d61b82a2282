"""Healthy programs whose threads wait long, on purpose, while some other thread sleeps,
polls, does I/O or works in a child process.  None of them hangs: a tracer must report no
`hang` for any of them, even at `-t 1`.

Runs on CPython 2.7 and 3.x.  Usage: waitfor_healthy.py REPORT KIND [SECONDS]
KIND:
  service   the main thread waits on a stop Event (untimed) while two workers poll with
            time.sleep(); a timer sets the Event at the end (../shared/field/nc3_*)
  pool_io   the main thread waits for thread-pool futures (untimed) while the workers read
            from a slow local server (concurrent.futures; plain threads + join on 2.7)
  idle_pool a thread pool idles: its workers wait for work (untimed queue get) while the main
            thread waits for one slow task (a sleep) to finish
  mp_pool   an idle multiprocessing.Pool between batches, then a batch of slow tasks that
            the main thread waits for (untimed) while the work runs in the child processes
  prodcons  a producer that sleeps between items, a consumer in an untimed get(), the main
            thread in an untimed join()
  exit_busy the main thread ends while a non-daemon worker still sleeps (the interpreter's
            shutdown waits for it: normal)
Appends to REPORT:  pid <pid>, then  done.
signal.alarm: the process dies by itself after 90 s.
"""
import os
import signal
import socket
import sys
import threading
import time

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue

from progutil import report

KIND = sys.argv[2]
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0


def service():
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            time.sleep(0.3)

    for i in range(2):
        t = threading.Thread(target=poller, name="poller-%d" % i)
        t.daemon = True
        t.start()
    timer = threading.Timer(SECONDS, stop.set)
    timer.start()
    stop.wait()
    timer.join()


def slow_server():
    """A local server that sends one byte every 0.4 s to each client, for SECONDS."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve(conn):
        end = time.time() + SECONDS
        try:
            while time.time() < end:
                time.sleep(0.4)
                conn.sendall(b"x")
        finally:
            conn.close()

    def accept():
        while True:
            conn, _ = srv.accept()
            t = threading.Thread(target=serve, args=(conn,), name="server-conn")
            t.daemon = True
            t.start()

    t = threading.Thread(target=accept, name="server")
    t.daemon = True
    t.start()
    return srv.getsockname()


def fetch(addr):
    c = socket.create_connection(addr)
    n = 0
    while True:
        b = c.recv(1)
        if not b:
            break
        n += 1
    c.close()
    return n


def pool_io():
    addr = slow_server()
    try:
        from concurrent.futures import ThreadPoolExecutor
    except ImportError:
        ThreadPoolExecutor = None
    if ThreadPoolExecutor is not None:
        with ThreadPoolExecutor(max_workers=3) as ex:
            futs = [ex.submit(fetch, addr) for _ in range(3)]
            for f in futs:
                f.result()
    else:
        ts = [threading.Thread(target=fetch, args=(addr,), name="fetch-%d" % i) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


def idle_pool():
    q = queue.Queue()
    done = threading.Event()

    def worker():
        while True:
            job = q.get()
            if job is None:
                return
            job()

    ws = [threading.Thread(target=worker, name="pool-%d" % i) for i in range(3)]
    for w in ws:
        w.daemon = True
        w.start()
    time.sleep(1.0)  # idle workers

    def slow():
        time.sleep(SECONDS)
        done.set()

    q.put(slow)
    done.wait()
    for _ in ws:
        q.put(None)


def nap(x):
    time.sleep(x)
    return x


def mp_pool():
    import multiprocessing
    pool = multiprocessing.Pool(2)
    pool.map(nap, [0.01, 0.01])
    time.sleep(SECONDS / 2)   # idle between batches
    pool.map(nap, [SECONDS / 2, SECONDS / 2])
    pool.close()
    pool.join()


def prodcons():
    q = queue.Queue()

    def producer():
        for i in range(int(SECONDS / 1.2) + 1):
            time.sleep(1.2)
            q.put(i)
        q.put(None)

    def consumer():
        while q.get() is not None:
            pass

    ts = [threading.Thread(target=producer, name="producer"),
          threading.Thread(target=consumer, name="consumer")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def exit_busy():
    t = threading.Thread(target=time.sleep, args=(SECONDS,), name="finisher")
    t.start()   # non-daemon: the interpreter waits for it at exit


if __name__ == "__main__":
    signal.alarm(90)
    report("pid", os.getpid())
    time.sleep(0.5)  # the tracer gets to know the process first
    globals()[KIND]()
    report("done")
