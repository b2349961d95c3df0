# shellcheck shell=bash
# shellcheck disable=SC2034 # MB_* results are read by the caller
# tools/bench/mtls/world.sh - the two-node worlds of tools/bench/mtls.sh. Source after
# vmtests/lib.sh and tools/bench/lib.sh, and after vt_init.
#
#   ${VT_ID}-a  node A: the client (sl_bench) in cgroup $VT_CGROUP/a, and whatever runs on the
#               caller's side (HAProxy, or sluiced with agent.cgroup $VT_CGROUP/a)
#   ${VT_ID}-b  node B: nginx on :80, and whatever runs on the server's side (HAProxy, sluiced)
#
#   ${VT_ID}-a eth0 198.18.0.1/24  <--- veth --->  ${VT_ID}-b eth0 198.18.0.2/24
#
# Neither namespace has a default route, and both blackhole the VIP range 198.19.0.0/16: a VIP
# that nothing rewrites fails at connect() (EINVAL) and never leaves node A.
#
#   mb_certs DIR          the certificates of a run (mutual TLS for HAProxy and for sluice)
#   mb_up SYSTEM          one fresh world with SYSTEM set up; sets MB_TARGET (what the client
#                         connects to) and MB_SETUP_MS. Returns 1 on failure.
#   mb_client ARGS        tools/bench/sl_bench ARGS in node A, in the client's cgroup, bounded.
#   mb_down               removes the world: processes, agents' pins, cgroups, namespaces.
#
# SYSTEM:
#   direct         the client connects to nginx on node B itself: the floor.
#   haproxy        the sidecar model. The client connects to HAProxy on its own node
#                  (198.18.0.1:15001, TCP mode), which opens a TLS 1.3 connection with a client
#                  certificate to HAProxy on node B (:15443, verify required), which connects
#                  to nginx over loopback. HAProxy's defaults otherwise: TLS sessions are
#                  resumed when the server offers it, as a user would run it.
#   haproxy-full   the same, with TLS session reuse off (no-ssl-reuse): a full handshake,
#                  certificates and signatures, for every connection.
#   sluice-off     sluiced on both nodes with mtls: configured, the service mtls: off; the
#                  client connects to the VIP 198.19.0.10:80, rewritten at connect() to node B.
#   sluice-strict  the same with mtls: strict: node A's agent carries the connection through a
#                  TLS 1.3 tunnel to node B's agent on :15008.

MB_A_ADDR=198.18.0.1
MB_B_ADDR=198.18.0.2
MB_VIP=198.19.0.10:80
MB_SIDECAR=$MB_A_ADDR:15001
MB_HAPROXY_PORT=15443
MB_HAPROXY_STATS=9999
MB_MTLS_PORT=15008
MB_TRUST_DOMAIN=sluice.test
# The nodes' names (agent.node, and the SAN of their node.pem); both become the host name if
# this sluiced refuses agent.node, which then defaults to it.
MB_NODE_A=nodea
MB_NODE_B=nodeb
MB_CERTS=
MB_TARGET=
MB_SETUP_MS=0
MB_CERT_SOURCE=
MB_AGENT_CFG=()
MB_AGENT_PID=()
MB_SYS_PIDS=() # the system's own processes (HAProxy, sluiced): their CPU time is measured
MB_NODE_KEY=1 # 0 once sluiced --check refused agent.node (a version without it)

mb_ns() { echo "$VT_ID-$1"; }

# mb_in NODE CMD...: CMD in node NODE's netns (a or b), bounded in time.
mb_in() {
	local n=$1
	shift
	timeout -k 2 20 ip netns exec "$(mb_ns "$n")" "$@"
}

# --- certificates --------------------------------------------------------------------------------

# _mb_leaf DIR NAME SAN: DIR/NAME.key (ECDSA P-256) and DIR/NAME.pem, signed by $MB_CERTS/ca.
_mb_leaf() {
	local dir=$1 name=$2 san=$3 ca=$MB_CERTS/ca
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null &&
		openssl x509 -req -in "$dir/$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial \
			"0x$(openssl rand -hex 8)" -days 2 -sha256 -out "$dir/$name.pem" -extfile <(
				printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n' "$san"
				printf 'keyUsage=critical,digitalSignature\n'
				printf 'extendedKeyUsage=serverAuth,clientAuth\n'
			) 2>/dev/null && rm -f "$dir/$name.csr" || {
		bw_log "openssl: cannot make the certificate $dir/$name.pem ($san)"
		return 1
	}
}

