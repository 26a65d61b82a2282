# pyhang-trace build.
#   make            build/pyhang-trace (BPF object embedded via a bpftool skeleton;
#                   libbpf, libelf and zlib linked statically)
#   make deps       install missing Debian packages (no-op when all are present)
#   make test       deps + unit tests + build + the end-to-end suite, and again under ASan (root)
#   make unit       the C unit tests of tests/unit (cmocka; seconds, no root)
#   make run        deps + build + trace the whole host with defaults (needs root)
#   make vmlinux    regenerate vmlinux.h from the running kernel's BTF
#   make asan       build/pyhang-trace-asan with AddressSanitizer + UBSan
#   make bench      build the benchmarks under tests/bench (run: tests/bench/run_futex_bench.sh,
#                   tests/bench/python_workloads.py, tests/bench/tracer_cost.py; root)
#   make check-layouts  the layout table (user/python/pylayout.c) against offsetof() in
#                   every installed interpreter's headers (tests/layouts; part of `make test`)
#   make fuzz       build the libFuzzer harnesses of tests/fuzz and run each FUZZ_SECONDS
#   make fuzz-smoke the same, FUZZ_SMOKE_SECONDS each (part of `make test`)
#   make fuzz-seed  regenerate tests/fuzz/corpus from the interpreters installed here
#   make install    build/pyhang-trace to $(DESTDIR)$(PREFIX)/sbin, the man page, the
#                   systemd unit and the logrotate file (PREFIX=/usr/local, DESTDIR empty)
#   make uninstall  remove what make install put there
#   make deb        build/pyhang-trace_VERSION_ARCH.deb (dpkg-deb over a DESTDIR tree, PREFIX=/usr)

BUILD      ?= build
CLANG      ?= clang
BPFTOOL    ?= bpftool
CC         ?= cc
PYTEST     ?= /usr/bin/python3 -m pytest
# The CPython layouts, the syscall numbers and the BPF programs' register access are
# x86_64 facts: build for that machine only, and say so anywhere else.
MACHINE    := $(shell uname -m)
ifeq ($(origin ARCH),command line)
$(error ARCH is not a setting: it follows the machine (uname -m); pyhang-trace builds on \
        x86_64 only)
endif
ifeq ($(MACHINE),x86_64)
ARCH       := x86
else
$(error pyhang-trace builds on x86_64 only (this machine: uname -m = $(MACHINE)); \
        its CPython layouts, syscall numbers and BPF register access are x86_64 facts)
endif
VERSION    := 0.1.0

