#!/usr/bin/env bash
# locality: prefer_zone. Two zones of two backends each, agent.zone z1: new connections go to
# z1's backends only (round_robin with unequal weights, maglev, and a split whose subsets each
# have one backend per zone); a service without locality still spreads over all four. When
# both z1 backends die, outlier detection ejects them after at most consecutive_failures
# failed connects each and traffic spills to z2; when they come back (and the ejection is
# over), traffic returns to z1 only. Draining both z1 backends spills too; undraining brings
# it back. sluicectl services shows each backend's zone; /metrics names the node.
# The ejection lasts 5 s: under TCG (make vmtest-kernels) a "down" second plus 300 connects take
# up to 2.4 s, and a 2 s ejection ran out in the middle of the "all to z2" check.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world zone
# z1: be1 198.18.1.2:8080, be2 198.18.1.3:8080; z2: be3 198.18.1.4:8080, be4 198.18.1.4:8081.
vt_server "$VT_ID-be3" be4 8081 || vt_finish

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
  node: vt-node-1
  zone: z1
services:
  - name: zrr
    frontend: 198.19.0.10:80
    lb: round_robin
    locality: prefer_zone
    backends:
      - {address: 198.18.1.4:8080, zone: z2}
      - {address: 198.18.1.2:8080, zone: z1, weight: 1}
      - {address: 198.18.1.4:8081, zone: z2}
      - {address: 198.18.1.3:8080, zone: z1, weight: 3}
    outlier_detection: {consecutive_failures: 2, base_ejection_time: 5s, max_ejection_percent: 50}
  - name: zmg
    frontend: 198.19.0.11:80
    lb: maglev
    locality: prefer_zone
    backends: &four
      - {address: 198.18.1.4:8080, zone: z2}
      - {address: 198.18.1.2:8080, zone: z1}
      - {address: 198.18.1.4:8081, zone: z2}
      - {address: 198.18.1.3:8080, zone: z1}
    outlier_detection: {consecutive_failures: 2, base_ejection_time: 5s, max_ejection_percent: 50}
  - name: zsp
    frontend: 198.19.0.12:80
    lb: random
    locality: prefer_zone
    split: {v1: 50, v2: 50}
    backends:
      - {address: 198.18.1.2:8080, zone: z1, subset: v1}
      - {address: 198.18.1.4:8080, zone: z2, subset: v1}
      - {address: 198.18.1.3:8080, zone: z1, subset: v2}
      - {address: 198.18.1.4:8081, zone: z2, subset: v2}
    outlier_detection: {consecutive_failures: 2, base_ejection_time: 5s, max_ejection_percent: 50}
  - name: plain
    frontend: 198.19.0.13:80
    lb: maglev
    backends: *four
YAML
va_start "$cfg" || vt_finish

# only_z1 FILE N: N replies in FILE, all from z1 (be1, be2), none failed.
only_z1() {
	[ "$(vt_value "$1" ok)" -eq "$2" ] && [ "$(vt_value "$1" fail)" -eq 0 ] &&
		[ $(($(vt_value "$1" be1) + $(vt_value "$1" be2))) -eq "$2" ]
}
only_z2() {
	[ "$(vt_value "$1" ok)" -eq "$2" ] && [ "$(vt_value "$1" fail)" -eq 0 ] &&
		[ $(($(vt_value "$1" be3) + $(vt_value "$1" be4))) -eq "$2" ]
}
show() { tr '\n' ' ' <"$1"; }

# --- all in z1 ---------------------------------------------------------------------------------
for svc in zrr:10 zmg:11 zsp:12; do
	out=$VT_TMP/${svc%%:*}-z1.out
	vt_check "${svc%%:*}: 1000 connects, all to z1" -d "show $out" -- \
		eval "vt_client tcp 198.19.0.${svc##*:}:80 -n 1000 >$out; only_z1 $out 1000"
done
# round_robin with weights 1:3 within the zone view (its own weighted sequence)
vt_counts_within "$VT_TMP/zrr-z1.out" 150 350 be1
vt_counts_within "$VT_TMP/zrr-z1.out" 650 850 be2
vt_counts_within "$VT_TMP/zmg-z1.out" 300 700 be1 be2
vt_counts_within "$VT_TMP/zsp-z1.out" 350 650 be1 be2
out=$VT_TMP/plain.out
vt_check "plain (no locality): 1000 connects, none failed" -o "$out" -- \
	vt_client tcp 198.19.0.13:80 -n 1000
vt_counts_within "$out" 150 350 be1 be2 be3 be4

# --- what sluicectl and /metrics say ---------------------------------------------------------
vt_check "sluicectl services shows each backend's zone" -d 'va_ctl services zrr' -- \
	eval 'va_ctl services zrr | grep -qE "198\.18\.1\.2:8080 .*zone=z1 " &&
		va_ctl services zrr | grep -qE "198\.18\.1\.4:8081 .*zone=z2 "'
vt_check "sluicectl -o json: each backend's zone" -d 'va_ctl -o json services zsp' -- \
	eval '[ "$(va_ctl -o json services zsp | jq -r "[.[0].backends[].zone] | join(\",\")")" = "z1,z2,z1,z2" ]'
vt_check "/metrics: sluice_node_info names the node and its zone" -d 'va_metrics | grep node_info' -- \
	eval 'va_metrics | grep -qx "sluice_node_info{node=\"vt-node-1\",zone=\"z1\"} 1"'
