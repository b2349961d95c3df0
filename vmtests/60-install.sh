#!/usr/bin/env bash
# make install / make uninstall into a DESTDIR: exactly the expected files with the expected
# modes (binaries, default config, unit, man pages, bash completion) for PREFIX=/usr/local and
# /usr; the unit runs the installed binary; the installed programs work; the config is never
# overwritten and uninstall keeps it when it was changed; uninstall leaves nothing else behind.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ops.sh"

command -v scdoc >/dev/null || vt_skip "scdoc is missing (make deps installs it)"
vt_init install

# expect_tree DIR PREFIX: the files under DIR, with modes, are exactly those of an install.
expect_tree() {
	local dir=$1 p=$2 got want
	got=$(cd "$dir" && find . -type f -printf '%m %P\n' | sort)
	want=$(sort <<EOF
755 ${p#/}/sbin/sluiced
755 ${p#/}/bin/sluicectl
644 etc/sluice/sluice.yaml
644 ${p#/}/lib/systemd/system/sluiced.service
644 ${p#/}/share/man/man8/sluiced.8
644 ${p#/}/share/man/man8/sluicectl.8
644 ${p#/}/share/man/man5/sluice.yaml.5
644 ${p#/}/share/bash-completion/completions/sluicectl
EOF
)
	vt_check "PREFIX=$p: exactly the 8 expected files, with their modes" \
		-d 'echo "files differ: $(diff <(echo "$want") <(echo "$got") | grep "^[<>]")"' -- [ "$got" = "$want" ]
}

for prefix in /usr/local /usr; do
	d=$VT_TMP/dest${prefix//\//-}
	op_install "$d" PREFIX="$prefix" || continue
	expect_tree "$d" "$prefix"
	unit=$d$prefix/lib/systemd/system/sluiced.service
	[ "$(op_unit_value "$unit" ExecStart)" = "$prefix/sbin/sluiced -c /etc/sluice/sluice.yaml" ] &&
		vt_pass "PREFIX=$prefix: the unit runs $prefix/sbin/sluiced" ||
		vt_fail "PREFIX=$prefix: ExecStart=$(op_unit_value "$unit" ExecStart)"
	grep -q '@' "$unit" && vt_fail "PREFIX=$prefix: unsubstituted @...@ in the unit" ||
		vt_pass "PREFIX=$prefix: the unit has no template placeholders left"
	vt_check "PREFIX=$prefix: the installed binaries run (--version, version)" \
		-d '"$d$prefix/sbin/sluiced" --version 2>&1 | head -n 2' -- eval '"$d$prefix/sbin/sluiced" --version |
		head -n 1 | grep -qE "^sluiced [0-9]+\.[0-9]+\.[0-9]+\$" &&
		"$d$prefix/bin/sluicectl" version | head -n 1 | grep -qE "^sluicectl [0-9]"'
	"$d$prefix/sbin/sluiced" -c "$d/etc/sluice/sluice.yaml" --check >/dev/null 2>&1 &&
		vt_pass "PREFIX=$prefix: the installed config is valid" ||
		vt_fail "PREFIX=$prefix: installed config: $("$d$prefix/sbin/sluiced" -c "$d/etc/sluice/sluice.yaml" --check 2>&1)"
	cmp -s "$VT_ROOT/config/sluice.yaml" "$d/etc/sluice/sluice.yaml" &&
		vt_pass "PREFIX=$prefix: the config is the commented default" ||
		vt_fail "PREFIX=$prefix: installed config differs from config/sluice.yaml"
	cmp -s "$d$prefix/share/bash-completion/completions/sluicectl" \
		<("$d$prefix/bin/sluicectl" completion bash) &&
		vt_pass "PREFIX=$prefix: the completion file is what 'sluicectl completion bash' prints" ||
		vt_fail "PREFIX=$prefix: completion file differs from the generated script"
	for page in "$d$prefix"/share/man/man*/*; do
		warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		[ -z "$warn" ] && vt_pass "man -l $(basename "$page"): renders without warnings" ||
			vt_fail "man $(basename "$page"): $warn"
	done

	# The config is never overwritten, and uninstall keeps it once it was changed.
	echo "# local change" >>"$d/etc/sluice/sluice.yaml"
	op_install "$d" PREFIX="$prefix"
	tail -n 1 "$d/etc/sluice/sluice.yaml" | grep -q "local change" &&
		vt_pass "PREFIX=$prefix: a second install keeps the changed config" ||
		vt_fail "PREFIX=$prefix: install overwrote the config"
	op_make uninstall DESTDIR="$d" PREFIX="$prefix"
	left=$(cd "$d" && find . -type f -printf '%P ')
	[ "$left" = "etc/sluice/sluice.yaml " ] &&
		vt_pass "PREFIX=$prefix: uninstall removed everything but the changed config" ||
		vt_fail "PREFIX=$prefix: after uninstall: '$left'"
	grep -q "kept $d/etc/sluice/sluice.yaml" "$VT_TMP/make.log" &&
		vt_pass "PREFIX=$prefix: uninstall says it kept the config" ||
		vt_fail "PREFIX=$prefix: uninstall did not say it kept the config: $(tail -n 3 "$VT_TMP/make.log")"
	# An unchanged config goes with the rest.
	op_install "$d" PREFIX="$prefix"
	cp "$VT_ROOT/config/sluice.yaml" "$d/etc/sluice/sluice.yaml"
	op_make uninstall DESTDIR="$d" PREFIX="$prefix"
	left=$(cd "$d" && find . -type f -printf '%P ')
	[ -z "$left" ] && [ ! -e "$d/etc/sluice" ] &&
		vt_pass "PREFIX=$prefix: uninstall of an unchanged install leaves no file" ||
		vt_fail "PREFIX=$prefix: left after uninstall: '$left'"
done

# The directories are variables: the Debian package puts the unit in /lib/systemd/system.
d=$VT_TMP/dest-deb
op_install "$d" PREFIX=/usr UNITDIR=/lib/systemd/system
[ -f "$d/lib/systemd/system/sluiced.service" ] && [ ! -e "$d/usr/lib/systemd" ] &&
	vt_pass "UNITDIR=/lib/systemd/system is honoured" || vt_fail "UNITDIR: $(cd "$d" && find . -name '*.service')"
vt_finish
