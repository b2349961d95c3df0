#!/bin/bash
# vmtests/kernels/guest.sh - PID 1 inside the VM that vmtests/kernels/run.sh boots. The root is
# the host's / (9p, read-only) under a tmpfs overlay. Mounts what a vmtest needs, loads the
# kernel's tls module, runs vmtests/kernels/lb.sh and any extra vmtests named on the kernel
# command line, prints "SLUICE-VMTEST-RESULT: PASS|FAIL ..." on the console and powers off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^sluice\.$1=//p"; }

finish() {
	echo "SLUICE-VMTEST-RESULT: $*"
	sync
	echo o >/proc/sysrq-trigger # power off (qemu runs with -no-reboot)
	sleep 30
}

mount -t proc proc /proc || {
	echo "SLUICE-VMTEST-RESULT: FAIL (guest: mount proc)"
	exit 1
}
m() { mount "$@" || echo "guest: mount $* failed"; }
m -t sysfs sys /sys
m -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
ln -sf /proc/self/fd /dev/fd # what udev would add: bash's <(...) needs it
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
m -t devpts devpts /dev/pts
m -t tmpfs tmp /dev/shm
# /tmp and /run stay the host's, seen through the overlay (writes land in its tmpfs): the
# checkout, the build or the kernel cache may live under /tmp.
m -t bpf bpf /sys/fs/bpf
m -t cgroup2 cgroup2 /sys/fs/cgroup
ROOT=$(arg root)
BUILD=$(arg build)
KDIR=$(arg kdir)
# The kernel's own modules (veth, bridge, sch_ingress...): modprobe and autoloading find them.
mkdir -p "/lib/modules/$(uname -r)"
m --bind "$KDIR/lib/modules/$(uname -r)" "/lib/modules/$(uname -r)"
ip link set lo up
# Kernel TLS for the mTLS tunnels (tls.ko, CONFIG_TLS=m in Debian's kernel; modprobe is the
# host's kmod). With it loaded, vmtests/81-ktls.sh must run: VT_REQUIRE_KTLS=1 turns its skip
# into a failure. Without it, the run fails and says why.
ktls=
if tlserr=$(modprobe tls 2>&1) && grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp; then
	export VT_REQUIRE_KTLS=1
	echo "sluice-vm: kernel TLS loaded (tcp_available_ulp: $(cat /proc/sys/net/ipv4/tcp_available_ulp))"
else
	ktls="modprobe tls failed: ${tlserr:-tcp_available_ulp has no tls}"
	echo "sluice-vm: $ktls"
fi
hostname sluice-vm

cd "$ROOT" || finish "FAIL (guest: no $ROOT)"
echo "sluice-vm: kernel $(uname -r), $(nproc) CPUs, root 9p+overlay"
"$BUILD/sluiced" --version 2>&1 | sed 's/^/sluice-vm: /'

export VA_SLUICED=$BUILD/sluiced VA_SLUICECTL=$BUILD/sluicectl VT_BIN=$BUILD/vmtests
rc=0
summary=
[ -n "$ktls" ] && rc=1 && summary="$ktls; "
timeout -k 5 240 bash vmtests/kernels/lb.sh
lrc=$?
if [ "$lrc" -eq 0 ]; then
	summary+="lb ok"
else
	summary+="lb exit $lrc"
	rc=1
fi
IFS=, read -r -a extra <<<"$(arg tests)"
if [ "${#extra[@]}" -gt 0 ]; then
	files=()
	for t in "${extra[@]}"; do
		found=(vmtests/"$t"*.sh)
		f=${found[0]}
		if [ -f "$f" ]; then
			files+=("$f")
		else
			echo "sluice-vm: no vmtest named $t"
			rc=1
			summary="$summary; no vmtest $t"
		fi
	done
	out="vmtests: none of ${extra[*]} found"
	if [ "${#files[@]}" -gt 0 ]; then
		# One at a time and bounded, as vmtests/run.sh runs them, but every line goes to the
		# console, a passing test's too: its findings (e.g. which kTLS directions ran in the
		# kernel) are the record of this kernel.
		np=0 nf=0 ns=0
		for f in "${files[@]}"; do
			echo "sluice-vm: --- $f ---"
			timeout -k 5 "${VMTEST_TIMEOUT:-300}" bash "$f" 2>&1
			case $? in
			0) np=$((np + 1)) ;;
			77) ns=$((ns + 1)) ;;
			*) nf=$((nf + 1)) ;;
			esac
		done
		out="vmtests: $np passed, $nf failed, $ns skipped"
		echo "sluice-vm: $out"
	fi
	case $out in
	*" 0 failed"*) summary="$summary; $out" ;;
	*)
		summary="$summary; ${out:-vmtests gave no summary}"
		rc=1
		;;
	esac
fi
[ "$rc" -eq 0 ] && finish "PASS kernel=$(uname -r) ($summary)"
finish "FAIL kernel=$(uname -r) ($summary)"
