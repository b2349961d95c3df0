#!/usr/bin/env bash
# TC (clsact) flow metrics: bpf/tc_flow.bpf.c and userspace/lib/tc.c, driven by
# vmtests/drivers/sl_tcctl.c (built here, as it links libsluice) until the agent is wired.
#
# Proves, on the node's veth vt-rtr: per-direction interface counters match known transfers
# (a UDP burst, TCP connections, a 1 MB TCP upload that leaves as TSO/GSO packets) and the
# kernel's own veth counters; the flow table holds those 5-tuples, one entry per connection,
# with the right packets, bytes and TCP state; an interface created after open gets both
# programs within 1 s, and a removed one is forgotten; a second open after a close replaces
# the filters in place (no duplicate, old programs freed, counters kept); an open without
# globs, and teardown, leave no filter and no pin.
#
# Header overhead (what each frame adds to its payload, the counters count whole frames):
#   UDP over IPv4: 14 Ethernet + 20 IPv4 + 8 UDP = 42 bytes
#   TCP over IPv4 (Linux defaults, timestamps on): 14 + 20 + 32 = 66 bytes, SYN and SYN-ACK
#   74 (their options: MSS, SACK-permitted, timestamps, window scale)
set -u
. "$(dirname "$0")/lib.sh"

vt_world tc

NODE=$VT_ID-node
TCCTL=$VT_TMP/sl_tcctl
TC_PID=

# --- the driver ------------------------------------------------------------------------------

vt_log "building sl_tcctl"
if ! make -s --no-print-directory -C "$VT_ROOT" build/tc_flow.skel.h build/libsluice.a \
	>"$VT_TMP/build.log" 2>&1; then
	vt_fail "make build/tc_flow.skel.h build/libsluice.a (see build.log)"
	vt_finish
