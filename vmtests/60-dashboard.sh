#!/usr/bin/env bash
# contrib/grafana/sluice.json charts only what sluiced exports. Every metric name in its PromQL
# (panel targets and template variables) is a sample name on a live /metrics page; the queries
# (Grafana variables filled in) pass `promtool check rules` as a generated recording-rule file;
# and a real Prometheus scraping a live agent under traffic (connections, failures, rejections,
# TC counters; callers in a "frontend" identity's cgroup and without one) answers every query with
# data. The service map panel (nodeGraph) gets its edges and nodes from the edge metrics.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/ops.sh"

vt_require_root
vt_require_btf
for t in jq promtool prometheus curl; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
vt_init dashboard

dash=$VT_ROOT/contrib/grafana/sluice.json
vt_check "sluice.json is a dashboard: $(jq '.panels | length' "$dash" 2>/dev/null) panels" -O /dev/null \
	-d 'echo "$dash is not valid dashboard JSON"' -- jq -e '.title == "sluice" and (.panels | length) > 10' "$dash" ||
	vt_finish
# Grafana's variables, filled in the way a query would run: every agent, every service.
fill() { sed -e 's/\$__rate_interval/10s/g' -e 's/\$__range/1m/g' -e 's/\$instance/.*/g' -e 's/\$service/.*/g'; }
jq -r '[.. | objects | select(has("expr")) | .expr] | .[]' "$dash" >"$VT_TMP/exprs.raw"
fill <"$VT_TMP/exprs.raw" >"$VT_TMP/exprs"
jq -r '.templating.list[] | select(.type == "query") | .definition' "$dash" >"$VT_TMP/templating"
n=$(wc -l <"$VT_TMP/exprs")
[ "$n" -ge 15 ] && vt_pass "$n PromQL expressions in the panels" || vt_fail "only $n expressions"
# (A $ and a digit is label_replace's reference to its regex group, not a variable.)
left=$(grep -o '\$[A-Za-z_{]*' "$VT_TMP/exprs" | grep -vx '\$' | sort -u | tr '\n' ' ')
[ -z "$left" ] && vt_pass "only the variables \$__rate_interval, \$__range, \$instance, \$service are used" ||
	vt_fail "unknown Grafana variables in queries: $left"
used=$(cat "$VT_TMP/exprs" "$VT_TMP/templating" | grep -oE '\bsluice_[a-z0-9_]+' | sort -u)
foreign=$(cat "$VT_TMP/exprs" | grep -oE '[a-z_:][a-z0-9_:]*\{' | tr -d '{' | grep -v '^sluice_' | sort -u)
[ -z "$foreign" ] && vt_pass "every selector is a sluice_ metric" || vt_fail "non-sluice metrics: $foreign"

# --- a live agent under traffic --------------------------------------------------------------
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
cfg=$VT_TMP/sluice.yaml
mkdir "$VT_CGROUP/frontend" || vt_fail "mkdir $VT_CGROUP/frontend"
va_config "$cfg" <<YAML
  interfaces: [vt-rtr]
identities:
  - name: frontend
    cgroups: [$VT_CGROUP/frontend]
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: dead
    frontend: 198.19.0.20:80
    backends:
      - address: 198.18.1.2:9
  - name: empty
    frontend: 198.19.0.30:80
YAML
va_start "$cfg" || vt_finish
# Traffic for at most 60 s (each loop is bounded; the cleanup stops them earlier).
for vip in 198.19.0.10:80 198.19.0.20:80 198.19.0.30:80; do
	vt_client loop "$vip" --seconds 60 --interval-ms 50 --timeout-ms 500 >/dev/null 2>&1 &
	vt_track_pid $!
done
(
	echo "$BASHPID" >"$VT_CGROUP/frontend/cgroup.procs" || exit 2
	exec timeout -k 2 60 ip netns exec "$VT_ID-node" "$VT_BIN/sl_client" loop 198.19.0.10:80 \
		--seconds 60 --interval-ms 50 --timeout-ms 500
) >/dev/null 2>&1 &
vt_track_pid $!
scraped() {
	va_metrics >"$VT_TMP/metrics" &&
		grep -q '^sluice_connect_failures_total{service="dead".* [1-9]' "$VT_TMP/metrics" &&
		grep -q '^sluice_rejected_connections_total{service="empty".* [1-9]' "$VT_TMP/metrics" &&
		grep -q '^sluice_tcp_rtt_seconds_bucket{service="web"' "$VT_TMP/metrics"
}
vt_wait_until 20 scraped && vt_pass "live /metrics with connections, failures and rejections" ||
	vt_fail "live /metrics lacks traffic: $(grep -c . "$VT_TMP/metrics") lines"
grep -v '^#' "$VT_TMP/metrics" | sed 's/[{ ].*//' | sort -u >"$VT_TMP/exported"

# names_exported NAMES...: prints those that the live page does not export.
names_missing() {
	local m
	for m in "$@"; do
		grep -qx "$m" "$VT_TMP/exported" || echo "$m"
	done
}
missing=$(names_missing $used)
[ -z "$missing" ] && vt_pass "every metric the dashboard names is exported: $(echo $used)" ||
	vt_fail "the dashboard names metrics /metrics does not export: $(echo $missing)"
