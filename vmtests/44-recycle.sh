#!/usr/bin/env bash
# Recycled ids start clean. Backend A's SYNs are dropped in its netns, and three connects to it
# are left pending (SYN_SENT). A is removed, and once its id is free a new backend B of the same
# service gets it. When the pending connects time out, B is not charged: no failure, no
# ejection, no active count, and it keeps serving. Likewise a service removed while it holds two
# connections and a spent rate limiter gives its id to a new service, which starts with no
# connections counted and a full bucket: its first connect is admitted.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init recycle
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
vt_require_tools
command -v nft >/dev/null || vt_skip "nft is missing (Debian package nftables)"
command -v bpftool >/dev/null || vt_skip "bpftool is missing"
[ -x "$VT_BIN/sl_stress" ] || vt_skip "build/vmtests/sl_stress is missing (make all)"

cfg=$VT_TMP/sluice.yaml
stage() { # stage N: the config of step N (1: A and 'gone'; 2: both removed; 3: B and 'fresh')
	local be="" extra=""
	case $1 in
	1) be="{address: 198.18.1.2:8080}" extra="
  - name: gone
    frontend: 198.19.0.91:80
    backends: [{address: 198.18.1.4:8080}]
    rate_limit: {connections_per_second: 1, burst: 5}" ;;
	3) be="{address: 198.18.1.3:8080}" extra="
  - name: fresh
    frontend: 198.19.0.92:80
    backends: [{address: 198.18.1.4:8080}]
    rate_limit: {connections_per_second: 1, burst: 1}
    circuit_breaker: {max_connections: 2}" ;;
	esac
	va_config "$cfg.new" <<YAML
services:
  - name: svc
    frontend: 198.19.0.90:80
    backends: [$be]
    outlier_detection: {consecutive_failures: 2, base_ejection_time: 60s, max_ejection_percent: 100}
    timeouts: {connect: 8s}$extra
YAML
	mv "$cfg.new" "$cfg"
}
# be_id A.B.C.D PORT: the id sluice_backends holds for that backend (empty: none).
be_id() {
	local port=$((($2 & 255) * 256 + ($2 >> 8))) # network order, read as a host __u16
	bpftool -j map dump pinned "$VT_BPFFS/sluice_backends" | jq -r --arg a "$1" --argjson p "$port" '
		.[].formatted | select((.value.addr.a8[0:4] | map(tostring) | join(".")) == $a and
			.value.port == $p) | .key'
}
svc_id() {
	bpftool -j map dump pinned "$VT_BPFFS/sluice_svc_info" | jq -r --arg n "$1" '
		.[].formatted | select(.value.name == $n) | .key'
}
# rt_gen MAP ID: the generation in that id's active_gen word.
rt_gen() {
	local k=$2
	bpftool -j map lookup pinned "$VT_BPFFS/$1" key $((k & 255)) $(((k >> 8) & 255)) 0 0 |
		jq '(.formatted.value.active_gen // 0) % 4294967296'
}
svc_json() { va_ctl -o json services "$1"; }
applied() { va_log_count_ge 'msg="config applied"' "$1"; }

stage 1
va_start "$cfg" || vt_finish
ip netns exec "$VT_ID-be1" nft -f - <<'NFT' || vt_fail "nft blackhole"
table inet vtbh {
	chain in {
		type filter hook input priority 0;
		tcp dport 8080 drop
	}
}
NFT
A=$(be_id 198.18.1.2 8080)
GONE=$(svc_id gone)

# Three connects to A left pending, and 'gone' with two open connections and a spent limiter.
syn=$VT_TMP/synhold.out
vt_in_cgroup "$VT_BIN/sl_stress" synhold 198.19.0.90:80 -n 3 --seconds 30 >"$syn" 2>&1 &
sp=$!
vt_client hold 198.19.0.91:80 -n 2 --seconds 15 >"$VT_TMP/hold.out" &
hp=$!
vt_wait_until 5 grep -q '^pending 3' "$syn" || vt_fail "pending connects: $(cat "$syn")"
vt_wait_until 5 grep -q '^holding 2' "$VT_TMP/hold.out" || vt_fail "hold: $(cat "$VT_TMP/hold.out")"
vt_client tcp 198.19.0.91:80 -n 3 >"$VT_TMP/spend.out" || vt_fail "spend: $(tr '\n' ' ' <"$VT_TMP/spend.out")"
a_active=$(svc_json svc | jq '.[0].backends[0].active_connections')
g_active=$(svc_json gone | jq '.[0].active_connections')
[ "$a_active" -eq 3 ] && [ "$g_active" -eq 2 ] &&
	vt_pass "A (id $A) has 3 connects pending, 'gone' (id $GONE) 2 connections and a spent limiter" ||
	vt_fail "before: A active $a_active, gone active $g_active"

