#!/usr/bin/env bash
# Same-node redirection (sockhash + sk_msg), with agent.redirect local and then off: byte-exact
# transfers both ways (sha256) from 1 B to 64 MiB, small writes, writev, sendfile, splice,
# half-close, RST, a close with data in flight, 100 concurrent connections, a peer with the same
# addresses in another netns, and a peer that is not local. The sockhash empties afterwards.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init redirect
vt_topology
vt_cgroup
vt_bpffs
X=$VT_BIN/sl_xfer

# in_cgroup_bg NS CMD...: CMD in the test cgroup and netns NS, in the background; tracked.
in_cgroup_bg() {
	local ns=$1
	shift
	(
		echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
		exec ip netns exec "$ns" "$@"
	) &
	vt_track_pid $!
}
# xfer NS ARGS...: sl_xfer as a client in the cgroup and netns NS (bounded).
xfer() {
	local ns=$1
	shift
	(
		echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
		exec timeout -k 2 60 ip netns exec "$ns" "$X" "$@"
	)
}
node=$VT_ID-node
be1=$VT_ID-be1
sha() { sha256sum "$1" | cut -d' ' -f1; }
metric() { va_metrics | awk -v n="$1" '$1 == n { print $2 }'; }
sockhash_entries() {
	va_ctl -o json status | jq '.maps[] | select(.name == "sluice_sockhash") | .entries'
}

mkdir -p "$VT_TMP/data" "$VT_TMP/sink"
for n in 1 1024 65536 1048576 67108864; do
	head -c "$n" /dev/urandom >"$VT_TMP/data/$n"
done
: >"$VT_TMP/data/0"

in_cgroup_bg "$node" "$X" serve --port 7000 --mode echo --seconds 300
in_cgroup_bg "$node" "$X" serve --port 7001 --mode sink --sink-dir "$VT_TMP/sink" --seconds 300
in_cgroup_bg "$be1" "$X" serve --port 7000 --mode flip --seconds 300
sleep 0.3

