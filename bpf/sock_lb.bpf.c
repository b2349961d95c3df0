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

/* Remember which frontend this socket asked for, for recvmsg/getpeername.
 * Written only when it changes: an unconnected UDP socket sends to the same
 * frontend datagram after datagram. 0 or a negative errno. */
static __always_inline int sl_revnat_store(const struct sl_req *req,
					   const struct sluice_backend *be)
{
	const struct sluice_revnat *old;
	struct sluice_revnat_key key = {};
	struct sluice_revnat val = {};

	key.cookie = req->cookie;
	key.addr = be->addr;
	key.port = be->port;
	key.family = be->family;
	val.addr = req->fe.addr;
	val.port = req->fe.port;
	old = bpf_map_lookup_elem(&sluice_revnat, &key);
	if (old && old->port == val.port && sl_addr_eq(&old->addr, &val.addr))
		return 0;
	return (int)bpf_map_update_elem(&sluice_revnat, &key, &val, BPF_ANY);
}

/* The frontend a socket asked for, given the peer address the hook sees. A
 * v4-mapped peer of an IPv6 socket is looked up as IPv4. */
static __always_inline const struct sluice_revnat *sl_revnat_find(struct bpf_sock_addr *ctx,
								  __u8 family, int *v4mapped)
{
	struct sluice_revnat_key key = {};

	key.cookie = bpf_get_socket_cookie(ctx);
	key.family = family;
	key.port = (__u16)ctx->user_port;
	*v4mapped = 0;
	if (family == SLUICE_AF_INET) {
		key.addr.a32[0] = ctx->user_ip4;
	} else {
		key.addr.a32[0] = ctx->user_ip6[0];
		key.addr.a32[1] = ctx->user_ip6[1];
		key.addr.a32[2] = ctx->user_ip6[2];
		key.addr.a32[3] = ctx->user_ip6[3];
		*v4mapped = sl_unmap(&key.family, key.addr.a32);
	}
	return bpf_map_lookup_elem(&sluice_revnat, &key);
}

/*
 * Tag a TCP socket with its backend, for sockops to follow it. The tag
 * carries the active-connection reservation made by sl_select: whoever sees
 * the socket end (sockops at its close, or sock_release when it never sent a
 * SYN) gives it back. No tag, no reservation.
 */
static __always_inline void sl_sk_remember(struct bpf_sock_addr *ctx, const struct sl_req *req,
					   __u32 be_id, __u32 flags)
{
	struct sluice_sk_backend *sb = NULL;
	struct bpf_sock *sk = ctx->sk;

	if (sk)
		sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!sb) {
		if (req->reserved)
			sl_release(req->svc_id, be_id);
		return;
	}
	/* A connect() that failed before its SYN, tried again. */
	if ((sb->flags & (SLUICE_SK_F_RESERVED | SLUICE_SK_F_SYN)) == SLUICE_SK_F_RESERVED)
		sl_release(sb->svc_id, sb->be_id);
	sb->be_id = be_id;
	sb->svc_id = req->svc_id;
	sb->start_ns = bpf_ktime_get_ns();
	sb->flags = (req->reserved ? SLUICE_SK_F_RESERVED : 0) | flags;
	sb->user_timeout = 0;
	sb->connect_timeout_ms = req->connect_timeout_ms;
	sb->idle_timeout_s = req->idle_timeout_s;
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
static __always_inline int sl_translate(struct bpf_sock_addr *ctx, struct sl_req *req,
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
			sl_release(req->svc_id, be_id);
		return -ECONNREFUSED;
	}
	lo_port = sl_mtls_outbound(ctx, req, be, be_id);
	if (lo_port < 0) {
		if (req->reserved)
			sl_release(req->svc_id, be_id);
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
		sl_revnat_store(req, &lo);
	} else {
		sl_revnat_store(req, be);
	}
	if (req->fe.proto == SLUICE_PROTO_TCP)
		sl_sk_remember(ctx, req, be_id, lo_port ? SLUICE_SK_F_MTLS : 0);
	return 0;
}

SEC("cgroup/connect4")
int sluice_sock4_connect(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v4(&req, ctx);
	req.connect = 1;
	return sl_connect_verdict(sl_translate(ctx, &req, SLUICE_AF_INET));
}

SEC("cgroup/connect6")
int sluice_sock6_connect(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v6(&req, ctx);
	req.connect = 1;
	return sl_connect_verdict(sl_translate(ctx, &req, SLUICE_AF_INET6));
}

/* sendmsg() with a destination: unconnected UDP. */
SEC("cgroup/sendmsg4")
int sluice_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v4(&req, ctx);
	req.hash = sl_flow_hash(&req, 0);
	return sl_sendmsg_verdict(sl_translate(ctx, &req, SLUICE_AF_INET));
}

SEC("cgroup/sendmsg6")
int sluice_sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	struct sl_req req;

	sl_req_v6(&req, ctx);
	req.hash = sl_flow_hash(&req, 0);
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
		ctx->user_ip4 = rn->addr.a32[0];
	} else if (v4mapped) {
		ctx->user_ip6[3] = rn->addr.a32[0];
	} else {
		ctx->user_ip6[0] = rn->addr.a32[0];
		ctx->user_ip6[1] = rn->addr.a32[1];
		ctx->user_ip6[2] = rn->addr.a32[2];
		ctx->user_ip6[3] = rn->addr.a32[3];
	}
	ctx->user_port = rn->port;
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
		sl_release(sb->svc_id, sb->be_id);
	}
	return SL_VERDICT_PASS;
}
