// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-level load balancing: cgroup sock_addr programs that rewrite a
 * frontend (VIP) to a backend at connect()/sendmsg() time and translate it
 * back at recvmsg()/getpeername(). No packet is rewritten in flight.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/lb.h"
#include "lib/mtls.h"
#include "lib/trace.h"
#include "lib/verdict.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void sl_req_v4(struct sl_req *req, struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	__builtin_memset(req, 0, sizeof(*req));
	req->fe.family = SLUICE_AF_INET;
	req->fe.proto = (__u8)ctx->protocol;
	req->fe.port = (__u16)ctx->user_port;
	req->fe.addr.a32[0] = ctx->user_ip4;
	req->cookie = bpf_get_socket_cookie(ctx);
	req->netns = bpf_get_netns_cookie(ctx);
	if (sk) {
		req->client.a32[0] = sk->src_ip4;
		req->client_port = sk->src_port;
	}
}

static __always_inline void sl_req_v6(struct sl_req *req, struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	__builtin_memset(req, 0, sizeof(*req));
	req->fe.family = SLUICE_AF_INET6;
	req->fe.proto = (__u8)ctx->protocol;
	req->fe.port = (__u16)ctx->user_port;
	req->fe.addr.a32[0] = ctx->user_ip6[0];
	req->fe.addr.a32[1] = ctx->user_ip6[1];
	req->fe.addr.a32[2] = ctx->user_ip6[2];
	req->fe.addr.a32[3] = ctx->user_ip6[3];
	/* A dual-stack socket reaching an IPv4 VIP: serve the IPv4 service. */
	req->v4mapped = (__u32)sl_unmap(&req->fe.family, req->fe.addr.a32);
	req->cookie = bpf_get_socket_cookie(ctx);
	req->netns = bpf_get_netns_cookie(ctx);
	if (sk) {
		req->client.a32[0] = sk->src_ip6[0];
		req->client.a32[1] = sk->src_ip6[1];
		req->client.a32[2] = sk->src_ip6[2];
		req->client.a32[3] = sk->src_ip6[3];
		req->client_port = sk->src_port;
	}
}

/* A failed translation store: the socket will see the backend's address. */
static __always_inline void sl_count_revnat_failure(void)
{
	struct sluice_global_stats *gs;
	__u32 zero = 0;

	gs = bpf_map_lookup_elem(&sluice_global_stats, &zero);
	if (gs)
		sl_add(&gs->revnat_failures, 1);
}

static __always_inline int sl_revnat_is(const struct sluice_revnat *rn, const union sluice_addr *a,
					__u16 port, __u8 family)
{
	return rn->family == family && rn->be_port == port && sl_addr_eq(&rn->be_addr, a);
}

/* Point a translation at the frontend the request asked for. A reader on
 * another CPU may see the entry half-written only when the same socket
 * sends to a new frontend at that moment; 'family', set last, makes it whole. */
static __always_inline void sl_revnat_set(struct sluice_revnat *rn, const struct sl_req *req,
					  const struct sluice_backend *be)
{
	if (sl_revnat_is(rn, &be->addr, be->port, be->family) && rn->fe_port == req->fe.port &&
	    sl_addr_eq(&rn->fe_addr, &req->fe.addr))
		return; /* written only when it changes */
	rn->family = 0;
	asm volatile("" ::: "memory");
	rn->be_addr = be->addr;
	rn->be_port = be->port;
	rn->fe_addr = req->fe.addr;
	rn->fe_port = req->fe.port;
	asm volatile("" ::: "memory");
	rn->family = be->family;
}

/*
 * Remember which frontend a UDP socket asked for, for recvmsg/getpeername,
 * in the socket's own storage: it goes with the socket, and no other socket
 * can push it out. An unconnected socket keeps up to SLUICE_REVNAT_SLOTS
 * backends; past that it replaces its own oldest.
 */
static __always_inline void sl_revnat_store_udp(struct bpf_sock_addr *ctx, const struct sl_req *req,
						const struct sluice_backend *be)
{
	struct sluice_sk_revnat *r = NULL;
	struct bpf_sock *sk = ctx->sk;
	__u32 i, pick = SLUICE_REVNAT_SLOTS;

	if (sk)
		r = bpf_sk_storage_get(&sluice_revnat, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!r) {
		sl_count_revnat_failure();
		return;
	}
#pragma unroll
	for (i = 0; i < SLUICE_REVNAT_SLOTS; i++) {
		if (sl_revnat_is(&r->slot[i], &be->addr, be->port, be->family)) {
			sl_revnat_set(&r->slot[i], req, be);
			return;
		}
		if (!r->slot[i].family && pick == SLUICE_REVNAT_SLOTS)
			pick = i;
	}
	if (pick == SLUICE_REVNAT_SLOTS)
		pick = r->next++ % SLUICE_REVNAT_SLOTS;
	if (pick < SLUICE_REVNAT_SLOTS)
		sl_revnat_set(&r->slot[pick], req, be);
}

