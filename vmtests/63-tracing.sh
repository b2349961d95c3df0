#!/usr/bin/env bash
# Tracing (README "Tracing"): traced connections become OTLP spans at a strict receiver
# (vmtests/tools/otlp_sink.py, in the node netns on 127.0.0.1:4318).
#
# (a) the config reaches the datapath: sluice_settings.trace_on/trace_sample, and a SIGHUP
#     changes the sample; the sluice_spans_* metrics are served.
# (b) curl with a sampled traceparent to the VIP from the caller's cgroup: exactly one span
#     of that trace, parentSpanId the header's, kind CLIENT, name web, frontend, backend,
#     identity, byte counts equal to curl's, duration within 10 ms of curl's; host.name.
# (c) flags -00 x100: no span; sample 0 without a header x100: no span; sample 1 x100:
#     100 spans of 100 distinct traces.
# (d) no backend: STATUS_CODE_ERROR and sluice.reason no_backend, in a new trace. IPv6 and a redirected
#     (same-node) connection are traced too.
# (e) the receiver down for 30 s under a traced loop: the agent's RSS stays flat, the drops
#     are counted, and export resumes when it is back.
# (f) SIGTERM: the datapath stops tracing, the exporter's queue is flushed within its bound.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

for t in curl python3 jq bpftool; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps)"
done
vt_world tracing
SINK=$VT_ROOT/vmtests/tools/otlp_sink.py
OUT=$VT_TMP/spans.jsonl
REQS=$VT_TMP/requests.jsonl
node=$VT_ID-node
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
PARENT=00f067aa0ba902b7

# --- the world -------------------------------------------------------------------------------
mkdir -p "$VT_TMP/www" "$VT_CGROUP/client" "$VT_CGROUP/local"
head -c 1000 /dev/urandom >"$VT_TMP/www/f"
# HTTP backends: be1 on :8081 (v4 and v6), and one on the node at 127.0.0.1:8082 in the
# cgroup, for a same-node (redirected) connection.
(exec ip netns exec "$VT_ID-be1" python3 -m http.server --bind :: --directory "$VT_TMP/www" \
	8081 >"$VT_TMP/http-be1.log" 2>&1) &
vt_track_pid $!
(
	echo "$BASHPID" >"$VT_CGROUP/local/cgroup.procs" || exit 2
	exec ip netns exec "$node" python3 -m http.server --bind 127.0.0.1 \
		--directory "$VT_TMP/www" 8082 >"$VT_TMP/http-local.log" 2>&1
) &
vt_track_pid $!

SINK_PID=
sink_start() {
	rm -f "$VT_TMP/sink.port"
	(exec nsenter --net="/run/netns/$node" python3 "$SINK" --out "$OUT" --requests "$REQS" \
		--port 4318 --port-file "$VT_TMP/sink.port" --max-seconds 400 \
		>>"$VT_TMP/sink.log" 2>&1) &
	SINK_PID=$!
	vt_track_pid "$SINK_PID"
	vt_wait_until 5 test -s "$VT_TMP/sink.port"
}
sink_stop() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}
vt_check "the OTLP receiver listens on 127.0.0.1:4318 in the node netns" -- sink_start
: >>"$OUT"
up() { vt_node curl -q -s -o /dev/null --max-time 1 "http://$1/f"; }
vt_check "HTTP backends are up" -- eval 'vt_wait_until 5 up 198.18.1.2:8081 &&
	vt_wait_until 5 up "[2001:db8:1::2]:8081"'

config() { # config SAMPLE
	va_config "$VT_TMP/sluice.yaml" <<YAML
  redirect: local
identities:
  - name: frontend
    cgroups: [$VT_CGROUP/client]
tracing:
  endpoint: http://127.0.0.1:4318
  sample: $1
  queue_size: 256
  batch_size: 64
  batch_delay: 100ms
  timeout: 2s
services:
  - name: web
    frontend: 198.19.0.10:80
    backends: [{address: "198.18.1.2:8081"}]
  - name: web6
    frontend: "[2001:db8:f::10]:80"
    backends: [{address: "[2001:db8:1::2]:8081"}]
  - name: empty
    frontend: 198.19.0.11:80
    backends: []
  - name: local
    frontend: 198.19.0.12:80
    backends: [{address: "127.0.0.1:8082"}]
YAML
}

