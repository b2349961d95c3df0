// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The maps' state at scale (#17): sl_state_find through the state's name index, one probe
 * instead of a pass over every service; the plan's removals found the same way. And one read
 * of the maps per change: sl_maps_state_after brings the state read before an apply to what a
 * new read returns (on real maps: root, else skipped). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "maps.h"
#include "plan.h"
#include "world.h"

#define N_SVC 10000
/* Name compares one find may make. The index keeps at least half its slots empty, so a probe
 * meets a handful of names; a scan meets up to N_SVC. */
#define MAX_CMP 16

/* n services s0..s{n-1} (ids 1..n), then a second "s7". */
static void make_state(struct sl_state *st, size_t n)
{
	memset(st, 0, sizeof(*st));
	st->svcs = calloc(n + 1, sizeof(*st->svcs));
	cr_assert_not_null(st->svcs);
	for (size_t i = 0; i < n; i++) {
		snprintf(st->svcs[i].name, sizeof(st->svcs[i].name), "s%zu", i);
		st->svcs[i].id = (uint32_t)i + 1;
	}
	snprintf(st->svcs[n].name, sizeof(st->svcs[n].name), "s7");
	st->svcs[n].id = (uint32_t)n + 1;
	st->n_svcs = n + 1;
}

Test(plan_state, find_in_10000_services_is_one_probe)
{
	struct sl_state st;
	size_t n_cmp, total = 0;
	char name[32];

	make_state(&st, N_SVC);
	cr_assert_eq(sl_state_index(&st), 0);
	for (size_t i = 0; i < N_SVC; i++) {
		snprintf(name, sizeof(name), "s%zu", i);
		cr_assert_eq(sl_state_find_cmp(&st, name, &n_cmp), &st.svcs[i], "%s", name);
		cr_assert_leq(n_cmp, MAX_CMP, "finding %s compared %zu names", name, n_cmp);
		total += n_cmp;
	}
	cr_assert_leq(total, 2 * N_SVC, "%zu name compares for %d finds", total, N_SVC);
	cr_assert_eq(sl_state_find(&st, "s7"), &st.svcs[7], "the first of two, as a scan");
	cr_assert_null(sl_state_find_cmp(&st, "nope", &n_cmp));
	cr_assert_leq(n_cmp, MAX_CMP, "a miss compared %zu names", n_cmp);
	cr_assert_null(sl_state_find(&st, ""));
	sl_state_free(&st);
	cr_assert_null(st.idx.slots, "sl_state_free frees the index");
}

/* A state nobody indexed (built by hand), or changed since, is scanned: right, but linear. */
Test(plan_state, unindexed_or_changed_state_is_scanned)
{
	struct sl_state st;
	struct sl_svc_state *grown;
	size_t n_cmp;

	make_state(&st, 100);
	cr_assert_eq(sl_state_find_cmp(&st, "s99", &n_cmp), &st.svcs[99]);
	cr_assert_eq(n_cmp, 100, "no index: a scan (%zu compares)", n_cmp);
	cr_assert_eq(sl_state_index(&st), 0);
	grown = realloc(st.svcs, (st.n_svcs + 1) * sizeof(*st.svcs));
	cr_assert_not_null(grown);
	st.svcs = grown;
	memset(&st.svcs[st.n_svcs], 0, sizeof(*st.svcs));
	snprintf(st.svcs[st.n_svcs].name, sizeof(st.svcs[0].name), "new");
	st.n_svcs++;
	cr_assert_eq(sl_state_find_cmp(&st, "new", &n_cmp), &st.svcs[101], "added after the index");
	cr_assert_eq(n_cmp, 102, "an index of fewer services is not used (%zu compares)", n_cmp);
	cr_assert_eq(sl_state_index(&st), 0);
	cr_assert_eq(sl_state_find_cmp(&st, "new", &n_cmp), &st.svcs[101]);
	cr_assert_leq(n_cmp, MAX_CMP);
	sl_state_free(&st);
}

/* From 10 000 services to two: the removals are every service no longer named, found by name
 * in the config's index. */
