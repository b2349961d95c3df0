#!/usr/bin/env bash
# The command lines: sluiced --check/--version/usage/exit codes, and sluicectl's usage,
# errors, prefix matching and -o json, with and without a pinned datapath.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_init cli
vt_cgroup
vt_bpffs

expect() { # expect RC DESCRIPTION CMD...: run CMD, check its exit code
	local want=$1 what=$2 rc
	shift 2
	"$@" >"$VT_TMP/out" 2>"$VT_TMP/err"
	rc=$?
	vt_check "$what: exit $want" \
		-d 'echo "exit $rc; stdout: $(head -c 300 "$VT_TMP/out") stderr: $(head -c 300 "$VT_TMP/err")"' \
		-- [ "$rc" -eq "$want" ]
}

good=$VT_TMP/good.yaml
va_config "$good" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    backends:
      - address: 198.18.1.2:8080
YAML
bad=$VT_TMP/bad.yaml
cat >"$bad" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    lb: fastest
    backends:
      - address: 198.18.1.2:0
YAML

expect 0 "sluiced --check on a valid config" "$VA_SLUICED" -c "$good" --check
expect 1 "sluiced --check on an invalid config" "$VA_SLUICED" -c "$bad" --check
grep -qx "$bad:4:9: lb 'fastest': want random, round_robin, maglev or least_conn" "$VT_TMP/err" &&
	grep -qx "$bad:6:18: backend address '198.18.1.2:0': port must be 1..65535" "$VT_TMP/err" &&
	vt_pass "--check prints every error as FILE:LINE:COL" ||
	vt_fail "--check output: $(cat "$VT_TMP/err")"
[ ! -e "$VT_BPFFS" ] && vt_pass "--check touched nothing" || vt_fail "--check created $VT_BPFFS"
expect 1 "sluiced on a missing config" "$VA_SLUICED" -c "$VT_TMP/nope.yaml" --check
grep -q "nope.yaml:1:1: cannot open" "$VT_TMP/err" && vt_pass "missing config is named" ||
	vt_fail "missing config: $(cat "$VT_TMP/err")"
expect 2 "sluiced with an unknown option" "$VA_SLUICED" --bogus
expect 2 "sluiced with a stray argument" "$VA_SLUICED" -c "$good" extra
expect 2 "sluiced with a bad --log-level" "$VA_SLUICED" -c "$good" --log-level loud
expect 0 "sluiced --version" "$VA_SLUICED" --version
grep -q '^sluiced [0-9]' "$VT_TMP/out" && vt_pass "version printed" || vt_fail "version: $(cat "$VT_TMP/out")"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	chmod 0644 "$good"
	chmod 0755 "$VT_TMP"
	expect 3 "sluiced as an unprivileged user" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		--inh-caps=-all "$VA_SLUICED" -c "$good"
	grep -q "must be started as root" "$VT_TMP/err" && vt_pass "the missing privilege is named" ||
		vt_fail "unprivileged: $(cat "$VT_TMP/err")"
fi

# sluicectl without a datapath.
expect 1 "sluicectl services with nothing pinned" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services
grep -q "no sluice datapath is pinned at $VT_BPFFS" "$VT_TMP/err" && vt_pass "the reason is named" ||
	vt_fail "no datapath: $(cat "$VT_TMP/err")"
expect 1 "sluicectl -o json status with nothing pinned" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json status
jq -e '.error | test("no sluice datapath")' "$VT_TMP/out" >/dev/null &&
	vt_pass "-o json errors are {\"error\": ...}" || vt_fail "json error: $(cat "$VT_TMP/out")"
expect 2 "sluicectl with no command" "$VA_SLUICECTL"
expect 2 "sluicectl with an unknown command" "$VA_SLUICECTL" frobnicate
expect 2 "sluicectl with a bad -o" "$VA_SLUICECTL" -o yaml status
expect 2 "sluicectl services with two names" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services a b

# With a datapath (the agent runs in the root netns here: no traffic in this test).
vt_topology
va_start "$good" || vt_finish
expect 0 "sluicectl stat (prefix of status)" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" stat
grep -q "programs: 10 attached" "$VT_TMP/out" && vt_pass "status: 10 programs attached" ||
	vt_fail "status: $(cat "$VT_TMP/out")"
expect 0 "sluicectl -o json status" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json status
vt_check "status json: agent running, 10 programs, sluice_services 1/2048" -o /dev/null \
	-d 'cat "$VT_TMP/out"' -- jq -e '.agent.running == true and (.programs | length) == 10 and
	([.maps[] | select(.name == "sluice_services")][0] | .entries == 1 and .capacity == 2048)' "$VT_TMP/out"
expect 0 "sluicectl se web (prefix of services)" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" se web
grep -q "198.18.1.2:8080" "$VT_TMP/out" && vt_pass "services shows the backend" ||
	vt_fail "services: $(cat "$VT_TMP/out")"
expect 1 "sluicectl services of an unknown service" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services nope
grep -q "service 'nope' not found" "$VT_TMP/err" && vt_pass "unknown service is named" ||
	vt_fail "unknown service: $(cat "$VT_TMP/err")"
expect 1 "sluicectl -o json services of an unknown service" "$VA_SLUICECTL" --bpffs "$VT_BPFFS" -o json services nope
jq -e '.error' "$VT_TMP/out" >/dev/null && vt_pass "json error for an unknown service" ||
	vt_fail "json: $(cat "$VT_TMP/out")"
perms=$(stat -c '%a' "$VT_BPFFS"/sluice_services "$VT_BPFFS"/links/* | sort -u | tr '\n' ' ')
[ "$perms" = "600 " ] && vt_pass "pins are mode 0600" || vt_fail "pin modes: $perms"
expect 1 "sluicectl as an unprivileged user" setpriv --reuid=nobody --regid=nogroup --clear-groups \
	--inh-caps=-all "$VA_SLUICECTL" --bpffs "$VT_BPFFS" services
vt_finish
