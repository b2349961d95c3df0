#!/usr/bin/env bash
# tools/bench/bench.sh - `make bench`: sluice against what users would otherwise pick, measured
# in one run on one topology. Run as root, after `make` (the Makefile's bench target does both).
#
#   tools/bench/bench.sh            the full run (about 20 minutes on 2 cores)
#   QUICK=1 tools/bench/bench.sh    fewer repetitions, sizes and seconds (about 3 minutes)
#
# What it measures (each data-plane figure in a fresh set of network namespaces, the systems
# interleaved: direct sluice iptables nftables haproxy, then again, rotated by one each round):
#   conn   new connections: connect + one HTTP GET + close, CONC concurrent clients, CONN_SECS
#          seconds; the rate, and p50/p99 of the whole operation; at each of SIZES services
#   ka     keep-alive: small GETs on CONC open connections (requests/s), and 1 MiB GETs on
#          BULK_CONC connections (Mbit/s); at 1 service
#   cost   run_time_ns / run_cnt of every sluice program during a conn run, with
#          kernel.bpf_stats_enabled=1 (its own run: the stats cost time), at the smallest and
#          largest of SIZES
#   cp     the control plane: CP_SERVICES services x CP_BACKENDS backends applied from nothing,
#          then one backend changed, for sluice (lb: random; and lb: maglev, MAGLEV_CP_REPS
#          runs), iptables-restore and nft -f; the kernel memory of sluice's maps once ready, in
#          each lb (bpftool map show, bytes_memlock; tools/bench/lib.sh bw_map_mem); and the one
#          backend change at each of CHANGE_SIZES services, for sluice and iptables (the size
#          CP_SERVICES is the runs above)
#   trace  BPF time per connection with tracing off, on at sample 0, and traced
#          (tools/bench/trace-cost.sh; its own report, <base>-trace.md)
#   churn  registrations and deregistrations through the API for a few seconds at 10 000
#          services (QUICK: 2 000): changes applied per second, latency, /metrics meanwhile,
#          against `iptables-restore --noflush` of 1, 10 and 100 changed services
#          (tools/bench/churn.sh; its own report, <base>-churn.md)
#   redirect  same-node redirection, agent.redirect local against off (tools/bench/redirect.sh):
#          sockperf 64 B / 4 KiB p50 and p99, iperf3 bulk, min-max over REDIRECT_REPS runs of
#          REDIRECT_SECS s, at each CPU placement of REDIRECT_PLACES (same: both ends on CPU 0;
#          split: CPU 0 and CPU 1); appended to the report as its own section
#
# Writes bench/results/<date>-<host>.{md,tsv,png} and <date>-<host>-change.png (change latency
# against services) and copies the .md and the plots to latest.md, latest.png and
# latest-change.png (QUICK=1: <date>-<host>-quick.* and latest-quick.*, so that a quick run
# never replaces the full report the README shows). Tunables (environment): REPS, SIZES,
# CONN_SECS, KA_SECS, WARM_SECS, CONC, BULK_CONC, CP_SERVICES, CP_BACKENDS, CP_REPS, NFT_CP_REPS,
# MAGLEV_CP_REPS, CHANGE_SIZES, CHANGE_REPS, SYSTEMS, REDIRECT_REPS, REDIRECT_SECS,
# REDIRECT_PLACES, OUT_DIR.
#
# Network safety: every address is in 198.18.0.0/15 and lives in namespaces this script creates;
# clients run only in the node netns (no default route, the VIP range blackholed, or routed to a
# router netns that blackholes it, or local for HAProxy); sl_bench refuses any other target and
# every run is bounded in time. Everything is removed on exit, failure or Ctrl-C.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || {
	echo "bench: run as root (network namespaces, BPF, netfilter)" >&2
	exit 1
}

QUICK=${QUICK:-0}
[ "$QUICK" = 0 ] || [ "$QUICK" = 1 ] || {
	echo "bench: QUICK must be 0 or 1" >&2
	exit 2
}
if [ "$QUICK" = 1 ]; then
	: "${REPS:=3}" "${SIZES:=1 1000}" "${CONN_SECS:=1}" "${KA_SECS:=0.5}" "${WARM_SECS:=0.3}"
	: "${CP_SERVICES:=1000}" "${CP_REPS:=2}" "${NFT_CP_REPS:=2}" "${MAGLEV_CP_REPS:=1}"
	: "${CHANGE_SIZES:=1 100 1000}" "${CHANGE_REPS:=2}"
	: "${REDIRECT_REPS:=1}" "${REDIRECT_SECS:=1}" "${REDIRECT_PLACES:=same}"
