# An attacker against the tracer's per-file cost (issue 12): every PERIOD seconds it writes
# a fresh copy (a new inode: no cache can know it) of TEMPLATE, a small program whose
# section headers claim 128 MiB of symbol tables in a sparse hole, as DIR/N/python3.11,
# and execs it; that program sleeps PERIOD seconds and execs this script again.
# Usage: hostile_elf.py READY_FILE DIR TEMPLATE REAL_BYTES PERIOD [ROUND]
# READY_FILE gets "PID ROUND" before each exec of a copy (written via a rename).
import os
import sys

READY, DIR, TEMPLATE = sys.argv[1], sys.argv[2], sys.argv[3]
REAL, PERIOD = int(sys.argv[4]), sys.argv[5]
ROUND = int(sys.argv[6]) if len(sys.argv) > 6 else 0
SELF = os.path.abspath(__file__)

with open(TEMPLATE, "rb") as f:
    head = f.read(REAL)
total = os.path.getsize(TEMPLATE)
d = os.path.join(DIR, str(ROUND % 4))
if not os.path.isdir(d):
    os.mkdir(d)
path = os.path.join(d, "python3.11")
if os.path.exists(path):
    os.unlink(path)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
os.write(fd, head)
os.ftruncate(fd, total)  # the rest is a hole: costs the attacker nothing
os.close(fd)
with open(READY + ".tmp", "w") as f:
    f.write("%d %d" % (os.getpid(), ROUND))
os.rename(READY + ".tmp", READY)
os.execv(path, [path, PERIOD, sys.executable, SELF, READY, DIR, TEMPLATE, str(REAL), PERIOD,
                str(ROUND + 1)])