fi
# tc.c is compiled here with libnl's flags: the Makefile does not pass them (yet), so the
# libsluice.a copy of tc.o may be empty; everything else comes from libsluice.a.
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
if ! (cd "$VT_ROOT" && ${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wno-format-zero-length -D_GNU_SOURCE ${VT_SAN_FLAGS:-} \
	-Iinclude -Iuserspace/lib -Ibuild $(pkg-config --cflags libbpf libnl-route-3.0) \
	vmtests/drivers/sl_tcctl.c userspace/lib/tc.c build/libsluice.a \
	$(make -s --no-print-directory -C "$VT_ROOT" print-ldlibs) -o "$TCCTL") \
	>>"$VT_TMP/build.log" 2>&1; then
	vt_fail "cannot build sl_tcctl (see build.log)"
	vt_finish
fi

# tc_open LOG GLOB...: sl_tcctl open in the node netns (nsenter: it needs bpffs), waits for
# this start's "ready" line.
tc_open() {
	local log=$1
	shift
	: >"$log"
	(exec nsenter --net="/run/netns/$NODE" "$TCCTL" open "$VT_BPFFS" "$@" --seconds 300 \
		>>"$log" 2>&1) &
	TC_PID=$!
	vt_track_pid "$TC_PID"
	vt_wait_until 10 grep -q 'msg="ready"' "$log"
}

# tc_close: SIGTERM, as the agent gets it; sl_tc_close leaves the filters attached.
tc_close() {
	[ -n "$TC_PID" ] || return 0
	kill -TERM "$TC_PID" 2>/dev/null
	wait "$TC_PID" 2>/dev/null
	TC_PID=
}

tc_dump() { vt_node "$TCCTL" dump "$VT_BPFFS"; }

# if_val FILE IFNAME DIR FIELD: a field of an interface line of a dump (0 if absent).
if_val() {
	awk -v n="$2" -v d="$3" -v f="$4" '
		$1 == "if" {
			delete kv
			for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
			if (kv["name"] == n && kv["dir"] == d) { print kv[f]; found = 1 }
		}
		END { if (!found) print 0 }' "$1"
}

# kstat DIR(rx|tx) FIELD(packets|bytes): the kernel's own counter of vt-rtr.
kstat() {
	ip -n "$NODE" -s -j link show vt-rtr | jq ".[0].stats64.$1.$2"
}

# filters DEV HOOK: our filter lines on one hook (tc prints one line per filter plus one per
# priority; count the ones with a handle).
filters() {
	tc -n "$NODE" filter show dev "$1" "$2" 2>/dev/null | grep -c 'handle'
}

prog_ids() {
	tc -n "$NODE" filter show dev "$1" "$2" 2>/dev/null | sed -n 's/.* id \([0-9]*\) .*/\1/p'
}

# --- open ------------------------------------------------------------------------------------

log1=$VT_TMP/tcctl-1.log
vt_check "sl_tcctl open: ready" -d 'tail -n 3 "$log1"' -- tc_open "$log1" 'vt-*' || vt_finish
grep -q 'msg="tc attached" interface=vt-rtr ' "$log1" &&
	vt_pass "log: tc attached interface=vt-rtr" || vt_fail "no attach log line for vt-rtr"
for hook in ingress egress; do
	n=$(filters vt-rtr "$hook")
	vt_check "vt-rtr $hook: one sluice filter (handle 0x51ce, direct-action)" \
		-d 'echo "$n filters: $(tc -n "$NODE" filter show dev vt-rtr "$hook")"' -- \
		eval '[ "$n" -eq 1 ] && tc -n "$NODE" filter show dev vt-rtr "$hook" |
			grep -q "handle 0x51ce sluice_tc_.*direct-action"'
done
[ "$(filters lo ingress)" -eq 0 ] && vt_pass "lo does not match vt-* and has no filter" ||
	vt_fail "lo got a filter"

# --- UDP burst: counters and flows -----------------------------------------------------------

N=50
d0=$VT_TMP/dump0.txt d1=$VT_TMP/dump1.txt
tc_dump >"$d0"
k0_txp=$(kstat tx packets) k0_txb=$(kstat tx bytes) k0_rxp=$(kstat rx packets) k0_rxb=$(kstat rx bytes)
out=$VT_TMP/udp.out
vt_check "UDP: $N exchanges with be1 (5-byte request, 4-byte reply)" -o "$out" -- \
	eval 'vt_client udp 198.18.1.2:8080 -n "$N" && [ "$(vt_value "$out" be1)" -eq "$N" ]'
tc_dump >"$d1"
k1_txp=$(kstat tx packets) k1_txb=$(kstat tx bytes) k1_rxp=$(kstat rx packets) k1_rxb=$(kstat rx bytes)

# Per direction: the tracked packets (packets - untracked) are exactly the datagrams; bytes are
# N frames of payload + 42, plus the untracked frames (ARP, IPv6 ND/MLD/RS: under 128 bytes).
check_udp_dir() {
	local dir=$1 frame=$2 kp=$3 kb=$4 p b u
	p=$(($(if_val "$d1" vt-rtr "$dir" packets) - $(if_val "$d0" vt-rtr "$dir" packets)))
	b=$(($(if_val "$d1" vt-rtr "$dir" bytes) - $(if_val "$d0" vt-rtr "$dir" bytes)))
	u=$(($(if_val "$d1" vt-rtr "$dir" untracked) - $(if_val "$d0" vt-rtr "$dir" untracked)))
	vt_check "vt-rtr $dir: $p packets ($N datagrams + $u untracked), $b bytes (${N} x $frame = $((N * frame)) + untracked)" \
		-d 'echo "want $N datagrams of $frame bytes"' -- eval '[ $((p - u)) -eq "$N" ] && [ "$u" -le 10 ] &&
		[ "$b" -ge $((N * frame)) ] && [ "$b" -le $((N * frame + u * 128)) ]'
	# The kernel's veth counters, read just after our dump: equal but for up to 2 stray frames
	# (ARP, IPv6 ND/MLD, up to an MTU each) that fell between the two reads; the bytes may
	# differ by those frames only.
	local dp=$((p > kp ? p - kp : kp - p))
	vt_check "vt-rtr $dir: matches the kernel's counters ($kp packets, $kb bytes)" \
		-d 'echo "we counted $p packets $b bytes"' -- eval '[ "$dp" -le 2 ] &&
		[ $((b - kb)) -le $((dp * 1514 + 256)) ] && [ $((kb - b)) -le $((dp * 1514 + 256)) ]'
}
check_udp_dir egress $((5 + 42)) $((k1_txp - k0_txp)) $((k1_txb - k0_txb))
check_udp_dir ingress $((4 + 42)) $((k1_rxp - k0_rxp)) $((k1_rxb - k0_rxb))

# Flows: one per client socket (a reused ephemeral port folds two exchanges into one entry),
# each p packets out of 47 bytes and p in of 46, "replied", opened by the node.
read -r nflows sum_out sum_in bad < <(awk '
	$1 == "flow" {
		delete kv
		for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
		if (kv["name"] != "vt-rtr" || kv["proto"] != "udp" || kv["remote"] != "198.18.1.2:8080")
			next
		n++; so += kv["egress_packets"]; si += kv["ingress_packets"]
		if (kv["egress_packets"] != kv["ingress_packets"] ||
		    kv["egress_bytes"] != 47 * kv["egress_packets"] ||
		    kv["ingress_bytes"] != 46 * kv["ingress_packets"] ||
		    kv["state"] != "replied" || kv["origin"] != "egress" || kv["local"] !~ /^198\.18\.0\.1:/)
			bad++
	}
	END { print n + 0, so + 0, si + 0, bad + 0 }' "$d1")
vt_check "flows: $nflows UDP flows 198.18.0.1:* <-> 198.18.1.2:8080 hold $N packets each way, 47/46-byte frames, state replied, origin egress" \
	-d 'echo "$sum_out out, $sum_in in, $bad inconsistent: $(grep " proto=udp" "$d1" | head -3)"' -- \
	eval '[ "$sum_out" -eq "$N" ] && [ "$sum_in" -eq "$N" ] && [ "$bad" -eq 0 ] && [ "$nflows" -ge 1 ]'

# --- TCP connections -------------------------------------------------------------------------

T=20
out=$VT_TMP/tcp.out
vt_check "TCP: $T connections to be1" -o "$out" -- \
	eval 'vt_client tcp 198.18.1.2:8080 -n "$T" && [ "$(vt_value "$out" be1)" -eq "$T" ]'
d2=$VT_TMP/dump2.txt
# shellcheck disable=SC2317
tcp_closed() {
	tc_dump >"$d2"
	[ "$(grep ' proto=tcp ' "$d2" | grep ' remote=198.18.1.2:8080 ' | grep -c ' state=closed ')" -eq "$T" ]
}
vt_wait_until 3 tcp_closed
# Every frame of a flow is 66 bytes of headers and its payload, SYN and SYN-ACK 74: egress has
# no payload, ingress the 4-byte reply "be1\n".
read -r nflows closed bad tcp_pk < <(awk '
	$1 == "flow" {
		delete kv
		for (i = 2; i <= NF; i++) { split($i, a, "="); kv[a[1]] = a[2] }
		if (kv["name"] != "vt-rtr" || kv["proto"] != "tcp" || kv["remote"] != "198.18.1.2:8080")
			next
		n++; c += kv["state"] == "closed"
		po = kv["egress_packets"]; pi = kv["ingress_packets"]; pk += po + pi
		if (po < 3 || po > 6 || pi < 3 || pi > 6 || kv["origin"] != "egress" ||
		    kv["egress_bytes"] != 74 + 66 * (po - 1) ||
		    kv["ingress_bytes"] != 74 + 66 * (pi - 1) + 4)
			{ bad++; print "bad: " $0 > "/dev/stderr" }
	}
	END { print n + 0, c + 0, bad + 0, pk + 0 }' "$d2" 2>"$VT_TMP/tcp-bad.log")
vt_check "flows: $T TCP flows, one per connection, state closed, origin egress, 3-6 packets each way, bytes = 66/packet (74 for SYN, SYN-ACK) + the 4-byte reply" \
	-d 'echo "$nflows flows, $closed closed, $bad inconsistent: $(head -3 "$VT_TMP/tcp-bad.log")"' -- \
	eval '[ "$nflows" -eq "$T" ] && [ "$closed" -eq "$T" ] && [ "$bad" -eq 0 ]'
# The interface saw exactly the flows' TCP packets (no other TCP/UDP in the node netns).
tr=$(($(if_val "$d2" vt-rtr egress packets) - $(if_val "$d2" vt-rtr egress untracked) +
	$(if_val "$d2" vt-rtr ingress packets) - $(if_val "$d2" vt-rtr ingress untracked) -
	2 * N))
[ "$tr" -eq "$tcp_pk" ] && vt_pass "vt-rtr tracked TCP packets ($tr) = the sum over the flows" ||
	vt_fail "vt-rtr tracked TCP packets $tr, flows hold $tcp_pk"

# --- 1 MB upload: GSO packets count as their segments ----------------------------------------

BULK=1000000
k0_txp=$(kstat tx packets)
vt_check "uploaded $BULK bytes to be2" -e "$VT_TMP/bulk.log" -- ip netns exec "$NODE" bash -c \
	"exec 3<>/dev/tcp/198.18.1.3/8080 && read -r -t 2 -u 3 name && head -c $BULK /dev/zero >&3 && exec 3>&-"
k1_txp=$(kstat tx packets)
d3=$VT_TMP/dump3.txt
# shellcheck disable=SC2317
bulk_closed() {
	tc_dump >"$d3"
	grep ' proto=tcp ' "$d3" | grep ' remote=198.18.1.3:8080 ' | grep -q ' state=closed '
}
vt_wait_until 3 bulk_closed
line=$(grep ' proto=tcp ' "$d3" | grep ' remote=198.18.1.3:8080 ')
po=$(sed -n 's/.* egress_packets=\([0-9]*\) .*/\1/p' <<<"$line")
bo=$(sed -n 's/.* egress_bytes=\([0-9]*\) .*/\1/p' <<<"$line")
segs=$(((BULK + 1447) / 1448)) # 1448 = MSS 1460 - 12 bytes of timestamp option
vt_check "bulk flow: $po packets out (>= $segs segments + SYN, FIN), $bo bytes = $BULK + 66 x packets (+8 for the SYN); the kernel's veth sent $((k1_txp - k0_txp)) skbs" \
	-d 'echo "want >= $((segs + 2)) packets and $BULK + 66/packet bytes: ${line:-none}"' -- \
	eval '[ -n "$po" ] && [ "$po" -ge $((segs + 2)) ] && [ "$po" -le $((segs + 100)) ] &&
	[ "$bo" -eq $((BULK + 66 * po + 8)) ]'

# --- an interface that appears later ---------------------------------------------------------

t0=$(date +%s%N)
ip -n "$NODE" link add vt-new0 type veth peer name vt-new1 netns "$VT_ID-rtr" ||
	vt_fail "cannot create vt-new0"
# shellcheck disable=SC2317
new_attached() { [ "$(filters vt-new0 ingress)" -eq 1 ] && [ "$(filters vt-new0 egress)" -eq 1 ]; }
for ((i = 0; i < 20; i++)); do
	new_attached && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
vt_check "vt-new0, created after open, got both filters in ${ms} ms" \
	-d 'tc -n "$NODE" filter show dev vt-new0 ingress' -- eval 'new_attached && [ "$ms" -le 1000 ]'
ip -n "$NODE" addr add 198.18.6.1/30 dev vt-new0 && ip -n "$NODE" link set vt-new0 up &&
	ip -n "$VT_ID-rtr" addr add 198.18.6.2/30 dev vt-new1 && ip -n "$VT_ID-rtr" link set vt-new1 up ||
	vt_fail "cannot set up vt-new0/vt-new1"
vt_server "$VT_ID-rtr" rtr 9090 || vt_fail "no server on the router"
out=$VT_TMP/new.out
vt_client udp 198.18.6.2:9090 -n 3 >"$out" || vt_fail "UDP over vt-new0: $(tr '\n' ' ' <"$out")"
d4=$VT_TMP/dump4.txt
tc_dump >"$d4"
p=$(if_val "$d4" vt-new0 egress packets)
u=$(if_val "$d4" vt-new0 egress untracked)
nf=$(grep -c ' name=vt-new0 proto=udp .* remote=198.18.6.2:9090 .* state=replied ' "$d4")
[ $((p - u)) -eq 3 ] && [ "$nf" -ge 1 ] &&
	vt_pass "vt-new0 egress counted 3 datagrams (+$u untracked) in $nf replied flow(s)" ||
	vt_fail "vt-new0 egress: $p packets, $u untracked, $nf flows"
new_ifindex=$(ip -n "$NODE" -j link show vt-new0 | jq '.[0].ifindex')
ip -n "$NODE" link del vt-new0
vt_check "vt-new0 deleted: forgotten" -- \
	vt_wait_until 2 grep -q "msg=\"tc interface forgotten\" interface=vt-new0 .*reason=removed" "$log1"
tc_dump >"$d4"
grep -q "^if ifindex=$new_ifindex " "$d4" && vt_fail "vt-new0's counters outlived it" ||
	vt_pass "vt-new0's counters were dropped with it"
tail -n 1 "$log1" | grep -q 'msg="attached" interfaces=vt-rtr count=1' &&
	vt_pass "attached list back to vt-rtr" || vt_fail "attached list: $(grep 'msg="attached"' "$log1" | tail -n 1)"

# --- close, open again: replaced in place ----------------------------------------------------

old_in=$(prog_ids vt-rtr ingress)
old_out=$(prog_ids vt-rtr egress)
before=$(if_val "$d4" vt-rtr egress packets)
tc_close
vt_check "after close the filters stay attached" \
	-d 'echo "$(filters vt-rtr ingress) ingress, $(filters vt-rtr egress) egress filters"' -- \
	eval '[ "$(filters vt-rtr ingress)" -eq 1 ] && [ "$(filters vt-rtr egress)" -eq 1 ]'
log2=$VT_TMP/tcctl-2.log
tc_open "$log2" 'vt-*' || vt_fail "second open did not become ready"
grep -q 'msg="tc attached" interface=vt-rtr ifindex=[0-9]* replaced=1' "$log2" &&
	vt_pass "second open: replaced=1" || vt_fail "second open: $(grep 'tc attached' "$log2")"
new_in=$(prog_ids vt-rtr ingress)
new_out=$(prog_ids vt-rtr egress)
vt_check "second open: one filter per hook, new programs ($old_in,$old_out -> $new_in,$new_out)" \
	-d 'echo "filters $(tc -n "$NODE" filter show dev vt-rtr ingress)"' -- \
	eval '[ "$(filters vt-rtr ingress)" -eq 1 ] && [ "$(filters vt-rtr egress)" -eq 1 ] &&
	[ -n "$new_in" ] && [ "$new_in" != "$old_in" ] && [ "$new_out" != "$old_out" ]'
# progs_gone ID...: none of these programs is loaded (the kernel frees a replaced filter's
# program after an RCU grace period: poll).
progs_gone() {
	local id
	for id in "$@"; do
		bpftool prog show id "$id" >/dev/null 2>&1 && return 1
	done
	return 0
}
vt_check "the replaced programs are freed" -d 'echo "programs $old_in/$old_out still loaded"' -- \
	vt_wait_until 2 progs_gone "$old_in" "$old_out"
vt_client udp 198.18.1.2:8080 -n 2 >/dev/null || vt_fail "UDP after the reopen"
d5=$VT_TMP/dump5.txt
tc_dump >"$d5"
after=$(if_val "$d5" vt-rtr egress packets)
[ "$after" -ge $((before + 2)) ] && vt_pass "counters carried over the restart ($before -> $after)" ||
	vt_fail "counters after reopen: $before -> $after"
tc_close

# --- open without globs: what the previous run left goes ------------------------------------

log3=$VT_TMP/tcctl-3.log
tc_open "$log3" || vt_fail "open without globs did not become ready"
tc_close
vt_check "open without globs removed the filters and pins a previous run left" \
	-d 'echo "$(filters vt-rtr ingress) filters, pins: $(ls "$VT_BPFFS" 2>&1)"' -- \
	eval '[ "$(filters vt-rtr ingress)" -eq 0 ] && [ "$(filters vt-rtr egress)" -eq 0 ] &&
	[ ! -e "$VT_BPFFS/sluice_tc_flows" ]'

# --- teardown --------------------------------------------------------------------------------

tc_open "$log2" 'vt-*' || vt_fail "third open did not become ready"
tc_close
ids=$(prog_ids vt-rtr ingress; prog_ids vt-rtr egress)
ids=${ids//$'\n'/ }
vt_check "teardown: exit 0" -O "$VT_TMP/teardown.log" -- vt_node "$TCCTL" teardown "$VT_BPFFS"
left=$(tc -n "$NODE" filter show dev vt-rtr ingress; tc -n "$NODE" filter show dev vt-rtr egress)
[ -z "$left" ] && vt_pass "teardown: tc filter show dev vt-rtr ingress/egress is empty" ||
	vt_fail "teardown left: $left"
vt_check "teardown: no pin left under $VT_BPFFS" -d 'ls -A "$VT_BPFFS"' -- \
	eval '[ ! -e "$VT_BPFFS" ] || [ -z "$(ls -A "$VT_BPFFS")" ]'
# shellcheck disable=SC2086
[ -n "$ids" ] && vt_wait_until 2 progs_gone $ids && vt_pass "teardown: programs $ids freed" ||
	vt_fail "teardown: programs $ids still loaded"
vt_node "$TCCTL" teardown "$VT_BPFFS" >>"$VT_TMP/teardown.log" 2>&1 &&
	vt_pass "teardown again: nothing there, exit 0" || vt_fail "second teardown failed"

vt_finish
