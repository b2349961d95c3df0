#!/usr/bin/env bash
# tools/bench/mtls/report.sh RAW.tsv OUT.md - the report of tools/bench/mtls.sh from its raw
# data: one table, system x metric, each cell the median over the rounds with min-max, then the
# ratios between systems. Can be re-run on a kept .tsv.
set -u
[ $# -eq 2 ] || {
	echo "usage: $0 RAW.tsv OUT.md" >&2
	exit 2
}
raw=$1 md=$2
[ -s "$raw" ] || {
	echo "mtls-report: $raw is missing or empty" >&2
	exit 1
}
hdr() { sed -n "s/^# $1: //p" "$raw" | head -n 1; }

awk -F'\t' -v settings="$(sed -n '1s/^# sluice mtls bench raw data; //p' "$raw")" \
	-v host="$(hdr host)" -v date="$(hdr date)" -v machine="$(hdr machine)" \
	-v tools="$(hdr tools)" -v certs="$(hdr certs)" -v load="$(hdr load)" \
	-v quick="$(hdr quick)" -v stopped="$(hdr stopped)" \
	-v elapsed="$(sed -n 's/^# elapsed //p' "$raw" | tail -n 1)" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	MIN = a[1] + 0; MAX = a[n] + 0; CNT = n
	return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
