#!/usr/bin/env bash
# The service map's edges as metrics: connections from a "frontend" cgroup, a "batch" cgroup and
# a cgroup with no identity ("unknown") are counted exactly on their (source, service) edge by
# sluice_edge_connections_total; batch's policy denials as rejected reason="policy", a service
# without backends as reason="no_backend", connects to a dead backend as failures, UDP sends as
# connections. The page passes promtool, has one series per edge that happened (at most
# (identities + 1) x services), and a real Prometheus answers
# sum by (source, service) (rate(sluice_edge_connections_total[1m])) with those label sets. An
# identity removed from the config takes its edges along, so does a removed service, and a
# service that reuses a removed one's id starts from nothing.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world edges
vt_require_tools
for t in jq curl promtool prometheus; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
FE=$VT_CGROUP/frontend
BA=$VT_CGROUP/batch
AN=$VT_CGROUP/anon # no identity names it
mkdir "$FE" "$BA" "$AN" || vt_fail "mkdir client cgroups"

edges_cfg() { # edges_cfg IDENTITIES SERVICES: the config with those blocks
	printf '%s\n' "$1" "$2"
}
IDS_BOTH=$(
	cat <<YAML
identities:
  - name: frontend
    cgroups: [$FE]
  - name: batch
    cgroups: [$BA]
YAML
)
IDS_FE=$(
	cat <<YAML
identities:
  - name: frontend
    cgroups: [$FE]
YAML
)
SVC_WEB=$(
	cat <<'YAML'
services:
  - name: web
    frontend: 198.19.0.70:80
    backends: [{address: 198.18.1.2:8080}, {address: 198.18.1.3:8080}, {address: 198.18.1.4:8080}]
  - name: api
    frontend: 198.19.0.71:80
    backends: [{address: 198.18.1.2:8080}]
    policy: {default: deny, allow_from: [frontend]}
YAML
)
SVC_DEAD=$(
	cat <<'YAML'
  - name: dead
    frontend: 198.19.0.72:80
    backends: [{address: "198.18.1.2:9"}]
YAML
)
SVC_REST=$(
	cat <<'YAML'
  - name: dns
    frontend: 198.19.0.73:53
    protocol: udp
    backends: [{address: 198.18.1.2:8080}]
  - name: empty
    frontend: 198.19.0.74:80
YAML
)
cfg=$VT_TMP/sluice.yaml
edges_cfg "$IDS_BOTH" "$SVC_WEB
$SVC_DEAD
$SVC_REST" | va_config "$cfg"
va_start "$cfg" || vt_finish

out=$VT_TMP/out
page=$VT_TMP/metrics
scrape() { va_metrics >"$page"; }
# fresh_scrape: a page rendered after what came before it. Once Prometheus scrapes too, a page
# it caused may be served again for up to a second (METRICS_MAX_AGE_NS).
fresh_scrape() {
	sleep 1.1
	scrape
}
# series NAME LABELS: the value of the sample NAME{LABELS} on the page; "none" when absent.
series() {
	awk -v s="$1{$2}" '$1 == s { v = $2; f = 1 } END { print f ? v : "none" }' "$page"
}
# expect NAME LABELS WANT: one checked sample.
expect() {
	local got
	got=$(series "$1" "$2")
	vt_check "$1{$2} = $3" -d 'echo "got $got"' -- [ "$got" = "$3" ]
}

# --- traffic, each edge a different count --------------------------------------------------------
N=7 M=5 K=3
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.70:80 -n $N >"$out" ||
	vt_fail "frontend -> web: $(tr '\n' ' ' <"$out")"
vt_in_cg "$BA" "$VT_BIN/sl_client" tcp 198.19.0.70:80 -n $M >"$out" ||
	vt_fail "batch -> web: $(tr '\n' ' ' <"$out")"
vt_in_cg "$AN" "$VT_BIN/sl_client" tcp 198.19.0.70:80 -n $K >"$out" ||
	vt_fail "unknown -> web: $(tr '\n' ' ' <"$out")"
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.71:80 -n 2 >"$out" ||
	vt_fail "frontend -> api: $(tr '\n' ' ' <"$out")"
for i in 1 2 3 4; do
	vt_in_cg "$BA" "$VT_BIN/sl_client" refused 198.19.0.71:80 >"$out"
	grep -q '^EPERM' "$out" || vt_fail "batch -> api $i: $(cat "$out"), want EPERM"
