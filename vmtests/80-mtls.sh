#!/usr/bin/env bash
# Zero-trust transport between two nodes, each a netns with its own agent, bpffs, cgroup and
# config (README, "Zero-trust transport"):
#
#   ${VT_ID}-a  (node A: agent A, clients)   veth 198.18.50.1 <--> 198.18.50.2  ${VT_ID}-b
#   (node B: agent B, sl_xfer echo on :8080 and :8081)  198.18.51.1 <--> 198.18.51.2  ${VT_ID}-x
#   (outside the mesh). No default routes; the VIP range 198.19.0.0/16 is blackholed on A.
#
# Services (on both nodes): web (strict) -> 198.18.50.2:8080; perm (permissive) and web-off
# (mtls off) -> 198.18.50.2:8081 (B's TC drops plaintext to a strict service's backend). B's web denies identity batch. Caller identities on A:
# frontend, batch, and evil, whose certificate comes from another CA (A trusts it, B does not).
#
# (a) the wire, (b) integrity, (c) identity, (d) trust, (e) strict vs permissive,
# (f) rotation, (g) agent restart; TLS session resumption in (b) and (f). Each step is bounded
# in time; the trap cleans up.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
command -v tcpdump >/dev/null || vt_skip "no tcpdump (make deps)"
command -v openssl >/dev/null || vt_skip "no openssl (make deps)"
vt_init mtls
vt_cgroup || vt_finish
vt_bpffs
mkdir -p "$VT_BPFFS" || vt_finish
vt_require_tools || vt_finish

A=$VT_ID-a B=$VT_ID-b X=$VT_ID-x
XFER=$VT_ROOT/build/vmtests/sl_xfer
HOLD=$VT_ROOT/vmtests/tools/rt_hold.py
MARK=SLUICE-MTLS-MARKER-5c1e
declare -A APID=()

# --- the world -------------------------------------------------------------------------------
topology() {
	_vt_ns_add "$A" && _vt_ns_add "$B" && _vt_ns_add "$X" || return 1
	ip -n "$A" link add eth-b type veth peer name eth-a netns "$B" &&
		ip -n "$B" link add eth-x type veth peer name eth-b netns "$X" &&
		ip -n "$A" link set eth-b up && ip -n "$B" link set eth-a up &&
		ip -n "$B" link set eth-x up && ip -n "$X" link set eth-b up &&
		ip -n "$A" addr add 198.18.50.1/24 dev eth-b &&
		ip -n "$B" addr add 198.18.50.2/24 dev eth-a &&
		ip -n "$B" addr add 198.18.51.1/24 dev eth-x &&
		ip -n "$X" addr add 198.18.51.2/24 dev eth-b &&
		ip -n "$X" route add 198.18.50.0/24 via 198.18.51.1 &&
		ip -n "$A" route add blackhole 198.19.0.0/16 &&
		ip -n "$X" route add blackhole 198.19.0.0/16 || return 1
	_vt_sysctl "$B" net.ipv4.ip_forward 0
}
topology || {
	vt_fail "topology"
	vt_finish
}
for n in a b; do
	mkdir -p "$VT_CGROUP/$n" || vt_finish
done
for id in frontend batch evil; do
	mkdir -p "$VT_CGROUP/a/$id" || vt_finish
done

# Certificates: CA1 signs A's node and identities and B's node; evil's comes from CA2.
# A trusts both CAs (so it presents evil's), B only CA1.
HOST=$(hostname)
certs() {
	local c=$VT_TMP/certs
	# The CA lives apart from the watched directories: rotation signs with it again.
	tools/mkcerts.sh "$c/ca" sluice.test --no-node >"$VT_TMP/mkcerts.log" &&
		tools/mkcerts.sh "$c/a" sluice.test --ca-from "$c/ca" --node "$HOST" frontend batch >>"$VT_TMP/mkcerts.log" &&
		tools/mkcerts.sh "$c/b" sluice.test --ca-from "$c/ca" --node "$HOST" >>"$VT_TMP/mkcerts.log" &&
		tools/mkcerts.sh "$c/evil" sluice.test --no-node evil >>"$VT_TMP/mkcerts.log" &&
		cp "$c/evil/evil.pem" "$c/evil/evil.key" "$c/a/" &&
		cat "$c/ca/ca.pem" "$c/evil/ca.pem" >"$c/ca-a.pem" && cp "$c/ca/ca.pem" "$c/ca-b.pem"
}
(cd "$VT_ROOT" && certs) || {
	vt_fail "mkcerts"
	vt_finish
}

