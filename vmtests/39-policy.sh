#!/usr/bin/env bash
# Identity and L4 policy: two client cgroups under agent.cgroup, "frontend" and "batch", and
# services that allow only frontend. frontend connects; batch gets EPERM at once, for TCP and UDP,
# v4 and v6; the audit log has the identity, pid, comm and cgroup; the metric counts it. A
# process moved from batch to frontend is allowed from then on; a cgroup made under frontend
# after start inherits the identity. Server side: SYNs from a peer whose address the ipcache
# names "batch" are dropped at the node's TC ingress, an allowed peer connects. A policy change
# under load leaves established connections alone; a bad policy is refused and changes nothing.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world policy
command -v python3 >/dev/null || vt_skip "python3 is missing"
vt_require_tools
mkdir "$VT_CGROUP/frontend" "$VT_CGROUP/batch" || vt_fail "mkdir client cgroups"
# A server on the node itself (the "local backend" that TC ingress guards), and an echo server.
vt_server "$VT_ID-node" node-local 9000 --addr 198.18.0.1 || vt_finish
(exec ip netns exec "$VT_ID-be1" "$VT_BIN/sl_xfer" serve --port 7000 --mode echo --seconds 120 \
	>"$VT_TMP/echo.log" 2>&1) &
vt_track_pid $!

policy_cfg() { # policy_cfg ECHO-ALLOW: the config, with the echo service's allow_from
	cat <<YAML
  interfaces: [vt-rtr]
identities:
  - name: frontend
    cgroups: [$VT_CGROUP/frontend]
  - name: batch
    cgroups: [$VT_CGROUP/batch]
    addresses: [198.18.1.2/32]
  - name: peers
    addresses: [198.18.1.3/32, "2001:db8:1::3/128"]
services:
  - name: web
    frontend: 198.19.0.60:80
    backends: [{address: 198.18.1.2:8080}, {address: 198.18.1.3:8080}]
    policy: {default: deny, allow_from: [frontend]}
  - name: web6
    frontend: "[2001:db8:f::60]:80"
    backends: [{address: "[2001:db8:1::2]:8080"}]
    policy: {default: deny, allow_from: [frontend]}
  - name: dns
    frontend: 198.19.0.61:53
    protocol: udp
    backends: [{address: 198.18.1.2:8080}]
    policy: {default: allow, deny_from: [batch]}
  - name: dns6
    frontend: "[2001:db8:f::61]:53"
    protocol: udp
    backends: [{address: "[2001:db8:1::2]:8080"}]
    policy: {default: allow, deny_from: [batch]}
  - name: local
    frontend: 198.19.0.62:9000
    backends: [{address: 198.18.0.1:9000}]
    policy: {default: deny, allow_from: [peers], deny_from: [batch]}
  - name: echo
    frontend: 198.19.0.63:7000
    backends: [{address: 198.18.1.2:7000}]
    policy: {default: deny, allow_from: [$1]}
  - name: open
    frontend: 198.19.0.64:80
    backends: [{address: 198.18.1.4:8080$2}]
YAML
}
cfg=$VT_TMP/sluice.yaml
policy_cfg frontend "" | va_config "$cfg"
va_start "$cfg" || vt_finish

