"""Idle servers are not long waits (issue 16's fleet noise), on every interpreter.

A thread that waits only for new work (accept() on a listening socket, a selector or
socketserver loop on listening sockets, an asyncio loop idle in its selector) gets no
`long_wait` at `-t 1`, while a recv() on a connection that never answers, a pipe read and an
asyncio task awaiting a silent server still get theirs; `--report-idle` brings the idle ones
back, marked `idle`; `dump` marks them too, and a text chain that ends at an idle worker
says so.  No `hang` for any of it.

Real kernel, real processes (tests/programs/idle_io.py), root.  One JSON tracer per setting
(default, --report-idle) and one text tracer watch every program of every interpreter at once.  Tids, the
asyncio self-pipe fd and lines come from the programs' own reports and `# MARK:` comments,
never from the tool's output.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import INTERPRETERS
from harness import Registry, Tracer, alarm_guard, mark_line
from harness.session import Job

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "idle_io.py")
READY_TIMEOUT = 40.0
SEEN_TIMEOUT = 30.0

VERSIONS = [(label, path, tuple(int(x) for x in v.split(".")[:2])) for label, path, v in INTERPRETERS]
ALL = [pytest.param(p, v, id=l) for l, p, v in VERSIONS]
AIO = [pytest.param(p, v, id=l) for l, p, v in VERSIONS if v >= (3, 7)]

IDLE_THREADS = ("acceptor", "unixacc", "sockserver", "selector")
CONTROLS = {"recv": ("recvfrom",), "piper": ("read",)}


def short(e, n=600):
    return json.dumps(dict((k, v) for k, v in e.items() if not k.startswith("_")))[:n]


class S(object):
    pass


def _tids(job):
    return dict((w[0], int(w[1])) for w in job.all("tid"))


def _idle_names(version):
    return IDLE_THREADS + (("pool_0",) if version >= (3, 0) else ())


@pytest.fixture(scope="module")
def idle_session(binary, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("idle_io"))
    reg = Registry()
    s = S()
    s.jobs = {}
    try:
        with alarm_guard(110, "idle_io session"):
            for label, py, v in VERSIONS:
                for mode in ("threads",) + (("asyncio",) if v >= (3, 7) else ()):
                    j = Job((mode, py), py, PROG, [mode], d)
                    j.version = v
                    with open(j.out, "wb") as out:
                        reg.popen(j.argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=os.path.dirname(PROG))
                    s.jobs[(mode, py)] = j
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and not all(j.get("ready") is not None
                                                          for j in s.jobs.values()):
                time.sleep(0.1)
            for j in s.jobs.values():
                assert j.get("ready") is not None, "%s never got ready%s" % (j.key, j.describe())
                j.tids = _tids(j)
            time.sleep(0.5)  # every thread in its call
            s.dumps = {}
            for key, j in s.jobs.items():
                out = subprocess.run([binary, "dump", str(j.pid), "--json"], capture_output=True,
                                     timeout=30)
                s.dumps[key] = (out.returncode, out.stdout.decode("utf-8", "replace"),
                                out.stderr.decode("utf-8", "replace"))
                if key[0] == "threads":
                    out = subprocess.run([binary, "dump", str(j.pid)], capture_output=True, timeout=30)
                    s.dumps[key + ("text",)] = out.stdout.decode("utf-8", "replace")
            pids = []
            for j in s.jobs.values():
                pids += ["-p", str(j.pid)]
            s.plain = Tracer(reg, binary, ["--json", "-t", "1"] + pids)
            s.plain.saved = os.path.join(d, "plain.jsonl")
            s.idle = Tracer(reg, binary, ["--json", "-t", "1", "--report-idle"] + pids)
            s.idle.saved = os.path.join(d, "report_idle.jsonl")
            s.text_path = os.path.join(d, "text.out")
            text_out = open(s.text_path, "wb")
            text = reg.popen([binary, "-t", "1"] + pids, stdout=text_out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
            s.plain.wait_start()
            s.idle.wait_start()
            # what both must report, and what only --report-idle reports
            both, idle_only = [], []
            for (mode, py), j in s.jobs.items():
                if mode == "threads":
                    both += [(j.pid, j.tids[n]) for n in list(CONTROLS) + ["MainThread"]]
                    idle_only += [(j.pid, j.tids[n]) for n in _idle_names(j.version)]
                else:
                    both.append((j.pid, j.tids["aioclient"]))
                    both.append((j.pid, j.tids["aioevent"]))
                    idle_only.append((j.pid, j.tids["MainThread"]))
            chains = [j.pid for (mode, _), j in s.jobs.items() if mode == "threads" and j.version >= (3, 0)]

            def text_has_chains():
                with open(s.text_path, "rb") as f:
                    t = f.read().decode("utf-8", "replace")
                return all(_chain_lines(t, pid) for pid in chains)
            deadline = time.monotonic() + SEEN_TIMEOUT
            while time.monotonic() < deadline and not (
                    all(s.plain.select("long_wait", pid=p, tid=t) for p, t in both) and
                    all(s.idle.select("long_wait", pid=p, tid=t) for p, t in both + idle_only) and
                    text_has_chains()):
                time.sleep(0.2)
            time.sleep(2.5)  # the plain tracer had as many looks at the idle threads: room for wrong ones
            s.rc = (s.plain.stop(signal.SIGINT), s.idle.stop(signal.SIGINT))
            text.send_signal(signal.SIGINT)
            text.wait(30)
            text_out.close()
            with open(s.text_path, "rb") as f:
                s.text = f.read().decode("utf-8", "replace")
            for tr in (s.plain, s.idle):
                with open(tr.saved, "w") as f:
                    f.write("\n".join(tr.lines) + "\n")
        return s
    finally:
        for j in s.jobs.values():
            try:
                os.unlink("/tmp/idle_io_%d.sock" % j.pid)
            except (OSError, TypeError):
                pass
        reg.cleanup()


def _chain_lines(text, pid):
    return [l for l in text.splitlines() if "(pid %d)" % pid in l and "future run by 'pool_0'" in l]


def _one(tr, job, name):
    lws = tr.select("long_wait", pid=job.pid, tid=job.tids[name])
    assert len(lws) == 1, "want one long_wait of %s (tid %d), got %d%s%s" % (
        name, job.tids[name], len(lws), job.describe(), tr.describe())
    return lws[0]


def _none(tr, job, name):
    lws = tr.select("long_wait", pid=job.pid, tid=job.tids[name])
    assert not lws, "%s (tid %d, pid %d) waits for new work only, yet: %s" % (
        name, job.tids[name], job.pid, [short(e, 1500) for e in lws])


def _no_hang(s, job):
    for tr in (s.plain, s.idle):
        assert not tr.bad, "non-JSON lines: %r" % tr.bad[:3]
        stop = tr.select("stop")
        assert stop and stop[-1].get("lost_events") == 0, tr.describe()
        hangs = tr.select("hang", pid=job.pid)
        assert not hangs, "hang for an idle server: %s" % [short(h, 1500) for h in hangs]
    assert s.rc == (0, 0), (s.rc, s.plain.describe(), s.idle.describe())


@pytest.mark.parametrize("python,version", ALL)
def test_idle_threads_get_no_long_wait(idle_session, python, version):
    """accept() on listening TCP and unix sockets, socketserver's serve_forever(poll_interval=
    100), a selector on two listening sockets, and a pool worker in accept() whose future the
    main thread waits for: no long_wait at -t 1, and no hang; the recv() with no answer and
    the pipe read keep theirs, and the main thread's wait for the future still names its
    worker (the graph keeps idle threads).  The sampler reads a process's threads together
    (up to 25 a pass, round robin), so the idle threads, all in their calls since before the
    tracer started, were looked at in the pass that reported the recv() or the next ones;
    the session waits 2.5 s more, room for a wrong long_wait to show."""
    s = idle_session
    job = s.jobs[("threads", python)]
    for name in _idle_names(version):
        _none(s.plain, job, name)
    for name, calls in CONTROLS.items():
        wf = _one(s.plain, job, name)["waiting_for"]
        assert wf["kind"] == "I/O" and wf["syscall"] in calls and wf["idle"] is False, short(wf)
    main = _one(s.plain, job, "MainThread")["waiting_for"]
    if version >= (3, 0):
        assert main["kind"] == "Future.result", short(main)
        assert main["holder"]["tid"] == job.tids["pool_0"], short(main)
    _no_hang(s, job)


@pytest.mark.parametrize("python,version", ALL)
def test_report_idle_brings_them_back(idle_session, python, version):
    """--report-idle: each idle thread gets its long_wait, marked idle (listening), with its
    listening socket; the real waits are not idle."""
    s = idle_session
    job = s.jobs[("threads", python)]
    for name in _idle_names(version):
        wf = _one(s.idle, job, name)["waiting_for"]
        assert wf["kind"] == "I/O" and wf["idle"] is True, short(wf)
        assert wf["idle_reason"] == "listening", short(wf)
        socks = wf["waits_on"] if "waits_on" in wf else [wf["blocked_on"]]
        assert socks and all(b["type"] in ("tcp", "unix") for b in socks), short(wf)
        if name != "unixacc":
            assert all(b["state"] == "LISTEN" for b in socks), short(wf)
        else:  # a listening socket has no peer (SO_PEERCRED would name the listener)
            assert socks[0]["local"] == "/tmp/idle_io_%d.sock" % job.pid, short(wf)
            assert socks[0]["peer"] is None, short(wf)
    for name in CONTROLS:
        wf = _one(s.idle, job, name)["waiting_for"]
        assert wf["idle"] is False and wf["idle_reason"] is None, short(wf)


@pytest.mark.parametrize("python,version", ALL)
def test_dump_marks_idle(idle_session, python, version):
    """`dump --json` keeps every idle thread with its resource and `idle: true`; the text
    dump says "(idle: waits for new connections)" on the acceptor's line."""
    s = idle_session
    job = s.jobs[("threads", python)]
    rc, out, err = s.dumps[("threads", python)]
    assert rc == 0, err
    by = dict((t["tid"], t) for t in json.loads(out)["threads"])
    for name in _idle_names(version):
        wf = by[job.tids[name]].get("waiting_for") or {}
        assert wf.get("idle") is True and wf.get("idle_reason") == "listening", (name, short(wf))
    for name in CONTROLS:
        wf = by[job.tids[name]]["waiting_for"]
        assert wf["idle"] is False, (name, short(wf))
    text = s.dumps[("threads", python, "text")]
    line = [l for l in text.splitlines() if 'Thread "acceptor" (tid %d' % job.tids["acceptor"] in l]
    assert line and "(LISTEN)" in line[0] and "(idle: waits for new connections)" in line[0], text[:3000]


