# Makes this process's _PyRuntime lie to an outside reader, one way at a time, for as long
# as the test needs, then puts it back. The interpreter itself does not read what is
# changed while the only thread waits in read() on stdin:
#   3.13 (_Py_DebugOffsets, the first member of _PyRuntime; CPython never reads it):
#     cookie          "xdebugpy" -> "xdebugpX"
#     version         0x030d00f0 -> 0x0a0b0c0d
#     offsets_out     thread_state.next (RT+168) -> 2**40, outside its struct
#     offsets_wrong   thread_state.next -> the value of thread_state.interp (in bounds,
#                     wrong: a reader then takes the interpreter for the next thread state)
#   2.7-3.12 (the head of the interpreter list: interp_head for 2.7/3.6, found in
#   PyInterpreterState_Head's code `48 8b 05 disp32; c3`; _PyRuntime+24 on 3.7, +32 on
#   3.8-3.10, +40 on 3.11/3.12):
#     head_garbage    -> 0x0000dead0000bee0
#     head_self       -> the address of the head pointer itself
# Protocol: prints "ready PID PHASE..."; then for each line PHASE on stdin: changes it,
# prints "applied PHASE"; the next line (any) restores it: "restored".
import ctypes
import os
import sys

V = sys.version_info[:2]
api = ctypes.pythonapi
api.PyInterpreterState_Head.restype = ctypes.c_void_p


def u64(addr):
    return ctypes.c_uint64.from_address(addr).value


def fail(what):
    sys.stderr.write("corrupt_runtime.py: %s (Python %s)\n" % (what, V))
    sys.exit(3)


if V >= (3, 13):
    rt = ctypes.addressof(ctypes.c_char.in_dll(api, "_PyRuntime"))
    if ctypes.string_at(rt, 8) != b"xdebugpy":
        fail("no _Py_DebugOffsets cookie")
    TS_NEXT_OFF, TS_INTERP_OFF = rt + 168, rt + 176  # thread_state.next / .interp offsets
    PHASES = {
        "cookie": (rt, u64(rt) ^ (ord("y") ^ ord("X")) << 56),
        "version": (rt + 8, 0x0a0b0c0d),
        "offsets_out": (TS_NEXT_OFF, 1 << 40),
        "offsets_wrong": (TS_NEXT_OFF, u64(TS_INTERP_OFF)),
    }
else:
    if V <= (3, 6):  # interp_head is static: take it from PyInterpreterState_Head's code
        fn = ctypes.cast(api.PyInterpreterState_Head, ctypes.c_void_p).value
        code = bytearray(ctypes.string_at(fn, 8))
        if code[:3] != b"\x48\x8b\x05" or code[7] != 0xc3:
            fail("PyInterpreterState_Head is not `mov disp32(%rip),%rax; ret`")
        head = fn + 7 + ctypes.c_int32.from_buffer_copy(bytes(code[3:7])).value
    else:
        rt = ctypes.addressof(ctypes.c_char.in_dll(api, "_PyRuntime"))
        head = rt + {(3, 7): 24, (3, 8): 32, (3, 9): 32, (3, 10): 32}.get(V, 40)
    if u64(head) != api.PyInterpreterState_Head():
        fail("the interpreters head is not where expected")
    PHASES = {"head_garbage": (head, 0x0000dead0000bee0), "head_self": (head, head)}

sys.stdout.write("ready %d %s\n" % (os.getpid(), " ".join(sorted(PHASES))))
sys.stdout.flush()
while True:
    phase = sys.stdin.readline().strip()
    if not phase:
        break
    addr, value = PHASES[phase]
    cell = ctypes.c_uint64.from_address(addr)
    saved = cell.value
    cell.value = value
    sys.stdout.write("applied %s\n" % phase)
    sys.stdout.flush()
    sys.stdin.readline()  # only read(): nothing here uses what was changed
    cell.value = saved
    sys.stdout.write("restored\n")
    sys.stdout.flush()
