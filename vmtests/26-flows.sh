#!/usr/bin/env bash
# TC flow metrics through the agent: programs on the interfaces agent.interfaces names
# (also one created later), per-interface counters in /metrics, `sluicectl flows` with the
# service and backend of each flow, and --teardown removing the filters.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world flows

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
  interfaces: [vt-*]
services:
  - name: web
    frontend: 198.19.0.10:80
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    backends:
      - address: 198.18.1.4:8080
YAML
va_start "$cfg" || vt_finish
has_filter() { vt_node tc filter show dev "$1" "$2" 2>/dev/null | grep -q sluice_tc; }
has_filter vt-rtr ingress && has_filter vt-rtr egress &&
	vt_pass "vt-rtr has the ingress and egress programs" || vt_fail "no filters on vt-rtr"

metric() { va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'; }
p0=$(metric sluice_interface_packets_total 'interface="vt-rtr",direction="egress"')
b0=$(metric sluice_interface_bytes_total 'interface="vt-rtr",direction="egress"')
vt_client udp 198.19.0.53:53 -n 50 >"$VT_TMP/udp.out" || vt_fail "udp: $(cat "$VT_TMP/udp.out")"
vt_client tcp 198.19.0.10:80 -n 20 >"$VT_TMP/tcp.out" || vt_fail "tcp: $(cat "$VT_TMP/tcp.out")"
p1=$(metric sluice_interface_packets_total 'interface="vt-rtr",direction="egress"')
b1=$(metric sluice_interface_bytes_total 'interface="vt-rtr",direction="egress"')
# 50 UDP queries of 5 bytes leave as 47-byte frames (14 Ethernet + 20 IPv4 + 8 UDP + 5); each of
# the 20 TCP connections sends 3 to 6 segments of 66 bytes (74 for the SYN), +10 frames of
# ARP/ND noise at most.
dp=$((p1 - p0))
db=$((b1 - b0))
vt_check "egress packets on vt-rtr grew by $dp (50 UDP + 3..6 per TCP connection)" -- \
	eval '[ "$dp" -ge $((50 + 20 * 3)) ] && [ "$dp" -le $((50 + 20 * 6 + 10)) ]'
lo=$((50 * 47 + 20 * (74 + 2 * 66)))
hi=$((50 * 47 + 20 * (74 + 5 * 66) + 10 * 128))
[ "$db" -ge "$lo" ] && [ "$db" -le "$hi" ] && vt_pass "egress bytes grew by $db, in [$lo, $hi]" ||
	vt_fail "egress bytes grew by $db, not in [$lo, $hi]"

json=$VT_TMP/flows.json
va_ctl -o json flows --service dns >"$json" || vt_fail "flows --service dns: $(cat "$json")"
# Each query comes from a new socket, so usually from a new port; two sockets can draw the same
# ephemeral port, and their datagrams then share one 5-tuple. Count packets, not entries.
read -r n out in < <(jq -r '[.[] | select(.interface == "vt-rtr")] |
	"\(length) \([.[].packets_out] | add) \([.[].packets_in] | add)"' "$json")
vt_check "flows --service dns: $n flows on vt-rtr carrying 50 packets each way" \
	-d 'echo "$out packets out, $in in"' -- eval '[ "$n" -ge 45 ] && [ "$out" -eq 50 ] && [ "$in" -eq 50 ]'
bad=$(jq '[.[] | select(.interface == "vt-rtr" and (.state != "replied" or .backend != "198.18.1.4:8080" or .packets_out != .packets_in or .bytes_out != 47 * .packets_out))] | length' "$json")
[ "$bad" -eq 0 ] && vt_pass "each dns flow: replied, backend 198.18.1.4:8080, 47-byte queries, one reply each" ||
	vt_fail "$bad dns flows look wrong: $(jq -c '.[0]' "$json")"
va_ctl -o json flows --service web >"$json"
n=$(jq '[.[] | select(.interface == "vt-rtr" and .state == "closed")] | length' "$json")
[ "$n" -eq 20 ] && vt_pass "flows --service web: 20 closed TCP flows" || vt_fail "flows --service web: $n closed flows"
va_ctl flows >"$VT_TMP/flows.txt" && grep -q "web" "$VT_TMP/flows.txt" &&
	vt_pass "flows table names the service" || vt_fail "flows table: $(head -3 "$VT_TMP/flows.txt")"
va_ctl flows --service nope >/dev/null 2>&1
[ $? -eq 1 ] && vt_pass "flows of an unknown service: exit 1" || vt_fail "flows --service nope did not exit 1"

# An interface that appears later gets the programs too.
vt_node ip link add vt-late0 type veth peer name vt-late1
vt_node ip link set vt-late0 up
vt_node ip link set vt-late1 up
late() { has_filter vt-late0 ingress && has_filter vt-late0 egress; }
vt_wait_until 2 late && vt_pass "vt-late0, created after the start, got the programs" ||
	vt_fail "vt-late0 has no filters"

va_stop TERM
has_filter vt-rtr ingress && vt_pass "after SIGTERM the filters stay" || vt_fail "SIGTERM removed the filters"
# In the agent's netns: TC filters belong to the interfaces of a netns.
vt_node "$VA_SLUICED" -c "$cfg" --teardown >"$VT_TMP/teardown.log" 2>&1 || vt_fail "teardown: $(cat "$VT_TMP/teardown.log")"
vt_check "--teardown removed every filter" -d 'echo "filters left"' -- \
	eval '! has_filter vt-rtr ingress && ! has_filter vt-rtr egress && ! has_filter vt-late0 ingress'
vt_finish
