"""Nothing outlives the tracer: however it ends (SIGKILL, SIGTERM, --duration), its BPF
programs, links, maps and BTF are gone shortly after, nothing is pinned, tracefs is as it
was, and no other process holds any of them.

The tracer's own objects are identified exactly, while it runs, from its file descriptors
(/proc/PID/fd -> anon_inode:bpf-prog / bpf-map / bpf_link / btf / [perf_event], ids from
/proc/PID/fdinfo), never by name: other tracers may run on the same host at the same time.
`bpftool -j {prog,link,map,btf} show` must list them while it runs (and by their names),
and must not list them a short, bounded while after it ended (the kernel frees them when
the last reference goes, via RCU and a workqueue).

Modes: host-wide, -p PID, -- COMMAND (the command outlives a killed tracer: it must not
have inherited a single BPF or perf fd), and the userspace scanner fallback (the cpu-clock
perf_event_open refused through an LD_PRELOAD shim over libc's syscall()).
"""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from harness import START_TIMEOUT, SYSTEM_PYTHON, kill_group

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK_PROG = os.path.join(HERE, "programs", "trace_lock_hang.py")
PYTHON = SYSTEM_PYTHON
GONE_TIMEOUT = 10.0

FD_KINDS = {"anon_inode:bpf-prog": ("prog", "prog_id"), "anon_inode:bpf-map": ("map", "map_id"),
            "anon_inode:bpf_link": ("link", "link_id"), "anon_inode:btf": ("btf", "btf_id")}
# a few of ours, as bpftool names them (full names, from the programs' BTF)
PROG_NAMES = {"futex_enter", "futex_exit", "scan_tick", "scan_manual", "sigaction_enter", "on_exec"}
MAP_NAMES = {"watched", "waits", "wait_slots", "watch_slots", "events", "stats", "pyprocs"}
ALL_PROG_NAMES = {"futex_enter", "futex_exit", "futex_wait2_enter", "futex_wait2_exit",
                  "futex_waitv_enter", "futex_waitv_exit", "scan_tick", "scan_manual",
                  "sigaction_enter", "sigaction_exit", "wait4_enter", "waitid_enter",
                  "wait4_exit", "waitid_exit", "on_fork", "on_exec", "on_exit", "clock_sample",
                  "on_signal_deliver", "restart_syscall_enter", "restart_syscall_exit",
                  "on_oom_victim"}
TRACEFS = "/sys/kernel/tracing"
OUR_EVENTS = ["syscalls/sys_%s_%s" % (d, n) for d in ("enter", "exit")
              for n in ("futex", "futex_wait", "futex_waitv", "rt_sigaction", "wait4", "waitid",
                        "restart_syscall")] + \
             ["sched/sched_process_%s" % n for n in ("fork", "exec", "exit")] + ["signal/signal_deliver"] + \
             ["oom/mark_victim"]

