#!/usr/bin/env bash
# mtls datapath alone (the agent runs without a CA here, so its tunnel engine stays down and a fake
# outbound listener stands in for it; 80-mtls runs the real one): with `mtls:` configured, a TCP connect()
# of a caller whose identity has a valid certificate (the bit the test sets in sluice_settings)
# to a backend on another node goes to the agent's outbound listener on loopback, and
# sluice_mtls_conn, keyed by the caller's end, names the original backend, the service and the
# caller's identity (read and deleted with sl_mtls_lookup by a small driver); getpeername() shows
# the frontend; v4, v6 and v4-mapped. A caller without a certificate gets EPERM at once from a
# strict service (counted as policy) and plaintext from a permissive one. A same-node backend is
# never redirected. TC ingress drops plaintext SYNs from another node to a strict service's local
# backend (counted), and serves a permissive one's.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world mtlsdp
command -v python3 >/dev/null || vt_skip "python3 is missing"
command -v bpftool >/dev/null || vt_skip "bpftool is missing"
NODE=$VT_ID-node
OUT_PORT=15001
mkdir "$VT_CGROUP/frontend" "$VT_CGROUP/nocert" || vt_fail "mkdir client cgroups"

# --- the driver: sl_mtls_lookup on a peer address, as the agent will call it ----------------------
cat >"$VT_TMP/mtls_get.c" <<'EOF'
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maps.h"
#include "mtls_map.h"

int main(int argc, char **argv)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct sluice_svc_info info = {0};
	char be[SL_HOSTPORT_LEN], fe[SL_HOSTPORT_LEN];
	struct sl_mtls_orig o, again;
	struct sl_maps m;
	int err;

	if (argc != 4)
		return 2;
	if (inet_pton(AF_INET, argv[2], &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(argv[3]));
	} else if (inet_pton(AF_INET6, argv[2], &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)atoi(argv[3]));
	} else {
		return 2;
	}
	err = sl_maps_open_pinned(argv[1], 0, &m);
	if (err) {
		printf("error=open:%s\n", strerror(-err));
		return 1;
	}
	err = sl_mtls_lookup(&m, (struct sockaddr *)&ss, &o);
	if (err) {
		printf("error=%s\n", strerror(-err));
		return 1;
	}
	sl_format_hostport(&o.backend, be, sizeof(be));
	sl_format_hostport(&o.frontend, fe, sizeof(fe));
	if (bpf_map_lookup_elem(m.svc_info, &o.svc_id, &info))
		strcpy(info.name, "?");
	err = sl_mtls_lookup(&m, (struct sockaddr *)&ss, &again);
	printf("backend=%s frontend=%s service=%s identity=%u be_id=%u again=%s\n", be, fe,
	       info.name, o.identity, o.be_id, err ? strerror(-err) : "found");
	return 0;
}
EOF
if ! make -s --no-print-directory -C "$VT_ROOT" build/libsluice.a >"$VT_TMP/build.log" 2>&1 ||
	! (cd "$VT_ROOT" && ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE \
		${VT_SAN_FLAGS:-} -Iinclude -Iuserspace/lib -Ibuild "$VT_TMP/mtls_get.c" \
		build/libsluice.a $(make -s --no-print-directory -C "$VT_ROOT" print-ldlibs) \
		-o "$VT_TMP/mtls_get") \
		>>"$VT_TMP/build.log" 2>&1; then
	vt_fail "cannot build the mtls_get driver (see build.log: $(tail -n 3 "$VT_TMP/build.log"))"
	vt_finish
fi

# --- the fake outbound listener: 127.0.0.1 and ::1 at OUT_PORT in the node netns ------------------
# For each connection: the driver's line for the accepted socket's peer, sent to the caller.
cat >"$VT_TMP/listener.py" <<'EOF'
import selectors, socket, subprocess, sys, time
drv, bpffs, port, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sel = selectors.DefaultSelector()
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
open(ready, "w").close()
end = time.time() + 120
while time.time() < end:
    for key, _ in sel.select(timeout=1):
        c, peer = key.fileobj.accept()
        r = subprocess.run([drv, bpffs, peer[0], str(peer[1])], capture_output=True,
                           text=True, timeout=10)
        c.sendall(("tunnel " + r.stdout.strip() + "\n").encode())
        c.close()
EOF
(exec nsenter --net="/run/netns/$NODE" timeout 130 python3 "$VT_TMP/listener.py" \
	"$VT_TMP/mtls_get" "$VT_BPFFS" "$OUT_PORT" "$VT_TMP/listener.ready" \
	>"$VT_TMP/listener.log" 2>&1) &
