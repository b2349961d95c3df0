/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What is in the maps (struct sl_state) and what must change to reach a
 * config (struct sl_plan). Planning is pure: no syscalls, so it is unit
 * tested on its own; datapath.c carries a plan out.
 */
#ifndef SLUICE_PLAN_H
#define SLUICE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "hidx.h"
#include "localaddr.h"

struct sl_be_state {
	uint32_t id;
	struct sl_sockaddr addr;
	uint16_t weight;
	uint8_t state; /* enum sluice_backend_state */
	char subset[SLUICE_SUBSET_LEN];
	uint32_t flags; /* SLUICE_BE_F_* */
	char zone[SLUICE_ZONE_LEN];
};

struct sl_svc_state {
	uint32_t id;
	char name[SLUICE_NAME_LEN];
	struct sl_sockaddr frontend;
	uint8_t proto;
	uint8_t lb;
	uint8_t gen;
	struct sluice_service value; /* as the datapath reads it */
	struct sl_be_state *bes;     /* in slot order */
	size_t n_bes;
};

struct sl_state {
	struct sl_svc_state *svcs;
	size_t n_svcs;
	uint32_t *dead_be_ids; /* backends marked removed, awaiting reaping */
	size_t n_dead;
	/* svcs by name (sl_state_index), valid while svcs and n_svcs are what it was built for */
	struct sl_hidx idx;
	const struct sl_svc_state *idx_svcs;
	size_t idx_n;
};

void sl_state_free(struct sl_state *st);

/* (Re)build st's name index: sl_state_find is then one probe instead of a pass over svcs.
 * sl_maps_read_state does it; whoever adds, removes or renames services in svcs calls it again
 * (until then a find whose index does not match svcs scans). 0 or -ENOMEM (no index). */
int sl_state_index(struct sl_state *st);

/* The first service named name, or NULL. */
const struct sl_svc_state *sl_state_find(const struct sl_state *st, const char *name);
/* The same; *n_cmp gets how many names it compared (what the scale tests bound). */
const struct sl_svc_state *sl_state_find_cmp(const struct sl_state *st, const char *name,
					     size_t *n_cmp);

/* The first difference between two states of the same maps: services by name (id, gen,
 * frontend, value, backends in slot order: id, address, weight, state, flags, zone, subset),
 * dead ids as a set, but not their order. 0: none; 1: described in why (in the form
 * "service web slot 1: backend state ..."); -ENOMEM. */
int sl_state_diff(const struct sl_state *got, const struct sl_state *want, char *why, size_t len);

/* Set the state of backend be_id of 'service' in st, as sl_maps_set_state did in the maps.
 * -ENOENT: st has no such backend of that service. */
int sl_state_set_backend(struct sl_state *st, const char *service, uint32_t be_id, uint8_t state);

enum sl_op_kind {
	SL_OP_ADD,
	SL_OP_UPDATE,
	SL_OP_REMOVE,
};

struct sl_svc_op {
	enum sl_op_kind kind;
	uint32_t svc_id;
	const struct sl_svc_state *cur;	   /* NULL for ADD */
	const struct sl_service_cfg *want; /* NULL for REMOVE */
	/* ADD/UPDATE: the id of each of want's backends, in order; reused
	 * for an address the service already had, newly allocated otherwise. */
	uint32_t *be_ids;
	uint8_t *be_new; /* be_new[i]: be_ids[i] was allocated by this plan */
	/* UPDATE/REMOVE: ids of cur's backends that are gone. */
	uint32_t *gone_ids;
	size_t n_gone;
	unsigned int frontend_changed : 1;
	/* ADD/UPDATE: the SLUICE_BE_F_* of each of want's backends. */
	uint32_t *be_flags;
	/* ADD/UPDATE: the zone whose backends want's views take first
	 * (sl_locality_zone), or NULL. */
	const char *zone;
};

struct sl_plan {
	struct sl_svc_op *ops;
	size_t n_ops;
	size_t n_add, n_update, n_remove;
	size_t cap_ops;
};

/* The order of a service's backends in its slots, as indices into
 * w->backends: the subsets of its split in split order, each in config
 * order, then the backends of no split subset (they take no new
 * connections). Without a split, config order. 'order' has room for
 * w->n_backends. */
void sl_slot_order(const struct sl_service_cfg *w, size_t *order);

/* The service's datapath value but for what an apply fills in: gen, and
 * each view's table_m. */
void sl_service_value(const struct sl_service_cfg *w, struct sluice_service *sv);

/* The zone whose backends service w takes first: node_zone (agent.zone) when w's locality
 * is prefer_zone and node_zone is not "", else NULL. */
const char *sl_locality_zone(const struct sl_service_cfg *w, const char *node_zone);

/* The same two with locality: within each view, the backends in 'zone' (sl_locality_zone;
 * NULL: none) first, each group in config order; the value's views say how many
 * (zone_count; 0 when they are none or all of the view: no zone view is needed). */
void sl_slot_order_zone(const struct sl_service_cfg *w, const char *zone, size_t *order);
void sl_service_value_zone(const struct sl_service_cfg *w, const char *zone,
			   struct sluice_service *sv);

/* A backend's SLUICE_BE_F_* in service w, given this node's addresses:
 * SLUICE_BE_F_REMOTE when w's mtls is not off and b is at none of them
 * (local NULL: every backend is local). */
uint32_t sl_backend_flags(const struct sl_service_cfg *w, const struct sl_backend_cfg *b,
			  const struct sl_addrs *local);

/* Build the plan from cur to want. Ids come from [1, max_svc_id] and
 * [1, max_be_id] and never reuse one that cur still holds. 0 or -errno
 * (-ENOSPC when ids ran out, -ENOMEM). Backends are marked by
 * sl_backend_flags against 'local', this node's addresses (sl_local_addrs;
 * sl_plan_build: none known, so no backend is remote). */
int sl_plan_build_at(const struct sl_state *cur, const struct sl_config *want,
		     const struct sl_addrs *local, uint32_t max_svc_id, uint32_t max_be_id,
		     struct sl_plan *plan);
/* The same for the services named in only[0..n_only) alone (each once): the rest of want is
 * taken to be what cur already holds, and is not looked at. For a change known to touch only
 * those services (an API registration): its cost does not grow with the other services. */
int sl_plan_build_only(const struct sl_state *cur, const struct sl_config *want,
		       const struct sl_addrs *local, uint32_t max_svc_id, uint32_t max_be_id,
		       const char (*only)[SLUICE_NAME_LEN], size_t n_only, struct sl_plan *plan);
int sl_plan_build(const struct sl_state *cur, const struct sl_config *want, uint32_t max_svc_id,
		  uint32_t max_be_id, struct sl_plan *plan);
void sl_plan_free(struct sl_plan *plan);

#endif /* SLUICE_PLAN_H */
