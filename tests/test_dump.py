"""`pyhang-trace dump PID`: stacks read from /proc/PID/mem compared with what each thread
recorded itself (traceback.extract_stack() on the line where it then blocks), on every
interpreter conftest.py finds (pyenv 2.7, 3.6-3.13, Debian /usr/bin/python3.11, PATH,
PYHANG_PYTHONS).

Function names: 3.11+ report co_qualname ("Worker.method", "outer.<locals>.inner"); the
comparison uses its last dotted component, which is what extract_stack() gives (co_name).
File and line are compared exactly.
"""
import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import INTERPRETERS
from harness import mark_hanging

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
NON_ASCII_DIR = u"d\u00efr-\u00f1-\u76ee\u5f55"


def _copy_programs(tmp_path):
    """The test programs, copied under a non-ASCII directory (non-ASCII paths)."""
    d = os.path.join(str(tmp_path), NON_ASCII_DIR)
    os.makedirs(d)
    for name in ("stacks.py", "stacks_py3.py", "many_threads.py", "many_maps.py"):
        shutil.copy(os.path.join(PROGRAMS, name), d)
    return d


class Target(object):
    """A running stacks.py; waits until every thread has reported and blocked."""

    def __init__(self, python, tmp_path):
        self.dir = _copy_programs(tmp_path)
        self.out = os.path.join(str(tmp_path), "reports")
        os.makedirs(self.out)
        self.proc = subprocess.Popen([python, os.path.join(self.dir, "stacks.py"), self.out],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        mark_hanging(self.proc.pid)  # blocked on purpose: its hang is expected
        self.reports = self._wait_reports()

    def _wait_reports(self):
        deadline = time.time() + 60
        expect = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("target exited: %s" % self.proc.stderr.read().decode())
            path = os.path.join(self.out, "expect")
            if expect is None and os.path.exists(path):
                expect = int(open(path).read())
            names = [n for n in os.listdir(self.out) if n.startswith("report-") and
                     n.endswith(".json")]
            if expect is not None and len(names) >= expect:
                time.sleep(0.3)  # the line after report() is the blocking call itself
                return [json.load(open(os.path.join(self.out, n))) for n in names]
            time.sleep(0.05)
        raise AssertionError("target threads did not all report in time")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def target(python, tmp_path):
    t = Target(python, tmp_path)
    yield t
    t.kill()


def dump(binary, pid, *args, **kw):
    return subprocess.run([binary, "dump", str(pid)] + list(args), capture_output=True,
                          timeout=kw.get("timeout", 60))


def dump_json(binary, pid):
    out = dump(binary, pid, "--json")
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout.decode("utf-8"))


def short_name(function):
    return function.split(".")[-1]


def compare_stack(report, thread):
    want = [(f[0], f[1], f[2]) for f in report["stack"]]
    got = [(f["file"], f["line"], short_name(f["function"])) for f in reversed(thread["stack"])]
    assert got == want, "thread %r:\n dump:   %s\n record: %s" % (report["name"], got, want)


def test_dump_matches_extract_stack(binary, target):
    d = dump_json(binary, target.proc.pid)
    assert d["pid"] == target.proc.pid
    by_name = {}
    for t in d["threads"]:
        assert set(("tid", "name", "daemon", "gil", "state", "stack")) <= set(t)
        by_name.setdefault(t["name"], []).append(t)
    assert len(d["threads"]) == len(target.reports), [t["name"] for t in d["threads"]]
    for r in target.reports:
        assert len(by_name.get(r["name"], [])) == 1, "thread %r missing or duplicated" % r["name"]
        t = by_name[r["name"]][0]
        compare_stack(r, t)
        assert t["daemon"] == r["daemon"], r["name"]
        if r["tid"]:
            assert t["tid"] == r["tid"], r["name"]
        assert t["state"] == {"lock": "lock_wait", "sleep": "sleep"}[r["blocks"]], r["name"]
        assert t["gil"] is False, r["name"]  # every thread is blocked with the GIL released
        if r["name"] == "recursion-200":
            assert sum(1 for f in t["stack"] if short_name(f["function"]) == "recurse") == 201


def test_dump_version_string(binary, python, target):
    d = dump_json(binary, target.proc.pid)
    want = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip()
    assert d["python"] == want


