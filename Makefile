# fedwall - GNU Makefile.  `make` builds build/fedwall; `make check` runs
# every suite, normally and under ASan+UBSan; `make demo` runs the main job;
# `make install` lays out PREFIX (default /usr/local) under DESTDIR.
# CC, CFLAGS, CPPFLAGS, LDFLAGS, AR and PKG_CONFIG come from the command line
# or the environment the way Buildroot and Yocto pass them: they add to the
# flags the build needs (-std, warnings, -I., -MMD), never replace them.

CC ?= cc
PKG_CONFIG ?= pkg-config
BUILD ?= build
SAN ?=

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/fedwall
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# Units live beside the system's own for PREFIX=/usr (Debian 12:
# /lib/systemd/system), else under PREFIX where `systemctl link` finds them.
ifeq ($(PREFIX),/usr)
SYSTEMDUNITDIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
else
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
endif
INSTALL ?= install

# Read when make starts: the targets that install them first (demo, bench,
# check, ...) run `deps`, then build in a make of their own that reads them
# anew.
PKGS := yaml-0.1 libnftnl libmnl libunbound libcap-ng libcurl jansson
# One package at a time: Debian 12's libunbound.pc names libevent (not
# installed, not needed) for its static build, which fails --cflags for all.
PKG_CFLAGS := $(foreach p,$(PKGS),$(shell $(PKG_CONFIG) --cflags $(p) 2>/dev/null))
# libcurl's headers only: refresh/fetch.c opens the library when it first
# fetches (dlopen), since linking it loads ~30 libraries into every command.
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
CFLAGS ?= -O2 -g
# Sanitizer flags go after the user's CFLAGS (so -O1 wins) in variables of
# their own, so that CFLAGS=... on the command line cannot drop them.
ifneq ($(SAN),)
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
endif
# FUZZ=1 (with CC=clang): libFuzzer instrumentation on top of ASan+UBSan,
# for the fuzz targets (tests/fuzz/, `make fuzz`).
ifneq ($(FUZZ),)
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
endif
ALL_CFLAGS = -std=gnu11 $(WARN) -I. $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(SAN_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SAN_LDFLAGS)
LIBS := $(PKG_LIBS)

ifeq ($(V),1)
Q :=
quiet = @:
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

