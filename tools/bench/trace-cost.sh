#!/usr/bin/env bash
# tools/bench/trace-cost.sh - what tracing costs in the kernel: the BPF time per new connection
# (connect + one HTTP GET + close to nginx through a sluice VIP; run_time_ns of every sluice
# program over the connections made, kernel.bpf_stats_enabled=1) without the tracing program
# (no tracing: block, so the program is not attached: sluice as before tracing), with tracing off, with tracing on at sample 0 (every connection's first payload searched for a traceparent, none traced),
# and at sample 1 (every connection traced: a record each, drained by spans_dump). The
# settings are written into the pinned sluice_settings, as the agent does. The modes run one
# after the other in one world, rotated each round (A B C D, B C D A, ...). Run as root, after
# `make`; `make bench` runs it and keeps its report beside the main one.
#
#   [QUICK=1] tools/bench/trace-cost.sh [--out FILE.md]
#
# Tunables (environment): REPS (default 5; QUICK 3), SECS per run (3; QUICK 1), CONC (8).
# The figures include bpf_stats' own two clock reads per program run, the same in every mode.
#
# Network safety: every address is in 198.18.0.0/15, in namespaces this script creates
# (vmtests/lib.sh); the client runs in the node netns only, sl_bench refuses any other target,
# every run is bounded in time, and everything is removed on exit, failure or Ctrl-C.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
exec 3>&1 1>&2 # the report on the original stdout, the rest on stderr
OUT=
if [ "${1:-}" = --out ] && [ -n "${2:-}" ]; then
	OUT=$2
elif [ $# -gt 0 ]; then
	echo "usage: [QUICK=1] $0 [--out FILE.md]"
	exit 2
fi
die() {
	echo "trace-cost: $*"
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, BPF)"
if [ "${QUICK:-0}" = 1 ]; then
	: "${REPS:=3}" "${SECS:=1}"
else
	: "${REPS:=5}" "${SECS:=3}"
fi
: "${CONC:=8}"
for v in REPS SECS CONC; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 60 ] || die "$v must be 1..60"
done
for t in nginx bpftool jq awk sysctl; do
	command -v "$t" >/dev/null || die "$t missing (make deps)"
done
DUMP=$ROOT/build/vmtests/spans_dump
[ -x "$ROOT/build/sluiced" ] && [ -x "$DUMP" ] || die "build/sluiced or $DUMP missing (run make)"

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=$((SECS * 4 + 60))
# shellcheck source=../../vmtests/lib.sh
. "$ROOT/vmtests/lib.sh"
# shellcheck source=../../vmtests/agent.sh
. "$ROOT/vmtests/agent.sh"
# shellcheck source=lib.sh
. "$ROOT/tools/bench/lib.sh"
bw_build || die "cannot build sl_bench"

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
vt_init tcost >/dev/null
trap 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"; _vt_exit_trap' EXIT
START=$(date +%s)
bw_up sluice 1 || die "sluice setup failed"
ids=$(va_ctl -o json status | jq -r '.programs[].prog_id') || die "sluicectl status failed"
# Without a tracing: block the agent loads the egress program but does not attach it.
egress=$(va_trace_egress)
[ -n "$egress" ] || die "no sluice_trace_egress program of this agent"
ids="$ids $egress" # counted in every mode; it runs only where attached

kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
snap() { for id in $ids; do bpftool -j prog show id "$id"; done | jq -s '.'; }

# The records of the traced runs are drained, as the agent would: a full ring buffer would
# make a traced connection cheaper than it is.
(exec nsenter --net="/run/netns/$VT_ID-node" "$DUMP" --pin "$VT_BPFFS/sluice_spans" \
	--seconds 600 >"$VT_TMP/spans.json") &
vt_track_pid $!

# "none" is sluice without a tracing: block, as the agent runs here: the egress program is not
# attached. The other modes attach it (bpftool, multi), as a tracing: block makes the agent do.
link=$(bpftool -j link show | jq -r --argjson p "$egress" '.[] | select(.prog_id == $p) | .id' |
	head -n 1)
[ -z "$link" ] || die "the egress program is attached without a tracing: block"
attached=0
egress_on() {
	[ "$attached" = "$1" ] && return 0
	if [ "$1" = 1 ]; then
		bpftool cgroup attach "$VT_CGROUP" egress id "$egress" multi || return 1
	else
		bpftool cgroup detach "$VT_CGROUP" egress id "$egress" || return 1
	fi
	attached=$1
}

