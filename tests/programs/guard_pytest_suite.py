"""A pytest test module (copied as test_leak.py by tests/test_guard.py) whose only test
passes but leaves a non-daemon thread 'stuck-worker' blocked for good on a lock it already
holds: pytest reports success, then the interpreter hangs at exit joining that thread
(pyhang-trace's `shutdown_join`). GUARD_REPORT names a file that gets "pid <pid>" and,
from the pytest_unconfigure hook of guard_pytest_conftest.py, "done <time.monotonic()>"
right before pytest returns: the hang starts after that moment."""
import os
import threading


def test_leaves_a_thread_behind():
    with open(os.environ["GUARD_REPORT"], "a") as f:
        f.write("pid %d\n" % os.getpid())
    lock = threading.Lock()
    started = threading.Event()

    def worker():
        lock.acquire()
        started.set()
        lock.acquire()  # MARK: blocks

    threading.Thread(target=worker, name="stuck-worker").start()
    assert started.wait(10)
