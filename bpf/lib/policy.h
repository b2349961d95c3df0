/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Identities and L4 policy, shared by the socket programs (who is calling:
 * the caller's cgroup) and the TC ingress program (who is sending: the
 * packet's source address).
 */
#ifndef SLUICE_BPF_POLICY_H
#define SLUICE_BPF_POLICY_H

#include <bpf/bpf_helpers.h>

#include "events.h"
#include "shared_maps.h"

/* The identity of an address, from the ipcache; 0 when none covers it. */
static __always_inline __u32 sl_addr_identity(const union sluice_addr *a, __u8 family)
{
	struct sluice_ipcache_key k = {};
	__u32 *id;

	if (family == SLUICE_AF_INET) {
		k.prefixlen = 128;
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], a->a8, 4);
	} else {
		k.prefixlen = 128;
		__builtin_memcpy(k.addr, a->a8, 16);
	}
	id = bpf_map_lookup_elem(&sluice_ipcache, &k);
	return id ? *id : 0;
}

/*
 * May this CPU emit one more audit event? A token bucket per CPU, written as
 * GCRA like rate_limit: SLUICE_AUDIT_BURST events at once, then
 * SLUICE_AUDIT_RATE a second. What is over is counted in audit_suppressed.
 * Per CPU, so no lock and no atomics: a softirq (TC ingress) that interrupts
 * a connect() on the same CPU between the read and the write can at worst
 * let one event more through.
 */
static __always_inline int sl_audit_admit(void)
{
	const __u64 interval = 1000000000ULL / SLUICE_AUDIT_RATE;
	struct sluice_audit_budget *b;
	struct sluice_global_stats *gs;
	__u32 zero = 0;
	__u64 now, tat;

	b = bpf_map_lookup_elem(&sluice_audit_budget, &zero);
	if (!b)
		return 0;
	now = bpf_ktime_get_ns();
	tat = b->tat_ns > now ? b->tat_ns : now;
	if (tat + interval - now <= interval * SLUICE_AUDIT_BURST) {
		b->tat_ns = tat + interval;
		return 1;
	}
	gs = bpf_map_lookup_elem(&sluice_global_stats, &zero);
	if (gs)
		sl_add(&gs->audit_suppressed, 1);
	return 0;
}

/* Emit a policy decision: for a denial, and for an allowed connection only
 * with agent.audit: all, within this CPU's audit budget. Never waits: a full
 * ring buffer counts the event as lost. */
static __always_inline struct sluice_audit_event *sl_audit_reserve(int denied)
{
	struct sluice_settings *set;
	struct sluice_audit_event *a;
	__u32 zero = 0;

	if (!denied) {
		set = bpf_map_lookup_elem(&sluice_settings, &zero);
		if (!set || !set->audit_all)
			return NULL;
	}
	if (!sl_audit_admit())
		return NULL;
	a = bpf_ringbuf_reserve(&sluice_events, sizeof(*a), 0);
	if (!a) {
		sl_count_lost();
		return NULL;
	}
	__builtin_memset(a, 0, sizeof(*a));
	a->ev.type = SLUICE_EV_POLICY;
	a->ev.ts_ns = bpf_ktime_get_ns();
	a->denied = (__u8)denied;
	return a;
}

static __always_inline void sl_count_policy_reject(__u32 svc_id)
{
	struct sluice_svc_stats *st = bpf_map_lookup_elem(&sluice_svc_stats, &svc_id);

	if (st)
		__sync_fetch_and_add(&st->rejected[SLUICE_DROP_POLICY], 1);
}

#endif /* SLUICE_BPF_POLICY_H */
