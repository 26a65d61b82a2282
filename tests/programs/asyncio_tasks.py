# asyncio programs for tests/test_asyncio.py (3.7+; 2.7 and 3.6: asyncio_plain.py).
# Usage: asyncio_tasks.py MODE
#   tasks    named tasks awaiting a sleep, an Event, a Queue and each other (a gather, a
#            chain of tasks), then idle; prints one JSON line describing its own tasks,
#            as the program itself sees them (names, await chains with lines, what each
#            awaits), then "ready"
#   blocked  a coroutine calls time.sleep() on the loop's thread
#   selfwait a coroutine calls run_coroutine_threadsafe(c, loop).result() on the loop's thread
#   selfwait2 the same once c already runs as a task of the loop (it sleeps)
#   release  like blocked, until SIGUSR1 (its handler raises): then the loop idles
#   cycle    two tasks await each other
#   server   a healthy asyncio TCP server idle on its socket, a connected client idle, a
#            ticker task; exits by itself after argv[2] seconds (default 6)
# Every mode prints "pid <pid>" first. Lines are flushed.
import json
import os
import sys
import time


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


say("pid %d" % os.getpid())
MODE = sys.argv[1]

import asyncio  # noqa: E402
import types  # noqa: E402

NAMED = sys.version_info >= (3, 8)


def create(coro, name):
    if NAMED:
        return asyncio.get_event_loop().create_task(coro, name=name)
    return asyncio.get_event_loop().create_task(coro)


def chain_of(task):
    """The task's await chain as this program sees it: (function, line) outermost first."""
    out = []
    c = task._coro
    for _ in range(64):
        if not isinstance(c, (types.CoroutineType, types.GeneratorType)):
            break
        f = c.cr_frame if isinstance(c, types.CoroutineType) else c.gi_frame
        if f is None:
            break
        out.append([f.f_code.co_name, f.f_lineno, f.f_code.co_filename])
        c = c.cr_await if isinstance(c, types.CoroutineType) else c.gi_yieldfrom
    return out


async def sleeper():
    await asyncio.sleep(3600)


async def eventer(ev):
    await ev.wait()


async def getter(q):
    await q.get()


async def chain_mid(t):
    await t


async def chain_top(t):
    await t


async def tasks_main():
    ev = asyncio.Event()
    q = asyncio.Queue()
    me = asyncio.current_task() if hasattr(asyncio, "current_task") else asyncio.Task.current_task()
    s = create(sleeper(), "sleeper")
    e = create(eventer(ev), "eventer")
    g = create(getter(q), "getter")
    mid = create(chain_mid(e), "chain-mid")
    top = create(chain_top(mid), "chain-top")
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    plan = ((s, "sleep", None), (e, "event", None), (g, "queue", None),
            (mid, "task", e), (top, "task", mid), (me, "gather", None))
    # a task's key: its name (3.8+), else its coroutine's function (3.7 has no names)
    keys = {}
    for t, _, _ in plan:
        keys[id(t)] = t.get_name() if NAMED else (chain_of(t)[0][0] if t is not me else "tasks_main")
    facts = {}
    for t, kind, awaits in plan:
        facts[keys[id(t)]] = {
            "name": keys[id(t)] if NAMED else None,
            "chain": chain_of(t) if t is not me else [],  # me runs now: its chain moves
            "kind": kind,
            "awaits": keys[id(awaits)] if awaits is not None else None}
    facts[keys[id(s)]]["wakes_at_monotonic"] = t0 + 3600 - 0.2
    say(json.dumps({"tasks": facts, "gather": [keys[id(x)] for x in (s, g, top)]}))
    say("ready")
    await asyncio.gather(s, g, top)


async def blocked():
    say("ready")
    time.sleep(3600)  # MARK: blocking


class Unblock(Exception):
    pass


def unblock(signum, frame):
    raise Unblock()


async def release():
    import signal
    signal.signal(signal.SIGUSR1, unblock)
    say("ready")
    try:
        time.sleep(3600)  # MARK: release
    except Unblock:
        say("unblocked")
    await asyncio.sleep(3600)


async def other():
    return 1


async def selfwait():
    loop = asyncio.get_event_loop()
    say("ready")
    asyncio.run_coroutine_threadsafe(other(), loop).result()  # MARK: selfwait


async def long_other():
    await asyncio.sleep(3600)


async def selfwait2():
    loop = asyncio.get_event_loop()
    fut = asyncio.run_coroutine_threadsafe(long_other(), loop)
    await asyncio.sleep(0.05)  # the loop runs run_coroutine_threadsafe's callback
    say("ready")
    fut.result()  # MARK: selfwait2


async def cycle():
    box = {}

    async def first():
        await box["b"]

    async def second():
        await box["a"]
    box["a"] = create(first(), "cycle-a")
    box["b"] = create(second(), "cycle-b")
    say("ready")
    await asyncio.gather(box["a"], box["b"])


async def server(seconds):
    async def handle(reader, writer):
        await reader.read(100)
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def ticker():
        while True:
            await asyncio.sleep(0.3)
    t = create(ticker(), "ticker")
    say("ready")
    await asyncio.sleep(seconds)
    t.cancel()
    writer.close()
    srv.close()
    say("done")


loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
if MODE == "tasks":
    loop.run_until_complete(tasks_main())
elif MODE == "blocked":
    loop.run_until_complete(blocked())
elif MODE == "selfwait":
    loop.run_until_complete(selfwait())
elif MODE == "release":
    loop.run_until_complete(release())
elif MODE == "selfwait2":
    loop.run_until_complete(selfwait2())
elif MODE == "cycle":
    loop.run_until_complete(cycle())
elif MODE == "server":
    loop.run_until_complete(server(float(sys.argv[2]) if len(sys.argv) > 2 else 6.0))
