# dns-blackhole-tester: one static binary (musl + libmnl).
#
#   make                  static, stripped ./dns-blackhole-tester (amd64)
#   make ARCH=arm64       static aarch64 build: build/arm64/dns-blackhole-tester
#   make check            unit tests (glibc, ASan+UBSan) - needs no root
#   make image            podman: localhost/dns-blackhole-tester:$(VERSION) (ARCH=arm64: :$(VERSION)-arm64)
#   make image-save       build/dns-blackhole-tester-$(VERSION)-$(ARCH).oci.tar (podman save --format oci-archive)
#   sudo ./test.sh        everything, in network namespaces
#   sudo make fleet       N nodes (FLEET_NODES=50), Prometheus, a rolling kube-proxy restart
#
# libmnl comes as a package (scripts/deps.sh fetches Debian's libmnl-dev,
# whose libmnl.a links into musl binaries); nothing is vendored.

VERSION ?= 0.1.0
ARCH    ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
BIN     := dns-blackhole-tester
SRCS    := main.c opts.c log.c tester.c flow.c probe.c metrics.c scan.c nl.c dns.c watch.c ctfilter.c
SRCS    += table.c backends.c
SRCS    += verdict.c
SRCS    += counters.c confine.c
SRCS    += view.c
SRCS    += kproxy.c check.c
HDRS    := opts.h log.h tester.h flow.h probe.h metrics.h scan.h dns.h nl.h libmnl_compat.h watch.h ctfilter.h
HDRS    += table.h backends.h
HDRS    += verdict.h
HDRS    += counters.h confine.h
HDRS    += view.h
HDRS    += kproxy.h check.h
LIBSRCS  = $(filter-out main.c,$(SRCS))
DEPS    := build/deps/$(ARCH)

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
# -Os -flto: optimised for size, the program compiled as one. The size
#   budget (< 160 KiB amd64) holds with unwind tables kept (perf, gdb);
#   at -O2 it does not (189 KB). The loop's cost is its syscalls, not its
#   code: bench/run.sh measures the cycle.
CFLAGS  ?= -Os -flto=auto
# -ffunction-sections/-fdata-sections with --gc-sections: code nothing
#   calls (of ours and of musl's and libmnl's archives) is not linked.
# -fstack-protector-strong: canaries in every function with an array or
#   an address-taken local (Debian's default), not only char buffers.
BASE    := $(WARN) -DVERSION='"$(VERSION)"' -ffunction-sections -fdata-sections \
           -fstack-protector-strong
# -static: one file that runs anywhere, no loader or library on the node.
# -s: a shipped binary carries no symbol table (the host builds
#   build/host/*-debug have them); unwind tables (.eh_frame) stay, so
#   perf and gdb can walk the stack of the shipped binary.
# -z noexecstack: no executable stack, said aloud.
# -z norelro: only a dynamic loader applies RELRO (mprotect after
#   relocating); in a static musl binary the GNU_RELRO pages stay
#   writable (seen in /proc/PID/maps), so the header would claim a
#   protection the process does not have (checksec reads it as "RELRO").
# -z separate-code (amd64, ld's default there, said aloud): rodata is not
#   mapped executable. arm64 keeps ld's default layout, rodata beside the
#   code: separate segments are aligned to 64 KiB there, 218 KB in all.
# sh bench/size.sh prints what some other choices would cost.
STATIC  := -static -Wl,--gc-sections -s -Wl,-z,noexecstack -Wl,-z,norelro

ifeq ($(ARCH),arm64)
MUSLCC  ?= scripts/musl-cc-arm64.sh
OUT     := build/arm64/$(BIN)
else
MUSLCC  ?= musl-gcc
OUT     := $(BIN)
STATIC  += -Wl,-z,separate-code
endif

.PHONY: all deps check demo fleet bench bench-watch clean image image-save
all: $(OUT)

$(DEPS)/.done: scripts/deps.sh
	sh scripts/deps.sh $(ARCH)

# -isystem offers only the kernel UAPI headers and libmnl.h to musl-gcc:
# never glibc's /usr/include.
$(OUT): $(SRCS) $(HDRS) $(DEPS)/.done Makefile
	@mkdir -p $(dir $(OUT))
	$(MUSLCC) $(BASE) $(CFLAGS) -DLIBMNL_GLIBC_COMPAT -isystem $(DEPS)/include \
		-o $@ $(SRCS) $(STATIC) $(DEPS)/lib/libmnl.a

# t_confine's test build: the same binary, plus one call off the seccomp
# allow-list right after confine() (confine.c, CONFINE_SELFTEST); never shipped.
build/selftest/$(ARCH)/$(BIN): $(SRCS) $(HDRS) $(DEPS)/.done Makefile
	@mkdir -p $(dir $@)
	$(MUSLCC) $(BASE) $(CFLAGS) -DLIBMNL_GLIBC_COMPAT -DCONFINE_SELFTEST -isystem $(DEPS)/include \
		-o $@ $(SRCS) $(STATIC) $(DEPS)/lib/libmnl.a

