#!/usr/bin/env bash
# vmtests/kernels/run.sh - boot Debian's own kernel (6.1 on Debian 12) in qemu and run sluice's
# datapath inside it: the real agent loads every BPF program (so they pass that kernel's
# verifier) and a basic connect-LB test runs (vmtests/kernels/lb.sh).
#
#   vmtests/kernels/run.sh [TEST...]      (root; `make vmtest-kernels` builds first and runs it)
#
# TEST names extra vmtests to run in the same VM after lb.sh (e.g. 10-lb 45-redirect), through
# vmtests/run.sh. Environment:
#   VMK_KERNEL_PKG  kernel package (default linux-image-amd64: the cloud flavour has no 9p)
#   VMK_KERNEL_DEB  a local .deb of the kernel instead of apt-get download
#   VMK_ACCEL       auto (default: KVM if a guest runs under it within 20 s, else TCG) | kvm | tcg
#   VMK_TIMEOUT     wall-clock bound on the VM in seconds (default 600)
#   VMK_CACHE       where the unpacked kernel is kept (default $BUILD/kernels)
#   BUILD           the build directory with sluiced, sluicectl and vmtests/ tools (default build)
#
# How: the kernel package is downloaded with apt-get and unpacked with dpkg-deb (never installed).
# A small initramfs (busybox-static + the package's virtio, 9p and overlay modules) mounts the
# host's / read-only over 9p (virtfs), puts a tmpfs overlay on top and switch_roots into
# vmtests/kernels/guest.sh, which mounts proc/sys/bpffs/cgroup2, runs the tests and prints
# "SLUICE-VMTEST-RESULT: PASS|FAIL" on the serial console before it powers the VM off. The VM
# has no network device (-nic none). Exit: 0 pass, 1 fail, 77 skip (not root, no qemu).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
[[ "$BUILD" == /* ]] || BUILD=$ROOT/$BUILD
CACHE=${VMK_CACHE:-$BUILD/kernels}
PKG=${VMK_KERNEL_PKG:-linux-image-amd64}
ACCEL=${VMK_ACCEL:-auto}
TIMEOUT=${VMK_TIMEOUT:-600}
KVM_PROBE_SECS=20

say() { echo "vmtest-kernels: $*"; }
skip() {
	say "SKIP: $*"
	exit 77
}
die() {
	say "FAIL: $*"
	echo "vmtest-kernels: 0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (9p must read the whole host root)"
for t in qemu-system-x86_64 busybox dpkg-deb depmod modprobe gzip; do
	command -v "$t" >/dev/null || skip "$t not found (make deps installs qemu-system-x86, busybox-static)"
done
busybox --list 2>/dev/null | grep -qx cpio || skip "busybox has no cpio applet (busybox-static has)"
for f in "$BUILD/sluiced" "$BUILD/sluicectl" "$BUILD/vmtests/sl_server" "$BUILD/vmtests/sl_client"; do
	[ -x "$f" ] || die "$f missing: run make (or make vmtest-kernels)"
done
case "$ROOT$BUILD$CACHE" in *[[:space:]]*) die "paths with spaces are not supported" ;; esac

TMP=$(mktemp -d /tmp/sluice-vmk.XXXXXX) || die "mktemp"
QPID=
# qemu_pid: the pid in qemu's pidfile while that process is still our qemu.
qemu_pid() {
	local p
	p=$(cat "$TMP/qemu.pid" 2>/dev/null) && [ -n "$p" ] &&
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-system-x86 ] && echo "$p"
}
cleanup() {
	local p i
	trap - EXIT INT TERM HUP
	p=$(qemu_pid)
	if [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; then
		for ((i = 0; i < 20; i++)); do
			[ -z "$(qemu_pid)" ] && break
			sleep 0.1
		done
		[ -n "$(qemu_pid)" ] && kill -KILL "$p" 2>/dev/null
	fi
	[ -n "$QPID" ] && wait "$QPID" 2>/dev/null
	[ -n "${tailpid:-}" ] && wait "$tailpid" 2>/dev/null # ends within 1 s of the VM
	if [ "${VMK_KEEP:-0}" = 1 ]; then
		say "kept $TMP"
	else
		rm -rf -- "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- the kernel: downloaded and unpacked into the cache, never installed -----------------------
if [ -n "${VMK_KERNEL_DEB:-}" ]; then
	deb=$VMK_KERNEL_DEB
	[ -f "$deb" ] || die "VMK_KERNEL_DEB=$deb: no such file"
	name=$(basename "$deb" .deb)
else
	# linux-image-amd64 is a metapackage: the versioned image is its first dependency.
	real=$(apt-cache depends --important "$PKG" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
	if [ -z "$real" ]; then
		apt-get update -qq >/dev/null 2>&1
		real=$(apt-cache depends --important "$PKG" 2>/dev/null |
			awk '/Depends: linux-image-/ { print $2; exit }')
	fi
	[ -n "$real" ] || die "apt-cache knows no kernel behind $PKG"
	ver=$(apt-cache policy "$real" | awk '/Candidate:/ { print $2; exit }')
	name=${real}_$ver
fi
KDIR=$CACHE/$name
if [ ! -f "$KDIR/.ok" ]; then
	rm -rf -- "$KDIR" && mkdir -p "$KDIR" || die "mkdir $KDIR"
	if [ -z "${VMK_KERNEL_DEB:-}" ]; then
		say "downloading $real ($ver)"
		(cd "$TMP" && apt-get download -qq -o APT::Sandbox::User=root "$real=$ver") ||
			die "apt-get download $real=$ver failed"
		debs=("$TMP"/*.deb)
		deb=${debs[0]}
	fi
	dpkg-deb -x "$deb" "$KDIR" || die "dpkg-deb -x $deb failed"
	rm -f "$TMP"/*.deb
	touch "$KDIR/.ok"
fi
found=("$KDIR"/boot/vmlinuz-*)
vmlinuz=${found[0]}
[ -f "$vmlinuz" ] || die "no vmlinuz in $KDIR"
KVER=${vmlinuz##*/vmlinuz-}
[ -f "$KDIR/lib/modules/$KVER/modules.dep" ] || depmod -b "$KDIR" "$KVER" || die "depmod $KVER failed"
for c in CONFIG_NET_9P_VIRTIO CONFIG_9P_FS CONFIG_OVERLAY_FS; do
	grep -Eq "^$c=[ym]" "$KDIR/boot/config-$KVER" || die "$KVER lacks $c (the cloud flavour has no 9p)"
done

# --- the initramfs: busybox + the modules that mount the host root --------------------------
IRD=$TMP/initramfs
mkdir -p "$IRD"/{bin,dev,proc,sys,mods,mnt} || die "mkdir $IRD"
cp "$(command -v busybox)" "$IRD/bin/busybox" || die "cp busybox"
modprobe -d "$KDIR" -S "$KVER" --show-depends -a virtio_pci 9pnet_virtio 9p overlay |
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' >"$TMP/mods" || die "modprobe --show-depends"
while read -r m; do
	cp "$m" "$IRD/mods/" && basename "$m" >>"$IRD/mods/order" || die "cp $m"
done <"$TMP/mods"
cat >"$IRD/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "SLUICE-VMTEST-RESULT: FAIL (initramfs: $*)"; poweroff -f; }
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || fail mounts
echo "sluice-vm: initramfs up, kernel $(uname -r)"
while read -r m; do insmod "/mods/$m" || fail "insmod $m"; done </mods/order
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^sluice\.$1=//p"; }
mkdir -p /mnt/lower /mnt/rw /mnt/root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose root /mnt/lower ||
	fail "mount 9p root"
mount -t tmpfs -o mode=0755 rw /mnt/rw && mkdir /mnt/rw/upper /mnt/rw/work || fail tmpfs
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work root \
	/mnt/root || fail "mount overlay"
guest=$(arg root)/vmtests/kernels/guest.sh
[ -f "/mnt/root$guest" ] || fail "no $guest under the 9p root"
umount /proc /sys /dev
exec switch_root /mnt/root /bin/bash "$guest"
EOF
chmod 0755 "$IRD/init"
(cd "$IRD" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$TMP/initrd.gz" ||
	die "cpio"

# --- boot ------------------------------------------------------------------------------------
# boot ACCEL SECS: runs the VM in the background, console into $TMP/console.log; QPID is the
# job (its status is timeout's), $TMP/qemu.pid qemu's own pid (what qemu_kill signals).
boot() {
	local accel=$1 secs=$2 cpu=()
	shift 2
	# TCG's default CPU (qemu64) has no AES-NI or PCLMULQDQ: AES-GCM (the mTLS tunnels, in
	# the kernel and in OpenSSL) would run in generic C, many times slower. max emulates them.
	cpu=(-cpu max)
	[ "$accel" = kvm ] && cpu=(-cpu host)
	rm -f "$TMP/qemu.pid"
	: >"$TMP/console.log" # exists before `tail -f` opens it
	{
		timeout -k 5 "$secs" qemu-system-x86_64 -accel "$accel" "${cpu[@]}" -m 2048 -smp 2 \
			-nic none -display none -monitor none -no-reboot -serial stdio \
			-pidfile "$TMP/qemu.pid" -kernel "$vmlinuz" -initrd "$TMP/initrd.gz" \
			-append "console=ttyS0 quiet panic=-1 sluice.root=$ROOT sluice.build=$BUILD \
sluice.kdir=$KDIR sluice.tests=$(IFS=,; echo "$*")" \
			-virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
			</dev/null >"$TMP/console.log" 2>&1
		rc=$? # a plain exit, and bash's "Aborted" notice (qemu killed by a signal) goes nowhere
		exit $rc
	} 2>/dev/null &
	QPID=$!
}
qemu_kill() {
	local p
	p=$(qemu_pid)
	[ -n "$p" ] && kill -TERM "$p" 2>/dev/null
	[ -n "$QPID" ] && wait "$QPID" 2>/dev/null
	QPID=
}
# A guest that shows no sign of life: KVM is there, but guests do not run (nested setups).
alive_within() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		grep -q '^sluice-vm: initramfs up' "$TMP/console.log" 2>/dev/null && return 0
		kill -0 "$QPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

tests=("$@")
start=$(date +%s)
used=
if [ "$ACCEL" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	boot kvm "$TIMEOUT" ${tests[@]+"${tests[@]}"}
	if alive_within "$KVM_PROBE_SECS"; then
		used=kvm
	else
		say "KVM did not run the guest ($(grep -m1 -i error \
			"$TMP/console.log" || echo 'no output')); falling back to TCG"
		qemu_kill
		[ "$ACCEL" = kvm ] && die "VMK_ACCEL=kvm and KVM does not run guests here"
	fi
fi
if [ -z "$used" ]; then
	used=tcg
	boot tcg "$TIMEOUT" ${tests[@]+"${tests[@]}"}
fi
say "booting $KVER with $used (bound ${TIMEOUT}s)"
tail -n +1 -f --pid="$QPID" "$TMP/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/  | /' &
tailpid=$!
wait "$QPID"
qrc=$?
QPID=
wait "$tailpid" 2>/dev/null
secs=$(($(date +%s) - start))

result=$(tr -d '\r' <"$TMP/console.log" | grep -m1 '^SLUICE-VMTEST-RESULT: ')
case $result in
*": PASS"*)
	say "PASS on $KVER ($used, ${secs}s)"
	echo "vmtest-kernels: 1 passed, 0 failed"
	exit 0
	;;
"")
	[ "$qrc" -eq 124 ] && die "the VM did not finish within ${TIMEOUT}s ($used)"
	die "the VM stopped without a result (qemu exit $qrc, $used, ${secs}s)"
	;;
*) die "on $KVER ($used, ${secs}s): ${result#SLUICE-VMTEST-RESULT: }" ;;
esac