def test_dump_text_is_traceback_shaped(binary, target):
    d = dump_json(binary, target.proc.pid)
    out = dump(binary, target.proc.pid)
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode("utf-8")
    blocks = text.split("\n\n")
    for t in d["threads"]:
        header = [b for b in blocks if ('Thread "%s"' % t["name"]) in b and
                  ("tid %d" % t["tid"]) in b]
        assert len(header) == 1, t["name"]
        lines = header[0].splitlines()
        assert lines[1] == "Traceback (most recent call last):"
        want = ['  File "%s", line %d, in %s' % (f["file"], f["line"], f["function"])
                for f in reversed(t["stack"])]
        assert lines[2:] == want


def test_non_ascii_names_and_paths(binary, python, target):
    d = dump_json(binary, target.proc.pid)
    names = [t["name"] for t in d["threads"]]
    assert u"hilo-\u00f1-\u7ebf\u7a0b" in names
    files = set(f["file"] for t in d["threads"] for f in t["stack"])
    assert any(NON_ASCII_DIR in f for f in files), files
    if not python or "2.7" not in os.path.basename(os.path.realpath(python)):
        funcs = set(short_name(f["function"]) for t in d["threads"] for f in t["stack"])
        if any(r["name"] == "unicode-names" for r in target.reports):
            assert u"funci\u00f3n_\u00f1and\u00fa" in funcs and u"m\u00e9todo" in funcs