Test(plan_state, plan_from_10000_services)
{
	const char *yaml = "services:\n"
			   "  - {name: s5, frontend: '198.19.0.5:80'}\n"
			   "  - {name: new, frontend: '198.19.0.6:80'}\n";
	struct sl_problems d = {0};
	struct sl_config cfg;
	struct sl_state st;
	struct sl_plan plan;
	size_t removed_s5 = 0;

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0);
	sl_problems_free(&d);
	make_state(&st, N_SVC);
	st.n_svcs--; /* without the second s7 */
	cr_assert_eq(sl_state_index(&st), 0);
	cr_assert_eq(sl_plan_build(&st, &cfg, 2 * N_SVC, 20 * N_SVC, &plan), 0);
	cr_assert_eq(plan.n_update, 1);
	cr_assert_eq(plan.n_add, 1);
	cr_assert_eq(plan.n_remove, N_SVC - 1);
	for (size_t i = 0; i < plan.n_ops; i++) {
		const struct sl_svc_op *op = &plan.ops[i];

		if (op->kind == SL_OP_UPDATE)
			cr_assert_eq(op->cur, &st.svcs[5]);
		if (op->kind == SL_OP_ADD)
			cr_assert_gt(op->svc_id, N_SVC, "a free id: %u", op->svc_id);
		removed_s5 += op->kind == SL_OP_REMOVE && op->cur == &st.svcs[5];
	}
	cr_assert_eq(removed_s5, 0);
	sl_plan_free(&plan);
	st.n_svcs++;
	sl_state_free(&st);
	sl_config_free(&cfg);
}

/* --- the state after an apply, on real maps -------------------------------------------------- */

/* web and api change (a backend replaced, a weight, a split), dns goes, db comes, keep stays. */
static const char before_yaml[] = "services:\n"
				  "  - name: web\n"
				  "    frontend: 198.19.0.10:80\n"
				  "    lb: maglev\n"
				  "    backends:\n"
				  "      - {address: 198.18.1.2:8080}\n"
				  "      - {address: 198.18.1.3:8080}\n"
				  "  - name: dns\n"
				  "    frontend: 198.19.0.53:53\n"
				  "    protocol: udp\n"
				  "    backends:\n"
				  "      - {address: 198.18.1.4:53}\n"
				  "  - name: api\n"
				  "    frontend: 198.19.0.11:80\n"
				  "    backends:\n"
				  "      - {address: 198.18.1.5:80, subset: v1}\n"
				  "      - {address: 198.18.1.6:80, subset: v2}\n"
				  "  - name: keep\n"
				  "    frontend: 198.19.0.12:80\n"
				  "    backends:\n"
				  "      - {address: 198.18.1.7:80}\n";
static const char after_yaml[] = "services:\n"
				 "  - name: web\n"
				 "    frontend: 198.19.0.10:80\n"
				 "    lb: maglev\n"
				 "    backends:\n"
				 "      - {address: 198.18.1.2:8080, weight: 3}\n"
				 "      - {address: 198.18.1.8:8080}\n"
				 "  - name: api\n"
				 "    frontend: 198.19.0.11:80\n"
				 "    split: {v1: 90, v2: 10}\n"
				 "    backends:\n"
				 "      - {address: 198.18.1.5:80, subset: v1}\n"
				 "      - {address: 198.18.1.6:80, subset: v2}\n"
				 "  - name: keep\n"
				 "    frontend: 198.19.0.12:80\n"
				 "    backends:\n"
				 "      - {address: 198.18.1.7:80}\n"
				 "  - name: db\n"
				 "    frontend: 198.19.0.13:5432\n"
				 "    backends:\n"
				 "      - {address: 198.18.1.9:5432}\n"
				 "      - {address: 198.18.1.10:5432}\n";

static struct test_world w;
static struct sl_config before, after;
static int have_before, have_after;

static void world_down(void)
{
	test_world_down(&w);
	if (have_before)
		sl_config_free(&before);
	if (have_after)
		sl_config_free(&after);
	have_before = have_after = 0;
}

