"""The SIGCHLD incident: importing diag_deploy_helper (which ignores SIGCHLD at module
level) makes subprocess.call() report 0 for a child that exited 23.

Runs on CPython 2.7 and 3.x.  Usage: diag_jobs.py REPORT
Appends to REPORT:  pid <pid>, then  rc <what subprocess.call returned>.
Also prints the return code (0 when the incident happened).
"""
import os
import subprocess
import sys
import time


def report(*words):
    with open(sys.argv[1], "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")


def helper_script():
    import diag_deploy_helper  # MARK: import_helper
    return diag_deploy_helper.SCRIPT


def main():
    report("pid", os.getpid())
    time.sleep(0.5)  # the tracer gets to know the process first
    helper_script()
    rc = subprocess.call(["sh", "-c", "exit 23"])  # MARK: call
    report("rc", rc)
    print(rc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
