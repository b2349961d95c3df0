#!/usr/bin/env bash
# The datapath outlives the agent: kill -9 and a restart while a client loop runs fail no
# connection, the restarted agent adopts the pinned links and maps, SIGTERM leaves traffic
# flowing, sluicectl works while the agent is down, and --teardown removes every program
# and pin.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world restart

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: web6
    frontend: "[2001:db8:f::10]:80"
    lb: round_robin
    backends:
      - address: "[2001:db8:1::2]:8080"
YAML
va_start "$cfg" || vt_finish
prog_ids() { bpftool cgroup show "$VT_CGROUP" 2>/dev/null | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' '; }
before=$(prog_ids)
[ "$(wc -w <<<"$before")" -eq 10 ] && vt_pass "10 programs attached to the cgroup" ||
	vt_fail "programs attached: '$before'"

loop=$VT_TMP/loop.out
vt_client loop 198.19.0.10:80 --seconds 7 --interval-ms 3 >"$loop" &
loop_pid=$!
sleep 1

va_stop KILL
vt_log "agent killed with SIGKILL"
sleep 1
[ "$(wc -w <<<"$(prog_ids)")" -eq 10 ] && vt_pass "after kill -9 the programs stay attached" ||
	vt_fail "after kill -9: '$(prog_ids)'"
out=$VT_TMP/down.out
vt_check "sluicectl services works while the agent is down" -o "$out" -- \
	eval 'va_ctl services web && grep -q "198.18.1.4:8080" "$out"'
agent_is() { va_ctl status | grep -q "agent: *$1"; } # agent_is STATE: sluicectl status says so
vt_check "sluicectl status reports the agent is not running" -d 'va_ctl status | head -3' -- \
	agent_is 'not running'

va_start "$cfg" || vt_finish
va_log_has 'adopted the pinned datapath' && vt_pass "the restart adopted the pinned datapath" ||
	vt_fail "the restart did not adopt"
va_log_has 'added=0 updated=0 removed=0' && vt_pass "the restart rewrote nothing (maps already in step)" ||
	vt_fail "the restart rewrote services"
vt_check "sluicectl status finds the agent (pid $VA_PID)" -d 'va_ctl status | head -3' -- \
	agent_is "running (pid $VA_PID)"
after=$(prog_ids)
[ "$(wc -w <<<"$after")" -eq 10 ] && [ "$after" != "$before" ] &&
	vt_pass "the links now run the new programs ($after)" ||
	vt_fail "programs after restart: '$after' (before: '$before')"
sleep 1

va_stop TERM
[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
wait "$loop_pid"
rc=$?
n=$(($(vt_value "$loop" ok) + $(vt_value "$loop" fail)))
vt_check "client loop: $n connections across kill -9, restart and stop, 0 failed" \
	-d 'echo "rc=$rc: $(tr "\n" " " <"$loop")"' -- eval '[ "$rc" -eq 0 ] && [ "$n" -gt 300 ]'
out=$VT_TMP/stopped.out
vt_client tcp "[2001:db8:f::10]:80" -n 20 --check-peer >"$out" &&
	vt_pass "with the agent stopped, the IPv6 service still serves" ||
	vt_fail "agent stopped: $(tr '\n' ' ' <"$out")"

# Pinned maps fix the capacities: a start that asks for others is refused, with what to do.
sed 's/^services:/  limits: {services: 2048}\nservices:/' "$cfg" >"$VT_TMP/bigger.yaml"
vt_node timeout 20 "$VA_SLUICED" -c "$VT_TMP/bigger.yaml" >"$VT_TMP/bigger.log" 2>&1
rc=$?
vt_check "other capacities than the pinned maps': exit 1, and the message says what to do" \
	-d 'echo "exit $rc: $(grep -m1 error "$VT_TMP/bigger.log")"' -- eval '[ "$rc" -eq 1 ] &&
	grep -qE "sluice_(frontends|services|svc_info) holds 2048 entries but the config asks for 4096" \
		"$VT_TMP/bigger.log" && grep -q -- "--teardown" "$VT_TMP/bigger.log"'
vt_client tcp 198.19.0.10:80 -n 10 >"$VT_TMP/still.out" &&
	vt_pass "the refused start left the datapath serving" || vt_fail "refused start broke the datapath"

# --teardown: no program, no pin, and the VIP is no longer translated.
links=$(ls "$VT_BPFFS/links" 2>/dev/null | wc -l)
vt_check "--teardown: exit 0 ($links links detached)" -O "$VT_TMP/teardown.log" -- \
	"$VA_SLUICED" -c "$cfg" --teardown
[ -z "$(prog_ids)" ] && vt_pass "no program is attached to the cgroup" ||
	vt_fail "still attached: $(prog_ids)"
left=0
for id in $after; do bpftool prog show id "$id" >/dev/null 2>&1 && left=$((left + 1)); done
[ "$left" -eq 0 ] && vt_pass "the programs are unloaded" || vt_fail "$left programs still loaded"
[ ! -e "$VT_BPFFS" ] && vt_pass "no pin left under $VT_BPFFS" || vt_fail "pins left: $(ls -R "$VT_BPFFS")"
vt_check "after teardown the VIP is not translated (blackholed)" -v -o "$VT_TMP/after.out" -- \
	! vt_client tcp 198.19.0.10:80 -n 1 --timeout-ms 500
"$VA_SLUICED" -c "$cfg" --teardown >/dev/null 2>&1 && vt_pass "--teardown twice is fine" ||
	vt_fail "--teardown on nothing failed"
vt_finish
