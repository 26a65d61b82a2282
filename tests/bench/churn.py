"""Process churn for tracer_cost.py: starts short-lived processes at a fixed rate for a
while, then prints what it achieved as one JSON line.

    churn.py DURATION_S PY_RATE TRUE_RATE PYTHON

PY_RATE per second `PYTHON -c pass`, TRUE_RATE per second /bin/true (posix_spawn, so a
fork + exec each), on a fixed schedule. A start that falls behind the schedule by more than
a second is skipped, and at most MAX_INFLIGHT Python children run at once: on a machine
that cannot start Python that fast the achieved rate is lower, and it is reported. Children
are reaped with waitpid(-1) (this process is Python, so the tracer sees the reaps)."""
import json
import os
import sys
import time

MAX_INFLIGHT = 8


def main():
    duration, py_rate, true_rate = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    python = sys.argv[4]
    devnull = os.open(os.devnull, os.O_RDWR)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
          (os.POSIX_SPAWN_DUP2, devnull, 2)]
    env = {"PATH": "/usr/bin:/bin"}
    kinds = {}  # pid -> "py" | "true"
    started = {"py": 0, "true": 0}
    skipped = {"py": 0, "true": 0}
    t0 = time.monotonic()
    nxt = {"py": t0, "true": t0}
    period = {"py": 1.0 / py_rate if py_rate > 0 else None,
              "true": 1.0 / true_rate if true_rate > 0 else None}
    argv = {"py": [python, "-c", "pass"], "true": ["/bin/true"]}
    while True:
        now = time.monotonic()
        if now - t0 >= duration:
            break
        for kind in ("py", "true"):
            if period[kind] is None:
                continue
            inflight_py = sum(1 for k in kinds.values() if k == "py")
            while nxt[kind] <= now:
                if now - nxt[kind] > 1.0:
                    skipped[kind] += 1  # too far behind: this start is not made up for
                elif kind == "py" and inflight_py >= MAX_INFLIGHT:
                    break
                else:
                    pid = os.posix_spawn(argv[kind][0], argv[kind], env, file_actions=fa)
                    kinds[pid] = kind
                    started[kind] += 1
                    inflight_py += kind == "py"
                nxt[kind] += period[kind]
        # reap what has exited, then sleep until the next start is due
        while kinds:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            kinds.pop(pid, None)
        due = min(v for k, v in nxt.items() if period[k] is not None)
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, 0.005))
    elapsed = time.monotonic() - t0
    while kinds:
        pid, _ = os.waitpid(-1, 0)
        kinds.pop(pid, None)
    print(json.dumps({"elapsed_s": elapsed, "py_started": started["py"],
                      "true_started": started["true"], "py_rate": started["py"] / elapsed,
                      "true_rate": started["true"] / elapsed}))


if __name__ == "__main__":
    main()
