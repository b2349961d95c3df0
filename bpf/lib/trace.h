/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Tracing: which balanced TCP connections are traced, and the one
 * struct sluice_span_rec each of them ends in (sluice_spans).
 *
 * The decision. While sluice_settings.trace_on is set, sockops marks each
 * balanced socket that gets established SLUICE_SK_F_TRACE_PENDING, and the
 * first payload the caller sends is searched for a traceparent
 * (traceparent.h): cgroup_skb/egress looks at it on the normal path, sk_msg
 * on a same-node redirected one, whichever sees it first. A traceparent
 * with the sampled flag: traced, in that trace; with the flag unset: not
 * traced; none: traced with probability trace_sample, in a new trace. Only
 * a traced socket gets a sluice_sk_trace. A connection that ends without
 * ever sending (closed, or its connect failed) and one refused at connect()
 * are decided by trace_sample alone.
 *
 * Only the first payload is looked at, and only its first
 * SLUICE_TRACE_SCAN_BYTES bytes: a traceparent in a later write, or one
 * split across two writes, is not found, and the connection is sampled as
 * one without. (An HTTP/1.x client writes its request head in one go; the
 * header's whole line must be inside the first write.)
 */
#ifndef SLUICE_BPF_TRACE_H
#define SLUICE_BPF_TRACE_H

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "addr.h"
#include "events.h"
#include "maps.h"

/* A traceparent header's fields (W3C Trace Context, version 00). */
struct sl_traceparent {
	__u8 trace_id[16];
	__u8 parent_id[8];
	__u8 flags; /* trace-flags; bit 0: sampled */
};

#define SL_TRACE_SAMPLE_ALL 0xffffffffU

/* The settings while tracing is on; NULL while it is off. */
static __always_inline const struct sluice_settings *sl_trace_settings(void)
{
	__u32 zero = 0;
	const struct sluice_settings *set = bpf_map_lookup_elem(&sluice_settings, &zero);

	return set && set->trace_on ? set : NULL;
}

/* A connection without a traceparent is traced with probability sample. */
static __always_inline int sl_trace_sampled(const struct sluice_settings *set)
{
	return set->trace_sample == SL_TRACE_SAMPLE_ALL ||
	       bpf_get_prandom_u32() < set->trace_sample;
}

/* A new trace's id: random, and never all zero (invalid in W3C). */
static __always_inline void sl_trace_new_id(__u8 id[16])
{
	__u32 w[4];

	w[0] = bpf_get_prandom_u32();
	w[1] = bpf_get_prandom_u32();
	w[2] = bpf_get_prandom_u32();
	w[3] = bpf_get_prandom_u32() | 1;
	__builtin_memcpy(id, w, sizeof(w));
}

/* A zeroed record on sluice_spans, or NULL when the ring is full (counted
 * in events_lost, like a lost event). */
static __always_inline struct sluice_span_rec *sl_span_reserve(void)
{
	struct sluice_span_rec *r = bpf_ringbuf_reserve(&sluice_spans, sizeof(*r), 0);

	if (!r) {
		sl_count_lost();
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->proto = SLUICE_PROTO_TCP;
	r->end_ns = bpf_ktime_get_ns();
	return r;
}

/*
 * The first payload of a pending socket was seen: decide. tp is its
 * traceparent, or NULL. A traced socket gets its sluice_sk_trace; every
 * socket leaves the pending state, whatever the outcome.
 */
static __always_inline struct sluice_sk_trace *
sl_trace_decide(void *sk, struct sluice_sk_backend *sb, const struct sl_traceparent *tp)
{
	const struct sluice_settings *set = sl_trace_settings();
	struct sluice_sk_trace *t;

	sb->flags &= ~SLUICE_SK_F_TRACE_PENDING;
	if (!set)
		return NULL; /* switched off since the connection was established */
	if (tp ? !(tp->flags & 1) : !sl_trace_sampled(set))
		return NULL;
	t = bpf_sk_storage_get(&sluice_sk_trace, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!t)
		return NULL;
	if (tp) {
		__builtin_memcpy(t->trace_id, tp->trace_id, sizeof(t->trace_id));
		__builtin_memcpy(t->parent_id, tp->parent_id, sizeof(t->parent_id));
		t->flags = SLUICE_SPAN_F_SAMPLED | SLUICE_SPAN_F_PARENT;
	} else {
		sl_trace_new_id(t->trace_id);
		t->flags = SLUICE_SPAN_F_SAMPLED;
	}
	sb->flags |= SLUICE_SK_F_TRACED;
	return t;
}

/* Established while tracing is on: the first payload is to be looked at. */
static __always_inline void sl_trace_established(struct sluice_sk_backend *sb, __u64 connect_ns)
{
	sb->connect_ns = connect_ns;
	if (sl_trace_settings())
		sb->flags |= SLUICE_SK_F_TRACE_PENDING;
}

/* A record's addresses from sockops: the caller, the backend (the socket's
 * peer) and the frontend it asked for (its translation). */
static __always_inline void sl_span_addrs(struct sluice_span_rec *r, struct bpf_sock_ops *skops,
					  const struct sluice_sk_backend *sb)
{
	__u8 family = (__u8)skops->family;

	if (family == SLUICE_AF_INET) {
		r->src.a32[0] = skops->local_ip4;
		r->be_addr.a32[0] = skops->remote_ip4;
	} else {
		r->src.a32[0] = skops->local_ip6[0];
		r->src.a32[1] = skops->local_ip6[1];
		r->src.a32[2] = skops->local_ip6[2];
		r->src.a32[3] = skops->local_ip6[3];
		r->be_addr.a32[0] = skops->remote_ip6[0];
		r->be_addr.a32[1] = skops->remote_ip6[1];
		r->be_addr.a32[2] = skops->remote_ip6[2];
		r->be_addr.a32[3] = skops->remote_ip6[3];
		sl_unmap_pair(&family, r->src.a32, r->be_addr.a32);
	}
	r->family = family;
	r->sport = (__u16)skops->local_port;
	r->be_port = bpf_ntohs((__u16)(skops->remote_port >> 16));
	r->fe_addr = sb->revnat.fe_addr;
	r->fe_port = bpf_ntohs(sb->revnat.fe_port);
	r->cookie = bpf_get_socket_cookie(skops);
	r->svc_id = sb->svc_id;
	r->be_id = sb->be_id;
	r->identity = sb->identity;
	r->retrans = skops->total_retrans;
}

/* What the peer of a traced redirected socket redirected to it; its entry
 * in sluice_trace_redir goes. */
static __always_inline __u64 sl_trace_unlink(const struct sluice_sk_trace *t)
{
	__u64 *v, n;

	if (!t->linked)
		return 0;
	v = bpf_map_lookup_elem(&sluice_trace_redir, &t->key);
	n = v ? *v : 0;
	bpf_map_delete_elem(&sluice_trace_redir, &t->key);
	return n;
}

/*
 * A balanced connection closed (sent/received: its payload bytes through
 * TCP). A traced one ends in its record; one still pending never sent
 * anything and is decided by sample now.
 */
static __always_inline void sl_trace_closed(struct bpf_sock_ops *skops, struct bpf_sock *sk,
					    struct sluice_sk_backend *sb, __u64 sent,
					    __u64 received, __u8 reason)
{
	const struct sluice_sk_trace *t = NULL;
	const struct sluice_settings *set;
	struct sluice_span_rec *r;

	if (sb->flags & SLUICE_SK_F_TRACED) {
		t = bpf_sk_storage_get(&sluice_sk_trace, sk, 0, 0);
		if (!t)
			return;
	} else if (sb->flags & SLUICE_SK_F_TRACE_PENDING) {
		sb->flags &= ~SLUICE_SK_F_TRACE_PENDING;
		set = sl_trace_settings();
		if (!set || !sl_trace_sampled(set))
			return;
	} else {
		return;
	}
	r = sl_span_reserve();
	if (!r)
		return;
	sl_span_addrs(r, skops, sb);
	r->connect_ns = sb->connect_ns;
	r->start_ns = sb->start_ns - sb->connect_ns;
	r->bytes_sent = sent;
	r->bytes_received = received;
	r->reason = reason;
	if (t) {
		__builtin_memcpy(r->trace_id, t->trace_id, sizeof(r->trace_id));
		__builtin_memcpy(r->parent_id, t->parent_id, sizeof(r->parent_id));
		r->flags = t->flags;
		r->bytes_sent += t->redir_sent;
		r->bytes_received += sl_trace_unlink(t);
	} else {
		sl_trace_new_id(r->trace_id);
		r->flags = SLUICE_SPAN_F_SAMPLED;
	}
	bpf_ringbuf_submit(r, 0);
}

/* A connect that failed (refused, timed out): no payload was ever sent, so
 * the sample decides. */
static __always_inline void sl_trace_failed(struct bpf_sock_ops *skops,
					    const struct sluice_sk_backend *sb, __u8 reason)
{
	const struct sluice_settings *set = sl_trace_settings();
	struct sluice_span_rec *r;

	if (!set || !sl_trace_sampled(set))
		return;
	r = sl_span_reserve();
	if (!r)
		return;
	sl_span_addrs(r, skops, sb);
	r->start_ns = sb->start_ns;
	r->reason = reason;
	sl_trace_new_id(r->trace_id);
	r->flags = SLUICE_SPAN_F_SAMPLED;
	bpf_ringbuf_submit(r, 0);
}

#ifdef SLUICE_BPF_LB_H
/* A TCP connect() refused by the connect hook (err: sl_translate's): no
 * backend, a limit or the policy. Decided by sample; drop says why. */
static __always_inline void sl_trace_refused(struct sl_req *req, int err)
{
	const struct sluice_settings *set;
	struct sluice_span_rec *r;

	if ((err != -ECONNREFUSED && err != -EPERM) || !req->connect ||
	    req->fe.proto != SLUICE_PROTO_TCP)
		return;
	set = sl_trace_settings();
	if (!set || !sl_trace_sampled(set))
		return;
	r = sl_span_reserve();
	if (!r)
		return;
	r->start_ns = r->end_ns;
	r->cookie = req->cookie;
	r->family = req->fe.family;
	r->src = req->client;
	if (req->v4mapped)
		sl_v4mapped_to_v4(r->src.a32);
	r->sport = (__u16)req->client_port;
	r->fe_addr = req->fe.addr;
	r->fe_port = bpf_ntohs(req->fe.port);
	r->svc_id = req->svc_id;
	r->identity = sl_req_identity(req);
	r->drop = (__u8)(req->reason + 1);
	sl_trace_new_id(r->trace_id);
	r->flags = SLUICE_SPAN_F_SAMPLED;
	bpf_ringbuf_submit(r, 0);
}
#endif

#endif /* SLUICE_BPF_TRACE_H */
