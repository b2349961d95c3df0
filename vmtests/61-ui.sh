#!/usr/bin/env bash
# The service map: `sluicectl graph` and the page sluiced serves at /ui.
# 1. The page (userspace/ui/graph.html) in a real browser: headless Chromium loads it from a fake
#    agent on 127.0.0.1 (tests/ui/fake_graph.py) and tests/ui/test_ui.sh checks the drawn DOM:
#    every node and edge, rates between refreshes, state badges, escaping, and that the page
#    fetched nothing but /ui and /graph.
# 2. A live agent, with traffic to two services from a "frontend" identity's cgroup and from
#    callers with no identity: /graph and `sluicectl graph -o json` hold those callers' edges
#    with their counts; the service -> backend edges are what `sluicectl services` says; the
#    table and `-o dot` (rendered by dot) show the same map. Chromium keeps /ui open
#    (tests/ui/live_page.py): one node element per identity, service and backend and one edge
#    per pair; a backend whose server is stopped turns unhealthy and the page marks it within
#    two refreshes. A screenshot of the live page is kept ($UI_LIVE_SHOT).
# Skipped without chromium (make deps installs it).
set -u
cd "$(dirname "$0")/.." || exit 1
. vmtests/lib.sh
. vmtests/agent.sh

command -v chromium >/dev/null || vt_skip "chromium is missing (make deps installs it)"
shot=${UI_LIVE_SHOT:-/tmp/sluice-ui-live.png}

# --- 1. the page against scripted documents ---------------------------------------------------
out=$(mktemp /tmp/sl-ui.XXXXXX) || exit 1
bash tests/ui/test_ui.sh >"$out" 2>&1
fixture_rc=$?
grep -v '^[0-9]* passed, [0-9]* failed$' "$out"
VT_FAILS=$(grep -c '^FAIL: ' "$out")
[ "$fixture_rc" -eq 0 ] || [ "$VT_FAILS" -gt 0 ] || vt_fail "tests/ui/test_ui.sh exited $fixture_rc"
rm -f "$out"

# --- 2. a live agent ---------------------------------------------------------------------------
for t in python3 jq curl dot; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
fails_before=$VT_FAILS
vt_world ui
VT_FAILS=$fails_before
vt_require_tools
mkdir "$VT_CGROUP/frontend" || vt_fail "mkdir $VT_CGROUP/frontend"
cfg=$VT_TMP/sluice.yaml
{
	va_identities frontend batch
	cat <<YAML
services:
  - name: web
    frontend: 198.19.0.10:80
    health_check: {type: tcp, interval: 200ms, timeout: 150ms, healthy_threshold: 1,
                   unhealthy_threshold: 1}
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: api
    frontend: 198.19.0.20:80
    backends:
      - address: 198.18.1.2:8080
  - name: idle
    frontend: 198.19.0.30:80
YAML
} | va_config "$cfg"
mkdir "$VT_CGROUP/batch" || vt_fail "mkdir $VT_CGROUP/batch"
va_start "$cfg" || vt_finish

# Traffic for at most 90 s: frontend -> web, unknown (agent.cgroup itself) -> web and api.
(
	echo "$BASHPID" >"$VT_CGROUP/frontend/cgroup.procs" || exit 2
	exec timeout -k 2 90 ip netns exec "$VT_ID-node" "$VT_BIN/sl_client" loop 198.19.0.10:80 \
		--seconds 90 --interval-ms 50 --timeout-ms 500
) >/dev/null 2>&1 &
vt_track_pid $!
for vip in 198.19.0.10:80 198.19.0.20:80; do
	vt_client loop "$vip" --seconds 90 --interval-ms 100 --timeout-ms 500 >/dev/null 2>&1 &
	vt_track_pid $!
done

graph() { va_ctl -o json graph >"$VT_TMP/graph.json" 2>"$VT_TMP/graph.err"; }
# edge FROM TO: that edge's connections in graph.json (0 if absent).
edge() {
	jq -r --arg f "$1" --arg t "$2" \
		'[.edges[] | select(.from == $f and .to == $t) | .connections] | add // 0' "$VT_TMP/graph.json"
}
callers_counted() {
	graph && [ "$(edge identity/frontend service/web)" -ge 5 ] &&
		[ "$(edge identity/unknown service/web)" -ge 5 ] &&
		[ "$(edge identity/unknown service/api)" -ge 5 ] &&
		[ "$(edge service/web backend/web/198.18.1.4:8080)" -ge 1 ]
}
vt_wait_until 20 callers_counted &&
	vt_pass "sluicectl graph: frontend -> web $(edge identity/frontend service/web), unknown -> web $(edge identity/unknown service/web), unknown -> api $(edge identity/unknown service/api) connections" ||
	vt_fail "the callers' edges are not counted: $(jq -c '[.edges[] | select(.from | startswith("identity/"))]' "$VT_TMP/graph.json" 2>/dev/null) $(cat "$VT_TMP/graph.err")"
