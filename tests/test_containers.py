"""Processes in containers: their own pid namespace and a mount namespace in which the
interpreter and the program exist only there (tmpfs + bind mount made inside it). The
tracer, in the host namespaces, must still name the cause (files through /proc/PID/root)
and report the pid the process has in its namespace (ns_pid) and its cgroup."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import INTERPRETERS
from harness import mark_hanging, mark_line

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "programs", "ctr_hang.py")


def pyenv_interpreters():
    """Interpreters with a self-contained prefix (pyenv), which can be bind-mounted."""
    out = []
    for label, path, _ in INTERPRETERS:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(path)))
        if "/.pyenv/versions/" in prefix:
            out.append(pytest.param(path, prefix, id=label))
    return out or [pytest.param(None, None, id="no-pyenv-interpreter")]


def container_script(root, prefix, python):
    """Shell run as pid 1 of new pid+mount namespaces: everything under root exists only
    inside them."""
    rel = os.path.relpath(os.path.realpath(python), prefix)
    return ("mount -t tmpfs tmpfs {root} && mkdir {root}/py && mount --bind {prefix} {root}/py && "
            "cp {prog} {root}/app.py && exec {root}/py/{rel} {root}/app.py").format(
                root=root, prefix=prefix, prog=PROGRAM, rel=rel)


def read_events(proc, until, timeout):
    """Read JSON lines from the tracer until until(event) is true or timeout passes."""
    events = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                e = json.loads(line)
                events.append(e)
                if until(e):
                    return events
        elif proc.poll() is not None:
            break
        time.sleep(0.05)
    return events


def kill_container(root):
    """SIGKILL every process whose command line names the container's (unique) root."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if root.encode() in f.read():
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.mark.parametrize("python,prefix", pyenv_interpreters())
def test_hang_at_exit_in_a_container(binary, python, prefix):
    assert python is not None, "no pyenv interpreter to put in a container"
    root = tempfile.mkdtemp(prefix="pyhang-ctr-")
    try:
        cmd = [binary, "--json", "-t", "1", "--", "unshare", "--mount", "--pid", "--fork",
               "--kill-child", "--propagation", "private", "sh", "-c",
               container_script(root, prefix, python)]
        tracer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        mark_hanging(tracer.pid)   # its command hangs at exit on purpose
        try:
            events = read_events(tracer, lambda e: e.get("event") == "hang", 40)
        finally:
            # the container's pid 1 is the hung Python: killing it ends the namespace
            kill_container(root)
            tracer.send_signal(signal.SIGINT)
            try:
                tracer.wait(20)
            except subprocess.TimeoutExpired:
                tracer.kill()
                tracer.wait()
        # the host sees nothing of the container's files
        assert os.listdir(root) == [], "the tmpfs leaked into the host namespace"
        hangs = [e for e in events if e.get("event") == "hang"]
        assert hangs, "no hang reported; events: %r" % [e.get("event") for e in events]
        h = hangs[0]
        d = h["diagnosis"]
        assert d["code"] == "shutdown_join", d
        line = mark_line(PROGRAM, "get")
        assert "Whisperer-1" in d["summary"] and "app.py:%d" % line in d["summary"], d["summary"]
        assert h["ns_pid"] == 1 and h["pid"] != 1, (h.get("ns_pid"), h["pid"])
        assert "cgroup" in h, "no cgroup on the event"
        whisperer = [t for t in h["threads"] if t["name"] == "Whisperer-1"]
        assert whisperer and whisperer[0]["daemon"] is False, h["threads"]
        frames = [(f["file"], f["line"]) for f in whisperer[0]["stack"]]
        assert (root + "/app.py", line) in frames, frames
        # the interpreter's own files were read through /proc/PID/root: its stdlib frames
        # have paths that exist only inside the container
        assert any(f.startswith(root + "/py/") for f, _ in frames), frames
    finally:
        shutil.rmtree(root, ignore_errors=True)
