// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pinned maps as plain fds, the list they come from (maps.def), and
 * reading them: the services and backends (sl_state), counters, run-time
 * state. Writing a plan into them is maps_apply.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps.h"
#include "mem.h"

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

int sl_maps_dup(const struct sl_maps *src, struct sl_maps *dst)
{
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++)
		*sl_maps_fd(dst, i) = -1;
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		int fd = *(const int *)((const char *)src + fd_offsets[i]);

		if (fd < 0)
			continue;
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			int err = -errno;

			sl_maps_close(dst);
			return err;
		}
		*sl_maps_fd(dst, i) = fd;
	}
	return 0;
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
	b->flags = v->flags;
	memcpy(b->subset, v->subset, sizeof(b->subset));
	b->subset[sizeof(b->subset) - 1] = '\0';
	memcpy(b->zone, v->zone, sizeof(b->zone));
	b->zone[sizeof(b->zone) - 1] = '\0';
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
	err = sl_state_index(st);
	if (err)
		goto fail;
	free(live);
	return 0;
fail:
	free(live);
	sl_state_free(st);
	return err;
}

/* What sl_maps_apply writes of a service (maps_apply.c) is its own: its svc_info, value and
 * slots, the backends of its ops's be_ids (never another service's: plan.c reuses an id
 * only for the address the same service had) and its gone_ids. So a service no op names
 * reads the same before and after, and the datapath writes none of what read_service
 * returns (its run-time state is in backend_rt and svc_rt). */
int sl_maps_state_after(const struct sl_maps *m, struct sl_state *st, const struct sl_plan *plan,
			const uint32_t *dead, size_t n_dead)
{
	uint8_t *gone = calloc(st->n_svcs ? st->n_svcs : 1, 1);
	size_t keep = 0, cap;
	int err = 0;

	if (!gone)
		return -ENOMEM;
	/* Updated ones read again in place, removed ones marked, while the ops' cur still
	 * point into svcs. */
	for (size_t i = 0; i < plan->n_ops && !err; i++) {
		const struct sl_svc_op *op = &plan->ops[i];
		size_t pos = (size_t)(op->cur - st->svcs);

		if (op->kind == SL_OP_ADD)
			continue;
		if (!op->cur || op->cur < st->svcs || pos >= st->n_svcs) {
			err = -EINVAL; /* a plan built from another state */
			break;
		}
		free(st->svcs[pos].bes);
		st->svcs[pos].bes = NULL;
		st->svcs[pos].n_bes = 0;
		if (op->kind == SL_OP_UPDATE)
			err = read_service(m, op->svc_id, &st->svcs[pos]);
		else
			gone[pos] = 1;
	}
	for (size_t i = 0; i < st->n_svcs; i++)
		if (!gone[i])
			st->svcs[keep++] = st->svcs[i];
	st->n_svcs = keep;
	free(gone);
	cap = st->n_svcs;
	for (size_t i = 0; i < plan->n_ops && !err; i++) {
		if (plan->ops[i].kind != SL_OP_ADD)
			continue;
		err = SL_ENSURE(&st->svcs, &cap, st->n_svcs + 1);
		if (!err)
			err = read_service(m, plan->ops[i].svc_id, &st->svcs[st->n_svcs]);
		if (!err)
			st->n_svcs++;
	}
	/* Retired: in the backends map, in no live slot. */
	cap = st->n_dead;
	if (!err && n_dead)
		err = SL_ENSURE(&st->dead_be_ids, &cap, st->n_dead + n_dead);
	if (!err && n_dead) {
		memcpy(st->dead_be_ids + st->n_dead, dead, n_dead * sizeof(*dead));
		st->n_dead += n_dead;
	}
	if (!err)
		err = sl_state_index(st);
	return err;
}

int sl_maps_reap_state(const struct sl_maps *m, struct sl_state *st, const uint32_t *ids, size_t n)
{
	int err = sl_maps_reap(m, ids, n);
	size_t keep = 0;

	if (err)
		return err;
	for (size_t i = 0; i < st->n_dead; i++) {
		uint32_t id = st->dead_be_ids[i];
		struct sluice_backend v;
		int asked = 0;

		for (size_t j = 0; j < n && !asked; j++)
			asked = ids[j] == id;
		/* sl_maps_reap leaves an entry that is not retired: still dead to a read. */
		if (asked && bpf_map_lookup_elem(m->backends, &id, &v)) {
			if (errno != ENOENT)
				return -errno;
			continue;
		}
		st->dead_be_ids[keep++] = id;
	}
	st->n_dead = keep;
	return 0;
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

int sl_maps_edges(const struct sl_maps *m, struct sl_edge **out, size_t *n)
{
	struct sluice_edge_key key, next;
	struct sl_edge *v = NULL;
	size_t cap = 0, len = 0;
	int err = 0;

	_Static_assert(sizeof(struct sluice_edge_stats) % sizeof(uint64_t) == 0,
		       "64-bit counters only");
	for (const void *prev = NULL; !bpf_map_get_next_key(m->edges, prev, &next); prev = &key) {
		key = next;
		err = SL_ENSURE(&v, &cap, len + 1);
		if (err)
			break;
		v[len].key = key;
		err = sl_percpu_sum(m->edges, &key, &v[len].st, sizeof(v[len].st));
		if (err)
			break;
		len++;
	}
	if (!err && errno != ENOENT)
		err = -errno;
	/* Deleted under the walk: continuing from it would start over, so the
	 * walk ends there (edges go only with their service). */
	if (err == -ENOENT)
		err = 0;
	if (err) {
		free(v);
		return err;
	}
	*out = v;
	*n = len;
	return 0;
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

int64_t sl_active_count(uint64_t active_gen)
{
	int64_t a = sluice_rt_active(active_gen);

	return a > 0 ? a : 0;
}

int sl_maps_backend_rt(const struct sl_maps *m, uint32_t be_id, struct sluice_backend_rt *out)
{
	return bpf_map_lookup_elem(m->backend_rt, &be_id, out) ? -errno : 0;
}

int sl_maps_service_active(const struct sl_maps *m, uint32_t svc_id, int64_t *out)
{
	struct sluice_svc_rt rt;

	if (bpf_map_lookup_elem(m->svc_rt, &svc_id, &rt))
		return -errno;
	*out = sl_active_count(rt.active_gen);
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
