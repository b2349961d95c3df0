// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Closing the sockets stuck on dead backends: socket iterators (iter/udp,
 * iter/tcp) that call the bpf_sock_destroy() kfunc (kernel 6.5+) on every
 * served socket whose translation names a backend listed in sluice_dead.
 * The agent loads this object only where the kernel has the kfunc, fills
 * sluice_dead, and reads each iterator once: it walks the sockets of the
 * agent's network namespace. A socket is served when it has sluice's socket
 * storage (only the hooks on agent.cgroup create it) and its cgroup is in
 * agent.cgroup's subtree; no other socket is ever touched.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include <sluice/abi.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* agent.cgroup's id (its kernfs node id, as bpf_get_current_cgroup_id says). */
const volatile __u64 sd_cgroup_id = 0;

/* Cgroup levels below the root that are compared with sd_cgroup_id. */
#define SD_MAX_LEVEL 64

/* dead backend (with its frontend and protocol) -> sockets closed */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_DEAD_MAX);
	__type(key, struct sluice_dead_key);
	__type(value, __u64);
} sluice_dead SEC(".maps");

/* sock_lb's socket storage (the agent reuses its maps' fds): a UDP socket's
 * translations, and a TCP socket's backend. Defined as in bpf/lib/maps.h. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_revnat);
} sluice_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_backend);
} sluice_sk_backend SEC(".maps");

/* Is the socket's cgroup agent.cgroup or below it? cgroup->ancestors[l] is
 * its ancestor at level l (the root is level 0, the cgroup itself 'level'). */
static __always_inline int sd_served(struct sock *sk)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup), *anc;
	__u64 base;
	int level, i;

	if (!cg)
		return 0;
	level = BPF_CORE_READ(cg, level);
	base = (__u64)cg + bpf_core_field_offset(struct cgroup, ancestors);
	for (i = 0; i < SD_MAX_LEVEL; i++) {
		if (i > level)
			break;
		anc = NULL;
		if (bpf_probe_read_kernel(&anc, sizeof(anc), (void *)(base + i * sizeof(anc))))
			return 0;
		if (anc && BPF_CORE_READ(anc, kn, id) == sd_cgroup_id)
			return 1;
	}
	return 0;
}

/* A connected socket's peer, as its translation would record it (an IPv6
 * socket's v4-mapped peer as IPv4). */
static __always_inline void sd_peer(const struct sock_common *skc, union sluice_addr *a,
				    __u16 *port, __u8 *family)
{
	__builtin_memset(a, 0, sizeof(*a));
	*port = skc->skc_dport;
	*family = SLUICE_AF_INET;
	if (skc->skc_family == SLUICE_AF_INET) {
		a->a32[0] = skc->skc_daddr;
		return;
	}
	if (!skc->skc_v6_daddr.in6_u.u6_addr32[0] && !skc->skc_v6_daddr.in6_u.u6_addr32[1] &&
	    skc->skc_v6_daddr.in6_u.u6_addr32[2] == bpf_htonl(0x0000ffff)) {
		a->a32[0] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
		return;
	}
	*family = SLUICE_AF_INET6;
	a->a32[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
	a->a32[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
	a->a32[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
	a->a32[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
}

static __always_inline void sd_key(struct sluice_dead_key *k, const struct sluice_revnat *rn,
				   __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->be_addr = rn->be_addr;
	k->fe_addr = rn->fe_addr;
	k->be_port = rn->be_port;
	k->fe_port = rn->fe_port;
	k->family = rn->family;
	k->proto = proto;
}

/* Close the socket if its key is listed and it is served; count it. skc is
 * the iterator's own pointer to it: the kfunc takes only a trusted one. */
static __always_inline void sd_close(struct sock_common *skc, struct sock *sk,
				     const struct sluice_dead_key *k)
{
	__u64 *closed = bpf_map_lookup_elem(&sluice_dead, k);

	if (!closed || !sd_served(sk))
		return;
	if (!bpf_sock_destroy(skc))
		__sync_fetch_and_add(closed, 1);
}

static __always_inline int sd_addr_eq(const union sluice_addr *a, const union sluice_addr *b)
{
	return a->a32[0] == b->a32[0] && a->a32[1] == b->a32[1] && a->a32[2] == b->a32[2] &&
	       a->a32[3] == b->a32[3];
}

/* Connected UDP sockets: the translation of the backend the socket is
 * connected to now (it keeps those of earlier connect()s too). */
SEC("iter/udp")
int sluice_sd_udp(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;
	const struct sluice_sk_revnat *r;
	struct sluice_dead_key k;
	union sluice_addr peer;
	__u16 port;
	__u8 family;
	__u32 i;

	if (!sk || sk->__sk_common.skc_state != TCP_ESTABLISHED)
		return 0;
	r = bpf_sk_storage_get(&sluice_revnat, sk, 0, 0);
	if (!r)
		return 0;
	sd_peer(&sk->__sk_common, &peer, &port, &family);
#pragma unroll
	for (i = 0; i < SLUICE_REVNAT_SLOTS; i++) {
		const struct sluice_revnat *rn = &r->slot[i];

		if (rn->family == family && rn->be_port == port &&
		    sd_addr_eq(&rn->be_addr, &peer)) {
			sd_key(&k, rn, SLUICE_PROTO_UDP);
			sd_close((struct sock_common *)sk, sk, &k);
			return 0;
		}
	}
	return 0;
}

/* TCP connections (close_on_removal): the backend in the socket's tag.
 * Tunnelled ones (mtls) are the agent's to close, not this program's. */
SEC("iter/tcp")
int sluice_sd_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	const struct sluice_sk_backend *sb;
	struct sluice_dead_key k;
	struct tcp_sock *tp;
	struct sock *sk;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0; /* time-wait and request sockets */
	sk = (struct sock *)tp;
	if (sk->__sk_common.skc_state == TCP_LISTEN || sk->__sk_common.skc_state == TCP_CLOSE)
		return 0;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb || !sb->revnat.family || (sb->flags & SLUICE_SK_F_MTLS))
		return 0;
	sd_key(&k, &sb->revnat, SLUICE_PROTO_TCP);
	sd_close(skc, sk, &k);
	return 0;
}
