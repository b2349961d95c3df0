#!/usr/bin/env bash
# The etcd registry: two nodes (A, B), each with its own agent, cgroup, pins and API socket, and
# a real etcd in its own netns, all behind the router. Both agents load the file service web and
# follow etcd. A registration through node A's API reaches clients on node B within 1 s and is
# in etcd; with etcd stopped both nodes keep serving their last state (the registration
# included) and log it, even across a restart of B's agent, and an API write on node B answers without hanging; changes made with
# etcdctl while etcd is out of the nodes' reach (deregister be3, register be2) converge on both
# nodes once it is reachable again, and so does B's write; a 3s TTL registration without
# heartbeats disappears from both nodes when its lease expires; bad keys in etcd (a value that
# is not JSON, a backend of a service no node has) are skipped and logged on both nodes while a
# good key written after them applies.
#
#   ${VT_ID}-node  198.18.0.1/30 <-> rtr 198.18.0.2    (node A: va_* agent, vt_client)
#   ${VT_ID}-nodeb 198.18.0.5/30 <-> rtr 198.18.0.6    (node B: vb_* agent, vb_client)
#   ${VT_ID}-etcd  198.18.0.9/30 <-> rtr 198.18.0.10   (etcd on :2379, and 127.0.0.1:2379)
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
	vt_skip "etcd is missing (Debian: etcd-server and etcd-client; make deps installs them)"
command -v jq >/dev/null || vt_skip "jq is missing"
VT_CLIENT_TIMEOUT=20
vt_world etcd
vt_require_tools || vt_finish

NB=$VT_ID-nodeb
NE=$VT_ID-etcd
ETCD_URL=http://198.18.0.9:2379
VIP=198.19.0.70:80
P=/sluice/ # the etcd prefix

# --- nodes B and etcd: netns, links, routes ----------------------------------------------------
topology_more() {
	local rtr=$VT_ID-rtr ok=1
	{ _vt_ns_add "$NB" && _vt_ns_add "$NE"; } || return 1
	_vt_run ip -n "$NB" link add vt-rtr type veth peer name vt-nodeb netns "$rtr" || ok=0
	_vt_run ip -n "$NE" link add vt-rtr type veth peer name vt-etcd netns "$rtr" || ok=0
	_vt_run ip -n "$rtr" link set vt-nodeb up || ok=0
	_vt_run ip -n "$rtr" link set vt-etcd up || ok=0
	_vt_run ip -n "$NB" link set vt-rtr up || ok=0
	_vt_run ip -n "$NE" link set vt-rtr up || ok=0
	_vt_run ip -n "$rtr" addr add 198.18.0.6/30 dev vt-nodeb || ok=0
	_vt_run ip -n "$rtr" addr add 198.18.0.10/30 dev vt-etcd || ok=0
	# node B: like node A, no default route, the VIP ranges blackholed
	_vt_run ip -n "$NB" addr add 198.18.0.5/30 dev vt-rtr || ok=0
	_vt_run ip -n "$NB" route add 198.18.1.0/24 via 198.18.0.6 || ok=0
	_vt_run ip -n "$NB" route add 198.18.0.8/30 via 198.18.0.6 || ok=0
	_vt_run ip -n "$NB" route add blackhole 198.19.0.0/16 || ok=0
	_vt_run ip -n "$NB" -6 route add blackhole 2001:db8:f::/48 || ok=0
	# etcd: answers the nodes only
	_vt_run ip -n "$NE" addr add 198.18.0.9/30 dev vt-rtr || ok=0
	_vt_run ip -n "$NE" route add 198.18.0.0/22 via 198.18.0.10 || ok=0
	_vt_run ip -n "$NE" route add blackhole 198.19.0.0/16 || ok=0
	# node A reaches etcd
	_vt_run ip -n "$VT_ID-node" route add 198.18.0.8/30 via 198.18.0.2 || ok=0
	[ "$ok" -eq 1 ]
}
topology_more || {
	vt_fail "topology: node B and etcd netns"
	vt_finish
}

