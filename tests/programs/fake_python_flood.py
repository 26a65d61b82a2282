"""An attacker for tests/test_fairqueue.py: a steady flood of fake `python3` processes.

Usage: fake_python_flood.py SECONDS RATE LIFE PARENTS
Copies /bin/sleep to a private directory as `python3` (the kernel side takes any program
named python* for Python, and the tracer queues it to be read), then PARENTS processes
start RATE / PARENTS fakes a second each, for SECONDS; each fake lives LIFE seconds. Prints
"started" at once and "done <n started>" at the end, then kills every fake and exits.
Runs as any user, on CPython 2.7 and 3.x.
"""
import os
import shutil
import signal
import sys
import tempfile
import time


def spawner(fake, seconds, rate, life, r):
    started = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        due = int((time.time() - t0) * rate)
        while started < due:
            if hasattr(os, "posix_spawn"):  # 3.8+: vfork, much faster than fork
                os.posix_spawn(fake, [fake, str(life)], {})
            else:
                os.spawnv(os.P_NOWAIT, fake, [fake, str(life)])
            started += 1
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except OSError:
            pass
        time.sleep(0.01)
    os.write(r, b"%d\n" % started)


def main():
    seconds, rate, life, parents = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    d = tempfile.mkdtemp(prefix="fakepy-")
    fake = os.path.join(d, "python3")
    shutil.copy("/bin/sleep", fake)
    os.chmod(fake, 0o755)
    rd, wr = os.pipe()
    for _ in range(parents):
        if os.fork() == 0:
            os.close(rd)
            spawner(fake, seconds, rate / parents, life, wr)
            os._exit(0)
    os.close(wr)
    print("started")
    sys.stdout.flush()
    total = 0
    with os.fdopen(rd, "rb") as f:
        for line in f:
            total += int(line)
    print("done %d" % total)
    sys.stdout.flush()
    shutil.rmtree(d, ignore_errors=True)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)  # the fakes still sleeping (own group: run with setsid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
