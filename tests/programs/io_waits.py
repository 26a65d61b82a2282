"""Threads blocked in I/O for good, for tests/test_io_waits.py.  Runs on CPython 2.7 and 3.x.

Usage: io_waits.py REPORT MODE
MODE:
  single  the main thread (the only one) reads from a loopback TCP server that accepts
          and never answers, with no socket timeout
  multi   threads, each blocked for good:
            'recv-to'  the same read, with a socket timeout of 300 s (Python polls first)
            'piper'    reads a pipe whose write end stays open in this process
            'locker'   flock(LOCK_EX) on a file another process (a child) holds locked
            'unixer'   reads a unix socket connected to that child, which never accepts
            'epoller'  epoll_wait on the never-answering TCP connection, no timeout
            'io-holder' holds io_lock (a `with`) while it reads that server, no timeout
            'lock-waiter' waits for io_lock
          and, on 3.x, the main thread waits for a ThreadPoolExecutor future whose worker
          ('worker_0') reads from the never-answering server, with no timeout.
  hostile (as an unprivileged user) 'poller' polls a million fds (all -1), the main thread
          reads a FIFO whose name carries terminal escapes and a line separator
Appends to REPORT: pid, port, then one line per thread  tid NAME TID, holder PID, ready.
signal.alarm: the process dies by itself after 120 s.
"""
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from progutil import gettid, report

MODE = sys.argv[2]
signal.alarm(120)

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(16)          # connections complete in the backlog; nobody ever answers
PORT = srv.getsockname()[1]
report("pid", os.getpid())
report("port", PORT)


def connect(timeout):
    c = socket.create_connection(("127.0.0.1", PORT))
    c.settimeout(timeout)
    return c


def recv_forever(timeout):
    c = connect(timeout)
    report("tid", threading.current_thread().name, gettid())
    c.recv(16)  # MARK: recv


def fetch():
    c = connect(None)
    report("tid", threading.current_thread().name, gettid())
    return c.recv(16)  # MARK: fetch


if MODE == "single":
    threading.current_thread().name = "MainThread"
    c = connect(None)
    report("tid", "MainThread", gettid())
    report("ready")
    c.recv(16)  # MARK: single
    sys.exit(0)

if MODE == "hostile":
    # run as an unprivileged user: a poll over a million entries (all fd -1: ignored by the
    # kernel, so it blocks for good), a FIFO whose name carries terminal escapes, read
    import ctypes
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(hard, 1 << 20)
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    fifo = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "fifo\x1b[31mRED\x07\n\u2028end")
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer (itself) stays: the read blocks for good

    def poller():
        class PollFd(ctypes.Structure):
            _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]
        arr = (PollFd * n)()
        for i in range(n):
            arr[i].fd = -1
        report("tid", "poller", gettid())
        report("nfds", n)
        ctypes.CDLL(None, use_errno=True).poll(arr, ctypes.c_ulong(n), -1)  # MARK: hostile_poll

    t = threading.Thread(target=poller, name="poller")
    t.daemon = True
    t.start()
    report("tid", "MainThread", gettid())
    time.sleep(3)  # the array is filled
    report("ready")
    os.read(fd, 1)  # MARK: hostile_fifo
    sys.exit(0)

r, w = os.pipe()  # w stays open: the read never sees EOF


def piper():
    report("tid", "piper", gettid())
    os.read(r, 1)  # MARK: pipe


lockfile = os.path.join(tempfile.gettempdir(), "io_waits_%d.lock" % os.getpid())
unixpath = os.path.join(tempfile.gettempdir(), "io_waits_%d.sock" % os.getpid())
holder = subprocess.Popen([sys.executable, "-c",
                           "import fcntl, socket, sys, time\n"
                           "f = open(sys.argv[1], 'w')\n"
                           "fcntl.flock(f, fcntl.LOCK_EX)\n"
                           "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[2]); s.listen(4)\n"
                           "sys.stdout.write('locked\\n'); sys.stdout.flush()\n"
                           "time.sleep(120)\n", lockfile, unixpath],
                          stdout=subprocess.PIPE, stdin=open(os.devnull))
holder.stdout.readline()
report("holder", holder.pid)


def locker():
    f = open(lockfile, "w")
    report("tid", "locker", gettid())
    fcntl.flock(f, fcntl.LOCK_EX)  # MARK: flock


def unixer():
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(unixpath)  # the holder listens and never accepts
    report("tid", "unixer", gettid())
    u.recv(16)  # MARK: unix


def epoller():
    import select
    c = connect(None)
    ep = select.epoll()
    ep.register(c.fileno(), select.EPOLLIN)
    report("tid", "epoller", gettid())
    ep.poll()  # MARK: epoll


io_lock = threading.Lock()
held = threading.Event()


def io_holder():
    c = connect(None)
    with io_lock:  # MARK: io_lock_taken
        report("tid", "io-holder", gettid())
        held.set()
        c.recv(16)  # MARK: io_holder


def lock_waiter():
    held.wait()
    report("tid", "lock-waiter", gettid())
    with io_lock:  # MARK: lock_waiter
        pass


threads = [threading.Thread(target=io_holder, name="io-holder"),
           threading.Thread(target=lock_waiter, name="lock-waiter"),
           threading.Thread(target=recv_forever, args=(300.0,), name="recv-to"),
           threading.Thread(target=piper, name="piper"),
           threading.Thread(target=locker, name="locker"),
           threading.Thread(target=unixer, name="unixer"),
           threading.Thread(target=epoller, name="epoller")]
for t in threads:
    t.daemon = True
    t.start()

if sys.version_info[0] >= 3:
    from concurrent.futures import ThreadPoolExecutor
    try:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker")
    except TypeError:  # 3.5 had no thread_name_prefix
        pool = ThreadPoolExecutor(max_workers=1)
    fut = pool.submit(fetch)
    report("tid", "MainThread", gettid())
    time.sleep(0.5)
    report("ready")
    fut.result()  # MARK: result
else:
    report("tid", "MainThread", gettid())
    time.sleep(0.5)
    report("ready")
    while True:
        time.sleep(1)
