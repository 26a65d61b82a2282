"""Lock ownership scenarios, each with a thread ('runner') that keeps running the whole time.

Runs on CPython 2.7 and 3.x.  Usage: waitfor_locks.py REPORT MODE [KIND]
MODE:
  cycle2   'A' takes l1 then l2, 'B' takes l2 then l1 (a lock-order deadlock)
  cycle3   'A' l1 then l2, 'B' l2 then l3, 'C' l3 then l1
  self     'S' takes l1 and, inside, a helper takes l1 again (non-reentrant: Lock only)
  orphan   'O' acquires an RLock with a bare acquire() and ends; 'W' then waits for it
  sleeper  'H' sleeps 6 s inside `with l1:`; 'W' waits for l1 meanwhile (not a hang)
  join     'J' takes l1 and joins 'W'; 'W' waits for l1 (a deadlock through Thread.join)
KIND: Lock (default), RLock or Condition: what l1, l2, l3 are.
Appends to REPORT:  pid <pid>, then  <thread name> <tid>  for each thread, then  ready.
signal.alarm: the process dies by itself after 90 s.
"""
import os
import signal
import sys
import threading
import time

from progutil import gettid, report

MODE = sys.argv[2]
KIND = sys.argv[3] if len(sys.argv) > 3 else "Lock"
make = {"Lock": threading.Lock, "RLock": threading.RLock, "Condition": threading.Condition}[KIND]
l1, l2, l3 = make(), make(), make()
tids = {}
stop = threading.Event()


def runner():
    tids["runner"] = gettid()
    n = 0
    while not stop.is_set():
        n += sum(range(1000))
        time.sleep(0.01)


def step(first, second, holds, other):
    tids[threading.current_thread().name] = gettid()
    with first:  # MARK: take_first
        holds.set()
        other.wait(30)
        time.sleep(0.2)
        with second:  # MARK: take_second
            pass


def cycle(n):
    locks = [l1, l2, l3][:n]
    events = [threading.Event() for _ in range(n)]
    names = "ABC"[:n]
    ts = []
    for i in range(n):
        ts.append(threading.Thread(target=step, name=names[i], args=(
            locks[i], locks[(i + 1) % n], events[i], events[(i + 1) % n])))
    return ts


def again():
    with l1:  # MARK: self_again
        pass


def self_lock():
    tids["S"] = gettid()
    with l1:  # MARK: self_first
        again()


orphan_gone = threading.Event()
w_started = threading.Event()
rl = threading.RLock()


def orphaner():
    tids["O"] = gettid()
    rl.acquire()  # MARK: orphan_acquire
    # W must exist before O ends: a thread started later may get O's thread ident (the
    # same pthread_t), and an RLock held by that ident is then its own to take again
    w_started.wait(30)


def orphan_waiter():
    tids["W"] = gettid()
    w_started.set()
    orphan_gone.wait(30)
    with rl:  # MARK: orphan_wait
        pass


held = threading.Event()


def holder():
    tids["H"] = gettid()
    with l1:  # MARK: sleeper_holds
        held.set()
        time.sleep(6)  # MARK: sleeper_sleeps


def waiter():
    tids["W"] = gettid()
    held.wait(30)
    with l1:  # MARK: sleeper_waits
        pass


j_holds = threading.Event()


def joiner(w):
    tids["J"] = gettid()
    with l1:  # MARK: join_holds
        j_holds.set()
        w.join()  # MARK: join_waits


def join_worker():
    tids["W"] = gettid()
    j_holds.wait(30)
    with l1:  # MARK: join_worker_waits
        pass


signal.alarm(90)
report("pid", os.getpid())
time.sleep(0.5)  # the tracer gets to know the process first
threads = [threading.Thread(target=runner, name="runner")]
threads[0].daemon = True
if MODE == "cycle2":
    threads += cycle(2)
elif MODE == "cycle3":
    threads += cycle(3)
elif MODE == "self":
    threads.append(threading.Thread(target=self_lock, name="S"))
elif MODE == "orphan":
    threads.append(threading.Thread(target=orphaner, name="O"))
    threads.append(threading.Thread(target=orphan_waiter, name="W"))
elif MODE == "join":
    w = threading.Thread(target=join_worker, name="W")
    threads.append(w)
    threads.append(threading.Thread(target=joiner, name="J", args=(w,)))
elif MODE == "sleeper":
    threads.append(threading.Thread(target=holder, name="H"))
    threads.append(threading.Thread(target=waiter, name="W"))
for t in threads:
    t.daemon = True
    t.start()
while len(tids) < len(threads):
    time.sleep(0.01)
if MODE == "orphan":
    threads[1].join()
    orphan_gone.set()
for name in sorted(tids):
    report(name, tids[name])
report("ready")
if MODE == "sleeper":
    threads[2].join()
    threads[1].join()
    stop.set()
    report("done")
else:
    time.sleep(85)
