# fedwall - GNU Makefile.  `make` builds build/fedwall; `make check` runs
# every suite, normally and under ASan+UBSan; `make demo` runs the main job.
# CC, CFLAGS, CPPFLAGS, LDFLAGS and PKG_CONFIG come from the environment the
# way Buildroot and Yocto pass them.

CC ?= cc
PKG_CONFIG ?= pkg-config
BUILD ?= build
PREFIX ?= /usr/local
SAN ?=

PKGS := yaml-0.1 libnftnl libmnl libunbound
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
CFLAGS ?= -O2 -g
ifneq ($(SAN),)
CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ALL_CFLAGS := -std=gnu11 $(WARN) -I. $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP
LIBS := $(PKG_LIBS)

ifeq ($(V),1)
Q :=
quiet = @:
else
Q := @
quiet = @printf '  %-7s %s\n'
endif

# Layers, lowest first; a layer includes only the headers of those before it.
LIB_DIRS := common policy refresh generator nft
LIB_SRC := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC := $(wildcard cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Lab helpers (packet probes): standalone programs, no libfedwall.
LAB_SRC := $(wildcard tests/lab/*.c)
LAB_BIN := $(LAB_SRC:tests/lab/%.c=$(BUILD)/tests/lab/%)

all: $(BUILD)/fedwall

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libfedwall.a: $(LIB_OBJ)
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/fedwall: $(CLI_OBJ) $(BUILD)/libfedwall.a
	$(quiet) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libfedwall.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libfedwall.a
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libfedwall.a $(LIBS)

$(BUILD)/tests/lab/%: $(BUILD)/tests/lab/%.o
	$(quiet) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $<

tests: $(BUILD)/fedwall $(UNIT_BIN) $(LAB_BIN)

deps:
	@tools/deps.sh

# The suite runs twice: plain, and under AddressSanitizer + UBSan.
check: deps
	@$(MAKE) --no-print-directory tests
	@$(MAKE) --no-print-directory tests BUILD=build-san SAN=1
	@tools/run-tests.sh build build-san

demo: deps all
	@tools/demo.sh $(BUILD)/fedwall

# Benchmarks (never part of check): ratios against baselines run side by
# side; see docs/BENCHMARKS.md.
bench: deps all
	@bench/run.sh $(BUILD)/fedwall

# Rewrites the golden files from the current build: review the diff.
golden: all
	@tools/golden.sh $(BUILD)/fedwall

clean:
	rm -rf build build-san

.PHONY: all tests deps check demo bench golden clean
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d) \
	$(LAB_SRC:%.c=$(BUILD)/%.d)
