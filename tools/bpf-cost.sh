#!/usr/bin/env bash
# tools/bpf-cost.sh - the in-kernel cost of each sluice program, as run_time_ns / run_cnt with
# kernel.bpf_stats_enabled=1, measured during a loop of short TCP connections (and a UDP burst)
# through the socket LB, with TC flow programs on the node's interface. Run as root.
#
#   tools/bpf-cost.sh [CONNECTIONS]     (default 2000)
#
# Builds its own world with vmtests/lib.sh (network namespaces, addresses in 198.18.0.0/15, the
# VIPs blackholed in the node netns) and removes it on exit. Prints a Markdown table. The figures
# include the measurement's own overhead (bpf_stats adds two clock reads per run).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-2000}
[ "$(id -u)" -eq 0 ] || { echo "bpf-cost: run as root" >&2; exit 1; }
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 100000 ] ||
	{ echo "bpf-cost: CONNECTIONS must be 1..100000" >&2; exit 2; }

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=300
. "$ROOT/vmtests/lib.sh"
. "$ROOT/vmtests/agent.sh"

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
restore_stats() { sysctl -qw kernel.bpf_stats_enabled="$old_stats"; }
vt_init cost
trap 'restore_stats; _vt_exit_trap' EXIT
vt_topology >/dev/null
vt_backends 8080 >/dev/null
vt_cgroup >/dev/null
vt_bpffs >/dev/null

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
  interfaces: [vt-rtr]
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    backends:
      - address: 198.18.1.4:8080
YAML
va_start "$cfg" >/dev/null || exit 1

sysctl -qw kernel.bpf_stats_enabled=1
ids=$(vt_node "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json status | jq -r '.programs[].prog_id')
tc_ids=$(bpftool -j prog show | jq -r '.[] | select(.name | startswith("sluice_tc_")) | .id')
snapshot() { for id in $ids $tc_ids; do bpftool -j prog show id "$id"; done | jq -s '.'; }
before=$(snapshot)
vt_client tcp 198.19.0.10:80 -n "$N" >"$VT_TMP/tcp.out" || { cat "$VT_TMP/tcp.out"; exit 1; }
vt_client udp 198.19.0.53:53 -n $((N / 4 + 1)) >"$VT_TMP/udp.out" || { cat "$VT_TMP/udp.out"; exit 1; }
after=$(snapshot)

echo "| program | runs | ns per run |"
echo "|---|---:|---:|"
jq -r -n --argjson a "$before" --argjson b "$after" '
	$b[] as $p | ($a[] | select(.id == $p.id)) as $q
	| [$p.name, (($p.run_cnt // 0) - ($q.run_cnt // 0)),
	   (($p.run_time_ns // 0) - ($q.run_time_ns // 0))]
	| "| \(.[0]) | \(.[1]) | \(if .[1] > 0 then (.[2] / .[1] | floor) else "-" end) |"'
echo
echo "($N TCP connections to a Maglev service of 3 backends, $((N / 4 + 1)) UDP queries;" \
	"kernel $(uname -r))"