# The check is real: a metric of the spec that sluiced does not export yet is caught.
[ "$(names_missing sluice_health_checks_total)" = sluice_health_checks_total ] &&
	vt_pass "the name check catches an unexported metric (sluice_health_checks_total)" ||
	vt_fail "the name check let sluice_health_checks_total through"

# --- promtool check rules on a recording-rule file made from the dashboard -------------------
rules() { # rules EXPRS-FILE: a rule file with one recording rule per expression
	echo "groups:"
	echo "  - name: sluice-dashboard"
	echo "    rules:"
	local i=0 e
	while IFS= read -r e; do
		i=$((i + 1))
		printf "      - record: sluice_dashboard:query_%d\n        expr: '%s'\n" "$i" "$e"
	done <"$1"
}
rules "$VT_TMP/exprs" >"$VT_TMP/rules.yml"
vt_check "promtool check rules: $n rules from the dashboard are valid" -O "$VT_TMP/promtool.out" -- \
	eval 'promtool check rules "$VT_TMP/rules.yml" && grep -q "SUCCESS: $n rules found" "$VT_TMP/promtool.out"'
{ cat "$VT_TMP/exprs"; echo 'sum by (service) (rate(sluice_connections_total[10s])'; } >"$VT_TMP/broken"
rules "$VT_TMP/broken" >"$VT_TMP/broken.yml"
promtool check rules "$VT_TMP/broken.yml" >/dev/null 2>&1 && vt_fail "promtool accepted a broken query" ||
	vt_pass "promtool does reject a broken query"

# --- a real Prometheus answers every query with data -----------------------------------------
va_prometheus 9091 "$VT_TMP/rules.yml"
query() { va_prom_query 9091 "$1"; } # query EXPR: the JSON answer
has_data() { query "$1" | jq -e '.status == "success" and (.data.result | length) > 0' >/dev/null 2>&1; }
# Wait for enough scrapes that the 10s rate windows hold samples.
vt_wait_until 30 has_data 'rate(sluice_connections_total{service="web"}[10s]) > 0' ||
	vt_fail "Prometheus has no rate of sluice_connections_total yet: $(tail -n 3 "$VT_TMP/prometheus.log")"
empty=0
while IFS= read -r e; do
	if vt_wait_until 10 has_data "$e"; then
		:
	else
		empty=$((empty + 1))
		vt_fail "no data for: $e ($(query "$e" | head -c 300))"
	fi
done <"$VT_TMP/exprs"
[ "$empty" -eq 0 ] && vt_pass "Prometheus answers all $n dashboard queries with data"
# The service map panel: its edge query names both callers of web, its node queries both callers
# and the services, with ids that the edges point at.
map_q() { jq -r --arg r "$1" '.panels[] | select(.type == "nodeGraph") | .targets[] | select(.refId == $r) | .expr' "$dash" | fill; }
vt_check "the dashboard has one service map (nodeGraph) panel with edge and node queries" -o /dev/null -- \
	jq -e '[.panels[] | select(.type == "nodeGraph")] | length == 1 and
	(.[0].targets | map(.refId) | sort == ["callers", "edges", "failures", "rejected", "services"])' "$dash"
map_edges() {
	query "$(map_q edges)" | jq -e '[.data.result[].metric | select(.target == "service/web") | .source] |
		index("identity/frontend") != null and index("identity/unknown") != null' >/dev/null
}
vt_wait_until 15 map_edges && vt_pass "service map edges: identity/frontend and identity/unknown -> service/web" ||
	vt_fail "service map edges: $(query "$(map_q edges)" | jq -c '[.data.result[].metric]' 2>/dev/null | head -c 400)"
map_nodes() {
	local ids
	ids=$({ query "$(map_q callers)"; query "$(map_q services)"; } | jq -r '.data.result[].metric.id' | sort -u)
	for want in identity/frontend identity/unknown service/web service/dead; do
		grep -qx "$want" <<<"$ids" || return 1
	done
	# Every edge's ends are nodes.
	query "$(map_q edges)" | jq -r '.data.result[].metric | .source, .target' | sort -u |
		while read -r id; do grep -qx "$id" <<<"$ids" || exit 1; done
}
vt_wait_until 15 map_nodes && vt_pass "service map nodes: both callers and every service called, each edge's ends among them" ||
	vt_fail "service map nodes: $({ query "$(map_q callers)"; query "$(map_q services)"; } | jq -c '[.data.result[].metric.id]' 2>/dev/null | tr '\n' ' ')"
recorded() {
	rec=$(query '{__name__=~"sluice_dashboard:.*"}' | jq '[.data.result[].metric.__name__] | unique | length')
	[ "${rec:-0}" -eq "$n" ]
}
vt_wait_until 10 recorded && vt_pass "Prometheus evaluates all $n generated recording rules" ||
	vt_fail "recording rules with a result: ${rec:-0} of $n; $(grep -i 'level=warn' "$VT_TMP/prometheus.log" | tail -n 2)"
vt_finish
