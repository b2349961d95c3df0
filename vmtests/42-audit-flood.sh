#!/usr/bin/env bash
# A flood of policy denials cannot stall the agent. Processes in a denied cgroup, one per CPU
# (at least 2), connect() to a VIP that refuses them in a tight loop for 10 s. Meanwhile, every
# 0.5 s, /metrics and the control API each answer within 1 s, and a health-checked backend that
# is stopped is seen unhealthy within its normal detection time. Every denial is still refused
# (EPERM) and counted; the datapath emits audit events within a budget per CPU
# (SLUICE_AUDIT_RATE/s, burst SLUICE_AUDIT_BURST) and counts the rest in
# sluice_audit_events_suppressed_total, so that every denial is accounted for: audit lines, lines
# dropped by the log's rate, events lost in a full ring buffer, and events suppressed.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init auditflood
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
vt_require_tools
command -v curl >/dev/null || vt_skip "curl is missing"
[ -x "$VT_BIN/sl_stress" ] || vt_skip "build/vmtests/sl_stress is missing (make all)"
mkdir "$VT_CGROUP/batch" || vt_fail "mkdir batch cgroup"
hdr() { awk -v k="$1" '$1 == "#define" && $2 == k { print $3 }' "$VT_ROOT/include/sluice/abi.h"; }
RATE=$(hdr SLUICE_AUDIT_RATE)
BURST=$(hdr SLUICE_AUDIT_BURST)
FLOOD_S=10

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<YAML
identities:
  - name: batch
    cgroups: [$VT_CGROUP/batch]
services:
  - name: web
    frontend: 198.19.0.60:80
    backends: [{address: 198.18.1.2:8080}]
    policy: {default: allow, deny_from: [batch]}
  - name: hc
    frontend: 198.19.0.61:80
    backends: [{address: 198.18.1.3:8080}, {address: 198.18.1.4:8080}]
    health_check: {type: tcp, interval: 500ms, timeout: 300ms, healthy_threshold: 2,
                   unhealthy_threshold: 2}
YAML
va_start "$cfg" || vt_finish
metric() { va_metrics | grep -E "^$1(\{[^}]*${2:-}|\s)" | awk '{ s += $NF } END { print s + 0 }'; }
be_state() {
	va_ctl -o json services hc | jq -r --arg a "$1" '.[0].backends[] | select(.address == $a) | .state'
}
all_healthy() { [ "$(be_state 198.18.1.3:8080)" = healthy ] && [ "$(be_state 198.18.1.4:8080)" = healthy ]; }
vt_wait_until 5 all_healthy || vt_fail "hc backends never healthy"
supp0=$(metric sluice_audit_events_suppressed_total)
lost0=$(metric sluice_events_lost_total)

# The flood: one process per CPU, each pinned to its CPU, bounded by time.
ncpu=$(nproc)
nflood=$((ncpu < 2 ? 2 : ncpu))
fpids=()
for ((i = 0; i < nflood; i++)); do
	(
		echo "$BASHPID" >"$VT_CGROUP/batch/cgroup.procs" || exit 2
		exec timeout -k 2 $((FLOOD_S + 20)) ip netns exec "$VT_ID-node" \
			taskset -c $((i % ncpu)) "$VT_BIN/sl_stress" flood 198.19.0.60:80 --seconds "$FLOOD_S"
	) >"$VT_TMP/flood$i.out" 2>&1 &
	fpids+=($!)
	vt_track_pid $!
