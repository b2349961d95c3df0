#!/usr/bin/env bash
# tools/bench/lc-cost.sh - the in-kernel cost of least_conn selection: run_time_ns / run_cnt of
# the cgroup/connect4 program (kernel.bpf_stats_enabled=1) over sequential TCP connections to
# a least_conn service, with the exact scan forced (sluice_settings.lc_scan_max = 1000) and with
# the power of two choices forced (lc_scan_max = 1), against lb: random on the same backends
# as the baseline, for views of each of SIZES backends. Run as root, after `make`.
#
#   tools/bench/lc-cost.sh [CONNECTIONS]    (default 2000 per configuration and repetition)
#   SIZES="3 8 16 32 100" REPS=5 WARM=200 tools/bench/lc-cost.sh     (the defaults; ~30 s)
#
# Every backend listens: backend k (0-based) is an sl_server on 198.18.1.(2 + k % 3), port
# 9000 + k / 3, so a view of N backends is the first N of that list and the 3 backend netns hold
# ceil(max(SIZES) / 3) servers each. The configurations of one size run one after the other,
# rotated each repetition (R S P, S P R, P R S), and so is the order of the sizes; the table
# shows the median over REPS with min-max, and the view size at which the scan's connect4
# costs twice P2C's (from a linear fit of scan - random over the sizes, and interpolated). The
# figures include bpf_stats' own overhead (two clock reads per run), the same for every row.
# Standalone: `make bench` does not run it (its report is built from bench.sh's .tsv only).
#
# Network safety: everything lives in network namespaces this script creates (vmtests/lib.sh:
# 198.18.0.0/15 only, the node netns has no default route and blackholes the VIPs), every loop
# and client is bounded, and the world is removed and kernel.bpf_stats_enabled restored on
# exit, failure or Ctrl-C.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-2000}
SIZES=${SIZES:-3 8 16 32 100}
REPS=${REPS:-5}
WARM=${WARM:-200}
PORT_BASE=9000

die() {
	echo "lc-cost: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, BPF)"
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] ||
	{ echo "lc-cost: CONNECTIONS must be 1..20000" >&2; exit 2; }
[[ "$REPS" =~ ^[0-9]+$ ]] && [ "$REPS" -ge 1 ] && [ "$REPS" -le 9 ] ||
	{ echo "lc-cost: REPS must be 1..9" >&2; exit 2; }
[[ "$WARM" =~ ^[0-9]+$ ]] && [ "$WARM" -le 5000 ] ||
	{ echo "lc-cost: WARM must be 0..5000" >&2; exit 2; }
read -r -a sizes <<<"$SIZES"
[ "${#sizes[@]}" -ge 1 ] && [ "${#sizes[@]}" -le 8 ] ||
	{ echo "lc-cost: SIZES must list 1..8 view sizes" >&2; exit 2; }
