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
SRCS    := main.c opts.c log.c tester.c flow.c probe.c metrics.c scan.c nl.c dns.c watch.c ctfilter.c kproxy.c check.c
LIBSRCS := $(filter-out main.c,$(SRCS))
HDRS    := opts.h log.h tester.h flow.h probe.h metrics.h scan.h dns.h nl.h libmnl_compat.h watch.h ctfilter.h kproxy.h check.h
DEPS    := build/deps/$(ARCH)

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
# -Oz (GCC 12): size first; a cycle's cost is its syscalls, not its code.
CFLAGS  ?= -Oz
BASE    := $(WARN) -DVERSION='"$(VERSION)"' -ffunction-sections -fdata-sections \
           -fno-asynchronous-unwind-tables -fstack-protector
# -z norelro: only a dynamic loader applies RELRO; in a static musl
#   binary the GNU_RELRO pages stay writable (seen in /proc/PID/maps), so
#   it would only pad the file (on arm64 its alignment doubled it).
# -z separate-code (amd64, ld's default there, said aloud): rodata is not
#   mapped executable. arm64 keeps ld's default layout, rodata beside the
#   code: separate segments are aligned to 64 KiB there, 218 KB in all.
# -flto: the whole program is compiled as one, so static functions called
#   from one place vanish into it (about 4 KB).
# sh bench/size.sh prints what each choice costs.
# -z common-page-size=2048: ld then lets the data segment start right
#   after rodata in the file, on the page rodata ends in (mapped again,
#   copy-on-write, as any ld does when that saves a file page), instead
#   of padding the file to a page boundary (1.1 KB).
STATIC  := -flto -static -Wl,--gc-sections -s -Wl,-z,noexecstack -Wl,-z,norelro \
           -Wl,-z,common-page-size=2048

ifeq ($(ARCH),arm64)
MUSLCC  ?= scripts/musl-cc-arm64.sh
OBJCOPY ?= aarch64-linux-gnu-objcopy
OUT     := build/arm64/$(BIN)
else
MUSLCC  ?= musl-gcc
OBJCOPY := objcopy
OUT     := $(BIN)
STATIC  += -Wl,-z,separate-code
endif

.PHONY: all deps check demo fleet bench bench-watch clean image image-save
all: $(OUT)

$(DEPS)/.done: scripts/deps.sh
	sh scripts/deps.sh $(ARCH)

# -isystem offers only the kernel UAPI headers and libmnl.h to musl-gcc:
# never glibc's /usr/include.
# Debian's libmnl.a carries unwind tables (.eh_frame, 2.2 KB); C linked
# with musl has no unwinder to read them, so the static link uses a copy
# without them.
$(DEPS)/lib/libmnl-nounwind.a: $(DEPS)/.done
	$(OBJCOPY) -R .eh_frame -R .rela.eh_frame $(DEPS)/lib/libmnl.a $@

# -fno-pie: the static link makes a fixed-address executable (ET_EXEC),
#   so position-independent code buys nothing; without it an address is
#   a 32-bit immediate, and tables of pointers are read-only .rodata
#   instead of writable .data.rel.ro (1.0 KB less code, measured).
$(OUT): $(SRCS) $(HDRS) $(DEPS)/lib/libmnl-nounwind.a Makefile
	@mkdir -p $(dir $(OUT))
	$(MUSLCC) $(BASE) $(CFLAGS) -fno-pie -DLIBMNL_GLIBC_COMPAT -isystem $(DEPS)/include \
		-o $@ $(SRCS) $(STATIC) $(DEPS)/lib/libmnl-nounwind.a
	$(OBJCOPY) -R .comment $@    # the compilers' version strings: 0.1 KB

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

build/host/opts_test: tests/opts_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/opts_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

# ct_ntop against glibc's inet_ntop: the same program with each libc.
build/host/ntop_diff: tests/ntop_diff.c nl.c nl.h log.c build/host/.deps
	$(HOSTCC) $(WARN) -O1 -I. -isystem $(HOSTMNL)/include -o $@ tests/ntop_diff.c nl.c log.c $(HOSTMNL)/lib/libmnl.a

build/host/ntop_diff-musl: tests/ntop_diff.c nl.c nl.h log.c libmnl_compat.h $(DEPS)/lib/libmnl-nounwind.a
	$(MUSLCC) $(WARN) -O1 -DLIBMNL_GLIBC_COMPAT -I. -isystem $(DEPS)/include -o $@ tests/ntop_diff.c nl.c log.c \
		-static $(DEPS)/lib/libmnl-nounwind.a

host: build/host/ntop_diff build/host/ntop_diff-musl build/host/$(BIN)-asan build/host/$(BIN)-debug build/host/dns_test build/host/nl_test build/host/opts_test

build/host/kproxy_test: tests/kproxy_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/kproxy_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

build/host/check_test: tests/check_test.c $(LIBSRCS) $(HDRS) build/host/.deps
	$(HOSTCC) $(WARN) $(SAN) -I. -isystem $(HOSTMNL)/include -o $@ tests/check_test.c $(LIBSRCS) $(HOSTMNL)/lib/libmnl.a

check: build/host/dns_test build/host/opts_test build/host/kproxy_test build/host/check_test
	build/host/dns_test
	build/host/opts_test
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
