#!/usr/bin/env bash
# Reverse translation cannot be taken away by another process: a long-lived connected UDP socket
# and a long-lived TCP socket to VIPs keep seeing the VIP in getpeername() and recvmsg() while
# another process in the same cgroup churns 100 000 short UDP sockets through a VIP (each
# connect() is a translation to store). Both run on CPU 0: with the translations in one LRU
# shared by all sockets (before), that evicted the long-lived sockets' entries; an attacker can
# as well run one churner per CPU. Translations live in the socket itself, so none is ever
# evicted, and none failed to be stored (sluice_revnat_update_failures_total stays 0).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init revnat
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
vt_require_tools
[ -x "$VT_BIN/sl_stress" ] || vt_skip "build/vmtests/sl_stress is missing (make all)"
(exec ip netns exec "$VT_ID-be1" "$VT_BIN/sl_xfer" serve --port 7000 --mode echo --seconds 120 \
	>"$VT_TMP/echo.log" 2>&1) &
vt_track_pid $!

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: dns
    frontend: 198.19.0.80:53
    protocol: udp
    backends: [{address: 198.18.1.2:8080}]
  - name: db
    frontend: 198.19.0.81:7000
    backends: [{address: 198.18.1.2:7000}]
  - name: churn
    frontend: 198.19.0.82:53
    protocol: udp
    backends: [{address: 198.18.1.3:8080}, {address: 198.18.1.4:8080}]
YAML
va_start "$cfg" || vt_finish
metric() { va_metrics | awk -v m="$1" '$1 == m { print $2 }'; }
out=$VT_TMP/peer.out
go=$VT_TMP/go

vt_in_cgroup taskset -c 0 "$VT_BIN/sl_stress" peer --udp 198.19.0.80:53 --tcp 198.19.0.81:7000 --go "$go" \
	--seconds 60 >"$out" 2>"$VT_TMP/peer.err" &
peer=$!
vt_wait_until 10 grep -q '^ready' "$out" || vt_fail "peer never ready: $(cat "$out" "$VT_TMP/peer.err")"
[ "$(grep -c '^before .* ok$' "$out")" -eq 3 ] &&
	vt_pass "before the churn: getpeername (UDP, TCP) and recvmsg (UDP) show the VIPs" ||
	vt_fail "before the churn: $(tr '\n' ';' <"$out")"

t0=$(date +%s)
vt_in_cgroup taskset -c 0 "$VT_BIN/sl_stress" churn 198.19.0.82:53 -n 100000 --seconds 60 >"$VT_TMP/churn.out" 2>&1
churned=$(awk '$1 == "churned" { print $2 }' "$VT_TMP/churn.out")
[ "${churned:-0}" -eq 100000 ] &&
	vt_pass "another process churned 100000 UDP sockets through a VIP in $(($(date +%s) - t0)) s" ||
	vt_fail "churn: $(tr '\n' ' ' <"$VT_TMP/churn.out")"

touch "$go"
wait "$peer"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c '^after .* ok$' "$out")" -eq 3 ]; then
	vt_pass "after the churn the long-lived sockets still see the VIPs ($(grep '^after' "$out" | tr '\n' ';'))"
else
	vt_fail "after the churn: $(grep '^after' "$out" | tr '\n' ';') $(cat "$VT_TMP/peer.err")"
fi
f=$(metric sluice_revnat_update_failures_total)
[ "$f" = 0 ] && vt_pass "sluice_revnat_update_failures_total is 0" ||
	vt_fail "sluice_revnat_update_failures_total: '$f'"
va_stop
vt_finish
