/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection. Helpers return a negative errno or 0; only the entry
 * programs turn that into a hook verdict.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include <bpf/bpf_endian.h>

#include "active.h"
#include "addr.h"
#include "events.h"
#include "hash.h"
#include "maps.h"
#include "policy.h"

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef EPERM
#define EPERM 1
#endif

/* What the hook knows about one socket's request to reach a frontend. */
struct sl_req {
	struct sluice_frontend_key fe;
	union sluice_addr client; /* bound source address, or zero */
	__u64 cookie;
	__u64 netns;		  /* network namespace cookie (affinity) */
	__u32 client_port;	  /* bound source port (host order), or 0 */
	__u32 v4mapped;		  /* an IPv6 socket asked for ::ffff:a.b.c.d: fe is IPv4 */
	__u32 connect;		  /* connect(), not sendmsg(): limits apply */
	__u32 svc_id;		  /* out: the service the frontend belongs to */
	__u32 reserved;		  /* out: counted in the service's and backend's active */
	__u32 svc_gen;		  /* out: the generations of the service's and the */
	__u32 be_gen;		  /* backend's ids (SLUICE_RT_ONE) */
	__u32 reason;		  /* out: enum sluice_drop_reason of a refusal */
	__u32 connect_timeout_ms; /* out: the service's timeouts */
	__u32 idle_timeout_s;
	__u32 identity;	      /* out: the caller's identity, when identity_known */
	__u32 identity_known; /* out: identity was looked up (by the policy check) */
	__u32 mtls;	      /* out: the service's enum sluice_mtls */
};

static __always_inline void sl_count_reject(__u32 svc_id, enum sluice_drop_reason reason)
{
	struct sluice_svc_stats *st = bpf_map_lookup_elem(&sluice_svc_stats, &svc_id);

	if (st && reason < SLUICE_DROP__MAX)
		sl_add(&st->rejected[reason], 1);
}

static __always_inline void sl_count_pick(__u32 be_id)
{
	struct sluice_backend_stats *st = bpf_map_lookup_elem(&sluice_backend_stats, &be_id);

	if (st)
		sl_add(&st->connections, 1);
}

/* The flow key Maglev hashes: client address, source port if bound, else the
 * socket cookie, and the frontend. With affinity, the client alone: its
 * address and network namespace. */
