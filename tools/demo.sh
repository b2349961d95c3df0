#!/usr/bin/env bash
# tools/demo.sh - what `make demo` runs: a self-contained tour of sluice for a newcomer.
#
# Builds a small world of network namespaces (a node with clients, a router, three backends),
# starts sluiced on a cgroup of its own, sends traffic to service VIPs, shows what sluicectl and
# bpftool see, changes the config live, stops the agent (traffic keeps flowing) and tears the
# datapath down. Every step checks its result: exit 0 only if all checks passed, 1 otherwise.
# Whatever happens (failure, Ctrl-C), everything the demo created is removed on exit.
#
# Needs root and the binaries from `make` (build/sluiced, build/sluicectl, build/vmtests/*).
# DEMO_PAUSE=SECONDS sleeps between steps so a human can follow (default 0).
#
# Network safety: only addresses in 198.18.0.0/15 are configured, all inside namespaces this
# script creates; the VIPs (198.19.0.0/16) are blackholed in the node namespace, which has no
# default route (vmtests/lib.sh builds the topology).
# check() evaluates its expression (single-quoted) when called: shellcheck cannot see the uses.
# shellcheck disable=SC2016,SC2034
set -u

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: must be run as root: it creates network namespaces and a cgroup, and loads" \
		"BPF programs. Try: sudo make demo" >&2
	exit 1
fi

