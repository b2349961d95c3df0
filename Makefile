# sluice: one entry point. `make V=1` shows the commands.
VERSION      ?= 0.1.0
BUILD        ?= build
PREFIX       ?= /usr/local
DESTDIR      ?=
SBINDIR      ?= $(PREFIX)/sbin
BINDIR       ?= $(PREFIX)/bin
MANDIR       ?= $(PREFIX)/share/man
UNITDIR      ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
CLANG        ?= clang
BPFTOOL      ?= bpftool
CC           ?= cc
VMLINUX_BTF  ?= /sys/kernel/btf/vmlinux

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
# The BPF objects are intermediates of the skeletons; keep them for bpftool and rebuilds.
.SECONDARY:
.SUFFIXES:

PKGS         := libbpf yaml-0.1 jansson libmicrohttpd libcurl libnl-route-3.0 libssl libcrypto
WARN         := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
                -Wno-format-zero-length
SANITIZERS   := -fsanitize=address,undefined -fno-omit-frame-pointer
SAN_FLAGS    := $(if $(SAN),$(SANITIZERS))
CFLAGS       ?= -O2 -g
ALL_CFLAGS   := -std=gnu11 $(CFLAGS) $(WARN) $(SAN_FLAGS) -MMD -MP -D_GNU_SOURCE \
                -DSLUICE_VERSION='"$(VERSION)"' -Iinclude -Iuserspace/lib -I$(BUILD) \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS       := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lelf -lz
LDFLAGS      ?=
ALL_LDFLAGS  := $(LDFLAGS) $(SAN_FLAGS)

ARCH         := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_CFLAGS   := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
                -Wno-unused-parameter -MMD -MP -Iinclude -Ibpf -I$(BUILD)

BPF_SRCS     := $(wildcard bpf/*.bpf.c)
BPF_OBJS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS        := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

LIB_SRCS     := $(wildcard userspace/lib/*.c)
LIB_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
AGENT_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard userspace/agent/*.c))
CLI_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(wildcard userspace/cli/*.c))
TEST_SRCS    := $(wildcard tests/*.c)
TEST_OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRCS))
VMT_TOOLS    := $(patsubst vmtests/tools/%.c,$(BUILD)/vmtests/%,$(wildcard vmtests/tools/*.c))

.PHONY: all deps test unit vmtest valgrind demo lint format clean install bench
all: $(BUILD)/sluiced $(BUILD)/sluicectl $(VMT_TOOLS)

deps:
	$(Q)tools/deps.sh

# vmlinux.h is generated from the build machine's BTF rather than checked in:
# the programs are CO-RE, so field offsets are relocated at load time and the
# exact kernel the header came from does not matter; this avoids a 3 MB blob.
$(BUILD)/vmlinux.h: | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<)) > $@

$(BUILD)/%.o: %.c | $(BUILD)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# The service map page (GET /ui), embedded in sluiced as a C array.
$(BUILD)/ui_html.h: userspace/ui/graph.html userspace/ui/embed.sh | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)userspace/ui/embed.sh $< $@ sl_ui_html && touch $@
$(BUILD)/userspace/agent/http_pages.o: $(BUILD)/ui_html.h

# The commit the binaries report (`sluiced --version`); "unknown" outside git.
# commit.h is rewritten only when the commit changes, so only kfeatures.o rebuilds.
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
$(BUILD)/commit.h: FORCE | $(BUILD)
	$(Q)printf '#define SLUICE_COMMIT "%s"\n' '$(COMMIT)' >$@.tmp && \
		{ cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@; }
$(BUILD)/userspace/lib/kfeatures.o: $(BUILD)/commit.h
.PHONY: FORCE

# An object that includes a skeleton must wait for it before its first compile (then the -MMD
# deps track it): each such source names its skeletons in `#include "NAME.skel.h"` lines.
SKEL_USERS   := $(shell grep -l '^\#include "[a-z_]*\.skel\.h"' $(LIB_SRCS) $(TEST_SRCS) \
                userspace/agent/*.c userspace/cli/*.c 2>/dev/null)
$(foreach src,$(SKEL_USERS),$(eval $(BUILD)/$(src:.c=.o): $(addprefix $(BUILD)/, \
	$(shell sed -n 's/^\#include "\([a-z_]*\.skel\.h\)".*/\1/p' $(src)))))

# Switching SAN on or off rebuilds every object and tool: they depend on this stamp, which is
# rewritten only when the sanitizer flags change (so `make test SAN=1`, then `make test`, works).
$(BUILD)/san.stamp: FORCE | $(BUILD)
	$(Q)printf '%s\n' '$(SAN_FLAGS)' >$@.tmp && \
		{ cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@; }
$(LIB_OBJS) $(AGENT_OBJS) $(CLI_OBJS) $(TEST_OBJS) $(VMT_TOOLS): $(BUILD)/san.stamp

$(BUILD)/libsluice.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/sluiced: $(AGENT_OBJS) $(BUILD)/libsluice.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sluicectl: $(CLI_OBJS) $(BUILD)/libsluice.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/vmtests/%: vmtests/tools/%.c | $(BUILD)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -MMD -MP $< -o $@

# sl_churn drives the control API over its unix socket: libcurl.
$(BUILD)/vmtests/sl_churn: vmtests/tools/sl_churn.c | $(BUILD)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -MMD -MP $< \
		$(shell pkg-config --libs libcurl) -o $@

# spans_dump reads the pinned sluice_spans ring buffer: libbpf, the ABI header, jansson.
$(BUILD)/vmtests/spans_dump: vmtests/tools/spans_dump.c | $(BUILD)
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -MMD -MP -Iinclude $< \
		-lbpf -ljansson -o $@

$(BUILD)/unit-tests: $(TEST_OBJS) $(BUILD)/libsluice.a
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(LDLIBS) -lcriterion -lm -o $@

$(BUILD):
	$(Q)mkdir -p $@

unit: $(BUILD)/unit-tests
	$(Q)$(BUILD)/unit-tests --jobs 2

# The unit tests under valgrind (a build without SAN: the two do not mix). Criterion runs each
# test in a forked child; --jobs 1 keeps them in order. tests/valgrind.supp holds bpf(2) noise.
VALGRIND     ?= valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
                --trace-children=yes --trace-children-skip='/bin/sh,/usr/bin/*' \
                --suppressions=tests/valgrind.supp
valgrind: $(BUILD)/unit-tests
	$(Q)$(VALGRIND) $(BUILD)/unit-tests --jobs 1

vmtest: all
	$(Q)vmtests/run.sh

# Debian's own kernel (6.1) in qemu (KVM, else TCG): the agent loads every BPF program and a
# connect-LB check runs, then the VMK_TESTS vmtests: by default 81-ktls (mTLS tunnels with kTLS,
# which only that kernel has; about 1 min under TCG), 47-sockdestroy (that kernel has no
# bpf_sock_destroy: the agent says so and keeps the rest) and 46-zone (with agent.zone set the
# connect program carries the zone pick, the largest it gets: 6.1's verifier must take it).
# VMK_TESTS="81-ktls 10-lb" runs others. See vmtests/kernels/run.sh.
VMK_TESTS ?= 81-ktls 47-sockdestroy 46-zone
# The libraries a program linked with build/libsluice.a needs (the vmtests' own drivers).
.PHONY: print-ldlibs
print-ldlibs:
	@echo '$(LDLIBS)'

.PHONY: vmtest-kernels
vmtest-kernels: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) vmtests/kernels/run.sh $(VMK_TESTS)

