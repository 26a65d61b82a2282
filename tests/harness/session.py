"""Scenario sessions: ONE tracer (`pyhang-trace --json ARGS -- sh -c SCRIPT`) runs a scenario's
programs under every interpreter, each program writing its output (and, when it takes one,
its report file) to files of its own.  Tests then check each interpreter's part by pid, so a
failure still names the interpreter, and the suite pays one tracer start-up per scenario
instead of one per interpreter (issue: CI time).

  Job          one program run under one interpreter: argv, report file, output file, pid
  Session      the tracer's events and the jobs, events(job, ...) selects a job's by pid
  run_session  runs the batches under one tracer; programs that hang on purpose are killed
               one by one as soon as the tracer reported what the test waits for (hang_pred)

Every wait has a timeout (alarm_guard around the session); the tracer is always stopped and
every process started is killed and reaped.
"""
import os
import re
import shlex
import signal
import time

from .procs import Registry, alarm_guard, remember_hanging_members
from .pythons import INTERPRETERS
from .tracer import START_TIMEOUT, STOP_TIMEOUT, Tracer

HANG_TIMEOUT = 25.0    # every expected finding seen within this long after the program began
START_LIMIT = 90.0     # a program runs its first line within this long of its fork (a loaded host)
SETTLE = 1.5           # after a job's expected finding: room for (wrong) duplicates

# path -> (label, version)
INTERP = dict((path, (label, version)) for label, path, version in INTERPRETERS)

RAN = {}   # session name -> interpreter labels, for the terminal summary


def label_of(python):
    return INTERP[python][0] if python in INTERP else os.path.basename(python)


