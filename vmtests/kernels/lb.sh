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

# Every program in bpf/*.bpf.c is loaded (bpftool shows the BTF name, or the kernel's, cut to 15);
# bpf/sock_destroy.bpf.c only where the kernel has bpf_sock_destroy (6.5+).
want=()
srcs=()
for f in "$VT_ROOT"/bpf/*.bpf.c; do
	[ "${f##*/}" = sock_destroy.bpf.c ] &&
		! grep -qw bpf_sock_destroy < <(bpftool btf dump file /sys/kernel/btf/vmlinux) && continue
	srcs+=("$f")
done
mapfile -t want < <(awk '/^SEC\("/ && !/license|\.maps/ { s = 1; next }
	s && match($0, /[a-z_0-9]+\(/) { print substr($0, RSTART, RLENGTH - 1); s = 0 }' \
	"${srcs[@]}" | sort -u)
bpftool -j prog show >"$VT_TMP/progs.json" 2>"$VT_TMP/bpftool.err" ||
	vt_fail "bpftool prog show: $(cat "$VT_TMP/bpftool.err")"
missing=()
for p in ${want[@]+"${want[@]}"}; do
	jq -e --arg n "$p" 'any(.[]; .name == $n or .name == $n[:15])' "$VT_TMP/progs.json" \
		>/dev/null ||
		missing+=("$p")
done
vt_check "bpftool prog show lists all ${#want[@]} sluice programs: ${want[*]:-}" \
	-d 'echo "missing ${missing[*]:-?} of ${#want[@]}"' -- eval '[ "${#want[@]}" -ge 10 ] && [ "${#missing[@]}" -eq 0 ]'
bpftool prog show | grep -A1 -E 'name sluice' | sed 's/^/# /'

out=$VT_TMP/tcp.out
vt_check "round_robin: 30 connections to 198.19.0.11:80, none failed, getpeername() = VIP" -o "$out" -- \
	vt_client tcp 198.19.0.11:80 -n 30 --check-peer
# Each CPU cycles through the backends in order: every count is 10 within one per CPU.
n=$(nproc)
vt_counts_within "$out" $((10 - n)) $((10 + n)) be1 be2 be3

out=$VT_TMP/udp.out
vt_check "UDP sendmsg/recvmsg: 10 replies, each from the VIP" -o "$out" -- \
	eval 'vt_client udp 198.19.0.53:53 -n 10 && [ "$(vt_value "$out" ok)" -eq 10 ]'

vt_check "no backend: connect() refused at once" -v -o "$VT_TMP/refused.out" -- \
	vt_client refused 198.19.0.99:80

total=$(va_ctl -o json services web-rr | jq '[.[0].backends[].connections_total] | add')
vt_check "sluicectl: web-rr counted 30 connections" -d 'echo "it counted ${total:-nothing}"' -- \
	[ "${total:-0}" -eq 30 ]
va_ctl status | sed 's/^/# /'
if grep -qE 'level=(warn|error)' "$VA_LOG"; then
	grep -E 'level=(warn|error)' "$VA_LOG" | sed 's/^/# agent: /'
fi

vt_finish
