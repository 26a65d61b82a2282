"""Waits for children, for tests/test_child_waits.py (Python 2.7 and 3.6+).

    childwait_cases.py REPORT KIND [DELAY]

KIND:
  popen_wait        Popen(stdout=PIPE).wait() on a child that writes 1 MB: pipe deadlock
  check_call_thread subprocess.check_call(stdout=PIPE) of such a child, in a thread the main
                    thread joins: pipe deadlock seen from the thread
  child_hung        Popen(...).wait() on a Python child that deadlocks (two threads, two
                    locks taken in opposite orders): child_hung
  child_3s          Popen(...).wait() on a child that sleeps 3 s and exits: a long wait, no hang
  reader_thread     Popen(stdout=PIPE).wait() on a chatty child while another thread reads
                    the pipe slowly (sleeps between reads): healthy, no hang
  pipeline          a chatty child writing into a second child that reads slowly, the
                    parent waiting for the first: healthy (another process reads), no hang
  pidfd_chatty      os.waitid(P_PIDFD) on the pidfd of a child that writes 1 MB into a pipe
                    nobody reads (3.9+): pipe deadlock, the child named through its pidfd
  pidfd_sleeper     os.waitid(P_PIDFD) on a child that sleeps 6 s and exits (3.9+): a long
                    wait naming that child, no hang
  pidfd_nonchild    SIGCHLD ignored, a forked child auto-reaped, then os.waitid(P_PIDFD) on the
                    pidfd of a process that is not a child (ECHILD at once), then
                    os.waitpid(-1, 0) (ECHILD: the child's status was lost) (3.9+)
  deadlock_child    (the child of child_hung)
REPORT: lines "key value" appended as facts are known (pid, child, tids, done).
DELAY: seconds to sleep before the wait (for attaching with -p first).
Every program ends itself after 180 s (SIGALRM, default action).
"""
import os
import signal
import subprocess
import sys
import threading
import time

signal.alarm(180)
REPORT, KIND = sys.argv[1], sys.argv[2]
DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
CHATTY = [sys.executable, "-c", "import sys; sys.stdout.write('x' * 1000000); sys.stdout.flush()"]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3)"]


def tid():
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None).syscall(186)  # gettid, x86_64


def report(key, value):
    with open(REPORT, "a") as f:
        f.write("%s %s\n" % (key, value))


def popen_wait():
    p = subprocess.Popen(CHATTY, stdout=subprocess.PIPE)
    report("child", p.pid)
    report("waiter", tid())
    time.sleep(DELAY)
    p.wait()  # MARK: popen_wait
    report("done", len(p.stdout.read()))


def check_call_thread():
    def run():
        report("waiter", tid())
        subprocess.check_call(CHATTY, stdout=subprocess.PIPE)  # MARK: check_call
    t = threading.Thread(target=run, name="caller")
    t.start()
    t.join()
    report("done", 0)


def child_hung():
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), REPORT, "deadlock_child"])
    report("child", p.pid)
    report("waiter", tid())
    time.sleep(DELAY)
    p.wait()  # MARK: child_hung_wait
    report("done", p.returncode)


def deadlock_child():
    a, b = threading.Lock(), threading.Lock()
    held = []

    def first():
        with a:
            held.append(1)
            while len(held) < 2:
                time.sleep(0.01)
            with b:  # MARK: child_takes_b
                pass

    def second():
        with b:
            held.append(2)
            while len(held) < 2:
                time.sleep(0.01)
            with a:  # MARK: child_takes_a
                pass
    ts = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
    for t in ts:
        t.start()
    report("child_pid", os.getpid())
    for t in ts:
        t.join()


def child_3s():
    p = subprocess.Popen(SLEEPER)
    report("child", p.pid)
    report("waiter", tid())
    p.wait()  # MARK: child_3s_wait
    report("done", p.returncode)


SLOW_READ = [sys.executable, "-c", "import sys, time\nwhile True:\n    time.sleep(0.3)\n"
              "    if not sys.stdin.read(200000): break\n"]


def reader_thread():
    p = subprocess.Popen(CHATTY, stdout=subprocess.PIPE)
    report("child", p.pid)
    got = []

    def drain():
        while True:
            time.sleep(0.3)  # a slow reader: the pipe is full most of the time
            b = os.read(p.stdout.fileno(), 200000)
            if not b:
                break
            got.append(len(b))
    t = threading.Thread(target=drain, name="drain")
    t.start()
    report("waiter", tid())
    p.wait()  # MARK: reader_thread_wait
    t.join()
    report("done", sum(got))


def pipeline():
    a = subprocess.Popen(CHATTY, stdout=subprocess.PIPE)
    b = subprocess.Popen(SLOW_READ, stdin=a.stdout)
    a.stdout.close()
    report("child", a.pid)
    report("waiter", tid())
    a.wait()  # MARK: pipeline_wait
    b.wait()
    report("done", a.returncode)


def pidfd_chatty():
    other = subprocess.Popen(SLEEPER)  # a second child: the wait is for one, not any
    p = subprocess.Popen(CHATTY, stdout=subprocess.PIPE)
    fd = os.pidfd_open(p.pid)
    report("child", p.pid)
    report("other", other.pid)
    report("pidfd", fd)
    report("waiter", tid())
    time.sleep(DELAY)
    os.waitid(os.P_PIDFD, fd, os.WEXITED)  # MARK: pidfd_chatty_wait
    report("done", 0)


def pidfd_sleeper():
    # 6 s: the long wait (at 1 s) must be read while the wait lasts, also on a loaded machine
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(6)"])
    fd = os.pidfd_open(p.pid)
    report("child", p.pid)
    report("pidfd", fd)
    report("waiter", tid())
    r = os.waitid(os.P_PIDFD, fd, os.WEXITED)  # MARK: pidfd_sleeper_wait
    report("done", r.si_status)


def pidfd_nonchild():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    report("child", pid)
    while os.path.exists("/proc/%d" % pid):  # the kernel reaps it (SIGCHLD ignored)
        time.sleep(0.05)
    fd = os.pidfd_open(os.getppid())  # the shell that started us: not our child
    try:
        os.waitid(os.P_PIDFD, fd, os.WEXITED)  # MARK: pidfd_nonchild_wait
    except ChildProcessError:
        report("pidfd_echild", 1)
    try:
        os.waitpid(-1, 0)  # MARK: pidfd_nonchild_waitpid
    except ChildProcessError:
        report("waitpid_echild", 1)
    report("done", 0)


report("pid", os.getpid())
globals()[KIND]()
