"""Paths a watched process names, and the tracer's own files, against an unprivileged attacker.

The attacker is user nobody (setpriv --reuid=65534 --regid=65534 --clear-groups; with
`unshare -Ur[m]` for a chroot or a private mount namespace). The tracer runs host-wide as
root, started without a terminal in a session of its own (as systemd starts it: a session
leader without a controlling terminal, which gets one by opening a tty without O_NOCTTY).

* tests/programs/attack_mapping.py maps a "libpython3.11.so.1.0", deletes it and puts a
  symbolic link at the name the tracer reads in /proc/PID/maps ("PATH (deleted)"), to
  - a FIFO: a plain open() of it waited for a writer forever (no more events);
  - its pty: the tracer took it as its controlling terminal and the ^C the attacker types
    into it stopped it, with exit status 0 (which Restart=on-failure does not restart);
  - a root-only file of the host (in a 0700 directory, like /etc/shadow), from the host, from
    a chroot (the link's absolute target meant the host's file to the tracer) and from a
    private mount namespace: the tracer opened and read it (seen with fanotify).
  Each time a process of another user blocked afterwards must be reported with its stack.
* -o FILE on a symbolic link, on a FIFO and on another user's file, at start and when
  SIGHUP reopens it; a new file must be created 0640.
* 1,100 threads blocked in one process of the attacker, with the tracer at the default
  RLIMIT_NOFILE (1024): the reader kept a descriptor per thread, ran out, and another
  process's events lost their stacks.
Run with PYHANG_BINARY=build/pyhang-trace-asan for the ASan build.
"""
import ctypes
import os
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import time

import pytest

from harness import read_line
from harness import SYSTEM_PYTHON, Tracer, public

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
ATTACK = os.path.join(PROGRAMS, "attack_mapping.py")
HANG = os.path.join(PROGRAMS, "trace_lock_hang.py")
THREADS = os.path.join(PROGRAMS, "load_threads.py")
NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
# the attacker runs the system's Python: pyenv's live under /root (0700)
ATTACKER_PYTHON = SYSTEM_PYTHON



@pytest.fixture
def workdir():
    """A directory of the attacker's (nobody's), in /tmp."""
    d = tempfile.mkdtemp(prefix="pyhang-attack-")
    os.chmod(d, 0o755)
    os.chown(d, NOBODY, NOBODY)
    yield d
    # a tmpfs of the attacker's namespace is gone with it; the rest is plain files
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def secret():
    """A host file only root may read (a stand-in for /etc/shadow that no other process on
    this shared machine opens), in a 0700 directory."""
    d = tempfile.mkdtemp(prefix="pyhang-secret-")
    os.chmod(d, 0o700)
    path = os.path.join(d, "shadow")
    with open(path, "w") as f:
        f.write("root:$6$not-for-you:19000:0:99999:7:::\n")
    os.chmod(path, 0o600)
    yield path
    shutil.rmtree(d, ignore_errors=True)