# With SAN=1 any sanitizer report fails the run: ASan and UBSan halt on the first error, LSan
# checks for leaks at exit; VT_SAN_FLAGS lets vmtests that compile a driver link libsluice.a.
SAN_ENV      := $(if $(SAN),ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:print_stacktrace=1 \
                UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 VT_SAN_FLAGS='$(SANITIZERS)')
test: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/unit-tests
	$(Q)$(SAN_ENV) $(BUILD)/unit-tests --jobs 2
	$(Q)$(SAN_ENV) vmtests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh

# Comparative benchmarks (root): sluice, direct, iptables and nftables DNAT, HAProxy.
# `make bench QUICK=1` is the short run CI uses. Report: bench/results/.
bench: all
	$(Q)QUICK=$(or $(QUICK),0) tools/bench/bench.sh

# libFuzzer targets, tests/fuzz/fuzz_<name>.c, built with clang into $(BUILD)/fuzz/ (apart from
# the gcc objects). `make fuzz FUZZ_SECONDS=N` runs each for N seconds from the seeds in
# tests/fuzz/corpus/<name>/; what it learns goes to $(BUILD)/fuzz/corpus/<name>/, crashes to
# $(BUILD)/fuzz/crash-<name>-*. `make fuzz-<name>` runs one.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 -g -O1 $(WARN) $(FUZZ_SAN) -D_GNU_SOURCE -Iinclude -Iuserspace/lib \
                $(shell pkg-config --cflags yaml-0.1 jansson 2>/dev/null)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB     := $(patsubst %,$(BUILD)/fuzz/lib/%.o,config config_yaml config_agent config_services config_mtls \
                config_tracing config_identities services parse prom events registry registry_store problem mem \
                etcd_codec etcd_parse registry_merge hidx)
$(BUILD)/fuzz/lib/%.o: userspace/lib/%.c
	@mkdir -p $(@D)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(call msg,FUZZ-LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $(filter %.c %.o,$^) \
		$(shell pkg-config --libs yaml-0.1 jansson libcurl 2>/dev/null) -lm -o $@
.PHONY: fuzz $(addprefix fuzz-,$(FUZZ_NAMES))
fuzz: $(addprefix fuzz-,$(FUZZ_NAMES))
$(addprefix fuzz-,$(FUZZ_NAMES)): fuzz-%: $(BUILD)/fuzz/fuzz_%
	@mkdir -p $(BUILD)/fuzz/corpus/$*
	$(call msg,FUZZ,$* for $(FUZZ_SECONDS) s)
	$(Q)$< -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/crash-$*- $(BUILD)/fuzz/corpus/$* tests/fuzz/corpus/$* \
		2>$(BUILD)/fuzz/$*.log || { tail -n 60 $(BUILD)/fuzz/$*.log; exit 1; }
	$(Q)grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' $(BUILD)/fuzz/$*.log | \
		sed 's/^/    /'

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find bpf include userspace tests vmtests tools -name '*.[ch]')

