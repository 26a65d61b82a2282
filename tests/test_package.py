"""The tool as a system tool: --version, the man page, `make install`/`uninstall`, `make deb`.

--version is checked against what it reports on: the git commit, libbpf's version from
pkg-config, and the program sections of the BPF object as readelf sees them; run as nobody
(it loads nothing). The man page passes `mandoc -T lint` and lists the same options, events
and exit statuses as --help. `make install` puts every file where it belongs under DESTDIR
and nothing outside it; `make uninstall` takes them away. `make deb` gives a package whose
only dependency is libc6, that installs into a scratch root with dpkg --root and runs from
there, and that lintian passes without errors.
"""
import os
import re
import shutil
import stat
import subprocess

import pytest

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAN = os.path.join(ROOT, "deploy", "man", "pyhang-trace.8")
VERSION_RE = re.compile(r"^pyhang-trace (\d+\.\d+\.\d+)$")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def sh(argv, **kw):
    kw.setdefault("timeout", 300)
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    return r


def make(*args):
    r = sh(["make", "-s", "--no-print-directory", "-C", ROOT] + list(args))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def version_text(binary, as_nobody=True):
    r = sh((NOBODY if as_nobody else []) + [binary, "--version"], timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_version(binary):
    out = version_text(binary)
    lines = out.splitlines()
    assert VERSION_RE.match(lines[0]), lines[0]
    # the commit built from: one of this branch's (the binary may predate later commits)
    m = re.match(r"git commit: ([0-9a-f]{12})( \(modified\))?$", lines[1])
    assert m, lines[1]
    if sh(["git", "-C", ROOT, "rev-parse", "HEAD"], timeout=30).returncode == 0:
        r = sh(["git", "-C", ROOT, "merge-base", "--is-ancestor", m.group(1), "HEAD"], timeout=30)
        assert r.returncode == 0, "%s is not a commit of this branch" % m.group(1)
    libbpf = sh(["pkg-config", "--modversion", "libbpf"], timeout=30).stdout.strip()
    assert lines[2].startswith("libbpf: %s (linked statically" % libbpf), lines[2]
    # every program section of the BPF object is listed under its type
    secs = sh(["readelf", "-SW", os.path.join(ROOT, "build", "pyhang.bpf.o")], timeout=30).stdout
    tps = set(re.findall(r"\btracepoint/(\S+)", secs))
    raws = set(re.findall(r"\braw_tp/(\S+)", secs))
    assert tps and raws, secs
    tp_line = next(l for l in lines if l.startswith("  program tracepoint (%d): " % len(tps)))
    assert set(tp_line.split(": ", 1)[1].split(", ")) == tps, tp_line
    raw_line = next(l for l in lines if l.startswith("  program raw_tracepoint"))
    assert raws <= set(raw_line.split(": ", 1)[1].split(", ")), raw_line
    assert any(l.startswith("  map ringbuf (1): events (") for l in lines), out
    r = sh([binary, "-V"], timeout=30)
    assert r.returncode == 0 and r.stdout == version_text(binary, as_nobody=False)


def test_man_page_lint():
    assert shutil.which("mandoc"), "mandoc missing: `make deps` installs it"
    r = sh(["mandoc", "-T", "lint", "-W", "style", MAN], timeout=30)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    # and mandoc does complain about a broken page (negative control)
    r = sh(["mandoc", "-T", "lint", "-W", "style"], input=".TH X 8\n.SH\n.BI\n", timeout=30)
    assert r.returncode != 0 and r.stdout + r.stderr


def man_section(name):
    with open(MAN) as f:
        text = f.read()
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % re.escape(name), text, re.S | re.M)
    assert m, "no section %s in the man page" % name
    return m.group(1).replace("\\-", "-").replace("\\fP", "").replace("\\fI", "")


