"""conftest.py of the pytest run tests/test_guard.py guards: writes when pytest is done."""
import os
import time


def pytest_unconfigure(config):
    with open(os.environ["GUARD_REPORT"], "a") as f:
        f.write("done %.6f\n" % time.monotonic())