vt_track_pid $!
listening() { [ -e "$VT_TMP/listener.ready" ]; }
vt_wait_until 5 listening || vt_fail "the fake outbound listener did not start: $(cat "$VT_TMP/listener.log")"

# --- the caller: connect(), getpeername(), the first line the peer sends -----------------------
cat >"$VT_TMP/caller.py" <<'EOF'
import errno, socket, sys, time
host, port, fam = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if fam != "4" else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
t = time.monotonic()
try:
    s.connect((host, port))
except OSError as e:
    print("%s %.1fms" % (errno.errorcode.get(e.errno, str(e.errno)), (time.monotonic() - t) * 1000))
    sys.exit(1)
peer = s.getpeername()
line = s.makefile().readline().strip()
print("ok peer=%s:%d reply=%s" % (peer[0], peer[1], line))
EOF
# caller CGROUP HOST PORT FAMILY: caller.py in that cgroup and the node netns, bounded.
caller() {
	local cg=$1
	shift
	(
		echo "$BASHPID" >"$cg/cgroup.procs" || exit 2
		exec timeout -k 2 10 ip netns exec "$NODE" python3 "$VT_TMP/caller.py" "$@"
	)
}
FE=$VT_CGROUP/frontend
NC=$VT_CGROUP/nocert

# --- node-local backends, the config, the agent ----------------------------------------------------
vt_server "$NODE" strict-local 9000 --addr 198.18.0.1 || vt_finish
vt_server "$NODE" perm-local 9001 --addr 198.18.0.1 || vt_finish
cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<YAML
  interfaces: [vt-rtr]
identities:
  - name: frontend
    cgroups: [$FE]
  - name: nocert
    cgroups: [$NC]
mtls:
  trust_domain: sluice.test
  certs: $VT_TMP/certs
  outbound_port: $OUT_PORT
services:
  - name: strict
    frontend: 198.19.0.70:80
    backends: [{address: 198.18.1.2:8080}]
    mtls: strict
  - name: strict6
    frontend: "[2001:db8:f::70]:80"
    backends: [{address: "[2001:db8:1::2]:8080"}]
    mtls: strict
  - name: perm
    frontend: 198.19.0.71:80
    backends: [{address: 198.18.1.3:8080}]
    mtls: permissive
  - name: strict-local
    frontend: 198.19.0.72:9000
    backends: [{address: 198.18.0.1:9000}]
    mtls: strict
  - name: perm-local
    frontend: 198.19.0.73:9001
    backends: [{address: 198.18.0.1:9001}]
    mtls: permissive
YAML
va_start "$cfg" || vt_finish

# The agent does not manage certificates yet: the test says that frontend (id 1) has a valid one,
# and where the outbound listener is (struct sluice_settings, 56 bytes, little endian; tracing and zone stay 0).
hexle() { # hexle VALUE BYTES
	local v=$1 n=$2 i out=""
	for ((i = 0; i < n; i++)); do
		out+=$(printf '%02x ' $(((v >> (8 * i)) & 255)))
	done
	echo "$out"
}
set_settings() { # set_settings VALID_MASK OUTBOUND_PORT
	# shellcheck disable=SC2046 # one hex byte per word
	nsenter --net="/run/netns/$NODE" bpftool map update pinned "$VT_BPFFS/sluice_settings" \
		key hex 00 00 00 00 value hex $(hexle 0 16) $(hexle "$1" 8) $(hexle "$2" 2) \
		$(hexle 0 6) $(hexle 0 8) $(hexle 0 16)
}
vt_check "settings: frontend has a certificate, outbound listener at :$OUT_PORT" -- \
	set_settings 1 "$OUT_PORT"

out=$VT_TMP/out
metric() { va_metrics | grep -E "^$1\{[^}]*$2" | awk '{ s += $NF } END { print s + 0 }'; }
tunnelled() { # tunnelled FILE PEER FRONTEND BACKEND SERVICE (grep -E patterns)
	grep -qE "^ok peer=$2 reply=tunnel backend=$4 frontend=$3 service=$5 identity=1 be_id=[1-9][0-9]* again=No such file or directory$" "$1"
}

# --- outbound: frontend (valid certificate) is tunnelled --------------------------------------------
caller "$FE" 198.19.0.70 80 4 >"$out"
vt_check "frontend -> strict (v4): sent to 127.0.0.1:$OUT_PORT; the record names backend, service, identity; getpeername shows the frontend; the record is read once ($(cat "$out"))" -- \
	tunnelled "$out" 198.19.0.70:80 198.19.0.70:80 198.18.1.2:8080 strict
