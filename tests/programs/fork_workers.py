"""Programs for tests/test_fork_workers.py: forks that copy a held lock, pool workers that
die, idle pools.  Runs on 2.7 and 3.6+.

    fork_workers.py REPORT MODE [GO_FILE]

Each appends what it knows to REPORT ("key value..." lines, flushed at once): its pid, its
threads' and children's pids.  With GO_FILE, it waits until that file exists before the
step the test must see from its start (the fork, the pool), so a tracer attached with -p
sees it happen.  Hanging modes kill themselves after 90 s (signal.alarm).

Modes:
  fork_lock     thread 'flusher' holds buf_lock in a `with`; the main thread os.fork()s; the
                child takes buf_lock (never returns); the parent waits in os.waitpid()
  mp_fork_lock  the same through multiprocessing's 'fork' start method: Process.start(),
                then join()
  fork_lock_after  fork_lock, but first COUNT (argument 4) forks whose children exit at
                once (reaped): past a low --rate-limit, the last fork's record is limited
  pool_killed   Pool(2).map() whose worker SIGKILLs itself on item 3
  pool_oom      the same, but the worker joins the memory cgroup whose cgroup.procs file is
                argument 4 (argument 3: "-", no go file; a small limit, set by the
                test) and allocates until the
                kernel's OOM killer ends it
  idle_pool     Pool(2), one map() so the workers exist, then idle for SECS (argument 4)
  idle_ppe      the same with concurrent.futures.ProcessPoolExecutor (3.x)
"""
import os
import signal
import sys
import threading
import time

REPORT = sys.argv[1]
MODE = sys.argv[2]
GO = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None


def report(*words):
    with open(REPORT, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")
        f.flush()


def native_tid():
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None).syscall(186)  # gettid, x86_64


def wait_go():
    while GO and not os.path.exists(GO):
        time.sleep(0.05)


buf_lock = threading.Lock()
holding = threading.Event()


def flusher():
    report("flusher", native_tid())
    while True:
        with buf_lock:                      # MARK: flusher_with
            holding.set()
            time.sleep(30)


def take_buf_lock():
    with buf_lock:                          # MARK: child_take
        pass
    os._exit(0)


def start_flusher():
    t = threading.Thread(target=flusher, name="flusher")
    t.daemon = True
    t.start()
    holding.wait()


def fork_lock(first=0):
    start_flusher()
    wait_go()
    for _ in range(first):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    pid = os.fork()                         # MARK: fork_site
    if pid == 0:
        take_buf_lock()
    report("child", pid)
    os.waitpid(pid, 0)


def mp_fork_lock():
    import multiprocessing
    start_flusher()
    wait_go()
    ctx = multiprocessing.get_context("fork") if hasattr(multiprocessing, "get_context") else multiprocessing
    p = ctx.Process(target=take_buf_lock)
    p.start()                               # MARK: mp_start
    report("child", p.pid)
    p.join()


def work(x):
    if x == 3:
        report("killed", os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return x * x


def work_oom(x):
    if x == 3:
        report("killed", os.getpid())
        with open(sys.argv[4], "w") as f:
            f.write(str(os.getpid()))
        hog = []
        while True:
            hog.append(bytearray(1 << 20))
    time.sleep(0.05)
    return x * x


def square(x):
    return x * x


def pool_killed():
    import multiprocessing
    wait_go()
    pool = multiprocessing.Pool(2)
    report("mapping")
    pool.map(work, range(8))                # MARK: pool_map
    report("done")


def pool_oom():
    import multiprocessing
    pool = multiprocessing.Pool(2)
    report("mapping")
    pool.map(work_oom, range(8))            # MARK: pool_oom_map
    report("done")


def idle_pool(secs):
    import multiprocessing
    wait_go()
    pool = multiprocessing.Pool(2)
    pool.map(square, range(4))
    report("idle")
    time.sleep(secs)
    pool.close()
    pool.join()
    report("done")


def idle_ppe(secs):
    from concurrent.futures import ProcessPoolExecutor
    wait_go()
    ex = ProcessPoolExecutor(2)
    list(ex.map(square, range(4)))
    report("idle")
    time.sleep(secs)
    ex.shutdown()
    report("done")


def main():
    report("pid", os.getpid())
    if MODE in ("fork_lock", "fork_lock_after", "mp_fork_lock", "pool_killed", "pool_oom"):
        signal.alarm(90)
    if MODE == "fork_lock":
        fork_lock()
    elif MODE == "fork_lock_after":
        fork_lock(int(sys.argv[4]))
    elif MODE == "mp_fork_lock":
        mp_fork_lock()
    elif MODE == "pool_killed":
        pool_killed()
    elif MODE == "pool_oom":
        pool_oom()
    elif MODE == "idle_pool":
        idle_pool(float(sys.argv[4]))
    elif MODE == "idle_ppe":
        idle_ppe(float(sys.argv[4]))
    else:
        sys.exit("unknown mode %r" % MODE)


if __name__ == "__main__":
    main()
