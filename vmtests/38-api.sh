#!/usr/bin/env bash
# The control API and the registry: register/deregister through sluicectl; a TTL registration
# stops taking connections without heartbeats and lives on with them; a service PUT and
# DELETE whole; drain keeps established connections doing round trips while new ones avoid
# the backend, survives a reload and a kill -9 restart, and undrain brings it back; API
# registrations survive kill -9; 35 malformed requests are each answered 4xx with a message
# and leave the maps and the state file as they were; the socket and state file are 0600.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world api
command -v python3 >/dev/null || vt_skip "python3 is missing"
vt_require_tools
for i in 1 2; do
	(exec ip netns exec "$VT_ID-be$i" "$VT_BIN/sl_xfer" serve --port 7000 --mode echo \
		--seconds 120 >"$VT_TMP/echo$i.log" 2>&1) &
	vt_track_pid $!
done

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.40:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
  - name: dr
    frontend: 198.19.0.41:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:7000
      - address: 198.18.1.3:7000
YAML
va_start "$cfg" || vt_finish
SOCK=$VT_TMP/sluiced.sock
STATE=$VT_TMP/state/registry.json

# api METHOD PATH [BODY]: prints the HTTP status, then the body (in $VT_TMP/api.body).
api() {
	local args=(-s -o "$VT_TMP/api.body" -w '%{http_code}' --max-time 5 --unix-socket "$SOCK"
		-X "$1" "http://sluice$2")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	vt_node curl -q "${args[@]}"
}
reaches() { # reaches VIP NAME N: N connections, how many reached backend NAME
	vt_client tcp "$1:80" -n "$3" --timeout-ms 2000 >"$VT_TMP/reach.out"
	vt_value "$VT_TMP/reach.out" "$2"
}
state() {
	va_ctl -o json services "$1" |
		jq -r --arg a "$2" '.[0].backends[] | select(.address == $a) | .state'
}

# --- register / deregister with sluicectl -------------------------------------------------------
va_ctl register web 198.18.1.4:8080 --weight 2 --zone z2 >"$VT_TMP/out" &&
	vt_pass "sluicectl register: $(cat "$VT_TMP/out")" || vt_fail "register: $(cat "$VT_TMP/out")"
va_ctl services web | grep -E '^ +198\.18\.1\.4:8080 .* zone=z2 ' >/dev/null &&
	vt_pass "register --zone z2: sluicectl services shows zone=z2" ||
	vt_fail "register --zone: $(va_ctl services web 2>&1 | grep 198.18.1.4)"
va_ctl register web 198.18.1.5:8080 --zone 'z 2' >"$VT_TMP/out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q "zone 'z 2' must be" "$VT_TMP/out" &&
	! va_ctl -o json services web | jq -e '.[0].backends[] | select(.address == "198.18.1.5:8080")' >/dev/null &&
	vt_pass "register --zone 'z 2': refused, exit 2, named ($(cat "$VT_TMP/out"))" ||
	vt_fail "register --zone 'z 2': exit $rc $(cat "$VT_TMP/out")"
n=$(reaches 198.19.0.40 be3 30)
[ "$n" -ge 10 ] && vt_pass "the registered backend takes connections ($n of 30, weight 2 of 4)" ||
	vt_fail "registered backend got $n of 30"
mode=$(stat -c '%a' "$STATE" 2>/dev/null)
[ "$mode" = 600 ] && [ "$(stat -c '%a' "$(dirname "$STATE")")" = 700 ] &&
	[ "$(stat -c '%a' "$SOCK")" = 600 ] &&
	vt_pass "state file 0600 in a 0700 directory, API socket 0600" ||
	vt_fail "modes: state $mode, dir $(stat -c '%a' "$(dirname "$STATE")"), socket $(stat -c '%a' "$SOCK")"

# Persistence across kill -9.
va_stop KILL
va_start "$cfg" || vt_finish
n=$(reaches 198.19.0.40 be3 30)
[ "$n" -ge 10 ] && va_log_has 'msg="registry restored"' &&
	vt_pass "after kill -9 and a restart the registration is still served ($n of 30)" ||
	vt_fail "after restart be3 got $n of 30"