vt_check "the ready log line names the node" -- va_log_has 'msg="ready".* node=vt-node-1 zone=z1'

# --- z1 dies: spill to z2 after at most consecutive_failures failures per backend --------------
vt_server_stop be1
vt_server_stop be2
for svc in zrr:10 zmg:11 zsp:12; do
	name=${svc%%:*} out=$VT_TMP/${svc%%:*}-down.out
	vt_client loop "198.19.0.${svc##*:}:80" --seconds 1 --interval-ms 5 --timeout-ms 2000 >"$out"
	fails=$(vt_value "$out" fail)
	refused=$(vt_value "$out" 'errno ECONNREFUSED')
	vt_check "$name: z1 down: $fails failed connects (refused: $refused), at most 2 x 2" -d "show $out" -- \
		eval '[ "$fails" -le 4 ] && [ "$fails" -eq "$refused" ] && [ "$(vt_value "$out" ok)" -ge 20 ]'
	out=$VT_TMP/${svc%%:*}-z2.out
	vt_check "$name: z1 ejected: 300 connects, all to z2" -d "show $out" -- \
		eval "vt_client tcp 198.19.0.${svc##*:}:80 -n 300 >$out; only_z2 $out 300"
	# (round_robin gives a dead backend's turns to the next in its sequence: no even spread)
	[ "$name" = zrr ] || vt_counts_within "$out" 60 240 be3 be4
done

# --- z1 comes back: z1 only again, once the ejection is over ----------------------------------
vt_server "$VT_ID-be1" be1 8080 || vt_finish
vt_server "$VT_ID-be2" be2 8080 || vt_finish
back_in_z1() {
	vt_client tcp "198.19.0.$1:80" -n 20 >"$VT_TMP/probe.out"
	only_z1 "$VT_TMP/probe.out" 20
}
for svc in zrr:10 zmg:11 zsp:12; do
	name=${svc%%:*} out=$VT_TMP/${svc%%:*}-back.out
	vt_check "$name: z1 takes connections again within 10 s" -- vt_wait_until 10 back_in_z1 "${svc##*:}"
	vt_check "$name: z1 back: 1000 connects, all to z1" -d "show $out" -- \
		eval "vt_client tcp 198.19.0.${svc##*:}:80 -n 1000 >$out; only_z1 $out 1000"
done

# --- draining both z1 backends spills too; undraining brings traffic back ----------------------
va_ctl drain zmg 198.18.1.2:8080 >/dev/null && va_ctl drain zmg 198.18.1.3:8080 >/dev/null ||
	vt_fail "drain: $(va_ctl drain zmg 198.18.1.2:8080 2>&1)"
out=$VT_TMP/zmg-drained.out
vt_check "zmg: z1 drained: 300 connects, all to z2" -d "show $out" -- \
	eval "vt_client tcp 198.19.0.11:80 -n 300 >$out; only_z2 $out 300"
va_ctl undrain zmg 198.18.1.2:8080 >/dev/null && va_ctl undrain zmg 198.18.1.3:8080 >/dev/null ||
	vt_fail "undrain failed"
out=$VT_TMP/zmg-undrained.out
vt_check "zmg: z1 undrained: 300 connects, all to z1" -d "show $out" -- \
	eval "vt_client tcp 198.19.0.11:80 -n 300 >$out; only_z1 $out 300"

# --- agent.node in etcd: a lease-bound nodes/<node> key ----------------------------------------
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
	va_stop
	# etcd in the node netns, on its own 127.0.0.1
	(exec ip netns exec "$VT_ID-node" etcd --name s1 --data-dir "$VT_TMP/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster s1=http://127.0.0.1:2380 --initial-cluster-token "$VT_ID" \
		--initial-cluster-state new >>"$VT_TMP/etcd.log" 2>&1) &
	vt_track_pid $!
	ectl() { ip netns exec "$VT_ID-node" etcdctl --endpoints http://127.0.0.1:2379 "$@"; }
	vt_wait_until 10 ectl endpoint health >/dev/null 2>&1 || vt_fail "etcd did not start"
	printf 'registry:\n  etcd: {endpoints: ["http://127.0.0.1:2379"], prefix: /sluice/}\n' >>"$cfg"
	va_start "$cfg" || vt_finish
	node_key() { ectl get /sluice/nodes/vt-node-1 --print-value-only | grep -q .; }
	vt_check "etcd: the node's key appears" -- vt_wait_until 5 node_key
	vt_check "etcd: nodes/vt-node-1 names the node and its zone, on a lease" \
		-d 'ectl get /sluice/nodes/vt-node-1 -w json' -- \
		eval '[ "$(ectl get /sluice/nodes/vt-node-1 --print-value-only | jq -r ".node + \" \" + .zone")" = "vt-node-1 z1" ] &&
			[ "$(ectl get /sluice/nodes/vt-node-1 -w json | jq ".kvs[0].lease // 0")" != 0 ]'
	vt_check "etcd: the snapshot loader leaves nodes/ keys alone" -- ! va_log_has 'etcd key skipped'
	out=$VT_TMP/zmg-etcd.out
	vt_check "with etcd: zmg still all to z1" -d "show $out" -- \
		eval "vt_client tcp 198.19.0.11:80 -n 200 >$out; only_z1 $out 200"
else
	vt_log "etcd is missing: the nodes/ key is not checked"
fi

va_stop
vt_finish
