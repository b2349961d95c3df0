# shellcheck shell=bash
# shellcheck disable=SC2034 # BW_* results are read by the caller
# tools/bench/lib.sh - the worlds of `make bench`. Source after vmtests/lib.sh and agent.sh.
#
# One world per measurement (notes.md: TIME_WAIT and PAWS state carries over from one system
# to the next through the backends, so every measurement gets fresh namespaces):
#
#   bw_up SYSTEM SERVICES [BACKENDS_PER_DECOY]
#       vt_topology (node, rtr, be1..3; addresses in 198.18.0.0/15, no default route, the VIP
#       range 198.19.0.0/16 blackholed in node and rtr), an nginx on port 80 in each backend
#       netns, the cgroup the clients run in, and SYSTEM set up with SERVICES services (the
#       measured one plus decoys, tools/bench/gen.awk). Sets BW_TARGETS (what the client
#       connects to) and BW_SETUP_MS (how long setting the system up took).
#       Returns 2 (and sets BW_SKIP to the reason) if this machine cannot run SYSTEM at that
#       size, 1 on failure.
#   bw_client ARGS      tools/bench/sl_bench ARGS, in the cgroup and the node netns, bounded.
#   bw_down             removes the world: processes, agent pins, cgroup, namespaces.
#
# SYSTEM:
#   direct    the client connects to the three backends itself, in turn: the floor.
#   sluice    sluiced in the node netns; the client's cgroup is the agent's.
#   iptables  kube-proxy's iptables chains in the node netns (nat OUTPUT). DNAT happens after
#             the route lookup, so the VIP range is routed to rtr, which blackholes it.
#   nftables  kube-proxy's nftables layout (verdict map), routed like iptables.
#   haproxy   HAProxy in TCP mode in the node netns, one listener per service; the VIP range
#             is local in the node netns (it never leaves it).

BW_DIR=${BW_DIR:-$VT_ROOT/tools/bench}
BW_BIN=${BW_BIN:-$VT_ROOT/build/bench}
BW_VIP=198.19.0.10:80
BW_BACKENDS=198.18.1.2:80,198.18.1.3:80,198.18.1.4:80
BW_LIMITS_SERVICES=32768
BW_LIMITS_BACKENDS=262144
BW_TARGETS=
BW_SETUP_MS=0
BW_SKIP=
BW_HAPROXY_PID=

bw_log() { echo "bench: $*" >&2; }

bw_now_ms() { date +%s%3N; }