# client CMD...: CMD as the identity 'frontend' (its cgroup) in the node netns, bounded.
client() {
	(
		echo "$BASHPID" >"$VT_CGROUP/client/cgroup.procs" || exit 2
		exec timeout -k 2 60 ip netns exec "$node" "$@"
	)
}
# get URL [TRACEPARENT]: one request; prints "request_bytes received_bytes seconds".
get() {
	local h=()
	[ -n "${2:-}" ] && h=(-H "traceparent: $2")
	client curl -q -s -o /dev/null --max-time 5 "${h[@]}" -g \
		-w '%{size_request} %{size_header} %{size_download} %{time_total} %{http_code}\n' "$1" |
		awk '{ print $1, $2 + $3, $4, $5 }'
}
# loop N URL [TRACEPARENT]: N requests, one after the other; prints how many answered 200.
loop() {
	local n=$1 i ok=0 h=()
	[ -n "${3:-}" ] && h=(-H "traceparent: $3")
	for ((i = 0; i < n; i++)); do
		[ "$(client curl -q -s -o /dev/null --max-time 5 "${h[@]}" -w '%{http_code}' "$2")" = 200 ] &&
			ok=$((ok + 1))
	done
	echo "$ok"
}
spans_of() { jq -c --arg t "$1" 'select(.traceId == $t)' "$OUT"; }
n_spans() { wc -l <"$OUT"; }
# attr TRACE KEY: the attribute's value in the span of TRACE.
attr() {
	spans_of "$1" | jq -r --arg k "$2" '.attributes[] | select(.key == $k) |
		.value | (.stringValue // .intValue)'
}
metric() { va_metrics | awk -v n="$1" '$1 == n { print $2 }'; }
setting() {
	bpftool map dump pinned "$VT_BPFFS/sluice_settings" -j | jq -r ".[0].formatted.value.$1"
}
# quiet: no new span for 1.5 s (15 batch delays), after the last one came.
quiet() {
	local n
	n=$(n_spans)
	sleep 1.5
	[ "$(n_spans)" = "$n" ]
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$VA_PID/status"; }

# --- (a) config, settings, metrics -----------------------------------------------------------
config 0
va_start "$VT_TMP/sluice.yaml" || vt_finish
vt_check "span exporter started after the capability drop" -- eval \
	'va_log_has "capabilities dropped" && va_log_has "msg=\"span exporter started\" endpoint=http://127.0.0.1:4318" &&
	[ "$(grep -n "capabilities dropped" "$VA_LOG" | cut -d: -f1)" -lt \
	  "$(grep -n "span exporter started" "$VA_LOG" | cut -d: -f1)" ]'
vt_check "sluice_settings: trace_on 1, trace_sample 0 (sample 0)" -- eval \
	'[ "$(setting trace_on)" = 1 ] && [ "$(setting trace_sample)" = 0 ]'
va_metrics >"$VT_TMP/m0"
vt_check "metrics: sluice_spans_exported_total, _dropped_total{reason}, _queued, _queue_capacity" \
	-- eval 'grep -qx "sluice_spans_exported_total 0" "$VT_TMP/m0" &&
	grep -qx "sluice_spans_dropped_total{reason=\"queue_full\"} 0" "$VT_TMP/m0" &&
	grep -qx "sluice_spans_queued 0" "$VT_TMP/m0" &&
	grep -qx "sluice_spans_queue_capacity 256" "$VT_TMP/m0" &&
	grep -q "^sluice_spans_export_requests_total{result=\"ok\"}" "$VT_TMP/m0"'
if command -v promtool >/dev/null; then
	vt_check "promtool check metrics" -O "$VT_TMP/promtool.out" -- eval \
		'promtool check metrics <"$VT_TMP/m0" 2>&1 | grep -v "counter metrics should have" |
		(! grep -q .)'
fi

# --- (b) one traced request ------------------------------------------------------------------
r=$(get http://198.19.0.10/f "00-$TRACE-$PARENT-01")
read -r req_b resp_b secs code <<<"$r"
vt_check "curl through the VIP with a traceparent: 200 ($r)" -- test "${code:-}" = 200
vt_wait_until 5 eval '[ -n "$(spans_of $TRACE)" ]'
sleep 0.5 # a second span of the trace would come in the same batch or the next
vt_check "exactly one span of trace $TRACE" -d 'cat "$OUT" | head -c 600' -- \
	eval '[ "$(spans_of $TRACE | wc -l)" = 1 ]'
s=$(spans_of $TRACE | head -n 1)
vt_check "parentSpanId $PARENT, kind 3 (CLIENT), name web, no error status" -d 'echo "$s"' -- \
	eval '[ "$(jq -r .parentSpanId <<<"$s")" = $PARENT ] && [ "$(jq .kind <<<"$s")" = 3 ] &&
	[ "$(jq -r .name <<<"$s")" = web ] && [ "$(jq .status <<<"$s")" = null ]'
vt_check "attributes: frontend 198.19.0.10:80, backend 198.18.1.2:8081, source frontend" \
	-d 'echo "$s"' -- eval '[ "$(attr $TRACE server.address)" = 198.19.0.10 ] &&
	[ "$(attr $TRACE server.port)" = 80 ] && [ "$(attr $TRACE network.peer.address)" = 198.18.1.2 ] &&
	[ "$(attr $TRACE network.peer.port)" = 8081 ] && [ "$(attr $TRACE sluice.source)" = frontend ] &&
	[ "$(attr $TRACE sluice.service)" = web ]'
vt_check "bytes: sent $req_b, received $resp_b (what curl counted)" -d 'echo "$s"' -- \
	eval '[ "$(attr $TRACE sluice.bytes_sent)" = "$req_b" ] &&
	[ "$(attr $TRACE sluice.bytes_received)" = "$resp_b" ]'
dur=$(jq -r '((.endTimeUnixNano | tonumber) - (.startTimeUnixNano | tonumber)) / 1e9' <<<"$s")
vt_check "duration ${dur}s within 10 ms of curl's ${secs}s" -- \
	eval '[ -n "$dur" ] && [ -n "$secs" ] &&
	awk -v a="$dur" -v b="$secs" "BEGIN { d = a - b; exit !(d < 0.010 && d > -0.010) }"'
conn_ns=$(attr $TRACE sluice.connect_ns)
# In bash: the nanosecond times are beyond jq's exact integers.
t_start=$(jq -r .startTimeUnixNano <<<"$s") t_end=$(jq -r .endTimeUnixNano <<<"$s")
t_est=$(jq -r '.events[] | select(.name == "established") | .timeUnixNano' <<<"$s")
vt_check "handshake ${conn_ns} ns: above 0, within the span, and the event 'established' at start + it" \
	-d 'echo "$s"' -- eval '[ "${conn_ns:-0}" -gt 0 ] && [ $((t_end - t_start)) -ge "$conn_ns" ] &&
	[ "$(jq ".events | length" <<<"$s")" = 1 ] && [ "$t_est" = $((t_start + conn_ns)) ]'
start_s=$(jq -r '.startTimeUnixNano | tonumber / 1e9 | floor' <<<"$s")
vt_check "start in wall-clock time (within 30 s of now)" -- \
	eval '[ $(($(date +%s) - start_s)) -ge 0 ] && [ $(($(date +%s) - start_s)) -lt 30 ]'
vt_check "resource host.name = $(hostname), service.name = sluice" -d 'tail -n 1 "$REQS"' -- \
	eval '[ -s "$REQS" ] && tail -n 1 "$REQS" | jq -e --arg h "$(hostname)" ".resource.attributes |
	(map(select(.key == \"host.name\"))[0].value.stringValue == \$h) and
	(map(select(.key == \"service.name\"))[0].value.stringValue == \"sluice\")" >/dev/null'

# --- (c) sampling ----------------------------------------------------------------------------
# (The "no span" checks are only meaningful once (b) passes: spans do come.)
n0=$(n_spans)
vt_check "100 requests with flags -00: all 200" -- \
	eval '[ "$(loop 100 http://198.19.0.10/f 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-$PARENT-00)" = 100 ]'
vt_check "100 requests without a header (sample 0): all 200" -- \
	eval '[ "$(loop 100 http://198.19.0.10/f)" = 100 ]'
quiet
vt_check "flags -00 and sample 0: no span ($(($(n_spans) - n0)) new)" -- \
	eval '[ "$(n_spans)" = "$n0" ]'

config 1
kill -HUP "$VA_PID"
vt_check "SIGHUP with sample 1: trace_sample 4294967295" -- \
	vt_wait_until 5 eval '[ "$(setting trace_sample)" = 4294967295 ]'
n0=$(n_spans)
vt_check "100 requests without a header (sample 1): all 200" -- \
	eval '[ "$(loop 100 http://198.19.0.10/f)" = 100 ]'
vt_wait_until 10 eval '[ $(($(n_spans) - n0)) -ge 100 ]'
quiet
tail -n +$((n0 + 1)) "$OUT" >"$VT_TMP/sampled.jsonl"
vt_check "100 spans, of 100 distinct traces, roots (no parentSpanId)" \
	-d 'echo "$(wc -l <"$VT_TMP/sampled.jsonl") spans"' -- \
	eval '[ "$(wc -l <"$VT_TMP/sampled.jsonl")" = 100 ] &&
	[ "$(jq -r .traceId "$VT_TMP/sampled.jsonl" | sort -u | wc -l)" = 100 ] &&
	[ "$(jq -r "select(.parentSpanId == null) | .name" "$VT_TMP/sampled.jsonl" | sort -u)" = web ]'

# --- (d) failure, IPv6, redirected -----------------------------------------------------------
# A refused connect() sends no payload, so its traceparent is never seen: sample (1 here)
# decides, and the span starts a new trace.
T2=2bf92f3577b34da6a3ce929d0e0e4736
n0=$(n_spans)
get http://198.19.0.11/f "00-$T2-$PARENT-01" >/dev/null
refused() { tail -n +$((n0 + 1)) "$OUT" | jq -c 'select(.name == "empty")'; }
vt_wait_until 5 eval '[ -n "$(refused)" ]'
s=$(refused | head -n 1)
TN=$(jq -r .traceId <<<"$s")
vt_check "no backend: one span, STATUS_CODE_ERROR, sluice.reason no_backend, no peer, a new trace" \
	-d 'echo "$s"' -- eval '[ "$(refused | wc -l)" = 1 ] && [ "$TN" != "$T2" ] &&
	[ "$(jq .status.code <<<"$s")" = 2 ] && [ "$(attr "$TN" sluice.reason)" = no_backend ] &&
	[ -z "$(attr "$TN" network.peer.address)" ] && [ -z "$(spans_of $T2)" ]'
T6=6bf92f3577b34da6a3ce929d0e0e4736
r=$(get "http://[2001:db8:f::10]/f" "00-$T6-$PARENT-01")
read -r req_b resp_b secs code <<<"$r"
vt_wait_until 5 eval '[ -n "$(spans_of $T6)" ]'
vt_check "IPv6: a span with frontend 2001:db8:f::10, backend 2001:db8:1::2, bytes as curl's" \
	-d 'spans_of $T6' -- eval '[ "$code" = 200 ] &&
	[ "$(attr $T6 server.address)" = 2001:db8:f::10 ] &&
	[ "$(attr $T6 network.peer.address)" = 2001:db8:1::2 ] &&
	[ "$(attr $T6 sluice.bytes_sent)" = "$req_b" ] && [ "$(attr $T6 sluice.bytes_received)" = "$resp_b" ]'
TR=7bf92f3577b34da6a3ce929d0e0e4736
r0=$(metric sluice_redirected_connections_total)
r=$(get http://198.19.0.12/f "00-$TR-$PARENT-01")
read -r req_b resp_b secs code <<<"$r"
vt_wait_until 5 eval '[ -n "$(spans_of $TR)" ]'
vt_check "redirected (same node): one span, backend 127.0.0.1:8082, bytes as curl's" \
	-d 'spans_of $TR; echo "redirected connections: $r0 -> $(metric sluice_redirected_connections_total)"' -- \
	eval '[ "$code" = 200 ] && [ "$(spans_of $TR | wc -l)" = 1 ] &&
	[ "$(attr $TR network.peer.address)" = 127.0.0.1 ] &&
	[ "$(attr $TR sluice.bytes_sent)" = "$req_b" ] && [ "$(attr $TR sluice.bytes_received)" = "$resp_b" ] &&
	[ "$(metric sluice_redirected_connections_total)" -gt "${r0:-0}" ]'

# --- (e) the receiver down for 30 s ----------------------------------------------------------
e0=$(metric sluice_spans_exported_total)
sink_stop
rss0=$(rss_kb)
end=$((SECONDS + 30))
n=0
while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 3000 ]; do
	loop 20 http://198.19.0.10/f >/dev/null
	n=$((n + 20))
done
rss1=$(rss_kb)
va_metrics >"$VT_TMP/m1"
dropped=$(awk '$1 ~ /^sluice_spans_dropped_total/ { s += $2 } END { print s + 0 }' "$VT_TMP/m1")
vt_check "receiver down 30 s, $n traced connections: RSS flat (${rss0} -> ${rss1} kB)" -- \
	eval '[ $((rss1 - rss0)) -lt 4096 ]'
vt_check "... spans dropped and counted ($dropped)" -d 'grep sluice_spans_ "$VT_TMP/m1"' -- \
	eval '[ "$dropped" -gt 0 ]'
vt_check "... the agent still serves (a request through the VIP: 200)" -- \
	eval '[ "$(loop 1 http://198.19.0.10/f)" = 1 ]'
sink_start
# The queue is full of spans from the outage when the receiver returns, so the first new
# span may itself be dropped (queue_full): a traced request each second, until one arrives.
resumed=
for i in $(seq 1 25); do
	T3=$(printf '3bf92f3577b34da6a3ce929d0e%06d' "$i")
	get http://198.19.0.10/f "00-$T3-$PARENT-01" >/dev/null
	sleep 1
	for j in $(seq 1 "$i"); do
		[ -n "$(spans_of "$(printf '3bf92f3577b34da6a3ce929d0e%06d' "$j")")" ] && resumed=$j && break
	done
	[ -n "$resumed" ] && break
done
vt_check "receiver back: export resumes (a new trace arrives, exported_total grows)" \
	-d 'grep sluice_spans_ "$VT_TMP/m1"; tail -n 3 "$VT_TMP/sink.log"' -- \
	eval '[ -n "$resumed" ] && [ "$(metric sluice_spans_exported_total)" -gt "${e0:-0}" ]'

# --- (f) exit --------------------------------------------------------------------------------
t0=$(date +%s%N)
va_stop
t1=$(date +%s%N)
vt_check "SIGTERM: exit 0 within 5 s ($(((t1 - t0) / 1000000)) ms), the exporter flushed" -- \
	eval '[ "$VA_RC" = 0 ] && [ $(((t1 - t0) / 1000000)) -lt 5000 ] &&
	va_log_has "msg=\"span exporter stopped\""'
vt_check "... and the datapath no longer traces (trace_on 0)" -- \
	eval '[ "$(setting trace_on)" = 0 ]'

# --- (g) restarted without tracing: the egress program goes --------------------------------------
# Its link survives the stop, pinned, like every other; a start without a tracing: block removes
# it, so that untraced nodes pay nothing per packet.
egress_attached() { bpftool cgroup show "$VT_CGROUP" 2>/dev/null | grep -q 'egress.*sluice_trace_egress'; }
vt_check "after the stop: the egress link is still pinned and attached" -- \
	eval '[ -e "$VT_BPFFS/links/sluice_trace_egress" ] && egress_attached'
sed '/^tracing:/,/^services:/{/^services:/!d}' "$VT_TMP/sluice.yaml" >"$VT_TMP/untraced.yaml"
if va_start "$VT_TMP/untraced.yaml"; then
	vt_check "restarted without tracing: the link is unpinned and the program detached" \
		-d 'ls "$VT_BPFFS/links"; bpftool cgroup show "$VT_CGROUP"' -- \
		eval '[ ! -e "$VT_BPFFS/links/sluice_trace_egress" ] && ! egress_attached'
	vt_check "... and the VIP still serves (200)" -- eval '[ "$(loop 1 http://198.19.0.10/f)" = 1 ]'
fi

vt_finish
