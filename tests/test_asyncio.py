"""asyncio event loops and tasks (issue 16, item 3), on every interpreter: 3.7-3.13 read,
3.6 said unsupported, 2.7 (no asyncio) left alone.

Real processes, real /proc/PID/mem reads, a real tracer (root).  What is expected comes from
the programs themselves (tests/programs/asyncio_tasks.py prints its own tasks: names, await
chains with lines from the frames, what each awaits) and from `# MARK:` comments, never
from the tool's output.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import INTERPRETERS
from harness import Registry, alarm_guard, mark_line, read_line

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "asyncio_tasks.py")
PLAIN = os.path.join(HERE, "programs", "asyncio_plain.py")
HOSTILE = os.path.join(HERE, "programs", "asyncio_hostile.py")

VERSIONS = [(label, path, tuple(int(x) for x in v.split(".")[:2])) for label, path, v in INTERPRETERS]
READ = [pytest.param(p, v, id=l) for l, p, v in VERSIONS if v >= (3, 7)]
UNSUPPORTED = [pytest.param(p, v, id=l) for l, p, v in VERSIONS if v < (3, 7)]


def short(fn):
    return fn.rsplit(".", 1)[-1]


HANGING_MODES = ("blocked", "selfwait", "selfwait2", "cycle", "release")


def start(reg, python, prog, *args):
    """Start a program, read its pid and lines up to "ready". Those that hang on purpose are
    marked so (the suite's host-wide tracer expects their `hang` events)."""
    hangs = prog == HOSTILE or bool(args and args[0] in HANGING_MODES)
    p = reg.popen([python, prog] + list(args), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                  bufsize=0, hangs=hangs)
    pid = int(read_line(p, 30, "%s pid" % prog).split()[1])
    assert pid == p.pid
    lines = []
    while True:
        line = read_line(p, 30, "%s %s ready" % (prog, args))
        if line == "ready":
            return p, lines
        lines.append(line)


def dump(binary, pid, json_out):
    argv = [binary, "dump", str(pid)] + (["--json"] if json_out else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "dump failed: %s" % out.stderr
    return json.loads(out.stdout) if json_out else out.stdout


def task_key(t, named):
    if named:
        return t["name"]
    return short(t["coroutine_stack"][-1]["function"]) if t["coroutine_stack"] else None


# --------------------------------------------------------------------------- dump: the tree

@pytest.mark.parametrize("python,version", READ)
def test_dump_tasks_match_the_program(binary, python, version):
    """Named tasks awaiting a sleep, an Event, a Queue, a chain of tasks and a gather():
    names, await chains (function, file, line, innermost first), what each awaits and who
    awaits it, as the program itself described them; then the text tree."""
    reg = Registry()
    try:
        with alarm_guard(60, "asyncio dump"):
            proc, lines = start(reg, python, PROG, "tasks")
            facts = json.loads(lines[0])
            # "ready" is printed from the loop's thread: wait until it is back in its selector
            for _ in range(50):
                d = dump(binary, proc.pid, True)
                if all(l.get("state") == "idle" for l in d.get("asyncio", {}).get("loops", [{}])):
                    break
                time.sleep(0.1)
            now = time.monotonic()
            text = dump(binary, proc.pid, False)
    finally:
        reg.cleanup()
    named = version >= (3, 8)
    a = d.get("asyncio")
    assert a and a["supported"] is True, "no asyncio object: %s" % json.dumps(d)[:2000]
    assert len(a["loops"]) == 1, a["loops"]
    loop = a["loops"][0]
    assert loop["thread"]["tid"] == proc.pid and loop["thread"]["name"] == "MainThread"
    assert loop["state"] == "idle", loop
    tasks = {task_key(t, named): t for t in loop["tasks"]}
    by_id = {t["id"]: t for t in loop["tasks"]}
    for key, f in facts["tasks"].items():
        assert key in tasks, "task %s missing; read: %s" % (key, sorted(map(str, tasks)))
        t = tasks[key]
        assert t["state"] == "pending"
        if named:
            assert t["name"] == f["name"]
        else:
            assert t["name"] is None
        if f["chain"]:
            want = [(c[0], c[2], c[1]) for c in reversed(f["chain"])]
            got = [(short(c["function"]), c["file"], c["line"]) for c in t["coroutine_stack"]]
            assert got == want, "await chain of %s: read %s, the program says %s" % (key, got, want)
        assert t["awaits"]["kind"] == f["kind"], (key, t["awaits"], f)
        if f["awaits"]:
            target = tasks[f["awaits"]]
            assert t["awaits"]["tasks"] == [target["id"]], (key, t["awaits"])
            assert t["id"] in target["awaited_by"], (key, target["awaited_by"])
    main = tasks[[k for k, f in facts["tasks"].items() if f["kind"] == "gather"][0]]
    assert sorted(main["awaits"]["tasks"]) == sorted(tasks[n]["id"] for n in facts["gather"]), main
    assert all(i in by_id for i in main["awaits"]["tasks"])
    left = tasks["sleeper"]["awaits"]["deadline_in_s"]
    assert abs(left - (facts["tasks"]["sleeper"]["wakes_at_monotonic"] - now)) < 2.0, left
    # text: the tree puts each awaited task under the task that awaits it
    assert "asyncio event loop on thread \"MainThread\" (tid %d): idle in its selector" % proc.pid in text, text

    def indent_of(label):
        for line in text.splitlines():
            m = re.match(r"^( *)└── %s " % re.escape(label), line)
            if m:
                return len(m.group(1))
        raise AssertionError("no tree line for %s in:\n%s" % (label, text))
    if named:
        top, mid, ev = "Task 'chain-top'", "Task 'chain-mid'", "Task 'eventer'"
    else:
        top, mid, ev = "Task running chain_top()", "Task running chain_mid()", "Task running eventer()"
    assert indent_of(top) < indent_of(mid) < indent_of(ev), text


@pytest.mark.parametrize("python,version", UNSUPPORTED)
def test_old_versions_say_unsupported(binary, python, version):
    reg = Registry()
    try:
        with alarm_guard(60, "asyncio unsupported"):
            proc, lines = start(reg, python, PLAIN)
            d = dump(binary, proc.pid, True)
            text = dump(binary, proc.pid, False)
    finally:
        reg.cleanup()
    a = d.get("asyncio")
    assert "threads" in d and d["threads"], "the rest of dump must be intact"
    if lines[0] == "asyncio":  # 3.6
        assert a and a["supported"] is False and "%d.%d" % version in a["reason"], a
        assert "asyncio: unsupported" in text, text
    else:  # 2.7 has no asyncio: nothing to say
        assert lines[0] == "none" and a is None and "asyncio event loop" not in text and "asyncio:" not in text, (a, text)


# --------------------------------------------------------------------------- the tracer

class _Lines(object):
    """The tracer's stdout lines, read by a thread, as JSON events."""

    def __init__(self, proc):
        self.proc, self.events, self.cond = proc, [], threading.Condition()
        self.thread = threading.Thread(target=self._read)
        self.thread.daemon = True
        self.thread.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            if raw.strip():
                with self.cond:
                    self.events.append(json.loads(raw))
                    self.cond.notify_all()

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events) and time.monotonic() < deadline:
                self.cond.wait(0.2)
            return pred(self.events)


@pytest.fixture(scope="module")
def session(binary):
    """Every interpreter's blocked loop, self-waiting loops, await cycle, healthy server and
    a loop blocked until SIGUSR1, under one tracer at -t 1 (one run, ~10 s)."""
    reg = Registry()
    progs = {}
    try:
        with alarm_guard(150, "asyncio session"):
            for label, python, v in VERSIONS:
                if v < (3, 7):
                    continue
                for mode in ("blocked", "selfwait", "selfwait2", "cycle", "server", "release"):
                    args = [mode] + (["90"] if mode == "server" else [])
                    progs[(label, mode)] = start(reg, python, PROG, *args)[0]
            pids = [a for p in progs.values() for a in ("-p", str(p.pid))]
            errf = tempfile.TemporaryFile()
            tracer = reg.popen([binary, "--json", "-t", "1", "--duration", "60"] + pids,
                               stdout=subprocess.PIPE, stderr=errf)
            lines = _Lines(tracer)
            assert lines.wait(lambda evs: evs and evs[0]["event"] == "start", 60), "no start"
            released = [p.pid for k, p in progs.items() if k[1] == "release"]

            def seen(event, pids):
                return lambda evs: all(any(e.get("event") == event and e.get("pid") == pid
                                           for e in evs) for pid in pids)
            lines.wait(seen("hang", released), 30)
            dumps = {k: dump(binary, p.pid, True) for k, p in progs.items() if k[1] == "server"}
            for k, p in progs.items():
                if k[1] == "release":
                    p.send_signal(signal.SIGUSR1)
            lines.wait(seen("hang_end", released), 15)
            time.sleep(1.5)  # healthy servers: more reads at -t 1
            tracer.send_signal(signal.SIGINT)
            tracer.wait(60)
            lines.thread.join(10)
            errf.seek(0)
            err = errf.read()
    finally:
        reg.cleanup()
    return {"progs": progs, "events": lines.events, "stderr": err.decode(), "dumps": dumps,
            "rc": tracer.returncode}


def test_tracer_ran_clean(session):
    """The session's tracer ended on SIGINT with status 0, nothing on stderr from a
    sanitizer, its last record a `stop` counting exactly the five asyncio hangs of each
    interpreter (none for the healthy servers)."""
    assert session["rc"] == 0, session["stderr"][-2000:]
    assert "Sanitizer" not in session["stderr"] and "runtime error" not in session["stderr"]
    stop = session["events"][-1]
    assert stop["event"] == "stop", stop
    hangs = [e for e in session["events"] if e.get("event") == "hang"]
    assert stop["counts"]["hang"] == len(hangs), stop["counts"]
    # blocked, selfwait, selfwait2, cycle and release, on every interpreter read
    assert len(hangs) == 5 * len(LABELS), [(h["pid"], h["diagnosis"]["code"]) for h in hangs]


def hangs_of(s, label, mode):
    pid = s["progs"][(label, mode)].pid
    return [e for e in s["events"] if e.get("event") == "hang" and e.get("pid") == pid]


def describe(s, label, mode):
    pid = s["progs"][(label, mode)].pid
    evs = [e for e in s["events"] if e.get("pid") == pid]
    return "\nevents of pid %d: %s\nstderr: %s" % (pid, json.dumps(evs)[:3000], s["stderr"][-1500:])


LABELS = [pytest.param(l, id=l) for l, _, v in VERSIONS if v >= (3, 7)]


@pytest.mark.parametrize("label", LABELS)
def test_event_loop_blocked(session, label):
    """time.sleep() in a coroutine: event_loop_blocked naming the coroutine and the call."""
    hs = hangs_of(session, label, "blocked")
    codes = [h["diagnosis"]["code"] for h in hs]
    assert codes == ["event_loop_blocked"], "hangs: %s%s" % (codes, describe(session, label, "blocked"))
    h = hs[0]
    line = mark_line(PROG, "blocking")
    assert "blocked() at asyncio_tasks.py:%d" % line in h["diagnosis"]["summary"], h["diagnosis"]
    assert "time.sleep(3600)" in h["diagnosis"]["summary"]
    assert h["diagnosis"]["waiter_tid"] == h["pid"]
    loop = h["asyncio"]["loops"][0]
    assert loop["state"] == "blocked" and loop["running_s"] >= 1.0, loop
    assert loop["callback"]["line"] == line and short(loop["callback"]["function"]) == "blocked"


@pytest.mark.parametrize("label", LABELS)
def test_event_loop_blocked_then_free(session, label):
    """A loop blocked until SIGUSR1 interrupts its time.sleep(): the hang, then its
    hang_end once the loop is back in its selector."""
    pid = session["progs"][(label, "release")].pid
    evs = [e for e in session["events"] if e.get("pid") == pid and e.get("event") in ("hang", "hang_end")]
    got = [(e["event"], e.get("code") or e["diagnosis"]["code"]) for e in evs]
    assert got == [("hang", "event_loop_blocked"), ("hang_end", "event_loop_blocked")], (
        "%s%s" % (got, describe(session, label, "release")))
    assert evs[1]["ended_by"] == "return" and evs[1]["duration_s"] > 1.0, evs[1]
    line = mark_line(PROG, "release")
    assert "release() at asyncio_tasks.py:%d" % line in evs[0]["diagnosis"]["summary"]


@pytest.mark.parametrize("label", LABELS)
def test_event_loop_self_wait(session, label):
    """run_coroutine_threadsafe(c, loop).result() on the loop's own thread."""
    hs = hangs_of(session, label, "selfwait")
    codes = [h["diagnosis"]["code"] for h in hs]
    assert codes == ["event_loop_self_wait"], "hangs: %s%s" % (codes, describe(session, label, "selfwait"))
    assert "selfwait() at asyncio_tasks.py:%d" % mark_line(PROG, "selfwait") in hs[0]["diagnosis"]["summary"]
    assert hs[0]["asyncio"]["loops"][0]["self_wait_future"].startswith("0x")


@pytest.mark.parametrize("label", LABELS)
def test_event_loop_self_wait_task_started(session, label):
    """The same once the coroutine runs as a task of the loop (its callback has run): the
    task's done callback chains to the future the loop's thread waits for."""
    hs = hangs_of(session, label, "selfwait2")
    codes = [h["diagnosis"]["code"] for h in hs]
    assert codes == ["event_loop_self_wait"], "hangs: %s%s" % (codes, describe(session, label, "selfwait2"))
    assert "selfwait2() at asyncio_tasks.py:%d" % mark_line(PROG, "selfwait2") in hs[0]["diagnosis"]["summary"]
    tasks = hs[0]["asyncio"]["loops"][0]["tasks"]
    assert any(t["awaits"]["kind"] == "sleep" for t in tasks), tasks


@pytest.mark.parametrize("label", LABELS)
def test_await_cycle(session, label):
    hs = hangs_of(session, label, "cycle")
    codes = [h["diagnosis"]["code"] for h in hs]
    assert codes == ["await_cycle"], "hangs: %s%s" % (codes, describe(session, label, "cycle"))
    s = hs[0]["diagnosis"]["summary"]
    v = [x for l, _, x in VERSIONS if l == label][0]
    names = ("'cycle-a'", "'cycle-b'") if v >= (3, 8) else ("first()", "second()")
    assert all(n in s for n in names), s


@pytest.mark.parametrize("label", LABELS)
def test_healthy_server_no_hang(session, label):
    """A server idle on its socket, a connected idle client, a ticker task: no hang at
    -t 1, and the loop is seen (idle, with its ticker sleeping)."""
    assert not hangs_of(session, label, "server"), describe(session, label, "server")
    a = session["dumps"][(label, "server")].get("asyncio")
    assert a and a["loops"], a
    loop = a["loops"][0]
    assert loop["state"] in ("idle", "running") and (loop["running_s"] or 0) < 1.0, loop
    kinds = sorted(t["awaits"]["kind"] for t in loop["tasks"])
    assert "sleep" in kinds, loop["tasks"]


# --------------------------------------------------------------------------- hostile targets

@pytest.mark.parametrize("python,version", READ)
def test_hostile_asyncio_is_bounded(binary, python, version):
    """4,200 tasks (4,096 read), an await chain made cyclic, a task blocked on itself and
    named to forge terminal output (run by user nobody with Debian's interpreter; pyenv's
    live under /root): dump ends quickly with whole output, the cuts said."""
    from conftest import NOBODY, SYSTEM_PYTHON
    prefix = NOBODY if os.path.realpath(python) == os.path.realpath(SYSTEM_PYTHON) else []
    reg = Registry()
    runs = {}
    try:
        with alarm_guard(90, "asyncio hostile"):
            for n in ("4200", "10"):
                p = reg.popen(prefix + [python, HOSTILE, n], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, bufsize=0, hangs=True)
                pid = int(read_line(p, 30, "hostile pid").split()[1])
                ids = read_line(p, 60, "hostile ids").split()
                assert read_line(p, 60, "hostile ready") == "ready"
                t0 = time.monotonic()
                d = dump(binary, pid, True)
                text = dump(binary, pid, False)
                runs[n] = (d, text, time.monotonic() - t0, ids[1], ids[3])
    finally:
        reg.cleanup()
    d, text, took, _, _ = runs["4200"]
    a = d["asyncio"]
    assert a["tasks_truncated"] is True, {k: v for k, v in a.items() if k != "loops"}
    tasks = [t for l in a["loops"] for t in l["tasks"]]
    assert 4000 <= len(tasks) <= 4096, len(tasks)
    assert took < 30, "two dumps took %.1f s" % took
    assert "asyncio event loop on thread" in text and "only the first 4096 tasks" in text
    d, text, took, victim, selfish = runs["10"]
    tasks = {t["id"]: t for l in d["asyncio"]["loops"] for t in l["tasks"]}
    assert tasks[victim].get("coroutine_stack_truncated") is True, tasks[victim]
    assert len(tasks[victim]["coroutine_stack"]) == 1
    assert tasks[selfish]["awaits"]["tasks"] == [selfish], tasks[selfish]
    assert "await cycle" in text, text
    if version >= (3, 8):  # the name is kept whole in JSON, escaped in text
        assert tasks[selfish]["name"].startswith("evil\x1b[2J\n"), tasks[selfish]["name"]
        assert "\x1b" not in text and "\r" not in text, text
        starts = [l for l in text.splitlines() if l.startswith("asyncio event loop on thread")]
        assert len(starts) == 1, starts
