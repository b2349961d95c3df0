// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops: follows the TCP connections that the socket LB balanced, to keep
 * each backend's count of established connections. A socket that was not
 * balanced costs one socket-storage lookup at establishment and nothing
 * after: only balanced sockets ask for state-change callbacks.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SL_SOCKOPS_OK 1

static __always_inline void sl_active_add(__u32 be_id, __s64 delta)
{
	struct sluice_backend_stats *st = bpf_map_lookup_elem(&sluice_backend_stats, &be_id);

	if (st)
		__sync_fetch_and_add(&st->active, delta);
}

static __always_inline int sl_on_established(struct bpf_sock_ops *skops)
{
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return 0;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb || (sb->flags & SLUICE_SK_F_ESTABLISHED))
		return 0;
	sb->flags |= SLUICE_SK_F_ESTABLISHED;
	sl_active_add(sb->be_id, 1);
	return bpf_sock_ops_cb_flags_set(skops,
					 skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline int sl_on_state(struct bpf_sock_ops *skops)
{
	struct sluice_sk_backend *sb;
	struct bpf_sock *sk = skops->sk;

	if (skops->args[1] != BPF_TCP_CLOSE || !sk)
		return 0;
	sb = bpf_sk_storage_get(&sluice_sk_backend, sk, 0, 0);
	if (!sb || !(sb->flags & SLUICE_SK_F_ESTABLISHED))
		return 0;
	sb->flags &= ~SLUICE_SK_F_ESTABLISHED;
	sl_active_add(sb->be_id, -1);
	return 0;
}

SEC("sockops")
int sluice_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		sl_on_established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		sl_on_state(skops);
		break;
	default:
		break;
	}
	return SL_SOCKOPS_OK;
}