static void world_up(void)
{
	char why[512];
	int err;

	if (geteuid() != 0)
		cr_skip_test("needs root for BPF maps");
	err = test_world_parse(before_yaml, &before, why, sizeof(why));
	have_before = !err;
	if (!err)
		err = test_world_parse(after_yaml, &after, why, sizeof(why));
	have_after = have_before && !err;
	if (!err)
		err = test_world_up(&w, why, sizeof(why));
	if (err)
		world_down(); /* .fini does not run when .init fails */
	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
}

TestSuite(state_after, .init = world_up, .fini = world_down);

Test(state_after, equals_a_new_read)
{
	struct sl_state st = {0}, fresh = {0};
	struct sl_plan plan = {0};
	uint32_t *dead = NULL;
	size_t n_dead = 0, n_cmp;
	char why[512] = "";
	int err;

	err = test_world_apply(&w, &before, why, sizeof(why));
	cr_assert_eq(err, 0, "%s", why);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	cr_assert(st.idx.slots && st.idx_svcs == st.svcs && st.idx_n == st.n_svcs,
		  "sl_maps_read_state indexes the state");
	cr_assert_eq(sl_plan_build(&st, &after, w.max_svc_id, w.max_be_id, &plan), 0);
	cr_assert_eq(plan.n_add, 1);
	cr_assert_eq(plan.n_update, 2);
	cr_assert_eq(plan.n_remove, 1);
	err = sl_maps_apply(w.maps, &plan, &dead, &n_dead);
	cr_assert_eq(err, 0, "apply: %s", strerror(-err));
	cr_assert_eq(n_dead, 2, "web's .3 and dns's .4 retired");
	err = sl_maps_state_after(w.maps, &st, &plan, dead, n_dead);
	sl_plan_free(&plan);
	cr_assert_eq(err, 0, "sl_maps_state_after: %s", strerror(-err));
	cr_assert_eq(sl_maps_read_state(w.maps, &fresh), 0);
	err = sl_state_diff(&st, &fresh, why, sizeof(why));
	cr_expect_eq(err, 0, "after the apply: %s", why);
	cr_expect_not_null(sl_state_find_cmp(&st, "db", &n_cmp));
	cr_expect_eq(n_cmp, 1, "indexed again: %zu compares", n_cmp);
	cr_expect_null(sl_state_find(&st, "dns"));
	free(dead);
	sl_state_free(&fresh);
	sl_state_free(&st);
}