va_ctl deregister web 198.18.1.4:8080 >"$VT_TMP/out" || vt_fail "deregister: $(cat "$VT_TMP/out")"
n=$(reaches 198.19.0.40 be3 30)
[ "$n" -eq 0 ] && vt_pass "deregistered: no new connections reach it" || vt_fail "be3 still got $n"
va_ctl deregister web 198.18.1.2:8080 >"$VT_TMP/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q 'config file' "$VT_TMP/out" &&
	vt_pass "a backend of the config file cannot be deregistered (exit 1: $(cat "$VT_TMP/out"))" ||
	vt_fail "deregister file backend: exit $rc $(cat "$VT_TMP/out")"

# --- TTL ----------------------------------------------------------------------------------------
va_ctl register web 198.18.1.4:8080 --ttl 3s >/dev/null || vt_fail "register --ttl"
for i in 1 2 3 4 5; do
	sleep 0.8
	[ "$(api PUT /v1/services/web/backends/198.18.1.4:8080/heartbeat)" = 200 ] ||
		vt_fail "heartbeat $i: $(cat "$VT_TMP/api.body")"
done
n=$(reaches 198.19.0.40 be3 30)
[ "$n" -ge 5 ] && vt_pass "heartbeats keep a 3s-TTL registration past its TTL ($n of 30 after 4 s)" ||
	vt_fail "with heartbeats be3 got $n"
gone() { [ "$(reaches 198.19.0.40 be3 15)" -eq 0 ]; }
t0=$(date +%s%N)
vt_check "without heartbeats the registration stops taking connections (TTL 3 s)" \
	-d 'echo "it never expired"' -- vt_wait_until 6 gone &&
	vt_log "after $((($(date +%s%N) - t0) / 1000000)) ms"
va_log_has 'msg="registrations expired' && vt_pass "the expiry is logged" || vt_fail "no expiry log line"

# --- a whole service through the API ------------------------------------------------------------
st=$(api PUT /v1/services/api-svc '{"frontend": "198.19.0.42:80", "lb": "round_robin", "backends": [{"address": "198.18.1.4:8080"}]}')
[ "$st" = 201 ] && vt_pass "PUT /v1/services/api-svc: 201" || vt_fail "PUT service: $st $(cat "$VT_TMP/api.body")"
n=$(reaches 198.19.0.42 be3 10)
[ "$n" -eq 10 ] && vt_pass "the API service serves (10 of 10 to be3)" || vt_fail "api-svc: $n of 10"
[ "$(api GET /v1/services/api-svc)" = 200 ] && jq -e '.source == "api" and .backends[0].state == "healthy"' \
	"$VT_TMP/api.body" >/dev/null && vt_pass "GET /v1/services/api-svc shows it (source api)" ||
	vt_fail "GET api-svc: $(cat "$VT_TMP/api.body")"
[ "$(api GET /v1/services)" = 200 ] && [ "$(jq length "$VT_TMP/api.body")" -eq 3 ] &&
	vt_pass "GET /v1/services lists 3 services" || vt_fail "GET list: $(cat "$VT_TMP/api.body")"
[ "$(api PUT /v1/services/web '{"frontend": "198.19.0.43:80"}')" = 409 ] &&
	vt_pass "PUT of a config-file service: 409" || vt_fail "PUT web: $(cat "$VT_TMP/api.body")"
[ "$(api DELETE /v1/services/api-svc)" = 200 ] && vt_client refused 198.19.0.42:80 >/dev/null 2>&1 ||
	vt_client tcp 198.19.0.42:80 -n 1 --timeout-ms 500 >/dev/null 2>&1 ||
	true
api GET /v1/services/api-svc >/dev/null
[ "$(cat "$VT_TMP/api.body" | jq -r .error)" = "no such service" ] &&
	vt_pass "DELETE /v1/services/api-svc: gone" || vt_fail "after DELETE: $(cat "$VT_TMP/api.body")"

