"""deploy/prometheus/: the recording and alerting rules for the tracer's metrics.

`promtool check rules` validates them; `promtool test rules` runs their unit tests
(pyhang-trace.rules.test.yml: synthetic series of a hung host, an idle worker pool that
must not alert, a lost child status, lost events, a tracer down, no tracer at all).
Negative controls prove both can fail: a broken expression fails the check, and a rule
weakened to alert on any open wait (an idle pool too) fails the unit tests. The metric
names the rules use are the ones the tracer serves (user/output/metrics.c, as README lists them).
"""
import glob
import os
import re
import shutil
import subprocess

import yaml

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "deploy", "prometheus")
RULES = os.path.join(DIR, "pyhang-trace.rules.yml")
TESTS = os.path.join(DIR, "pyhang-trace.rules.test.yml")


def promtool(*args, cwd=DIR):
    exe = shutil.which("promtool")
    assert exe, "promtool missing: `make deps` installs the Debian package prometheus"
    return subprocess.run([exe] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_rules_check():
    r = promtool("check", "rules", RULES)
    print(r.stdout + r.stderr)
    assert r.returncode == 0 and "SUCCESS: 11 rules found" in r.stdout, r.stdout + r.stderr


def test_rules_unit_tests():
    r = promtool("test", "rules", TESTS)
    print(r.stdout + r.stderr)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_alert_says_what_to_do():
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {
        "PythonProcessStuck", "PythonHangFound", "PythonChildExitStatusLost",
        "PyhangTraceLostEvents", "PyhangTraceDown", "PyhangTraceAbsent"}
    for a in alerts:
        summary = a["annotations"]["summary"]
        assert ":" in summary and len(summary) > 80, a["alert"]  # the what, then the fix
        assert a["labels"]["severity"] in ("warning", "critical")


def test_rules_use_metrics_the_tracer_serves():
    source, = glob.glob(os.path.join(ROOT, "user", "**", "metrics.c"), recursive=True)
    with open(source) as f:
        served = set(re.findall(r"\b(pyhang_[a-z_]+)", f.read()))
    with open(RULES) as f:
        text = f.read()
    used = set(re.findall(r"\b(pyhang_[a-z_]+)\{", text))
    assert used and used <= served, used - served


def test_negative_controls(tmp_path):
    with open(RULES) as f:
        rules = f.read()
    broken = tmp_path / "broken.rules.yml"
    broken.write_text(rules.replace("increase(pyhang_lost_events_total", "increase(pyhang_lost_events_total[", 1))
    r = promtool("check", "rules", str(broken))
    assert r.returncode != 0, r.stdout
    # alerting on any open wait would page for an idle worker pool: the tests catch it
    weak = rules.replace('          and on (job, instance) pyhang_findings_total{job="pyhang-trace",kind="hang"} > 0\n', "")
    assert weak != rules
    (tmp_path / "pyhang-trace.rules.yml").write_text(weak)
    shutil.copy(TESTS, str(tmp_path))
    r = promtool("test", "rules", os.path.basename(TESTS), cwd=str(tmp_path))
    assert r.returncode != 0 and "b:9464" in r.stdout + r.stderr, r.stdout + r.stderr
