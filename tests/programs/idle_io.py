"""Idle servers and real I/O waits side by side, for tests/test_idle_io.py.  Runs on CPython
2.7 and 3.x (the asyncio mode: 3.7+).

Usage: idle_io.py REPORT MODE
MODE:
  threads  threads that wait for new work only, each for good:
             'acceptor'   accept() on a listening TCP socket, no timeout
             'unixacc'    accept() on a listening unix socket
             'sockserver' socketserver.TCPServer.serve_forever(poll_interval=100): poll (3.x)
                          or select (2.7) on its listening socket with a 100 s timeout (longer
                          than the session: the call never restarts during it)
             'selector'   selectors.DefaultSelector (epoll; 2.7: select.select) on two
                          listening sockets, no timeout
           and threads that wait for something that may never come (still long waits):
             'recv'       recv() on a connected TCP socket whose server never answers
             'piper'      read() of a pipe whose write end stays open here
           the main thread waits (3.x) for a ThreadPoolExecutor future whose worker
           ('pool_0') is in accept() on a listening socket; on 2.7 on an Event.
  asyncio  the main thread runs asyncio.start_server(...).serve_forever() with nobody
           connecting; thread 'aioclient' runs its own loop whose task awaits
           StreamReader.read() on a connection to a server that never answers.
Appends to REPORT: pid, then `tid NAME TID` per thread, `selfpipe FD` (asyncio: the server
loop's loop._ssock.fileno()), `ready`.  signal.alarm: the process dies by itself after 150 s.
"""
import os
import select
import signal
import socket
import sys
import threading
import time

from progutil import gettid, report

MODE = sys.argv[2]
signal.alarm(150)
report("pid", os.getpid())


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


QUIET = listener()  # connections complete in its backlog; nobody ever answers
ready_count = [0]
ready_lock = threading.Lock()


def started(name=None):
    report("tid", name or threading.current_thread().name, gettid())


def acceptor():
    s = listener()
    started()
    s.accept()  # MARK: accept


def unixacc():
    path = "/tmp/idle_io_%d.sock" % os.getpid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    started()
    s.accept()


def sockserver():
    try:
        import socketserver
    except ImportError:
        import SocketServer as socketserver  # 2.7
    srv = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    started()
    srv.serve_forever(poll_interval=100)


def selector_loop():
    a, b = listener(), listener()
    started()
    try:
        import selectors
    except ImportError:  # 2.7
        while True:
            select.select([a, b], [], [])
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ)
    sel.register(b, selectors.EVENT_READ)
    while True:
        sel.select()


def recv_forever():
    c = socket.create_connection(QUIET.getsockname())
    started()
    c.recv(16)  # MARK: recv


def piper():
    r, w = os.pipe()
    piper.keep = w
    started()
    os.read(r, 1)  # MARK: pipe


def run_threads():
    for name, fn in (("acceptor", acceptor), ("unixacc", unixacc), ("sockserver", sockserver),
                     ("selector", selector_loop), ("recv", recv_forever), ("piper", piper)):
        t = threading.Thread(target=fn, name=name)
        t.daemon = True
        t.start()
    started("MainThread")
    if sys.version_info[0] >= 3:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(1)

        def pooled():
            threading.current_thread().name = "pool_0"
            return acceptor()
        fut = pool.submit(pooled)
        wait_tids(8)
        report("ready")
        fut.result()  # MARK: result
    else:
        wait_tids(7)
        report("ready")
        threading.Event().wait()


def wait_tids(n):
    deadline = time.time() + 30
    while time.time() < deadline:
        with open(sys.argv[1]) as f:
            if sum(1 for l in f if l.startswith("tid ")) >= n:
                return
        time.sleep(0.05)
    raise SystemExit("threads did not start")


def run_asyncio():
    import idle_io_aio  # async syntax: a module of its own (2.7 and 3.6 cannot parse it)
    idle_io_aio.run(QUIET, started, wait_tids)


if MODE == "threads":
    run_threads()
else:
    run_asyncio()
