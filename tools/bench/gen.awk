# tools/bench/gen.awk - the service tables of `make bench`, the same for every system.
#
#   awk -f gen.awk -v kind=KIND -v n=SERVICES -v b=BACKENDS [-v measured=1] [-v change=1]
#       [-v lb=LB]
#
# SERVICES services in all. With measured=1 (the data-plane runs) one of them is the measured
# service "bench", VIP 198.19.0.10:80 with the three real backends 198.18.1.2-4:80, placed in
# the middle of the list (so iptables' linear KUBE-SERVICES chain walks half the decoys before
# it); the others are decoys with BACKENDS backends each. Decoy i has VIP
# 198.19.(1 + i/250).(1 + i%250):80 and backends 198.18.(2 + k/250 % 250).(1 + k%250):(80 + k/62500),
# k = i*BACKENDS + j: never connected to. With change=1 the output is the one-backend change of
# the control-plane test (decoy "middle" gets backend 0 replaced by 198.18.255.1:80), in the
# form each system applies a change: the whole file for sluice, a kube-proxy style partial
# restore for iptables (--noflush), an incremental transaction for nft.
#
# KIND: sluice (the services: section of sluiced's YAML, every service with `lb: LB`, default
# random), iptables (iptables-restore input,
# kube-proxy's chains: KUBE-SERVICES -> KUBE-SVC-* with statistic random -> KUBE-SEP-* DNAT),
# nft (kube-proxy nftables mode: a verdict map of VIP . proto . port -> service chain,
# numgen random vmap -> endpoint chain with dnat), haproxy (TCP listen sections).

function vip(i) { return sprintf("198.19.%d.%d", 1 + int(i / 250), 1 + i % 250) }
function baddr(k) { return sprintf("198.18.%d.%d", 2 + int(k / 250) % 250, 1 + k % 250) }
function bport(k) { return 80 + int(k / 62500) }
function hex(x) { return sprintf("%016X", x) }

# change=1: the first backend of service mid is replaced; with nchange=K, of the K services from
# mid on (a batch of K changes), or from service 'from' on when it is given.
function changed(s) { return change && s >= c0 && s < c0 + (nchange ? nchange : 1) }

# Fills the arrays of service s: S_name, S_vip, S_nb, S_addr[j], S_port[j], S_id (chain key).
function service(s,   i, j, k) {
	delete S_addr
	delete S_port
	if (measured && s == mid) {
		S_name = "bench"; S_vip = "198.19.0.10"; S_nb = 3; S_id = n
		for (j = 0; j < 3; j++) { S_addr[j] = "198.18.1." (2 + j); S_port[j] = 80 }
		return
	}
	i = (measured && s > mid) ? s - 1 : s
	S_name = "d" i; S_vip = vip(i); S_nb = b; S_id = i
	for (j = 0; j < b; j++) {
		k = i * b + j
		S_addr[j] = baddr(k); S_port[j] = bport(k)
	}
	if (changed(s)) { S_addr[0] = sprintf("198.18.255.%d", 1 + (s - c0) % 250); S_port[0] = 80 + int((s - c0) / 250) }
}

function sluice_svc(s,   j) {
	service(s)
	printf "  - name: %s\n    frontend: %s:80\n    lb: %s\n    backends:\n", S_name, S_vip, lb
	for (j = 0; j < S_nb; j++)
		printf "      - address: %s:%d\n", S_addr[j], S_port[j]
}

# kube-proxy names endpoint chains by a hash of the endpoint; ours are (service, slot) and,
# for the changed backend, a fresh name, as kube-proxy's would be.
function sep(j) { return (changed(s_cur) && j == 0) ? sprintf("KUBE-SEP-FFFF%012X", S_id) : "KUBE-SEP-" hex(S_id * 1024 + j) }
function ipt_rules(s,   j) {
	s_cur = s
	service(s)
	for (j = 0; j < S_nb; j++) {
		if (j < S_nb - 1)
			printf "-A KUBE-SVC-%s -m comment --comment \"default/%s -> %s:%d\" -m statistic --mode random --probability %.11f -j %s\n", hex(S_id), S_name, S_addr[j], S_port[j], 1.0 / (S_nb - j), sep(j)
		else
			printf "-A KUBE-SVC-%s -m comment --comment \"default/%s -> %s:%d\" -j %s\n", hex(S_id), S_name, S_addr[j], S_port[j], sep(j)
		printf "-A %s -s %s/32 -m comment --comment \"default/%s\" -j KUBE-MARK-MASQ\n", sep(j), S_addr[j], S_name
		printf "-A %s -p tcp -m comment --comment \"default/%s\" -m tcp -j DNAT --to-destination %s:%d\n", sep(j), S_name, S_addr[j], S_port[j]
	}
}

