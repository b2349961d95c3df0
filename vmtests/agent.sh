# shellcheck shell=bash
# vmtests/agent.sh - run sluiced and sluicectl inside a vmtest world. Source after lib.sh.
#
# va_config FILE: writes stdin (YAML services: section and anything else) after an agent:
#   section that points at this run's cgroup, bpffs and API socket ($VT_TMP/sluiced.sock);
#   metrics stay on their default, 127.0.0.1:9464, inside the node netns.
# va_start FILE: starts sluiced in the node netns, waits for "ready" (10 s), tracks its pid.
# va_stop [SIGNAL]: stops it (SIGTERM by default) and waits for it to exit.
# va_ctl ARGS: sluicectl --bpffs $VT_BPFFS ARGS (in the node netns).
# va_log_has PATTERN: the agent log has a line matching PATTERN (grep -E).
# A cleanup hook (vt_on_cleanup) stops the agent and runs `sluiced --teardown`, pass or fail.

VA_SLUICED=${VA_SLUICED:-$VT_ROOT/build/sluiced}
VA_SLUICECTL=${VA_SLUICECTL:-$VT_ROOT/build/sluicectl}
VA_PID=
VA_CONFIG=
VA_LOG=

va_config() {
	local file=$1
	{
		printf 'agent:\n  cgroup: %s\n  bpffs: %s\n  api: %s\n  state: %s\n  audit_log: %s\n' \
			"$VT_CGROUP" "$VT_BPFFS" "$VT_TMP/sluiced.sock" "$VT_TMP/state" "$VT_TMP/audit.log"
		cat
	} >"$file"
}

va_start() {
	VA_CONFIG=$1
	VA_LOG=$VT_TMP/agent.log
	VA_STARTS=$((${VA_STARTS:-0} + 1))
	# exec all the way down, so that $! is sluiced itself and signals reach it. Every change
	# checks the state the agent keeps against the maps (va_state_check), unless
	# VA_VERIFY_STATE=0 (a full read per change: a test of rates at 10 000 services).
	(export SLUICE_VERIFY_STATE=${VA_VERIFY_STATE:-1} && exec nsenter --net="/run/netns/$VT_ID-node" \
		"$VA_SLUICED" -c "$VA_CONFIG" --log-level "${VA_LOG_LEVEL:-info}" >>"$VA_LOG" 2>&1) &
	VA_PID=$!
	vt_track_pid "$VA_PID"
	# Each start adds one "ready" line: wait for this start's.
	if ! vt_wait_until 10 va_log_count_ge 'msg="ready"' "$VA_STARTS"; then
		vt_fail "sluiced did not become ready (log: $VA_LOG)"
		return 1
	fi
	return 0
}

# va_log_count_ge PATTERN N: at least N agent log lines match PATTERN.
va_log_count_ge() {
	local n
	n=$(grep -cE "$1" "$VA_LOG" 2>/dev/null)
	[ "${n:-0}" -ge "$2" ]
}

va_stop() {
	local sig=${1:-TERM}
	[ -n "$VA_PID" ] || return 0
	kill "-$sig" "$VA_PID" 2>/dev/null
	wait "$VA_PID" 2>/dev/null
	VA_RC=$?
	VA_PID=
	va_san_check
	va_state_check
	return 0
}

# va_san_check: under `make test SAN=1`, a sanitizer report in the agent log fails the test.
va_san_check() {
	[ -n "${VT_SAN_FLAGS:-}" ] || return 0
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$VA_LOG" 2>/dev/null; then
		vt_fail "sanitizer report in the agent log: $(grep -m1 -E 'ERROR: |runtime error:' "$VA_LOG")"
	fi
	return 0
}

