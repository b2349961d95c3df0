/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The traceparent in a pending socket's first payload (see trace.h): the
 * payload's first SLUICE_TRACE_SCAN_BYTES bytes are copied to a per-CPU
 * scratch buffer and searched for an HTTP/1.x header line
 * "traceparent: 00-<32 hex>-<16 hex>-<2 hex>" (name in any case, optional
 * blanks before the value), up to the end of the request head. Loops are
 * bounded by SLUICE_TRACE_SCAN_BYTES; the parse itself runs once.
 */
#ifndef SLUICE_BPF_TRACEPARENT_H
#define SLUICE_BPF_TRACEPARENT_H

#include "trace.h"

_Static_assert((SLUICE_TRACE_SCAN_BYTES & (SLUICE_TRACE_SCAN_BYTES - 1)) == 0,
	       "SLUICE_TRACE_SCAN_BYTES is a power of two (the copies mask with it)");

#define SL_TP_NAME_LEN	12 /* "traceparent:" */
#define SL_TP_VALUE_LEN 55 /* 00-<32>-<16>-<2> */
#define SL_TP_OWS_MAX	4  /* blanks allowed between the colon and the value */

/* A hex digit's value, or -1. */
static __always_inline int sl_hexval(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* 2n hex digits at p into out[0..n); 0, or -1 on a non-hex byte. */
static __always_inline int sl_unhex(const __u8 *p, __u8 *out, const int n)
{
	int i, hi, lo, any = 0;

#pragma unroll
	for (i = 0; i < n; i++) {
		hi = sl_hexval(p[2 * i]);
		lo = sl_hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (__u8)(hi << 4 | lo);
		any |= out[i];
	}
	return any ? 0 : -1; /* all zero is invalid too */
}

/* Does a line at p start with "traceparent:" (name in any case)? Letters
 * compare with their 0x20 bit set, which folds upper case only. */
static __always_inline int sl_tp_name(const __u8 *p)
{
	return (p[0] | 0x20) == 't' && (p[1] | 0x20) == 'r' && (p[2] | 0x20) == 'a' &&
	       (p[3] | 0x20) == 'c' && (p[4] | 0x20) == 'e' && (p[5] | 0x20) == 'p' &&
	       (p[6] | 0x20) == 'a' && (p[7] | 0x20) == 'r' && (p[8] | 0x20) == 'e' &&
	       (p[9] | 0x20) == 'n' && (p[10] | 0x20) == 't' && p[11] == ':';
}

struct sl_tp_scan {
	const __u8 *buf;
	__u32 n;
	int pos;
};

/* bpf_loop's step: is there a "traceparent:" line after buf[i]? */
static long sl_tp_scan_step(__u32 i, void *data)
{
	struct sl_tp_scan *c = data;
	const __u8 *buf = c->buf;

	if (i >= SLUICE_TRACE_SCAN_BYTES || i + 2 + SL_TP_NAME_LEN > c->n)
		return 1;
	if (buf[i] != '\n')
		return 0;
	if (buf[i + 1] == '\r' || buf[i + 1] == '\n')
		return 1; /* the end of the head */
	if (!sl_tp_name(&buf[i + 1]))
		return 0;
	c->pos = (int)(i + 1 + SL_TP_NAME_LEN);
	return 1;
}

/* Where the traceparent header's value starts in buf[0..n), or -1. The
 * first line (the request line) is never a header. A bpf_loop: verified
 * once, whatever the length. */
static __always_inline int sl_tp_find(const __u8 *buf, __u32 n)
{
	struct sl_tp_scan c = {.buf = buf, .n = n, .pos = -1};

	bpf_loop(SLUICE_TRACE_SCAN_BYTES, sl_tp_scan_step, &c, 0);
	return c.pos;
}

/* Parse the header in buf[0..n). 0 with tp filled, or -1: none, or not a
 * valid version-00 traceparent (which counts as none). */
static __always_inline int sl_tp_parse(const __u8 *buf, __u32 n, struct sl_traceparent *tp)
{
	int v = sl_tp_find(buf, n), k;
	const __u8 *p;

	if (v < 0 || v > SLUICE_TRACE_SCAN_BYTES + SL_TP_NAME_LEN)
		return -1;
	for (k = 0; k < SL_TP_OWS_MAX && (__u32)v < n && (buf[v] == ' ' || buf[v] == '\t'); k++)
		v++;
	if ((__u32)v + SL_TP_VALUE_LEN > n)
		return -1;
	if (v < 0 || v > SLUICE_TRACE_SCAN_BYTES + SL_TP_NAME_LEN + SL_TP_OWS_MAX)
		return -1;
	p = &buf[v];
	if (p[0] != '0' || p[1] != '0' || p[2] != '-' || p[35] != '-' || p[52] != '-')
		return -1;
	/* Version 00 has exactly these fields: the line ends here. */
	if ((__u32)v + SL_TP_VALUE_LEN < n && p[55] != '\r' && p[55] != '\n' && p[55] != ' ' &&
	    p[55] != '\t')
		return -1;
	if (sl_unhex(p + 3, tp->trace_id, 16) || sl_unhex(p + 36, tp->parent_id, 8))
		return -1;
	v = (sl_hexval(p[53]) << 4) | sl_hexval(p[54]);
	if (sl_hexval(p[53]) < 0 || sl_hexval(p[54]) < 0)
		return -1;
	tp->flags = (__u8)v;
	return 0;
}

/* This CPU's free scratch buffer, or NULL (nested twice already). Give it
 * back with sl_scratch_put(*s). */
static __always_inline __u8 *sl_scratch_get(struct sluice_trace_scratch **s)
{
	struct sluice_trace_scratch *b;
	__u32 key = 0, d;

	*s = bpf_map_lookup_elem(&sluice_trace_scratch, &key);
	if (!*s)
		return NULL;
	d = (*s)->depth++;
	if (d > 1)
		return NULL;
	key = d;
	b = bpf_map_lookup_elem(&sluice_trace_scratch, &key);
	return b ? b->buf : NULL;
}

static __always_inline void sl_scratch_put(struct sluice_trace_scratch *s)
{
	if (s)
		s->depth--;
}

#define SL_ETH_P_IP   0x0800
#define SL_ETH_P_IPV6 0x86DD

/* Where a TCP segment's payload starts in an egress skb (its data is at
 * the network header; the headers are in the linear part), or 0 when it is
 * not IPv4/IPv6 TCP. Direct reads, no helper: every packet of the cgroup
 * passes here while tracing is on. */
static __always_inline __u32 sl_skb_payload_off(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	const __u8 *ip = data, *tcp;
	__u32 off;

	if (skb->protocol == bpf_htons(SL_ETH_P_IP)) {
		if (data + 20 > end || ip[9] != SLUICE_PROTO_TCP)
			return 0;
		off = (ip[0] & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(SL_ETH_P_IPV6)) {
		if (data + 40 > end || ip[6] != SLUICE_PROTO_TCP)
			return 0;
		off = 40;
	} else {
		return 0;
	}
	if (off < 20 || off > 60)
		return 0;
	tcp = data + off;
	if ((void *)(tcp + 20) > end)
		return 0;
	return off + (tcp[12] >> 4) * 4;
}

/* n as a copy length the verifier accepts: 1..SLUICE_TRACE_SCAN_BYTES, else 0.
 * The bound is made at the call, on a 64-bit value: 6.1's verifier forgets
 * the bounds of a 32-bit value the compiler spilled to the stack, and learns
 * no lower bound from n != 0, so the range is made again as arithmetic. */
static __always_inline __u64 sl_copy_len(__u64 n)
{
	if (n < 1 || n > SLUICE_TRACE_SCAN_BYTES)
		return 0;
	asm volatile("" : "+r"(n));
	return ((n - 1) & (SLUICE_TRACE_SCAN_BYTES - 1)) + 1;
}

/* n payload bytes from off into buf: 0 or -1. */
static __always_inline int sl_skb_copy(struct __sk_buff *skb, __u32 off, __u8 *buf, __u64 n)
{
	n = sl_copy_len(n);
	if (!buf || !n)
		return -1;
	return bpf_skb_load_bytes(skb, off, buf, (__u32)n) ? -1 : 0;
}

/* The same from an sk_msg's first scatterlist element. */
static __always_inline int sl_msg_copy(struct sk_msg_md *msg, __u8 *buf, __u64 n)
{
	n = sl_copy_len(n);
	if (!buf || !n)
		return -1;
	return bpf_probe_read_kernel(buf, (__u32)n, msg->data) ? -1 : 0;
}

/*
 * cgroup_skb/egress: the first segment with payload of a pending balanced
 * socket is its first payload. Every other packet costs the settings
 * lookup (tracing off); while tracing is on, also a look at its headers,
 * and when it carries payload, one socket-storage lookup.
 */
static __always_inline void sl_trace_skb(struct __sk_buff *skb)
{
	struct sl_traceparent tp;
	struct sluice_trace_scratch *s;
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk;
	__u32 off;
	__u64 n;
	__u8 *buf;
	int found;

	if (!sl_trace_settings())
		return;
	off = sl_skb_payload_off(skb);
	if (!off || skb->len <= off)
		return; /* not TCP, or no payload (SYN, ACK, FIN) */
	sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb || !(sb->flags & SLUICE_SK_F_TRACE_PENDING))
		return;
	n = skb->len - off;
	if (n > SLUICE_TRACE_SCAN_BYTES)
		n = SLUICE_TRACE_SCAN_BYTES;
	buf = sl_scratch_get(&s);
	found = !sl_skb_copy(skb, off, buf, n) && !sl_tp_parse(buf, (__u32)n, &tp);
	sl_scratch_put(s);
	sl_trace_decide(sk, sb, found ? &tp : NULL);
}

/* sk_msg, before the redirect: the first payload of a pending socket (the
 * first scatterlist element of its first message: a sendfile() or splice()
 * whose data is not mapped there is sampled as one without a header). */
static __always_inline void sl_trace_msg_first(struct sk_msg_md *msg)
{
	struct sl_traceparent tp;
	struct sluice_trace_scratch *s;
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk;
	__u64 n;
	__u8 *buf;
	int found;

	if (!sl_trace_settings())
		return;
	sk = msg->sk;
	if (!sk)
		return;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb || !(sb->flags & SLUICE_SK_F_TRACE_PENDING))
		return;
	n = (__u64)(long)msg->data_end - (__u64)(long)msg->data;
	if (n > SLUICE_TRACE_SCAN_BYTES)
		n = SLUICE_TRACE_SCAN_BYTES;
	buf = sl_scratch_get(&s);
	found = !sl_msg_copy(msg, buf, n) && !sl_tp_parse(buf, (__u32)n, &tp);
	sl_scratch_put(s);
	sl_trace_decide(sk, sb, found ? &tp : NULL);
}

