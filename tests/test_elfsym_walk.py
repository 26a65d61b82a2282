"""elf_each_symtab_symbol (user/os/elfsym.c) says when its walk was cut.

gilstatic.c walks .symtab to prove that 3.6's GIL statics are each defined once and that no
other symbol lies between them; a walk cut short by the elf-bytes budget (--limit
elf-bytes) or a read error must say so (-1), else "not met" passes for "not there". The
real reader code is compiled with a small driver and run on real ELF files (the tracer
binary itself, and libpython3.6m when pyenv has it) at every budget from one that reads
the whole table down to none.
"""
import glob
import os
import subprocess

import pytest

TEST_DEADLINE_S = 600   # per test, generous: no deadline before the harness (fixtures.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include "bounds.h"
#include "elfsym.h"
static unsigned long seen;
static int count(void *ctx, const char *name, const Elf64_Sym *s)
{
	(void)ctx; (void)name; (void)s;
	seen++;
	return 0;
}
int main(int argc, char **argv)
{
	(void)argc;
	ph_limits.elf_bytes = strtoull(argv[2], NULL, 0);
	struct elf_file ef;
	char err[128];
	if (elf_open_fd(&ef, open(argv[1], O_RDONLY | O_CLOEXEC), err, sizeof(err)) != 0) {
		printf("open %s\n", err);
		return 3;
	}
	int rc = elf_each_symtab_symbol(&ef, count, NULL);
	printf("%d %lu\n", rc, seen);
	elf_close(&ef);
	return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = tmp_path_factory.mktemp("elfwalk")
    src = d / "walk.c"
    src.write_text(DRIVER)
    exe = str(d / "walk")
    # sources live in user/ or a folder of it; every folder is on the include path (Makefile)
    dirs = [os.path.join(ROOT, "user")] + sorted(glob.glob(os.path.join(ROOT, "user", "*", "")))
    source = lambda name: glob.glob(os.path.join(ROOT, "user", "**", name), recursive=True)[0]
    subprocess.check_call(["cc", "-std=c11", "-D_GNU_SOURCE"] + ["-I" + d for d in dirs] +
                          ["-I" + os.path.join(ROOT, "bpf"), "-I" + os.path.join(ROOT, "build"),
                           "-o", exe, str(src), source("elfsym.c"), source("bounds.c")])
    return exe


def walk(driver, path, budget):
    out = subprocess.check_output([driver, path, str(budget)], text=True).split()
    return int(out[0]), int(out[1])


def elf_files():
    files = [os.path.join(ROOT, "build", "pyhang-trace")]
    files += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/lib/libpython3.6m.so.1.0")))[:1]
    return files


@pytest.mark.parametrize("path", elf_files())
def test_cut_walk_is_an_error(driver, path):
    rc, whole = walk(driver, path, 1 << 30)
    assert rc == 0 and whole > 1000, (rc, whole)
    cut = 0
    for budget in range(4 << 20, 0, -(8 << 10)):
        rc, seen = walk(driver, path, budget)
        if seen == whole:
            assert rc == 0, (budget, rc, seen)
            continue
        cut += 1
        assert rc == -1, "budget %d: %d of %d symbols passed, but the walk said complete" % (
            budget, seen, whole)
    assert cut, "no budget cut the walk"
