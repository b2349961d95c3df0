#!/usr/bin/env bash
# Registry churn at 10 000 services (issue #17's rule for changes under load). The config has
# 10 000 services of 10 backends (make bench's generator), one of them "bench" with live
# backends. While sl_churn registers and deregisters backends of the other services through the
# API for CHURN_SECONDS (16 workers, as fast as the agent answers; the changes of one run of the
# API listener are saved and applied as one batch), "bench" itself gains and loses
# a live backend about 10 times a second, and a client connects to "bench" every 20 ms: not one
# of its connections fails (some reach the flipping backend), every request is answered 2xx, and
# sluice_config_apply_seconds counted every change, and a reload then finds nothing to do in
# the maps. Then a restart with the kept state checked
# on every change (SLUICE_VERIFY_STATE=1: a read of every map per change) churns a little more:
# the state the agent keeps, planned per service, matches the maps each time.
# First, /metrics at this size: the maps' part of the page is rendered on a thread, so the loop
# answers the API meanwhile; a page past its fresh age is served at once while the next renders
# (it says how old it is), and one past METRICS_STALE_MAX_NS (5 s) waits for a fresh render.
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

# scrape NAME: GET /metrics into $VT_TMP/NAME.page; prints curl's time_total (s).
scrape() {
	vt_node curl -q -sf --max-time 20 -o "$VT_TMP/$1.page" -w '%{time_total}\n' \
		http://127.0.0.1:9464/metrics
}
gauge() { awk -v n="$1" '$1 == n { print $2 }' "$VT_TMP/$2.page"; }
# lt A B: A < B, as decimals.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
scrape m1 >/dev/null || vt_fail "GET /metrics failed"
cost=$(gauge sluice_metrics_render_seconds m1)
lines=$(grep -c . "$VT_TMP/m1.page")
vt_log "/metrics at $N services: $lines lines, rendered in ${cost:-?} s"
# An idle backend is one sluice_backend_state line; most families leave out what counted nothing.
vt_check "/metrics at $N idle services: one backend_state line per backend, no per-backend counters of idle ones" -- \
	eval '[ "$lines" -lt $((N * 10 + N + 5000)) ] && [ "$(grep -c "^sluice_backend_state{" "$VT_TMP/m1.page")" -ge $(((N - 1) * 10)) ]'
if lt "${cost:-0}" 0.15; then
	vt_log "a render of ${cost:-?} s is too quick to tell the loop from the render thread: skipped"
else
	sleep 1.2 # past the fresh age (1 s), short of 5 s
	scrape m2 >"$VT_TMP/t2" &
	s2=$!
	sleep 0.05 # the API asked while that scrape is served (and the render it starts runs)
	t_api=$(vt_node curl -q -s --max-time 20 -o /dev/null -w '%{time_total}\n' \
		--unix-socket "$VT_TMP/sluiced.sock" http://sluiced/v1/nothing)
	wait "$s2" || vt_fail "GET /metrics failed"
	t2=$(cat "$VT_TMP/t2")
	age2=$(gauge sluice_metrics_page_age_seconds m2)
	half=$(awk -v c="$cost" 'BEGIN { print c / 2 }')
	vt_check "a stale page ($age2 s old) is answered at once (${t2} s < ${half} s) while the next renders" -- \
		eval 'lt 1.0 "$age2" && lt "$t2" "$half"'
	vt_check "the API answers during the render (${t_api} s < ${half} s)" -- lt "$t_api" "$half"
	sleep 5.2 # past METRICS_STALE_MAX_NS: the next scrape waits for a fresh render
	t3=$(scrape m3) || vt_fail "GET /metrics failed"
	age3=$(gauge sluice_metrics_page_age_seconds m3)
	vt_check "a page older than 5 s is not served: the scrape waited ${t3} s for one ${age3} s old" -- \
		eval 'lt "$age3" "$t3"'
fi

# apply_count SOURCE: sluice_config_apply_seconds_count of that source.
apply_count() {
	va_metrics | awk -v s="sluice_config_apply_seconds_count{source=\"$1\"}" '$1 == s { print $2 }'
}
# churn SECONDS MAX: sl_churn against the decoys d0..d(N-2); its report in $VT_TMP/churn.out.
churn() {
	vt_node "$VT_BIN/sl_churn" --socket "$VT_TMP/sluiced.sock" --services $((N - 1)) \
		--concurrency 16 --seconds "$1" --max "$2" >"$VT_TMP/churn.out" 2>&1
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
reg_lines_before=$(wc -l <"$VA_LOG")
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
# The group commit: the "registry changed" lines of the churn count every change, some of them
# several at once (16 requests in flight).
read -r batches batched biggest <<<"$(awk -v from="$reg_lines_before" 'FNR > from && /msg="registry changed"/ &&
	match($0, /changes=[0-9]+/) { c = substr($0, RSTART + 8, RLENGTH - 8) + 0; n++; s += c; if (c > m) m = c }
	END { print n + 0, s + 0, m + 0 }' "$VA_LOG")"
vt_check "the changes were applied in $batches batches (the largest of $biggest), $batched changes in all" -- \
	eval '[ "$batched" -eq $((ok + n_flips)) ] && [ "$batches" -lt "$batched" ] && [ "$biggest" -ge 2 ]'
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
