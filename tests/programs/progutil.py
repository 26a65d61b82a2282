"""Helpers shared by the test workloads (imported from the script's own directory, which
Python puts first on sys.path). Runs on CPython 2.7 and 3.x."""
import sys
import threading


def gettid():
    """The calling thread's kernel TID (threading.get_native_id is 3.8+)."""
    try:
        return threading.get_native_id()
    except AttributeError:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).syscall(186)  # SYS_gettid, x86_64


def report(*words):
    """Append one line to the report file named by the first argument."""
    with open(sys.argv[1], "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")