modes=(none off sample0 sample1)
nm=${#modes[@]}
raw=$VT_TMP/raw.tsv
sysctl -qw kernel.bpf_stats_enabled=1 || die "cannot set kernel.bpf_stats_enabled"
echo "trace-cost: ${modes[*]} x $REPS rounds x ${SECS}s of new connections, $CONC clients"
for ((rep = 0; rep < REPS; rep++)); do
	for ((k = 0; k < nm; k++)); do
		m=${modes[$(((k + rep) % nm))]}
		egress_on "$([ "$m" = none ] && echo 0 || echo 1)" || die "cannot (de)attach the egress program"
		case $m in
		none | off) va_set_trace 0 0 ;;
		sample0) va_set_trace 1 0 ;;
		sample1) va_set_trace 1 4294967295 ;;
		esac || die "cannot write $VT_BPFFS/sluice_settings"
		# kernel.bpf_stats_enabled is one switch for the whole machine: a run during
		# which something else turned it off is made again (three tries).
		for try in 1 2 3; do
			sysctl -qw kernel.bpf_stats_enabled=1 || die "cannot set kernel.bpf_stats_enabled"
			before=$(snap)
			out=$(bw_client conn "$BW_TARGETS" -c "$CONC" -d "$SECS" -w 0 -p /s)
			after=$(snap)
			[ "$(sysctl -n kernel.bpf_stats_enabled)" = 1 ] && break
			echo "  ($m: kernel.bpf_stats_enabled was turned off during the run; again)"
			[ "$try" = 3 ] && die "kernel.bpf_stats_enabled keeps being turned off"
		done
		ops=$(kv "$out" ops)
		[ -n "$ops" ] && [ "$ops" != 0 ] || die "$m: no successful connection: $out"
		jq -r -n --argjson a "$before" --argjson b "$after" --arg m "$m" --arg ops "$ops" \
			--arg rate "$(kv "$out" rate)" --argjson eg "$egress" '
			[$b[] as $p | ($a[] | select(.id == $p.id)) as $q
			 | {id: $p.id, runs: (($p.run_cnt // 0) - ($q.run_cnt // 0)),
			    ns: (($p.run_time_ns // 0) - ($q.run_time_ns // 0))}] as $d
			| ($d | map(.ns) | add) as $total | ($d[] | select(.id == $eg)) as $e
			| "\($m)\t\($total / ($ops | tonumber))\t\(if $e.runs > 0 then $e.ns / $e.runs else 0 end)\t\($rate)"' \
			>>"$raw" || die "jq failed"
		tail -n 1 "$raw" | awk -F'\t' -v r=$((rep + 1)) \
			'{ printf "  round %d %-8s %7.0f ns per connection, egress %5.1f ns/run, %s conn/s\n", r, $1, $2, $3, $4 }'
	done
done
sysctl -qw kernel.bpf_stats_enabled="$old_stats"
va_set_trace 0 0
sleep 0.5
spans=$(wc -l <"$VT_TMP/spans.json")

report() {
	echo "## Tracing: in-kernel cost per connection"
	echo
	echo "BPF time of all sluice programs per new connection (connect, one HTTP GET, close; $CONC" \
		"clients), with \`kernel.bpf_stats_enabled=1\`; median of $REPS runs of ${SECS} s, min–max" \
		"beside it. *sample 0*: tracing on, every first payload searched, nothing traced (no" \
		"traceparent); *sample 1*: every connection traced, its record drained."
	echo
	echo "| tracing | BPF ns per connection | × before | cgroup_skb/egress ns/run | connections/s |"
	echo "|---|---:|---:|---:|---:|"
	awk -F'\t' '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ n[$1]++; c[$1, n[$1]] = $2; e[$1, n[$1]] = $3; r[$1, n[$1]] = $4 }
		END {
			split("none off sample0 sample1", ms, " ")
			name["none"] = "no tracing: block (program not attached)"; name["off"] = "attached, trace_on 0"
			name["sample0"] = "on, sample 0"; name["sample1"] = "on, sample 1 (traced)"
			for (k = 1; k <= 4; k++) {
				m = ms[k]; lo = hi = c[m, 1]
				for (i = 1; i <= n[m]; i++) {
					a[i] = c[m, i]; if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]
				}
				med[m] = median(a, n[m])
				for (i = 1; i <= n[m]; i++) a[i] = e[m, i]
				eg = median(a, n[m])
				for (i = 1; i <= n[m]; i++) a[i] = r[m, i]
				rate = median(a, n[m])
				printf "| %s | %.0f (%.0f–%.0f) | %.2f | %s | %.0f |\n", name[m], med[m], lo, hi, \
					med[m] / med["none"], m == "none" ? "-" : sprintf("%.1f", eg), rate
			}
		}' "$raw"
	echo
	echo "($spans records drained; $(nproc) CPUs, kernel $(uname -r), $(($(date +%s) - START)) s)"
}
report >&3
if [ -n "$OUT" ]; then
	report >"$OUT" || die "cannot write $OUT"
fi
