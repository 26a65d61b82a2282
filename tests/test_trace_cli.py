"""End-to-end tests of the command line: usage errors, --help, root and capabilities,
missing BTF or tracefs, --duration, SIGTERM/SIGINT, -o FILE.

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
import signal
import subprocess
import time

import pytest

from harness import PROGRAMS, START_TIMEOUT, Tracer, check_stream, TIME_RE, parse_time

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
SIGCHLD_PROG = os.path.join(PROGRAMS, "trace_sigchld.py")
REAPER_PROG = os.path.join(PROGRAMS, "trace_reaper.py")
FUTEX_C = os.path.join(PROGRAMS, "trace_futex_block.c")
FLICKER_PROG = os.path.join(PROGRAMS, "trace_flicker.py")
FORK_PROG = os.path.join(PROGRAMS, "trace_fork_deadlock.py")
EMBED_C = os.path.join(PROGRAMS, "trace_embed.c")


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