# Userspace sources: user/*.c and user/<folder>/*.c, every folder on the include path
# (sources say #include "name.h" wherever the header lives; names are unique across folders).
USER_DIRS  := user $(patsubst %/,%,$(wildcard user/*/))
USER_SRCS  := $(wildcard $(addsuffix /*.c,$(USER_DIRS)))
USER_NAMES := $(notdir $(USER_SRCS) $(wildcard $(addsuffix /*.h,$(USER_DIRS))))
ifneq ($(words $(USER_NAMES)),$(words $(sort $(USER_NAMES))))
$(error two files under user/ share a name: $(sort $(foreach n,$(USER_NAMES), \
        $(if $(filter-out 1,$(words $(filter $(n),$(USER_NAMES)))),$(n)))))
endif

# -MMD -MP: each object's header dependencies in a .d file beside it (included below)
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wshadow \
                 -Wno-missing-field-initializers $(addprefix -I,$(USER_DIRS)) -Ibpf -I$(BUILD) \
                 -MMD -MP
CFLAGS     ?= -O2
LIBS       := -Wl,-Bstatic -lbpf -lelf -lz -Wl,-Bdynamic
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I. -Ibpf -Wall -Werror

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
# objects mirror the source tree: user/F/x.c -> $(BUILD)/obj/F/x.o, $(BUILD)/asan/F/x.o
USER_OBJS  := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
ASAN_OBJS  := $(patsubst user/%.c,$(BUILD)/asan/%.o,$(USER_SRCS))

DEB_PKGS   := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc \
              python3 python3-pytest prometheus python3-yaml systemd valgrind libclang-rt-14-dev \
              mandoc lintian libcmocka-dev

.PHONY: unit all deps test run vmlinux clean asan bench check-layouts fuzz fuzz-smoke fuzz-build fuzz-seed \
        install uninstall deb FORCE
.SECONDARY:
all: $(BUILD)/pyhang-trace

deps:
	@./.ci/install-deps $(DEB_PKGS)

$(BUILD):
	@mkdir -p $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# The skeleton is order-only: it must exist before the first compile (no .d yet); after
# that the .d files name the objects that include it.
$(BUILD)/obj/%.o: user/%.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

# --version's facts, rewritten only when they change (a new commit rebuilds version.o only)
$(BUILD)/ph_build_info.h: FORCE | $(BUILD)
	@{ echo '#define PH_VERSION "$(VERSION)"'; \
	   c=$$(git rev-parse --short=12 HEAD 2>/dev/null) || c=unknown; \
	   if [ "$$c" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then c="$$c (modified)"; fi; \
	   echo "#define PH_GIT_COMMIT \"$$c\""; \
	   echo "#define PH_LIBBPF_VERSION \"$$(pkg-config --modversion libbpf 2>/dev/null || echo unknown)\""; \
	 } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(filter %/version.o,$(USER_OBJS) $(ASAN_OBJS)): $(BUILD)/ph_build_info.h

$(BUILD)/pyhang-trace: $(USER_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/asan/%.o: user/%.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	      -fno-sanitize-recover=undefined -c $< -o $@

asan: $(BUILD)/pyhang-trace-asan
$(BUILD)/pyhang-trace-asan: $(ASAN_OBJS)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(LIBS)

bench: $(BUILD)/pyhang-trace
	$(MAKE) -C tests/bench BUILD=$(abspath $(BUILD))/bench

# The unit tests, the layout table check, the end-to-end suite, then what ASan adds: the
# tracer and diagnosis tests that share one tracer per scenario (marker asan_rerun: every code path of those
# tracers, each interpreter's reader) once more against the AddressSanitizer + UBSan build
# (leak checks on; the suite tracer of that run is the ASan build too).
test: deps unit check-layouts all asan fuzz-smoke
	$(PYTEST) -q tests/
	PYHANG_BINARY=$(abspath $(BUILD))/pyhang-trace-asan ASAN_OPTIONS=detect_leaks=1 \
	    $(PYTEST) -q -m asan_rerun tests/test_trace_*.py tests/test_diagnose.py tests/test_child_waits.py \
	    tests/test_pidfd_waits.py

# ---- C unit tests (tests/unit/test_*.c, cmocka): pure logic against the user objects ----
# (every one but main.o, whatever folder they are built in: USER_OBJS); line tables are
# checked against facts each installed interpreter writes at test time (gen_linetables.py).
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
UNIT_OBJS   = $(filter-out %/main.o,$(USER_OBJS))
$(BUILD)/unit/%: tests/unit/%.c $(UNIT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $< $(UNIT_OBJS) -o $@ -lcmocka $(LIBS) -lm
unit: $(UNIT_BINS)
	/usr/bin/python3 tests/unit/gen_linetables.py $(BUILD)/unit/linetables >/dev/null
	@set -e; for t in $(UNIT_BINS); do UNIT_LINETABLES=$(BUILD)/unit/linetables $$t; done

# ---- layout table check (tests/layouts) ------------------------------------------------
# table_dump prints the tables of user/python/pylayout.c and pyopcodes.c; check_layouts.py
# compiles tests/layouts/probe.c against each interpreter's headers.
PYLAYOUT_C := user/python/pylayout.c
PYOPCODES_C := user/python/pyopcodes.c
$(BUILD)/layouts/table_dump: tests/layouts/table_dump.c $(PYLAYOUT_C) $(PYLAYOUT_C:.c=.h) $(PYOPCODES_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I$(dir $(PYLAYOUT_C)) -O1 -o $@ tests/layouts/table_dump.c $(PYLAYOUT_C) $(PYOPCODES_C)
check-layouts: $(BUILD)/layouts/table_dump
	/usr/bin/python3 tests/layouts/check_layouts.py $< tests/layouts/probe.c $(CC)

# ---- fuzzing (tests/fuzz): libFuzzer + ASan + UBSan over a fake memory backend ----------
# Each harness runs on a scratch corpus in $(BUILD)/fuzz/corpus/NAME (new inputs land there)
# plus the committed seeds in tests/fuzz/corpus/NAME; crashes go to $(BUILD)/fuzz/artifacts.
# -rss_limit_mb also caps any single malloc (an unbounded allocation fails the run) and
# -timeout fails an input that takes longer than that many seconds (a hang). FUZZ_IMAGE is
# the process image fuzz_debugoffsets walks with each layout it accepts.
FUZZ_CC            ?= $(CLANG)
FUZZ_SECONDS       ?= 60
# The smoke run (part of `make test`): every committed seed under ASan + UBSan (libFuzzer
# runs the whole seed corpus before it looks at the clock: the INITED line, checked below),
# then a few seconds of mutations.  The seeds take well under a second per harness.
FUZZ_SMOKE_SECONDS ?= 3
# Smaller caches (allocated per input) make a run ~10x faster; eviction stays exercised.
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer -O1 -DPM_CACHE_SLOTS=64u -DCODE_CACHE_CAP=64u
FUZZ_OPTS  := -rss_limit_mb=1024 -timeout=10 -print_final_stats=1
# the reader (user/python, but for stacks captured in BPF, source lines and lock owners),
# its writers, and what it stands on; names only (vpath below finds their folders)
FUZZ_USER  := $(basename $(notdir $(filter-out $(addprefix user/python/,pystack.c stackline.c \
                srcline.c $(notdir $(wildcard user/python/lockown*.c))),$(wildcard user/python/*.c)))) \
              pywrite_json pywrite_text \
              procmem elfsym json strbuf caps bounds mapscan safeopen syscall_names \
              iowait_write fddesc fdsock fdpipe pipes procscan
FUZZ_OBJS  := $(patsubst %,$(BUILD)/fuzz/obj/%.o,$(FUZZ_USER)) \
              $(BUILD)/fuzz/obj/fakemem.o $(BUILD)/fuzz/obj/pyimage.o
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))

# FUZZ_USER names sources, found in whichever user/ folder holds them
vpath %.c $(USER_DIRS)

$(BUILD)/fuzz/obj:
	@mkdir -p $@
$(BUILD)/fuzz/obj/%.o: %.c | $(BUILD)/fuzz/obj
	$(FUZZ_CC) $(CFLAGS_COMMON) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/obj/%.o: tests/fuzz/%.c | $(BUILD)/fuzz/obj
	$(FUZZ_CC) $(CFLAGS_COMMON) -Itests/fuzz $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(CFLAGS_COMMON) -Itests/fuzz $(FUZZ_SAN) -fsanitize=fuzzer $< $(FUZZ_OBJS) -o $@
$(BUILD)/fuzz/seed: tests/fuzz/seed.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(CFLAGS_COMMON) -Itests/fuzz $(FUZZ_SAN) -fsanitize=fuzzer-no-link $< \
	    $(FUZZ_OBJS) -o $@

fuzz-build: $(FUZZ_BINS) $(BUILD)/fuzz/seed

# $(1): seconds per harness
define fuzz_run
	@set -e; for n in $(FUZZ_NAMES); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$n $(BUILD)/fuzz/artifacts tests/fuzz/corpus/$$n; \
	    echo "fuzz_$$n: $(1) s"; \
	    FUZZ_IMAGE=tests/fuzz/corpus/pyreader/pyenv-3.13.0 \
	    $(BUILD)/fuzz/fuzz_$$n $(FUZZ_OPTS) -max_total_time=$(1) \
	        -artifact_prefix=$(abspath $(BUILD))/fuzz/artifacts/$$n- \
	        $(BUILD)/fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>$(BUILD)/fuzz/$$n.log || \
	        { tail -n 60 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	    grep -q 'INITED' $(BUILD)/fuzz/$$n.log || \
	        { echo "fuzz_$$n: the seed corpus did not run to its end"; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
	        $(BUILD)/fuzz/$$n.log | tr '\n' ' '; echo; \
	done
endef

fuzz: deps fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

fuzz-smoke: deps fuzz-build
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS))

fuzz-seed: deps fuzz-build
	/usr/bin/python3 tests/fuzz/seed.py --seed-tool $(BUILD)/fuzz/seed --out tests/fuzz/corpus

# ---- install, uninstall, Debian package -------------------------------------------------
PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/pyhang-trace
SYSCONFDIR ?= /etc
# systemd looks in /usr/local/lib/systemd/system too; under /usr, the distribution's place
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),$(shell pkg-config --variable=systemdsystemunitdir \
                systemd 2>/dev/null || echo /lib/systemd/system),$(PREFIX)/lib/systemd/system)
INSTALLED_FILES := $(SBINDIR)/pyhang-trace $(MANDIR)/man8/pyhang-trace.8 \
                   $(UNITDIR)/pyhang-trace.service $(SYSCONFDIR)/logrotate.d/pyhang-trace \
                   $(DOCDIR)/README.md

install: $(BUILD)/pyhang-trace
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/pyhang-trace $(DESTDIR)$(SBINDIR)/pyhang-trace
	install -m 0644 deploy/man/pyhang-trace.8 $(DESTDIR)$(MANDIR)/man8/pyhang-trace.8
	sed -e 's|/usr/local/bin/pyhang-trace|$(SBINDIR)/pyhang-trace|g' \
	    -e 's|/usr/local/share/doc/pyhang-trace|$(DOCDIR)|g' \
	    deploy/pyhang-trace.service > $(DESTDIR)$(UNITDIR)/pyhang-trace.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pyhang-trace.service
	install -m 0644 deploy/logrotate.conf $(DESTDIR)$(SYSCONFDIR)/logrotate.d/pyhang-trace
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES))
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

DEB_ARCH   = $(shell dpkg --print-architecture)
DEB        = $(BUILD)/pyhang-trace_$(VERSION)_$(DEB_ARCH).deb
deb: $(BUILD)/pyhang-trace
	rm -rf $(BUILD)/deb
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD))/deb/root PREFIX=/usr \
	    BUILD=$(BUILD)
	BUILD=$(BUILD) VERSION=$(VERSION) ARCH=$(DEB_ARCH) deploy/debian/build-deb \
	    $(BUILD)/deb/root $(DEB)

run: deps all
	./$(BUILD)/pyhang-trace

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

clean:
	rm -rf $(BUILD)

# header dependencies written by -MMD (absent before the first build)
-include $(wildcard $(USER_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(BUILD)/fuzz/obj/*.d $(BUILD)/fuzz/*.d)
