# tests/fuzz/fuzz.mk - libFuzzer targets; included by the Makefile.
#
#   make fuzz-build                   build/fuzz/fuzz_{dns,ct,opts,http,event,escape}
#   make fuzz FUZZ_SECONDS=60         each target for 60 s (the default)
#   make fuzz-smoke                   each target for FUZZ_SMOKE_SECONDS (10)
#   make fuzz FUZZ_TARGETS=dns FUZZ_SECONDS=600 FUZZ_RUNS=10000000
#   make fuzz-seeds                   regenerate tests/fuzz/seeds (root)
#
# Each run uses build/fuzz/corpus/<t> (grows between runs) and reads the
# committed seeds tests/fuzz/seeds/<t>; crashes land in
# build/fuzz/artifacts/<t>/. See tests/fuzz/run.sh for the report.
#
# clang with -fsanitize=fuzzer,address,undefined; the project sources are
# compiled once into build/fuzz/obj with -fsanitize=fuzzer-no-link and
# linked per target with the files it needs (never main.c: libFuzzer
# supplies main).
# -Werror is left out for the project's own files: a new clang warning
# in someone else's change should not stop the fuzzers.

FUZZ_TARGETS       ?= dns ct opts http event escape
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_RUNS          ?=
FUZZ_CC            ?= clang
FUZZ_ARCH          := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
FUZZ_DEPS          := build/deps/$(FUZZ_ARCH)
FUZZ_MNL           := $(FUZZ_DEPS)/lib/libmnl.a
FUZZ_OUT           := build/fuzz
FUZZ_SAN           := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                      -fno-sanitize-recover=all
FUZZ_CFLAGS        := -std=c11 -Wall -Wextra -Wshadow -Wvla $(FUZZ_SAN) \
                      -fsanitize=fuzzer-no-link -I. -isystem $(FUZZ_DEPS)/include

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-seeds
fuzz-build: $(addprefix $(FUZZ_OUT)/fuzz_,$(FUZZ_TARGETS))

$(FUZZ_OUT)/.toolchain: tests/fuzz/toolchain.sh
	@mkdir -p $(FUZZ_OUT)
	sh tests/fuzz/toolchain.sh $(FUZZ_CC)
	@touch $@

$(FUZZ_OUT)/.deps: scripts/deps.sh
	@mkdir -p $(FUZZ_OUT)
	sh scripts/deps.sh $(FUZZ_ARCH)
	@touch $@

# Order-only: a re-stamped toolchain or deps does not rebuild everything.
FUZZ_PRE := tests/fuzz/fuzz.mk | $(FUZZ_OUT)/.toolchain $(FUZZ_OUT)/.deps

$(FUZZ_OUT)/obj/%.o: %.c $(HDRS) $(FUZZ_PRE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
# The targets themselves: these must stay warning-free.
$(FUZZ_OUT)/obj/fuzz_%.o: tests/fuzz/fuzz_%.c tests/fuzz/dns_queries.h $(HDRS) $(FUZZ_PRE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -c -o $@ $<

FUZZ_LINK = $(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^
$(FUZZ_OUT)/fuzz_dns: $(FUZZ_OUT)/obj/fuzz_dns.o $(FUZZ_OUT)/obj/dns.o
	$(FUZZ_LINK)
$(FUZZ_OUT)/fuzz_ct: $(FUZZ_OUT)/obj/fuzz_ct.o $(FUZZ_OUT)/obj/nl.o $(FUZZ_OUT)/obj/log.o $(FUZZ_MNL)
	$(FUZZ_LINK)
$(FUZZ_OUT)/fuzz_event: $(FUZZ_OUT)/obj/fuzz_event.o $(FUZZ_OUT)/obj/ctfilter.o $(FUZZ_OUT)/obj/nl.o $(FUZZ_OUT)/obj/log.o $(FUZZ_MNL)
	$(FUZZ_LINK)
FUZZ_OPTS_OBJS := $(addprefix $(FUZZ_OUT)/obj/,opts.o log.o dns.o nl.o)
$(FUZZ_OUT)/fuzz_opts: $(FUZZ_OUT)/obj/fuzz_opts.o $(FUZZ_OPTS_OBJS) $(FUZZ_MNL)
	$(FUZZ_LINK)
$(FUZZ_OUT)/fuzz_http: $(FUZZ_OUT)/obj/fuzz_http.o $(FUZZ_OUT)/obj/metrics.o $(FUZZ_OUT)/obj/counters.o \
                       $(FUZZ_OPTS_OBJS) $(FUZZ_MNL)
	$(FUZZ_LINK)
$(FUZZ_OUT)/fuzz_escape: $(FUZZ_OUT)/obj/fuzz_escape.o $(FUZZ_OUT)/obj/metrics.o $(FUZZ_OUT)/obj/counters.o \
                         $(FUZZ_OPTS_OBJS) $(FUZZ_MNL)
	$(FUZZ_LINK)
$(FUZZ_MNL): | $(FUZZ_OUT)/.deps

fuzz: fuzz-build
	FUZZ_RUNS='$(FUZZ_RUNS)' sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	FUZZ_RUNS='$(FUZZ_RUNS)' sh tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz-seeds:
	sh tests/fuzz/make-seeds.sh
