// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * How a plan reaches the maps without a concurrent connect() ever seeing a
 * half-written service.
 *
 * A service is read by the datapath as: frontend -> service id -> service
 * value {gen, count, lb, maglev_m} -> slots (id, gen, 0..count) or the
 * Maglev table (id, gen) -> backend. The service value lives in a
 * no-prealloc hash and is replaced whole by one update, so a reader sees the
 * old value or the new one, never a mix. Everything the value points to is
 * keyed by its generation, and the agent only ever writes the generation that
 * is NOT live:
 *
 *   1. backends: new ones are written (state healthy, counters zeroed);
 *      changed ones are rewritten in place, keeping their state;
 *   2. slots of the idle generation: 0..n-1 written, stale ones above deleted;
 *   3. Maglev: a new table is built, filled and inserted at (id, idle gen);
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maglev.h"
#include "maps.h"

static const char *const map_names[] = {
    SLUICE_MAP_FRONTENDS, SLUICE_MAP_SERVICES, SLUICE_MAP_SVC_INFO,	 SLUICE_MAP_SLOTS,
    SLUICE_MAP_MAGLEV,	  SLUICE_MAP_BACKENDS, SLUICE_MAP_BACKEND_STATS, SLUICE_MAP_SVC_STATS,
    SLUICE_MAP_RR,	  SLUICE_MAP_REVNAT,   SLUICE_MAP_SVC_HIST,	 SLUICE_MAP_GLOBAL_STATS,
    SLUICE_MAP_SOCKHASH,
};
_Static_assert(sizeof(map_names) / sizeof(map_names[0]) == SL_MAPS_COUNT,
	       "one name per map of struct sl_maps");
const char *const *const sl_map_names = map_names;

