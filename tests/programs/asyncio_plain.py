# For tests/test_asyncio.py on Python 2.7 and 3.6 (whose asyncio the tool does not read):
# imports asyncio where it exists (3.4+; trollius-free 2.7 has none), prints "pid N",
# whether asyncio was imported, "ready", then sleeps.
import os
import sys
import time

try:
    import asyncio  # noqa: F401
    have = "asyncio"
except ImportError:
    have = "none"
sys.stdout.write("pid %d\n%s\nready\n" % (os.getpid(), have))
sys.stdout.flush()
time.sleep(3600)
