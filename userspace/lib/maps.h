/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pinned maps as plain fds: reading the state out of them (agent and
 * CLI alike) and writing a plan into them (agent).
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include <stdint.h>

#include "plan.h"

/* For expanding include/sluice/maps.def: the fd column keeps (FD) or drops
 * (NOFD) what follows. */
#define SL_MAPS_IF_FD(...) __VA_ARGS__
#define SL_MAPS_IF_NOFD(...)

/* The maps agent and CLI use as plain fds, in maps.def's order. */
struct sl_maps {
#define SLUICE_MAP(id, name, field, objects, fd, capacity) SL_MAPS_IF_##fd(int field;)
#include <sluice/maps.def>
#undef SLUICE_MAP
};

/* Their count, and the index of each, for loops over all of them. */
enum {
#define SLUICE_MAP(id, name, field, objects, fd, capacity) SL_MAPS_IF_##fd(SL_MAPS_I_##field, )
#include <sluice/maps.def>
#undef SLUICE_MAP
	SL_MAPS_COUNT,
};

/* Pin name of each, by index; its fd in m, by index (NULL past the end). */
extern const char *const *const sl_map_names;
int *sl_maps_fd(struct sl_maps *m, unsigned int i);

/* Pin name of any map (also the name in the BPF objects). */
const char *sl_map_name(enum sluice_map id);

/* Which objects hold a map: the objects column of maps.def. */
enum sl_map_objects {
	SL_MAP_OBJ_SOCK,   /* sock_lb, sockops and redirect */
	SL_MAP_OBJ_SHARED, /* those three and tc_flow */
	SL_MAP_OBJ_TC,	   /* tc_flow */
	SL_MAP_OBJ_AGENT,  /* none: the agent makes it */
};
enum sl_map_objects sl_map_objects(enum sluice_map id);

/* Open every map pinned under dir (read-only when 'rdonly'). -errno; on
 * failure nothing stays open. */
int sl_maps_open_pinned(const char *dir, int rdonly, struct sl_maps *m);
void sl_maps_close(struct sl_maps *m);
/* dst: a duplicate of every fd of src (for a reader on another thread, whose maps stay open
 * whatever src's owner does). 0 or -errno; on failure dst holds none. */
int sl_maps_dup(const struct sl_maps *src, struct sl_maps *dst);

/* Largest service and backend id the maps can hold (from max_entries). */
int sl_maps_id_limits(const struct sl_maps *m, uint32_t *max_svc_id, uint32_t *max_be_id);

int sl_maps_read_state(const struct sl_maps *m, struct sl_state *st);

/* st, read before 'plan' was applied (the plan was built from it), brought to what
 * sl_maps_read_state would return after the apply (but for the order of svcs and dead_be_ids):
 * the services the plan updated or added read again, the removed ones dropped, the backends
 * it retired (dead) added. 0 or -errno; on failure st is only fit for sl_state_free. */
int sl_maps_state_after(const struct sl_maps *m, struct sl_state *st, const struct sl_plan *plan,
			const uint32_t *dead, size_t n_dead);

/* Carry a plan out; the scheme is described in maps_apply.c. Ids of backends it
 * retired are appended to *dead (the caller reaps them after a grace period).
 * -errno on the first failure. */
int sl_maps_apply(const struct sl_maps *m, const struct sl_plan *plan, uint32_t **dead,
		  size_t *n_dead);

/* Mark backends removed (the datapath skips them) and append their ids to
 * *dead for reaping. */
int sl_maps_retire(const struct sl_maps *m, const uint32_t *ids, size_t n, uint32_t **dead,
		   size_t *n_dead);

/* Delete retired backends for good. */
int sl_maps_reap(const struct sl_maps *m, const uint32_t *ids, size_t n);

/* sl_maps_reap, with st (a state of these maps, kept between changes) kept in step: the ids
 * whose entries are gone leave its dead ids. -errno; st is then not to be trusted. */
int sl_maps_reap_state(const struct sl_maps *m, struct sl_state *st, const uint32_t *ids, size_t n);

/* The per-CPU value at key, made only of 64-bit counters, summed over CPUs
 * into out (size bytes; signed counters wrap back to their signed sum).
 * 0 or -errno (-ENOENT: no such key). */
int sl_percpu_sum(int fd, const void *key, void *out, size_t size);

/* Per-CPU counters summed over CPUs. */
int sl_maps_backend_stats(const struct sl_maps *m, uint32_t be_id,
			  struct sluice_backend_stats *out);
int sl_maps_service_hist(const struct sl_maps *m, uint32_t svc_id, struct sluice_svc_hist *out);
int sl_maps_global_stats(const struct sl_maps *m, struct sluice_global_stats *out);
/* The active connections an active_gen word holds (SLUICE_RT_ONE in abi.h);
 * a negative count (a transient of concurrent updates) reads as 0. */
int64_t sl_active_count(uint64_t active_gen);

/* A backend's run-time state as stored (sl_active_count() reads its
 * active_gen); a service's active connections. */
int sl_maps_backend_rt(const struct sl_maps *m, uint32_t be_id, struct sluice_backend_rt *out);
int sl_maps_service_active(const struct sl_maps *m, uint32_t svc_id, int64_t *out);

/* CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(). */
uint64_t sl_mono_ns(void);

/* A backend's state as the datapath sees it at 'now': its state in the
 * backends map, or SLUICE_BE_EJECTED while a healthy one is ejected. */
uint8_t sl_backend_state(uint8_t state, const struct sluice_backend_rt *rt, uint64_t now);

/* Set a backend's state (healthy, unhealthy, draining), keeping the rest.
 * -ENOENT if there is no such backend. */
int sl_maps_set_state(const struct sl_maps *m, uint32_t be_id, uint8_t state);

int sl_maps_service_rejected(const struct sl_maps *m, uint32_t svc_id,
			     uint64_t out[SLUICE_DROP__MAX]);

/* One (caller identity, service) edge of the service map, summed over CPUs. */
struct sl_edge {
	struct sluice_edge_key key;
	struct sluice_edge_stats st;
};

/* Every edge in sluice_edges, in the walk's order: *out (free() it) holds
 * *n of them. An edge deleted during the walk ends it early. 0 or -errno. */
int sl_maps_edges(const struct sl_maps *m, struct sl_edge **out, size_t *n);

/* Entries and capacity of one map (by walking its keys). Returns 1 for an
 * array, whose every index exists (*entries is then not set). */
int sl_maps_fill(int fd, uint32_t *entries, uint32_t *capacity);

#endif /* SLUICE_MAPS_H */
