#!/usr/bin/env bash
# tools/fresh-test.sh [MAKE-TARGET...]: run `make test` (or the targets named) on a fresh
# Debian 12 system: a minimal root made with debootstrap, entered with chroot inside a private
# mount namespace. It shares only the host's kernel (/proc, /sys, /dev) with the host; /run,
# /tmp and /var/tmp are new and empty, no package beyond Debian's minimal base is installed,
# and nothing is left from an earlier run. `make deps` inside it installs what the project
# needs, as it would on a new machine. The checkout is copied in with `git clone`, so only
# committed files count, as in CI.
#
# Environment:
#   FRESH_ROOT    where the root is made (default /var/tmp/sluice-fresh.XXXX, removed after)
#   FRESH_MIRROR  the Debian mirror (default: the first URI in the host's apt sources)
#   FRESH_KEEP=1  keep the root afterwards (for a look inside)
# Exit: make's status; 77 when it cannot run here (not root, no debootstrap and no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test)

say() { echo "fresh-test: $*"; }
if [ "$(id -u)" -ne 0 ]; then
	say "SKIP: needs root (debootstrap, chroot, mounts)"
	exit 77
fi
if ! command -v debootstrap >/dev/null; then
	say "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		debootstrap >/dev/null || {
		say "SKIP: no debootstrap"
		exit 77
	}
fi

mirror=${FRESH_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(grep -hoE '^(URIs:|deb) +http[^ ]*' /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | awk '{print $2}' || :)
fi
mirror=${mirror:-http://deb.debian.org/debian}

root=${FRESH_ROOT:-$(mktemp -d /var/tmp/sluice-fresh.XXXXXX)}
chmod 0755 "$root" # mktemp made it 0700: the root of a system is world-readable
cleanup() {
	local rc=$?
	set +e # a cleanup step that finds nothing to do must not change the exit status
	# The mounts live in the private namespace below and went with it; this is for safety.
	grep -o " $root/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "${FRESH_KEEP:-0}" = 1 ]; then
		say "kept $root"
	else
		rm -rf --one-file-system "$root"
	fi
	exit $rc
}
trap cleanup EXIT INT TERM

say "debootstrap bookworm (minbase) from $mirror into $root"
start=$(date +%s)
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
	tail -n 30 "$root.debootstrap.log"
	exit 1
}
rm -f "$root.debootstrap.log"
say "base system in $(($(date +%s) - start)) s"

git clone -q "$src" "$root/src"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || :
# make and git are what a newcomer has before `make test`; everything else is make deps.
inner=$(
	cat <<EOF
set -e
# The new root must be a mount point: `ip netns exec` makes / a slave mount.
mount --bind "$root" "$root"
mount --make-private "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$root/var/tmp"
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 CI="${CI:-}" /bin/bash -c '
		set -e
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends make git ca-certificates >/dev/null
		cd /src
		make ${targets[*]}
	'
EOF
)
# A private mount namespace: the bind mounts, the new /run (netns files included) and /tmp
# exist only for this run and disappear with it.
say "make ${targets[*]} inside the fresh system"
unshare --mount --propagation private /bin/bash -c "$inner"