suite() {
	local mode=$1 n m out b0 b1 c0 pids=() bad=0 i
	vt_log "=== agent.redirect: $mode"
	va_config "$VT_TMP/$mode.yaml" <<YAML
  redirect: $mode
services:
  - name: local-echo
    frontend: 198.19.0.70:7000
    backends:
      - address: 127.0.0.1:7000
YAML
	va_start "$VT_TMP/$mode.yaml" || return
	b0=$(metric sluice_redirected_bytes_total)
	c0=$(metric sluice_redirected_connections_total)

	for n in 0 1 1024 65536 1048576 67108864; do
		out=$VT_TMP/out.$mode.$n
		vt_check "[$mode] $n bytes there and back, sha256 equal, half-close reached EOF" -o "$out" \
			-d 'echo "$(stat -c %s "$out") came back"' -- eval 'xfer "$node" send 127.0.0.1:7000 \
			--file "$VT_TMP/data/$n" && [ "$(sha "$out")" = "$(sha "$VT_TMP/data/$n")" ]'
	done
	b1=$(metric sluice_redirected_bytes_total)
	if [ "$mode" = local ]; then
		[ $((b1 - b0)) -ge $((2 * (67108864 + 1048576))) ] &&
			vt_pass "[$mode] redirected bytes grew by $((b1 - b0))" ||
			vt_fail "[$mode] redirected bytes grew by $((b1 - b0)) only"
		[ "$(metric sluice_redirected_connections_total)" -ge $((c0 + 6)) ] &&
			vt_pass "[$mode] redirected connections: $(metric sluice_redirected_connections_total)" ||
			vt_fail "[$mode] redirected connections: $(metric sluice_redirected_connections_total)"
	else
		[ "$b1" -eq 0 ] && vt_pass "[$mode] nothing redirected" || vt_fail "[$mode] $b1 bytes redirected"
	fi

	for m in small writev sendfile splice; do
		n=65536
		[ "$m" != small ] && n=1048576
		out=$VT_TMP/out.$mode.$m
		b0=$(metric sluice_redirected_bytes_total)
		vt_check "[$mode] $m: $n bytes intact" -o "$out" \
			-d 'echo "$(stat -c %s "$out") of $n bytes came back intact?"' -- eval 'xfer "$node" send \
			127.0.0.1:7000 --file "$VT_TMP/data/$n" --method "$m" &&
			[ "$(sha "$out")" = "$(sha "$VT_TMP/data/$n")" ]'
		# What the application's way of sending means for redirection: the client's
		# side goes through sk_msg whatever the call, the echo comes back by write().
		b1=$(metric sluice_redirected_bytes_total)
		if [ "$mode" = local ]; then
			[ $((b1 - b0)) -eq $((2 * n)) ] &&
				vt_pass "[$mode] $m: all $((2 * n)) bytes (both ways) were redirected" ||
				vt_fail "[$mode] $m: $((b1 - b0)) of $((2 * n)) bytes redirected"
		fi
	done
	for t in "[::1]:7000" "198.18.0.1:7000"; do
		out=$VT_TMP/out.$mode.addr
		vt_check "[$mode] via $t: 1 MiB intact" -o "$out" -d 'echo "$(stat -c %s "$out") bytes"' -- \
			eval 'xfer "$node" send "$t" --file "$VT_TMP/data/1048576" &&
			[ "$(sha "$out")" = "$(sha "$VT_TMP/data/1048576")" ]'
	done

	# A balanced connection whose backend is local: VIP -> 127.0.0.1, then paired.
	b0=$(metric sluice_redirected_bytes_total)
	out=$VT_TMP/out.$mode.vip
	vt_check "[$mode] via the VIP of a service with a local backend: 1 MiB intact" -o "$out" \
		-d 'echo "$(stat -c %s "$out") bytes"' -- eval 'xfer "$node" send 198.19.0.70:7000 \
		--file "$VT_TMP/data/1048576" && [ "$(sha "$out")" = "$(sha "$VT_TMP/data/1048576")" ]'
	b1=$(metric sluice_redirected_bytes_total)
	if [ "$mode" = local ]; then
		[ $((b1 - b0)) -eq $((2 * 1048576)) ] &&
			vt_pass "[$mode] the balanced connection to the local backend was redirected" ||
			vt_fail "[$mode] balanced local connection: $((b1 - b0)) bytes redirected"
	fi

	# RST: the server sees it, and goes on serving.
	xfer "$node" reset 127.0.0.1:7000 --bytes 200000 || vt_fail "[$mode] reset client failed"
	out=$VT_TMP/out.$mode.afterrst
	xfer "$node" send 127.0.0.1:7000 --file "$VT_TMP/data/65536" >"$out" &&
		[ "$(sha "$out")" = "$(sha "$VT_TMP/data/65536")" ] &&
		vt_pass "[$mode] after an RST the next connection is intact" ||
		vt_fail "[$mode] after an RST: broken"

	# A close with 1 MiB still in flight: all of it reaches the peer.
	rm -f "$VT_TMP/sink"/*
	xfer "$node" drop 127.0.0.1:7001 --file "$VT_TMP/data/1048576" || vt_fail "[$mode] drop failed"
	sunk() { [ "$(sha "$(ls "$VT_TMP"/sink/conn-*.bin | tail -1)")" = "$(sha "$VT_TMP/data/1048576")" ]; }
	vt_wait_until 5 sunk && vt_pass "[$mode] close with data in flight: the peer got all 1 MiB" ||
		vt_fail "[$mode] close in flight: the peer got $(stat -c %s "$VT_TMP"/sink/conn-*.bin)"

	# 100 at once.
	for i in $(seq 100); do
		xfer "$node" send 127.0.0.1:7000 --file "$VT_TMP/data/65536" >"$VT_TMP/par.$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=$((bad + 1)); done
	for i in $(seq 100); do
		[ "$(sha "$VT_TMP/par.$i")" = "$(sha "$VT_TMP/data/65536")" ] || bad=$((bad + 1))
	done
	[ "$bad" -eq 0 ] && vt_pass "[$mode] 100 concurrent connections, all intact" ||
		vt_fail "[$mode] 100 concurrent: $bad failed"

	# Same addresses in another netns: each client reaches its own netns's server.
	out=$VT_TMP/out.$mode.be1
	xfer "$be1" send 127.0.0.1:7000 --file "$VT_TMP/data/65536" >"$out"
	vt_check "[$mode] in the other netns 127.0.0.1:7000 is the flip server, as it must be" \
		-d 'echo "the client reached the wrong server ($(stat -c %s "$out") bytes back)"' -- \
		eval '[ "$(stat -c %s "$out")" -eq 65536 ] && [ "$(sha "$out")" != "$(sha "$VT_TMP/data/65536")" ]'
	# A peer that is not local: through the stack, and not redirected.
	b0=$(metric sluice_redirected_bytes_total)
	out=$VT_TMP/out.$mode.remote
	xfer "$node" send 198.18.1.2:7000 --file "$VT_TMP/data/1048576" >"$out"
	vt_check "[$mode] a peer in another netns over the network: served, not redirected" \
		-d 'echo "$(stat -c %s "$out") bytes, redirected $(($(metric sluice_redirected_bytes_total) - b0))"' -- \
		eval '[ "$(stat -c %s "$out")" -eq 1048576 ] && [ "$(sha "$out")" != "$(sha "$VT_TMP/data/1048576")" ] &&
		[ "$(metric sluice_redirected_bytes_total)" -eq "$b0" ]'
	empty() { [ "$(sockhash_entries)" -eq 0 ]; }
	vt_wait_until 5 empty && vt_pass "[$mode] the sockhash is empty again" ||
		vt_fail "[$mode] $(sockhash_entries) sockets left in the sockhash"
	va_stop TERM
	vt_node "$VA_SLUICED" -c "$VT_TMP/$mode.yaml" --teardown >/dev/null 2>&1 ||
		vt_fail "[$mode] teardown failed"
}

suite local
suite off
vt_finish
