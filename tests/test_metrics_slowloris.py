"""Metrics server under slow clients (issue 12): a scrape succeeds while any local user runs
them.

An unprivileged attacker (user nobody) keeps six connections to /metrics, each trickling a
request one byte every half second and reconnecting when dropped. Before: 4 slots held 5 s
each, so every scrape timed out. Now each local user (told apart by the owner of its
socket) or remote address gets at most --metrics-per-peer (2) connections at once, a
request's headers must be in within --metrics-header-timeout (1 s), and a newcomer whose
peer holds fewer slots takes the oldest unfinished slot of the peer that holds the most.
The tracer runs host-wide, without a terminal; normal and ASan builds.
"""
import os
import subprocess
import time
import urllib.request


from conftest import NOBODY, SYSTEM_PYTHON
from harness import free_port, read_line
from harness import Tracer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SLOW = os.path.join(HERE, "programs", "slow_clients.py")


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)


def scrape(port, timeout):
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as r:
            ok = r.status == 200 and b"pyhang_build_info" in r.read()
    except OSError:
        ok = False
    return ok, time.monotonic() - t0


def test_scrape_succeeds_during_slowloris_by_nobody(reg, tool):
    port = free_port()
    tr = Tracer(reg, tool, ["--json", "-q", "--metrics-addr", "127.0.0.1:%d" % port])
    tr.wait_start()
    # the tracer reads the host's processes at start: wait until it answers at all
    deadline = time.monotonic() + 60
    while not scrape(port, 5)[0]:
        assert time.monotonic() < deadline, "no scrape succeeded before the attack%s" % tr.describe()
        time.sleep(0.5)
    att = reg.popen(NOBODY + [SYSTEM_PYTHON, SLOW, str(port), "6", "14"], stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, bufsize=0)
    assert read_line(att, 20, "attacker started") == "started"
    time.sleep(2)  # every slot the attacker can get is taken by now
    results = []
    for _ in range(10):
        results.append(scrape(port, 5))
        time.sleep(0.5)
    line = read_line(att, 30, "attacker done")
    cpu = sum(int(x) for x in open("/proc/%d/stat" % tr.proc.pid).read().rsplit(")", 1)[1].split()[11:13])
    assert tr.stop(timeout=60) == 0, tr.describe()
    print("\nscrapes during the attack: %s; attacker %s; tracer CPU %.2f s" % (
        ["%s %.3fs" % ("ok" if ok else "FAIL", t) for ok, t in results], line,
        cpu / float(os.sysconf("SC_CLK_TCK"))))
    assert all(ok for ok, _ in results), results
    # the attacker was really there, reconnecting as it was dropped or refused
    assert int(line.split()[1]) > 6, line


def test_metrics_limit_option_errors(binary):
    for opt, bad in (("--metrics-per-peer", "0"), ("--metrics-per-peer", "x"),
                     ("--metrics-header-timeout", "0"), ("--metrics-header-timeout", "-1")):
        r = subprocess.run([binary, opt, bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        assert r.returncode == 2, (opt, bad, r)
        err = r.stderr.decode()
        assert err.count("\n") == 1 and opt in err, err
