"""--metrics-addr (Prometheus exposition), --bpf-stats and --quiet, end to end.

One tracer session (-p a Python whose worker thread blocks on a Lock, -t 0.5,
--metrics-addr on a free loopback port, --bpf-stats) serves every metrics test: a strict
parse of the exposition, `promtool check metrics`, a real Prometheus server scraping it
every second, and the HTTP edge cases (404, HEAD, oversized and stalled requests).
Everything listens on 127.0.0.1 only; every wait is bounded; every server is killed.
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import HOST_PYTHON, PROGRAMS, Tracer, mark_hanging, free_port, kill_group, read_line

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

LOCK_PROG = os.path.join(PROGRAMS, "trace_lock_hang.py")
PY = HOST_PYTHON





def fetch(url, timeout=5, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read().decode()


# ---------------------------------------------------------------- strict text-format parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (\S+)( -?\d+)?$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, {labels}, value)]}}; asserts on anything
    the 0.0.4 text format does not allow, and on what this tool promises (HELP and TYPE
    before every family's samples, one block per family, no duplicate series)."""
    assert text.endswith("\n"), "exposition must end with a newline"
    fams, current, seen_series = {}, None, set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line.strip() == line and line, "line %d: empty or padded: %r" % (n, line)
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME, line)
            assert m, "line %d: bad comment %r" % (n, line)
            kind, name, rest = m.groups()
            if kind == "HELP":
                assert name not in fams, "line %d: family %s repeated" % (n, name)
                fams[name] = {"help": rest, "type": None, "samples": []}
                current = name
            else:
                assert name == current and fams[name]["type"] is None, \
                    "line %d: TYPE without its HELP just before" % n
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), line
                fams[name]["type"] = rest
            continue
        m = SAMPLE_RE.match(line)
        assert m, "line %d: not a sample: %r" % (n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert current and name == current and fams[current]["type"], \
            "line %d: sample %s outside its family's block" % (n, name)
        v = float(value)  # raises on garbage
        assert not math.isnan(v)
        lab = dict(LABEL_RE.findall(labels))
        key = (name, tuple(sorted(lab.items())))
        assert key not in seen_series, "line %d: duplicate series %r" % (n, key)
        seen_series.add(key)
        if fams[current]["type"] == "counter":
            assert v >= 0, "line %d: negative counter" % n
        fams[current]["samples"].append((name, lab, v))
    return fams


def value(fams, name, **labels):
    for n, lab, v in fams[name]["samples"]:
        if all(lab.get(k) == val for k, val in labels.items()):
            return v
    raise AssertionError("no sample %s%r" % (name, labels))


# ---------------------------------------------------------------- the session


@pytest.fixture(scope="module")
def session(binary):
    procs = []
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            stats_before = f.read().strip()
        target = subprocess.Popen([PY, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        procs.append(target)
        mark_hanging(target.pid)
        pid = int(read_line(target, 30, "target").split()[1])
        port = free_port()
        tr = Tracer(None, binary, ["--json", "-t", "0.5", "-p", str(pid), "--metrics-addr",
                                   "127.0.0.1:%d" % port, "--bpf-stats"])
        procs.append(tr.proc)
        tr.wait_for(lambda e: e["event"] == "start", 30, "start")
        target.stdin.write(b"go\n")
        tid = int(read_line(target, 15, "target").split()[1])
        tr.wait_for(lambda e: e["event"] == "long_wait" and e["tid"] == tid, 15, "long_wait")
        s = {"binary": binary, "pid": pid, "tid": tid, "port": port, "tracer": tr,
             "target": target, "url": "http://127.0.0.1:%d/metrics" % port,
             "stats_before": stats_before}
        yield s
    finally:
        for p in procs:
            if p.poll() is None and p is not procs[0]:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            kill_group(p)


def test_metrics_strict_parse(session):
    status, headers, body = fetch(session["url"])
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    fams = parse_exposition(body)
    for name, typ in [("pyhang_build_info", "gauge"), ("pyhang_findings_total", "counter"),
                      ("pyhang_open_long_waits", "gauge"), ("pyhang_lost_events_total", "counter"),
                      ("pyhang_bpf_stats_enabled", "gauge"),
                      ("pyhang_bpf_program_runs_total", "counter"),
                      ("pyhang_bpf_program_run_seconds_total", "counter"),
                      ("pyhang_process_cpu_seconds_total", "counter"),
                      ("pyhang_process_resident_memory_bytes", "gauge"),
                      ("pyhang_start_time_seconds", "gauge"), ("pyhang_threshold_seconds", "gauge")]:
        assert name in fams, name
        assert fams[name]["type"] == typ, name
    assert all(n.startswith("pyhang_") for n in fams)
    kinds = {lab["kind"] for _, lab, _ in fams["pyhang_findings_total"]["samples"]}
    assert kinds == {"long_wait", "wait_end", "sigchld_ignored", "child_status_lost", "hang", "hang_end"}
    reasons = {lab["reason"] for _, lab, _ in fams["pyhang_lost_events_total"]["samples"]}
    assert {"ringbuf_full", "waits_map_full", "map_full"} <= reasons
    # the provoked wait: reported, still open
    assert value(fams, "pyhang_findings_total", kind="long_wait") >= 1
    assert value(fams, "pyhang_open_long_waits") >= 1
    assert value(fams, "pyhang_threshold_seconds") == 0.5
    assert value(fams, "pyhang_build_info") == 1
    # --bpf-stats: the kernel counts runs of the futex program for this run
    assert value(fams, "pyhang_bpf_stats_enabled") == 1
    assert value(fams, "pyhang_bpf_program_runs_total", program="futex_enter") >= 1
    assert value(fams, "pyhang_bpf_program_run_seconds_total", program="futex_enter") > 0
    assert 0 < value(fams, "pyhang_process_cpu_seconds_total") < 60
    assert 1 << 20 < value(fams, "pyhang_process_resident_memory_bytes") < 1 << 30


def test_metrics_counters_move(session):
    """Counters are served live: a CPU-time counter never goes down between scrapes, and the
    BPF run count grows while the target makes futex calls."""
    _, _, a = fetch(session["url"])
    time.sleep(0.3)
    _, _, b = fetch(session["url"])
    fa, fb = parse_exposition(a), parse_exposition(b)
    assert value(fb, "pyhang_process_cpu_seconds_total") >= value(fa, "pyhang_process_cpu_seconds_total")
    assert value(fb, "pyhang_bpf_program_runs_total", program="scan_tick") >= \
        value(fa, "pyhang_bpf_program_runs_total", program="scan_tick")


def test_promtool_check_metrics(session):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make deps` installs the Debian package prometheus"
    _, _, body = fetch(session["url"])
    r = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True,
                       timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    # promtool reports lint problems on stdout/stderr even when it exits 0 in some versions
    assert not (r.stdout + r.stderr).strip(), (r.stdout + r.stderr).decode()


def _prom_query(base, q):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    _, _, body = fetch(url, timeout=5)
    d = json.loads(body)
    assert d["status"] == "success", d
    return d["data"]["result"]


def test_real_prometheus_scrapes(session, tmp_path):
    prom = shutil.which("prometheus")
    assert prom, "prometheus missing: `make deps` installs the Debian package prometheus"
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: pyhang\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % session["port"])
    log = open(str(tmp_path / "prometheus.log"), "wb")
    p = subprocess.Popen([prom, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                          "--web.listen-address=127.0.0.1:%d" % web, "--log.level=warn"],
                         stdout=log, stderr=log, start_new_session=True, cwd=str(tmp_path))
    base = "http://127.0.0.1:%d" % web
    try:
        deadline = time.monotonic() + 60
        up = lw = None
        while time.monotonic() < deadline:
            assert p.poll() is None, "prometheus exited %s: %s" % (
                p.returncode, (tmp_path / "prometheus.log").read_text()[-2000:])
            try:
                up = _prom_query(base, 'up{job="pyhang"}')
                lw = _prom_query(base, 'pyhang_findings_total{job="pyhang",kind="long_wait"}')
            except (urllib.error.URLError, OSError, ValueError):
                up = lw = None  # not listening yet
            if up and up[0]["value"][1] == "1" and lw and float(lw[0]["value"][1]) >= 1:
                break
            time.sleep(0.5)
        assert up and up[0]["value"][1] == "1", "target never up: %r" % up
        assert lw and float(lw[0]["value"][1]) >= 1, "long_wait counter not scraped: %r" % lw
        # the scrape itself: healthy, no samples dropped, fast
        targets = json.loads(fetch(base + "/api/v1/targets", timeout=5)[2])["data"]["activeTargets"]
        t = [x for x in targets if x["labels"]["job"] == "pyhang"][0]
        assert t["health"] == "up" and not t["lastError"], t
        assert t["lastScrapeDuration"] < 0.5, t
        open_waits = _prom_query(base, 'pyhang_open_long_waits{job="pyhang"}')
        assert open_waits and float(open_waits[0]["value"][1]) >= 1
    finally:
        kill_group(p)
        log.close()


def _raw(port, data, timeout=5, shut=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def test_http_edges(session):
    port = session["port"]
    # unknown path, HEAD, non-GET, garbage, bare-LF request
    assert _raw(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    head = _raw(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert _raw(port, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert _raw(port, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert b"pyhang_findings_total" in _raw(port, b"GET /metrics?x=1 HTTP/1.0\n\n")
    # an oversized request gets 431 (bounded buffer), not a hang
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n"
    try:
        out = _raw(port, big, shut=False)
        assert out == b"" or out.startswith(b"HTTP/1.1 431 ")
    except ConnectionResetError:
        pass  # the server closed while we were still sending: also bounded


def test_stalled_client_does_not_block(session):
    """A client that connects and says nothing neither blocks scrapes nor event handling."""
    port = session["port"]
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        t0 = time.monotonic()
        status, _, body = fetch(session["url"])
        assert status == 200 and time.monotonic() - t0 < 1.0
        # the tracer still handles the target's events: release the worker, see wait_end
        session["target"].stdin.write(b"release\n")
        session["tracer"].wait_for(lambda e: e["event"] == "wait_end" and e["tid"] == session["tid"],
                                   10, "wait_end with an idle client connected")
        fams = parse_exposition(fetch(session["url"])[2])
        assert value(fams, "pyhang_findings_total", kind="wait_end") >= 1
        assert value(fams, "pyhang_open_long_waits") == 0
        # the stalled client is dropped after its deadline (5 s)
        idle.settimeout(10)
        assert idle.recv(100) == b""
    finally:
        idle.close()


def test_zz_stop_restores_bpf_stats(session):
    """Runs last (zz): SIGINT stops the tracer normally and the kernel switch is restored."""
    tr = session["tracer"]
    rc = tr.stop()
    assert rc == 0, tr.describe()
    assert not tr.bad, "non-JSON lines with --json: %r" % tr.bad[:5]
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        assert f.read().strip() == session["stats_before"]
    with pytest.raises((urllib.error.URLError, OSError)):
        fetch(session["url"], timeout=2)


# ---------------------------------------------------------------- errors and --quiet


def _one_line_error(r, needle):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("pyhang-trace: "), err
    assert needle in err, err


@pytest.mark.parametrize("addr", ["foo", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                                  "127.0.0.1:9x", "::1:9464", "[::1:9464"])
def test_bad_metrics_addr_syntax(binary, addr):
    r = subprocess.run([binary, "--metrics-addr", addr], capture_output=True, timeout=30)
    _one_line_error(r, "invalid --metrics-addr '%s'" % addr)


def test_metrics_addr_in_use(binary):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([binary, "--metrics-addr", "127.0.0.1:%d" % port, "--duration", "5"],
                           capture_output=True, timeout=30)
        _one_line_error(r, "cannot listen on 127.0.0.1:%d for metrics: Address already in use" % port)
    finally:
        s.close()


def test_metrics_unresolvable_host(binary):
    r = subprocess.run([binary, "--metrics-addr", "no-such-host.invalid:9464", "--duration", "5"],
                       capture_output=True, timeout=60)
    _one_line_error(r, "cannot listen on no-such-host.invalid:9464 for metrics")


def test_bpf_stats_needs_metrics(binary):
    r = subprocess.run([binary, "--bpf-stats"], capture_output=True, timeout=30)
    _one_line_error(r, "--bpf-stats")


def _lock_target():
    t = subprocess.Popen([PY, LOCK_PROG, "--gate", "--release"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
    mark_hanging(t.pid)
    pid = int(read_line(t, 30, "target").split()[1])
    return t, pid


def _run_provoked(binary, args, tmp_path):
    """Run the tracer (text or JSON) on a target whose worker blocks 1.5 s; return
    (rc, stdout, stderr)."""
    target, pid = _lock_target()
    out, err = tmp_path / "out", tmp_path / "err"
    try:
        with open(str(out), "wb") as o, open(str(err), "wb") as e:
            tr = subprocess.Popen([binary, "-t", "0.5", "-p", str(pid)] + args, stdout=o, stderr=e,
                                  start_new_session=True)
            try:
                time.sleep(1.5)  # attached (no start line to wait for with --quiet)
                target.stdin.write(b"go\n")
                read_line(target, 15, "target")  # blocking
                time.sleep(1.5)
                target.stdin.write(b"release\n")
                read_line(target, 15, "target")  # acquired
                time.sleep(0.5)
                tr.send_signal(signal.SIGINT)
                rc = tr.wait(15)
            finally:
                kill_group(tr)
    finally:
        kill_group(target)
    return rc, out.read_text(), err.read_text()


def test_quiet_text(binary, tmp_path):
    rc, out, err = _run_provoked(binary, ["--quiet", "--metrics-addr", "127.0.0.1:%d" % free_port()],
                                 tmp_path)
    assert rc == 0
    assert err == "", "--quiet printed on stderr: %r" % err
    assert "LONG WAIT" in out, out  # events still reach the output


def test_not_quiet_text_has_chatter(binary, tmp_path):
    rc, out, err = _run_provoked(binary, ["--metrics-addr", "127.0.0.1:%d" % free_port()], tmp_path)
    assert rc == 0
    assert "tracing pid" in err and "detached after" in err and "/metrics" in err, err


def test_quiet_json_unchanged(binary, tmp_path):
    rc, out, err = _run_provoked(binary, ["-q", "--json"], tmp_path)
    assert rc == 0 and err == "", err
    events = [json.loads(l) for l in out.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop"
    assert any(e["event"] == "long_wait" for e in events)