# --- etcd ---------------------------------------------------------------------------------------
ETCD_PID=
etcd_healthy() {
	vt_node curl -q -sf --max-time 1 "$ETCD_URL/health" 2>/dev/null | grep -q '"health": *"true"'
}
etcd_healthy_local() {
	ip netns exec "$NE" curl -q -sf --max-time 1 http://127.0.0.1:2379/health 2>/dev/null |
		grep -q '"health": *"true"'
}
# etcd_start [local]: in the etcd netns, on $VT_TMP/etcd (kept across restarts); waits for
# health (10 s). "local": listening on the netns's 127.0.0.1 only, out of the nodes' reach.
etcd_start() {
	local urls=http://198.18.0.9:2379,http://127.0.0.1:2379 adv=$ETCD_URL ok=etcd_healthy
	if [ "${1:-}" = local ]; then
		urls=http://127.0.0.1:2379 adv=http://127.0.0.1:2379 ok=etcd_healthy_local
	fi
	(exec ip netns exec "$NE" etcd --name s1 --data-dir "$VT_TMP/etcd" \
		--listen-client-urls "$urls" --advertise-client-urls "$adv" \
		--listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster s1=http://127.0.0.1:2380 --initial-cluster-token "$VT_ID" \
		--initial-cluster-state new >>"$VT_TMP/etcd.log" 2>&1) &
	ETCD_PID=$!
	vt_track_pid "$ETCD_PID"
	vt_wait_until 10 "$ok"
}
etcd_stop() {
	[ -n "$ETCD_PID" ] || return 0
	kill -TERM "$ETCD_PID" 2>/dev/null
	wait "$ETCD_PID" 2>/dev/null
	_vt_untrack_pid "$ETCD_PID"
	ETCD_PID=
}
# ectl ARGS: etcdctl against etcd from node A's netns, bounded. ectl_local: from etcd's own
# netns to its 127.0.0.1.
ectl() {
	vt_node timeout -k 1 10 etcdctl --endpoints "$ETCD_URL" --dial-timeout 2s \
		--command-timeout 3s "$@"
}
ectl_local() {
	ip netns exec "$NE" timeout -k 1 10 etcdctl --endpoints http://127.0.0.1:2379 \
		--dial-timeout 2s --command-timeout 3s "$@"
}

# --- node B's agent -------------------------------------------------------------------------------
VB_CGROUP=$(dirname "$VT_CGROUP")/$VT_ID-b
VB_BPFFS=/sys/fs/bpf/$VT_ID-b
VB_SOCK=$VT_TMP/b.sock
VB_LOG=$VT_TMP/agent-b.log
VB_CONFIG=
VB_PID=
VB_STARTS=0
mkdir "$VB_CGROUP" || {
	vt_fail "mkdir $VB_CGROUP"
	vt_finish
}

# Node B's cleanup, pass or fail; registered after agent.sh's (A's), so it runs before it.
_vb_cleanup() {
	local d p i parent
	[ -n "$VB_PID" ] && kill -TERM "$VB_PID" 2>/dev/null && wait "$VB_PID" 2>/dev/null
	VB_PID=
	if [ -n "$VB_CONFIG" ] && [ -f "$VB_CONFIG" ]; then
		if [ -e "/run/netns/$NB" ]; then
			nsenter --net="/run/netns/$NB" "$VA_SLUICED" -c "$VB_CONFIG" --teardown >/dev/null 2>&1
		else
			"$VA_SLUICED" -c "$VB_CONFIG" --teardown >/dev/null 2>&1
		fi
	fi
	VB_CONFIG=
	if [ -n "$VB_CGROUP" ] && [ -d "$VB_CGROUP" ]; then
		parent=$(dirname "$VB_CGROUP")
		while read -r d; do
			for ((i = 0; i < 20; i++)); do
				while read -r p; do
					echo "$p" >"$parent/cgroup.procs"
				done <"$d/cgroup.procs"
				rmdir "$d" 2>/dev/null && break
				sleep 0.1
			done
			[ -d "$d" ] && echo "41-etcd: could not remove cgroup $d" >&2
		done < <(find "$VB_CGROUP" -depth -type d 2>/dev/null)
	fi
	VB_CGROUP=
	if [ -n "$VB_BPFFS" ] && [ "$VB_BPFFS" = "/sys/fs/bpf/$VT_ID-b" ] && [ -e "$VB_BPFFS" ]; then
		rm -rf -- "$VB_BPFFS" || echo "41-etcd: could not remove $VB_BPFFS" >&2
	fi
	VB_BPFFS=
	return 0
}
vt_on_cleanup _vb_cleanup

