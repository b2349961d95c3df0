/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Active-connection counts, reserved at connect() and given back once. */
#ifndef SLUICE_BPF_ACTIVE_H
#define SLUICE_BPF_ACTIVE_H

#include "events.h"
#include "maps.h"

/* Give back a service's (and, when be_id is set, a backend's) active count. */
static __always_inline void sl_release(__u32 svc_id, __u32 be_id)
{
	struct sluice_svc_rt *srt = bpf_map_lookup_elem(&sluice_svc_rt, &svc_id);
	struct sluice_backend_rt *brt =
	    be_id ? bpf_map_lookup_elem(&sluice_backend_rt, &be_id) : NULL;

	if (srt)
		sl_add(&srt->active, -1);
	if (brt)
		sl_add(&brt->active, -1);
}

#endif /* SLUICE_BPF_ACTIVE_H */
