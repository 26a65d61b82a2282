# pyhang-trace build.
#   make            build/pyhang-trace (BPF object embedded via a bpftool skeleton;
#                   libbpf, libelf and zlib linked statically)
#   make deps       install missing Debian packages (no-op when all are present)
#   make test       deps + build + the end-to-end suite, and again under ASan (needs root)
#   make run        deps + build + trace the whole host with defaults (needs root)
#   make vmlinux    regenerate vmlinux.h from the running kernel's BTF
#   make asan       build/pyhang-trace-asan with AddressSanitizer + UBSan
#   make bench      build the benchmarks under tests/bench (run: tests/bench/run_futex_bench.sh,
#                   tests/bench/python_workloads.py, tests/bench/tracer_cost.py; root)

BUILD      ?= build
CLANG      ?= clang
BPFTOOL    ?= bpftool
CC         ?= cc
PYTEST     ?= /usr/bin/python3 -m pytest
ARCH       := x86

CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wshadow \
                 -Wno-missing-field-initializers -Iuser -Ibpf -I$(BUILD)
CFLAGS     ?= -O2
LIBS       := -Wl,-Bstatic -lbpf -lelf -lz -Wl,-Bdynamic
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I. -Ibpf -Wall -Werror

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
USER_SRCS  := $(wildcard user/*.c)
USER_OBJS  := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
ASAN_OBJS  := $(patsubst user/%.c,$(BUILD)/asan/%.o,$(USER_SRCS))
HDRS       := $(wildcard user/*.h bpf/*.h)

DEB_PKGS   := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc \
              python3 python3-pytest prometheus python3-yaml systemd valgrind

.PHONY: all deps test run vmlinux clean asan bench
.SECONDARY:
all: $(BUILD)/pyhang-trace

deps:
	@./.ci/install-deps $(DEB_PKGS)

$(BUILD) $(BUILD)/obj $(BUILD)/asan:
	@mkdir -p $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: user/%.c $(HDRS) $(SKELS) | $(BUILD)/obj
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(BUILD)/pyhang-trace: $(USER_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/asan/%.o: user/%.c $(HDRS) $(SKELS) | $(BUILD)/asan
	$(CC) $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	      -fno-sanitize-recover=undefined -c $< -o $@

asan: $(BUILD)/pyhang-trace-asan
$(BUILD)/pyhang-trace-asan: $(ASAN_OBJS)
	$(CC) -fsanitize=address,undefined -o $@ $^ $(LIBS)

bench: $(BUILD)/pyhang-trace
	$(MAKE) -C tests/bench BUILD=$(abspath $(BUILD))/bench

# The end-to-end suite, then the tracer and diagnosis suites once more against the
# AddressSanitizer + UBSan build (leak checks on).
test: deps all asan
	$(PYTEST) -q tests/
	PYHANG_BINARY=$(abspath $(BUILD))/pyhang-trace-asan ASAN_OPTIONS=detect_leaks=1 \
	    $(PYTEST) -q tests/test_trace.py tests/test_diagnose.py

run: deps all
	./$(BUILD)/pyhang-trace

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

clean:
	rm -rf $(BUILD)
