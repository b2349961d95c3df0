#!/usr/bin/env bash
# Resilience with real faults: outlier detection ejects a backend whose server died (RST) and
# one whose SYNs are dropped (timeout) after consecutive_failures failed connects, and no more
# fail after that; an ejected backend comes back half-open; max_ejection_percent caps the
# ejections; timeouts.connect bounds the SYN phase; active TCP and HTTP health checks take a
# backend out and bring it back within interval x threshold, with log lines, events and
# metrics, and their probes are never counted as service traffic.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world resil
command -v nft >/dev/null || vt_skip "nft is missing (Debian package nftables)"
command -v python3 >/dev/null || vt_skip "python3 is missing"

# The "pct" service: be1:9000 serves, be2:9000, be3:9000 and be1:9001 refuse (3 of 4 fail).
vt_server "$VT_ID-be1" be1-9000 9000 || vt_finish

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: rst
    frontend: 198.19.0.10:80
    lb: round_robin
    backends: &three
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 8s, max_ejection_percent: 50}
  - name: bh
    frontend: 198.19.0.11:80
    lb: round_robin
    backends: *three
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 60s, max_ejection_percent: 50}
    timeouts: {connect: 1s}
  - name: bhonly
    frontend: 198.19.0.12:80
    backends:
      - address: 198.18.1.4:8080
    timeouts: {connect: 1s}
  - name: pct
    frontend: 198.19.0.13:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:9000
      - address: 198.18.1.3:9000
      - address: 198.18.1.4:9000
      - address: 198.18.1.2:9001
    outlier_detection: {consecutive_failures: 2, base_ejection_time: 60s, max_ejection_percent: 50}
  - name: hc
    frontend: 198.19.0.14:80
    lb: round_robin
    backends: *three
    health_check: {type: tcp, interval: 500ms, timeout: 300ms, healthy_threshold: 2,
                   unhealthy_threshold: 2}
  - name: http
    frontend: 198.19.0.15:80
    backends:
      - address: 198.18.1.3:8080
    health_check: {type: http, port: 8081, path: /healthz, interval: 500ms, timeout: 300ms,
                   healthy_threshold: 2, unhealthy_threshold: 2}
YAML

# be2 answers GET /healthz on :8081 while the file exists.
www=$VT_TMP/www
mkdir -p "$www" && echo ok >"$www/healthz"
(cd "$www" && exec ip netns exec "$VT_ID-be2" python3 -m http.server 8081 --bind 198.18.1.3 \
	>"$VT_TMP/http.log" 2>&1) &
vt_track_pid $!

va_start "$cfg" || vt_finish

mon=$VT_TMP/monitor.jsonl
(exec nsenter --net="/run/netns/$VT_ID-node" "$VA_SLUICECTL" --api "$VT_TMP/sluiced.sock" -o json \
	monitor >"$mon" 2>"$VT_TMP/monitor.err") &
mon_pid=$!
vt_track_pid "$mon_pid"

# state SERVICE ADDRESS: the backend's state as sluicectl shows it.
state() {
	va_ctl -o json services "$1" |
		jq -r --arg a "$2" '.[0].backends[] | select(.address == $a) | .state'
}
is_state() { [ "$(state "$1" "$2")" = "$3" ]; }
n_state() { # n_state SERVICE STATE: how many of its backends are in STATE
	va_ctl -o json services "$1" | jq --arg s "$2" '[.[0].backends[] | select(.state == $s)] | length'
}
metric() { # metric NAME SELECTOR: the sum of the samples of NAME matching SELECTOR (grep -E)
	va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'
}

# --- outlier detection: a backend whose server dies (RST to every SYN) ------------------------
out=$VT_TMP/rst.out
vt_client loop 198.19.0.10:80 --seconds 3 --interval-ms 10 --timeout-ms 2000 >"$out" &
loop=$!
sleep 1
vt_server_stop be2
wait "$loop"
fails=$(vt_value "$out" fail)
refused=$(vt_value "$out" 'errno ECONNREFUSED')
# A request in flight on be2 when its server stops ends in a reset: that is not a failed connect.
reset=$(vt_value "$out" 'errno ECONNRESET')
reset=${reset:-0}
[ "$refused" -ge 1 ] && [ "$refused" -le 3 ] && [ "$reset" -le 1 ] &&
	[ "$fails" -eq $((refused + reset)) ] &&
	vt_pass "RST: $refused failed connects (refused), at most consecutive_failures=3, then none ($reset in flight reset)" ||
	vt_fail "RST: $(tr '\n' ' ' <"$out")"
