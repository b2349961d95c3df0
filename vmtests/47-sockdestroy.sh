#!/usr/bin/env bash
# Sockets stuck on dead backends (bpf_sock_destroy, kernel 6.5+): a connected UDP client whose
# backend is removed or turns unhealthy gets an error within 1 s and, reconnected, reaches a
# live backend (no UDP backend is ever ejected: outlier_detection is TCP only); draining closes
# nothing; close_on_removal closes TCP connections to a removed backend (and only with it); a
# socket outside agent.cgroup connected to the same backend is untouched;
# sluice_sockets_closed_total counts exactly. Unconnected UDP: one socket's datagrams spread by
# lb and weights, every reply from the frontend.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world sockdes
command -v bpftool >/dev/null || vt_skip "bpftool is missing"
DNS=$VT_BIN/sl_dns
[ -x "$DNS" ] || vt_skip "$DNS is missing (make all)"
# Without the kfunc (Debian 12's 6.1) the agent must say so, and the rest is the UDP lb.
have_sd=1
grep -qw bpf_sock_destroy < <(bpftool btf dump file /sys/kernel/btf/vmlinux 2>/dev/null) || have_sd=0

# Health-check targets: hcN on :9053 of beN; stopping one makes its backend unhealthy. And
# beNb on :8081, for a service of six backends.
for i in 1 2 3; do
	vt_server "$VT_ID-be$i" "hc$i" 9053 || vt_finish
	vt_server "$VT_ID-be$i" "be${i}b" 8081 || vt_finish
done

ip_of() { echo "198.18.1.$(($1 + 1))"; }

# udp_service NAME FRONTEND LB BACKEND...: the YAML of a UDP service of those backends (ADDR:PORT).
udp_service() {
	local b
	printf '  - name: %s\n    frontend: %s\n    protocol: udp\n    lb: %s\n    backends:\n' "$1" "$2" "$3"
	shift 3
	for b; do
		printf '      - address: %s\n' "$b"
	done
}

cfg=$VT_TMP/sluice.yaml
# write_cfg "DNS_BACKEND_NUMBERS" WEB_BACKEND_NUMBER: the services, with those backends.
write_cfg() {
	local i three="198.18.1.2:8080 198.18.1.3:8080 198.18.1.4:8080"
	{
		cat <<'YAML'
services:
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    lb: random
    health_check: {type: tcp, port: 9053, interval: 200ms, timeout: 150ms,
                   healthy_threshold: 1, unhealthy_threshold: 1}
    backends:
YAML
		for i in $1; do
			printf '      - address: %s:8080\n' "$(ip_of "$i")"
		done
		cat <<YAML
  - name: spread
    frontend: 198.19.0.54:53
    protocol: udp
    lb: random
    backends:
      - {address: 198.18.1.2:8080, weight: 1}
      - {address: 198.18.1.3:8080, weight: 3}
YAML
		# shellcheck disable=SC2086 # $three: three backends, one word each
		{
			udp_service spread-rr 198.19.0.55:53 round_robin $three
			udp_service spread-maglev 198.19.0.56:53 maglev $three
			udp_service spread-six 198.19.0.57:53 round_robin $three \
				198.18.1.2:8081 198.18.1.3:8081 198.18.1.4:8081
		}
		cat <<YAML
  - name: web
    frontend: 198.19.0.80:80
    close_on_removal: true
    backends:
      - address: $(ip_of "$2"):8080
  - name: web-keep
    frontend: 198.19.0.81:80
    backends:
      - address: $(ip_of "$2"):8080
YAML
	} | va_config "$cfg"
}

applied=0
# reload "DNS_BACKENDS" WEB_BACKEND: rewrite the config, SIGHUP, wait for it to be applied.
reload() {
	write_cfg "$1" "$2"
	applied=$((applied + 1))
	kill -HUP "$VA_PID"
	vt_wait_until 5 va_log_count_ge 'msg="config applied"' "$applied" ||
		vt_fail "reload $applied was not applied"
}

write_cfg "1 2 3" 1
va_start "$cfg" || vt_finish
applied=1
if [ "$have_sd" = 1 ]; then
	vt_check "agent: sockets on dead backends are closed with bpf_sock_destroy" -- \
		va_log_has 'msg="sockets on dead backends are closed with bpf_sock_destroy"'
else
	vt_check "agent: says at start that the kernel lacks bpf_sock_destroy" -- \
		va_log_has 'level=warn msg="the kernel lacks bpf_sock_destroy'
	vt_check "sluiced --version: bpf_sock_destroy no" -- \
		eval '"$VA_SLUICED" --version | grep -qE "^  bpf_sock_destroy +no "'
fi
vt_wait_until 5 eval '[ "$(va_ctl -o json services dns | jq "[.[0].backends[].state] | map(select(. == \"healthy\")) | length")" = 3 ]' ||
	vt_fail "dns: not all three backends healthy"

