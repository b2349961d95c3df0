#!/usr/bin/env bash
# sluiced.service and the agent under it. systemd-analyze verify is clean, and the unit has the
# settings the issue asks for. systemd is not PID 1 here, so the unit's sandbox is emulated
# (vmtests/ops.sh: its capability bounding set, NoNewPrivileges, ProtectSystem=strict and the
# other file-system settings) and the installed sluiced, with the installed default config
# plus this test's services, runs in it:
# - it serves a VIP; READY=1 reaches a test notify socket (path and abstract) from the main pid
#   only once the datapath is attached and the config applied; STOPPING=1 on SIGTERM;
# - after a stop (KillMode=mixed: SIGTERM to sluiced alone) the pinned datapath keeps serving,
#   and the next start adopts it;
# - with JOURNAL_STREAM naming its stderr, every log line carries a syslog priority;
# - an strace of the agent shows none of the system calls that the unit's seccomp settings
#   forbid (address families, W+X memory, namespaces, personality, ...);
# - each capability of the bounding set is needed: without CAP_SYS_ADMIN a restart cannot adopt
#   the TC programs, without CAP_NET_ADMIN nothing attaches, and without CAP_PERFMON (or
#   CAP_SYS_ADMIN, which implies it) the sockops program does not load.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/ops.sh"

vt_require_root
vt_require_btf
for t in systemd-analyze python3 setpriv unshare nsenter strace; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
vt_init unit

root=$VT_TMP/root
op_install "$root" PREFIX=/usr || vt_finish
unit=$root/usr/lib/systemd/system/sluiced.service
SLUICED=$root/usr/sbin/sluiced
SLUICECTL=$root/usr/bin/sluicectl

# --- the unit file ---------------------------------------------------------------------------
# verify needs ExecStart to exist: a copy points at the DESTDIR's binary.
sed "s|^ExecStart=/usr/sbin/sluiced|ExecStart=$SLUICED|" "$unit" >"$VT_TMP/sluiced.service"
vt_check "systemd-analyze verify: clean (man pages found too)" -O "$VT_TMP/verify.out" -- \
	eval 'MANPATH=$root/usr/share/man systemd-analyze verify "$VT_TMP/sluiced.service" &&
	[ ! -s "$VT_TMP/verify.out" ]'
sed 's/^KillMode=.*/KillMode=bogus/' "$VT_TMP/sluiced.service" >"$VT_TMP/broken.service"
MANPATH=$root/usr/share/man systemd-analyze verify "$VT_TMP/broken.service" >"$VT_TMP/verify.out" 2>&1
grep -qi "kill mode" "$VT_TMP/verify.out" && vt_pass "verify does catch a bad setting (KillMode=bogus)" ||
	vt_fail "verify missed KillMode=bogus: $(cat "$VT_TMP/verify.out")"
check_key() { # check_key KEY WANT
	local got
	got=$(op_unit_value "$unit" "$1")
	[ "$got" = "$2" ] && vt_pass "unit: $1=$2" || vt_fail "unit: $1='$got', want '$2'"
}
check_key Type notify
check_key NotifyAccess main
check_key ExecStart "/usr/sbin/sluiced -c /etc/sluice/sluice.yaml"
check_key ExecReload "/bin/kill -HUP \$MAINPID"
check_key Restart on-failure
check_key KillMode mixed
check_key NoNewPrivileges yes
check_key ProtectSystem strict
check_key ProtectHome yes
check_key LockPersonality yes
check_key RestrictAddressFamilies "AF_UNIX AF_INET AF_INET6 AF_NETLINK"
check_key ReadWritePaths /sys/fs/bpf
check_key RuntimeDirectory sluice
check_key StateDirectory sluice
check_key LogsDirectory sluice
check_key WantedBy multi-user.target
grep -qE '^ExecStop' "$unit" && vt_fail "unit: an ExecStop would tear the datapath down" ||
	vt_pass "unit: no ExecStop (a stop leaves the datapath pinned)"
