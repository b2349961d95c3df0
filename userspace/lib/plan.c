// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "plan.h"
#include "services.h"

void sl_state_free(struct sl_state *st)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		free(st->svcs[i].bes);
	free(st->svcs);
	free(st->dead_be_ids);
	sl_hidx_free(&st->idx);
	memset(st, 0, sizeof(*st));
}

int sl_state_index(struct sl_state *st)
{
	sl_hidx_free(&st->idx);
	st->idx_svcs = NULL;
	st->idx_n = 0;
	if (sl_hidx_init(&st->idx, st->n_svcs))
		return -ENOMEM;
	/* In order: a probe meets equal names in the order they were added, so the index
	 * finds the first of them, as the scan does. */
	for (size_t i = 0; i < st->n_svcs; i++)
		sl_hidx_add(&st->idx, sl_hash_str(st->svcs[i].name), i);
	st->idx_svcs = st->svcs;
	st->idx_n = st->n_svcs;
	return 0;
}

struct name_key {
	const struct sl_state *st;
	const char *name;
	size_t *n_cmp;
};

static int name_eq(const void *ctx, size_t pos)
{
	const struct name_key *k = ctx;

	(*k->n_cmp)++;
	return !strcmp(k->st->svcs[pos].name, k->name);
}

const struct sl_svc_state *sl_state_find_cmp(const struct sl_state *st, const char *name,
					     size_t *n_cmp)
{
	struct name_key k = {.st = st, .name = name, .n_cmp = n_cmp};
	long pos;

	*n_cmp = 0;
	if (st->idx.slots && st->idx_svcs == st->svcs && st->idx_n == st->n_svcs) {
		pos = sl_hidx_find(&st->idx, sl_hash_str(name), name_eq, &k);
		return pos < 0 ? NULL : &st->svcs[pos];
	}
	for (size_t i = 0; i < st->n_svcs; i++)
		if (name_eq(&k, i))
			return &st->svcs[i];
	return NULL;
}

const struct sl_svc_state *sl_state_find(const struct sl_state *st, const char *name)
{
	size_t n_cmp;

	return sl_state_find_cmp(st, name, &n_cmp);
}

/* One backend of service 'name' against the same slot of the other state; 0 when equal. */
static int be_differs(const char *name, size_t slot, const struct sl_be_state *x,
		      const struct sl_be_state *y, char *why, size_t len)
{
	const char *what = NULL;

	if (x->id != y->id)
		what = "id";
	else if (!sl_sockaddr_equal(&x->addr, &y->addr))
		what = "address";
	else if (x->weight != y->weight)
		what = "weight";
	else if (x->state != y->state)
		what = "state";
	else if (x->flags != y->flags)
		what = "flags";
	else if (strcmp(x->zone, y->zone))
		what = "zone";
	else if (strcmp(x->subset, y->subset))
		what = "subset";
	if (!what)
		return 0;
	snprintf(why, len, "service %s slot %zu: backend %s (id %u state %u, want id %u state %u)",
		 name, slot, what, x->id, x->state, y->id, y->state);
	return 1;
}