function f0(x) { return sprintf("%.0f", x) }
# cell(SYS, KIND, FIELD): "median (min–max)", and MED[SYS, KIND, FIELD] for the ratios
function cell(s, kind, fld,   k, m) {
	k = kind SUBSEP s SUBSEP fld
	if (!(k in vals)) return "-"
	m = median(k); MED[s, kind, fld] = m
	return CNT > 1 ? sprintf("%s (%s–%s)", f0(m), f0(MIN), f0(MAX)) : f0(m)
}
# ratio(A, B, KIND, FIELD): median of A / median of B, to about 2 significant digits
function ratio(a, b, kind, fld,   r) {
	if (!((a, kind, fld) in MED) || !((b, kind, fld) in MED) || MED[b, kind, fld] <= 0) return "n/a"
	r = MED[a, kind, fld] / MED[b, kind, fld]
	return sprintf(r >= 10 ? "%.0f" : r >= 0.095 ? "%.2f" : "%.3f", r)
}
BEGIN {
	nsys = split("direct haproxy haproxy-full sluice-plain sluice-off sluice-strict", order, " ")
	desc["direct"] = "plaintext: the client connects to nginx on node B itself (the floor)"
	desc["haproxy"] = "the sidecar model: client → HAProxy on A (TCP mode, 198.18.0.1:15001) → TLS 1.3 with a client certificate (`ssl crt client.pem ca-file ca.pem verify required`) → HAProxy on B (`bind :15443 ssl crt server.pem ca-file ca.pem verify required`) → nginx over loopback; HAProxy'"'"'s default TLS session reuse"
	desc["haproxy-full"] = "the same pair with `no-ssl-reuse`: a full handshake (certificates, signatures) per connection"
	desc["sluice-plain"] = "sluiced on both nodes without any mtls key (a sluiced without mtls; tests this harness)"
	desc["sluice-off"] = "sluiced on both nodes with `mtls:` configured, the service `mtls: off`: the client connects to the VIP 198.19.0.10:80, rewritten at `connect()` to node B"
	desc["sluice-strict"] = "the same with `mtls: strict`: node A'"'"'s agent carries each connection through a TLS 1.3 tunnel to node B'"'"'s agent on :15008, which connects to nginx; TLS sessions resumed (tickets per node pair and identity), as HAProxy does by default"
}
/^#/ { next }
$1 == "ka" || $1 == "bulk" || $1 == "conn" {
	k = $1 SUBSEP $2
	add(k SUBSEP "rate", $4); add(k SUBSEP "p50", $5); add(k SUBSEP "p99", $6)
	add(k SUBSEP "mbit", $9); add("setup" SUBSEP $2, $10)
	if ($11 != "") add(k SUBSEP "cpu", $11)
	err[$2] += $7; runs[$2 SUBSEP $1]++; seen[$2] = 1
}
$1 == "skip" { skip[$2] = $3 }
$1 == "reuse" && $4 != "" { add("reuse" SUBSEP $2, $4) }
END {
	print "# sluice mTLS benchmark: " host ", " date
	print ""
	print "- Machine: " machine "."
	print "- Software: " tools "; " certs "."
	if (load != "") print "- Load average (1, 5, 15 min) when the run started: " load "; other work on the machine adds noise."
	print "- Run: " (quick == 1 ? "**QUICK=1** (a smoke run, not for quoting)" : "full") "; " settings "; " elapsed " s in all" (stopped != "" ? "; **" stopped "**" : "") "."
	print "- Two nodes: network namespaces A and B joined by one veth pair (198.18.0.1 and .2, no default route, the VIP range blackholed). The client (`sl_bench`) runs on A, one nginx worker on B. Each cell is the **median** over the rounds, with min–max in brackets. Every round of every system has its own fresh namespaces, processes and agents; the systems are interleaved (A B C, then B C A, ...); in each world the keep-alive runs come first and the new-connection run last, so that no run meets the TIME_WAIT sockets of another."
	print ""
	print "## Systems"
	print ""
	print "| system | path |"
	print "|---|---|"
	for (i = 1; i <= nsys; i++) {
		s = order[i]
		if (s in seen) print "| " s " | " desc[s] " |"
		else if (s in skip) print "| " s " | skipped: " skip[s] " |"
	}
	for (i = 1; i <= nsys; i++) {
		s = order[i]
		if (("reuse" SUBSEP s) in vals) {
			m = median("reuse" SUBSEP s)
			reuse = reuse (reuse ? "; " : "") s " " f0(m) " % (" f0(MIN) "–" f0(MAX) ")"
		}
	}
	if (reuse) {
		print ""
		print "TLS sessions resumed on node B (median and min–max; HAProxy: its `SslFrontendSessionReuse_pct` over the last second of the new-connection run; sluice: `sluice_mtls_resumed_total` over all the inbound tunnels of the world): " reuse "."
	}
	print ""
	print "## Results"
	print ""
	print "*New connections*: `connect()`, one HTTP/1.1 GET with `Connection: close`, read to EOF, `close()`; the latency is of the whole operation. *Keep-alive*: small GETs one after another on open connections; the latency is of one request. *1 MiB*: GETs of a 1 MiB file on open connections."
	print ""
	print "| system | new conn/s | new conn p50 µs | new conn p99 µs | keep-alive req/s | keep-alive p50 µs | keep-alive p99 µs | 1 MiB Mbit/s | rounds | errors |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= nsys; i++) {
		s = order[i]
		if (!(s in seen)) { if (s in skip) print "| " s " | skipped | | | | | | | 0 | |"; continue }
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |\n", s,
			cell(s, "conn", "rate"), cell(s, "conn", "p50"), cell(s, "conn", "p99"),
			cell(s, "ka", "rate"), cell(s, "ka", "p50"), cell(s, "ka", "p99"),
			cell(s, "bulk", "mbit"), runs[s SUBSEP "conn"], err[s]
	}
	print ""
	print "## CPU time of the systems'"'"' own processes"
	print ""
	print "User and system time of HAProxy (both) or sluiced (both agents) during a run, from `/proc/PID/stat`, per operation: per new connection, per keep-alive request, per 1 MiB GET. The kernel'"'"'s work in softirq context (TCP, and kTLS where it is used) is not in it, and neither is the client'"'"'s nor nginx'"'"'s. Approximate: 10 ms clock ticks, and the operations of the warm-up are estimated from the rate."
	print ""
	print "| system | µs per new connection | µs per keep-alive request | µs per 1 MiB |"
	print "|---|---:|---:|---:|"
	for (i = 1; i <= nsys; i++) {
		s = order[i]
		if (!(s in seen)) continue
		if (!(("conn" SUBSEP s SUBSEP "cpu") in vals)) { print "| " s " | - | - | - |"; continue }
		printf "| %s | %s | %s | %s |\n", s, cell(s, "conn", "cpu"), cell(s, "ka", "cpu"), cell(s, "bulk", "cpu")
	}
	print ""
	print "## Ratios"
	print ""
	print "Median ÷ median. For rates and throughput above 1 means the first system is faster; for latency below 1 means it is faster."
	print ""
	print "| ratio | new conn/s | new conn p99 | keep-alive req/s | keep-alive p50 | keep-alive p99 | 1 MiB Mbit/s | CPU per new conn | CPU per MiB |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	np = split("haproxy/direct haproxy-full/direct haproxy-full/haproxy sluice-off/direct sluice-strict/direct sluice-strict/haproxy sluice-strict/haproxy-full sluice-strict/sluice-off", pairs, " ")
	for (i = 1; i <= np; i++) {
		split(pairs[i], p, "/")
		if (!(p[1] in seen) || !(p[2] in seen)) {
			if ((p[1] in skip) || (p[2] in skip)) print "| " p[1] " ÷ " p[2] " | n/a (skipped) | | | | | | | |"
			continue
		}
		printf "| %s ÷ %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], p[2],
			ratio(p[1], p[2], "conn", "rate"), ratio(p[1], p[2], "conn", "p99"),
			ratio(p[1], p[2], "ka", "rate"), ratio(p[1], p[2], "ka", "p50"),
			ratio(p[1], p[2], "ka", "p99"), ratio(p[1], p[2], "bulk", "mbit"),
			ratio(p[1], p[2], "conn", "cpu"), ratio(p[1], p[2], "bulk", "cpu")
	}
	print ""
	print "Goals (issue 18): sluice-strict ≥ 1.5 × haproxy on new connections; sluice-strict ≥ 0.8 × sluice-off on 1 MiB throughput where kTLS is available."
	print ""
	print "Reproduce: `sudo tools/bench/mtls.sh --out FILE.md` (`QUICK=1` for a short run); `tools/bench/mtls/report.sh FILE.tsv FILE.md` rebuilds this page from the raw data."
}' "$raw" >"$md.tmp" && mv -f "$md.tmp" "$md" || {
	rm -f "$md.tmp"
	echo "mtls-report: cannot write $md" >&2
	exit 1
}