caller "$FE" 2001:db8:f::70 80 6 >"$out"
vt_check "frontend -> strict6 (v6): sent to [::1]:$OUT_PORT, record found ($(cat "$out"))" -- \
	tunnelled "$out" 2001:db8:f::70:80 '\[2001:db8:f::70\]:80' '\[2001:db8:1::2\]:8080' strict6
caller "$FE" ::ffff:198.19.0.70 80 6 >"$out"
vt_check "frontend -> strict (v4-mapped IPv6 socket): sent to ::ffff:127.0.0.1:$OUT_PORT, record found ($(cat "$out"))" -- \
	grep -q '^ok peer=::ffff:198.19.0.70:80 reply=tunnel backend=198.18.1.2:8080 frontend=198.19.0.70:80 service=strict identity=1 ' "$out"
caller "$FE" 198.19.0.71 80 4 >"$out"
vt_check "frontend -> perm: tunnelled too ($(cat "$out"))" -- \
	tunnelled "$out" 198.19.0.71:80 198.19.0.71:80 198.18.1.3:8080 perm

# --- outbound: no certificate -------------------------------------------------------------------------
before=$(metric sluice_rejected_connections_total 'service="strict",reason="policy"')
caller "$NC" 198.19.0.70 80 4 >"$out"
eperm_fast() { awk '$1 == "EPERM" { sub(/ms$/, "", $2); ok = ($2 + 0 < 50) } END { exit !ok }' "$1"; }
vt_check "nocert -> strict: EPERM at connect() ($(cat "$out"))" -- eperm_fast "$out"
counted() { [ "$(metric sluice_rejected_connections_total 'service="strict",reason="policy"')" -gt "$before" ]; }
vt_check "the refusal is counted: sluice_rejected_connections_total{service=\"strict\",reason=\"policy\"}" -- \
	vt_wait_until 3 counted
caller "$NC" 198.19.0.71 80 4 >"$out"
vt_check "nocert -> perm: plaintext to the backend ($(cat "$out"))" -- \
	grep -q '^ok peer=198.19.0.71:80 reply=be2$' "$out"

# --- same node: never redirected ---------------------------------------------------------------------
caller "$FE" 198.19.0.72 9000 4 >"$out"
vt_check "frontend -> strict-local: straight to the node's own backend ($(cat "$out"))" -- \
	grep -q '^ok peer=198.19.0.72:9000 reply=strict-local$' "$out"
caller "$NC" 198.19.0.72 9000 4 >"$out"
vt_check "nocert -> strict-local: same node, no certificate needed ($(cat "$out"))" -- \
	grep -q '^ok peer=198.19.0.72:9000 reply=strict-local$' "$out"

# --- no listener port: strict refuses even frontend, permissive falls back -----------------------
vt_check "settings: no outbound listener" -- set_settings 1 0
caller "$FE" 198.19.0.70 80 4 >"$out"
vt_check "frontend -> strict without a listener: EPERM ($(cat "$out"))" -- eperm_fast "$out"
caller "$FE" 198.19.0.71 80 4 >"$out"
vt_check "frontend -> perm without a listener: plaintext ($(cat "$out"))" -- \
	grep -q '^ok peer=198.19.0.71:80 reply=be2$' "$out"

# --- TC ingress: plaintext from another node ---------------------------------------------------------
direct() { # direct PORT: a plaintext connect from be3 ("another node") to the node's own server
	ip netns exec "$VT_ID-be3" "$VT_BIN/sl_client" tcp "198.18.0.1:$1" -n 1 --timeout-ms 1500 >"$out"
}
before=$(metric sluice_rejected_connections_total 'service="strict-local",reason="policy"')
direct 9000
vt_check "another node -> strict-local's backend in plaintext: SYN dropped at TC ingress ($(tr '\n' ' ' <"$out"))" -- \
	[ "$(vt_value "$out" 'errno ETIMEDOUT')" -eq 1 ]
tc_counted() { [ "$(metric sluice_rejected_connections_total 'service="strict-local",reason="policy"')" -gt "$before" ]; }
vt_check "the TC drop is counted (reason policy)" -- vt_wait_until 3 tc_counted
direct 9001
vt_check "another node -> perm-local's backend in plaintext: served ($(tr '\n' ' ' <"$out"))" -- \
	[ "$(vt_value "$out" ok)" -eq 1 ]
vt_finish
