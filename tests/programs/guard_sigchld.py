"""Loses one child's exit status: SIGCHLD ignored, then `sh -c 'exit 3'` waited for by
subprocess (which then reports 0). For the child_status_lost annotation of
tests/test_guard.py. Runs on CPython 2.7 and 3.x."""
import signal
import subprocess
import time

time.sleep(0.5)  # the tracer describes the process to the kernel first
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # MARK: ignore
rc = subprocess.call(["sh", "-c", "exit 3"])  # MARK: wait
print("returncode %d" % rc)
