#!/usr/bin/env bash
# tools/bench/churn.sh - registry churn at N services (issue #17): how many changes a second the
# agent applies, one at a time as they come through the API, and what the iptables mode of
# kube-proxy pays for the same changes with `iptables-restore --noflush`. Run as root, after
# `make`; `make bench` runs it and keeps its report beside the main one.
#
#   [QUICK=1] tools/bench/churn.sh [--out FILE.md]
#
# sluice: N services x 10 backends (make bench's generator; "bench" has live backends), the
# agent started with them. For SECS seconds sl_churn registers and deregisters backends of the
# other services through the API with C requests in flight (each C of CONCS in turn), each
# answered only once it is saved to agent.state and in the maps; meanwhile a client connects to
# "bench" every 20 ms and /metrics is fetched every 200 ms. Reported per C: changes applied per
# second, the batches they were applied in (the API's group commit), the client's latency
# per change (p50, p99: queueing behind the other workers included), the agent's own apply time
# (p99 of sluice_config_apply_seconds{source="api"}, a log2 bucket's upper bound), /metrics
# latency (p99) and the failed connections of the client.
# iptables: the same N x 10 services as kube-proxy's chains (iptables-restore), then one
# `iptables-restore --noflush` of the chains of K changed services, K = 1, 10, 100 (REPS each,
# median): kube-proxy batches the changes of one sync period into one restore, so its rate is K
# per restore time, and a change waits for the next sync (minSyncPeriod, 1 s by default).
#
# Tunables (environment): N (default 10000; QUICK 2000), SECS (10; QUICK 3), CONCS ("4 16"),
# REPS (3).
#
# Network safety: every address is in 198.18.0.0/15, in namespaces this script creates
# (vmtests/lib.sh); the client runs in the node netns only, which has no default route and the
# VIPs blackholed; every run is bounded in time, and everything is removed on exit.
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
	echo "churn: $*"
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, BPF)"
if [ "${QUICK:-0}" = 1 ]; then
	: "${N:=2000}" "${SECS:=3}"
else
	: "${N:=10000}" "${SECS:=10}"
fi
: "${CONCS:=4 16}" "${REPS:=3}"
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1000 ] && [ "$N" -le 65536 ] || die "N must be 1000..65536"
for v in SECS REPS; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 60 ] || die "$v must be 1..60"
done
for c in $CONCS; do
	[[ "$c" =~ ^[0-9]+$ ]] && [ "$c" -ge 1 ] && [ "$c" -le 64 ] || die "CONCS: each must be 1..64"
done
for t in iptables-restore curl jq awk; do
	command -v "$t" >/dev/null || die "$t missing (make deps)"
done
CHURN=$ROOT/build/vmtests/sl_churn
[ -x "$ROOT/build/sluiced" ] && [ -x "$CHURN" ] || die "build/sluiced or $CHURN missing (run make)"

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=$((SECS + 30))
# shellcheck source=../../vmtests/lib.sh
. "$ROOT/vmtests/lib.sh"
# shellcheck source=../../vmtests/agent.sh
. "$ROOT/vmtests/agent.sh"
# shellcheck source=lib.sh
. "$ROOT/tools/bench/lib.sh"
START=$(date +%s)
vt_init churnb >/dev/null
vt_topology >/dev/null && vt_backends 80 >/dev/null && vt_cgroup >/dev/null && vt_bpffs >/dev/null ||
	die "cannot set up the test network"
BW_LIMITS_SERVICES=$((N + 16)) BW_LIMITS_BACKENDS=$((N * 10 + 64))