# --- malformed requests: 4xx with a message, nothing changed ---------------------------------------
snapshot() {
	va_ctl -o json services | jq -S '[.[] | {name, frontend, lb, backends: [.backends[] | {address, weight, subset, state}]}]'
	sha256sum "$STATE" | cut -d' ' -f1
}
snapshot >"$VT_TMP/before"
big=$(head -c 70000 /dev/zero | tr '\0' 'x')
bad=(
	"POST|/v1/services/web/backends|not json|400"
	"POST|/v1/services/web/backends|[1,2]|400"
	"POST|/v1/services/web/backends|{}|400"
	"POST|/v1/services/web/backends|{\"address\": 5}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:0\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"300.1.1.1:80\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"[2001:db8:1::9]:80\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.2:8080\"}|409"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"weight\": 0}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"weight\": 1001}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"weight\": \"2\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"subset\": \"0123456789012345678901234567890123\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"ttl\": \"soon\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"ttl\": \"48h\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"ttl\": -1}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"colour\": \"red\"}|400"
	"POST|/v1/services/web/backends|{\"address\": \"198.18.1.9:80\", \"address\": \"198.18.1.8:80\"}|400"
	"POST|/v1/services/nosuch/backends|{\"address\": \"198.18.1.9:80\"}|404"
	"POST|/v1/services/web/backends|$big|413"
	"PUT|/v1/services/new1|{\"frontend\": \"nonsense\"}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.50:80\", \"lb\": \"fastest\"}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.50:80\", \"colour\": 1}|400"
	"PUT|/v1/services/new1|{\"name\": \"other\", \"frontend\": \"198.19.0.50:80\"}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.40:80\"}|409"
	"PUT|/v1/services/Bad_Name|{\"frontend\": \"198.19.0.50:80\"}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.50:80\", \"backends\": [{\"address\": \"[2001:db8:1::2]:80\"}]}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.50:80\", \"split\": {\"v1\": 50}}|400"
	"PUT|/v1/services/new1|{\"frontend\": \"198.19.0.50:80\", \"timeouts\": {\"idle\": \"1500ms\"}}|400"
	"PUT|/v1/services/new1|$big|413"
	"DELETE|/v1/services/web||409"
	"DELETE|/v1/services/nosuch||404"
	"DELETE|/v1/services/web/backends/198.18.1.9:80||404"
	"DELETE|/v1/services/web/backends/notanaddress||404"
	"PUT|/v1/services/web/backends/198.18.1.2:8080/heartbeat||409"
	"POST|/v1/services/web/backends/198.18.1.9:80/drain||404"
	"POST|/v1/services/nosuch/backends/198.18.1.2:8080/drain||404"
	"GET|/v1/services/web/backends/198.18.1.2:8080/drain||405"
	"PATCH|/v1/services/web||405"
	"GET|/v1/nothing||404"
)
nbad=0
for entry in "${bad[@]}"; do
	IFS='|' read -r method path body want <<<"$entry"
	if [ -n "$body" ]; then st=$(api "$method" "$path" "$body"); else st=$(api "$method" "$path"); fi
	if [ "$st" = "$want" ] && jq -e '.error | length > 0' "$VT_TMP/api.body" >/dev/null 2>&1; then
		nbad=$((nbad + 1))
	else
		vt_fail "$method $path ${body:0:60}: got $st $(head -c 200 "$VT_TMP/api.body"), want $want with an error"
	fi
done
[ "$nbad" -eq "${#bad[@]}" ] && vt_pass "$nbad malformed requests: each answered with its 4xx and a message" ||
	vt_fail "only $nbad of ${#bad[@]} malformed requests answered as expected"
api POST /v1/services/web/backends '{"address": "198.18.1.9:80", "weight": 0}' >/dev/null
jq -e '.field == "weight"' "$VT_TMP/api.body" >/dev/null && vt_pass "errors name the field ($(cat "$VT_TMP/api.body" | jq -c .))" ||
	vt_fail "no field: $(cat "$VT_TMP/api.body")"
snapshot >"$VT_TMP/after"
cmp -s "$VT_TMP/before" "$VT_TMP/after" && vt_pass "after them the maps and the state file are unchanged" ||
	vt_fail "changed: $(diff "$VT_TMP/before" "$VT_TMP/after" | head -5)"

