// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl_maps_apply (userspace/lib/maps.c) on the agent's real maps, then read back with
 * sl_maps_read_state and by looking into the maps: services, backends, slots, views, tables
 * and frontends after a first apply, then after a second plan that updates, adds and
 * removes. Needs root (skipped otherwise).
 *
 * The fixture (Criterion .init/.fini) owns everything: the configs and the datapath of
 * tests/world.h. A failed cr_assert in a test still runs .fini; .init cleans up after itself
 * before it asserts or skips, since .fini does not run then.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "maglev.h"
#include "maps.h"
#include "plan.h"
#include "tbatch.h"
#include "world.h"

/* First: a Maglev service, a weighted round robin UDP one, an IPv6 split with health checks
 * (its backends start unhealthy) and a circuit breaker. */
static const char cfg_a_yaml[] =
    "services:\n"
    "  - name: web\n"
    "    frontend: 198.19.0.10:80\n"
    "    lb: maglev\n"
    "    backends:\n"
    "      - {address: 198.18.1.2:8080, weight: 1}\n"
    "      - {address: 198.18.1.3:8080, weight: 3}\n"
    "  - name: dns\n"
    "    frontend: 198.19.0.53:53\n"
    "    protocol: udp\n"
    "    lb: round_robin\n"
    "    backends:\n"
    "      - {address: 198.18.1.4:53}\n"
    "      - {address: 198.18.1.5:53, weight: 2}\n"
    "  - name: canary\n"
    "    frontend: \"[2001:db8:f::10]:80\"\n"
    "    split: {v1: 90, v2: 10}\n"
    "    health_check: {type: tcp}\n"
    "    circuit_breaker: {max_connections: 7}\n"
    "    backends:\n"
    "      - {address: \"[2001:db8:1::2]:80\", subset: v2}\n"
    "      - {address: \"[2001:db8:1::3]:80\", subset: v1}\n"
    "      - {address: \"[2001:db8:1::4]:80\", subset: v1}\n"
    "      - {address: \"[2001:db8:1::5]:80\", subset: v2, weight: 3}\n";

/* Second: web loses .2, reweights .3 and gains .6; dns goes and api takes its frontend over
 * in the same plan; canary is untouched. */
static const char cfg_b_yaml[] =
    "services:\n"
    "  - name: web\n"
    "    frontend: 198.19.0.10:80\n"
    "    lb: maglev\n"
    "    backends:\n"
    "      - {address: 198.18.1.3:8080, weight: 2}\n"
    "      - {address: 198.18.1.6:8080}\n"
    "  - name: api\n"
    "    frontend: 198.19.0.53:53\n"
    "    protocol: udp\n"
    "    backends:\n"
    "      - {address: 198.18.1.7:53}\n"
    "  - name: canary\n"
    "    frontend: \"[2001:db8:f::10]:80\"\n"
    "    split: {v1: 90, v2: 10}\n"
    "    health_check: {type: tcp}\n"
    "    circuit_breaker: {max_connections: 7}\n"
    "    backends:\n"
    "      - {address: \"[2001:db8:1::2]:80\", subset: v2}\n"
    "      - {address: \"[2001:db8:1::3]:80\", subset: v1}\n"
    "      - {address: \"[2001:db8:1::4]:80\", subset: v1}\n"
    "      - {address: \"[2001:db8:1::5]:80\", subset: v2, weight: 3}\n";

static struct test_world w; /* owns cfg_a and cfg_b */
static struct sl_config cfg_a, cfg_b;
static struct sl_state st;
static uint32_t *dead;
static size_t n_dead;

static void teardown(void)
{
	test_world_down(&w);
	sl_state_free(&st);
	free(dead);
	dead = NULL;
	n_dead = 0;
}

/* On failure test_world_setup has cleaned up (.fini does not run when .init fails). */
static void setup(void)
{
	const struct test_world_cfg cfgs[] = {{cfg_a_yaml, &cfg_a}, {cfg_b_yaml, &cfg_b}};
	char why[512];
	int err = test_world_setup(&w, cfgs, 2, NULL, why, sizeof(why));

	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
}