SHIM_C = r"""
/* Refuses the cpu-clock perf event (the in-kernel scanner) and nothing else. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_perf_event_open) {
		const struct perf_event_attr *attr = (const struct perf_event_attr *)a[0];
		if (attr->type == PERF_TYPE_SOFTWARE && attr->config == PERF_COUNT_SW_CPU_CLOCK) {
			errno = EACCES;
			return -1;
		}
	}
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""


TEST_DEADLINE_S = 120   # per test (harness/fixtures.py: the deadline fixture)



def fd_objects(pid):
    """{"prog"|"map"|"link"|"btf": {id, ...}, "perf": number of perf_event fds} of a process."""
    objs = {"prog": set(), "map": set(), "link": set(), "btf": set(), "perf": 0}
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            target = os.readlink(os.path.join(fddir, fd))
            if target == "anon_inode:[perf_event]":
                objs["perf"] += 1
                continue
            if target not in FD_KINDS:
                continue
            kind, key = FD_KINDS[target]
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        objs[kind].add(int(line.split()[1]))
        except OSError:
            pass  # an fd closed meanwhile
    return objs


def bpftool(kind):
    out = subprocess.run(["bpftool", "-j", kind, "show"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert out.returncode == 0, "bpftool %s show: %s" % (kind, out.stderr.decode())
    return json.loads(out.stdout.decode() or "[]")


def listed():
    """{"prog"|"map"|"link"|"btf": {id: name}} as bpftool lists them now."""
    return dict((k, dict((o["id"], o.get("name", "")) for o in bpftool(k)))
                for k in ("prog", "map", "link", "btf"))


def pins():
    found = set()
    for root, dirs, files in os.walk("/sys/fs/bpf"):
        for n in dirs + files:
            found.add(os.path.join(root, n))
    return found


def tracefs_state():
    """What a BPF tool could leave behind in tracefs: probe definitions, instances, event
    enables (of the events we attach to) and the global switches."""
    state = {}
    for name in ("kprobe_events", "uprobe_events", "dynamic_events", "set_event", "tracing_on",
                 "current_tracer"):
        try:
            with open(os.path.join(TRACEFS, name)) as f:
                state[name] = f.read()
        except OSError:
            state[name] = None
    state["instances"] = sorted(os.listdir(os.path.join(TRACEFS, "instances")))
    for ev in OUR_EVENTS:
        try:
            with open(os.path.join(TRACEFS, "events", ev, "enable")) as f:
                state[ev] = f.read()
        except OSError:
            state[ev] = None
    return state


def holders(ids):
    """Processes other than the dead tracer still holding one of our objects."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            objs = fd_objects(int(d))
        except OSError:
            continue
        if any(objs[k] & ids[k] for k in ("prog", "map", "link", "btf")):
            found.append(int(d))
    return found


def orphans():
    """Ids of BPF programs and maps with one of our names that no process holds: by an fd,
    or through a perf event (`bpftool perf show`). Such objects are pinned or leaked."""
    now = listed()
    held = {"prog": set(), "map": set()}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                objs = fd_objects(int(d))
            except OSError:
                continue
            held["prog"] |= objs["prog"]
            held["map"] |= objs["map"]
    held["prog"] |= {p["prog_id"] for p in bpftool("perf") if "prog_id" in p}
    return {("prog", i) for i, n in now["prog"].items() if n in ALL_PROG_NAMES and i not in held["prog"]} | \
           {("map", i) for i, n in now["map"].items() if n in MAP_NAMES and i not in held["map"]}


def assert_no_new_orphans(before, timeout=5.0):
    """orphans() has nothing beyond `before` (retried: another tracer on this host may be
    between listing and exiting)."""
    deadline = time.monotonic() + timeout
    while True:
        new = orphans() - before
        if not new:
            return
        assert time.monotonic() < deadline, "BPF objects of ours left, held by nobody: %r" % sorted(new)
        time.sleep(0.2)


def read_events(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    d = tmp_path_factory.mktemp("shim")
    src, so = str(d / "noclock.c"), str(d / "noclock.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.check_call(["cc", "-std=c11", "-O2", "-Wall", "-Werror", "-shared", "-fPIC",
                           "-o", so, src, "-ldl"], timeout=60)
    return so


