#!/usr/bin/env bash
# make deb: sluice_<version>_<arch>.deb, inspected with dpkg-deb -I/-c (fields, Depends that
# cover every library the binaries need, conffiles, maintainer scripts, the exact file list
# and modes), lintian clean at error and warning level. The maintainer scripts never enable or
# start the unit (run against a stub systemctl in a private /run). Then on this machine:
# dpkg -i installs a working sluiced and sluicectl, a disabled unit that verifies clean, and
# man pages; dpkg -r removes the datapath of an agent that ran from the package (prerm
# --teardown); dpkg --purge leaves every path the package could have touched as it was before
# anything of it ran (footprint below), on a fresh machine as on a used one.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/ops.sh"

vt_require_root
vt_require_btf
for t in dpkg dpkg-deb scdoc; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
vt_init deb

version=$(sed -n 's/^VERSION *?= *//p' "$VT_ROOT/Makefile")
arch=$(dpkg --print-architecture)
if ! op_make deb DEB_OUT="$VT_TMP"; then
	vt_fail "make deb: $(tail -n 20 "$VT_TMP/make.log")"
	vt_finish
fi
deb=$VT_TMP/sluice_${version}_${arch}.deb
[ -f "$deb" ] && vt_pass "make deb built $(basename "$deb")" || {
	vt_fail "no $deb: $(ls "$VT_TMP")"
	vt_finish
}
vt_check "lintian (run by make deb): no error or warning" \
	-d 'command -v lintian >/dev/null || echo "lintian is not installed (make deps installs it)"
		grep -E "^[EW]: " "$VT_TMP/make.log"' -- \
	eval 'command -v lintian >/dev/null && ! grep -qE "^[EW]: " "$VT_TMP/make.log"'

# --- dpkg-deb -I -----------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = sluice ] && [ "$(field Version)" = "$version" ] &&
	[ "$(field Architecture)" = "$arch" ] && vt_pass "Package sluice, Version $version, Architecture $arch" ||
	vt_fail "control: $(dpkg-deb -f "$deb")"
depends=$(field Depends)
x=$VT_TMP/x
dpkg-deb -x "$deb" "$x"
# owner PATH: the package that holds a library, whichever side of usrmerge dpkg knows it by.
owner() {
	local c
	for c in "$1" "$(readlink -f "$1")"; do
		for c in "$c" "${c#/usr}" "/usr$c"; do
			dpkg -S "$c" 2>/dev/null | head -n 1 | cut -d: -f1 | grep . && return 0
		done
	done
	return 1
}
# lib_owner SONAME: the package of the first copy in ld.so's cache that a package holds (a
# library a make install left in /usr/local/lib, listed first, is nobody's).
lib_owner() {
	local path
	for path in $(ldconfig -p | awk -v l="$1" '$1 == l { print $NF }'); do
		owner "$path" && return 0
	done
	return 1
}
missing=
for lib in $(objdump -p "$x/usr/sbin/sluiced" "$x/usr/bin/sluicectl" | awk '$1 == "NEEDED" { print $2 }' | sort -u); do
	pkg=$(lib_owner "$lib")
	[[ ", $depends," == *", $pkg "* || ", $depends," == *", $pkg,"* ]] || missing+="$lib($pkg) "
done
[ -z "$missing" ] && vt_pass "Depends covers every NEEDED library: $depends" ||
	vt_fail "Depends '$depends' misses $missing"
# Without dpkg-shlibdeps, mkdeb.sh maps NEEDED to packages itself: the same packages.
cp -a "$VT_ROOT/build/deb/stage" "$VT_TMP/stage"
fb=$(DEB_SHLIBDEPS=0 "$VT_ROOT/tools/mkdeb.sh" "$VT_TMP/stage" "$version" "$VT_TMP/fallback" 2>&1)
names() { tr ',' '\n' | sed 's/(.*//; s/ //g' | grep . | sort | tr '\n' ' '; }
[ -f "$fb" ] && [ "$(dpkg-deb -f "$fb" Depends | names)" = "$(names <<<"$depends")" ] &&
	vt_pass "the Depends fallback (no dpkg-shlibdeps) names the same packages" ||
	vt_fail "fallback Depends: '$(dpkg-deb -f "$fb" Depends 2>&1)' vs '$depends'"
dpkg-deb -I "$deb" >"$VT_TMP/info"
for s in postinst prerm postrm; do
	grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$s " "$VT_TMP/info" && vt_pass "maintainer script $s, executable" ||
		vt_fail "no executable $s: $(cat "$VT_TMP/info")"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$VT_TMP/conffiles"