DEMO_PAUSE=${DEMO_PAUSE:-0}
if ! [[ "$DEMO_PAUSE" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
	echo "demo: DEMO_PAUSE must be a number of seconds, not '$DEMO_PAUSE'" >&2
	exit 2
fi

DEMO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$DEMO_ROOT" || exit 1

# lib.sh takes its run state from the environment; never inherit a caller's (a vmtest running
# this demo exports VT_CGROUP/VT_BPFFS, and our cleanup would remove them).
unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$DEMO_ROOT
# Every client run is bounded in time.
export VT_CLIENT_TIMEOUT=20
# shellcheck source=../vmtests/lib.sh
. "$DEMO_ROOT/vmtests/lib.sh"
# shellcheck source=../vmtests/agent.sh
. "$DEMO_ROOT/vmtests/agent.sh"

# --- preflight -------------------------------------------------------------------------------

missing=()
for t in ip nsenter timeout bpftool jq awk sed diff; do
	command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "demo: missing tools: ${missing[*]} (run: make deps)" >&2
	exit 1
fi
for f in "$VA_SLUICED" "$VA_SLUICECTL"; do
	if [ ! -x "$f" ]; then
		echo "demo: $f is not built (run: make)" >&2
		exit 1
	fi
done
if [ ! -r /sys/kernel/btf/vmlinux ]; then
	echo "demo: this kernel has no BTF (/sys/kernel/btf/vmlinux); sluice needs it" >&2
	exit 1
fi

# --- presentation ----------------------------------------------------------------------------

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' R='' D='' N=''
fi
DEMO_START=$(date +%s%N)
DEMO_CHECKS=0
DEMO_STEP=0

# step TITLE: the heading of the next step (after DEMO_PAUSE seconds, except the first).
step() {
	DEMO_STEP=$((DEMO_STEP + 1))
	[ "$DEMO_STEP" -gt 1 ] && [ "$DEMO_PAUSE" != 0 ] && sleep "$DEMO_PAUSE"
	printf '\n%s==> %d. %s%s\n' "$B" "$DEMO_STEP" "$1" "$N"
}
# say TEXT: a line of explanation.
say() { printf '%s    %s%s\n' "$D" "$*" "$N"; }
# cmdline TEXT: how a command looks when typed (paths under the repository made relative).
cmdline() { printf '%s$ %s%s\n' "$B" "${*//"$DEMO_ROOT/"/}" "$N"; }
# indent: command output, indented under its command line.
indent() { sed 's/^/    /'; }
# show CMD...: prints the command, runs it (bounded to 20 s) with its output indented,
# returns its status.
show() {
	cmdline "$*"
	timeout -k 2 20 "$@" 2>&1 | indent
	return "${PIPESTATUS[0]}"
}
# ok TEXT / bad TEXT: a checked result.
ok() {
	DEMO_CHECKS=$((DEMO_CHECKS + 1))
	printf '    %s[ok]%s %s\n' "$G" "$N" "$*"
}
bad() {
	DEMO_CHECKS=$((DEMO_CHECKS + 1))
	VT_FAILS=$((VT_FAILS + 1))
	printf '    %s[FAILED]%s %s\n' "$R" "$N" "$*"
}
# check TEXT EXPR: ok if the shell expression EXPR succeeds, bad otherwise.
check() {
	if eval "$2"; then ok "$1"; else bad "$1"; fi
}
# abort TEXT: a failure after which the rest cannot run; the EXIT trap cleans up.
abort() {
	bad "$*"
	printf '\n%sdemo FAILED%s at step %d; cleaning up\n' "$R" "$N" "$DEMO_STEP"
	exit 1
}

# client ARGS...: sl_client ARGS from a process in our cgroup in the node netns. Output in
# $OUT (also kept in $VT_TMP/client-N.out), status in $RC.
CLIENT_RUNS=0
client() {
	CLIENT_RUNS=$((CLIENT_RUNS + 1))
	OUT=$VT_TMP/client-$CLIENT_RUNS.out
	cmdline "ip netns exec $NODE $VT_BIN/sl_client $*"
	vt_client "$@" >"$OUT" 2>&1
	RC=$?
}
# oneline FILE: sl_client's report on one line.
oneline() { tr '\n' ' ' <"$1" | sed 's/ $//'; }
n_of() { vt_value "$OUT" "$1"; }

declare -A BE_ADDR=([be1]=198.18.1.2:8080 [be2]=198.18.1.3:8080 [be3]=198.18.1.4:8080)
declare -A BE_WEIGHT=([be1]=1 [be2]=2 [be3]=1)

# distribution LABEL: a bar per backend for the sl_client output in $OUT, and one summary
# line "distribution LABEL: be1=N be2=N be3=N".
distribution() {
	local label=$1 be n total=0 scale bar
	for be in be1 be2 be3; do total=$((total + $(n_of "$be"))); done
	scale=$(((total + 39) / 40))
	[ "$scale" -lt 1 ] && scale=1
	for be in be1 be2 be3; do
		n=$(n_of "$be")
		bar=$(printf '%*s' $((n / scale)) '' | tr ' ' '#')
		printf '    %-3s %-15s weight %s  %4d  %s\n' "$be" "${BE_ADDR[$be]}" \
			"${BE_WEIGHT[$be]}" "$n" "$bar"
	done
	say "(one # = $scale connections)"
	printf '    distribution %s: be1=%d be2=%d be3=%d\n' "$label" "$(n_of be1)" "$(n_of be2)" \
		"$(n_of be3)"
}

# in_range N LO HI
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# log_since LINE: agent log lines after line LINE.
log_since() { tail -n +"$(($1 + 1))" "$VA_LOG" | indent; }
log_lines() { wc -l <"$VA_LOG" 2>/dev/null || echo 0; }

# --- the demo --------------------------------------------------------------------------------

printf '%ssluice demo%s: an eBPF service-mesh data plane, end to end, on this kernel (%s)\n' \
	"$B" "$N" "$(uname -r)"
vt_init demo
# lib.sh's traps exit through vt_cleanup; say so first.
trap 'echo "demo: interrupted; cleaning up" >&2; exit 130' INT
trap 'echo "demo: terminated; cleaning up" >&2; exit 143' TERM
NODE=$VT_ID-node

step "Three backends in their own network namespaces"
say "One namespace for this node (the agent and its clients), a router, and three backends,"
say "each running a tiny server that answers every TCP connection and UDP datagram with its"
say "name (be1, be2, be3)."
cmdline "vt_topology    # vmtests/lib.sh: ip netns add, veth pairs, a bridge, addresses, routes"
vt_topology || abort "cannot build the network namespaces"
cmdline "vt_backends 8080    # ip netns exec $VT_ID-beN $VT_BIN/sl_server --name beN --port 8080 &"
vt_backends 8080 || abort "the backends did not start"
# A picture of what was built; the columns fit any run id.
w=$((${#VT_ID} + 6 > 22 ? ${#VT_ID} + 6 : 22))
{
	echo
	printf "%-${w}s            %-${w}s            %s\n" "$NODE" "$VT_ID-rtr" \
		"$VT_ID-be1  198.18.1.2:8080"
	printf "%-${w}s  <------>  %-${w}s            %s\n" "  198.18.0.1" "  198.18.0.2" \
		"$VT_ID-be2  198.18.1.3:8080"
	printf "%-${w}s            %-${w}s  <------>  %s\n" "  (agent, clients)" \
		"  198.18.1.1 (bridge)" "$VT_ID-be3  198.18.1.4:8080"
	echo
} | indent
cmdline "ip netns list | grep $VT_ID-"
ip netns list | grep -F "$VT_ID-" | indent
show ip -n "$NODE" route
say "No default route, and the VIP range 198.19.0.0/16 is a blackhole on this node: a"
say "packet to a VIP can never leave it. Only sluice, rewriting the address inside"
say "connect()/sendmsg(), makes a VIP reachable."

step "A cgroup for the clients, and a bpffs directory for the pins"
cmdline "mkdir <cgroup2 mount>/$VT_ID    # vt_cgroup"
vt_cgroup || abort "cannot create the cgroup"
vt_bpffs
say "sluiced attaches its programs to this cgroup: only sockets of processes in it (or below"
say "it) are load-balanced. Its maps and links are pinned under the bpffs directory."
say "cgroup: $VT_CGROUP"
say "bpffs:  $VT_BPFFS"
say "A client in the cgroup reaches a backend at its own address:"
client tcp 198.18.1.2:8080 -n 1
say "-> $(oneline "$OUT")"
check "be1 answers at its own address" '[ "$RC" -eq 0 ] && [ "$(n_of be1)" -eq 1 ]'
say "but, before sluice runs, not a VIP:"
client tcp 198.19.0.10:80 -n 1 --timeout-ms 500
say "-> $(oneline "$OUT")"
check "198.19.0.10:80 is unreachable without sluice ($(grep -m1 '^errno' "$OUT"))" \
	'[ "$RC" -ne 0 ] && [ "$(n_of ok)" -eq 0 ]'

step "The config: a maglev web service (be2 has weight 2), a UDP dns service"
CFG=$VT_TMP/sluice.yaml
va_config "$CFG" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    protocol: tcp
    lb: maglev
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
        weight: 2
      - address: 198.18.1.4:8080
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    lb: random
    backends:
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
YAML
show cat "$CFG"
check "sluiced --check accepts it" 'show "$VA_SLUICED" -c "$CFG" --check'

step "Start the agent"
say "sluiced loads the BPF programs, attaches them to the cgroup, pins them, fills the maps."
cmdline "nsenter --net=/run/netns/$NODE $VA_SLUICED -c $CFG 2>>$VT_TMP/agent.log &"
if ! va_start "$CFG"; then
	[ -s "$VT_TMP/agent.log" ] && indent <"$VT_TMP/agent.log"
	abort "sluiced did not become ready"
fi
show head -n 8 "$VA_LOG"
ok "sluiced is running (pid $VA_PID) and ready"

step "300 TCP connections to the web VIP 198.19.0.10:80"
say "sl_client connects 300 times from inside the cgroup, reads the answering backend's"
say "name, and checks that getpeername() shows the VIP: the client never sees a backend."
client tcp 198.19.0.10:80 -n 300 --check-peer
say "-> $(oneline "$OUT")"
distribution "(300 connections)"
check "300 connections, none failed, getpeername() showed the VIP every time" \
	'[ "$RC" -eq 0 ] && [ "$(n_of ok)" -eq 300 ]'
b1=$(n_of be1) b2=$(n_of be2) b3=$(n_of be3)
check "every backend took connections" '[ "$b1" -gt 0 ] && [ "$b2" -gt 0 ] && [ "$b3" -gt 0 ]'
# Expected 75/150/75; the ranges are about 4 standard deviations wide.
check "be2 (weight 2) took about half: $b2 of 300 (be1 $b1, be3 $b3)" \
	'in_range "$b1" 45 105 && in_range "$b2" 115 185 && in_range "$b3" 45 105'

step "A UDP query to the dns VIP 198.19.0.53:53"
say "Unconnected sendto() to the VIP: the sendmsg hook picks a backend, and the recvmsg hook"
say "makes the reply appear to come from the VIP. sl_client checks each reply's source."
client udp 198.19.0.53:53 -n 5
say "-> $(oneline "$OUT")"
check "5 queries answered, each reply from 198.19.0.53:53 (the VIP), not from a backend" \
	'[ "$RC" -eq 0 ] && [ "$(n_of ok)" -eq 5 ] && [ "$(n_of peer_mismatch)" -eq 0 ]'

step "What sluicectl sees (it reads the pinned maps, so it works while the agent is down too)"
show "$VA_SLUICECTL" --bpffs "$VT_BPFFS" status || bad "sluicectl status failed"
show "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services || bad "sluicectl services failed"
JSON=$VT_TMP/web.json
cmdline "$VA_SLUICECTL --bpffs $VT_BPFFS -o json services web"
timeout -k 2 20 "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json services web >"$JSON"
rc=$?
indent <"$JSON"
total=$(jq '[.[0].backends[].connections_total] | add' "$JSON" 2>/dev/null)
check "the JSON parses, and the kernel counted 300 connections for web" \
	'[ "$rc" -eq 0 ] && [ "${total:-x}" = 300 ]'
say "The service map: who called which service (callers without an identity are 'unknown'),"
say "and where each service sent its connections, busiest first (-o json, -o dot for Graphviz):"
show "$VA_SLUICECTL" --bpffs "$VT_BPFFS" graph || bad "sluicectl graph failed"
GRAPH=$VT_TMP/graph.json
timeout -k 2 20 "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json graph >"$GRAPH"
gtotal=$(jq '[.edges[] | select(.from == "service/web") | .connections] | add' "$GRAPH" 2>/dev/null)
check "sluicectl graph -o json: web sent its 300 connections to its backends" '[ "${gtotal:-x}" = 300 ]'

step "What the kernel sees (bpftool)"
say "Nine programs on the cgroup: connect, sendmsg, recvmsg, getpeername (v4 and v6), sockops."
show bpftool cgroup show "$VT_CGROUP"
nprogs=$(bpftool cgroup show "$VT_CGROUP" 2>/dev/null | grep -c sluice_)
check "$nprogs sluice programs attached to the cgroup" '[ "$nprogs" -eq 10 ]'
say "The service map, one entry per service id (count = backends, lb 2 = maglev):"
show bpftool map dump pinned "$VT_BPFFS/sluice_services"
nsvc=$(bpftool -j map dump pinned "$VT_BPFFS/sluice_services" 2>/dev/null | jq length 2>/dev/null)
check "the pinned service map holds the 2 services" '[ "${nsvc:-0}" -eq 2 ]'

step "Live change: remove be1 from the config"
say "The agent watches the file; it validates the new config and applies only the difference."
before=$(log_lines)
applied=$(grep -c 'msg="config applied"' "$VA_LOG")
cp "$CFG" "$CFG.before"
cmdline "sed -i '/198.18.1.2:8080/d' $CFG"
sed -i '/198.18.1.2:8080/d' "$CFG"
show diff -u "$CFG.before" "$CFG"
check "the agent reloaded the config" \
	'vt_wait_until 5 va_log_count_ge "msg=\"config applied\"" $((applied + 1))'
say "Agent log:"
log_since "$before"
client tcp 198.19.0.10:80 -n 100 --check-peer
say "-> $(oneline "$OUT")"
distribution "after removing be1 (100 connections)"
check "100 connections, none failed" '[ "$RC" -eq 0 ] && [ "$(n_of ok)" -eq 100 ]'
check "be1 got no connection" '[ "$(n_of be1)" -eq 0 ]'
check "be2 and be3 took them all" '[ "$(n_of be2)" -gt 0 ] && [ "$(n_of be3)" -gt 0 ]'

step "A service with no backends refuses at once"
say "Add a service 'empty' with no backends: connect() to it fails immediately with"
say "ECONNREFUSED instead of hanging until a timeout."
before=$(log_lines)
applied=$(grep -c 'msg="config applied"' "$VA_LOG")
cmdline "cat >>$CFG <<EOF"
cat >>"$CFG" <<'YAML'
  - name: empty
    frontend: 198.19.0.99:80
    backends: []
YAML
tail -n 3 "$CFG" | indent
check "the agent added the service" \
	'vt_wait_until 5 va_log_count_ge "msg=\"config applied\"" $((applied + 1))'
log_since "$before"
client refused 198.19.0.99:80
indent <"$OUT"
check "connect() failed at once with ECONNREFUSED" '[ "$RC" -eq 0 ] && grep -q "^ECONNREFUSED" "$OUT"'
show "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services empty
rej=$("$VA_SLUICECTL" --bpffs "$VT_BPFFS" services empty 2>/dev/null |
	sed -n 's/.*no_backend=\([0-9]*\).*/\1/p')
check "the kernel counted the rejection (rejected_no_backend=${rej:-?})" '[ "${rej:-0}" -ge 1 ]'

# /metrics: shown once the agent serves it (agent.metrics, by default 127.0.0.1:9464, here in
# the node netns). A build that does not implement it yet rejects the key in `sluiced --check`.
probe=$VT_TMP/metrics-probe.yaml
printf 'agent:\n  cgroup: %s\n  bpffs: %s\n  metrics: 127.0.0.1:9464\nservices: []\n' \
	"$VT_CGROUP" "$VT_BPFFS" >"$probe"
if "$VA_SLUICED" -c "$probe" --check >/dev/null 2>&1; then
	step "Prometheus metrics"
	cmdline "ip netns exec $NODE curl -s http://127.0.0.1:9464/metrics | grep ^sluice_"
	METRICS=$VT_TMP/metrics.txt
	# bash's /dev/tcp, so the demo needs no HTTP client; in the node netns, outside the cgroup.
	timeout -k 2 5 ip netns exec "$NODE" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464 &&
		printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' \
		>"$METRICS" 2>&1
	grep -E '^sluice_(connections_total|rejected_connections_total|config_reloads_total)' \
		"$METRICS" | head -n 12 | indent
	check "/metrics serves sluice_connections_total" 'grep -q "^sluice_connections_total" "$METRICS"'
	say "The same listener serves the service map: GET /graph (JSON) and GET /ui, a page that"
	say "draws it live. Here it is in the node netns; on a host, open http://127.0.0.1:9464/ui."
	timeout -k 2 5 ip netns exec "$NODE" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464 &&
		printf "GET /graph HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' \
		>"$VT_TMP/graph.http" 2>&1
	check "/graph serves the service map" \
		'sed "1,/^\r\?$/d" "$VT_TMP/graph.http" | jq -e ".nodes | length > 0" >/dev/null'
else
	say "(not shown: this build of sluiced does not serve /metrics yet)"
fi

step "Stop the agent: the datapath keeps serving"
before=$(log_lines)
cmdline "kill -TERM $VA_PID"
va_stop TERM
log_since "$before"
check "sluiced exited with status 0 on SIGTERM" '[ "${VA_RC:-1}" -eq 0 ]'
cmdline "$VA_SLUICECTL --bpffs $VT_BPFFS status | head -n 3"
timeout -k 2 20 "$VA_SLUICECTL" --bpffs "$VT_BPFFS" status 2>&1 | head -n 3 | indent
client tcp 198.19.0.10:80 -n 50 --check-peer
say "-> $(oneline "$OUT")"
distribution "with the agent stopped (50 connections)"
check "with no agent running, the pinned programs and maps still balance (be1 still out)" \
	'[ "$RC" -eq 0 ] && [ "$(n_of ok)" -eq 50 ] && [ "$(n_of be1)" -eq 0 ]'

step "Tear the datapath down"
check "sluiced --teardown exited 0" 'show "$VA_SLUICED" -c "$CFG" --teardown'
show bpftool cgroup show "$VT_CGROUP"
left=$(bpftool cgroup show "$VT_CGROUP" 2>/dev/null | grep -c sluice_)
check "no program is attached to the cgroup any more" '[ "$left" -eq 0 ]'
show ls "$VT_BPFFS"
check "no pin is left under $VT_BPFFS" '[ ! -e "$VT_BPFFS" ]'
client tcp 198.19.0.10:80 -n 1 --timeout-ms 500
say "-> $(oneline "$OUT")"
check "the VIP is no longer translated ($(grep -m1 '^errno' "$OUT"))" \
	'[ "$RC" -ne 0 ] && [ "$(n_of ok)" -eq 0 ]'

# --- tracing ---------------------------------------------------------------------------------
# A request with a W3C traceparent header becomes one OTLP span at a receiver in the node
# netns (vmtests/tools/otlp_sink.py, which checks the encoding strictly). The agent runs again
# for this, with a tracing: block; it is stopped and torn down at the end.
if command -v python3 >/dev/null 2>&1; then
	step "Tracing: a request with a traceparent header becomes a span"
	say "With a tracing: block, traced connections are sent as OpenTelemetry spans"
	say "(OTLP/HTTP, JSON) to a collector; here a strict test receiver on 127.0.0.1:4318."
	SPANS=$VT_TMP/spans.jsonl
	(exec nsenter --net="/run/netns/$NODE" python3 "$DEMO_ROOT/vmtests/tools/otlp_sink.py" \
		--out "$SPANS" --port 4318 --port-file "$VT_TMP/sink.port" --max-seconds 120 \
		>"$VT_TMP/sink.log" 2>&1) &
	vt_track_pid $!
	vt_wait_until 5 test -s "$VT_TMP/sink.port" || abort "the OTLP receiver did not start"
	TCFG=$VT_TMP/tracing.yaml
	va_config "$TCFG" <<'YAML'
tracing:
  endpoint: http://127.0.0.1:4318
  sample: 0                 # only requests that carry a sampled traceparent
  batch_delay: 100ms
services:
  - name: web
    frontend: 198.19.0.10:80
    backends: [{address: 198.18.1.2:8080}]
YAML
	sed -n '/^tracing:/,$p' "$TCFG" | indent
	va_start "$TCFG" || abort "sluiced did not start with tracing"
	check "the agent started its span exporter" 'va_log_has "span exporter started"'
	TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	# curl sends the request head in one write: only a connection's first payload is
	# searched for the header (a shell's line-buffered printf would send one line per write).
	cmdline "curl -s -H 'traceparent: $TP' http://198.19.0.10/"
	vt_in_cgroup curl -s --max-time 5 -w "\\n" -H "traceparent: $TP" http://198.19.0.10/ 2>&1 |
		sed 's/^/reply: /' | indent
	vt_wait_until 5 grep -qs 4bf92f3577b34da6a3ce929d0e0e4736 "$SPANS"
	cmdline "jq . $SPANS   # the span the receiver got (attributes flattened)"
	jq '{traceId, parentSpanId, spanId, name, kind, startTimeUnixNano, endTimeUnixNano,
		attributes: (.attributes | map({(.key): (.value.stringValue // .value.intValue)}) | add)}' \
		"$SPANS" 2>/dev/null | indent
	check "one span: the request's trace id, its parent id, kind CLIENT, name web" \
		'[ "$(jq -c "select(.traceId == \"4bf92f3577b34da6a3ce929d0e0e4736\" and
		.parentSpanId == \"00f067aa0ba902b7\" and .kind == 3 and .name == \"web\")" \
		"$SPANS" | wc -l)" = 1 ]'
	va_stop TERM
	check "sluiced stopped, flushed its spans, and tore down" \
		'[ "${VA_RC:-1}" -eq 0 ] && va_log_has "span exporter stopped" &&
		"$VA_SLUICED" -c "$TCFG" --teardown >/dev/null 2>&1'
else
	say "(tracing not shown: python3, for the test receiver, is missing)"
fi

step "Clean up"
say "On exit: the backends are stopped; the namespaces, the cgroup and the scratch"
say "directory are removed (also when a step fails or the demo is interrupted)."
elapsed=$((($(date +%s%N) - DEMO_START) / 1000000))
secs=$(printf '%d.%01d' $((elapsed / 1000)) $((elapsed % 1000 / 100)))
if [ "$VT_FAILS" -eq 0 ]; then
	printf '\n%sdemo passed%s: %d checks ok in %s s\n' "$G" "$N" "$DEMO_CHECKS" "$secs"
	exit 0
fi
printf '\n%sdemo FAILED%s: %d of %d checks failed (%s s)\n' "$R" "$N" "$VT_FAILS" "$DEMO_CHECKS" \
	"$secs"
exit 1