class FileWatch(object):
    """fanotify: which processes open or read one file from now on (the kernel's word, not
    the tool's). By pid: other worktrees' tracers on this machine may open it too."""

    FAN_CLOEXEC, FAN_NONBLOCK, FAN_MARK_ADD = 0x1, 0x2, 0x1
    FAN_ACCESS, FAN_OPEN = 0x1, 0x20

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                            ctypes.c_int, ctypes.c_char_p]
        self.fd = self.libc.fanotify_init(self.FAN_CLOEXEC | self.FAN_NONBLOCK,
                                          os.O_RDONLY | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        rc = self.libc.fanotify_mark(self.fd, self.FAN_MARK_ADD, self.FAN_ACCESS | self.FAN_OPEN,
                                     -100, path.encode())  # AT_FDCWD
        assert rc == 0, os.strerror(ctypes.get_errno())
        self.seen = []

    def events(self, pid):
        """The masks of what process pid did to the file so far."""
        while select.select([self.fd], [], [], 0)[0]:
            try:
                buf = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            while len(buf) >= 24:
                n, _, _, _, mask, fd, who = struct.unpack("IBBHQii", buf[:24])
                if fd >= 0:
                    os.close(fd)
                self.seen.append((who, mask))
                buf = buf[n:]
        return [mask for who, mask in self.seen if who == pid]

    def close(self):
        os.close(self.fd)


def start_attacker(reg, workdir, where, target):
    ns = {"plain": [], "chroot": ["unshare", "-Ur"], "mountns": ["unshare", "-Urm"]}[where]
    p = reg.popen(AS_NOBODY + ns + [ATTACKER_PYTHON, ATTACK, workdir, where, target],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0)
    assert read_line(p, 20, "attacker") == "ready"
    return p


@pytest.fixture(params=["openat2", "no-openat2"])
def resolve(request):
    """openat2(2) confinement (Linux 5.6+), or the fallback of older kernels (O_NOFOLLOW and
    an exact identity check), chosen with PYHANG_NO_OPENAT2."""
    return request.param


def start_tracer(reg, binary, *args, **kw):
    """Host-wide, no terminal: stdin /dev/null, stdout a pipe, a session of its own."""
    resolve = kw.pop("resolve", "openat2")
    if resolve == "no-openat2":
        kw["env"] = dict(os.environ, PYHANG_NO_OPENAT2="1")
    tr = Tracer(reg, binary, ["--json", "-t", "1"] + list(args), **kw)
    tr.wait_start()
    return tr


def tty_nr(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[4])


def victim_reported(reg, tr, what):
    """A Python process of root blocks a thread now: its long_wait must come,
    with the stack of the blocked thread."""
    v = reg.hanging([SYSTEM_PYTHON, HANG], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0)
    pid = int(read_line(v, 20, "victim").split()[1])
    tid = int(read_line(v, 20, "victim").split()[1])
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("pid") == pid and
                     e.get("tid") == tid, 20, "%s: the victim's long_wait" % what)
    funcs = [(f.get("function") or "").split(".")[-1] for t in ev.get("threads") or [] if t.get("tid") == tid
             for f in t.get("stack") or []]
    assert "worker" in funcs, "%s: the victim's stack is missing: %r" % (what, public(ev))
    return ev


def attacker_seen(tr, pid, what):
    """The tracer has looked at the attacker (its blocked thread's long_wait, before_start)."""
    return tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("pid") == pid, 20,
                       "%s: the attacker's long_wait" % what)


def still_running(tr, what):
    assert tr.proc.poll() is None, "%s: the tracer stopped%s" % (what, tr.describe())


# --------------------------------------------------------------------------- mapped files

def test_mapping_linked_to_a_fifo_does_not_freeze_the_tracer(reg, binary, workdir, resolve):
    att = start_attacker(reg, workdir, "plain", "fifo")
    tr = start_tracer(reg, binary, resolve=resolve)
    victim_reported(reg, tr, "fifo")
    attacker_seen(tr, att.pid, "fifo")
    still_running(tr, "fifo")
    assert tr.stop() == 0


def test_mapping_linked_to_the_attackers_pty_gives_no_terminal(reg, binary, workdir, resolve):
    att = start_attacker(reg, workdir, "plain", "pty")
    tr = start_tracer(reg, binary, resolve=resolve)
    attacker_seen(tr, att.pid, "pty")
    # the attacker types ^C into its pty every 0.1 s: had the tracer taken it as its
    # terminal, that would be a SIGINT to it
    victim_reported(reg, tr, "pty")
    time.sleep(1)
    still_running(tr, "pty")
    assert tty_nr(tr.proc.pid) == 0, "the tracer has a controlling terminal"
    assert tr.stop() == 0


