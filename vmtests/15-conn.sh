#!/usr/bin/env bash
# Per-connection behaviour: sockops counts active connections per backend up and back down;
# Maglev keeps a flow (fixed source port) on its backend across rebuilds, and removing one
# backend moves only the flows that were on it; Maglev weights shape the spread.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world conn

cfg=$VT_TMP/sluice.yaml
write_cfg() { # write_cfg BACKENDS_OF_MAGLEV...
	{
		cat <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
  - name: weighted
    frontend: 198.19.0.12:80
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
        weight: 1
      - address: 198.18.1.3:8080
        weight: 2
      - address: 198.18.1.4:8080
        weight: 5
  - name: hashed
    frontend: 198.19.0.11:80
    lb: maglev
    backends:
YAML
		for b in "$@"; do printf '      - address: %s\n' "$b"; done
	} | va_config "$cfg"
}
write_cfg 198.18.1.2:8080 198.18.1.3:8080 198.18.1.4:8080
va_start "$cfg" || vt_finish

# 1. Active connections, counted by sockops.
active() { va_ctl -o json services web | jq '[.[0].backends[].active_connections] | add'; }
total() { va_ctl -o json services web | jq '[.[0].backends[].connections_total] | add'; }
hold=$VT_TMP/hold.out
vt_client hold 198.19.0.10:80 -n 7 --seconds 3 >"$hold" &
hold_pid=$!
if vt_wait_until 2 grep -q '^holding 7' "$hold"; then
	n=$(active)
	[ "$n" -eq 7 ] && vt_pass "7 connections held: active_connections sums to 7" ||
		vt_fail "7 connections held: active_connections sums to $n"
	per=$(va_ctl -o json services web | jq -c '[.[0].backends[].active_connections]')
	[ "$per" = "[4,3]" ] || [ "$per" = "[3,4]" ] && vt_pass "round robin holds them as $per" ||
		vt_fail "active per backend $per"
else
	vt_fail "the client did not hold 7 connections: $(cat "$hold")"
fi
wait "$hold_pid"
at_zero() { [ "$(active)" -eq 0 ]; }
vt_wait_until 3 at_zero && vt_pass "after close, active_connections is back to 0" ||
	vt_fail "after close, active_connections is $(active)"
[ "$(total)" -eq 7 ] && vt_pass "connections_total is 7" || vt_fail "connections_total is $(total)"
out=$VT_TMP/refused-direct.out
vt_client tcp 198.18.1.2:8080 -n 3 >"$out"
[ "$(active)" -eq 0 ] && [ "$(total)" -eq 7 ] &&
	vt_pass "connections straight to a backend address are not counted" ||
	vt_fail "direct connections counted: active $(active), total $(total)"

# 2. Maglev: the same flow key maps to the same backend, and removal moves only its flows.
map_of() { awk '$1 == "port" { print $2, $3 }' "$1" | sort; }
vt_client tcp 198.19.0.11:80 -n 300 --bind-port-base 21000 --trace >"$VT_TMP/m1.out" ||
	vt_fail "maglev round 1: $(tail -8 "$VT_TMP/m1.out" | tr '\n' ' ')"
vt_client tcp 198.19.0.11:80 -n 300 --bind-port-base 21000 --trace >"$VT_TMP/m2.out" ||
	vt_fail "maglev round 2: $(tail -8 "$VT_TMP/m2.out" | tr '\n' ' ')"
vt_check "maglev: 300 flows (fixed source ports) landed on the same backends twice" \
	-d 'echo "$(diff <(map_of "$VT_TMP/m1.out") <(map_of "$VT_TMP/m2.out") | grep -c "^<") flows moved with nothing changed"' \
	-- [ "$(map_of "$VT_TMP/m1.out")" = "$(map_of "$VT_TMP/m2.out")" ]
vt_counts_within "$VT_TMP/m1.out" 60 141 be1 be2 be3

write_cfg 198.18.1.3:8080 198.18.1.4:8080
reloaded() { va_log_count_ge 'config applied' 2; }
vt_wait_until 3 reloaded || vt_fail "the reload that removes be1 did not happen"
vt_client tcp 198.19.0.11:80 -n 300 --bind-port-base 21000 --trace >"$VT_TMP/m3.out" ||
	vt_fail "maglev round 3: $(tail -8 "$VT_TMP/m3.out" | tr '\n' ' ')"
read -r stayed moved from_be1 < <(join <(map_of "$VT_TMP/m1.out") <(map_of "$VT_TMP/m3.out") |
	awk '$2 == "be1" { b++; next } $2 == $3 { s++; next } { m++ }
	     END { print s + 0, m + 0, b + 0 }')
[ "$(vt_value "$VT_TMP/m3.out" be1)" -eq 0 ] && vt_pass "after removal be1 gets no flow" ||
	vt_fail "be1 still got $(vt_value "$VT_TMP/m3.out" be1) flows"
vt_check "removing be1 moved its $from_be1 flows; of the other $((stayed + moved)), $moved moved (<= 5%: M = 509, README maglev)" \
	-d 'echo "$stayed stayed, $moved of the others moved, $from_be1 were on be1"' -- \
	eval '[ "$moved" -le 15 ] && [ $((stayed + moved + from_be1)) -eq 300 ]'

# 3. Maglev weights 1:2:5 over 800 connections; bounds are 4 sigma of the binomial.
out=$VT_TMP/weighted.out
vt_client tcp 198.19.0.12:80 -n 800 >"$out" || vt_fail "weighted: $(tr '\n' ' ' <"$out")"
vt_counts_within "$out" 63 137 be1
vt_counts_within "$out" 151 249 be2
vt_counts_within "$out" 445 555 be3
vt_finish