/*
 * sk_msg, after size bytes went straight to the peer's socket (peer: its
 * key). TCP never counts them. A traced socket counts what it sends, and
 * the first time enters its own key (the peer's reversed) in
 * sluice_trace_redir, where its peer's sends are counted as its received
 * bytes. While tracing is off nothing is counted.
 */
static __always_inline void sl_trace_msg_redirected(struct sk_msg_md *msg,
						    const struct sluice_sock_key *peer, __u32 size)
{
	struct bpf_sock *sk = msg->sk;
	struct sluice_sk_trace *t;
	__u64 zero = 0, *rcvd;

	if (!sk || !sl_trace_settings())
		return;
	rcvd = bpf_map_lookup_elem(&sluice_trace_redir, peer);
	if (rcvd) {
		sl_add(rcvd, size); /* the peer is traced: this is what it receives */
		return;
	}
	t = bpf_sk_storage_get(&sluice_sk_trace, sk, 0, 0);
	if (!t)
		return;
	t->redir_sent += size;
	t->flags |= SLUICE_SPAN_F_REDIRECTED;
	if (t->linked)
		return;
	t->key = *peer;
	t->key.local = peer->remote;
	t->key.remote = peer->local;
	t->key.local_port = peer->remote_port;
	t->key.remote_port = peer->local_port;
	if (!bpf_map_update_elem(&sluice_trace_redir, &t->key, &zero, BPF_ANY))
		t->linked = 1;
}

#endif /* SLUICE_BPF_TRACEPARENT_H */