static int svc_differs(const struct sl_svc_state *x, const struct sl_svc_state *y, char *why,
		       size_t len)
{
	const char *what = NULL;

	if (x->id != y->id)
		what = "id";
	else if (x->gen != y->gen)
		what = "gen";
	else if (x->proto != y->proto || x->lb != y->lb ||
		 !sl_sockaddr_equal(&x->frontend, &y->frontend))
		what = "frontend";
	else if (memcmp(&x->value, &y->value, sizeof(x->value)))
		what = "value";
	else if (x->n_bes != y->n_bes)
		what = "backend count";
	if (what) {
		snprintf(
		    why, len,
		    "service %s: %s (id %u gen %u backends %zu, want id %u gen %u backends %zu)",
		    y->name, what, x->id, x->gen, x->n_bes, y->id, y->gen, y->n_bes);
		return 1;
	}
	for (size_t i = 0; i < x->n_bes; i++)
		if (be_differs(y->name, i, &x->bes[i], &y->bes[i], why, len))
			return 1;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorted copies of both lists of dead ids; the first that only one of them has, in *only. */
static int dead_differs(const struct sl_state *got, const struct sl_state *want, char *why,
			size_t len)
{
	size_t n = got->n_dead + want->n_dead, i = 0, j = 0;
	uint32_t *a = calloc(n ? n : 1, sizeof(*a)), *b;
	int ret = 0;

	if (!a)
		return -ENOMEM;
	b = a + got->n_dead;
	if (got->n_dead) /* (an empty list may be NULL, which memcpy may not take) */
		memcpy(a, got->dead_be_ids, got->n_dead * sizeof(*a));
	if (want->n_dead)
		memcpy(b, want->dead_be_ids, want->n_dead * sizeof(*b));
	qsort(a, got->n_dead, sizeof(*a), cmp_id);
	qsort(b, want->n_dead, sizeof(*b), cmp_id);
	while ((i < got->n_dead || j < want->n_dead) && !ret) {
		if (j == want->n_dead || (i < got->n_dead && a[i] < b[j]))
			ret = snprintf(why, len, "dead backend %u: only in the kept state", a[i]);
		else if (i == got->n_dead || b[j] < a[i])
			ret = snprintf(why, len, "dead backend %u: only in the maps", b[j]);
		i++;
		j++;
	}
	free(a);
	return ret ? 1 : 0;
}

int sl_state_diff(const struct sl_state *got, const struct sl_state *want, char *why, size_t len)
{
	if (len)
		why[0] = '\0';
	for (size_t i = 0; i < want->n_svcs; i++) {
		const struct sl_svc_state *y = &want->svcs[i];
		const struct sl_svc_state *x = sl_state_find(got, y->name);

		if (!x) {
			snprintf(why, len, "service %s (id %u): only in the maps", y->name, y->id);
			return 1;
		}
		if (svc_differs(x, y, why, len))
			return 1;
	}
	for (size_t i = 0; i < got->n_svcs; i++)
		if (!sl_state_find(want, got->svcs[i].name)) {
			snprintf(why, len, "service %s (id %u): only in the kept state",
				 got->svcs[i].name, got->svcs[i].id);
			return 1;
		}
	if (got->n_svcs != want->n_svcs) { /* a name twice in one of them */
		snprintf(why, len, "%zu services, want %zu", got->n_svcs, want->n_svcs);
		return 1;
	}
	return dead_differs(got, want, why, len);
}

int sl_state_set_backend(struct sl_state *st, const char *service, uint32_t be_id, uint8_t state)
{
	const struct sl_svc_state *found = sl_state_find(st, service);
	struct sl_svc_state *s = found ? &st->svcs[found - st->svcs] : NULL;

	for (size_t i = 0; s && i < s->n_bes; i++)
		if (s->bes[i].id == be_id) {
			s->bes[i].state = state;
			return 0;
		}
	return -ENOENT;
}

/* A bitmap of ids in use, so that allocation is one pass. */
struct idset {
	uint64_t *bits;
	uint32_t max;
	uint32_t hint;
};

static int idset_init(struct idset *s, uint32_t max)
{
	s->max = max;
	s->hint = 1;
	s->bits = calloc((size_t)max / 64 + 1, sizeof(*s->bits));
	return s->bits ? 0 : -ENOMEM;
}

static void idset_mark(struct idset *s, uint32_t id)
{
	if (id && id <= s->max)
		s->bits[id / 64] |= 1ULL << (id % 64);
}

static uint32_t idset_alloc(struct idset *s)
{
	for (uint32_t id = s->hint; id <= s->max; id++) {
		if (!(s->bits[id / 64] & (1ULL << (id % 64)))) {
			idset_mark(s, id);
			s->hint = id + 1;
			return id;
		}
	}
	return 0;
}

static const struct sl_be_state *find_be(const struct sl_svc_state *cur,
					 const struct sl_sockaddr *addr)
{
	for (size_t i = 0; cur && i < cur->n_bes; i++)
		if (sl_sockaddr_equal(&cur->bes[i].addr, addr))
			return &cur->bes[i];
	return NULL;
}

uint32_t sl_backend_flags(const struct sl_service_cfg *w, const struct sl_backend_cfg *b,
			  const struct sl_addrs *local)
{
	if (w->mtls == SL_MTLS_OFF || !local || sl_addrs_has(local, &b->addr))
		return 0;
	return SLUICE_BE_F_REMOTE;
}

static int backend_differs(const struct sl_be_state *b, const struct sl_backend_cfg *c,
			   uint32_t flags)
{
	return b->weight != c->weight || strcmp(b->subset, c->subset) || b->flags != flags ||
	       strcmp(b->zone, c->zone);
}

const char *sl_locality_zone(const struct sl_service_cfg *w, const char *node_zone)
{
	if (w->locality != SL_LOCALITY_PREFER_ZONE || !node_zone || !*node_zone)
		return NULL;
	return node_zone;
}

/* Backend i is in view v (without a split, every backend is in view 0). */
static int in_view(const struct sl_service_cfg *w, size_t v, size_t i)
{
	return !w->n_split || !strcmp(w->backends[i].subset, w->split[v].subset);
}

static int in_zone(const struct sl_service_cfg *w, const char *zone, size_t i)
{
	return zone && !strcmp(w->backends[i].zone, zone);
}

void sl_slot_order(const struct sl_service_cfg *w, size_t *order)
{
	sl_slot_order_zone(w, NULL, order);
}

void sl_slot_order_zone(const struct sl_service_cfg *w, const char *zone, size_t *order)
{
	size_t k = 0, n_views = w->n_split ? w->n_split : 1;

	for (size_t v = 0; v < n_views; v++)
		for (int pass = zone ? 0 : 1; pass < 2; pass++)
			for (size_t i = 0; i < w->n_backends; i++)
				if (in_view(w, v, i) && in_zone(w, zone, i) == !pass)
					order[k++] = i;
	if (!w->n_split)
		return;
	for (size_t i = 0; i < w->n_backends; i++) {
		int in_split = 0;

		for (size_t v = 0; v < w->n_split && !in_split; v++)
			in_split = !strcmp(w->backends[i].subset, w->split[v].subset);
		if (!in_split)
			order[k++] = i;
	}
}

void sl_service_value(const struct sl_service_cfg *w, struct sluice_service *sv)
{
	sl_service_value_zone(w, NULL, sv);
}

/* Each view's zone view: how many of its backends are in 'zone'. */
static void zone_counts(const struct sl_service_cfg *w, const char *zone, struct sluice_service *sv)
{
	if (w->locality == SL_LOCALITY_PREFER_ZONE)
		sv->flags |= SLUICE_SVC_F_PREFER_ZONE;
	for (size_t v = 0; zone && v < sv->n_views; v++) {
		size_t n = 0;

		for (size_t i = 0; i < w->n_backends; i++)
			n += in_view(w, v, i) && in_zone(w, zone, i);
		/* All or none of the view: the view itself, without a zone view. */
		sv->views[v].zone_count = n < sv->views[v].slot_count ? (__u16)n : 0;
	}
}

void sl_service_value_zone(const struct sl_service_cfg *w, const char *zone,
			   struct sluice_service *sv)
{
	unsigned int pct = 0;

	memset(sv, 0, sizeof(*sv));
	sv->count = (__u32)w->n_backends;
	sv->lb = w->lb;
	if (w->outlier.consecutive_failures) {
		sv->flags |= SLUICE_SVC_F_OUTLIER;
		sv->ejection_failures = (__u16)w->outlier.consecutive_failures;
		sv->ejection_base_ms = w->outlier.base_ejection_ms;
		sv->ejection_max_pct = (__u8)w->outlier.max_ejection_percent;
	}
	sv->max_connections = w->max_connections;
	sv->rate_per_sec = w->rate_per_sec;
	sv->rate_burst = w->rate_burst;
	sv->connect_timeout_ms = w->connect_timeout_ms;
	sv->idle_timeout_s = w->idle_timeout_ms / 1000;
	sv->affinity_ms = w->affinity_ms;
	sv->mtls = w->mtls;
	if (w->policy.on) {
		sv->flags |= SLUICE_SVC_F_POLICY;
		if (w->policy.default_deny)
			sv->flags |= SLUICE_SVC_F_DEFAULT_DENY;
		sv->allow_mask = w->policy.allow;
		sv->deny_mask = w->policy.deny;
	}
	if (!w->n_split) {
		sv->n_views = 1;
		sv->views[0].slot_count = (__u16)w->n_backends;
		sv->views[0].pct_end = 100;
		zone_counts(w, zone, sv);
		return;
	}
	sv->n_views = (__u8)w->n_split;
	for (size_t v = 0, start = 0; v < w->n_split; v++) {
		size_t n = 0;

		for (size_t i = 0; i < w->n_backends; i++)
			n += !strcmp(w->backends[i].subset, w->split[v].subset);
		pct += w->split[v].percent;
		sv->views[v].slot_start = (__u16)start;
		sv->views[v].slot_count = (__u16)n;
		sv->views[v].pct_end = (__u8)pct;
		start += n;
	}
	zone_counts(w, zone, sv);
}

/* The value without what an apply fills in, for comparing. */
static void value_settings(const struct sluice_service *in, struct sluice_service *out)
{
	*out = *in;
	out->gen = 0;
	for (size_t v = 0; v < SLUICE_MAX_SPLIT; v++) {
		out->views[v].table_m = 0;
		out->views[v].zone_table_m = 0;
	}
}

/* Does the service need a new slot generation or any backend write? */
static int service_differs(const struct sl_svc_state *cur, const struct sl_service_cfg *want,
			   const char *zone, const struct sl_addrs *local)
{
	struct sluice_service have, want_v, tmp;
	size_t *order;
	int differs = 0;

	if (cur->proto != want->proto || cur->lb != want->lb ||
	    !sl_sockaddr_equal(&cur->frontend, &want->frontend) || cur->n_bes != want->n_backends)
		return 1;
	value_settings(&cur->value, &have);
	sl_service_value_zone(want, zone, &tmp);
	value_settings(&tmp, &want_v);
	if (memcmp(&have, &want_v, sizeof(have)))
		return 1;
	order = calloc(want->n_backends ? want->n_backends : 1, sizeof(*order));
	if (!order)
		return 1; /* rewriting is always correct */
	sl_slot_order_zone(want, zone, order);
	for (size_t i = 0; i < want->n_backends && !differs; i++) {
		const struct sl_be_state *b = &cur->bes[i];
		const struct sl_backend_cfg *w = &want->backends[order[i]];

		/* Slot order follows config order: a reorder is a change too. */
		differs = !sl_sockaddr_equal(&b->addr, &w->addr) ||
			  backend_differs(b, w, sl_backend_flags(want, w, local));
	}
	free(order);
	return differs;
}

static struct sl_svc_op *plan_push(struct sl_plan *plan)
{
	if (SL_ENSURE(&plan->ops, &plan->cap_ops, plan->n_ops + 1))
		return NULL;
	memset(&plan->ops[plan->n_ops], 0, sizeof(*plan->ops));
	return &plan->ops[plan->n_ops++];
}

static int plan_backends(struct sl_svc_op *op, struct idset *be_ids, const struct sl_addrs *local)
{
	const struct sl_service_cfg *want = op->want;
	const struct sl_svc_state *cur = op->cur;
	size_t n = want->n_backends;

	op->be_ids = calloc(n ? n : 1, sizeof(*op->be_ids));
	op->be_new = calloc(n ? n : 1, sizeof(*op->be_new));
	op->gone_ids = calloc(cur && cur->n_bes ? cur->n_bes : 1, sizeof(*op->gone_ids));
	op->be_flags = calloc(n ? n : 1, sizeof(*op->be_flags));
	if (!op->be_ids || !op->be_new || !op->gone_ids || !op->be_flags)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sl_be_state *b = find_be(cur, &want->backends[i].addr);

		op->be_flags[i] = sl_backend_flags(want, &want->backends[i], local);
		if (b) {
			op->be_ids[i] = b->id;
			continue;
		}
		op->be_ids[i] = idset_alloc(be_ids);
		if (!op->be_ids[i])
			return -ENOSPC;
		op->be_new[i] = 1;
	}
	for (size_t i = 0; cur && i < cur->n_bes; i++) {
		int kept = 0;

		for (size_t j = 0; j < n && !kept; j++)
			kept = sl_sockaddr_equal(&cur->bes[i].addr, &want->backends[j].addr);
		if (!kept)
			op->gone_ids[op->n_gone++] = cur->bes[i].id;
	}
	return 0;
}

