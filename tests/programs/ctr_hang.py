"""Hangs at interpreter exit: a non-daemon thread named 'Whisperer-1' blocks on q.get().
Runs on CPython 2.7 and 3.x; used inside a private mount and pid namespace."""
import threading
import time

try:
    import queue
except ImportError:  # 2.7
    import Queue as queue

q = queue.Queue()


def whisper():
    q.get()  # MARK: get


threading.Thread(target=whisper, name="Whisperer-1").start()
time.sleep(0.3)
