#!/usr/bin/env bash
# tools/bench/redirect.sh - does same-node redirection (agent.redirect: local) pay on this
# kernel? Loopback TCP inside a test netns, both ends in the agent's cgroup, measured with and
# without redirect in the same run, interleaved A B, B A, A B ... (the order alternates per rep):
#   - request/response latency with sockperf ping-pong, 64 B and 4 KiB: p50 and p99 (one-way,
#     as sockperf reports it: RTT / 2);
#   - bulk throughput with iperf3;
#   - the in-kernel cost of sluice_sk_msg and sluice_sockops per run (run_time_ns / run_cnt,
#     kernel.bpf_stats_enabled=1 for one extra 64 B run with redirect local; COST=0 skips it).
# Each CPU placement in PLACES (default "same split") is measured on its own:
#   same   server and client pinned to one CPU (taskset -c 0)
#   split  server on CPU 0, client on CPU 1
#   free   no pinning: the scheduler decides (bimodal on 2 CPUs)
# Prints a Markdown section per placement: medians with min-max over the repetitions, and the
# ratios local / off.
#
#   tools/bench/redirect.sh [REPS] [SECONDS]      (defaults: 5 reps, 3 s per measurement)
#
# Runs as root; builds its world with vmtests/lib.sh and removes it on exit. Network safety:
# all traffic is on the loopback of a netns this script creates; every client is bounded in time.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REPS=${1:-5}
SECS=${2:-3}
PLACES=${PLACES:-same split}
COST=${COST:-1}
[ "$(id -u)" -eq 0 ] || { echo "redirect bench: run as root" >&2; exit 1; }
for t in sockperf iperf3 jq taskset bpftool; do
	command -v "$t" >/dev/null || { echo "redirect bench: $t missing (make deps)" >&2; exit 1; }
done
[[ "$REPS" =~ ^[0-9]+$ && "$REPS" -ge 1 && "$REPS" -le 50 ]] || { echo "REPS: 1..50" >&2; exit 2; }
[[ "$SECS" =~ ^[0-9]+$ && "$SECS" -ge 1 && "$SECS" -le 60 ]] || { echo "SECONDS: 1..60" >&2; exit 2; }
[ "$COST" = 0 ] || [ "$COST" = 1 ] || { echo "COST: 0 or 1" >&2; exit 2; }
# The client's context switches and migrations come from perf stat when it is there (linux-perf).
PERF=()
command -v perf >/dev/null && PERF=(perf stat "-x," -e "context-switches,cpu-migrations")
for p in $PLACES; do
	case $p in
	same | free) ;;
	split) [ "$(nproc)" -ge 2 ] || { echo "PLACES: split needs 2 CPUs" >&2; exit 2; } ;;
	*) echo "PLACES: same, split or free, not $p" >&2; exit 2 ;;
	esac