# _mb_node_certs NAME_A NAME_B: (re)makes node.pem/.key in the sluice directories of node A
# and node B, for the node names NAME_A and NAME_B (SAN spiffe://TD/node/NAME), the same way
# as the rest of the set (MB_CERT_SOURCE; "openssl CLI" while it is being made).
_mb_node_certs() {
	local s=$MB_CERTS/sluice td=$MB_TRUST_DOMAIN mk=$VT_ROOT/tools/mkcerts.sh
	if [ "$MB_CERT_SOURCE" = tools/mkcerts.sh ]; then
		# No identity named: only node.pem; the CA already in the directory is kept.
		(umask 077 && "$mk" "$s/nodeA" "$td" --node "$1" && "$mk" "$s/nodeB" "$td" --node "$2") \
			>>"$MB_CERTS/mkcerts.log" 2>&1 || {
			bw_log "tools/mkcerts.sh: cannot make the node certificates:" \
				"$(tail -n 2 "$MB_CERTS/mkcerts.log")"
			return 1
		}
	else
		(umask 077 && _mb_leaf "$s/nodeA" node "URI:spiffe://$td/node/$1" &&
			_mb_leaf "$s/nodeB" node "URI:spiffe://$td/node/$2") || return 1
	fi
	openssl verify -CAfile "$s/ca.pem" "$s/nodeA/node.pem" "$s/nodeB/node.pem" >/dev/null 2>&1 || {
		bw_log "the node certificates do not chain to $s/ca.pem"
		return 1
	}
}

# _mb_sluice_certs: the sluice set: ca.pem, the caller's identity certificate (client.pem on
# node A) and both nodes' node.pem. With tools/mkcerts.sh where it exists and makes a set that
# chains, else with the openssl CLI in the same form; sets MB_CERT_SOURCE. Node B's directory
# starts with node A's ca.pem and ca.key, so that mkcerts signs both nodes' with one CA.
_mb_sluice_certs() {
	local s=$MB_CERTS/sluice mk=$VT_ROOT/tools/mkcerts.sh td=$MB_TRUST_DOMAIN
	if [ -x "$mk" ]; then
		if (umask 077 && "$mk" "$s/nodeA" "$td" --node "$MB_NODE_A" client &&
			cp "$s/nodeA/ca.pem" "$s/nodeA/ca.key" "$s/nodeB/" &&
			"$mk" "$s/nodeB" "$td" --node "$MB_NODE_B" &&
			cp "$s/nodeA/ca.pem" "$s/ca.pem") >"$MB_CERTS/mkcerts.log" 2>&1 &&
			openssl verify -CAfile "$s/ca.pem" "$s/nodeA/client.pem" "$s/nodeA/node.pem" \
				"$s/nodeB/node.pem" >/dev/null 2>&1; then
			MB_CERT_SOURCE=tools/mkcerts.sh
			return 0
		fi
		bw_log "tools/mkcerts.sh did not make a usable set; using the openssl CLI:" \
			"$(tail -n 2 "$MB_CERTS/mkcerts.log" 2>/dev/null)"
		rm -rf "${s:?}/nodeA/"* "$s/nodeB/"* "$s/ca.pem"
	fi
	MB_CERT_SOURCE="openssl CLI"
	(umask 077 && _mb_leaf "$s/nodeA" client "URI:spiffe://$td/identity/client") &&
		cp "$MB_CERTS/ca.pem" "$s/ca.pem" && _mb_node_certs "$MB_NODE_A" "$MB_NODE_B"
}

