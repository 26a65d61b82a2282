#!/usr/bin/python3
"""Regenerate the fuzzers' seed corpora (tests/fuzz/corpus/NAME/) from the CPython
interpreters installed here (tests/conftest.py finds them: pyenv, Debian's static 3.11).

For each interpreter:
  pyreader/     a snapshot of a live process (tests/fuzz/seed, through the real reader):
                named threads (ASCII, Latin-1, BMP and astral names: every PEP 393 width,
                2.7 str and unicode), daemon and not, a few frames deep, a generator frame
  debugoffsets/ 3.13+: the _Py_DebugOffsets block of that process
  scan/         2.7-3.9: that process scanned for its interpreter without symbols
  lines/        line tables of a few code objects with positions inside them
  elfsym/       libpython (or the executable), cut to what user/os/elfsym.c reads: headers,
                section names, and symbol tables trimmed to the symbols we look up plus a
                few dozen others (every other section keeps its header, not its bytes)
Usage: seed.py --seed-tool build/fuzz/seed --out tests/fuzz/corpus
"""
import argparse
import os
import select
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from conftest import discover_interpreters  # noqa: E402

VERSIONS = ["2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]

# Works on 2.7 and every 3.x: u"" literals, no f-strings.
WORKLOAD = r'''
import sys, threading, time
stop = threading.Event()
def leaf(n):
    stop.wait()
def middle(n):
    if n:
        return middle(n - 1)
    leaf(n)
def gen():
    yield stop.wait()
def run_gen():
    for _ in gen():
        pass
names = [u"ascii-worker", u"caf\xe9-latin1", u"\u03a9mega-bmp", u"smile-\U0001f600"]
ts = []
for i, name in enumerate(names):
    t = threading.Thread(target=middle if i % 2 else run_gen, args=(i + 2,) if i % 2 else ())
    if sys.version_info[0] == 2:
        t._Thread__name = name  # 2.7's name setter str()s it: keep the unicode object
    else:
        t.name = name
    t.daemon = bool(i % 2)
    t.start()
    ts.append(t)
if sys.version_info[0] == 2:
    ts.append(threading.Thread(target=leaf, args=(0,), name="bytes-name-27"))
    ts[-1].start()
sys.stdout.write("ready\n")
sys.stdout.flush()
middle(3)
'''

# Prints "kind first pos tablehex" lines for a few code objects (position kinds as the
# reader uses them: f_lasti bytes <= 3.9, code units 3.10, byte offsets 3.11+).
LINES = r'''
import sys, threading, json
def sample(a, b):
    x = a + b
    for i in range(3):
        x += i
        if x > 10:
            break
    try:
        y = x / 0
    except ZeroDivisionError:
        y = None
    return [x, y,
            a]
codes = [sample.__code__ if hasattr(sample, "__code__") else sample.func_code,
         threading.Thread.run.__code__ if hasattr(threading.Thread.run, "__code__")
         else threading.Thread.run.im_func.func_code,
         json.dumps.__code__ if hasattr(json.dumps, "__code__") else json.dumps.func_code]
v = sys.version_info
for co in codes:
    if v >= (3, 10):
        table = co.co_linetable
    else:
        table = co.co_lnotab
    n = len(co.co_code)
    for pos in sorted(set([0, n // 4, n // 2, n - 2 if n >= 2 else 0])):
        if v[:2] == (3, 10):
            pos //= 2
        hexed = table.hex() if hasattr(table, "hex") else table.encode("hex")
        sys.stdout.write("%d %d %s\n" % (co.co_firstlineno, pos, hexed))
'''

WANT_SYMS = {b"_PyRuntime", b"Py_Version", b"PyInterpreterState_Head", b"interp_head",
             b"_PyThreadState_Current", b"PyCode_Type", b"PyUnicode_Type", b"PyString_Type",
             b"PyBytes_Type", b"PyDict_Type", b"_Py_TrueStruct", b"interpreter_lock",
             b"gil_cond", b"gil_mutex", b"switch_cond", b"switch_mutex", b"Py_Initialize",
             b"PyUnicodeUCS4_FromString", b"PyUnicodeUCS2_FromString"}
KEEP_OTHERS = 24


def version_index(version):
    return VERSIONS.index(".".join(version.split(".")[:2]))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def start_workload(py):
    p = subprocess.Popen([py, "-c", WORKLOAD], stdout=subprocess.PIPE)
    ready, _, _ = select.select([p.stdout], [], [], 30)
    line = p.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        p.kill()
        raise RuntimeError("%s: workload did not start" % py)
    time.sleep(0.3)
    return p


def mapped_python_file(pid):
    """libpython if the process maps one, else its executable."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]).startswith("libpython"):
                return parts[5]
    return os.path.realpath("/proc/%d/exe" % pid)


def snapshot(seed_tool, py, out, name):
    p = start_workload(py)
    try:
        elf = mapped_python_file(p.pid)
        os.kill(p.pid, signal.SIGSTOP)
        try:
            rc = subprocess.run([seed_tool, str(p.pid), out, name]).returncode
        finally:
            os.kill(p.pid, signal.SIGCONT)
        if rc != 0:
            print("seed.py: %s: snapshot failed" % name, file=sys.stderr)
    finally:
        p.kill()
        p.wait()
    return elf


def line_seeds(py, out, name, vindex):
    res = subprocess.run([py, "-c", LINES], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        print("seed.py: %s: line tables: %s" % (name, res.stderr), file=sys.stderr)
        return
    for k, line in enumerate(res.stdout.split("\n")):
        if not line.strip():
            continue
        first, pos, hexed = line.split(" ") if line.count(" ") == 2 else line.split(" ") + [""]
        data = struct.pack("<Biq", vindex, int(first), int(pos)) + bytes.fromhex(hexed)
        write(os.path.join(out, "lines", "%s-%d" % (name, k)), data)


def _strtab_name(strtab, off):
    end = strtab.find(b"\0", off)
    return strtab[off:end if end >= 0 else len(strtab)]


def _trim_symtab(data, sh, shdrs):
    """Symbols we look up plus the first few others, with a fresh string table."""
    off, size, link = sh["offset"], sh["size"], sh["link"]
    strsh = shdrs[link]
    strtab = data[strsh["offset"]:strsh["offset"] + strsh["size"]]
    syms, newstr, others = [], bytearray(b"\0"), 0
    for i in range(size // 24):
        sym = bytearray(data[off + 24 * i:off + 24 * i + 24])
        nm = _strtab_name(strtab, struct.unpack_from("<I", sym, 0)[0])
        if i > 0 and nm not in WANT_SYMS:
            if others >= KEEP_OTHERS:
                continue
            others += 1
        struct.pack_into("<I", sym, 0, len(newstr) if nm else 0)
        if nm:
            newstr += nm + b"\0"
        syms.append(bytes(sym))
    return b"".join(syms), bytes(newstr)


def compact_elf(path):
    data = open(path, "rb").read()
    (e_phoff, e_shoff) = struct.unpack_from("<QQ", data, 32)
    (e_phnum,) = struct.unpack_from("<H", data, 56)
    (e_shnum, e_shstrndx) = struct.unpack_from("<HH", data, 60)
    shdrs = []
    for i in range(e_shnum):
        f = struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + 64 * i)
        shdrs.append(dict(name=f[0], type=f[1], offset=f[4], size=f[5], link=f[6], raw=list(f)))
    out = bytearray(data[:64]) + data[e_phoff:e_phoff + 56 * e_phnum]
    new = {}  # section index -> (offset, size)
    for i, sh in enumerate(shdrs):
        if sh["type"] in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
            syms, strs = _trim_symtab(data, sh, shdrs)
            new[i] = (len(out), len(syms))
            out += syms
            new[sh["link"]] = (len(out), len(strs))
            out += strs
    if e_shstrndx < e_shnum and e_shstrndx not in new:
        sh = shdrs[e_shstrndx]
        new[e_shstrndx] = (len(out), sh["size"])
        out += data[sh["offset"]:sh["offset"] + sh["size"]]
    while len(out) % 8:
        out += b"\0"
    shoff = len(out)
    for i, sh in enumerate(shdrs):
        f = sh["raw"]
        f[4], f[5] = new.get(i, (0, f[5]))
        out += struct.pack("<IIQQQQIIQQ", *f)
    struct.pack_into("<Q", out, 32, 64)  # e_phoff
    struct.pack_into("<Q", out, 40, shoff)
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-tool", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for sub in ("pyreader", "debugoffsets", "lines", "elfsym", "scan"):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
    for label, py, version in discover_interpreters():
        name = label
        vindex = version_index(version)
        elf = snapshot(args.seed_tool, py, args.out, name)
        line_seeds(py, args.out, name, vindex)
        write(os.path.join(args.out, "elfsym", name), compact_elf(elf))
        print("seed.py: %s (%s): done" % (name, elf))


if __name__ == "__main__":
    main()
