"""Line-table facts from the interpreters themselves, for tests/unit/test_linetable.c.

Run by `make unit` with the harness's Python (any 3.x):
    gen_linetables.py OUTDIR            writes OUTDIR/<label>.txt for every interpreter that
                                        tests/harness/pythons.py finds (and prints the list)
and, inside each interpreter (2.7 and 3.6+ alike):
    gen_linetables.py --emit            prints the facts of that interpreter to stdout

Facts: the code objects of a sample below (large and negative line jumps, long bodies,
lines without code, nested functions and comprehensions) and of the interpreter's own
threading.py; for each, its raw line table exactly as CPython keeps it (co_lnotab up to
3.9, co_linetable from 3.10) and, for every instruction position, the line that the
INTERPRETER computes (dis.findlinestarts over co_lnotab up to 3.9, co_lines() from 3.10;
None = no line, written -1).  Nothing here uses pyhang-trace's code.

Output lines:
    V MAJOR MINOR
    C FIRSTLINENO HEXTABLE NAME      a code object
    P POS LINE                       a position in the unit py_line_for_position takes:
                                     f_lasti in bytes (<= 3.9), in code units (3.10),
                                     the byte offset from the code start (3.11+)
"""
import os
import subprocess
import sys

SAMPLE = '''
import os


def straight(a, b):
    x = a + b
    y = x * 2
    return y


def loops(n):
    total = 0
    for i in range(n):
        if i % 2:
            total += i
        else:
            total -= i
    while total > 10:
        total //= 2
    return total
''' + "\n" * 300 + '''
def far_away(v):
    # three hundred blank lines above: line deltas over 127 and 255
    try:
        return int(v)
    except ValueError:
        return None
    finally:
        v = None


def comprehensions(xs):
    a = [x for x in xs if x]
    b = dict((k, k * 2) for k in a)
    c = {k: v for k, v in b.items()}
    return (lambda q: q + 1)(len(c))


class Holder(object):
    def method(self, *args, **kw):
        def inner(z):
            return z ''' + " + z" * 200 + '''
        return inner(len(args))
'''

LONG = "def long_body(a):\n" + "".join("    a = a + %d\n" % i for i in range(400)) + "    return a\n"


def code_objects(co):
    yield co
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            for sub in code_objects(c):
                yield sub


def lines_lnotab(co):
    """{byte offset: line} from the interpreter's own dis.findlinestarts (<= 3.9)."""
    import dis
    starts = sorted(dis.findlinestarts(co))
    step = 1 if sys.version_info[0] == 2 else 2
    out, k, line = [], 0, co.co_firstlineno
    for pos in range(0, len(co.co_code), step):
        while k < len(starts) and starts[k][0] <= pos:
            line = starts[k][1]
            k += 1
        out.append((pos, line))
    return out


def lines_colines(co):
    """Positions and lines from co_lines() (3.10+)."""
    out = []
    for start, end, line in co.co_lines():
        for b in range(start, end, 2):
            pos = b // 2 if sys.version_info[:2] == (3, 10) else b
            out.append((pos, -1 if line is None else line))
    return out


def emit():
    w = sys.stdout.write
    w("V %d %d\n" % sys.version_info[:2])
    sources = [("sample", SAMPLE + LONG)]
    import threading
    path = threading.__file__
    if path.endswith((".pyc", ".pyo")):
        path = path[:-1]
    with open(path) as f:
        sources.append((path, f.read()))
    for name, src in sources:
        for co in code_objects(compile(src, name, "exec")):
            if sys.version_info >= (3, 10):
                table, lines = co.co_linetable, lines_colines(co)
            else:
                table, lines = co.co_lnotab, lines_lnotab(co)
            hexed = "".join("%02x" % c for c in bytearray(table)) or "-"
            w("C %d %s %s\n" % (co.co_firstlineno, hexed, co.co_name))
            for pos, line in lines:
                w("P %d %d\n" % (pos, line))


def main():
    if sys.argv[1:] == ["--emit"]:
        emit()
        return 0
    outdir = sys.argv[1]
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from harness.pythons import INTERPRETERS
    if not INTERPRETERS:
        sys.stderr.write("gen_linetables: no interpreter found\n")
        return 1
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    for old in os.listdir(outdir):
        os.unlink(os.path.join(outdir, old))
    for label, path, _ in INTERPRETERS:
        out = os.path.join(outdir, label + ".txt")
        with open(out, "w") as f:
            subprocess.check_call([path, os.path.abspath(__file__), "--emit"], stdout=f)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