# mb_certs DIR: a test CA (ECDSA P-256) and, signed by it:
#   DIR/haproxy/client.pem  cert + key of the caller's sidecar (spiffe://TD/identity/client)
#   DIR/haproxy/server.pem  cert + key of node B's sidecar (DNS nodeb.TD, spiffe://TD/node/nodeb)
#   DIR/sluice/ca.pem, DIR/sluice/nodeA/{node,client}.{pem,key}, DIR/sluice/nodeB/node.{pem,key}
#                           node.pem for the node names $MB_NODE_A and $MB_NODE_B
# The sluice set comes from tools/mkcerts.sh where it exists (else from the openssl CLI, the
# same way); sets MB_CERT_SOURCE to which.
mb_certs() {
	MB_CERTS=$1
	local h=$MB_CERTS/haproxy td=$MB_TRUST_DOMAIN
	(umask 077 && mkdir -p "$h" "$MB_CERTS/sluice/nodeA" "$MB_CERTS/sluice/nodeB") || return 1
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$MB_CERTS/ca.key" -out "$MB_CERTS/ca.pem" -days 2 -sha256 \
		-subj "/CN=sluice bench CA" -addext 'basicConstraints=critical,CA:TRUE' \
		-addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null) || {
		bw_log "openssl: cannot make the test CA in $MB_CERTS"
		return 1
	}
	(umask 077 && _mb_leaf "$h" client "URI:spiffe://$td/identity/client" &&
		_mb_leaf "$h" server "DNS:nodeb.$td,URI:spiffe://$td/node/nodeb") || return 1
	# HAProxy's crt: the certificate followed by its key, in one file.
	cat "$h/client.key" >>"$h/client.pem" && cat "$h/server.key" >>"$h/server.pem" || return 1
	_mb_sluice_certs
}

# --- topology and backend -----------------------------------------------------------------------

mb_topology() {
	local a b ok=1 n
	a=$(mb_ns a)
	b=$(mb_ns b)
	{ _vt_ns_add "$a" && _vt_ns_add "$b"; } >&2 || return 1
	_vt_run ip -n "$a" link add eth0 type veth peer name eth0 netns "$b" || ok=0
	for n in "$a" "$b"; do
		_vt_run ip -n "$n" link set eth0 up || ok=0
		_vt_run ip -n "$n" route add blackhole 198.19.0.0/16 || ok=0
		# Many short connections: the same, wide, port range for every system.
		ip netns exec "$n" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" || ok=0
	done
	_vt_run ip -n "$a" addr add "$MB_A_ADDR/24" dev eth0 || ok=0
	_vt_run ip -n "$b" addr add "$MB_B_ADDR/24" dev eth0 || ok=0
	[ "$ok" = 1 ] || bw_log "topology: setup failed"
	[ "$ok" = 1 ]
}

# mb_cgroups: $VT_CGROUP (the run's), with a (the client's, node A's agent) and b (node B's
# agent) below it; vt_cleanup removes the subtree.
mb_cgroups() {
	vt_cgroup >&2 || return 1
	mkdir "$VT_CGROUP/a" "$VT_CGROUP/b" || {
		bw_log "mkdir $VT_CGROUP/a, b failed"
		return 1
	}
}

# mb_nginx: nginx (one worker) on node B, :80 on every address. GET /s answers "nodeb\n",
# GET /big a 1 MiB file (sendfile); keep-alive without a request limit; no access log.
mb_nginx() {
	bw_nginx_in "$(mb_ns b)" "$VT_TMP/nginx" nodeb
}

# --- HAProxy pair ---------------------------------------------------------------------------------

# _mb_haproxy NODE CFG NAME: HAProxy (foreground, tracked) in NODE's netns.
_mb_haproxy() {
	ip netns exec "$(mb_ns "$1")" haproxy -db -f "$2" >>"$VT_TMP/haproxy-$3.log" 2>&1 &
	vt_track_pid $!
	MB_SYS_PIDS+=($!)
}

