"""End-to-end tests of the tracer on child processes: SIGCHLD ignored (`sigchld_ignored`,
`child_status_lost` with cause sigchld_ignored), a child reaped by another thread
(`reaped_elsewhere`), ECHILD loops that are not findings, and -p given a thread id.

The per-interpreter scenarios run under ONE tracer each (module-scoped "sessions").

Real kernel, real processes, no mocks; needs root.  Every test starts the tracer as a
subprocess with --json (harness.Tracer), waits for its `start` line before poking the
workload, and always stops it and kills/reaps everything it started (Registry), with a
timeout on every wait so that a bug cannot hang the suite.  Workloads: tests/programs/trace_*.
(Split from the former tests/test_trace.py by subject: test_trace_locks.py,
test_trace_children.py, test_trace_cli.py, test_trace_command.py.)
"""
import json
import os
import re
import shlex
import subprocess
import time

import pytest

from harness import (INTERPRETER_PATHS as INTERPRETERS, LATE_SLACK, PROGRAMS, START_TIMEOUT,
                     STOP_TIMEOUT, SYSTEM_PYTHON, Registry, Tracer, alarm_guard, check_stream,
                     expect_words, public, read_line, wait_in_futex)

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
SIGCHLD_PROG = os.path.join(PROGRAMS, "trace_sigchld.py")
REAPER_PROG = os.path.join(PROGRAMS, "trace_reaper.py")
FUTEX_C = os.path.join(PROGRAMS, "trace_futex_block.c")
FLICKER_PROG = os.path.join(PROGRAMS, "trace_flicker.py")
FORK_PROG = os.path.join(PROGRAMS, "trace_fork_deadlock.py")
EMBED_C = os.path.join(PROGRAMS, "trace_embed.c")


# --------------------------------------------------------------------------- sessions


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
    p = reg.hanging([SYSTEM_PYTHON, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
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
