#!/usr/bin/env bash
# Registry churn at 10 000 services (issue #17's rule for changes under load). The config has
# 10 000 services of 10 backends (make bench's generator), one of them "bench" with live
# backends. While sl_churn registers and deregisters backends of the other services through the
# API for CHURN_SECONDS (4 workers, as fast as the agent answers), "bench" itself gains and loses
# a live backend about 10 times a second, and a client connects to "bench" every 20 ms: not one
# of its connections fails (some reach the flipping backend), every request is answered 2xx, and
# sluice_config_apply_seconds counted every change, and a reload then finds nothing to do in
# the maps. Then a restart with the kept state checked
# on every change (SLUICE_VERIFY_STATE=1: a read of every map per change) churns a little more:
# the state the agent keeps, planned per service, matches the maps each time.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"
. "$VT_ROOT/tools/bench/lib.sh"

vt_require_root
vt_require_btf
vt_init churn
vt_topology || vt_finish
vt_backends 80 || vt_finish
vt_cgroup || vt_finish
vt_bpffs
vt_require_tools
[ -x "$VT_BIN/sl_churn" ] || vt_skip "build/vmtests/sl_churn is missing (make all)"

N=${CHURN_SERVICES:-10000}
SECS=${CHURN_SECONDS:-10}
BW_LIMITS_SERVICES=$((N + 16)) BW_LIMITS_BACKENDS=$((N * 10 + 64))
cfg=$VT_TMP/sluice.yaml
bw_agent_config "$cfg" "$N" 10 -v measured=1 || vt_finish
VA_VERIFY_STATE=0 va_start "$cfg" || vt_finish
vt_log "agent ready with $N services"

# apply_count SOURCE: sluice_config_apply_seconds_count of that source.
apply_count() {
	va_metrics | awk -v s="sluice_config_apply_seconds_count{source=\"$1\"}" '$1 == s { print $2 }'
}
# churn SECONDS MAX: sl_churn against the decoys d0..d(N-2); its report in $VT_TMP/churn.out.
churn() {
	vt_node "$VT_BIN/sl_churn" --socket "$VT_TMP/sluiced.sock" --services $((N - 1)) \
		--concurrency 4 --seconds "$1" --max "$2" >"$VT_TMP/churn.out" 2>&1
}

# flips: "bench" itself gains and loses a live backend (flip, on be2's :8080) every 100 ms or so,
# each time a new slot generation under the client's connections.
vt_server "$VT_ID-be2" flip 8080 || vt_finish
flips() {
	local end=$((SECONDS + SECS)) n=0
	while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 1000 ]; do
		va_ctl register bench 198.18.1.3:8080 >/dev/null && n=$((n + 1))
		sleep 0.05
		va_ctl deregister bench 198.18.1.3:8080 >/dev/null && n=$((n + 1))
		sleep 0.05
	done
	echo "$n"
}

before=$(apply_count api)
updates_before=$(grep -c 'msg="service updated"' "$VA_LOG")
out=$VT_TMP/loop.out
vt_in_cg "$VT_CGROUP" "$VT_BIN/sl_client" loop 198.19.0.10:80 --seconds $((SECS + 2)) \
	--interval-ms 20 --timeout-ms 2000 >"$out" 2>&1 &
loop=$!
vt_track_pid "$loop"
sleep 1
flips >"$VT_TMP/flips.out" &
flipper=$!
vt_track_pid "$flipper"
churn "$SECS" 200000 || vt_fail "sl_churn: $(tr '\n' ' ' <"$VT_TMP/churn.out")"
wait "$flipper"
wait "$loop"
n_flips=$(cat "$VT_TMP/flips.out")
vt_log "churn: $(tr '\n' ' ' <"$VT_TMP/churn.out")"
vt_log "client: $(tr '\n' ' ' <"$out")"
reqs=$(vt_value "$VT_TMP/churn.out" requests)
ok=$(vt_value "$VT_TMP/churn.out" ok)
vt_check "churn: $reqs requests in ${SECS} s, every one answered 2xx" -d 'cat "$VT_TMP/churn.out"' -- \
	eval '[ "${reqs:-0}" -ge 20 ] && [ "$ok" = "$reqs" ]'
conn_ok=$(vt_value "$out" ok) conn_fail=$(vt_value "$out" fail) via_flip=$(vt_value "$out" flip)
vt_check "a client of bench meanwhile, through $n_flips generation flips: $conn_ok connections (flip answered $via_flip), none failed" \
	-d 'cat "$out"' -- eval '[ "${conn_ok:-0}" -ge $((SECS * 10)) ] && [ "$conn_fail" = 0 ] &&
		[ "${n_flips:-0}" -ge $((SECS * 2)) ] && [ "$via_flip" -ge 1 ]'
after=$(apply_count api)
vt_check "sluice_config_apply_seconds counted the $ok changes and $n_flips flips (api: $before -> $after)" -- \
	eval '[ $((after - before)) -eq $((ok + n_flips)) ]'
updates=$(($(grep -c 'msg="service updated"' "$VA_LOG") - updates_before))
vt_check "each change updated its service in the maps ($updates updates)" -- \
	[ "$updates" -eq $((ok + n_flips)) ]
left=$(va_ctl -o json services 2>/dev/null | jq '[.[] | select(.name | startswith("d")) |
	.backends[] | select(.address | startswith("198.18.254."))] | length')
vt_check "the registrations churned in are all gone again ($left left)" -- [ "$left" = 0 ]
# A reload plans every service against the maps: after the churn, each planned per service,
# there is nothing to do.
applied=$(grep -c 'msg="config applied"' "$VA_LOG")
kill -HUP "$VA_PID"
vt_wait_until 20 va_log_count_ge 'msg="config applied"' $((applied + 1)) ||
	vt_fail "no reload after SIGHUP: $(tail -n 3 "$VA_LOG")"
last=$(grep 'msg="config applied"' "$VA_LOG" | tail -n 1)
vt_check "then a reload of every service finds the maps as the changes left them" -d 'echo "$last"' -- \
	eval 'echo "$last" | grep -q "added=0 updated=0 removed=0"'

# The same with the kept state checked against a read of the maps on every change.
va_stop
va_start "$cfg" || vt_finish
churn 3 60 || vt_fail "sl_churn: $(tr '\n' ' ' <"$VT_TMP/churn.out")"
vt_log "verified churn: $(tr '\n' ' ' <"$VT_TMP/churn.out")"
reqs=$(vt_value "$VT_TMP/churn.out" requests)
ok=$(vt_value "$VT_TMP/churn.out" ok)
vt_check "with SLUICE_VERIFY_STATE=1: $reqs requests, every one 2xx, and the kept state matched" \
	-d 'cat "$VT_TMP/churn.out"' -- eval '[ "${reqs:-0}" -ge 4 ] && [ "$ok" = "$reqs" ]'

va_stop
vt_finish