vb_config() {
	local file=$1
	{
		printf 'agent:\n  cgroup: %s\n  bpffs: %s\n  api: %s\n  state: %s\n  audit_log: %s\n' \
			"$VB_CGROUP" "$VB_BPFFS" "$VB_SOCK" "$VT_TMP/state-b" "$VT_TMP/audit-b.log"
		cat
	} >"$file"
}
vb_log_count_ge() {
	local n
	n=$(grep -cE "$1" "$VB_LOG" 2>/dev/null)
	[ "${n:-0}" -ge "$2" ]
}
vb_log_has() { grep -qE "$1" "$VB_LOG" 2>/dev/null; }
vb_start() {
	VB_STARTS=$((VB_STARTS + 1))
	(exec nsenter --net="/run/netns/$NB" "$VA_SLUICED" -c "$VB_CONFIG" \
		--log-level "${VA_LOG_LEVEL:-info}" >>"$VB_LOG" 2>&1) &
	VB_PID=$!
	vt_track_pid "$VB_PID"
	if ! vt_wait_until 10 vb_log_count_ge 'msg="ready"' "$VB_STARTS"; then
		vt_fail "node B's sluiced did not become ready (log: $VB_LOG)"
		return 1
	fi
}
vb_stop() {
	[ -n "$VB_PID" ] || return 0
	kill -TERM "$VB_PID" 2>/dev/null
	wait "$VB_PID" 2>/dev/null
	_vt_untrack_pid "$VB_PID"
	VB_PID=
	# under `make test SAN=1`, as va_stop does for node A
	if [ -n "${VT_SAN_FLAGS:-}" ] && grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$VB_LOG"; then
		vt_fail "sanitizer report in node B's log: $(grep -m1 -E 'ERROR: |runtime error:' "$VB_LOG")"
	fi
	return 0
}
vb_ctl() {
	nsenter --net="/run/netns/$NB" "$VA_SLUICECTL" --bpffs "$VB_BPFFS" --api "$VB_SOCK" "$@"
}
# vb_client ARGS: sl_client in node B's cgroup and netns, bounded like vt_client.
vb_client() {
	(
		echo "$BASHPID" >"$VB_CGROUP/cgroup.procs" || exit 2
		exec timeout --foreground -k 2 "$VT_CLIENT_TIMEOUT" ip netns exec "$NB" \
			"$VT_BIN/sl_client" "$@"
	)
}