@pytest.mark.parametrize("python,version", AIO)
def test_idle_asyncio_server(idle_session, python, version):
    """asyncio.start_server().serve_forever() with nobody connecting: the loop's thread is
    idle in its selector on the listening socket and the loop's self-pipe (whose fd the
    reader finds as loop._ssock's: the one the program printed), so no long_wait and no
    hang; with --report-idle a long_wait marked idle (event_loop).  A loop in another thread
    whose task awaits a reply that never comes keeps its long_wait, and so does a loop whose
    only task awaits an asyncio.Event nobody sets (its selector waits on the self-pipe
    alone, like an idle loop's: a lost wake-up is told apart by what its tasks await)."""
    s = idle_session
    job = s.jobs[("asyncio", python)]
    selfpipe = job.int("selfpipe")
    _none(s.plain, job, "MainThread")
    wf = _one(s.plain, job, "aioclient")["waiting_for"]
    assert wf["kind"] == "I/O" and wf["idle"] is False, short(wf)
    assert any(b["type"] == "tcp" and b["state"] == "ESTABLISHED" for b in wf["waits_on"]), short(wf)
    wf = _one(s.plain, job, "aioevent")["waiting_for"]
    assert wf["kind"] == "I/O" and wf["idle"] is False and wf["idle_reason"] is None, short(wf)
    e = _one(s.idle, job, "MainThread")
    wf = e["waiting_for"]
    assert wf["idle"] is True and wf["idle_reason"] == "event_loop", short(wf)
    fds = dict((b["fd"], b) for b in wf["waits_on"])
    assert fds[selfpipe]["type"] == "unix", short(wf)
    assert any(b["state"] == "LISTEN" for b in fds.values()), short(wf)
    rc, out, err = s.dumps[("asyncio", python)]
    assert rc == 0, err
    d = json.loads(out)
    loops = [L for L in d["asyncio"]["loops"] if (L.get("thread") or {}).get("tid") == job.tids["MainThread"]]
    assert loops and loops[0]["state"] == "idle" and loops[0]["self_pipe_fd"] == selfpipe, short(d, 3000)
    main = [t for t in d["threads"] if t["tid"] == job.tids["MainThread"]][0]
    assert main["waiting_for"]["idle_reason"] == "event_loop", short(main)
    _no_hang(s, job)


@pytest.mark.parametrize("python,version", [p for p in ALL if p.values[1] >= (3, 0)])
def test_text_chain_to_idle_worker(idle_session, python, version):
    """In text, the main thread's wait for a future run by a worker in accept() names the
    worker, its listening socket and that it is idle, with no "pass timeout=" advice."""
    s = idle_session
    job = s.jobs[("threads", python)]
    lines = _chain_lines(s.text, job.pid)
    assert lines, "no text sentence for pid %d:\n%s" % (job.pid, s.text[-3000:])
    want = ("for a future run by 'pool_0' (tid %d), which has been in accept4() on TCP 127.0.0.1:"
            % job.tids["pool_0"], " (LISTEN) for ", "(idle: waits for new connections), at idle_io.py:%d"
            % mark_line(PROG, "accept"))
    for part in want:
        assert part in lines[0], "%r not in %r" % (part, lines[0])
    assert "pass timeout=" not in lines[0], lines[0]
