#!/usr/bin/env bash
# `make demo` cannot rot: tools/demo.sh runs non-interactively to the end within 120 s, exits
# 0, its output shows the facts a newcomer is told (the spread over be1..be3, be1 out of the
# rotation after its removal, ECONNREFUSED for a service without backends, sluicectl's JSON),
# and afterwards nothing of it is left: no netns, cgroup, bpffs dir, program or process.
set -u
. "$(dirname "$0")/lib.sh"

vt_require_root
vt_require_btf
vt_init demotest # scratch dir and exit trap only: the demo builds its own world

DEMO=$VT_ROOT/tools/demo.sh
out=$VT_TMP/demo.out
DEMO_ID=

# Whatever the demo left behind is reported as a failure below, then removed here.
demo_cleanup() {
	local ns p mnt cfg
	[ -n "$DEMO_ID" ] || return 0
	for p in $(pgrep -f -- "/tmp/$DEMO_ID\." 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null
	done
	while read -r ns _; do
		[[ "$ns" == "$DEMO_ID"-* ]] || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done < <(ip netns list 2>/dev/null)
	if [ -e "/sys/fs/bpf/$DEMO_ID" ]; then
		cfg=$VT_TMP/teardown.yaml
		printf 'agent:\n  bpffs: /sys/fs/bpf/%s\nservices: []\n' "$DEMO_ID" >"$cfg"
		"$VT_ROOT/build/sluiced" -c "$cfg" --teardown >/dev/null 2>&1
		rm -rf -- "/sys/fs/bpf/$DEMO_ID"
	fi
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$mnt" ] && [ -d "$mnt/$DEMO_ID" ] && rmdir "$mnt/$DEMO_ID" 2>/dev/null
	rm -rf -- "/tmp/$DEMO_ID".* 2>/dev/null
	return 0
}
vt_on_cleanup demo_cleanup

# --- refuses to run without root, with a message that says so --------------------------------
if command -v setpriv >/dev/null 2>&1 && setpriv --reuid=65534 --regid=65534 --clear-groups \
	test -r "$DEMO" 2>/dev/null; then
	msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups bash "$DEMO" 2>&1 </dev/null)
	rc=$?
	vt_check "as an unprivileged user the demo refuses: $(head -c 60 <<<"$msg")..." \
		-d 'echo "exit $rc: $msg"' -- eval '[ "$rc" -ne 0 ] && grep -q "must be run as root" <<<"$msg"'
else
	vt_log "not checking the unprivileged refusal (no setpriv, or $DEMO unreadable for nobody)"
fi

# --- the demo itself --------------------------------------------------------------------------
start=$(date +%s)
DEMO_PAUSE=0 NO_COLOR=1 timeout -k 5 120 bash "$DEMO" >"$out" 2>&1 </dev/null
rc=$?
secs=$(($(date +%s) - start))
DEMO_ID=$(sed -n 's/^# run id \(sl[0-9x]*-demo\) .*/\1/p' "$out" | head -n 1)

vt_check "tools/demo.sh exited 0 in ${secs}s ($(grep -m1 '^demo passed' "$out"))" \
	-d 'echo "it exited $rc"' -- [ "$rc" -eq 0 ]
# No time limit is asserted (the machine is shared): the run is only bounded by the timeout.
vt_check "the demo's run id is $DEMO_ID" -d 'echo "no run id in the demo output"' -- [ -n "$DEMO_ID" ]
steps=$(grep -c '^==> [0-9]*\. ' "$out")
[ "$steps" -ge 12 ] && vt_pass "$steps steps announced" || vt_fail "only $steps steps announced"
failed=$(grep -c '\[FAILED\]' "$out")
[ "$failed" -eq 0 ] && vt_pass "no step reported a failure" ||
	vt_fail "$failed failed checks: $(grep '\[FAILED\]' "$out" | tr -s ' ' | tr '\n' ';')"

# dist LABEL: "be1 be2 be3" counts of the demo's line "distribution LABEL: be1=N be2=N be3=N".
dist() {
	grep -F -m1 "distribution $1: " "$out" |
		sed -n 's/.*: be1=\([0-9]*\) be2=\([0-9]*\) be3=\([0-9]*\)$/\1 \2 \3/p'
}

# 300 connections spread over all three backends.
read -r b1 b2 b3 <<<"$(dist '(300 connections)')"
vt_check "distribution of 300: be1=${b1:-} be2=${b2:-} be3=${b3:-}, every backend present" \
	-d 'grep -m1 "distribution (300" "$out"' -- eval '[ -n "${b3:-}" ] && [ "$b1" -gt 0 ] &&
	[ "$b2" -gt 0 ] && [ "$b3" -gt 0 ] && [ $((b1 + b2 + b3)) -eq 300 ]'
bars=$(grep -cE '^    be[123] 198\.18\.1\.[234]:8080 weight [12] +[0-9]+  #+' "$out")
[ "$bars" -ge 3 ] && vt_pass "the distribution is drawn as bars ($bars bars)" ||
	vt_fail "no bars for the distribution"