is_state rst 198.18.1.3:8080 ejected && vt_pass "RST: be2 is ejected" ||
	vt_fail "RST: be2 is $(state rst 198.18.1.3:8080)"
left=$(va_ctl -o json services rst |
	jq '.[0].backends[] | select(.address == "198.18.1.3:8080") | .ejected_remaining_s')
va_ctl services rst >"$VT_TMP/rst.table"
grep -qE '198\.18\.1\.3:8080 .*ejected\([0-9]+s left\)' "$VT_TMP/rst.table" &&
	vt_pass "sluicectl services shows the time left (${left}s)" ||
	vt_fail "services table: $(cat "$VT_TMP/rst.table")"
[ "$(metric sluice_backend_state 'service="rst",backend="198.18.1.3:8080",state="ejected"')" -eq 1 ] &&
	vt_pass "metric sluice_backend_state{state=\"ejected\"} is 1" ||
	vt_fail "metric: $(va_metrics | grep 'sluice_backend_state{service="rst",backend="198.18.1.3')"
va_log_has 'msg="backend ejected" service=rst backend=198.18.1.3:8080' &&
	vt_pass "the agent logged the ejection" || vt_fail "no ejection log line"
vt_client loop 198.19.0.10:80 --seconds 1 --interval-ms 10 --timeout-ms 2000 >"$out"
[ "$(vt_value "$out" fail)" -eq 0 ] && [ "$(vt_value "$out" be2)" -eq 0 ] &&
	vt_pass "while ejected: no failed connects, none to be2 ($(vt_value "$out" ok) ok)" ||
	vt_fail "while ejected: $(tr '\n' ' ' <"$out")"

# The server comes back; once the ejection (8 s) is over, a success readmits it.
vt_server "$VT_ID-be2" be2 8080 || vt_finish
vt_wait_until 12 is_state rst 198.18.1.3:8080 healthy || vt_fail "be2 never left the ejection"
vt_client loop 198.19.0.10:80 --seconds 1 --interval-ms 10 --timeout-ms 2000 >"$out"
[ "$(vt_value "$out" fail)" -eq 0 ] && [ "$(vt_value "$out" be2)" -ge 10 ] &&
	vt_pass "after the ejection: be2 readmitted ($(vt_value "$out" be2) connections), none failed" ||
	vt_fail "after the ejection: $(tr '\n' ' ' <"$out")"

# --- outlier detection: a blackholed backend (its SYNs dropped in its netns) -------------------
vt_require_tools
ip netns exec "$VT_ID-be3" nft -f - <<'NFT' || vt_fail "nft blackhole"
table inet vtbh {
	chain in {
		type filter hook input priority 0;
		tcp dport 8080 drop
	}
}
NFT
# timeouts.connect: 1s bounds the SYN phase (the kernel default is about 2 minutes).
vt_client tcp 198.19.0.12:80 -n 1 --timeout-ms 10000 >"$out"
ms=$(vt_value "$out" elapsed_ms)
[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 1 ] && [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ] &&
	vt_pass "timeouts.connect 1s: connect to a blackholed backend failed in ${ms} ms" ||
	vt_fail "timeouts.connect: $(tr '\n' ' ' <"$out")"

vt_client loop 198.19.0.11:80 --seconds 6 --interval-ms 10 --timeout-ms 5000 >"$out"
fails=$(vt_value "$out" fail)
[ "$fails" -ge 1 ] && [ "$fails" -le 3 ] && [ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq "$fails" ] &&
	vt_pass "blackhole: $fails connects timed out, at most consecutive_failures=3, then none" ||
	vt_fail "blackhole: $(tr '\n' ' ' <"$out")"
is_state bh 198.18.1.4:8080 ejected && vt_pass "blackhole: be3 is ejected" ||
	vt_fail "blackhole: be3 is $(state bh 198.18.1.4:8080)"
vt_client loop 198.19.0.11:80 --seconds 1 --interval-ms 10 --timeout-ms 5000 >"$out"
[ "$(vt_value "$out" fail)" -eq 0 ] && vt_pass "blackhole: then no failed connects" ||
	vt_fail "blackhole, after: $(tr '\n' ' ' <"$out")"
ip netns exec "$VT_ID-be3" nft delete table inet vtbh || vt_fail "nft cleanup"

# --- max_ejection_percent: 3 of 4 backends fail, 50% lets 2 be ejected --------------------------
vt_client loop 198.19.0.13:80 --seconds 2 --interval-ms 5 --timeout-ms 2000 >"$out"
ej=$(n_state pct ejected)
[ "$ej" -eq 2 ] && vt_pass "max_ejection_percent 50: 2 of the 3 failing backends ejected" ||
	vt_fail "pct: $ej ejected: $(va_ctl services pct)"

