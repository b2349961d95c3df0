/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection. Helpers return a negative errno or 0; only the entry
 * programs turn that into a hook verdict.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include <bpf/bpf_endian.h>

#include "addr.h"
#include "events.h"
#include "hash.h"
#include "maps.h"

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef ENOENT
#define ENOENT 2
#endif

/* What the hook knows about one socket's request to reach a frontend. */
struct sl_req {
	struct sluice_frontend_key fe;
	union sluice_addr client; /* bound source address, or zero */
	__u64 cookie;
	__u32 client_port; /* bound source port (host order), or 0 */
	__u32 hash;
	__u32 v4mapped; /* an IPv6 socket asked for ::ffff:a.b.c.d: fe is IPv4 */
	__u32 svc_id;	/* out: the service the frontend belongs to */
};

static __always_inline void sl_count_reject(__u32 svc_id, enum sluice_drop_reason reason)
{
	struct sluice_svc_stats *st = bpf_map_lookup_elem(&sluice_svc_stats, &svc_id);

	if (st && reason < SLUICE_DROP__MAX)
		st->rejected[reason]++;
}

static __always_inline void sl_count_pick(__u32 be_id)
{
	struct sluice_backend_stats *st = bpf_map_lookup_elem(&sluice_backend_stats, &be_id);

	if (st)
		st->connections++;
}

/* The flow key Maglev hashes: client address, source port if bound, else the
 * socket cookie, and the frontend. */
static __always_inline __u32 sl_flow_hash(const struct sl_req *req)
{
	__u32 h = 0x5eed;

	h = sl_mix(h, req->client.a32[0]);
	h = sl_mix(h, req->client.a32[1]);
	h = sl_mix(h, req->client.a32[2]);
	h = sl_mix(h, req->client.a32[3]);
	if (req->client_port) {
		h = sl_mix(h, req->client_port);
	} else {
		h = sl_mix(h, (__u32)req->cookie);
		h = sl_mix(h, (__u32)(req->cookie >> 32));
	}
	h = sl_mix(h, req->fe.addr.a32[0]);
	h = sl_mix(h, req->fe.addr.a32[1]);
	h = sl_mix(h, req->fe.addr.a32[2]);
	h = sl_mix(h, req->fe.addr.a32[3]);
	h = sl_mix(h, ((__u32)req->fe.port << 8) | req->fe.proto);
	return sl_final(h);
}

static __always_inline const struct sluice_backend *sl_usable(__u32 be_id)
{
	const struct sluice_backend *be = bpf_map_lookup_elem(&sluice_backends, &be_id);

	if (!be || be->state != SLUICE_BE_HEALTHY)
		return NULL;
	return be;
}

/* Slot 'pos' of the service's live generation, when its backend is usable. */
static __always_inline const struct sluice_backend *sl_slot_backend(__u32 svc_id, __u8 gen,
								    __u32 pos, __u32 *be_id)
{
	struct sluice_slot_key key = {.svc_id = svc_id, .slot = (__u16)pos, .gen = gen};
	__u32 *id = bpf_map_lookup_elem(&sluice_slots, &key);

	if (!id)
		return NULL;
	*be_id = *id;
	return sl_usable(*id);
}

static __always_inline const struct sluice_backend *
sl_pick_maglev(__u32 svc_id, const struct sluice_service *svc, __u32 hash, __u32 *be_id)
{
	struct sluice_maglev_key mkey = {.svc_id = svc_id, .gen = svc->gen};
	const struct sluice_backend *be;
	void *table;
	__u32 i, idx, *id;

	if (!svc->maglev_m)
		return NULL;
	table = bpf_map_lookup_elem(&sluice_maglev, &mkey);
	if (!table)
		return NULL;
	idx = hash % svc->maglev_m;
	for (i = 0; i <= SLUICE_PICK_RETRIES; i++) {
		id = bpf_map_lookup_elem(table, &idx);
		if (!id)
			return NULL;
		*be_id = *id;
		be = sl_usable(*id);
		if (be)
			return be;
		idx = idx + 1 == svc->maglev_m ? 0 : idx + 1;
	}
	return NULL;
}

/* Pick a slot position by the service's lb, then walk forward past backends
 * that are not usable. */
static __always_inline const struct sluice_backend *
sl_pick_slot(__u32 svc_id, const struct sluice_service *svc, const struct sl_req *req, __u32 *be_id)
{
	const struct sluice_backend *be;
	__u32 i, pos, *rr;

	if (req->fe.proto == SLUICE_PROTO_UDP && req->hash) {
		/* Unconnected UDP: one socket stays on one backend. */
		pos = req->hash;
	} else if (svc->lb == SLUICE_LB_ROUND_ROBIN) {
		rr = bpf_map_lookup_elem(&sluice_rr, &svc_id);
		if (!rr)
			return NULL;
		pos = (*rr)++;
	} else {
		pos = bpf_get_prandom_u32();
	}
	pos %= svc->count;
	for (i = 0; i <= SLUICE_PICK_RETRIES; i++) {
		be = sl_slot_backend(svc_id, svc->gen, pos, be_id);
		if (be)
			return be;
		pos = pos + 1 == svc->count ? 0 : pos + 1;
	}
	return NULL;
}

static __always_inline void sl_emit_reject(const struct sl_req *req, __u32 svc_id)
{
	struct sluice_event *ev = sl_event_reserve(SLUICE_EV_NO_BACKEND);

	if (!ev)
		return;
	ev->cookie = req->cookie;
	ev->svc_id = svc_id;
	ev->family = req->fe.family;
	ev->proto = req->fe.proto;
	ev->src = req->client;
	ev->sport = (__u16)req->client_port;
	ev->dst = req->fe.addr;
	ev->dport = bpf_ntohs(req->fe.port);
	sl_event_submit(ev);
}

/*
 * Look the frontend up and choose a backend for it. Returns -ENOENT when the
 * destination is not a frontend (pass untouched), -ECONNREFUSED when the
 * service has no usable backend, 0 with *out filled otherwise.
 */
static __always_inline int sl_select(struct sl_req *req, const struct sluice_backend **out,
				     __u32 *out_id)
{
	const struct sluice_frontend *fe;
	const struct sluice_service *svc;
	const struct sluice_backend *be = NULL;
	__u32 svc_id, be_id = 0;

	fe = bpf_map_lookup_elem(&sluice_frontends, &req->fe);
	if (!fe)
		return -ENOENT;
	svc_id = fe->svc_id;
	svc = bpf_map_lookup_elem(&sluice_services, &svc_id);
	if (svc && svc->count) {
		if (svc->lb == SLUICE_LB_MAGLEV)
			be = sl_pick_maglev(svc_id, svc, sl_flow_hash(req), &be_id);
		else
			be = sl_pick_slot(svc_id, svc, req, &be_id);
	}
	req->svc_id = svc_id;
	if (!be) {
		sl_count_reject(svc_id, SLUICE_DROP_NO_BACKEND);
		sl_emit_reject(req, svc_id);
		return -ECONNREFUSED;
	}
	sl_count_pick(be_id);
	*out = be;
	*out_id = be_id;
	return 0;
}

#endif /* SLUICE_BPF_LB_H */