# reach A|B NAME N: N connections to web from node A or B; how many reached backend NAME.
# The client's output stays in $VT_TMP/reach-A|B.out.
reach() {
	local out=$VT_TMP/reach-$1.out
	if [ "$1" = A ]; then
		vt_client tcp "$VIP" -n "$3" --timeout-ms 1000 >"$out" 2>&1
	else
		vb_client tcp "$VIP" -n "$3" --timeout-ms 1000 >"$out" 2>&1
	fi
	vt_value "$out" "$2"
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- start ----------------------------------------------------------------------------------------
etcd_start || {
	vt_fail "etcd did not become healthy in 10 s (log: $VT_TMP/etcd.log)"
	vt_finish
}
vt_pass "etcd $(etcd --version | awk '/etcd Version/ {print $3}') healthy at $ETCD_URL (from node A)"

services() {
	cat <<YAML
registry:
  etcd:
    endpoints: ["$ETCD_URL"]
    prefix: $P
services:
  - name: web
    frontend: $VIP
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
YAML
}
services | va_config "$VT_TMP/a.yaml"
services | vb_config "$VT_TMP/b.yaml"
VB_CONFIG=$VT_TMP/b.yaml # (vb_config runs in the pipeline's subshell)
va_start "$VT_TMP/a.yaml" || vt_finish
vb_start || vt_finish

# --- 1. both agents follow etcd and serve web ------------------------------------------------------
# The agent's line for its first snapshot (range) from etcd.
ETCD_UP='msg="etcd registry loaded"'
both_up() { va_log_has "$ETCD_UP" && vb_log_has "$ETCD_UP"; }
vt_check "both agents read etcd at start" \
	-d 'echo "no etcd connection line (A: $(grep -m1 etcd "$VA_LOG"); B: $(grep -m1 etcd "$VB_LOG"))"' -- \
	vt_wait_until 5 both_up && vt_log "A: $(grep -m1 -oE 'msg="etcd registry loaded".*' "$VA_LOG"); B likewise"
a=$(reach A be1 10)
b=$(reach B be1 10)
[ "$a" -eq 10 ] && [ "$b" -eq 10 ] && vt_pass "web serves on both nodes (10 of 10 to be1 from A and from B)" ||
	vt_fail "web: A $a of 10 ($(tr '\n' ' ' <"$VT_TMP/reach-A.out")), B $b of 10 ($(tr '\n' ' ' <"$VT_TMP/reach-B.out"))"

# --- 2. a registration on A reaches B within 1 s -------------------------------------------------
t0=$(date +%s%N)
va_ctl register web 198.18.1.4:8080 >"$VT_TMP/out" 2>&1 || vt_fail "register on A: $(cat "$VT_TMP/out")"
t_api=$(ms_since "$t0")
seen=
for ((i = 0; i < 30; i++)); do # every 100 ms, 3 s at most (the check is 1 s)
	if [ "$(reach B be3 4)" -gt 0 ]; then
		seen=$(ms_since "$t0")
		break
	fi
	sleep 0.1
done
vt_check "registered on A, served on B after ${seen:-never (3 s)} ms, within 1000 ms (the API call took ${t_api} ms)" -- \
	eval '[ -n "$seen" ] && [ "$seen" -le 1000 ]'
a=$(reach A be3 10)
[ "$a" -ge 3 ] && vt_pass "and on A itself (be3 $a of 10)" || vt_fail "on A be3 got $a of 10"
ectl get --prefix "$P" >"$VT_TMP/etcd-get.out" 2>&1
key=${P}backends/web/198.18.1.4:8080
val=$(grep -A1 -xF "$key" "$VT_TMP/etcd-get.out" | tail -n 1)
vt_check "etcd has $key = $val" -O /dev/null -d 'tr "\n" " " <"$VT_TMP/etcd-get.out"' -- \
	jq -e '.address == "198.18.1.4:8080" and .weight == 1' <<<"$val"

# --- 3. etcd down: both nodes keep serving; an API write on B answers ------------------------------
etcd_stop
t0=$(date +%s%N)
down() { va_log_has 'msg="etcd registry unreachable"' && vb_log_has 'msg="etcd registry unreachable"'; }
vt_check "etcd stopped: both agents log 'etcd registry unreachable' within 5 s" \
	-d 'echo "lines: A $(grep -c unreachable "$VA_LOG"), B $(grep -c unreachable "$VB_LOG")"' -- \
	vt_wait_until 5 down && vt_log "within $(ms_since "$t0") ms"
for n in A B; do
	c=$(reach $n be3 30)
	out=$VT_TMP/reach-$n.out
	f=$(vt_value "$out" fail)
	[ "$f" -eq 0 ] && [ "$c" -gt 0 ] && [ "$(vt_value "$out" ok)" -eq 30 ] &&
		vt_pass "etcd down: node $n serves web, be3 included (30 connects, 0 failures, be3 $c, be1 $(vt_value "$out" be1))" ||
		vt_fail "etcd down: node $n: $(tr '\n' ' ' <"$out")"
done
# A restart while etcd is away serves the saved copy of the last snapshot.
vb_stop
t0=$(date +%s%N)
vb_start || vt_finish
t_ready=$(ms_since "$t0")
c=$(reach B be3 10)
[ "$c" -gt 0 ] && [ "$(vt_value "$VT_TMP/reach-B.out" fail)" -eq 0 ] &&
	vt_pass "etcd down: node B's agent restarted (ready in ${t_ready} ms) and serves its saved state (be3 $c of 10)" ||
	vt_fail "etcd down: after a restart node B: $(tr '\n' ' ' <"$VT_TMP/reach-B.out") (ready in ${t_ready} ms)"
# A write through B's API while etcd is away: it must answer (within 5 s), not hang. A second
# server in be2's netns (be2b, :8081) is what it registers.
vt_server "$VT_ID-be2" be2b 8081 || vt_fail "be2b server"
t0=$(date +%s%N)
st=$(nsenter --net="/run/netns/$NB" curl -q -s -o "$VT_TMP/api-b.body" -w '%{http_code}' --max-time 5 \
	--unix-socket "$VB_SOCK" -X POST -H 'Content-Type: application/json' \
	--data-binary '{"address": "198.18.1.3:8081"}' http://sluice/v1/services/web/backends)
t_b=$(ms_since "$t0")
W_ACCEPTED=0
case $st in
2??)
	W_ACCEPTED=1
	vt_pass "etcd down: POST on B answered $st in ${t_b} ms (queued for etcd: $(tr -d '\n' <"$VT_TMP/api-b.body" | head -c 120))"
	;;
4?? | 5??)
	vt_pass "etcd down: POST on B answered $st in ${t_b} ms ($(tr -d '\n' <"$VT_TMP/api-b.body" | head -c 120))"
	;;