exposure=$(systemd-analyze security --offline=yes "$VT_TMP/sluiced.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for sluiced.service: \([0-9.]*\).*/\1/p')
vt_check "systemd-analyze security: exposure $exposure (<= 5.0)" -- \
	eval '[ -n "$exposure" ] && awk -v e="$exposure" "BEGIN { exit !(e <= 5.0) }"'
CAPS=$(op_unit_value "$unit" CapabilityBoundingSet)
[ "$CAPS" = "CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_ADMIN" ] &&
	vt_pass "unit: CapabilityBoundingSet=$CAPS" || vt_fail "unit: CapabilityBoundingSet='$CAPS'"

# --- the world, and the installed default config with this test's services ------------------
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs
default=$root/etc/sluice/sluice.yaml
vt_check "the installed default config is valid as shipped" -O "$VT_TMP/check.out" -- \
	"$SLUICED" -c "$default" --check
# The API socket goes to $VT_TMP/run, which stands in for RuntimeDirectory=sluice (/run/sluice).
mkdir -m 0755 "$VT_TMP/run"
cfg=$VT_TMP/sluice.yaml
sed -e "s|^  bpffs: .*|  bpffs: $VT_BPFFS\n  cgroup: $VT_CGROUP\n  api: $VT_TMP/run/sluiced.sock\n  interfaces: [vt-rtr]|" \
	-e 's|^services: \[\]$|services:|' "$default" >"$cfg"
cat >>"$cfg" <<'YAML'
  - name: web
    frontend: 198.19.0.10:80
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
YAML
vt_check "test config = installed default + cgroup, bpffs, api, interfaces and one service" \
	-O "$VT_TMP/check.out" -- eval 'grep -q "^  bpffs: $VT_BPFFS" "$cfg" &&
	grep -q "^  - name: web" "$cfg" && "$SLUICED" -c "$cfg" --check' || vt_finish
VA_CONFIG=$cfg # agent.sh's cleanup hook tears the datapath down

# --- running it as the unit would ------------------------------------------------------------
op_sandbox_script "$VT_TMP/sandbox.sh"
RW="/sys/fs/bpf $VT_TMP/run"
NOTIFY=$VT_TMP/notify.sock
NOTIFY_OUT=$VT_TMP/notify.out
LOGPTR=$VT_TMP/current-log
U_PID=
U_AGENT=

# listen NAME SOCKET [NETNS]: a notify socket stand-in (bounded to 240 s), tracked.
listen() {
	local name=$1 sock=$2
	shift 2
	: >"$VT_TMP/$name.out"
	"$@" python3 "$VT_ROOT/vmtests/tools/sd_listen.py" "$sock" "$VT_TMP/$name.out" "$LOGPTR" 240 \
		>>"$VT_TMP/$name-listener.log" 2>&1 &
	vt_track_pid $!
	vt_wait_until 5 grep -q listening "$VT_TMP/$name.out" || vt_fail "notify listener $name did not start"
}
listen notify "$NOTIFY"
listen notify-abs "@sl-notify-$VT_ID" nsenter --net="/run/netns/$VT_ID-node"

# unit_start NAME "CAPS" [VAR=VALUE...]: the installed sluiced in the node netns, in the
# sandbox, with this bounding set; its log is $VT_TMP/NAME.log. With U_STRACE set, under strace
# (outside the sandbox); U_PID is then strace's pid and U_AGENT the agent's.
unit_start() {
	local name=$1 caps
	caps=$(op_setpriv_caps "$2")
	shift 2
	U_LOG=$VT_TMP/$name.log
	: >"$U_LOG"
	echo "$U_LOG" >"$LOGPTR"
	local -a wrap=()
	[ -n "${U_STRACE:-}" ] && wrap=(strace -f -qq -ff -o "$U_STRACE" -e "trace=$TRACED")
	# Under SAN=1: LeakSanitizer cannot work under ptrace, so the straced run has no leak
	# check (every other agent run in the vmtests keeps it).
	[ -n "${U_STRACE:-}" ] && [ -n "${ASAN_OPTIONS:-}" ] &&
		set -- "$@" "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0"
	(exec "${wrap[@]}" nsenter --net="/run/netns/$VT_ID-node" unshare --mount \
		--propagation private "$VT_TMP/sandbox.sh" "$caps" "$RW" -- \
		env "$@" "$SLUICED" -c "$cfg" >>"$U_LOG" 2>&1) &
	U_PID=$!
	U_AGENT=$U_PID
	vt_track_pid "$U_PID"
	if [ -n "${U_STRACE:-}" ]; then
		vt_wait_until 5 eval '[ -n "$(pgrep -P "$U_PID")" ]'
		U_AGENT=$(pgrep -P "$U_PID" | head -n 1)
	fi
}
u_ready() { grep -q 'msg="ready"' "$U_LOG"; }
u_gone() { ! _vt_alive "$U_AGENT"; }
# u_stop: SIGTERM to the agent only (what KillMode=mixed does), wait, U_RC = its exit code.
u_stop() {
	kill -TERM "$U_AGENT" 2>/dev/null
	vt_wait_until 10 u_gone
	wait "$U_PID" 2>/dev/null
	U_RC=$?
	_vt_untrack_pid "$U_PID"
	U_PID=
}
# record FILE MSG: the first JSON record in FILE, from this run's log, whose msg has the line MSG.
record() {
	grep '^{' "$1" | jq -c -s --arg log "$U_LOG" --arg m "$2" \
		'map(select(.log == $log and (.msg | split("\n") | any(. == $m)))) | .[0] // empty' \
		2>/dev/null
}
notified() { [ -n "$(record "$1" "$2")" ]; }
ready_record() { record "$1" READY=1; }
serves() { # serves WHAT: 50 connections to the VIP, none failing
	vt_check "$1: 50 connections to the VIP, none failed" -O "$VT_TMP/client.out" -- \
		vt_client tcp 198.19.0.10:80 -n 50
}
ctl() { "$SLUICECTL" --bpffs "$VT_BPFFS" "$@"; }
teardown() { vt_node "$SLUICED" -c "$cfg" --teardown >/dev/null 2>&1; }

# 1. First start: the unit's sandbox and capabilities, a path notify socket, JOURNAL_STREAM
#    naming its stderr, and strace watching for what the seccomp settings forbid.
TRACED=execve,socket,personality,mmap,mprotect,unshare,setns,clone,clone3,sched_setscheduler
TRACED+=,chmod,fchmod,fchmodat,clock_settime,clock_adjtime,adjtimex,syslog,init_module
TRACED+=,finit_module,sethostname,setdomainname
U_STRACE=$VT_TMP/strace
: >"$VT_TMP/first.log"
unit_start first "$CAPS" NOTIFY_SOCKET="$NOTIFY" JOURNAL_STREAM="$(stat -c '%d:%i' "$VT_TMP/first.log")"
U_STRACE=
if vt_wait_until 30 notified "$NOTIFY_OUT" READY=1; then
	rec=$(ready_record "$NOTIFY_OUT")
	vt_pass "READY=1 on the notify socket: $rec"
	vt_check "READY=1 came after the datapath was attached and the config applied" -o /dev/null \
		-d 'echo "it came too early: $rec"' -- jq -e '.attached and .applied and .ready_logged' <<<"$rec"
	[ "$(jq .pid <<<"$rec")" = "$U_AGENT" ] &&
		vt_pass "READY=1 came from the main pid (NotifyAccess=main)" ||
		vt_fail "READY=1 from pid $(jq .pid <<<"$rec"), the agent is $U_AGENT"
	grep -q '^STATUS=serving 1 services$' <<<"$(jq -r .msg <<<"$rec")" &&
		vt_pass "STATUS= says what it serves" || vt_fail "no STATUS= in $rec"
else
	vt_fail "no READY=1 within 30 s; log: $(tail -n 5 "$U_LOG")"
	vt_finish
fi
serves "installed sluiced in the unit's sandbox"
ctl -o json services web >"$VT_TMP/services.json" 2>&1 &&
	jq -e '.[0].backends | length == 2' "$VT_TMP/services.json" >/dev/null &&
	vt_pass "installed sluicectl reads the service" || vt_fail "sluicectl: $(cat "$VT_TMP/services.json")"
va_metrics >"$VT_TMP/metrics" && grep -q '^sluice_connections_total{service="web"' "$VT_TMP/metrics" &&
	vt_pass "/metrics served from the sandbox" || vt_fail "/metrics: $(head -c 300 "$VT_TMP/metrics")"
# A reload (ExecReload sends SIGHUP) that adds a backend.
sed -i 's|^      - address: 198.18.1.3:8080|&\n      - address: 198.18.1.4:8080|' "$cfg"
kill -HUP "$U_AGENT"
three() { ctl -o json services web 2>/dev/null | jq -e '.[0].backends | length == 3' >/dev/null; }
vt_wait_until 5 three && vt_pass "SIGHUP reload in the sandbox: 3 backends" ||
	vt_fail "reload: $(grep -E 'level=(warn|error)' "$U_LOG" | tail -n 3)"
bad=$(grep -cvE '^<[3467]>ts=' "$U_LOG")
[ "$bad" -eq 0 ] && [ "$(grep -c '^<6>ts=' "$U_LOG")" -gt 3 ] &&
	vt_pass "JOURNAL_STREAM naming stderr: every line has a syslog priority ($(wc -l <"$U_LOG") lines)" ||
	vt_fail "journal format: $bad lines without a priority: $(head -n 3 "$U_LOG")"
u_stop
[ "$U_RC" -eq 0 ] && vt_pass "SIGTERM: the agent exits 0" || vt_fail "SIGTERM: exit $U_RC"
vt_wait_until 5 notified "$NOTIFY_OUT" STOPPING=1 && vt_pass "STOPPING=1 on SIGTERM" ||
	vt_fail "no STOPPING=1: $(cat "$NOTIFY_OUT")"
serves "after the stop (KillMode=mixed), the pinned datapath"

# What the unit's seccomp settings forbid, from the strace of the agent itself.
trace=$(grep -l "execve(\"$SLUICED\"" "$VT_TMP"/strace.* 2>/dev/null | head -n 1)
if [ -z "$trace" ]; then
	vt_fail "no strace output of the agent"
else
	body=$VT_TMP/agent.trace
	sed -n "\|execve(\"$SLUICED\"|,\$p" "$trace" >"$body"
	fams=$(grep -oE '^socket\((AF_[A-Z0-9]+|[0-9]+)' "$body" | sed 's/socket(//' | sort -u | tr '\n' ' ')
	extra=$(for f in $fams; do
		case " $(op_unit_value "$unit" RestrictAddressFamilies) " in *" $f "*) ;; *) echo "$f" ;; esac
	done)
	[ -n "$fams" ] && [ -z "$extra" ] &&
		vt_pass "RestrictAddressFamilies: the agent uses only $fams" ||
		vt_fail "address families used: $fams; not allowed by the unit: $extra"
	wx=$(grep -E '^(mmap|mprotect)\(' "$body" | grep -E 'PROT_WRITE' | grep -E 'PROT_EXEC' | head -n 2)
	[ -z "$wx" ] && vt_pass "MemoryDenyWriteExecute: no writable+executable mapping" ||
		vt_fail "W+X mapping: $wx"
	ns=$(grep -E '^(unshare|setns|clone3?)\(' "$body" | grep -E 'CLONE_NEW' | head -n 2)
	[ -z "$ns" ] && vt_pass "RestrictNamespaces: no namespace created or joined" || vt_fail "namespaces: $ns"
	other=$(grep -E '^(personality|clock_settime|clock_adjtime|adjtimex|syslog|init_module|finit_module|sethostname|setdomainname)\(' "$body" | head -n 2)
	[ -z "$other" ] &&
		vt_pass "LockPersonality, ProtectClock, ProtectKernelLogs/Modules, ProtectHostname: unused calls" ||
		vt_fail "forbidden calls: $other"
	suid=$(grep -E '^f?chmod(at)?\(' "$body" | grep -E 'S_IS[UG]ID|0[2467][0-7]{3}[,)]' | head -n 2)
	[ -z "$suid" ] && vt_pass "RestrictSUIDSGID: no set-id modes" || vt_fail "set-id chmod: $suid"
	rt=$(grep -E '^sched_setscheduler\(' "$body" | grep -E 'SCHED_(FIFO|RR)' | head -n 2)
	[ -z "$rt" ] && vt_pass "RestrictRealtime: no realtime scheduling" || vt_fail "realtime: $rt"
