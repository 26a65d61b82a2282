# The asyncio program of tests/test_pipe_peers.py (3.7-3.13).
# Task 'runner' awaits communicate() of `sh -c 'sleep 1000 & exit 0'` (stdout a PIPE: the
# grandchild keeps it open after sh exits); task 'waiter' awaits wait() of a `sleep 1000`
# child; task 'reader' reads proc.stdout itself of `sh -c 'sleep 1001 & exit 0'`; task
# 'forged' awaits Process.wait() of a fake Process whose pid is 1 (no child of this
# process). Prints "pid PID", "sub PID" (runner's sh), "waitsub PID", "readsub PID", then
# "ready". Lines are flushed. Dies by itself after 300 s.
import os
import signal
import sys


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


say("pid %d" % os.getpid())
signal.alarm(300)


def asyncio_mode():
    import asyncio

    def create(coro, name):
        loop = asyncio.get_event_loop()
        if sys.version_info >= (3, 8):
            return loop.create_task(coro, name=name)
        return loop.create_task(coro)

    class Process(object):  # a forgery: named like asyncio's, pid 1 is nobody's child here
        pass

    class Transport(object):
        async def _wait(self):
            await asyncio.get_event_loop().create_future()

    async def runner():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "sleep 1000 & exit 0", stdout=asyncio.subprocess.PIPE)
        say("sub %d" % proc.pid)
        await proc.communicate()  # MARK: communicate

    async def waiter():
        proc = await asyncio.create_subprocess_exec("sleep", "1000")
        say("waitsub %d" % proc.pid)
        await proc.wait()  # MARK: wait

    async def reader():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "sleep 1001 & exit 0", stdout=asyncio.subprocess.PIPE)
        say("readsub %d" % proc.pid)
        await proc.stdout.read()  # MARK: stdout

    async def main():
        fake = Process()
        fake.pid = 1
        fake._transport = Transport()
        tasks = [create(runner(), "runner"), create(waiter(), "waiter"), create(reader(), "reader"),
                 create(asyncio.subprocess.Process.wait(fake), "forged")]
        await asyncio.sleep(0.5)
        say("ready")
        await asyncio.gather(*tasks)

    asyncio.get_event_loop().run_until_complete(main())



asyncio_mode()