class Job(object):
    """One program run under one interpreter.

    report=True: argv is PYTHON PROG REPORT EXTRA... (the diag_* programs' convention);
    report=False: PYTHON PROG EXTRA...  env: extra environment variables (dict).  The shell
    writes the program's pid ($! of `PROG &`: sh forks and execs it) to a pid file, so the
    pid is known for programs that report nothing."""

    def __init__(self, key, python, prog, extra, workdir, report=True, env=None):
        self.key, self.python, self.prog = key, python, prog
        slug = re.sub(r"[^A-Za-z0-9]+", "_", "%s_%s_%s" % (
            label_of(python), os.path.basename(prog), "_".join(os.path.basename(str(x)) for x in extra)))
        n, base = 1, slug
        while os.path.exists(os.path.join(workdir, slug + ".out")):
            n += 1
            slug = "%s_%d" % (base, n)
        self.report = os.path.join(workdir, slug + ".report")
        self.out = os.path.join(workdir, slug + ".out")
        self.pidfile = os.path.join(workdir, slug + ".pid")
        open(self.out, "w").close()   # claims the name
        self.env = dict(env or {})
        self.argv = [python, prog] + ([self.report] if report else []) + [str(x) for x in extra]

    def shell(self):
        envs = ["%s=%s" % (k, shlex.quote(v)) for k, v in sorted(self.env.items())]
        return "%s%s >%s 2>&1 </dev/null &\necho $! >%s" % (
            " ".join(envs) + " " if envs else "", " ".join(shlex.quote(a) for a in self.argv),
            shlex.quote(self.out), shlex.quote(self.pidfile))

    def lines(self):
        try:
            with open(self.report) as f:
                return [l.split() for l in f.read().splitlines() if l.strip()]
        except OSError:
            return []

    def get(self, key):
        """Words after the first `key` line of the report, or None."""
        for words in self.lines():
            if words[0] == key:
                return words[1:]
        return None

    def all(self, key):
        return [w[1:] for w in self.lines() if w[0] == key]

    def int(self, key):
        w = self.get(key)
        assert w, "%s: no '%s' line in the report%s" % (self.key, key, self.describe())
        return int(w[0])

    @property
    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        w = self.get("pid")
        return int(w[0]) if w else None

    def output(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def describe(self):
        return "\n  program: %s\n  report: %r\n  output (tail): %r" % (
            " ".join(self.argv), self.lines(), self.output()[-1500:])

    def kill(self):
        """SIGKILL the program, if that pid still runs this program.  The members of the
        sessions that hang on purpose are remembered first: the suite tracer may read this
        program's `hang` after it is gone, when its ancestry can no longer be read."""
        pid = self.pid
        if not pid:
            return
        remember_hanging_members()
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.prog.encode() not in f.read():
                    return
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Session(object):
    def __init__(self, name, tracer, rc, jobs):
        self.name, self.tracer, self.rc, self.jobs = name, tracer, rc, jobs
        self.by_key = dict((j.key, j) for j in jobs)

    def __getitem__(self, key):
        return self.by_key[key]

    def events(self, job, event=None, **match):
        """Events of this job's process (by pid)."""
        assert job.pid, "%s never reported its pid%s" % (job.key, job.describe())
        return self.tracer.select(event, pid=job.pid, **match)


def _alive(job):
    pid = job.pid
    if not pid:
        return True   # not started yet
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def run_session(binary, workdir, name, batches, args, hang_pred=None, limit=240, hangs=None):
    """Run the jobs under one tracer: `--json ARGS -- sh -c SCRIPT`.  Jobs of a batch run in
    parallel; batches one after another.

    Without hang_pred the programs end by themselves, and so does the tracer (its command
    ended).  With hang_pred(tracer, job) -> bool the programs hang: each job is killed
    SETTLE s after hang_pred first held for it (or HANG_TIMEOUT s after its first report
    line, START_LIMIT s after its fork, or when it ended by itself), which lets the next
    batch start; the tracer then ends with
    its command.  hangs: the programs hang on purpose (for the suite tracer; default: when
    hang_pred is given)."""
    jobs = [j for batch in batches for j in batch]
    script = "\n".join("\n".join(j.shell() for j in batch) + "\nwait" for batch in batches) + "\nexit 0\n"
    RAN[name] = sorted(set(label_of(j.python) for j in jobs))
    reg = Registry()
    try:
        with alarm_guard(limit, "%s session" % name):
            tr = Tracer(reg, binary, ["--json"] + list(args) + ["--", "sh", "-c", script],
                        hangs=hang_pred is not None if hangs is None else hangs)
            tr.saved = os.path.join(workdir, "tracer.jsonl")
            for j in jobs:   # a job found by its events (no report file) reads the tracer
                if getattr(j, "needs_tracer", False):
                    j.tracer = tr
            try:
                tr.wait_start()
                if hang_pred is not None:
                    seen, forked, known, done = {}, {}, {}, set()
                    next_scan = 0.0
                    while len(done) < len(jobs) and tr.proc.poll() is None:
                        now = time.monotonic()
                        # every live program of the session, recorded while it lives (every
                        # 0.5 s: a program that hangs lives longer than the 1 s threshold):
                        # one that ends by itself (released) may do so before the suite
                        # tracer has read its `hang`, and then its ancestry is gone
                        if now >= next_scan:
                            remember_hanging_members()
                            next_scan = now + 0.5
                        for i, j in enumerate(jobs):
                            if i in done:
                                continue
                            if j.pid and i not in forked:
                                forked[i] = now
                            # the clock runs from the program's first report line (its
                            # Python runs), not from its fork: on a loaded host dozens of
                            # interpreters starting at once take many seconds
                            if i in forked and i not in known and (j.lines() or not os.path.exists(j.report)
                                                                   and j.output()):
                                known[i] = now
                            if i not in seen and j.pid and hang_pred(tr, j):
                                seen[i] = now
                            if ((i in seen and now - seen[i] >= SETTLE)
                                    or (i in known and now - known[i] >= HANG_TIMEOUT)
                                    or (i in forked and now - forked[i] >= START_LIMIT)
                                    or (i in forked and not _alive(j))):
                                j.kill()
                                done.add(i)
                        time.sleep(0.1)
                    rc = tr.wait_exit(STOP_TIMEOUT, must=False)
                    if rc is None:
                        rc = tr.stop(signal.SIGINT)
                else:
                    rc = tr.wait_exit(limit - START_TIMEOUT - 10, must=False)
                    if rc is None:
                        for j in jobs:
                            j.kill()
                        tr.stop(signal.SIGINT)
                        raise AssertionError("%s session: the programs did not end in time%s" % (
                            name, tr.describe()))
            finally:
                for j in jobs:
                    j.kill()
                try:
                    if tr.proc.poll() is None:
                        tr.stop(signal.SIGINT)
                finally:
                    with open(tr.saved, "w") as f:   # the whole output, for post-mortems
                        f.write("\n".join(tr.lines) + "\n")
        return Session(name, tr, rc, jobs)
    finally:
        reg.cleanup()
