#!/usr/bin/env bash
# tools/bench/report.sh RAW.tsv OUT.md OUT.png - the report of `make bench` from its raw data
# (tools/bench/bench.sh writes RAW.tsv). Medians over the repetitions, min-max beside them,
# ratios against direct and against each baseline, and two gnuplot PNGs: OUT.png, the
# connection rate against the number of services, and OUT-change.png (OUT.png's name with
# -change before .png), one backend change's latency against the number of services for
# sluice and iptables. Can be re-run on a kept .tsv.
set -u
[ $# -eq 3 ] || {
	echo "usage: $0 RAW.tsv OUT.md OUT.png" >&2
	exit 2
}
raw=$1 md=$2 png=$3
cpng=${png%.png}-change.png
[ -s "$raw" ] || {
	echo "report: $raw is missing or empty" >&2
	exit 1
}
tmp=$(mktemp -d /tmp/sl-bench-report.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

hdr() { sed -n "s/^# $1: //p" "$raw" | head -n 1; }
# x_axis FILE...: the log-scale x axis of a plot over the first column of FILEs (numbers of
# services): xmin and xmax (half the smallest, twice the largest) and xtics (one per value).
x_axis() {
	local xs
	xs=$(cut -d' ' -f1 "$@" | sort -n -u | tr '\n' ' ')
	xmin=$(awk '{ print $1 / 2; exit }' <<<"$xs")
	xmax=$(awk '{ print $NF * 2 }' <<<"$xs")
	xtics=$(awk '{ for (i = 1; i <= NF; i++) printf "%s\"%s\" %s", (i > 1 ? ", " : ""), $i, $i }' <<<"$xs")
}
settings=$(sed -n '1s/^# sluice bench raw data; //p' "$raw")
elapsed=$(sed -n 's/^# elapsed //p' "$raw" | tail -n 1)
quick=$(hdr quick)
limits=$(hdr limits)

# Markdown (and the plot's data files) from the raw lines.
awk -F'\t' -v tmp="$tmp" -v png="$(basename "$png")" -v cpng="$(basename "$cpng")" \
	-v settings="$settings" -v limits="$limits" \
	-v host="$(hdr host)" -v date="$(hdr date)" -v machine="$(hdr machine)" \
	-v tools="$(hdr tools)" -v elapsed="${elapsed:-?}" -v load="$(hdr load)" -v quick="${quick:-0}" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	MIN = a[1] + 0; MAX = a[n] + 0; CNT = n
	return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
# chg(SYSTEM, SERVICES, CHANGE_MS, WORK_MS): one run of one backend change, for the table and
# the plot of change latency against the number of services.
function chg(sys, n, ms, work) {
	if (!((n + 0) in chseen)) { chseen[n + 0] = 1; chn[++nchn] = n + 0 }
	add("chg" SUBSEP sys SUBSEP (n + 0) SUBSEP "change", ms)
	add("chg" SUBSEP sys SUBSEP (n + 0) SUBSEP "work", work)
}
function mib(x) { return sprintf("%.1f", x / 1048576) }
function f0(x) { return sprintf("%.0f", x) }
function f1(x) { return sprintf("%.1f", x) }
function r2(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
BEGIN {
	nsys = split("direct sluice iptables nftables haproxy", order, " ")
	for (i = 1; i <= nsys; i++) rank[order[i]] = i
}
/^#/ { next }
$1 == "conn" || $1 == "ka" || $1 == "bulk" {
	k = $1 SUBSEP $2 SUBSEP $3
	add(k SUBSEP "rate", $5); add(k SUBSEP "p50", $6); add(k SUBSEP "p99", $7)
	add(k SUBSEP "mbit", $10)
	err[k] += $8; ops[k] += $9
	seen[$1 SUBSEP $2 SUBSEP $3] = 1
	if ($1 == "conn" && !(($3) in nseen)) { nseen[$3] = 1; ns[++nn] = $3 + 0 }
	if ($1 != "conn") kan = $3
}
$1 == "skip" { skip[$2 SUBSEP $3] = $5; if (!(($3) in nseen)) { nseen[$3] = 1; ns[++nn] = $3 + 0 } next }
$1 == "cost" {
	if (!(($3) in cseen)) { cseen[$3] = 1; cn[++ncn] = $3 }
	if (!(($4) in pseen)) { pseen[$4] = 1; prog[++np] = $4 }
	cruns[$3 SUBSEP $4] = $5; cns[$3 SUBSEP $4] = $6; cops[$3] = $7
}
$1 == "cp" {
	cpsize = $3
	add("cp" SUBSEP $2 SUBSEP "apply", $5); add("cp" SUBSEP $2 SUBSEP "change", $6)
	add("cp" SUBSEP $2 SUBSEP "work", $7)
	if ($2 == "sluice" || $2 == "iptables") { split($3, nb, "x"); chg($2, nb[1], $6, $7) }
}
$1 == "chg" { chg($2, $3, $5, $6) }
$1 == "mem" {
	if (!(($2) in mseen)) { mseen[$2] = 1; mlb[++nml] = $2 }
	msize = $3; mbytes[$2] = $4; mmaps[$2] = $5; mfam[$2] = $6; mfmaps[$2] = $7
	mfbytes[$2] = $8; minmaps[$2] = $9; minbytes[$2] = $10
}
END {
	# sizes ascending
	for (i = 2; i <= nn; i++) { t = ns[i]; for (j = i - 1; j >= 1 && ns[j] > t; j--) ns[j + 1] = ns[j]; ns[j + 1] = t }
	out = tmp "/report.md"
	print "# sluice benchmark: " host ", " date > out
	print "" > out
	print "- Machine: " machine "." > out
	print "- Software: " tools "." > out
	if (load != "") print "- Load average (1, 5, 15 min) when the run started: " load "; other work on the machine adds noise." > out
	print "- Run: " (quick == 1 ? "**QUICK=1** (fewer repetitions, sizes and seconds: a smoke run, not for quoting)" : "full") "; " settings "; " elapsed " s in all." > out
	print "- Every figure is the **median** of its runs, with min–max beside it. Every run has its own fresh network namespaces (backends, router, node), and the systems are interleaved (each round: direct, sluice, iptables, nftables, haproxy, rotated by one), so no system inherits TIME_WAIT or PAWS state from another." > out
	print "" > out
	print "## Systems" > out
	print "" > out
	print "Three nginx backends (one worker each) in their own namespaces behind a router namespace; the clients run in the node namespace, in a cgroup (the agent'\''s, for sluice). The measured service has a VIP (198.19.0.10:80) and the three backends; every other service is a decoy with one backend, installed alike in every system (at 10 000 services: 9 999 decoys)." > out
	print "" > out
	print "| system | what the client connects to, and what picks the backend |" > out
	print "|---|---|" > out
	print "| direct | the backends themselves, in turn: no balancer at all (the floor) |" > out
	print "| sluice | the VIP; `cgroup/connect4` picks a backend (`lb: random`) and rewrites the socket'\''s destination once, at `connect()` |" > out
	print "| iptables | the VIP; kube-proxy'\''s chains in the nat OUTPUT hook: `KUBE-SERVICES` (one rule per service, the measured one in the middle) → `KUBE-SVC-*` (statistic random) → `KUBE-SEP-*` DNAT; conntrack NATs every packet |" > out
	print "| nftables | the VIP; kube-proxy'\''s nftables layout: a verdict map VIP . proto . port → service chain → `numgen random` vmap → endpoint chain with `dnat`; conntrack NATs every packet |" > out
	print "| haproxy | the VIP, on which HAProxy (TCP mode, 2 threads) listens in the node namespace: one listener per service, two TCP connections per client connection |" > out
	print "" > out

	print "## New connections" > out
	print "" > out
	print "One operation: `socket()`, `connect()`, one HTTP/1.1 GET (`Connection: close`), read the response until the server closes, `close()`; several clients at once (see Run above). The latency is of the whole operation." > out
	print "" > out
	print "| services | system | conn/s | min–max | p50 µs | p99 µs | × direct | runs | errors |" > out
	print "|---:|---|---:|---|---:|---:|---:|---:|---:|" > out
	for (i = 1; i <= nn; i++) {
		n = ns[i]
		d = ("conn" SUBSEP "direct" SUBSEP n SUBSEP "rate") in vals ? median("conn" SUBSEP "direct" SUBSEP n SUBSEP "rate") : 0
		for (s = 1; s <= nsys; s++) {
			k = "conn" SUBSEP order[s] SUBSEP n
			if (!((k SUBSEP "rate") in vals) && ((order[s] SUBSEP n) in skip)) {
				printf "| %d | %s | n/a | - | - | - | - | 0 | 0 |\n", n, order[s] > out
				skipped = skipped sprintf("%s%s at %d services: %s", skipped ? "; " : "", order[s], n, skip[order[s] SUBSEP n])
				continue
			}
			if (!((k SUBSEP "rate") in vals)) continue
			r = median(k SUBSEP "rate"); lo = MIN; hi = MAX; c = CNT
			med[order[s] SUBSEP n] = r
			p50 = median(k SUBSEP "p50"); p99 = median(k SUBSEP "p99")
			medp99[order[s] SUBSEP n] = p99
			printf "| %d | %s | %s | %s–%s | %s | %s | %s | %d | %d |\n", n, order[s], f0(r), f0(lo), f0(hi), f0(p50), f0(p99), r2(r, d), c, err[k] > out
			printf "%d %s %s %s\n", n, r, lo, hi > (tmp "/plot-" order[s] ".dat")
		}
	}
	if (skipped) { print "" > out; print "n/a: not possible on this machine: " skipped "." > out }
	print "" > out
	print "sluice against each system, new connections per second (sluice ÷ other: above 1, sluice is faster) and p99 latency (sluice ÷ other: below 1, sluice is faster):" > out
	print "" > out
	print "| services | vs direct | vs iptables | vs nftables | vs haproxy | p99 vs direct | p99 vs iptables | p99 vs nftables | p99 vs haproxy |" > out
	print "|---:|---:|---:|---:|---:|---:|---:|---:|---:|" > out
	for (i = 1; i <= nn; i++) {
		n = ns[i]; line = "| " n
		for (s = 1; s <= nsys; s++) if (order[s] != "sluice") line = line " | " (((order[s] SUBSEP n) in med) ? r2(med["sluice" SUBSEP n], med[order[s] SUBSEP n]) : "n/a")
		for (s = 1; s <= nsys; s++) if (order[s] != "sluice") line = line " | " (((order[s] SUBSEP n) in med) ? r2(medp99["sluice" SUBSEP n], medp99[order[s] SUBSEP n]) : "n/a")
		print line " |" > out
	}
	print "" > out
	print "![new connections per second against the number of services](" png ")" > out
	print "" > out

	print "## Keep-alive" > out
	print "" > out
	print "Once connected: small GETs one after another on open connections (requests/s, latency of one request), and 1 MiB GETs (Mbit/s), at " kan " service(s)." > out
	print "" > out
	print "| system | req/s | min–max | p99 µs | × direct | 1 MiB GETs Mbit/s | min–max | × direct | runs |" > out
	print "|---|---:|---|---:|---:|---:|---|---:|---:|" > out
	dk = ("ka" SUBSEP "direct" SUBSEP kan SUBSEP "rate") in vals ? median("ka" SUBSEP "direct" SUBSEP kan SUBSEP "rate") : 0
	db = ("bulk" SUBSEP "direct" SUBSEP kan SUBSEP "mbit") in vals ? median("bulk" SUBSEP "direct" SUBSEP kan SUBSEP "mbit") : 0
	for (s = 1; s <= nsys; s++) {
		k = "ka" SUBSEP order[s] SUBSEP kan; kb = "bulk" SUBSEP order[s] SUBSEP kan
		if (!((k SUBSEP "rate") in vals) || !((kb SUBSEP "mbit") in vals)) continue
		r = median(k SUBSEP "rate"); lo = MIN; hi = MAX; c = CNT
		p99 = median(k SUBSEP "p99")
		b = median(kb SUBSEP "mbit"); blo = MIN; bhi = MAX
		kmed[order[s]] = r; bmed[order[s]] = b
		printf "| %s | %s | %s–%s | %s | %s | %s | %s–%s | %s | %d |\n", order[s], f0(r), f0(lo), f0(hi), f0(p99), r2(r, dk), f0(b), f0(blo), f0(bhi), r2(b, db), c > out
	}
	print "" > out
	line = "| sluice ÷ other, req/s"; line2 = "| sluice ÷ other, Mbit/s"
	hd = "| |"; sep = "|---|"
	for (s = 1; s <= nsys; s++) if (order[s] != "sluice") {
		hd = hd " " order[s] " |"; sep = sep "---:|"
		line = line " | " r2(kmed["sluice"], kmed[order[s]]); line2 = line2 " | " r2(bmed["sluice"], bmed[order[s]])
	}
	print hd > out; print sep > out; print line " |" > out; print line2 " |" > out
	print "" > out

	print "## In-kernel cost of each sluice program" > out
	print "" > out
	print "`run_time_ns / run_cnt` with `kernel.bpf_stats_enabled=1`, during a run of new connections of its own (the statistics cost time, so the runs above have them off). The figures include the two clock reads the statistics add per run." > out
	print "" > out
	line = "| program"; sep = "|---"
	for (i = 1; i <= ncn; i++) { line = line " | ns/run, " cn[i] " svc | runs, " cn[i] " svc"; sep = sep "|---:|---:" }
	print line " |" > out; print sep "|" > out
	for (p = 1; p <= np; p++) {
		any = 0
		for (i = 1; i <= ncn; i++) if (cruns[cn[i] SUBSEP prog[p]] > 0) any = 1
		if (!any) { idle = idle (idle ? ", " : "") "`" prog[p] "`"; continue }
		line = "| `" prog[p] "`"
		for (i = 1; i <= ncn; i++) {
			k = cn[i] SUBSEP prog[p]
			line = line " | " (cruns[k] > 0 ? f0(cns[k]) : "-") " | " (cruns[k] + 0)
		}
		print line " |" > out
	}
	print "" > out
	line = ""; tot = ""
	for (i = 1; i <= ncn; i++) {
		line = line (i > 1 ? "; " : "") cops[cn[i]] " connections at " cn[i] " service(s)"
		sum = 0
		for (p = 1; p <= np; p++) sum += cns[cn[i] SUBSEP prog[p]] * cruns[cn[i] SUBSEP prog[p]]
		tot = tot (i > 1 ? ", " : "") (cops[cn[i]] > 0 ? f0(sum / cops[cn[i]]) : "-") " ns at " cn[i] " service(s)"
	}
	print "During " line ". BPF time per connection, all programs together: " tot "." (idle ? " Not run by these IPv4 TCP connections: " idle "." : "") > out
	print "" > out

	print "## Control plane" > out
	print "" > out
	print "**" cpsize "** (services × backends). *Apply*: from nothing to serving: for sluice from starting `sluiced` to its `ready` log line (loading and attaching the programs included), for iptables one `iptables-restore` of kube-proxy'\''s chains into an empty table, for nftables one `nft -f` of kube-proxy'\''s nftables ruleset. *One backend change*: one backend of one service replaced: for sluice the config file atomically replaced until `config applied` is logged (this includes the agent'\''s 200 ms debounce of file events; *work* is from its `reloading` to its `config applied` line), for iptables kube-proxy'\''s partial `iptables-restore --noflush` of the changed chains, for nftables an incremental `nft -f` transaction. Rule generation (kube-proxy'\''s own work) is not counted for iptables and nftables; sluice'\''s times include parsing its YAML." > out
	print "" > out
	print "Every service of *sluice* has `lb: random`; *sluice (maglev)* is the same services with `lb: maglev` (a Maglev lookup table per service, each an inner map of `sluice_tables`)." > out
	print "" > out
	print "| system | apply s | min–max | one backend change ms | min–max | work ms | runs |" > out
	print "|---|---:|---|---:|---|---:|---:|" > out
	split("sluice sluice-maglev iptables nftables", cps, " ")
	cplabel["sluice-maglev"] = "sluice (maglev)"
	for (s = 1; s <= 4; s++) {
		k = "cp" SUBSEP cps[s]
		if (!((k SUBSEP "apply") in vals)) continue
		a = median(k SUBSEP "apply"); alo = MIN; ahi = MAX; c = CNT
		ch = median(k SUBSEP "change"); clo = MIN; chi = MAX
		w = median(k SUBSEP "work")
		cpa[cps[s]] = a; cpc[cps[s]] = ch; cpw[cps[s]] = w
		printf "| %s | %.2f | %.2f–%.2f | %s | %s–%s | %s | %d |\n", ((cps[s] in cplabel) ? cplabel[cps[s]] : cps[s]), a / 1000, alo / 1000, ahi / 1000, f0(ch), f0(clo), f0(chi), f0(w), c > out
	}
	print "" > out
	printf "sluice ÷ other (below 1: sluice is faster): apply %s × iptables, %s × nftables; one backend change %s × iptables, %s × nftables (work only: %s ×, %s ×).\n", r2(cpa["sluice"], cpa["iptables"]), r2(cpa["sluice"], cpa["nftables"]), r2(cpc["sluice"], cpc["iptables"]), r2(cpc["sluice"], cpc["nftables"]), r2(cpw["sluice"], cpw["iptables"]), r2(cpw["sluice"], cpw["nftables"]) > out
	if ("sluice-maglev" in cpa)
		printf "\nsluice (maglev): apply %s × iptables, %s × sluice (random); one backend change %s × iptables.\n", r2(cpa["sluice-maglev"], cpa["iptables"]), r2(cpa["sluice-maglev"], cpa["sluice"]), r2(cpc["sluice-maglev"], cpc["iptables"]) > out
	print "" > out

	if (nml) {
		print "### Kernel memory of sluice'\''s maps" > out
		print "" > out
		print "At **" msize "**, once `ready` (before the change), in each lb: `bytes_memlock` of `bpftool map show`, summed over the agent'\''s own maps: those pinned under its bpffs directory, those its programs use, and the inner maps of its map-in-maps (`sluice_table`: one per service and generation, held only by `sluice_tables`). No other agent'\''s map is counted. Most maps are sized by `agent.limits`" (limits != "" ? " (here " limits ")" : "") ", not by the services installed. A family is the maps of one name (a pinned map is named by its pin)." > out
		print "" > out
		print "| lb | maps | kernel memory MiB | largest family | its maps | its MiB | inner maps | inner maps MiB |" > out
		print "|---|---:|---:|---|---:|---:|---:|---:|" > out
		for (i = 1; i <= nml; i++) {
			l = mlb[i]
			printf "| %s | %d | %s | `%s` | %d | %s | %d | %s |\n", l, mmaps[l], mib(mbytes[l]), mfam[l], mfmaps[l], mib(mfbytes[l]), minmaps[l], mib(minbytes[l]) > out
		}
		print "" > out
	}

	if (nchn) {
		for (i = 2; i <= nchn; i++) { t = chn[i]; for (j = i - 1; j >= 1 && chn[j] > t; j--) chn[j + 1] = chn[j]; chn[j + 1] = t }
		print "### One backend change against the number of services" > out
		print "" > out
		print "The one backend change above (services of " substr(cpsize, index(cpsize, "x") + 1) " backends each), for sluice (`lb: random`) and iptables, at each number of services; each size in a fresh world (at " substr(cpsize, 1, index(cpsize, "x") - 1) " services: the runs above)." > out
		print "" > out
		print "| services | sluice change ms | min–max | sluice work ms | iptables change ms | min–max | sluice ÷ iptables | runs |" > out
		print "|---:|---:|---|---:|---:|---|---:|---:|" > out
		for (i = 1; i <= nchn; i++) {
			n = chn[i]; ks = "chg" SUBSEP "sluice" SUBSEP n; ki = "chg" SUBSEP "iptables" SUBSEP n
			if (!((ks SUBSEP "change") in vals) || !((ki SUBSEP "change") in vals)) continue
			sc = median(ks SUBSEP "change"); slo = MIN; shi = MAX; c = CNT
			sw = median(ks SUBSEP "work"); wlo = MIN; whi = MAX
			ic = median(ki SUBSEP "change"); ilo = MIN; ihi = MAX
			if (CNT < c) c = CNT
			printf "| %d | %s | %s–%s | %s | %s | %s–%s | %s | %d |\n", n, f0(sc), f0(slo), f0(shi), f0(sw), f1(ic), f1(ilo), f1(ihi), r2(sc, ic), c > out
			printf "%d %s %s %s\n", n, sc, slo, shi > (tmp "/chg-sluice.dat")
			printf "%d %s %s %s\n", n, sw, wlo, whi > (tmp "/chg-sluice-work.dat")
			printf "%d %s %s %s\n", n, ic, ilo, ihi > (tmp "/chg-iptables.dat")
		}
		print "" > out
		print "![one backend change against the number of services](" cpng ")" > out
		print "" > out
	}
	print "Reproduce: `sudo make bench` (or `sudo make bench QUICK=1`); the raw data is the `.tsv` beside this file, and `tools/bench/report.sh` turns it into this page." > out
	close(out)
}' "$raw" || exit 1

# The plot: conn/s against services, one line per system, min-max as error bars.
# Each system's points are shifted a little along x, so that the error bars do not overlap.
plots=
k=0
for s in direct sluice iptables nftables haproxy; do
	f=$tmp/plot-$s.dat
	k=$((k + 1))
	[ -s "$f" ] || continue
	sort -n -o "$f" "$f"
	plots="$plots${plots:+, }'$f' using (\$1*1.07**($k-3)):2:3:4 with yerrorlines ls $k title '$s'"
done
[ -n "$plots" ] || {
	echo "report: no connection data to plot" >&2
	exit 1
}
x_axis "$tmp"/plot-*.dat
gnuplot <<EOF || exit 1
set terminal pngcairo size 900,560 font 'sans,11'
set output '$png'
set title "New connections per second (connect + GET + close), median and min-max\n$(hdr host), $(hdr date)$([ "${quick:-0}" = 1 ] && echo ', QUICK run')"
set xlabel 'services installed (the measured one + decoys)'
set ylabel 'connections per second'
set logscale x
set xrange [$xmin:$xmax]
set xtics ($xtics)
set yrange [0:*]
set key outside right
set grid ytics
set style line 1 lc rgb '#555555' lw 2 dt 2 pt 1
set style line 2 lc rgb '#1f6fd1' lw 3 pt 7
set style line 3 lc rgb '#d62728' lw 2 pt 5
set style line 4 lc rgb '#ff8c00' lw 2 pt 9
set style line 5 lc rgb '#2ca02c' lw 2 pt 11
$(printf 'plot %s\n' "$plots")
EOF

# The second plot: one backend change (ms, log scale) against services, sluice and iptables.
[ -s "$tmp/chg-sluice.dat" ] || {
	echo "report: no change-latency data to plot" >&2
	exit 1
}
x_axis "$tmp/chg-sluice.dat"
cpb=$(awk -F'\t' '$1 == "cp" { n = split($3, a, "x"); print a[n]; exit }' "$raw")
gnuplot <<EOF || exit 1
set terminal pngcairo size 900,560 font 'sans,11'
set output '$cpng'
set title "One backend change, handed over to applied: median and min-max\n$(hdr host), $(hdr date)$([ "${quick:-0}" = 1 ] && echo ', QUICK run')"
set xlabel 'services installed (${cpb:-?} backends each)'
set ylabel 'milliseconds (log scale)'
set logscale xy
set xrange [$xmin:$xmax]
set xtics ($xtics)
set key outside right
set grid ytics
set style line 1 lc rgb '#1f6fd1' lw 3 pt 7
set style line 2 lc rgb '#1f6fd1' lw 2 dt 2 pt 6
set style line 3 lc rgb '#d62728' lw 2 pt 5
plot '$tmp/chg-sluice.dat' using (\$1*0.93):2:3:4 with yerrorlines ls 1 title 'sluice (file replaced)', \\
	'$tmp/chg-sluice-work.dat' using 1:2:3:4 with yerrorlines ls 2 title 'sluice, work only', \\
	'$tmp/chg-iptables.dat' using (\$1*1.07):2:3:4 with yerrorlines ls 3 title 'iptables --noflush'
EOF
mv -f "$tmp/report.md" "$md"
