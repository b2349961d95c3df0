// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops: follows the TCP connections that the socket LB balanced, from the
 * SYN to the close. cgroup/connect tagged each such socket with its backend
 * (socket storage); here a tagged socket asks for state-change callbacks,
 * and each transition updates the backend's counters, the service's
 * histograms and the event stream.
 *
 * A socket that was not balanced costs one socket-storage lookup, at
 * TCP_CONNECT_CB, and nothing after: only tagged sockets get further
 * callbacks. RTT_CB is not enabled (it fires per ACK): the smoothed RTT is
 * read once, at close.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/events.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SL_SOCKOPS_OK 1

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef ETIMEDOUT
#define ETIMEDOUT 110
#endif
#ifndef ECONNRESET
#define ECONNRESET 104
#endif
#ifndef EPIPE
#define EPIPE 32
#endif

static __always_inline struct sluice_backend_stats *sl_be_stats(__u32 be_id)
{
	return bpf_map_lookup_elem(&sluice_backend_stats, &be_id);
}

static __always_inline struct sluice_svc_hist *sl_svc_hist(__u32 svc_id)
{
	return bpf_map_lookup_elem(&sluice_svc_hist, &svc_id);
}

/* The socket's own address and the backend's, from the sockops context. */
static __always_inline void sl_event_addrs(struct sluice_event *ev, struct bpf_sock_ops *skops)
{
	ev->family = (__u8)skops->family;
	ev->proto = SLUICE_PROTO_TCP;
	if (skops->family == SLUICE_AF_INET) {
		ev->src.a32[0] = skops->local_ip4;
		ev->dst.a32[0] = skops->remote_ip4;
	} else {
		ev->src.a32[0] = skops->local_ip6[0];
		ev->src.a32[1] = skops->local_ip6[1];
		ev->src.a32[2] = skops->local_ip6[2];
		ev->src.a32[3] = skops->local_ip6[3];
		ev->dst.a32[0] = skops->remote_ip6[0];
		ev->dst.a32[1] = skops->remote_ip6[1];
		ev->dst.a32[2] = skops->remote_ip6[2];
		ev->dst.a32[3] = skops->remote_ip6[3];
	}
	ev->sport = (__u16)skops->local_port;
	ev->dport = bpf_ntohs((__u16)(skops->remote_port >> 16));
}

static __always_inline void sl_event_fill(struct sluice_event *ev, struct bpf_sock_ops *skops,
					  const struct sluice_sk_backend *sb, __u8 reason,
					  __u64 duration_ns)
{
	sl_event_addrs(ev, skops);
	ev->cookie = bpf_get_socket_cookie(skops);
	ev->svc_id = sb->svc_id;
	ev->be_id = sb->be_id;
	ev->reason = reason;
	ev->duration_ns = duration_ns;
}

static __always_inline void sl_emit(struct bpf_sock_ops *skops, const struct sluice_sk_backend *sb,
				    __u8 type, __u8 reason, __u64 duration_ns)
{
	struct sluice_event *ev = sl_event_reserve(type);

	if (!ev)
		return;
	sl_event_fill(ev, skops, sb, reason, duration_ns);
	sl_event_submit(ev);
}