done
t0=$(date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# Every 0.5 s: /metrics and the API, each within 1 s. At 3 s, be2's server stops.
probes=0 slow_metrics=0 slow_api=0 worst_m=0 worst_a=0 stopped_at=
while [ "$(ms_since "$t0")" -lt $((FLOOD_S * 1000 - 500)) ]; do
	t=$(date +%s%N)
	vt_node curl -sf --max-time 1 -o /dev/null http://127.0.0.1:9464/metrics || slow_metrics=$((slow_metrics + 1))
	m=$(ms_since "$t")
	t=$(date +%s%N)
	vt_node curl -sf --max-time 1 -o /dev/null --unix-socket "$VT_TMP/sluiced.sock" \
		http://localhost/v1/services || slow_api=$((slow_api + 1))
	a=$(ms_since "$t")
	[ "$m" -gt "$worst_m" ] && worst_m=$m
	[ "$a" -gt "$worst_a" ] && worst_a=$a
	probes=$((probes + 1))
	if [ -z "$stopped_at" ] && [ "$(ms_since "$t0")" -ge 3000 ]; then
		vt_server_stop be2
		stopped_at=$(date +%s%N)
	fi
	if [ -n "$stopped_at" ] && [ -z "${unhealthy_ms:-}" ] && [ "$(be_state 198.18.1.3:8080)" = unhealthy ]; then
		unhealthy_ms=$(ms_since "$stopped_at")
	fi
	sleep 0.5
done
[ "$slow_metrics" -eq 0 ] &&
	vt_pass "during the flood /metrics answered $probes of $probes times within 1 s (slowest ${worst_m} ms)" ||
	vt_fail "during the flood /metrics failed or took over 1 s $slow_metrics of $probes times"
[ "$slow_api" -eq 0 ] &&
	vt_pass "during the flood the API answered $probes of $probes times within 1 s (slowest ${worst_a} ms)" ||
	vt_fail "during the flood the API failed or took over 1 s $slow_api of $probes times"
# interval 500 ms x unhealthy_threshold 2, plus the probe timeout and slack (as vmtest 35)
if [ -n "${unhealthy_ms:-}" ] && [ "$unhealthy_ms" -le 2500 ]; then
	vt_pass "during the flood the stopped backend was unhealthy ${unhealthy_ms} ms after its server stopped"
else
	vt_fail "during the flood the stopped backend was seen unhealthy after '${unhealthy_ms:-never}' ms (want <= 2500)"
fi

attempts=0 eperm=0
for ((i = 0; i < nflood; i++)); do
	wait "${fpids[$i]}"
	attempts=$((attempts + $(vt_value "$VT_TMP/flood$i.out" attempts)))
	eperm=$((eperm + $(vt_value "$VT_TMP/flood$i.out" 'errno EPERM')))
done
[ "$attempts" -gt 0 ] && [ "$eperm" -eq "$attempts" ] &&
	vt_pass "$nflood processes made $attempts denied connects in ${FLOOD_S} s, every one EPERM" ||
	vt_fail "flood: $attempts attempts, $eperm EPERM: $(cat "$VT_TMP"/flood*.out | tr '\n' ' ')"
rej=$(metric sluice_rejected_connections_total 'service="web",reason="policy"')
[ "$rej" -eq "$attempts" ] && vt_pass "each is counted in sluice_rejected_connections_total ($rej)" ||
	vt_fail "rejected_connections_total{policy} $rej, want $attempts"

# Every denial is accounted for, and the ring buffer saw at most the budget.
dropped_line() { grep -q '"event":"audit_dropped"' "$VT_TMP/audit.log"; }
vt_wait_until 3 dropped_line
sleep 1.5 # the last summary of lines dropped by the log's rate
supp=$(($(metric sluice_audit_events_suppressed_total) - supp0))
lost=$(($(metric sluice_events_lost_total) - lost0))
lines=$(grep -c '"verdict":"deny"' "$VT_TMP/audit.log")
dropped=$(grep '"event":"audit_dropped"' "$VT_TMP/audit.log" | jq -s 'map(.dropped) | add // 0')
secs=$((($(ms_since "$t0") + 999) / 1000))
budget=$((ncpu * (BURST + RATE * secs)))
emitted=$((attempts - supp))
if [ "$emitted" -le "$budget" ] && [ "$((lines + dropped + lost + supp))" -eq "$attempts" ]; then
	vt_pass "$emitted audit events emitted (budget $budget: $ncpu CPUs x ($BURST + $RATE/s x $secs s)), $supp suppressed and counted; $lines lines + $dropped dropped + $lost lost + $supp suppressed = $attempts"
else
	vt_fail "accounting: attempts $attempts, emitted $emitted (budget $budget), lines $lines, dropped $dropped, lost $lost, suppressed $supp"
fi

va_stop
vt_finish
