#!/usr/bin/env bash
# Tracing, the datapath alone: the records on sluice_spans (read with spans_dump), with the
# tracing settings written straight into the pinned sluice_settings (no tracing: block).
# A traceparent with the sampled flag gives exactly one record in that trace, with exact
# byte counts; the flag unset gives none even at sample 1; no header at sample 0 gives none,
# at sample 1 one per connection, each in its own trace; a connect refused for want of a
# backend is a record with drop = no_backend + 1; IPv6; a same-node redirected connection;
# tracing off gives nothing.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world tracedp
X=$VT_BIN/sl_xfer
D=$VT_BIN/spans_dump
[ -x "$D" ] && [ -x "$X" ] || vt_skip "build/vmtests/spans_dump or sl_xfer missing (make all)"
command -v python3 >/dev/null || vt_skip "no python3 (the HTTP backend)"
node=$VT_ID-node
TID=4bf92f3577b34da6a3ce929d0e0e4736
PID=00f067aa0ba902b7

# bg NS CMD...: CMD in netns NS, in the background, tracked. in_cgroup_bg: also in the cgroup.
bg() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@" >>"$VT_TMP/servers.log" 2>&1 &
	vt_track_pid $!
}
in_cgroup_bg() {
	(
		echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
		exec ip netns exec "$node" "$@"
	) >>"$VT_TMP/servers.log" 2>&1 &
	vt_track_pid $!
}
for i in 1 2 3; do
	bg "$VT_ID-be$i" "$X" serve --port 7000 --mode echo --seconds 280
done
bg "$VT_ID-be1" python3 -m http.server 8081 --bind :: --directory "$VT_TMP"
in_cgroup_bg "$X" serve --port 7001 --mode echo --seconds 280
echo hello >"$VT_TMP/index.html"

cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<YAML
  redirect: local
identities:
  - name: client
    cgroups: [$VT_CGROUP]
services:
  - name: http
    frontend: 198.19.0.20:80
    backends:
      - address: 198.18.1.2:8081
  - name: echo
    frontend: 198.19.0.21:7000
    backends:
      - address: 198.18.1.2:7000
      - address: 198.18.1.3:7000
      - address: 198.18.1.4:7000
  - name: plain
    frontend: 198.19.0.22:80
    backends:
      - address: 198.18.1.2:8080
  - name: echo6
    frontend: "[2001:db8:f::21]:7000"
    backends:
      - address: "[2001:db8:1::3]:7000"
  - name: local
    frontend: 198.19.0.70:7000
    backends:
      - address: 127.0.0.1:7001
  - name: empty
    frontend: 198.19.0.99:80
YAML
va_start "$cfg" || vt_finish

# Without a tracing: block the agent leaves the egress program unattached (it costs nothing
# then); this test drives the datapath alone, so it attaches the program itself. Removing
# the cgroup at cleanup detaches it.
vt_check "no tracing: block: the egress program is loaded but not attached" -- \
	eval '[ -n "$(va_trace_egress)" ] &&
	! va_ctl -o json status | jq -e ".programs[] | select(.name == \"sluice_trace_egress\")" >/dev/null'
vt_check "attach it for the datapath test" -- \
	eval 'bpftool cgroup attach "$VT_CGROUP" egress id "$(va_trace_egress)" multi'

