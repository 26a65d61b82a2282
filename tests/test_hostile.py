"""Hostile targets: names that try to break the output, and memory that lies.

* hostile_names.py: a script path, thread name, function name, file name, kernel thread
  names (comm) and a child's argv/comm full of newlines, terminal escapes, invalid UTF-8,
  bytes next to NUL and text that looks like JSON. JSON output must stay one valid object
  per line with no forged field or event, and give back the exact value (invalid UTF-8 as
  U+FFFD); text output must hold no raw control byte but the newlines the tool writes.
* corrupt_all.py: a frame chain with a cycle, a garbage code pointer, a code object whose
  name claims 2**40 characters, line tables that claim 2**40 bytes or never end, and a
  thread-state list that loops. Each part must be reported as an error in its place while
  every other thread's stack comes out right: no crash, no hang, sensible exit status.
* corrupt_runtime.py: the process's _PyRuntime lies (3.13: _Py_DebugOffsets; older: the
  interpreters head), for as long as the test needs: a clean error, then a normal dump.

One target of each kind per interpreter, shared by the tests of this module; dumps run with
both build/pyhang-trace and build/pyhang-trace-asan (ASan+UBSan), and one tracer session
(JSON from the normal build, text from the ASan build at the same time) covers every target.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import conftest
from conftest import ASAN_BINARY
from harness import Registry, alarm_guard
from harness import Tracer, check_stream, read_line

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
ROOT = os.path.dirname(HERE)
INTERPRETERS = [path for _, path, _ in conftest.INTERPRETERS]

# What hostile_names.py plants, as the JSON output must give it back (its lone surrogate /
# invalid byte 0xff becomes U+FFFD).
HOSTILE = u'ev\nil\x1b[31m\r"}, {"evil": 1, "x": "\x01\x7f\u2028\u00e9\u009b\ufffd\t\\'
# ... and as the text output must show it: C0, DEL and C1 controls as \xNN, a backslash
# doubled, invalid UTF-8 as \xff (2.7's bytes) or U+FFFD (3.x, already replaced).
HOSTILE_TEXT_HEAD = u'ev\\x0ail\\x1b[31m\\x0d\\"}, {\\"evil\\": 1, \\"x\\": \\"\\x01\\x7f\\u2028\u00e9\\xc2\\x9b'
HOSTILE_TEXT_TAIL = u'\\x09\\\\'
COMM = b'\x1b[31m"}\n\xff\x01{"e":1'[:15].decode("utf-8", "replace")
DIR_NAME = b'd\n\x1b[31m\xff"}, {"evil": 1'
SCRIPT_NAME = b'hostile\n\x1b[31m\xfe.py'
LINK_NAME = b'sh\x1b[31m\n\xff"}{'
CHILD_ARGS = [b"-c", b"exit 3", b"arg\n1", b"\x1b[31mred", b"\xff\xfe-bytes", b'"}, {"evil": 1',
              b"\x01\x7f"]

EVENTS = {"start", "stop", "long_wait", "wait_end", "sigchld_ignored", "child_status_lost", "hang",
          "hang_end"}
# every key the JSON output may contain, at any depth (a forged key would be a new one)
KEYS = {"event", "time", "pid", "tid", "comm", "ns_pid", "cgroup", "scope", "pids", "command",
        "all_processes", "threshold_s", "scanner", "scan_period_s", "ringbuf_bytes", "waited_s", "before_start",
        "gil", "futex", "addr", "op", "python", "threads", "threads_error", "thread_list_error",
        "name", "daemon", "state", "truncated", "error", "stack", "function", "file", "line",
        "first_line", "ended_by", "action", "inherited", "stack_status", "cause", "summary",
        "syscall", "child", "cmdline", "exit_status", "signal", "core_dumped", "ignored_since",
        "reaper", "seconds_before", "diagnosis", "code", "waiter_tid", "culprit_tids",
        "lost_events", "lost", "ringbuf_full", "waits_map_full", "map_full", "counts",
        "duration_s", "command_exit_status", "exec_check_queue_full", "unread_at_stop",
        "threads_same_as_tid",
        # rate limits (stop.suppressed, the suppressed event)
        "suppressed", "reaper_stack", "exec", "since", "rate_limit", "per_second", "burst",
        "inherited_from", "exit_signal",
        # issue 14: what a thread waits for, what it holds, the wait-for graph, hang_end
        "waiting_for", "holds", "kind", "object", "holder", "since", "timeout_s", "holder_exited",
        "cycle", "waits_for", "where", "reported_s_ago",
        # issue 16: asyncio loops and tasks (present when the process imported asyncio)
        "asyncio", "supported", "reason", "loops", "id", "thread", "running_s", "callback",
        "innermost", "self_wait_future", "tasks", "coroutine_stack", "coroutine_stack_truncated",
        "awaits", "deadline_in_s", "future", "awaited_by", "tasks_truncated",
        # issue 16: the resource behind a blocking call (an I/O wait), a future's worker
        "blocked_on", "waits_on", "waits_on_total", "fd", "type", "local", "remote", "peer",
        "path", "lock_holder", "events", "syscall_timeout_s", "no_timeout_set", "in_syscall_s",
        "in_syscall_estimated", "holder_runs_future",
        # issue 16: a pipe's other end, an asyncio task's subprocess
        "pipe_end", "peers", "peers_total", "peers_searched", "peers_cut", "self", "subprocess",
        "returncode", "pipes", "pipe_holders", "pipe_holders_total", "pipe_holders_cut", "stream",
        # issue 16: idle waits (a server waiting for clients), an asyncio loop's self-pipe
        "idle", "idle_reason", "self_pipe_fd",
        # issue 15: waits for children, pipes, forks, dead workers; -p's descendants
        "children", "children_cut", "pidfd", "pipe", "inode", "queued_bytes", "capacity_bytes",
        "holders_complete", "descendants", "fork", "forker_tid", "parent_pid", "parent_comm",
        "parent_threads", "parent_threads_now", "proof", "thread_name", "stack_truncated",
        "oom_killed", "seconds_ago", "waiting_call",
        # the CI guard's hang_timeout event
        "hang_timeout_s", "hang_age_s", "sigterm_sent", "sigkill_sent", "ended_after_s"} | EVENTS
TEXT_LINE = re.compile(r"^(|Process \d+, Python .*|(==> )?Thread .*\):|Traceback \(most recent "
                       r"call last\):|  File \".*\", line (\d+|\?), in .*|  \.\.\. \(older frames "
                       r"cut: .*\)|  \(no Python frames\)|\(thread list cut: .*\))$")


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)


def keys_of(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            keys_of(x, out)
    elif isinstance(v, list):
        for x in v:
            keys_of(x, out)
    return out


def strings_of(v, out):
    if isinstance(v, dict):
        for x in v.values():
            strings_of(x, out)
    elif isinstance(v, list):
        for x in v:
            strings_of(x, out)
    elif isinstance(v, str):
        out.append(v)
    return out


def check_text(raw, what):
    """Text output: no raw control byte but '\\n', and every line has a known shape (a
    newline inside a name would start a line of another shape)."""
    bad = sorted(set(b for b in raw if (b < 0x20 and b != 0x0a) or b == 0x7f))
    assert not bad, "%s: raw control bytes %r in text output:\n%r" % (what, bad, raw[:3000])
    assert b"\xc2\x9b" not in raw and b"\xc2\x9d" not in raw, "%s: raw C1 control (CSI/OSC)" % what


def run_tool(tool, *args, **kw):
    t0 = time.monotonic()
    p = subprocess.run([tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=kw.get("timeout", 30))
    p.elapsed = time.monotonic() - t0
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr.decode("utf-8", "replace")
    return p


def dump_json(tool, pid):
    p = run_tool(tool, "dump", str(pid), "--json")
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    lines = p.stdout.split(b"\n")
    assert len(lines) == 2 and lines[1] == b"", "dump --json: not exactly one line: %r" % p.stdout[:2000]
    d = json.loads(lines[0].decode("utf-8"))  # strict: invalid UTF-8 would raise
    assert keys_of(d, set()) <= KEYS, "unexpected keys %s" % (keys_of(d, set()) - KEYS)
    return d


def dump_text(tool, pid):
    p = run_tool(tool, "dump", str(pid))
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    check_text(p.stdout, "dump %d" % pid)
    text = p.stdout.decode("utf-8", "replace")
    for line in text.split("\n"):
        assert TEXT_LINE.match(line), "dump %d: a line of unknown shape: %r" % (pid, line)
    return text


# --------------------------------------------------------------------------- targets

@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("hostile")).encode()
    d = os.path.join(base, DIR_NAME)
    os.makedirs(d)
    script = os.path.join(d, SCRIPT_NAME)
    shutil.copy(os.path.join(PROGRAMS, "hostile_names.py").encode(), script)
    link = os.path.join(d, LINK_NAME)
    os.symlink(b"/bin/sh", link)
    return {"script": script, "link": link}


@pytest.fixture(scope="module")
def targets(hostile_dir):
    """hostile_names.py and corrupt_all.py, once per interpreter, alive for the module."""
    reg = Registry()
    out = {}
    try:
        with alarm_guard(90, "starting the targets"):
            procs = {}
            for py in INTERPRETERS:
                procs[py] = (
                    reg.hanging([py.encode(), hostile_dir["script"], hostile_dir["link"]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0),
                    reg.hanging([py, os.path.join(PROGRAMS, "corrupt_all.py")],
                              stdout=subprocess.PIPE, bufsize=0))
            for py, (h, c) in procs.items():
                w = read_line(h, 30, "hostile_names.py " + py).split()
                info = {"hostile": h, "hpid": int(w[1]), "htid": int(w[2]), "corrupt": c}
                w = read_line(c, 30, "corrupt_all.py " + py).split()
                assert w[0] == "ready", "corrupt_all.py %s: %r (exit %s)" % (py, w, c.poll())
                info["cpid"], info["ctids"] = int(w[1]), {}
                for _ in range(6):
                    w = read_line(c, 10, "corrupt_all.py " + py).split()
                    info["ctids"][w[1]] = int(w[2])
                out[py] = info
        yield out
    finally:
        reg.cleanup()


def same_or_cut(got, want):
    """Stacks captured in the kernel keep a prefix of long strings, then "..."."""
    return got == want or (got.endswith("...") and want.startswith(got[:-3].rstrip(u"\ufffd")))


def expect_path(b):
    return b.decode("utf-8", "replace")


# --------------------------------------------------------------------------- dump: names

def test_dump_json_hostile_names(targets, hostile_dir, tool, python):
    t = targets[python]
    d = dump_json(tool, t["hpid"])
    by_tid = dict((x["tid"], x) for x in d["threads"])
    th = by_tid[t["htid"]]
    assert th["name"] == HOSTILE + "-thread"
    f = th["stack"][0]
    assert (f["function"], f["file"]) == (HOSTILE + "-func", HOSTILE + "-file")
    assert "error" not in f
    script = expect_path(hostile_dir["script"])
    assert th["stack"][1]["file"] == script and th["stack"][1]["function"] == "hostile_thread_main"
    main = by_tid[t["hpid"]]
    assert main["stack"][-1]["file"] == script and main["stack"][-1]["function"] == "<module>"
    assert not any("evil" in k for k in keys_of(d, set()))


def test_dump_text_hostile_names(targets, hostile_dir, tool, python):
    t = targets[python]
    text = dump_text(tool, t["hpid"])
    assert ('Thread "%s' % HOSTILE_TEXT_HEAD) in text, text
    assert (HOSTILE_TEXT_TAIL + '-thread" (tid %d' % t["htid"]) in text, text
    assert (HOSTILE_TEXT_TAIL + '-file", line ') in text
    assert text.count(HOSTILE_TEXT_HEAD) == 3  # thread name, function name, file name
    assert 'd\\x0a\\x1b[31m' in text and 'hostile\\x0a\\x1b[31m' in text  # the script path


# --------------------------------------------------------------------------- dump: corrupt

def check_corrupt_threads(d, t, where):
    """The parts corrupt_all.py damaged, each reported in its place; the rest intact."""
    by_tid = dict((x["tid"], x) for x in d["threads"])
    assert d.get("thread_list_error") == "thread list loops", where
    assert len(d["threads"]) == 7, where  # each thread once, none lost to the loop
    names = lambda th: [f["function"].split(".")[-1] for f in th["stack"]]

    cyc = by_tid[t["ctids"]["cycle"]]
    assert cyc.get("truncated") is True and cyc.get("error") == "frame chain loops", (where, cyc)
    assert names(cyc) == ["blocked", "cycle_inner", "cycle"], (where, cyc)

    bad = by_tid[t["ctids"]["bad_code"]]
    assert names(bad)[:3] == ["blocked", "bad_code_inner", "?"], (where, bad)
    assert bad["stack"][2]["error"] == "code object unreadable" and bad["stack"][2]["line"] is None
    assert "run" in names(bad) and "truncated" not in bad  # frames past it still read

    fk = by_tid[t["ctids"]["fake_name"]]
    assert fk["stack"][1]["function"] == "?", (where, fk)
    assert fk["stack"][1]["error"] == "function name unreadable", (where, fk)
    assert fk["stack"][1]["file"].endswith("<string>") and fk["stack"][1]["line"] == 2

    ht = by_tid[t["ctids"]["huge_table"]]
    assert names(ht)[:2] == ["blocked", "huge_table"], (where, ht)
    assert ht["stack"][1]["error"] == "line table unreadable" and ht["stack"][1]["line"] is None

    et = by_tid[t["ctids"]["endless_table"]]
    assert names(et)[:2] == ["blocked", "endless_table"], (where, et)
    line = et["stack"][1]["line"]
    assert line is None or (isinstance(line, int) and 0 <= line < 2 ** 31), (where, et)

    for th in d["threads"]:
        for f in th["stack"]:
            assert isinstance(f["function"], str) and isinstance(f["file"], str)
            assert f["line"] is None or 0 <= f["line"] < 2 ** 31
    ok = by_tid[t["ctids"]["healthy"]]
    assert names(ok)[:3] == ["blocked", "healthy_inner", "healthy"], (where, ok)
    assert all("error" not in f for f in ok["stack"]) and "truncated" not in ok
    assert all(isinstance(f["line"], int) and f["line"] > 0 for f in ok["stack"]), (where, ok)
    main = by_tid[t["cpid"]]
    assert names(main) == ["<module>"] and main["state"] == "lock_wait", (where, main)


def test_dump_json_corrupt(targets, tool, python):
    t = targets[python]
    d = dump_json(tool, t["cpid"])
    check_corrupt_threads(d, t, "dump --json")
    assert targets[python]["corrupt"].poll() is None, "the corrupted target died"


def test_dump_text_corrupt(targets, tool, python):
    t = targets[python]
    p = run_tool(tool, "dump", str(t["cpid"]))
    assert p.returncode == 0 and p.elapsed < 10, (p.returncode, p.elapsed, p.stderr)
    text = p.stdout.decode("utf-8")
    check_text(p.stdout, "dump")
    assert text.startswith("Process %d, Python" % t["cpid"])
    assert "(thread list cut: thread list loops;" in text
    assert "  ... (older frames cut: frame chain loops)\n" in text
    assert ', line ?, in ? [code object unreadable]\n' in text
    assert ', in ? [function name unreadable]\n' in text
    assert ', line ?, in huge_table [line table unreadable]\n' in text
    assert text.count('Thread "') == 7


# --------------------------------------------------------------------------- the tracer

@pytest.fixture(scope="module")
def session(targets, binary, tmp_path_factory):
    """One JSON tracer (normal build) and one text tracer (ASan build) at the same time, on
    every target; then "go" to the hostile targets (SIGCHLD ignored, a hostile child whose
    status is lost), and wait for the events each target must produce."""
    assert os.path.exists(ASAN_BINARY), "make asan first: %s missing" % ASAN_BINARY
    reg = Registry()
    d = tmp_path_factory.mktemp("trace")
    text_out, text_err = str(d / "text.out"), str(d / "text.err")
    pids = []
    for t in targets.values():
        pids += ["-p", str(t["hpid"]), "-p", str(t["cpid"])]
    try:
        with alarm_guard(110, "hostile tracer session"):
            tr = Tracer(reg, binary, ["--json", "-t", "0.5"] + pids)
            with open(text_err, "wb") as err:
                txt = reg.popen([ASAN_BINARY, "-t", "0.5", "-o", text_out] + pids,
                                stdout=subprocess.DEVNULL, stderr=err)
            tr.wait_start()
            deadline = time.time() + 60
            while b"pyhang-trace: tracing" not in open(text_err, "rb").read():
                assert txt.poll() is None and time.time() < deadline, open(text_err, "rb").read()
                time.sleep(0.1)
            for t in targets.values():
                t["hostile"].stdin.write(b"go\n")
            for py, t in targets.items():
                t["child"] = int(read_line(t["hostile"], 20, "hostile " + py).split()[1])
            for py, t in targets.items():
                pid = t["hpid"]
                tr.wait_for(lambda e, pid=pid: e.get("event") == "hang" and e.get("pid") == pid,
                            20, "hang of %d (%s)" % (pid, py))
                # the corrupted target: its thread list loops, so no hang can be proven
                # (issue 14); every corrupted thread still gets its long_wait
                deadline = time.time() + 20
                while len(tr.select("long_wait", pid=t["cpid"])) < 7 and time.time() < deadline:
                    time.sleep(0.1)
                tr.wait_for(lambda e, t=t: e.get("event") == "child_status_lost"
                            and e.get("pid") == t["hpid"], 10, "child_status_lost " + py)
            time.sleep(1.0)  # the text tracer reads the same events
            rc = tr.stop()
            txt.send_signal(2)
            trc = txt.wait(30)
        with open(text_out, "rb") as f:
            text = f.read()
        with open(text_err, "rb") as f:
            terr = f.read()
        yield {"tr": tr, "rc": rc, "text": text, "text_rc": trc, "text_err": terr}
    finally:
        reg.cleanup()


def test_trace_json_stream(session):
    tr = session["tr"]
    check_stream(tr)
    assert session["rc"] == 0, tr.describe()
    evs = tr.select()
    assert set(e["event"] for e in evs) <= EVENTS
    extra = set()
    for e in evs:
        extra |= keys_of(dict((k, v) for k, v in e.items() if not k.startswith("_")), set()) - KEYS
    assert not extra, "unexpected (forged?) keys: %s" % extra
    for line in tr.lines:  # strict UTF-8, one object per line
        assert isinstance(json.loads(line), dict)


def test_trace_text_output(session):
    assert session["text_rc"] == 0, session["text_err"]
    assert b"Sanitizer" not in session["text_err"] and b"runtime error" not in session["text_err"], \
        session["text_err"].decode("utf-8", "replace")
    text = session["text"]
    check_text(text, "tracer text output")
    assert text.count(b'ev\\x0ail\\x1b[31m\\x0d\\"}') >= len(INTERPRETERS)
    assert b"frame chain loops" in text and b"[code object unreadable]" in text


def test_trace_hostile_names(session, targets, hostile_dir, python):
    tr, t = session["tr"], targets[python]
    lw = [e for e in tr.select("long_wait", pid=t["hpid"]) if e["tid"] == t["htid"]]
    assert lw, "no long_wait of the hostile thread%s" % tr.describe()
    assert lw[0]["comm"] == COMM
    th = [x for x in lw[0]["threads"] if x["tid"] == t["htid"]][0]
    assert th["name"] == HOSTILE + "-thread" and th["stack"][0]["function"] == HOSTILE + "-func"

    lost = tr.select("child_status_lost", pid=t["hpid"])
    assert len(lost) == 1, lost
    c = lost[0]["child"]
    want = b" ".join([hostile_dir["link"]] + CHILD_ARGS)[:256].decode("utf-8", "replace")
    assert c["cmdline"] == want
    assert c["comm"] == LINK_NAME.decode("utf-8", "replace") and c["exit_status"] == 3
    assert c["pid"] == t["child"]
    script = expect_path(hostile_dir["script"])
    assert lost[0]["cause"] == "sigchld_ignored"
    if lost[0].get("stack"):
        assert same_or_cut(lost[0]["stack"][-1]["file"], script)
    # (the start-up scan may also find it ignored, before_start, when "go" came first)
    ign = [e for e in tr.select("sigchld_ignored", pid=t["hpid"]) if not e["before_start"]]
    assert len(ign) == 1 and ign[0]["action"] == "SIG_IGN"
    if ign[0].get("stack"):
        assert same_or_cut(ign[0]["stack"][-1]["file"], script)

    hang = tr.select("hang", pid=t["hpid"])
    assert len(hang) == 1 and isinstance(hang[0]["diagnosis"]["summary"], str)
    th = [x for x in hang[0]["threads"] if x["tid"] == t["htid"]][0]
    assert th["name"] == HOSTILE + "-thread" and th["stack"][0]["file"] == HOSTILE + "-file"


def test_trace_corrupt(session, targets, python):
    tr, t = session["tr"], targets[python]
    lw = [e for e in tr.select("long_wait", pid=t["cpid"]) if "threads" in e]
    assert len(lw) >= 7, "long_wait of every corrupted thread, with threads%s" % tr.describe()
    full = [e for e in lw if "threads_same_as_tid" not in e]
    assert full, "no long_wait with every thread"
    for e in full:
        check_corrupt_threads(e, t, "long_wait of tid %d" % e["tid"])
    for e in lw:  # the waits of the same read: their own thread, the rest in an earlier one
        if "threads_same_as_tid" in e:
            assert e["thread_list_error"].startswith("thread list loops; "), e["thread_list_error"]
            assert e["tid"] in [x["tid"] for x in e["threads"]], e["tid"]
            assert e["threads_same_as_tid"] in [x["tid"] for x in full], e["threads_same_as_tid"]
    # its thread list loops: whether every thread is blocked is unknown, never a hang
    assert tr.select("hang", pid=t["cpid"]) == [], [json.dumps(e)[:600] for e in tr.select("hang", pid=t["cpid"])]
    assert t["corrupt"].poll() is None, "the corrupted target died"


# --------------------------------------------------------------------------- _PyRuntime lies

@pytest.fixture(scope="module")
def runtime_targets():
    reg = Registry()
    out = {}
    try:
        with alarm_guard(60, "starting corrupt_runtime.py"):
            for py in INTERPRETERS:
                p = reg.hanging([py, os.path.join(PROGRAMS, "corrupt_runtime.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
                out[py] = p
            for py, p in out.items():
                w = read_line(p, 30, "corrupt_runtime.py " + py).split()
                assert w[0] == "ready", (py, w, p.poll())
                p.pid_, p.phases = int(w[1]), w[2:]
        yield out
    finally:
        reg.cleanup()


def test_runtime_lies(runtime_targets, python):
    """While the process's _PyRuntime (3.13: its _Py_DebugOffsets; older: the head of the
    interpreter list) lies, dump fails with a one-line error, or reports what it could
    read with the damage marked: never a crash, a hang or invalid JSON; both builds. Once
    restored, the same process dumps normally."""
    p = runtime_targets[python]
    tools = [conftest.BINARY, ASAN_BINARY]
    assert os.path.exists(ASAN_BINARY), "make asan first"
    for phase in p.phases:
        p.stdin.write(phase.encode() + b"\n")
        assert read_line(p, 10, python).split() == ["applied", phase]
        for tool in tools:
            j = run_tool(tool, "dump", str(p.pid_), "--json", timeout=20)
            t = run_tool(tool, "dump", str(p.pid_), timeout=20)
            where = "%s %s %s: rc %s, stderr %r" % (python, phase, tool, j.returncode, j.stderr)
            assert j.elapsed < 10 and t.elapsed < 10, where
            assert j.returncode == t.returncode and j.returncode in (0, 1), where
            check_text(t.stdout + t.stderr, where)
            if j.returncode == 1:
                assert j.stdout == b"" and j.stderr.startswith(b"pyhang-trace dump: "), where
                assert j.stderr.count(b"\n") == 1, where
            else:  # read: the damage marked, or found around it (2.7/3.6 scan .data for
                # another pointer to the interpreter): then the right stack
                d = json.loads(j.stdout.decode("utf-8"))
                right = [(th["stack"][-1]["function"], os.path.basename(th["stack"][-1]["file"]))
                         for th in d["threads"] if th["stack"]] == [("<module>", "corrupt_runtime.py")]
                assert right or d.get("thread_list_error") or any(th.get("error") for th in d["threads"]), \
                    (where, d)
        p.stdin.write(b"restore\n")
        assert read_line(p, 10, python).strip() == "restored"
        d = dump_json(conftest.BINARY, p.pid_)
        assert [th["stack"][-1]["function"] for th in d["threads"]] == ["<module>"], (phase, d)
        assert "thread_list_error" not in d
    assert p.poll() is None, "the target died"