max=0
for s in "${sizes[@]}"; do
	[[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 2 ] && [ "$s" -le 300 ] ||
		{ echo "lc-cost: SIZES must be numbers of backends, 2..300" >&2; exit 2; }
	[ "$s" -gt "$max" ] && max=$s
done
for t in bpftool jq awk sysctl; do
	command -v "$t" >/dev/null || die "$t missing (make deps)"
done
[ -x "$ROOT/build/sluiced" ] && [ -x "$ROOT/build/sluicectl" ] ||
	die "build/sluiced or build/sluicectl missing (run make)"

unset VT_ID VT_NAME VT_TMP VT_CGROUP VT_BPFFS VA_PID VA_CONFIG VA_LOG VA_STARTS
export VT_ROOT=$ROOT VT_CLIENT_TIMEOUT=$((N / 20 + 60))
# shellcheck source=../../vmtests/lib.sh
. "$ROOT/vmtests/lib.sh"
# shellcheck source=../../vmtests/agent.sh
. "$ROOT/vmtests/agent.sh"

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
vt_init lccost >/dev/null
trap 'sysctl -qw kernel.bpf_stats_enabled="$old_stats"; _vt_exit_trap' EXIT
START=$(date +%s)
vt_topology >/dev/null || die "topology failed"
vt_cgroup >/dev/null || die "cgroup failed"
vt_bpffs >/dev/null

# --- backends: ceil(max / 3) sl_servers in each backend netns ----------------------------------
ports=$(((max + 2) / 3))
for ((p = 0; p < ports; p++)); do
	for i in 1 2 3; do
		vt_server "$VT_ID-be$i" "b$i-$((PORT_BASE + p))" $((PORT_BASE + p)) >/dev/null ||
			die "sl_server on 198.18.1.$((i + 1)):$((PORT_BASE + p)) did not start"
	done
done

# --- one random and one least_conn service per size --------------------------------------------
backends() { # backends N: the YAML list of the first N backends
	local k
	for ((k = 0; k < $1; k++)); do
		printf '      - address: 198.18.1.%d:%d\n' $((2 + k % 3)) $((PORT_BASE + k / 3))
	done
}
cfg=$VT_TMP/sluice.yaml
{
	echo "services:"
	for ((j = 0; j < ${#sizes[@]}; j++)); do
		for lb in random least_conn; do
			printf '  - name: %s-%s\n    frontend: 198.19.%d.%d:80\n    lb: %s\n    backends:\n' \
				"$lb" "${sizes[$j]}" "$([ "$lb" = random ] && echo 1 || echo 2)" $((j + 1)) "$lb"
			backends "${sizes[$j]}"
		done
	done
} | va_config "$cfg"
va_start "$cfg" >/dev/null || die "sluiced did not start (log: $VA_LOG)"

prog=$(va_ctl -o json status |
	jq -r '.programs[] | select(.attach_type == "cgroup_inet4_connect") | .prog_id') ||
	die "sluicectl status failed"
[[ "$prog" =~ ^[0-9]+$ ]] || die "no cgroup/connect4 program in sluicectl status: '$prog'"
settings=$VT_BPFFS/sluice_settings
[ -e "$settings" ] || die "$settings is not pinned"

# set_lc_scan_max V: sluice_settings[0] = {events 0, lc_scan_max V, the rest 0} (56 bytes), read
# back to check.
set_lc_scan_max() {
	local v=$1 got
	bpftool map update pinned "$settings" key 0 0 0 0 value 0 0 0 0 \
		$((v & 255)) $(((v >> 8) & 255)) $(((v >> 16) & 255)) $(((v >> 24) & 255)) \
		$(printf '0 %.0s' {1..48}) ||
		die "cannot write $settings"
	got=$(bpftool -j map lookup pinned "$settings" key 0 0 0 0 |
		jq -r '.formatted.value // .value | if type == "object"
			then "\(.events) \(.lc_scan_max)"
			else (map(if type == "string" then (ltrimstr("0x") | explode | map(
				if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1]) else . end)
				| "\(.[0] + .[1] * 256 + .[2] * 65536 + .[3] * 16777216) \(.[4] + .[5] * 256 + .[6] * 65536 + .[7] * 16777216)")
			end')
	[ "$got" = "0 $v" ] || die "sluice_settings reads '$got' (events lc_scan_max), want '0 $v'"
}
stats() { bpftool -j prog show id "$prog" | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"'; }
vip() { # vip MODE J
	[ "$1" = random ] && echo "198.19.1.$(($2 + 1)):80" || echo "198.19.2.$(($2 + 1)):80"
}
lc_for() { case $1 in scan) echo 1000 ;; p2c) echo 1 ;; *) echo 0 ;; esac }

# Warm-up: every service once, stats off (caches, first-use allocations, ARP).
if [ "$WARM" -gt 0 ]; then
	for ((j = 0; j < ${#sizes[@]}; j++)); do
		for m in random scan; do
			vt_client tcp "$(vip $m $j)" -n "$WARM" >/dev/null
		done
	done
fi

raw=$VT_TMP/raw.tsv
modes=(random scan p2c)
sysctl -qw kernel.bpf_stats_enabled=1 || die "cannot set kernel.bpf_stats_enabled"
echo "lc-cost: ${sizes[*]} backends x {random, scan, p2c} x $REPS reps x $N connections" \
	"(connect4 prog $prog)" >&2
for ((rep = 0; rep < REPS; rep++)); do
	for ((jj = 0; jj < ${#sizes[@]}; jj++)); do
		j=$(((jj + rep) % ${#sizes[@]}))
		for ((k = 0; k < 3; k++)); do
			m=${modes[$(((k + rep) % 3))]}
			set_lc_scan_max "$(lc_for "$m")"
			read -r c0 t0 <<<"$(stats)"
			vt_client tcp "$(vip "$m" "$j")" -n "$N" >"$VT_TMP/client.out"
			rc=$?
			read -r c1 t1 <<<"$(stats)"
			[ "$rc" -le 1 ] || die "sl_client exited $rc: $(tr '\n' ' ' <"$VT_TMP/client.out")"
			fails=$(vt_value "$VT_TMP/client.out" fail)
			runs=$((c1 - c0))
			[ "$runs" -gt 0 ] || die "connect4 did not run (size ${sizes[$j]}, $m)"
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${sizes[$j]}" "$m" "$rep" "$runs" \
				"$((t1 - t0))" "$fails" >>"$raw"
			printf '  %3s backends %-6s rep %d: %5d runs, %7.1f ns/run, %d failed\n' \
				"${sizes[$j]}" "$m" $((rep + 1)) "$runs" \
				"$(awk -v t=$((t1 - t0)) -v r="$runs" 'BEGIN { print t / r }')" "$fails" >&2
		done
	done
done
sysctl -qw kernel.bpf_stats_enabled="$old_stats"
set_lc_scan_max 0

# --- report ------------------------------------------------------------------------------------
echo "| view size | lb | connect4 ns/call (median, min-max) | x random |"
echo "|---:|---|---:|---:|"
sort -t$'\t' -k1,1n -k2,2 "$raw" | awk -F'\t' '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{
		key = $1 SUBSEP $2; n[key]++; v[key, n[key]] = $5 / $4
		if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 }
		fails += $6
	}
	END {
		split("random scan p2c", ms, " ")
		name["random"] = "random"; name["scan"] = "least_conn, exact scan"
		name["p2c"] = "least_conn, P2C"
		for (i = 1; i <= ns; i++) {
			s = order[i]
			for (k = 1; k <= 3; k++) {
				key = s SUBSEP ms[k]; lo[key] = hi[key] = v[key, 1]
				for (r = 1; r <= n[key]; r++) {
					a[r] = v[key, r]
					if (a[r] < lo[key]) lo[key] = a[r]
					if (a[r] > hi[key]) hi[key] = a[r]
				}
				med[key] = median(a, n[key])
			}
			for (k = 1; k <= 3; k++) {
				key = s SUBSEP ms[k]
				printf "| %d | %s | %.0f (%.0f-%.0f) | %.2f |\n", s, name[ms[k]], med[key], \
					lo[key], hi[key], med[key] / med[s, "random"]
			}
		}
		# Selection cost = lc - random at the same size. Scan: least squares a + b n;
		# P2C: its mean (flat in n).
		for (i = 1; i <= ns; i++) {
			s = order[i]; x = s; y = med[s, "scan"] - med[s, "random"]
			sx += x; sy += y; sxx += x * x; sxy += x * y
			dp += med[s, "p2c"] - med[s, "random"]; rnd += med[s, "random"]
			r = med[s, "scan"] / med[s, "p2c"]
			if (i > 1 && !cross && pr < 2 && r >= 2)
				cross = ps + (s - ps) * (2 - pr) / (r - pr)
			ps = s; pr = r
		}
		dp /= ns; rnd /= ns
		printf "\n"
		if (ns >= 2 && ns * sxx - sx * sx > 0) {
			b = (ns * sxy - sx * sy) / (ns * sxx - sx * sx); a0 = (sy - b * sx) / ns
			printf "Selection cost over random (ns): exact scan %.0f + %.1f per backend (fit); P2C %.0f (mean).\n", \
				a0, b, dp
			if (b > 0) {
				if (dp > 0)
					printf "The scan'"'"'s selection costs 2x P2C'"'"'s from n = %.1f on; ", (2 * dp - a0) / b
				printf "the scan'"'"'s whole connect4 costs 2x P2C'"'"'s at n = %.0f (fit)%s.\n", (rnd + 2 * dp - a0) / b, \
					cross ? sprintf(", %.0f (interpolated)", cross) : ""
			}
		}
		if (fails) printf "(%d connections failed; they count: connect4 ran for them)\n", fails
	}
' || die "report: awk failed"
echo
echo "($REPS reps x $N sequential TCP connections per row, $(nproc) CPUs, kernel $(uname -r)," \
	"$(($(date +%s) - START)) s)"
