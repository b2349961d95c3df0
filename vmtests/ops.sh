# shellcheck shell=bash
# vmtests/ops.sh - helpers for the 60-* operations tests (install, package, unit, docs,
# dashboard). Source after lib.sh.
#
# op_make ARGS...: make -C $VT_ROOT ARGS, quiet; its output goes to $VT_TMP/make.log.
# op_install DESTDIR [VAR=VALUE...]: make install into DESTDIR; fails the test on error.
# op_unit_value FILE KEY: the last value of KEY= in a unit file.
# op_setpriv_caps "CAP_A CAP_B ...": the setpriv --bounding-set argument "-all,+a,+b".
# op_longopts: the long options (--name) in the text on stdin, one per line, sorted, unique.
# op_sandbox_script FILE: writes the script that runs a command the way sluiced.service would.

op_make() {
	make -C "$VT_ROOT" --no-print-directory -s "$@" >>"$VT_TMP/make.log" 2>&1
}

op_install() {
	local dest=$1
	shift
	if ! op_make install DESTDIR="$dest" "$@"; then
		vt_fail "make install DESTDIR=$dest $*: $(tail -n 5 "$VT_TMP/make.log")"
		return 1
	fi
}

op_unit_value() {
	sed -n "s/^$2=//p" "$1" | tail -n 1
}

op_setpriv_caps() {
	local c out=-all
	for c in $1; do
		c=${c#CAP_}
		out+=",+${c,,}"
	done
	echo "$out"
}

op_longopts() {
	grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u
}

# The sandbox: sluiced.service's file-system and privilege settings, emulated with a mount
# namespace and setpriv because systemd is not PID 1 here. Usage (in a fresh mount namespace,
# e.g. under `unshare --mount --propagation private`):
#   sandbox.sh CAPS "RW PATHS" -- CMD...
# - ProtectSystem=strict: every mount read-only except /dev, /proc and the RW paths
#   (ReadWritePaths=, and the stand-in for RuntimeDirectory=);
# - ProtectKernelTunables=, ProtectControlGroups=: /sys (but the RW paths) and /proc/sys
#   read-only; ProtectHome=: empty read-only /home, /root, /run/user; PrivateDevices=: a /dev
#   with null, zero, full, random and urandom only; UMask=0077;
# - CapabilityBoundingSet=, NoNewPrivileges=yes: setpriv; User=root stays root.
# The seccomp-based settings are checked separately, from an strace of the agent.
op_sandbox_script() {
	cat >"$1" <<'SH'
#!/usr/bin/env bash
set -eu
caps=$1 rw=$2
shift 2
[ "${1:-}" = -- ] && shift
mount --make-rprivate /
for p in $rw; do mountpoint -q "$p" || mount --bind "$p" "$p"; done
while read -r mp; do
	case $mp in /dev | /dev/* | /proc | /proc/*) continue ;; esac
	for p in $rw; do
		case $mp in "$p" | "$p"/*) continue 2 ;; esac
	done
	mount -o remount,bind,ro "$mp" 2>/dev/null || :
done < <(awk '{ print $5 }' /proc/self/mountinfo | sort -u)
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
for d in /home /root /run/user; do
	if [ -d "$d" ]; then mount -t tmpfs -o ro,mode=0755 tmpfs "$d"; fi
done
mount -t tmpfs -o mode=0755,nosuid tmpfs /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/full c 1 7
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
mount -o remount,ro /dev
umask 0077
exec setpriv --bounding-set="$caps" --inh-caps=-all --no-new-privs -- "$@"
SH
	chmod 0755 "$1"
}
