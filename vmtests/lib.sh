# shellcheck shell=bash
# vmtests/lib.sh - helpers for sluice root vmtests on the real kernel. Source it; `set -u` safe.
#
# Network safety (hard rule): only 198.18.0.0/15 and 2001:db8::/32 are ever configured. The
# node netns (agent + clients) has NO default route and blackhole routes for the VIP ranges
# 198.19.0.0/16 and 2001:db8:f::/48, so an un-rewritten VIP fails locally (EINVAL) and never
# leaves. All links live inside our own netns; nothing touches the root netns's interfaces.
#
# Topology (vt_topology):
#
#   ${VT_ID}-node                ${VT_ID}-rtr                         ${VT_ID}-beN (N=1..3)
#   vt-rtr 198.18.0.1/30  <-->   vt-node 198.18.0.2/30
#          2001:db8::1/64               2001:db8::2/64
#                                vt-br  198.18.1.1/24    <--vt-beN-->  eth0 198.18.1.(N+1)/24
#                                       2001:db8:1::1/64                    2001:db8:1::(N+1)/64
#
# API (see each function): vt_world NAME (the usual prologue: vt_init NAME, vt_topology,
# vt_backends, vt_cgroup, vt_bpffs), vt_init NAME, vt_topology, vt_backends [PORT], vt_server NS
# NAME PORT [ARGS], vt_server_stop NAME [SIG], vt_cgroup, vt_client ARGS, vt_in_cgroup CMD,
# vt_cgroup_kill SIG PATTERN, vt_node CMD, vt_bpffs, vt_track_pid PID, vt_on_cleanup CMD,
# vt_cleanup, vt_check WHAT -- CMD, vt_pass, vt_fail, vt_skip, vt_require_root, vt_require_btf,
# vt_finish, vt_counts_within FILE LO HI NAMES, vt_value FILE KEY, vt_wait_until SECS CMD,
# vt_require_tools.

# Only our own netns are ever talked to: a proxy set up on this machine (its environment,
# /etc/environment) must not send curl or the agent's libcurl (etcd) anywhere else. (The tests
# run curl -q, so that a ~/.curlrc does not count either.)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