else
	: "${REPS:=5}" "${SIZES:=1 1000 10000}" "${CONN_SECS:=3}" "${KA_SECS:=2}" "${WARM_SECS:=0.5}"
	# One nft -f of 10 000 x 10 (110 000 chains) takes about 100 s here: once, not five times.
	: "${CP_SERVICES:=10000}" "${CP_REPS:=5}" "${NFT_CP_REPS:=1}" "${MAGLEV_CP_REPS:=3}"
	: "${CHANGE_SIZES:=1 1000 10000}" "${CHANGE_REPS:=5}"
	: "${REDIRECT_REPS:=5}" "${REDIRECT_SECS:=2}" "${REDIRECT_PLACES:=same split}"
fi
: "${CONC:=8}" "${BULK_CONC:=2}" "${CP_BACKENDS:=10}"
: "${SYSTEMS:=direct sluice iptables nftables haproxy}"
: "${OUT_DIR:=$ROOT/bench/results}"

for v in REPS CONC BULK_CONC CP_SERVICES CP_BACKENDS CP_REPS NFT_CP_REPS MAGLEV_CP_REPS \
	CHANGE_REPS REDIRECT_REPS REDIRECT_SECS; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || {
		echo "bench: $v must be a positive integer" >&2
		exit 2
	}
done
for s in $SIZES $CHANGE_SIZES; do
	[[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] && [ "$s" -le 32000 ] || {
		echo "bench: SIZES and CHANGE_SIZES must be numbers of services, 1..32000" >&2
		exit 2
	}
done
missing=
for t in nginx haproxy iptables-restore nft gnuplot jq bpftool awk ss sockperf iperf3 taskset; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
[ -z "$missing" ] || {
	echo "bench: missing tools:$missing (run make deps)" >&2
	exit 1
}
[ -x "$ROOT/build/sluiced" ] || {
	echo "bench: build/sluiced is missing (run make)" >&2
	exit 1
}

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=120
# shellcheck source=../../vmtests/lib.sh
. "$ROOT/vmtests/lib.sh"
# shellcheck source=../../vmtests/agent.sh
. "$ROOT/vmtests/agent.sh"
# shellcheck source=lib.sh
. "$ROOT/tools/bench/lib.sh"

bw_build || {
	echo "bench: cannot build sl_bench" >&2
	exit 1
}
mkdir -p "$OUT_DIR" || exit 1

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
vt_init bench >/dev/null
trap 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"; _vt_exit_trap' EXIT

host=$(hostname -s 2>/dev/null || hostname)
stamp=$(date -u +%Y-%m-%d-%H%M)
suffix=$([ "$QUICK" = 1 ] && echo -quick)
base=$OUT_DIR/$stamp-$host$suffix
RAW=$base.tsv
START=$(date +%s)
{
	printf '# sluice bench raw data; QUICK=%s REPS=%s SIZES=%s CONN_SECS=%s KA_SECS=%s ' \
		"$QUICK" "$REPS" "$SIZES" "$CONN_SECS" "$KA_SECS"
	printf 'WARM_SECS=%s CONC=%s BULK_CONC=%s CP=%sx%s CP_REPS=%s NFT_CP_REPS=%s ' \
		"$WARM_SECS" "$CONC" "$BULK_CONC" "$CP_SERVICES" "$CP_BACKENDS" "$CP_REPS" "$NFT_CP_REPS"
	printf 'MAGLEV_CP_REPS=%s CHANGE_SIZES=%s CHANGE_REPS=%s\n' "$MAGLEV_CP_REPS" \
		"$CHANGE_SIZES" "$CHANGE_REPS"
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	printf '# host: %s\n' "$host"
	printf '# date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '# machine: %s cores (%s), %s GiB memory, kernel %s, %s\n' "$(nproc)" "$cpu" \
		"$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)" \
		"$(. /etc/os-release && echo "$PRETTY_NAME")"
	printf '# tools: sluiced %s, nginx %s, HAProxy %s, %s, nftables %s\n' \
		"$("$ROOT/build/sluiced" --version | awk 'NR == 1 { print $2 }')" \
		"$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$(haproxy -v | awk 'NR == 1 { print $3 }')" \
		"$(iptables --version)" "$(nft --version | awk '{ print $2 }')"
	printf '# quick: %s\n' "$QUICK"
	printf '# limits: %s services, %s backends\n' "$BW_LIMITS_SERVICES" "$BW_LIMITS_BACKENDS"
	printf '# load: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW"

# kv LINE KEY: the value of KEY=... in an sl_bench line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# run_client KIND: one sl_bench run in the current world; appends a raw line.
# KIND conn|ka|bulk; uses SYS N REP.
run_client() {
	local kind=$1 out rc
	case $kind in
	conn) out=$(bw_client conn "$BW_TARGETS" -c "$CONC" -d "$CONN_SECS" -w "$WARM_SECS" -p /s) ;;
	ka) out=$(bw_client ka "$BW_TARGETS" -c "$CONC" -d "$KA_SECS" -w "$WARM_SECS" -p /s) ;;
	bulk) out=$(bw_client ka "$BW_TARGETS" -c "$BULK_CONC" -d "$KA_SECS" -w "$WARM_SECS" -p /big) ;;
	esac
	rc=$?
	if [ -z "$out" ] || [ "$(kv "$out" ops)" = 0 ]; then
		bw_log "$SYS $N $kind: no successful operation (exit $rc): $out"
		return 1
	fi
	[ "$rc" -ne 0 ] && bw_log "$SYS $N $kind: more than 1% errors: $out"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$SYS" "$N" "$REP" \
		"$(kv "$out" rate)" "$(kv "$out" p50_us)" "$(kv "$out" p99_us)" \
		"$(kv "$out" errors)" "$(kv "$out" ops)" "$(kv "$out" mbit_s)" "$BW_SETUP_MS" >>"$RAW"
	printf '  %-5s %-9s %6s services  rep %s: %10s/s  p50 %8s us  p99 %8s us  %s\n' "$kind" \
		"$SYS" "$N" "$REP" "$(kv "$out" rate)" "$(kv "$out" p50_us)" "$(kv "$out" p99_us)" \
		"$([ "$kind" = bulk ] && echo "$(kv "$out" mbit_s) Mbit/s")"
}

