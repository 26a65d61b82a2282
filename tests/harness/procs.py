"""Process and time guards shared by the end-to-end tests: nothing a test starts outlives
it, and nothing a test waits for can hang the suite.

Also the suite-wide record of processes (this module's globals, one pytest process): every
process group a Registry started, and the ones a test made hang ON PURPOSE (popen(...,
hangs=True) or mark_hanging(pid)).  The suite tracer (conftest.py) checks every `hang` it saw
against that record at the end of the session."""
import os
import select
import signal
import socket
import subprocess
import time


class Timeout(Exception):
    pass


class alarm_guard(object):
    """Raise Timeout in the main thread if the block runs longer than `seconds`.  Nested
    guards: the inner one cannot extend the outer one's deadline, and the outer deadline is
    re-armed (with what is left of it) when the inner block ends."""

    def __init__(self, seconds, what):
        self.seconds, self.what = int(seconds), what

    def _fire(self, signum, frame):
        raise Timeout("%s: still running after %d s" % (self.what, self.seconds))

    def __enter__(self):
        self.t0 = time.monotonic()
        self.old = signal.signal(signal.SIGALRM, self._fire)
        self.outer_left = signal.alarm(self.seconds)
        if self.outer_left and self.outer_left < self.seconds:
            signal.signal(signal.SIGALRM, self.old)   # the outer guard fires first
            signal.alarm(self.outer_left)
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)
        if self.outer_left:
            left = self.outer_left - (time.monotonic() - self.t0)
            signal.alarm(max(1, int(left + 0.999)))
        return False


# ---------------------------------------------------------------- the suite's process record

STARTED = set()        # pids of the processes Registries started (each leads its own session)
HANGING = set()        # pids made to hang on purpose: their sessions (if they lead one) and descendants
HANGING_PIDS = set()   # every pid seen in those sessions (remembered before they are killed)


def mark_hanging(pid):
    """Pid's session (its group of descendants) hangs on purpose: its `hang` events are expected."""
    HANGING.add(pid)        # its descendants: by ancestry, and by session if it leads one
    HANGING_PIDS.add(pid)


def session_of(pid):
    """The session id of a live process, or None."""
    try:
        return os.getsid(pid)
    except OSError:
        return None


def remember_hanging_members():
    """Add every live process of a hanging session to HANGING_PIDS (before they are killed)."""
    if not HANGING:
        return
    for d in os.listdir("/proc"):
        if d.isdigit() and session_of(int(d)) in HANGING:
            HANGING_PIDS.add(int(d))


class Registry(object):
    """Every process a test (or session) starts; cleanup() kills their process groups and reaps them."""

    def __init__(self):
        self.procs = []

    def popen(self, argv, hangs=False, **kw):
        """subprocess.Popen in its own session; hangs=True: it (or a descendant) is meant to
        hang, so the suite tracer expects `hang` events from its session."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("close_fds", True)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        STARTED.add(p.pid)
        if hangs:
            mark_hanging(p.pid)
        return p

    def hanging(self, argv, **kw):
        """popen(argv, hangs=True, ...): a program the test makes hang on purpose."""
        return self.popen(argv, hangs=True, **kw)

    def cleanup(self):
        remember_hanging_members()
        for p in reversed(self.procs):
            kill_group(p)
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass


def kill_group(p):
    """SIGKILL p's process group (tests start workloads in their own session), and p itself
    if it leads no group, and reap p."""
    remember_hanging_members()   # before they are gone (the suite tracer's verdict)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    if p.poll() is None:
        try:
            p.kill()
        except OSError:
            pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        pass


def read_line(proc, timeout, what):
    """One line from a process's unbuffered stdout pipe (Popen(bufsize=0)), stripped; fails
    (Timeout, or AssertionError at EOF) instead of waiting past `timeout` seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("%s: no line within %.1f s (got %r)" % (what, timeout, buf))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            b = os.read(fd, 1)
            if not b:
                raise AssertionError("%s: EOF (exit status %s, got %r)" % (what, proc.poll(), buf))
            buf += b
    return buf.decode().strip()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