# mb_haproxy_pair REUSE: the sidecar pair; REUSE 1 keeps HAProxy's TLS session reuse (its
# default), 0 turns it off.
mb_haproxy_pair() {
	local reuse=$1 h=$MB_CERTS/haproxy maxconn=20000 nbt='' lim
	[ -n "${HAPROXY_NBTHREAD:-}" ] && nbt="  nbthread $HAPROXY_NBTHREAD"$'\n'
	# HAProxy needs two fds per connection, within the hard limit on open files.
	lim=$(ulimit -Hn)
	[[ "$lim" =~ ^[0-9]+$ ]] && [ $(((lim - 1000) / 2)) -lt "$maxconn" ] &&
		maxconn=$(((lim - 1000) / 2))
	[ "$maxconn" -ge 64 ] || {
		bw_log "haproxy: the limit of $lim open files is too low"
		return 1
	}
	{
		printf 'global\n  maxconn %d\n%s' "$maxconn" "$nbt"
		# for mb_haproxy_reuse: HAProxy's own count of resumed TLS sessions
		printf '  stats socket ipv4@127.0.0.1:%d level user\n' "$MB_HAPROXY_STATS"
		printf 'defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n'
		printf '  timeout server 30s\n'
		printf 'frontend mtls_in\n  bind %s:%d ssl crt %s ca-file %s verify required' \
			"$MB_B_ADDR" "$MB_HAPROXY_PORT" "$h/server.pem" "$MB_CERTS/ca.pem"
		printf ' ssl-min-ver TLSv1.3\n  default_backend app\n'
		printf 'backend app\n  server nginx 127.0.0.1:80\n'
	} >"$VT_TMP/haproxy-b.cfg"
	{
		printf 'global\n  maxconn %d\n%s' "$maxconn" "$nbt"
		printf 'defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n'
		printf '  timeout server 30s\n'
		printf 'frontend app_out\n  bind %s\n  default_backend mtls_out\n' "$MB_SIDECAR"
		printf 'backend mtls_out\n  server nodeb %s:%d ssl crt %s ca-file %s' \
			"$MB_B_ADDR" "$MB_HAPROXY_PORT" "$h/client.pem" "$MB_CERTS/ca.pem"
		printf ' verify required verifyhost nodeb.%s ssl-min-ver TLSv1.3%s\n' \
			"$MB_TRUST_DOMAIN" "$([ "$reuse" = 1 ] || echo ' no-ssl-reuse')"
	} >"$VT_TMP/haproxy-a.cfg"
	_mb_haproxy b "$VT_TMP/haproxy-b.cfg" b
	_mb_haproxy a "$VT_TMP/haproxy-a.cfg" a
	bw_wait_listen "$(mb_ns b)" "$MB_B_ADDR:$MB_HAPROXY_PORT" 10 &&
		bw_wait_listen "$(mb_ns a)" "$MB_SIDECAR" 10 || {
		bw_log "haproxy did not start: $(tail -n 3 "$VT_TMP"/haproxy-*.log)"
		return 1
	}
}

# mb_haproxy_reuse: the share of TLS handshakes that node B's HAProxy resumed during the last
# second (its SslFrontendSessionReuse_pct), or empty.
mb_haproxy_reuse() {
	mb_in b bash -c "exec 5<>/dev/tcp/127.0.0.1/$MB_HAPROXY_STATS && echo 'show info' >&5 &&
		timeout 2 cat <&5" 2>/dev/null | sed -n 's/^SslFrontendSessionReuse_pct: //p'
}

# mb_check_mutual: node B's HAProxy serves a caller with the client certificate and refuses
# one without (so the pair really is mutual TLS). Run once per run, from node A.
mb_check_mutual() {
	local h=$MB_CERTS/haproxy out req='GET /s HTTP/1.0\r\n\r\n'
	out=$(printf '%b' "$req" | mb_in a openssl s_client -quiet -connect "$MB_B_ADDR:$MB_HAPROXY_PORT" \
		-CAfile "$MB_CERTS/ca.pem" -cert "$h/client.pem" -verify_return_error 2>&1)
	grep -q '^nodeb$' <<<"$out" || {
		bw_log "haproxy pair: a caller with the client certificate was not served: $out"
		return 1
	}
	out=$(printf '%b' "$req" | mb_in a openssl s_client -quiet \
		-connect "$MB_B_ADDR:$MB_HAPROXY_PORT" -CAfile "$MB_CERTS/ca.pem" 2>&1)
	if grep -q '^nodeb$' <<<"$out"; then
		bw_log "haproxy pair: a caller without a client certificate was served"
		return 1
	fi
}

# --- sluice ---------------------------------------------------------------------------------------

# _mb_sluice_config NODE MODE FILE: node NODE's (A or B) sluiced config; MODE off|strict, or
# plain (no mtls key at all: a sluiced without mtls, to test this harness).
_mb_sluice_config() {
	local node=$1 mode=$2 f=$3 l
	l=$(tr 'AB' 'ab' <<<"$node")
	{
		printf 'agent:\n  cgroup: %s\n  bpffs: %s\n' "$VT_CGROUP/$l" "$VT_BPFFS/$l"
		printf '  api: %s\n  state: %s\n' "$VT_TMP/sluiced-$l.sock" "$VT_TMP/state-$l"
		printf '  audit_log: %s\n  metrics: 127.0.0.1:9464\n' "$VT_TMP/audit-$l.log"
		printf '  interfaces: [%s]\n' "${SLUICE_INTERFACES-eth0}"
		if [ "$MB_NODE_KEY" = 1 ] && [ "$mode" != plain ]; then
			printf '  node: %s\n' "$([ "$node" = A ] && echo "$MB_NODE_A" || echo "$MB_NODE_B")"
		fi
		if [ "$mode" != plain ]; then
			printf 'mtls:\n  trust_domain: %s\n  ca: %s\n' "$MB_TRUST_DOMAIN" \
				"$MB_CERTS/sluice/ca.pem"
			printf '  certs: %s\n  port: %d\n' "$MB_CERTS/sluice/node$node" "$MB_MTLS_PORT"
		fi
		printf 'identities:\n  - name: client\n'
		if [ "$node" = A ]; then
			printf '    cgroups: [%s]\n' "$VT_CGROUP/a"
		else
			printf '    addresses: [%s/32]\n' "$MB_A_ADDR"
		fi
		printf 'services:\n  - name: web\n    frontend: %s\n' "$MB_VIP"
		printf '    backends:\n      - address: %s:80\n' "$MB_B_ADDR"
		if [ "$mode" != plain ]; then
			printf '    mtls: %s\n' "$mode"
		fi
	} >"$f"
}