def _status_fields(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def test_target_is_never_stopped_or_traced(binary, target):
    pid = target.proc.pid
    stop = threading.Event()
    seen = []

    def watch():
        while not stop.is_set():
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    st = open("/proc/%d/task/%s/stat" % (pid, tid)).read()
                except IOError:
                    continue
                seen.append(st.rsplit(")", 1)[1].split()[0])
            s = _status_fields(pid)
            seen.append("tracer=" + s["TracerPid"])

    w = threading.Thread(target=watch)
    w.start()
    try:
        for _ in range(30):
            assert dump(binary, pid, "--json").returncode == 0
    finally:
        stop.set()
        w.join()
    assert seen
    assert not [s for s in seen if s in ("t", "T")]
    assert set(s for s in seen if s.startswith("tracer=")) == {"tracer=0"}


def test_not_a_python_process(binary):
    p = subprocess.Popen(["sleep", "100"])
    try:
        time.sleep(0.1)
        out = dump(binary, p.pid)
        assert out.returncode == 1
        assert b"not a Python process" in out.stderr
        assert out.stdout == b""
    finally:
        p.kill()
        p.wait()


def test_exited_process(binary):
    p = subprocess.Popen(["true"])
    p.wait()
    out = dump(binary, p.pid)
    assert out.returncode == 1
    assert b"does not exist" in out.stderr or b"exited" in out.stderr


def test_usage(binary):
    out = dump(binary, "--help")
    assert out.returncode == 0 and b"usage" in out.stdout
    out = subprocess.run([binary, "dump"], capture_output=True)
    assert out.returncode == 2 and b"PID" in out.stderr
    out = subprocess.run([binary, "dump", "12x"], capture_output=True)
    assert out.returncode == 2


def test_without_symbols_scan_fallback(binary, target):
    """PYHANG_NO_SYMBOLS=1 makes the reader ignore _PyRuntime/interp_head symbols and find
    the interpreter by a validated scan (.PyRuntime section, .bss, .data)."""
    normal = dump_json(binary, target.proc.pid)
    env = dict(os.environ, PYHANG_NO_SYMBOLS="1")
    out = subprocess.run([binary, "dump", str(target.proc.pid), "--json"], capture_output=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout.decode("utf-8")) == normal


def test_process_exiting_during_dumps(binary, python, tmp_path):
    """Dumps of a process killed meanwhile end cleanly: status 0 or 1, never a crash."""
    d = _copy_programs(tmp_path)
    ready = os.path.join(str(tmp_path), "ready")
    p = subprocess.Popen([python, os.path.join(d, "many_threads.py"), ready, "20", "30"])
    mark_hanging(p.pid)  # blocked on purpose: its hang is expected
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready) and time.time() < deadline:
            time.sleep(0.02)
        procs = [subprocess.Popen([binary, "dump", str(p.pid), "--json", "--repeat", "50"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(4)]
        time.sleep(0.05)
        p.kill()
        for q in procs:
            _, err = q.communicate(timeout=60)
            assert q.returncode in (0, 1), err
            if q.returncode == 1:
                assert b"exited" in err or b"does not exist" in err or b"cannot" in err, err
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


def _start_ready(python, tmp_path, program, *args):
    d = os.path.join(str(tmp_path), "prog")
    if not os.path.isdir(d):
        os.makedirs(d)
    shutil.copy(os.path.join(PROGRAMS, program), d)
    ready = os.path.join(str(tmp_path), "ready")
    p = subprocess.Popen([python, os.path.join(d, program), ready] + [str(a) for a in args])
    mark_hanging(p.pid)  # blocked on purpose: its hang is expected
    deadline = time.time() + 30
    while not os.path.exists(ready):
        assert p.poll() is None and time.time() < deadline, "%s did not start" % program
        time.sleep(0.02)
    return p


def test_gil_holder_and_waiters(binary, python, tmp_path):
    """Busy threads: never more than one GIL holder per dump, and over repeated dumps a
    holder and GIL waiters are seen (2.7: _PyThreadState_Current and interpreter_lock;
    3.6: static gil_* variables; 3.7+: struct _gil_runtime_state)."""
    p = _start_ready(python, tmp_path, "busy.py", 3)
    try:
        holders_seen = gil_waits = 0
        for _ in range(300):  # 2.7's GIL hand-offs are quick: waiters are rarely caught
            if holders_seen >= 3 and gil_waits >= 3:
                break
            d = dump_json(binary, p.pid)
            assert len(d["threads"]) == 4
            holders = [t for t in d["threads"] if t["gil"]]
            assert len(holders) <= 1
            holders_seen += len(holders)
            gil_waits += sum(1 for t in d["threads"] if t["state"] == "gil_wait")
            assert not [t for t in d["threads"] if t["state"] in ("lock_wait", "sleep")]
        assert holders_seen > 0, "no GIL holder seen"
        assert gil_waits > 0, "no GIL waiter seen"
    finally:
        p.kill()
        p.wait()


def test_process_exec_during_dumps(binary, python, tmp_path):
    """A process that execs (same pid and start time, new image) while being dumped: every
    dump ends with status 0 or a clean error; afterwards it is reported as not Python."""
    p = _start_ready(python, tmp_path, "exec_later.py", 0.3)
    try:
        q = subprocess.Popen([binary, "dump", str(p.pid), "--json", "--repeat", "100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = q.communicate(timeout=120)
        assert q.returncode == 1, err
        assert b"exited or exec'd" in err or b"not a Python process" in err, err
        deadline = time.time() + 10
        while (os.path.basename(os.readlink("/proc/%d/exe" % p.pid)) != "sleep" and
               time.time() < deadline):
            time.sleep(0.05)
        out = dump(binary, p.pid)
        assert out.returncode == 1 and b"not a Python process" in out.stderr, out.stderr
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("version", ["3.5", "3.99"])
def test_unsupported_version_is_refused(binary, tmp_path, version):
    """A process whose executable claims an unknown CPython version gets a clear refusal."""
    exe = os.path.join(str(tmp_path), "python" + version)
    shutil.copy(shutil.which("sleep"), exe)
    p = subprocess.Popen([exe, "100"])
    try:
        time.sleep(0.1)
        out = dump(binary, p.pid)
        assert out.returncode == 1
        assert ("unsupported CPython %s" % version).encode() in out.stderr, out.stderr
    finally:
        p.kill()
        p.wait()


def test_process_in_another_mount_namespace(binary, tmp_path):
    """The interpreter binary exists only inside the target's mount namespace (a tmpfs
    mounted there): it must be opened through /proc/PID/root, and the pid is the host's."""
    if not shutil.which("unshare") or not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("needs unshare and /usr/bin/python3.11")
    private = os.path.join(str(tmp_path), "private")
    os.makedirs(private)
    ready = os.path.join(str(tmp_path), "ready")
    script = ("mount -t tmpfs none '{d}' && cp /usr/bin/python3.11 '{d}/python3.11' && "
              "cp '{prog}' '{d}/' && exec '{d}/python3.11' '{d}/many_threads.py' '{r}' 3 10"
              ).format(d=private, prog=os.path.join(PROGRAMS, "many_threads.py"), r=ready)
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script])
    try:
        deadline = time.time() + 30
        while not os.path.exists(ready):
            assert p.poll() is None and time.time() < deadline, "namespaced target did not start"
            time.sleep(0.02)
        assert not os.path.exists(os.path.join(private, "python3.11"))  # not visible here
        d = dump_json(binary, p.pid)
        assert d["pid"] == p.pid
        assert len(d["threads"]) == 4
        files = set(f["file"] for t in d["threads"] for f in t["stack"])
        assert os.path.join(private, "many_threads.py") in files
        assert all(t["tid"] for t in d["threads"])
    finally:
        p.kill()
        p.wait()


def test_code_cache_never_stale(binary, python, tmp_path):
    """One long-lived reader (dump --watch) follows a thread that keeps creating and freeing
    functions fn_<i> (file gen_<i>.py, first line i % 40 + 1): every frame seen must be
    self-consistent and i must never go back, even when addresses are reused."""
    # co_firstlineno of the exec'd module gen_<i>.py, as the interpreter itself sets it: 1 on
    # 3.10+, the line of the first statement (i % 40 + 1) on 2.7-3.9 (compile.c, assemble())
    src = "print([compile('\\n' * k + 'def fn_%d(ev):\\n    ev.wait(0.03)\\n' % k, 'g', " \
          "'exec').co_firstlineno for k in range(40)])"
    module_first = json.loads(subprocess.run([python, "-c", src], capture_output=True, text=True,
                                             check=True).stdout)
    # the lines of churn.py that run gen_<i>.py's module (exec) and call fn_<i>
    with open(os.path.join(PROGRAMS, "churn.py")) as f:
        churn_src = f.read().splitlines()
    exec_line = 1 + [k for k, s in enumerate(churn_src) if "exec(compile(" in s][0]
    call_line = 1 + [k for k, s in enumerate(churn_src) if 'ns["fn_%d" % i](ev)' in s][0]
    p = _start_ready(python, tmp_path, "churn.py")
    try:
        out = subprocess.run([binary, "dump", str(p.pid), "--watch", "150"], capture_output=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr.decode()
        seen = []
        for line in out.stdout.decode().splitlines():
            d = json.loads(line)
            churn = [t for t in d["threads"] if t["name"] == "churn"]
            assert len(churn) == 1
            stack = churn[0]["stack"]
            for k, f in enumerate(stack):
                if f["file"].startswith("gen_"):
                    i = int(f["file"][4:-3])
                    # its caller: churn(), at the exec of the module or the call of fn_<i>
                    # (a frame of one code object decoded with another's shows here too)
                    if k + 1 < len(stack) or not churn[0].get("truncated"):
                        caller = stack[k + 1]
                        assert short_name(caller["function"]) == "churn", stack
                        want = exec_line if f["function"] == "<module>" else call_line
                        assert caller["line"] == want, stack
                    if f["function"] == "<module>":
                        # caught in the exec of gen_<i>.py itself, at its one statement (a
                        # def: no Python call, so the innermost frame)
                        assert k == 0, stack
                        assert (f["first_line"], f["line"]) == (module_first[i % 40], i % 40 + 1), f
                        seen.append(i)
                        continue
                    assert short_name(f["function"]) == "fn_%d" % i, f
                    assert f["first_line"] == i % 40 + 1, f
                    assert f["line"] == i % 40 + 2, f
                    seen.append(i)
        assert len(set(seen)) > 5, seen
        assert seen == sorted(seen), seen
    finally:
        p.kill()
        p.wait()


def test_corrupted_frame_chain(binary, python, tmp_path):
    """Untrusted memory: a frame chain made cyclic and a frame whose code pointer is garbage
    (frame objects of <= 3.10) give a clean, cut stack, not a crash or a hang."""
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] <= (3, 10))"],
                             capture_output=True, text=True).stdout.strip()
    if version != "True":
        pytest.skip("frame objects are only the frame chain up to 3.10")
    p = _start_ready(python, tmp_path, "corrupt.py")
    try:
        d = dump_json(binary, p.pid)
        by_name = dict((t["name"], t) for t in d["threads"])
        cyc = by_name["cyclic"]
        assert cyc.get("truncated") is True
        assert cyc["stack"][0]["function"] == "cyclic"
        assert len(cyc["stack"]) <= 2
        bad = by_name["call_bad_code"]
        assert bad["stack"][0]["function"] == "bad_code"
        assert "call_bad_code" not in [f["function"] for f in bad["stack"]]
        assert "run" in [f["function"] for f in bad["stack"]]  # frames past it still read
    finally:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------- privileges

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]
from harness import SYSTEM_PYTHON  # noqa: E402


