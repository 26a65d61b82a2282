"""An attacker for tests/test_outcap.py: ordinary Python whose stacks make huge output.

Usage: big_stacks.py THREADS DEPTH NAME_LEN
Starts THREADS threads, each recursing DEPTH frames deep through a function whose name is
NAME_LEN characters long, defined in a "file" whose name is NAME_LEN characters long too
(compile() takes any file name), and then blocking on a lock the main thread holds. Prints
"ready <pid>" once every thread is in place; a line on stdin releases the lock, then it
prints "released" and exits after another line. Runs on CPython 3.x, as any user.
"""
import os
import sys
import threading


def main():
    nthreads, depth, name_len = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sys.setrecursionlimit(depth + 1000)
    threading.stack_size(256 << 20)
    lock = threading.Lock()
    lock.acquire()
    arrived = threading.Semaphore(0)
    name = ("f" * name_len)[:name_len]
    src = ("def %s(n, lock, arrived):\n"
           "    if n:\n"
           "        return %s(n - 1, lock, arrived)\n"
           "    arrived.release()\n"
           "    lock.acquire()\n"
           "    lock.release()\n") % (name, name)
    ns = {}
    exec(compile(src, "/" + "d" * (name_len - 4) + ".py", "exec"), ns)
    fn = ns[name]
    threads = [threading.Thread(target=fn, args=(depth, lock, arrived)) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for _ in threads:
        arrived.acquire()
    print("ready %d" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
    lock.release()
    for t in threads:
        t.join()
    print("released")
    sys.stdout.flush()
    sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