int sl_plan_build(const struct sl_state *cur, const struct sl_config *want, uint32_t max_svc_id,
		  uint32_t max_be_id, struct sl_plan *plan)
{
	return sl_plan_build_at(cur, want, NULL, max_svc_id, max_be_id, plan);
}

/* sl_plan_build_only: up to this many names are looked up by a pass over the services. */
#define PLAN_ONLY_SCAN 16

/* The op that takes service w (cur's c, or NULL: a new one) where it should be, if any. */
static int plan_service(struct sl_plan *plan, const struct sl_svc_state *c,
			const struct sl_service_cfg *w, const struct sl_config *want,
			struct idset *svc_ids, struct idset *be_ids, const struct sl_addrs *local)
{
	const char *zone = sl_locality_zone(w, want->agent.zone);
	struct sl_svc_op *op;

	if (c && !service_differs(c, w, zone, local))
		return 0;
	op = plan_push(plan);
	if (!op)
		return -ENOMEM;
	op->want = w;
	op->cur = c;
	op->zone = zone;
	if (c) {
		op->kind = SL_OP_UPDATE;
		op->svc_id = c->id;
		op->frontend_changed =
		    c->proto != w->proto || !sl_sockaddr_equal(&c->frontend, &w->frontend);
		plan->n_update++;
	} else {
		op->kind = SL_OP_ADD;
		op->svc_id = idset_alloc(svc_ids);
		op->frontend_changed = 1;
		plan->n_add++;
		if (!op->svc_id)
			return -ENOSPC;
	}
	return plan_backends(op, be_ids, local);
}

