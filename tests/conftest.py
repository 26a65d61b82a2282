"""Shared fixtures: the built binary, the CPython interpreters to test against, a process
Registry per test, the per-test deadline and the suite tracer.

The code lives in the harness package (tests/harness/): pythons.py finds the interpreters,
procs.py the Registry, fixtures.py the deadline and the suite tracer.  The names below stay
importable from conftest for the benchmarks and the fuzz seed script.
"""
import os

import pytest

from harness.fixtures import SUMMARY, _test_deadline, suite_tracer  # noqa: F401 (fixtures)
from harness.pythons import (ASAN_BINARY, BINARY, HOST_PYTHON, INTERPRETERS, NOBODY,  # noqa: F401
                             ROOT, SYSTEM_PYTHON, discover_interpreters, interpreter_params)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "asan_rerun: run again against the ASan build by `make test` (every test "
        "that uses a module-scoped *_session fixture has it: one tracer, many code paths)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(n.endswith("_session") for n in getattr(item, "fixturenames", ())):
            item.add_marker("asan_rerun")


def pytest_report_header(config):
    if not INTERPRETERS:
        return "interpreters: NONE FOUND"
    return "interpreters: " + ", ".join(label for label, _, _ in INTERPRETERS)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("interpreters tested: " +
                                (", ".join(l for l, _, _ in INTERPRETERS) or "NONE"))
    for line in SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def binary():
    assert os.path.exists(BINARY), "build the tool first (make): %s missing" % BINARY
    return BINARY


@pytest.fixture(params=interpreter_params())
def python(request):
    assert request.param is not None, "no Python interpreter found (pyenv, PATH, PYHANG_PYTHONS)"
    return request.param


@pytest.fixture
def reg():
    """A Registry of the test's processes, all killed (with their groups) at the end."""
    from harness import Registry
    r = Registry()
    yield r
    r.cleanup()


@pytest.fixture(params=["build", "asan"])
def tool(request):
    """The normal and the ASan+UBSan build, for tests that must hold on both."""
    path = BINARY if request.param == "build" else ASAN_BINARY
    assert os.path.exists(path), "build it first (make; make asan): %s" % path
    return path
