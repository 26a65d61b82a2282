"""End-to-end tests of the tracer: `pyhang-trace [OPTIONS] [-- COMMAND...]`.

Real kernel, real processes, no mocks; needs root.  Every test starts the tracer as a
subprocess with --json, waits for its `start` line before poking the workload, and always
stops it (SIGINT) and kills/reaps everything it started (Registry finalizers), with a
timeout on every wait so that a bug cannot hang the suite.

The per-interpreter scenarios (lock hangs, SIGCHLD ignored, stolen children) run the
workload of every interpreter under ONE tracer (module-scoped "sessions"); the
parametrized tests then check each interpreter's part, so a failure names the
interpreter without paying a tracer start per interpreter.

Workloads live in tests/programs/trace_*.
"""
import calendar
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import conftest
from harness import Registry, Timeout, alarm_guard, read_line

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
SIGCHLD_PROG = os.path.join(PROGRAMS, "trace_sigchld.py")
REAPER_PROG = os.path.join(PROGRAMS, "trace_reaper.py")
FUTEX_C = os.path.join(PROGRAMS, "trace_futex_block.c")
FLICKER_PROG = os.path.join(PROGRAMS, "trace_flicker.py")
FORK_PROG = os.path.join(PROGRAMS, "trace_fork_deadlock.py")
EMBED_C = os.path.join(PROGRAMS, "trace_embed.c")

SYS_FUTEX = 202
START_TIMEOUT = 30.0      # tracer start-up (BPF load + attach)
STOP_TIMEOUT = 15.0       # tracer exit after SIGINT/SIGTERM
LATE_SLACK = 2.5          # a long_wait may come this much later than the threshold
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HEX_RE = re.compile(r"^0x[0-9a-f]+$")
PROCESS_EVENTS = ("long_wait", "wait_end", "sigchld_ignored", "child_status_lost")
SYSTEM_PYTHON = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable

INTERPRETERS = [path for _, path, _ in conftest.INTERPRETERS]


# --------------------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def _test_deadline(request):
    with alarm_guard(150, request.node.name):
        yield


def expect_words(proc, first, timeout, what):
    line = read_line(proc, timeout, what)
    words = line.split()
    assert words and words[0] == first, "%s: expected '%s ...', got %r" % (what, first, line)
    return words[1:]


def task_syscall(pid, tid):
    """The fields of /proc/PID/task/TID/syscall: [nr, arg0, arg1, ...] or None."""
    try:
        with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
            return f.read().split()
    except OSError:
        return None


