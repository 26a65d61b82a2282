"""Process and time guards shared by the end-to-end tests: nothing a test starts outlives
it, and nothing a test waits for can hang the suite."""
import os
import select
import signal
import socket
import subprocess
import time


class Timeout(Exception):
    pass


class alarm_guard(object):
    """Raise Timeout in the main thread if the block runs longer than `seconds`."""

    def __init__(self, seconds, what):
        self.seconds, self.what = int(seconds), what

    def _fire(self, signum, frame):
        raise Timeout("%s: still running after %d s" % (self.what, self.seconds))

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._fire)
        signal.alarm(self.seconds)
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)
        return False


class Registry(object):
    """Every process a test (or session) starts; cleanup() kills their process groups and reaps them."""

    def __init__(self):
        self.procs = []

    def popen(self, argv, **kw):
        kw.setdefault("start_new_session", True)
        kw.setdefault("close_fds", True)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
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
