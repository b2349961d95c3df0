#!/usr/bin/env bash
# Telemetry: after N connections with known payloads the counters are exact, failed connects
# are counted, the connect-duration histogram counts N, /metrics passes promtool, a real
# Prometheus scrapes it, and `sluicectl monitor` shows open, close, failure and no-backend events.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world telemetry
command -v promtool >/dev/null || vt_skip "promtool is missing (Debian package prometheus)"

N=10
SEND=1000 # bytes the client writes on each connection; each backend answers "beN\n" (4 bytes)
cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
  - name: dead
    frontend: 198.19.0.20:80
    backends:
      - address: 198.18.1.2:9
  - name: empty
    frontend: 198.19.0.30:80
YAML
va_start "$cfg" || vt_finish

mon=$VT_TMP/monitor.jsonl
# exec all the way, so that $! is sluicectl itself and gets the SIGINT below.
(exec nsenter --net="/run/netns/$VT_ID-node" "$VA_SLUICECTL" --api "$VT_TMP/sluiced.sock" -o json \
	monitor >"$mon" 2>"$VT_TMP/monitor.err") &
mon_pid=$!
vt_track_pid "$mon_pid"
sleep 0.3

out=$VT_TMP/web.out
vt_client tcp 198.19.0.10:80 -n "$N" --send "$SEND" >"$out" ||
	vt_fail "web: $(tr '\n' ' ' <"$out")"
vt_client tcp 198.19.0.20:80 -n 3 --timeout-ms 1000 >"$VT_TMP/dead.out"
[ "$(vt_value "$VT_TMP/dead.out" 'errno ECONNREFUSED')" -eq 3 ] &&
	vt_pass "3 connects to a closed backend port were refused" ||
	vt_fail "dead: $(tr '\n' ' ' <"$VT_TMP/dead.out")"
vt_client refused 198.19.0.30:80 >/dev/null || vt_fail "empty service did not refuse"

metric() { # metric NAME SELECTOR: the sum of the samples of NAME matching SELECTOR (grep -E)
	va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'
}
settled() { [ "$(metric sluice_active_connections 'service="web"')" -eq 0 ]; }
vt_wait_until 5 settled || vt_fail "active connections did not return to 0"

page=$VT_TMP/metrics.txt
va_metrics >"$page" || vt_fail "GET /metrics failed"
vt_check "promtool check metrics: clean ($(grep -c '^# TYPE' "$page") families)" \
	-O "$VT_TMP/promtool.out" -- promtool check metrics <"$page"
check() { # check WHAT GOT WANT
	[ "$2" = "$3" ] && vt_pass "$1 = $3" || vt_fail "$1 = $2, want $3"
}
check "connections_total{web}" "$(metric sluice_connections_total 'service="web"')" "$N"
check "connect_failures_total{web}" "$(metric sluice_connect_failures_total 'service="web"')" 0
check "connect_failures_total{dead}" "$(metric sluice_connect_failures_total 'service="dead"')" 3
check "sent_bytes_total{web}" "$(metric sluice_sent_bytes_total 'service="web"')" $((N * SEND))
check "received_bytes_total{web}" "$(metric sluice_received_bytes_total 'service="web"')" $((N * 4))
check "connect_duration_seconds_count{web}" \
	"$(metric sluice_connect_duration_seconds_count 'service="web"')" "$N"
check "tcp_rtt_seconds_count{web}" "$(metric sluice_tcp_rtt_seconds_count 'service="web"')" "$N"
check "rejected_connections_total{empty,no_backend}" \
	"$(metric sluice_rejected_connections_total 'service="empty",reason="no_backend"')" 1
inf=$(metric sluice_connect_duration_seconds_bucket 'service="web",le="\+Inf"')
check "connect_duration_seconds_bucket{web,+Inf}" "$inf" "$N"
check "config_reloads_total{ok}" "$(metric sluice_config_reloads_total 'result="ok"')" 1
grep -q '^sluice_build_info{version="' "$page" && vt_pass "build_info present" || vt_fail "no build_info"

# The events, in the order they happened.
sleep 0.5
kill -INT "$mon_pid" 2>/dev/null
# Bounded: a monitor that ignores SIGINT fails the test instead of hanging it.
for _ in $(seq 30); do kill -0 "$mon_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$mon_pid" 2>/dev/null; then
	kill -KILL "$mon_pid"
	vt_fail "monitor did not stop on SIGINT"
fi
wait "$mon_pid"
mon_rc=$?
[ "$mon_rc" -eq 0 ] && vt_pass "monitor ended cleanly on SIGINT" || vt_fail "monitor exit $mon_rc: $(cat "$VT_TMP/monitor.err")"
count() { jq -c "select($1)" "$mon" | wc -l; }
check "monitor: open events for web" "$(count '.type == "open" and .service == "web"')" "$N"
check "monitor: close events for web" "$(count '.type == "close" and .service == "web"')" "$N"
check "monitor: bytes_sent on close" \
	"$(jq -s '[.[] | select(.type == "close" and .service == "web") | .bytes_sent] | add' "$mon")" \
	$((N * SEND))
check "monitor: refused connect failures for dead" \
	"$(count '.type == "connect_failure" and .service == "dead" and .reason == "refused"')" 3
check "monitor: no_backend for empty" \
	"$(count '.type == "no_backend" and .service == "empty" and .frontend == "198.19.0.30:80"')" 1

# A real Prometheus scrapes the agent every second, inside the node netns.
if command -v prometheus >/dev/null; then
	va_prometheus 9090
	query() {
		va_prom_query 9090 'sum(sluice_connections_total{service="web"})' |
			jq -r '.data.result[0].value[1] // empty' 2>/dev/null
	}
	scraped() { [ "$(query)" = "$N" ]; }
	vt_check "Prometheus scraped sluiced: sum(sluice_connections_total{service=\"web\"}) = $N" \
		-d 'echo "the query gave $(query); log: $(tail -3 "$VT_TMP/prometheus.log")"' -- \
		vt_wait_until 20 scraped
else
	vt_fail "prometheus is not installed (make deps installs it)"
fi
vt_finish
