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
 *   1. backends: new ones are written (state healthy, counters zeroed);
 *      changed ones are rewritten in place, keeping their state;
 *   2. slots of the idle generation: 0..n-1 written, stale ones above deleted;
 *   3. tables: a new one per view is built, filled and inserted at
 *      (id, idle gen, view);
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maglev.h"
#include "maps.h"
#include "mem.h"
#include "wseq.h"

static const char *const all_names[SLUICE_MAP__COUNT] = {
#define SLUICE_MAP(id, name, ...) [id] = #name,
#include <sluice/maps.def>
#undef SLUICE_MAP
};

const char *sl_map_name(enum sluice_map id)
{
	return (unsigned int)id < SLUICE_MAP__COUNT ? all_names[id] : "?";
}

static const enum sl_map_objects all_objects[SLUICE_MAP__COUNT] = {
#define SLUICE_MAP(id, name, field, objects, fd, capacity) [id] = SL_MAP_OBJ_##objects,
#include <sluice/maps.def>
#undef SLUICE_MAP
};

enum sl_map_objects sl_map_objects(enum sluice_map id)
{
	return (unsigned int)id < SLUICE_MAP__COUNT ? all_objects[id] : SL_MAP_OBJ_AGENT;
}

static const char *const map_names[SL_MAPS_COUNT] = {
#define SLUICE_MAP(id, name, field, objects, fd, capacity) SL_MAPS_IF_##fd(#name, )
#include <sluice/maps.def>
#undef SLUICE_MAP
};
const char *const *const sl_map_names = map_names;

static const size_t fd_offsets[SL_MAPS_COUNT] = {
#define SLUICE_MAP(id, name, field, objects, fd, capacity)                                         \
	SL_MAPS_IF_##fd(offsetof(struct sl_maps, field), )
#include <sluice/maps.def>
#undef SLUICE_MAP
};
_Static_assert(sizeof(struct sl_maps) == SL_MAPS_COUNT * sizeof(int), "struct sl_maps: fds only");

int *sl_maps_fd(struct sl_maps *m, unsigned int i)
{
	return i < SL_MAPS_COUNT ? (int *)((char *)m + fd_offsets[i]) : NULL;
}

void sl_maps_close(struct sl_maps *m)
{
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		int *fd = sl_maps_fd(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

int sl_maps_open_pinned(const char *dir, int rdonly, struct sl_maps *m)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = rdonly ? BPF_F_RDONLY : 0);
	char path[4096];

	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++)
		*sl_maps_fd(m, i) = -1;
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, sl_map_names[i]);
		fd = bpf_obj_get_opts(path, &opts);
		if (fd < 0) {
			int err = -errno;

			sl_maps_close(m);
			return err;
		}
		*sl_maps_fd(m, i) = fd;
	}
	return 0;
}

static int map_max_entries(int fd, uint32_t *out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*out = info.max_entries;
	return 0;
}

int sl_maps_id_limits(const struct sl_maps *m, uint32_t *max_svc_id, uint32_t *max_be_id)
{
	uint32_t svc_stats = 0, be_stats = 0;
	int err;

	err = map_max_entries(m->svc_stats, &svc_stats);
	if (!err)
		err = map_max_entries(m->backend_stats, &be_stats);
	if (err)
		return err;
	/* Per-id arrays are sized capacity + 1: id 0 is never used. */
	*max_svc_id = svc_stats - 1;
	*max_be_id = be_stats - 1;
	return 0;
}

int sl_maps_fill(int fd, uint32_t *entries, uint32_t *capacity)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char key[256], next[256];
	uint32_t n = 0;
	void *prev = NULL;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*capacity = info.max_entries;
	if (info.type == BPF_MAP_TYPE_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return 1; /* every index exists: no fill to count */
	if (info.key_size > sizeof(key))
		return -E2BIG;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		n++;
		memcpy(key, next, info.key_size);
		prev = key;
	}
	*entries = n;
	return 0;
}

static void be_from_map(struct sl_be_state *b, uint32_t id, const struct sluice_backend *v)
{
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->addr.addr = v->addr;
	b->addr.port = ntohs(v->port);
	b->addr.family = v->family;
	b->weight = v->weight;
	b->state = v->state;
	memcpy(b->subset, v->subset, sizeof(b->subset));
	b->subset[sizeof(b->subset) - 1] = '\0';
}

