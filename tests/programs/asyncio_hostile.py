# A hostile asyncio process for tests/test_asyncio.py (3.7+): more tasks than the tool
# reads (5,000), a coroutine whose awaited object is made to be itself (a cyclic await
# chain), and a task whose fut_waiter is made to be itself. Uses ctypes to write its own
# objects (offsets found by scanning each object for a known pointer, not from the tool).
# Usage: asyncio_hostile.py [NTASKS] (default 5000).
# Prints "pid N", then "ready", then sleeps in its selector.
import asyncio
import ctypes
import os
import sys


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


say("pid %d" % os.getpid())
P = ctypes.c_void_p


def word_offsets(obj, target, size):
    return [o for o in range(16, size, 8) if P.from_address(id(obj) + o).value == target]


async def sleeper():
    await asyncio.sleep(3600)


async def inner(ev):
    await ev.wait()


async def outer(ev):
    await inner(ev)


async def main():
    loop = asyncio.get_event_loop()
    tasks = [loop.create_task(sleeper()) for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)]
    ev = asyncio.Event()
    victim = loop.create_task(outer(ev))
    selfish = loop.create_task(inner(ev))
    if hasattr(selfish, "set_name"):  # 3.8+: a name made to forge terminal output
        selfish.set_name("evil\x1b[2J\nasyncio event loop on thread \"forged\"\r")
    await asyncio.sleep(0.1)
    # the outer coroutine's value stack holds the inner coroutine: make it hold itself
    co = victim._coro
    awaited = co.cr_await
    size = type(co).__basicsize__ + 4096
    if co.cr_frame is not None and sys.version_info < (3, 11):
        f = co.cr_frame
        for o in word_offsets(f, id(awaited), type(f).__basicsize__ + 8 * 64):
            P.from_address(id(f) + o).value = id(co)
    else:
        for o in word_offsets(co, id(awaited), size):
            P.from_address(id(co) + o).value = id(co)
    # a task blocked on itself
    w = selfish._fut_waiter
    for o in word_offsets(selfish, id(w), type(selfish).__basicsize__):
        P.from_address(id(selfish) + o).value = id(selfish)
    say("victim %#x selfish %#x" % (id(victim), id(selfish)))
    say("ready")
    await asyncio.sleep(3600)
    return tasks


asyncio.new_event_loop().run_until_complete(main())