# _mb_sluice_check NODE FILE: sluiced --check FILE in NODE's netns. Once, for a sluiced that
# refuses agent.node (not in this version): both nodes' certificates are remade for the host
# name, which is then each agent's node name, and it returns 3 (make the config again).
_mb_sluice_check() {
	local out host
	out=$(nsenter --net="/run/netns/$(mb_ns "$(tr 'AB' 'ab' <<<"$1")")" timeout 20 \
		"$VA_SLUICED" -c "$2" --check 2>&1) && return 0
	if [ "$MB_NODE_KEY" = 1 ] && grep -q "'node'" <<<"$out"; then
		MB_NODE_KEY=0
		host=$(hostname)
		bw_log "sluiced refuses agent.node; both agents are node '$host' (the host name)"
		MB_NODE_A=$host
		MB_NODE_B=$host
		_mb_node_certs "$host" "$host" || return 1
		return 3
	fi
	bw_log "sluiced --check $2: $out"
	return 1
}

# _mb_agent_ready LOG: LOG has the agent's "ready" line.
_mb_agent_ready() { grep -q 'msg="ready"' "$1" 2>/dev/null; }

# mb_sluice MODE: sluiced on both nodes (started together), MODE off|strict|plain.
mb_sluice() {
	local mode=$1 node l f rc i
	mkdir -p "$VT_BPFFS" || return 1
	for node in A B; do
		l=$(tr 'AB' 'ab' <<<"$node")
		f=$VT_TMP/sluice-$l.yaml
		for i in 1 2; do
			_mb_sluice_config "$node" "$mode" "$f" || return 1
			_mb_sluice_check "$node" "$f"
			rc=$?
			[ "$rc" = 3 ] || break
		done
		[ "$rc" = 0 ] || return 1
	done
	MB_AGENT_CFG=("$VT_TMP/sluice-a.yaml" "$VT_TMP/sluice-b.yaml")
	for l in a b; do
		: >"$VT_TMP/agent-$l.log"
		(exec env -u JOURNAL_STREAM nsenter --net="/run/netns/$(mb_ns "$l")" "$VA_SLUICED" \
			-c "$VT_TMP/sluice-$l.yaml" --log-level info >>"$VT_TMP/agent-$l.log" 2>&1) &
		MB_AGENT_PID+=($!)
		MB_SYS_PIDS+=($!)
		vt_track_pid $!
	done
	for l in a b; do
		vt_wait_until 60 _mb_agent_ready "$VT_TMP/agent-$l.log" || {
			bw_log "sluiced on node $l did not become ready: $(tail -n 3 "$VT_TMP/agent-$l.log")"
			return 1
		}
	done
}

# mb_mtls_count NODE DIRECTION: the sum of sluice_mtls_connections_total{direction=DIRECTION,
# result="ok"} on NODE's agent (0 if the metric is missing).
mb_mtls_count() {
	mb_in "$1" curl -sf --max-time 5 http://127.0.0.1:9464/metrics |
		awk -v d="direction=\"$2\"" '/^sluice_mtls_connections_total\{/ && index($0, d) &&
			index($0, "result=\"ok\"") { s += $NF } END { printf "%d\n", s }'
}