closed_metric() { # SERVICE PROTOCOL: sluice_sockets_closed_total's value
	va_metrics | awk -v s="sluice_sockets_closed_total{service=\"$1\",protocol=\"$2\"}" \
		'$1 == s { print $2; f = 1 } END { if (!f) print "absent" }'
}

# --- unconnected UDP: per-datagram lb and weights, replies from the frontend ---------------
out=$VT_TMP/spread.out
vt_check "unconnected, random 1:3: 400 datagrams from one socket, every reply from the VIP" \
	-o "$out" -- vt_in_cgroup "$DNS" unconnected 198.19.0.54:53 -n 400
vt_counts_within "$out" 60 140 be1
vt_counts_within "$out" 260 340 be2
out=$VT_TMP/spread-rr.out
vt_check "unconnected, round_robin: 300 datagrams from one socket, every reply from the VIP" \
	-o "$out" -- vt_in_cgroup "$DNS" unconnected 198.19.0.55:53 -n 300
vt_counts_within "$out" 80 120 be1 be2 be3
# Six backends, six datagrams sent before their answers are read: the socket keeps 4
# translations, so 2 answers come from backends whose translation was replaced.
out=$VT_TMP/spread-six.out
vt_check "unconnected, round_robin over 6, bursts of 6: 120 datagrams, every reply from the VIP" \
	-o "$out" -- vt_in_cgroup "$DNS" unconnected 198.19.0.57:53 -n 120 --burst 6
vt_counts_within "$out" 14 26 be1 be2 be3 be1b be2b be3b
# maglev hashes the flow: one bound socket is one flow, and stays on one backend.
out=$VT_TMP/spread-maglev.out
vt_check "unconnected, maglev: one socket's 100 datagrams go to one backend" -o "$out" -- \
	eval 'vt_in_cgroup "$DNS" unconnected 198.19.0.56:53 -n 100 && [ "$(grep -c "^be[123] 100$" "$out")" = 1 ]'

if [ "$have_sd" = 0 ]; then
	vt_log "the kernel lacks bpf_sock_destroy: closing sockets on dead backends is not tested"
	va_stop
	vt_finish
fi

# --- connected UDP ------------------------------------------------------------------------
# start_client NAME [SECONDS]: the resolver loop in the cgroup, in the background (CLIENT_PID);
# BE is the number of the backend of its first reply.
start_client() {
	local out=$VT_TMP/$1.out
	(vt_in_cgroup "$DNS" connected 198.19.0.53:53 --seconds "${2:-6}" >"$out" 2>&1) &
	CLIENT_PID=$!
	vt_track_pid "$CLIENT_PID"
	BE=1
	vt_wait_until 3 grep -qs ' reply ' "$out" || {
		vt_fail "$1: no first reply"
		return 1
	}
	BE=$(awk '$2 == "reply" { print substr($3, 3); exit }' "$out")
}

# check_closed NAME T0_MS BE WHAT: the client's first error came within 1 s of T0, and after
# it every reply was from another backend (and there were some).
check_closed() {
	local out=$VT_TMP/$1.out t0=$2 be=$3 what=$4 terr after stale
	wait "$CLIENT_PID" 2>/dev/null
	terr=$(awk '$2 == "error" { print $1; exit }' "$out")
	vt_check "$what: the stuck socket got an error within 1 s ($((${terr:-0} - t0)) ms)" \
		-d 'tail -n 3 "$out"' -- eval '[ -n "$terr" ] && [ $((terr - t0)) -ge 0 ] && [ $((terr - t0)) -le 1000 ]'
	after=$(awk -v t="${terr:-0}" '$2 == "reply" && $1 > t' "$out" | wc -l)
	stale=$(awk -v t="${terr:-0}" -v b="be$be" '$2 == "reply" && $1 > t && $3 == b' "$out" | wc -l)
	vt_check "$what: reconnected, $after replies after it, none from be$be" -d 'tail -n 3 "$out"' -- \
		eval '[ -n "$terr" ] && [ "$after" -ge 10 ] && [ "$stale" -eq 0 ]'
}

# Removal, with a socket outside agent.cgroup connected to the same backend directly.
start_client removed
be=$BE
(exec timeout -k 2 10 ip netns exec "$VT_ID-node" "$DNS" connected "$(ip_of "$be"):8080" \
	--seconds 3 >"$VT_TMP/outside.out" 2>&1) &
