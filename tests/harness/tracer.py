"""pyhang-trace run as a subprocess with --json, read as JSON Lines: the suite's one Tracer,
the contract checks every --json stream must pass (check_stream), and small /proc helpers the
end-to-end tests share (a thread's syscall, a watcher that proves targets are never stopped)."""
import calendar
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from .procs import Registry, Timeout, read_line, remember_hanging_members

SYS_FUTEX = 202
START_TIMEOUT = 30.0      # tracer start-up (BPF load + attach)
STOP_TIMEOUT = 15.0       # tracer exit after SIGINT/SIGTERM
LATE_SLACK = 2.5          # a long_wait may come this much later than the threshold
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HEX_RE = re.compile(r"^0x[0-9a-f]+$")
PROCESS_EVENTS = ("long_wait", "wait_end", "sigchld_ignored", "child_status_lost")


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

    reg: the Registry that kills it at the end (None: a private one, see close()).  kw go to
    Registry.popen (hangs=True when the tracer's COMMAND is meant to hang).  Lines that are
    not a JSON object are kept in .bad (check_stream fails on them).  Events get two private
    keys: _recv (wall-clock time.time() of receipt) and _idx.  .saved: a file holding the
    whole output, named in failure messages (set by callers that write one)."""

    def __init__(self, reg, binary, args, **kw):
        self.argv = [binary] + list(args)
        self.err = tempfile.TemporaryFile()
        self.started_at = time.time()
        self.own_reg = reg is None
        self.reg = Registry() if reg is None else reg
        self.proc = self.reg.popen(self.argv, stdout=subprocess.PIPE, stderr=self.err,
                                   stdin=subprocess.DEVNULL, **kw)
        self.lines, self.events, self.bad = [], [], []
        self.saved = None
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
            lines = [l[:2000] for l in self.lines[-15:]]
        saved = "\n  whole output: %s" % self.saved if self.saved else ""
        return ("%s\n  command: %s\n  exit status: %s\n  stderr (tail): %s\n  stdout (last %d lines):\n    %s"
                % (saved, " ".join(self.argv)[:600], self.proc.poll(), self.stderr()[-1500:],
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

    def wait_exit(self, timeout, must=True):
        """The exit status; if it runs on after `timeout` s: AssertionError, or None (must=False)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if not must:
                return None
            raise AssertionError("tracer did not exit within %.1f s%s" % (timeout, self.describe()))
        self.reader.join(10)
        return rc

    def stop(self, sig=signal.SIGINT, timeout=STOP_TIMEOUT):
        """Signal the tracer and wait for it; returns its exit status.  The processes of
        sessions that hang on purpose (its command's, with hangs=True) are remembered first:
        once it ends, they may end too before the suite tracer has read their `hang`."""
        remember_hanging_members()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def close(self):
        """Stop it if it still runs; with a private Registry, kill and reap it."""
        if self.proc.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass
        if self.own_reg:
            self.reg.cleanup()

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
            if fx is None:  # an I/O wait found by sampling (issue 16): its resource instead;
                # a wait for a child (issue 15): the call and the child
                kind = (e.get("waiting_for") or {}).get("kind")
                assert kind == "I/O" or (kind == "child" and e.get("syscall") in ("wait4", "waitid")), \
                    "long_wait.futex null, not an I/O wait or a wait for a child: %r" % e
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


def public(e, threads=False):
    """An event for a failure message: without the private keys and (threads=False) the
    long stacks."""
    return dict((k, v) for k, v in e.items() if not k.startswith("_") and (threads or k != "threads"))


def short(e, limit=3000):
    """An event with its stacks as one JSON line, cut at `limit` characters."""
    return json.dumps(public(e, threads=True), sort_keys=True)[:limit]


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
