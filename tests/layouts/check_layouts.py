#!/usr/bin/env python3
"""check_layouts: the layout table (pylayout.c) against each installed interpreter's own headers.

    tests/layouts/check_layouts.py TABLE_DUMP PROBE_C [CC]

TABLE_DUMP is the table_dump tool (linked with pylayout.c) that prints the table as
"X.Y field value" lines. For every interpreter found (pyenv: `pyenv root`/versions/*, and
Debian's /usr/include/python3.*), PROBE_C is compiled with that interpreter's headers
(internal ones with Py_BUILD_CORE) and run: it prints offsetof()/sizeof() of the CPython
member behind every table field it knows for that version. Any difference fails, naming
the interpreter, the field, the header's value and the table's value. Table fields the
headers cannot check (structs private to a .c file) are listed as unchecked. An installed
version the table does not hold fails too. Run by `make check-layouts` (part of `make test`).
"""
import glob
import os
import re
import subprocess
import sys
import tempfile


def interpreters():
    """(label, include dirs) of every interpreter with headers installed here."""
    found = []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        root = os.path.expanduser("~/.pyenv")
    for d in sorted(glob.glob(os.path.join(root, "versions", "*"))):
        for inc in sorted(glob.glob(os.path.join(d, "include", "python*"))):
            found.append(("pyenv " + os.path.basename(d), [inc]))
    for inc in sorted(glob.glob("/usr/include/python3.*")):
        name = os.path.basename(inc)
        arch = glob.glob("/usr/include/*-linux-gnu/" + name)
        found.append(("Debian " + name, [inc] + arch))
    return found


def version_of(incs):
    text = open(os.path.join(incs[0], "patchlevel.h")).read()
    major = re.search(r"#define\s+PY_MAJOR_VERSION\s+(\d+)", text).group(1)
    minor = re.search(r"#define\s+PY_MINOR_VERSION\s+(\d+)", text).group(1)
    return "%s.%s" % (major, minor)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dump, probe = sys.argv[1], sys.argv[2]
    cc = sys.argv[3] if len(sys.argv) > 3 else "cc"
    table = {}
    for line in subprocess.run([dump], capture_output=True, text=True, check=True).stdout.split("\n"):
        if line:
            ver, field, value = line.split()
            table.setdefault(ver, {})[field] = int(value)
    interps = interpreters()
    if not interps:
        sys.exit("check-layouts: no interpreter headers found (pyenv or /usr/include/python3.*)")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, incs in interps:
            ver = version_of(incs)
            if ver not in table:
                failures.append("%s (CPython %s): not in the layout table" % (label, ver))
                continue
            exe = os.path.join(tmp, "probe")
            args = [cc, "-w", "-o", exe, probe]
            for inc in incs:
                args += ["-I" + inc, "-I" + os.path.join(inc, "internal")]
            r = subprocess.run(args, capture_output=True, text=True)
            if r.returncode != 0:
                failures.append("%s (CPython %s): the probe does not compile against its "
                                "headers:\n%s" % (label, ver, r.stderr[-2000:]))
                continue
            out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
            header = {f: int(v) for f, v in (l.split() for l in out.split("\n") if l)}
            bad = 0
            for field, value in header.items():
                if field not in table[ver]:
                    failures.append("%s: the probe prints %s, which the table lacks" % (label, field))
                elif table[ver][field] != value:
                    bad += 1
                    failures.append("%s (CPython %s): %s: header value %d, table value %d" %
                                    (label, ver, field, value, table[ver][field]))
            unchecked = sorted(f for f, v in table[ver].items()
                               if f not in header and v not in (0, 0xff))
            print("check-layouts: %-22s CPython %-5s %2d fields checked, %d wrong%s" %
                  (label, ver, len(header), bad,
                   "; unchecked (not in headers): " + ", ".join(unchecked) if unchecked else ""))
    if failures:
        for f in failures:
            print("check-layouts: MISMATCH " + f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