/* sl_revnat_scan's search of one service's live slots for a backend. */
struct sl_rn_scan {
	union sluice_addr addr;
	__u32 svc_id;
	__u32 gen;
	__u32 found;
	__u16 port;
	__u8 family;
	__u8 pad;
};

static long sl_rn_scan_slot(__u32 i, void *data)
{
	struct sl_rn_scan *s = data;
	__u32 id = sl_slot_id(s->svc_id, (__u8)s->gen, i);
	const struct sluice_backend *be = id ? bpf_map_lookup_elem(&sluice_backends, &id) : NULL;

	s->found =
	    be && be->family == s->family && be->port == s->port && sl_addr_eq(&be->addr, &s->addr);
	return s->found;
}

/*
 * A reply from a backend that has no slot: an unconnected socket's datagrams
 * go to a backend each (by the service's lb), so it may hear from more
 * backends than it keeps translations, and its oldest were replaced. The
 * reply is the frontend's when a service the socket sent to (a frontend in
 * its slots) has that backend now: its live slots are searched.
 */
static __always_inline const struct sluice_revnat *sl_revnat_scan(const struct sluice_sk_revnat *r,
								  const union sluice_addr *a,
								  __u16 port, __u8 family)
{
	struct sluice_frontend_key fk;
	const struct sluice_frontend *fe;
	const struct sluice_service *svc;
	struct sl_rn_scan s;
	__u32 i;

#pragma unroll
	for (i = 0; i < SLUICE_REVNAT_SLOTS; i++) {
		if (r->slot[i].family != family)
			continue;
		__builtin_memset(&fk, 0, sizeof(fk));
		fk.addr = r->slot[i].fe_addr;
		fk.port = r->slot[i].fe_port;
		fk.proto = SLUICE_PROTO_UDP;
		fk.family = family;
		fe = bpf_map_lookup_elem(&sluice_frontends, &fk);
		svc = fe ? bpf_map_lookup_elem(&sluice_services, &fe->svc_id) : NULL;
		if (!svc || svc->count > SLUICE_MAX_BACKENDS_PER_SERVICE)
			continue;
		__builtin_memset(&s, 0, sizeof(s));
		s.addr = *a;
		s.svc_id = fe->svc_id;
		s.gen = svc->gen;
		s.port = port;
		s.family = family;
		bpf_loop(svc->count, sl_rn_scan_slot, &s, 0);
		if (s.found)
			return &r->slot[i];
	}
	return NULL;
}

/* The translation of a socket's peer, given the peer address the hook sees:
 * a TCP socket's is in its tag, a UDP socket's in its revnat storage. A
 * v4-mapped peer of an IPv6 socket is looked up as IPv4. */
static __always_inline const struct sluice_revnat *sl_revnat_find(struct bpf_sock_addr *ctx,
								  __u8 family, int *v4mapped)
{
	const struct sluice_sk_backend *sb;
	const struct sluice_sk_revnat *r;
	union sluice_addr a = {};
	__u16 port = (__u16)ctx->user_port;
	__u32 i;

	*v4mapped = 0;
	if (family == SLUICE_AF_INET) {
		a.a32[0] = ctx->user_ip4;
	} else {
		a.a32[0] = ctx->user_ip6[0];
		a.a32[1] = ctx->user_ip6[1];
		a.a32[2] = ctx->user_ip6[2];
		a.a32[3] = ctx->user_ip6[3];
		*v4mapped = sl_unmap(&family, a.a32);
	}
	if (ctx->protocol == SLUICE_PROTO_TCP) {
		sb = bpf_sk_storage_get(&sluice_sk_backend, ctx->sk, 0, 0);
		if (sb && sl_revnat_is(&sb->revnat, &a, port, family))
			return &sb->revnat;
		return NULL;
	}
	r = bpf_sk_storage_get(&sluice_revnat, ctx->sk, 0, 0);
	if (!r)
		return NULL;
#pragma unroll
	for (i = 0; i < SLUICE_REVNAT_SLOTS; i++)
		if (sl_revnat_is(&r->slot[i], &a, port, family))
			return &r->slot[i];
	return sl_revnat_scan(r, &a, port, family);
}

/*
 * Tag a TCP socket with its backend, for sockops to follow it, and with its
 * translation, for getpeername(). The tag carries the active-connection
 * reservation made by sl_select, in the generations it was made in: whoever
 * sees the socket end (sockops at its close, or sock_release when it never
 * sent a SYN) gives it back. No tag, no reservation.
 */
