# -*- coding: utf-8 -*-
"""Threads that record traceback.extract_stack() on the exact line where they then block.

Valid on Python 2.7 and 3.x (3.x-only syntax lives in stacks_py3.py). Usage: stacks.py OUT_DIR
Writes OUT_DIR/expect (how many reports will come), then one OUT_DIR/report-N.json per
blocked thread: {"name", "daemon", "tid", "blocks": "lock" | "sleep",
"stack": [[file, line, function], ...] outermost first}. Every thread stays blocked until the
process is killed (non-daemon threads keep it alive).
"""
import ctypes
import json
import os
import sys
import threading
import time
import traceback

try:
    import _thread as thread_module
except ImportError:  # Python 2
    import thread as thread_module

PY3 = sys.version_info[0] >= 3
OUT = sys.argv[1]
FOREVER = threading.Lock()
FOREVER.acquire()
_counter = [0]
_counter_lock = threading.Lock()


def text(s):
    return s if PY3 or not isinstance(s, bytes) else s.decode("utf-8")


def gettid():
    try:
        return int(ctypes.CDLL(None, use_errno=True).syscall(186))  # SYS_gettid, x86_64
    except Exception:
        return 0


def report(stack, blocks):
    t = threading.current_thread()
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    data = {"name": text(t.name), "daemon": bool(t.daemon), "tid": gettid(), "blocks": blocks,
            "stack": [[text(f[0]), f[1], text(f[2])] for f in stack]}
    path = os.path.join(OUT, "report-%d.json" % n)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(data))
    os.rename(path + ".tmp", path)


def recurse(n):
    if n > 0:
        return recurse(n - 1)
    report(traceback.extract_stack(), "lock"); FOREVER.acquire()


def generator():
    yield 1
    report(traceback.extract_stack(), "lock"); FOREVER.acquire()
    yield 2


def run_generator():
    for _ in generator():
        pass


class Worker(object):
    def method(self):
        report(traceback.extract_stack(), "lock"); FOREVER.acquire()


def run_method():
    Worker().method()


def outer():
    def inner():
        report(traceback.extract_stack(), "lock"); FOREVER.acquire()
    inner()


def run_lambda():
    f = lambda: (report(traceback.extract_stack(), "lock"), FOREVER.acquire())
    f()


def run_listcomp():
    return [(report(traceback.extract_stack(), "lock"), FOREVER.acquire()) for _ in range(1)]


def run_genexpr():
    return list((report(traceback.extract_stack(), "lock"), FOREVER.acquire()) for _ in range(1))


