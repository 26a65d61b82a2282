# An attacker against the tracer's per-process cost (issue 12): a Python process whose
# /proc/PID/maps is tens of megabytes (COUNT mappings of one file at the end of a path
# DEPTH bytes deep, e.g. 2,000 x 32 KiB = 68 MB), and that re-execs itself every PERIOD
# seconds so that the tracer sees a new Python program, and reads its maps, again and again.
# mmap(2) through ctypes (mmap.mmap would keep a file descriptor for each mapping).
# Usage: hostile_maps.py READY_FILE BASE_DIR [COUNT [DEPTH [PERIOD [ROUND]]]]
# READY_FILE gets "PID ROUND" each time the mappings are in place (written via a rename).
import ctypes
import os
import sys

READY, BASE = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
DEPTH = int(sys.argv[4]) if len(sys.argv) > 4 else 32768
PERIOD = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
ROUND = int(sys.argv[6]) if len(sys.argv) > 6 else 0
PAGE = os.sysconf("SC_PAGE_SIZE")
PROT_READ, MAP_SHARED = 1, 1
NAME = "d" * 250
SELF = os.path.abspath(__file__)

# walk (and the first time create) the deep directory one component at a time: the whole
# path is longer than PATH_MAX, so only relative steps work
os.chdir(BASE)
for _ in range(DEPTH // (len(NAME) + 1)):
    try:
        os.mkdir(NAME)
    except OSError:
        pass
    os.chdir(NAME)
if not os.path.exists("f"):
    with open("f", "wb") as f:
        f.write(b"\0" * PAGE)
fd = os.open("f", os.O_RDONLY)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
for _ in range(COUNT):  # the same offset each time: the kernel cannot merge them
    if libc.mmap(None, PAGE, PROT_READ, MAP_SHARED, fd, 0) in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
os.close(fd)
with open(READY + ".tmp", "w") as f:
    f.write("%d %d" % (os.getpid(), ROUND))
os.rename(READY + ".tmp", READY)
import time
time.sleep(PERIOD)
os.chdir("/")
os.execv(sys.executable, [sys.executable, SELF, READY, BASE, str(COUNT),
                          str(DEPTH), str(PERIOD), str(ROUND + 1)])