# --- active health checks ---------------------------------------------------------------------
all_healthy() { [ "$(n_state hc healthy)" -eq 3 ]; }
vt_wait_until 3 all_healthy && vt_pass "tcp health checks: all 3 healthy" ||
	vt_fail "hc: $(va_ctl services hc)"
vt_server_stop be1
t0=$(date +%s%N)
if vt_wait_until 5 is_state hc 198.18.1.2:8080 unhealthy; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	# interval 500 ms x unhealthy_threshold 2, plus the probe timeout and slack
	[ "$ms" -le 2500 ] && vt_pass "be1 unhealthy ${ms} ms after its server stopped" ||
		vt_fail "be1 unhealthy only after ${ms} ms"
else
	vt_fail "be1 never became unhealthy: $(va_ctl services hc)"
fi
va_log_has 'msg="backend unhealthy" service=hc backend=198.18.1.2:8080' &&
	vt_pass "the agent logged the state change" || vt_fail "no 'backend unhealthy' log line"
vt_client tcp 198.19.0.14:80 -n 30 >"$out"
[ "$(vt_value "$out" fail)" -eq 0 ] && [ "$(vt_value "$out" be1)" -eq 0 ] &&
	vt_pass "unhealthy be1 takes no connections (30 ok)" ||
	vt_fail "hc while be1 down: $(tr '\n' ' ' <"$out")"
vt_server "$VT_ID-be1" be1 8080 || vt_finish
t0=$(date +%s%N)
if vt_wait_until 5 is_state hc 198.18.1.2:8080 healthy; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -le 2500 ] && vt_pass "be1 readmitted ${ms} ms after its server came back" ||
		vt_fail "be1 readmitted only after ${ms} ms"
else
	vt_fail "be1 never came back: $(va_ctl services hc)"
fi
[ "$(metric sluice_health_checks_total 'service="hc",backend="198.18.1.2:8080",result="failed"')" -ge 2 ] &&
	[ "$(metric sluice_health_checks_total 'service="hc",backend="198.18.1.2:8080",result="ok"')" -ge 3 ] &&
	vt_pass "sluice_health_checks_total counts ok and failed probes" ||
	vt_fail "health metrics: $(va_metrics | grep 'sluice_health_checks_total{service="hc"')"
# Probes are the agent's own sockets: the service counted only the client's 30 connections.
total=$(va_ctl -o json services hc | jq '[.[0].backends[].connections_total] | add')
[ "$total" -eq 30 ] && vt_pass "probes are not service traffic: connections_total is 30" ||
	vt_fail "hc connections_total $total, want 30"

# HTTP: GET /healthz on port 8081; a 404 is unhealthy.
vt_wait_until 3 is_state http 198.18.1.3:8080 healthy && vt_pass "http health check: healthy" ||
	vt_fail "http: $(va_ctl services http)"
rm -f "$www/healthz"
vt_wait_until 4 is_state http 198.18.1.3:8080 unhealthy &&
	vt_pass "http health check: a 404 made the backend unhealthy" ||
	vt_fail "http after 404: $(va_ctl services http)"
vt_client refused 198.19.0.15:80 >"$out" &&
	vt_pass "no healthy backend: connect() refused at once ($(cat "$out"))" ||
	vt_fail "http, none healthy: $(cat "$out")"
echo ok >"$www/healthz"
vt_wait_until 4 is_state http 198.18.1.3:8080 healthy &&
	vt_pass "http health check: healthy again" || vt_fail "http back: $(va_ctl services http)"

# The monitor saw the ejections and the health changes (the last one may still be in flight).
count() { jq -c "select($1)" "$mon" 2>/dev/null | wc -l; }
http_back() { [ "$(count '.type == "health" and .service == "http" and .reason == "healthy"')" -ge 1 ]; }
vt_wait_until 3 http_back
kill -INT "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
[ "$(count '.type == "ejected" and .service == "rst"')" -ge 1 ] &&
	vt_pass "monitor: an ejected event for rst" || vt_fail "monitor: no ejected event for rst"
[ "$(count '.type == "health" and .service == "hc" and .reason == "unhealthy"')" -ge 1 ] &&
	[ "$(count '.type == "health" and .service == "http" and .reason == "healthy"')" -ge 1 ] &&
	vt_pass "monitor: health events (unhealthy, healthy)" ||
	vt_fail "monitor: health events missing: $(grep health "$mon")"

va_stop
vt_finish