fi

# 2. Restart: adopts the pinned datapath (TC programs included); abstract notify socket.
unit_start second "$CAPS" NOTIFY_SOCKET="@sl-notify-$VT_ID"
if vt_wait_until 30 notified "$VT_TMP/notify-abs.out" READY=1; then
	vt_pass "READY=1 on an abstract notify socket (@name)"
	jq -e '.attached and .applied' <<<"$(ready_record "$VT_TMP/notify-abs.out")" >/dev/null &&
		vt_pass "READY=1 after adoption and apply" || vt_fail "early READY=1 on restart"
else
	vt_fail "restart: no READY=1; log: $(tail -n 5 "$U_LOG")"
fi
grep -q 'msg="adopted the pinned datapath"' "$U_LOG" && vt_pass "restart adopted the pinned datapath" ||
	vt_fail "restart did not adopt: $(grep 'level=error' "$U_LOG" | tail -n 2)"
grep -q '^ts=' "$U_LOG" && vt_pass "without JOURNAL_STREAM the log is plain logfmt" ||
	vt_fail "log format on restart: $(head -n 2 "$U_LOG")"
serves "restarted agent"
u_stop

# 3. Each capability is needed. A start without one must fail and name the refusal.
fails_without() { # fails_without NAME "CAPS" WHY
	unit_start "$1" "$2"
	if vt_wait_until 20 u_gone; then
		wait "$U_PID" 2>/dev/null
		U_RC=$?
		_vt_untrack_pid "$U_PID"
		vt_check "$3: exit $U_RC, $(grep -m1 -oE 'error="[^"]*"' "$U_LOG")" \
			-d 'echo "log: $(grep level=error "$U_LOG" | tail -n 2)"' -- eval '[ "$U_RC" -ne 0 ] &&
			grep -qE "Operation not permitted|Permission denied|missing privileges" "$U_LOG"'
	else
		vt_fail "$3: the agent started anyway"
		u_stop
	fi
}
without() { # without CAP...: the unit's set minus these
	local c out=
	for c in $CAPS; do
		[[ " $* " == *" $c "* ]] || out+="$c "
	done
	echo "${out% }"
}
fails_without no-sysadmin "$(without CAP_SYS_ADMIN)" \
	"restart without CAP_SYS_ADMIN cannot adopt the TC programs (bpf_prog_get_fd_by_id)"
fails_without no-netadmin "$(without CAP_NET_ADMIN)" "restart without CAP_NET_ADMIN"
teardown
fails_without no-perfmon "$(without CAP_SYS_ADMIN CAP_PERFMON)" \
	"fresh start without CAP_PERFMON (nor CAP_SYS_ADMIN): sockops does not load"
teardown
unit_start bpf-netadmin-perfmon "$(without CAP_SYS_ADMIN)"
if vt_wait_until 30 u_ready; then
	vt_pass "fresh start with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON only"
	serves "agent without CAP_SYS_ADMIN (fresh start)"
else
	vt_fail "fresh start without CAP_SYS_ADMIN: $(grep 'level=error' "$U_LOG" | tail -n 2)"
fi
u_stop
teardown
vt_finish