# be1 removed from the config: no new connection reaches it.
read -r b1 b2 b3 <<<"$(dist 'after removing be1 (100 connections)')"
vt_check "after be1's removal: be1=0 be2=${b2:-} be3=${b3:-}" -d 'grep -m1 "distribution after" "$out"' -- \
	eval '[ -n "${b3:-}" ] && [ "$b1" -eq 0 ] && [ $((b2 + b3)) -eq 100 ]'
grep -q 'msg="service updated" service=web .*removed_backends=1' "$out" &&
	vt_pass "the agent's reload is shown" || vt_fail "the agent's reload is not shown"

# With the agent stopped, the pinned datapath still serves the last state.
read -r b1 b2 b3 <<<"$(dist 'with the agent stopped (50 connections)')"
vt_check "agent stopped: 50 connections still balanced (be2=${b2:-} be3=${b3:-})" \
	-d 'grep -m1 "distribution with" "$out"' -- \
	eval '[ -n "${b3:-}" ] && [ "$b1" -eq 0 ] && [ $((b2 + b3)) -eq 50 ]'

# A service without backends: ECONNREFUSED, at once.
vt_check "no backends: connect() refused" -v -o "$VT_TMP/refused.line" \
	-d 'echo "no ECONNREFUSED line in the demo output"' -- grep -m1 -E '^ +ECONNREFUSED [0-9.]+ms$' "$out"

# The JSON of `sluicectl -o json services web`, as printed: up to the array's closing bracket.
json=$VT_TMP/web.json
awk '/-o json services web$/ { on = 1; next } on { print } on && /^    \]$/ { exit }' "$out" >"$json"
vt_check "sluicectl -o json services web: valid JSON, $(jq -c '[.[0].backends[].connections_total]' "$json" 2>/dev/null) connections" \
	-O /dev/null -d 'echo "it does not parse: $(head -c 300 "$json" | tr "\n" " ")"' -- \
	jq -e 'type == "array" and .[0].name == "web" and (.[0].backends | length) == 3' "$json"

# The bpftool views were shown.
grep -qE '^ +[0-9]+ +cgroup_inet4_connect +multi +sluice_sock4_connect' "$out" &&
	vt_pass "bpftool cgroup show lists the programs" || vt_fail "no bpftool cgroup show output"
grep -q '^\$ bpftool map dump pinned .*/sluice_services$' "$out" &&
	vt_pass "a pinned map is dumped" || vt_fail "no map dump"

# --- nothing left behind ----------------------------------------------------------------------
if [ -n "$DEMO_ID" ]; then
	left=$(ip netns list 2>/dev/null | awk -v p="$DEMO_ID-" 'index($1, p) == 1 { print $1 }')
	[ -z "$left" ] && vt_pass "no netns $DEMO_ID-* left" || vt_fail "netns left: $(echo $left)"
	mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ ! -e "$mnt/$DEMO_ID" ] && vt_pass "no cgroup $mnt/$DEMO_ID left" ||
		vt_fail "cgroup left: $mnt/$DEMO_ID"
	[ ! -e "/sys/fs/bpf/$DEMO_ID" ] && vt_pass "no bpffs dir /sys/fs/bpf/$DEMO_ID left" ||
		vt_fail "bpffs dir left: $(ls -R "/sys/fs/bpf/$DEMO_ID" 2>&1 | tr '\n' ' ')"
	scratch=$(compgen -G "/tmp/$DEMO_ID.*")
	[ -z "$scratch" ] && vt_pass "no scratch dir left" || vt_fail "scratch left: $(echo $scratch)"
	procs=$(pgrep -af -- "/tmp/$DEMO_ID\." 2>/dev/null)
	[ -z "$procs" ] && vt_pass "no process of the demo left" || vt_fail "processes left: $(tr '\n' ';' <<<"$procs")"
fi
# The programs the demo attached (sluicectl status printed their ids) are gone. Other tests may
# have sluice programs loaded meanwhile, so look for these ids, not for the name.
ids=$(sed -n 's/^ *sluice_[a-z0-9_]* *cgroup_[a-z0-9_]* *link [0-9]* *prog \([0-9]*\)$/\1/p' "$out" |
	sort -un)
n=$(wc -w <<<"$ids")
if [ "$n" -ge 9 ]; then
	still=()
	for id in $ids; do
		bpftool prog show id "$id" 2>/dev/null | grep -q sluice && still+=("$id")
	done
	[ "${#still[@]}" -eq 0 ] && vt_pass "none of the demo's $n sluice programs is still loaded" ||
		vt_fail "the demo's programs still loaded: ${still[*]}"
else
	vt_fail "expected the ids of 9 programs in sluicectl status output, found $n"
fi

if [ "$VT_FAILS" -ne 0 ]; then
	vt_log "--- demo output (last 60 lines) ---"
	tail -n 60 "$out" | sed 's/^/#   /'
fi
vt_finish
