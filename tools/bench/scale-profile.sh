#!/usr/bin/env bash
# tools/bench/scale-profile.sh - measurements for issue #17 (performance at scale); see
# bench/scale-profile.md. Run as root after `make`. One phase per run:
#   scale-profile.sh start  N MODE   sluiced start to ready, N services x 10 backends, lb: maglev
#                                    (MODE plain|strace|perf) [LB=random to compare]
#   scale-profile.sh reload N        one backend replaced (file + SIGHUP) under perf
#   scale-profile.sh api    N        POST /v1/services/{name}/backends x REGS under perf
#   scale-profile.sh conn4  N        run_time_ns/run_cnt of connect4: fresh socket vs retried one
#   scale-profile.sh cost   N        run_time_ns/run_cnt of every program in sl_bench conn (c=1, 8)
# PERF=1 (reload, api: perf record -g of sluiced; conn4: of the client), PERF=probe (reload, api:
# perf record -e 'sprof:*', uprobes added beforehand, see bench/scale-profile.md), PERF=0: neither.
# Output in $OUT (default /tmp/scaleprof-out). Every run is bounded (timeouts) and cleans up.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-/tmp/scaleprof-out}
LB=${LB:-maglev}
mkdir -p "$OUT"
unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=120
. "$ROOT/vmtests/lib.sh"
. "$ROOT/vmtests/agent.sh"
. "$ROOT/tools/bench/lib.sh"
phase=$1 N=$2 MODE=${3:-plain}
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
vt_init sprof >/dev/null
trap 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"; _vt_exit_trap' EXIT
BW_LIMITS_SERVICES=$((N + 16)) BW_LIMITS_BACKENDS=$((N * 10 + 64))
if [ "$phase" = cost ]; then # the real path: sl_bench conn against nginx, as make bench's cost
	bw_build || exit 1
	bw_up sluice "$N" 10 || exit 1
	ids=$(va_ctl -o json status | jq -r '.programs[] | "\(.prog_id)"')
	snap() { for id in $ids; do bpftool -j prog show id "$id"; done | jq -s '.'; }
	for c in 1 8; do
		sysctl -qw kernel.bpf_stats_enabled=1
		b=$(snap)
		out=$(bw_client conn "$BW_TARGETS" -c "$c" -d 3 -w 0 -p /s)
		a=$(snap)
		sysctl -qw kernel.bpf_stats_enabled="$old_stats"
		echo "cost-$N c=$c: $out" | tee -a "$OUT/summary.txt"
		jq -r -n --argjson a "$b" --argjson b "$a" --arg t "cost-$N c=$c" '
			$b[] as $p | ($a[] | select(.id == $p.id)) as $q
			| (($p.run_cnt // 0) - ($q.run_cnt // 0)) as $r
			| (($p.run_time_ns // 0) - ($q.run_time_ns // 0)) as $ns
			| select($r > 0)
			| "\($t): \($p.name) runs \($r) ns/run \(($ns / $r * 10 | floor) / 10)"' |
			tee -a "$OUT/summary.txt"
	done
	bw_down
	exit 0
fi
vt_topology >/dev/null && vt_cgroup >/dev/null && vt_bpffs >/dev/null || exit 1
F=$VT_TMP/sluice.yaml
bw_agent_config "$F" "$N" 10 || exit 1
sed -i "s/lb: random/lb: $LB/" "$F"
tag=$phase-$LB-$N-$MODE${PERF:+-perf$PERF}
VA_LOG=$VT_TMP/agent.log
: >"$VA_LOG"

# start PREFIX...: sluiced in the node netns behind PREFIX (may be empty); sets VA_PID (the
# outermost process) and SPID (sluiced itself).
start() {
	(exec env -u JOURNAL_STREAM nsenter --net="/run/netns/$VT_ID-node" "$@" "$ROOT/build/sluiced" \
		-c "$F" --log-level "${LOGLEVEL:-info}" >>"$VA_LOG" 2>&1) &
	VA_PID=$!
	vt_track_pid "$VA_PID"
	SPID=
	for _ in $(seq 1 100); do
		if [ "$(cat /proc/$VA_PID/comm 2>/dev/null)" = sluiced ]; then SPID=$VA_PID; break; fi
		SPID=$(for c in $(cat /proc/$VA_PID/task/*/children 2>/dev/null); do
			[ "$(cat /proc/$c/comm 2>/dev/null)" = sluiced ] && echo "$c"; done | head -n 1)
		[ -n "$SPID" ] && break
		sleep 0.05
	done
}
cputime() { awk '{ printf "user %.2f s sys %.2f s", $14 / 100, $15 / 100 }' "/proc/$1/stat"; }
stop() {
	kill -TERM "$SPID" 2>/dev/null
	for _ in $(seq 1 600); do kill -0 "$VA_PID" 2>/dev/null || break; sleep 0.1; done
}
waitlog() { vt_wait_until "$1" va_log_count_ge "$2" "$3"; }

# perf_start: PERF=1 (default) a CPU profile of sluiced, PERF=probe the uprobes added beforehand
# (perf probe -x ... 'sprof:...'), PERF=0 none; its pid in ppid (empty: none).
perf_start() {
	ppid=
	if [ "${PERF:-1}" = 1 ]; then
		perf record -F 999 --call-graph dwarf,16384 -p "$SPID" -o "$OUT/$tag.perf.data" &
		ppid=$!
	elif [ "${PERF:-1}" = probe ]; then
		perf record -e 'sprof:*' -p "$SPID" -o "$OUT/$tag.perf.data" &
		ppid=$!
	fi
}

case $phase in
start)
	t0=$EPOCHREALTIME
	case $MODE in
	plain) start ;;
	strace) start strace -f -T -tt -o "$OUT/$tag.strace" ;;
	perf) start perf record -F 499 --call-graph dwarf,16384 -o "$OUT/$tag.perf.data" -- ;;
	esac
	if [ "$MODE" = plain ]; then # where sluiced waits: its kernel stack, every 0.1 s
		(for _ in $(seq 1 9000); do
			kill -0 "$SPID" 2>/dev/null || break
			grep -q 'msg="ready"' "$VA_LOG" && break
			echo ---; cat "/proc/$SPID/stack" 2>/dev/null; sleep 0.1
		done >"$OUT/$tag.kstack") &
	fi
	waitlog 900 'msg="ready"' 1 || { echo "not ready"; tail -3 "$VA_LOG"; exit 1; }
	t1=$EPOCHREALTIME
	echo "$tag: start to ready $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s," \
		"$(cputime "$SPID"), log first->ready:" \
		"$(grep -m1 -o 'ts=[^ ]*' "$VA_LOG") $(grep 'msg="ready"' "$VA_LOG" | grep -o 'ts=[^ ]*')" |
		tee -a "$OUT/summary.txt"
	grep -c . "$VA_LOG" >/dev/null
	awk '/^(Vm|Rss)/' "/proc/$SPID/status" >"$OUT/$tag.status"
	bpftool -j map show 2>/dev/null | jq -r '[.[] | select(.name == "sluice_table")] |
		"inner maps: \(length), bytes_memlock: \(map(.bytes_memlock // 0) | add)"' \
		| tee -a "$OUT/summary.txt"
	stop
	;;
reload)
	start
	waitlog 300 'msg="ready"' 1 || exit 1
	bw_agent_config "$VT_TMP/new.yaml" "$N" 10 -v change=1 || exit 1
	sed -i "s/lb: random/lb: $LB/" "$VT_TMP/new.yaml"
	perf_start
	sleep 1
	cpu() { awk '{print $14 + $15}' "/proc/$SPID/stat"; } # utime + stime, in ticks
	c0=$(cpu)
	t0=$EPOCHREALTIME
	mv -f "$VT_TMP/new.yaml" "$F" && kill -HUP "$SPID"
	# The start's apply, then the SIGHUP's. The watcher's event for the same file follows
	# (200 ms debounce): before #17 it reloaded again, now it is skipped; either way, wait
	# until sluiced is idle so the CPU figure covers it.
	waitlog 120 'msg="config applied"' 2 || { echo "no apply"; tail "$VA_LOG"; }
	t1=$EPOCHREALTIME
	for ((q = 0; q < 120; q++)); do # until sluiced is idle: under 3 ticks in a second
		n=$(cpu)
		sleep 1
		[ $(($(cpu) - n)) -lt 3 ] && break
	done
	c1=$(cpu)
	[ -z "$ppid" ] || { kill -INT "$ppid"; wait "$ppid"; }
	echo "$tag: hand-over to 2nd config applied $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') s;" \
		"sluiced CPU for the change (both reloads if two) $(awk -v c="$((c1 - c0))" -v t="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", c/t}') s;" \
		"reloads $(grep -c 'msg="reloading"' "$VA_LOG")" | tee -a "$OUT/summary.txt"
	grep -E 'msg="(reloading|config applied|service updated)"' "$VA_LOG" | tee -a "$OUT/summary.txt"
	cp "$VA_LOG" "$OUT/$tag.log"
	stop
	;;
api)
	start
	waitlog 300 'msg="ready"' 1 || exit 1
	perf_start
	sleep 1
	for i in $(seq 1 "${REGS:-5}"); do
		timeout 60 curl -sS -o /dev/null --unix-socket "$VT_TMP/sluiced.sock" \
			-w "$tag: register $i: HTTP %{http_code} %{time_total} s\n" \
			-H 'Content-Type: application/json' -X POST \
			-d "{\"address\": \"198.18.254.$i:80\"}" \
			"http://localhost/v1/services/d$((N / 3))/backends" | tee -a "$OUT/summary.txt"
	done
	sleep 0.5
	[ -z "$ppid" ] || { kill -INT "$ppid"; wait "$ppid"; }
	cp "$VA_LOG" "$OUT/$tag.log"
	stop
	;;
conn4)
	start
	waitlog 300 'msg="ready"' 1 || exit 1
	ids=$(va_ctl -o json status | jq -r '.programs[] | "\(.prog_id)"')
	snap() { for id in $ids; do bpftool -j prog show id "$id"; done | jq -s '.'; }
	cat >"$VT_TMP/c.py" <<'PY'
import errno, socket, sys
mode, n = sys.argv[1], int(sys.argv[2])
dst = ("198.19.1.1", 80)  # decoy d0's VIP; its backends 198.18.2.x have no route: no packet leaves
ok = 0
if mode == "fresh":
    for _ in range(n):
        s = socket.socket()
        if s.connect_ex(dst) == errno.ENETUNREACH: ok += 1
        s.close()
else:
    s = socket.socket()
    for _ in range(n):
        if s.connect_ex(dst) == errno.ENETUNREACH: ok += 1
    s.close()
print(mode, "calls", n, "ENETUNREACH", ok)
PY
	if [ "${PERF:-0}" = 1 ]; then # where a fresh socket's connect4 spends its time
		for m in fresh retry; do
			vt_in_cgroup perf record -F 4999 -g -o "$OUT/$tag-$m.perf.data" \
				python3 "$VT_TMP/c.py" "$m" 200000
		done
	fi
	for m in fresh retry fresh retry; do
		sysctl -qw kernel.bpf_stats_enabled=1
		b=$(snap)
		vt_in_cgroup python3 "$VT_TMP/c.py" "$m" "${CALLS:-20000}"
		a=$(snap)
		sysctl -qw kernel.bpf_stats_enabled="$old_stats"
		jq -r -n --argjson a "$b" --argjson b "$a" --arg m "$m" --arg t "$tag" '
			$b[] as $p | ($a[] | select(.id == $p.id)) as $q
			| (($p.run_cnt // 0) - ($q.run_cnt // 0)) as $r
			| (($p.run_time_ns // 0) - ($q.run_time_ns // 0)) as $ns
			| select($r > 0)
			| "\($t) \($m): \($p.name) runs \($r) ns/run \(($ns / $r * 10 | floor) / 10)"' |
			tee -a "$OUT/summary.txt"
	done
	stop
	;;
esac
bw_down