static __always_inline void sl_sk_remember(struct bpf_sock_addr *ctx, struct sl_req *req,
					   const struct sluice_backend *be, __u32 be_id,
					   __u32 flags)
{
	struct sluice_sk_backend *sb = NULL;
	struct bpf_sock *sk = ctx->sk;

	if (sk)
		sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!sb) {
		sl_count_revnat_failure();
		if (req->reserved)
			sl_release(req->svc_id, req->svc_gen, be_id, req->be_gen);
		return;
	}
	/* A connect() that failed before its SYN, tried again. */
	if ((sb->flags & (SLUICE_SK_F_RESERVED | SLUICE_SK_F_SYN)) == SLUICE_SK_F_RESERVED)
		sl_release(sb->svc_id, sb->svc_gen, sb->be_id, sb->be_gen);
	sb->be_id = be_id;
	sb->svc_id = req->svc_id;
	sb->be_gen = req->be_gen;
	sb->svc_gen = req->svc_gen;
	sb->start_ns = bpf_ktime_get_ns();
	sb->flags = (req->reserved ? SLUICE_SK_F_RESERVED : 0) | flags;
	sb->user_timeout = 0;
	sb->connect_timeout_ms = req->connect_timeout_ms;
	sb->idle_timeout_s = req->idle_timeout_s;
	sb->identity = sl_req_identity(req); /* a failed connect counts on its edge */
	sl_revnat_set(&sb->revnat, req, be);
}

/* Rewrite the destination to the backend, or to the mtls outbound listener
 * (127.0.0.1, ::1 or ::ffff:127.0.0.1 at lo_port; 0 = the backend). */
static __always_inline void sl_rewrite(struct bpf_sock_addr *ctx, const struct sl_req *req,
				       const struct sluice_backend *be, __u16 lo_port,
				       const __u8 family)
{
	__u32 lo4 = bpf_htonl(0x7f000001);

	if (family == SLUICE_AF_INET) {
		ctx->user_ip4 = lo_port ? lo4 : be->addr.a32[0];
	} else if (req->v4mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = lo_port ? lo4 : be->addr.a32[0];
	} else if (lo_port) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	} else {
		ctx->user_ip6[0] = be->addr.a32[0];
		ctx->user_ip6[1] = be->addr.a32[1];
		ctx->user_ip6[2] = be->addr.a32[2];
		ctx->user_ip6[3] = be->addr.a32[3];
	}
	ctx->user_port = lo_port ? bpf_htons(lo_port) : be->port;
}

/* mtls: the outbound listener's port for a connection that goes through the
 * tunnel (its original destination remembered), 0 for plaintext, or -EPERM.
 * Only TCP connect()s to remote backends of mtls services are looked at. */
static __always_inline int sl_mtls_outbound(struct bpf_sock_addr *ctx, struct sl_req *req,
					    const struct sluice_backend *be, __u32 be_id)
{
	__u16 port = 0;
	int verdict;

	if (!req->connect || req->fe.proto != SLUICE_PROTO_TCP || req->mtls == SLUICE_MTLS_OFF ||
	    !(be->flags & SLUICE_BE_F_REMOTE))
		return 0;
	verdict = sl_mtls_decide(req, &port);
	if (verdict > 0 && !sl_mtls_remember(ctx->sk, req, be, be_id))
		return port;
	if (req->mtls == SLUICE_MTLS_STRICT)
		return sl_mtls_refuse(req);
	return 0;
}

/* Select a backend and rewrite the destination. 0 or a negative errno. */
static __always_inline int sl_translate_one(struct bpf_sock_addr *ctx, struct sl_req *req,
					    const __u8 family)
{
	struct sluice_backend lo = {};
	const struct sluice_backend *be;
	__u32 be_id;
	int err, lo_port;

	err = sl_select(req, &be, &be_id);
	if (err)
		return err;
	/* The agent only pairs frontends with backends of their own family. A
	 * v4 hook may not touch the v6 fields, so branch on the hook's. */
	if (be->family != req->fe.family) {
		if (req->reserved)
			sl_release(req->svc_id, req->svc_gen, be_id, req->be_gen);
		return -ECONNREFUSED;
	}
	lo_port = sl_mtls_outbound(ctx, req, be, be_id);
	if (lo_port < 0) {
		if (req->reserved)
			sl_release(req->svc_id, req->svc_gen, be_id, req->be_gen);
		return lo_port;
	}
	sl_rewrite(ctx, req, be, (__u16)lo_port, family);
	/* Should the store fail, only this socket's replies keep the backend's
	 * address: the call itself goes on. Tunnelled, the socket's peer is the
	 * listener: that is what translates back to the frontend. */
	if (lo_port) {
		lo.family = req->fe.family;
		lo.port = bpf_htons((__u16)lo_port);
		if (lo.family == SLUICE_AF_INET)
			lo.addr.a32[0] = bpf_htonl(0x7f000001);
		else
			lo.addr.a32[3] = bpf_htonl(1);
		be = &lo;
	}
	if (req->fe.proto == SLUICE_PROTO_TCP)
		sl_sk_remember(ctx, req, be, be_id, lo_port ? SLUICE_SK_F_MTLS : 0);
	else
		sl_revnat_store_udp(ctx, req, be);
	return 0;
}