done

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=$((SECS * 4 + 20))
. "$ROOT/vmtests/lib.sh"
. "$ROOT/vmtests/agent.sh"
vt_init rbench >/dev/null
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"; _vt_exit_trap' EXIT
vt_topology >/dev/null
vt_cgroup >/dev/null
vt_bpffs >/dev/null
node=$VT_ID-node
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# pin PLACE WHO: the taskset prefix for the server (s) or the client (c), or nothing.
pin() {
	case $1/$2 in
	same/*) echo "taskset -c 0" ;;
	split/s) echo "taskset -c 0" ;;
	split/c) echo "taskset -c 1" ;;
	esac
}
# servers PLACE: (re)start sockperf and iperf3 servers in the cgroup and the node netns.
SRV=()
servers() {
	[ "${#SRV[@]}" -eq 0 ] || _vt_kill_pids "${SRV[@]}"
	SRV=()
	local cmd
	for cmd in "sockperf sr --tcp -i 127.0.0.1 -p 11111" "iperf3 -s -p 5201 -B 127.0.0.1"; do
		# shellcheck disable=SC2046,SC2086
		(
			echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
			exec ip netns exec "$node" $(pin "$1" s) $cmd
		) >/dev/null 2>&1 &
		vt_track_pid $!
		SRV+=($!)
	done
	sleep 0.5
}

for mode in local off; do
	va_config "$VT_TMP/$mode.yaml" <<YAML
  redirect: $mode
  metrics: ""
services: []
YAML
done

# ctxsw PID -> voluntary + involuntary context switches of PID so far
ctxsw() { awk '/ctxt_switches/ { n += $2 } END { print n + 0 }' "/proc/$1/status"; }
# pp PLACE SIZE -> "p50 p99 msgs srv_cs cli_cs cli_migrations": p50 and p99 in microseconds,
# the round trips, the context switches of each end and the client's CPU migrations (perf stat)
pp() {
	local s0 out
	s0=$(ctxsw "${SRV[0]}")
	# shellcheck disable=SC2046
	out=$(vt_in_cgroup $(pin "$1" c) ${PERF[@]+"${PERF[@]}"} \
		sockperf pp --tcp -i 127.0.0.1 -p 11111 -m "$2" -t "$SECS" 2>&1)
	awk -v s="$(($(ctxsw "${SRV[0]}") - s0))" '
		/percentile 50.000/ { p50 = $NF } /percentile 99.000/ { p99 = $NF }
		/ReceivedMessages=/ { m = $0; sub(/.*ReceivedMessages=/, "", m); sub(/[^0-9].*/, "", m) }
		/,context-switches/ { split($0, f, ","); cs = f[1] } /,cpu-migrations/ { split($0, f, ","); mig = f[1] }
		END { if (p50 == "" || p99 == "") exit 1; print p50, p99, m + 0, s, cs + 0, mig + 0 }' <<<"$out"
}
# bulk PLACE -> Gbit/s
bulk() {
	# shellcheck disable=SC2046
	vt_in_cgroup $(pin "$1" c) iperf3 -c 127.0.0.1 -p 5201 -t "$SECS" -J 2>/dev/null |
		jq -e '.end.sum_received.bits_per_second / 1e9'
}
# progs -> JSON array of this agent's sk_msg and sockops programs (those using its sockhash)
progs() {
	local map
	map=$(bpftool -j map show pinned "$VT_BPFFS/sluice_sockhash" | jq -e '.id') || return 1
	bpftool -j prog show | jq --argjson m "$map" '[.[] | select((.name == "sluice_sk_msg" or
		.name == "sluice_sockops") and ((.map_ids // []) | index($m) != null))]'
}
# cost PLACE: "sk_msg_ns sk_msg_runs sockops_ns sockops_runs" for one 64 B run, redirect local.
cost() {
	local a b
	a=$(progs) || return 1
	sysctl -qw kernel.bpf_stats_enabled=1
	pp "$1" 64 >/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$old_stats"
	b=$(progs) || return 1
	jq -r -n --argjson a "$a" --argjson b "$b" '
		def d($n): ($b[] | select(.name == $n)) as $p | ($a[] | select(.id == $p.id)) as $q
			| (($p.run_cnt // 0) - ($q.run_cnt // 0)) as $r
			| (($p.run_time_ns // 0) - ($q.run_time_ns // 0)) as $t
			| "\(if $r > 0 then ($t / $r * 10 | floor) / 10 else 0 end) \($r)";
		"\(d("sluice_sk_msg")) \(d("sluice_sockops"))"'
}

res=$VT_TMP/results
: >"$res"
declare -A costs
for place in $PLACES; do
	servers "$place"
	for rep in $(seq "$REPS"); do
		order="local off"
		[ $((rep % 2)) -eq 0 ] && order="off local"
		for mode in $order; do
			va_start "$VT_TMP/$mode.yaml" >/dev/null || exit 1
			read -r a50 a99 msgs scs ccs cmig < <(pp "$place" 64) || { echo "sockperf 64 B failed" >&2; exit 1; }
			read -r b50 b99 _ < <(pp "$place" 4096) || { echo "sockperf 4 KiB failed" >&2; exit 1; }
			g=$(bulk "$place") || { echo "iperf3 failed" >&2; exit 1; }
			sched=$(awk -v m="$msgs" -v s="$scs" -v c="$ccs" -v g="$cmig" \
				'BEGIN { if (m < 1) m = 1; printf "%.3f %.3f %.0f", s / m, c / m, g }')
			echo "$place $mode $a50 $a99 $b50 $b99 $g $sched" >>"$res"
			echo "# $place rep $rep $mode: 64B p50 $a50 p99 $a99 us, 4KiB p50 $b50 p99 $b99 us," \
				"bulk $g Gbit/s; 64B run: $msgs msgs, ctx switches/msg server+client, client migrations: $sched" >&2
			if [ "$COST" = 1 ] && [ "$mode" = local ] && [ "$rep" = 1 ]; then
				costs[$place]=$(cost "$place") || { echo "cost run failed" >&2; exit 1; }
				echo "# $place cost (ns/run runs, sk_msg then sockops): ${costs[$place]}" >&2
			fi
			va_stop TERM
		done
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# stat PLACE MODE COL -> "median min max"
stat() {
	awk -v p="$1" -v m="$2" -v c="$3" '$1 == p && $2 == m { print $c }' "$res" | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'
}
# ratios PLACE COL -> "min max" of local/off over the reps (pairs in run order)
ratios() {
	awk -v p="$1" -v c="$2" '$1 == p && $2 == "local" { l[++nl] = $c } $1 == p && $2 == "off" { o[++no] = $c }
		END { for (i = 1; i <= nl && i <= no; i++) if (o[i] > 0) { r = l[i] / o[i]; if (i == 1 || r < lo) lo = r; if (i == 1 || r > hi) hi = r }
		      printf "%.2f %.2f", lo, hi }' "$res"
}
describe() {
	case $1 in
	same) echo "server and client on CPU 0 (taskset -c 0)" ;;
	split) echo "server on CPU 0, client on CPU 1" ;;
	free) echo "not pinned" ;;
	esac
}
for place in $PLACES; do
	echo "### Placement \`$place\`: $(describe "$place")"
	echo
	echo "| measure | redirect off | redirect local | local / off (per-rep min-max) |"
	echo "|---|---:|---:|---:|"
	i=3
	for name in "64 B p50 (µs)" "64 B p99 (µs)" "4 KiB p50 (µs)" "4 KiB p99 (µs)" "bulk (Gbit/s)"; do
		read -r om omin omax < <(stat "$place" off "$i")
		read -r lm lmin lmax < <(stat "$place" local "$i")
		read -r rlo rhi < <(ratios "$place" "$i")
		ratio=$(awk -v a="$lm" -v b="$om" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
		echo "| $name | $om ($omin–$omax) | $lm ($lmin–$lmax) | $ratio ($rlo–$rhi) |"
		i=$((i + 1))
	done
	echo
	echo "Scheduling during the 64 B runs (medians; context switches per round trip, server and client;"
	echo "the client's CPU migrations, perf stat):"
	echo
	echo "| | redirect off | redirect local |"
	echo "|---|---:|---:|"
	i=8
	for name in "server switches / round trip" "client switches / round trip" "client migrations"; do
		read -r om omin omax < <(stat "$place" off "$i")
		read -r lm lmin lmax < <(stat "$place" local "$i")
		if [ "$i" -gt 8 ] && [ "${#PERF[@]}" -eq 0 ]; then
			echo "| $name | n/a (no perf) | n/a (no perf) |"
		else
			echo "| $name | $om ($omin–$omax) | $lm ($lmin–$lmax) |"
		fi
		i=$((i + 1))
	done
	if [ -n "${costs[$place]:-}" ]; then
		read -r mns mruns ons oruns <<<"${costs[$place]}"
		echo
		echo "In-kernel cost during one ${SECS} s 64 B run with redirect local:" \
			"sluice_sk_msg $mns ns/run ($mruns runs), sluice_sockops $ons ns/run ($oruns runs)."
	fi
	echo
done
echo "(medians of $REPS interleaved runs of ${SECS} s per mode, min–max in brackets; $(nproc) CPUs," \
	"kernel $(uname -r), sockperf $(sockperf --version 2>&1 | awk 'NR == 1 { sub(/-.*/, "", $3); print $3 }'), iperf3 $(iperf3 --version | awk 'NR == 1 { print $2 }'); load average $load0 before, $load1 after)"