VT_ROOT=${VT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VT_BIN=${VT_BIN:-$VT_ROOT/build/vmtests}
[[ "$VT_BIN" == /* ]] || VT_BIN=$PWD/$VT_BIN
# Wall-clock bound (seconds) on every vt_client/vt_in_cgroup command; 0 = none.
VT_CLIENT_TIMEOUT=${VT_CLIENT_TIMEOUT:-300}
VT_ID=
VT_NAME=
VT_TMP=
VT_CGROUP=
VT_BPFFS=
VT_FAILS=0
VT_NETNS=()
VT_PIDS=()
VT_ON_CLEANUP=() # vt_on_cleanup's commands, each one shell-quoted line
declare -gA VT_SERVER_PID=()
_VT_TOOLS_OK=0
_VT_DIRTY=0 # something to clean up since the last vt_cleanup

# --- reporting -------------------------------------------------------------------------------

vt_log() { echo "# $*"; }
vt_pass() { echo "PASS: $*"; }
vt_fail() {
	VT_FAILS=$((VT_FAILS + 1))
	echo "FAIL: $*"
}
vt_skip() {
	echo "SKIP: $*"
	exit 77
}
vt_finish() {
	if [ "$VT_FAILS" -eq 0 ]; then
		echo "PASS: ${VT_NAME:-test} (all checks passed)"
		exit 0
	fi
	echo "FAIL: ${VT_NAME:-test} ($VT_FAILS check(s) failed)"
	exit 1
}

# vt_check WHAT [-o FILE | -O FILE] [-e FILE] [-v] [-d CODE] -- [!] CMD [ARGS...]: one checked
# step (xdp-tools' check_run). Runs CMD in this shell (a function works, and may set variables)
# and prints "PASS: WHAT" if it exits 0, else "FAIL: WHAT: DETAIL", counted as vt_fail counts.
# With "!", the step passes when CMD fails. Returns 0 if the step passed, 1 if not.
#   -o FILE  CMD's stdout goes to FILE (a redirection after vt_check would catch the PASS line)
#   -O FILE  CMD's stdout and stderr go to FILE (>FILE 2>&1)
#   -e FILE  CMD's stderr goes to FILE
#   -v       the PASS line shows FILE's content too (for a step whose output is the finding)
#   -d CODE  a diagnostic hook: on failure, DETAIL is what the shell code CODE prints (eval'd
#            after CMD, so it can read CMD's output files). Without it, DETAIL is CMD's exit
#            status and FILE's content. DETAIL is one line; FILE's content is cut at 1000 bytes.
# A compound condition is CMD `eval 'A && B'`: it sees the caller's variables, but not its $1...
vt_check() {
	local _vt_what=$1 _vt_out='' _vt_both=0 _vt_err='' _vt_show=0 _vt_diag='' _vt_not=0 _vt_rc _vt_d
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case $1 in
		-o | -O | -e | -d)
			[ $# -ge 2 ] || break
			case $1 in
			-o) _vt_out=$2 ;;
			-O) _vt_out=$2 _vt_both=1 ;;
			-e) _vt_err=$2 ;;
			-d) _vt_diag=$2 ;;
			esac
			shift 2
			;;
		-v) _vt_show=1 && shift ;;
		*) break ;;
		esac
	done
	if [ "${1:-}" != -- ] || [ $# -lt 2 ]; then
		vt_fail "$_vt_what (vt_check: want WHAT [-o|-O|-e FILE] [-v] [-d CODE] -- CMD, at '${1:-}')"
		return 1
	fi
	shift
	if [ "$1" = '!' ]; then
		_vt_not=1
		shift
	fi
	if [ "$_vt_both" = 1 ]; then
		"$@" >"$_vt_out" 2>&1
	elif [ -n "$_vt_out" ] && [ -n "$_vt_err" ]; then
		"$@" >"$_vt_out" 2>"$_vt_err"
	elif [ -n "$_vt_out" ]; then
		"$@" >"$_vt_out"
	elif [ -n "$_vt_err" ]; then
		"$@" 2>"$_vt_err"
	else
		"$@"
	fi
	_vt_rc=$?
	if { [ "$_vt_rc" -eq 0 ] && [ "$_vt_not" = 0 ]; } || { [ "$_vt_rc" -ne 0 ] && [ "$_vt_not" = 1 ]; }; then
		if [ "$_vt_show" = 1 ] && [ -n "$_vt_out" ]; then
			vt_pass "$_vt_what: $(_vt_oneline "$_vt_out")"
		else
			vt_pass "$_vt_what"
		fi
		return 0
	fi
	if [ -n "$_vt_diag" ]; then
		_vt_d=$(eval "$_vt_diag" 2>&1 | tr '\n' ' ')
	else
		_vt_d="exit $_vt_rc"
		[ "$_vt_not" = 1 ] && _vt_d+=", want a failure"
		[ -n "$_vt_out" ] && _vt_d+=": $(_vt_oneline "$_vt_out")"
		[ -n "$_vt_err" ] && _vt_d+="; stderr: $(_vt_oneline "$_vt_err")"
	fi
	vt_fail "$_vt_what: ${_vt_d% }"
	return 1
}

# _vt_oneline FILE: the first 1000 bytes of FILE on one line.
_vt_oneline() {
	head -c 1000 "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'
}

vt_require_root() {
	[ "$(id -u)" -eq 0 ] || vt_skip "needs root"
}
vt_require_btf() {
	[ -r /sys/kernel/btf/vmlinux ] || vt_skip "no /sys/kernel/btf/vmlinux (kernel built without BTF)"
}

# --- run id, cleanup -------------------------------------------------------------------------

# vt_init NAME: sets VT_ID (sl<pid>-<name>), VT_TMP (scratch dir for logs/pidfiles), and an EXIT
# trap that always runs vt_cleanup and keeps the exit status. INT/TERM exit through the trap.
vt_init() {
	local short n=0
	short=$(printf '%s' "${1:-t}" | tr -cd 'a-z0-9' | cut -c1-8)
	VT_NAME=${1:-t}
	VT_ID="sl$$-${short:-t}"
	# Pids come round again (pid_max may be 32768), and a run that was killed before its cleanup
	# leaves its netns, cgroup and pins: then this id is taken, and sl<pid>x<n>-<name> is used.
	while _vt_id_taken "$VT_ID"; do
		n=$((n + 1))
		VT_ID="sl$$x$n-${short:-t}"
	done
	VT_TMP=$(mktemp -d "/tmp/${VT_ID}.XXXXXX") || {
		echo "vt_init: mktemp failed" >&2
		exit 1
	}
	_VT_DIRTY=1
	trap '_vt_exit_trap' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	vt_log "run id $VT_ID (scratch $VT_TMP)"
}

# _vt_id_taken ID: a netns, cgroup or bpffs directory of this id (or of a name it starts) exists.
_vt_id_taken() {
	local mnt
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	compgen -G "/run/netns/$1-*" >/dev/null || compgen -G "/sys/fs/bpf/$1*" >/dev/null ||
		{ [ -n "$mnt" ] && compgen -G "$mnt/$1*" >/dev/null; }
}

_vt_exit_trap() {
	local rc=$?
	trap - EXIT INT TERM HUP
	trap '' PIPE # a closed stdout must not cut the cleanup short
	if { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; } || [ "$VT_FAILS" -ne 0 ]; then
		_vt_dump_logs
	fi
	vt_cleanup
	if [ -n "$VT_TMP" ] && [ -d "$VT_TMP" ] && [ "${VT_KEEP:-0}" != 1 ]; then
		rm -rf -- "$VT_TMP"
	fi
	exit "$rc"
}

_vt_dump_logs() {
	local f
	[ -n "$VT_TMP" ] && [ -d "$VT_TMP" ] || return 0
	for f in "$VT_TMP"/*.log; do
		[ -s "$f" ] || continue
		echo "# --- $(basename "$f") (last 20 lines) ---"
		tail -n 20 "$f" | sed 's/^/#   /'
	done
	return 0
}

# vt_track_pid PID...: vt_cleanup sends these SIGTERM (then SIGKILL after 3 s).
vt_track_pid() {
	local p
	for p in "$@"; do
		[[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -gt 1 ] && VT_PIDS+=("$p") && _VT_DIRTY=1
	done
	return 0
}

_vt_untrack_pid() {
	local p keep=()
	for p in ${VT_PIDS[@]+"${VT_PIDS[@]}"}; do
		[ "$p" != "$1" ] && keep+=("$p")
	done
	VT_PIDS=(${keep[@]+"${keep[@]}"})
	return 0
}

# True if PID exists and is not a zombie.
_vt_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Terminate PIDs: SIGTERM, wait up to 3 s, SIGKILL, reap our children.
_vt_kill_pids() {
	local p i left
	[ "$#" -gt 0 ] || return 0
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null
	done
	for ((i = 0; i < 30; i++)); do
		left=0
		for p in "$@"; do
			_vt_alive "$p" && left=1
		done
		[ "$left" -eq 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do
		_vt_alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	for p in "$@"; do
		wait "$p" 2>/dev/null
	done
	return 0
}

# vt_on_cleanup CMD [ARGS...]: vt_cleanup runs CMD ARGS (the words as given now: pass a function
# that reads its variables then) after it has stopped the tracked processes and before it
# removes the cgroup, netns and pins, the last registered first. It runs at every cleanup, pass
# or fail, so it must be idempotent and must not fail the test.
vt_on_cleanup() {
	local q
	printf -v q '%q ' "$@"
	VT_ON_CLEANUP+=("$q")
}

# vt_cleanup: idempotent (a no-op when nothing was set up since the last call); never fails.
# Kills tracked pids and anything left in our netns, runs the vt_on_cleanup commands (last
# first), empties and removes the cgroup, deletes our netns, removes $VT_BPFFS. The EXIT trap
# then removes the scratch dir $VT_TMP (kept if VT_KEEP=1). A test may call it itself and set up
# again after.
vt_cleanup() {
	local saved=$- ns pids d p parent i
	[ "$_VT_DIRTY" = 1 ] || return 0
	set +e
	{
		# 1. processes we started
		if [ "${#VT_PIDS[@]}" -gt 0 ]; then
			_vt_kill_pids "${VT_PIDS[@]}"
		fi
		VT_PIDS=()
		VT_SERVER_PID=()
		# 2. anything else still running inside our netns (only we put processes there)
		pids=()
		for ns in ${VT_NETNS[@]+"${VT_NETNS[@]}"}; do
			[ -e "/run/netns/$ns" ] || continue
			for p in $(ip netns pids "$ns" 2>/dev/null); do
				[ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] && pids+=("$p")
			done
		done
		[ "${#pids[@]}" -gt 0 ] && _vt_kill_pids "${pids[@]}"

		# 3. the tests' own teardown (agent --teardown etc.), the last registered first
		for ((i = ${#VT_ON_CLEANUP[@]} - 1; i >= 0; i--)); do
			eval "${VT_ON_CLEANUP[$i]}"
		done

		# 4. cgroup: move leftovers to the parent of VT_CGROUP, remove depth-first
		if [ -n "$VT_CGROUP" ] && [ -d "$VT_CGROUP" ]; then
			parent=$(dirname "$VT_CGROUP")
			while read -r d; do
				for ((i = 0; i < 20; i++)); do
					while read -r p; do
						echo "$p" >"$parent/cgroup.procs"
					done <"$d/cgroup.procs"
					rmdir "$d" 2>/dev/null && break
					sleep 0.1
				done
				[ -d "$d" ] && echo "vt_cleanup: could not remove cgroup $d" >&2
			done < <(find "$VT_CGROUP" -depth -type d 2>/dev/null)
		fi
		VT_CGROUP=

		# 5. network namespaces (links inside go with them)
		for ((i = ${#VT_NETNS[@]} - 1; i >= 0; i--)); do
			ns=${VT_NETNS[$i]}
			[ -e "/run/netns/$ns" ] || continue
			ip netns del "$ns" || echo "vt_cleanup: could not delete netns $ns" >&2
		done
		VT_NETNS=()

		# 6. pins
		if [ -n "$VT_BPFFS" ] && [ -n "$VT_ID" ] && [ "$VT_BPFFS" = "/sys/fs/bpf/$VT_ID" ] &&
			[ -e "$VT_BPFFS" ]; then
			rm -rf -- "$VT_BPFFS" || echo "vt_cleanup: could not remove $VT_BPFFS" >&2
		fi
	} 2>&1
	_VT_DIRTY=0
	[[ "$saved" == *e* ]] && set -e
	return 0
}

# --- tools -----------------------------------------------------------------------------------

# vt_require_tools: (re)builds $VT_BIN/sl_server and sl_client if missing or older than source.
vt_require_tools() {
	local t src tmp
	[ "$_VT_TOOLS_OK" = 1 ] && return 0
	mkdir -p "$VT_BIN" || {
		vt_fail "cannot create $VT_BIN"
		return 1
	}
	for t in sl_server sl_client; do
		src=$VT_ROOT/vmtests/tools/$t.c
		if [ -x "$VT_BIN/$t" ] && { [ ! -e "$src" ] || [ "$VT_BIN/$t" -nt "$src" ]; }; then
			continue
		fi
		vt_log "building $VT_BIN/$t"
		tmp=$VT_BIN/.$t.$$
		if ! ${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
			-Wmissing-prototypes -D_GNU_SOURCE "$src" -o "$tmp"; then
			rm -f "$tmp"
			vt_fail "cannot build $t"
			return 1
		fi
		mv -f "$tmp" "$VT_BIN/$t"
	done
	_VT_TOOLS_OK=1
}

# --- topology --------------------------------------------------------------------------------

_vt_need_init() {
	[ -n "$VT_ID" ] && return 0
	echo "lib.sh: call vt_init NAME first" >&2
	exit 1
}

# Run a command, report a failure with context.
_vt_run() {
	"$@" && return 0
	echo "vt: command failed: $*" >&2
	return 1
}

_vt_sysctl() {
	local ns=$1 key=$2 val=$3
	ip netns exec "$ns" sh -c "echo $val > /proc/sys/${key//.//}" ||
		echo "vt: sysctl $key=$val in $ns failed" >&2
}

_vt_ns_add() {
	local ns=$1
	_vt_run ip netns add "$ns" || return 1
	VT_NETNS+=("$ns")
	_VT_DIRTY=1
	_vt_sysctl "$ns" net.ipv6.conf.all.accept_dad 0
	_vt_sysctl "$ns" net.ipv6.conf.default.accept_dad 0
	_vt_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 0
	_vt_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 0
	_vt_run ip -n "$ns" link set lo up
}

# vt_topology: creates ${VT_ID}-node, -rtr, -be1..3 as drawn at the top of this file.
vt_topology() {
	_vt_need_init
	local node=$VT_ID-node rtr=$VT_ID-rtr be i ok=1
	{
		_vt_ns_add "$node" && _vt_ns_add "$rtr" &&
			_vt_ns_add "$VT_ID-be1" && _vt_ns_add "$VT_ID-be2" && _vt_ns_add "$VT_ID-be3"
	} || {
		vt_fail "topology: cannot create netns"
		return 1
	}

	# router: forwarding on, a bridge for the backends
	_vt_sysctl "$rtr" net.ipv4.ip_forward 1
	_vt_sysctl "$rtr" net.ipv6.conf.all.forwarding 1

	# Links first, all up, addresses after: IPv6 addresses added while a link is down lose the
	# first neighbour solicitation once it comes up (a 1 s stall on the first v6 connect).
	_vt_run ip -n "$node" link add vt-rtr type veth peer name vt-node netns "$rtr" || ok=0
	_vt_run ip -n "$rtr" link add vt-br type bridge forward_delay 0 mcast_snooping 0 || ok=0
	for i in 1 2 3; do
		_vt_run ip -n "$rtr" link add "vt-be$i" type veth peer name eth0 netns "$VT_ID-be$i" ||
			ok=0
		_vt_run ip -n "$rtr" link set "vt-be$i" master vt-br up || ok=0
		_vt_run ip -n "$VT_ID-be$i" link set eth0 up || ok=0
	done
	_vt_run ip -n "$rtr" link set vt-br up || ok=0
	_vt_run ip -n "$rtr" link set vt-node up || ok=0
	_vt_run ip -n "$node" link set vt-rtr up || ok=0

	# node: backends via rtr, VIPs blackholed, no default route
	_vt_run ip -n "$node" addr add 198.18.0.1/30 dev vt-rtr || ok=0
	_vt_run ip -n "$node" addr add 2001:db8::1/64 dev vt-rtr nodad || ok=0
	_vt_run ip -n "$node" route add 198.18.1.0/24 via 198.18.0.2 || ok=0
	_vt_run ip -n "$node" -6 route add 2001:db8:1::/64 via 2001:db8::2 || ok=0
	_vt_run ip -n "$node" route add blackhole 198.19.0.0/16 || ok=0
	_vt_run ip -n "$node" -6 route add blackhole 2001:db8:f::/48 || ok=0

	# rtr: forwards between node and the backends' bridge; VIPs blackholed too, no default route
	_vt_run ip -n "$rtr" addr add 198.18.0.2/30 dev vt-node || ok=0
	_vt_run ip -n "$rtr" addr add 2001:db8::2/64 dev vt-node nodad || ok=0
	_vt_run ip -n "$rtr" addr add 198.18.1.1/24 dev vt-br || ok=0
	_vt_run ip -n "$rtr" addr add 2001:db8:1::1/64 dev vt-br nodad || ok=0
	_vt_run ip -n "$rtr" route add blackhole 198.19.0.0/16 || ok=0
	_vt_run ip -n "$rtr" -6 route add blackhole 2001:db8:f::/48 || ok=0

	# backends: default route via rtr (they only ever answer)
	for i in 1 2 3; do
		be=$VT_ID-be$i
		_vt_run ip -n "$be" addr add "198.18.1.$((i + 1))/24" dev eth0 || ok=0
		_vt_run ip -n "$be" addr add "2001:db8:1::$((i + 1))/64" dev eth0 nodad || ok=0
		_vt_run ip -n "$be" route add default via 198.18.1.1 || ok=0
		_vt_run ip -n "$be" -6 route add default via 2001:db8:1::1 || ok=0
	done

	if [ "$ok" -ne 1 ]; then
		vt_fail "topology setup"
		return 1
	fi
	vt_log "topology up: $node, $rtr, $VT_ID-be1..3"
}

# --- backends --------------------------------------------------------------------------------

# vt_server NS NAME PORT [sl_server ARGS...]: starts sl_server in netns NS, waits (5 s max) for
# its pidfile, which it writes only after its TCP and UDP sockets listen. Log: $VT_TMP/NAME.log.
vt_server() {
	_vt_need_init
	local ns=$1 name=$2 port=$3 pid i pidf log
	shift 3
	vt_require_tools || return 1
	pidf=$VT_TMP/$name.pid
	log=$VT_TMP/$name.log
	rm -f "$pidf"
	ip netns exec "$ns" "$VT_BIN/sl_server" --name "$name" --port "$port" --pidfile "$pidf" \
		"$@" >>"$log" 2>&1 &
	pid=$!
	vt_track_pid "$pid"
	VT_SERVER_PID[$name]=$pid
	for ((i = 0; i < 100; i++)); do
		if [ -s "$pidf" ]; then
			# `ip netns exec` execs, so this is the same pid; track it anyway if not
			[ "$(cat "$pidf")" != "$pid" ] && vt_track_pid "$(cat "$pidf")"
			return 0
		fi
		_vt_alive "$pid" || break
		sleep 0.05
	done
	vt_fail "sl_server $name in $ns did not start: $(tail -n 3 "$log" 2>/dev/null)"
	return 1
}

# vt_server_stop NAME [SIGNAL]: stops a server started by vt_server (default SIGTERM), reaps it.
vt_server_stop() {
	local name=$1 sig=${2:-TERM} pid
	pid=${VT_SERVER_PID[$name]:-}
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "VT_SERVER_PID[$name]"
	_vt_untrack_pid "$pid"
	return 0
}

# vt_backends [PORT]: sl_server --name beN --port PORT (default 8080) in ${VT_ID}-beN, N=1..3.
vt_backends() {
	local port=${1:-8080} i ok=0
	for i in 1 2 3; do
		vt_server "$VT_ID-be$i" "be$i" "$port" || ok=1
	done
	[ "$ok" -eq 0 ] && vt_log "backends be1..3 listening on :$port (tcp+udp, v4+v6)"
	return "$ok"
}

# --- cgroup, bpffs ---------------------------------------------------------------------------

# vt_cgroup: creates <cgroup2 mount>/${VT_ID}, exports VT_CGROUP. Skips if there is no cgroup2.
vt_cgroup() {
	_vt_need_init
	local mnt
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	if [ -z "$mnt" ] || [ ! -d "$mnt" ]; then
		vt_skip "no cgroup2 mount in /proc/mounts"
	fi
	VT_CGROUP=$mnt/$VT_ID
	_VT_DIRTY=1
	mkdir "$VT_CGROUP" || {
		vt_fail "mkdir $VT_CGROUP"
		VT_CGROUP=
		return 1
	}
	export VT_CGROUP
	vt_log "cgroup $VT_CGROUP"
}

# vt_bpffs: mounts bpffs at /sys/fs/bpf if needed (left mounted), exports
# VT_BPFFS=/sys/fs/bpf/${VT_ID} (not created; vt_cleanup removes it if it exists).
vt_bpffs() {
	_vt_need_init
	if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
		if ! { mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf; }; then
			vt_skip "cannot mount bpffs at /sys/fs/bpf"
		fi
		vt_log "mounted bpffs at /sys/fs/bpf"
	fi
	export VT_BPFFS=/sys/fs/bpf/$VT_ID
	_VT_DIRTY=1
}

# vt_world NAME: the usual prologue. Skips without root or BTF; vt_init NAME, vt_topology,
# vt_backends on :8080, vt_cgroup and vt_bpffs. A failure there ends the test (vt_finish).
vt_world() {
	vt_require_root
	vt_require_btf
	vt_init "$1"
	vt_topology || vt_finish
	vt_backends 8080 || vt_finish
	vt_cgroup || vt_finish
	vt_bpffs
}

# --- running things on the node --------------------------------------------------------------

# vt_in_cgroup CMD...: runs CMD in VT_CGROUP and in the node netns (ip netns exec: /sys is
# remounted for CMD, so CMD sees neither bpffs nor cgroup2). Bounded by VT_CLIENT_TIMEOUT.
vt_in_cgroup() {
	_vt_need_init
	if [ -z "$VT_CGROUP" ]; then
		echo "vt_in_cgroup: call vt_cgroup first" >&2
		return 2
	fi
	(
		echo "$BASHPID" >"$VT_CGROUP/cgroup.procs" || exit 2
		if [ "$VT_CLIENT_TIMEOUT" != 0 ]; then
			exec timeout --foreground -k 2 "$VT_CLIENT_TIMEOUT" ip netns exec "$VT_ID-node" "$@"
		fi
		exec ip netns exec "$VT_ID-node" "$@"
	)
}

# vt_in_cg CGROUP CMD...: runs CMD in the cgroup CGROUP (a directory under VT_CGROUP) and in the
# node netns (ip netns exec), bounded to 30 s; exit 2 when it cannot join the cgroup.
vt_in_cg() {
	local cg=$1
	shift
	(
		echo "$BASHPID" >"$cg/cgroup.procs" || exit 2
		exec timeout -k 2 30 ip netns exec "$VT_ID-node" "$@"
	)
}

# vt_cgroup_kill SIGNAL PATTERN: sends SIGNAL to the processes in VT_CGROUP and below whose
# command line matches PATTERN (grep -E): this run's own clients, never another run's (as
# `pkill -f` would).
vt_cgroup_kill() {
	local sig=$1 pat=$2 procs p
	[ -n "$VT_CGROUP" ] && [ -d "$VT_CGROUP" ] || return 0
	while read -r procs; do
		while read -r p; do
			tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE -- "$pat" && kill "-$sig" "$p" 2>/dev/null
		done <"$procs"
	done < <(find "$VT_CGROUP" -name cgroup.procs 2>/dev/null)
	return 0
}

# vt_client ARGS...: $VT_BIN/sl_client ARGS in VT_CGROUP + node netns. Returns its exit status
# (0 no failures, 1 failures, 2 usage, 124 killed by VT_CLIENT_TIMEOUT).
vt_client() {
	vt_require_tools || return 2
	vt_in_cgroup "$VT_BIN/sl_client" "$@"
}

# vt_node CMD...: runs CMD in the node netns via nsenter (keeps /sys, so bpffs and cgroup2 stay
# visible): use it for the agent. Not placed in VT_CGROUP.
vt_node() {
	_vt_need_init
	nsenter --net="/run/netns/$VT_ID-node" "$@"
}

# --- checks ----------------------------------------------------------------------------------

# vt_value FILE KEY: the number after KEY in sl_client output (KEY: a backend name, "ok",
# "fail", "peer_mismatch", "bad_reply", "elapsed_ms", or "errno ECONNREFUSED"); 0 if absent.
vt_value() {
	awk -v k="$2" '
		{ v = $NF; $NF = ""; sub(/ +$/, ""); if ($0 == k) { print v; f = 1; exit } }
		END { if (!f) print 0 }' "$1" 2>/dev/null || echo 0
}

# vt_counts_within FILE LO HI NAMES...: each NAME's reply count in FILE within [LO, HI].
# Reports PASS/FAIL per name; returns 1 if any is outside.
vt_counts_within() {
	local file=$1 lo=$2 hi=$3 name n rc=0
	shift 3
	for name in "$@"; do
		n=$(vt_value "$file" "$name")
		vt_check "$name: $n in [$lo, $hi]" -d 'tr "\n" " " <"$file"' -- \
			eval '[ "$n" -ge "$lo" ] && [ "$n" -le "$hi" ]' || rc=1
	done
	return "$rc"
}

# vt_wait_until SECS CMD...: polls CMD every 0.1 s until it succeeds (0) or SECS pass (1).
vt_wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i <= secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