/* The op that removes cur's service c. */
static int plan_remove(struct sl_plan *plan, const struct sl_svc_state *c)
{
	struct sl_svc_op *op = plan_push(plan);

	if (!op)
		return -ENOMEM;
	op->kind = SL_OP_REMOVE;
	op->svc_id = c->id;
	op->cur = c;
	op->gone_ids = calloc(c->n_bes ? c->n_bes : 1, sizeof(*op->gone_ids));
	if (!op->gone_ids)
		return -ENOMEM;
	for (size_t j = 0; j < c->n_bes; j++)
		op->gone_ids[op->n_gone++] = c->bes[j].id;
	plan->n_remove++;
	return 0;
}

int sl_plan_build_at(const struct sl_state *cur, const struct sl_config *want,
		     const struct sl_addrs *local, uint32_t max_svc_id, uint32_t max_be_id,
		     struct sl_plan *plan)
{
	return sl_plan_build_only(cur, want, local, max_svc_id, max_be_id, NULL, 0, plan);
}

int sl_plan_build_only(const struct sl_state *cur, const struct sl_config *want,
		       const struct sl_addrs *local, uint32_t max_svc_id, uint32_t max_be_id,
		       const char (*only)[SLUICE_NAME_LEN], size_t n_only, struct sl_plan *plan)
{
	struct idset svc_ids, be_ids;
	struct sl_svc_idx wanted = {0};
	/* A few names are found by a pass each, cheaper than indexing every service. */
	int indexed = !only || n_only > PLAN_ONLY_SCAN;
	int err = 0;

	memset(plan, 0, sizeof(*plan));
	if (indexed && sl_svc_idx_init(&wanted, want->services, want->n_services))
		return -ENOMEM;
	for (size_t i = 0; indexed && i < want->n_services; i++)
		sl_svc_idx_add(&wanted, i);
	if (idset_init(&svc_ids, max_svc_id) || idset_init(&be_ids, max_be_id)) {
		free(svc_ids.bits);
		sl_svc_idx_free(&wanted);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cur->n_svcs; i++) {
		idset_mark(&svc_ids, cur->svcs[i].id);
		for (size_t j = 0; j < cur->svcs[i].n_bes; j++)
			idset_mark(&be_ids, cur->svcs[i].bes[j].id);
	}
	for (size_t i = 0; i < cur->n_dead; i++)
		idset_mark(&be_ids, cur->dead_be_ids[i]);

	if (only) {
		for (size_t i = 0; i < n_only && !err; i++) {
			const struct sl_service_cfg *w =
			    indexed ? sl_svc_idx_name(&wanted, only[i])
				    : sl_service_find(want->services, want->n_services, only[i]);
			const struct sl_svc_state *c = sl_state_find(cur, only[i]);

			if (w)
				err = plan_service(plan, c, w, want, &svc_ids, &be_ids, local);
			else if (c)
				err = plan_remove(plan, c);
		}
	} else {
		for (size_t i = 0; i < want->n_services && !err; i++)
			err = plan_service(plan, sl_state_find(cur, want->services[i].name),
					   &want->services[i], want, &svc_ids, &be_ids, local);
		for (size_t i = 0; i < cur->n_svcs && !err; i++)
			if (!sl_svc_idx_name(&wanted, cur->svcs[i].name))
				err = plan_remove(plan, &cur->svcs[i]);
	}
	free(svc_ids.bits);
	free(be_ids.bits);
	sl_svc_idx_free(&wanted);
	if (err)
		sl_plan_free(plan);
	return err;
}

void sl_plan_free(struct sl_plan *plan)
{
	for (size_t i = 0; i < plan->n_ops; i++) {
		free(plan->ops[i].be_ids);
		free(plan->ops[i].be_new);
		free(plan->ops[i].gone_ids);
		free(plan->ops[i].be_flags);
	}
	free(plan->ops);
	memset(plan, 0, sizeof(*plan));
}