static __always_inline __u32 sl_flow_hash(const struct sl_req *req, int affinity)
{
	__u32 h = 0x5eed;

	h = sl_mix(h, req->client.a32[0]);
	h = sl_mix(h, req->client.a32[1]);
	h = sl_mix(h, req->client.a32[2]);
	h = sl_mix(h, req->client.a32[3]);
	if (affinity) {
		h = sl_mix(h, (__u32)req->netns);
		h = sl_mix(h, (__u32)(req->netns >> 32));
	} else if (req->client_port) {
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

/* Outlier detection has ejected the backend, and the ejection is not over. */
static __always_inline int sl_ejected(__u32 be_id, __u64 now)
{
	struct sluice_backend_rt *rt = bpf_map_lookup_elem(&sluice_backend_rt, &be_id);

	return rt && rt->ejected_until_ns > now;
}

/* The backend, if it may take a new connection: healthy (the agent's
 * verdict: not unhealthy, draining or removed) and not ejected. */
static __always_inline const struct sluice_backend *sl_usable(__u32 be_id, __u32 outlier, __u64 now)
{
	const struct sluice_backend *be = bpf_map_lookup_elem(&sluice_backends, &be_id);

	if (!be || be->state != SLUICE_BE_HEALTHY)
		return NULL;
	if (outlier && sl_ejected(be_id, now))
		return NULL;
	return be;
}

/* The backend id in slot 'pos' of a service's generation, or 0. */
static __always_inline __u32 sl_slot_id(__u32 svc_id, __u8 gen, __u32 pos)
{
	struct sluice_slot_key key = {.svc_id = svc_id, .slot = (__u16)pos, .gen = gen};
	__u32 *id = bpf_map_lookup_elem(&sluice_slots, &key);

	return id ? *id : 0;
}

/*
 * One selection in progress. Scalars only: bpf_loop callbacks get it by
 * pointer.
 */
struct sl_sel {
	__u64 now;
	__u32 svc_id;
	__u32 gen;
	__u32 outlier;
	__u32 lb;
	/* scans: slots [start, start + count), beginning at offset 'first' */
	__u32 start;
	__u32 count;
	__u32 first;
	/* out */
	__u32 be_id;
	__u64 best_a; /* least_conn: active of the best so far ... */
	__u64 best_w; /* ... its weight ... */
	__u64 tie_w;  /* ... and the weight of all tied with it */
};

static __always_inline __s64 sl_active(__u32 be_id)
{
	struct sluice_backend_rt *rt = bpf_map_lookup_elem(&sluice_backend_rt, &be_id);

	__s64 a = rt ? sluice_rt_active(rt->active_gen) : 0;

	return a > 0 ? a : 0;
}

/* Scan step: the first usable backend from 'first' on, wrapping. */
static long sl_scan_usable(__u32 i, void *data)
{
	struct sl_sel *s = data;
	__u32 pos = s->first + i, id;

	if (pos >= s->count)
		pos -= s->count;
	id = sl_slot_id(s->svc_id, (__u8)s->gen, s->start + pos);
	if (id && sl_usable(id, s->outlier, s->now)) {
		s->be_id = id;
		return 1;
	}
	return 0;
}

/*
 * Scan step of least_conn: the usable backend with the fewest active
 * connections for its weight (active / weight). Ties are broken at random
 * in proportion to weight (a one-pass weighted reservoir), so an idle
 * service spreads new connections by weight, as every lb does.
 */
static long sl_scan_least(__u32 i, void *data)
{
	const struct sluice_backend *be;
	struct sl_sel *s = data;
	__u32 pos = s->first + i, id;
	__u64 a, w, lhs, rhs;

	if (pos >= s->count)
		pos -= s->count;
	id = sl_slot_id(s->svc_id, (__u8)s->gen, s->start + pos);
	be = id ? sl_usable(id, s->outlier, s->now) : NULL;
	if (!be)
		return 0;
	a = (__u64)sl_active(id);
	w = be->weight ? be->weight : 1;
	lhs = a * s->best_w;
	rhs = s->best_a * w;
	if (!s->be_id || lhs < rhs) {
		s->be_id = id;
		s->best_a = a;
		s->best_w = w;
		s->tie_w = w;
	} else if (lhs == rhs) {
		s->tie_w += w;
		if (bpf_get_prandom_u32() % s->tie_w < w)
			s->be_id = id;
	}
	return 0;
}

/* The backend id at position pos of a view's table: entry pos / 2, its low half for an even
 * pos, its high half for an odd one (SLUICE_TABLE_ID in abi.h). 0: none. */
static __always_inline __u32 sl_table_id(void *table, __u32 pos)
{
	__u32 k = pos >> 1;
	__u64 *v = bpf_map_lookup_elem(table, &k);

	return v ? SLUICE_TABLE_ID(*v, pos) : 0;
}

/* A backend of the view drawn by weight: from its weighted sequence when it
 * has one, else uniformly from its slots. */
static __always_inline __u32 sl_draw(const struct sl_sel *s, void *table, __u32 table_m)
{
	if (table && table_m)
		return sl_table_id(table, bpf_get_prandom_u32() % table_m);
	return sl_slot_id(s->svc_id, (__u8)s->gen, s->start + bpf_get_prandom_u32() % s->count);
}

/* least_conn over a view: an exact scan of small views; over large ones,
 * the power of two choices: two backends drawn by weight, the one with less
 * active / weight wins (the first drawn on a tie). */
static __always_inline __u32 sl_pick_least(struct sl_sel *s, void *table, __u32 table_m)
{
	const struct sluice_backend *a, *b;
	struct sluice_settings *set;
	__u32 zero = 0, limit = SLUICE_LC_SCAN_MAX, i, ia, ib;
	__u64 la, lb;

	set = bpf_map_lookup_elem(&sluice_settings, &zero);
	if (set && set->lc_scan_max)
		limit = set->lc_scan_max;
	if (s->count <= limit) {
		s->first = bpf_get_prandom_u32() % s->count;
		s->be_id = 0;
		bpf_loop(s->count, sl_scan_least, s, 0);
		return s->be_id;
	}
	for (i = 0; i <= SLUICE_PICK_RETRIES; i++) {
		ia = sl_draw(s, table, table_m);
		ib = sl_draw(s, table, table_m);
		a = ia ? sl_usable(ia, s->outlier, s->now) : NULL;
		b = ib ? sl_usable(ib, s->outlier, s->now) : NULL;
		if (a && b) {
			la = (__u64)sl_active(ia) * (b->weight ? b->weight : 1);
			lb = (__u64)sl_active(ib) * (a->weight ? a->weight : 1);
			return lb < la ? ib : ia;
		}
		if (a)
			return ia;
		if (b)
			return ib;
	}
	/* Most of the view is down: the exact scan finds what is left. */
	s->first = bpf_get_prandom_u32() % s->count;
	s->be_id = 0;
	bpf_loop(s->count, sl_scan_least, s, 0);
	return s->be_id;
}

/*
 * Pick a backend of one view. The lb gives a first position: in the view's
 * table (Maglev, or the weighted sequence) or among its slots. When that
 * backend is not usable, the position is re-hashed (round robin: advanced)
 * up to SLUICE_PICK_RETRIES times, and then the view's slots are scanned
 * for any usable backend. Tables are never rebuilt for a state change:
 * keys of usable backends keep their backend (Maglev stays consistent), and
 * a kernel-side ejection needs no agent.
 */
static __always_inline __u32 sl_pick_view(struct sl_sel *s, const struct sluice_view *v, __u32 view,
					  __u32 base)
{
	struct sluice_table_key tkey = {
	    .svc_id = s->svc_id, .gen = (__u8)s->gen, .view = (__u8)view};
	__u32 i, n, pos, id;
	void *table = NULL;

	s->start = v->slot_start;
	s->count = v->slot_count;
	if (!s->count || s->count > SLUICE_MAX_BACKENDS_PER_SERVICE)
		return 0;
	n = s->count;
	if (v->table_m) {
		table = bpf_map_lookup_elem(&sluice_tables, &tkey);
		if (table)
			n = v->table_m;
	}
	if (s->lb == SLUICE_LB_LEAST_CONN)
		return sl_pick_least(s, table, table ? v->table_m : 0);
	for (i = 0; i <= SLUICE_PICK_RETRIES; i++) {
		if (i == 0 || s->lb == SLUICE_LB_ROUND_ROBIN)
			pos = (base + i) % n;
		else
			pos = sl_final(sl_mix(base, i)) % n;
		if (table) {
			id = sl_table_id(table, pos);
		} else {
			id = sl_slot_id(s->svc_id, (__u8)s->gen, s->start + pos);
		}
		if (id && sl_usable(id, s->outlier, s->now))
			return id;
	}
	s->first = base % s->count;
	s->be_id = 0;
	bpf_loop(s->count, sl_scan_usable, s, 0);
	return s->be_id;
}

/* locality: prefer_zone: the view's zone view first (its first zone_count
 * slots, with their own table at SLUICE_MAX_SPLIT + view), so the lb and
 * Maglev's consistency hold within it; the whole view only when nothing
 * there is usable. Without locality, one test of zone_count. */
/* agent.zone is set (fixed for the agent's life; set before load). Without it no
 * view has a zone view, and the verifier drops the zone pick: on Debian's 6.1 the
 * connect program with both picks exceeds the verifier's 1M-instruction budget. */
const volatile __u32 sl_zone_on = 0;

static __always_inline __u32 sl_pick_local(struct sl_sel *s, const struct sluice_view *v,
					   __u32 view, __u32 base)
{
	struct sluice_view zv = {};
	__u32 id;

	if (sl_zone_on && v->zone_count) {
		zv.slot_start = v->slot_start;
		zv.slot_count = v->zone_count;
		zv.table_m = v->zone_table_m;
		id = sl_pick_view(s, &zv, SLUICE_MAX_SPLIT + view, base);
		if (id)
			return id;
	}
	return sl_pick_view(s, v, view, base);
}

/* Which view takes this connection: by the split's percentages, the first
 * view whose pct_end is above r. Counted without branches (views in use
 * have rising pct_end up to 100, unused ones 0): the verifier sees one
 * index of unknown value instead of one constant per view, and checks
 * what follows once rather than once per view. */
static __always_inline __u32 sl_pick_view_index(const struct sluice_service *svc)
{
	__u32 r, i, above = 0;

	if (svc->n_views <= 1)
		return 0;
	r = bpf_get_prandom_u32() % 100;
	for (i = 0; i < SLUICE_MAX_SPLIT; i++)
		above += (r - (__u32)svc->views[i].pct_end) >> 31; /* r < pct_end */
	return svc->n_views - above;
}

/* The position the lb starts from. */
static __always_inline __u32 sl_lb_base(__u32 svc_id, const struct sluice_service *svc,
					const struct sl_req *req)
{
	__u32 *rr;

	if (svc->lb == SLUICE_LB_MAGLEV)
		return sl_flow_hash(req, svc->affinity_ms != 0);
	if (svc->lb == SLUICE_LB_ROUND_ROBIN) {
		rr = bpf_map_lookup_elem(&sluice_rr, &svc_id);
		if (rr)
			return (*rr)++;
	}
	return bpf_get_prandom_u32();
}

static __always_inline void sl_affinity_key(struct sluice_affinity_key *k, const struct sl_req *req,
					    __u32 svc_id)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->netns = req->netns;
	k->client = req->client;
	k->svc_id = svc_id;
}

/* The backend this client had, while the affinity lasts and it is usable. */
static __always_inline __u32 sl_affinity_get(const struct sl_req *req, __u32 svc_id,
					     const struct sluice_service *svc, struct sl_sel *s)
{
	struct sluice_affinity_key k;
	struct sluice_affinity *a;
	const struct sluice_backend *be;

	sl_affinity_key(&k, req, svc_id);
	a = bpf_map_lookup_elem(&sluice_affinity, &k);
	if (!a || s->now - a->last_ns > (__u64)svc->affinity_ms * 1000000)
		return 0;
	be = sl_usable(a->be_id, s->outlier, s->now);
	if (!be || be->svc_id != svc_id)
		return 0;
	return a->be_id;
}

static __always_inline void sl_affinity_put(const struct sl_req *req, __u32 svc_id, __u32 be_id,
					    __u64 now)
{
	struct sluice_affinity_key k;
	struct sluice_affinity v = {.last_ns = now, .be_id = be_id};

	sl_affinity_key(&k, req, svc_id);
	bpf_map_update_elem(&sluice_affinity, &k, &v, BPF_ANY);
}

/* Choose a usable backend of the service; 0 when there is none. */
static __always_inline __u32 sl_choose(__u32 svc_id, const struct sluice_service *svc,
				       const struct sl_req *req, __u64 now)
{
	struct sl_sel s = {};
	__u32 view, be_id = 0, last;

	if (!svc->count || !svc->n_views || svc->n_views > SLUICE_MAX_SPLIT)
		return 0;
	s.now = now;
	s.svc_id = svc_id;
	s.gen = svc->gen;
	s.outlier = svc->flags & SLUICE_SVC_F_OUTLIER;
	s.lb = svc->lb;
	if (svc->affinity_ms) {
		be_id = sl_affinity_get(req, svc_id, svc, &s);
		if (be_id)
			goto found;
	}
	view = sl_pick_view_index(svc);
	if (view < SLUICE_MAX_SPLIT)
		be_id = sl_pick_local(&s, &svc->views[view], view, sl_lb_base(svc_id, svc, req));
	if (!be_id && svc->n_views > 1) {
		/* Nothing usable in that subset: any usable backend of the split. */
		last = svc->n_views - 1;
		if (last >= SLUICE_MAX_SPLIT)
			return 0;
		s.start = 0;
		s.count = svc->views[last].slot_start + svc->views[last].slot_count;
		if (s.count > SLUICE_MAX_BACKENDS_PER_SERVICE)
			return 0;
		s.first = s.count ? bpf_get_prandom_u32() % s.count : 0;
		s.be_id = 0;
		bpf_loop(s.count, sl_scan_usable, &s, 0);
		be_id = s.be_id;
	}
	if (!be_id)
		return 0;
	if (svc->affinity_ms)
		sl_affinity_put(req, svc_id, be_id, now);
found:
	return be_id;
}

/* rate_limit as GCRA: admit while the next theoretical arrival is at most
 * 'burst' intervals ahead. */
static __always_inline int sl_rate_admit(struct sluice_svc_rt *rt, const struct sluice_service *svc,
					 __u64 now)
{
	__u64 interval = 1000000000ULL / svc->rate_per_sec, tat;
	int ok = 0;

	bpf_spin_lock(&rt->lock);
	tat = rt->tat_ns > now ? rt->tat_ns : now;
	if (tat + interval - now <= interval * svc->rate_burst) {
		rt->tat_ns = tat + interval;
		ok = 1;
	}
	bpf_spin_unlock(&rt->lock);
	return ok;
}

/* What an event says of the request: the socket, the service, the caller's
 * address and the frontend it asked for. */
static __always_inline void sl_event_req(struct sluice_event *ev, const struct sl_req *req,
					 __u32 svc_id)
{
	ev->cookie = req->cookie;
	ev->svc_id = svc_id;
	ev->family = req->fe.family;
	ev->proto = req->fe.proto;
	ev->src = req->client;
	ev->sport = (__u16)req->client_port;
	ev->dst = req->fe.addr;
	ev->dport = bpf_ntohs(req->fe.port);
}

static __always_inline void sl_emit_reject(const struct sl_req *req, __u32 svc_id)
{
	struct sluice_event *ev;

	ev = sl_event_reserve(req->reason == SLUICE_DROP_NO_BACKEND ? SLUICE_EV_NO_BACKEND
								    : SLUICE_EV_REJECT);
	if (!ev)
		return;
	sl_event_req(ev, req, svc_id);
	if (req->reason == SLUICE_DROP_CIRCUIT_BREAKER)
		ev->reason = SLUICE_REASON_CIRCUIT_BREAKER;
	else if (req->reason == SLUICE_DROP_RATE_LIMIT)
		ev->reason = SLUICE_REASON_RATE_LIMIT;
	sl_event_submit(ev);
}

static __always_inline int sl_refuse(struct sl_req *req, __u32 svc_id, enum sluice_drop_reason why)
{
	req->reason = why;
	sl_count_reject(svc_id, why);
	sl_emit_reject(req, svc_id);
	return -ECONNREFUSED;
}

/*
 * The caller's identity: the identity of the deepest of its cgroup's
 * ancestors (itself included) that an identity names. Walking the
 * ancestors at each connect() covers a whole subtree, including cgroups
 * made after the agent resolved the paths, and a process moved to another
 * cgroup is judged by where it is now.
 */
static long sl_ancestor_identity(__u32 i, void *data)
{
	__u32 *identity = data, *v;
	__u64 id = bpf_get_current_ancestor_cgroup_id((int)i + 1);

	if (!id)
		return 1;
	v = bpf_map_lookup_elem(&sluice_cgroup_ids, &id);
	if (v)
		*identity = *v;
	return 0;
}

static __always_inline __u32 sl_caller_identity(void)
{
	__u32 identity = 0;

	bpf_loop(SLUICE_CGROUP_DEPTH, sl_ancestor_identity, &identity, 0);
	return identity;
}

/* The caller's identity, looked up once per request. */
static __always_inline __u32 sl_req_identity(struct sl_req *req)
{
	if (!req->identity_known) {
		req->identity = sl_caller_identity();
		req->identity_known = 1;
	}
	return req->identity;
}

/*
 * Count a request to a service on its edge of the service map (the caller's
 * identity, 0 for none, x the service): given a backend (err 0) or refused
 * (req->reason says why). Not a frontend: nothing. One per-CPU lookup; a
 * new edge is made once, zeroed, and looked up again.
 */
static __always_inline void sl_count_edge(struct sl_req *req, int err)
{
	struct sluice_edge_key k = {.svc_id = req->svc_id};
	struct sluice_edge_stats *st, zero = {};

	if (err && err != -ECONNREFUSED && err != -EPERM)
		return;
	k.identity = sl_req_identity(req);
	st = bpf_map_lookup_elem(&sluice_edges, &k);
	if (!st) {
		bpf_map_update_elem(&sluice_edges, &k, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&sluice_edges, &k);
		if (!st)
			return;
	}
	if (!err)
		sl_add(&st->connections, 1);
	else if (req->reason < SLUICE_DROP__MAX)
		sl_add(&st->rejected[req->reason], 1);
}

/* Check the caller against the service's policy; audit the decision. 0 to
 * go on, -EPERM when it is refused. */
static __always_inline int sl_policy_check(struct sl_req *req, __u32 svc_id,
					   const struct sluice_service *svc)
{
	struct sluice_audit_event *a;
	__u32 identity = sl_req_identity(req);
	int denied = sluice_policy_denies(svc, identity);
	__u64 ug;

	a = sl_audit_reserve(denied);
	if (a) {
		sl_event_req(&a->ev, req, svc_id);
		a->ev.reason = req->connect ? SLUICE_REASON_CONNECT : SLUICE_REASON_SENDMSG;
		a->cgroup_id = bpf_get_current_cgroup_id();
		a->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
		ug = bpf_get_current_uid_gid();
		a->uid = (__u32)ug;
		a->identity = identity;
		bpf_get_current_comm(a->comm, sizeof(a->comm));
		bpf_ringbuf_submit(a, 0);
	}
	if (!denied)
		return 0;
	req->reason = SLUICE_DROP_POLICY;
	sl_count_policy_reject(svc_id);
	return -EPERM;
}

/*
 * Look the frontend up and choose a backend for it. Returns -ENOENT when the
 * destination is not a frontend (pass untouched), -EPERM when the service's
 * policy refuses the caller, -ECONNREFUSED when the connection is refused
 * otherwise (req->reason says why), 0 with *out filled
 * otherwise. A TCP connect() that gets a backend is counted in the service's
 * and the backend's active connections (req->reserved): the caller tags the
 * socket so that its close gives them back, or calls sl_release.
 */
static __always_inline int sl_select(struct sl_req *req, const struct sluice_backend **out,
				     __u32 *out_id)
{
	const struct sluice_frontend *fe;
	const struct sluice_service *svc;
	const struct sluice_backend *be;
	struct sluice_backend_rt *brt;
	struct sluice_svc_rt *rt = NULL;
	__u32 svc_id, be_id;
	__u64 now;
	__u64 old;

	fe = bpf_map_lookup_elem(&sluice_frontends, &req->fe);
	if (!fe)
		return -ENOENT;
	svc_id = fe->svc_id;
	req->svc_id = svc_id;
	svc = bpf_map_lookup_elem(&sluice_services, &svc_id);
	if (!svc)
		return sl_refuse(req, svc_id, SLUICE_DROP_NO_BACKEND);
	if ((svc->flags & SLUICE_SVC_F_POLICY) && sl_policy_check(req, svc_id, svc))
		return -EPERM;
	now = bpf_ktime_get_ns();
	if (req->connect) {
		rt = bpf_map_lookup_elem(&sluice_svc_rt, &svc_id);
		if (rt && req->fe.proto == SLUICE_PROTO_TCP) {
			old = sl_add(&rt->active_gen, SLUICE_RT_ONE);
			req->svc_gen = sluice_rt_gen(old);
			req->reserved = 1;
			if (svc->max_connections &&
			    sluice_rt_active(old) >= (__s64)svc->max_connections) {
				sl_release(svc_id, req->svc_gen, 0, 0);
				req->reserved = 0;
				return sl_refuse(req, svc_id, SLUICE_DROP_CIRCUIT_BREAKER);
			}
		}
		if (rt && svc->rate_per_sec && !sl_rate_admit(rt, svc, now)) {
			if (req->reserved)
				sl_release(svc_id, req->svc_gen, 0, 0);
			req->reserved = 0;
			return sl_refuse(req, svc_id, SLUICE_DROP_RATE_LIMIT);
		}
	}
	be_id = sl_choose(svc_id, svc, req, now);
	be = be_id ? bpf_map_lookup_elem(&sluice_backends, &be_id) : NULL;
	if (!be) {
		if (req->reserved)
			sl_release(svc_id, req->svc_gen, 0, 0);
		req->reserved = 0;
		return sl_refuse(req, svc_id, SLUICE_DROP_NO_BACKEND);
	}
	if (req->reserved) {
		brt = bpf_map_lookup_elem(&sluice_backend_rt, &be_id);
		if (brt)
			req->be_gen = sl_active_get(&brt->active_gen);
	}
	req->connect_timeout_ms = svc->connect_timeout_ms;
	req->idle_timeout_s = svc->idle_timeout_s;
	req->mtls = svc->mtls;
	sl_count_pick(be_id);
	*out = be;
	*out_id = be_id;
	return 0;
}

#endif /* SLUICE_BPF_LB_H */