vt_check "graph -o json: exactly the nodes of the config (3 identities with unknown, 3 services, 4 backends)" -o /dev/null \
	-d 'jq -c "[.nodes[].id]" "$VT_TMP/graph.json"' -- jq -e '[.nodes[].id] | sort == [
	"backend/api/198.18.1.2:8080", "backend/web/198.18.1.2:8080", "backend/web/198.18.1.3:8080",
	"backend/web/198.18.1.4:8080", "identity/batch", "identity/frontend", "identity/unknown",
	"service/api", "service/idle", "service/web"]' "$VT_TMP/graph.json"
vt_check "no caller edge from batch (it sent nothing) or to idle" -o /dev/null -d 'jq -c .edges "$VT_TMP/graph.json"' -- \
	jq -e '[.edges[] | select(.from == "identity/batch" or .to == "service/idle")] == []' "$VT_TMP/graph.json"

# The service -> backend edges are `sluicectl services`: read services before and after the
# graph, so that each counter of the graph lies between the two.
be_edges() { # be_edges FILE: services -o json as graph edges
	jq -c '[.[] | .name as $s | .backends[] | {from: ("service/" + $s),
		to: ("backend/" + $s + "/" + .address), connections: .connections_total,
		failures: .connect_failures_total, active: .active_connections, state: .state}] | sort_by(.to)' "$1"
}
va_ctl -o json services >"$VT_TMP/svc1.json" && graph && va_ctl -o json services >"$VT_TMP/svc2.json"
be_edges "$VT_TMP/svc1.json" >"$VT_TMP/be1"
be_edges "$VT_TMP/svc2.json" >"$VT_TMP/be2"
jq -c '. as $g | [.edges[] | select(.from | startswith("service/")) | . as $e |
	. + {state: ($g.nodes[] | select(.id == $e.to) | .state)}] | sort_by(.to)' "$VT_TMP/graph.json" >"$VT_TMP/beg"
vt_check "graph's service -> backend edges match sluicectl services (pairs, states, counters)" -o /dev/null \
	-d 'echo "services $(cat "$VT_TMP/be1") graph $(cat "$VT_TMP/beg")"' -- \
	jq -e -n --slurpfile a "$VT_TMP/be1" --slurpfile g "$VT_TMP/beg" --slurpfile b "$VT_TMP/be2" '
	($a[0] | length) == 4 and ([$a[0], $g[0], $b[0]] | map(map([.from, .to])) | unique | length) == 1 and
	([range(0; 4) | . as $i | $a[0][$i].connections <= $g[0][$i].connections and
		$g[0][$i].connections <= $b[0][$i].connections and
		$a[0][$i].failures <= $g[0][$i].failures and $g[0][$i].failures <= $b[0][$i].failures and
		$g[0][$i].state == $a[0][$i].state] | all)'

# /graph serves the same document.
vt_node curl -q -sf --max-time 5 http://127.0.0.1:9464/graph >"$VT_TMP/http.json"
vt_check "GET /graph: the same nodes and edges as sluicectl graph -o json" -o /dev/null \
	-d 'head -c 300 "$VT_TMP/http.json"' -- jq -e -n --slurpfile h "$VT_TMP/http.json" \
	--slurpfile c "$VT_TMP/graph.json" '($h[0].nodes == $c[0].nodes) and
	([$h[0].edges[] | [.from, .to]] == [$c[0].edges[] | [.from, .to]])'
vt_check "GET /ui: the embedded page, byte for byte" -- \
	eval 'vt_node curl -q -sf --max-time 5 http://127.0.0.1:9464/ui | cmp -s - userspace/ui/graph.html'