# bw_build: builds $BW_BIN/sl_bench if missing or older than its source.
bw_build() {
	local src=$BW_DIR/sl_bench.c tmp
	mkdir -p "$BW_BIN" || return 1
	[ -x "$BW_BIN/sl_bench" ] && [ "$BW_BIN/sl_bench" -nt "$src" ] && return 0
	tmp=$BW_BIN/.sl_bench.$$
	${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -D_GNU_SOURCE -pthread "$src" -o "$tmp" || {
		rm -f "$tmp"
		return 1
	}
	mv -f "$tmp" "$BW_BIN/sl_bench"
}

# bw_gen KIND SERVICES BACKENDS [awk -v assignments...]
bw_gen() {
	local kind=$1 n=$2 b=$3
	shift 3
	awk -f "$BW_DIR/gen.awk" -v kind="$kind" -v n="$n" -v b="$b" "$@"
}

# bw_wait_listen NS ADDR:PORT SECS: until something listens on ADDR:PORT in NS.
bw_wait_listen() {
	local ns=$1 ap=$2 secs=$3 i
	for ((i = 0; i < secs * 20; i++)); do
		[ -n "$(ip netns exec "$ns" ss -Hltn "src $ap" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	return 1
}

# bw_nginx N: nginx (one worker) on :80 in ${VT_ID}-beN. GET /s answers "beN\n", GET /big a
# 1 MiB file (sendfile). No logs but errors; keep-alive without a request limit.
bw_nginx() {
	bw_nginx_in "$VT_ID-be$1" "$VT_TMP/nginx-be$1" "be$1"
}

# bw_nginx_in NS DIR NAME: the same nginx in netns NS, its files in DIR; GET /s answers
# "NAME\n". Shared by the two-node mTLS bench (tools/bench/mtls/world.sh).
bw_nginx_in() {
	local ns=$1 d=$2 name=$3 pid
	mkdir -p "$d" || return 1
	[ -f "$VT_TMP/big.bin" ] || head -c 1048576 /dev/urandom >"$VT_TMP/big.bin" || return 1
	cat >"$d/nginx.conf" <<EOF
user root root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	keepalive_requests 100000000;
	keepalive_timeout 60s;
	sendfile on;
	tcp_nopush on;
	default_type application/octet-stream;
	server {
		listen 80 backlog=8192;
		location = /s { return 200 "$name\n"; }
		location = /big { alias $VT_TMP/big.bin; }
	}
}
EOF
	ip netns exec "$ns" nginx -p "$d" -c "$d/nginx.conf" -g 'daemon off;' \
		>>"$d.log" 2>&1 &
	pid=$!
	vt_track_pid "$pid"
	bw_wait_listen "$ns" "0.0.0.0:80" 5 || {
		bw_log "nginx in $ns did not start: $(tail -n 3 "$d/error.log" "$d.log" 2>/dev/null)"
		return 1
	}
}

# bw_agent_start CONFIG SECS: sluiced in the node netns; waits up to SECS for its "ready".
bw_agent_start() {
	VA_CONFIG=$1
	VA_LOG=$VT_TMP/agent.log
	: >"$VA_LOG"
	(exec env -u JOURNAL_STREAM nsenter --net="/run/netns/$VT_ID-node" "$VA_SLUICED" \
		-c "$VA_CONFIG" --log-level info >>"$VA_LOG" 2>&1) &
	VA_PID=$!
	vt_track_pid "$VA_PID"
	if ! vt_wait_until "$2" va_log_count_ge 'msg="ready"' 1; then
		bw_log "sluiced did not become ready in $2 s: $(tail -n 3 "$VA_LOG")"
		return 1
	fi
}

# bw_agent_config FILE SERVICES BACKENDS [gen args]: sluiced's YAML for this world.
bw_agent_config() {
	local f=$1
	shift
	{
		printf '  limits:\n    services: %d\n    backends: %d\n' \
			"$BW_LIMITS_SERVICES" "$BW_LIMITS_BACKENDS"
		bw_gen sluice "$@"
	} | va_config "$f"
}

# bw_log_ms PATTERN [N]: the timestamp (ms since the epoch) of the Nth (default: last) agent
# log line matching PATTERN; empty if none.
bw_log_ms() {
	local ts
	if [ -n "${2:-}" ]; then
		ts=$(grep -E "$1" "$VA_LOG" | sed -n "${2}p" | sed -n 's/^ts=\([^ ]*\).*/\1/p')
	else
		ts=$(grep -E "$1" "$VA_LOG" | tail -n 1 | sed -n 's/^ts=\([^ ]*\).*/\1/p')
	fi
	[ -n "$ts" ] && date -u -d "$ts" +%s%3N
}

bw_up() {
	local sys=$1 n=$2 b=${3:-1} node t0 i f maxconn
	vt_topology >/dev/null || return 1
	vt_cgroup >/dev/null || return 1
	node=$VT_ID-node
	# Many short connections: the same, wide, port range for every system.
	ip netns exec "$node" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
	for i in 1 2 3; do
		bw_nginx "$i" || return 1
	done
	t0=$(bw_now_ms)
	case $sys in
	direct)
		BW_TARGETS=$BW_BACKENDS
		;;
	sluice)
		vt_bpffs >/dev/null || return 1
		f=$VT_TMP/sluice.yaml
		bw_agent_config "$f" "$n" "$b" -v measured=1 || return 1
		bw_agent_start "$f" 120 || return 1
		BW_TARGETS=$BW_VIP
		;;
	iptables | nftables)
		ip -n "$node" route replace 198.19.0.0/16 via 198.18.0.2 || return 1
		f=$VT_TMP/rules.$sys
		if [ "$sys" = iptables ]; then
			bw_gen iptables "$n" "$b" -v measured=1 >"$f" &&
				ip netns exec "$node" iptables-restore <"$f" || return 1
		else
			bw_gen nft "$n" "$b" -v measured=1 >"$f" &&
				ip netns exec "$node" nft -f "$f" || return 1
		fi
		BW_TARGETS=$BW_VIP
		;;
	haproxy)
		ip -n "$node" route add local 198.19.0.0/16 dev lo table local || return 1
		f=$VT_TMP/haproxy.cfg
		# HAProxy needs one fd per listener and two per connection, within the hard limit
		# on open files (raising it takes CAP_SYS_RESOURCE, which a container may lack).
		maxconn=$((($(ulimit -Hn) - n - 1000) / 2))
		[ "$maxconn" -gt 20000 ] && maxconn=20000
		if [ "$maxconn" -lt 256 ]; then
			BW_SKIP="$n listeners do not fit in the limit of $(ulimit -Hn) open files"
			return 2
		fi
		{
			printf 'global\n  maxconn %d\n  pidfile %s/haproxy.pid\n' "$maxconn" "$VT_TMP"
			printf 'defaults\n  mode tcp\n  timeout connect 2s\n'
			printf '  timeout client 30s\n  timeout server 30s\n'
			bw_gen haproxy "$n" "$b" -v measured=1
		} >"$f"
		ip netns exec "$node" haproxy -db -f "$f" >>"$VT_TMP/haproxy.log" 2>&1 &
		BW_HAPROXY_PID=$!
		vt_track_pid "$BW_HAPROXY_PID"
		bw_wait_listen "$node" "$BW_VIP" 120 || {
			bw_log "haproxy did not start: $(tail -n 3 "$VT_TMP/haproxy.log")"
			return 1
		}
		BW_TARGETS=$BW_VIP
		;;
	*)
		bw_log "unknown system $sys"
		return 1
		;;
	esac
	BW_SETUP_MS=$(($(bw_now_ms) - t0))
	# The path works end to end before anything is measured.
	if ! bw_client conn "$BW_TARGETS" -c 1 -n 30 -d 2 -w 0 -p /s >"$VT_TMP/check.out"; then
		bw_log "$sys: the service does not answer: $(cat "$VT_TMP/check.out")"
		return 1
	fi
}