done
vt_in_cg "$AN" "$VT_BIN/sl_client" refused 198.19.0.71:80 >"$out"
grep -q '^EPERM' "$out" || vt_fail "unknown -> api: $(cat "$out"), want EPERM"
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.72:80 -n 3 --timeout-ms 2000 >"$out"
[ "$(vt_value "$out" 'errno ECONNREFUSED')" -eq 3 ] || vt_fail "frontend -> dead: $(tr '\n' ' ' <"$out")"
vt_in_cg "$FE" "$VT_BIN/sl_client" udp 198.19.0.73:53 -n 4 --timeout-ms 1000 >"$out" ||
	vt_fail "frontend -> dns: $(tr '\n' ' ' <"$out")"
for i in 1 2; do
	vt_in_cg "$AN" "$VT_BIN/sl_client" refused 198.19.0.74:80 >/dev/null
done

# --- the page -----------------------------------------------------------------------------------
# Failures are counted when the kernel gives up on the SYN: wait for them to be on the page.
failures_in() { scrape && [ "$(series sluice_edge_connect_failures_total 'source="frontend",service="dead"')" = 3 ]; }
vt_wait_until 5 failures_in || true
C=sluice_edge_connections_total
F=sluice_edge_connect_failures_total
R=sluice_edge_rejected_connections_total
expect $C 'source="frontend",service="web"' $N
expect $C 'source="batch",service="web"' $M
expect $C 'source="unknown",service="web"' $K
expect $C 'source="frontend",service="api"' 2
expect $C 'source="batch",service="api"' 0
expect $R 'source="batch",service="api",reason="policy"' 4
expect $R 'source="batch",service="api",reason="no_backend"' 0
expect $R 'source="unknown",service="api",reason="policy"' 1
expect $R 'source="frontend",service="api",reason="policy"' 0
expect $C 'source="frontend",service="dead"' 3
expect $F 'source="frontend",service="dead"' 3
expect $F 'source="frontend",service="web"' 0
expect $C 'source="frontend",service="dns"' 4
expect $R 'source="unknown",service="empty",reason="no_backend"' 2
expect $C 'source="batch",service="dead"' none
web_total=$(awk '$1 ~ /^sluice_connections_total\{service="web",/ { s += $2 } END { print s + 0 }' "$page")
vt_check "the edges into web add up to sluice_connections_total{service=\"web\"} ($web_total)" -- \
	[ "$web_total" -eq $((N + M + K)) ]
# One series per edge that happened: 9 edges, at most (2 identities + 1) x 5 services.
n_c=$(grep -c "^$C{" "$page")
n_f=$(grep -c "^$F{" "$page")
n_r=$(grep -c "^$R{" "$page")
vt_check "series: $n_c connections, $n_f failures, $n_r rejected (9 edges, 4 reasons; bound 15, 15, 60)" -- \
	eval '[ "$n_c" -eq 9 ] && [ "$n_f" -eq 9 ] && [ "$n_r" -eq 36 ] && [ "$n_c" -le 15 ] && [ "$n_r" -le 60 ]'
vt_check "promtool check metrics: the page is clean" -O "$VT_TMP/promtool.out" -- \
	eval 'promtool check metrics <"$page"'
for f in $C $F $R; do
	vt_check "$f is a counter with HELP" -- eval 'grep -q "^# TYPE $f counter$" "$page" && grep -q "^# HELP $f " "$page"'
done

# --- a real Prometheus --------------------------------------------------------------------------
va_prometheus 9092
vt_in_cg "$FE" "$VT_BIN/sl_client" loop 198.19.0.70:80 --seconds 20 --interval-ms 50 >/dev/null 2>&1 &
vt_track_pid $!
Q='sum by (source, service) (rate(sluice_edge_connections_total[1m]))'
labels() { # the answer's label sets, "source/service" sorted, one line
	va_prom_query 9092 "$Q" | jq -r '[.data.result[].metric | "\(.source)/\(.service)"] | sort | join(" ")'
}
want="batch/api batch/web frontend/api frontend/dead frontend/dns frontend/web unknown/api unknown/empty unknown/web"
fe_rate() { # (jq -e passes an empty answer: compare its output)
	[ "$(va_prom_query 9092 "$Q" | jq -r '[.data.result[] | select(.metric.source == "frontend" and
		.metric.service == "web") | (.value[1] | tonumber) > 0] == [true]' 2>/dev/null)" = true ]
}
vt_wait_until 30 fe_rate || vt_fail "no rate for frontend/web: $(va_prom_query 9092 "$Q" | head -c 300) $(tail -n 2 "$VT_TMP/prometheus.log")"
got=$(labels)
vt_check "Prometheus: $Q has the label sets of the 9 edges, frontend/web's rate > 0" -d 'echo "got: $got"' -- \
	[ "$got" = "$want" ]