lint:
	$(Q)clang-format --dry-run -Werror $(C_FILES)
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --std=c11 -Iinclude -Iuserspace/lib -D__linux__ \
		--include=/usr/include/bpf/libbpf_common.h \
		--suppress=missingIncludeSystem --suppress='unknownMacro:tests/*' \
		userspace tests vmtests/tools

format:
	$(Q)clang-format -i $(C_FILES)

clean:
	$(Q)rm -rf $(BUILD)

# Manual pages: scdoc sources in man/, roff generated (timestamped with the commit's date).
MAN_PAGES    := $(patsubst man/%.scd,$(BUILD)/man/%,$(wildcard man/*.scd))
MAN_DEST      = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
.PHONY: man uninstall deb
man: $(MAN_PAGES)
$(BUILD)/man/%: man/%.scd | $(BUILD)
	@mkdir -p $(@D)
	$(call msg,SCDOC,$@)
	$(Q)$(if $(SOURCE_DATE_EPOCH),SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH)) scdoc <$< >$@

# Bash completion, generated from sluicectl's own command table.
$(BUILD)/sluicectl.bash: $(BUILD)/sluicectl
	$(call msg,GEN,$@)
	$(Q)$< completion bash >$@

# The unit, binaries, default config (never overwritten), man pages and completion.
install: all man $(BUILD)/sluicectl.bash
	install -D -m 0755 $(BUILD)/sluiced $(DESTDIR)$(SBINDIR)/sluiced
	install -D -m 0755 $(BUILD)/sluicectl $(DESTDIR)$(BINDIR)/sluicectl
	test -e $(DESTDIR)/etc/sluice/sluice.yaml || \
		install -D -m 0644 config/sluice.yaml $(DESTDIR)/etc/sluice/sluice.yaml
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/sluiced.service.in >$(DESTDIR)$(UNITDIR)/sluiced.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sluiced.service
	for p in $(MAN_PAGES); do n=$${p##*/}; \
		install -D -m 0644 $$p $(DESTDIR)$(MANDIR)/man$${n##*.}/$$n || exit 1; done
	install -D -m 0644 $(BUILD)/sluicectl.bash $(DESTDIR)$(BASHCOMPDIR)/sluicectl

# Removes what install put there; the config only if it is still the default one.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/sluiced $(DESTDIR)$(BINDIR)/sluicectl \
		$(DESTDIR)$(UNITDIR)/sluiced.service $(DESTDIR)$(BASHCOMPDIR)/sluicectl \
		$(foreach p,$(MAN_PAGES),$(call MAN_DEST,$(p)))
	@if cmp -s config/sluice.yaml $(DESTDIR)/etc/sluice/sluice.yaml; then \
		echo "rm -f $(DESTDIR)/etc/sluice/sluice.yaml"; \
		rm -f $(DESTDIR)/etc/sluice/sluice.yaml; rmdir $(DESTDIR)/etc/sluice 2>/dev/null || :; \
	elif [ -e $(DESTDIR)/etc/sluice/sluice.yaml ]; then \
		echo "uninstall: kept $(DESTDIR)/etc/sluice/sluice.yaml: it differs from the default"; \
	fi

# sluice_<version>_<arch>.deb with dpkg-deb (tools/mkdeb.sh): a separate build with Debian's
# hardening flags, installed with PREFIX=/usr into a staging tree; lintian checks it if present.
DEB_DIR      := $(BUILD)/deb
DEB_OUT      ?= $(BUILD)
DEB_FLAGS     = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
deb:
	$(call msg,DEB,$(DEB_OUT)/sluice_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null).deb)
	$(Q)rm -rf $(DEB_DIR)/stage
	$(Q)$(MAKE) --no-print-directory -s BUILD=$(DEB_DIR)/build \
		CFLAGS="$$($(DEB_FLAGS) CFLAGS) $$($(DEB_FLAGS) CPPFLAGS)" \
		LDFLAGS="$$($(DEB_FLAGS) LDFLAGS)" PREFIX=/usr UNITDIR=/lib/systemd/system \
		DESTDIR=$(abspath $(DEB_DIR))/stage/debian/sluice install >/dev/null
	$(Q)deb=$$(tools/mkdeb.sh $(DEB_DIR)/stage $(VERSION) $(DEB_OUT)) && \
		if command -v lintian >/dev/null; then \
			lintian --fail-on error,warning "$$deb"; \
		fi

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