def man_options():
    """Every option of the .TP tags of OPTIONS."""
    opts = set()
    for tag in re.findall(r"^\.TP\n(.*)$", man_section("OPTIONS"), re.M):
        opts |= set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])", tag))
    return opts


def help_text(binary):
    r = sh([binary, "--help"], timeout=30)
    assert r.returncode == 0
    return r.stdout


def help_options(text):
    # the option groups: "Options:" and the groups after it (e.g. "Limits ..."), up to the
    # prose that starts with "With -- COMMAND"
    block = text.split("\nOptions:\n", 1)[1].split("\nWith -- COMMAND", 1)[0]
    opts = set()
    for line in block.splitlines():
        m = re.match(r" {2,8}(-\S.*?)(?:  |$)", line)  # an option line, not a continuation
        if m:
            opts |= set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])", m.group(1)))
    return opts


def test_man_page_matches_help(binary):
    text = help_text(binary)
    h, m = help_options(text), man_options()
    assert "--hang-timeout" in h and "-p" in h and "--version" in m  # the parsers see them
    assert h == m, "only in --help: %s; only in the man page: %s" % (sorted(h - m), sorted(m - h))
    # the events --help lists, and its exit statuses
    events = re.findall(r"^  ([a-z_]+) {2,}", text.split("What it reports:\n", 1)[1].split(
        "\n\n", 1)[0], re.M)
    assert "hang" in events
    man_events = set(re.findall(r"^\.TP\n\.B (\S+)$", man_section("EVENTS"), re.M))
    assert set(events) <= man_events, sorted(set(events) - man_events)
    statuses = set(re.findall(r"\b(\d+)\b", text.split("Exit status:", 1)[1]))
    man_statuses = set(re.findall(r"^\.TP\n\.B (\d+)$", man_section("EXIT STATUS"), re.M))
    assert statuses == man_statuses and {"0", "2", "124"} <= statuses, (statuses, man_statuses)
    # and the version in its title line
    version = VERSION_RE.match(version_text(binary, as_nobody=False).splitlines()[0]).group(1)
    with open(MAN) as f:
        th = next(l for l in f if l.startswith(".TH "))
    assert '"pyhang-trace %s"' % version in th, th


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out["/" + os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def host_state(paths):
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
            out[p] = (st.st_ino, st.st_mtime_ns)
        except OSError:
            out[p] = None
    return out


def test_make_install_uninstall(binary, tmp_path):
    dest = str(tmp_path / "dest")
    expected = {
        "/usr/local/sbin/pyhang-trace": 0o755,
        "/usr/local/share/man/man8/pyhang-trace.8": 0o644,
        "/usr/local/lib/systemd/system/pyhang-trace.service": 0o644,
        "/etc/logrotate.d/pyhang-trace": 0o644,
        "/usr/local/share/doc/pyhang-trace/README.md": 0o644,
    }
    before = host_state(expected)
    make("install", "DESTDIR=" + dest)
    assert files_under(dest) == expected
    assert host_state(expected) == before, "make install wrote outside DESTDIR"
    # the unit runs the installed binary; the binary works from there
    with open(dest + "/usr/local/lib/systemd/system/pyhang-trace.service") as f:
        unit = f.read()
    assert "ExecStart=/usr/local/sbin/pyhang-trace --json" in unit
    assert "/usr/local/bin/" not in unit
    assert VERSION_RE.match(version_text(dest + "/usr/local/sbin/pyhang-trace").splitlines()[0])
    # another PREFIX moves everything but /etc
    make("install", "DESTDIR=" + dest + "2", "PREFIX=/opt/ph")
    assert set(files_under(dest + "2")) == {p.replace("/usr/local", "/opt/ph") for p in expected}
    make("uninstall", "DESTDIR=" + dest)
    assert files_under(dest) == {}


@pytest.fixture(scope="module")
def deb():
    path = make("deb").strip().splitlines()[-1]
    path = os.path.join(ROOT, path)
    assert os.path.exists(path), path
    return path


def test_deb_control_and_files(deb):
    f = lambda field: sh(["dpkg-deb", "-f", deb, field], timeout=30).stdout.strip()
    assert f("Package") == "pyhang-trace"
    assert re.fullmatch(r"libc6 \(>= 2\.\d+\)", f("Depends")), f("Depends")
    listing = sh(["dpkg-deb", "-c", deb], timeout=30).stdout
    for p in ("./usr/sbin/pyhang-trace", "./usr/share/man/man8/pyhang-trace.8.gz",
              "./lib/systemd/system/pyhang-trace.service", "./etc/logrotate.d/pyhang-trace",
              "./usr/share/doc/pyhang-trace/copyright"):
        assert re.search(r"^-\S+ root/root .* %s$" % re.escape(p), listing, re.M), p
    assert "/usr/local" not in listing


def test_deb_installs_into_scratch_root(deb, tmp_path):
    root = str(tmp_path / "root")
    for d in ("info", "updates", "triggers"):
        os.makedirs(os.path.join(root, "var/lib/dpkg", d))
    for name in ("status", "available"):
        open(os.path.join(root, "var/lib/dpkg", name), "w").close()
    # libc6 is the host's; the scratch root's dpkg database does not know it
    r = sh(["dpkg", "--root=" + root, "--force-depends", "-i", deb], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = version_text(os.path.join(root, "usr/sbin/pyhang-trace"))
    assert VERSION_RE.match(out.splitlines()[0]), out
    print(out)
    r = sh(["dpkg", "--root=" + root, "-s", "pyhang-trace"], timeout=30)
    assert "Status: install ok installed" in r.stdout
    assert os.path.exists(os.path.join(root, "etc/logrotate.d/pyhang-trace"))
    r = sh(["dpkg", "--root=" + root, "--force-depends", "-P", "pyhang-trace"], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(os.path.join(root, "usr/sbin/pyhang-trace"))


def test_deb_lintian(deb):
    assert shutil.which("lintian"), "lintian missing: `make deps` installs it"
    r = sh(["lintian", "--fail-on", "error,warning", deb], timeout=300)
    print(r.stdout + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"^[EW]: ", r.stdout, re.M), r.stdout


def test_hang_codes_documented_alike(binary):
    """The hang codes (user/tracer/diagnose.h DIAG_CODES, but `long_wait`, which is no hang)
    are the ones the man page lists under `hang`, --help names in its `hang` paragraph and
    README's `hang` row: a new code must reach all three."""
    text = help_text(binary)
    para = text.split("\n  hang ", 1)[1].split("\n  hang_end ", 1)[0]
    in_help = set(re.findall(r"\b([a-z]+(?:_[a-z]+)+|deadlock)\b", para))
    m = re.search(r"^\.B hang\n(.*?)(?=^\.TP)", man_section("EVENTS"), re.S | re.M)
    in_man = set(re.findall(r"^\.BR? ([a-z_]+)", m.group(1), re.M)) - {"long_wait"}
    with open(os.path.join(ROOT, "README.md")) as f:
        row = next(l for l in f if l.startswith("| `hang` |"))
    in_readme = set(re.findall(r"`([a-z_]+)`", row.split("Codes:", 1)[1].split("A `hang` is reported", 1)[0]))
    with open(os.path.join(ROOT, "user", "tracer", "diagnose.h")) as f:
        codes = set(re.findall(r'X\(DIAG_[A-Z_]+, "([a-z_]+)"\)', f.read())) - {"long_wait"}
    assert len(codes) >= 14, sorted(codes)
    assert in_man == codes, "only in the man page: %s; not in it: %s" % (
        sorted(in_man - codes), sorted(codes - in_man))
    assert in_help == in_man, "only in --help: %s; only in the man page: %s" % (
        sorted(in_help - in_man), sorted(in_man - in_help))
    assert in_man <= in_readme, sorted(in_man - in_readme)
