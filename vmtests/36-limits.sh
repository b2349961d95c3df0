#!/usr/bin/env bash
# Limits at connect(): circuit_breaker.max_connections refuses the (N+1)th connection at once and
# admits again when one closes; rate_limit lets about 'burst' through at once, then follows the
# rate; rejections are counted by reason; and after 1000 connections ended by every path (FIN,
# RST, refused, no route before the SYN, SYN timeout, process killed) no active count leaks.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world limits
command -v nft >/dev/null || vt_skip "nft is missing (Debian package nftables)"
command -v python3 >/dev/null || vt_skip "python3 is missing"

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: cb
    frontend: 198.19.0.20:80
    lb: round_robin
    backends: &three
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
    circuit_breaker: {max_connections: 3}
  - name: rl
    frontend: 198.19.0.21:80
    backends: *three
    rate_limit: {connections_per_second: 20, burst: 10}
  - name: leak
    frontend: 198.19.0.22:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
    circuit_breaker: {max_connections: 100}
  - name: refd
    frontend: 198.19.0.23:80
    backends:
      - address: 198.18.1.2:9
    circuit_breaker: {max_connections: 100}
  - name: unreach
    frontend: 198.19.0.24:80
    backends:
      - address: 198.18.9.9:80
    circuit_breaker: {max_connections: 100}
  - name: slow
    frontend: 198.19.0.25:80
    backends:
      - address: 198.18.1.4:8080
    circuit_breaker: {max_connections: 100}
    timeouts: {connect: 1s}
  - name: idle
    frontend: 198.19.0.26:7000
    backends: [{address: 198.18.1.2:7000}]
    timeouts: {idle: 2s}
  - name: noidle
    frontend: 198.19.0.27:7000
    backends: [{address: 198.18.1.2:7000}]
YAML
va_start "$cfg" || vt_finish

metric() { # metric NAME SELECTOR: the sum of the samples of NAME matching SELECTOR (grep -E)
	va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'
}
svc_active() { va_ctl -o json services "$1" | jq '.[0].active_connections'; }
out=$VT_TMP/out

# --- circuit breaker --------------------------------------------------------------------------
vt_client hold 198.19.0.20:80 -n 2 --seconds 6 >"$VT_TMP/hold2" &
h2=$!
vt_client hold 198.19.0.20:80 -n 1 --seconds 2 >"$VT_TMP/hold1" &
h1=$!
held() { [ "$(svc_active cb)" -eq 3 ]; }
vt_wait_until 3 held && vt_pass "circuit breaker: 3 connections held" ||
	vt_fail "held: $(svc_active cb) active"
vt_client refused 198.19.0.20:80 >"$out"
ms=$(awk '{ sub(/ms$/, "", $2); print $2 }' "$out")
vt_check "max_connections 3: the 4th connect() refused in ${ms} ms" -d 'cat "$out"' -- \
	eval 'grep -q "^ECONNREFUSED" "$out" && awk -v m="$ms" "BEGIN { exit !(m < 100) }"'
wait "$h1"
vt_client tcp 198.19.0.20:80 -n 1 >"$out" &&
	vt_pass "after one closed, a new connect succeeds" || vt_fail "after one closed: $(tr '\n' ' ' <"$out")"
wait "$h2"
[ "$(metric sluice_rejected_connections_total 'service="cb",reason="circuit_breaker"')" -eq 1 ] &&
	vt_pass "rejection counted under reason=\"circuit_breaker\"" ||
	vt_fail "cb metric: $(va_metrics | grep 'rejected_connections_total{service="cb"')"

# --- rate limit -------------------------------------------------------------------------------
# 30 connects at once: the burst (10) passes, plus what the rate (20/s) refills meanwhile.
vt_client tcp 198.19.0.21:80 -n 30 --timeout-ms 1000 >"$out"
ok=$(vt_value "$out" ok)
refused=$(vt_value "$out" 'errno ECONNREFUSED')
[ "$ok" -ge 10 ] && [ "$ok" -le 12 ] && [ $((ok + refused)) -eq 30 ] &&
	vt_pass "rate_limit burst 10: $ok of 30 at once admitted (want 10..12), $refused refused" ||
	vt_fail "burst: $(tr '\n' ' ' <"$out")"
# Then the rate: 2 s of attempts every 5 ms admit about 20/s x 2 s = 40 (tolerance 32..50:
# the loop's own timing and one refill at each end).
vt_client loop 198.19.0.21:80 --seconds 2 --interval-ms 5 --timeout-ms 1000 >"$out"
ok2=$(vt_value "$out" ok)
ref2=$(vt_value "$out" 'errno ECONNREFUSED')
[ "$ok2" -ge 32 ] && [ "$ok2" -le 50 ] &&
	vt_pass "rate_limit 20/s: $ok2 admitted over 2 s (want 32..50), $ref2 refused" ||
	vt_fail "rate: $(tr '\n' ' ' <"$out")"
rl=$(metric sluice_rejected_connections_total 'service="rl",reason="rate_limit"')
[ "$rl" -eq $((refused + ref2)) ] && vt_pass "rate_limit rejections counted: $rl" ||
	vt_fail "rl metric $rl, want $((refused + ref2))"

