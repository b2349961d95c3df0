#!/usr/bin/env bash
# tools/bench/mtls.sh - the cost of mutual TLS between two nodes (issue 18, "Performance"):
# sluice's tunnel against plaintext and against the sidecar model (an HAProxy mTLS pair).
# Run as root, after `make` (sluice is measured only if build/sluiced has mtls).
#
#   tools/bench/mtls.sh [--out FILE.md]          the full run (about 4 minutes on 2 cores)
#   QUICK=1 tools/bench/mtls.sh [--out FILE.md]  a short run for CI (under 60 s)
#
# Two nodes: network namespaces A and B joined by one veth pair (198.18.0.1, .2; no default
# route; the VIP range blackholed); the client (tools/bench/sl_bench) on A, nginx on B. Systems
# (tools/bench/mtls/world.sh says how each is set up):
#   direct         plaintext, client -> nginx: the floor
#   haproxy        client -> HAProxy on A -> TLS 1.3, client certificate -> HAProxy on B -> nginx
#   sluice-off     sluiced on both nodes, the service mtls: off (plaintext through sluice)
#   sluice-strict  the same, mtls: strict (A's agent -> TLS 1.3 on :15008 -> B's agent)
#   haproxy-full   (only if named in SYSTEMS) haproxy with TLS session reuse off
#   sluice-plain   (only if named in SYSTEMS) sluiced on both nodes without any mtls key: runs
#                  on a sluiced without mtls, to test this harness's two-agent setup
# The sluice systems run only when `build/sluiced --version` mentions mtls or ktls; otherwise
# they are skipped and the report says so.
#
# Besides: the CPU time of each system's own processes (HAProxy, sluiced) per operation, and
# the share of TLS sessions node B's HAProxy (or sluiced) resumed.
#
# Per system, in one fresh world (new namespaces, processes and agents) per round:
#   ka     small GETs on KA_CONC kept-alive connections: requests/s, p50 and p99 latency
#   bulk   1 MiB GETs on BULK_CONC kept-alive connections: Mbit/s
#   conn   new connections: connect + one GET (Connection: close) + close, CONC clients: the
#          rate, p50 and p99 of the whole operation. Last in its world, so that no measurement
#          runs among the TIME_WAIT sockets of another (notes.md: TIME_WAIT and PAWS).
# The systems are interleaved (A B C A B C), rotated by one each round. The report: a Markdown
# table (median and min-max over the rounds) and the ratios haproxy / direct, sluice-strict /
# haproxy, sluice-strict / sluice-off, on stdout and in FILE.md (the raw data in FILE.tsv).
#
# Tunables (environment): REPS, CONN_SECS, KA_SECS, WARM_SECS, CONC, KA_CONC, BULK_CONC,
# SYSTEMS, MAX_SECS (a round that would end past it is not started; the first always is),
# HAPROXY_NBTHREAD (default: HAProxy's, one thread per CPU), SLUICE_INTERFACES (the agents'
# agent.interfaces, default eth0: TC on the link, which strict needs to drop plaintext),
# VA_SLUICED (the sluiced to run, default build/sluiced).
#
# Network safety: every address is in 198.18.0.0/15, in namespaces this script creates; the
# client runs only in node A (no default route, the VIP range blackholed); sl_bench refuses any
# other target and every run is bounded in time. Everything is removed on exit, failure or
# Ctrl-C.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The report goes to the original stdout (fd 3); everything else to stderr.
exec 3>&1 1>&2