function ept(j) { return (changed(s_cur) && j == 0) ? "endpoint-" S_name "-new" : "endpoint-" S_name "-" j }
function nft_service(s,   j, m) {
	s_cur = s
	service(s)
	for (j = 0; j < S_nb; j++) {
		if (change && j > 0)
			continue
		printf "add chain ip kube-proxy %s\n", ept(j)
		printf "add rule ip kube-proxy %s ip saddr %s jump mark-for-masquerade\n", ept(j), S_addr[j]
		printf "add rule ip kube-proxy %s meta l4proto tcp dnat to %s:%d\n", ept(j), S_addr[j], S_port[j]
	}
	if (!change)
		printf "add chain ip kube-proxy service-%s\n", S_name
	else
		printf "flush chain ip kube-proxy service-%s\n", S_name
	m = ""
	for (j = 0; j < S_nb; j++)
		m = m sprintf("%s%d : goto %s", j ? ", " : "", j, ept(j))
	printf "add rule ip kube-proxy service-%s numgen random mod %d vmap { %s }\n", S_name, S_nb, m
	if (change)
		printf "delete chain ip kube-proxy endpoint-%s-0\n", S_name
	else
		printf "add element ip kube-proxy service-ips { %s . tcp . 80 : goto service-%s }\n", S_vip, S_name
}

BEGIN {
	if (n < 1 || b < 1) { print "gen.awk: n and b must be >= 1" > "/dev/stderr"; exit 2 }
	if (lb == "") lb = "random"
	mid = int((n - 1) / 2)
	c0 = from != "" ? from + 0 : mid
	if (kind == "sluice") {
		print "services:"
		for (s = 0; s < n; s++) sluice_svc(s)
	} else if (kind == "iptables" && change) {
		print "*nat"
		for (s = c0; changed(s) && s < n; s++) {
			s_cur = s
			service(s)
			printf ":KUBE-SVC-%s - [0:0]\n", hex(S_id)
			for (j = 0; j < S_nb; j++) printf ":%s - [0:0]\n", sep(j)
			printf ":KUBE-SEP-%s - [0:0]\n", hex(S_id * 1024)
		}
		for (s = c0; changed(s) && s < n; s++) {
			ipt_rules(s)
			service(s)
			printf "-X KUBE-SEP-%s\n", hex(S_id * 1024)
		}
		print "COMMIT"
	} else if (kind == "iptables") {
		print "*nat"
		print ":KUBE-SERVICES - [0:0]"
		print ":KUBE-NODEPORTS - [0:0]"
		print ":KUBE-MARK-MASQ - [0:0]"
		for (s = 0; s < n; s++) {
			s_cur = s
			service(s)
			printf ":KUBE-SVC-%s - [0:0]\n", hex(S_id)
			for (j = 0; j < S_nb; j++) printf ":%s - [0:0]\n", sep(j)
		}
		print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
		print "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
		for (s = 0; s < n; s++) {
			service(s)
			printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"default/%s cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%s\n", S_vip, S_name, hex(S_id)
		}
		print "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
		for (s = 0; s < n; s++) ipt_rules(s)
		print "COMMIT"
	} else if (kind == "nft" && change) {
		for (s = c0; changed(s) && s < n; s++) nft_service(s)
	} else if (kind == "nft") {
		print "add table ip kube-proxy"
		print "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; policy accept ; }"
		print "add chain ip kube-proxy services"
		print "add chain ip kube-proxy mark-for-masquerade"
		print "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000"
		print "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }"
		print "add rule ip kube-proxy nat-output jump services"
		print "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips"
		for (s = 0; s < n; s++) nft_service(s)
	} else if (kind == "haproxy") {
		for (s = 0; s < n; s++) {
			service(s)
			printf "listen %s\n  bind %s:80\n  balance roundrobin\n", S_name, S_vip
			for (j = 0; j < S_nb; j++) printf "  server s%d %s:%d\n", j, S_addr[j], S_port[j]
		}
	} else {
		print "gen.awk: unknown kind " kind > "/dev/stderr"; exit 2
	}
}