# ---- host (glibc) builds for tests: sanitizers, unit tests ----------
HOSTCC  ?= gcc
SAN     := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
HOSTMNL := build/deps/$(shell dpkg --print-architecture 2>/dev/null || echo amd64)

build/host/.deps: scripts/deps.sh
	sh scripts/deps.sh
	@mkdir -p build/host && touch $@

build/host/$(BIN)-asan: $(SRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(BASE) $(SAN) -isystem $(HOSTMNL)/include -o $@ $(SRCS) $(HOSTMNL)/lib/libmnl.a

build/host/$(BIN)-debug: $(SRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(BASE) -g -O1 -isystem $(HOSTMNL)/include -o $@ $(SRCS) $(HOSTMNL)/lib/libmnl.a

build/host/dns_test: tests/dns_test.c dns.c dns.h
	@mkdir -p build/host
	$(HOSTCC) $(WARN) $(SAN) -I. -o $@ tests/dns_test.c dns.c

build/host/nl_test: tests/nl_test.c nl.c nl.h log.c log.h build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/nl_test.c nl.c log.c $(HOSTMNL)/lib/libmnl.a

# the verdict core against its decision table: pure, no root
build/host/verdict_test: tests/verdict_test.c verdict.c verdict.h
	@mkdir -p build/host
	$(HOSTCC) $(WARN) $(SAN) -I. -o $@ tests/verdict_test.c verdict.c

build/host/opts_test: tests/opts_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/opts_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

# ct_parse_msg, ct_event_next and the BPF filter on messages captured
# from the kernel (tests/data/ct, tests/ct_capture.sh) and crafted ones
build/host/ct_data_test: tests/ct_data_test.c nl.c nl.h ctfilter.c ctfilter.h log.c log.h build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/ct_data_test.c nl.c ctfilter.c log.c $(HOSTMNL)/lib/libmnl.a

# ct_ntop against glibc's inet_ntop: the same program with each libc.
build/host/ntop_diff: tests/ntop_diff.c nl.c nl.h log.c build/host/.deps
	$(HOSTCC) $(WARN) -O1 -I. -isystem $(HOSTMNL)/include -o $@ tests/ntop_diff.c nl.c log.c $(HOSTMNL)/lib/libmnl.a

build/host/ntop_diff-musl: tests/ntop_diff.c nl.c nl.h log.c libmnl_compat.h $(DEPS)/.done
	$(MUSLCC) $(WARN) -O1 -DLIBMNL_GLIBC_COMPAT -I. -isystem $(DEPS)/include -o $@ tests/ntop_diff.c nl.c log.c \
		-static $(DEPS)/lib/libmnl.a

# a reply flood for t_metrics (sendmmsg: faster than the tester drains)
build/host/flood: tests/metrics/flood.c
	@mkdir -p build/host
	$(HOSTCC) $(WARN) -O2 -o $@ tests/metrics/flood.c

UNITS   := build/host/dns_test build/host/opts_test build/host/ct_data_test build/host/verdict_test \
           build/host/kproxy_test build/host/check_test

build/host/kproxy_test: tests/kproxy_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/kproxy_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

build/host/check_test: tests/check_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/check_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

host: build/host/flood build/host/ntop_diff build/host/ntop_diff-musl build/host/$(BIN)-asan build/host/$(BIN)-debug build/host/nl_test $(UNITS)

check: $(UNITS)
	build/host/dns_test
	build/host/opts_test
	build/host/ct_data_test
	build/host/verdict_test tests/verdict_table.txt
	build/host/kproxy_test
	build/host/check_test

demo: all
	sh scripts/demo.sh

# N nodes, a rolling kube-proxy restart, Prometheus' alerts vs conntrack -L
# (scripts/fleet.sh; its other knobs are FLEET_* variables too)
FLEET_NODES ?= 50
fleet: all
	FLEET_NODES=$(FLEET_NODES) sh scripts/fleet.sh

# everything: the tester's cycle (bench/RESULTS.md), then the node watch
bench: all
	sh bench/run.sh
	sh bench/watch.sh
	sh bench/gone.sh
	sh bench/load.sh

# the node watch alone: its CPU under 20,000 new flows a second, heal time
bench-watch: all
	sh bench/watch.sh

# The FROM scratch image, built by podman (installed if missing) from
# Dockerfile.scratch; scripts/image.sh says how and why.
image:
	VERSION=$(VERSION) sh scripts/image.sh build $(ARCH)

image-save:
	VERSION=$(VERSION) sh scripts/image.sh save $(ARCH)

clean:
	rm -rf build $(BIN)

# Fuzz targets (libFuzzer, clang): rules live beside the targets.
-include tests/fuzz/fuzz.mk