usage() {
	echo "usage: [QUICK=1] $0 [--out FILE.md]" >&2
	exit 2
}
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--out)
		[ $# -ge 2 ] && [ -n "$2" ] || usage
		OUT=$2
		shift 2
		;;
	--out=*)
		OUT=${1#--out=}
		[ -n "$OUT" ] || usage
		shift
		;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
[ "$(id -u)" -eq 0 ] || {
	echo "mtls-bench: run as root (network namespaces, cgroups, BPF)" >&2
	exit 1
}
QUICK=${QUICK:-0}
[ "$QUICK" = 0 ] || [ "$QUICK" = 1 ] || {
	echo "mtls-bench: QUICK must be 0 or 1" >&2
	exit 2
}
if [ "$QUICK" = 1 ]; then
	: "${REPS:=2}" "${CONN_SECS:=1}" "${KA_SECS:=0.5}" "${WARM_SECS:=0.2}" "${MAX_SECS:=55}"
else
	: "${REPS:=5}" "${CONN_SECS:=3}" "${KA_SECS:=2}" "${WARM_SECS:=0.5}" "${MAX_SECS:=900}"
fi
: "${CONC:=8}" "${KA_CONC:=8}" "${BULK_CONC:=2}"
: "${SYSTEMS:=direct haproxy sluice-off sluice-strict}"
for v in REPS CONC KA_CONC BULK_CONC MAX_SECS; do
	[[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 100000 ] || {
		echo "mtls-bench: $v must be a positive integer" >&2
		exit 2
	}
done
[ -z "${HAPROXY_NBTHREAD:-}" ] || [[ "$HAPROXY_NBTHREAD" =~ ^[1-9][0-9]?$ ]] || {
	echo "mtls-bench: HAPROXY_NBTHREAD must be a number of threads, 1..99" >&2
	exit 2
}
[[ "${SLUICE_INTERFACES-eth0}" =~ ^[A-Za-z0-9_.*,\ -]*$ ]] || {
	echo "mtls-bench: SLUICE_INTERFACES must be interface names or globs, comma-separated" >&2
	exit 2
}
for v in CONN_SECS KA_SECS WARM_SECS; do
	[[ "${!v}" =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
		awk -v x="${!v}" -v lo="$([ $v = WARM_SECS ] && echo 0 || echo 0.1)" \
			'BEGIN { exit !(x >= lo && x <= 60) }' || {
		echo "mtls-bench: $v must be a number of seconds, 0.1 (WARM_SECS: 0) to 60" >&2
		exit 2
	}
done
for s in $SYSTEMS; do
	case $s in
	direct | haproxy | haproxy-full | sluice-off | sluice-strict | sluice-plain) ;;
	*)
		echo "mtls-bench: unknown system '$s' in SYSTEMS" >&2
		exit 2
		;;
	esac
done
missing=
for t in nginx haproxy openssl awk ss ip nsenter timeout; do
	command -v "$t" >/dev/null || missing="$missing $t"
done
[ -z "$missing" ] || {
	echo "mtls-bench: missing tools:$missing (run make deps)" >&2
	exit 1
}
if [ -n "$OUT" ]; then
	mkdir -p "$(dirname "$OUT")" && touch "$OUT" || {
		echo "mtls-bench: cannot write $OUT" >&2
		exit 1
	}
fi

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=120
VA_SLUICED=${VA_SLUICED:-$ROOT/build/sluiced}
# shellcheck source=../../vmtests/lib.sh
. "$ROOT/vmtests/lib.sh"
# shellcheck source=lib.sh
. "$ROOT/tools/bench/lib.sh"
# shellcheck source=mtls/world.sh
. "$ROOT/tools/bench/mtls/world.sh"

bw_build || {
	echo "mtls-bench: cannot build sl_bench" >&2
	exit 1
}
vt_init mtlsbench
START=$(date +%s)
RAW=${OUT:+${OUT%.md}.tsv}
RAW=${RAW:-$VT_TMP/raw.tsv}

# Which sluice systems can run: only a sluiced with mtls (its --version names it).
sluice_ver=
sluice_skip=
if [ ! -x "$VA_SLUICED" ]; then
	sluice_skip="$VA_SLUICED is missing (run make)"
else
	sluice_ver=$("$VA_SLUICED" --version 2>&1)
	grep -qiE 'mtls|ktls' <<<"$sluice_ver" ||
		sluice_skip="this sluiced has no mtls: its --version mentions neither mtls nor ktls"
fi
# "0.1.0, commit abc1234, ktls yes": which sluiced, for the report
sluice_id=$(awk 'NR == 1 { v = $2 } /^commit:/ { c = ", commit " $2 }
	tolower($1) == "ktls" && k == "" { k = ", ktls " $2 } END { print v c k }' <<<"$sluice_ver")
[ -n "$sluice_skip" ] && [ -n "$sluice_id" ] && sluice_skip="$sluice_skip (sluiced $sluice_id)"
systems=()
skipped=()
for s in $SYSTEMS; do
	if [[ "$s" == sluice-off || "$s" == sluice-strict ]] && [ -n "$sluice_skip" ]; then
		skipped+=("$s")
	else
		systems+=("$s")
	fi
done
if [[ " ${systems[*]} " == *" sluice-"* ]] && ! command -v curl >/dev/null; then
	echo "mtls-bench: missing tool: curl (the agents' metrics; run make deps)" >&2
	exit 1
fi
[ "${#systems[@]}" -gt 0 ] || {
	echo "mtls-bench: nothing to run (SYSTEMS=$SYSTEMS; skipped: $sluice_skip)" >&2
	exit 1
}

mb_certs "$VT_TMP/certs" || {
	echo "mtls-bench: cannot make the certificates" >&2
	exit 1
}

host=$(hostname -s 2>/dev/null || hostname)
{
	printf '# sluice mtls bench raw data; QUICK=%s REPS=%s CONN_SECS=%s KA_SECS=%s ' \
		"$QUICK" "$REPS" "$CONN_SECS" "$KA_SECS"
	printf 'WARM_SECS=%s CONC=%s KA_CONC=%s BULK_CONC=%s%s\n' "$WARM_SECS" "$CONC" "$KA_CONC" \
		"$BULK_CONC" "${HAPROXY_NBTHREAD:+ HAPROXY_NBTHREAD=$HAPROXY_NBTHREAD}"
	printf '# host: %s\n' "$host"
	printf '# date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '# machine: %s cores (%s), %s GiB memory, kernel %s, %s\n' "$(nproc)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
		"$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" "$(uname -r)" \
		"$(. /etc/os-release && echo "$PRETTY_NAME")"
	printf '# tools: nginx %s, HAProxy %s, %s, sluiced %s\n' \
		"$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$(haproxy -v | awk 'NR == 1 { print $3 }')" \
		"$(openssl version | awk '{ print $1, $2 }')" "${sluice_id:-missing}"
	printf '# certs: ECDSA P-256, test CA; sluice certificates from %s\n' "$MB_CERT_SOURCE"
	printf '# quick: %s\n' "$QUICK"
	printf '# load: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	for s in ${skipped[@]+"${skipped[@]}"}; do
		printf 'skip\t%s\t%s\n' "$s" "$sluice_skip"
	done
} >"$RAW" || {
	echo "mtls-bench: cannot write $RAW" >&2
	exit 1
}
for s in ${skipped[@]+"${skipped[@]}"}; do
	bw_log "$s: skipped: $sluice_skip"
done

# kv LINE KEY: the value of KEY=... in an sl_bench line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# measure KIND: one sl_bench run in the current world; appends a raw line. Uses SYS, REP.
measure() {
	local kind=$1 out rc c0 c1 cpu=
	c0=$(mb_cpu_ticks)
	case $kind in
	ka) out=$(mb_client ka "$MB_TARGET" -c "$KA_CONC" -d "$KA_SECS" -w "$WARM_SECS" -p /s) ;;
	bulk) out=$(mb_client ka "$MB_TARGET" -c "$BULK_CONC" -d "$KA_SECS" -w "$WARM_SECS" -p /big) ;;
	conn) out=$(mb_client conn "$MB_TARGET" -c "$CONC" -d "$CONN_SECS" -w "$WARM_SECS" -p /s) ;;
	esac
	rc=$?
	c1=$(mb_cpu_ticks)
	# The system's CPU time per operation, in µs: the ticks of warm-up and run, over the
	# operations of both (the rate times their length; warm-up operations are not counted).
	[ -n "$c0" ] && cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v r="$(kv "$out" rate)" \
		-v s="$(kv "$out" secs)" -v w="$WARM_SECS" \
		'BEGIN { if (r * (s + w) > 0) printf "%.1f", t * 1e6 / hz / (r * (s + w)) }')
	if [ -z "$out" ] || [ "$(kv "$out" ops)" = 0 ]; then
		bw_log "$SYS $kind: no successful operation (exit $rc): $out"
		return 1
	fi
	[ "$rc" -ne 0 ] && bw_log "$SYS $kind: more than 1% errors: $out"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$SYS" "$REP" \
		"$(kv "$out" rate)" "$(kv "$out" p50_us)" "$(kv "$out" p99_us)" "$(kv "$out" errors)" \
		"$(kv "$out" ops)" "$(kv "$out" mbit_s)" "$MB_SETUP_MS" "$cpu" >>"$RAW"
	printf '  %-4s %-13s rep %s: %10s/s  p50 %8s us  p99 %8s us%s%s\n' "$kind" "$SYS" "$REP" \
		"$(kv "$out" rate)" "$(kv "$out" p50_us)" "$(kv "$out" p99_us)" \
		"$([ "$kind" = bulk ] && echo "  $(kv "$out" mbit_s) Mbit/s")" \
		"${cpu:+  cpu $cpu us/op}"
}