@pytest.mark.parametrize("ending", ["sigkill", "sigterm", "duration"])
@pytest.mark.parametrize("mode", ["host", "pid", "command", "userspace_scanner"])
def test_nothing_left_behind(reg, binary, shim, tmp_path, mode, ending):
    before_pins, before_tracefs = pins(), tracefs_state()
    out = str(tmp_path / "events.jsonl")
    args = ["--json", "-o", out, "-t", "1"]
    env = dict(os.environ)
    target = None
    if mode == "pid":
        target = reg.hanging([PYTHON, LOCK_PROG, "--gate"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, bufsize=0)
        assert target.stdout.readline().split()[0] == b"ready"
        args += ["-p", str(target.pid)]
    if mode == "userspace_scanner":
        env["LD_PRELOAD"] = shim
    if ending == "duration":
        args += ["--duration", "3"]
    if mode == "command":
        args += ["--", PYTHON, "-c", "import time; time.sleep(60)"]
    err = tempfile.TemporaryFile()
    tr = reg.popen([binary] + args, stdout=subprocess.DEVNULL, stderr=err, env=env)

    def describe():
        err.seek(0)
        return "\n  stderr: %r\n  events: %r" % (err.read().decode("utf-8", "replace")[-800:],
                                                 [e["event"] for e in read_events(out)])

    deadline = time.monotonic() + START_TIMEOUT
    while not any(e["event"] == "start" for e in read_events(out)):
        assert tr.poll() is None, "tracer exited %s%s" % (tr.returncode, describe())
        assert time.monotonic() < deadline, "no start event" + describe()
        time.sleep(0.05)
    start = read_events(out)[0]
    want_scanner = "userspace" if mode == "userspace_scanner" else "perf_event"
    assert start["scanner"] == want_scanner, start

    ours = fd_objects(tr.pid)
    now = listed()
    for k in ("prog", "map", "link", "btf"):
        assert ours[k], "the tracer holds no BPF %s fd: %r" % (k, ours)
        assert ours[k] <= set(now[k]), "bpftool does not list our %ss %r" % (k, ours[k] - set(now[k]))
    assert PROG_NAMES <= {now["prog"][i] for i in ours["prog"]} <= ALL_PROG_NAMES, now["prog"]
    assert MAP_NAMES <= {now["map"][i] for i in ours["map"]}, now["map"]
    assert ours["perf"] > 0
    command = None
    if mode == "command":
        kids = [int(p) for p in open("/proc/%d/task/%d/children" % (tr.pid, tr.pid)).read().split()]
        assert len(kids) == 1, kids
        command = kids[0]
        deadline = time.monotonic() + 10
        while "python" not in os.readlink("/proc/%d/exe" % command):
            assert time.monotonic() < deadline, "the command did not exec"
            time.sleep(0.05)

    if ending == "sigkill":
        tr.send_signal(signal.SIGKILL)
    elif ending == "sigterm":
        tr.send_signal(signal.SIGTERM)
    try:
        rc = tr.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError("tracer did not exit" + describe())
    if ending == "sigkill":
        assert rc == -signal.SIGKILL
    elif mode == "command":
        # SIGTERM: passed on to the command, which dies of it; --duration: the tracer
        # detaches from the still running command (128+SIGTERM, as documented)
        assert rc == 128 + signal.SIGTERM, "exit %s%s" % (rc, describe())
    else:
        assert rc == 0, "exit %s%s" % (rc, describe())

    if command is not None and ending != "sigterm":
        # the tracer is gone, its command still runs: it must hold nothing of the tracer's
        assert os.path.exists("/proc/%d" % command), "the command died with the tracer"
        theirs = fd_objects(command)
        assert not any(theirs[k] for k in ("prog", "map", "link", "btf")) and not theirs["perf"], \
            "the command inherited the tracer's fds: %r" % theirs

    deadline = time.monotonic() + GONE_TIMEOUT
    while True:
        now = listed()
        left = dict((k, ours[k] & set(now[k])) for k in ("prog", "map", "link", "btf"))
        if not any(left.values()):
            break
        if time.monotonic() > deadline:
            raise AssertionError("still there %.0f s after the tracer ended: %r (held by %r)"
                                 % (GONE_TIMEOUT, dict((k, dict((i, now[k][i]) for i in v))
                                                       for k, v in left.items()), holders(ours)))
        time.sleep(0.1)
    perf = [p for p in bpftool("perf") if p.get("prog_id") in ours["prog"]]
    assert not perf, "perf events still run our programs: %r" % perf
    new_pins = pins() - before_pins
    assert not new_pins, "pinned: %r" % sorted(new_pins)
    after = tracefs_state()
    assert after == before_tracefs, "tracefs changed: %r" % dict(
        (k, (before_tracefs.get(k), after.get(k))) for k in after if after.get(k) != before_tracefs.get(k))
    if target is not None:
        kill_group(target)
