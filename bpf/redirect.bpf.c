// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Same-node redirection: sockops put both ends of a same-node TCP connection
 * into sluice_sockhash; this sk_msg program, attached to that map, hands
 * each send straight to the peer socket's receive queue. A socket whose peer
 * is not in the map sends through the normal stack.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/addr.h"
#include "lib/events.h"
#include "lib/maps.h"
#include "lib/traceparent.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The peer's key: this socket's 4-tuple reversed, in the same netns. */
static __always_inline void sl_peer_key(struct sluice_sock_key *k, struct sk_msg_md *msg)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = (__u8)msg->family;
	k->netns = bpf_get_netns_cookie(msg);
	k->local_port = bpf_ntohs((__u16)(msg->remote_port >> 16));
	k->remote_port = (__u16)msg->local_port;
	if (msg->family == SLUICE_AF_INET) {
		k->local.a32[0] = msg->remote_ip4;
		k->remote.a32[0] = msg->local_ip4;
	} else {
		k->local.a32[0] = msg->remote_ip6[0];
		k->local.a32[1] = msg->remote_ip6[1];
		k->local.a32[2] = msg->remote_ip6[2];
		k->local.a32[3] = msg->remote_ip6[3];
		k->remote.a32[0] = msg->local_ip6[0];
		k->remote.a32[1] = msg->local_ip6[1];
		k->remote.a32[2] = msg->local_ip6[2];
		k->remote.a32[3] = msg->local_ip6[3];
		sl_unmap_pair(&k->family, k->local.a32, k->remote.a32);
	}
}

SEC("sk_msg")
int sluice_sk_msg(struct sk_msg_md *msg)
{
	struct sluice_global_stats *gs;
	struct sluice_sock_key peer;
	__u32 zero = 0, size = msg->size;

	sl_peer_key(&peer, msg);
	sl_trace_msg_first(msg);
	if (bpf_msg_redirect_hash(msg, &sluice_sockhash, &peer, BPF_F_INGRESS) != SK_PASS)
		return SK_PASS; /* no peer here: the normal stack */
	sl_trace_msg_redirected(msg, &peer, size);
	gs = bpf_map_lookup_elem(&sluice_global_stats, &zero);
	if (gs)
		sl_add(&gs->redirected_bytes, size);
	return SK_PASS;
}
