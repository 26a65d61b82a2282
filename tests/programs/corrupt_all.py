# Plants corrupt interpreter structures in this process's own memory (ctypes), on every
# CPython version (2.7, 3.6-3.13), each in a thread that never runs Python code again
# (blocked forever on a lock), so that the process itself stays alive:
#   cycle        the caller's frame points back at the innermost one (<= 3.10: frame object
#                f_back; 3.11+: _PyInterpreterFrame.previous): a 2-frame cycle
#   bad_code     the caller's frame's code pointer is garbage
#   fake_name    the code object's co_name (and co_qualname, 3.11+) is a fake str object
#                that claims 2**40 characters
#   huge_table   the code object's line table (co_lnotab <= 3.9, co_linetable 3.10+) is a
#                fake bytes object that claims 2**40 bytes
#   endless_table  a real line table of 2 MiB that never reaches the frame's position
#                (<= 3.10: zero address advances; 3.11+: line deltas of +2**30, where an
#                int would overflow)
#   healthy      a normal thread: its stack must still come out right
# and finally the thread-state list loops: the last thread state's `next` points back at
# the first one. The GC is disabled: it must never traverse the damaged frames.
# Every offset is checked against the live object before it is written (the values are
# those of /work/shared/reference/cpython-internals.md); a mismatch exits with status 3.
#
# stdout: "ready PID" then one line "tid NAME TID" per thread.
import ctypes
import gc
import os
import sys
import threading

gc.disable()
V = sys.version_info[:2]
PY2 = V[0] == 2
FOREVER = threading.Lock()
FOREVER.acquire()
started = threading.Semaphore(0)
LIBC = ctypes.CDLL(None)
KEEP = []  # fake objects and buffers: never freed
TIDS = {}

# offsets (bytes), by version, from the reference table
F_BACK = 24                     # <= 3.10 frame object f_back
F_CODE = 32                     # <= 3.10 frame object f_code
FO_F_FRAME = 24                 # 3.11+ PyFrameObject.f_frame -> _PyInterpreterFrame
IF_PREVIOUS = 48 if V == (3, 11) else 8    # 3.11: previous 48; 3.12/3.13: 8
IF_CODE = 32 if V == (3, 11) else 0        # 3.11: f_code 32; 3.12/3.13: f_executable 0
CO_NAME = {(2, 7): 88, (3, 6): 104, (3, 7): 104}.get(V, 112 if V < (3, 11) else 120)
CO_QUALNAME = 128               # 3.11+
CO_LINES = {(2, 7): 104, (3, 6): 112, (3, 7): 112}.get(V, 120 if V < (3, 11) else 136)
TS_NEXT = 0 if PY2 else 8       # tstate->next
STR_DATA = 36 if PY2 else (40 if V >= (3, 12) else 48)  # 2.7 PyString ob_sval; compact ASCII
BYTES_DATA = 36 if PY2 else 32  # ob_sval of 2.7 str / 3.x bytes; ob_size at 16 in both
HUGE = 1 << 40


def u64(addr):
    return ctypes.c_uint64.from_address(addr).value


def poke(addr, value):
    ctypes.c_uint64.from_address(addr).value = value


def check(cond, what):
    if not cond:
        sys.stderr.write("corrupt_all.py: offset check failed: %s (Python %s)\n" % (what, V))
        sys.stderr.flush()
        os._exit(3)


def fake_object(type_obj, size, header):
    """A buffer that looks like an object of type_obj: refcount huge (never freed), type,
    then `header` (list of (offset, u64)); the rest is zero."""
    buf = ctypes.create_string_buffer(size)
    KEEP.append(buf)
    a = ctypes.addressof(buf)
    poke(a, 1 << 40)
    poke(a + 8, id(type_obj))
    for off, val in header:
        poke(a + off, val)
    return a


def fake_str(text):
    """A str (2.7: PyStringObject; 3.x: compact ASCII PEP 393) that claims 2**40
    characters while holding only `text`."""
    if PY2:  # ob_size 16, ob_shash 24 (-1), ob_sstate 32 (0), ob_sval 36
        a = fake_object(str, 256, [(16, HUGE), (24, (1 << 64) - 1)])
    else:  # length 16, hash 24 (-1), state 32: kind 1 (bits 2-4), compact (5), ascii (6),
        # ready (7, <= 3.11; 3.12+ that bit is "statically allocated")
        state = (1 << 2) | (1 << 5) | (1 << 6) | ((1 << 7) if V < (3, 12) else 0)
        a = fake_object(str, 256, [(16, HUGE), (24, (1 << 64) - 1), (32, state)])
    ctypes.memmove(a + STR_DATA, text, len(text))
    return a


def fake_bytes_huge():
    """A bytes object (2.7: str) that claims 2**40 bytes; holds 16 zero bytes."""
    return fake_object(bytes, 256, [(16, HUGE), (24, (1 << 64) - 1)])


def code_of(fn):
    return fn.__code__


def line_table_obj(code):
    return code.co_lnotab if V < (3, 10) else code.co_linetable