@pytest.mark.parametrize("owner,drop,named", [
    ("root", "-sys_ptrace", ["CAP_SYS_PTRACE"]),
    ("nobody", "-dac_read_search,-dac_override", ["CAP_DAC_READ_SEARCH"]),
    ("nobody", "-dac_read_search,-dac_override,-sys_ptrace", ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]),
    ("nobody", None, []),  # unprivileged, the process's own user: no capability needed
])
def test_dump_privileges(binary, owner, drop, named):
    """Without the capability that reading this process's memory needs, one line that names
    it (exit 1); a user can always dump their own processes."""
    pre = NOBODY if owner == "nobody" else []
    t = subprocess.Popen(pre + [SYSTEM_PYTHON, LOCK_PROG], stdout=subprocess.PIPE)
    mark_hanging(t.pid)
    try:
        assert t.stdout.readline().split()[0] == b"ready"
        assert t.stdout.readline().split()[0] == b"blocking"
        runner = NOBODY if drop is None else ["setpriv", "--bounding-set=" + drop, "--inh-caps=-all", "--"]
        out = subprocess.run(runner + [binary, "dump", str(t.pid)], capture_output=True, timeout=60)
        err = out.stderr.decode("utf-8", "replace").strip()
        if not named:
            assert out.returncode == 0, err
            assert b"trace_lock_hang.py" in out.stdout
            return
        assert out.returncode == 1 and out.stdout == b"", (out.returncode, err)
        assert len(err.splitlines()) == 1, err
        assert "/proc/%d/mem" % t.pid in err, err
        for cap in ["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"]:
            assert (cap in err) == (cap in named), err
    finally:
        t.kill()
        t.wait()