@pytest.mark.parametrize("where", ["plain", "chroot", "mountns"])
def test_mapping_linked_to_a_host_file_is_not_read(reg, binary, workdir, secret, where, resolve):
    watch = FileWatch(secret)
    try:
        att = start_attacker(reg, workdir, where, secret)
        tr = start_tracer(reg, binary, resolve=resolve)
        attacker_seen(tr, att.pid, where)
        victim_reported(reg, tr, where)
        opened = watch.events(tr.proc.pid)
    finally:
        watch.close()
    assert not opened, "%s: the tracer opened or read %s (fanotify masks %r)" % (where, secret, opened)
    still_running(tr, where)
    assert tr.stop() == 0


# --------------------------------------------------------------------------- -o FILE

def refused(reg, binary, path, what):
    """The tracer must refuse -o path at once, with one line on stderr."""
    tr = Tracer(reg, binary, ["--json", "-t", "1", "-o", path])
    rc = tr.wait_exit(20)
    err = tr.stderr().strip()
    assert rc != 0, "%s: -o was taken (exit status 0)%s" % (what, tr.describe())
    assert err and "\n" not in err and path in err, "%s: want one line naming the file: %r" % (what, err)
    return err


def test_output_on_a_symlink_is_refused(reg, binary, workdir, secret):
    link = os.path.join(workdir, "events.jsonl")
    subprocess.check_call(AS_NOBODY + ["ln", "-s", secret, link])
    before = open(secret, "rb").read()
    err = refused(reg, binary, link, "symlink")
    assert "symbolic link" in err, err
    assert open(secret, "rb").read() == before, "the link's target was written"


def test_output_on_a_fifo_is_refused_without_waiting(reg, binary, workdir):
    fifo = os.path.join(workdir, "events.jsonl")
    subprocess.check_call(AS_NOBODY + ["mkfifo", "-m", "0666", fifo])
    refused(reg, binary, fifo, "fifo")


def test_output_on_another_users_file_is_refused(reg, binary, workdir):
    path = os.path.join(workdir, "events.jsonl")
    subprocess.check_call(AS_NOBODY + ["sh", "-c", "echo planted > %s" % path])
    err = refused(reg, binary, path, "nobody's file")
    assert "owned by uid %d" % NOBODY in err, err
    assert open(path).read() == "planted\n"


def tracer_writing_to(reg, binary, path):
    tr = Tracer(reg, binary, ["--json", "-t", "1", "-o", path])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (os.path.exists(path) and os.path.getsize(path)):
        time.sleep(0.1)
    assert os.path.getsize(path), "no start event in %s%s" % (path, tr.describe())
    return tr


