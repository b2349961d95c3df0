// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_flow: clsact programs that count what crosses the chosen interfaces,
 * per interface and direction, and per TCP/UDP flow. They read the packet
 * and never change or redirect it. The ingress program drops one kind of
 * packet: a SYN or a UDP datagram to a backend on this node whose service's
 * policy refuses the sender's identity (from sluice_ipcache by source
 * address), or a plaintext SYN from another node to a backend of an mtls
 * strict service, and audits it.
 *
 * What is parsed: Ethernet frames without an 802.1Q/802.1ad tag in the frame
 * (a tag the NIC or the kernel keeps in skb metadata, the usual case at tc,
 * does not matter; flows of different VLANs on one device share entries),
 * then IPv4 or IPv6, then TCP or UDP. The agent only attaches to Ethernet
 * and loopback devices, so the network header is always at offset 14.
 * Counted on the interface only ("untracked"): other ethertypes (ARP, ...),
 * other protocols (ICMP, SCTP, ...), IPv4 fragments (first ones included:
 * later ones carry no ports), IPv6 packets whose first next-header is not
 * TCP or UDP (extension headers are not walked: that takes a bounded loop
 * per packet for traffic that is rare), truncated headers.
 *
 * A flow is keyed by interface and 5-tuple, normalised by side (see struct
 * sluice_tc_flow_key): one entry per connection per interface, with
 * per-direction counters. A packet that crosses two watched interfaces
 * (forwarding) is counted once on each.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <sluice/abi.h>

#include "lib/policy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Pass the packet on to the next filter, or to the stack when there is
 * none. TC_ACT_OK would pass it too, but would also end classification
 * and so skip the filters of other tools at later priorities.
 */
#define SL_TC_PASS (-1) /* TC_ACT_UNSPEC */

#define SL_ETH_HLEN    14
#define SL_ETH_P_IP    0x0800
#define SL_ETH_P_IPV6  0x86DD
#define SL_IP_MF       0x2000
#define SL_IP_OFFSET   0x1fff
#define SL_IPPROTO_TCP 6
#define SL_IPPROTO_UDP 17
/* Headers the parser reads: Ethernet, IPv4 with options, TCP without options. */
#define SL_TC_PARSE_LEN (SL_ETH_HLEN + 60 + 20)

/* errno values (vmlinux.h has no macros) */
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef EEXIST
#define EEXIST 17
#endif
#ifndef EBADMSG
#define EBADMSG 74
#endif
#ifndef EPROTONOSUPPORT
#define EPROTONOSUPPORT 93
#endif
#ifndef EOPNOTSUPP
#define EOPNOTSUPP 95
#endif

