"""worker_died is not claimed for a wait whose holder is a live thread (found by `make test`
beside a build loop: the suite tracer saw io_waits.py's lock waiter "never get the result of"
a child that the test's cleanup had killed, while the lock's holder, a live thread in recv(),
could release it any time).

Every interpreter, one tracer: each program's child is killed by SIGKILL after its waiter's
long_wait; the tracer looks at the wait again (1, 2, 4 s later) with the child's death in its
table.  Expected: no `hang`, and the waiter's `waiting_for` names its holder.
"""
import os
import signal
import subprocess
import time

from conftest import INTERPRETERS
from harness import Registry, Tracer, alarm_guard, read_line

HERE = os.path.dirname(os.path.abspath(__file__))
PROG = os.path.join(HERE, "programs", "died_holder.py")


def test_dead_child_is_not_the_culprit_of_a_held_lock(binary):
    reg = Registry()
    jobs = {}
    try:
        with alarm_guard(120, "worker_died with a live holder"):
            for label, python, _ in INTERPRETERS:
                p = reg.popen([python, PROG], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
                pid = int(read_line(p, 30, label).split()[1])
                child = int(read_line(p, 30, label).split()[1])
                tid = int(read_line(p, 30, label).split()[2])
                assert read_line(p, 30, label) == "ready"
                jobs[label] = (p, pid, child, tid)
            args = ["--json", "-t", "1"]
            for p, pid, child, tid in jobs.values():
                args += ["-p", str(pid)]
            tr = Tracer(reg, binary, args)
            tr.wait_start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                    tr.select("long_wait", pid=pid, tid=tid) for _, pid, _, tid in jobs.values()):
                time.sleep(0.2)
            for p, pid, child, tid in jobs.values():
                os.kill(child, signal.SIGKILL)
            time.sleep(6)  # the second looks at 1, 2 and 4 s see the death
            rc = tr.stop()
    finally:
        reg.cleanup()
    assert rc == 0, tr.describe()
    for label, (p, pid, child, tid) in jobs.items():
        lw = tr.select("long_wait", pid=pid, tid=tid)
        assert lw, (label, tr.describe())
        hangs = tr.select("hang", pid=pid)
        assert not hangs, (label, [h["diagnosis"]["summary"] for h in hangs])
        wf = lw[0].get("waiting_for") or {}
        assert (wf.get("holder") or {}).get("name") == "holder", (label, wf)
