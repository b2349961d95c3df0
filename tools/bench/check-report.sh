#!/usr/bin/env bash
# tools/bench/check-report.sh FILE - checks that a `make bench` report is well-formed: every
# section is there, every system has a row in every table (new connections at each number of
# services, keep-alive, control plane with sluice in both lbs), the kernel memory of sluice's
# maps has a row for lb random and lb maglev (maglev with its inner maps), the change latency
# against services has at least two sizes, every figure is a positive number (a work time or
# a count of inner maps may be 0), and the two plots it embeds (new connections; change
# latency, in the control plane section) exist and are PNGs. It does not judge the figures.
# Exit 0 if so, 1 with the reasons.
set -u
[ $# -eq 1 ] || {
	echo "usage: $0 REPORT.md" >&2
	exit 2
}
f=$1
[ -s "$f" ] || {
	echo "check-report: $f is missing or empty" >&2
	exit 1
}

errf=$(mktemp /tmp/sl-check-report.XXXXXX) || exit 1
trap 'rm -f "$errf"' EXIT
awk -v systems="direct sluice iptables nftables haproxy" '
function trim(s) { gsub(/^[ \t`]+|[ \t`]+$/, "", s); return s }
function pos(s) { return s ~ /^[0-9]+(\.[0-9]+)?$/ && s + 0 > 0 }
function range(s,   a) { return split(s, a, "–") == 2 && pos(a[1]) && pos(a[2]) && a[1] + 0 <= a[2] + 0 }
function nonneg(s) { return s ~ /^[0-9]+(\.[0-9]+)?$/ }
function bad(msg) { print "check-report: " msg; errors++ }
BEGIN { nsys = split(systems, sys, " ") }
/^## / { sec = substr($0, 4); secs[sec] = 1; tbl = 0; h1 = ""; next }
/^\|/ {
	n = split($0, raw, "|")
	nc = 0
	for (i = 2; i < n; i++) c[++nc] = trim(raw[i])
	if (c[1] ~ /^-*:?-+:?$/ || c[2] ~ /^-+:?$/) next       # separator row
	if (c[1] == "services" || c[1] == "system" || c[1] == "program" || c[1] == "lb" || c[1] == "") {
		tbl++; head[sec, tbl] = c[2]; h1 = c[1]; next     # a header row starts a table
	}
	if (sec == "New connections" && tbl == 1) {
		key = c[1] SUBSEP c[2]
		if (!pos(c[1])) bad("new connections: bad number of services: " $0)
		if (!(c[1] in sizes)) { sizes[c[1]] = 1; nsizes++ }
		conn[key] = 1
		if (c[3] == "n/a") next                                # not possible on this machine
		if (nc != 9 || !pos(c[3]) || !range(c[4]) || !pos(c[5]) || !pos(c[6]) || !pos(c[7]) || !pos(c[8]))
			bad("new connections: a figure is missing or not positive: " $0)
	} else if (sec == "New connections" && tbl == 2) {
		vs[c[1]] = 1
		for (i = 2; i <= 9; i++) if (!pos(c[i]) && !(c[i] == "n/a" && i != 2 && i != 6)) { bad("sluice against each system: not a positive ratio: " $0); break }
		if (nc != 9) bad("sluice against each system: expected 9 columns: " $0)
	} else if (sec == "Keep-alive" && tbl == 1) {
		ka[c[1]] = 1
		if (nc != 9 || !pos(c[2]) || !range(c[3]) || !pos(c[4]) || !pos(c[5]) || !pos(c[6]) || !range(c[7]) || !pos(c[8]) || !pos(c[9]))
			bad("keep-alive: a figure is missing or not positive: " $0)
	} else if (sec == "Keep-alive" && tbl == 2) {
		karatio++
		for (i = 2; i <= nc; i++) if (!pos(c[i])) { bad("keep-alive ratios: not a positive ratio: " $0); break }
	} else if (sec ~ /^In-kernel cost/) {
		cost++
		for (i = 2; i <= nc; i++) if (c[i] != "-" && !pos(c[i])) { bad("in-kernel cost: not a positive figure: " $0); break }
		if (!pos(c[2])) bad("in-kernel cost: no figure at the smallest number of services: " $0)
	} else if (sec == "Control plane" && h1 == "system") {
		cp[c[1]] = 1
		if (nc != 7 || !pos(c[2]) || !range(c[3]) || !pos(c[4]) || !range(c[5]) || !nonneg(c[6]) || !pos(c[7]))
			bad("control plane: a figure is missing or not positive: " $0)
	} else if (sec == "Control plane" && h1 == "lb") {
		mem[c[1]] = 1
		if (nc != 8 || !pos(c[2]) || !pos(c[3]) || c[4] !~ /^[A-Za-z_.][A-Za-z0-9_.]*$/ || !pos(c[5]) || !pos(c[6]) || c[7] !~ /^[0-9]+$/ || !nonneg(c[8]))
			bad("kernel memory of the maps: a figure is missing or not positive: " $0)
		else if (c[1] == "maglev" && (c[7] + 0 < 1 || !pos(c[8])))
			bad("kernel memory of the maps: maglev without its inner maps (tables): " $0)
	} else if (sec == "Control plane" && h1 == "services") {
		if (nc != 8 || c[1] !~ /^[0-9]+$/ || !pos(c[1]) || !pos(c[2]) || !range(c[3]) || !nonneg(c[4]) || !pos(c[5]) || !range(c[6]) || !pos(c[7]) || !pos(c[8]))
			bad("change against services: a figure is missing or not positive: " $0)
		else if (c[1] in chsize)
			bad("change against services: " c[1] " services twice: " $0)
		chsize[c[1]] = 1; nchsize++
	} else if (sec == "Control plane") {
		bad("control plane: a row of an unknown table: " $0)
	}
	next
}
/^!\[[^]]*\]\([^)]+\.png\)/ {
	m = $0; sub(/^!\[[^]]*\]\(/, "", m); sub(/\).*/, "", m)
	pngs = pngs m "\n"; npng++
	if (sec == "Control plane") cppng = m
}
END {
	split("New connections|Keep-alive|In-kernel cost of each sluice program|Control plane", need, "|")
	for (i in need) if (!(need[i] in secs)) bad("no section \"## " need[i] "\"")
	if (nsizes == 0) bad("new connections: no rows")
	for (n in sizes) {
		for (s = 1; s <= nsys; s++) if (!((n SUBSEP sys[s]) in conn)) bad("new connections: no row for " sys[s] " at " n " services")
		if (!(n in vs)) bad("sluice against each system: no row for " n " services")
	}
	for (s = 1; s <= nsys; s++) if (!(sys[s] in ka)) bad("keep-alive: no row for " sys[s])
	if (karatio < 2) bad("keep-alive: the sluice ratio rows are missing")
	if (cost < 1) bad("in-kernel cost: no program row")
	split("sluice|sluice (maglev)|iptables|nftables", cps, "|")
	for (s = 1; s <= 4; s++) if (!(cps[s] in cp)) bad("control plane: no row for " cps[s])
	split("random maglev", lbs, " ")
	for (s = 1; s <= 2; s++) if (!(lbs[s] in mem)) bad("kernel memory of the maps: no row for lb " lbs[s])
	if (nchsize < 2) bad("change against services: " (nchsize + 0) " sizes, not at least 2")
	if (npng < 2) bad("expected two embedded PNG plots, found " (npng + 0))
	if (cppng == "") bad("control plane: no embedded plot of the change against services")
	printf "%s", pngs > "/dev/stderr"
	exit errors ? 1 : 0
}' "$f" 2>"$f.check.$$"
rc=$?
pngs=$(grep '\.png$' "$f.check.$$")
rm -f "$f.check.$$"
for png in $pngs; do
	case $png in
	/*) p=$png ;;
	*) p=$(dirname "$f")/$png ;;
	esac
	if [ ! -s "$p" ] || [ "$(head -c 8 "$p" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then
		echo "check-report: the plot $p is missing or not a PNG"
		rc=1
	fi
done
if [ "$rc" -eq 0 ]; then
	echo "check-report: $f is well-formed (every system present, every figure positive, plots" \
		"$(echo $pngs))"
fi
exit "$rc"