static void sa_from_key(struct sl_sockaddr *sa, const struct sluice_frontend_key *k)
{
	memset(sa, 0, sizeof(*sa));
	sa->addr = k->addr;
	sa->port = ntohs(k->port);
	sa->family = k->family;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int read_service(const struct sl_maps *m, uint32_t id, struct sl_svc_state *s)
{
	struct sluice_svc_info info;
	struct sluice_service svc;

	memset(s, 0, sizeof(*s));
	if (bpf_map_lookup_elem(m->svc_info, &id, &info))
		return -errno;
	s->id = id;
	memcpy(s->name, info.name, sizeof(s->name));
	s->name[sizeof(s->name) - 1] = '\0';
	sa_from_key(&s->frontend, &info.frontend);
	s->proto = info.frontend.proto;
	/* A service whose value was never written (an apply cut short) reads
	 * as empty; the next apply rewrites it. */
	if (bpf_map_lookup_elem(m->services, &id, &svc))
		return errno == ENOENT ? 0 : -errno;
	s->lb = svc.lb;
	s->gen = svc.gen;
	s->value = svc;
	s->bes = calloc(svc.count ? svc.count : 1, sizeof(*s->bes));
	if (!s->bes)
		return -ENOMEM;
	for (uint32_t i = 0; i < svc.count; i++) {
		struct sluice_slot_key sk = {.svc_id = id, .slot = (__u16)i, .gen = svc.gen};
		struct sluice_backend be;
		uint32_t be_id;

		if (bpf_map_lookup_elem(m->slots, &sk, &be_id) ||
		    bpf_map_lookup_elem(m->backends, &be_id, &be))
			continue;
		be_from_map(&s->bes[s->n_bes++], be_id, &be);
	}
	return 0;
}

int sl_maps_read_state(const struct sl_maps *m, struct sl_state *st)
{
	uint32_t key, next, *live = NULL, be_id;
	size_t n_live = 0, cap_svcs = 0, cap_dead = 0;
	void *prev = NULL;
	int err = 0;

	memset(st, 0, sizeof(*st));
	while (!bpf_map_get_next_key(m->svc_info, prev, &next)) {
		err = SL_ENSURE(&st->svcs, &cap_svcs, st->n_svcs + 1);
		if (err)
			goto fail;
		err = read_service(m, next, &st->svcs[st->n_svcs]);
		if (err == -ENOENT) { /* deleted meanwhile */
			err = 0;
		} else if (err) {
			goto fail;
		} else {
			st->n_svcs++;
		}
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < st->n_svcs; i++)
		n_live += st->svcs[i].n_bes;
	live = calloc(n_live ? n_live : 1, sizeof(*live));
	if (!live) {
		err = -ENOMEM;
		goto fail;
	}
	n_live = 0;
	for (size_t i = 0; i < st->n_svcs; i++)
		for (size_t j = 0; j < st->svcs[i].n_bes; j++)
			live[n_live++] = st->svcs[i].bes[j].id;
	qsort(live, n_live, sizeof(*live), cmp_u32);
	/* Backends in no live slot: retired, or left by an apply cut short. */
	prev = NULL;
	while (!bpf_map_get_next_key(m->backends, prev, &next)) {
		be_id = next;
		if (!bsearch(&be_id, live, n_live, sizeof(*live), cmp_u32)) {
			err = SL_ENSURE(&st->dead_be_ids, &cap_dead, st->n_dead + 1);
			if (err)
				goto fail;
			st->dead_be_ids[st->n_dead++] = be_id;
		}
		key = next;
		prev = &key;
	}
	free(live);
	return 0;
fail:
	free(live);
	sl_state_free(st);
	return err;
}

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

int sl_percpu_sum(int fd, const void *key, void *out, size_t size)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t stride = (size + 7) & ~(size_t)7, nfields = size / sizeof(uint64_t);
	uint64_t *sum = out;
	uint8_t *vals;

	if (ncpu < 0)
		return ncpu;
	vals = calloc((size_t)ncpu, stride);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	memset(out, 0, size);
	for (int c = 0; c < ncpu; c++) {
		const uint64_t *v = (const uint64_t *)(vals + (size_t)c * stride);

		for (size_t f = 0; f < nfields; f++)
			sum[f] += v[f];
	}
	free(vals);
	return 0;
}

/* The same, for the arrays keyed by a __u32 id. */
static int percpu_sum(int fd, uint32_t id, void *out, size_t size)
{
	return sl_percpu_sum(fd, &id, out, size);
}

int sl_maps_backend_stats(const struct sl_maps *m, uint32_t be_id, struct sluice_backend_stats *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "64-bit counters only");
	return percpu_sum(m->backend_stats, be_id, out, sizeof(*out));
}

int sl_maps_service_hist(const struct sl_maps *m, uint32_t svc_id, struct sluice_svc_hist *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "64-bit counters only");
	return percpu_sum(m->svc_hist, svc_id, out, sizeof(*out));
}

int sl_maps_global_stats(const struct sl_maps *m, struct sluice_global_stats *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "64-bit counters only");
	return percpu_sum(m->global_stats, 0, out, sizeof(*out));
}

