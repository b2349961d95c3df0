// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The map list (include/sluice/maps.def) against the BPF objects and what it
 * generates, and the ABI stamp of pinned state (userspace/lib/pins.c): a
 * sluiced refuses to adopt pins of another SLUICE_ABI_VERSION. The stamp
 * tests need root and a bpf filesystem at /sys/fs/bpf (skipped otherwise);
 * they work in a directory of their own there, removed pass or fail.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "datapath.h"
#include "maps.h"
#include "pins.h"
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
	    "sluice_frontends",	    "sluice_services",	   "sluice_svc_info",
	    "sluice_slots",	    "sluice_tables",	   "sluice_backends",
	    "sluice_backend_stats", "sluice_svc_stats",	   "sluice_rr",
	    "sluice_svc_hist",	    "sluice_global_stats", "sluice_sockhash",
	    "sluice_backend_rt",    "sluice_svc_rt",	   "sluice_affinity",
	    "sluice_cgroup_ids",    "sluice_ipcache",	   "sluice_policy_backends",
	    "sluice_identities",    "sluice_mtls_conn",	   "sluice_edges"};
	struct sl_maps m;

	cr_assert_eq(SL_MAPS_COUNT, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		cr_expect_str_eq(sl_map_names[i], want[i], "map %u", i);
		*sl_maps_fd(&m, i) = (int)i + 100;
	}
	cr_expect_null(sl_maps_fd(&m, SL_MAPS_COUNT));
	cr_expect_eq(m.frontends, 100);
	cr_expect_eq(m.policy_bes, 117);
	cr_expect_eq(m.identities, 118);
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
	    {SLUICE_MAP_TABLES, 4 * SLUICE_MAX_SPLIT * 10},
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
	    {SLUICE_MAP_REVNAT, 0}, /* socket storage: agent.limits.revnat is unused */
	    {SLUICE_MAP_SOCKHASH, SLUICE_DEFAULT_SOCKHASH},
	    {SLUICE_MAP_REDIR_PENDING, SLUICE_DEFAULT_SOCKHASH},
	    {SLUICE_MAP_CGROUP_IDS, 0},
	    {SLUICE_MAP_IPCACHE, 0},
	    {SLUICE_MAP_SK_BACKEND, 0},
	    {SLUICE_MAP_EVENTS, 0},
	    {SLUICE_MAP_TC_FLOWS, 0},
	    {SLUICE_MAP_ABI, 0},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(sl_dp_capacity(&l, want[i].id), want[i].cap, "%s",
			     sl_map_name(want[i].id));
}

/* --- the ABI stamp ------------------------------------------------------------------------ */

static char dir[128];

static void dir_remove(void)
{
	char path[sizeof(dir) + 256];
	struct dirent *de;
	DIR *d;

	if (!dir[0] || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

static void stamp_init(void)
{
	if (geteuid())
		cr_skip_test("needs root for bpf(2) and bpffs");
	if (!sl_is_bpffs("/sys/fs/bpf"))
		cr_skip_test("no bpf filesystem at /sys/fs/bpf");
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-utest-abi-%d", (int)getpid());
	cr_assert(!mkdir(dir, 0700), "mkdir %s: %s", dir, strerror(errno));
}

/* Pin a map at dir/name: an array of 'n' __u32 holding 'value', or a hash. */
static void pin_map(const char *name, enum bpf_map_type type, __u32 value)
{
	char path[256];
	__u32 key = 0;
	int fd = bpf_map_create(type, name, sizeof(key), sizeof(value), 1, NULL);

	cr_assert_geq(fd, 0, "create %s: %s", name, strerror(errno));
	cr_assert(!bpf_map_update_elem(fd, &key, &value, BPF_ANY), "write %s", name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert(!bpf_obj_pin(fd, path), "pin %s: %s", path, strerror(errno));
	close(fd);
}

TestSuite(abi, .init = stamp_init, .fini = dir_remove);

Test(abi, nothing_pinned_is_adopted)
{
	struct sl_problem e = {0};

	cr_expect_eq(sl_abi_check(dir, &e), 0, "%s", e.msg);
	cr_expect_eq(sl_abi_check("/sys/fs/bpf/sluice-utest-abi-none", &e), 0, "%s", e.msg);
}

Test(abi, refuses_another_version)
{
	char want[256];
	struct sl_problem e = {0};

	pin_map(sl_map_name(SLUICE_MAP_ABI), BPF_MAP_TYPE_ARRAY, SLUICE_ABI_VERSION + 1);
	pin_map(sl_map_name(SLUICE_MAP_SERVICES), BPF_MAP_TYPE_HASH, 1);
	cr_assert_eq(sl_abi_check(dir, &e), -EPROTO, "a v%d stamp was accepted",
		     SLUICE_ABI_VERSION + 1);
	cr_expect_eq(e.env, 1, "an environment error: exit 3");
	snprintf(want, sizeof(want),
		 "pinned state under %s has ABI v%d, this sluiced has v%d: run `sluiced "
		 "--teardown` first",
		 dir, SLUICE_ABI_VERSION + 1, SLUICE_ABI_VERSION);
	cr_expect_str_eq(e.msg, want);
}

Test(abi, refuses_what_is_not_a_stamp)
{
	struct sl_problem e = {0};

	pin_map(sl_map_name(SLUICE_MAP_ABI), BPF_MAP_TYPE_HASH, SLUICE_ABI_VERSION);
	cr_assert_eq(sl_abi_check(dir, &e), -EPROTO);
	cr_expect_eq(e.env, 1);
	cr_expect(strstr(e.msg, "is not a sluice ABI stamp: run `sluiced --teardown` first"), "%s",
		  e.msg);
}

/* Pins from before the stamp are version 1. */
Test(abi, unstamped_pins_are_version_1)
{
	struct sl_problem e = {0};

	pin_map(sl_map_name(SLUICE_MAP_SERVICES), BPF_MAP_TYPE_HASH, 1);
	cr_expect_eq(sl_abi_check(dir, &e), SLUICE_ABI_VERSION == 1 ? 0 : -EPROTO, "%s", e.msg);
}

Test(abi, stamp_is_ours_private_and_frozen)
{
	__u32 key = 0, version = 0, other = SLUICE_ABI_VERSION + 1;
	struct sl_problem e = {0};
	char path[256];
	struct stat st;
	int fd;

	cr_assert_eq(sl_abi_stamp(dir, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_abi_stamp(dir, &e), 0, "a second stamp: %s", e.msg);
	cr_expect_eq(sl_abi_check(dir, &e), 0, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/%s", dir, sl_map_name(SLUICE_MAP_ABI));
	cr_assert(!stat(path, &st));
	cr_expect_eq(st.st_mode & 0777, 0600);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_expect(!bpf_map_lookup_elem(fd, &key, &version));
	cr_expect_eq(version, SLUICE_ABI_VERSION);
	cr_expect(bpf_map_update_elem(fd, &key, &other, BPF_ANY), "the stamp can be rewritten");
	close(fd);
}