[ "$(cat "$VT_TMP/conffiles")" = /etc/sluice/sluice.yaml ] && vt_pass "conffiles: /etc/sluice/sluice.yaml" ||
	vt_fail "conffiles: $(cat "$VT_TMP/conffiles")"

# --- dpkg-deb -c -----------------------------------------------------------------------------
got=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | sort)
want=$(sort <<'EOF'
-rwxr-xr-x root/root ./usr/sbin/sluiced
-rwxr-xr-x root/root ./usr/bin/sluicectl
-rw-r--r-- root/root ./etc/sluice/sluice.yaml
-rw-r--r-- root/root ./lib/systemd/system/sluiced.service
-rw-r--r-- root/root ./usr/share/man/man8/sluiced.8.gz
-rw-r--r-- root/root ./usr/share/man/man8/sluicectl.8.gz
-rw-r--r-- root/root ./usr/share/man/man5/sluice.yaml.5.gz
-rw-r--r-- root/root ./usr/share/bash-completion/completions/sluicectl
-rw-r--r-- root/root ./usr/share/doc/sluice/copyright
-rw-r--r-- root/root ./usr/share/doc/sluice/changelog.gz
EOF
)
[ "$got" = "$want" ] && vt_pass "dpkg-deb -c: the 10 expected files, root-owned, with their modes" ||
	vt_fail "dpkg-deb -c differs: $(diff <(echo "$want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