# va_state_check: SLUICE_VERIFY_STATE found the kept state differing from the maps (README,
# "sluiced"; sluiced(8), ENVIRONMENT) in an agent log of this test: that fails it. Run by va_stop, and by vt_finish
# (wrapped below), so a test that leaves its agent to the cleanup is checked too.
va_state_check() {
	local f
	[ -z "${VA_STATE_FAILED:-}" ] || return 0 # reported once
	for f in "$VT_TMP"/*.log; do
		[ -f "$f" ] || continue
		if grep -q -e 'msg="kept state differs from the maps"' -e 'msg="a scoped change missed a service"' "$f"; then
			vt_fail "kept state check ($f): $(grep -m1 -e 'kept state differs' -e 'scoped change missed' "$f")"
			VA_STATE_FAILED=1
			return 0
		fi
	done
	return 0
}
eval "_va_vt_finish() $(declare -f vt_finish | tail -n +2)"
vt_finish() {
	va_state_check
	_va_vt_finish "$@"
}

va_ctl() {
	vt_node "$VA_SLUICECTL" --bpffs "$VT_BPFFS" --api "$VT_TMP/sluiced.sock" "$@"
}

# va_metrics: the agent's /metrics page (fetched inside the node netns).
va_metrics() {
	vt_node curl -q -sf --max-time 5 http://127.0.0.1:9464/metrics
}

# va_set_trace ON SAMPLE: write sluice_settings.trace_on and trace_sample (offsets 40 and 44,
# host order) into the pinned settings, keeping the other fields, as the agent does for a
# tracing: block; for tests and benches of the datapath alone.
va_set_trace() {
	local cur bytes
	cur=$(bpftool -j map lookup pinned "$VT_BPFFS/sluice_settings" key 0 0 0 0) || return 1
	bytes=$(jq -r --argjson on "$1" --argjson s "$2" '
		def le32(v): [range(4)] | map(((v / pow(2; 8 * .)) | floor) % 256);
		[.value[] | if type == "string" then ltrimstr("0x") | explode |
			map(if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1] else . end]
		| .[0:40] + le32($on) + le32($s) + .[48:] | map(tostring) | join(" ")' <<<"$cur") ||
		return 1
	# shellcheck disable=SC2086
	bpftool map update pinned "$VT_BPFFS/sluice_settings" key 0 0 0 0 value $bytes
}

# va_trace_egress: the id of this agent's sluice_trace_egress program (found by the pinned
# settings map it uses). Without a tracing: block the agent loads it but does not attach it.
va_trace_egress() {
	local sid
	sid=$(bpftool -j map show pinned "$VT_BPFFS/sluice_settings" | jq -r .id) || return 1
	bpftool -j prog show | jq -r --argjson m "$sid" \
		'.[] | select(.name == "sluice_trace_egress" and ((.map_ids // []) | index($m))) | .id' |
		head -n 1
}

va_log_has() {
	grep -qE "$1" "$VA_LOG" 2>/dev/null
}

# va_prometheus PORT [RULE_FILE]: a real Prometheus in the node netns on 127.0.0.1:PORT,
# scraping the agent's /metrics every second (and evaluating RULE_FILE, if given); tracked.
# va_prom_query PORT EXPR prints the JSON answer of the query API.
va_prometheus() {
	local port=$1 rules=${2:-}
	{
		printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
		[ -n "$rules" ] && printf "rule_files: ['%s']\n" "$rules"
		printf 'scrape_configs:\n  - job_name: sluice\n    static_configs:\n'
		printf "      - targets: ['127.0.0.1:9464']\n"
	} >"$VT_TMP/prometheus.yml"
	(exec nsenter --net="/run/netns/$VT_ID-node" prometheus \
		--config.file="$VT_TMP/prometheus.yml" --storage.tsdb.path="$VT_TMP/tsdb" \
		--web.listen-address="127.0.0.1:$port" >"$VT_TMP/prometheus.log" 2>&1) &
	vt_track_pid $!
}

va_prom_query() {
	vt_node curl -q -sf --max-time 3 "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2"
}

# va_identities NAME...: an identities: section, each NAME the identity of the cgroup
# $VT_CGROUP/NAME, on stdout (for va_config's stdin).
va_identities() {
	local n
	echo "identities:"
	for n; do
		printf '  - name: %s\n    cgroups: [%s]\n' "$n" "$VT_CGROUP/$n"
	done
}

# Tests with one agent per node (netns $VT_ID-NODE, cgroup $VT_CGROUP/NODE, bpffs
# $VT_BPFFS/NODE, config $VT_TMP/NODE.yaml, pid in the test's associative array APID[NODE]):
# va_node_agent NODE: the agent: section of that node's config (API socket $VT_TMP/NODE.sock,
#   state $VT_TMP/state-NODE, audit log $VT_TMP/audit-NODE.log), on stdout.
# va_nodes_teardown NODE...: stops each node's agent and runs `sluiced --teardown` in its netns;
#   for vt_on_cleanup (never fails).
va_node_agent() {
	printf 'agent:\n  cgroup: %s\n  bpffs: %s\n  api: %s\n  state: %s\n  audit_log: %s\n' \
		"$VT_CGROUP/$1" "$VT_BPFFS/$1" "$VT_TMP/$1.sock" "$VT_TMP/state-$1" "$VT_TMP/audit-$1.log"
}
va_nodes_teardown() {
	local n
	for n; do
		[ -n "${APID[$n]:-}" ] && kill -TERM "${APID[$n]}" 2>/dev/null && wait "${APID[$n]}" 2>/dev/null
		if [ -e "/run/netns/$VT_ID-$n" ]; then
			nsenter --net="/run/netns/$VT_ID-$n" "$VA_SLUICED" -c "$VT_TMP/$n.yaml" --teardown \
				>/dev/null 2>&1
		fi
	done
	return 0
}

_va_cleanup() {
	[ -n "$VA_PID" ] && kill -TERM "$VA_PID" 2>/dev/null && wait "$VA_PID" 2>/dev/null
	if [ -n "$VA_CONFIG" ] && [ -f "$VA_CONFIG" ]; then
		# In the agent's netns when it still exists: TC filters are per netns.
		if [ -e "/run/netns/$VT_ID-node" ]; then
			vt_node "$VA_SLUICED" -c "$VA_CONFIG" --teardown >/dev/null 2>&1
		else
			"$VA_SLUICED" -c "$VA_CONFIG" --teardown >/dev/null 2>&1
		fi
	fi
	return 0
}
vt_on_cleanup _va_cleanup
