"""The asyncio mode of idle_io.py (3.7+), in a module of its own: 2.7 and 3.6 cannot parse
`async def`.  See idle_io.py."""
import asyncio
import threading

from progutil import report


def run(QUIET, started, wait_tids):
    def client_thread():
        loop = asyncio.new_event_loop()

        async def client():
            reader, writer = await asyncio.open_connection(*QUIET.getsockname())
            started()
            await reader.read(16)  # MARK: aread
        loop.run_until_complete(client())

    t = threading.Thread(target=client_thread, name="aioclient")
    t.daemon = True
    t.start()

    def event_thread():  # a lost wake-up: its loop idles in its selector, yet it is stuck
        loop = asyncio.new_event_loop()

        async def waiter():
            ev = asyncio.Event()
            started()
            await ev.wait()  # MARK: aevent
        loop.run_until_complete(waiter())

    t = threading.Thread(target=event_thread, name="aioevent")
    t.daemon = True
    t.start()

    async def handler(reader, writer):
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        report("selfpipe", asyncio.get_event_loop()._ssock.fileno())
        started("MainThread")
        wait_tids(3)
        report("ready")
        await server.serve_forever()  # MARK: serve

    asyncio.run(main())


