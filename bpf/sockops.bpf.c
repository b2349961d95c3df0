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
 * callbacks. With agent.redirect: local, established sockets whose peer is
 * on this node also join the sockhash for the sk_msg redirect. RTT_CB is not enabled (it fires per
 * ACK): the smoothed RTT is read once, at close.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/addr.h"
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

/* The tag cgroup/connect left on a balanced socket; NULL for any other. */
static __always_inline struct sluice_sk_backend *sl_sk_tag(struct bpf_sock *sk)
{
	return sk ? bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0) : NULL;
}

/* SYN about to be sent: the first callback of an active connection. */
static __always_inline int sl_on_connect(struct bpf_sock_ops *skops)
{
	struct sluice_sk_backend *sb = sl_sk_tag(skops->sk);

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
	struct bpf_sock *sk = skops->sk;
	struct sluice_sk_backend *sb = sl_sk_tag(sk);

	if (!sb || !sk)
		return 0;
	if (new_state == BPF_TCP_ESTABLISHED && old_state == BPF_TCP_SYN_SENT)
		sl_on_established(skops, sb);
	else if (new_state == BPF_TCP_CLOSE && (sb->flags & SLUICE_SK_F_ESTABLISHED))
		sl_on_closed(skops, sk, sb, old_state);
	else if (new_state == BPF_TCP_CLOSE && old_state == BPF_TCP_SYN_SENT)
		sl_on_failed(skops, sk, sb);
	return 0;
}

/* Set by the agent before loading (agent.redirect). */
const volatile struct sluice_sockops_cfg sl_cfg = {};

/* A socket's addresses and ports, read from the context once. */
struct sl_tuple {
	__u32 l[4], r[4];
	__u16 lport, rport; /* host order */
	__u8 family;
};

static __always_inline void sl_tuple(struct sl_tuple *t, struct bpf_sock_ops *skops)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->family = (__u8)skops->family;
	t->lport = (__u16)skops->local_port;
	t->rport = bpf_ntohs((__u16)(skops->remote_port >> 16));
	if (t->family == SLUICE_AF_INET) {
		t->l[0] = skops->local_ip4;
		t->r[0] = skops->remote_ip4;
		return;
	}
	t->l[0] = skops->local_ip6[0];
	t->l[1] = skops->local_ip6[1];
	t->l[2] = skops->local_ip6[2];
	t->l[3] = skops->local_ip6[3];
	t->r[0] = skops->remote_ip6[0];
	t->r[1] = skops->remote_ip6[1];
	t->r[2] = skops->remote_ip6[2];
	t->r[3] = skops->remote_ip6[3];
	sl_unmap_pair(&t->family, t->l, t->r);
}

/* Both ends on this node, in this netns: a connection to one's own address
 * (the kernel picks the destination as the source for local routes) or to
 * loopback. A client that binds another local address is not paired. */
static __always_inline int sl_local_peer(const struct sl_tuple *t)
{
	if (t->family == SLUICE_AF_INET)
		return t->r[0] == t->l[0] || (bpf_ntohl(t->r[0]) >> 24) == 127;
	return (t->r[0] == t->l[0] && t->r[1] == t->l[1] && t->r[2] == t->l[2] &&
		t->r[3] == t->l[3]) ||
	       (!t->r[0] && !t->r[1] && !t->r[2] && t->r[3] == bpf_htonl(1));
}

static __always_inline void sl_sock_key(struct sluice_sock_key *k, const struct sl_tuple *t,
					__u64 netns, int reversed)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = t->family;
	k->netns = netns;
	if (!reversed) {
		__builtin_memcpy(k->local.a32, t->l, sizeof(t->l));
		__builtin_memcpy(k->remote.a32, t->r, sizeof(t->r));
		k->local_port = t->lport;
		k->remote_port = t->rport;
	} else {
		__builtin_memcpy(k->local.a32, t->r, sizeof(t->r));
		__builtin_memcpy(k->remote.a32, t->l, sizeof(t->l));
		k->local_port = t->rport;
		k->remote_port = t->lport;
	}
}

/* An established same-node socket joins the sockhash, where sk_msg finds it
 * as its peer's destination. The passive end comes second: when its peer is
 * already there, the pair is complete. */
static __always_inline void sl_on_established_local(struct bpf_sock_ops *skops, int passive)
{
	struct sluice_global_stats *gs;
	struct sluice_sock_key k;
	struct sl_tuple t;
	__u32 zero = 0;
	__u8 one = 1;
	__u64 netns;

	sl_tuple(&t, skops);
	if (!sl_local_peer(&t))
		return;
	netns = bpf_get_netns_cookie(skops);
	sl_sock_key(&k, &t, netns, 0);
	if (bpf_sock_hash_update(skops, &sluice_sockhash, &k, BPF_NOEXIST))
		return;
	if (!passive) {
		/* The active end is established first: note it for its peer. */
		bpf_map_update_elem(&sluice_redir_pending, &k, &one, BPF_ANY);
		return;
	}
	sl_sock_key(&k, &t, netns, 1);
	if (bpf_map_delete_elem(&sluice_redir_pending, &k))
		return; /* the peer is not in the map: no pair */
	gs = bpf_map_lookup_elem(&sluice_global_stats, &zero);
	if (gs)
		sl_add(&gs->redirected_conns, 1);
}

SEC("sockops")
int sluice_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		sl_on_connect(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (sl_cfg.redirect_local)
			sl_on_established_local(skops, 0);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		if (sl_cfg.redirect_local)
			sl_on_established_local(skops, 1);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		sl_on_state(skops);
		break;
	default:
		break;
	}
	return SL_SOCKOPS_OK;
}
