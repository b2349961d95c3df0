#!/usr/bin/env bash
# Traffic management: every lb honours weights 1:2:5 over 1000 connections (within 4 sigma;
# round_robin within a few connections); a 90/10 split lands within 3% over 2000; a blue/green
# flip from 100/0 to 0/100 under a client loop fails nothing and moves every new connection;
# least_conn sends new connections to the least loaded backend; client affinity keeps a client
# on its backend while other clients spread.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world traffic

weighted() { # weighted NAME VIP LB
	printf '  - name: %s\n    frontend: %s\n    lb: %s\n    backends:\n' "$1" "$2" "$3"
	printf '      - {address: 198.18.1.2:8080, weight: 1}\n'
	printf '      - {address: 198.18.1.3:8080, weight: 2}\n'
	printf '      - {address: 198.18.1.4:8080, weight: 5}\n'
}
services() { # services BG-SPLIT LC-BACKENDS
	echo "services:"
	weighted w-random 198.19.0.30:80 random
	weighted w-rr 198.19.0.31:80 round_robin
	weighted w-maglev 198.19.0.32:80 maglev
	weighted w-lc 198.19.0.33:80 least_conn
	cat <<YAML
  - name: split
    frontend: 198.19.0.34:80
    backends:
      - {address: 198.18.1.2:8080, subset: v1}
      - {address: 198.18.1.3:8080, subset: v2}
    split: {v1: 90, v2: 10}
  - name: bg
    frontend: 198.19.0.35:80
    lb: round_robin
    backends:
      - {address: 198.18.1.2:8080, subset: blue}
      - {address: 198.18.1.3:8080, subset: green}
    split: $1
  - name: lc
    frontend: 198.19.0.36:80
    lb: least_conn
    backends:
$2
  - name: aff
    frontend: 198.19.0.37:80
    affinity: 30s
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
YAML
}
lc1='      - address: 198.18.1.2:8080'
lc2="$lc1"$'\n''      - address: 198.18.1.3:8080'
lc3="$lc2"$'\n''      - address: 198.18.1.4:8080'
cfg=$VT_TMP/sluice.yaml
services '{blue: 100, green: 0}' "$lc1" | va_config "$cfg"
va_start "$cfg" || vt_finish
out=$VT_TMP/out

# within NAME N EXPECTED TOL: N is EXPECTED +- TOL
within() {
	local n=$2 want=$3 tol=$4
	vt_check "$1: $n (want $want +- $tol)" -- \
		eval '[ "$n" -ge $((want - tol)) ] && [ "$n" -le $((want + tol)) ]'
}

# --- weights 1:2:5 over 1000 connections --------------------------------------------------------
# Expected 125, 250, 625; 4 sigma of a binomial(1000, p): 42, 55, 62.
for svc in w-random:198.19.0.30 w-maglev:198.19.0.32 w-lc:198.19.0.33; do
	name=${svc%%:*}
	# A short pause between connections lets each close before the next (least_conn sees
	# an idle service, so its ties spread by weight).
	vt_client loop "${svc#*:}:80" --seconds 20 --interval-ms 1 --max 1000 >"$out" ||
		vt_fail "$name: $(tr '\n' ' ' <"$out")"
	within "$name be1 (weight 1)" "$(vt_value "$out" be1)" 125 42
	within "$name be2 (weight 2)" "$(vt_value "$out" be2)" 250 55
	within "$name be3 (weight 5)" "$(vt_value "$out" be3)" 625 62
done
# round_robin walks a smooth weighted sequence (be3 be2 be3 be1 be3 be2 be3 be3) per CPU.
vt_client tcp 198.19.0.31:80 -n 1000 >"$out" || vt_fail "w-rr: $(tr '\n' ' ' <"$out")"
within "w-rr be1 (weight 1)" "$(vt_value "$out" be1)" 125 8
within "w-rr be2 (weight 2)" "$(vt_value "$out" be2)" 250 8
within "w-rr be3 (weight 5)" "$(vt_value "$out" be3)" 625 8

# --- split 90/10 over 2000 ------------------------------------------------------------------------
vt_client tcp 198.19.0.34:80 -n 2000 >"$out" || vt_fail "split: $(tr '\n' ' ' <"$out")"
within "split v2 (10% of 2000, +-3%)" "$(vt_value "$out" be2)" 200 60
[ "$(vt_value "$out" be3)" -eq 0 ] && vt_pass "split: only subset backends" ||
	vt_fail "split reached be3"