# config NODE: the agent config of node a or b.
config() {
	local n=$1 deny=""
	[ "$n" = b ] && deny="    policy: {default: allow, deny_from: [batch]}"
	va_node_agent "$n"
	cat <<EOF
  metrics: 127.0.0.1:9464
  interfaces: ["eth-*"]
identities:
  - {name: frontend, cgroups: [$VT_CGROUP/a/frontend]}
  - {name: batch, cgroups: [$VT_CGROUP/a/batch]}
  - {name: evil, cgroups: [$VT_CGROUP/a/evil]}
mtls:
  trust_domain: sluice.test
  ca: $VT_TMP/certs/ca-$n.pem
  certs: $VT_TMP/certs/$n
services:
  - name: web
    frontend: 198.19.0.10:80
    mtls: strict
    backends: [{address: 198.18.50.2:8080}]
$deny
  - name: web-off
    frontend: 198.19.0.12:80
    backends: [{address: 198.18.50.2:8081}]
  - name: perm
    frontend: 198.19.0.11:80
    mtls: permissive
    backends: [{address: 198.18.50.2:8081}]
EOF
}
config a >"$VT_TMP/a.yaml"
config b >"$VT_TMP/b.yaml"

# agent_start NODE: sluiced in that netns, waits for this start's "ready" (10 s).
declare -A STARTS=()
agent_start() {
	local n=$1 ns=$VT_ID-$1
	STARTS[$n]=$((${STARTS[$n]:-0} + 1))
	(exec nsenter --net="/run/netns/$ns" "$VA_SLUICED" -c "$VT_TMP/$n.yaml" \
		--log-level debug >>"$VT_TMP/agent-$n.log" 2>&1) &
	APID[$n]=$!
	vt_track_pid "${APID[$n]}"
	vt_wait_until 10 eval '[ "$(grep -c "msg=\"ready\"" "$VT_TMP/agent-$n.log")" -ge "${STARTS[$n]}" ]'
}
vt_on_cleanup va_nodes_teardown a b