# mb_sluice_resumed: the share (%) of the tunnels node B's agent accepted in this world whose
# TLS handshake resumed a session (sluice_mtls_resumed_total{direction="inbound"} over
# sluice_mtls_connections_total{direction="inbound"}), or empty.
mb_sluice_resumed() {
	mb_in b curl -sf --max-time 5 http://127.0.0.1:9464/metrics |
		awk '/^sluice_mtls_connections_total\{/ && index($0, "direction=\"inbound\"") { n += $NF }
			/^sluice_mtls_resumed_total\{/ && index($0, "direction=\"inbound\"") { r += $NF }
			END { if (n > 0) printf "%.0f\n", 100 * r / n }'
}

_mb_mtls_count_ge() { [ "$(mb_mtls_count "$1" "$2")" -ge "$3" ]; }

# Both agents' teardown, pass or fail (vt_cleanup calls this after killing their processes).
vt_cleanup_hook() {
	local i l
	for i in "${!MB_AGENT_CFG[@]}"; do
		l=$([ "$i" = 0 ] && echo a || echo b)
		[ -f "${MB_AGENT_CFG[$i]}" ] || continue
		if [ -e "/run/netns/$(mb_ns "$l")" ]; then
			nsenter --net="/run/netns/$(mb_ns "$l")" "$VA_SLUICED" -c "${MB_AGENT_CFG[$i]}" \
				--teardown >/dev/null 2>&1
		else
			"$VA_SLUICED" -c "${MB_AGENT_CFG[$i]}" --teardown >/dev/null 2>&1
		fi
	done
	MB_AGENT_CFG=()
	MB_AGENT_PID=()
	return 0
}

# --- one world ------------------------------------------------------------------------------------

mb_up() {
	local sys=$1 t0 before
	mb_topology || return 1
	mb_cgroups || return 1
	mb_nginx || return 1
	t0=$(bw_now_ms)
	case $sys in
	direct) MB_TARGET=$MB_B_ADDR:80 ;;
	haproxy | haproxy-full)
		mb_haproxy_pair "$([ "$sys" = haproxy ] && echo 1 || echo 0)" || return 1
		MB_TARGET=$MB_SIDECAR
		;;
	sluice-off | sluice-strict | sluice-plain)
		vt_bpffs >&2 || return 1
		mb_sluice "${sys#sluice-}" || return 1
		MB_TARGET=$MB_VIP
		;;
	*)
		bw_log "unknown system $sys"
		return 1
		;;
	esac
	MB_SETUP_MS=$(($(bw_now_ms) - t0))
	[ "$sys" = sluice-strict ] && before=$(mb_mtls_count a outbound)
	# The path works end to end before anything is measured.
	if ! mb_client conn "$MB_TARGET" -c 1 -n 30 -d 2 -w 0 -p /s >"$VT_TMP/check.out"; then
		bw_log "$sys: the service does not answer: $(cat "$VT_TMP/check.out")"
		return 1
	fi
	# And sluice-strict really tunnels: node A's agent counted 30 more outbound tunnels (within
	# 3 s: an agent may count a tunnel when it ends).
	if [ "$sys" = sluice-strict ] &&
		! vt_wait_until 3 _mb_mtls_count_ge a outbound $((${before:-0} + 30)); then
		bw_log "sluice-strict: 30 connections, but node A's agent counts" \
			"$(($(mb_mtls_count a outbound) - before)) more outbound tunnels" \
			"(sluice_mtls_connections_total{direction=\"outbound\",result=\"ok\"})"
		return 1
	fi
	return 0
}

# mb_cpu_ticks: the CPU time (user + system, in clock ticks) the system's own processes have
# used so far; empty if it has none (direct). `ip netns exec` and nsenter exec, so each pid is
# HAProxy or sluiced itself, and neither forks.
mb_cpu_ticks() {
	[ "${#MB_SYS_PIDS[@]}" -gt 0 ] || return 0
	local p t=0 v
	for p in "${MB_SYS_PIDS[@]}"; do
		v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

mb_client() {
	(
		echo "$BASHPID" >"$VT_CGROUP/a/cgroup.procs" || exit 2
		exec timeout --foreground -k 2 "$VT_CLIENT_TIMEOUT" ip netns exec "$(mb_ns a)" \
			"$BW_BIN/sl_bench" "$@"
	)
}

mb_down() {
	vt_cleanup >&2
	MB_TARGET=
	MB_SYS_PIDS=()
	rm -rf "${VT_TMP:?}/nginx" "$VT_TMP"/haproxy-* "$VT_TMP"/sluice-*.yaml "$VT_TMP"/agent-*.log \
		"$VT_TMP"/state-* "$VT_TMP"/audit-*.log "$VT_TMP"/*.log 2>/dev/null
	return 0
}
