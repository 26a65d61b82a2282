"""The queue of new processes to read is fair between users (issue 12).

An unprivileged attacker (user nobody) starts fake `python3` programs (copies of sleep)
at 250 a second, each living 10 s: every one is an exec of "Python" that the tracer queues
to be read and described to the kernel's stack walker, and a fake never becomes readable,
so its entry stays for its life. Before: the 1,024-entry queue was full of them, and a real
Python process of another user started meanwhile was never described (its SIGCHLD change
came with stack_status unknown_layout, its exec check counted as exec_check_queue_full).
Now when the queue is full, a newcomer whose user holds fewer entries takes the oldest
entry of the user holding the most, and users with fewer entries are served first: the
victims (another unprivileged user) are described within the usual milliseconds and their
events carry their stacks. The tracer runs host-wide, started without a terminal; normal
and ASan builds.
"""
import os
import subprocess
import time


from conftest import NOBODY, SYSTEM_PYTHON
from harness import read_line
from harness import Tracer

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
ROOT = os.path.dirname(HERE)
FLOOD = os.path.join(PROGRAMS, "fake_python_flood.py")
VICTIM = os.path.join(PROGRAMS, "rl_victim.py")
VICTIMS = 4
# the victims: another unprivileged user (root's share is busy with the other tests' work
# on a shared test host)
OTHER_USER = ["setpriv", "--reuid=65533", "--regid=65533", "--clear-groups", "--inh-caps=-all", "--"]




def test_fake_python_flood_by_nobody_does_not_delay_others(reg, tool):
    tr = Tracer(reg, tool, ["--json", "-q"])
    tr.wait_start()
    att = reg.popen(NOBODY + [SYSTEM_PYTHON, FLOOD, "18", "250", "10", "6"], stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, bufsize=0)
    assert read_line(att, 20, "attacker started") == "started"
    time.sleep(8)  # the queue is as full as the attacker can make it
    victims = []
    for _ in range(VICTIMS):
        v = reg.hanging(OTHER_USER + [SYSTEM_PYTHON, VICTIM], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        victims.append((v, int(read_line(v, 20, "victim pid").split()[1])))
        time.sleep(0.3)
    time.sleep(1.0)  # a Python process is described within milliseconds of its exec
    for v, _ in victims:
        v.stdin.write(b"go\n")
        read_line(v, 30, "victim child")
    for _, vpid in victims:
        tr.wait_for(lambda e: e.get("event") == "child_status_lost" and e.get("pid") == vpid, 20,
                    "victim's child_status_lost")
    done = read_line(att, 40, "attacker done")
    assert tr.stop(timeout=60) == 0, tr.describe()  # ASan, on a busy host
    for v, _ in victims:
        v.stdin.write(b"exit\n")
    stop = tr.select("stop")[0]
    statuses = [(tr.select("sigchld_ignored", pid=vpid)[0].get("stack_status"),
                 tr.select("child_status_lost", pid=vpid)[0].get("stack_status")) for _, vpid in victims]
    print("\nattacker: %s; victims' stacks: %s; stop.lost %r" % (done, statuses, stop["lost"]))
    assert int(done.split()[1]) > 2000, done
    # the attacker's own entries beyond its share were refused, and counted
    assert stop["lost"]["exec_check_queue_full"] > 0, stop
    assert statuses == [("ok", "ok")] * VICTIMS, statuses
    for _, vpid in victims:
        ev = tr.select("child_status_lost", pid=vpid)[0]
        assert any(f["function"] == "lose_status" for f in ev["stack"]), ev["stack"]
