#!/usr/bin/env bash
# Least privilege (spec §8): once attached and applied, the running agent holds exactly
# CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (effective, permitted and bounding); the API socket
# and every pin are 0600; an unprivileged user can neither reach the API nor change a map
# through its pin, even with the directories on the way opened up. The dropped agent still
# reloads (a Maglev service added) and attaches TC to an interface created later.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

for t in setpriv bpftool curl; do
	command -v "$t" >/dev/null || vt_skip "needs $t"
done
id nobody >/dev/null 2>&1 || vt_skip "needs a user nobody"
vt_world privs

# CAP_NET_ADMIN 12, CAP_PERFMON 38, CAP_BPF 39.
KEEP=$(printf '%016x' $(((1 << 12) | (1 << 38) | (1 << 39))))
cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
  interfaces: [vt-*]
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
YAML
va_start "$cfg" || vt_finish

capline() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$VA_PID/status"; }
for set in CapEff CapPrm CapBnd; do
	[ "$(capline $set)" = "$KEEP" ] && vt_pass "$set = $KEEP (bpf, net_admin, perfmon)" ||
		vt_fail "$set = $(capline $set), want $KEEP"
done
[ "$(capline CapInh)" = 0000000000000000 ] && [ "$(capline CapAmb)" = 0000000000000000 ] &&
	vt_pass "no inheritable or ambient capabilities" ||
	vt_fail "CapInh $(capline CapInh) CapAmb $(capline CapAmb)"
va_log_has 'msg="capabilities dropped" kept=cap_net_admin,cap_perfmon,cap_bpf' &&
	vt_pass "the drop is logged" || vt_fail "no 'capabilities dropped' log line"

# Still works with the reduced set: a reload adds a Maglev service (a new inner map) ...
va_config "$cfg" <<'YAML'
  interfaces: [vt-*]
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: round_robin
    backends:
      - address: 198.18.1.2:8080
  - name: mag
    frontend: 198.19.0.11:80
    lb: maglev
    backends:
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
YAML
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
if vt_wait_until 5 va_log_has 'msg="tc attached" interface=vt-late'; then
	vt_pass "an interface created after the drop got the TC programs"
else
	vt_fail "vt-late not attached: $(grep -m1 'vt-late' "$VA_LOG")"
fi

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
code=$(vt_node curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$sock" \
	http://sluice/v1/events)
[ "$code" = 200 ] && vt_pass "root reaches the API (control)" || vt_fail "root: HTTP $code"
if nobody curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://sluice/v1/events \
	2>"$VT_TMP/nobody.err"; then
	vt_fail "nobody reached the API socket"
else
	vt_pass "nobody cannot connect to the API socket"
fi
pin=$VT_BPFFS/sluice_settings
bpftool map lookup pinned "$pin" key 0 0 0 0 >/dev/null 2>&1 &&
	vt_pass "root reads the pinned map (control)" || vt_fail "root cannot read $pin"
if nobody bpftool map update pinned "$pin" key 0 0 0 0 value 1 0 0 0 0 0 0 0 \
	>"$VT_TMP/bpftool.out" 2>&1; then
	vt_fail "nobody updated $pin"
else
	vt_pass "nobody cannot update a pinned map: $(head -n1 "$VT_TMP/bpftool.out")"
fi
if nobody python3 -c 'import sys; open(sys.argv[1], "rb")' "$pin" 2>/dev/null; then
	vt_fail "nobody opened $pin"
else
	vt_pass "nobody cannot open a pin"
fi

va_stop TERM
[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
vt_finish
