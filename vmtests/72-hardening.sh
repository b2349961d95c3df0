#!/usr/bin/env bash
# The agent's files, sockets and listeners under hostile conditions:
#  - agent.state or the audit log's directory world-writable or not root's: refused at start;
#  - the audit log a planted symlink: not followed (the target keeps its mode);
#  - the API socket made 0600 by bind itself: no chmod(2) of its path afterwards;
#  - the API answers root only (SO_PEERCRED), even when the socket's mode lets others in;
#  - an API connection that sends half a request is closed after the idle timeout;
#  - one client address holds at most 8 connections to /metrics;
#  - /metrics is re-rendered once the page is 10 x its render time old (at most 1 s): fresh here;
#  - a non-loopback agent.metrics is warned about;
#  - a flood of policy denials does not hold the loop: /metrics answers during it.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init harden
for t in setpriv curl python3; do
	command -v "$t" >/dev/null || vt_skip "needs $t"
done
id nobody >/dev/null 2>&1 || vt_skip "needs a user nobody"
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
vt_require_tools
mkdir "$VT_CGROUP/frontend" "$VT_CGROUP/batch" || vt_fail "mkdir client cgroups"
SOCK=$VT_TMP/sluiced.sock

services() {
	va_identities frontend batch
	cat <<YAML
services:
  - name: web
    frontend: 198.19.0.10:80
    backends: [{address: 198.18.1.2:8080}]
  - name: guarded
    frontend: 198.19.0.20:80
    backends: [{address: 198.18.1.3:8080}]
    policy: {default: deny, allow_from: [frontend]}
YAML
}
# config_with STATE AUDIT_LOG [EXTRA_AGENT_LINE]: a config of this run with those paths.
config_with() {
	printf 'agent:\n  cgroup: %s\n  bpffs: %s\n  api: %s\n  state: %s\n  audit_log: %s\n%s\n' \
		"$VT_CGROUP" "$VT_BPFFS" "$SOCK" "$1" "$2" "${3:-}"
	services
}
# refused CONFIG WHAT PATTERN: sluiced exits 3 at once and logs PATTERN.
refused() {
	local log=$VT_TMP/refused.log rc
	vt_node timeout -k 1 5 "$VA_SLUICED" -c "$1" >"$log" 2>&1
	rc=$?
	vt_node "$VA_SLUICED" -c "$1" --teardown >/dev/null 2>&1
	if [ "$rc" -eq 3 ] && grep -qE "$3" "$log"; then
		vt_pass "$2: refused at start ($(grep -m1 -oE 'msg="[^"]*"' "$log"))"
	else
		vt_fail "$2: exit $rc (want 3): $(grep -m1 -E 'level=(error|info)' "$log")"
	fi
}
metric() { va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'; }

# --- L2: the directories it trusts ---------------------------------------------------------------
cfg=$VT_TMP/bad.yaml
mkdir -m 0777 "$VT_TMP/state-open" && chmod 1777 "$VT_TMP/state-open"
config_with "$VT_TMP/state-open" "$VT_TMP/audit-r.log" >"$cfg"
refused "$cfg" "agent.state world-writable (1777)" 'writable by everyone.*key=agent.state'
mkdir -m 0700 "$VT_TMP/state-nobody" && chown nobody "$VT_TMP/state-nobody"
config_with "$VT_TMP/state-nobody" "$VT_TMP/audit-r.log" >"$cfg"
refused "$cfg" "agent.state owned by nobody" 'not owned by root.*key=agent.state'
mkdir -m 0755 "$VT_TMP/logs" && chown nobody "$VT_TMP/logs"
config_with "$VT_TMP/state" "$VT_TMP/logs/audit.log" >"$cfg"
refused "$cfg" "the audit log's directory owned by nobody" 'not owned by root.*key=agent.audit_log'

# --- L2: a symlink planted as the audit log; no chmod of the socket path --------------------------
printf 'not a log\n' >"$VT_TMP/victim" && chmod 0644 "$VT_TMP/victim"
ln -sfn "$VT_TMP/victim" "$VT_TMP/audit.log" && [ -L "$VT_TMP/audit.log" ] ||
	vt_fail "cannot plant the audit log symlink"
cfg=$VT_TMP/sluice.yaml
services | va_config "$cfg"
STRACE=
if command -v strace >/dev/null; then
	STRACE="strace -f -qq -e trace=chmod,fchmodat -o $VT_TMP/strace.out"
fi
VA_LOG=$VT_TMP/agent.log VA_CONFIG=$cfg
(exec nsenter --net="/run/netns/$VT_ID-node" $STRACE "$VA_SLUICED" -c "$cfg" >>"$VA_LOG" 2>&1) &
spid=$!
vt_track_pid "$spid"
vt_wait_until 10 va_log_has 'msg="ready"' || vt_fail "sluiced did not become ready: $(tail -n 3 "$VA_LOG")"
[ "$(stat -c %a "$VT_TMP/victim")" = 644 ] && [ "$(cat "$VT_TMP/victim")" = "not a log" ] &&
	vt_pass "the audit log symlink was not followed: its target is still 0644, untouched ($(grep -m1 -oE 'open audit log [^"]*' "$VA_LOG"))" ||
	vt_fail "the audit log symlink was followed: target $(stat -c %a "$VT_TMP/victim"), $(head -c 80 "$VT_TMP/victim")"
if [ -n "$STRACE" ]; then
	if grep -q 'sluiced.sock' "$VT_TMP/strace.out"; then
		vt_fail "the socket path was chmod'ed after bind: $(grep -m1 'sluiced.sock' "$VT_TMP/strace.out")"
	else
		[ "$(stat -c %a "$SOCK")" = 600 ] &&
			vt_pass "the API socket is 0600 with no chmod of its path (strace: $(grep -c . "$VT_TMP/strace.out") chmod calls, none on it)" ||
			vt_fail "API socket mode $(stat -c %a "$SOCK")"
	fi
fi
kill -TERM "$(pgrep -x sluiced -P "$spid" 2>/dev/null || echo "$spid")" 2>/dev/null
wait "$spid" 2>/dev/null
_vt_untrack_pid "$spid"
rm -f "$VT_TMP/audit.log"

# --- the running agent -----------------------------------------------------------------------------
mv "$VA_LOG" "$VT_TMP/agent-strace.log"
va_start "$cfg" || vt_finish

# L4: the socket opened up (as a mistake or a drop-in might), nobody is still refused.
chmod 0711 "$VT_TMP"
chmod 0666 "$SOCK"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$SOCK" http://sluice/v1/services)
[ "$code" = 200 ] && vt_pass "root: GET /v1/services 200" || vt_fail "root: HTTP $code"
nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"; }
out=$(nobody curl -s -w ' %{http_code}' --max-time 2 --unix-socket "$SOCK" http://sluice/v1/services)
code=${out##* }
[ "$code" = 403 ] && va_log_has 'msg="API request refused: the peer is not root".*uid=65534' &&
	vt_pass "nobody through a 0666 socket: $code $(echo "${out% *}" | tr -d '\n'), logged" ||
	vt_fail "nobody through a 0666 socket: HTTP $code $(echo "${out% *}" | head -c 200)"
code=$(nobody curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$SOCK" \
	-X POST -d '{"address": "198.18.1.4:8080"}' http://sluice/v1/services/web/backends)
[ "$code" = 403 ] && ! va_log_has 'msg="registry changed"' &&
	vt_pass "nobody cannot register a backend (403)" || vt_fail "nobody POST: HTTP $code"
chmod 0600 "$SOCK"
chmod 0700 "$VT_TMP"

# M8: half a request on the API socket is closed after the idle timeout (10 s).
idle=$(timeout 20 python3 - "$SOCK" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /v1/services HTTP/1.1\r\n")
s.settimeout(15)
t = time.time()
try:
    s.recv(4096)
    print("closed %.1f" % (time.time() - t))
except socket.timeout:
    print("open 15")
PY
)
[ "${idle%% *}" = closed ] && vt_pass "a half-sent API request is cut after ${idle#* } s" ||
	vt_fail "a half-sent API request: still ${idle:-?} s later"

# M8: one address holds at most 8 connections to /metrics; others still scrape.
held=$(vt_node timeout 10 python3 - <<'PY'
import socket, time
socks = []
for _ in range(20):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", 9464))
    socks.append(s)
time.sleep(0.5)
n = 0
for s in socks:
    s.setblocking(False)
    try:
        n += s.recv(1) != b""
    except BlockingIOError:
        n += 1
    except OSError:
        pass
print(n)
PY
)
[ "${held:-99}" -le 8 ] && va_metrics >/dev/null &&
	vt_pass "20 idle connections from 127.0.0.2: $held kept; 127.0.0.1 still scrapes" ||
	vt_fail "20 idle connections from 127.0.0.2: ${held:-?} kept (want <= 8)"

# M8: a page is reused only until it is 10 x as old as its render took (at most 1 s): on a node
# this small (a render of about a millisecond) a burst of scrapes still sees every change.
m0=$(metric sluice_connections_total 'service="web"')
u=http://127.0.0.1:9464/metrics
vt_node curl -s --max-time 5 -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u" -o /dev/null \
	"$u" -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u" -o /dev/null "$u"
vt_client tcp 198.19.0.10:80 -n 5 >/dev/null
m1=$(metric sluice_connections_total 'service="web"')
[ "$m1" -eq $((m0 + 5)) ] &&
	vt_pass "/metrics after a burst of 10 scrapes: fresh ($m0, then $m1)" ||
	vt_fail "/metrics after a burst of 10 scrapes: $m0, then $m1 (want $((m0 + 5)))"

# M4: a flood of denials from batch; /metrics keeps answering while the ring buffer fills.
flood=$VT_TMP/flood.out fpids=()
for i in 1 2; do
	vt_in_cg "$VT_CGROUP/batch" "$VT_BIN/sl_client" tcp 198.19.0.20:80 -n 1500000 --timeout-ms 200 \
		>"$flood.$i" 2>&1 &
	fpids+=($!)
	vt_track_pid $!
done
sleep 0.5
slow=0 worst=0 times=
for i in $(seq 1 10); do
	t=$(vt_node curl -s -o /dev/null -w '%{time_total}' --max-time 2 http://127.0.0.1:9464/metrics)
	ms=$(awk -v t="${t:-2}" 'BEGIN { printf "%d", t * 1000 }')
	times="$times $ms"
	[ "$ms" -gt "$worst" ] && worst=$ms
	[ "$ms" -ge 500 ] && slow=$((slow + 1))
	if [ "$i" -eq 5 ]; then # the flood must still be on halfway through the scrapes
		running=0
		for j in "${fpids[@]}"; do
			_vt_alive "$j" && running=$((running + 1))
		done
	fi
	sleep 0.1
done
vt_log "scrapes during the flood (ms):$times"
wait "${fpids[@]}"
for j in "${fpids[@]}"; do _vt_untrack_pid "$j"; done
denied=$(($(vt_value "$flood.1" 'errno EPERM') + $(vt_value "$flood.2" 'errno EPERM')))
if [ "$running" -ge 1 ] && [ "$slow" -eq 0 ]; then
	vt_pass "during a flood of $denied denials (over $(($(vt_value "$flood.1" elapsed_ms) / 1000)) s), 10 scrapes of /metrics took at most $worst ms"
else
	vt_fail "during a flood of $denied denials (running halfway: $running): $slow of 10 scrapes took >= 500 ms (worst $worst ms)"
fi
vt_wait_until 10 va_log_has 'msg="config applied"' && va_ctl status >/dev/null &&
	vt_pass "the agent serves after the flood" || vt_fail "the agent after the flood"
va_stop TERM
[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"

# --- M8: a non-loopback agent.metrics is warned about ---------------------------------------------
services | va_config "$cfg"
sed -i "2i\\  metrics: 198.18.0.1:9464" "$cfg"
VA_STARTS=0
mv "$VA_LOG" "$VT_TMP/agent-main.log"
va_start "$cfg" &&
	va_log_has 'level=warn msg="agent.metrics is not a loopback address.*metrics=198.18.0.1:9464' &&
	vt_pass "agent.metrics 198.18.0.1:9464: $(grep -m1 -oE 'msg="agent.metrics[^"]*"' "$VA_LOG")" ||
	vt_fail "no warning for agent.metrics 198.18.0.1:9464"
va_stop TERM
# --- M7: a full disk does not stop TTL expiry -------------------------------------------------------
# agent.state on a small tmpfs: the registration is saved, then the disk fills up; the TTL still
# expires in the maps, and the failed save is logged and counted.
full=$VT_TMP/full-state
mkdir -m 0700 "$full" && mount -t tmpfs -o size=256k,mode=0700 tmpfs "$full" &&
	vt_on_cleanup umount -l "$full"
config_with "$full" "$VT_TMP/audit.log" >"$cfg"
VA_STARTS=0
mv "$VA_LOG" "$VT_TMP/agent-metrics.log"
va_start "$cfg" || vt_finish
has_be4() { va_ctl -o json services web | grep -q '198.18.1.4:8080'; }
va_ctl register web 198.18.1.4:8080 --ttl 2s >/dev/null && has_be4 &&
	vt_pass "a 2s-TTL registration is saved and served" || vt_fail "register --ttl 2s: $(va_ctl services web)"
dd if=/dev/zero of="$full/fill" bs=4k 2>/dev/null
vt_check "agent.state's disk is full" -- eval '! dd if=/dev/zero of="$full/more" bs=4k count=1 2>/dev/null'
vt_check "with the disk full, the TTL still expires in the maps" \
	-d 'va_ctl services web; grep -E "expired|cannot save" "$VA_LOG"' -- \
	vt_wait_until 6 eval '! has_be4'
vt_check "the failed save is logged" -- va_log_has 'level=warn msg="cannot save the registry'
vt_check "and counted (sluice_state_save_failures_total > 0)" -- \
	eval '[ "$(va_metrics | awk "/^sluice_state_save_failures_total/ {print \$2}")" -gt 0 ]'
# A client's change is answered once saved: with the disk full, it is refused, and neither
# served nor kept (the group commit's failure answers every request of its batch).
has_be5() { va_ctl -o json services web | grep -q '198.18.1.5:8080'; }
va_ctl register web 198.18.1.5:8080 >"$VT_TMP/full-reg.out" 2>&1
rc=$?
vt_check "with the disk full, a registration is refused (exit $rc: $(head -c 160 "$VT_TMP/full-reg.out"))" -- \
	eval '[ "$rc" -ne 0 ] && ! has_be5 && va_log_has "level=warn msg=\"registry changes refused\" changes=1"'
rm -f "$full/fill"
vt_check "with room again, the same registration is saved and served" -- \
	eval 'va_ctl register web 198.18.1.5:8080 >/dev/null && has_be5'
va_stop TERM
vt_finish