/* (ifindex, direction) -> per-CPU packets, bytes and untracked packets */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SLUICE_TC_DIR__MAX *SLUICE_TC_MAX_IFACES);
	__type(key, struct sluice_tc_if_key);
	__type(value, struct sluice_tc_if_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_tc_if_stats SEC(".maps");

/* (interface, local and remote address and port, protocol) -> per-direction
 * packets and bytes, TCP flags, first and last seen */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_TC_MAX_FLOWS);
	__type(key, struct sluice_tc_flow_key);
	__type(value, struct sluice_tc_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_tc_flows SEC(".maps");

/* What the parser found in one packet. */
struct sl_pkt {
	struct sluice_tc_flow_key key;
	__u32 hdr_len; /* Ethernet + IP + TCP/UDP header bytes, repeated per GSO segment */
	__u8 tcp_flags;
};

/* Make the headers the parser reads linear, in the rare packet where they
 * are not (direct packet access only sees the linear part). */
static __always_inline void sl_pull_headers(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 want = skb->len < SL_TC_PARSE_LEN ? skb->len : SL_TC_PARSE_LEN;

	if (data + want > data_end)
		bpf_skb_pull_data(skb, want);
	/* Make clang reload skb->data and data_end from skb itself: a pointer
	 * it derived from skb earlier is one the verifier refuses. */
	barrier_var(skb);
}

static __always_inline void sl_set_addrs(struct sl_pkt *p, enum sluice_tc_dir dir, const void *src,
					 const void *dst, __u32 len)
{
	/* local: the source of what we send, the destination of what we receive */
	if (dir == SLUICE_TC_EGRESS) {
		__builtin_memcpy(p->key.local.a8, src, len);
		__builtin_memcpy(p->key.remote.a8, dst, len);
	} else {
		__builtin_memcpy(p->key.local.a8, dst, len);
		__builtin_memcpy(p->key.remote.a8, src, len);
	}
}

/* Fill p from a TCP or UDP packet over IPv4 or IPv6. 0, or a negative errno
 * for a packet that is not tracked as a flow. */
static __always_inline int sl_parse(struct __sk_buff *skb, enum sluice_tc_dir dir, struct sl_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 l4_off;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return -EBADMSG;
	if (eth->h_proto == bpf_htons(SL_ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return -EBADMSG;
		if (ip->version != 4 || ip->ihl < 5)
			return -EBADMSG;
		if (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET))
			return -EOPNOTSUPP;
		proto = ip->protocol;
		l4_off = SL_ETH_HLEN + ip->ihl * 4;
		p->key.family = SLUICE_AF_INET;
		sl_set_addrs(p, dir, &ip->saddr, &ip->daddr, 4);
	} else if (eth->h_proto == bpf_htons(SL_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -EBADMSG;
		proto = ip6->nexthdr;
		l4_off = SL_ETH_HLEN + sizeof(*ip6);
		p->key.family = SLUICE_AF_INET6;
		sl_set_addrs(p, dir, &ip6->saddr, &ip6->daddr, 16);
	} else {
		return -EPROTONOSUPPORT;
	}

	if (proto == SL_IPPROTO_TCP) {
		struct tcphdr *th = data + l4_off;

		if ((void *)(th + 1) > data_end)
			return -EBADMSG;
		if (th->doff < 5)
			return -EBADMSG;
		p->tcp_flags = ((__u8 *)th)[13];
		p->hdr_len = l4_off + th->doff * 4;
		p->key.local_port = dir == SLUICE_TC_EGRESS ? th->source : th->dest;
		p->key.remote_port = dir == SLUICE_TC_EGRESS ? th->dest : th->source;
	} else if (proto == SL_IPPROTO_UDP) {
		struct udphdr *uh = data + l4_off;

		if ((void *)(uh + 1) > data_end)
			return -EBADMSG;
		p->hdr_len = l4_off + sizeof(*uh);
		p->key.local_port = dir == SLUICE_TC_EGRESS ? uh->source : uh->dest;
		p->key.remote_port = dir == SLUICE_TC_EGRESS ? uh->dest : uh->source;
	} else {
		return -EPROTONOSUPPORT;
	}
	p->key.proto = proto;
	p->key.ifindex = skb->ifindex;
	return 0;
}

/* Wire packets in this skb: a GSO packet leaves as gso_segs segments. When
 * a driver left gso_segs unset (untrusted GSO), derive it from gso_size. */
static __always_inline __u32 sl_segs(struct __sk_buff *skb, __u32 hdr_len)
{
	__u32 segs = skb->gso_segs, gso_size = skb->gso_size;

	if (segs > 1 || !gso_size)
		return segs ? segs : 1;
	if (!hdr_len || skb->len <= hdr_len)
		return 1;
	return (skb->len - hdr_len + gso_size - 1) / gso_size;
}

static __always_inline int sl_flow_count(struct sl_pkt *p, enum sluice_tc_dir dir, __u64 packets,
					 __u64 bytes)
{
	__u8 syn_only = (p->tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) == SLUICE_TCP_SYN;
	__u64 now = bpf_ktime_get_ns();
	__u64 update = BPF_NOEXIST;
	struct sluice_tc_flow *f;
	int err;

	f = bpf_map_lookup_elem(&sluice_tc_flows, &p->key);
	/* A SYN on the 5-tuple of a connection that ended opens a new one. */
	if (f && syn_only &&
	    ((f->tcp_flags[0] | f->tcp_flags[1]) & (SLUICE_TCP_FIN | SLUICE_TCP_RST))) {
		f = NULL;
		update = BPF_ANY;
	}
	if (!f) {
		struct sluice_tc_flow init = {};

		init.dir[dir].packets = packets;
		init.dir[dir].bytes = bytes;
		init.first_ns = now;
		init.last_ns = now;
		init.tcp_flags[dir] = p->tcp_flags;
		init.origin = dir;
		err = bpf_map_update_elem(&sluice_tc_flows, &p->key, &init, update);
		if (err != -EEXIST)
			return err;
		/* Another CPU created it first: add to that entry. */
		f = bpf_map_lookup_elem(&sluice_tc_flows, &p->key);
		if (!f)
			return -ENOENT;
	}
	__sync_fetch_and_add(&f->dir[dir].packets, packets);
	__sync_fetch_and_add(&f->dir[dir].bytes, bytes);
	f->last_ns = now;
	/* Plain stores: flags only ever gain bits, the write is rare (a few per
	 * connection), and one direction of one flow is rarely on two CPUs at
	 * once. Each direction is its own byte, so they cannot clobber each
	 * other. */
	if ((f->tcp_flags[dir] | p->tcp_flags) != f->tcp_flags[dir])
		f->tcp_flags[dir] |= p->tcp_flags;
	if (syn_only && f->origin != dir)
		f->origin = dir;
	return 0;
}

static __always_inline int sl_if_count(__u32 ifindex, enum sluice_tc_dir dir, __u64 packets,
				       __u64 bytes, __u64 untracked)
{
	struct sluice_tc_if_key key = {.ifindex = ifindex, .dir = dir};
	struct sluice_tc_if_stats *st;
	int err;

	st = bpf_map_lookup_elem(&sluice_tc_if_stats, &key);
	if (!st) {
		struct sluice_tc_if_stats init = {
		    .packets = packets, .bytes = bytes, .untracked = untracked};

		/* The other CPUs' slots of a new per-CPU element start at zero. */
		err = bpf_map_update_elem(&sluice_tc_if_stats, &key, &init, BPF_NOEXIST);
		if (err != -EEXIST)
			return err;
		st = bpf_map_lookup_elem(&sluice_tc_if_stats, &key);
		if (!st)
			return -ENOENT;
	}
	/* Per-CPU and not re-entered on this CPU: plain adds. */
	st->packets += packets;
	st->bytes += bytes;
	st->untracked += untracked;
	return 0;
}

static __always_inline int sl_tc_count(struct __sk_buff *skb, enum sluice_tc_dir dir)
{
	struct sl_pkt p = {};
	__u32 hdr_len, segs;
	__u64 bytes;
	int tracked;

	sl_pull_headers(skb);
	tracked = !sl_parse(skb, dir, &p);
	hdr_len = tracked ? p.hdr_len : 0;
	segs = sl_segs(skb, hdr_len);
	/* Each segment after the first carries its own copy of the headers
	 * (unknown for an untracked packet: counted once). */
	bytes = skb->len + (__u64)(segs - 1) * hdr_len;
	if (tracked && sl_flow_count(&p, dir, segs, bytes))
		tracked = 0;
	return sl_if_count(skb->ifindex, dir, segs, bytes, tracked ? 0 : segs);
}

#define SL_TC_DROP 2 /* TC_ACT_SHOT */

#define SL_LOOPBACK_IFINDEX 1 /* lo, in every network namespace */

/*
 * mtls strict: a plaintext SYN from another node to a local backend. A packet
 * from this node to one of its own addresses crosses lo, so one that arrives
 * on any other interface came from another host, whatever its source says.
 * Tunnels arrive on mtls.port, which is no backend's: they never get here.
 */
static __always_inline int
sl_tc_strict_plain(struct __sk_buff *skb, const struct sluice_service *svc, const struct sl_pkt *p)
{
	return svc->mtls == SLUICE_MTLS_STRICT && p->key.proto == SLUICE_PROTO_TCP &&
	       skb->ifindex != SL_LOOPBACK_IFINDEX;
}

/*
 * Server-side policy: a new connection (a SYN without ACK) or a UDP datagram
 * to a local backend of a service with a policy, from an identity that
 * policy refuses, is dropped. Established connections are not looked at:
 * a policy change applies to new connections only.
 */
static __always_inline int sl_tc_policy(struct __sk_buff *skb)
{
	const struct sluice_service *svc;
	struct sluice_frontend_key k = {};
	struct sluice_audit_event *a;
	struct sl_pkt p = {};
	__u32 *svc_id, identity;
	int denied, plain;

	if (sl_parse(skb, SLUICE_TC_INGRESS, &p))
		return SL_TC_PASS;
	if (p.key.proto == SLUICE_PROTO_TCP &&
	    (p.tcp_flags & (SLUICE_TCP_SYN | SLUICE_TCP_ACK)) != SLUICE_TCP_SYN)
		return SL_TC_PASS;
	k.addr = p.key.local;
	k.port = p.key.local_port;
	k.proto = p.key.proto;
	k.family = p.key.family;
	svc_id = bpf_map_lookup_elem(&sluice_policy_backends, &k);
	if (!svc_id)
		return SL_TC_PASS;
	svc = bpf_map_lookup_elem(&sluice_services, svc_id);
	if (!svc)
		return SL_TC_PASS;
	plain = sl_tc_strict_plain(skb, svc, &p);
	if (!plain && !(svc->flags & SLUICE_SVC_F_POLICY))
		return SL_TC_PASS;
	identity = sl_addr_identity(&p.key.remote, p.key.family);
	denied = plain || sluice_policy_denies(svc, identity);
	a = sl_audit_reserve(denied);
	if (a) {
		a->ev.svc_id = *svc_id;
		a->ev.family = p.key.family;
		a->ev.proto = p.key.proto;
		a->ev.src = p.key.remote;
		a->ev.sport = bpf_ntohs(p.key.remote_port);
		a->ev.dst = p.key.local;
		a->ev.dport = bpf_ntohs(p.key.local_port);
		a->ev.reason = SLUICE_REASON_TC_INGRESS;
		a->identity = identity;
		bpf_ringbuf_submit(a, 0);
	}
	if (!denied)
		return SL_TC_PASS;
	sl_count_policy_reject(*svc_id);
	return SL_TC_DROP;
}

SEC("tc")
int sluice_tc_ingress(struct __sk_buff *skb)
{
	sl_tc_count(skb, SLUICE_TC_INGRESS);
	return sl_tc_policy(skb);
}

SEC("tc")
int sluice_tc_egress(struct __sk_buff *skb)
{
	sl_tc_count(skb, SLUICE_TC_EGRESS);
	return SL_TC_PASS;
}