# --- no leak: 1000 connections ended by every path ----------------------------------------------
vt_client tcp 198.19.0.22:80 -n 400 >"$out" || vt_fail "FIN: $(tr '\n' ' ' <"$out")"
vt_client tcp 198.19.0.22:80 -n 300 --bind-port-base 21000 >"$out" ||
	vt_fail "RST: $(tr '\n' ' ' <"$out")"
vt_client tcp 198.19.0.23:80 -n 150 --timeout-ms 1000 >"$out"
[ "$(vt_value "$out" 'errno ECONNREFUSED')" -eq 150 ] || vt_fail "refused: $(tr '\n' ' ' <"$out")"
vt_client tcp 198.19.0.24:80 -n 100 --timeout-ms 1000 >"$out"
[ "$(vt_value "$out" 'errno ENETUNREACH')" -eq 100 ] || vt_fail "unreachable: $(tr '\n' ' ' <"$out")"
ip netns exec "$VT_ID-be3" nft -f - <<'NFT' || vt_fail "nft blackhole"
table inet vtbh {
	chain in {
		type filter hook input priority 0;
		tcp dport 8080 drop
	}
}
NFT
vt_client tcp 198.19.0.25:80 -n 3 --timeout-ms 5000 >"$out"
[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 3 ] || vt_fail "timeout: $(tr '\n' ' ' <"$out")"
ip netns exec "$VT_ID-be3" nft delete table inet vtbh || vt_fail "nft cleanup"
# 47 held by a process that is then killed
vt_client hold 198.19.0.22:80 -n 47 --seconds 30 >"$VT_TMP/hold47" &
hk=$!
vt_wait_until 5 grep -q 'holding 47' "$VT_TMP/hold47" || vt_fail "hold 47: $(cat "$VT_TMP/hold47")"
[ "$(svc_active leak)" -eq 47 ] && vt_pass "47 held connections counted active" ||
	vt_fail "leak active while holding: $(svc_active leak)"
pkill -KILL -P "$hk" 2>/dev/null
vt_cgroup_kill KILL "sl_client hold 198.19.0.22:80"
wait "$hk" 2>/dev/null

all_zero() {
	va_ctl -o json services | jq -e '[.[] | .active_connections, (.backends[].active_connections)] |
		all(. == 0)' >/dev/null
}
vt_check "after 1000 connections (400 FIN, 300 RST, 150 refused, 100 unreachable, 3 timed out, 47 killed) every active count is 0" \
	-d 'va_ctl -o json services | jq -c "[.[] | {name, active_connections, b: [.backends[].active_connections]}]"' -- \
	vt_wait_until 5 all_zero
rej=$(va_ctl -o json services | jq '[.[] | select(.name | test("leak|refd|unreach|slow")) | .rejected.circuit_breaker] | add')
[ "$rej" -eq 0 ] && vt_pass "no connection of those was refused by a leaked count" ||
	vt_fail "$rej circuit_breaker rejections in the leak services"

# --- timeouts.idle: keepalive ends an idle connection whose peer is gone -------------------------
(exec ip netns exec "$VT_ID-be1" "$VT_BIN/sl_xfer" serve --port 7000 --mode echo --seconds 60 \
	>"$VT_TMP/echo.log" 2>&1) &
vt_track_pid $!
sleep 0.3
# One echo round trip, then idle for 15 s (rt_hold.py sleeps its interval).
vt_in_cgroup python3 "$VT_ROOT/vmtests/tools/rt_hold.py" 198.19.0.26 7000 1 1 15000 \
	>"$VT_TMP/hold-idle" 2>&1 &
hi=$!
vt_in_cgroup python3 "$VT_ROOT/vmtests/tools/rt_hold.py" 198.19.0.27 7000 1 1 15000 \
	>"$VT_TMP/hold-noidle" 2>&1 &
hn=$!
both() { [ "$(svc_active idle)" -eq 1 ] && [ "$(svc_active noidle)" -eq 1 ]; }
vt_wait_until 5 both || vt_fail "idle holders: $(svc_active idle) $(svc_active noidle)"
# The backend vanishes: everything to and from its port 7000 is dropped in its netns.
ip netns exec "$VT_ID-be1" nft -f - <<'NFT' || vt_fail "nft blackhole"
table inet vtidle {
	chain in {
		type filter hook input priority 0;
		tcp dport 7000 drop
	}
}
NFT
t0=$(date +%s%N)
gone_idle() { [ "$(svc_active idle)" -eq 0 ]; }
if vt_wait_until 12 gone_idle; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	# keepalive: 2 s idle, then 3 probes 1 s apart (idle/10, at least 1 s)
	[ "$ms" -ge 3000 ] && [ "$(svc_active noidle)" -eq 1 ] &&
		vt_pass "timeouts.idle 2s: the dead idle connection ended after ${ms} ms (keepalive), the one without stays open" ||
		vt_fail "idle: ended after ${ms} ms, noidle active $(svc_active noidle)"
else
	vt_fail "timeouts.idle: the idle connection to a dead peer was never ended"
fi
ip netns exec "$VT_ID-be1" nft delete table inet vtidle || vt_fail "nft cleanup"
kill "$hi" "$hn" 2>/dev/null
vt_cgroup_kill TERM "rt_hold.py 198.19.0.2[67] 7000"
wait "$hi" "$hn" 2>/dev/null

va_stop
vt_finish