outside=$!
vt_track_pid "$outside"
vt_wait_until 3 grep -qs ' reply ' "$VT_TMP/outside.out" || vt_fail "outside client: no first reply"
keep=$(echo 1 2 3 | tr ' ' '\n' | grep -vx "$be" | tr '\n' ' ')
t0=$(date +%s%3N)
reload "$keep" 1
check_closed removed "$t0" "$be" "removed backend be$be"
wait "$outside" 2>/dev/null
vt_check "a socket outside agent.cgroup on be$be's address: untouched, every reply from be$be" \
	-d 'tail -n 4 "$VT_TMP/outside.out"' -- \
	eval '[ "$(vt_value "$VT_TMP/outside.out" errors)" = 0 ] && [ "$(vt_value "$VT_TMP/outside.out" ok)" = "$(vt_value "$VT_TMP/outside.out" "be$be")" ] && [ "$(vt_value "$VT_TMP/outside.out" ok)" -ge 10 ]'
vt_check "sluice_sockets_closed_total{dns,udp} = 1" -d 'closed_metric dns udp' -- \
	eval '[ "$(closed_metric dns udp)" = 1 ]'
reload "1 2 3" 1
vt_wait_until 5 eval '[ "$(va_ctl -o json services dns | jq "[.[0].backends[].state] | map(select(. == \"healthy\")) | length")" = 3 ]' ||
	vt_fail "dns: not all three backends healthy again"

# Draining closes nothing: the client stays on its backend, with no error.
start_client drained 3
be=$BE
va_ctl drain dns "$(ip_of "$be"):8080" >/dev/null || vt_fail "drain be$be"
wait "$CLIENT_PID" 2>/dev/null
vt_check "draining be$be: no error, every reply from be$be" -d 'tail -n 4 "$VT_TMP/drained.out"' -- \
	eval '[ "$(vt_value "$VT_TMP/drained.out" errors)" = 0 ] && [ "$(vt_value "$VT_TMP/drained.out" ok)" = "$(vt_value "$VT_TMP/drained.out" "be$be")" ]'
va_ctl undrain dns "$(ip_of "$be"):8080" >/dev/null || vt_fail "undrain be$be"

# Unhealthy: its health server stops; measured from the agent's "backend unhealthy" line.
start_client unhealthy
be=$BE
vt_server_stop "hc$be"
vt_wait_until 3 va_log_has "msg=\"backend unhealthy\" service=dns backend=$(ip_of "$be"):8080" ||
	vt_fail "be$be did not turn unhealthy"
ts=$(grep -m1 "msg=\"backend unhealthy\" service=dns backend=$(ip_of "$be"):8080" "$VA_LOG" |
	sed 's/^ts=\([^ ]*\)Z .*/\1/')
t0=$(date -u -d "$ts" +%s%3N)
check_closed unhealthy "$t0" "$be" "unhealthy backend be$be"
vt_server "$VT_ID-be$be" "hc$be" 9053 || vt_fail "restart hc$be"
vt_wait_until 5 eval '[ "$(va_ctl -o json services dns | jq "[.[0].backends[].state] | map(select(. == \"healthy\")) | length")" = 3 ]' ||
	vt_fail "dns: not all three backends healthy again"

vt_check "sluice_sockets_closed_total{dns,udp} = 2 (removed, unhealthy; not drained)" \
	-d 'closed_metric dns udp' -- eval '[ "$(closed_metric dns udp)" = 2 ]'

# --- TCP: close_on_removal ------------------------------------------------------------------
# sl_server closes a connection 2 s after it opened: a reset before that is the agent's.
(vt_in_cgroup "$DNS" hold 198.19.0.80:80 --seconds 4 >"$VT_TMP/web.out" 2>&1) &
vt_track_pid $!
web=$!
(vt_in_cgroup "$DNS" hold 198.19.0.81:80 --seconds 4 >"$VT_TMP/keep.out" 2>&1) &
vt_track_pid $!
keep=$!
vt_wait_until 2 eval 'grep -q connected "$VT_TMP/web.out" && grep -q connected "$VT_TMP/keep.out"' ||
	vt_fail "TCP clients did not connect"
t0=$(date +%s%3N)
reload "1 2 3" 2
wait "$web" "$keep" 2>/dev/null
terr=$(awk '$2 == "error" { print $1; exit }' "$VT_TMP/web.out")
vt_check "close_on_removal: the TCP connection to the removed be1 was aborted within 1 s" \
	-d 'cat "$VT_TMP/web.out"' -- \
	eval 'grep -q " error ECONNABORTED" "$VT_TMP/web.out" && [ $((terr - t0)) -le 1000 ]'
vt_check "without close_on_removal: the TCP connection to the removed be1 ended by the server" \
	-d 'cat "$VT_TMP/keep.out"' -- grep -q ' eof$' "$VT_TMP/keep.out"
vt_check "sluice_sockets_closed_total{web,tcp} = 1, {web-keep,tcp} = 0, {dns,udp} still 2" \
	-d 'va_metrics | grep sluice_sockets_closed_total' -- \
	eval '[ "$(closed_metric web tcp)" = 1 ] && [ "$(closed_metric web-keep tcp)" = 0 ] && [ "$(closed_metric dns udp)" = 2 ]'

va_stop # under SAN=1, a sanitizer report in the agent log fails the test
vt_finish