fail() {
	bw_log "$*"
	exit 1
}

# A world's expected length: the measurements plus about 2 s of setup and teardown (4 s with
# agents).
world_secs() {
	awk -v c="$CONN_SECS" -v k="$KA_SECS" -v w="$WARM_SECS" -v a="$1" \
		'BEGIN { printf "%d\n", c + 2 * k + 3 * w + 2 + (a ~ /^sluice/ ? 2 : 0) + 0.999 }'
}

nsys=${#systems[@]}
checked=0
stopped=
echo "mtls-bench: ${systems[*]} x $REPS rounds (keep-alive ${KA_SECS}s, new connections" \
	"${CONN_SECS}s, $CONC clients; at most ${MAX_SECS}s)"
for ((REP = 1; REP <= REPS; REP++)); do
	if [ "$REP" -gt 1 ]; then
		need=0
		for s in "${systems[@]}"; do need=$((need + $(world_secs "$s"))); done
		if [ $(($(date +%s) - START + need)) -gt "$MAX_SECS" ]; then
			stopped="stopped after $((REP - 1)) of $REPS rounds: MAX_SECS=$MAX_SECS"
			bw_log "$stopped"
			break
		fi
	fi
	for ((k = 0; k < nsys; k++)); do
		SYS=${systems[$(((k + REP - 1) % nsys))]}
		mb_up "$SYS" || fail "$SYS: setup failed"
		if [[ "$SYS" == haproxy* ]] && [ "$checked" = 0 ]; then
			mb_check_mutual || fail "haproxy pair: mutual TLS check failed"
			checked=1
		fi
		for kind in ka bulk conn; do
			measure "$kind" || fail "$SYS: $kind failed"
		done
		if [[ "$SYS" == haproxy* ]]; then
			printf 'reuse\t%s\t%s\t%s\n' "$SYS" "$REP" "$(mb_haproxy_reuse)" >>"$RAW"
		elif [ "$SYS" = sluice-strict ]; then
			printf 'reuse\t%s\t%s\t%s\n' "$SYS" "$REP" "$(mb_sluice_resumed)" >>"$RAW"
		fi
		mb_down
	done
done
ELAPSED=$(($(date +%s) - START))
{
	[ -n "$stopped" ] && printf '# stopped: %s\n' "$stopped"
	printf '# elapsed %s\n' "$ELAPSED"
} >>"$RAW"

report=$VT_TMP/report.md
"$ROOT/tools/bench/mtls/report.sh" "$RAW" "$report" || fail "report failed"
cat "$report" >&3
if [ -n "$OUT" ]; then
	cp -f "$report" "$OUT" || fail "cannot write $OUT"
	bw_log "report $OUT, raw data $RAW, $ELAPSED s"
fi