*) vt_fail "etcd down: POST on B: status '${st:-none}' after ${t_b} ms (hangs?)" ;;
esac
c=$(reach B be2b 10)
vt_log "while etcd is down, node B sends be2b $c of 10 (accepted=$W_ACCEPTED)"

# --- 4. changes made while the nodes are cut off converge once etcd is back --------------------------
# etcd comes back first on its own 127.0.0.1 only: still unreachable for the nodes, which stay in
# their backoff, while etcdctl deregisters be3 and registers be2. Then etcd is restarted
# reachable, and both nodes must catch up on what changed meanwhile.
# be2's value: the shape the agent wrote for be3 (check 2), with be2's address. (The agent
# leaves out a value with "subset": "", as it refuses that in the API.)
v2=$(jq -c '.address = "198.18.1.3:8080"' <<<"$val" 2>/dev/null)
[ -n "$v2" ] || v2='{"address":"198.18.1.3:8080","weight":1}'
etcd_start local || {
	vt_fail "etcd (local only) did not come back in 10 s"
	vt_finish
}
ectl_local del "${P}backends/web/198.18.1.4:8080" >"$VT_TMP/out" 2>&1 &&
	ectl_local put "${P}backends/web/198.18.1.3:8080" "$v2" >>"$VT_TMP/out" 2>&1 ||
	vt_fail "etcdctl del/put (etcd local only): $(cat "$VT_TMP/out")"
for n in A B; do
	c=$(reach $n be3 10)
	[ "$c" -gt 0 ] && [ "$(vt_value "$VT_TMP/reach-$n.out" be2)" -eq 0 ] &&
		vt_pass "changed in etcd while node $n can't reach it: it keeps its last state (be3 $c of 10, no be2)" ||
		vt_fail "changed in etcd while node $n can't reach it: $(tr '\n' ' ' <"$VT_TMP/reach-$n.out") (want be3, no be2)"