/* ... and count the outcome on the caller's edge of the service map. */
static __always_inline int sl_translate(struct bpf_sock_addr *ctx, struct sl_req *req,
					const __u8 family)
{
	int err = sl_translate_one(ctx, req, family);

	sl_count_edge(req, err);
	return err;
}

SEC("cgroup/connect4")
int sluice_sock4_connect(struct bpf_sock_addr *ctx)
{
	struct sl_req req;
	int err;

	sl_req_v4(&req, ctx);
	req.connect = 1;
	err = sl_translate(ctx, &req, SLUICE_AF_INET);
	sl_trace_refused(&req, err);
	return sl_connect_verdict(err);
}

SEC("cgroup/connect6")
int sluice_sock6_connect(struct bpf_sock_addr *ctx)
{
	struct sl_req req;
	int err;

	sl_req_v6(&req, ctx);
	req.connect = 1;
	err = sl_translate(ctx, &req, SLUICE_AF_INET6);
	sl_trace_refused(&req, err);
	return sl_connect_verdict(err);
}

/* sendmsg() with a destination: unconnected UDP. Each datagram gets a
 * backend by the service's lb and weights (maglev: by the flow, which for a
 * bound socket is its address and port); replies translate back through the
 * socket's slots, or sl_revnat_scan. */
SEC("cgroup/sendmsg4")
int sluice_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v4(&req, ctx);
	return sl_sendmsg_verdict(sl_translate(ctx, &req, SLUICE_AF_INET));
}

SEC("cgroup/sendmsg6")
int sluice_sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v6(&req, ctx);
	return sl_sendmsg_verdict(sl_translate(ctx, &req, SLUICE_AF_INET6));
}

/* recvmsg()/getpeername(): show the frontend instead of the backend. */
static __always_inline int sl_reverse(struct bpf_sock_addr *ctx, __u8 family)
{
	const struct sluice_revnat *rn;
	int v4mapped;

	rn = sl_revnat_find(ctx, family, &v4mapped);
	if (!rn)
		return SL_VERDICT_PASS;
	if (family == SLUICE_AF_INET) {
		ctx->user_ip4 = rn->fe_addr.a32[0];
	} else if (v4mapped) {
		ctx->user_ip6[3] = rn->fe_addr.a32[0];
	} else {
		ctx->user_ip6[0] = rn->fe_addr.a32[0];
		ctx->user_ip6[1] = rn->fe_addr.a32[1];
		ctx->user_ip6[2] = rn->fe_addr.a32[2];
		ctx->user_ip6[3] = rn->fe_addr.a32[3];
	}
	ctx->user_port = rn->fe_port;
	return SL_VERDICT_PASS;
}

SEC("cgroup/recvmsg4")
int sluice_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SLUICE_AF_INET);
}

SEC("cgroup/recvmsg6")
int sluice_sock6_recvmsg(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SLUICE_AF_INET6);
}

SEC("cgroup/getpeername4")
int sluice_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SLUICE_AF_INET);
}

SEC("cgroup/getpeername6")
int sluice_sock6_getpeername(struct bpf_sock_addr *ctx)
{
	return sl_reverse(ctx, SLUICE_AF_INET6);
}

/* A socket closed by its owner. One that was given a backend but never sent
 * its SYN (connect() failed after this program rewrote it: no route, no
 * local port) gives back its reservation here; sockops never saw it. */
SEC("cgroup/sock_release")
int sluice_sock_release(struct bpf_sock *sk)
{
	struct sluice_sk_backend *sb;

	if (sk->protocol != SLUICE_PROTO_TCP)
		return SL_VERDICT_PASS;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (sb && (sb->flags & (SLUICE_SK_F_RESERVED | SLUICE_SK_F_SYN)) == SLUICE_SK_F_RESERVED) {
		sb->flags &= ~SLUICE_SK_F_RESERVED;
		sl_release(sb->svc_id, sb->svc_gen, sb->be_id, sb->be_gen);
	}
	return SL_VERDICT_PASS;
}