def test_output_created_0640(reg, binary, workdir):
    path = os.path.join(workdir, "events.jsonl")
    tr = tracer_writing_to(reg, binary, path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o037 == 0, "created %o: group may write, others may read" % mode
    assert tr.stop() == 0


def test_output_reopened_at_sighup_is_checked(reg, binary, workdir, secret):
    path = os.path.join(workdir, "events.jsonl")
    tr = tracer_writing_to(reg, binary, path)
    # the attacker owns the directory: it moves the file away and leaves a link to a host
    # file, then the log is rotated (SIGHUP)
    moved = path + ".1"
    subprocess.check_call(AS_NOBODY + ["sh", "-c", 'mv "$1" "$2" && ln -s "$3" "$1"', "-",
                                       path, moved, secret])
    before = open(secret, "rb").read()
    tr.proc.send_signal(signal.SIGHUP)
    # a victim's long_wait after the reopen: where does it go?
    v = reg.hanging([SYSTEM_PYTHON, HANG], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0)
    pid = read_line(v, 20, "victim").split()[1]
    read_line(v, 20, "victim")
    needle = ('"pid":%s,' % pid).encode()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and needle not in open(moved, "rb").read() and \
            needle not in open(secret, "rb").read():
        time.sleep(0.1)
    assert open(secret, "rb").read() == before, "SIGHUP followed the link: the host file was written"
    assert needle in open(moved, "rb").read(), "the event was not written to the open file%s" % tr.describe()
    assert "refusing output file" in tr.stderr() or "symbolic link" in tr.stderr(), tr.stderr()
    still_running(tr, "sighup")
    assert tr.stop() == 0


# --------------------------------------------------------------------------- descriptors

def test_1100_blocked_threads_do_not_use_up_descriptors(reg, binary, workdir):
    """The tracer starts with RLIMIT_NOFILE at 1024, soft and hard (so it cannot raise it:
    the descriptors it keeps must fit in the usual default). The attacker's 1,100
    threads are blocked in system calls (one on a lock, so that its long_wait makes the
    tracer read every thread's state; the others asleep, so as not to flood the output)."""
    rep = os.path.join(workdir, "threads.report")
    att = reg.hanging(AS_NOBODY + [ATTACKER_PYTHON, THREADS, rep, "1100", "1"],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = open(rep).read().split("\n") if os.path.exists(rep) else []
        if any(l.startswith("sleepers ") for l in lines):
            break
        assert att.poll() is None, "the attacker died"
        time.sleep(0.2)
    else:
        raise AssertionError("1,100 threads not started within 60 s")
    tr = start_tracer(reg, binary, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (1024, 1024)))
    # the attacker's threads' long_waits (before_start) have been read once at least
    tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("pid") == att.pid and
                len(e.get("threads") or []) >= 1100, 60, "the attacker's threads")
    nfds = len(os.listdir("/proc/%d/fd" % tr.proc.pid))
    victim_reported(reg, tr, "1,100 threads")
    nfds = max(nfds, len(os.listdir("/proc/%d/fd" % tr.proc.pid)))
    assert nfds < 512, "the tracer holds %d descriptors" % nfds
    still_running(tr, "1,100 threads")
    assert tr.stop() == 0


def test_descriptor_soft_limit_raised_to_the_hard_limit(reg, binary):
    tr = start_tracer(reg, binary, "-p", str(os.getpid()), preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (1024, 4096)))
    with open("/proc/%d/limits" % tr.proc.pid) as f:
        line = [l for l in f if l.startswith("Max open files")][0].split()
    assert line[3:5] == ["4096", "4096"], "RLIMIT_NOFILE not raised: %r" % line
    assert tr.stop() == 0


# --------------------------------------------------------------------------- terminal

def test_tracer_detached_from_its_terminal_gives_it_up(reg, binary):
    """Started in the background of a session whose terminal is a pty, every standard stream
    redirected (a daemon started from a shell): it must drop that terminal, so that it can
    never take another one (only a session leader without a terminal can)."""
    master, slave = os.openpty()
    try:
        # -p the shell: what is traced does not matter here (host-wide, the ASan build may
        # still be reading a busy host's processes when SIGTERM comes)
        sh = reg.popen(["setsid", "-c", "sh", "-c", 'exec 0</dev/null; "$0" --json -t 1 -p $$ & echo $!; wait',
                        binary], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       bufsize=0, start_new_session=False)
        pid = int(read_line(sh, 20, "the tracer's pid"))
        while not read_line(sh, 30, "the tracer's start").startswith('{"event":"start"'):
            pass
        assert os.getsid(pid) != pid, "the tracer leads a session"
        assert tty_nr(pid) == 0, "the tracer kept the terminal"
        os.kill(pid, signal.SIGTERM)
        assert sh.wait(60) == 0
    finally:
        os.close(master)
        os.close(slave)


def test_unit_gives_the_descriptors_it_needs():
    """The unit's limit covers thousands of watched Python processes (2 descriptors each,
    plus the tracer's own ~70 and kept syscall files, a quarter of the limit); the tracer
    raises its soft limit to the hard one."""
    from test_deploy import one, unit_settings
    limit = int(one(unit_settings()["Service"], "LimitNOFILE").split(":")[-1])
    assert limit >= 65536, limit
