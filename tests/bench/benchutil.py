"""Helpers shared by the Python-level benchmarks (python_workloads.py, tracer_cost.py):
starting and stopping the tracer, reading a process's CPU time and memory from /proc,
medians. Needs root (the tracer loads BPF programs)."""
import os
import signal
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRACER = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))
DEFAULT_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Tracer(object):
    """One pyhang-trace run in fleet mode (JSON Lines to a file, quiet). start() returns once
    the `start` event is written, i.e. the BPF programs are attached and the start-up scan
    is done."""

    def __init__(self, extra_args=(), timeout=60, binary=None):
        self.binary = binary or TRACER
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.proc = None
        self.out_path = None

    def start(self):
        fd, self.out_path = tempfile.mkstemp(prefix="pyhang-bench-", suffix=".jsonl")
        os.close(fd)
        argv = [self.binary, "--json", "-q", "-o", self.out_path] + self.extra_args
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with open(self.out_path, "rb") as f:
                if b'"event":"start"' in f.read(4096):
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("tracer did not start within %d s" % self.timeout)

    def check_alive(self):
        if self.proc.poll() is not None:
            self.err.seek(0)
            raise RuntimeError("tracer exited with status %s: %s" % (
                self.proc.returncode, self.err.read().decode(errors="replace")[-2000:]))

    @property
    def pid(self):
        return self.proc.pid

    def events(self):
        """Counts of the events written so far, by kind."""
        counts = {}
        with open(self.out_path, "rb") as f:
            for line in f:
                i = line.find(b'"event":"')
                if i >= 0:
                    kind = line[i + 9:line.find(b'"', i + 9)].decode()
                    counts[kind] = counts.get(kind, 0) + 1
        return counts

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.err.close()
        if self.out_path and os.path.exists(self.out_path):
            os.unlink(self.out_path)
            self.out_path = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def cpu_seconds(pid):
    """utime + stime of pid (all its threads), in seconds, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / float(CLK_TCK)


def status_kib(pid, keys=("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def smaps_breakdown(pid):
    """Rss in KiB per kind of mapping: the binary, the heap, anonymous mmaps (large malloc
    blocks), BPF maps (the ring buffer: its data pages are mapped twice), shared libraries,
    stack, other."""
    kinds = {}
    kind = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                path = head[5] if len(head) > 5 else ""
                if path == "[heap]":
                    kind = "heap"
                elif path == "[stack]":
                    kind = "stack"
                elif path.startswith("anon_inode:bpf-map"):
                    kind = "bpf map mmap (ring buffer)"
                elif path == "":
                    kind = "anonymous mmap (large mallocs)"
                elif path.endswith("pyhang-trace") or path.endswith("pyhang-trace-asan"):
                    kind = "binary (text+data)"
                elif ".so" in path:
                    kind = "shared libraries"
                else:
                    kind = "other (%s)" % path
            elif head[0] == "Rss:":
                kinds[kind] = kinds.get(kind, 0) + int(head[1])
    return kinds


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def require_root():
    if os.geteuid() != 0:
        raise SystemExit("must run as root (the tracer loads BPF programs)")
    if not os.access(TRACER, os.X_OK):
        raise SystemExit("%s not found: run `make` first (or set PYHANG_BINARY)" % TRACER)