# Layers, lowest first; a layer includes only the headers of those before it.
LIB_DIRS := common policy refresh generator nft engine
LIB_SRC := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Lab helpers (packet probes): standalone programs, no libfedwall.
LAB_SRC := $(wildcard tests/lab/*.c)
LAB_BIN := $(LAB_SRC:tests/lab/%.c=$(BUILD)/tests/lab/%)
# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang into FUZZ_BUILD.
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

all: $(BUILD)/fedwall

$(BUILD)/%.o: %.c | pkgs
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libfedwall.a: $(LIB_OBJ)
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/fedwall: $(CLI_OBJ) $(BUILD)/libfedwall.a
	$(quiet) LINK $@
	$(Q)$(CC) $(CFLAGS) $(SAN_CFLAGS) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libfedwall.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libfedwall.a
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(CFLAGS) $(SAN_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libfedwall.a $(LIBS)

$(BUILD)/tests/lab/%: $(BUILD)/tests/lab/%.o
	$(quiet) LINK $@
	$(Q)$(CC) $(CFLAGS) $(SAN_CFLAGS) $(ALL_LDFLAGS) -o $@ $<

$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/libfedwall.a
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(CFLAGS) $(SAN_CFLAGS) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(BUILD)/libfedwall.a $(LIBS)

tests: $(BUILD)/fedwall $(UNIT_BIN) $(LAB_BIN)

# Says what is missing instead of a compiler error about yaml.h.
pkgs:
	@$(PKG_CONFIG) --libs $(PKGS) >/dev/null 2>&1 || { echo "fedwall: the libraries" \
		"$(PKGS) are not installed: run 'make deps' (as root) first" >&2; exit 1; }

# The fuzz targets (needs clang with libFuzzer: Debian's clang and
# libclang-rt-dev).  `make fuzz` runs each for FUZZ_SECONDS (corpus grown
# in FUZZ_BUILD/corpus, crashes kept in FUZZ_BUILD/crashes); `make check`
# runs each for a few seconds through tests/fuzz.sh.
fuzz-targets:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) FUZZ=1 \
		CFLAGS="-O1 -g" fuzz-bins

fuzz-bins: $(FUZZ_BIN)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-targets
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_LONG=1 sh tests/fuzz.sh

# The unit tests and the shell suites that need no kernel, under valgrind
# (memcheck: errors and definite/indirect leaks fail); see docs/ROBUSTNESS.md.
VALGRIND ?= valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --quiet
valgrind: deps
	@$(MAKE) --no-print-directory tests
	@tools/valgrind.sh $(BUILD) "$(VALGRIND)"

deps:
	@tools/deps.sh

# The suite runs twice: plain, and under AddressSanitizer + UBSan.  When
# clang is installed, the tree must also build with it without a warning
# (`make check-clang` runs the suites on that build too).
check: deps
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory tests BUILD=build-san SAN=1
	@if command -v clang >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory tests BUILD=build-clang CC=clang \
			CFLAGS="-O2 -g -Werror"; \
		$(MAKE) --no-print-directory fuzz-targets || \
			echo "  SKIP    fuzz targets (clang cannot build them: libFuzzer?)"; \
	else echo "  SKIP    clang build (clang not installed)"; fi
	@tools/run-tests.sh build build-san

check-clang: deps
	@$(MAKE) --no-print-directory tests BUILD=build-clang CC=clang CFLAGS="-O2 -g -Werror"
	@tools/run-tests.sh build-clang

demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh $(BUILD)/fedwall

# Benchmarks (never part of check): ratios against baselines run side by
# side; see docs/BENCHMARKS.md.
bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(BUILD)/fedwall

# Rewrites the golden files from the current build: review the diff.
golden: all
	@tools/golden.sh $(BUILD)/fedwall

# ---- installation: PREFIX (default /usr/local) under DESTDIR ----
# The state directory (/var/lib/fedwall) is not made here: the unit
# (StateDirectory=) or the package creates it.
UNITS := fedwall.service fedwall-refresh.service fedwall-refresh.timer

install: all
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples/lists \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL) -m 755 $(BUILD)/fedwall $(DESTDIR)$(SBINDIR)/fedwall
	$(INSTALL) -m 644 docs/fedwall.8 $(DESTDIR)$(MANDIR)/man8/fedwall.8
	$(INSTALL) -m 644 docs/fedwall-policy.5 $(DESTDIR)$(MANDIR)/man5/fedwall-policy.5
	$(INSTALL) -m 644 examples/*.yaml dist/fedwall.cron $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 644 examples/lists/* $(DESTDIR)$(DOCDIR)/examples/lists/
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)/examples/ha
	$(INSTALL) -m 644 examples/ha/policy.yaml examples/ha/keepalived.conf \
		examples/ha/conntrackd.conf $(DESTDIR)$(DOCDIR)/examples/ha/
	$(INSTALL) -m 755 examples/ha/conntrackd-notify.sh $(DESTDIR)$(DOCDIR)/examples/ha/
	for u in $(UNITS); do \
		sed 's|/usr/sbin/fedwall|$(SBINDIR)/fedwall|g' dist/$$u \
			>$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		mv $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 644 dist/fedwall.bash $(DESTDIR)$(BASHCOMPDIR)/fedwall

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/fedwall $(DESTDIR)$(MANDIR)/man8/fedwall.8 \
		$(DESTDIR)$(MANDIR)/man5/fedwall-policy.5 $(DESTDIR)$(BASHCOMPDIR)/fedwall \
		$(UNITS:%=$(DESTDIR)$(SYSTEMDUNITDIR)/%)
	rm -rf $(DESTDIR)$(DOCDIR)

# Debian package (binary only) into build/deb/, from a copy of the tree so
# that dpkg-buildpackage's output does not land beside the checkout; needs
# the packaging tools (`tools/deps.sh deb`).  Never part of check.
DEB_DIR := build/deb
deb:
	@tools/deps.sh deb
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/fedwall
	{ git ls-files -co --exclude-standard -z 2>/dev/null || \
		find . \( -name 'build*' -o -name '.git' \) -prune -o -type f -print0; } | \
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C $(DEB_DIR)/fedwall
	cd $(DEB_DIR)/fedwall && dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(DEB_DIR)/*.changes
	@ls -l $(DEB_DIR)/*.deb

clean:
	rm -rf build build-san build-clang $(FUZZ_BUILD)

.PHONY: all tests pkgs deps check check-clang demo bench golden install uninstall deb clean \
	fuzz fuzz-targets fuzz-bins valgrind
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d) \
	$(LAB_SRC:%.c=$(BUILD)/%.d) $(FUZZ_SRC:%.c=$(BUILD)/%.d)
