#!/usr/bin/env bash
# The ABI stamp of pinned state: the agent pins sluice_abi (SLUICE_ABI_VERSION, frozen, 0600)
# beside its maps; a start over pins of another version exits 3, says to run --teardown, and
# leaves the running datapath alone; pins from before the stamp (none there) are adopted as
# version 1; --teardown removes the stamp with the rest.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_require_root
vt_require_btf
vt_require_tools bpftool jq
vt_init abi
vt_topology
vt_backends 8080
vt_cgroup
vt_bpffs

ABI=$(awk '$1 == "#define" && $2 == "SLUICE_ABI_VERSION" { print $3 }' "$VT_ROOT/include/sluice/abi.h")
STAMP=$VT_BPFFS/sluice_abi
cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    backends:
      - address: 198.18.1.2:8080
YAML
prog_ids() { bpftool cgroup show "$VT_CGROUP" 2>/dev/null | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' '; }
# stamp_value: the version in the pinned stamp (little-endian __u32 at key 0).
stamp_value() {
	local b v=0 i=0
	for b in $(bpftool -j map lookup pinned "$STAMP" key 0 0 0 0 2>/dev/null | jq -r '.value[]'); do
		v=$((v + (16#${b#0x} << (8 * i))))
		i=$((i + 1))
	done
	[ "$i" -eq 4 ] && echo "$v"
}

va_start "$cfg" || vt_finish
if [ "$(stamp_value)" = "$ABI" ] && [ "$(stat -c %a "$STAMP")" = 600 ] &&
	[ "$(bpftool -j map show pinned "$STAMP" | jq -r .frozen)" = 1 ]; then
	vt_pass "the agent pinned the ABI stamp: v$ABI, 0600, frozen"
else
	vt_fail "stamp: value $(stamp_value) mode $(stat -c %a "$STAMP" 2>&1) $(bpftool map show pinned "$STAMP" 2>&1)"
fi
va_stop TERM
before=$(prog_ids)

# Another version's pins: the start is refused, exit 3, with what to do.
rm -f "$STAMP"
other=$((ABI + 1))
bpftool map create "$STAMP" type array key 4 value 4 entries 1 name sluice_abi &&
	bpftool map update pinned "$STAMP" key 0 0 0 0 value "$other" 0 0 0 ||
	vt_fail "cannot pin a v$other stamp"
vt_node timeout 20 "$VA_SLUICED" -c "$cfg" >"$VT_TMP/other.log" 2>&1
rc=$?
want="pinned state under $VT_BPFFS has ABI v$other, this sluiced has v$ABI: run \`sluiced --teardown\` first"
if [ "$rc" -eq 3 ] && grep -qF "$want" "$VT_TMP/other.log"; then
	vt_pass "pins of ABI v$other: exit 3, and the message says to run --teardown"
else
	vt_fail "pins of ABI v$other: exit $rc: $(grep -m1 -i error "$VT_TMP/other.log")"
fi
[ "$(prog_ids)" = "$before" ] && [ "$(stamp_value)" = "$other" ] &&
	vt_pass "the refused start left the links and the stamp as they were" ||
	vt_fail "after the refused start: programs '$(prog_ids)' (were '$before'), stamp $(stamp_value)"
vt_client tcp 198.19.0.10:80 -n 3 >"$VT_TMP/still.out" &&
	vt_pass "the datapath still serves" || vt_fail "datapath after the refused start: $(cat "$VT_TMP/still.out")"

# Pins from before the stamp existed are version 1.
rm -f "$STAMP"
if [ "$ABI" -eq 1 ]; then
	va_start "$cfg" || vt_finish
	va_log_has 'adopted the pinned datapath' && [ "$(stamp_value)" = 1 ] &&
		vt_pass "unstamped pins adopted as v1, and stamped" ||
		vt_fail "unstamped pins: adopted? stamp $(stamp_value)"
	va_stop TERM
fi

if "$VA_SLUICED" -c "$cfg" --teardown >"$VT_TMP/teardown.log" 2>&1 && [ ! -e "$VT_BPFFS" ]; then
	vt_pass "--teardown removed every pin, the stamp too"
else
	vt_fail "--teardown: $(cat "$VT_TMP/teardown.log"); left: $(ls -A "$VT_BPFFS" 2>&1)"
fi
vt_finish
