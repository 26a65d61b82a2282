# A thread blocks with a corrupted frame chain (<= 3.10 frame objects: f_back at offset 24
# is made to point at the frame itself, a cycle), another with f_code pointing at garbage.
# The reader must cut the chain cleanly. Valid on 2.7 and 3.x (corrupts only <= 3.10).
# Usage: corrupt.py READY_FILE
import ctypes
import os
import sys
import threading

READY = sys.argv[1]
FOREVER = threading.Lock()
FOREVER.acquire()
started = threading.Semaphore(0)
F_BACK, F_CODE = 24, 32


def poke(addr, value):
    ctypes.c_void_p.from_address(addr).value = value


def cyclic():
    f = sys._getframe()
    poke(id(f) + F_BACK, id(f))
    started.release()
    FOREVER.acquire()


def bad_code():
    f = sys._getframe(1)  # the caller's frame: it does not run again
    poke(id(f) + F_CODE, 0x12345678)
    started.release()
    FOREVER.acquire()


def call_bad_code():
    bad_code()


for target in (cyclic, call_bad_code):
    t = threading.Thread(target=target, name=target.__name__)
    t.daemon = True
    t.start()
for _ in range(2):
    started.acquire()
with open(READY + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(READY + ".tmp", READY)
FOREVER.acquire()