def far_line():
    x = 1
    # padding line 0: the blocking line below is far from the def
    # padding line 1: the blocking line below is far from the def
    # padding line 2: the blocking line below is far from the def
    # padding line 3: the blocking line below is far from the def
    # padding line 4: the blocking line below is far from the def
    # padding line 5: the blocking line below is far from the def
    # padding line 6: the blocking line below is far from the def
    # padding line 7: the blocking line below is far from the def
    # padding line 8: the blocking line below is far from the def
    # padding line 9: the blocking line below is far from the def
    # padding line 10: the blocking line below is far from the def
    # padding line 11: the blocking line below is far from the def
    # padding line 12: the blocking line below is far from the def
    # padding line 13: the blocking line below is far from the def
    # padding line 14: the blocking line below is far from the def
    # padding line 15: the blocking line below is far from the def
    # padding line 16: the blocking line below is far from the def
    # padding line 17: the blocking line below is far from the def
    # padding line 18: the blocking line below is far from the def
    # padding line 19: the blocking line below is far from the def
    # padding line 20: the blocking line below is far from the def
    # padding line 21: the blocking line below is far from the def
    # padding line 22: the blocking line below is far from the def
    # padding line 23: the blocking line below is far from the def
    # padding line 24: the blocking line below is far from the def
    # padding line 25: the blocking line below is far from the def
    # padding line 26: the blocking line below is far from the def
    # padding line 27: the blocking line below is far from the def
    # padding line 28: the blocking line below is far from the def
    # padding line 29: the blocking line below is far from the def
    # padding line 30: the blocking line below is far from the def
    # padding line 31: the blocking line below is far from the def
    # padding line 32: the blocking line below is far from the def
    # padding line 33: the blocking line below is far from the def
    # padding line 34: the blocking line below is far from the def
    # padding line 35: the blocking line below is far from the def
    # padding line 36: the blocking line below is far from the def
    # padding line 37: the blocking line below is far from the def
    # padding line 38: the blocking line below is far from the def
    # padding line 39: the blocking line below is far from the def
    # padding line 40: the blocking line below is far from the def
    # padding line 41: the blocking line below is far from the def
    # padding line 42: the blocking line below is far from the def
    # padding line 43: the blocking line below is far from the def
    # padding line 44: the blocking line below is far from the def
    # padding line 45: the blocking line below is far from the def
    # padding line 46: the blocking line below is far from the def
    # padding line 47: the blocking line below is far from the def
    # padding line 48: the blocking line below is far from the def
    # padding line 49: the blocking line below is far from the def
    # padding line 50: the blocking line below is far from the def
    # padding line 51: the blocking line below is far from the def
    # padding line 52: the blocking line below is far from the def
    # padding line 53: the blocking line below is far from the def
    # padding line 54: the blocking line below is far from the def
    # padding line 55: the blocking line below is far from the def
    # padding line 56: the blocking line below is far from the def
    # padding line 57: the blocking line below is far from the def
    # padding line 58: the blocking line below is far from the def
    # padding line 59: the blocking line below is far from the def
    # padding line 60: the blocking line below is far from the def
    # padding line 61: the blocking line below is far from the def
    # padding line 62: the blocking line below is far from the def
    # padding line 63: the blocking line below is far from the def
    # padding line 64: the blocking line below is far from the def
    # padding line 65: the blocking line below is far from the def
    # padding line 66: the blocking line below is far from the def
    # padding line 67: the blocking line below is far from the def
    # padding line 68: the blocking line below is far from the def
    # padding line 69: the blocking line below is far from the def
    # padding line 70: the blocking line below is far from the def
    # padding line 71: the blocking line below is far from the def
    # padding line 72: the blocking line below is far from the def
    # padding line 73: the blocking line below is far from the def
    # padding line 74: the blocking line below is far from the def
    # padding line 75: the blocking line below is far from the def
    # padding line 76: the blocking line below is far from the def
    # padding line 77: the blocking line below is far from the def
    # padding line 78: the blocking line below is far from the def
    # padding line 79: the blocking line below is far from the def
    # padding line 80: the blocking line below is far from the def
    # padding line 81: the blocking line below is far from the def
    # padding line 82: the blocking line below is far from the def
    # padding line 83: the blocking line below is far from the def
    # padding line 84: the blocking line below is far from the def
    # padding line 85: the blocking line below is far from the def
    # padding line 86: the blocking line below is far from the def
    # padding line 87: the blocking line below is far from the def
    # padding line 88: the blocking line below is far from the def
    # padding line 89: the blocking line below is far from the def
    # padding line 90: the blocking line below is far from the def
    # padding line 91: the blocking line below is far from the def
    # padding line 92: the blocking line below is far from the def
    # padding line 93: the blocking line below is far from the def
    # padding line 94: the blocking line below is far from the def
    # padding line 95: the blocking line below is far from the def
    # padding line 96: the blocking line below is far from the def
    # padding line 97: the blocking line below is far from the def
    # padding line 98: the blocking line below is far from the def
    # padding line 99: the blocking line below is far from the def
    # padding line 100: the blocking line below is far from the def
    # padding line 101: the blocking line below is far from the def
    # padding line 102: the blocking line below is far from the def
    # padding line 103: the blocking line below is far from the def
    # padding line 104: the blocking line below is far from the def
    # padding line 105: the blocking line below is far from the def
    # padding line 106: the blocking line below is far from the def
    # padding line 107: the blocking line below is far from the def
    # padding line 108: the blocking line below is far from the def
    # padding line 109: the blocking line below is far from the def
    # padding line 110: the blocking line below is far from the def
    # padding line 111: the blocking line below is far from the def
    # padding line 112: the blocking line below is far from the def
    # padding line 113: the blocking line below is far from the def
    # padding line 114: the blocking line below is far from the def
    # padding line 115: the blocking line below is far from the def
    # padding line 116: the blocking line below is far from the def
    # padding line 117: the blocking line below is far from the def
    # padding line 118: the blocking line below is far from the def
    # padding line 119: the blocking line below is far from the def
    # padding line 120: the blocking line below is far from the def
    # padding line 121: the blocking line below is far from the def
    # padding line 122: the blocking line below is far from the def
    # padding line 123: the blocking line below is far from the def
    # padding line 124: the blocking line below is far from the def
    # padding line 125: the blocking line below is far from the def
    # padding line 126: the blocking line below is far from the def
    # padding line 127: the blocking line below is far from the def
    # padding line 128: the blocking line below is far from the def
    # padding line 129: the blocking line below is far from the def
    # padding line 130: the blocking line below is far from the def
    # padding line 131: the blocking line below is far from the def
    # padding line 132: the blocking line below is far from the def
    # padding line 133: the blocking line below is far from the def
    # padding line 134: the blocking line below is far from the def
    # padding line 135: the blocking line below is far from the def
    # padding line 136: the blocking line below is far from the def
    # padding line 137: the blocking line below is far from the def
    # padding line 138: the blocking line below is far from the def
    # padding line 139: the blocking line below is far from the def
    # padding line 140: the blocking line below is far from the def
    # padding line 141: the blocking line below is far from the def
    # padding line 142: the blocking line below is far from the def
    # padding line 143: the blocking line below is far from the def
    # padding line 144: the blocking line below is far from the def
    # padding line 145: the blocking line below is far from the def
    # padding line 146: the blocking line below is far from the def
    # padding line 147: the blocking line below is far from the def
    # padding line 148: the blocking line below is far from the def
    # padding line 149: the blocking line below is far from the def
    # padding line 150: the blocking line below is far from the def
    # padding line 151: the blocking line below is far from the def
    # padding line 152: the blocking line below is far from the def
    # padding line 153: the blocking line below is far from the def
    # padding line 154: the blocking line below is far from the def
    # padding line 155: the blocking line below is far from the def
    # padding line 156: the blocking line below is far from the def
    # padding line 157: the blocking line below is far from the def
    # padding line 158: the blocking line below is far from the def
    # padding line 159: the blocking line below is far from the def
    # padding line 160: the blocking line below is far from the def
    # padding line 161: the blocking line below is far from the def
    # padding line 162: the blocking line below is far from the def
    # padding line 163: the blocking line below is far from the def
    # padding line 164: the blocking line below is far from the def
    # padding line 165: the blocking line below is far from the def
    # padding line 166: the blocking line below is far from the def
    # padding line 167: the blocking line below is far from the def
    # padding line 168: the blocking line below is far from the def
    # padding line 169: the blocking line below is far from the def
    # padding line 170: the blocking line below is far from the def
    # padding line 171: the blocking line below is far from the def
    # padding line 172: the blocking line below is far from the def
    # padding line 173: the blocking line below is far from the def
    # padding line 174: the blocking line below is far from the def
    # padding line 175: the blocking line below is far from the def
    # padding line 176: the blocking line below is far from the def
    # padding line 177: the blocking line below is far from the def
    # padding line 178: the blocking line below is far from the def
    # padding line 179: the blocking line below is far from the def
    # padding line 180: the blocking line below is far from the def
    # padding line 181: the blocking line below is far from the def
    # padding line 182: the blocking line below is far from the def
    # padding line 183: the blocking line below is far from the def
    # padding line 184: the blocking line below is far from the def
    # padding line 185: the blocking line below is far from the def
    # padding line 186: the blocking line below is far from the def
    # padding line 187: the blocking line below is far from the def
    # padding line 188: the blocking line below is far from the def
    # padding line 189: the blocking line below is far from the def
    # padding line 190: the blocking line below is far from the def
    # padding line 191: the blocking line below is far from the def
    # padding line 192: the blocking line below is far from the def
    # padding line 193: the blocking line below is far from the def
    # padding line 194: the blocking line below is far from the def
    # padding line 195: the blocking line below is far from the def
    # padding line 196: the blocking line below is far from the def
    # padding line 197: the blocking line below is far from the def
    # padding line 198: the blocking line below is far from the def
    # padding line 199: the blocking line below is far from the def
    # padding line 200: the blocking line below is far from the def
    # padding line 201: the blocking line below is far from the def
    # padding line 202: the blocking line below is far from the def
    # padding line 203: the blocking line below is far from the def
    # padding line 204: the blocking line below is far from the def
    # padding line 205: the blocking line below is far from the def
    # padding line 206: the blocking line below is far from the def
    # padding line 207: the blocking line below is far from the def
    # padding line 208: the blocking line below is far from the def
    # padding line 209: the blocking line below is far from the def
    # padding line 210: the blocking line below is far from the def
    # padding line 211: the blocking line below is far from the def
    # padding line 212: the blocking line below is far from the def
    # padding line 213: the blocking line below is far from the def
    # padding line 214: the blocking line below is far from the def
    # padding line 215: the blocking line below is far from the def
    # padding line 216: the blocking line below is far from the def
    # padding line 217: the blocking line below is far from the def
    # padding line 218: the blocking line below is far from the def
    # padding line 219: the blocking line below is far from the def
    # padding line 220: the blocking line below is far from the def
    # padding line 221: the blocking line below is far from the def
    # padding line 222: the blocking line below is far from the def
    # padding line 223: the blocking line below is far from the def
    # padding line 224: the blocking line below is far from the def
    # padding line 225: the blocking line below is far from the def
    # padding line 226: the blocking line below is far from the def
    # padding line 227: the blocking line below is far from the def
    # padding line 228: the blocking line below is far from the def
    # padding line 229: the blocking line below is far from the def
    # padding line 230: the blocking line below is far from the def
    # padding line 231: the blocking line below is far from the def
    # padding line 232: the blocking line below is far from the def
    # padding line 233: the blocking line below is far from the def
    # padding line 234: the blocking line below is far from the def
    # padding line 235: the blocking line below is far from the def
    # padding line 236: the blocking line below is far from the def
    # padding line 237: the blocking line below is far from the def
    # padding line 238: the blocking line below is far from the def
    # padding line 239: the blocking line below is far from the def
    # padding line 240: the blocking line below is far from the def
    # padding line 241: the blocking line below is far from the def
    # padding line 242: the blocking line below is far from the def
    # padding line 243: the blocking line below is far from the def
    # padding line 244: the blocking line below is far from the def
    # padding line 245: the blocking line below is far from the def
    # padding line 246: the blocking line below is far from the def
    # padding line 247: the blocking line below is far from the def
    # padding line 248: the blocking line below is far from the def
    # padding line 249: the blocking line below is far from the def
    # padding line 250: the blocking line below is far from the def
    # padding line 251: the blocking line below is far from the def
    # padding line 252: the blocking line below is far from the def
    # padding line 253: the blocking line below is far from the def
    # padding line 254: the blocking line below is far from the def
    # padding line 255: the blocking line below is far from the def
    # padding line 256: the blocking line below is far from the def
    # padding line 257: the blocking line below is far from the def
    # padding line 258: the blocking line below is far from the def
    # padding line 259: the blocking line below is far from the def
    # padding line 260: the blocking line below is far from the def
    # padding line 261: the blocking line below is far from the def
    # padding line 262: the blocking line below is far from the def
    # padding line 263: the blocking line below is far from the def
    # padding line 264: the blocking line below is far from the def
    # padding line 265: the blocking line below is far from the def
    # padding line 266: the blocking line below is far from the def
    # padding line 267: the blocking line below is far from the def
    # padding line 268: the blocking line below is far from the def
    # padding line 269: the blocking line below is far from the def
    # padding line 270: the blocking line below is far from the def
    # padding line 271: the blocking line below is far from the def
    # padding line 272: the blocking line below is far from the def
    # padding line 273: the blocking line below is far from the def
    # padding line 274: the blocking line below is far from the def
    # padding line 275: the blocking line below is far from the def
    # padding line 276: the blocking line below is far from the def
    # padding line 277: the blocking line below is far from the def
    # padding line 278: the blocking line below is far from the def
    # padding line 279: the blocking line below is far from the def
    # padding line 280: the blocking line below is far from the def
    # padding line 281: the blocking line below is far from the def
    # padding line 282: the blocking line below is far from the def
    # padding line 283: the blocking line below is far from the def
    # padding line 284: the blocking line below is far from the def
    # padding line 285: the blocking line below is far from the def
    # padding line 286: the blocking line below is far from the def
    # padding line 287: the blocking line below is far from the def
    # padding line 288: the blocking line below is far from the def
    # padding line 289: the blocking line below is far from the def
    # padding line 290: the blocking line below is far from the def
    # padding line 291: the blocking line below is far from the def
    # padding line 292: the blocking line below is far from the def
    # padding line 293: the blocking line below is far from the def
    # padding line 294: the blocking line below is far from the def
    # padding line 295: the blocking line below is far from the def
    # padding line 296: the blocking line below is far from the def
    # padding line 297: the blocking line below is far from the def
    # padding line 298: the blocking line below is far from the def
    # padding line 299: the blocking line below is far from the def
    report(traceback.extract_stack(), "lock"); FOREVER.acquire()