/* SYN about to be sent: the first callback of an active connection. */
static __always_inline int sl_on_connect(struct bpf_sock_ops *skops)
{
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return 0;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb)
		return 0; /* not balanced: no further callbacks */
	sb->start_ns = bpf_ktime_get_ns();
	return bpf_sock_ops_cb_flags_set(skops,
					 skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void sl_on_established(struct bpf_sock_ops *skops,
					      struct sluice_sk_backend *sb)
{
	struct sluice_backend_stats *st = sl_be_stats(sb->be_id);
	struct sluice_svc_hist *h = sl_svc_hist(sb->svc_id);
	__u64 now = bpf_ktime_get_ns(), took = now - sb->start_ns;

	sb->flags |= SLUICE_SK_F_ESTABLISHED;
	sb->start_ns = now;
	if (st)
		sl_add(&st->active, 1);
	if (h)
		sl_hist_observe(&h->connect, took / 1000);
	sl_emit(skops, sb, SLUICE_EV_OPEN, SLUICE_REASON_NONE, took);
}

/*
 * Payload bytes of a closing connection. The kernel's counters move with
 * sequence numbers: bytes_acked includes our SYN, and our FIN once it is
 * acknowledged; bytes_received includes the peer's FIN. Which FINs went
 * which way follows from the state the socket closes from.
 */
static __always_inline void sl_payload(struct bpf_sock_ops *skops, const struct tcp_sock *tp,
				       __u32 old_state, int err, __u64 *sent, __u64 *received)
{
	int fin_sent = old_state == BPF_TCP_FIN_WAIT1 || old_state == BPF_TCP_FIN_WAIT2 ||
		       old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_TIME_WAIT ||
		       old_state == BPF_TCP_LAST_ACK;
	/* From FIN_WAIT2 the close is the TIME_WAIT hand-off (the peer's FIN
	 * came) unless an error ended it. */
	int fin_received = old_state == BPF_TCP_CLOSE_WAIT || old_state == BPF_TCP_LAST_ACK ||
			   old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_TIME_WAIT ||
			   (old_state == BPF_TCP_FIN_WAIT2 && !err);
	__u64 acked = skops->bytes_acked, rcvd = skops->bytes_received;
	__u64 fin_acked = fin_sent && tp && tp->snd_una == tp->write_seq;

	*sent = acked > 1 + fin_acked ? acked - 1 - fin_acked : 0;
	*received = rcvd > (__u64)fin_received ? rcvd - fin_received : 0;
}

static __always_inline void sl_on_closed(struct bpf_sock_ops *skops, struct bpf_sock *sk,
					 struct sluice_sk_backend *sb, __u32 old_state)
{
	struct sluice_backend_stats *st = sl_be_stats(sb->be_id);
	struct sluice_svc_hist *h = sl_svc_hist(sb->svc_id);
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct sluice_event *ev;
	__u64 sent, received;
	int err = 0;
	__u8 reason;

	if (tp)
		err = tp->inet_conn.icsk_inet.sk.sk_err;
	sl_payload(skops, tp, old_state, err, &sent, &received);
	sb->flags &= ~SLUICE_SK_F_ESTABLISHED;
	if (st) {
		sl_add(&st->active, -1);
		sl_add(&st->sent_bytes, sent);
		sl_add(&st->received_bytes, received);
		sl_add(&st->retransmits, skops->total_retrans);
	}
	if (h)
		sl_hist_observe(&h->rtt, skops->srtt_us >> 3);
	/* An abort (RST either way) closes straight from ESTABLISHED or
	 * CLOSE_WAIT, or leaves ECONNRESET/EPIPE; orderly closes pass FIN_WAIT
	 * or LAST_ACK without an error. */
	reason = old_state == BPF_TCP_ESTABLISHED || old_state == BPF_TCP_CLOSE_WAIT ||
			 err == ECONNRESET || err == EPIPE
		     ? SLUICE_REASON_RESET
		     : SLUICE_REASON_FIN;
	ev = sl_event_reserve(SLUICE_EV_CLOSE);
	if (!ev)
		return;
	sl_event_fill(ev, skops, sb, reason, bpf_ktime_get_ns() - sb->start_ns);
	ev->bytes_sent = sent;
	ev->bytes_received = received;
	ev->srtt_us = skops->srtt_us >> 3;
	ev->retrans = skops->total_retrans;
	sl_event_submit(ev);
}

static __always_inline void sl_on_failed(struct bpf_sock_ops *skops, struct bpf_sock *sk,
					 struct sluice_sk_backend *sb)
{
	struct sluice_backend_stats *st = sl_be_stats(sb->be_id);
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	__u8 reason = SLUICE_REASON_OTHER;
	int err = 0;

	if (tp)
		err = tp->inet_conn.icsk_inet.sk.sk_err;
	if (err == ECONNREFUSED)
		reason = SLUICE_REASON_REFUSED;
	else if (err == ETIMEDOUT)
		reason = SLUICE_REASON_TIMEOUT;
	if (st)
		sl_add(&st->connect_failures, 1);
	sl_emit(skops, sb, SLUICE_EV_CONNECT_FAIL, reason, bpf_ktime_get_ns() - sb->start_ns);
}

static __always_inline int sl_on_state(struct bpf_sock_ops *skops)
{
	__u32 old_state = skops->args[0], new_state = skops->args[1];
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return 0;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb)
		return 0;
	if (new_state == BPF_TCP_ESTABLISHED && old_state == BPF_TCP_SYN_SENT)
		sl_on_established(skops, sb);
	else if (new_state == BPF_TCP_CLOSE && (sb->flags & SLUICE_SK_F_ESTABLISHED))
		sl_on_closed(skops, sk, sb, old_state);
	else if (new_state == BPF_TCP_CLOSE && old_state == BPF_TCP_SYN_SENT)
		sl_on_failed(skops, sk, sb);
	return 0;
}

SEC("sockops")
int sluice_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		sl_on_connect(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		sl_on_state(skops);
		break;
	default:
		break;
	}
	return SL_SOCKOPS_OK;
}