# --- drain: held connections go on, new ones avoid the backend ------------------------------------
hold=$VT_TMP/hold.out
vt_in_cgroup python3 "$VT_ROOT/vmtests/tools/rt_hold.py" 198.19.0.41 80 6 6 100 >"$hold" 2>"$VT_TMP/hold.err" &
hp=$!
vt_wait_until 5 grep -q 'ready 6' "$hold" || vt_fail "holder: $(cat "$VT_TMP/hold.err")"
be1_active() { va_ctl -o json services dr | jq '.[0].backends[] | select(.address == "198.18.1.2:7000") | .active_connections'; }
before=$(be1_active)
va_ctl drain dr 198.18.1.2:7000 >"$VT_TMP/out" || vt_fail "drain: $(cat "$VT_TMP/out")"
[ "$(state dr 198.18.1.2:7000)" = draining ] && [ "$before" -eq 3 ] &&
	vt_pass "drained be1 with $before established connections: state draining" ||
	vt_fail "drain: state $(state dr 198.18.1.2:7000), active before $before"
total() { va_ctl -o json services dr | jq ".[0].backends[] | select(.address == \"$1\") | .connections_total"; }
t1=$(total 198.18.1.2:7000)
vt_client tcp 198.19.0.41:80 -n 20 --send 4 --timeout-ms 1000 >/dev/null 2>&1
t1b=$(total 198.18.1.2:7000)
[ "$t1b" -eq "$t1" ] && vt_pass "20 new connections: none to the draining backend" ||
	vt_fail "draining backend got $((t1b - t1)) new connections"
# A reload and a kill -9 restart keep the drain.
va_reload_ok() { kill -HUP "$VA_PID"; vt_wait_until 5 va_log_count_ge 'msg="reloading"' 1; }
va_reload_ok
va_stop KILL
va_start "$cfg" || vt_finish
[ "$(state dr 198.18.1.2:7000)" = draining ] && vt_pass "the drain survives a reload and kill -9" ||
	vt_fail "after restart: $(state dr 198.18.1.2:7000)"
wait "$hp"
rc=$?
[ "$rc" -eq 0 ] && vt_pass "held connections kept their echo round trips through drain and restart ($(tr '\n' ' ' <"$hold"))" ||
	vt_fail "holder: rc $rc $(tr '\n' ' ' <"$hold") $(cat "$VT_TMP/hold.err")"
zero() { [ "$(be1_active)" -eq 0 ]; }
vt_wait_until 5 zero && vt_pass "the draining backend's active count fell to 0" ||
	vt_fail "be1 active $(be1_active)"
va_ctl services dr | grep -q '198.18.1.2:7000 .*draining' && vt_pass "sluicectl services shows draining" ||
	vt_fail "services: $(va_ctl services dr)"
va_ctl undrain dr 198.18.1.2:7000 >/dev/null || vt_fail "undrain"
t1=$(total 198.18.1.2:7000)
vt_client tcp 198.19.0.41:80 -n 20 --send 4 --timeout-ms 1000 >/dev/null 2>&1
t1b=$(total 198.18.1.2:7000)
[ "$(state dr 198.18.1.2:7000)" = healthy ] && [ $((t1b - t1)) -ge 5 ] &&
	vt_pass "undrain: healthy, and it takes new connections again ($((t1b - t1)) of 20)" ||
	vt_fail "undrain: $(state dr 198.18.1.2:7000), $((t1b - t1)) new"
# sluice_config_apply_seconds counts each API change this start applied (the changes= of its
# log's "registry changed" lines since the last "ready", expiries and snapshots aside).
api_logged=$(awk '/msg="ready"/ { n = 0 } /msg="registry changed"/ && !/change="(registrations expired|etcd snapshot)"/ &&
	match($0, /changes=[0-9]+/) { n += substr($0, RSTART + 8, RLENGTH - 8) }
	END { print n + 0 }' "$VA_LOG")
api_counted=$(va_metrics | awk '$1 == "sluice_config_apply_seconds_count{source=\"api\"}" { print $2 }')
vt_check "sluice_config_apply_seconds_count{source=\"api\"} = $api_logged, the API changes applied since the start" \
	-d 'echo "got ${api_counted:-none}"' -- eval '[ "$api_logged" -ge 1 ] && [ "${api_counted:-x}" = "$api_logged" ]'

va_stop
vt_finish