int *sl_maps_fd(struct sl_maps *m, unsigned int i)
{
	int *fds[] = {&m->frontends, &m->services,	&m->svc_info,  &m->slots, &m->maglev,
		      &m->backends,  &m->backend_stats, &m->svc_stats, &m->rr,	  &m->revnat,
		      &m->svc_hist,  &m->global_stats,	&m->sockhash};

	_Static_assert(sizeof(fds) / sizeof(fds[0]) == SL_MAPS_COUNT, "one fd per map");

	return i < SL_MAPS_COUNT ? fds[i] : NULL;
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
	s->maglev_m = svc.maglev_m;
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
	size_t n_live = 0;
	void *prev = NULL;
	int err = 0;

	memset(st, 0, sizeof(*st));
	while (!bpf_map_get_next_key(m->svc_info, prev, &next)) {
		struct sl_svc_state *grown = realloc(st->svcs, (st->n_svcs + 1) * sizeof(*grown));

		if (!grown) {
			err = -ENOMEM;
			goto fail;
		}
		st->svcs = grown;
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
			uint32_t *grown =
			    realloc(st->dead_be_ids, (st->n_dead + 1) * sizeof(*grown));

			if (!grown) {
				err = -ENOMEM;
				goto fail;
			}
			st->dead_be_ids = grown;
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

/* Step 1: write new and changed backends. */
static int apply_backends(const struct sl_maps *m, const struct sl_svc_op *op)
{
	const struct sl_service_cfg *w = op->want;

	for (size_t i = 0; i < w->n_backends; i++) {
		struct sluice_backend v, old;
		uint8_t state = SLUICE_BE_HEALTHY;
		int err;

		if (op->be_new[i]) {
			err = backend_counters_reset(m->backend_stats, op->be_ids[i]);
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

/* Step 2: slots of the idle generation. */
static int apply_slots(const struct sl_maps *m, const struct sl_svc_op *op, uint8_t gen)
{
	size_t n = op->want->n_backends;
	struct sluice_slot_key k = {.svc_id = op->svc_id, .gen = gen};

	for (size_t i = 0; i < n; i++) {
		k.slot = (__u16)i;
		if (bpf_map_update_elem(m->slots, &k, &op->be_ids[i], BPF_ANY))
			return -errno;
	}
	for (size_t i = n; i < SLUICE_MAX_BACKENDS_PER_SERVICE; i++) {
		k.slot = (__u16)i;
		if (bpf_map_delete_elem(m->slots, &k))
			break; /* slots are contiguous: the first gap ends them */
	}
	return 0;
}

/* Step 3: a new Maglev table for the idle generation. Returns its size. */
static int apply_maglev(const struct sl_maps *m, const struct sl_svc_op *op, uint8_t gen,
			uint32_t *m_out)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_INNER_MAP);
	const struct sl_service_cfg *w = op->want;
	struct sluice_maglev_key mk = {.svc_id = op->svc_id, .gen = gen};
	struct sl_maglev_backend *mb = NULL;
	char(*keys)[SL_HOSTPORT_LEN] = NULL;
	uint32_t *table = NULL, *idx = NULL, msize, count;
	int fd = -1, err;

	*m_out = 0;
	if (w->lb != SLUICE_LB_MAGLEV || !w->n_backends) {
		if (bpf_map_delete_elem(m->maglev, &mk) && errno != ENOENT)
			return -errno;
		return 0;
	}
	msize = sl_maglev_size(w->n_backends);
	if (!msize)
		return -E2BIG;
	mb = calloc(w->n_backends, sizeof(*mb));
	keys = calloc(w->n_backends, sizeof(*keys));
	table = calloc(msize, sizeof(*table));
	idx = calloc(msize, sizeof(*idx));
	if (!mb || !keys || !table || !idx) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < w->n_backends; i++) {
		sl_format_hostport(&w->backends[i].addr, keys[i], sizeof(keys[i]));
		mb[i].key = keys[i];
		mb[i].weight = w->backends[i].weight;
	}
	err = sl_maglev_build(mb, w->n_backends, msize, table);
	if (err)
		goto out;
	for (uint32_t j = 0; j < msize; j++) {
		idx[j] = j;
		table[j] = op->be_ids[table[j]];
	}
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_maglev_t", sizeof(__u32), sizeof(__u32),
			    msize, &copts);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	count = msize;
	if (bpf_map_update_batch(fd, idx, table, &count, NULL)) {
		err = -errno;
		goto out;
	}
	if (bpf_map_update_elem(m->maglev, &mk, &fd, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	*m_out = msize;
out:
	if (fd >= 0)
		close(fd);
	free(mb);
	free(keys);
	free(table);
	free(idx);
	return err;
}

int sl_maps_retire(const struct sl_maps *m, const uint32_t *ids, size_t n, uint32_t **dead,
		   size_t *n_dead)
{
	uint32_t *grown;

	if (!n)
		return 0;
	grown = realloc(*dead, (*n_dead + n) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	*dead = grown;
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
	struct sluice_service sv = {};
	struct sluice_svc_info info = {};
	struct sluice_frontend fe = {.svc_id = op->svc_id};
	struct sluice_frontend_key k;
	uint32_t msize;
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
	err = apply_backends(m, op);
	if (!err)
		err = apply_slots(m, op, gen);
	if (!err)
		err = apply_maglev(m, op, gen, &msize);
	if (err)
		return err;
	fe_key(&k, &w->frontend, w->proto);
	memcpy(info.name, w->name, sizeof(info.name));
	info.frontend = k;
	if (bpf_map_update_elem(m->svc_info, &op->svc_id, &info, BPF_ANY))
		return -errno;
	sv.count = (__u32)w->n_backends;
	sv.maglev_m = msize;
	sv.lb = w->lb;
	sv.gen = gen;
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
		struct sluice_maglev_key mk = {.svc_id = op->svc_id, .gen = gen};
		struct sluice_slot_key sk = {.svc_id = op->svc_id, .gen = gen};

		if (bpf_map_delete_elem(m->maglev, &mk) && errno != ENOENT)
			return -errno;
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