bad=$(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ && $1 != "drwxr-xr-x" { print $6 }')
[ -z "$bad" ] && vt_pass "every directory is 0755" || vt_fail "directory modes: $bad"
readelf -S "$x/usr/sbin/sluiced" "$x/usr/bin/sluicectl" | grep -qE '\.(symtab|debug_info)' &&
	vt_fail "binaries are not stripped" || vt_pass "binaries are stripped (no .symtab, no .debug_info)"
[ "$(op_unit_value "$x/lib/systemd/system/sluiced.service" ExecStart)" = "/usr/sbin/sluiced -c /etc/sluice/sluice.yaml" ] &&
	vt_pass "the packaged unit runs /usr/sbin/sluiced" || vt_fail "packaged ExecStart"

# --- the file system before anything of the package runs --------------------------------------
# dpkg takes a lock that a concurrent apt may hold: retry for up to 2 minutes.
dpkg_do() {
	local i
	for ((i = 0; i < 60; i++)); do
		DEBIAN_FRONTEND=noninteractive dpkg "$@" >"$VT_TMP/dpkg.out" 2>&1 && return 0
		grep -qi 'lock' "$VT_TMP/dpkg.out" || return 1
		sleep 2
	done
	return 1
}
# A run of this test that was killed before its cleanup leaves the package (or its conffile)
# behind, with a config that names that run's bpffs: no operator's agent. Purge it, or every
# later run would skip.
if grep -qE '^  bpffs: /sys/fs/bpf/sl[0-9x]+-deb$' /etc/sluice/sluice.yaml 2>/dev/null &&
	dpkg-query -W sluice >/dev/null 2>&1; then
	vt_log "purging the sluice package that a killed run of this test left"
	dpkg_do --purge sluice || vt_log "dpkg --purge sluice: $(tail -n 3 "$VT_TMP/dpkg.out")"
fi
# footprint: mode and type (or "absent") of every path the package can leave behind: those in
# the .deb and the directories on their way; the directories its unit declares for run time
# (RuntimeDirectory= and the like) with what is in them; and whatever is named after it where
# dpkg, maintainer scripts and systemd put things (enablement links, deb-systemd-helper state,
# dpkg's records, files dropped into /etc or /usr). Nothing else is compared: the machine changes
# other paths as it gets used (/run/systemd/systemd-units-load appears the first time a systemd
# tool runs, man-db caches pages in /var/cache/man, a concurrent apt installs packages, someone
# keeps a checkout in /var/tmp), and whether it did must not decide this test.
footprint() {
	local k d
	{
		dpkg-deb -c "$deb" | awk '{ p = $6; sub(/^\./, "", p); sub(/\/$/, "", p); if (p != "") print p }'
		for k in RuntimeDirectory:/run StateDirectory:/var/lib LogsDirectory:/var/log \
			CacheDirectory:/var/cache ConfigurationDirectory:/etc; do
			for d in $(op_unit_value "$x/lib/systemd/system/sluiced.service" "${k%%:*}"); do
				find "${k#*:}/$d" 2>/dev/null || echo "${k#*:}/$d"
			done
		done
		find /etc /run /usr/lib /usr/share /lib/systemd /var/lib/systemd /var/lib/dpkg/info \
			/var/lib/ucf -xdev -path /run/netns -prune -o -path '*sluice*' -print 2>/dev/null
	} | sort -u | while IFS= read -r p; do
		if [ -e "$p" ] || [ -L "$p" ]; then
			stat -c '%n %a %F' -- "$p"
		else
			echo "$p absent"
		fi
	done
}
# Before anything of the package ran: the maintainer scripts below run on this file system.
footprint >"$VT_TMP/before"
# Someone's sluice is set up here (decided now, not after the scripts below ran): the dpkg part
# below then skips.
occupied=
if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q installed; then
	occupied="a sluice package is installed here already; not touching it"
elif [ -e /etc/sluice ] || [ -e /sys/fs/bpf/sluice ] || [ -e /run/sluice ] || [ -e /var/lib/sluice ]; then
	occupied="/etc/sluice, /sys/fs/bpf/sluice, /run/sluice or /var/lib/sluice exists: an agent is set up here"
fi

# --- the maintainer scripts with systemd "running": stubs record what they are asked ----------
dpkg-deb -e "$deb" "$VT_TMP/ctrl"
stubs=$VT_TMP/stubs
mkdir -p "$stubs"
for c in systemctl deb-systemd-invoke deb-systemd-helper invoke-rc.d; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$c" "$stubs" >"$stubs/$c"
	chmod 0755 "$stubs/$c"
done
script() { # script NAME ARGS...: run a maintainer script with a private /run/systemd/system
	: >"$stubs/calls"
	unshare --mount --propagation private sh -c \
		'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && exec env PATH="$0:/usr/bin:/bin" sh "$@"' \
		"$stubs" "$VT_TMP/ctrl/$1" "${@:2}" >"$VT_TMP/script.out" 2>&1
}
script postinst configure ""
calls=$(tr '\n' ';' <"$stubs/calls")
vt_check "postinst configure (new install): daemon-reload only, neither enable nor start" \
	-d 'echo "calls [$calls] $(cat "$VT_TMP/script.out")"' -- [ "$calls" = "systemctl --system daemon-reload;" ]
script postinst configure 0.0.1
calls=$(tr '\n' ';' <"$stubs/calls")
[ "$calls" = "systemctl --system daemon-reload;deb-systemd-invoke try-restart sluiced.service;" ] &&
	vt_pass "postinst configure (upgrade): restarts the agent only if it runs (try-restart)" ||
	vt_fail "postinst upgrade: calls '$calls'"
grep -qE '(enable|start|mask)' <(grep -vE 'try-restart|^#' "$VT_TMP/ctrl/postinst") &&
	vt_fail "postinst mentions enable/start: $(grep -nE 'enable|start' "$VT_TMP/ctrl/postinst")" ||
	vt_pass "postinst has no enable/start/mask"
script prerm upgrade 0.2.0
[ ! -s "$stubs/calls" ] && vt_pass "prerm upgrade: touches nothing (the agent keeps serving)" ||
	vt_fail "prerm upgrade: $(cat "$stubs/calls")"

# --- dpkg -i / -r / --purge on this machine --------------------------------------------------
[ -n "$occupied" ] && vt_skip "$occupied"
PURGED=0
# Never leave the package behind. Runs before agent.sh's hook: the agent's datapath goes first,
# with the build's sluiced, while the packaged config still names it.
deb_cleanup() {
	[ -n "$VA_PID" ] && kill -TERM "$VA_PID" 2>/dev/null && wait "$VA_PID" 2>/dev/null
	VA_PID=
	[ -n "$VA_CONFIG" ] && [ -f "$VA_CONFIG" ] && "$VT_ROOT/build/sluiced" -c "$VA_CONFIG" --teardown >/dev/null 2>&1
	if [ "$PURGED" = 0 ] && dpkg-query -W sluice >/dev/null 2>&1; then
		dpkg_do --purge sluice || echo "cleanup: dpkg --purge sluice failed: $(cat "$VT_TMP/dpkg.out")" >&2
	fi
	VA_CONFIG=
	return 0
}
vt_on_cleanup deb_cleanup
enablement() { find /etc/systemd/system -name 'sluiced.service' 2>/dev/null | sort; }
enablement >"$VT_TMP/enabled-before"
vt_check "dpkg -i $(basename "$deb")" -d 'cat "$VT_TMP/dpkg.out"' -- dpkg_do -i "$deb" || vt_finish
dpkg-query -W -f='${Status}' sluice | grep -q "install ok installed" && vt_pass "dpkg: install ok installed" ||
	vt_fail "status: $(dpkg-query -W -f='${Status}' sluice)"
# By their paths: a sluicectl or man page of a `make install` in /usr/local comes first in PATH
# and MANPATH.
/usr/sbin/sluiced --version | head -n 1 | grep -q "^sluiced $version$" && /usr/bin/sluicectl version >/dev/null &&
	vt_pass "the packaged sluiced and sluicectl run (their libraries are there)" ||
	vt_fail "packaged binaries: $(/usr/sbin/sluiced --version 2>&1 | head -n 3)"
mans=$(man -w sluiced.8 sluicectl.8 sluice.yaml.5 2>&1 | tr '\n' ' ')
[ "$mans" = "/usr/share/man/man8/sluiced.8.gz /usr/share/man/man8/sluicectl.8.gz /usr/share/man/man5/sluice.yaml.5.gz " ] &&
	vt_pass "man finds the packaged sluiced(8), sluicectl(8), sluice.yaml(5)" || vt_fail "man -w: $mans"
vt_check "systemd-analyze verify on the installed unit: clean" -O "$VT_TMP/verify.out" -- \
	eval 'systemd-analyze verify /lib/systemd/system/sluiced.service && [ ! -s "$VT_TMP/verify.out" ]'
enabled=$(enablement | comm -13 "$VT_TMP/enabled-before" -)
[ -z "$enabled" ] && vt_pass "the unit is not enabled (no new symlink under /etc/systemd/system)" ||
	vt_fail "enabled: $enabled"
bash -c '. /usr/share/bash-completion/completions/sluicectl && complete -p sluicectl' 2>/dev/null |
	grep -q _sluicectl && vt_pass "the packaged completion registers for sluicectl" ||
	vt_fail "packaged completion"

# An agent from the package, on this test's world, through a changed conffile.
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
VA_SLUICED=/usr/sbin/sluiced
VA_SLUICECTL=/usr/bin/sluicectl
va_config /etc/sluice/sluice.yaml <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    backends:
      - address: 198.18.1.2:8080
YAML
VA_CONFIG=/etc/sluice/sluice.yaml
if va_start /etc/sluice/sluice.yaml; then
	vt_client tcp 198.19.0.10:80 -n 20 >"$VT_TMP/client.out" 2>&1 &&
		vt_pass "the packaged agent serves a VIP" || vt_fail "client: $(cat "$VT_TMP/client.out")"
fi
va_stop
[ -e "$VT_BPFFS/sluice_services" ] && vt_pass "after the agent stopped, its datapath is still pinned" ||
	vt_fail "no pins after stop"
vt_check "dpkg -r sluice" -d 'cat "$VT_TMP/dpkg.out"' -- dpkg_do -r sluice
[ ! -e "$VT_BPFFS/sluice_services" ] && [ -z "$(bpftool cgroup show "$VT_CGROUP" 2>/dev/null | tail -n +2)" ] &&
	vt_pass "dpkg -r tore the datapath down (prerm: sluiced --teardown)" ||
	vt_fail "after dpkg -r: pins $(ls "$VT_BPFFS" 2>/dev/null | tr '\n' ' ') programs $(bpftool cgroup show "$VT_CGROUP" 2>/dev/null | wc -l)"
VA_CONFIG=
[ ! -e /usr/sbin/sluiced ] && [ ! -e /lib/systemd/system/sluiced.service ] && [ -e /etc/sluice/sluice.yaml ] &&
	vt_pass "dpkg -r: programs and unit gone, the conffile stays" ||
	vt_fail "after dpkg -r: $(ls -la /usr/sbin/sluiced /lib/systemd/system/sluiced.service /etc/sluice 2>&1 | tr '\n' ' ')"
vt_check "dpkg --purge sluice" -d 'cat "$VT_TMP/dpkg.out"' -- dpkg_do --purge sluice && PURGED=1
footprint >"$VT_TMP/after"
vt_check "after dpkg --purge the package's footprint is as it was ($(wc -l <"$VT_TMP/before") paths compared)" \
	-d 'echo "dpkg -i + --purge changed: $(diff "$VT_TMP/before" "$VT_TMP/after" | grep "^[<>]" | head -n 20)"' -- \
	cmp -s "$VT_TMP/before" "$VT_TMP/after"
vt_finish
