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

#include "lib/active.h"
#include "lib/addr.h"
#include "lib/events.h"
#include "lib/maps.h"
#include "lib/traceparent.h"

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

/* Socket options (uapi values), for bpf_setsockopt. */
#define SL_SOL_SOCKET	    1
#define SL_SO_KEEPALIVE	    9
#define SL_SOL_TCP	    6
#define SL_TCP_KEEPIDLE	    4
#define SL_TCP_KEEPINTVL    5
#define SL_TCP_KEEPCNT	    6
#define SL_TCP_USER_TIMEOUT 18

/* Keepalive probes sent before an idle connection is declared dead. */
#define SL_KEEPALIVE_PROBES 3

/* Counters of a tag's ids; NULL for id 0 (forgotten by sl_tag_check). */
static __always_inline struct sluice_backend_stats *sl_be_stats(__u32 be_id)
{
	return be_id ? bpf_map_lookup_elem(&sluice_backend_stats, &be_id) : NULL;
}

static __always_inline struct sluice_svc_hist *sl_svc_hist(__u32 svc_id)
{
	return svc_id ? bpf_map_lookup_elem(&sluice_svc_hist, &svc_id) : NULL;
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

static __always_inline void sl_mtls_on_connect(struct bpf_sock_ops *skops);

/* SYN about to be sent: the first callback of an active connection. */
static __always_inline int sl_on_connect(struct bpf_sock_ops *skops)
{
	struct sluice_sk_backend *sb = sl_sk_tag(skops->sk);

	int timeout;

	if (!sb)
		return 0; /* not balanced: no further callbacks */
	if (sb->flags & SLUICE_SK_F_MTLS)
		sl_mtls_on_connect(skops);
	sb->start_ns = bpf_ktime_get_ns();
	/* timeouts.connect: TCP_USER_TIMEOUT bounds the SYN retransmissions
	 * too (tcp_write_timeout). The socket's own value comes back at
	 * establishment. */
	if (sb->connect_timeout_ms) {
		timeout = 0;
		if (bpf_getsockopt(skops, SL_SOL_TCP, SL_TCP_USER_TIMEOUT, &timeout,
				   sizeof(timeout)))
			timeout = 0;
		sb->user_timeout = timeout;
		timeout = (int)sb->connect_timeout_ms;
		bpf_setsockopt(skops, SL_SOL_TCP, SL_TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
	}
	if (bpf_sock_ops_cb_flags_set(skops,
				      skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG))
		return 0; /* no close callback: nothing will be counted */
	sb->flags |= SLUICE_SK_F_SYN;
	return 0;
}

/* Give back the active-connection reservation of a socket that ended. */
static __always_inline void sl_release_sk(struct sluice_sk_backend *sb)
{
	if (!(sb->flags & SLUICE_SK_F_RESERVED))
		return;
	sb->flags &= ~SLUICE_SK_F_RESERVED;
	sl_release(sb->svc_id, sb->svc_gen, sb->be_id, sb->be_gen);
}

/* Established: the SYN-phase timeout makes way for the socket's own, and
 * timeouts.idle turns keepalive on: after idle seconds without traffic,
 * SL_KEEPALIVE_PROBES probes idle/10 seconds apart (at least 1) end a
 * connection whose peer is gone. */
static __always_inline void sl_set_timeouts(struct bpf_sock_ops *skops,
					    const struct sluice_sk_backend *sb)
{
	int v;

	if (sb->connect_timeout_ms) {
		v = (int)sb->user_timeout;
		bpf_setsockopt(skops, SL_SOL_TCP, SL_TCP_USER_TIMEOUT, &v, sizeof(v));
	}
	if (sb->idle_timeout_s) {
		v = 1;
		bpf_setsockopt(skops, SL_SOL_SOCKET, SL_SO_KEEPALIVE, &v, sizeof(v));
		v = (int)sb->idle_timeout_s;
		bpf_setsockopt(skops, SL_SOL_TCP, SL_TCP_KEEPIDLE, &v, sizeof(v));
		v = (int)(sb->idle_timeout_s / 10);
		if (v < 1)
			v = 1;
		bpf_setsockopt(skops, SL_SOL_TCP, SL_TCP_KEEPINTVL, &v, sizeof(v));
		v = SL_KEEPALIVE_PROBES;
		bpf_setsockopt(skops, SL_SOL_TCP, SL_TCP_KEEPCNT, &v, sizeof(v));
	}
}

/* A connect succeeded: the backend's failure run is over. Once it has been
 * back for as long as its last ejection lasted, the ejection multiplier
 * starts again from one. */
static __always_inline void sl_outlier_success(__u32 be_id, __u64 now)
{
	struct sluice_backend_rt *rt =
	    be_id ? bpf_map_lookup_elem(&sluice_backend_rt, &be_id) : NULL;

	if (!rt)
		return;
	if (rt->failures)
		rt->failures = 0;
	if (rt->times_ejected && now > rt->ejected_until_ns &&
	    now - rt->ejected_until_ns > rt->ejected_until_ns - rt->ejected_at_ns)
		rt->times_ejected = 0;
}

struct sl_eject_scan {
	__u64 now;
	__u32 svc_id;
	__u32 gen;
	__u32 ejected;
};

static long sl_count_ejected(__u32 i, void *data)
{
	struct sl_eject_scan *c = data;
	struct sluice_slot_key k = {.svc_id = c->svc_id, .slot = (__u16)i, .gen = (__u8)c->gen};
	struct sluice_backend_rt *rt;
	__u32 *id;

	id = bpf_map_lookup_elem(&sluice_slots, &k);
	if (!id)
		return 1;
	rt = bpf_map_lookup_elem(&sluice_backend_rt, id);
	if (rt && rt->ejected_until_ns > c->now)
		c->ejected++;
	return 0;
}

/*
 * A connect failed (refused, or timed out in the SYN phase). At
 * consecutive_failures the backend is ejected for base_ejection_time x the
 * times it was ejected in a row (at most 300 s), unless that would put more
 * than max_ejection_percent of the service's backends out at once. The run
 * of failures is not reset by an ejection: once it is over, the next failure
 * ejects again at once, and only a success starts afresh (half-open). Two
 * CPUs ejecting backends of one service at the same instant may both pass
 * the percentage check: the bound is exact up to that race.
 */
static __always_inline void sl_outlier_failure(struct bpf_sock_ops *skops,
					       const struct sluice_sk_backend *sb)
{
	struct sl_eject_scan scan = {};
	const struct sluice_service *svc;
	struct sluice_backend_rt *rt;
	struct sluice_event *ev;
	__u32 id = sb->svc_id, failures, times;
	__u64 now, dur;

	if (!sb->svc_id || !sb->be_id)
		return; /* an id that went to another since (sl_tag_check) */
	svc = bpf_map_lookup_elem(&sluice_services, &id);
	if (!svc || !(svc->flags & SLUICE_SVC_F_OUTLIER) || !svc->ejection_failures)
		return;
	id = sb->be_id;
	rt = bpf_map_lookup_elem(&sluice_backend_rt, &id);
	if (!rt)
		return;
	failures = sl_add(&rt->failures, 1) + 1;
	now = bpf_ktime_get_ns();
	if (failures < svc->ejection_failures || rt->ejected_until_ns > now)
		return;
	scan.now = now;
	scan.svc_id = sb->svc_id;
	scan.gen = svc->gen;
	if (svc->count > SLUICE_MAX_BACKENDS_PER_SERVICE)
		return;
	bpf_loop(svc->count, sl_count_ejected, &scan, 0);
	if ((__u64)(scan.ejected + 1) * 100 > (__u64)svc->ejection_max_pct * svc->count)
		return;
	times = rt->times_ejected + 1;
	rt->times_ejected = times;
	dur = (__u64)svc->ejection_base_ms * 1000000 * times;
	if (dur > SLUICE_MAX_EJECTION_NS)
		dur = SLUICE_MAX_EJECTION_NS;
	rt->ejected_at_ns = now;
	rt->ejected_until_ns = now + dur;
	ev = sl_event_reserve(SLUICE_EV_EJECT);
	if (!ev)
		return;
	sl_event_fill(ev, skops, sb, SLUICE_REASON_NONE, dur);
	sl_event_submit(ev);
}

static __always_inline void sl_on_established(struct bpf_sock_ops *skops,
					      struct sluice_sk_backend *sb)
{
	struct sluice_svc_hist *h = sl_svc_hist(sb->svc_id);
	__u64 now = bpf_ktime_get_ns(), took = now - sb->start_ns;

	sb->flags |= SLUICE_SK_F_ESTABLISHED;
	sb->start_ns = now;
	sl_set_timeouts(skops, sb);
	sl_outlier_success(sb->be_id, now);
	sl_trace_established(sb, took);
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
	sl_trace_closed(skops, sk, sb, sent, received, reason);
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

/* A failed connect, on the caller's edge of the service map: the edge its
 * connect() made, never a new one (its service may be gone since). */
static __always_inline void sl_edge_failure(const struct sluice_sk_backend *sb)
{
	struct sluice_edge_key k = {.identity = sb->identity, .svc_id = sb->svc_id};
	struct sluice_edge_stats *st = sb->svc_id ? bpf_map_lookup_elem(&sluice_edges, &k) : NULL;

	if (st)
		sl_add(&st->failures, 1);
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
	sl_edge_failure(sb);
	sl_trace_failed(skops, sb, reason);
	sl_emit(skops, sb, SLUICE_EV_CONNECT_FAIL, reason, bpf_ktime_get_ns() - sb->start_ns);
	/* The owner closing a socket still in its SYN phase leaves no error:
	 * that is no fault of the backend's. */
	if (err)
		sl_outlier_failure(skops, sb);
}

static __always_inline int sl_on_state(struct bpf_sock_ops *skops)
{
	__u32 old_state = skops->args[0], new_state = skops->args[1];
	struct bpf_sock *sk = skops->sk;
	struct sluice_sk_backend *sb = sl_sk_tag(sk);

	if (!sb || !sk)
		return 0;
	if (new_state == BPF_TCP_CLOSE || new_state == BPF_TCP_ESTABLISHED)
		sl_tag_check(sb);
	if (new_state == BPF_TCP_CLOSE)
		sl_release_sk(sb);
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

/* mtls: a socket sent to the agent's outbound listener has its source port
 * now. Its record moves from socket storage to sluice_mtls_conn, keyed by
 * that end as the agent's accepted socket sees its peer. */
static __always_inline void sl_mtls_on_connect(struct bpf_sock_ops *skops)
{
	struct sluice_mtls_conn_key k = {};
	struct bpf_sock *sk = skops->sk;
	struct sluice_mtls_orig *o;
	struct sl_tuple t;

	if (!sk)
		return;
	o = bpf_sk_storage_get(&sluice_mtls_sk, sk, 0, 0);
	if (!o)
		return;
	sl_tuple(&t, skops);
	k.family = t.family;
	__builtin_memcpy(k.addr.a32, t.l, sizeof(t.l));
	k.port = bpf_htons(t.lport);
	bpf_map_update_elem(&sluice_mtls_conn, &k, o, BPF_ANY);
	bpf_sk_storage_delete(&sluice_mtls_sk, sk);
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

/*
 * Tracing's look at the first payload of balanced sockets on the normal
 * path (trace.h). An egress skb hook rather than a probe on tcp_sendmsg: it
 * runs only for the served cgroup's sockets, sees the bytes as they leave
 * whatever the send call, and needs no kernel-version-specific struct
 * walking; sockops cannot read payload. Measured with
 * tools/bench/trace-cost.sh (2 CPUs, kernel 6.18, connect + GET + close):
 * BPF time per connection 1721 ns without this program, 1922 ns with it and
 * tracing off (one more run per packet, most of it bpf_stats' own clock
 * reads), 2069 ns at sample 0, 3813 ns traced; the connection rate is the
 * same within noise, traced aside.
 */
SEC("cgroup_skb/egress")
int sluice_trace_egress(struct __sk_buff *skb)
{
	sl_trace_skb(skb);
	return 1;
}
