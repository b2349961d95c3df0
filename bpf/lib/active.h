/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Active-connection counts, reserved at connect() and given back once, in
 * the generation of the id that counted them (SLUICE_RT_ONE in abi.h).
 */
#ifndef SLUICE_BPF_ACTIVE_H
#define SLUICE_BPF_ACTIVE_H

#include "events.h"
#include "maps.h"

/* Count one connection more; the generation it was counted in. */
static __always_inline __u32 sl_active_get(__u64 *active_gen)
{
	return sluice_rt_gen(sl_add(active_gen, SLUICE_RT_ONE));
}

/*
 * Take back one connection counted in generation 'gen'. When the id has
 * another generation by now (it went to another backend or service), the
 * count is not this socket's to touch: nothing is done, and should the
 * agent's reset land between the check and the decrement, the decrement
 * says so (it returns the word it changed) and is undone at once.
 */
static __always_inline void sl_active_put(__u64 *active_gen, __u32 gen)
{
	if (sluice_rt_gen(*(volatile __u64 *)active_gen) != gen)
		return;
	if (sluice_rt_gen(sl_add(active_gen, -SLUICE_RT_ONE)) != gen)
		sl_add(active_gen, SLUICE_RT_ONE);
}

/* Give back a service's (and, when be_id is set, a backend's) active count.
 * An id of 0 is none. */
static __always_inline void sl_release(__u32 svc_id, __u32 svc_gen, __u32 be_id, __u32 be_gen)
{
	struct sluice_svc_rt *srt = svc_id ? bpf_map_lookup_elem(&sluice_svc_rt, &svc_id) : NULL;
	struct sluice_backend_rt *brt =
	    be_id ? bpf_map_lookup_elem(&sluice_backend_rt, &be_id) : NULL;

	if (srt)
		sl_active_put(&srt->active_gen, svc_gen);
	if (brt)
		sl_active_put(&brt->active_gen, be_gen);
}

/*
 * Forget the ids of a socket's tag that went to another backend or service
 * since its connection was counted: such a socket charges nothing from then
 * on (no count, failure, ejection, bytes or histogram), and its events say
 * id 0. The agent resets an id's state only when it reassigns it, a grace
 * period after the id's previous holder was removed; a charge that races
 * with that reset lands in the new generation, and is at most one count.
 */
static __always_inline void sl_tag_check(struct sluice_sk_backend *sb)
{
	struct sluice_backend_rt *brt;
	struct sluice_svc_rt *srt;
	__u32 id;

	id = sb->be_id;
	brt = id ? bpf_map_lookup_elem(&sluice_backend_rt, &id) : NULL;
	if (id && (!brt || sluice_rt_gen(brt->active_gen) != sb->be_gen))
		sb->be_id = 0;
	id = sb->svc_id;
	srt = id ? bpf_map_lookup_elem(&sluice_svc_rt, &id) : NULL;
	if (id && (!srt || sluice_rt_gen(srt->active_gen) != sb->svc_gen))
		sb->svc_id = 0;
}

#endif /* SLUICE_BPF_ACTIVE_H */