/* A plan that was not built from the state is refused, not applied to the wrong services. */
Test(state_after, refuses_a_plan_of_another_state)
{
	struct sl_state st = {0}, other = {0};
	struct sl_plan plan = {0};
	char why[512] = "";

	cr_assert_eq(test_world_apply(&w, &before, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	cr_assert_eq(sl_maps_read_state(w.maps, &other), 0);
	cr_assert_eq(sl_plan_build(&other, &after, w.max_svc_id, w.max_be_id, &plan), 0);
	cr_expect_eq(sl_maps_state_after(w.maps, &st, &plan, NULL, 0), -EINVAL);
	sl_plan_free(&plan);
	sl_state_free(&other);
	sl_state_free(&st);
}

/* The state kept between changes (the agent's applied_st): planned against, patched by a
 * health verdict and by the reaper, brought forward by the next apply; at every step what a
 * new read of the maps returns. */
static void expect_as_read(const struct sl_state *st, const char *step)
{
	struct sl_state fresh = {0};
	char why[512] = "";

	cr_assert_eq(sl_maps_read_state(w.maps, &fresh), 0);
	cr_expect_eq(sl_state_diff(st, &fresh, why, sizeof(why)), 0, "after %s: %s", step, why);
	sl_state_free(&fresh);
}

static void apply_kept(struct sl_state *st, const struct sl_config *cfg, uint32_t **dead,
		       size_t *n_dead)
{
	struct sl_plan plan = {0};
	size_t from = *n_dead;
	int err;

	cr_assert_eq(sl_plan_build(st, cfg, w.max_svc_id, w.max_be_id, &plan), 0);
	err = sl_maps_apply(w.maps, &plan, dead, n_dead);
	cr_assert_eq(err, 0, "apply: %s", strerror(-err));
	err = sl_maps_state_after(w.maps, st, &plan, *dead + from, *n_dead - from);
	sl_plan_free(&plan);
	cr_assert_eq(err, 0, "sl_maps_state_after: %s", strerror(-err));
}

Test(state_after, kept_through_health_and_reap)
{
	struct sl_state st = {0};
	const struct sl_svc_state *web;
	uint32_t *dead = NULL, be_id;
	size_t n_dead = 0;
	char why[512] = "";
	int err;

	cr_assert_eq(test_world_apply(&w, &before, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	apply_kept(&st, &after, &dead, &n_dead);
	expect_as_read(&st, "the apply");
	cr_assert_eq(n_dead, 2);
	cr_expect_eq(st.n_dead, 2, "the retired backends are dead until reaped");
	/* A probe verdict: web's first backend unhealthy, in the maps and in the state. */
	web = sl_state_find(&st, "web");
	cr_assert_not_null(web);
	be_id = web->bes[0].id;
	cr_assert_eq(sl_maps_set_state(w.maps, be_id, SLUICE_BE_UNHEALTHY), 0);
	cr_assert_eq(sl_state_set_backend(&st, "web", be_id, SLUICE_BE_UNHEALTHY), 0);
	cr_expect_eq(sl_state_set_backend(&st, "api", be_id, SLUICE_BE_UNHEALTHY), -ENOENT,
		     "another service's backend is not there");
	expect_as_read(&st, "the health change");
	err = sl_maps_reap_state(w.maps, &st, dead, n_dead);
	cr_assert_eq(err, 0, "reap: %s", strerror(-err));
	cr_expect_eq(st.n_dead, 0, "reaped: %zu dead left", st.n_dead);
	expect_as_read(&st, "the reap");
	n_dead = 0;
	apply_kept(&st, &before, &dead, &n_dead);
	expect_as_read(&st, "the second apply");
	free(dead);
	sl_state_free(&st);
}

/* sl_state_diff finds one changed field, a missing service and a dead id. */
Test(state_after, diff_names_the_first_difference)
{
	struct sl_state a = {0}, b = {0};
	struct sl_svc_state *api;
	char why[512] = "";

	cr_assert_eq(test_world_apply(&w, &before, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(sl_maps_read_state(w.maps, &a), 0);
	cr_assert_eq(sl_maps_read_state(w.maps, &b), 0);
	cr_assert_eq(sl_state_diff(&a, &b, why, sizeof(why)), 0, "%s", why);
	api = &a.svcs[sl_state_find(&a, "api") - a.svcs];
	api->bes[1].weight++;
	cr_expect_eq(sl_state_diff(&a, &b, why, sizeof(why)), 1);
	cr_expect(strstr(why, "service api slot 1: backend weight"), "%s", why);
	api->bes[1].weight--;
	api->bes[0].state = SLUICE_BE_DRAINING;
	cr_expect_eq(sl_state_diff(&a, &b, why, sizeof(why)), 1);
	cr_expect(strstr(why, "service api slot 0: backend state"), "%s", why);
	api->bes[0].state = b.svcs[sl_state_find(&b, "api") - b.svcs].bes[0].state;
	api->gen++;
	cr_expect_eq(sl_state_diff(&a, &b, why, sizeof(why)), 1);
	cr_expect(strstr(why, "service api: gen"), "%s", why);
	api->gen--;
	cr_assert_eq(sl_state_diff(&a, &b, why, sizeof(why)), 0, "%s", why);
	a.n_svcs--; /* the last one gone from a */
	cr_expect_eq(sl_state_diff(&a, &b, why, sizeof(why)), 1);
	cr_expect(strstr(why, "only in the maps"), "%s", why);
	a.n_svcs++;
	b.dead_be_ids = calloc(1, sizeof(uint32_t));
	cr_assert_not_null(b.dead_be_ids);
	b.dead_be_ids[0] = 7;
	b.n_dead = 1;
	cr_expect_eq(sl_state_diff(&a, &b, why, sizeof(why)), 1);
	cr_expect(strstr(why, "dead backend 7: only in the maps"), "%s", why);
	sl_state_free(&a);
	sl_state_free(&b);
}