# drain FILE: the records now on the ring, one JSON line each, into FILE.
drain() {
	sleep 0.5
	vt_node "$D" --pin "$VT_BPFFS/sluice_spans" --seconds 10 --idle-ms 1000 >"$1"
}
lines() { wc -l <"$1" | tr -d ' '; }
# request FILE BYTES [HEADER]: an HTTP/1.1 request head of exactly BYTES bytes.
request() {
	local head
	head=$(printf 'GET / HTTP/1.1\r\nHost: echo\r\n%sX-Pad: ' "${3:+$3$'\r\n'}")
	{
		printf '%s' "$head"
		head -c $(($2 - ${#head} - 4)) /dev/zero | tr '\0' 'x'
		printf '\r\n\r\n'
	} >"$1"
}
# sends N FILE TARGET [METHOD]: N sl_xfer sends from the cgroup, one after another; fails on
# any failure.
sends() {
	local n=$1 f=$2 t=$3 i
	for ((i = 0; i < n; i++)); do
		vt_in_cgroup "$X" send "$t" --file "$f" --method "${4:-write}" >/dev/null || return 1
	done
}
flip() { [ "$(cat "$VT_TMP/flip")" = 1 ]; }

request "$VT_TMP/req-none" 1000
request "$VT_TMP/req-01" 1000 "traceparent: 00-$TID-$PID-01"
request "$VT_TMP/req-00" 1000 "Traceparent: 00-$TID-$PID-00"
request "$VT_TMP/req6" 700 "TRACEPARENT:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
head -c 65536 /dev/urandom | tr -d '\n' | head -c 60000 >"$VT_TMP/pad"
{ cat "$VT_TMP/req-01" "$VT_TMP/pad"; } >"$VT_TMP/req-big"

# The backend's server was started in the background: wait until it answers (tracing is
# still off, so this makes no record).
vt_check "the backend answers through the VIP" -- vt_wait_until 10 vt_in_cgroup curl -q -s \
	--max-time 2 -o /dev/null http://198.19.0.20/index.html
vt_check "tracing on, sample 0 (bpftool on the pinned settings)" -- va_set_trace 1 0
drain "$VT_TMP/r0.json"

# 1. curl with a sampled traceparent: one record, that trace, exact bytes.
out=$VT_TMP/curl.out
vt_check "curl with traceparent -01 to the VIP" -o "$out" -- vt_in_cgroup curl -q -sS --max-time 5 \
	-H "traceparent: 00-$TID-$PID-01" -o /dev/null -w '%{size_request} %{size_header} %{size_download}\n' \
	http://198.19.0.20/index.html
read -r req hdr body <"$out"
drain "$VT_TMP/r1.json"
vt_check "exactly one record, in the caller's trace, its parent, sampled+parent flags" \
	-d 'cat "$VT_TMP/r1.json"' -- eval '[ "$(lines "$VT_TMP/r1.json")" -eq 1 ] &&
	jq -e --arg t "$TID" --arg p "$PID" ".trace_id == \$t and .parent_id == \$p and .flags == 3
		and .drop == 0 and .reason == 1" "$VT_TMP/r1.json" >/dev/null'
vt_check "its addresses: 198.19.0.20:80 -> 198.18.1.2:8081, from 198.18.0.1; identity client" \
	-d 'cat "$VT_TMP/r1.json"' -- jq -e '.fe == "198.19.0.20" and .fe_port == 80 and
	.be == "198.18.1.2" and .be_port == 8081 and .src == "198.18.0.1" and .sport > 0 and
	.family == 2 and .svc_id > 0 and .be_id > 0 and .connect_ns > 0 and
	.start_ns + .connect_ns <= .end_ns and .cookie > 0 and .identity == 1' "$VT_TMP/r1.json"
vt_check "its bytes: sent $req (curl's request), received $((hdr + body)) (head + body)" \
	-d 'cat "$VT_TMP/r1.json"' -- jq -e --argjson s "$req" --argjson r "$((hdr + body))" \
	'.bytes_sent == $s and .bytes_received == $r' "$VT_TMP/r1.json"

# 2. The sampled flag unset: not traced, even with sample 1.
vt_check "sample 1" -- va_set_trace 1 4294967295
vt_check "100 connections with traceparent -00 (name in mixed case)" -- sends 100 "$VT_TMP/req-00" 198.19.0.21:7000
drain "$VT_TMP/r2.json"
vt_check "-00 at sample 1: no record" -d 'head -3 "$VT_TMP/r2.json"' -- [ "$(lines "$VT_TMP/r2.json")" -eq 0 ]

# 3. No header, sample 0: nothing, with a payload or without one.
vt_check "sample 0" -- va_set_trace 1 0
vt_check "100 connections without traceparent, 100 without payload" -- eval 'sends 100 \
	"$VT_TMP/req-none" 198.19.0.21:7000 && vt_client tcp 198.19.0.22:80 -n 100 >/dev/null'
drain "$VT_TMP/r3.json"
vt_check "sample 0 without traceparent: no record" -d 'head -3 "$VT_TMP/r3.json"' -- \
	[ "$(lines "$VT_TMP/r3.json")" -eq 0 ]
# Only the first write is looked at: a sampled traceparent sent 2..16 bytes a write is not
# found, and the connection is sampled as one without (bpf/lib/trace.h).
vt_check "10 connections with traceparent -01 written 2..16 bytes at a time" -- \
	sends 10 "$VT_TMP/req-01" 198.19.0.21:7000 small
drain "$VT_TMP/r3b.json"
vt_check "a header split across writes is not found: sample 0, no record" \
	-d 'head -3 "$VT_TMP/r3b.json"' -- [ "$(lines "$VT_TMP/r3b.json")" -eq 0 ]

# 4. No header, sample 1: one record each, each a new trace, exact bytes.
vt_check "sample 1" -- va_set_trace 1 4294967295
vt_check "100 connections without traceparent (1000 bytes each way)" -- \
	sends 100 "$VT_TMP/req-none" 198.19.0.21:7000
drain "$VT_TMP/r4.json"
vt_check "sample 1: 100 records, 100 distinct trace ids, no parent, 1000 bytes each way" \
	-d 'echo "$(lines "$VT_TMP/r4.json") records, $(jq -r .trace_id "$VT_TMP/r4.json" | sort -u | wc -l) ids; $(head -1 "$VT_TMP/r4.json")"' -- \
	eval '[ "$(lines "$VT_TMP/r4.json")" -eq 100 ] &&
	[ "$(jq -r .trace_id "$VT_TMP/r4.json" | sort -u | wc -l)" -eq 100 ] &&
	jq -se "all(.parent_id == \"0000000000000000\" and .flags == 1 and .bytes_sent == 1000
		and .bytes_received == 1000 and .fe == \"198.19.0.21\" and .drop == 0 and .identity == 1)" "$VT_TMP/r4.json" >/dev/null'
vt_check "100 connections without payload" -- eval 'vt_client tcp 198.19.0.22:80 -n 100 >/dev/null'
drain "$VT_TMP/r4b.json"
vt_check "... decided at their close: 100 records, no bytes sent" \
	-d 'echo "$(lines "$VT_TMP/r4b.json") records; $(jq -c "select(.bytes_sent != 0)" "$VT_TMP/r4b.json" | head -2)"' -- \
	eval '[ "$(lines "$VT_TMP/r4b.json")" -eq 100 ] && jq -se "all(.bytes_sent == 0)" "$VT_TMP/r4b.json" >/dev/null'

# 5. Refused at connect(): no backend.
vt_check "connect to a service without backends is refused" -o /dev/null -- vt_client refused 198.19.0.99:80
drain "$VT_TMP/r5.json"
vt_check "the refusal is a record with drop = no_backend + 1 and no backend" -d 'cat "$VT_TMP/r5.json"' -- \
	eval '[ "$(lines "$VT_TMP/r5.json")" -eq 1 ] && jq -e ".drop == 1 and .be_id == 0 and .be == \"0.0.0.0\"
		and .fe == \"198.19.0.99\" and .fe_port == 80 and .svc_id > 0 and .identity == 1" "$VT_TMP/r5.json" >/dev/null'

# 6. IPv6, the header in upper case without a blank.
vt_check "sample 0" -- va_set_trace 1 0
vt_check "an IPv6 connection with a sampled traceparent" -- sends 1 "$VT_TMP/req6" "[2001:db8:f::21]:7000"
drain "$VT_TMP/r6.json"
vt_check "IPv6: one record, its trace, 700 bytes each way, [2001:db8:1::3]:7000" -d 'cat "$VT_TMP/r6.json"' -- \
	eval '[ "$(lines "$VT_TMP/r6.json")" -eq 1 ] && jq -e ".trace_id == \"0af7651916cd43dd8448eb211c80319c\"
		and .parent_id == \"b7ad6b7169203331\" and .family == 10 and .be == \"2001:db8:1::3\"
		and .fe == \"2001:db8:f::21\" and .bytes_sent == 700 and .bytes_received == 700" "$VT_TMP/r6.json" >/dev/null'

# 7. Same node, redirected socket to socket (agent.redirect: local).
big=$(stat -c %s "$VT_TMP/req-big")
metric() { va_metrics | awk -v n="$1" '$1 == n { print $2 }'; }
b0=$(metric sluice_redirected_bytes_total)
vt_check "a same-node connection with a sampled traceparent, $big bytes" -- sends 1 "$VT_TMP/req-big" 198.19.0.70:7000
redirected() { b1=$(metric sluice_redirected_bytes_total) && [ $((b1 - b0)) -eq $((2 * big)) ]; }
vt_check "... was redirected by sk_msg, both ways" -d 'echo "$((b1 - b0)) bytes"' -- vt_wait_until 5 redirected
drain "$VT_TMP/r7.json"
vt_check "redirected: one record, its trace, redirected flag, $big bytes each way" -d 'cat "$VT_TMP/r7.json"' -- \
	eval '[ "$(lines "$VT_TMP/r7.json")" -eq 1 ] && jq -e --arg t "$TID" --argjson n "$big" ".trace_id == \$t
		and .flags == 7 and .be == \"127.0.0.1\" and .be_port == 7001 and .bytes_sent == \$n
		and .bytes_received == \$n and .identity == 1" "$VT_TMP/r7.json" >/dev/null'

# 8. Tracing off: nothing, whatever the header says.
vt_check "tracing off" -- va_set_trace 0 4294967295
vt_check "10 connections with traceparent -01, 10 without" -- eval 'sends 10 "$VT_TMP/req-01" \
	198.19.0.21:7000 && sends 10 "$VT_TMP/req-none" 198.19.0.21:7000'
drain "$VT_TMP/r8.json"
vt_check "tracing off: no record" -- [ "$(lines "$VT_TMP/r8.json")" -eq 0 ]

va_stop TERM
vt_finish
