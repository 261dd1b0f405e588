# triage — email/chat triage gateway
#
#   make            build build/triage
#   make check      build everything, run the whole suite (unit, sanitizer,
#                   golden, corpus, fuzz smoke, integration against real servers)
#   make asan-integration  the integration suite against build/asan/triage
#   make valgrind   the integration suite with triage under valgrind memcheck
#   make bench      benchmarks (bench/), figures on stdout
#   make compare    triage vs GMime parse-only vs rspamd, CPU per message
#   make fuzz       fuzz every parser for FUZZ_SECONDS each (default 60)
#   make demo       the README's main job
#   make install    PREFIX=/usr/local DESTDIR=
#
# Every module directory is compiled by wildcard: a new src/<dir>/x.c or
# tests/unit/test_x.c needs no edit here.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= $(PREFIX)/etc
DATADIR    ?= $(PREFIX)/share
DESTDIR    ?=
BUILDDIR   ?= build
SANITIZE   ?=
FUZZ_SECONDS ?= 60
CC         ?= cc

PKGS = gmime-3.0 glib-2.0 libxml-2.0 tre sqlite3 json-glib-1.0 \
       libexttextcat libesmtp-1.0 libstrophe openssl

ifeq ($(filter clean help,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error missing build dependencies ($(shell for p in $(PKGS); do pkg-config --exists $$p || printf '%s ' $$p; done)) — run ./bootstrap)
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan: plain -letpan (its .pc drags in a no-PIE specs file, see docs)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -letpan -lmilter -lcsv -lpthread -lm
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# The allocator.  GMime and GLib make hundreds of small allocations for each
# message; with mimalloc (Debian's libmimalloc2.0) in place of glibc's
# malloc a message costs 13 % less CPU (docs/performance.md).
# `make ALLOCATOR=libc` keeps glibc's malloc and its hardening checks
# (docs/security.md).  Sanitizer and fuzz builds always use the sanitizer's
# allocator.  --no-as-needed: nothing names mimalloc, it replaces malloc.
ALLOCATOR ?= mimalloc
ifeq ($(ALLOCATOR),mimalloc)
ifneq ($(SANITIZE),1)
MALLOC_LIBS = -Wl,--push-state,--no-as-needed -lmimalloc -Wl,--pop-state
ifeq ($(filter clean help,$(MAKECMDGOALS)),)
ifeq ($(shell $(CC) -print-file-name=libmimalloc.so),libmimalloc.so)
$(error libmimalloc-dev is not installed — run ./bootstrap, or build with make ALLOCATOR=libc)
endif
endif
endif
else ifneq ($(ALLOCATOR),libc)
$(error ALLOCATOR must be mimalloc or libc, not '$(ALLOCATOR)')
endif

WARN    = -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
OPT     ?= -O2 -g
ifeq ($(SANITIZE),1)
OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN    = -fsanitize=address,undefined
endif
DEFS    = -D_GNU_SOURCE -DTR_SYSCONFDIR='"$(SYSCONFDIR)/triage"' -DTR_DATADIR='"$(DATADIR)/triage"'
ALL_CFLAGS = -std=gnu11 -Isrc $(DEFS) $(WARN) $(PKG_CFLAGS) $(OPT) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDSAN) $(LDFLAGS)

# Quiet by default; `make V=1` shows the commands.
ifeq ($(V),1)
Q =
say = @true
else
Q = @
say = @printf '  %-6s %s\n'
endif