FE=$VT_CGROUP/frontend
BA=$VT_CGROUP/batch
out=$VT_TMP/out
metric() { va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'; }
eperm_fast() { # eperm_fast FILE: sl_client refused output is "EPERM <ms>ms" under 10 ms
	awk '$1 == "EPERM" { sub(/ms$/, "", $2); ok = ($2 + 0 < 10) } END { exit !ok }' "$1"
}

# --- client side: TCP and UDP, v4 and v6 ------------------------------------------------------
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.60:80 -n 5 >"$out" &&
	vt_pass "frontend: TCP v4 allowed (5 of 5)" || vt_fail "frontend v4: $(tr '\n' ' ' <"$out")"
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp "[2001:db8:f::60]:80" -n 5 >"$out" &&
	vt_pass "frontend: TCP v6 allowed" || vt_fail "frontend v6: $(tr '\n' ' ' <"$out")"
vt_in_cg "$BA" "$VT_BIN/sl_client" refused 198.19.0.60:80 >"$out"
eperm_fast "$out" && vt_pass "batch: TCP v4 connect() fails with EPERM in $(awk '{print $2}' "$out")" ||
	vt_fail "batch v4: $(cat "$out")"
vt_in_cg "$BA" "$VT_BIN/sl_client" refused "[2001:db8:f::60]:80" >"$out"
eperm_fast "$out" && vt_pass "batch: TCP v6 connect() fails with EPERM in $(awk '{print $2}' "$out")" ||
	vt_fail "batch v6: $(cat "$out")"
for vip in 198.19.0.61:53 "[2001:db8:f::61]:53"; do
	vt_in_cg "$BA" "$VT_BIN/sl_client" udp "$vip" -n 3 --timeout-ms 500 >"$out"
	vt_in_cg "$BA" "$VT_BIN/sl_client" udp "$vip" -n 3 --timeout-ms 500 --connected >"$out.c"
	[ "$(vt_value "$out" 'errno EPERM')" -eq 3 ] && [ "$(vt_value "$out.c" 'errno EPERM')" -eq 3 ] &&
		vt_pass "batch: UDP $vip sendto() and connect() fail with EPERM" ||
		vt_fail "batch UDP $vip: $(tr '\n' ' ' <"$out") / $(tr '\n' ' ' <"$out.c")"
	vt_in_cg "$FE" "$VT_BIN/sl_client" udp "$vip" -n 3 --timeout-ms 1000 >"$out" &&
		vt_pass "frontend: UDP $vip allowed (deny_from batch only)" ||
		vt_fail "frontend UDP $vip: $(tr '\n' ' ' <"$out")"
done
vt_in_cg "$BA" "$VT_BIN/sl_client" tcp 198.19.0.64:80 -n 3 >"$out" &&
	vt_pass "a service without policy allows everyone" || vt_fail "open: $(tr '\n' ' ' <"$out")"

# --- audit and metric --------------------------------------------------------------------------
audited() { grep -q '"verdict":"deny"' "$VT_TMP/audit.log" 2>/dev/null; }
vt_wait_until 3 audited || vt_fail "no denial in the audit log"
line=$(grep '"service":"web"' "$VT_TMP/audit.log" | grep '"point":"connect"' | head -n 1)
vt_check "audit line: identity batch, pid, comm sl_client, cgroup, uid, frontend ($line)" -O /dev/null -- \
	jq -e --arg cg "$BA" '.verdict == "deny" and .identity == "batch" and .pid > 0 and
	.comm == "sl_client" and .cgroup == $cg and .uid == 0 and .frontend == "198.19.0.60:80" and
	.protocol == "tcp"' <<<"$line"
[ "$(stat -c '%a' "$VT_TMP/audit.log")" = 600 ] && vt_pass "audit log is 0600" ||
	vt_fail "audit log mode $(stat -c '%a' "$VT_TMP/audit.log")"
n=$(metric sluice_rejected_connections_total 'service="web6?",reason="policy"')
[ "$n" -eq 2 ] && vt_pass "sluice_rejected_connections_total{reason=\"policy\"} counts the 2 TCP denials (web, web6)" ||
	vt_fail "web/web6 policy metric $n, want 2"
grep -q '"verdict":"allow"' "$VT_TMP/audit.log" &&
	vt_fail "allowed connections audited without audit: all" ||
	vt_pass "allowed connections are not audited by default"

# --- moved and new cgroups ------------------------------------------------------------------------
(
	echo "$BASHPID" >"$BA/cgroup.procs" || exit 2
	timeout 10 ip netns exec "$VT_ID-node" "$VT_BIN/sl_client" refused 198.19.0.60:80 >"$out.1"
	echo "$BASHPID" >"$FE/cgroup.procs" || exit 2
	exec timeout 10 ip netns exec "$VT_ID-node" "$VT_BIN/sl_client" tcp 198.19.0.60:80 -n 1 >"$out.2"
)
eperm_fast "$out.1" && [ "$(vt_value "$out.2" ok)" -eq 1 ] &&
	vt_pass "a process moved from batch to frontend is allowed from then on" ||
	vt_fail "moved: $(cat "$out.1") / $(tr '\n' ' ' <"$out.2")"
mkdir -p "$FE/late/deeper" "$BA/late" || vt_fail "mkdir late cgroups"
vt_in_cg "$FE/late/deeper" "$VT_BIN/sl_client" tcp 198.19.0.60:80 -n 2 >"$out" &&
	vt_pass "a cgroup made under frontend after start inherits it (2 levels down)" ||
	vt_fail "late frontend: $(tr '\n' ' ' <"$out")"
vt_in_cg "$BA/late" "$VT_BIN/sl_client" refused 198.19.0.60:80 >"$out"
eperm_fast "$out" && vt_pass "a cgroup made under batch after start is refused too" ||
	vt_fail "late batch: $(cat "$out")"

# --- server side: TC ingress on the node ------------------------------------------------------------
be_conn() { # be_conn N: a direct TCP connect from beN to the node's own server
	ip netns exec "$VT_ID-be$1" "$VT_BIN/sl_client" tcp 198.18.0.1:9000 -n 1 --timeout-ms 1500 >"$out"
}
be_conn 1
[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 1 ] &&
	vt_pass "server side: be1 (ipcache: batch) has its SYN dropped at TC ingress" ||
	vt_fail "be1 direct: $(tr '\n' ' ' <"$out")"
be_conn 2
[ "$(vt_value "$out" ok)" -eq 1 ] && vt_pass "server side: be2 (ipcache: peers) connects" ||
	vt_fail "be2 direct: $(tr '\n' ' ' <"$out")"
be_conn 3
[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 1 ] &&
	vt_pass "server side: be3 (unknown address) gets the default, deny" ||
	vt_fail "be3 direct: $(tr '\n' ' ' <"$out")"
tcl=$(grep '"point":"tc_ingress"' "$VT_TMP/audit.log" | grep '"identity":"batch"' | head -n 1)
jq -e '.verdict == "deny" and .service == "local" and (.source | startswith("198.18.1.2:"))' \
	<<<"$tcl" >/dev/null 2>&1 && vt_pass "server-side denial audited ($tcl)" ||
	vt_fail "tc audit: $tcl"
[ "$(metric sluice_rejected_connections_total 'service="local",reason="policy"')" -ge 2 ] &&
	vt_pass "server-side denials counted" || vt_fail "local policy metric"

# --- audit: SIGUSR1 reopen, the monitor's policy stream, a flood -------------------------------------
mon=$VT_TMP/monitor.jsonl
(exec nsenter --net="/run/netns/$VT_ID-node" "$VA_SLUICECTL" --api "$VT_TMP/sluiced.sock" -o json \
	monitor --type policy >"$mon" 2>"$VT_TMP/monitor.err") &
mon_pid=$!
vt_track_pid "$mon_pid"
sleep 0.3
mv "$VT_TMP/audit.log" "$VT_TMP/audit.log.1"
kill -USR1 "$VA_PID"
vt_wait_until 3 va_log_has 'msg="audit log reopened"' || vt_fail "no reopen on SIGUSR1"
vt_in_cg "$BA" "$VT_BIN/sl_client" refused 198.19.0.60:80 >/dev/null
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.64:80 -n 2 >/dev/null
reopened() { grep -q '"verdict":"deny"' "$VT_TMP/audit.log" 2>/dev/null; }
vt_wait_until 3 reopened && [ "$(stat -c '%a' "$VT_TMP/audit.log")" = 600 ] &&
	vt_pass "SIGUSR1 (logrotate): a new 0600 audit.log gets the next denials" ||
	vt_fail "after SIGUSR1: $(ls -l "$VT_TMP"/audit.log* 2>&1)"
has_policy_event() { [ "$(jq -s 'map(select(.type == "policy")) | length' "$mon" 2>/dev/null)" -ge 1 ]; }
vt_wait_until 3 has_policy_event
kill -INT "$mon_pid" 2>/dev/null
wait "$mon_pid" 2>/dev/null
only_policy() { # the monitor showed events, all of type policy, batch's denial among them
	[ "$(jq -s 'length' "$mon")" -ge 1 ] && jq -se 'all(.type == "policy")' "$mon" >/dev/null &&
		jq -se 'any(.verdict == "deny" and .identity == "batch" and .comm == "sl_client")' "$mon" >/dev/null
}
vt_check "sluicectl monitor --type policy: $(jq -s length "$mon") policy events and nothing else (the open/close of the allowed connections filtered out)" \
	-d 'head -c 400 "$mon"' -- only_policy
before=$(grep -c '"verdict":"deny"' "$VT_TMP/audit.log")
lost0=$(va_metrics | awk '$1 == "sluice_events_lost_total" { print $2 }')
supp0=$(va_metrics | awk '$1 == "sluice_audit_events_suppressed_total" { print $2 }')
t0=$(date +%s%N)
vt_in_cg "$BA" "$VT_BIN/sl_client" tcp 198.19.0.60:80 -n 2000 --timeout-ms 200 >"$out"
ms=$((($(date +%s%N) - t0) / 1000000))
dropped_line() { grep -q '"event":"audit_dropped"' "$VT_TMP/audit.log"; }
vt_wait_until 3 dropped_line
lines=$(($(grep -c '"verdict":"deny"' "$VT_TMP/audit.log") - before))
dropped=$(grep '"event":"audit_dropped"' "$VT_TMP/audit.log" | jq -s 'map(.dropped) | add')
lost=$(($(va_metrics | awk '$1 == "sluice_events_lost_total" { print $2 }') - lost0))
# Over the datapath's audit budget per CPU: not emitted, counted (vmtest 42).
supp=$(($(va_metrics | awk '$1 == "sluice_audit_events_suppressed_total" { print $2 }') - supp0))
# The bucket: 200 at once, then 100/s.
max=$((200 + 100 * (ms + 1000) / 1000 + 5))
vt_check "a flood of 2000 denials in ${ms} ms: $lines audit lines (at most $max), $dropped dropped by the log's rate and counted, $lost lost in a full ring buffer and counted, $supp over the datapath's budget and counted" \
	-d 'echo "EPERM $(vt_value "$out" "errno EPERM")"' -- eval '[ "$(vt_value "$out" "errno EPERM")" -eq 2000 ] &&
	[ "$lines" -le "$max" ] && [ "$((lines + dropped + lost + supp))" -eq 2000 ]'

# --- CLI ---------------------------------------------------------------------------------------------
va_ctl identities >"$out"
grep -qE '^batch +id=2 +cgroup_ids=[0-9]+ addresses=198.18.1.2/32' "$out" &&
	grep -qE '^peers .*addresses=.*2001:db8:1::3/128' "$out" &&
	vt_pass "sluicectl identities: $(tr '\n' ';' <"$out")" || vt_fail "identities: $(cat "$out")"
va_ctl policy web >"$out"
grep -qE '^web +default=deny allow_from=frontend deny_from= rejected=[1-9]' "$out" &&
	vt_pass "sluicectl policy web: $(cat "$out")" || vt_fail "policy web: $(cat "$out")"

# --- a policy change under load; a bad policy ---------------------------------------------------------
hold=$VT_TMP/hold.out
vt_in_cg "$FE" python3 "$VT_ROOT/vmtests/tools/rt_hold.py" 198.19.0.63 7000 3 4 100 >"$hold" 2>"$VT_TMP/hold.err" &
hp=$!
vt_wait_until 5 grep -q 'ready 3' "$hold" || vt_fail "holder: $(cat "$VT_TMP/hold.err")"
# A label that gives an address an identity its CIDRs do not (be3 is not peers') is refused
# with FILE:LINE:COL, and the previous config keeps serving.
policy_cfg batch ", identity: peers" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_has "cannot have identity 'peers': no address of 'peers'" &&
	vt_pass "an identity label outside the identity's CIDRs is refused with FILE:LINE:COL" ||
	vt_fail "label outside peers' CIDRs not refused"
be_conn 3
[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 1 ] &&
	vt_pass "be3 (unlabelled, unknown) still gets the default, deny" ||
	vt_fail "be3 after the refused label: $(tr '\n' ' ' <"$out")"
policy_cfg batch "" | va_config "$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="service updated" service=echo' 1 || vt_fail "policy change not applied"
vt_in_cg "$FE" "$VT_BIN/sl_client" refused 198.19.0.63:7000 >"$out"
eperm_fast "$out" && vt_pass "after the change, new connections from frontend are refused" ||
	vt_fail "after change: $(cat "$out")"
wait "$hp"
[ $? -eq 0 ] && vt_pass "established connections kept their round trips through the change ($(tr '\n' ' ' <"$hold"))" ||
	vt_fail "holder: $(tr '\n' ' ' <"$hold") $(cat "$VT_TMP/hold.err")"
sed 's/allow_from: \[batch\]}/allow_from: [nobody]}/' "$cfg" >"$cfg.new" && mv "$cfg.new" "$cfg"
vt_wait_until 5 va_log_has "names identity 'nobody', which 'identities' does not define" &&
	vt_pass "a policy naming an unknown identity is refused with FILE:LINE:COL" ||
	vt_fail "bad policy not reported"
vt_in_cg "$FE" "$VT_BIN/sl_client" refused 198.19.0.63:7000 >"$out"
eperm_fast "$out" && vt_pass "and the previous policy keeps serving" || vt_fail "after bad: $(cat "$out")"

# agent.audit: all audits allowed connections too (a reload switches it).
sed -i 's|^  interfaces: \[vt-rtr\]$|  interfaces: [vt-rtr]\n  audit: all|' "$cfg"
sed -i 's/allow_from: \[nobody\]}/allow_from: [batch]}/' "$cfg"
vt_wait_until 5 va_log_count_ge 'msg="config applied"' 3 || vt_fail "audit: all not applied"
vt_in_cg "$FE" "$VT_BIN/sl_client" tcp 198.19.0.60:80 -n 1 >/dev/null
allowed() { grep '"verdict":"allow"' "$VT_TMP/audit.log" | grep -q '"identity":"frontend"'; }
vt_wait_until 3 allowed && vt_pass "with audit: all, an allowed connection is audited too" ||
	vt_fail "no allow line with audit: all"

va_stop
vt_finish