done
etcd_stop
t_up=$(date +%s%N)
etcd_start || {
	vt_fail "etcd did not come back in 10 s"
	vt_finish
}
vt_log "etcd reachable again: healthy $(ms_since "$t_up") ms after its start"
t_chg=$(date +%s%N)
converged() { # no be3 and some be2 on both nodes
	local n
	for n in A B; do
		[ "$(reach $n be3 6)" -eq 0 ] && [ "$(vt_value "$VT_TMP/reach-$n.out" be2)" -gt 0 ] || return 1
	done
}
vt_check "etcd back: both nodes converged on the changes made meanwhile (be3 gone, be2 served) within 10 s" \
	-d 'echo "A $(tr "\n" " " <"$VT_TMP/reach-A.out"), B $(tr "\n" " " <"$VT_TMP/reach-B.out")"' -- \
	vt_wait_until 10 converged &&
	vt_log "converged $(ms_since "$t_chg") ms after etcd answered ($(ms_since "$t_up") ms after its start)"
up() {
	va_log_has 'msg="etcd registry reachable again"' && vb_log_has 'msg="etcd registry reachable again"'
}
vt_wait_until 5 up && vt_pass "both agents log 'etcd registry reachable again'" ||
	vt_fail "no 'reachable again' line (A: $(grep -c 'reachable again' "$VA_LOG"), B: $(grep -c 'reachable again' "$VB_LOG"))"
for n in A B; do
	c=$(reach $n be1 12)
	f=$(vt_value "$VT_TMP/reach-$n.out" fail)
	[ "$f" -eq 0 ] && vt_pass "node $n after convergence: $(tr '\n' ' ' <"$VT_TMP/reach-$n.out")" ||
		vt_fail "node $n after convergence: $(tr '\n' ' ' <"$VT_TMP/reach-$n.out")"
done
# What became of B's write while etcd was down: an accepted one reaches etcd and both nodes, a
# refused one nowhere.
ectl get "${P}backends/web/198.18.1.3:8081" >"$VT_TMP/out" 2>&1
in_etcd=$(grep -c '198.18.1.3:8081' "$VT_TMP/out")
b2a() { [ "$(reach A be2b 8)" -gt 0 ] && [ "$(reach B be2b 8)" -gt 0 ]; }
if [ "$W_ACCEPTED" = 1 ]; then
	vt_check "the write accepted while etcd was down reached etcd and both nodes once it was back" \
		-d 'echo "in etcd: $in_etcd lines, A be2b $(reach A be2b 8), B be2b $(reach B be2b 8)"' -- \
		eval 'vt_wait_until 5 b2a && ectl get "${P}backends/web/198.18.1.3:8081" | grep -q 8081'
else
	[ "$in_etcd" -eq 0 ] && [ "$(reach A be2b 8)" -eq 0 ] && [ "$(reach B be2b 8)" -eq 0 ] &&
		vt_pass "the write refused while etcd was down is nowhere (etcd, A, B)" ||
		vt_fail "refused write applied anyway: etcd $in_etcd, A/B be2b"
fi

# --- 5. a TTL registration without heartbeats expires on both nodes ------------------------------
t0=$(date +%s%N)
vb_ctl register web 198.18.1.4:8080 --ttl 3s >"$VT_TMP/out" 2>&1 || vt_fail "register --ttl 3s on B: $(cat "$VT_TMP/out")"
both_be3() { [ "$(reach A be3 4)" -gt 0 ] && [ "$(reach B be3 4)" -gt 0 ]; }
vt_check "a 3s-TTL registration on B is served on both nodes within 2 s" \
	-d 'echo "A $(reach A be3 4), B $(reach B be3 4)"' -- vt_wait_until 2 both_be3 &&
	vt_log "after $(ms_since "$t0") ms"