def sleeper():
    report(traceback.extract_stack(), "sleep"); time.sleep(100000)


def short_lived():
    return None


def raw_thread():
    report(traceback.extract_stack(), "lock"); FOREVER.acquire()


def start(target, name, daemon=False):
    t = threading.Thread(target=target, name=name)
    t.daemon = daemon
    t.start()
    return t


def main():
    plan = [
        (lambda: recurse(200), "recursion-200", False),
        (run_generator, "generator", False),
        (run_method, "method", True),
        (outer, "nested", False),
        (run_lambda, "lambda", True),
        (run_listcomp, "listcomp", False),
        (run_genexpr, "genexpr", False),
        (far_line, "far-line", False),
        (sleeper, "sleeper", True),
    ]
    extra = []
    if PY3:
        import stacks_py3
        extra = stacks_py3.plan(report, FOREVER)
    non_ascii_name = u"hilo-\u00f1-\u7ebf\u7a0b" if PY3 else "hilo-\xc3\xb1-\xe7\xba\xbf\xe7\xa8\x8b"
    total = len(plan) + len(extra) + 4  # + non-ASCII-named, late, raw and main thread
    with open(os.path.join(OUT, "expect.tmp"), "w") as f:
        f.write(str(total))
    os.rename(os.path.join(OUT, "expect.tmp"), os.path.join(OUT, "expect"))
    early = [start(short_lived, "early-%d" % i) for i in range(3)]
    for target, name, daemon in plan + extra:
        start(target, name, daemon)
    start(lambda: recurse(3), non_ascii_name, True)
    for t in early:
        t.join()
    start(lambda: recurse(1), "late", False)  # started after the early ones exited
    thread_module.start_new_thread(raw_thread, ())
    report(traceback.extract_stack(), "lock"); FOREVER.acquire()


if __name__ == "__main__":
    main()
