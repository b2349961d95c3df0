#!/usr/bin/env bash
# Install the Debian packages that sluice's build, tests and demo need.
# Idempotent and quiet when everything is already there.
set -euo pipefail

pkgs=(
	build-essential pkg-config make git
	clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
	libnl-3-dev libnl-route-3-dev libyaml-dev libjansson-dev
	libcriterion-dev libmicrohttpd-dev libcurl4-openssl-dev
	prometheus libssl-dev openssl
	iproute2 util-linux procps jq curl tcpdump
	clang-format cppcheck
	scdoc lintian systemd man-db bsdextrautils python3 strace
	nginx haproxy iptables nftables gnuplot-nox sockperf iperf3
	chromium graphviz
	qemu-system-x86 busybox-static kmod
	etcd-server etcd-client
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]} (run make deps as root)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