# --- blue/green flip under load -----------------------------------------------------------------
vt_client loop 198.19.0.35:80 --seconds 3 --interval-ms 3 --timeout-ms 2000 >"$out" &
loop=$!
sleep 1
services '{blue: 0, green: 100}' "$lc1" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
wait "$loop"
[ "$(vt_value "$out" fail)" -eq 0 ] && [ "$(vt_value "$out" be1)" -gt 0 ] &&
	[ "$(vt_value "$out" be2)" -gt 0 ] &&
	vt_pass "blue/green flip under load: $(vt_value "$out" ok) connections, none failed (blue $(vt_value "$out" be1), green $(vt_value "$out" be2))" ||
	vt_fail "flip: $(tr '\n' ' ' <"$out")"
va_log_has 'msg="service updated" service=bg' || vt_fail "the flip was not applied"
vt_client tcp 198.19.0.35:80 -n 100 >"$out"
[ "$(vt_value "$out" be2)" -eq 100 ] && vt_pass "after the flip every new connection is green" ||
	vt_fail "after the flip: $(tr '\n' ' ' <"$out")"

# --- least_conn: held connections --------------------------------------------------------------
# be1 alone takes 6 held connections; then be2 joins and takes the next 3 (be1 has 6); then be3
# joins: with be1 at 6 and be2 at 3 every new (short) connection goes to be3, then be2 is next.
vt_client hold 198.19.0.36:80 -n 6 --seconds 20 >"$VT_TMP/h6" &
h6=$!
vt_wait_until 5 grep -q 'holding 6' "$VT_TMP/h6" || vt_fail "hold 6: $(cat "$VT_TMP/h6")"
services '{blue: 0, green: 100}' "$lc2" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="service updated" service=lc' 1 || vt_fail "lc update 1"
vt_client hold 198.19.0.36:80 -n 3 --seconds 20 >"$VT_TMP/h3" &
h3=$!
vt_wait_until 5 grep -q 'holding 3' "$VT_TMP/h3" || vt_fail "hold 3: $(cat "$VT_TMP/h3")"
services '{blue: 0, green: 100}' "$lc3" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="service updated" service=lc' 2 || vt_fail "lc update 2"
per=$(va_ctl -o json services lc | jq -c '[.[0].backends[].active_connections]')
[ "$per" = "[6,3,0]" ] && vt_pass "least_conn: held connections went to the least loaded ($per)" ||
	vt_fail "least_conn held: $per"
vt_client loop 198.19.0.36:80 --seconds 10 --interval-ms 1 --max 30 >"$out"
[ "$(vt_value "$out" be3)" -eq 30 ] &&
	vt_pass "least_conn: 30 new connections all went to be3 (active 0)" ||
	vt_fail "least_conn new: $(tr '\n' ' ' <"$out")"
kill "$h6" "$h3" 2>/dev/null
vt_cgroup_kill TERM "sl_client hold 198.19.0.36:80"
wait "$h6" "$h3" 2>/dev/null

# --- affinity ------------------------------------------------------------------------------------
# Ten clients with their own addresses on the node (routed back to it by rtr).
for i in $(seq 101 110); do
	ip -n "$VT_ID-node" addr add "198.18.0.$i/32" dev lo || vt_fail "addr 198.18.0.$i"
done
ip -n "$VT_ID-rtr" route add 198.18.0.96/27 via 198.18.0.1 || vt_fail "route to the clients"
vt_client tcp 198.19.0.37:80 -n 50 --bind 198.18.0.101 >"$out" || vt_fail "aff: $(tr '\n' ' ' <"$out")"
[ "$(grep -cE '^be[0-9] ' "$out")" -eq 1 ] &&
	vt_pass "affinity: 50 connections from one client all reached $(awk '/^be/ { print $1 }' "$out")" ||
	vt_fail "affinity one client: $(tr '\n' ' ' <"$out")"
seen=""
for i in $(seq 101 110); do
	vt_client tcp 198.19.0.37:80 -n 10 --bind "198.18.0.$i" >"$out"
	[ "$(grep -cE '^be[0-9] ' "$out")" -eq 1 ] || vt_fail "client .$i spread: $(tr '\n' ' ' <"$out")"
	seen="$seen $(awk '/^be/ { print $1 }' "$out")"
done
distinct=$(tr ' ' '\n' <<<"$seen" | sort -u | grep -c .)
[ "$distinct" -ge 2 ] && vt_pass "affinity: each of 10 clients kept one backend; together they use $distinct backends ($seen)" ||
	vt_fail "affinity: 10 clients all on one backend ($seen)"

va_stop
vt_finish