fail() {
	bw_log "$*"
	exit 1
}

# --- 1 + 2: data plane ------------------------------------------------------------------------
read -r -a systems <<<"$SYSTEMS"
read -r -a sizes <<<"$SIZES"
nsys=${#systems[@]}
echo "bench: data plane: ${sizes[*]} services x {${systems[*]}} x $REPS rounds" \
	"(conn ${CONN_SECS}s, keep-alive ${KA_SECS}s, $CONC clients)"
for ((REP = 1; REP <= REPS; REP++)); do
	for N in "${sizes[@]}"; do
		for ((k = 0; k < nsys; k++)); do
			SYS=${systems[$(((k + REP - 1) % nsys))]}
			bw_up "$SYS" "$N"
			case $? in
			0) ;;
			2)
				bw_log "$SYS with $N services: skipped: $BW_SKIP"
				printf 'skip\t%s\t%s\t%s\t%s\n' "$SYS" "$N" "$REP" "$BW_SKIP" >>"$RAW"
				bw_down
				continue
				;;
			*) fail "$SYS with $N services: setup failed" ;;
			esac
			run_client conn || fail "$SYS with $N services: conn failed"
			if [ "$N" = "${sizes[0]}" ]; then
				run_client ka || fail "$SYS: keep-alive failed"
				run_client bulk || fail "$SYS: bulk failed"
			fi
			bw_down
		done
	done
done

