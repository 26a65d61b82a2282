"""The CI hang guard (--hang-timeout, --kill-after) and GitHub Actions annotations.

Real pytest runs (Debian's python3-pytest, /usr/bin/python3 -m pytest) under the built
tracer: a test that passes but leaves a non-daemon thread blocked for good makes the
interpreter hang at exit; the guarded run must end soon after --hang-timeout with status
124, its report last on stderr naming the thread, and no process of the command tree left.
A healthy run keeps pytest's own status and output. The guard is off by default, leaves
-p processes alone, escalates to SIGKILL when SIGTERM is ignored, and annotations cannot be
forged by what a traced program names.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import HOST_PYTHON, alarm_guard, mark_hanging, mark_line

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
PYTHON = HOST_PYTHON  # Debian's, with python3-pytest
GUARD_STATUS = 124
RULE = "=" * 78
THRESHOLD = "0.5"
HANG_TIMEOUT = 2.0
KILL_AFTER = 1.0


def read_report(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.strip().partition(" ")
                out[k] = v
    return out


def start_time(pid):
    """Field 22 of /proc/PID/stat, or None when the process is gone (or a zombie: it has
    ended, and an orphan waits for init to reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def pytest_dir(tmp_path, suite):
    d = tmp_path / "repo"
    d.mkdir()
    shutil.copy(os.path.join(PROGRAMS, suite), str(d / "test_leak.py"))
    shutil.copy(os.path.join(PROGRAMS, "guard_pytest_conftest.py"), str(d / "conftest.py"))
    return d


def run(binary, args, cwd, env_extra, timeout=60):
    """Run the tracer; its output goes to files, not pipes, so that a command it leaves
    running (no guard) cannot hold the test up. (CompletedProcess, monotonic end time)."""
    env = dict(os.environ)
    env.pop("GITHUB_ACTIONS", None)
    env.update(env_extra)
    out, err = [tempfile.TemporaryFile(mode="w+") for _ in range(2)]
    with out, err, alarm_guard(timeout + 5, "pyhang-trace " + " ".join(args)):
        p = subprocess.Popen([binary] + args, cwd=str(cwd), env=env, stdout=out, stderr=err)
        mark_hanging(p.pid)   # the guard's tests run commands that hang on purpose
        try:
            rc = p.wait(timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        ended = time.monotonic()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, rc, out.read(), err.read()), ended


PYTEST_ARGS = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leak.py"]


@pytest.fixture(scope="module")
def guarded_pytest(binary, tmp_path_factory):
    """The hanging suite under the guard, run by sh so that pytest is a descendant, not the
    command itself; in a GitHub Actions environment (annotations on by default)."""
    d = pytest_dir(tmp_path_factory.mktemp("guarded"), "guard_pytest_suite.py")
    report = str(d / "report")
    sh = "%s; echo \"pytest exited $?\"" % " ".join(PYTEST_ARGS)
    r, ended = run(binary, ["-q", "-t", THRESHOLD, "--hang-timeout", str(HANG_TIMEOUT),
                            "--kill-after", str(KILL_AFTER), "--", "sh", "-c", sh], d,
                   {"GUARD_REPORT": report, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(d)})
    return r, ended, read_report(report), d


def test_guard_ends_hanging_pytest(guarded_pytest):
    r, ended, rep, d = guarded_pytest
    assert r.returncode == GUARD_STATUS, (r.returncode, r.stderr[-3000:])
    assert "1 passed" in r.stdout, r.stdout  # pytest had finished: the hang is at exit
    assert "pytest exited" not in r.stdout, "sh survived: the tree was not ended"
    pid = int(rep["pid"])
    assert start_time(pid) is None, "pytest (pid %d) still runs" % pid
    # the time from the hang to the tracer's exit: the hang starts after pytest is done
    hang_to_exit = ended - float(rep["done"])
    print("guard: hang to exit %.2f s (--hang-timeout %g, SIGTERM honoured)"
          % (hang_to_exit, HANG_TIMEOUT))
    assert HANG_TIMEOUT <= hang_to_exit < HANG_TIMEOUT + KILL_AFTER + 4, hang_to_exit


def test_guard_report_is_the_final_block(guarded_pytest):
    r, _, rep, d = guarded_pytest
    err = r.stderr.rstrip("\n")
    print(err)
    # -q: nothing but the block on stderr, framed, at the very end
    assert err.endswith(RULE), err[-500:]
    block = err[err.index(RULE):]
    assert "HANG TIMEOUT" in block
    line = mark_line(str(d / "test_leak.py"), "blocks")
    assert "waits for non-daemon thread 'stuck-worker'" in block, block
    assert "[shutdown_join]" in block
    assert 'File "%s", line %d' % (d / "test_leak.py", line) in block, block
    assert re.search(r"SIGTERM sent to 2 processes; all ended [0-9.]+s after SIGTERM", block), block
    assert "exit status 124 (hang timeout)" in block
    assert "sh (pid " in block  # the command itself, among the other processes


def test_guard_annotation_points_at_user_frame(guarded_pytest):
    r, _, _, d = guarded_pytest
    line = mark_line(str(d / "test_leak.py"), "blocks")
    ann = [l for l in r.stdout.splitlines() if l.startswith("::")]
    assert len(ann) == 1, ann  # one finding: the shutdown hang
    # relative to GITHUB_WORKSPACE, at the line the thread is blocked on
    assert ann[0].startswith("::error file=test_leak.py,line=%d,title=" % line), ann[0]
    assert "stuck-worker" in ann[0]


def test_guard_healthy_pytest_unaffected(binary, tmp_path):
    """A suite that ends by itself: pytest's status and output pass through, no report."""
    d = pytest_dir(tmp_path, "guard_healthy_suite.py")
    env = {"GUARD_REPORT": str(d / "report")}
    r, _ = run(binary, ["-q", "-t", THRESHOLD, "--hang-timeout", str(HANG_TIMEOUT), "--"]
               + PYTEST_ARGS, d, env)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "1 passed" in r.stdout and "HANG" not in r.stdout + r.stderr, r.stdout + r.stderr
    # a failing test keeps pytest's own status (1), not the guard's
    env["GUARD_OUTCOME"] = "fail"
    r, _ = run(binary, ["-q", "-t", THRESHOLD, "--hang-timeout", str(HANG_TIMEOUT), "--"]
               + PYTEST_ARGS, d, env)
    assert r.returncode == 1 and "1 failed" in r.stdout, (r.returncode, r.stdout, r.stderr)


def test_guard_off_by_default(binary, tmp_path, reg):
    """Without --hang-timeout the same hang is reported and nothing is ended."""
    d = pytest_dir(tmp_path, "guard_pytest_suite.py")
    report = str(d / "report")
    r, _ = run(binary, ["-q", "-t", THRESHOLD, "--duration", "3", "--"] + PYTEST_ARGS, d,
               {"GUARD_REPORT": report})
    pid = int(read_report(report)["pid"])
    try:
        assert "[shutdown_join]" in r.stdout, r.stdout
        assert "HANG TIMEOUT" not in r.stderr
        assert r.returncode == 128 + 15, r.returncode  # detached from a running command
        assert start_time(pid) is not None, "the hanging pytest was ended without the guard"
    finally:
        if start_time(pid) is not None:
            os.kill(pid, 9)


def test_guard_sigkill_after_ignored_sigterm(binary, tmp_path):
    """A program that ignores SIGTERM is killed after --kill-after; a thread name made to
    forge workflow commands stays inside the one annotation line, escaped."""
    report = str(tmp_path / "report")
    prog = os.path.join(PROGRAMS, "guard_stubborn.py")
    t0 = time.monotonic()
    r, ended = run(binary, ["-t", THRESHOLD, "--hang-timeout", str(HANG_TIMEOUT),
                            "--kill-after", str(KILL_AFTER), "--annotate", "github", "--",
                            PYTHON, prog, report], tmp_path, {})
    assert r.returncode == GUARD_STATUS, (r.returncode, r.stderr[-2000:])
    # without -q the stop summary comes inside the block: the block still ends the log
    tail = r.stderr.rstrip("\n").splitlines()[-3:]
    assert tail[0].startswith("pyhang-trace: detached after ") and tail[2] == RULE, tail
    assert tail[1] == "pyhang-trace: exit status 124 (hang timeout)", tail
    pid = int(read_report(report)["pid"])
    assert start_time(pid) is None
    assert re.search(r"SIGTERM sent to 1 process, SIGKILL to 1 still there after 1s; all ended",
                     r.stderr), r.stderr[-1500:]
    assert "the command was killed by signal 9 (SIGKILL)" in r.stderr
    assert ended - t0 >= HANG_TIMEOUT + KILL_AFTER
    ann = [l for l in r.stdout.splitlines() if l.startswith("::")]
    assert len(ann) == 1, ann
    assert ann[0].startswith("::error file=%s,line=%d," % (prog, mark_line(prog, "blocks"))), ann[0]
    assert "evil%0A::warning file=x.py,line=1::injected %250A," in ann[0], ann[0]


def test_guard_pid_mode_leaves_process_alone(binary, tmp_path, reg):
    """-p: exit 124 once the hang timed out, without signalling the process; --json keeps
    stdout pure JSON (no automatic annotations) and ends with a hang_timeout record."""
    report = str(tmp_path / "report")
    p = reg.hanging([PYTHON, os.path.join(PROGRAMS, "diag_deadlock.py"), report])
    deadline = time.monotonic() + 30
    while "joining" not in read_report(report) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "joining" in read_report(report), "diag_deadlock.py did not start"
    before = start_time(p.pid)
    r, _ = run(binary, ["-q", "--json", "-p", str(p.pid), "-t", THRESHOLD, "--hang-timeout",
                        str(HANG_TIMEOUT)], tmp_path, {"GITHUB_ACTIONS": "true"})
    assert r.returncode == GUARD_STATUS, (r.returncode, r.stderr[-2000:])
    assert p.poll() is None and start_time(p.pid) == before, "the -p process was touched"
    events = [json.loads(l) for l in r.stdout.splitlines()]  # every line is JSON
    kinds = [e["event"] for e in events]
    assert "hang" in kinds and kinds[-2:] == ["hang_timeout", "stop"], kinds
    ht = events[-2]
    assert ht["pid"] == p.pid and ht["action"] == "exit" and ht["exit_status"] == GUARD_STATUS
    # a lock-order inversion is proven a deadlock (issue 14), as the hang event says
    assert ht["diagnosis"]["code"] == "deadlock"
    assert ht["diagnosis"]["code"] == [e for e in events if e["event"] == "hang"][0]["diagnosis"]["code"]
    assert ht["hang_age_s"] >= HANG_TIMEOUT
    assert {t.get("name") for t in ht["threads"]} >= {"A", "B"}
    assert "process %d was not touched" % p.pid in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--hang-timeout", "0"], "invalid --hang-timeout '0'"),
    (["--hang-timeout", "soon"], "invalid --hang-timeout 'soon'"),
    (["--kill-after", "3", "--", "true"], "--kill-after only matters with --hang-timeout"),
    (["--hang-timeout", "3", "--kill-after", "-1", "--", "true"], "invalid --kill-after '-1'"),
    (["--annotate", "gitlab"], "invalid --annotate 'gitlab'"),
    (["--annotate", "github", "--json"], "--annotate github writes to stdout"),
])
def test_guard_usage_errors(binary, args, message):
    r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr)


def test_annotation_of_lost_child_status(binary, tmp_path):
    """child_status_lost: one ::error at the line that made SIGCHLD ignored (the cause),
    relative to GITHUB_WORKSPACE; no guard involved, the command's status passes through."""
    prog = os.path.join(PROGRAMS, "guard_sigchld.py")
    r, _ = run(binary, ["-q", "--", PYTHON, prog], tmp_path,
               {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": PROGRAMS + "/"})
    assert r.returncode == 0 and "returncode 0" in r.stdout, (r.returncode, r.stdout, r.stderr)
    ann = [l for l in r.stdout.splitlines() if l.startswith("::")]
    assert len(ann) == 1, r.stdout
    assert ann[0].startswith("::error file=guard_sigchld.py,line=%d,title=pyhang-trace found a "
                             "lost child exit status::" % mark_line(prog, "ignore")), ann[0]
    assert "exited 3" in ann[0], ann[0]
