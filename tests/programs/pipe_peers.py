# Pipe peers for tests/test_pipe_peers.py (2.7, 3.6-3.13; asyncio: pipe_peers_aio.py).
# Usage: pipe_peers.py MODE
#   threads  'reader-other' reads a pipe whose write end only a forked child holds (the
#            parent closed its copy); 'reader-self' reads a pipe whose write end this very
#            process keeps open (the child closed its copy); the main thread joins them.
#            Prints "child PID", "tid NAME TID" lines, then "ready".
#   selfonly one thread reads a pipe whose write end only this process holds (it never
#            closed it): the read never returns. Prints "ready".
#   childonly one thread reads a pipe whose write end only a forked child holds (it may
#            still write). Prints "child PID", then "ready".
#   selfsignal one thread reads a pipe whose write end only this process holds, and a
#            SIGUSR1 handler writes to it (waiting for a signal): prints "woke" when it does.
#   selfwakeup likewise, through signal.set_wakeup_fd(write end) and a SIGUSR1 handler that
#            does nothing (the interpreter's C handler writes the signal number).
#   mpqueue  multiprocessing: a worker takes a task from one Queue and is killed (SIGKILL,
#            as by the OOM killer) before it puts its result; this process then waits in
#            the result Queue's get() (a read of its pipe, whose write end only this process
#            still holds), while its own feeder thread of the task Queue waits, untimed, for
#            more to send: nothing can ever write. Prints "child PID", then "ready".
#   selflate FILE  like selfonly, with a second thread that sleeps until FILE exists, then
#            waits for good on a lock the reading thread holds: the read is reported before
#            the second thread is stuck, and proven a hang only when looked at again.
#   selftimed like selfonly, with a second thread in a timed wait (it may wake and write).
#   selfshared like selfonly, with a second thread waiting for a multiprocessing.Lock (a
#            process-shared semaphore) that a sleeping child could release. Prints "child PID".
#   hostile  (run as nobody) raises its fd limit, opens FDS pipes' worth of fds, forks
#            CHILDREN children that all keep every fd, then reads a pipe whose write end
#            only the last child holds at a high fd number. Prints "ready".
# Every mode prints "pid <pid>" first. Lines are flushed. Dies by itself after 300 s.
import os
import signal
import sys
import threading
import time


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


say("pid %d" % os.getpid())
signal.alarm(300)
MODE = sys.argv[1]


def gettid():
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None).syscall(186)


def threads_mode():
    r_other, w_other = os.pipe()
    r_self, w_self = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child keeps only w_other
        signal.alarm(300)
        os.close(r_other)
        os.close(r_self)
        os.close(w_self)
        while True:
            time.sleep(100)
    os.close(w_other)
    say("child %d" % pid)
    ready = []

    def reader(name, fd):
        say("tid %s %d" % (name, gettid()))
        ready.append(name)
        os.read(fd, 1)  # MARK: read

    ts = [threading.Thread(target=reader, args=("reader-other", r_other), name="reader-other"),
          threading.Thread(target=reader, args=("reader-self", r_self), name="reader-self")]
    for t in ts:
        t.daemon = True
        t.start()
    while len(ready) < 2:
        time.sleep(0.01)
    time.sleep(0.2)
    say("ready")
    for t in ts:
        t.join()


def selfonly_mode():
    r, w = os.pipe()
    say("ready")
    os.read(r, 1)  # MARK: selfonly


def read_retrying(fd):
    """os.read(fd, 1), again after EINTR (2.7 raises it when a handler ran; 3.5+ retry)."""
    import errno
    while True:
        try:
            return os.read(fd, 1)
        except OSError as e:
            if e.errno != errno.EINTR:
                raise


def selfsignal_mode():
    r, w = os.pipe()
    signal.signal(signal.SIGUSR1, lambda *a: os.write(w, b"x"))
    say("ready")
    read_retrying(r)  # MARK: selfsignal
    say("woke")


def selfwakeup_mode():
    import fcntl
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    signal.set_wakeup_fd(w)
    signal.signal(signal.SIGUSR1, lambda *a: None)
    say("ready")
    read_retrying(r)  # MARK: selfwakeup
    say("woke")


def childonly_mode():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(300)
        os.close(r)
        while True:
            time.sleep(100)
    os.close(w)
    say("child %d" % pid)
    say("ready")
    os.read(r, 1)  # MARK: childonly


def _mp_worker(tasks, results):
    tasks.get()
    os.kill(os.getpid(), signal.SIGKILL)  # dies before its result, like an OOM kill


def mpqueue_mode():
    import multiprocessing
    if hasattr(multiprocessing, "get_context"):  # 3.4+: fork, whatever the default (3.14:
        multiprocessing = multiprocessing.get_context("fork")  # forkserver)
    tasks, results = multiprocessing.Queue(), multiprocessing.Queue()
    w = multiprocessing.Process(target=_mp_worker, args=(tasks, results))
    w.start()
    tasks.put("job")  # starts this process's feeder thread for `tasks`
    w.join()  # the worker died: its copy of the results pipe is closed
    say("child %d" % w.pid)
    say("ready")
    results.get()  # MARK: mpqueue


def selflate_mode():
    r, w = os.pipe()
    lock = threading.Lock()
    lock.acquire()

    def late():
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.1)
        lock.acquire()
    t = threading.Thread(target=late, name="late")
    t.daemon = True
    t.start()
    say("ready")
    os.read(r, 1)  # MARK: selflate


def selftimed_mode():
    r, w = os.pipe()
    t = threading.Thread(target=lambda: threading.Event().wait(3600), name="timed")
    t.daemon = True
    t.start()
    say("ready")
    os.read(r, 1)  # MARK: selftimed


def selfshared_mode():
    import multiprocessing
    r, w = os.pipe()
    lock = multiprocessing.Lock()
    lock.acquire()
    pid = os.fork()
    if pid == 0:  # may release the lock one day; holds no end of the pipe
        signal.alarm(300)
        os.close(r)
        os.close(w)
        while True:
            time.sleep(100)
    say("child %d" % pid)
    t = threading.Thread(target=lock.acquire, name="shared")
    t.daemon = True
    t.start()
    say("ready")
    os.read(r, 1)  # MARK: selfshared


def hostile_mode():
    import resource
    nfds = int(sys.argv[2])
    children = int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    keep = []
    for _ in range(nfds // 2):
        keep.extend(os.pipe())
    r, w = os.pipe()  # the highest fds: past any per-process bound of a scan
    pids = []
    for i in range(children):
        pid = os.fork()
        if pid == 0:
            signal.alarm(300)
            if i != children - 1:
                os.close(w)
            os.close(r)
            while True:
                time.sleep(100)
        pids.append(pid)
    os.close(w)
    say("fds %d" % (len(keep) + 1))
    say("ready")
    os.read(r, 1)  # MARK: hostile


{"threads": threads_mode, "selfonly": selfonly_mode, "childonly": childonly_mode,
 "selfsignal": selfsignal_mode, "selfwakeup": selfwakeup_mode, "mpqueue": mpqueue_mode,
 "selftimed": selftimed_mode, "selfshared": selfshared_mode, "selflate": selflate_mode,
 "hostile": hostile_mode}[MODE]()