# The table and Graphviz.
va_ctl graph >"$VT_TMP/table"
vt_check "graph table: callers then backends, busiest first" -d 'cat "$VT_TMP/table"' -- \
	eval 'grep -q "^CALLER -> SERVICE .*CONNECTIONS .*FAILURES .*REJECTED" "$VT_TMP/table" &&
	grep -q "^SERVICE -> BACKEND .*STATE .*ACTIVE" "$VT_TMP/table" &&
	grep -qE "^(frontend|unknown) -> web " "$VT_TMP/table" &&
	awk "/^CALLER/ { on = 1; next } /^\$/ { on = 0 } on { print \$(NF - 2) }" "$VT_TMP/table" |
		sort -c -n -r'
va_ctl -o dot graph >"$VT_TMP/graph.dot"
vt_check "graph -o dot renders with dot -Tsvg: one node per node, one edge per edge" \
	-d 'head -c 400 "$VT_TMP/dot.err"' -- eval 'dot -Tsvg "$VT_TMP/graph.dot" >"$VT_TMP/graph.svg" 2>"$VT_TMP/dot.err" &&
	[ "$(grep -c "class=\"node\"" "$VT_TMP/graph.svg")" -eq "$(jq ".nodes | length" "$VT_TMP/graph.json")" ] &&
	[ "$(grep -c "class=\"edge\"" "$VT_TMP/graph.svg")" -eq "$(jq ".edges | length" "$VT_TMP/graph.json")" ]'

# --- the page, live --------------------------------------------------------------------------
coproc LIVE { vt_node python3 tests/ui/live_page.py "http://127.0.0.1:9464/ui?interval=1" 2>&1; }
vt_track_pid "$LIVE_PID"
page() { # page CMD...: one command to live_page.py; its answer in $ans, 0 if "ok"
	ans=
	echo "$*" >&"${LIVE[1]}" && read -r -t 30 -u "${LIVE[0]}" ans && [[ $ans == ok* ]]
}
read -r -t 30 -u "${LIVE[0]}" ans
[[ $ans == ok ]] && vt_pass "chromium keeps /ui open (live_page.py)" || {
	vt_fail "live_page.py: ${ans:-no answer}"
	vt_finish
}
# drawn_like_graph: a DOM after the page's 2nd refresh that draws exactly the graph of the time.
drawn_like_graph() {
	page fetches && [ "${ans#ok }" -ge 2 ] && page dom "$VT_TMP/live.dom" &&
		vt_node curl -q -sf --max-time 5 http://127.0.0.1:9464/graph >"$VT_TMP/live.json" &&
		python3 tests/ui/check_dom.py live "$VT_TMP/live.dom" "$VT_TMP/live.json" >"$VT_TMP/live.out"
}
vt_wait_until 15 drawn_like_graph &&
	vt_pass "the live page draws one node per identity, service and backend, one edge per pair ($(jq '.nodes | length' "$VT_TMP/live.json") nodes, $(jq '.edges | length' "$VT_TMP/live.json") edges)" ||
	vt_fail "the live page does not draw /graph: $(grep FAIL "$VT_TMP/live.out" | tr '\n' ' ')"

# A backend turns unhealthy: the page marks it by its second refresh after the agent knew.
be3=backend/web/198.18.1.4:8080
python3 tests/ui/check_dom.py state "$VT_TMP/live.dom" "$be3" healthy >/dev/null &&
	vt_pass "$be3 is drawn healthy first" || vt_fail "$be3 is not drawn healthy at first"
vt_server_stop be3
unhealthy() { va_ctl -o json services web | jq -e '.[0].backends[] | select(.address == "198.18.1.4:8080") | .state == "unhealthy"' >/dev/null; }
if vt_wait_until 10 unhealthy; then
	page fetches
	n0=${ans#ok }
	marked() { page dom "$VT_TMP/live.dom" && python3 tests/ui/check_dom.py state "$VT_TMP/live.dom" "$be3" unhealthy >"$VT_TMP/state.out"; }
	if vt_wait_until 8 marked; then
		page fetches
		n1=${ans#ok }
		[ $((n1 - n0)) -le 2 ] && vt_pass "the page marks $be3 UNHEALTHY within two refreshes ($((n1 - n0)))" ||
			vt_fail "$be3 marked only $((n1 - n0)) refreshes after the agent knew"
	else
		vt_fail "the page never marks $be3 unhealthy: $(cat "$VT_TMP/state.out")"
	fi
else
	vt_fail "$be3 did not turn unhealthy after its server stopped"
fi
rm -f "$shot"
page shot "$shot" 1400 900 && [ "$(head -c 4 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] &&
	vt_pass "screenshot of the live page: $shot" || vt_fail "no screenshot: $ans"
page quit
wait "$LIVE_PID" 2>/dev/null
vt_finish
