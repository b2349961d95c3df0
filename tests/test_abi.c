// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The map list (include/sluice/maps.def) against the BPF objects and what it
 * generates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "maps.h"
#include "redirect.skel.h"
#include "sock_lb.skel.h"
#include "sockops.skel.h"
#include "tc_flow.skel.h"

/* --- the list ----------------------------------------------------------------------------- */

/* Every pinned map of obj is in the list, and every map the list gives such
 * an object ('kinds': a mask of 1 << enum sl_map_objects) is in obj. */
static void check_object(const char *what, struct bpf_object *obj, unsigned int kinds)
{
	int seen[SLUICE_MAP__COUNT] = {0};
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
	{
		unsigned int id;

		if (bpf_map__is_internal(map))
			continue;
		for (id = 0; id < SLUICE_MAP__COUNT; id++)
			if (!strcmp(sl_map_name(id), bpf_map__name(map)))
				break;
		cr_expect(id < SLUICE_MAP__COUNT, "%s: map %s is not in maps.def", what,
			  bpf_map__name(map));
		if (id == SLUICE_MAP__COUNT)
			continue;
		cr_expect(kinds & (1u << sl_map_objects(id)), "%s: %s is listed for other objects",
			  what, bpf_map__name(map));
		seen[id] = 1;
	}
	for (unsigned int id = 0; id < SLUICE_MAP__COUNT; id++)
		if (kinds & (1u << sl_map_objects(id)))
			cr_expect(seen[id], "%s: lacks %s", what, sl_map_name(id));
}

Test(maplist, matches_the_objects)
{
	const unsigned int dp = 1u << SL_MAP_OBJ_SOCK | 1u << SL_MAP_OBJ_SHARED;
	const unsigned int tc = 1u << SL_MAP_OBJ_SHARED | 1u << SL_MAP_OBJ_TC;
	struct sock_lb *lb = sock_lb__open();
	struct sockops *ops = sockops__open();
	struct redirect *rd = redirect__open();
	struct tc_flow *tf = tc_flow__open();

	cr_assert(lb && ops && rd && tf, "open the skeletons: %s", strerror(errno));
	check_object("sock_lb", lb->obj, dp);
	check_object("sockops", ops->obj, dp);
	check_object("redirect", rd->obj, dp);
	check_object("tc_flow", tf->obj, tc);
	tc_flow__destroy(tf);
	redirect__destroy(rd);
	sockops__destroy(ops);
	sock_lb__destroy(lb);
}

/* What sluicectl status and the sluice_map_* metrics list, in their order. */
Test(maplist, plain_fd_maps_in_order)
{
	static const char *const want[] = {
	    "sluice_frontends",	      "sluice_services",   "sluice_svc_info",
	    "sluice_slots",	      "sluice_tables",	   "sluice_backends",
	    "sluice_backend_stats",   "sluice_svc_stats",  "sluice_rr",
	    "sluice_revnat",	      "sluice_svc_hist",   "sluice_global_stats",
	    "sluice_sockhash",	      "sluice_backend_rt", "sluice_svc_rt",
	    "sluice_affinity",	      "sluice_cgroup_ids", "sluice_ipcache",
	    "sluice_policy_backends", "sluice_identities"};
	struct sl_maps m;

	cr_assert_eq(SL_MAPS_COUNT, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		cr_expect_str_eq(sl_map_names[i], want[i], "map %u", i);
		*sl_maps_fd(&m, i) = (int)i + 100;
	}
	cr_expect_null(sl_maps_fd(&m, SL_MAPS_COUNT));
	cr_expect_eq(m.frontends, 100);
	cr_expect_eq(m.policy_bes, 118);
	cr_expect_eq(m.identities, 119);
}

Test(maplist, capacities)
{
	const struct sl_limits l = {.services = 10, .backends = 20, .revnat = 30};
	static const struct {
		enum sluice_map id;
		unsigned int cap;
	} want[] = {
	    {SLUICE_MAP_FRONTENDS, 20},
	    {SLUICE_MAP_SERVICES, 20},
	    {SLUICE_MAP_SVC_INFO, 20},
	    {SLUICE_MAP_TABLES, 2 * SLUICE_MAX_SPLIT * 10},
	    {SLUICE_MAP_SVC_STATS, 21},
	    {SLUICE_MAP_RR, 21},
	    {SLUICE_MAP_SVC_HIST, 21},
	    {SLUICE_MAP_SVC_RT, 21},
	    {SLUICE_MAP_BACKENDS, 40},
	    {SLUICE_MAP_SLOTS, 80},
	    {SLUICE_MAP_BACKEND_STATS, 41},
	    {SLUICE_MAP_BACKEND_RT, 41},
	    {SLUICE_MAP_AFFINITY, SLUICE_DEFAULT_AFFINITY},
	    {SLUICE_MAP_POLICY_BES, 40},
	    {SLUICE_MAP_REVNAT, 30},
	    {SLUICE_MAP_SOCKHASH, SLUICE_DEFAULT_SOCKHASH},
	    {SLUICE_MAP_REDIR_PENDING, SLUICE_DEFAULT_SOCKHASH},
	    {SLUICE_MAP_CGROUP_IDS, 0},
	    {SLUICE_MAP_IPCACHE, 0},
	    {SLUICE_MAP_SK_BACKEND, 0},
	    {SLUICE_MAP_EVENTS, 0},
	    {SLUICE_MAP_TC_FLOWS, 0},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(sl_dp_capacity(&l, want[i].id), want[i].cap, "%s",
			     sl_map_name(want[i].id));
}