LIB_SRC  := $(sort $(wildcard src/core/*.c src/store/*.c src/channels/*.c src/daemon/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_SUPPORT_SRC := $(sort $(wildcard tests/unit/support/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILDDIR)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILDDIR)/obj/%.o)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:%.c=$(BUILDDIR)/obj/%.o)
LIB      := $(BUILDDIR)/libtriage.a
BIN      := $(BUILDDIR)/triage
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILDDIR)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILDDIR)/bench/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

.PHONY: all tests asan-tests asan-integration valgrind fuzz-build check bench bench-build compare fuzz demo install clean help
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BIN)

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'

$(BUILDDIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(MALLOC_LIBS) $(PKG_LIBS)

$(BUILDDIR)/tests/%: $(BUILDDIR)/obj/tests/unit/%.o $(TEST_SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJ) $(LIB) $(MALLOC_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS)

$(BUILDDIR)/bench/%: $(BUILDDIR)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(MALLOC_LIBS) $(PKG_LIBS)

# tests/integration/milter-bench.sh drives the milter with a bench program.
tests: $(BIN) $(TEST_BIN) $(BUILDDIR)/bench/milter_driver

# The same unit tests and binary, built with ASan+UBSan into build/asan
# (build/asan/triage, build/asan/tests/test_*).
asan-tests:
	$(Q)$(MAKE) --no-print-directory BUILDDIR=build/asan SANITIZE=1 tests

# The integration suite with instrumented triage (docs/testing.md, "Sanitizers
# and valgrind"): sanitizer reports in build/asan-logs, memcheck logs in
# build/valgrind; either fails on any error or definite leak.
asan-integration: all tests asan-tests
	tests/instrumented asan

valgrind: all tests
	tests/instrumented valgrind

# libFuzzer targets: clang, ASan+UBSan, one binary per tests/fuzz/fuzz_*.c
FUZZ_CFLAGS = -std=gnu11 -Isrc $(DEFS) $(WARN) -Wno-strict-prototypes $(PKG_CFLAGS) -O1 -g \
	-fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(say) CLANG $<
	$(Q)clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/libtriage.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o build/fuzz/libtriage.a
	$(say) LINK $@
	$(Q)clang -fsanitize=fuzzer,address,undefined -o $@ $< build/fuzz/libtriage.a $(PKG_LIBS)
fuzz-build: $(FUZZ_BIN)

check: all tests asan-tests fuzz-build
	tests/run

bench-build: all $(BENCH_BIN)

bench: bench-build
	bench/run

compare: bench-build
	bench/compare.sh

fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_SECONDS)

demo: all
	contrib/demo/run

# Configuration goes to SYSCONFDIR/triage (never overwritten: an operator's
# edits stay), shipped data to DATADIR/triage: templates, sentiment
# lexicons, language fingerprints.  The installed triage.conf names the data
# by its installed path (in the source tree it is ../templates, sentiment/,
# lang/), so `triage check-config` passes on a fresh install.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/triage/rules.d $(DESTDIR)$(DATADIR)/triage/lang
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/triage
	for f in conf/*.conf conf/rules.d/*.conf; do \
		[ -e "$$f" ] || continue; \
		dest="$(DESTDIR)$(SYSCONFDIR)/triage/$${f#conf/}"; \
		[ ! -e "$$dest" ] || continue; \
		if [ "$$f" = conf/triage.conf ]; then \
			sed -e 's|^language_fingerprints = lang/|language_fingerprints = $(DATADIR)/triage/lang/|' \
			    -e 's,^\(sentiment_lexicon\|emoji_lexicon\|support_lexicon\) = sentiment/,\1 = $(DATADIR)/triage/sentiment/,' \
			    -e 's|^templates = \.\./templates$$|templates = $(DATADIR)/triage/templates|' \
			    "$$f" >"$$dest.new" && chmod 644 "$$dest.new" && mv "$$dest.new" "$$dest"; \
		else \
			install -m 644 "$$f" "$$dest"; \
		fi; \
	done
	cp -R templates $(DESTDIR)$(DATADIR)/triage/
	if [ -d conf/sentiment ]; then cp -R conf/sentiment $(DESTDIR)$(DATADIR)/triage/; fi
	install -m 644 conf/lang/*.conf $(DESTDIR)$(DATADIR)/triage/lang/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