TestSuite(maps, .init = setup, .fini = teardown);

/* Plan from what the maps hold to cfg and carry it out, appending retired ids to dead. The
 * number of operations in *n_ops. 0 or -errno. */
static int plan_apply(const struct sl_config *cfg, size_t *n_ops)
{
	struct sl_state cur;
	struct sl_plan plan;
	int err = sl_maps_read_state(w.maps, &cur);

	if (err)
		return err;
	err = sl_plan_build(&cur, cfg, w.max_svc_id, w.max_be_id, &plan);
	if (!err) {
		*n_ops = plan.n_ops;
		err = sl_maps_apply(w.maps, &plan, &dead, &n_dead);
		sl_plan_free(&plan);
	}
	sl_state_free(&cur);
	return err;
}

static void read_state(void)
{
	sl_state_free(&st);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
}

static const struct sl_svc_state *svc(const char *name)
{
	const struct sl_svc_state *s = sl_state_find(&st, name);

	cr_assert_not_null(s, "service %s is not in the maps", name);
	return s;
}

/* The backend at slot i is addr, with this weight, subset and state. */
#define EXPECT_BE(s, i, addr_, weight_, subset_, state_)                                           \
	do {                                                                                       \
		char hp_[SL_HOSTPORT_LEN];                                                         \
                                                                                                   \
		cr_assert_lt((i), (s)->n_bes, "%s: no slot %d", (s)->name, (i));                   \
		sl_format_hostport(&(s)->bes[i].addr, hp_, sizeof(hp_));                           \
		cr_expect_str_eq(hp_, (addr_), "%s slot %d", (s)->name, (i));                      \
		cr_expect_eq((s)->bes[i].weight, (weight_), "%s slot %d weight", (s)->name, (i));  \
		cr_expect_str_eq((s)->bes[i].subset, (subset_), "%s slot %d subset", (s)->name,    \
				 (i));                                                             \
		cr_expect_eq((s)->bes[i].state, (state_), "%s slot %d state", (s)->name, (i));     \
	} while (0)

/* The frontend's entry: the service id it leads to, or 0 when there is none. */
static uint32_t frontend_svc(const char *hostport, uint8_t proto)
{
	struct sluice_frontend_key k;
	struct sluice_frontend v;
	struct sl_sockaddr sa;
	const char *why;

	cr_assert_eq(sl_parse_hostport(hostport, &sa, &why), 0, "%s", hostport);
	memset(&k, 0, sizeof(k));
	k.addr = sa.addr;
	k.port = htons(sa.port);
	k.proto = proto;
	k.family = sa.family;
	if (bpf_map_lookup_elem(w.maps->frontends, &k, &v))
		return 0;
	return v.svc_id;
}

/* The table of view 'view' of the service's live generation, as backend ids (malloc'd, its
 * positions in *size: the view's table_m); NULL when the view has none. The map must hold
 * them two per entry, and nothing in the unused half of an odd table's last entry. */
static uint32_t *table_of(const struct sl_svc_state *s, uint8_t view, uint32_t *size)
{
	struct sluice_table_key k = {.svc_id = s->id, .gen = s->gen, .view = view};
	const struct sluice_view *v = &s->value.views[view % SLUICE_MAX_SPLIT];
	uint32_t m = view < SLUICE_MAX_SPLIT ? v->table_m : v->zone_table_m;
	struct bpf_map_info info = {0};
	__u32 info_len = sizeof(info), map_id;
	uint32_t *ids;
	__u64 pair;
	int fd;

	*size = 0;
	if (bpf_map_lookup_elem(w.maps->tables, &k, &map_id))
		return NULL;
	fd = bpf_map_get_fd_by_id(map_id);
	cr_assert_geq(fd, 0, "open table map %u: %s", map_id, strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &info_len), 0);
	cr_assert_eq(info.value_size, sizeof(__u64), "two ids per entry");
	cr_assert_eq(info.max_entries, SLUICE_TABLE_ENTRIES(m), "%u entries for %u positions",
		     info.max_entries, m);
	ids = calloc(2 * (size_t)info.max_entries, sizeof(*ids));
	cr_assert_not_null(ids);
	for (uint32_t i = 0; i < info.max_entries; i++) {
		cr_assert_eq(bpf_map_lookup_elem(fd, &i, &pair), 0, "table entry %u", i);
		ids[2 * i] = SLUICE_TABLE_ID(pair, 0);
		ids[2 * i + 1] = SLUICE_TABLE_ID(pair, 1);
	}
	close(fd);
	if (m & 1)
		cr_assert_eq(ids[m], 0, "the odd table's unused last half is 0");
	*size = m;
	return ids;
}

