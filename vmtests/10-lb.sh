#!/usr/bin/env bash
# Load balancing at connect()/sendmsg(): every lb spreads 300 connections over three
# backends, getpeername() and UDP replies show the VIP, IPv6 works, a service without
# backends refuses at once, and traffic to other addresses passes untouched.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world lb

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web-random
    frontend: 198.19.0.10:80
    lb: random
    backends: &three
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: web-rr
    frontend: 198.19.0.11:80
    lb: round_robin
    backends: *three
  - name: web-maglev
    frontend: 198.19.0.12:80
    lb: maglev
    backends: *three
  - name: web6
    frontend: "[2001:db8:f::10]:80"
    lb: maglev
    backends:
      - address: "[2001:db8:1::2]:8080"
      - address: "[2001:db8:1::3]:8080"
      - address: "[2001:db8:1::4]:8080"
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    backends: *three
  - name: dns6
    frontend: "[2001:db8:f::53]:53"
    protocol: udp
    backends:
      - address: "[2001:db8:1::3]:8080"
  - name: empty
    frontend: 198.19.0.99:80
YAML
va_start "$cfg" || vt_finish

for vip in 198.19.0.10:80 198.19.0.11:80 198.19.0.12:80; do
	out=$VT_TMP/tcp-$vip.out
	vt_check "$vip: 300 connections, none failed, getpeername() showed the VIP" -o "$out" -- \
		vt_client tcp "$vip" -n 300 --check-peer
	vt_counts_within "$out" 60 141 be1 be2 be3
done

out=$VT_TMP/tcp6.out
vt_check "IPv6 service: 300 connections via [2001:db8:f::10]:80" -o "$out" -- \
	vt_client tcp "[2001:db8:f::10]:80" -n 300 --check-peer
vt_counts_within "$out" 60 141 be1 be2 be3

# A dual-stack IPv6 socket that addresses an IPv4 VIP as ::ffff:a.b.c.d (as Java does).
out=$VT_TMP/mapped.out
vt_check "v4-mapped: 60 connections to [::ffff:198.19.0.12]:80, getpeername() showed it" -o "$out" -- \
	vt_client tcp "[::ffff:198.19.0.12]:80" -n 60 --check-peer
vt_counts_within "$out" 5 40 be1 be2 be3
for mode in "" --connected; do
	out=$VT_TMP/udpm$mode.out
	vt_check "v4-mapped UDP ${mode:-unconnected}: 20 replies, each from the VIP" -o "$out" -- \
		eval 'vt_client udp "[::ffff:198.19.0.53]:53" -n 20 $mode && [ "$(vt_value "$out" ok)" -eq 20 ]'
done

for mode in "" --connected; do
	out=$VT_TMP/udp$mode.out
	vt_check "UDP ${mode:-unconnected}: 60 replies, each from the VIP" -o "$out" -- \
		eval 'vt_client udp 198.19.0.53:53 -n 60 $mode && [ "$(vt_value "$out" ok)" -eq 60 ]'
	out=$VT_TMP/udp6$mode.out
	vt_check "UDP6 ${mode:-unconnected}: 20 replies from be2, each from the VIP" -o "$out" -- \
		eval 'vt_client udp "[2001:db8:f::53]:53" -n 20 $mode && [ "$(vt_value "$out" be2)" -eq 20 ]'
done

vt_check "no backend: connect() refused at once" -v -o "$VT_TMP/refused.out" -- \
	vt_client refused 198.19.0.99:80

out=$VT_TMP/direct.out
vt_check "traffic to a non-frontend address passes untouched" -o "$out" -- \
	eval 'vt_client tcp 198.18.1.3:8080 -n 20 --check-peer && [ "$(vt_value "$out" be2)" -eq 20 ]'

# The CLI reads the same picture out of the pinned maps.
json=$VT_TMP/services.json
if va_ctl -o json services web-maglev >"$json"; then
	total=$(jq '[.[0].backends[].connections_total] | add' "$json")
	keys=$(jq -c '.[0] | keys' "$json")
	bkeys=$(jq -c '.[0].backends[0] | keys' "$json")
	[ "$total" -eq 360 ] && vt_pass "sluicectl: web-maglev counted 360 connections (300 + 60 v4-mapped)" ||
		vt_fail "sluicectl: web-maglev counted $total connections, want 360"
	[ "$keys" = '["active_connections","backends","frontend","lb","name","protocol","rejected"]' ] &&
		vt_pass "sluicectl: service keys $keys" || vt_fail "sluicectl: service keys $keys"
	[ "$bkeys" = '["active_connections","address","connect_failures_total","connections_total","state","subset","weight","zone"]' ] &&
		vt_pass "sluicectl: backend keys $bkeys" || vt_fail "sluicectl: backend keys $bkeys"
else
	vt_fail "sluicectl services web-maglev: $(cat "$json")"
fi
rej=$(va_ctl services empty | sed -n 's/.*no_backend=\([0-9]*\).*/\1/p')
[ "${rej:-0}" -ge 1 ] && vt_pass "sluicectl: empty counted $rej no-backend rejections" ||
	vt_fail "sluicectl: empty shows no rejection"

vt_finish