bw_client() {
	vt_in_cgroup "$BW_BIN/sl_bench" "$@"
}

bw_down() {
	vt_cleanup >/dev/null
	VA_PID=
	VA_CONFIG=
	BW_HAPROXY_PID=
	BW_TARGETS=
	rm -rf "${VT_TMP:?}"/nginx-be* "$VT_TMP"/rules.* "$VT_TMP"/*.yaml "$VT_TMP"/haproxy.* \
		"$VT_TMP"/*.log "$VT_TMP"/maps.json "$VT_TMP"/map-* 2>/dev/null
	return 0
}

# bw_ms_since EPOCHREALTIME: milliseconds from then to now, with a fraction.
bw_ms_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

# bw_timed_in_node CMD...: runs CMD in the node netns; prints how long CMD itself took, in ms
# (measured inside the netns, so `ip netns exec` is not counted). Fails if CMD fails.
bw_timed_in_node() {
	ip netns exec "$VT_ID-node" bash -c \
		's=$EPOCHREALTIME; "$@" || exit 1; e=$EPOCHREALTIME
		 awk -v a="$s" -v b="$e" "BEGIN { printf \"%.1f\n\", (b - a) * 1000 }"' \
		timed "$@"
}

# bw_map_mem: the kernel memory of the running agent's maps: `bytes_memlock` of `bpftool map
# show`, summed over the maps pinned under $VT_BPFFS, the maps its programs use (the programs
# `sluicectl status` lists), and the inner maps of every map-in-map among them (Maglev's
# tables: the agent keeps no fd of them, only the outer map holds them). No other agent's map
# is counted. A family is the maps of one name (a pinned map is named by its pin, an inner
# map by its kernel name). Sets BW_MEM_BYTES, BW_MEM_MAPS; the largest family by bytes:
# BW_MEM_FAM (its name), BW_MEM_FAM_MAPS, BW_MEM_FAM_BYTES; the inner maps: BW_MEM_INNER_MAPS,
# BW_MEM_INNER_BYTES. Returns 1 if a map cannot be read or is missing from the list.
bw_map_mem() {
	local all=$VT_TMP/maps.json ids=$VT_TMP/map-ids inner=$VT_TMP/map-inner p o out
	BW_MEM_BYTES='' BW_MEM_MAPS='' BW_MEM_FAM='' BW_MEM_FAM_MAPS='' BW_MEM_FAM_BYTES=''
	BW_MEM_INNER_MAPS='' BW_MEM_INNER_BYTES=''
	bpftool -j -f map show >"$all" || {
		bw_log "map memory: bpftool map show failed"
		return 1
	}
	jq -r --arg d "$VT_BPFFS/" '.[] | select(any(.pinned[]?; startswith($d))) | .id' "$all" \
		>"$ids" || return 1
	[ -s "$ids" ] || {
		bw_log "map memory: no map pinned under $VT_BPFFS"
		return 1
	}
	p=$(va_ctl -o json status | jq -r '.programs[].prog_id') || {
		bw_log "map memory: sluicectl status failed"
		return 1
	}
	for p in $p; do
		bpftool -j prog show id "$p" | jq -r '.map_ids[]?' >>"$ids" || {
			bw_log "map memory: bpftool prog show id $p failed"
			return 1
		}
	done
	# An outer map's value is the inner map's id, 4 bytes in host order (little endian here).
	: >"$inner"
	for o in $(jq -r --slurpfile ids "$ids" '($ids | map({(tostring): 1}) | add) as $s
		| .[] | select($s[.id | tostring] and (.type | endswith("_of_maps"))) | .id' "$all"); do
		bpftool -j map dump id "$o" | jq -r 'def hex: ltrimstr("0x") | ascii_downcase
			| explode | reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
			.[] | .value | reverse | reduce .[] as $b (0; . * 256 + ($b | hex))' >>"$inner" || {
			bw_log "map memory: bpftool map dump id $o failed"
			return 1
		}
	done
	out=$(jq -r --slurpfile ids "$ids" --slurpfile inner "$inner" --arg d "$VT_BPFFS/" '
		def set: map({(tostring): 1}) | add // {};
		($ids | set) as $s | ($inner | set) as $in
		| [.[] | select($s[.id | tostring] or $in[.id | tostring])] as $m
		| ((($ids + $inner) | unique | length) - ($m | length)) as $missing
		| [$m[] | select($in[.id | tostring])] as $im
		| [$m[] | {f: ((.pinned // []) | map(select(startswith($d)) | sub(".*/"; "")) | .[0]),
			n: .name, b: (.bytes_memlock // 0)} | {f: (.f // .n), b}]
		| group_by(.f) | map({f: .[0].f, n: length, b: (map(.b) | add)}) | max_by(.b) as $big
		| [($m | map(.bytes_memlock // 0) | add), ($m | length), $big.f, $big.n, $big.b,
			($im | length), ($im | map(.bytes_memlock // 0) | add // 0), $missing]
		| map(tostring) | join("\t")' "$all") || return 1
	IFS=$'\t' read -r BW_MEM_BYTES BW_MEM_MAPS BW_MEM_FAM BW_MEM_FAM_MAPS BW_MEM_FAM_BYTES \
		BW_MEM_INNER_MAPS BW_MEM_INNER_BYTES p <<<"$out"
	if [ "$p" != 0 ] || [ -z "$BW_MEM_BYTES" ]; then
		bw_log "map memory: $p of the agent's maps are not in bpftool's list ($out)"
		return 1
	fi
}

# bw_cp SYSTEM SERVICES BACKENDS: the control plane in a fresh world. Applies SERVICES services
# of BACKENDS backends each to an empty system, then changes one backend of one service.
# SYSTEM sluice (every service lb: random), sluice-maglev (lb: maglev), iptables or nftables.
# Sets BW_CP_APPLY_MS (from nothing to applied), BW_CP_CHANGE_MS (the change, from the moment
# it is handed over to applied) and BW_CP_CHANGE_WORK_MS (the part spent applying it: for
# sluice from its "reloading" to its "config applied" line; the rest is the agent's 200 ms
# debounce of file events; for iptables and nft the same as BW_CP_CHANGE_MS). With
# BW_CP_MEM=1, sluice's map memory too, once ready and before the change (bw_map_mem).
bw_cp() {
	local sys=$1 n=$2 b=$3 node f c t0 t1 a r lb=random
	BW_CP_APPLY_MS=
	BW_CP_CHANGE_MS=
	BW_CP_CHANGE_WORK_MS=
	vt_topology >/dev/null || return 1
	vt_cgroup >/dev/null || return 1
	node=$VT_ID-node
	case $sys in
	sluice | sluice-maglev)
		[ "$sys" = sluice-maglev ] && lb=maglev
		vt_bpffs >/dev/null || return 1
		f=$VT_TMP/sluice.yaml
		mkdir -p "$VT_TMP/stage"
		c=$VT_TMP/stage/sluice.yaml
		bw_agent_config "$f" "$n" "$b" -v lb="$lb" || return 1
		bw_agent_config "$c" "$n" "$b" -v lb="$lb" -v change=1 || return 1
		t0=$(bw_now_ms)
		bw_agent_start "$f" 600 || return 1
		r=$(bw_log_ms 'msg="ready"')
		BW_CP_APPLY_MS=$((r - t0))
		if [ "${BW_CP_MEM:-0}" = 1 ]; then
			bw_map_mem || return 1
		fi
		t1=$(bw_now_ms)
		mv -f "$c" "$f" # an atomic replace, as editors and config managers do
		vt_wait_until 120 va_log_count_ge 'msg="config applied"' 2 || {
			bw_log "sluiced did not apply the change: $(tail -n 3 "$VA_LOG")"
			return 1
		}
		a=$(bw_log_ms 'msg="config applied"' 2)
		r=$(bw_log_ms 'msg="reloading"' 1)
		BW_CP_CHANGE_MS=$((a - t1))
		BW_CP_CHANGE_WORK_MS=$((a - r))
		grep -q 'msg="service updated" service=d[0-9]*' "$VA_LOG" || {
			bw_log "sluiced: no service updated by the change"
			return 1
		}
		;;
	iptables)
		f=$VT_TMP/rules.iptables
		c=$VT_TMP/rules.iptables.change
		bw_gen iptables "$n" "$b" >"$f" && bw_gen iptables "$n" "$b" -v change=1 >"$c" ||
			return 1
		BW_CP_APPLY_MS=$(bw_timed_in_node iptables-restore "$f") || return 1
		# kube-proxy >= 1.27 rewrites only the chains that changed (--noflush).
		BW_CP_CHANGE_MS=$(bw_timed_in_node iptables-restore --noflush "$c") || return 1
		BW_CP_CHANGE_WORK_MS=$BW_CP_CHANGE_MS
		# (iptables-save crashes on tables this large: iptables 1.8.9, nf_tables backend.)
		ip netns exec "$node" iptables -t nat -S "$(printf 'KUBE-SVC-%016X' $(((n - 1) / 2)))" |
			grep -q 'default/d[0-9]* -> 198.18.255.1:80' || {
			bw_log "iptables: the change is not in the ruleset"
			return 1
		}
		;;
	nftables)
		f=$VT_TMP/rules.nft
		c=$VT_TMP/rules.nft.change
		bw_gen nft "$n" "$b" >"$f" && bw_gen nft "$n" "$b" -v change=1 >"$c" || return 1
		BW_CP_APPLY_MS=$(bw_timed_in_node nft -f "$f") || return 1
		BW_CP_CHANGE_MS=$(bw_timed_in_node nft -f "$c") || return 1
		BW_CP_CHANGE_WORK_MS=$BW_CP_CHANGE_MS
		ip netns exec "$node" nft list chain ip kube-proxy endpoint-d$(((n - 1) / 2))-new |
			grep -q 'dnat to 198.18.255.1:80' || {
			bw_log "nftables: the change is not in the ruleset"
			return 1
		}
		;;
	*)
		bw_log "bw_cp: unknown system $sys"
		return 1
		;;
	esac
}