ectl get "${P}backends/web/198.18.1.4:8080" -w json >"$VT_TMP/out" 2>&1
lease=$(grep -oE '"lease": *[0-9]+' "$VT_TMP/out" | head -n 1 | grep -oE '[0-9]+$') # jq rounds int64
[ "${lease:-0}" != 0 ] && vt_pass "its etcd key is on a lease ($lease)" || vt_fail "no lease on the key: $(head -c 300 "$VT_TMP/out")"
# Gone means no connect of GONE_N reaches be3 on either node. Round robin is per CPU: with at
# most 4 backends in web, 4 x CPUs + 1 connects put 4 or more on one CPU, so a be3 still served
# is always hit; 4 connects could miss it by chance and read as gone early.
GONE_N=$(($(nproc) * 4 + 1))
gone() { [ "$(reach A be3 "$GONE_N")" -eq 0 ] && [ "$(reach B be3 "$GONE_N")" -eq 0 ]; }
if vt_wait_until 10 gone; then
	ms=$(ms_since "$t0")
	[ "$ms" -le 6500 ] && vt_pass "without heartbeats it left both nodes ${ms} ms after registering (TTL 3 s)" ||
		vt_fail "it left both nodes only after ${ms} ms (TTL 3 s)"
else
	vt_fail "the TTL registration was still served 10 s after registering"
fi
ectl get --prefix "${P}backends/web/198.18.1.4" >"$VT_TMP/out" 2>&1
[ ! -s "$VT_TMP/out" ] && vt_pass "and its etcd key is gone" || vt_fail "key still in etcd: $(tr '\n' ' ' <"$VT_TMP/out")"

# --- 6. a bad etcd key is skipped and logged; a good key written after it applies -------------
# One key the snapshot load refuses (its value is not JSON), one the merge refuses (a service
# neither node has), then be3 again.
BAD_LOAD=${P}backends/web/198.18.1.9:8080
BAD_MERGE=${P}backends/nosuch/198.18.1.4:8080
ectl put "$BAD_LOAD" 'not json' >"$VT_TMP/out" 2>&1 &&
	ectl put "$BAD_MERGE" '{"address":"198.18.1.4:8080","weight":1}' >>"$VT_TMP/out" 2>&1 &&
	ectl put "${P}backends/web/198.18.1.4:8080" '{"address":"198.18.1.4:8080","weight":1}' \
		>>"$VT_TMP/out" 2>&1 || vt_fail "etcdctl put of the bad and good keys: $(cat "$VT_TMP/out")"
vt_check "a good key written after two bad ones is served on both nodes within 2 s" \
	-d 'echo "A $(reach A be3 4), B $(reach B be3 4)"' -- vt_wait_until 2 both_be3
skipped() { # NODE-LOG KEY: the agent logged the key as skipped
	grep -F 'msg="etcd key skipped' "$1" 2>/dev/null | grep -qF "key=\"$2\""
}
logged() {
	skipped "$VA_LOG" "$BAD_LOAD" && skipped "$VA_LOG" "$BAD_MERGE" &&
		skipped "$VB_LOG" "$BAD_LOAD" && skipped "$VB_LOG" "$BAD_MERGE"
}
vt_check "both nodes log each bad key as skipped, with why" \
	-d 'echo "A: $(grep -cF "etcd key skipped" "$VA_LOG") lines, B: $(grep -cF "etcd key skipped" "$VB_LOG") lines"' -- \
	vt_wait_until 2 logged &&
	vt_log "A: $(grep -F "$BAD_MERGE" "$VA_LOG" | head -n 1 | grep -oE 'why=.*')"
ectl del "$BAD_LOAD" >/dev/null 2>&1
ectl del "$BAD_MERGE" >/dev/null 2>&1
ectl del "${P}backends/web/198.18.1.4:8080" >/dev/null 2>&1

vb_stop
va_stop
etcd_stop
vt_finish