/*
 * A backend id that is reused starts with no connections counted, but keeps
 * its active count: sockets still open to the backend that held the id
 * before will decrement it when they close.
 */
static int backend_counters_reset(int fd, uint32_t id)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_backend_stats *vals;
	int err = 0;

	if (ncpu < 0)
		return ncpu;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &id, vals)) {
		err = -errno;
		goto out;
	}
	for (int c = 0; c < ncpu; c++)
		vals[c].connections = 0;
	if (bpf_map_update_elem(fd, &id, vals, BPF_ANY))
		err = -errno;
out:
	free(vals);
	return err;
}

int sl_maps_backend_rt(const struct sl_maps *m, uint32_t be_id, struct sluice_backend_rt *out)
{
	if (bpf_map_lookup_elem(m->backend_rt, &be_id, out))
		return -errno;
	if (out->active < 0)
		out->active = 0;
	return 0;
}

int sl_maps_service_active(const struct sl_maps *m, uint32_t svc_id, int64_t *out)
{
	struct sluice_svc_rt rt;

	if (bpf_map_lookup_elem(m->svc_rt, &svc_id, &rt))
		return -errno;
	*out = rt.active > 0 ? rt.active : 0;
	return 0;
}

uint64_t sl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint8_t sl_backend_state(uint8_t state, const struct sluice_backend_rt *rt, uint64_t now)
{
	if (state == SLUICE_BE_HEALTHY && rt && rt->ejected_until_ns > now)
		return SLUICE_BE_EJECTED;
	return state;
}

int sl_maps_set_state(const struct sl_maps *m, uint32_t be_id, uint8_t state)
{
	struct sluice_backend v;

	if (bpf_map_lookup_elem(m->backends, &be_id, &v))
		return -errno;
	if (v.state == state)
		return 0;
	if (v.state == SLUICE_BE_REMOVED)
		return -ENOENT;
	v.state = state;
	return bpf_map_update_elem(m->backends, &be_id, &v, BPF_EXIST) ? -errno : 0;
}

int sl_maps_service_rejected(const struct sl_maps *m, uint32_t svc_id,
			     uint64_t out[SLUICE_DROP__MAX])
{
	_Static_assert(sizeof(struct sluice_svc_stats) == SLUICE_DROP__MAX * sizeof(uint64_t),
		       "one counter per drop reason");
	return percpu_sum(m->svc_stats, svc_id, out, sizeof(struct sluice_svc_stats));
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
		     uint8_t state)
{
	memset(v, 0, sizeof(*v));
	v->addr = c->addr.addr;
	v->port = htons(c->addr.port);
	v->family = c->addr.family;
	v->state = state;
	v->weight = c->weight;
	v->svc_id = svc_id;
	memcpy(v->subset, c->subset, sizeof(v->subset));
}

/* A new backend starts with no outlier history. Its active count stays:
 * sockets to the backend that held the id before still give theirs back. */
static int backend_rt_reset(int fd, uint32_t id)
{
	struct sluice_backend_rt rt;

	if (bpf_map_lookup_elem(fd, &id, &rt))
		return -errno;
	rt.ejected_until_ns = 0;
	rt.ejected_at_ns = 0;
	rt.failures = 0;
	rt.times_ejected = 0;
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
			err = backend_counters_reset(m->backend_stats, op->be_ids[i]);
			if (!err)
				err = backend_rt_reset(m->backend_rt, op->be_ids[i]);
			if (err)
				return err;
		} else if (!bpf_map_lookup_elem(m->backends, &op->be_ids[i], &old)) {
			state = old.state;
			be_value(&v, &w->backends[i], op->svc_id, state);
			if (!memcmp(&v, &old, sizeof(v)))
				continue;
		}
		be_value(&v, &w->backends[i], op->svc_id, state);
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
		      uint32_t *size)
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
	*size = sl_maglev_size(n);
	if (!*size)
		return -E2BIG;
	mb = calloc(n, sizeof(*mb));
	keys = calloc(n, sizeof(*keys));
	*table = calloc(*size, sizeof(**table));
	if (!mb || !keys || !*table) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sl_format_hostport(&w->backends[bes[i]].addr, keys[i], sizeof(keys[i]));
		mb[i].key = keys[i];
		mb[i].weight = w->backends[bes[i]].weight;
	}
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