static uint32_t count_of(const uint32_t *ids, uint32_t n, uint32_t id)
{
	uint32_t c = 0;

	for (uint32_t i = 0; i < n; i++)
		c += ids[i] == id;
	return c;
}

static int is_dead(uint32_t id)
{
	for (size_t i = 0; i < st.n_dead; i++)
		if (st.dead_be_ids[i] == id)
			return 1;
	return 0;
}

Test(maps, first_apply_reads_back)
{
	const struct sl_svc_state *web, *dns, *can;
	uint32_t *t, size;
	size_t n_ops = 0;

	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	cr_expect_eq(n_ops, 3);
	cr_expect_eq(n_dead, 0, "a first apply retires nothing");
	read_state();
	cr_assert_eq(st.n_svcs, 3);
	cr_expect_eq(st.n_dead, 0);

	web = svc("web");
	cr_expect_eq(web->proto, SLUICE_PROTO_TCP);
	cr_expect_eq(web->lb, SLUICE_LB_MAGLEV);
	cr_expect_eq(web->gen, 0);
	cr_expect_eq(web->value.count, 2);
	cr_expect_eq(web->value.n_views, 1);
	cr_assert_eq(web->n_bes, 2);
	EXPECT_BE(web, 0, "198.18.1.2:8080", 1, "", SLUICE_BE_HEALTHY);
	EXPECT_BE(web, 1, "198.18.1.3:8080", 3, "", SLUICE_BE_HEALTHY);
	cr_expect_neq(web->bes[0].id, web->bes[1].id);
	cr_expect_eq(frontend_svc("198.19.0.10:80", SLUICE_PROTO_TCP), web->id);
	cr_expect_eq(frontend_svc("198.19.0.10:80", SLUICE_PROTO_UDP), 0, "tcp only");
	/* Maglev: a prime table, shared 1:3. */
	t = table_of(web, 0, &size);
	cr_assert_not_null(t, "web has no Maglev table");
	/* M follows the backends: weights 1:3 are 4 units, so >= 400 slots. */
	cr_expect_eq(size, 509);
	cr_expect_eq(web->value.views[0].table_m, size);
	cr_expect_eq(count_of(t, size, web->bes[0].id) + count_of(t, size, web->bes[1].id), size,
		     "every entry is one of web's backends");
	cr_expect(fabs((double)count_of(t, size, web->bes[1].id) / size - 0.75) < 0.02,
		  "weight 3 of 4: %u of %u", count_of(t, size, web->bes[1].id), size);
	free(t);

	dns = svc("dns");
	cr_expect_eq(dns->proto, SLUICE_PROTO_UDP);
	cr_expect_eq(dns->lb, SLUICE_LB_ROUND_ROBIN);
	cr_assert_eq(dns->n_bes, 2);
	EXPECT_BE(dns, 0, "198.18.1.4:53", 1, "", SLUICE_BE_HEALTHY);
	EXPECT_BE(dns, 1, "198.18.1.5:53", 2, "", SLUICE_BE_HEALTHY);
	cr_expect_eq(frontend_svc("198.19.0.53:53", SLUICE_PROTO_UDP), dns->id);
	/* Weights 1:2: the weighted sequence, 3 entries. */
	t = table_of(dns, 0, &size);
	cr_assert_not_null(t, "dns has no weighted sequence");
	cr_expect_eq(size, 3);
	cr_expect_eq(dns->value.views[0].table_m, 3);
	cr_expect_eq(count_of(t, size, dns->bes[0].id), 1);
	cr_expect_eq(count_of(t, size, dns->bes[1].id), 2);
	free(t);

	/* The split: v1's backends first, in config order, then v2's; health checked, so they
	 * start unhealthy until a probe passes. */
	can = svc("canary");
	cr_expect_eq(can->lb, SLUICE_LB_RANDOM);
	cr_expect_eq(can->value.max_connections, 7);
	cr_assert_eq(can->n_bes, 4);
	EXPECT_BE(can, 0, "[2001:db8:1::3]:80", 1, "v1", SLUICE_BE_UNHEALTHY);
	EXPECT_BE(can, 1, "[2001:db8:1::4]:80", 1, "v1", SLUICE_BE_UNHEALTHY);
	EXPECT_BE(can, 2, "[2001:db8:1::2]:80", 1, "v2", SLUICE_BE_UNHEALTHY);
	EXPECT_BE(can, 3, "[2001:db8:1::5]:80", 3, "v2", SLUICE_BE_UNHEALTHY);
	cr_assert_eq(can->value.n_views, 2);
	cr_expect_eq(can->value.views[0].slot_start, 0);
	cr_expect_eq(can->value.views[0].slot_count, 2);
	cr_expect_eq(can->value.views[0].pct_end, 90);
	cr_expect_eq(can->value.views[1].slot_start, 2);
	cr_expect_eq(can->value.views[1].slot_count, 2);
	cr_expect_eq(can->value.views[1].pct_end, 100);
	cr_expect_null(table_of(can, 0, &size), "v1's weights are equal: no table");
	cr_expect_eq(can->value.views[0].table_m, 0);
	/* v2's 1:3 sequence holds v2's backends, not the service's first slots. */
	t = table_of(can, 1, &size);
	cr_assert_not_null(t, "v2 has no weighted sequence");
	cr_expect_eq(size, 4);
	cr_expect_eq(can->value.views[1].table_m, 4);
	cr_expect_eq(count_of(t, size, can->bes[2].id), 1);
	cr_expect_eq(count_of(t, size, can->bes[3].id), 3);
	free(t);
	cr_expect_eq(frontend_svc("[2001:db8:f::10]:80", SLUICE_PROTO_TCP), can->id);

	cr_expect_neq(web->id, dns->id);
	cr_expect_neq(dns->id, can->id);
	cr_expect_neq(web->id, can->id);
}