# in_id ID CMD...: CMD in A's cgroup of identity ID and in netns A, bounded to 60 s.
in_id() {
	local id=$1
	shift
	(
		echo "$BASHPID" >"$VT_CGROUP/a/$id/cgroup.procs" || exit 2
		exec timeout -k 2 60 ip netns exec "$A" "$@"
	)
}
metrics() { nsenter --net="/run/netns/$VT_ID-$1" curl -q -sf --max-time 5 http://127.0.0.1:9464/metrics; }
api_mtls() { curl -q -sf --max-time 5 --unix-socket "$VT_TMP/$1.sock" http://localhost/v1/mtls; }
# counted NODE DIR RESULT [SERVICE]: sluice_mtls_connections_total of that series, 0 if none.
counted() {
	metrics "$1" | awk -v d="$2" -v r="$3" -v s="${4-}" '
		$1 ~ /^sluice_mtls_connections_total\{/ && index($1, "direction=\"" d "\"") &&
		index($1, "result=\"" r "\"") && (s == "-" || index($1, "service=\"" s "\"")) { n += $2 }
		END { print n + 0 }'
}

ip netns exec "$B" "$XFER" serve --port 8080 --mode echo --seconds 300 >"$VT_TMP/echo.log" 2>&1 &
vt_track_pid $!
ip netns exec "$B" "$XFER" serve --port 8081 --mode echo --seconds 300 >"$VT_TMP/echo2.log" 2>&1 &
vt_track_pid $!
agent_start b || vt_fail "agent B did not become ready: $(tail -n 3 "$VT_TMP/agent-b.log")"
agent_start a || vt_fail "agent A did not become ready: $(tail -n 3 "$VT_TMP/agent-a.log")"
[ "$VT_FAILS" -eq 0 ] || vt_finish
vt_check "agent A: frontend's certificate valid, evil's too (A trusts both CAs)" -- \
	eval 'api_mtls a | jq -e "[.certificates[] | select(.valid)] | map(.name) | index(\"frontend\") != null and index(\"evil\") != null" >/dev/null'
vt_check "sluicectl status shows the certificates" -o "$VT_TMP/status.txt" -- \
	eval 'nsenter --net=/run/netns/$A "$VA_SLUICECTL" --bpffs "$VT_BPFFS/a" --api "$VT_TMP/a.sock" status | grep -E "identity +frontend +valid +expires"'

# --- (a) the wire -----------------------------------------------------------------------------
# 10 MiB whose every 4 KiB carries the marker, echoed back; a capture on B's link to A.
yes "$MARK" | head -c 10485760 >"$VT_TMP/marker.bin"
capture() { # capture VIP FILE: 10 MiB through VIP while tcpdump writes B's side to FILE
	ip netns exec "$B" timeout 30 tcpdump -i eth-a -s 0 -U -w "$2" tcp >/dev/null 2>&1 &
	local cap=$!
	sleep 1
	in_id frontend "$XFER" send "$1:80" --file "$VT_TMP/marker.bin" >"$VT_TMP/wire.out"
	local rc=$?
	sleep 0.5
	kill -INT "$cap" 2>/dev/null
	wait "$cap" 2>/dev/null
	cmp -s "$VT_TMP/marker.bin" "$VT_TMP/wire.out" && [ "$rc" -eq 0 ]
}
vt_check "(a) 10 MiB through strict web arrive unchanged" -- capture 198.19.0.10 "$VT_TMP/strict.pcap"
vt_check "(a) strict: the capture never has the marker" -- ! grep -qa "$MARK" "$VT_TMP/strict.pcap"
vt_check "(a) strict: the capture has TLS application data records on port 15008" -- \
	eval '[ "$(tcpdump -r "$VT_TMP/strict.pcap" -nn -x "tcp port 15008 and tcp[((tcp[12] & 0xf0) >> 2):2] = 0x1703" 2>/dev/null | grep -c "^[0-9]")" -gt 10 ]'
vt_check "(a) mtls off: the same transfer" -- capture 198.19.0.12 "$VT_TMP/off.pcap"
vt_check "(a) mtls off: the capture has the marker (the check can fail)" -- grep -qa "$MARK" "$VT_TMP/off.pcap"

# --- (b) integrity ----------------------------------------------------------------------------
for s in 0 1 65536 67108864; do
	head -c "$s" /dev/urandom >"$VT_TMP/in-$s.bin"
done
xfer() { # xfer SIZE TAG: send through strict web, sha256 of what came back equals the input
	in_id frontend "$XFER" send 198.19.0.10:80 --file "$VT_TMP/in-$1.bin" >"$VT_TMP/out-$2.bin" &&
		[ "$(sha256sum <"$VT_TMP/in-$1.bin")" = "$(sha256sum <"$VT_TMP/out-$2.bin")" ]
}
pids=()
for s in 0 1 65536 67108864; do
	xfer "$s" "$s" &
	pids+=($!)
done
i=0
for s in 0 1 65536 67108864; do
	vt_check "(b) $s bytes each way at once, sha256-exact, half-close carried" -- wait "${pids[$i]}"
	i=$((i + 1))
done
conc() {
	local p=() k bad=0
	for ((k = 0; k < 100; k++)); do
		xfer 65536 "c$k" &
		p+=($!)
	done
	for k in "${p[@]}"; do wait "$k" || bad=$((bad + 1)); done
	echo "failed $bad"
	[ "$bad" -eq 0 ]
}
vt_check "(b) 100 concurrent 64 KiB transfers, sha256-exact" -o "$VT_TMP/conc.txt" -v -- conc

# resumed NODE DIR: sluice_mtls_resumed_total{direction=DIR} on NODE's agent, 0 if none.
resumed() {
	metrics "$1" | awk -v d="$2" '$1 ~ /^sluice_mtls_resumed_total\{/ &&
		index($1, "direction=\"" d "\"") { n += $2 } END { print n + 0 }'
}
# Tickets from the tunnels above are kept per peer: three more in a row all resume.
ra=$(resumed a outbound)
rb=$(resumed b inbound)
for k in 1 2 3; do xfer 1 "resume-$k" || vt_fail "(b) transfer resume-$k failed"; done
vt_check "(b) tunnels in a row resume a TLS session: A and B count 3 more" \
	-d 'echo "A outbound $ra -> $(resumed a outbound), B inbound $rb -> $(resumed b inbound)"' -- \
	eval '[ "$(resumed a outbound)" -ge $((ra + 3)) ] && [ "$(resumed b inbound)" -ge $((rb + 3)) ]'

# --- (c) identity -----------------------------------------------------------------------------
vt_check "(c) frontend is allowed by B's policy" -- xfer 1 ok-frontend
batch() { in_id batch "$XFER" send 198.19.0.10:80 --file "$VT_TMP/in-65536.bin" >"$VT_TMP/batch.out" 2>&1; }
vt_check "(c) batch is denied by B's policy, decided from its certificate" -- ! batch
vt_check "(c) B's audit log has point=mtls, identity batch" -- \
	vt_wait_until 3 eval 'grep "\"point\":\"mtls\"" "$VT_TMP/audit-b.log" | grep -q "\"identity\":\"batch\""'
vt_check "(c) B counts result=denied for web" -- eval '[ "$(counted b inbound denied web)" -ge 1 ]'

# --- (d) trust --------------------------------------------------------------------------------
evil() { in_id evil "$XFER" send 198.19.0.10:80 --file "$VT_TMP/in-65536.bin" >"$VT_TMP/evil.out" 2>"$VT_TMP/evil.err"; }
vt_check "(d) a caller whose certificate comes from another CA fails" -d 'cat "$VT_TMP/evil.err"' -- ! evil
vt_check "(d) the application saw a reset or refusal" -v -o "$VT_TMP/evil.why" -- \
	grep -oiE 'reset|refused|EOF|short' "$VT_TMP/evil.err"
vt_check "(d) B counts result=handshake_failed" -- eval '[ "$(counted b inbound handshake_failed -)" -ge 1 ]'
vt_check "(d) A counts result=handshake_failed" -- eval '[ "$(counted a outbound handshake_failed -)" -ge 1 ]'

# --- (e) strict vs permissive, plaintext from outside the mesh --------------------------------
plain() { ip netns exec "$X" timeout 4 "$XFER" send "198.18.50.2:$1" --file "$VT_TMP/in-1.bin" >"$VT_TMP/plain.out" 2>&1; }
vt_check "(e) plaintext from outside to a strict service's backend is dropped" -- ! plain 8080
vt_check "(e) plaintext from outside to a permissive service's backend is served" -- plain 8081
vt_check "(e) a permissive service from frontend goes through the tunnel" -- \
	eval 'in_id frontend "$XFER" send 198.19.0.11:80 --file "$VT_TMP/in-65536.bin" | cmp -s - "$VT_TMP/in-65536.bin"'

# --- (f) rotation -----------------------------------------------------------------------------
serial() { api_mtls "$1" | jq -r ".certificates[] | select(.name == \"$2\") | .serial"; }
old_fe=$(serial a frontend)
in_id frontend python3 "$HOLD" 198.19.0.10 80 10 8 >"$VT_TMP/hold.txt" 2>&1 &
hold=$!
vt_wait_until 5 grep -q ready "$VT_TMP/hold.txt" || vt_fail "(f) 10 held connections did not open"
loop() {
	local k bad=0
	for ((k = 0; k < 40; k++)); do
		xfer 65536 "loop" || bad=$((bad + 1))
		sleep 0.1
	done
	echo "failed $bad"
	[ "$bad" -eq 0 ]
}
loop >"$VT_TMP/loop.txt" &
lp=$!
sleep 1
rotate_all() {
	local c=$VT_TMP/certs t=$VT_TMP/certs/new
	(cd "$VT_ROOT" && tools/mkcerts.sh "$t/a" sluice.test --ca-from "$c/ca" --node "$HOST" frontend batch &&
		tools/mkcerts.sh "$t/b" sluice.test --ca-from "$c/ca" --node "$HOST") >>"$VT_TMP/mkcerts.log" || return 1
	for f in frontend.pem frontend.key batch.pem batch.key node.pem node.key; do
		mv -f "$t/a/$f" "$c/a/$f" || return 1
	done
	mv -f "$t/b/node.pem" "$c/b/node.pem" && mv -f "$t/b/node.key" "$c/b/node.key"
}
vt_check "(f) every certificate replaced (new serials from the same CA)" -- rotate_all
vt_check "(f) agent A loaded the new frontend certificate" -d 'echo "old $old_fe now $(serial a frontend)"' -- \
	vt_wait_until 5 eval '[ -n "$(serial a frontend)" ] && [ "$(serial a frontend)" != "$old_fe" ]'
new_fe=$(serial a frontend)
new_nb=$(serial b "$HOST")
wait "$lp"
vt_check "(f) the client loop through the rotation: 0 failures" -d 'cat "$VT_TMP/loop.txt"' -- \
	grep -q 'failed 0' "$VT_TMP/loop.txt"
wait "$hold"
vt_check "(f) 10 held connections survived the rotation" -v -o "$VT_TMP/hold.res" -- \
	eval 'tail -n 2 "$VT_TMP/hold.txt" | tr "\n" " "; grep -q "failed 0" "$VT_TMP/hold.txt"'
xfer 1 after-rotation
vt_check "(f) a new connection presents the new serial (B saw frontend's, A saw B's node's)" \
	-d 'echo "want $new_fe/$new_nb, got $(api_mtls b | jq -c .last_peer_serial) $(api_mtls a | jq -c .last_peer_serial)"' -- \
	eval '[ "$(api_mtls b | jq -r .last_peer_serial.inbound)" = "$new_fe" ] && [ "$(api_mtls a | jq -r .last_peer_serial.outbound)" = "$new_nb" ]'

r0=$(resumed b inbound)
xfer 1 after-rotation-2
xfer 1 after-rotation-3
vt_check "(f) after the rotation tunnels resume again, with the new certificates" \
	-d 'echo "resumed $r0 -> $(resumed b inbound); $(api_mtls b | jq -c .last_peer_serial) $(api_mtls a | jq -c .last_peer_serial)"' -- \
	eval '[ "$(resumed b inbound)" -gt "$r0" ] && [ "$(api_mtls b | jq -r .last_peer_serial.inbound)" = "$new_fe" ] && [ "$(api_mtls a | jq -r .last_peer_serial.outbound)" = "$new_nb" ]'

# --- (g) agent restart ------------------------------------------------------------------------
# Open tunnels are held by agent A's relay thread: kill -9 takes their sockets with it, so the
# application sees its connection end (EOF or reset); nothing else carries them.
in_id frontend python3 "$HOLD" 198.19.0.10 80 2 6 >"$VT_TMP/hold2.txt" 2>&1 &
hold=$!
vt_wait_until 5 grep -q ready "$VT_TMP/hold2.txt" || vt_fail "(g) held connections did not open"
kill -KILL "${APID[a]}"
wait "${APID[a]}" 2>/dev/null
wait "$hold"
vt_check "(g) kill -9: the open tunnels die with the agent (the application sees them fail)" \
	-v -o "$VT_TMP/hold2.res" -- eval 'tail -n 1 "$VT_TMP/hold2.txt"; ! grep -q "failed 0" "$VT_TMP/hold2.txt"'
agent_start a || vt_fail "(g) agent A did not restart"
t0=$(date +%s%N)
firstok() { xfer 1 restart; }
vt_check "(g) a new connection works within 1 s of the restart" -- vt_wait_until 1 firstok
vt_log "(g) first connection after the restart: $((($(date +%s%N) - t0) / 1000000)) ms"
vt_finish
