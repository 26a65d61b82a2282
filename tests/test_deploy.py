"""deploy/: the systemd unit and the Kubernetes DaemonSet.

The unit is checked by `systemd-analyze verify` (which needs no running systemd), its
hardening settings are read back, and its ExecStart is run for real, the way systemd would
run it: root with only the unit's capabilities (bounding, ambient), no_new_privs, a small
RLIMIT_MEMLOCK, against a Python owned by another user. The DaemonSet is parsed and its
fields that matter are checked.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from harness import free_port, kill_group, mark_hanging, read_line

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "deploy", "pyhang-trace.service")
DAEMONSET = os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml")
LOCK_PROG = os.path.join(ROOT, "tests", "programs", "trace_lock_hang.py")
CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
INSTALLED = "/usr/local/bin/pyhang-trace"



def test_caps_are_the_proven_ones():
    """The unit grants exactly what the tracer checks for (each proved by dropping it)."""
    import test_trace_cli
    assert set(test_trace_cli.NEEDED_CAPS) == CAPS

def unit_settings():
    """{section: {key: [values...]}} of the unit file (repeated keys keep every value)."""
    out, section = {}, None
    with open(UNIT) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = out.setdefault(line.strip("[]"), {})
                continue
            key, _, val = line.partition("=")
            section.setdefault(key.strip(), []).append(val.strip())
    return out


def one(svc, key):
    assert key in svc, "unit has no %s=" % key
    assert len(svc[key]) == 1, key
    return svc[key][0]


def test_unit_systemd_analyze_verify(tmp_path):
    sa = shutil.which("systemd-analyze")
    assert sa, "systemd-analyze missing: `make deps` installs the Debian package systemd"
    # verify insists the ExecStart binary exists: point it at the one just built
    unit = tmp_path / "pyhang-trace.service"
    with open(UNIT) as f:
        unit.write_text(f.read().replace(INSTALLED, os.path.join(ROOT, "build", "pyhang-trace")))
    r = subprocess.run([sa, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 even for unknown keys or bad values: any message is a failure here
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    # and it does look at the settings (negative control)
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStart=/bin/true\nProtectSystem=banana\n")
    r = subprocess.run([sa, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "banana" in r.stdout + r.stderr


def test_unit_hardening():
    u = unit_settings()
    svc = u["Service"]
    assert one(svc, "Type") == "simple"
    argv = shlex.split(one(svc, "ExecStart"))
    assert argv[0] == INSTALLED
    assert argv[1:] == ["--json", "-o", "/var/log/pyhang-trace/events.jsonl", "--quiet",
                        "--metrics-addr", "127.0.0.1:9464"]
    assert one(svc, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert set(one(svc, "CapabilityBoundingSet").split()) == CAPS
    assert set(one(svc, "AmbientCapabilities").split()) == CAPS
    assert one(svc, "NoNewPrivileges") == "yes"
    assert one(svc, "ProtectSystem") == "strict"
    assert one(svc, "ReadWritePaths") == "/var/log/pyhang-trace"
    assert one(svc, "LogsDirectory") == "pyhang-trace"
    assert one(svc, "ProtectHome") == "read-only"
    assert one(svc, "PrivateTmp") == "yes"
    assert set(one(svc, "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # it must see every process's /proc/PID/{mem,root,...}
    assert "ProtectProc" not in svc and "ProcSubset" not in svc
    assert "User" not in svc and "DynamicUser" not in svc
    assert u["Install"]["WantedBy"] == ["multi-user.target"]





def test_unit_execstart_runs_as_the_unit_would(binary, tmp_path):
    """ExecStart's own options, with the built binary, the log path moved to tmp_path and a
    free port; root with only the unit's capabilities and a 64 KiB RLIMIT_MEMLOCK; the
    target runs as nobody. Then: a long_wait, the metrics, SIGHUP reopening, SIGTERM."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) missing"
    svc = unit_settings()["Service"]
    argv = shlex.split(one(svc, "ExecStart"))
    log = tmp_path / "events.jsonl"
    port = free_port()
    argv = [binary] + [str(log) if a == "/var/log/pyhang-trace/events.jsonl" else
                       "127.0.0.1:%d" % port if a == "127.0.0.1:9464" else a for a in argv[1:]]
    caps = ",".join("+" + c[4:].lower() for c in sorted(CAPS))
    # the unit's default threshold is 5 s; -t 0.5 keeps this test short (an extra option)
    cmd = [setpriv, "--bounding-set=-all," + caps, "--inh-caps=-all," + caps,
           "--ambient-caps=-all," + caps, "--no-new-privs", "--"] + argv + ["-t", "0.5"]
    target = subprocess.Popen([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                               "/usr/bin/python3", LOCK_PROG, "--gate"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                              start_new_session=True)
    mark_hanging(target.pid)
    tr = None
    try:
        pid = int(read_line(target, 30, "target").split()[1])
        err = tmp_path / "stderr"
        with open(str(err), "wb") as e:
            tr = subprocess.Popen(["/bin/sh", "-c", 'ulimit -l 64 && exec "$@"', "sh"] + cmd,
                                  stdout=e, stderr=e, start_new_session=True)

        def events(path):
            try:
                with open(str(path)) as f:
                    return [json.loads(l) for l in f if l.strip()]
            except OSError:
                return []

        deadline = time.monotonic() + 30
        while not any(x["event"] == "start" for x in events(log)):
            assert tr.poll() is None, "tracer exited %s: %s" % (tr.returncode, err.read_text())
            assert time.monotonic() < deadline, "no start event"
            time.sleep(0.1)
        with open("/proc/%d/status" % tr.pid) as f:
            capeff = int([l for l in f if l.startswith("CapEff:")][0].split()[1], 16)
        assert capeff == (1 << 39) | (1 << 38) | (1 << 19) | (1 << 2), hex(capeff)
        target.stdin.write(b"go\n")
        tid = int(read_line(target, 15, "target").split()[1])
        deadline = time.monotonic() + 15
        while not any(x["event"] == "long_wait" and x["tid"] == tid for x in events(log)):
            assert time.monotonic() < deadline, "no long_wait for nobody's thread: %s" % err.read_text()
            time.sleep(0.1)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            body = r.read().decode()
        assert 'pyhang_findings_total{kind="long_wait"} ' in body
        assert "pyhang_bpf_stats_enabled" in body
        # log rotation: rename, SIGHUP (ExecReload), a new file appears and gets the stop
        rotated = tmp_path / "events.jsonl.1"
        os.rename(str(log), str(rotated))
        tr.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        tr.send_signal(signal.SIGTERM)
        assert tr.wait(15) == 0, err.read_text()
        assert err.read_text() == "", "--quiet daemon wrote to stderr: %r" % err.read_text()
        assert events(rotated)[0]["event"] == "start"
        assert events(log)[-1]["event"] == "stop"
    finally:
        if tr is not None:
            kill_group(tr)
        kill_group(target)


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def ds():
    yaml = pytest.importorskip("yaml", reason="python3-yaml missing: `make deps` installs it")
    with open(DAEMONSET) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    assert len(docs) == 1
    return docs[0]


def test_daemonset_shape(ds):
    assert ds["apiVersion"] == "apps/v1" and ds["kind"] == "DaemonSet"
    spec = ds["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["hostPID"] is True
    assert not pod.get("hostNetwork")
    assert {"operator": "Exists"} in pod["tolerations"]
    ann = spec["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9464"
    assert ann.get("prometheus.io/path", "/metrics") == "/metrics"


def test_daemonset_container(ds, binary):
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"CAP_" + x for x in sc["capabilities"]["add"]} == CAPS
    # arguments: accepted by the real binary's parser (--help exits before any set-up)
    args = c["args"]
    assert "--metrics-addr" in args and "--json" in args and "--quiet" in args
    addr = args[args.index("--metrics-addr") + 1]
    assert addr.endswith(":9464")
    r = subprocess.run([binary] + args + ["--help"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert c["ports"][0]["containerPort"] == 9464
    res = c["resources"]
    # BPF maps (~25 MiB) are charged to the pod's memory cgroup on top of the tracer's RSS
    assert res["limits"]["memory"] == "128Mi" and res["limits"]["cpu"] == "100m"
    assert res["requests"]["cpu"] == "50m" and res["requests"]["memory"] == "64Mi"
    probe = c["livenessProbe"]["httpGet"]
    assert probe["path"] == "/metrics" and probe["port"] in ("metrics", 9464)
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/sys/kernel/btf"]["readOnly"] is True
    assert vols[mounts["/sys/kernel/btf"]["name"]]["hostPath"]["path"] == "/sys/kernel/btf"
    assert vols[mounts["/sys/kernel/tracing"]["name"]]["hostPath"]["path"] == "/sys/kernel/tracing"
    assert "/sys/fs/bpf" not in mounts  # nothing is pinned