def endless_table():
    if V <= (3, 10):
        # <= 3.9 (addr delta, line delta) / 3.10 (byte delta, line delta): addr never moves
        return b"\x00\x01" * (1 << 20)
    # 3.11+: entries of code 14 (long form) covering 1 code unit each, with an svarint
    # line delta of +2**30 (6-bit varint chunks, 0x40 = more): the line passes INT_MAX
    # after two entries
    entry = bytes([0x80 | (14 << 3) | 0, 0x40, 0x40, 0x40, 0x40, 0x40, 0x02, 0, 0, 0])
    return entry * ((2 << 20) // len(entry))


# ---- the threads -----------------------------------------------------------------------

def blocked(name):
    TIDS[name] = LIBC.syscall(186)  # gettid
    started.release()
    FOREVER.acquire()


def cycle_inner():
    blocked("cycle")


def cycle():
    cycle_inner()


def bad_code_inner():
    blocked("bad_code")


def bad_code():
    bad_code_inner()


def make(name):
    """A function `name` with its own code object (the corruption is per code object)."""
    g = {"blocked": blocked}
    exec("def %s():\n    blocked(%r)\n" % (name, name), g)
    return g[name]


fake_name = make("fake_name")
huge_table = make("huge_table")
endless = make("endless_table")
ENDLESS_TABLE = endless_table()


def healthy_inner():
    blocked("healthy")


def healthy():
    healthy_inner()


threads = {}
for fn, name in ((cycle, "cycle"), (bad_code, "bad_code"), (fake_name, "fake_name"),
                 (huge_table, "huge_table"), (endless, "endless_table"),
                 (healthy, "healthy")):
    t = threading.Thread(target=fn, name=name)
    t.daemon = True
    threads[name] = t
    t.start()
for _ in threads:
    started.acquire()
# every thread is now in (or about to enter) FOREVER.acquire(): wait until each is in the
# futex wait, so that none executes Python code while its structures are changed
for name, tid in TIDS.items():
    for _ in range(500):
        try:
            with open("/proc/%d/task/%d/syscall" % (os.getpid(), tid)) as f:
                if f.read().split()[0] == "202":
                    break
        except (OSError, IndexError):
            pass
        import time
        time.sleep(0.01)

frames = sys._current_frames()
KEEP.append(frames)


def thread_frame(name, function):
    """The frame object of `function` in thread `name`."""
    f = frames[threads[name].ident]
    while f is not None and f.f_code.co_name != function:
        f = f.f_back
    check(f is not None, "frame of %s in %s" % (function, name))
    KEEP.append(f)
    return f


def iframe(f):
    """3.11+: the _PyInterpreterFrame of frame object f."""
    a = u64(id(f) + FO_F_FRAME)
    check(u64(a + IF_CODE) == id(f.f_code), "_PyInterpreterFrame code")
    return a


# cycle: cycle()'s frame -> back/previous -> cycle_inner()'s frame
inner, outer = thread_frame("cycle", "cycle_inner"), thread_frame("cycle", "cycle")
if V <= (3, 10):
    check(u64(id(inner) + F_BACK) == id(outer), "f_back")
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(inner))  # the new reference f_back holds
    poke(id(outer) + F_BACK, id(inner))
else:
    check(u64(iframe(inner) + IF_PREVIOUS) == iframe(outer), "_PyInterpreterFrame.previous")
    poke(iframe(outer) + IF_PREVIOUS, iframe(inner))

# bad_code: bad_code()'s frame has a garbage code pointer
outer = thread_frame("bad_code", "bad_code")
if V <= (3, 10):
    check(u64(id(outer) + F_CODE) == id(outer.f_code), "f_code")
    poke(id(outer) + F_CODE, 0x12345678)
else:
    poke(iframe(outer) + IF_CODE, 0x12345678)

# fake_name: co_name (and co_qualname) -> a str claiming 2**40 characters
c = code_of(fake_name)
check(u64(id(c) + CO_NAME) == id(c.co_name), "co_name")
fake = fake_str(b"fake_name_that_claims_2**40_chars")
poke(id(c) + CO_NAME, fake)
if V >= (3, 11):
    check(u64(id(c) + CO_QUALNAME) == id(c.co_qualname), "co_qualname")
    poke(id(c) + CO_QUALNAME, fake)

# huge_table: the line table -> a bytes object claiming 2**40 bytes
c = code_of(huge_table)
check(u64(id(c) + CO_LINES) == id(line_table_obj(c)), "line table")
poke(id(c) + CO_LINES, fake_bytes_huge())

# endless_table: a real 2 MiB line table that never ends where it should
c = code_of(endless)
check(u64(id(c) + CO_LINES) == id(line_table_obj(c)), "line table")
KEEP.append(ENDLESS_TABLE)
poke(id(c) + CO_LINES, id(ENDLESS_TABLE))

# the thread-state list loops: the last thread state's next -> the first
api = ctypes.pythonapi
for fn in (api.PyInterpreterState_Head, api.PyInterpreterState_ThreadHead,
           api.PyThreadState_Next):
    fn.restype = ctypes.c_void_p
api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
head = api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Head())
check(head and u64(head + TS_NEXT) == (api.PyThreadState_Next(head) or 0), "tstate->next")
tail, n = head, 0
while api.PyThreadState_Next(tail) and n < 100:
    tail, n = api.PyThreadState_Next(tail), n + 1
check(n == len(threads), "thread count %d" % n)
poke(tail + TS_NEXT, head)

sys.stdout.write("ready %d\n" % os.getpid())
for name, tid in sorted(TIDS.items()):
    sys.stdout.write("tid %s %d\n" % (name, tid))
sys.stdout.flush()
FOREVER.acquire()