Test(maps, same_config_again_changes_nothing)
{
	size_t n_ops = 99;

	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	cr_expect_eq(n_ops, 0, "the state read back is the config: nothing to do");
}

Test(maps, second_plan_updates_and_removes)
{
	uint32_t web_id, dns_id, can_id, be2, be3, dns_be[2], can_be[4], *t, size;
	const struct sl_svc_state *web, *api, *can;
	size_t n_ops = 0;

	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	read_state();
	web_id = svc("web")->id;
	be2 = svc("web")->bes[0].id;
	be3 = svc("web")->bes[1].id;
	dns_id = svc("dns")->id;
	dns_be[0] = svc("dns")->bes[0].id;
	dns_be[1] = svc("dns")->bes[1].id;
	can_id = svc("canary")->id;
	for (int i = 0; i < 4; i++)
		can_be[i] = svc("canary")->bes[i].id;
	/* A state the agent set (a drain) survives a change of the backend's weight. */
	cr_assert_eq(sl_maps_set_state(w.maps, be3, SLUICE_BE_DRAINING), 0);

	cr_assert_eq(plan_apply(&cfg_b, &n_ops), 0);
	cr_expect_eq(n_ops, 3, "update web, add api, remove dns");
	cr_expect_eq(n_dead, 3, "198.18.1.2 and dns's two backends retired, not %zu", n_dead);
	read_state();
	cr_assert_eq(st.n_svcs, 3);
	cr_expect_null(sl_state_find(&st, "dns"));

	web = svc("web");
	cr_expect_eq(web->id, web_id, "an update keeps the service id");
	cr_expect_eq(web->gen, 1, "the update flipped the generation");
	cr_assert_eq(web->n_bes, 2);
	EXPECT_BE(web, 0, "198.18.1.3:8080", 2, "", SLUICE_BE_DRAINING);
	EXPECT_BE(web, 1, "198.18.1.6:8080", 1, "", SLUICE_BE_HEALTHY);
	cr_expect_eq(web->bes[0].id, be3, "a kept backend keeps its id");
	cr_expect_neq(web->bes[1].id, be2, "an id is not reused while retired");
	t = table_of(web, 0, &size);
	cr_assert_not_null(t);
	cr_expect_eq(count_of(t, size, be2), 0, "the new table has no trace of .2");
	cr_expect(fabs((double)count_of(t, size, be3) / size - 2.0 / 3) < 0.02,
		  "weight 2 of 3: %u of %u", count_of(t, size, be3), size);
	free(t);
	cr_expect_eq(frontend_svc("198.19.0.10:80", SLUICE_PROTO_TCP), web_id);

	api = svc("api");
	cr_expect_neq(api->id, dns_id, "a removed service's id is not reused in the same plan");
	cr_assert_eq(api->n_bes, 1);
	EXPECT_BE(api, 0, "198.18.1.7:53", 1, "", SLUICE_BE_HEALTHY);
	cr_expect_eq(frontend_svc("198.19.0.53:53", SLUICE_PROTO_UDP), api->id,
		     "removing dns left the frontend api took over");

	can = svc("canary");
	cr_expect_eq(can->id, can_id);
	cr_expect_eq(can->gen, 0, "untouched: same generation");
	cr_assert_eq(can->n_bes, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(can->bes[i].id, can_be[i]);

	/* Retired: marked removed, listed as dead, then reaped for good. */
	cr_expect_eq(st.n_dead, 3);
	cr_expect(is_dead(be2) && is_dead(dns_be[0]) && is_dead(dns_be[1]));
	for (size_t i = 0; i < n_dead; i++) {
		struct sluice_backend v;

		cr_assert_eq(bpf_map_lookup_elem(w.maps->backends, &dead[i], &v), 0);
		cr_expect_eq(v.state, SLUICE_BE_REMOVED, "backend %u", dead[i]);
	}
	cr_assert_eq(sl_maps_reap(w.maps, dead, n_dead), 0);
	read_state();
	cr_expect_eq(st.n_dead, 0);
	cr_expect_eq(svc("web")->n_bes, 2, "reaping left the live backends alone");
	cr_expect_eq(svc("canary")->n_bes, 4);
}

/* Tables an apply writes go into sluice_tables with one batch call, and its deletions with
 * another (every call on a map of maps waits a grace period); one call per element only where
 * the kernel refuses batches, or when forced, with the same result. */
Test(maps, tables_go_in_with_one_batch)
{
	struct sl_tbatch_stats s0, s1;
	uint32_t entries = 0, cap = 0, size, *t;
	size_t n_ops = 0;

	sl_tbatch_stats(&s0);
	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	sl_tbatch_stats(&s1);
	cr_assert_eq(sl_maps_fill(w.maps->tables, &entries, &cap), 0);
	cr_expect_eq(entries, 3, "web's Maglev, dns's and canary v2's weighted tables: %u",
		     entries);
	if (!s1.elem_only) {
		cr_expect_eq(s1.batch_calls - s0.batch_calls, 1, "3 tables in %lu batch calls",
			     (unsigned long)(s1.batch_calls - s0.batch_calls));
		cr_expect_eq(s1.elem_calls - s0.elem_calls, 0);
	}
	/* web updated, api added, dns removed: one batch in, one batch of deletions. */
	s0 = s1;
	cr_assert_eq(plan_apply(&cfg_b, &n_ops), 0);
	sl_tbatch_stats(&s1);
	if (!s1.elem_only) {
		cr_expect_eq(s1.batch_calls - s0.batch_calls, 2, "%lu batch calls",
			     (unsigned long)(s1.batch_calls - s0.batch_calls));
		cr_expect_eq(s1.elem_calls - s0.elem_calls, 0);
	}
	cr_assert_eq(sl_maps_fill(w.maps->tables, &entries, &cap), 0);
	cr_expect_eq(entries, 3, "web's two generations and canary v2's: %u", entries);
	/* One at a time: the same maps. */
	sl_tbatch_force_elem(1);
	s0 = s1;
	n_ops = 0;
	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	sl_tbatch_stats(&s1);
	sl_tbatch_force_elem(0);
	cr_expect_eq(s1.batch_calls, s0.batch_calls);
	cr_expect_geq(s1.elem_calls - s0.elem_calls, 2, "web's and dns's tables one at a time");
	read_state();
	t = table_of(svc("web"), 0, &size);
	cr_assert_not_null(t, "web has no table after the per-element path");
	cr_expect_eq(size, 509);
	free(t);
	cr_expect_not_null((t = table_of(svc("dns"), 0, &size)), "dns has no table");
	free(t);
	/* A kernel that refuses batches on a hash of maps (6.1): detected, then one at a time. */
	sl_tbatch_force_elem(2);
	s0 = s1;
	cr_assert_eq(plan_apply(&cfg_b, &n_ops), 0);
	sl_tbatch_stats(&s1);
	sl_tbatch_force_elem(0);
	cr_expect(s1.elem_only, "the refusal was not detected");
	cr_expect_eq(s1.batch_calls - s0.batch_calls, 1, "one refused call, then no more");
	cr_expect_geq(s1.elem_calls - s0.elem_calls, 2, "web's table and dns's deletion");
	read_state();
	cr_expect_null(sl_state_find(&st, "dns"), "dns is still there");
	t = table_of(svc("web"), 0, &size);
	cr_assert_not_null(t, "web has no table after the refused batch");
	cr_expect_eq(size, 509);
	free(t);
}

Test(maps, removing_everything_empties_the_maps)
{
	struct sl_config none;
	uint32_t entries = 0, cap = 0;
	size_t n_ops = 0;
	char why[256];

	cr_assert_eq(plan_apply(&cfg_a, &n_ops), 0);
	cr_assert_eq(test_world_parse("services: []\n", &none, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(plan_apply(&none, &n_ops), 0);
	sl_config_free(&none);
	cr_expect_eq(n_ops, 3);
	cr_expect_eq(n_dead, 8, "every backend retired");
	cr_assert_eq(sl_maps_reap(w.maps, dead, n_dead), 0);
	read_state();
	cr_expect_eq(st.n_svcs, 0);
	cr_expect_eq(st.n_dead, 0);
	cr_assert_eq(sl_maps_fill(w.maps->frontends, &entries, &cap), 0);
	cr_expect_eq(entries, 0, "frontends left: %u", entries);
	cr_assert_eq(sl_maps_fill(w.maps->slots, &entries, &cap), 0);
	cr_expect_eq(entries, 0, "slots left: %u", entries);
	cr_assert_eq(sl_maps_fill(w.maps->tables, &entries, &cap), 0);
	cr_expect_eq(entries, 0, "tables left: %u", entries);
	cr_assert_eq(sl_maps_fill(w.maps->backends, &entries, &cap), 0);
	cr_expect_eq(entries, 0, "backends left: %u", entries);
	cr_assert_eq(sl_maps_fill(w.maps->services, &entries, &cap), 0);
	cr_expect_eq(entries, 0, "services left: %u", entries);
}