# Remove A and 'gone'; once A's id is reaped, B and 'fresh' take the freed ids.
stage 2
vt_wait_until 5 applied 2 || vt_fail "stage 2 not applied"
reaped() { ! bpftool map lookup pinned "$VT_BPFFS/sluice_backends" key "$A" 0 0 0 >/dev/null 2>&1; }
vt_wait_until 5 reaped || vt_fail "A's id $A was never reaped"
stage 3
vt_wait_until 5 applied 3 || vt_fail "stage 3 not applied"
B=$(be_id 198.18.1.3 8080)
FRESH=$(svc_id fresh)
if [ "$B" = "$A" ] && [ "$FRESH" = "$GONE" ]; then
	vt_pass "B got A's backend id $A (generation $(rt_gen sluice_backend_rt "$B")), 'fresh' got 'gone''s service id $GONE (generation $(rt_gen sluice_svc_rt "$FRESH"))"
else
	vt_fail "ids not recycled: A $A B $B, gone $GONE fresh $FRESH: the test proves nothing"
fi
b_active=$(svc_json svc | jq '.[0].backends[0].active_connections')
f_active=$(svc_json fresh | jq '.[0].active_connections')
[ "$b_active" -eq 0 ] && [ "$f_active" -eq 0 ] &&
	vt_pass "B and 'fresh' start with no active connections (the pending and open ones are A's and 'gone''s)" ||
	vt_fail "inherited counts: B active $b_active, fresh active $f_active"
vt_client tcp 198.19.0.92:80 -n 1 >"$VT_TMP/fresh.out" &&
	vt_pass "'fresh' admits its first connect (no inherited rate-limiter debt or circuit-breaker count)" ||
	vt_fail "fresh first connect: $(tr '\n' ' ' <"$VT_TMP/fresh.out")"

# A's connects time out (timeouts.connect 8s) while B holds A's id.
wait "$sp"
[ "$(vt_value "$syn" 'errno ETIMEDOUT')" -eq 3 ] &&
	vt_pass "A's 3 pending connects timed out" || vt_fail "pending connects: $(tr '\n' ' ' <"$syn")"
sleep 0.5
b=$(svc_json svc | jq -c '.[0].backends[0] | {state, active_connections, connect_failures_total}')
times=$(bpftool -j map lookup pinned "$VT_BPFFS/sluice_backend_rt" key "$B" 0 0 0 |
	jq '.formatted.value | .failures + .times_ejected')
if [ "$b" = '{"state":"healthy","active_connections":0,"connect_failures_total":0}' ] &&
	[ "$times" -eq 0 ]; then
	vt_pass "B was not charged for A's timeouts: $b, no failure run, never ejected"
else
	vt_fail "B charged for A's timeouts: $b, failures + times_ejected $times"
fi
va_log_has 'msg="backend ejected"' && vt_fail "an ejection was logged: $(grep 'backend ejected' "$VA_LOG")" ||
	vt_pass "no ejection logged"
vt_client tcp 198.19.0.90:80 -n 3 >"$VT_TMP/b.out" &&
	vt_pass "B serves the service" || vt_fail "B: $(tr '\n' ' ' <"$VT_TMP/b.out")"
[ "$(svc_json svc | jq '.[0].active_connections')" -eq 0 ] &&
	vt_pass "the service (its id kept) got its count back from A's timed-out connects" ||
	vt_fail "svc active $(svc_json svc | jq '.[0].active_connections')"

# 'gone''s connections close under 'fresh''s id: fresh's count is not touched.
vt_client hold 198.19.0.92:80 -n 1 --seconds 8 >"$VT_TMP/hold-fresh.out" &
fp=$!
vt_wait_until 5 grep -q '^holding 1' "$VT_TMP/hold-fresh.out" || vt_fail "fresh hold"
wait "$hp"
[ "$(svc_json fresh | jq '.[0].active_connections')" -eq 1 ] &&
	vt_pass "'gone''s 2 connections closed; 'fresh' still counts exactly its own 1" ||
	vt_fail "fresh active after gone's close: $(svc_json fresh | jq '.[0].active_connections')"
wait "$fp"
[ "$(svc_json fresh | jq '.[0].active_connections')" -eq 0 ] &&
	vt_pass "and once its own closed, 0" ||
	vt_fail "fresh active at the end: $(svc_json fresh | jq '.[0].active_connections')"
ip netns exec "$VT_ID-be1" nft delete table inet vtbh || vt_fail "nft cleanup"

va_stop
vt_finish
