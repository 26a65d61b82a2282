# Maps one file COUNT times (default 40,000), at a long path, so that /proc/PID/maps is
# over 9 MB and the interpreter's own mappings (high addresses) come last: the reader must
# read it whole. mmap(2) through ctypes (mmap.mmap would keep a file descriptor for each).
# Valid on Python 2.7 and 3.x. Usage: many_maps.py READY_FILE DIR [COUNT]
import ctypes
import os
import sys
import threading

READY, DIR = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 40000
PAGE = os.sysconf("SC_PAGE_SIZE")
PROT_READ, MAP_SHARED = 1, 1
path = os.path.join(DIR, "m" * 200)
with open(path, "wb") as f:
    f.write(b"\0" * PAGE)
fd = os.open(path, os.O_RDONLY)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
for _ in range(COUNT):
    if libc.mmap(None, PAGE, PROT_READ, MAP_SHARED, fd, 0) in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
threading.Event().wait(3600)
