/* fuzz_elfsym: the ELF64 reader (user/os/elfsym.c) on a hostile file: header checks, program
 * and section headers, section names, .dynsym/.symtab lookup of the symbols pyreader.c
 * asks for, section lookup (.PyRuntime, .bss, .data), reads at virtual addresses, and the
 * load bias against a few fake mappings; and gilstatic.c's search for 3.6's static GIL
 * (.symtab pass, and the decoding of PyEval_InitThreads / create_gil's code).
 * Input: the ELF file itself (served through a memfd). Seeds: libpython and python
 * executables of every interpreter, compacted by tests/fuzz/seed.py to the parts elfsym
 * reads (headers, section names, symbol and string tables). */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"
#include "gilstatic.h"

/* the names pyreader.c looks up (a subset is enough to walk both tables) */
static const char *const names[] = {
	"_PyRuntime", "Py_Version", "PyInterpreterState_Head", "interp_head",
	"_PyThreadState_Current", "PyCode_Type", "PyUnicode_Type", "PyString_Type",
	"PyBytes_Type", "PyDict_Type", "_Py_TrueStruct", "interpreter_lock", "gil_cond",
	"Py_Initialize", "PyUnicodeUCS4_FromString",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static int memfd_of(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	return fd;
}

static void probe_sections(struct elf_file *ef)
{
	static const char *const secs[] = { ".PyRuntime", ".bss", ".data", ".dynsym", "" };
	unsigned char buf[64];
	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		uint64_t addr, sz;
		if (elf_find_section(ef, secs[i], &addr, &sz) == 0)
			(void)elf_read_vaddr(ef, addr, buf, sz < sizeof(buf) ? (size_t)sz : sizeof(buf));
	}
}

static void probe_bias(const struct elf_file *ef)
{
	char path[] = "/usr/lib/libpython3.11.so.1.0";
	struct pm_map m[3] = {
		{ .start = 0x7f0000000000ull, .end = 0x7f0000100000ull, .offset = 0, .path = path },
		{ .start = 0x7f0000100000ull, .end = 0x7f0000200000ull, .offset = 0x1000, .path = path },
		{ .start = 0x1000, .end = 0x2000, .offset = 0, .path = path },
	};
	struct pm_maps maps = { m, 3 };
	uint64_t bias;
	(void)elf_load_bias(ef, &maps, path, &bias);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_file ef;
	char err[256];
	uint64_t values[NNAMES], sizes[NNAMES];
	unsigned char buf[64];
	if (elf_open_fd(&ef, memfd_of(data, size), err, sizeof(err)) != 0)
		return 0;
	(void)elf_has_symtab(&ef);
	(void)elf_lookup_symbols(&ef, names, NNAMES, values, sizes);
	for (size_t i = 0; i < NNAMES; i++)
		if (values[i])
			(void)elf_read_vaddr(&ef, values[i], buf, sizeof(buf));
	probe_sections(&ef);
	const struct py_gil_statics *gs[2];
	struct gil_static_loc loc;
	for (size_t i = 0, n = pylayout_gil_statics(gs, 2); i < n; i++) {
		(void)gilstatic_from_symtab(&ef, gs[i], &loc);
		(void)gilstatic_from_code(&ef, gs[i], &loc);
	}
	probe_bias(&ef);
	elf_close(&ef);
	return 0;
}