# --- 3: in-kernel cost of each sluice program ---------------------------------------------------
cost_sizes=("${sizes[0]}")
[ "${#sizes[@]}" -gt 1 ] && cost_sizes+=("${sizes[-1]}")
for N in "${cost_sizes[@]}"; do
	SYS=sluice
	REP=0
	bw_up sluice "$N" || fail "sluice with $N services: setup failed"
	ids=$(va_ctl -o json status | jq -r '.programs[].prog_id') || fail "sluicectl status failed"
	[ -n "$ids" ] || fail "sluicectl status lists no program"
	snap() { for id in $ids; do bpftool -j prog show id "$id"; done | jq -s '.'; }
	sysctl -qw kernel.bpf_stats_enabled=1
	before=$(snap)
	out=$(bw_client conn "$BW_TARGETS" -c "$CONC" -d "$CONN_SECS" -w 0 -p /s)
	after=$(snap)
	sysctl -qw kernel.bpf_stats_enabled="$old_stats"
	[ "$(kv "$out" ops)" != 0 ] || fail "cost run: no successful operation: $out"
	jq -r -n --argjson a "$before" --argjson b "$after" --arg n "$N" --arg ops "$(kv "$out" ops)" '
		$b[] as $p | ($a[] | select(.id == $p.id)) as $q
		| (($p.run_cnt // 0) - ($q.run_cnt // 0)) as $runs
		| (($p.run_time_ns // 0) - ($q.run_time_ns // 0)) as $ns
		| "cost\tsluice\t\($n)\t\($p.name)\t\($runs)\t\(if $runs > 0 then ($ns / $runs * 10 | floor) / 10 else 0 end)\t\($ops)"' \
		>>"$RAW" || fail "cost: jq failed"
	echo "  cost  sluice    $N services: $(grep -c "^cost	sluice	$N	" "$RAW") programs"
	bw_down
done

# --- 4: control plane ---------------------------------------------------------------------------
echo "bench: control plane: $CP_SERVICES services x $CP_BACKENDS backends" \
	"(sluice, iptables: $CP_REPS runs; sluice lb: maglev: $MAGLEV_CP_REPS; nftables:" \
	"$NFT_CP_REPS; map memory in the first sluice run of each lb)"
maxreps=$CP_REPS
[ "$MAGLEV_CP_REPS" -gt "$maxreps" ] && maxreps=$MAGLEV_CP_REPS
for ((REP = 1; REP <= maxreps; REP++)); do
	for SYS in sluice sluice-maglev iptables nftables; do
		case $SYS in
		nftables) [ "$REP" -gt "$NFT_CP_REPS" ] && continue ;;
		sluice-maglev) [ "$REP" -gt "$MAGLEV_CP_REPS" ] && continue ;;
		*) [ "$REP" -gt "$CP_REPS" ] && continue ;;
		esac
		BW_CP_MEM=0
		[ "$REP" = 1 ] && [ "${SYS#sluice}" != "$SYS" ] && BW_CP_MEM=1
		BW_CP_MEM=$BW_CP_MEM bw_cp "$SYS" "$CP_SERVICES" "$CP_BACKENDS" ||
			fail "control plane $SYS failed"
		printf 'cp\t%s\t%sx%s\t%s\t%s\t%s\t%s\n' "$SYS" "$CP_SERVICES" "$CP_BACKENDS" "$REP" \
			"$BW_CP_APPLY_MS" "$BW_CP_CHANGE_MS" "$BW_CP_CHANGE_WORK_MS" >>"$RAW"
		printf '  cp    %-13s rep %s: apply %s ms, one backend change %s ms (work %s ms)\n' \
			"$SYS" "$REP" "$BW_CP_APPLY_MS" "$BW_CP_CHANGE_MS" "$BW_CP_CHANGE_WORK_MS"
		if [ "$BW_CP_MEM" = 1 ]; then
			lb=random
			[ "$SYS" = sluice-maglev ] && lb=maglev
			printf 'mem\t%s\t%sx%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$lb" "$CP_SERVICES" \
				"$CP_BACKENDS" "$BW_MEM_BYTES" "$BW_MEM_MAPS" "$BW_MEM_FAM" "$BW_MEM_FAM_MAPS" \
				"$BW_MEM_FAM_BYTES" "$BW_MEM_INNER_MAPS" "$BW_MEM_INNER_BYTES" >>"$RAW"
			printf '  mem   lb: %-9s %s bytes in %s maps; largest: %s (%s maps, %s bytes)\n' \
				"$lb" "$BW_MEM_BYTES" "$BW_MEM_MAPS" "$BW_MEM_FAM" "$BW_MEM_FAM_MAPS" \
				"$BW_MEM_FAM_BYTES"
		fi
		bw_down
	done
done

# --- 4b: one backend change against the number of services (sluice, iptables) ---------------
# At CP_SERVICES the runs above are the figures; the other sizes get runs of their own.
echo "bench: one backend change at $CHANGE_SIZES services x $CP_BACKENDS backends" \
	"(sluice, iptables: $CHANGE_REPS runs; at $CP_SERVICES: the control plane runs)"
for ((REP = 1; REP <= CHANGE_REPS; REP++)); do
	for N in $CHANGE_SIZES; do
		[ "$N" = "$CP_SERVICES" ] && continue
		for SYS in sluice iptables; do
			BW_CP_MEM=0 bw_cp "$SYS" "$N" "$CP_BACKENDS" || fail "change at $N: $SYS failed"
			printf 'chg\t%s\t%s\t%s\t%s\t%s\n' "$SYS" "$N" "$REP" "$BW_CP_CHANGE_MS" \
				"$BW_CP_CHANGE_WORK_MS" >>"$RAW"
			printf '  chg   %-9s %6s services  rep %s: one backend change %s ms (work %s ms)\n' \
				"$SYS" "$N" "$REP" "$BW_CP_CHANGE_MS" "$BW_CP_CHANGE_WORK_MS"
			bw_down
		done
	done
done

# --- 5: mutual TLS between two nodes (its own report, linked from the main one) ----------------
echo "bench: mTLS across two nodes (tools/bench/mtls.sh)"
QUICK=$QUICK "$ROOT/tools/bench/mtls.sh" --out "$base-mtls.md" >/dev/null ||
	fail "mtls bench failed"

# --- 6: tracing's in-kernel cost: off, on at sample 0, traced (its own report too) ------------
echo "bench: tracing's in-kernel cost (tools/bench/trace-cost.sh)"
QUICK=$QUICK "$ROOT/tools/bench/trace-cost.sh" --out "$base-trace.md" >/dev/null ||
	fail "trace cost bench failed"
# --- 6b: registry churn through the API against iptables-restore --noflush (its own report) ---
echo "bench: registry churn (tools/bench/churn.sh)"
QUICK=$QUICK "$ROOT/tools/bench/churn.sh" --out "$base-churn.md" >/dev/null ||
	fail "churn bench failed"
# --- 7: same-node redirection (its own section, appended to the report) -----------------------
echo "bench: same-node redirect, local against off (tools/bench/redirect.sh," \
	"$REDIRECT_REPS x ${REDIRECT_SECS}s, placements: $REDIRECT_PLACES)"
PLACES=$REDIRECT_PLACES "$ROOT/tools/bench/redirect.sh" "$REDIRECT_REPS" "$REDIRECT_SECS" \
	>"$base-redirect.md" 2>"$base-redirect.log" || fail "redirect bench failed (log: $base-redirect.log)"

# --- report -------------------------------------------------------------------------------------
ELAPSED=$(($(date +%s) - START))
echo "# elapsed $ELAPSED" >>"$RAW"
"$ROOT/tools/bench/report.sh" "$RAW" "$base.md" "$base.png" || fail "report failed"
# (report.sh also writes $base-change.png, the change latency against services)
{
	printf '\n## Same-node redirection (agent.redirect local against off)\n\n'
	printf 'tools/bench/redirect.sh %s %s, PLACES="%s": loopback TCP in a test netns, both ends in\n' \
		"$REDIRECT_REPS" "$REDIRECT_SECS" "$REDIRECT_PLACES"
	printf 'the agent'"'"'s cgroup; sockperf ping-pong latency (one-way), iperf3 bulk.\n\n'
	cat "$base-redirect.md"
} >>"$base.md" || fail "cannot append the redirect section to $base.md"
latest=$OUT_DIR/latest$suffix
sed "s|($(basename "$base")\(-change\)\{0,1\}.png)|($(basename "$latest")\1.png)|" "$base.md" \
	>"$latest.md" && cp -f "$base.png" "$latest.png" &&
	cp -f "$base-change.png" "$latest-change.png" || fail "cannot copy to $latest.*"
cp -f "$base-mtls.md" "$latest-mtls.md" || fail "cannot copy to $latest-mtls.md"
cp -f "$base-trace.md" "$latest-trace.md" || fail "cannot copy to $latest-trace.md"
cp -f "$base-churn.md" "$latest-churn.md" || fail "cannot copy to $latest-churn.md"
echo "bench: report $base.md (also $latest.md, $latest.png, $latest-change.png; mTLS: $latest-mtls.md;" \
	"tracing: $latest-trace.md; churn: $latest-churn.md), $ELAPSED s"