# --- edge lifetime --------------------------------------------------------------------------------
# svc_id NAME: the service's id (sluice_svc_info). map_edges [ID]: edges in sluice_edges (of
# service ID); map_edges_from IDENTITY: edges in sluice_edges of that identity id.
svc_id() {
	bpftool -j map dump pinned "$VT_BPFFS/sluice_svc_info" |
		jq -r --arg n "$1" '.[] | select(.formatted.value.name == $n) | .formatted.key'
}
map_edges() {
	bpftool -j map dump pinned "$VT_BPFFS/sluice_edges" |
		jq --argjson id "${1:-0}" '[.[] | select($id == 0 or .formatted.key.svc_id == $id)] | length'
}
map_edges_from() {
	bpftool -j map dump pinned "$VT_BPFFS/sluice_edges" |
		jq --argjson id "$1" '[.[] | select(.formatted.key.identity == $id)] | length'
}
vt_cgroup_kill TERM 'sl_client loop'
# The count is read once the loop has exited (its cgroup is empty).
fe_idle() { ! grep -qs . "$FE/cgroup.procs"; }
vt_wait_until 5 fe_idle || vt_fail "the loop client did not stop: $(cat "$FE/cgroup.procs")"
fresh_scrape
fe_web=$(series $C 'source="frontend",service="web"')
# batch (identity id 2) leaves the identities: its edges go, frontend's stay; batch now calls
# as unknown.
vt_check "batch (id 2) has 2 edges in sluice_edges" -d 'map_edges_from 2' -- eval '[ "$(map_edges_from 2)" = 2 ]'
edges_cfg "$IDS_FE" "$SVC_WEB
$SVC_DEAD
$SVC_REST" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="config applied"' 2 || vt_fail "the config without batch was not applied"
vt_in_cg "$BA" "$VT_BIN/sl_client" tcp 198.19.0.70:80 -n 2 >"$out" || vt_fail "ex-batch -> web: $(tr '\n' ' ' <"$out")"
fresh_scrape
vt_check "an identity removed from the config: no series with source=\"batch\" left" -d 'grep "source=\"batch\"" "$page" | head -n 3' -- \
	eval '! grep -q "source=\"batch\"" "$page"'
vt_check "... nor in sluice_edges" -d 'echo "$(map_edges_from 2) left"' -- eval '[ "$(map_edges_from 2)" = 0 ]'
expect $C 'source="frontend",service="web"' "$fe_web"
expect $C 'source="unknown",service="web"' $((K + 2))
# dead leaves the services: its edges go from the page and from the map.
dead_id=$(svc_id dead)
vt_check "dead (id $dead_id) has 1 edge in sluice_edges" -d 'echo "$(map_edges "$dead_id")"' -- \
	eval '[ -n "$dead_id" ] && [ "$(map_edges "$dead_id")" = 1 ]'
before=$(map_edges)
edges_cfg "$IDS_FE" "$SVC_WEB
$SVC_REST" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="config applied"' 3 || vt_fail "the config without dead was not applied"
fresh_scrape
vt_check "a removed service: no series with service=\"dead\" left" -- eval '! grep -q "service=\"dead\"" "$page"'
left=$(map_edges "$dead_id") after=$(map_edges)
vt_check "... nor in sluice_edges: none of its id $dead_id; $before edges, then $after" -d 'echo "$left left"' -- \
	eval '[ "$left" = 0 ] && [ "$after" -eq $((before - 1)) ]'
# A new service takes the lowest free id, dead's: its edge starts from nothing.
edges_cfg "$IDS_FE" "$SVC_WEB
  - name: fresh
    frontend: 198.19.0.75:80
    backends: [{address: 198.18.1.3:8080}]
$SVC_REST" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="config applied"' 4 || vt_fail "the config with fresh was not applied"
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.75:80 -n 1 >"$out" || vt_fail "frontend -> fresh: $(tr '\n' ' ' <"$out")"
fresh_scrape
expect $C 'source="frontend",service="fresh"' 1
expect $F 'source="frontend",service="fresh"' 0
fresh_id=$(svc_id fresh)
vt_check "fresh reused dead's id ($fresh_id)" -- [ "$fresh_id" = "$dead_id" ]

va_stop
vt_finish
