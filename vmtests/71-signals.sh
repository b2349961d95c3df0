#!/usr/bin/env bash
# Signals and threads at start. SIGHUP sent again and again while the agent loads and applies a
# config of 2000 services neither kills it nor is lost: it becomes ready and reloads once it
# runs its loop. With registry.etcd configured (an endpoint where nothing listens, so the etcd
# thread keeps retrying), every thread holds only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON
# (effective, permitted, bounding) and blocks the loop's signals, so a SIGHUP after start is a
# reload, not a kill by the thread that happened to take it.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init signals
vt_topology
vt_cgroup
vt_bpffs

N_SVCS=2000
# CAP_NET_ADMIN 12, CAP_PERFMON 38, CAP_BPF 39.
KEEP=$(printf '%016x' $(((1 << 12) | (1 << 38) | (1 << 39))))
# SIGHUP 1, SIGINT 2, SIGUSR1 10, SIGTERM 15: bits 0, 1, 9, 14 of SigBlk.
SIGS=$(((1 << 0) | (1 << 1) | (1 << 9) | (1 << 14)))

# start_raw CONFIG: sluiced in the node netns, without waiting; sets VA_PID.
start_raw() {
	VA_CONFIG=$1
	VA_LOG=$VT_TMP/agent.log
	: >"$VA_LOG"
	(exec nsenter --net="/run/netns/$VT_ID-node" "$VA_SLUICED" -c "$VA_CONFIG" >>"$VA_LOG" 2>&1) &
	VA_PID=$!
	vt_track_pid "$VA_PID"
}
alive() { _vt_alive "$VA_PID"; }
# sigblk PID_OR_TASK_DIR: the SigBlk mask of /proc/.../status, as a number.
sigblk() { echo $((0x$(awk '$1 == "SigBlk:" { print $2 }' "$1/status" 2>/dev/null || echo 0))); }
# The agent runs sluiced (not the subshell or nsenter before the exec) and has started: its
# signals are blocked, or (an agent that blocks them late) it has logged something.
started() {
	[ "$(cat "/proc/$VA_PID/comm" 2>/dev/null)" = sluiced ] &&
		{ [ $(($(sigblk "/proc/$VA_PID") & 1)) -ne 0 ] || [ -s "$VA_LOG" ]; }
}
# stop_agent: SIGTERM, wait; VA_RC is its exit status (129 = killed by SIGHUP).
stop_agent() {
	alive && kill -TERM "$VA_PID"
	wait "$VA_PID" 2>/dev/null
	VA_RC=$?
	_vt_untrack_pid "$VA_PID"
	VA_PID=
	va_san_check
}

# --- SIGHUP during start ------------------------------------------------------------------------
cfg=$VT_TMP/sluice.yaml
{
	echo '  limits: {services: 4096, backends: 16384}'
	echo 'services:'
	for ((i = 0; i < N_SVCS; i++)); do
		printf '  - {name: s%d, frontend: "198.19.%d.%d:80", backends: [{address: "198.18.1.2:8080"}]}\n' \
			"$i" $((i / 250)) $((i % 250 + 1))
	done
} | va_config "$cfg"
start_raw "$cfg"
vt_wait_until 5 started || vt_fail "sluiced did not start: $(tail -n 3 "$VA_LOG")"
sent=0 t0=$(date +%s%N)
for ((i = 0; i < 1500; i++)); do # every 10 ms, 15 s at most
	alive || break
	va_log_has 'msg="ready"' && break
	kill -HUP "$VA_PID" 2>/dev/null && sent=$((sent + 1))
	sleep 0.01
done
ms=$((($(date +%s%N) - t0) / 1000000))
if alive && va_log_has 'msg="ready"'; then
	vt_pass "$sent SIGHUPs during a ${ms} ms start with $N_SVCS services: the agent became ready"
	[ "$sent" -ge 3 ] && vt_pass "the signals came during the start ($sent before ready)" ||
		vt_fail "only $sent SIGHUPs before ready: the start was too short to test"
else
	wait "$VA_PID" 2>/dev/null
	rc=$?
	_vt_untrack_pid "$VA_PID"
	VA_PID=
	vt_fail "$sent SIGHUPs during start: the agent died (exit $rc$([ "$rc" -eq 129 ] && echo ', killed by SIGHUP')) after ${ms} ms"
fi
if [ -n "$VA_PID" ]; then
	vt_wait_until 5 va_log_has 'msg="reloading" reason=SIGHUP' &&
		vt_pass "the SIGHUP held back during start reloads once the loop runs" ||
		vt_fail "no reload after ready: $(tail -n 3 "$VA_LOG")"
	stop_agent
	[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
fi
vt_node "$VA_SLUICED" -c "$cfg" --teardown >/dev/null 2>&1

# --- registry.etcd: every thread's capabilities and signal mask ---------------------------------
cfg=$VT_TMP/etcd.yaml
va_config "$cfg" <<'YAML'
registry:
  etcd:
    endpoints: ["http://127.0.0.1:2"]
    prefix: /sluice-vt/
services:
  - name: web
    frontend: 198.19.0.10:80
    backends: [{address: 198.18.1.2:8080}]
YAML
start_raw "$cfg"
if vt_wait_until 10 va_log_has 'msg="ready"'; then
	tasks=0 bad=
	for t in /proc/"$VA_PID"/task/*; do
		tasks=$((tasks + 1))
		for set in CapEff CapPrm CapBnd; do
			v=$(awk -v k="$set:" '$1 == k { print $2 }' "$t/status")
			[ "$v" = "$KEEP" ] || bad="$bad ${t##*/}:$set=$v"
		done
		[ $(($(sigblk "$t") & SIGS)) -eq "$SIGS" ] || bad="$bad ${t##*/}:SigBlk=$(sigblk "$t")"
	done
	[ "$tasks" -ge 2 ] && vt_pass "the etcd client runs its own thread ($tasks threads)" ||
		vt_fail "only $tasks thread: nothing to check"
	[ -z "$bad" ] &&
		vt_pass "all $tasks threads: CapEff = CapPrm = CapBnd = $KEEP, the loop's signals blocked" ||
		vt_fail "threads with more:$bad"
	kill -HUP "$VA_PID"
	if vt_wait_until 5 va_log_has 'msg="reloading" reason=SIGHUP' && sleep 0.3 && alive; then
		vt_pass "SIGHUP with the etcd thread running: a reload, and the agent lives"
	else
		vt_fail "SIGHUP with the etcd thread running: alive=$(alive && echo yes || echo no)"
	fi
	stop_agent
	[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
else
	vt_fail "sluiced with registry.etcd did not become ready: $(tail -n 3 "$VA_LOG")"
fi
vt_finish