def wait_in_futex(pid, tid, timeout):
    """Poll until the thread sits in futex(); returns the syscall fields."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = task_syscall(pid, tid)
        if s and s[0] == str(SYS_FUTEX):
            return s
        time.sleep(0.01)
    raise Timeout("thread %d/%d not blocked in futex within %.1f s (syscall: %s)"
                  % (pid, tid, timeout, task_syscall(pid, tid)))


def parse_time(s):
    """RFC 3339 UTC with milliseconds -> epoch seconds."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000.0


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Tracer(object):
    """pyhang-trace as a subprocess; a thread parses its stdout as JSON Lines.

    Events get two private keys: _recv (wall-clock time.time() of receipt) and _idx."""

    def __init__(self, reg, binary, args, **kw):
        self.argv = [binary] + list(args)
        self.err = tempfile.TemporaryFile()
        self.started_at = time.time()
        self.proc = reg.popen(self.argv, stdout=subprocess.PIPE, stderr=self.err,
                              stdin=subprocess.DEVNULL, **kw)
        self.lines, self.events, self.bad = [], [], []
        self.eof = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read)
        self.reader.daemon = True
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                try:
                    ev = json.loads(line)
                    if not isinstance(ev, dict):
                        raise ValueError("not an object")
                except ValueError:
                    self.bad.append(line)
                    continue
                ev["_recv"] = time.time()
                ev["_idx"] = len(self.events)
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def describe(self):
        with self.cond:
            lines = list(self.lines[-15:])
        return ("\n  command: %s\n  exit status: %s\n  stderr (tail): %s\n  stdout (last %d lines):\n    %s"
                % (" ".join(self.argv), self.proc.poll(), self.stderr()[-1500:],
                   len(lines), "\n    ".join(lines)))

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    break
                self.cond.wait(min(left, 0.2))
        raise AssertionError("%s: not seen within %.1f s%s" % (what, timeout, self.describe()))

    def wait_start(self, timeout=START_TIMEOUT):
        return self.wait_for(lambda e: e.get("event") == "start", timeout, "tracer 'start' event")

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("tracer did not exit within %.1f s%s" % (timeout, self.describe()))
        self.reader.join(10)
        return rc

    def stop(self, sig=signal.SIGINT, timeout=STOP_TIMEOUT):
        """Signal the tracer and wait for it; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def select(self, event=None, **match):
        with self.cond:
            evs = list(self.events)
        return [e for e in evs if (event is None or e.get("event") == event)
                and all(e.get(k) == v for k, v in match.items())]


def check_stream(tr, complete=True):
    """Contract checks that hold for every --json output."""
    assert not tr.bad, "non-JSON lines on stdout with --json: %r%s" % (tr.bad[:5], tr.describe())
    evs = tr.select()
    assert evs, "no events at all%s" % tr.describe()
    assert evs[0].get("event") == "start", "first event is not 'start': %r" % evs[0]
    assert len(tr.select("start")) == 1, "more than one 'start'"
    if complete:
        assert evs[-1].get("event") == "stop", "last event is not 'stop': %r%s" % (evs[-1], tr.describe())
        assert len(tr.select("stop")) == 1, "more than one 'stop'"
        assert is_int(evs[-1].get("lost_events")) and evs[-1]["lost_events"] >= 0, \
            "stop.lost_events must be a non-negative int: %r" % evs[-1]
    now = time.time()
    long_waits = set()
    for e in evs:
        assert isinstance(e.get("event"), str), "event without 'event': %r" % e
        t = e.get("time")
        assert isinstance(t, str) and TIME_RE.match(t), "bad 'time' (want 2026-11-22T06:40:00.123Z): %r" % e
        assert tr.started_at - 5 <= parse_time(t) <= now + 5, \
            "'time' %s is not the current UTC time: %r" % (t, e)
        kind = e["event"]
        if kind in PROCESS_EVENTS:
            assert is_int(e.get("pid")) and is_int(e.get("tid")) and isinstance(e.get("comm"), str), \
                "%s needs int pid, int tid, str comm: %r" % (kind, e)
        if kind == "long_wait":
            assert is_number(e.get("waited_s")) and e["waited_s"] >= 0, "long_wait.waited_s: %r" % e
            assert isinstance(e.get("before_start"), bool), "long_wait.before_start: %r" % e
            fx = e.get("futex")
            if fx is None:  # an I/O wait found by sampling (issue 16): its resource instead
                assert (e.get("waiting_for") or {}).get("kind") == "I/O", \
                    "long_wait.futex null, not an I/O wait: %r" % e
            else:
                assert isinstance(fx, dict) and isinstance(fx.get("addr"), str) and HEX_RE.match(fx["addr"]), \
                    "long_wait.futex.addr must be a '0x...' string: %r" % e
                assert "op" in fx and fx["op"] not in (None, ""), "long_wait.futex.op missing: %r" % e
            long_waits.add((e["pid"], e["tid"]))
        elif kind == "wait_end":
            assert is_number(e.get("waited_s")), "wait_end.waited_s: %r" % e
            assert (e["pid"], e["tid"]) in long_waits, "wait_end without an earlier long_wait: %r" % e
        elif kind == "sigchld_ignored":
            assert e.get("action") in ("SIG_IGN", "SA_NOCLDWAIT", "restored"), "sigchld_ignored.action: %r" % e
            assert isinstance(e.get("before_start"), bool), "sigchld_ignored.before_start: %r" % e
        elif kind == "child_status_lost":
            assert e.get("cause") in ("sigchld_ignored", "reaped_elsewhere"), "child_status_lost.cause: %r" % e
            c = e.get("child")
            assert isinstance(c, dict) and is_int(c.get("pid")) and "comm" in c \
                and (c["comm"] is None or isinstance(c["comm"], str)), "child_status_lost.child: %r" % e
            for k in ("exit_status", "signal"):
                assert k in c and (c[k] is None or is_int(c[k])), "child.%s must be int or null: %r" % (k, e)
            assert c["exit_status"] is None or c["signal"] is None, \
                "child.exit_status and child.signal both set: %r" % e
            if e["cause"] == "reaped_elsewhere":
                assert isinstance(e.get("reaper"), dict) and is_int(e["reaper"].get("tid")), \
                    "reaped_elsewhere needs reaper.tid: %r" % e
    return evs


def public(e):
    """An event for a failure message: without the private keys and the (long) stacks."""
    return dict((k, v) for k, v in e.items() if not k.startswith("_") and k != "threads")


class ProcWatcher(object):
    """Polls /proc/PID/status and every /proc/PID/task/*/status: the tracer must never stop
    the target (State t/T) nor ptrace it (TracerPid != 0)."""

    def __init__(self, pids, interval=0.02):
        self.pids, self.interval = list(pids), interval
        self.violations = dict((p, []) for p in self.pids)
        self.samples = dict((p, 0) for p in self.pids)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self.thread.start()

    def _check(self, pid, path):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return False
        state = re.search(r"^State:\s+(\S)", text, re.M)
        tracer = re.search(r"^TracerPid:\s+(\d+)", text, re.M)
        if state and state.group(1) in ("t", "T"):
            self.violations[pid].append("%s: State %s" % (path, state.group(1)))
        if tracer and tracer.group(1) != "0":
            self.violations[pid].append("%s: TracerPid %s" % (path, tracer.group(1)))
        return True

    def _run(self):
        while not self.done.is_set():
            for pid in self.pids:
                if self._check(pid, "/proc/%d/status" % pid):
                    self.samples[pid] += 1
                try:
                    tids = os.listdir("/proc/%d/task" % pid)
                except OSError:
                    continue
                for tid in tids:
                    self._check(pid, "/proc/%d/task/%s/status" % (pid, tid))
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.thread.join(5)


# --------------------------------------------------------------------------- sessions

def _lock_session(binary, pre_blocked, threshold):
    """Every interpreter runs trace_lock_hang.py; its worker thread blocks on a Lock.

    pre_blocked=False: programs are gated, the tracer (-p each pid) starts first, then they
    block.  pre_blocked=True: they block first (>= 2 s), then the tracer starts.
    Returns {interpreter path: result dict} plus "_tracer"/"_rc"."""
    reg = Registry()
    res = {}
    try:
        progs = {}
        args = ["--release"] + ([] if pre_blocked else ["--gate"])
        for py in INTERPRETERS:
            p = reg.popen([py, LOCK_PROG] + args, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, bufsize=0)
            progs[py] = p
        for py, p in progs.items():
            pid = int(expect_words(p, "ready", 30, py)[0])
            res[py] = {"pid": pid, "errors": []}

        def block_info(py):
            words = expect_words(progs[py], "blocking", 15, py)
            r = res[py]
            r["tid"], r["blocked_wall"] = int(words[0]), float(words[1])
            sc = wait_in_futex(r["pid"], r["tid"], 15)
            r["futex_addr"], r["futex_op_arg"] = int(sc[1], 16), int(sc[2], 16)

        if pre_blocked:
            for py in progs:
                block_info(py)
            # blocked for at least 2 s before the tracer starts
            time.sleep(max(0.0, max(r["blocked_wall"] for r in res.values()) + 2.0 - time.time()))
        pid_args = []
        for py in INTERPRETERS:
            pid_args += ["-p", str(res[py]["pid"])]
        # watch the targets from before the tracer attaches until after it detached
        watcher = ProcWatcher([res[py]["pid"] for py in INTERPRETERS])
        res["_watcher"] = watcher
        tr = Tracer(reg, binary, ["--json", "-t", str(threshold)] + pid_args)
        res["_tracer"] = tr
        tr.wait_start()
        res["_start_wall"] = time.time()
        if not pre_blocked:
            for py, p in progs.items():
                p.stdin.write(b"go\n")
            for py in progs:
                block_info(py)
        # every worker's long_wait, while it is still blocked
        for py in INTERPRETERS:
            r = res[py]
            try:
                left = max(1.0, r["blocked_wall"] + threshold + LATE_SLACK + 5 - time.time())
                ev = tr.wait_for(lambda e, r=r: e.get("event") == "long_wait" and e.get("tid") == r["tid"],
                                 left, "long_wait for tid %d (%s)" % (r["tid"], py))
                r["long_wait"] = ev
                sc = task_syscall(r["pid"], r["tid"])
                r["blocked_after_event"] = bool(sc and sc[0] == str(SYS_FUTEX))
            except AssertionError as e:
                r["errors"].append(str(e))
        # release them all; each reports "acquired"
        release_wall = time.time()
        for py, p in progs.items():
            p.stdin.write(b"release\n")
        for py, p in progs.items():
            expect_words(p, "acquired", 15, py)
            res[py]["release_wall"] = release_wall
            res[py]["rc"] = p.wait(15)
        for py in INTERPRETERS:
            r = res[py]
            if "long_wait" not in r:
                continue
            try:
                r["wait_end"] = tr.wait_for(
                    lambda e, r=r: e.get("event") == "wait_end" and e.get("tid") == r["tid"], 5,
                    "wait_end for tid %d (%s)" % (r["tid"], py))
            except AssertionError as e:
                r["errors"].append(str(e))
        time.sleep(0.3)
        res["_rc"] = tr.stop()
        watcher.stop()
        return res
    finally:
        if "_watcher" in res:
            res["_watcher"].stop()
        reg.cleanup()


@pytest.fixture(scope="module")
def lock_session(binary):
    with alarm_guard(120, "lock session"):
        return _lock_session(binary, pre_blocked=False, threshold=1)


@pytest.fixture(scope="module")
def preblocked_session(binary):
    with alarm_guard(120, "pre-blocked lock session"):
        return _lock_session(binary, pre_blocked=True, threshold=1)


@pytest.fixture(scope="module")
def sigchld_session(binary, tmp_path_factory):
    """One tracer in `-- COMMAND` mode; the command (sh) runs trace_sigchld.py with every
    interpreter in turn, each writing a report file."""
    d = tmp_path_factory.mktemp("sigchld")
    reports = dict((py, str(d / ("report%d.json" % i))) for i, py in enumerate(INTERPRETERS))
    script = "; ".join("%s %s %s" % (shlex.quote(py), shlex.quote(SIGCHLD_PROG), shlex.quote(reports[py]))
                       for py in INTERPRETERS) + "; exit 0"
    reg = Registry()
    try:
        with alarm_guard(120, "sigchld session"):
            tr = Tracer(reg, binary, ["--json", "--", "sh", "-c", script])
            tr.wait_start()
            rc = tr.wait_exit(90)
        out = {"_tracer": tr, "_rc": rc}
        for py in INTERPRETERS:
            try:
                with open(reports[py]) as f:
                    out[py] = json.load(f)
            except (OSError, ValueError) as e:
                out[py] = {"error": "no report from %s: %s" % (py, e)}
        return out
    finally:
        reg.cleanup()


@pytest.fixture(scope="module")
def reaper_session(binary):
    """Gated trace_reaper.py for every interpreter; one tracer with -p for each."""
    reg = Registry()
    res = {}
    try:
        with alarm_guard(120, "reaper session"):
            progs = {}
            for py in INTERPRETERS:
                progs[py] = reg.popen([py, REAPER_PROG, "--gate"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=0)
            pid_args = []
            for py, p in progs.items():
                res[py] = {"pid": int(expect_words(p, "ready", 30, py)[0]), "reaped": []}
                pid_args += ["-p", str(res[py]["pid"])]
            tr = Tracer(reg, binary, ["--json"] + pid_args)
            res["_tracer"] = tr
            tr.wait_start()
            for p in progs.values():
                p.stdin.write(b"go\n")
            for py, p in progs.items():
                r = res[py]
                r["reaper_tid"] = int(expect_words(p, "reaper", 15, py)[0])
                r["child"] = int(expect_words(p, "child", 15, py)[0])
                r["rc"] = int(expect_words(p, "rc", 15, py)[0])
                while True:
                    try:
                        line = read_line(p, 10, py)
                    except AssertionError:  # EOF
                        break
                    w = line.split()
                    if w[0] == "reaped":
                        r["reaped"].append((int(w[1]), int(w[2])))
                r["exit"] = p.wait(15)
            # give the tracer a moment to report, then wait for the expected events
            for py in INTERPRETERS:
                try:
                    tr.wait_for(lambda e, pid=res[py]["pid"]: e.get("event") == "child_status_lost"
                                and e.get("pid") == pid, 3, "")
                except AssertionError:
                    pass
            res["_rc"] = tr.stop()
        return res
    finally:
        reg.cleanup()


def _check_session_basics(res):
    tr = res["_tracer"]
    check_stream(tr)
    assert res["_rc"] == 0, "tracer exit status %s after SIGINT (want 0)%s" % (res["_rc"], tr.describe())


# --------------------------------------------------------------------------- 1. lock hang

def test_lock_session_stream(lock_session):
    _check_session_basics(lock_session)


def test_long_wait_while_blocked(lock_session, python):
    r = lock_session[python]
    tr = lock_session["_tracer"]
    assert "long_wait" in r, "\n".join(r["errors"])
    ev = r["long_wait"]
    threshold = 1
    assert ev["pid"] == r["pid"], public(ev)
    assert ev["before_start"] is False, "wait began after 'start': %r" % public(ev)
    assert ev["waited_s"] >= threshold, "waited_s below the threshold: %r" % public(ev)
    # reported while still blocked: we had not released it, and the thread is still in futex
    assert r["blocked_after_event"], "thread no longer in futex() after its long_wait"
    since_block = ev["_recv"] - r["blocked_wall"]
    assert since_block >= threshold - 0.05, "long_wait %.2f s after blocking, before the threshold" % since_block
    assert since_block <= threshold + LATE_SLACK, \
        "long_wait only %.2f s after blocking (threshold %s)" % (since_block, threshold)
    assert ev["waited_s"] <= since_block + 0.2, \
        "waited_s %.3f longer than the thread has been blocked (%.3f s)" % (ev["waited_s"], since_block)
    assert int(ev["futex"]["addr"], 16) == r["futex_addr"], \
        "futex.addr %s, /proc/PID/task/TID/syscall says %#x" % (ev["futex"]["addr"], r["futex_addr"])
    op = ev["futex"]["op"]
    if isinstance(op, str):
        assert "WAIT" in op.upper(), "futex.op %r for a futex wait (op arg %#x)" % (op, r["futex_op_arg"])
    # once per wait; and no other thread of the program waited that long
    same = [e for e in tr.select("long_wait", pid=r["pid"]) if e.get("futex")]  # not stdin's I/O wait
    assert [e["tid"] for e in same] == [r["tid"]], \
        "want exactly one long_wait for this pid (tid %d): %r" % (r["tid"], [public(e) for e in same])


def test_wait_end_after_release(lock_session, python):
    r = lock_session[python]
    assert "wait_end" in r, "\n".join(r["errors"])
    lw, we = r["long_wait"], r["wait_end"]
    assert we["pid"] == r["pid"] and we["_idx"] > lw["_idx"], public(we)
    assert we["waited_s"] >= lw["waited_s"], "wait_end %r < long_wait %r" % (we["waited_s"], lw["waited_s"])
    total = r["release_wall"] - r["blocked_wall"]
    assert total - 0.3 <= we["waited_s"] <= total + 0.5, \
        "wait_end.waited_s %.3f, but the thread was blocked ~%.3f s" % (we["waited_s"], total)
    assert parse_time(we["time"]) >= parse_time(lw["time"])
    assert r["rc"] == 0


def test_target_never_stopped(lock_session, python):
    r = lock_session[python]
    w = lock_session["_watcher"]
    assert w.samples[r["pid"]] >= 5, "watcher hardly sampled /proc/%d/status" % r["pid"]
    assert not w.violations[r["pid"]], w.violations[r["pid"]][:5]


# --------------------------------------------------------------------------- 2. blocked before start

def test_preblocked_session_stream(preblocked_session):
    _check_session_basics(preblocked_session)


def test_long_wait_before_start(preblocked_session, python):
    r = preblocked_session[python]
    assert "long_wait" in r, "\n".join(r["errors"])
    ev = r["long_wait"]
    assert ev["pid"] == r["pid"], public(ev)
    assert ev["before_start"] is True, "the wait began before the tracer started: %r" % public(ev)
    blocked = ev["_recv"] - r["blocked_wall"]   # how long it had been blocked when reported
    assert preblocked_session["_start_wall"] - r["blocked_wall"] >= 2.0
    assert ev["waited_s"] >= blocked - 0.5, \
        "waited_s %.3f but the thread had been blocked %.3f s (counted from tracer start?)" % (ev["waited_s"], blocked)
    assert ev["waited_s"] <= blocked + 0.3, \
        "waited_s %.3f but the thread had been blocked only %.3f s" % (ev["waited_s"], blocked)
    assert ev["_recv"] - preblocked_session["_start_wall"] <= 1 + LATE_SLACK, \
        "already over the threshold at start, but reported %.2f s after start" % (
            ev["_recv"] - preblocked_session["_start_wall"])
    assert int(ev["futex"]["addr"], 16) == r["futex_addr"], \
        "futex.addr %s, /proc says %#x" % (ev["futex"]["addr"], r["futex_addr"])
    tr = preblocked_session["_tracer"]
    assert len(tr.select("long_wait", pid=r["pid"], tid=r["tid"])) == 1, "more than one long_wait for one wait"


def test_wait_end_of_preblocked_wait(preblocked_session, python):
    r = preblocked_session[python]
    assert "wait_end" in r, "\n".join(r["errors"])
    assert r["wait_end"]["waited_s"] >= r["long_wait"]["waited_s"], public(r["wait_end"])


def test_preblocked_target_never_stopped(preblocked_session, python):
    r = preblocked_session[python]
    w = preblocked_session["_watcher"]
    assert w.samples[r["pid"]] >= 5, "watcher hardly sampled /proc/%d/status" % r["pid"]
    assert not w.violations[r["pid"]], w.violations[r["pid"]][:5]


# --------------------------------------------------------------------------- fork while locked

@pytest.fixture(scope="module")
def fork_session(binary, tmp_path_factory):
    """`-- sh -c`: trace_fork_deadlock.py with every interpreter at once (children forked,
    not exec'd, are Python processes too)."""
    d = tmp_path_factory.mktemp("fork")
    reports = dict((py, str(d / ("fork%d.txt" % i))) for i, py in enumerate(INTERPRETERS))
    script = " ".join("%s %s %s &" % (shlex.quote(py), shlex.quote(FORK_PROG), shlex.quote(reports[py]))
                      for py in INTERPRETERS) + " wait; exit 0"
    reg = Registry()
    try:
        with alarm_guard(90, "fork session"):
            tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", "sh", "-c", script])
            tr.wait_start()
            rc = tr.wait_exit(60)
        out = {"_tracer": tr, "_rc": rc}
        for py in INTERPRETERS:
            try:
                with open(reports[py]) as f:
                    out[py] = [int(x) for x in f.read().split()]
            except (OSError, ValueError) as e:
                out[py] = "no report: %s" % e
        return out
    finally:
        reg.cleanup()


def test_fork_session_stream(fork_session):
    tr = fork_session["_tracer"]
    check_stream(tr)
    assert fork_session["_rc"] == 0, tr.describe()


def test_forked_child_deadlock(fork_session, python):
    rep = fork_session[python]
    assert isinstance(rep, list), rep
    parent, child = rep
    tr = fork_session["_tracer"]
    waits = tr.select("long_wait", pid=child)
    assert len(waits) == 1, "forked child %d blocked on a copied lock: want one long_wait, got %r%s" % (
        child, [public(e) for e in waits], tr.describe())
    e = waits[0]
    assert e["tid"] == child and e["before_start"] is False and e["waited_s"] >= 0.5, public(e)
    assert not tr.select("long_wait", pid=parent), "the parent only waits in wait4()"


# --------------------------------------------------------------------------- more waits

def test_many_blocked_threads_each_reported_once(reg, binary):
    """64 threads blocked on one lock: 64 long_waits (one per thread), 64 wait_ends."""
    n = 64
    p = reg.popen([SYSTEM_PYTHON, LOCK_PROG, "--gate", "--release", "--threads", str(n)],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    pid = int(expect_words(p, "ready", 30, "many threads")[0])
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(pid)])
    tr.wait_start()
    p.stdin.write(b"go\n")
    tids = set(int(expect_words(p, "blocking", 15, "many threads")[0]) for _ in range(n))
    for tid in tids:
        wait_in_futex(pid, tid, 10)
    deadline = time.monotonic() + 0.5 + LATE_SLACK + 3
    while time.monotonic() < deadline and set(e["tid"] for e in tr.select("long_wait", pid=pid)) < tids:
        time.sleep(0.1)
    got = [e["tid"] for e in tr.select("long_wait", pid=pid)]
    assert set(got) == tids, "long_wait missing for %d of %d blocked threads%s" % (
        len(tids - set(got)), n, tr.describe())
    p.stdin.write(b"release\n")
    for _ in range(n):
        expect_words(p, "acquired", 15, "many threads")
    assert p.wait(15) == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(tr.select("wait_end", pid=pid)) < n:
        time.sleep(0.1)
    assert tr.stop() == 0
    check_stream(tr)
    got = sorted(e["tid"] for e in tr.select("long_wait", pid=pid))
    assert got == sorted(tids), "want exactly one long_wait per thread, got %d events for %d threads" % (
        len(got), n)
    ends = sorted(e["tid"] for e in tr.select("wait_end", pid=pid))
    assert ends == sorted(tids), "want one wait_end per thread: %d for %d threads" % (len(ends), n)
    assert tr.select("stop")[0]["lost_events"] == 0


def test_short_waits_not_reported(reg, binary):
    """Waits shorter than the threshold (timed waits, brief lock contention) give nothing."""
    code = ("import threading, time\n"
            "ev = threading.Event()\n"
            "for i in range(4):\n"
            "    ev.wait(0.3)\n"
            "lock = threading.Lock()\n"
            "def hold():\n"
            "    with lock:\n"
            "        time.sleep(0.3)\n"
            "for i in range(3):\n"
            "    t = threading.Thread(target=hold); t.start(); time.sleep(0.05)\n"
            "    with lock:\n"
            "        pass\n"
            "    t.join()\n")
    tr = Tracer(reg, binary, ["--json", "-t", "1", "--", SYSTEM_PYTHON, "-c", code])
    tr.wait_start()
    assert tr.wait_exit(30) == 0, tr.describe()
    check_stream(tr)
    bad = [public(e) for e in tr.select() if e["event"] in ("long_wait", "wait_end")]
    assert not bad, "waits under the 1 s threshold reported: %r" % bad


def _host_ids(ns_leader_parent, ns_tid):
    """Host pid of the only child of `ns_leader_parent`, and the host tid of its thread whose
    innermost-namespace tid is `ns_tid` (from NSpid in /proc/PID/task/TID/status)."""
    with open("/proc/%d/task/%d/children" % (ns_leader_parent, ns_leader_parent)) as f:
        kids = [int(x) for x in f.read().split()]
    assert len(kids) == 1, kids
    host_pid = kids[0]
    for tid in os.listdir("/proc/%d/task" % host_pid):
        with open("/proc/%d/task/%s/status" % (host_pid, tid)) as f:
            nspid = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M).group(1).split()
        if int(nspid[-1]) == ns_tid:
            return host_pid, int(tid)
    raise AssertionError("no thread of %d has namespace tid %d" % (host_pid, ns_tid))


def test_container_like_target(reg, binary, tmp_path):
    """A Python process in its own pid and mount namespaces, running an interpreter binary
    that exists only in its mount namespace: default mode still recognizes CPython, and
    pid/tid are reported in the host's pid namespace."""
    d = tmp_path / "ns"
    d.mkdir()
    script = 'mount -t tmpfs none "$1" && cp "$2" "$1/python" && exec "$1/python" "$3" --gate --release'
    p = reg.popen(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
                   "sh", "-c", script, "sh", str(d), SYSTEM_PYTHON, LOCK_PROG],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    ns_pid = int(expect_words(p, "ready", 30, "namespaced python")[0])
    host_pid, _ = _host_ids(p.pid, ns_pid)
    assert host_pid != ns_pid
    assert not os.path.exists(os.path.join(str(d), "python")), "the tmpfs leaked into the host namespace"
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(host_pid)])
    tr.wait_start()
    p.stdin.write(b"go\n")
    ns_tid = int(expect_words(p, "blocking", 15, "namespaced python")[0])
    _, host_tid = _host_ids(p.pid, ns_tid)
    wait_in_futex(host_pid, host_tid, 10)
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("pid") == host_pid, 0.5 + LATE_SLACK + 3,
                     "long_wait of the namespaced Python process (host pid %d)" % host_pid)
    assert ev["tid"] == host_tid, "tid %r, want the host tid %d (namespace tid %d)" % (ev["tid"], host_tid, ns_tid)
    assert ev["before_start"] is False, public(ev)
    p.stdin.write(b"release\n")
    expect_words(p, "acquired", 15, "namespaced python")
    assert p.wait(15) == 0
    tr.wait_for(lambda e: e.get("event") == "wait_end" and e.get("tid") == host_tid, 5, "wait_end")
    assert tr.stop() == 0
    check_stream(tr)


def test_no_false_long_wait_from_startup_scan(reg, binary):
    """Threads that are in a futex wait for 2 ms when the tracer starts, then sleep 0.5 s
    (not in a futex), must not be reported as blocked: the start-up scan must not leave a
    stale 'already waiting' entry behind for a wait that ended meanwhile.  Several tracer
    start-ups over 3 x 300 such threads; a long_wait is false when its thread is not in
    that futex wait when the event arrives (workers never wait long on a futex)."""
    procs = [reg.popen([SYSTEM_PYTHON, FLICKER_PROG, "300", "30"], stdout=subprocess.PIPE, bufsize=0)
             for _ in range(3)]
    pids = [int(expect_words(p, "ready", 30, "trace_flicker.py")[0]) for p in procs]
    pid_args = []
    for pid in pids:
        pid_args += ["-p", str(pid)]
    false = []
    for attempt in range(5):
        tr = Tracer(reg, binary, ["--json", "-t", "0.3", "--duration", "0.9"] + pid_args)
        seen = 0
        deadline = time.monotonic() + START_TIMEOUT + 5
        while time.monotonic() < deadline:
            with tr.cond:
                new = tr.events[seen:]
                seen = len(tr.events)
                if not new and tr.eof:
                    break
                if not new:
                    tr.cond.wait(0.1)
                    continue
            for e in new:
                if e.get("event") != "long_wait" or not e.get("futex"):
                    continue  # I/O waits are sampled where they are: test_io_waits.py
                sc = task_syscall(e["pid"], e["tid"])
                if not (sc and sc[0] == str(SYS_FUTEX) and int(sc[1], 16) == int(e["futex"]["addr"], 16)):
                    false.append("start-up %d: %s; the thread is in syscall %s"
                                 % (attempt, public(e), sc[:2] if sc else sc))
        assert tr.wait_exit(STOP_TIMEOUT) == 0, tr.describe()
        check_stream(tr)
    assert not false, "long_wait for threads not waiting on that futex:\n" + "\n".join(false)


# --------------------------------------------------------------------------- 3. SIGCHLD ignored

def test_sigchld_session_stream(sigchld_session):
    tr = sigchld_session["_tracer"]
    check_stream(tr)
    assert sigchld_session["_rc"] == 0, "`-- sh -c '...; exit 0'` must exit 0, got %s%s" % (
        sigchld_session["_rc"], tr.describe())


def test_sigchld_ignored(sigchld_session, python):
    rep = sigchld_session[python]
    assert "error" not in rep, rep.get("error")
    steps, pid = rep["steps"], rep["pid"]
    # the scenario itself: Python saw 0 instead of the real statuses
    assert steps["ign_exit"]["rc"] == 0 and steps["nocldwait_exit"]["rc"] == 0 and steps["dfl_exit"]["rc"] == 4, steps
    tr = sigchld_session["_tracer"]
    ign = tr.select("sigchld_ignored", pid=pid)
    assert [e["action"] for e in ign] == ["SIG_IGN", "restored", "SA_NOCLDWAIT", "restored"], \
        [public(e) for e in ign]
    assert all(e["before_start"] is False for e in ign), [public(e) for e in ign]
    lost = tr.select("child_status_lost", pid=pid)
    by_child = dict((e["child"]["pid"], e) for e in lost)
    assert len(lost) == 3 and set(by_child) == set(steps[s]["pid"] for s in ("ign_exit", "ign_kill", "nocldwait_exit")), \
        "want one child_status_lost per lost child %r, got %r" % (steps, [public(e) for e in lost])
    for step, status, sig in (("ign_exit", 3, None), ("ign_kill", None, 9), ("nocldwait_exit", 6, None)):
        e = by_child[steps[step]["pid"]]
        assert e["cause"] == "sigchld_ignored", public(e)
        assert e["child"]["comm"] == "sh", public(e)
        assert e["child"]["exit_status"] == status and e["child"]["signal"] == sig, (step, public(e))
    # ordering: SIG_IGN before the first loss, SA_NOCLDWAIT before the last
    assert ign[0]["_idx"] < by_child[steps["ign_exit"]["pid"]]["_idx"]
    assert ign[2]["_idx"] < by_child[steps["nocldwait_exit"]["pid"]]["_idx"]


def test_sigchld_shell_not_reported(sigchld_session):
    """The sh that runs the programs reaps them normally: nothing to report about it."""
    tr = sigchld_session["_tracer"]
    pids = set(sigchld_session[py].get("pid") for py in INTERPRETERS)
    others = [public(e) for e in tr.select() if e.get("event") in ("child_status_lost", "sigchld_ignored")
              and e.get("pid") not in pids]
    assert not others, others


def test_sigchld_transitions_only(reg, binary):
    """Only changes of 'ignored' are events: setting SIG_IGN twice, SIG_DFL while not
    ignored, and querying with sigaction(SIGCHLD, NULL, &old) report nothing; a Python
    handler after SIG_IGN is 'restored'."""
    code = ("import ctypes, signal\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "old = ctypes.create_string_buffer(512)\n"
            "def query():\n"
            "    assert libc.sigaction(signal.SIGCHLD, None, old) == 0\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "query()\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGCHLD, lambda *a: None)\n"
            "query()\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "query()\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n")
    tr = Tracer(reg, binary, ["--json", "--", SYSTEM_PYTHON, "-c", code])
    tr.wait_start()
    assert tr.wait_exit(30) == 0, tr.describe()
    check_stream(tr)
    actions = [e["action"] for e in tr.select("sigchld_ignored")]
    assert actions == ["SIG_IGN", "restored", "SIG_IGN", "restored"], [public(e) for e in tr.select("sigchld_ignored")]


def test_sigchld_in_pid_namespace_uses_host_pids(reg, binary, tmp_path):
    """trace_sigchld.py as pid 1 of its own pid namespace: events carry host pids, for the
    process and for its children."""
    report = str(tmp_path / "report.json")
    tr = Tracer(reg, binary, ["--json", "--", "unshare", "--pid", "--fork", "--kill-child",
                              SYSTEM_PYTHON, SIGCHLD_PROG, report])
    tr.wait_start()
    assert tr.wait_exit(60) == 0, tr.describe()
    check_stream(tr)
    with open(report) as f:
        rep = json.load(f)
    assert rep["pid"] == 1, rep
    ns_pids = set([rep["pid"]] + [st["pid"] for st in rep["steps"].values()])
    ign = tr.select("sigchld_ignored")
    assert [e["action"] for e in ign] == ["SIG_IGN", "restored", "SA_NOCLDWAIT", "restored"], [public(e) for e in ign]
    host_pid = ign[0]["pid"]
    assert host_pid not in ns_pids and all(e["pid"] == host_pid for e in ign), [public(e) for e in ign]
    lost = tr.select("child_status_lost", pid=host_pid)
    got = sorted((e["child"]["exit_status"] if e["child"]["exit_status"] is not None else -1,
                  e["child"]["signal"] if e["child"]["signal"] is not None else -1) for e in lost)
    assert got == [(-1, 9), (3, -1), (6, -1)], [public(e) for e in lost]
    for e in lost:
        assert e["child"]["pid"] not in ns_pids or e["child"]["pid"] > 1000, \
            "child.pid %d looks like a namespace pid (namespace pids: %s): %r" % (
                e["child"]["pid"], sorted(ns_pids), public(e))
    assert not [e for e in tr.select("child_status_lost") if e["pid"] != host_pid]


def test_sigchld_ignored_before_start(reg, binary, tmp_path):
    """SIG_IGN set before the tracer starts: found in /proc/PID/status at start-up."""
    report = str(tmp_path / "report.json")
    p = reg.popen([SYSTEM_PYTHON, SIGCHLD_PROG, report, "--gate", "--ign-first"],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    pid = int(expect_words(p, "ready", 30, "trace_sigchld.py")[0])
    with open("/proc/%d/status" % pid) as f:
        assert int(re.search(r"^SigIgn:\s+([0-9a-f]+)", f.read(), re.M).group(1), 16) & (1 << 16)
    tr = Tracer(reg, binary, ["--json", "-p", str(pid)])
    tr.wait_start()
    first = tr.wait_for(lambda e: e.get("event") == "sigchld_ignored" and e.get("pid") == pid, 5,
                        "sigchld_ignored found at start-up")
    assert first["action"] == "SIG_IGN" and first["before_start"] is True, public(first)
    p.stdin.write(b"go\n")
    assert p.wait(30) == 0
    with open(report) as f:
        steps = json.load(f)["steps"]
    tr.wait_for(lambda e: e.get("event") == "child_status_lost" and e.get("pid") == pid
                and e["child"].get("pid") == steps["ign_exit"]["pid"], 5, "child_status_lost for exit 3")
    time.sleep(0.5)
    assert tr.stop() == 0
    check_stream(tr)
    ign = tr.select("sigchld_ignored", pid=pid)
    assert [e["action"] for e in ign] == ["SIG_IGN", "restored", "SA_NOCLDWAIT", "restored"], \
        [public(e) for e in ign]
    assert [e["before_start"] for e in ign] == [True, False, False, False]
    lost = dict((e["child"]["pid"], e) for e in tr.select("child_status_lost", pid=pid))
    assert lost[steps["ign_exit"]["pid"]]["child"]["exit_status"] == 3
    assert lost[steps["ign_kill"]["pid"]]["child"]["signal"] == 9
    assert lost[steps["nocldwait_exit"]["pid"]]["child"]["exit_status"] == 6
    assert steps["dfl_exit"]["pid"] not in lost


def test_sigchld_ignored_inherited_across_exec(reg, binary, tmp_path):
    """The parent (here bash: `trap '' CHLD`; dash refuses to) ignores SIGCHLD and execs Python: the
    disposition survives exec, Python never calls sigaction, and subprocess still loses the
    child's status.  The loss must be reported."""
    out = str(tmp_path / "report.json")
    code = ("import json, os, subprocess, sys\n"
            "p = subprocess.Popen(['sh', '-c', 'exit 3'])\n"
            "rc = p.wait()\n"
            "open(sys.argv[1], 'w').write(json.dumps({'pid': os.getpid(), 'child': p.pid, 'rc': rc}))\n")
    script = "trap '' CHLD; exec \"$0\" -c \"$1\" \"$2\""
    tr = Tracer(reg, binary, ["--json", "--", "bash", "-c", script, SYSTEM_PYTHON, code, out])
    tr.wait_start()
    assert tr.wait_exit(30) == 0, tr.describe()
    check_stream(tr)
    with open(out) as f:
        rep = json.load(f)
    assert rep["rc"] == 0, "scenario: Popen.wait() should have seen ECHILD (0), got %r" % rep
    lost = [e for e in tr.select("child_status_lost", pid=rep["pid"]) if e["child"]["pid"] == rep["child"]]
    assert len(lost) == 1, "status 3 of child %d lost by pid %d (SIGCHLD ignored since exec), not reported%s" % (
        rep["child"], rep["pid"], tr.describe())
    e = lost[0]
    assert e["cause"] == "sigchld_ignored" and e["child"]["exit_status"] == 3 and e["child"]["comm"] == "sh", public(e)
    # the disposition itself is a finding too: ignored from the exec on, inherited
    ign = tr.select("sigchld_ignored", pid=rep["pid"])
    assert [(x["action"], x.get("inherited")) for x in ign] == [("SIG_IGN", True)], [public(x) for x in ign]
    assert "since the program started" in e["summary"], e["summary"]


def test_lost_child_reported_once(reg, binary, tmp_path):
    """SIGCHLD ignored; a child's status is lost to waitid(P_PID) and, for another child, to
    wait() for any child; afterwards Popen polls/waits for each again (ECHILD again).  Each
    lost child is reported once, with the status it really had."""
    out = str(tmp_path / "report.json")
    code = ("import gc, json, os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "res = {'pid': os.getpid()}\n"
            "p = subprocess.Popen(['sh', '-c', 'exit 3'])\n"
            "res['waitid_child'] = p.pid\n"
            "time.sleep(0.3)\n"
            "try:\n"
            "    os.waitid(os.P_PID, p.pid, os.WEXITED)\n"
            "except ChildProcessError:\n"
            "    res['waitid_echild'] = True\n"
            "del p\n"
            "gc.collect()  # Popen.__del__ polls: ECHILD again for the same child\n"
            "q = subprocess.Popen(['sh', '-c', 'exit 4'])\n"
            "res['wait_any_child'] = q.pid\n"
            "time.sleep(0.3)\n"
            "try:\n"
            "    os.wait()\n"
            "except ChildProcessError:\n"
            "    res['wait_any_echild'] = True\n"
            "res['rc'] = q.wait()  # ECHILD again\n"
            "open(sys.argv[1], 'w').write(json.dumps(res))\n")
    tr = Tracer(reg, binary, ["--json", "--", SYSTEM_PYTHON, "-c", code, out])
    tr.wait_start()
    assert tr.wait_exit(30) == 0, tr.describe()
    check_stream(tr)
    with open(out) as f:
        rep = json.load(f)
    assert rep.get("waitid_echild") and rep.get("wait_any_echild") and rep["rc"] == 0, rep
    lost = tr.select("child_status_lost", pid=rep["pid"])
    for key, status in (("waitid_child", 3), ("wait_any_child", 4)):
        mine = [public(e) for e in lost if e["child"]["pid"] == rep[key]]
        assert mine, "lost status of child %d (%s) not reported%s" % (rep[key], key, tr.describe())
        assert mine[0]["cause"] == "sigchld_ignored" and mine[0]["child"]["exit_status"] == status \
            and mine[0]["child"]["comm"] == "sh", mine[0]
        assert len(mine) == 1, "child %d (%s) reported %d times:\n%s" % (
            rep[key], key, len(mine), "\n".join(json.dumps(m) for m in mine))


# --------------------------------------------------------------------------- 4. child stolen

def test_reaper_session_stream(reaper_session):
    _check_session_basics(reaper_session)


def test_child_reaped_elsewhere(reaper_session, python):
    r = reaper_session[python]
    # the scenario itself: the reaper thread got the status, Popen.wait() saw ECHILD
    assert r["rc"] == 0 and (r["child"], 5 << 8) in r["reaped"], r
    tr = reaper_session["_tracer"]
    lost = tr.select("child_status_lost", pid=r["pid"])
    assert len(lost) == 1, "want one child_status_lost for pid %d: %r" % (r["pid"], [public(e) for e in lost])
    e = lost[0]
    assert e["cause"] == "reaped_elsewhere", public(e)
    assert e["child"]["pid"] == r["child"] and e["child"]["comm"] == "sh", public(e)
    assert e["child"]["exit_status"] == 5 and e["child"]["signal"] is None, public(e)
    assert e["reaper"]["tid"] == r["reaper_tid"], "reaper.tid %r, the reaper thread is %d" % (
        e["reaper"]["tid"], r["reaper_tid"])
    assert not tr.select("sigchld_ignored", pid=r["pid"])


def test_reaped_elsewhere_in_pid_namespace(reg, binary, tmp_path):
    """trace_reaper.py as pid 1 of its own pid namespace: host ids and the real status."""
    out = str(tmp_path / "reaper.out")
    tr = Tracer(reg, binary, ["--json", "--", "unshare", "--pid", "--fork", "--kill-child", "sh", "-c",
                              'exec "$0" "$1" > "$2"', SYSTEM_PYTHON, REAPER_PROG, out])
    tr.wait_start()
    assert tr.wait_exit(60) == 0, tr.describe()
    check_stream(tr)
    with open(out) as f:
        lines = dict((l.split()[0], l.split()[1:]) for l in f.read().splitlines() if l.strip())
    ns_ids = set(int(lines[k][0]) for k in ("ready", "reaper", "child"))
    assert lines["rc"] == ["0"] and lines["reaped"][1] == str(5 << 8), lines
    lost = tr.select("child_status_lost")
    assert len(lost) == 1, [public(e) for e in lost]
    e = lost[0]
    assert e["cause"] == "reaped_elsewhere" and e["pid"] not in ns_ids and e["reaper"]["tid"] not in ns_ids, public(e)
    assert e["child"]["exit_status"] == 5 and e["child"]["comm"] == "sh", \
        "the reaped child's status/comm (namespace pid %s): %r" % (lines["child"][0], public(e))
    assert e["child"]["pid"] != int(lines["child"][0]), "child.pid is the namespace pid: %r" % public(e)


# --------------------------------------------------------------------------- 5. ECHILD is not a finding

def test_echild_loops_not_reported(reg, binary):
    py_loop = ("import errno, os\n"
               "for i in range(50):\n"
               "    try:\n"
               "        os.waitpid(-1, 0)\n"
               "    except OSError as e:\n"
               "        assert e.errno == errno.ECHILD\n"
               "for target in (1, 4194303):  # not our children\n"
               "    try:\n"
               "        os.waitpid(target, 0)\n"
               "    except OSError as e:\n"
               "        assert e.errno == errno.ECHILD\n"
               "import subprocess, threading\n"
               "assert subprocess.call(['sh', '-c', 'exit 3']) == 3\n"
               "rcs = []\n"
               "def run(i):\n"
               "    rcs.append(subprocess.call(['sh', '-c', 'sleep 0.1; exit %d' % (10 + i)]))\n"
               "ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]\n"
               "[t.start() for t in ts]\n"
               "[t.join() for t in ts]\n"
               "assert sorted(rcs) == [10, 11, 12, 13], rcs\n")
    parts = ["for i in 1 2 3; do wait; done",
             "for i in 1 2 3; do sh -c 'exit 3'; true & wait; wait; done",
             "(sleep 0.1 &) ; sh -c 'sh -c \"exit 2\" & wait'"]
    for py in INTERPRETERS:
        parts.append("%s -c %s" % (shlex.quote(py), shlex.quote(py_loop)))
    script = " ; ".join(parts) + " ; exit 0"
    tr = Tracer(reg, binary, ["--json", "--all", "-t", "5", "--", "sh", "-c", script])
    tr.wait_start()
    rc = tr.wait_exit(60)
    check_stream(tr)
    assert rc == 0, tr.describe()
    bad = [public(e) for e in tr.select() if e["event"] in ("child_status_lost", "sigchld_ignored")]
    assert not bad, "ECHILD from plain wait loops reported as findings: %r" % bad


def test_pid_option_given_a_thread_id(reg, binary):
    """-p with the tid of a non-main thread: either refused (exit 2, one line) or traced as
    its process; events never call the thread id a pid."""
    p = reg.popen([SYSTEM_PYTHON, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, bufsize=0)
    pid = int(expect_words(p, "ready", 30, "lock program")[0])
    p.stdin.write(b"go\n")
    tid = int(expect_words(p, "blocking", 15, "lock program")[0])
    wait_in_futex(pid, tid, 10)
    tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(tid)])
    try:
        tr.wait_start(START_TIMEOUT)
    except AssertionError:
        rc = tr.wait_exit(STOP_TIMEOUT)
        err = tr.stderr().strip()
        assert rc == 2 and len(err.splitlines()) == 1, "refused -p TID: want exit 2 and one line, got %s %r" % (rc, err)
        return
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == tid, 0.5 + LATE_SLACK + 2,
                     "long_wait for the thread named with -p")
    assert ev["pid"] == pid, "pid %r for thread %d of process %d: a tid reported as the pid: %r" % (
        ev["pid"], tid, pid, public(ev))
    p.stdin.write(b"release\n")
    assert tr.stop() == 0
    check_stream(tr)


# --------------------------------------------------------------------------- 6. errors

def _run(argv, timeout=30, **kw):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s did not exit within %d s (stderr %r)" % (argv, timeout, e.stderr))


def _assert_usage_error(p, what):
    err = p.stderr.decode("utf-8", "replace").strip()
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 2, "%s: exit status %s, want 2 (stderr %r)" % (what, p.returncode, err)
    assert err, "%s: no message on stderr" % what
    assert len(err.splitlines()) == 1, "%s: want a one-line error, got:\n%s" % (what, err)
    assert '"start"' not in out, "%s: started anyway: %r" % (what, out)
    return err


@pytest.mark.parametrize("args", [
    ["--bogus"], ["-x"], ["-t", "abc"], ["-t"], ["-t", ""], ["-p", "999999999"], ["-p", "abc"],
    ["-p"], ["--duration", "abc"], ["--pid", "999999999"], ["--threshold", "1x"],
    ["1234"], ["--json", "true"], ["--"],
    ["-o", "/nonexistent/dir/out.jsonl"],
], ids=lambda a: " ".join(a) or "empty")
def test_bad_arguments(binary, args):
    _assert_usage_error(_run([binary, "--json", "--duration", "1"] + args), " ".join(args))


def test_missing_pid_named(binary):
    err = _assert_usage_error(_run([binary, "--json", "-p", "999999999"]), "-p 999999999")
    assert "999999999" in err, "the message should name the pid: %r" % err


def test_help(binary):
    p = _run([binary, "--help"])
    assert p.returncode == 0, p.stderr
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    for opt in ("--pid", "--threshold", "--json", "--all", "--duration", "--output"):
        assert opt in text, "--help does not mention %s:\n%s" % (opt, text)


def test_not_root(binary):
    p = _run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
              binary, "--json", "--duration", "1"])
    _assert_usage_error(p, "run as uid 65534")


# What the tracer needs, each proved by dropping it below; deploy/pyhang-trace.service
# grants exactly these (tests/test_deploy.py checks the unit against this list).
NEEDED_CAPS = ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"]


def _with_caps(caps, argv):
    """argv as root with exactly `caps` (bounding, inheritable, ambient: effective after exec)."""
    s = ",".join(["-all"] + ["+" + c[4:].lower() for c in caps])
    return ["setpriv", "--bounding-set=" + s, "--inh-caps=" + s, "--ambient-caps=" + s, "--"] + argv


def _assert_nothing_left(before):
    """No BPF object of ours that no process holds (pinned, or leaked), beyond those before."""
    import test_leftovers
    test_leftovers.assert_no_new_orphans(before)


def test_no_capabilities(binary):
    import test_leftovers
    before = test_leftovers.orphans()
    p = _run(["setpriv", "--inh-caps=-all", "--bounding-set=-all", binary, "--json", "--duration", "1"])
    err = _assert_usage_error(p, "root without capabilities")
    for cap in NEEDED_CAPS:
        assert cap in err, "the message should name %s: %r" % (cap, err)
    _assert_nothing_left(before)


@pytest.mark.parametrize("missing", NEEDED_CAPS)
def test_missing_capability(binary, missing):
    """Root with every needed capability but one: a one-line error naming it (and only it),
    exit 2, nothing loaded or left."""
    import test_leftovers
    before = test_leftovers.orphans()
    p = _run(_with_caps([c for c in NEEDED_CAPS if c != missing],
                        [binary, "--json", "--duration", "1"]))
    err = _assert_usage_error(p, "without " + missing)
    assert "missing capability %s" % missing in err, err
    assert not [c for c in NEEDED_CAPS if c != missing and c in err], err
    _assert_nothing_left(before)


@pytest.mark.parametrize("caps", [
    NEEDED_CAPS,
    ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"],  # SYS_ADMIN covers BPF, PERFMON
    ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"],  # DAC_OVERRIDE covers reads
], ids=["needed", "sys_admin", "dac_override"])
def test_enough_capabilities(binary, caps):
    """The check is not stricter than the kernel: these sets trace (start ... stop, exit 0)."""
    p = _run(_with_caps(caps, [binary, "--json", "--duration", "1"]))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr.decode("utf-8", "replace"))
    evs = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert evs and evs[0]["event"] == "start" and evs[-1]["event"] == "stop", out


def test_tracefs_mount_needs_sys_admin(binary):
    """tracefs unmounted and no CAP_SYS_ADMIN to mount it: the error says so."""
    script = ("umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; "
              "test -e /sys/kernel/tracing/events && exit 99; exec \"$@\"")
    p = _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] +
             _with_caps(NEEDED_CAPS, [binary, "--json", "--duration", "1"]))
    assert p.returncode != 99, "could not unmount tracefs in a private mount namespace"
    err = _assert_usage_error(p, "tracefs unmounted, no CAP_SYS_ADMIN")
    assert "tracefs" in err and "CAP_SYS_ADMIN" in err, err


def test_no_btf(binary):
    script = "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --json --duration 1"
    p = _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, binary])
    err = _assert_usage_error(p, "no /sys/kernel/btf/vmlinux")
    assert "btf" in err.lower(), "the message should say BTF is missing: %r" % err


def test_tracefs_unmounted_gets_mounted(binary):
    """In a private mount namespace without tracefs, the tool mounts it and works."""
    script = ("umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; "
              "test -e /sys/kernel/tracing/events && exit 99; "
              "exec \"$0\" --json --duration 1")
    p = _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, binary])
    assert p.returncode != 99, "could not unmount tracefs in a private mount namespace"
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "exit %s: %s" % (p.returncode, p.stderr.decode("utf-8", "replace"))
    evs = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert evs and evs[0]["event"] == "start" and evs[-1]["event"] == "stop", out


# --------------------------------------------------------------------------- 7. -- COMMAND

@pytest.mark.parametrize("status", [0, 7])
def test_command_exit_status(reg, binary, status):
    tr = Tracer(reg, binary, ["--json", "--", "sh", "-c", "exit %d" % status])
    rc = tr.wait_exit(30)
    check_stream(tr)
    assert rc == status, "exit status %s, the command exited %d%s" % (rc, status, tr.describe())


def test_command_options_not_parsed(reg, binary):
    """Everything after -- belongs to the command."""
    tr = Tracer(reg, binary, ["--json", "--", "sh", "-c", 'exit $#', "x", "-p", "5", "--json", "-t"])
    rc = tr.wait_exit(30)
    check_stream(tr)
    assert rc == 4, "the command got %s arguments, want 4%s" % (rc, tr.describe())


def test_command_not_found(reg, binary):
    tr = Tracer(reg, binary, ["--json", "--", "/nonexistent/command"])
    rc = tr.wait_exit(30)
    assert rc != 0, tr.describe()


@pytest.mark.parametrize("mode", ["default", "all"])
def test_command_descendants_and_python_filter(reg, binary, tmp_path, mode):
    """`-- sh -c 'C & PY &'`: both are descendants, blocked from their first instructions.
    The Python worker is reported in both modes; the non-Python C program only with --all."""
    exe = str(tmp_path / "trace_futex_block")
    subprocess.check_call(["cc", "-O2", "-o", exe, FUTEX_C], timeout=60)
    c_out, py_out = str(tmp_path / "c.out"), str(tmp_path / "py.out")
    script = "%s 3 > %s & %s %s --alarm 3 > %s & wait; exit 0" % (
        shlex.quote(exe), shlex.quote(c_out), shlex.quote(SYSTEM_PYTHON), shlex.quote(LOCK_PROG),
        shlex.quote(py_out))
    args = ["--json", "-t", "0.5"] + (["--all"] if mode == "all" else []) + ["--", "sh", "-c", script]
    tr = Tracer(reg, binary, args)
    rc = tr.wait_exit(40)
    check_stream(tr)
    assert rc == 0, tr.describe()
    with open(c_out) as f:
        _, c_pid, c_tid, c_addr = f.read().split()[:4]
    c_pid, c_tid, c_addr = int(c_pid), int(c_tid), int(c_addr, 16)
    with open(py_out) as f:
        words = f.read().split()
    py_pid, py_tid = int(words[words.index("ready") + 1]), int(words[words.index("blocking") + 1])
    py_waits = tr.select("long_wait", pid=py_pid, tid=py_tid)
    assert len(py_waits) == 1, "Python worker: want one long_wait, got %r%s" % (
        [public(e) for e in py_waits], tr.describe())
    assert py_waits[0]["before_start"] is False and py_waits[0]["waited_s"] >= 0.5
    c_waits = tr.select("long_wait", pid=c_pid)
    if mode == "all":
        assert len(c_waits) == 1, "--all: want one long_wait for the C program, got %r" % [public(e) for e in c_waits]
        e = c_waits[0]
        assert e["tid"] == c_tid and int(e["futex"]["addr"], 16) == c_addr, \
            "want tid %d addr %#x: %r" % (c_tid, c_addr, public(e))
        assert e["before_start"] is False and e["comm"] == os.path.basename(exe)[:15], public(e)
    else:
        assert not c_waits, "default mode reported a non-Python process: %r" % [public(e) for e in c_waits]


def _shared_libpython():
    """(libpython path, PYTHONHOME) of the first tested interpreter built with a shared
    libpython, or None."""
    q = ("import os, sys, sysconfig\n"
         "lib = os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('INSTSONAME') or '')\n"
         "sys.stdout.write(lib + '\\n' + sys.prefix + '\\n')\n")
    for py in [SYSTEM_PYTHON] + INTERPRETERS:
        try:
            out = subprocess.run([py, "-c", q], stdout=subprocess.PIPE, timeout=30).stdout.decode().split("\n")
        except (OSError, subprocess.TimeoutExpired):
            continue
        if len(out) >= 2 and out[0].endswith(".so.1.0") and os.path.exists(out[0]):
            return out[0], out[1]
    return None


@pytest.mark.parametrize("how", ["command", "host"])
def test_embedded_interpreter_is_python(reg, binary, tmp_path, how):
    """A process that dlopen()s libpython runs a CPython interpreter: default mode reports
    its long waits, whether it is the `-- COMMAND` or a process started later on the host."""
    found = _shared_libpython()
    if not found:
        pytest.skip("no tested interpreter has a shared libpython")
    lib, home = found
    exe = str(tmp_path / "trace_embed")
    subprocess.check_call(["cc", "-O2", "-o", exe, EMBED_C, "-ldl"], timeout=60)
    out = str(tmp_path / "embed.out")
    code = ("import os, signal, threading, ctypes\n"
            "signal.alarm(3)\n"
            "lock = threading.Lock(); lock.acquire()\n"
            "def worker():\n"
            "    open(%r, 'w').write('%%d %%d' %% (os.getpid(), ctypes.CDLL(None).syscall(186)))\n"
            "    lock.acquire()\n"
            "t = threading.Thread(target=worker); t.daemon = True; t.start(); t.join()\n" % out)
    env = dict(os.environ, PYTHONHOME=home)
    if how == "command":
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", exe, lib, code], env=env)
        tr.wait_start()
        tr.wait_exit(30)
    else:
        tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
        tr.wait_start()
        reg.popen([exe, lib, code], env=env).wait(30)
        time.sleep(0.5)
        assert tr.stop() == 0
    check_stream(tr)
    with open(out) as f:
        pid, tid = [int(x) for x in f.read().split()]
    waits = tr.select("long_wait", pid=pid, tid=tid)
    assert len(waits) == 1, ("process %d (%s, libpython loaded with dlopen) blocked 3 s on a lock: "
                             "want one long_wait for tid %d, got %r%s" % (
                                 pid, os.path.basename(exe), tid, [public(e) for e in waits], tr.describe()))


@pytest.mark.parametrize("how", ["command", "pid"])
def test_renamed_interpreter_is_python(reg, binary, tmp_path, how):
    """The interpreter binary under another name (an application shipping its own copy of
    python, here a copy of SYSTEM_PYTHON, which links libpython statically) is still CPython."""
    exe = str(tmp_path / "myservice")
    subprocess.check_call(["cp", os.path.realpath(SYSTEM_PYTHON), exe])
    if how == "command":
        out = str(tmp_path / "lock.out")
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "--", "sh", "-c", '"$0" "$1" --alarm 3 > "$2"',
                                  exe, LOCK_PROG, out])
        tr.wait_start()
        tr.wait_exit(30)
        with open(out) as f:
            words = f.read().split()
        pid, tid = int(words[words.index("ready") + 1]), int(words[words.index("blocking") + 1])
    else:
        p = reg.popen([exe, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, bufsize=0)
        pid = int(expect_words(p, "ready", 30, "myservice")[0])
        tr = Tracer(reg, binary, ["--json", "-t", "0.5", "-p", str(pid)])
        tr.wait_start()
        p.stdin.write(b"go\n")
        tid = int(expect_words(p, "blocking", 15, "myservice")[0])
        try:
            tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == tid, 0.5 + LATE_SLACK + 2, "")
        except AssertionError:
            pass
        p.stdin.write(b"release\n")
        p.wait(15)
        assert tr.stop() == 0
    check_stream(tr)
    waits = tr.select("long_wait", pid=pid, tid=tid)
    assert len(waits) == 1, ("'myservice' (a copy of %s) blocked on a lock: want one long_wait for tid %d, got %r%s"
                             % (SYSTEM_PYTHON, tid, [public(e) for e in waits], tr.describe()))


def test_host_wide_default_reports_only_python(reg, binary, tmp_path):
    """No -p, no --: the whole host; a Python hang started later is reported, a C one not."""
    exe = str(tmp_path / "trace_futex_block")
    subprocess.check_call(["cc", "-O2", "-o", exe, FUTEX_C], timeout=60)
    tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
    tr.wait_start()
    c = reg.popen([exe, "5"], stdout=subprocess.PIPE, bufsize=0)
    py = reg.popen([SYSTEM_PYTHON, LOCK_PROG, "--alarm", "5"], stdout=subprocess.PIPE, bufsize=0)
    c_pid = int(expect_words(c, "ready", 10, "C blocker")[0])
    py_pid = int(expect_words(py, "ready", 10, "Python blocker")[0])
    py_tid = int(expect_words(py, "blocking", 10, "Python blocker")[0])
    ev = tr.wait_for(lambda e: e.get("event") == "long_wait" and e.get("tid") == py_tid, 0.5 + LATE_SLACK + 2,
                     "host-wide long_wait for the Python worker")
    assert ev["pid"] == py_pid and ev["before_start"] is False, public(ev)
    time.sleep(1.0)
    assert tr.stop() == 0
    check_stream(tr)
    assert not tr.select("long_wait", pid=c_pid), "default mode reported the non-Python C program"


# --------------------------------------------------------------------------- 8. duration, SIGTERM, -o

def test_duration_stops_by_itself(reg, binary):
    tr = Tracer(reg, binary, ["--json", "--duration", "1"])
    start = tr.wait_start()
    rc = tr.wait_exit(20)
    ended = time.time()
    assert rc == 0, tr.describe()
    evs = check_stream(tr)
    assert ended - start["_recv"] >= 0.9, "--duration 1 ended %.2f s after start" % (ended - start["_recv"])
    assert ended - start["_recv"] <= 6, "--duration 1 took %.2f s after start" % (ended - start["_recv"])
    assert parse_time(evs[-1]["time"]) - parse_time(start["time"]) >= 0.9


def test_fractional_duration_and_threshold(reg, binary):
    tr = Tracer(reg, binary, ["--json", "-t", "0.25", "--duration", "0.5"])
    tr.wait_start()
    assert tr.wait_exit(20) == 0, tr.describe()
    check_stream(tr)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_detaches_with_stop(reg, binary, sig):
    tr = Tracer(reg, binary, ["--json"])
    tr.wait_start()
    time.sleep(0.3)
    rc = tr.stop(sig)
    check_stream(tr)
    assert rc == 0, "exit status %s after %s, want a clean 0%s" % (rc, sig, tr.describe())


def test_signal_in_command_mode_stops_tracer(reg, binary):
    """SIGINT to the tracer in `--` mode: it still ends with a stop event, and the command
    is not left behind stopped or traced."""
    tr = Tracer(reg, binary, ["--json", "--", "sleep", "30"])
    tr.wait_start()
    time.sleep(0.3)
    kids = []
    for tid in os.listdir("/proc/%d/task" % tr.proc.pid):
        with open("/proc/%d/task/%s/children" % (tr.proc.pid, tid)) as f:
            kids += [int(x) for x in f.read().split()]
    assert len(kids) == 1, "want the command as the tracer's only child: %r" % kids
    tr.stop(signal.SIGINT)
    check_stream(tr)
    try:
        with open("/proc/%d/status" % kids[0]) as f:
            status = f.read()
    except OSError:
        return  # the tracer ended the command: fine too
    assert not re.search(r"^State:\s+[tT]", status, re.M), "command left stopped:\n" + status
    assert re.search(r"^TracerPid:\s+0$", status, re.M), "command left traced:\n" + status


def test_text_mode_summary_on_sigint(reg, binary):
    tr = Tracer(reg, binary, ["-t", "1"])
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not tr.stderr().strip() and tr.proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)
    before = tr.stderr()
    assert tr.stop(signal.SIGINT) == 0, tr.describe()
    after = tr.stderr()
    assert len(after.strip()) > len(before.strip()), "no summary after SIGINT (stderr %r)" % after


def test_output_file(reg, binary, tmp_path):
    out = str(tmp_path / "trace.jsonl")
    tr = Tracer(reg, binary, ["--json", "--duration", "1", "-o", out])
    rc = tr.wait_exit(20)
    assert rc == 0, tr.describe()
    assert not [l for l in tr.lines if '"event"' in l], "events on stdout despite -o: %r" % tr.lines[:5]
    with open(out) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    evs = [json.loads(l) for l in lines]
    assert evs and evs[0]["event"] == "start" and evs[-1]["event"] == "stop", lines[:3] + lines[-3:]
    assert all(TIME_RE.match(e["time"]) for e in evs)


def test_output_file_long_form_and_text_mode(reg, binary, tmp_path):
    out = str(tmp_path / "trace.txt")
    tr = Tracer(reg, binary, ["--duration", "0.5", "--output", out])
    assert tr.wait_exit(20) == 0, tr.describe()
    assert os.path.exists(out)


PID_MAX = "/proc/sys/kernel/pid_max"
NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
SLOTS = 65536  # PH_WAIT_SLOTS and PH_WATCH_SLOTS in bpf/pyhang.h

HANG_MAIN = ("import threading, sys\n"
             "l = threading.Lock(); l.acquire()\n"
             "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
             "l.acquire()\n")


def _spawn_with_pid(reg, want, tries=50):
    """A Python process (main thread blocked forever) whose pid is `want`, or None: the host's
    next pid is set through ns_last_pid, which another fork on the host may take first."""
    for _ in range(tries):
        with open(NS_LAST_PID, "w") as f:
            f.write(str(want - 1))
        p = reg.popen([SYSTEM_PYTHON, "-c", HANG_MAIN], stdout=subprocess.PIPE)
        if p.pid == want:
            return p
        p.kill()
        p.wait()
    return None


def test_slot_collisions_use_overflow(reg, binary):
    """Two processes whose pids are equal modulo the slot count share a watch slot and a wait
    slot (main thread tid == pid): the second lives in the overflow tables, and both long
    waits, and both wait ends, must still be reported, once each."""
    with open(PID_MAX) as f:
        old_max = f.read().strip()
    try:
        with open(PID_MAX, "w") as f:
            f.write("4194304")
        tr = Tracer(reg, binary, ["--json", "-t", "0.5"])
        tr.wait_start()
        first = None
        for _ in range(20):
            a = reg.popen([SYSTEM_PYTHON, "-c", HANG_MAIN], stdout=subprocess.PIPE)
            if a.pid + SLOTS < 4194304:
                b = _spawn_with_pid(reg, a.pid + SLOTS)
                if b is not None:
                    first = (a, b)
                    break
            a.kill()
            a.wait()
        assert first, "could not get two processes with pids %d apart" % SLOTS
        pids = [p.pid for p in first]
        for p in first:
            expect_words(p, "ready", 30, "colliding process")
            wait_in_futex(p.pid, p.pid, 10)
        for pid in pids:
            tr.wait_for(lambda e, pid=pid: e.get("event") == "long_wait" and e["pid"] == pid,
                        0.5 + LATE_SLACK + 3, "long_wait of pid %d (slot %d)" % (pid, pid % SLOTS))
        for p in first:
            p.kill()
            p.wait()
        for pid in pids:
            tr.wait_for(lambda e, pid=pid: e.get("event") == "wait_end" and e["pid"] == pid,
                        5, "wait_end of pid %d" % pid)
        assert tr.stop() == 0
        check_stream(tr)
        for pid in pids:
            assert [e["tid"] for e in tr.select("long_wait", pid=pid)] == [pid], \
                "want one long_wait of pid %d's main thread: %r" % (pid, tr.select("long_wait", pid=pid))
            assert len(tr.select("wait_end", pid=pid)) == 1
        assert tr.select("stop")[0]["lost_events"] == 0
    finally:
        with open(PID_MAX, "w") as f:
            f.write(old_max)
