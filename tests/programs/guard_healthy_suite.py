"""A healthy pytest test module (copied by tests/test_guard.py): a worker thread that
finishes, and one test that passes or fails as GUARD_OUTCOME says."""
import os
import threading


def test_outcome():
    done = []
    t = threading.Thread(target=lambda: done.append(1), name="short-worker")
    t.start()
    t.join()
    assert done == [1]
    assert os.environ.get("GUARD_OUTCOME", "pass") == "pass"
