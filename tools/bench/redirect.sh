#!/usr/bin/env bash
# tools/bench/redirect.sh - does same-node redirection (agent.redirect: local) pay on this
# kernel? Loopback TCP inside a test netns, both ends in the agent's cgroup, measured with and
# without redirect in the same run, interleaved A B A B:
#   - request/response latency with sockperf ping-pong, 64 B and 4 KiB: p50 and p99 (one-way,
#     as sockperf reports it: RTT / 2);
#   - bulk throughput with iperf3.
# Prints a Markdown table of medians (with min-max over the repetitions) and the ratios.
#
#   tools/bench/redirect.sh [REPS] [SECONDS]      (defaults: 5 reps, 3 s per measurement)
#
# Runs as root; builds its world with vmtests/lib.sh and removes it on exit. Network safety:
# all traffic is on the loopback of a netns this script creates.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${1:-5}
SECS=${2:-3}
[ "$(id -u)" -eq 0 ] || { echo "redirect bench: run as root" >&2; exit 1; }
for t in sockperf iperf3 jq; do
	command -v "$t" >/dev/null || { echo "redirect bench: $t missing (make deps)" >&2; exit 1; }
done
[[ "$REPS" =~ ^[0-9]+$ && "$REPS" -ge 1 && "$REPS" -le 50 ]] || { echo "REPS: 1..50" >&2; exit 2; }
[[ "$SECS" =~ ^[0-9]+$ && "$SECS" -ge 1 && "$SECS" -le 60 ]] || { echo "SECONDS: 1..60" >&2; exit 2; }

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=$((SECS * 4 + 20))
. "$ROOT/vmtests/lib.sh"
. "$ROOT/vmtests/agent.sh"
vt_init rbench
vt_topology >/dev/null
vt_cgroup >/dev/null
vt_bpffs >/dev/null
node=$VT_ID-node

# Servers in the cgroup, in the node netns, on its loopback.
bg_in_cgroup() {
	(
		echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
		exec ip netns exec "$node" "$@"
	) >/dev/null 2>&1 &
	vt_track_pid $!
}
bg_in_cgroup sockperf sr --tcp -i 127.0.0.1 -p 11111
bg_in_cgroup iperf3 -s -p 5201 -B 127.0.0.1
sleep 0.5

for mode in local off; do
	va_config "$VT_TMP/$mode.yaml" <<YAML
  redirect: $mode
  metrics: ""
services: []
YAML
done

# pp SIZE -> "p50 p99" in microseconds
pp() {
	vt_in_cgroup sockperf pp --tcp -i 127.0.0.1 -p 11111 -m "$1" -t "$SECS" 2>&1 |
		awk '/percentile 50.000/ { p50 = $NF } /percentile 99.000/ { p99 = $NF }
		     END { if (p50 == "" || p99 == "") exit 1; print p50, p99 }'
}
# bulk -> Gbit/s
bulk() {
	vt_in_cgroup iperf3 -c 127.0.0.1 -p 5201 -t "$SECS" -J 2>/dev/null |
		jq -e '.end.sum_received.bits_per_second / 1e9'
}

res=$VT_TMP/results
: >"$res"
for rep in $(seq "$REPS"); do
	for mode in local off; do
		va_start "$VT_TMP/$mode.yaml" >/dev/null || exit 1
		read -r a50 a99 < <(pp 64) || { echo "sockperf 64 B failed" >&2; exit 1; }
		read -r b50 b99 < <(pp 4096) || { echo "sockperf 4 KiB failed" >&2; exit 1; }
		g=$(bulk) || { echo "iperf3 failed" >&2; exit 1; }
		echo "$mode $a50 $a99 $b50 $b99 $g" >>"$res"
		echo "# rep $rep $mode: 64B p50 $a50 p99 $a99 us, 4KiB p50 $b50 p99 $b99 us, bulk $g Gbit/s" >&2
		va_stop TERM
	done
done

# median and min-max of column C for MODE
stat() {
	awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$res" | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'
}
echo "| measure | redirect off | redirect local | local / off |"
echo "|---|---:|---:|---:|"
i=2
for name in "64 B p50 (us)" "64 B p99 (us)" "4 KiB p50 (us)" "4 KiB p99 (us)" "bulk (Gbit/s)"; do
	read -r om omin omax < <(stat off "$i")
	read -r lm lmin lmax < <(stat local "$i")
	ratio=$(awk -v a="$lm" -v b="$om" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
	echo "| $name | $om ($omin-$omax) | $lm ($lmin-$lmax) | $ratio |"
	i=$((i + 1))
done
echo
echo "(medians of $REPS interleaved runs of ${SECS} s, min-max in brackets; $(nproc) CPUs, kernel $(uname -r))"
