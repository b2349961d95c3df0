#!/usr/bin/env bash
# Least privilege (README "Privileges"): once attached and applied, every thread of the running agent holds
# exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (effective, permitted and bounding), the etcd
# worker and libcurl's resolver threads included: the agent follows a real etcd (in the node
# netns, on its 127.0.0.1) so that they exist; the API socket and every pin are 0600; an
# unprivileged user can neither reach the API nor change a map through its pin, even with the
# directories on the way opened up. The dropped agent still reloads (a Maglev service added)
# and attaches TC to an interface created later.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

for t in setpriv bpftool curl; do
	command -v "$t" >/dev/null || vt_skip "needs $t"
done
id nobody >/dev/null 2>&1 || vt_skip "needs a user nobody"
vt_world privs

# etcd in the node netns, on its own 127.0.0.1 (the agent's registry.etcd): the agent then runs
# its etcd worker thread, and libcurl its resolver threads. Without an etcd binary the endpoint
# stays closed; the worker thread exists all the same.
ETCD=http://127.0.0.1:2379
etcd_healthy() { vt_node curl -q -sf --max-time 1 "$ETCD/health" 2>/dev/null | grep -q '"health": *"true"'; }
if command -v etcd >/dev/null; then
	(exec ip netns exec "$VT_ID-node" etcd --name s1 --data-dir "$VT_TMP/etcd" \
		--listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster s1=http://127.0.0.1:2380 --initial-cluster-token "$VT_ID" \
		--initial-cluster-state new >>"$VT_TMP/etcd.log" 2>&1) &
	vt_track_pid $!
	vt_check "etcd healthy at $ETCD in the node netns" -d 'tail -n 3 "$VT_TMP/etcd.log"' -- \
		vt_wait_until 10 etcd_healthy
else
	vt_log "no etcd binary (make deps installs etcd-server): registry.etcd names a closed port"
fi

# CAP_NET_ADMIN 12, CAP_PERFMON 38, CAP_BPF 39.
KEEP=$(printf '%016x' $(((1 << 12) | (1 << 38) | (1 << 39))))
NONE=0000000000000000
cfg=$VT_TMP/sluice.yaml
config() { # config [SERVICE-YAML]: the config, with one more service if given
	va_config "$cfg" <<YAML
  interfaces: [vt-*]
registry:
  etcd:
    endpoints: ["$ETCD"]
    prefix: /sluice/
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
${1:-}
YAML
}
config
va_start "$cfg" || vt_finish
if command -v etcd >/dev/null; then
	vt_check "the agent follows etcd (its worker thread runs)" -- \
		vt_wait_until 5 va_log_has 'msg="etcd registry loaded"'
fi

# Capabilities belong to a thread, and a thread created before the drop keeps what it had:
# check each thread of the agent. not_all SET WANT prints "TID COMM VALUE" for each thread
# whose SET is not WANT (threads that end meanwhile are skipped), and fails if there is one.
not_all() {
	local t v bad=0
	for t in /proc/"$VA_PID"/task/*; do
		v=$(awk -v k="$1:" '$1 == k { print $2 }' "$t/status" 2>/dev/null)
		[ -n "$v" ] && [ "$v" != "$2" ] || continue
		echo "tid ${t##*/} ($(cat "$t/comm" 2>/dev/null)) $1 $v"
		bad=1
	done
	return "$bad"
}
threads=$(for t in /proc/"$VA_PID"/task/*; do printf '%s(%s) ' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)"; done)
vt_log "the agent's threads: $threads"
for set in CapEff CapPrm CapBnd; do
	vt_check "$set = $KEEP (bpf, net_admin, perfmon) in every thread: $threads" -o "$VT_TMP/caps.$set" \
		-d 'echo "want $KEEP; $(tr "\n" ";" <"$VT_TMP/caps.$set")"' -- not_all "$set" "$KEEP"
done
vt_check "no inheritable or ambient capabilities in any thread" -o "$VT_TMP/caps.ia" -- \
	eval 'not_all CapInh "$NONE" && not_all CapAmb "$NONE"'
va_log_has 'msg="capabilities dropped" kept=cap_net_admin,cap_perfmon,cap_bpf' &&
	vt_pass "the drop is logged" || vt_fail "no 'capabilities dropped' log line"

# Still works with the reduced set: a reload adds a Maglev service (a new inner map) ...
config '  - name: mag
    frontend: 198.19.0.11:80
    lb: maglev
    backends:
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080'
kill -HUP "$VA_PID"
if vt_wait_until 5 va_log_has 'msg="service added" service=mag'; then
	out=$VT_TMP/mag.out
	vt_client tcp 198.19.0.11:80 -n 20 >"$out" 2>&1 && vt_pass "reload added a Maglev service: 20 connections" ||
		vt_fail "maglev service after reload: $(tr '\n' ' ' <"$out")"
else
	vt_fail "reload with a Maglev service: $(grep -m1 'level=error' "$VA_LOG")"
fi
# ... and an interface created later gets the TC programs.
ip -n "$VT_ID-node" link add vt-late type veth peer name vt-late-p &&
	ip -n "$VT_ID-node" link set vt-late up
vt_check "an interface created after the drop got the TC programs" -d 'grep -m1 vt-late "$VA_LOG"' -- \
	vt_wait_until 5 va_log_has 'msg="tc attached" interface=vt-late'

# Modes.
sock=$VT_TMP/sluiced.sock
[ "$(stat -c '%a %U' "$sock")" = "600 root" ] && vt_pass "API socket is 0600 root" ||
	vt_fail "API socket: $(stat -c '%a %U' "$sock")"
modes=$(find "$VT_BPFFS" -mindepth 1 ! -type d -printf '%m\n' | sort -u | tr '\n' ' ')
npins=$(find "$VT_BPFFS" -mindepth 1 ! -type d | wc -l)
[ "$modes" = "600 " ] && vt_pass "all $npins pins are 0600" || vt_fail "pin modes: $modes"

# Unprivileged: open the directories on the way, so only the files' own modes stand guard.
chmod 0711 "$VT_TMP"
chmod 0711 "$VT_BPFFS"
nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"; }
code=$(vt_node curl -q -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$sock" \
	http://sluice/v1/events)
[ "$code" = 200 ] && vt_pass "root reaches the API (control)" || vt_fail "root: HTTP $code"
vt_check "nobody cannot connect to the API socket" -e "$VT_TMP/nobody.err" -- \
	! nobody curl -q -s -o /dev/null --max-time 2 --unix-socket "$sock" http://sluice/v1/events
pin=$VT_BPFFS/sluice_settings
bpftool map lookup pinned "$pin" key 0 0 0 0 >/dev/null 2>&1 &&
	vt_pass "root reads the pinned map (control)" || vt_fail "root cannot read $pin"
vt_check "nobody cannot update a pinned map" -v -O "$VT_TMP/bpftool.out" -- \
	! nobody bpftool map update pinned "$pin" key 0 0 0 0 value 1 0 0 0 0 0 0 0
vt_check "nobody cannot open a pin" -e /dev/null -- \
	! nobody python3 -c 'import sys; open(sys.argv[1], "rb")' "$pin"

va_stop TERM
[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
vt_finish
