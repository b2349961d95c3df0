#!/usr/bin/env bash
# vmtests/kernels/lb.sh - the basic check that vmtests/kernels/run.sh runs inside a VM with
# another kernel (it also runs on the host as root): the real agent loads every sluice BPF
# program (so all of them pass this kernel's verifier), bpftool lists each one, 30 connections
# to a round_robin VIP reach all three backends, UDP through sendmsg/recvmsg answers from the
# VIP, and a service without backends refuses connect() at once.
# Uses vmtests/lib.sh's world: node/rtr/backend netns in 198.18.0.0/15, VIPs in 198.19.0.0/16.
set -u
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../agent.sh"

vt_world kernel-lb
vt_log "kernel $(uname -r)"

cfg=$VT_TMP/sluice.yaml
# interfaces: the TC flow programs load too (on vt-rtr in the node netns); redirect defaults
# to local, so sk_msg loads.
va_config "$cfg" <<'YAML'
  interfaces: [vt-*]
services:
  - name: web-rr
    frontend: 198.19.0.11:80
    lb: round_robin
    backends: &three
      - address: 198.18.1.2:8080
      - address: 198.18.1.3:8080
      - address: 198.18.1.4:8080
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
    backends: *three
  - name: empty
    frontend: 198.19.0.99:80
YAML
if ! va_start "$cfg"; then
	# The verifier's words are the finding: show the whole agent log, not only its tail.
	echo "# --- agent log ($VA_LOG) ---"
	head -n 300 "$VA_LOG" | sed 's/^/#   /'
	vt_finish
fi
vt_pass "sluiced started and became ready on $(uname -r)"

# Every program in bpf/*.bpf.c is loaded (bpftool shows the BTF name, or the kernel's, cut to 15).
want=()
mapfile -t want < <(awk '/^SEC\("/ && !/license|\.maps/ { s = 1; next }
	s && match($0, /[a-z_0-9]+\(/) { print substr($0, RSTART, RLENGTH - 1); s = 0 }' \
	"$VT_ROOT"/bpf/*.bpf.c | sort -u)
bpftool -j prog show >"$VT_TMP/progs.json" 2>"$VT_TMP/bpftool.err" ||
	vt_fail "bpftool prog show: $(cat "$VT_TMP/bpftool.err")"
missing=()
for p in ${want[@]+"${want[@]}"}; do
	jq -e --arg n "$p" 'any(.[]; .name == $n or .name == $n[:15])' "$VT_TMP/progs.json" \
		>/dev/null ||
		missing+=("$p")
done
if [ "${#want[@]}" -ge 10 ] && [ "${#missing[@]}" -eq 0 ]; then
	vt_pass "bpftool prog show lists all ${#want[@]} sluice programs: ${want[*]}"
else
	vt_fail "bpftool prog show: missing ${missing[*]:-?} of ${#want[@]} (${want[*]:-})"
fi
bpftool prog show | grep -A1 -E 'name sluice' | sed 's/^/# /'

out=$VT_TMP/tcp.out
if vt_client tcp 198.19.0.11:80 -n 30 --check-peer >"$out"; then
	vt_pass "round_robin: 30 connections to 198.19.0.11:80, none failed, getpeername() = VIP"
else
	vt_fail "round_robin: client failed: $(tr '\n' ' ' <"$out")"
fi
# Each CPU cycles through the backends in order: every count is 10 within one per CPU.
n=$(nproc)
vt_counts_within "$out" $((10 - n)) $((10 + n)) be1 be2 be3

out=$VT_TMP/udp.out
if vt_client udp 198.19.0.53:53 -n 10 >"$out" && [ "$(vt_value "$out" ok)" -eq 10 ]; then
	vt_pass "UDP sendmsg/recvmsg: 10 replies, each from the VIP"
else
	vt_fail "UDP: $(tr '\n' ' ' <"$out")"
fi

out=$VT_TMP/refused.out
if vt_client refused 198.19.0.99:80 >"$out"; then
	vt_pass "no backend: connect() refused at once ($(cat "$out"))"
else
	vt_fail "no backend: $(cat "$out")"
fi

total=$(va_ctl -o json services web-rr | jq '[.[0].backends[].connections_total] | add')
if [ "${total:-0}" -eq 30 ]; then
	vt_pass "sluicectl: web-rr counted 30 connections"
else
	vt_fail "sluicectl: web-rr counted ${total:-nothing}, want 30"
fi
va_ctl status | sed 's/^/# /'
if grep -qE 'level=(warn|error)' "$VA_LOG"; then
	grep -E 'level=(warn|error)' "$VA_LOG" | sed 's/^/# agent: /'
fi

vt_finish