def _newest_python():
    return max(INTERPRETERS, key=lambda i: [int(x) for x in i[2].split(".")])[1]


def test_frame_budget_of_a_read(binary, tmp_path):
    """One read takes at most PY_MAX_FRAME_STEPS (131,072) frame steps over all threads: 160
    threads 900 frames deep (144,000 frames) are read whole up to the budget, and the threads
    past it are cut with `frame budget of the read used up`. (Without the budget a hostile
    process of 4,096 threads x 8,192 steps held a read for seconds.)"""
    python = _newest_python()  # its frames are cheap
    progs = _copy_programs(tmp_path)
    ready = os.path.join(str(tmp_path), "ready")
    p = subprocess.Popen([python, os.path.join(progs, "many_threads.py"), ready, "160", "900"])
    mark_hanging(p.pid)  # blocked on purpose: its hang is expected
    try:
        deadline = time.time() + 60
        while not os.path.exists(ready):
            assert p.poll() is None and time.time() < deadline, "many_threads.py did not start"
            time.sleep(0.05)
        d = dump_json(binary, p.pid)
        workers = [t for t in d["threads"] if t.get("name", "").startswith("bench-")]
        assert len(workers) == 160, len(workers)
        frames = sum(len(t["stack"]) for t in d["threads"])
        cut = [t for t in d["threads"] if t.get("error") == "frame budget of the read used up"]
        assert cut and all(t.get("truncated") for t in cut), [t.get("error") for t in d["threads"]]
        # nearly every step gave a frame (3.11+ also steps over a C entry frame per thread)
        assert 131072 - 2000 <= frames <= 131072, frames
        whole = [t for t in workers if not t.get("truncated")]
        assert all(len(t["stack"]) >= 890 for t in whole), sorted(len(t["stack"]) for t in whole)[:3]
        assert len(whole) + len(cut) >= 160, (len(whole), len(cut))
    finally:
        p.kill()
        p.wait()


def test_maps_of_many_megabytes(binary, tmp_path):
    """A process with 40,000 file mappings has a /proc/PID/maps of over 12 MB, with the
    interpreter's mappings at its end: the reader takes it whole (a seq_file gives ~4 KiB a
    read, so a cap on the number of reads cut it at 8 MB and the process looked not to be
    Python)."""
    python = _newest_python()
    progs = _copy_programs(tmp_path)
    ready = os.path.join(str(tmp_path), "ready")
    p = subprocess.Popen([python, os.path.join(progs, "many_maps.py"), ready, str(tmp_path)])
    mark_hanging(p.pid)  # blocked on purpose: its hang is expected
    try:
        deadline = time.time() + 60
        while not os.path.exists(ready):
            assert p.poll() is None and time.time() < deadline, "many_maps.py did not start"
            time.sleep(0.05)
        with open("/proc/%d/maps" % p.pid, "rb") as f:
            assert len(f.read()) > 9 << 20  # over the 8 MB where the cut was
        d = dump_json(binary, p.pid)
        main = [t for t in d["threads"] if t.get("name") == "MainThread"]
        assert main and any(f["file"].endswith("many_maps.py") for f in main[0]["stack"]), d

    finally:
        p.kill()
        p.wait()
