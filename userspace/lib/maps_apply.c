// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * How a plan reaches the maps without a concurrent connect() ever seeing a
 * half-written service.
 *
 * A service is read by the datapath as: frontend -> service id -> service
 * value {gen, count, lb, views} -> slots (id, gen, 0..count) or a view's
 * table (id, gen, view) -> backend. A view is the whole service, or one
 * subset of its split: a range of slots and, for Maglev and for weighted
 * random or round_robin, a table. The service value lives in a
 * no-prealloc hash and is replaced whole by one update, so a reader sees the
 * old value or the new one, never a mix. Everything the value points to is
 * keyed by its generation, and the agent only ever writes the generation that
 * is NOT live:
 *
 *   1. backends: new ones are written (state healthy, counters zeroed, a
 *      new generation of the id's run-time state: backend_rt_reset);
 *      changed ones are rewritten in place, keeping their state;
 *   2. slots of the idle generation: 0..n-1 written, stale ones above deleted;
 *   3. tables: a new one per view is built, filled and inserted at
 *      (id, idle gen, view), and one per zone view (locality: prefer_zone)
 *      at (id, idle gen, SLUICE_MAX_SPLIT + view). The tables of up to UPSERT_CHUNK
 *      services go in with one batch call (tbatch.c: the kernel waits a grace
 *      period per call on a map of maps), and only then are those services
 *      switched over, in plan order;
 *   4. the service value is replaced, flipping gen: the switch-over;
 *   5. the frontend is written last for a new service (the service is
 *      complete before it can be found), or moved for a changed frontend;
 *   6. backends that left are marked removed, not deleted: a program that
 *      read the old value may still dereference them. The agent deletes them
 *      a grace period later (sl_maps_reap). The previous generation's slots
 *      and table stay until the next change overwrites them, for the same
 *      reason.
 *
 * Removing a service deletes its frontend first (if no other service took
 * it over in the same plan: adds and updates run before removals), then the
 * rest. Hash maps are created with twice the configured capacity, so the
 * transition from one valid config to another always fits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "edges.h"
#include "maglev.h"
#include "maps.h"
#include "mem.h"
#include "tbatch.h"
#include "wseq.h"

/* Zero a per-CPU array entry, so that a reused id starts from nothing. */
static int percpu_zero(int fd, uint32_t id, size_t value_size)
{
	int ncpu = libbpf_num_possible_cpus();
	void *zero;
	int err = 0;

	if (ncpu < 0)
		return ncpu;
	zero = calloc((size_t)ncpu, (value_size + 7) & ~(size_t)7);
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, &id, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

static void fe_key(struct sluice_frontend_key *k, const struct sl_sockaddr *sa, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	k->addr = sa->addr;
	k->port = htons(sa->port);
	k->proto = proto;
	k->family = sa->family;
}

static void be_value(struct sluice_backend *v, const struct sl_backend_cfg *c, uint32_t svc_id,
		     uint8_t state, uint32_t flags)
{
	memset(v, 0, sizeof(*v));
	v->addr = c->addr.addr;
	v->port = htons(c->addr.port);
	v->family = c->addr.family;
	v->state = state;
	v->weight = c->weight;
	v->svc_id = svc_id;
	memcpy(v->subset, c->subset, sizeof(v->subset));
	v->flags = flags;
	memcpy(v->zone, c->zone, sizeof(v->zone));
}

/*
 * Ids are reused (plan.c hands out the lowest free one), and sockets tagged
 * with an id's previous holder can live on for as long as their
 * connections do. Rather than keep an id out of use until the last of them
 * closes (a long-lived connection would hold it for days, and the retired
 * entries would fill sluice_backends), each (re)assignment starts a new
 * generation of the id's run-time state: the count at 0 in a new
 * generation, no outlier history, no rate-limiter debt, counters at 0. The
 * datapath charges nothing to a generation a socket was not counted in
 * (SLUICE_RT_ONE in abi.h, bpf/lib/active.h). The new generation is written
 * before anything can pick the id: backends before their slots, a service
 * before its frontend.
 */
static uint64_t next_generation(uint64_t active_gen)
{
	return (uint64_t)(uint32_t)(sluice_rt_gen(active_gen) + 1);
}

static int backend_rt_reset(int fd, uint32_t id)
{
	struct sluice_backend_rt rt;

	if (bpf_map_lookup_elem(fd, &id, &rt))
		return -errno;
	rt = (struct sluice_backend_rt){.active_gen = next_generation(rt.active_gen)};
	return bpf_map_update_elem(fd, &id, &rt, BPF_ANY) ? -errno : 0;
}

/* The kernel leaves the value's bpf_spin_lock alone on a write from here. */
static int service_rt_reset(int fd, uint32_t id)
{
	struct sluice_svc_rt rt;

	if (bpf_map_lookup_elem(fd, &id, &rt))
		return -errno;
	rt = (struct sluice_svc_rt){.active_gen = next_generation(rt.active_gen)};
	return bpf_map_update_elem(fd, &id, &rt, BPF_ANY) ? -errno : 0;
}

/* Step 1: write new and changed backends. A new backend of a service with
 * health checks is unhealthy until its first probe passes. */
static int apply_backends(const struct sl_maps *m, const struct sl_svc_op *op)
{
	const struct sl_service_cfg *w = op->want;
	uint8_t fresh = w->health.type != SL_HC_NONE ? SLUICE_BE_UNHEALTHY : SLUICE_BE_HEALTHY;

	for (size_t i = 0; i < w->n_backends; i++) {
		struct sluice_backend v, old;
		uint8_t state = fresh;
		int err;

		if (op->be_new[i]) {
			err = percpu_zero(m->backend_stats, op->be_ids[i],
					  sizeof(struct sluice_backend_stats));
			if (!err)
				err = backend_rt_reset(m->backend_rt, op->be_ids[i]);
			if (err)
				return err;
		} else if (!bpf_map_lookup_elem(m->backends, &op->be_ids[i], &old)) {
			state = old.state;
			be_value(&v, &w->backends[i], op->svc_id, state, op->be_flags[i]);
			if (!memcmp(&v, &old, sizeof(v)))
				continue;
		}
		be_value(&v, &w->backends[i], op->svc_id, state, op->be_flags[i]);
		if (bpf_map_update_elem(m->backends, &op->be_ids[i], &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Step 2: slots of the idle generation, in sl_slot_order. */
static int apply_slots(const struct sl_maps *m, const struct sl_svc_op *op, const size_t *order,
		       uint8_t gen)
{
	size_t n = op->want->n_backends;
	struct sluice_slot_key k = {.svc_id = op->svc_id, .gen = gen};

	for (size_t i = 0; i < n; i++) {
		k.slot = (__u16)i;
		if (bpf_map_update_elem(m->slots, &k, &op->be_ids[order[i]], BPF_ANY))
			return -errno;
	}
	for (size_t i = n; i < SLUICE_MAX_BACKENDS_PER_SERVICE; i++) {
		k.slot = (__u16)i;
		if (bpf_map_delete_elem(m->slots, &k))
			break; /* slots are contiguous: the first gap ends them */
	}
	return 0;
}

/* A view's table: Maglev over its backends, or for random, round_robin and
 * least_conn (which draws from it) the weighted sequence when their weights
 * differ. Entries are indices into
 * 'bes'; *size 0 means the view needs no table. */
static int view_table(const struct sl_service_cfg *w, const size_t *bes, size_t n, uint32_t **table,
		      uint32_t *size, uint32_t prev_m)
{
	struct sl_maglev_backend *mb;
	char(*keys)[SL_HOSTPORT_LEN];
	uint16_t *weights;
	int err;

	*table = NULL;
	*size = 0;
	if (!n)
		return 0;
	if (w->lb != SLUICE_LB_MAGLEV) {
		weights = calloc(n, sizeof(*weights));
		if (!weights)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			weights[i] = w->backends[bes[i]].weight;
		err = sl_wseq_build(weights, n, table, size);
		free(weights);
		return err;
	}
	mb = calloc(n, sizeof(*mb));
	keys = calloc(n, sizeof(*keys));
	if (!mb || !keys) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sl_format_hostport(&w->backends[bes[i]].addr, keys[i], sizeof(keys[i]));
		mb[i].key = keys[i];
		mb[i].weight = w->backends[bes[i]].weight;
	}
	/* M follows the view's backends, but stays while it fits (maglev.c). */
	*size = sl_maglev_keep(prev_m, sl_maglev_size_weighted(mb, n));
	err = *size ? 0 : -E2BIG;
	if (!err) {
		*table = calloc(*size, sizeof(**table));
		err = *table ? 0 : -ENOMEM;
	}
	if (!err)
		err = sl_maglev_build(mb, n, *size, *table);
out:
	free(mb);
	free(keys);
	if (err) {
		free(*table);
		*table = NULL;
		*size = 0;
	}
	return err;
}

/* Queue a table of 'size' backend ids as (svc, gen, view), two per entry (SLUICE_TABLE_ID):
 * created and filled now, put into sluice_tables by the batch's flush. */
static int table_insert(struct sl_tbatch *b, const struct sluice_table_key *tk, const uint32_t *ids,
			uint32_t size)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_INNER_MAP);
	uint32_t n = SLUICE_TABLE_ENTRIES(size), count = n, *idx;
	uint64_t *pairs;
	int fd, err = 0;

	idx = calloc(n, sizeof(*idx));
	pairs = calloc(n, sizeof(*pairs));
	if (!idx || !pairs) {
		free(idx);
		free(pairs);
		return -ENOMEM;
	}
	for (uint32_t j = 0; j < n; j++) {
		idx[j] = j;
		pairs[j] = SLUICE_TABLE_PAIR(ids[2 * j], 2 * j + 1 < size ? ids[2 * j + 1] : 0);
	}
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_table", sizeof(__u32), sizeof(__u64), n,
			    &copts);
	if (fd < 0)
		err = -errno;
	else if (bpf_map_update_batch(fd, idx, pairs, &count, NULL))
		err = -errno;
	free(idx);
	free(pairs);
	if (fd < 0)
		return err;
	if (err) {
		close(fd);
		return err;
	}
	return sl_tbatch_put(b, tk, fd);
}

/* One table of the idle generation: over slots [start, start + n) of 'order', at view index
 * 'idx' (a view, or SLUICE_MAX_SPLIT + a view for its zone view); none when n is 0 or the
 * lb needs none. Its size goes into *m_out; prev_m is the live table's (Maglev keeps it if it
 * fits). */
static int apply_table(struct sl_tbatch *b, const struct sl_svc_op *op, const size_t *order,
		       struct sluice_table_key *tk, uint32_t idx, size_t start, size_t n,
		       uint32_t prev_m, __u32 *m_out)
{
	uint32_t *table = NULL, size = 0;
	int err;

	tk->view = (__u8)idx;
	err = view_table(op->want, order + start, n, &table, &size, prev_m);
	if (err)
		return err;
	if (!size)
		return sl_tbatch_del(b, tk);
	for (uint32_t j = 0; j < size; j++)
		table[j] = op->be_ids[order[start + table[j]]];
	err = table_insert(b, tk, table, size);
	free(table);
	if (!err)
		*m_out = size;
	return err;
}

/* Step 3: the tables of the idle generation, each view's and each zone view's (locality);
 * their sizes go into sv. */
static int apply_tables(struct sl_tbatch *b, const struct sl_svc_op *op, const size_t *order,
			uint8_t gen, struct sluice_service *sv)
{
	struct sluice_table_key tk = {.svc_id = op->svc_id, .gen = gen};

	for (uint32_t v = 0; v < SLUICE_MAX_SPLIT; v++) {
		struct sluice_view *view = &sv->views[v];
		const struct sluice_view *was = op->cur ? &op->cur->value.views[v] : NULL;
		int live = v < sv->n_views;
		int err;

		err =
		    apply_table(b, op, order, &tk, v, view->slot_start, live ? view->slot_count : 0,
				was ? was->table_m : 0, &view->table_m);
		if (!err)
			err = apply_table(b, op, order, &tk, SLUICE_MAX_SPLIT + v, view->slot_start,
					  live ? view->zone_count : 0, was ? was->zone_table_m : 0,
					  &view->zone_table_m);
		if (err)
			return err;
	}
	return 0;
}

int sl_maps_retire(const struct sl_maps *m, const uint32_t *ids, size_t n, uint32_t **dead,
		   size_t *n_dead)
{
	/* The caller keeps no capacity: *n_dead entries are all that is known
	 * to be there. */
	size_t cap = *n_dead;
	int err;

	if (!n)
		return 0;
	err = SL_ENSURE(dead, &cap, *n_dead + n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct sluice_backend v;

		(*dead)[(*n_dead)++] = ids[i];
		if (bpf_map_lookup_elem(m->backends, &ids[i], &v))
			continue;
		v.state = SLUICE_BE_REMOVED;
		if (bpf_map_update_elem(m->backends, &ids[i], &v, BPF_EXIST) && errno != ENOENT)
			return -errno;
	}
	return 0;
}

/* Delete a frontend only while it still points at this service. */
static int drop_frontend(const struct sl_maps *m, const struct sl_sockaddr *sa, uint8_t proto,
			 uint32_t svc_id)
{
	struct sluice_frontend_key k;
	struct sluice_frontend v;

	fe_key(&k, sa, proto);
	if (bpf_map_lookup_elem(m->frontends, &k, &v) || v.svc_id != svc_id)
		return 0;
	if (bpf_map_delete_elem(m->frontends, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

/* Steps 1 to 3 of an add or update: backends, slots, and its tables queued on b; the service
 * value to write goes into *sv. */
static int upsert_prep(const struct sl_maps *m, const struct sl_svc_op *op, struct sl_tbatch *b,
		       struct sluice_service *sv)
{
	const struct sl_service_cfg *w = op->want;
	uint8_t gen = op->cur ? !op->cur->gen : 0;
	size_t *order;
	int err;

	if (op->kind == SL_OP_ADD) {
		err = percpu_zero(m->svc_stats, op->svc_id, sizeof(struct sluice_svc_stats));
		if (!err)
			err = percpu_zero(m->rr, op->svc_id, sizeof(__u32));
		if (!err)
			err = percpu_zero(m->svc_hist, op->svc_id, sizeof(struct sluice_svc_hist));
		if (!err)
			err = service_rt_reset(m->svc_rt, op->svc_id);
		if (err)
			return err;
	}
	order = calloc(w->n_backends ? w->n_backends : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	sl_slot_order_zone(w, op->zone, order);
	sl_service_value_zone(w, op->zone, sv);
	sv->gen = gen;
	err = apply_backends(m, op);
	if (!err)
		err = apply_slots(m, op, order, gen);
	if (!err)
		err = apply_tables(b, op, order, gen, sv);
	free(order);
	return err;
}

/* Steps 4 to 6, once the op's tables are in: the switch-over, the frontend, retirements. */
static int upsert_commit(const struct sl_maps *m, const struct sl_svc_op *op,
			 const struct sluice_service *sv, uint32_t **dead, size_t *n_dead)
{
	const struct sl_service_cfg *w = op->want;
	struct sluice_svc_info info = {};
	struct sluice_frontend fe = {.svc_id = op->svc_id};
	struct sluice_frontend_key k;
	int err;

	fe_key(&k, &w->frontend, w->proto);
	memcpy(info.name, w->name, sizeof(info.name));
	info.frontend = k;
	if (bpf_map_update_elem(m->svc_info, &op->svc_id, &info, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(m->services, &op->svc_id, sv, BPF_ANY)) /* the switch-over */
		return -errno;
	if (op->frontend_changed) {
		if (bpf_map_update_elem(m->frontends, &k, &fe, BPF_ANY))
			return -errno;
		if (op->cur) {
			err = drop_frontend(m, &op->cur->frontend, op->cur->proto, op->svc_id);
			if (err)
				return err;
		}
	}
	return sl_maps_retire(m, op->gone_ids, op->n_gone, dead, n_dead);
}

/* Ops per chunk: each chunk's tables go in with one batch, before any of its service values. */
#define UPSERT_CHUNK 256

/* Adds and updates, a chunk at a time: prepare each (its tables queued), put all the chunk's
 * tables in at once, then switch each over, in plan order. */
static int apply_upserts(const struct sl_maps *m, const struct sl_plan *plan, struct sl_tbatch *b,
			 uint32_t **dead, size_t *n_dead)
{
	struct sluice_service *sv = calloc(UPSERT_CHUNK, sizeof(*sv));
	size_t *idx = calloc(UPSERT_CHUNK, sizeof(*idx));
	size_t i = 0;
	int err = 0;

	if (!sv || !idx)
		err = -ENOMEM;
	while (!err && i < plan->n_ops) {
		size_t n = 0;

		for (; !err && i < plan->n_ops && n < UPSERT_CHUNK; i++) {
			if (b->n_put + 2 * SLUICE_MAX_SPLIT > SL_TBATCH_MAX_PUT)
				break; /* its tables might not fit: next chunk */
			if (plan->ops[i].kind == SL_OP_REMOVE)
				continue;
			idx[n] = i;
			err = upsert_prep(m, &plan->ops[i], b, &sv[n++]);
		}
		if (!err)
			err = sl_tbatch_flush(b);
		for (size_t j = 0; !err && j < n; j++)
			err = upsert_commit(m, &plan->ops[idx[j]], &sv[j], dead, n_dead);
	}
	free(sv);
	free(idx);
	return err;
}

/* Removing, before its tables go: the frontend, the service value and its info. */
static int remove_prep(const struct sl_maps *m, const struct sl_svc_op *op, struct sl_tbatch *b)
{
	const struct sl_svc_state *c = op->cur;
	int err;

	err = drop_frontend(m, &c->frontend, c->proto, op->svc_id);
	if (err)
		return err;
	if (bpf_map_delete_elem(m->services, &op->svc_id) && errno != ENOENT)
		return -errno;
	if (bpf_map_delete_elem(m->svc_info, &op->svc_id) && errno != ENOENT)
		return -errno;
	for (uint8_t gen = 0; gen < 2; gen++) {
		for (uint8_t v = 0; v < 2 * SLUICE_MAX_SPLIT; v++) { /* views and zone views */
			struct sluice_table_key tk = {.svc_id = op->svc_id, .gen = gen, .view = v};

			err = sl_tbatch_del(b, &tk);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Removing, once its tables are gone: its slots, and its backends retired. */
static int remove_finish(const struct sl_maps *m, const struct sl_svc_op *op, uint32_t **dead,
			 size_t *n_dead)
{
	for (uint8_t gen = 0; gen < 2; gen++) {
		struct sluice_slot_key sk = {.svc_id = op->svc_id, .gen = gen};

		for (uint32_t i = 0; i < SLUICE_MAX_BACKENDS_PER_SERVICE; i++) {
			sk.slot = (__u16)i;
			if (bpf_map_delete_elem(m->slots, &sk))
				break;
		}
	}
	return sl_maps_retire(m, op->gone_ids, op->n_gone, dead, n_dead);
}

/* Removals: all unlinked first, their tables deleted in one batch, then the rest. */
static int apply_removes(const struct sl_maps *m, const struct sl_plan *plan, struct sl_tbatch *b,
			 uint32_t **dead, size_t *n_dead)
{
	int err = 0;

	for (size_t i = 0; !err && i < plan->n_ops; i++)
		if (plan->ops[i].kind == SL_OP_REMOVE)
			err = remove_prep(m, &plan->ops[i], b);
	if (!err)
		err = sl_tbatch_flush(b);
	for (size_t i = 0; !err && i < plan->n_ops; i++)
		if (plan->ops[i].kind == SL_OP_REMOVE)
			err = remove_finish(m, &plan->ops[i], dead, n_dead);
	return err;
}

/* The service map's edges of the services the plan adds (a reused id starts
 * from nothing; before their frontends exist) or removes (after their
 * frontends are gone). */
static int forget_edges(const struct sl_maps *m, const struct sl_plan *plan, int removed)
{
	uint32_t *ids = calloc(plan->n_ops ? plan->n_ops : 1, sizeof(*ids));
	size_t n = 0;
	int err;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_ops; i++)
		if (plan->ops[i].kind == (removed ? SL_OP_REMOVE : SL_OP_ADD))
			ids[n++] = plan->ops[i].svc_id;
	err = sl_edges_forget(m, ids, n, 0);
	free(ids);
	return err;
}

int sl_maps_apply(const struct sl_maps *m, const struct sl_plan *plan, uint32_t **dead,
		  size_t *n_dead)
{
	struct sl_tbatch b;
	int err = forget_edges(m, plan, 0);

	if (err)
		return err;
	sl_tbatch_init(&b, m->tables);
	err = apply_upserts(m, plan, &b, dead, n_dead);
	if (!err)
		err = apply_removes(m, plan, &b, dead, n_dead);
	sl_tbatch_free(&b);
	if (err)
		return err;
	return forget_edges(m, plan, 1);
}

int sl_maps_reap(const struct sl_maps *m, const uint32_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sluice_backend v;

		/* Only what is still retired: an id is never reused while its
		 * entry exists, so this cannot hit a live backend. */
		if (bpf_map_lookup_elem(m->backends, &ids[i], &v))
			continue;
		if (v.state != SLUICE_BE_REMOVED)
			continue;
		if (bpf_map_delete_elem(m->backends, &ids[i]) && errno != ENOENT)
			return -errno;
	}
	return 0;
}