# --- sluice -------------------------------------------------------------------------------------
cfg=$VT_TMP/sluice.yaml
bw_agent_config "$cfg" "$N" 10 -v measured=1 || die "cannot write the config"
VA_VERIFY_STATE=0 va_start "$cfg" >/dev/null || die "sluiced did not start: $(tail -n 3 "$VA_LOG")"
# hist SOURCE: the sluice_config_apply_seconds{source} buckets, "le count" lines.
hist() {
	va_metrics | awk -v s="$1" 'index($1, "sluice_config_apply_seconds_bucket{") == 1 &&
		index($1, "source=\"" s "\"") { match($1, /le="[^"]*"/); print substr($1, RSTART + 4, RLENGTH - 5), $2 }'
}
# run C: one churn of SECS s with C requests in flight; sets rate, lat50, lat99, apply99,
# scrape99, scrapes, ok, reqs, c_ok, c_fail and batches (the agent's "registry changed" lines).
run() {
	local c=$1 from
	hist api >"$VT_TMP/h0"
	from=$(wc -l <"$VA_LOG")
	vt_in_cg "$VT_CGROUP" "$VT_BIN/sl_client" loop 198.19.0.10:80 --seconds $((SECS + 2)) \
		--interval-ms 20 --timeout-ms 2000 >"$VT_TMP/loop.out" 2>&1 &
	loop=$!
	vt_track_pid "$loop"
	sleep 1
	scraper >"$VT_TMP/scrape.out" &
	scr=$!
	vt_track_pid "$scr"
	vt_node "$CHURN" --socket "$VT_TMP/sluiced.sock" --services $((N - 1)) --concurrency "$c" \
		--seconds "$SECS" --max 1000000 >"$VT_TMP/churn.out" || die "sl_churn failed"
	wait "$scr"
	wait "$loop"
	hist api >"$VT_TMP/h1"
	read -r lat50 lat99 <<<"$(awk '$1 == "latency_us" { print $3, $5 }' "$VT_TMP/churn.out")"
	# The apply p99: the first bucket whose count (of this run) reaches 99% of all.
	apply99=$(join "$VT_TMP/h0" "$VT_TMP/h1" 2>/dev/null | awk '
		{ le[NR] = $1; c[NR] = $3 - $2 } END {
			t = c[NR]; for (i = 1; i <= NR; i++) if (t && c[i] >= 0.99 * t) { print (le[i] == "+Inf" ? "inf" : le[i] * 1000); exit } }')
	scrape99=$(sort -n "$VT_TMP/scrape.out" | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%.1f", a[i] * 1000 }')
	scrapes=$(grep -c . "$VT_TMP/scrape.out")
	rate=$(vt_value "$VT_TMP/churn.out" rate_per_s)
	ok=$(vt_value "$VT_TMP/churn.out" ok) reqs=$(vt_value "$VT_TMP/churn.out" requests)
	c_ok=$(vt_value "$VT_TMP/loop.out" ok) c_fail=$(vt_value "$VT_TMP/loop.out" fail)
	batches=$(tail -n +"$((from + 1))" "$VA_LOG" | grep -c 'msg="registry changed"')
	echo "churn: sluice c=$c $rate changes/s in $batches batches, p99 $lat99 us, apply p99 <= $apply99 ms, /metrics p99 $scrape99 ms"
}
scraper() { # /metrics every 200 ms for SECS s: curl's time_total, one per line
	local end=$((SECONDS + SECS))
	while [ "$SECONDS" -lt "$end" ]; do
		vt_node curl -q -s -o /dev/null -w '%{time_total}\n' --max-time 5 http://127.0.0.1:9464/metrics
		sleep 0.2
	done
}
# row C: the report's row for the last run, with C requests in flight.
: >"$VT_TMP/rows"
for c in $CONCS; do
	run "$c"
	printf '| %d | %s | %s / %s | %d | %s / %s ms | ≤ %s ms | %s ms (%d) | %s / %s |\n' "$c" "$rate" \
		"$ok" "$reqs" "$batches" "$((lat50 / 1000)).$(((lat50 % 1000) / 100))" \
		"$((lat99 / 1000)).$(((lat99 % 1000) / 100))" "${apply99:-?}" "$scrape99" "$scrapes" \
		"$c_ok" "$c_fail" >>"$VT_TMP/rows"
done
va_stop
last_c=${CONCS##* } # rate: of the last run (most requests in flight, if CONCS rises)

# --- iptables --------------------------------------------------------------------------------
node=$VT_ID-node
bw_gen iptables "$N" 10 >"$VT_TMP/rules" || die "cannot generate the ruleset"
full_ms=$(bw_timed_in_node iptables-restore "$VT_TMP/rules") || die "iptables-restore failed"
: >"$VT_TMP/ipt.raw"
from=$((N / 4))
for k in 1 10 100; do
	for ((r = 0; r < REPS; r++)); do
		# Each restore changes services no earlier one did (from on).
		bw_gen iptables "$N" 10 -v change=1 -v nchange="$k" -v from="$from" >"$VT_TMP/chg" ||
			die "cannot generate the change"
		from=$((from + k))
		ms=$(bw_timed_in_node iptables-restore --noflush "$VT_TMP/chg") || die "iptables-restore --noflush failed"
		echo "$k $ms" >>"$VT_TMP/ipt.raw"
	done
done
ip netns exec "$node" iptables -t nat -F >/dev/null 2>&1
ip netns exec "$node" iptables -t nat -X >/dev/null 2>&1

report() {
	echo "## Registry churn at $N services (tools/bench/churn.sh)"
	echo
	echo "sluice: sl_churn, C requests in flight for $SECS s each, registrations and deregistrations"
	echo "of backends of the other services through the API (each answered once saved to agent.state"
	echo "and in the maps; the changes that arrive while the agent is busy are saved and applied as one"
	echo "batch); a client connecting to an unchanged service every 20 ms and /metrics fetched every"
	echo "200 ms meanwhile. Latency: the client's, per change (p50 / p99, queueing included); apply: the"
	echo "agent's own time per change (p99 of sluice_config_apply_seconds, a log2 bucket's bound)."
	echo
	echo "| C | changes per second | answered 2xx / sent | batches | latency p50 / p99 | apply p99 | /metrics p99 (fetches) | unchanged service's connections ok / failed |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	cat "$VT_TMP/rows"
	echo
	echo "iptables (kube-proxy's chains, the same $N × 10 services; a full restore took $full_ms ms):"
	echo "one \`iptables-restore --noflush\` of the chains of K changed services, median of $REPS."
	echo "kube-proxy applies the changes of a sync period in one such restore, and a change waits for"
	echo "the next sync (minSyncPeriod 1 s by default); sluice answers each change once it is applied,"
	echo "in a batch of those that arrived while it was busy, with no period to wait for."
	echo
	echo "| K changes in one restore | ms | changes per second | sluice's rate at C = $last_c ÷ this |"
	echo "|---:|---:|---:|---:|"
	awk -v sr="$rate" '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ n[$1]++; v[$1, n[$1]] = $2 }
		END {
			split("1 10 100", ks, " ")
			for (x = 1; x <= 3; x++) {
				k = ks[x]
				for (i = 1; i <= n[k]; i++) a[i] = v[k, i]
				m = median(a, n[k])
				printf "| %d | %.1f | %.0f | %.2f |\n", k, m, k * 1000 / m, sr / (k * 1000 / m)
			}
		}' "$VT_TMP/ipt.raw"
	echo
	echo "($(nproc) CPUs, kernel $(uname -r), $(($(date +%s) - START)) s)"
}
report >&3
if [ -n "$OUT" ]; then
	report >"$OUT" || die "cannot write $OUT"
fi
