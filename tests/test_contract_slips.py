"""Small promises of the output contract, each checked end to end on real processes:
  * JSON escapes C1 controls (U+0080..U+009F) as \\u0080..\\u009f;
  * `-p PID` of a process that has exited (gone, or a zombie) says "no such process";
  * the text stop line counts `hang` findings;
  * system calls are named, never numbered: "sleep in wait4", and `syscall` in JSON states.
"""
import json
import os
import re
import signal
import subprocess
import time


from harness import Timeout

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)


def wait_file(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) or os.path.getsize(path) == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise Timeout("program did not get ready (exit %r)" % proc.poll())
        time.sleep(0.02)
    with open(path) as f:
        return f.read()


C1_PROG = (
    "# -*- coding: utf-8 -*-\n"
    "import sys, threading, time\n"
    "name = b'c1\\xc2\\x85x\\xc2\\x9fy'\n"
    "if sys.version_info[0] >= 3:\n"
    "    name = name.decode('utf-8')\n"
    "ev = threading.Event()\n"
    "t = threading.Thread(target=ev.wait, name=name)\n"
    "t.daemon = True\n"
    "t.start()\n"
    "open(sys.argv[1], 'w').write('ready')\n"
    "time.sleep(60)\n")


def test_json_escapes_c1_controls(reg, binary, python, tmp_path):
    """A thread named with U+0085 (NEL) and U+009F: `dump --json` writes them as \\u0085 and
    \\u009f, never as raw bytes (C2 85 is a line break to some consumers)."""
    prog = str(tmp_path / "c1.py")
    with open(prog, "w") as f:
        f.write(C1_PROG)
    ready = str(tmp_path / "ready")
    p = reg.hanging([python, prog, ready])
    wait_file(ready, p)
    out = subprocess.run([binary, "dump", str(p.pid), "--json"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    raw = out.stdout
    assert b"\xc2\x85" not in raw and b"\xc2\x9f" not in raw, "raw C1 bytes in JSON: %r" % raw[:300]
    assert b"c1\\u0085x\\u009fy" in raw, "C1 controls not escaped as \\u0085/\\u009f: %r" % raw[:2000]
    doc = json.loads(raw.decode("utf-8"))
    names = [t.get("name") for t in doc["threads"]]
    assert u"c1\x85x\x9fy" in names, names


def test_p_of_exited_process_says_no_such_process(reg, binary, tmp_path):
    """-p of a zombie (exited, not yet reaped by its parent) and of a reaped pid: exit 2 with
    'no such process', never 'does not run CPython'."""
    z = subprocess.Popen(["sh", "-c", "exit 0"])  # not waited for: a zombie
    try:
        deadline = time.monotonic() + 10
        while True:
            with open("/proc/%d/stat" % z.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            assert time.monotonic() < deadline, "child did not become a zombie"
            time.sleep(0.01)
        out = subprocess.run([binary, "-p", str(z.pid), "--duration", "1"], capture_output=True,
                             timeout=60)
        err = out.stderr.decode()
        assert out.returncode == 2 and "no such process" in err and "CPython" not in err, (out.returncode, err)
    finally:
        z.wait()
    out = subprocess.run([binary, "-p", str(z.pid), "--duration", "1"], capture_output=True, timeout=60)
    err = out.stderr.decode()
    assert out.returncode == 2 and "no such process" in err, (out.returncode, err)


def test_text_stop_line_counts_hangs(reg, binary, python, tmp_path):
    """A lock-order deadlock in text mode: the stop line counts the hang findings printed."""
    report = str(tmp_path / "report")
    # files, not pipes: the deadlocked program (left running) holds them open
    with open(str(tmp_path / "out"), "w+b") as fo, open(str(tmp_path / "err"), "w+b") as fe:
        tr = reg.hanging([binary, "-t", "0.5", "--", python,
                          os.path.join(PROGRAMS, "diag_deadlock.py"), report], stdout=fo, stderr=fe)
        # stop it (SIGINT, as a person would) once the deadlock was printed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and tr.poll() is None:
            with open(str(tmp_path / "out"), "rb") as f:
                if re.search(rb"\bHANG\b", f.read()):
                    break
            time.sleep(0.1)
        tr.send_signal(signal.SIGINT)
        tr.wait(60)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode("utf-8", "replace"), fe.read().decode("utf-8", "replace")
    pid = int(open(report).read().split()[1])
    os.kill(pid, 9)
    hangs = len(re.findall(r"\bHANG\b", out))
    assert hangs >= 1, "scenario: the deadlock should be a hang finding:\n%s" % out[-3000:]
    stop = [l for l in err.splitlines() if "detached after" in l]
    assert len(stop) == 1, err
    m = re.search(r"\b(\d+) hangs\b", stop[0])
    assert m and int(m.group(1)) == hangs, "stop line %r, %d hangs printed" % (stop[0], hangs)


SLEEPERS_PROG = (
    "import os, subprocess, sys, threading, time\n"
    "child = subprocess.Popen(['sleep', '60'])\n"
    "def reaper():\n"
    "    os.waitpid(child.pid, 0)\n"            # wait4
    "def napper():\n"
    "    time.sleep(60)\n"                      # clock_nanosleep / select (2.7)
    "r, w = os.pipe()\n"
    "def reader():\n"
    "    os.read(r, 1)\n"                       # read
    "for fn, name in ((reaper, 'reaper'), (napper, 'napper'), (reader, 'reader')):\n"
    "    t = threading.Thread(target=fn, name=name)\n"
    "    t.daemon = True\n"
    "    t.start()\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
    "time.sleep(60)\n")


def test_syscalls_named_never_numbered(reg, binary, python, tmp_path):
    """Threads asleep in wait4, a sleep and read: `dump` names the system calls ("sleep in
    wait4"), in text and as `syscall` in JSON; no number is shown."""
    prog = str(tmp_path / "sleepers.py")
    with open(prog, "w") as f:
        f.write(SLEEPERS_PROG)
    ready = str(tmp_path / "ready")
    p = reg.hanging([python, prog, ready])
    child = int(wait_file(ready, p))
    try:
        deadline = time.monotonic() + 20
        while True:
            js = subprocess.run([binary, "dump", str(p.pid), "--json"], capture_output=True, timeout=60)
            assert js.returncode == 0, js.stderr
            doc = json.loads(js.stdout.decode("utf-8"))
            states = dict((t["name"], (t["state"], t.get("syscall"))) for t in doc["threads"])
            if all(states.get(n, ("",))[0] == "sleep" for n in ("reaper", "napper", "reader")):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
        assert states["reaper"] == ("sleep", "wait4"), states
        assert states["reader"] == ("sleep", "read"), states
        assert states["napper"][1] in ("clock_nanosleep", "nanosleep", "select", "pselect6"), states
        for t in doc["threads"]:
            if t["state"] in ("sleep", "lock_wait", "gil_wait"):
                assert isinstance(t.get("syscall"), str) and t["syscall"], t
        txt = subprocess.run([binary, "dump", str(p.pid)], capture_output=True, timeout=60)
        text = txt.stdout.decode("utf-8", "replace")
        assert txt.returncode == 0, txt.stderr
        assert "sleep in wait4" in text and "sleep in read" in text, text
        assert not re.search(r"syscall \d+", text), text
    finally:
        try:
            os.kill(child, 9)
        except OSError:
            pass
