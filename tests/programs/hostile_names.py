# Hostile names everywhere a reader of this process looks: the script's own path (the test
# copies it into a directory whose name holds a newline, ESC [31m, invalid UTF-8 and text
# that looks like JSON), a thread name, a function whose co_name/co_qualname and
# co_filename are hostile (a code object rebuilt with them), the kernel's thread names
# (prctl PR_SET_NAME) and, after "go" on stdin, a child whose comm (exec'd through a
# symlink with a hostile name) and argv are hostile, whose exit status is lost because
# SIGCHLD is ignored. Every thread then blocks forever. Runs on CPython 2.7 and 3.x.
#
# stdout (one line each): "ready PID HOSTILE_TID", after go: "done CHILD_PID".
# Usage: hostile_names.py SH_LINK   (SH_LINK: a symlink to /bin/sh with a hostile name)
import ctypes
import os
import signal
import subprocess
import sys
import threading
import types

PY2 = sys.version_info[0] == 2
FOREVER = threading.Lock()
FOREVER.acquire()
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15

if PY2:
    # a str of 2.7 is bytes: invalid UTF-8 is the byte itself
    HOSTILE = b'ev\nil\x1b[31m\r"}, {"evil": 1, "x": "\x01\x7f\xe2\x80\xa8\xc3\xa9\xc2\x9b\xff\t\\'
else:
    # lone surrogate \udcff: what Python makes of an invalid UTF-8 byte (surrogateescape)
    HOSTILE = u'ev\nil\x1b[31m\r"}, {"evil": 1, "x": "\x01\x7f\u2028\u00e9\u009b\udcff\t\\'
COMM = b'\x1b[31m"}\n\xff\x01{"e":1'  # 16 bytes: the kernel keeps the first 15


def gettid():
    return LIBC.syscall(186)  # SYS_gettid, x86_64


def set_comm(name):
    LIBC.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def blocker():
    FOREVER.acquire()


def hostile_function(name, filename):
    """blocker() with its code object's name, qualified name and file name replaced."""
    c = blocker.__code__
    if hasattr(c, "replace"):  # 3.8+
        kw = {"co_name": name, "co_filename": filename}
        if sys.version_info >= (3, 11):
            kw["co_qualname"] = name
        c = c.replace(**kw)
    elif PY2:
        c = types.CodeType(c.co_argcount, c.co_nlocals, c.co_stacksize, c.co_flags, c.co_code,
                           c.co_consts, c.co_names, c.co_varnames, filename, name,
                           c.co_firstlineno, c.co_lnotab, c.co_freevars, c.co_cellvars)
    else:  # 3.6, 3.7
        c = types.CodeType(c.co_argcount, c.co_kwonlyargcount, c.co_nlocals, c.co_stacksize,
                           c.co_flags, c.co_code, c.co_consts, c.co_names, c.co_varnames,
                           filename, name, c.co_firstlineno, c.co_lnotab, c.co_freevars,
                           c.co_cellvars)
    return types.FunctionType(c, globals(), "hostile")


tids = []
started = threading.Semaphore(0)


def hostile_thread_main(fn):
    tids.append(gettid())
    set_comm(COMM)
    started.release()
    fn()


fn = hostile_function(HOSTILE + ("-func" if not PY2 else b"-func"),
                      HOSTILE + ("-file" if not PY2 else b"-file"))
t = threading.Thread(target=hostile_thread_main, args=(fn,),
                     name=HOSTILE + ("-thread" if not PY2 else b"-thread"))
t.daemon = True
t.start()
started.acquire()
set_comm(COMM)  # the main thread: the process's comm
sys.stdout.write("ready %d %d\n" % (os.getpid(), tids[0]))
sys.stdout.flush()

if sys.stdin.readline().strip() == "go":
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    argv = [sys.argv[1], "-c", "exit 3", "arg\n1", "\x1b[31mred", b"\xff\xfe-bytes",
            '"}, {"evil": 1', "\x01\x7f"]
    if PY2:
        argv = [a if isinstance(a, bytes) else a.encode() for a in argv]
    p = subprocess.Popen(argv)
    p.wait()  # ECHILD: the status is lost, subprocess says 0
    sys.stdout.write("done %d\n" % p.pid)
    sys.stdout.flush()
FOREVER.acquire()
