/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Events to the agent's ring buffer, and log2 histograms. */
#ifndef SLUICE_BPF_EVENTS_H
#define SLUICE_BPF_EVENTS_H

#include <bpf/bpf_helpers.h>

#include "shared_maps.h"

/* Counters here may be bumped from process context and from a softirq on
 * the same CPU, so even the per-CPU ones are updated atomically. */
#define sl_add(ptr, v) __sync_fetch_and_add((ptr), (v))

/* An event the full ring buffer had no room for. */
static __always_inline void sl_count_lost(void)
{
	struct sluice_global_stats *gs;
	__u32 zero = 0;

	gs = bpf_map_lookup_elem(&sluice_global_stats, &zero);
	if (gs)
		sl_add(&gs->events_lost, 1);
}

/* A reserved event, zeroed but for type and time. NULL when events are off
 * (sluice_settings), or, counted as lost, when the ring buffer is full. The
 * datapath never waits for it. */
static __always_inline struct sluice_event *sl_event_reserve(__u8 type)
{
	struct sluice_settings *set;
	struct sluice_event *ev;
	__u32 zero = 0;

	/* Nobody watching: no event, and no wake-up of the agent. */
	set = bpf_map_lookup_elem(&sluice_settings, &zero);
	if (!set || !set->events)
		return NULL;
	ev = bpf_ringbuf_reserve(&sluice_events, sizeof(*ev), 0);
	if (!ev) {
		sl_count_lost();
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->ts_ns = bpf_ktime_get_ns();
	return ev;
}

static __always_inline void sl_event_submit(struct sluice_event *ev)
{
	bpf_ringbuf_submit(ev, 0);
}

/* floor(log2(v)) for v > 0, without a loop the verifier has to walk. */
static __always_inline __u32 sl_log2(__u64 v)
{
	__u32 r = 0, s;

	s = (v > 0xffffffffULL) << 5;
	v >>= s;
	r |= s;
	s = (v > 0xffff) << 4;
	v >>= s;
	r |= s;
	s = (v > 0xff) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xf) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	return r | (__u32)(v >> 1);
}

static __always_inline void sl_hist_observe(struct sluice_hist *h, __u64 us)
{
	__u32 b = us ? sl_log2(us) : 0;

	if (b >= SLUICE_HIST_BUCKETS) {
		sl_add(&h->overflow, 1);
	} else {
		/* Hide b from the compiler so that the mask survives: the
		 * verifier needs the bound on the register it indexes with. */
		asm volatile("" : "+r"(b));
		sl_add(&h->buckets[b & (SLUICE_HIST_BUCKETS - 1)], 1);
	}
	sl_add(&h->sum_us, us);
}

#endif /* SLUICE_BPF_EVENTS_H */