/* Put a table of backend ids in as (svc, gen, view). */
static int table_insert(const struct sl_maps *m, const struct sluice_table_key *tk,
			const uint32_t *ids, uint32_t size)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_INNER_MAP);
	uint32_t *idx, count = size;
	int fd, err = 0;

	idx = calloc(size, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (uint32_t j = 0; j < size; j++)
		idx[j] = j;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_table", sizeof(__u32), sizeof(__u32), size,
			    &copts);
	if (fd < 0)
		err = -errno;
	else if (bpf_map_update_batch(fd, idx, ids, &count, NULL))
		err = -errno;
	else if (bpf_map_update_elem(m->tables, tk, &fd, BPF_ANY))
		err = -errno;
	if (fd >= 0)
		close(fd);
	free(idx);
	return err;
}

/* Step 3: the tables of the idle generation; each view's size goes into sv. */
static int apply_tables(const struct sl_maps *m, const struct sl_svc_op *op, const size_t *order,
			uint8_t gen, struct sluice_service *sv)
{
	struct sluice_table_key tk = {.svc_id = op->svc_id, .gen = gen};

	for (uint32_t v = 0; v < SLUICE_MAX_SPLIT; v++) {
		struct sluice_view *view = &sv->views[v];
		uint32_t *table = NULL, size = 0;
		int err = 0;

		tk.view = (__u8)v;
		if (v < sv->n_views)
			err = view_table(op->want, order + view->slot_start, view->slot_count,
					 &table, &size);
		if (err)
			return err;
		if (!size) {
			if (bpf_map_delete_elem(m->tables, &tk) && errno != ENOENT)
				return -errno;
			continue;
		}
		for (uint32_t j = 0; j < size; j++)
			table[j] = op->be_ids[order[view->slot_start + table[j]]];
		err = table_insert(m, &tk, table, size);
		free(table);
		if (err)
			return err;
		view->table_m = size;
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

static int apply_upsert(const struct sl_maps *m, const struct sl_svc_op *op, uint32_t **dead,
			size_t *n_dead)
{
	const struct sl_service_cfg *w = op->want;
	uint8_t gen = op->cur ? !op->cur->gen : 0;
	struct sluice_service sv;
	struct sluice_svc_info info = {};
	struct sluice_frontend fe = {.svc_id = op->svc_id};
	struct sluice_frontend_key k;
	size_t *order;
	int err;

	if (op->kind == SL_OP_ADD) {
		err = percpu_zero(m->svc_stats, op->svc_id, sizeof(struct sluice_svc_stats));
		if (!err)
			err = percpu_zero(m->rr, op->svc_id, sizeof(__u32));
		if (!err)
			err = percpu_zero(m->svc_hist, op->svc_id, sizeof(struct sluice_svc_hist));
		if (err)
			return err;
	}
	order = calloc(w->n_backends ? w->n_backends : 1, sizeof(*order));
	if (!order)
		return -ENOMEM;
	sl_slot_order(w, order);
	sl_service_value(w, &sv);
	sv.gen = gen;
	err = apply_backends(m, op);
	if (!err)
		err = apply_slots(m, op, order, gen);
	if (!err)
		err = apply_tables(m, op, order, gen, &sv);
	free(order);
	if (err)
		return err;
	fe_key(&k, &w->frontend, w->proto);
	memcpy(info.name, w->name, sizeof(info.name));
	info.frontend = k;
	if (bpf_map_update_elem(m->svc_info, &op->svc_id, &info, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(m->services, &op->svc_id, &sv, BPF_ANY)) /* the switch-over */
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

static int apply_remove(const struct sl_maps *m, const struct sl_svc_op *op, uint32_t **dead,
			size_t *n_dead)
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
		struct sluice_slot_key sk = {.svc_id = op->svc_id, .gen = gen};

		for (uint8_t v = 0; v < SLUICE_MAX_SPLIT; v++) {
			struct sluice_table_key tk = {.svc_id = op->svc_id, .gen = gen, .view = v};

			if (bpf_map_delete_elem(m->tables, &tk) && errno != ENOENT)
				return -errno;
		}
		for (uint32_t i = 0; i < SLUICE_MAX_BACKENDS_PER_SERVICE; i++) {
			sk.slot = (__u16)i;
			if (bpf_map_delete_elem(m->slots, &sk))
				break;
		}
	}
	return sl_maps_retire(m, op->gone_ids, op->n_gone, dead, n_dead);
}

int sl_maps_apply(const struct sl_maps *m, const struct sl_plan *plan, uint32_t **dead,
		  size_t *n_dead)
{
	int err;

	for (size_t i = 0; i < plan->n_ops; i++) {
		if (plan->ops[i].kind == SL_OP_REMOVE)
			continue;
		err = apply_upsert(m, &plan->ops[i], dead, n_dead);
		if (err)
			return err;
	}
	for (size_t i = 0; i < plan->n_ops; i++) {
		if (plan->ops[i].kind != SL_OP_REMOVE)
			continue;
		err = apply_remove(m, &plan->ops[i], dead, n_dead);
		if (err)
			return err;
	}
	return 0;
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
