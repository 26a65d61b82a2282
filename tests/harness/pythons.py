"""Where the binaries and the CPython interpreters are: the one place for these paths.

Interpreters come from three places, deduplicated by real path:
  * every `python*` executable under `$(pyenv root)/versions/*/bin` (or ~/.pyenv),
  * Debian's /usr/bin/python3.11 and any python2*/python3* on PATH,
  * PYHANG_PYTHONS, a colon-separated list of extra interpreter paths.
Finding none is an error, never a skip (interpreter_params() makes it a failing case).
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
PROGRAMS = os.path.join(TESTS, "programs")
BINARY = os.environ.get("PYHANG_BINARY", os.path.join(ROOT, "build", "pyhang-trace"))
ASAN_BINARY = os.environ.get("PYHANG_ASAN_BINARY", os.path.join(ROOT, "build", "pyhang-trace-asan"))
# Debian's static non-PIE build where present: what an attacker test runs as user nobody
SYSTEM_PYTHON = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else "/usr/bin/python3"
# Debian's own python3, the one with python3-pytest and python3-yaml installed
HOST_PYTHON = "/usr/bin/python3"
# run a command as user nobody, no groups, no inheritable capabilities (attacker tests)
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]


def _pyenv_root():
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.path.expanduser("~/.pyenv")


def _version_of(path):
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def discover_interpreters():
    """Return a list of (label, path, version) for every distinct interpreter found."""
    candidates = []
    for d in sorted(glob.glob(os.path.join(_pyenv_root(), "versions", "*", "bin"))):
        names = sorted(n for n in os.listdir(d) if re.fullmatch(r"python\d\.\d+", n))
        candidates.extend(os.path.join(d, n) for n in names[:1])
    candidates.append("/usr/bin/python3.11")
    for name in ("python2", "python3"):
        p = shutil.which(name)
        if p:
            candidates.append(p)
    extra = os.environ.get("PYHANG_PYTHONS", "")
    candidates.extend(p for p in extra.split(":") if p)

    seen, found = set(), []
    for path in candidates:
        if not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        if real in seen or "/shims/" in path:
            continue
        version = _version_of(path)
        if version is None:
            continue
        seen.add(real)
        kind = "debian" if real.startswith("/usr/bin/") else "pyenv" if "/.pyenv/" in real else "other"
        found.append(("%s-%s" % (kind, version), path, version))
    return found


INTERPRETERS = discover_interpreters()


def interpreter_params():
    """Parametrize over every interpreter; an empty list becomes one failing case."""
    if not INTERPRETERS:
        return [pytest.param(None, id="no-interpreter-found")]
    return [pytest.param(p, id=label) for label, p, _ in INTERPRETERS]


INTERPRETER_PATHS = [path for _, path, _ in INTERPRETERS]


def mark_line(path, name):
    """Line number (1-based) of the one `# MARK: name` comment (at a line's end) in the
    program at path; fails when there is none or more than one."""
    with open(path) as f:
        hits = [i + 1 for i, l in enumerate(f) if re.search(r"#\s*MARK:\s*%s\s*$" % re.escape(name), l)]
    assert len(hits) == 1, "%s: want exactly one '# MARK: %s', found lines %r" % (path, name, hits)
    return hits[0]
