#!/bin/bash
# 00-topology: self-check of the vmtest world, no agent. Builds the netns topology and the three
# backends, then from the node netns inside the test cgroup checks direct TCP/UDP over IPv4 and
# IPv6, that the node has no default route, and that an un-rewritten VIP fails at once
# (blackhole) instead of leaving or hanging. Exit 0 pass, 1 fail, 77 skip.
set -u
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vt_require_root
vt_init topology
vt_require_tools || vt_finish
vt_topology || vt_finish
vt_backends 8080 || vt_finish
vt_cgroup || vt_finish

out=$VT_TMP

# expect_run FILE NAME COUNT ARGS...: sl_client ARGS exits 0, all COUNT replies from NAME, and
# no stall: well under the 1 s a lost SYN or neighbour solicitation would cost.
expect_run() {
	local file=$out/$1 name=$2 count=$3 rc
	shift 3
	vt_client "$@" >"$file" 2>"$file.err"
	rc=$?
	vt_check "sl_client $*: $count/$count from $name in $(vt_value "$file" elapsed_ms) ms" \
		-d 'echo "rc $rc: $(tr "\n" " " <"$file") $(tr "\n" " " <"$file.err")"' -- \
		eval '[ "$rc" -eq 0 ] && [ "$(vt_value "$file" ok)" -eq "$count" ] &&
			[ "$(vt_value "$file" fail)" -eq 0 ] && [ "$(vt_value "$file" "$name")" -eq "$count" ] &&
			[ "$(vt_value "$file" elapsed_ms)" -lt 900 ]'
}

# the client really runs inside the test cgroup
cg=$(vt_in_cgroup cat /proc/self/cgroup | awk -F: '$1 == "0" { print $3 }')
vt_check "client runs in cgroup /$VT_ID" -d 'echo "it is in $cg"' -- [ "$cg" = "/$VT_ID" ]

# node netns: no default route, VIP ranges blackholed
vt_check "node netns has no default route (v4, v6)" -d 'echo "it has one"' -- \
	eval '[ -z "$(ip -n "$VT_ID-node" route show default)" ] &&
		[ -z "$(ip -n "$VT_ID-node" -6 route show default)" ]'
# blackholed NET: the node netns has a blackhole route for NET
blackholed() {
	{ ip -n "$VT_ID-node" route show type blackhole
		ip -n "$VT_ID-node" -6 route show type blackhole; } | awk -v r="$1" '$2 == r { f = 1 } END { exit !f }'
}
for r in "198.19.0.0/16" "2001:db8:f::/48"; do
	vt_check "node netns blackholes $r" -- blackholed "$r"
done

expect_run tcp4 be1 20 tcp 198.18.1.2:8080 -n 20 --check-peer
expect_run tcp6 be2 20 tcp "[2001:db8:1::3]:8080" -n 20 --check-peer
expect_run udp4 be3 10 udp 198.18.1.4:8080 -n 10
expect_run udp4c be3 10 udp 198.18.1.4:8080 -n 10 --connected
expect_run udp6 be3 10 udp "[2001:db8:1::4]:8080" -n 10
expect_run udp6c be1 10 udp "[2001:db8:1::2]:8080" -n 10 --connected
expect_run loop4 be2 20 loop 198.18.1.3:8080 --seconds 10 --max 20 --interval-ms 1
vt_counts_within "$out/tcp4" 20 20 be1
vt_counts_within "$out/tcp4" 0 0 be2 be3

# an un-rewritten VIP fails locally and at once (EINVAL from the blackhole; never a timeout)
for vip in 198.19.0.10:80 "[2001:db8:f::10]:80"; do
	VT_CLIENT_TIMEOUT=5 vt_client refused "$vip" --timeout-ms 3000 >"$out/vip" 2>&1
	read -r ename ms <"$out/vip"
	ms=${ms%ms}
	vt_check "connect to VIP $vip fails at once: $ename ${ms}ms" -d 'cat "$out/vip"' -- \
		eval '[[ "$ename" =~ ^(EINVAL|ENETUNREACH)$ ]] && awk -v m="$ms" "BEGIN { exit !(m < 100) }"'
done

# a closed port on a backend is refused at once (the refused mode's own success path)
VT_CLIENT_TIMEOUT=5 vt_check "closed port refused" -v -O "$out/ref" -- vt_client refused 198.18.1.2:9

vt_finish
