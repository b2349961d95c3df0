// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The diff/apply planner: what changes between the maps' state and a config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"
#include "plan.h"

static void parse(const char *yaml, struct sl_config *cfg)
{
	struct sl_problems d = {0};
	int err = sl_config_parse("t.yaml", yaml, strlen(yaml), cfg, &d);

	cr_assert_eq(err, 0, "config must parse: %s", d.n ? d.list[0].text : "");
	sl_problems_free(&d);
}

/* The state the maps would hold after 'plan' is applied on top of 'cur'. */
static void apply_model(const struct sl_state *cur, const struct sl_plan *plan,
			struct sl_state *out)
{
	memset(out, 0, sizeof(*out));
	out->svcs = calloc(cur->n_svcs + plan->n_ops + 1, sizeof(*out->svcs));
	cr_assert_not_null(out->svcs);
	for (size_t i = 0; i < cur->n_svcs; i++) {
		const struct sl_svc_state *c = &cur->svcs[i];
		const struct sl_svc_op *touched = NULL;

		for (size_t j = 0; j < plan->n_ops; j++)
			if (plan->ops[j].cur == c)
				touched = &plan->ops[j];
		if (touched)
			continue;
		out->svcs[out->n_svcs] = *c;
		out->svcs[out->n_svcs].bes = calloc(c->n_bes + 1, sizeof(*c->bes));
		memcpy(out->svcs[out->n_svcs].bes, c->bes, c->n_bes * sizeof(*c->bes));
		out->n_svcs++;
	}
	for (size_t j = 0; j < plan->n_ops; j++) {
		const struct sl_svc_op *op = &plan->ops[j];
		struct sl_svc_state *s;

		if (op->kind == SL_OP_REMOVE)
			continue;
		s = &out->svcs[out->n_svcs++];
		memset(s, 0, sizeof(*s));
		s->id = op->svc_id;
		strcpy(s->name, op->want->name);
		s->frontend = op->want->frontend;
		s->proto = op->want->proto;
		s->lb = op->want->lb;
		s->gen = op->cur ? !op->cur->gen : 0;
		sl_service_value_zone(op->want, op->zone, &s->value);
		s->value.gen = s->gen;
		s->n_bes = op->want->n_backends;
		s->bes = calloc(s->n_bes + 1, sizeof(*s->bes));
		size_t order[64];

		cr_assert(s->n_bes <= 64);
		/* the maps hold backends in slot order */
		sl_slot_order_zone(op->want, op->zone, order);
		for (size_t k = 0; k < s->n_bes; k++) {
			s->bes[k].id = op->be_ids[order[k]];
			s->bes[k].addr = op->want->backends[order[k]].addr;
			s->bes[k].weight = op->want->backends[order[k]].weight;
			strcpy(s->bes[k].subset, op->want->backends[order[k]].subset);
			s->bes[k].flags = op->be_flags[order[k]];
			strcpy(s->bes[k].zone, op->want->backends[order[k]].zone);
		}
	}
}

static const char *two_services = "services:\n"
				  "  - name: web\n"
				  "    frontend: 198.19.0.10:80\n"
				  "    lb: maglev\n"
				  "    backends:\n"
				  "      - address: 198.18.1.2:8080\n"
				  "      - address: 198.18.1.3:8080\n"
				  "  - name: dns\n"
				  "    frontend: 198.19.0.53:53\n"
				  "    protocol: udp\n"
				  "    backends:\n"
				  "      - address: 198.18.1.4:53\n";

/* Build the state of a first apply of 'yaml'. */
static void bootstrap(const char *yaml, struct sl_config *cfg, struct sl_state *st)
{
	struct sl_state empty = {0};
	struct sl_plan plan;

	parse(yaml, cfg);
	cr_assert_eq(sl_plan_build(&empty, cfg, 100, 1000, &plan), 0);
	apply_model(&empty, &plan, st);
	sl_plan_free(&plan);
}

Test(plan, from_nothing_adds_everything_with_distinct_ids)
{
	struct sl_state empty = {0};
	struct sl_config cfg;
	struct sl_plan plan;

	parse(two_services, &cfg);
	cr_assert_eq(sl_plan_build(&empty, &cfg, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 2);
	cr_assert_eq(plan.n_add, 2);
	cr_assert_eq(plan.ops[0].kind, SL_OP_ADD);
	cr_assert_neq(plan.ops[0].svc_id, 0);
	cr_assert_neq(plan.ops[0].svc_id, plan.ops[1].svc_id);
	cr_assert_neq(plan.ops[0].be_ids[0], plan.ops[0].be_ids[1]);
	cr_assert_neq(plan.ops[0].be_ids[0], plan.ops[1].be_ids[0]);
	cr_assert_neq(plan.ops[0].be_ids[1], plan.ops[1].be_ids[0]);
	cr_assert(plan.ops[0].be_new[0] && plan.ops[0].be_new[1] && plan.ops[1].be_new[0]);
	cr_assert(plan.ops[0].frontend_changed, "a new service needs its frontend written");
	sl_plan_free(&plan);
	sl_config_free(&cfg);
}

Test(plan, same_config_is_no_op)
{
	struct sl_config cfg;
	struct sl_state st;
	struct sl_plan plan;

	bootstrap(two_services, &cfg, &st);
	cr_assert_eq(sl_plan_build(&st, &cfg, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 0, "nothing changed, nothing to write (got %zu ops)", plan.n_ops);
	sl_plan_free(&plan);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

Test(plan, added_backend_keeps_existing_ids)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	const struct sl_svc_state *web;

	bootstrap(two_services, &cfg, &st);
	web = sl_state_find(&st, "web");
	cr_assert_not_null(web);
	parse("services:\n"
	      "  - name: web\n"
	      "    frontend: 198.19.0.10:80\n"
	      "    lb: maglev\n"
	      "    backends:\n"
	      "      - address: 198.18.1.2:8080\n"
	      "      - address: 198.18.1.3:8080\n"
	      "      - address: 198.18.1.5:8080\n"
	      "  - name: dns\n"
	      "    frontend: 198.19.0.53:53\n"
	      "    protocol: udp\n"
	      "    backends:\n"
	      "      - address: 198.18.1.4:53\n",
	      &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 1, "only web changed");
	cr_assert_eq(plan.ops[0].kind, SL_OP_UPDATE);
	cr_assert_eq(plan.ops[0].svc_id, web->id, "a service keeps its id");
	cr_assert_eq(plan.ops[0].be_ids[0], web->bes[0].id);
	cr_assert_eq(plan.ops[0].be_ids[1], web->bes[1].id);
	cr_assert_eq(plan.ops[0].be_new[0] + plan.ops[0].be_new[1], 0);
	cr_assert_eq(plan.ops[0].be_new[2], 1);
	for (size_t i = 0; i < st.n_svcs; i++)
		for (size_t j = 0; j < st.svcs[i].n_bes; j++)
			cr_assert_neq(plan.ops[0].be_ids[2], st.svcs[i].bes[j].id,
				      "a new backend never takes an id in use");
	cr_assert_eq(plan.ops[0].n_gone, 0);
	cr_assert_not(plan.ops[0].frontend_changed);
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

Test(plan, removed_backend_is_gone)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	const struct sl_svc_state *web;

	bootstrap(two_services, &cfg, &st);
	web = sl_state_find(&st, "web");
	parse("services:\n"
	      "  - name: web\n"
	      "    frontend: 198.19.0.10:80\n"
	      "    lb: maglev\n"
	      "    backends:\n"
	      "      - address: 198.18.1.3:8080\n"
	      "  - name: dns\n"
	      "    frontend: 198.19.0.53:53\n"
	      "    protocol: udp\n"
	      "    backends:\n"
	      "      - address: 198.18.1.4:53\n",
	      &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 1);
	cr_assert_eq(plan.ops[0].n_gone, 1);
	cr_assert_eq(plan.ops[0].gone_ids[0], web->bes[0].id, "198.18.1.2 left");
	cr_assert_eq(plan.ops[0].be_ids[0], web->bes[1].id, "198.18.1.3 keeps its id");
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

Test(plan, removed_service_retires_all_its_backends)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	const struct sl_svc_state *web;

	bootstrap(two_services, &cfg, &st);
	web = sl_state_find(&st, "web");
	parse("services:\n"
	      "  - name: dns\n"
	      "    frontend: 198.19.0.53:53\n"
	      "    protocol: udp\n"
	      "    backends:\n"
	      "      - address: 198.18.1.4:53\n",
	      &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 1);
	cr_assert_eq(plan.n_remove, 1);
	cr_assert_eq(plan.ops[0].kind, SL_OP_REMOVE);
	cr_assert_eq(plan.ops[0].svc_id, web->id);
	cr_assert_eq(plan.ops[0].n_gone, 2);
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

Test(plan, frontend_weight_and_lb_changes_are_updates)
{
	static const char *const variants[] = {
	    /* frontend */
	    "services:\n  - name: web\n    frontend: 198.19.0.11:80\n    lb: maglev\n"
	    "    backends:\n      - address: 198.18.1.2:8080\n      - address: 198.18.1.3:8080\n",
	    /* weight */
	    "services:\n  - name: web\n    frontend: 198.19.0.10:80\n    lb: maglev\n"
	    "    backends:\n      - address: 198.18.1.2:8080\n        weight: 3\n"
	    "      - address: 198.18.1.3:8080\n",
	    /* lb */
	    "services:\n  - name: web\n    frontend: 198.19.0.10:80\n    lb: round_robin\n"
	    "    backends:\n      - address: 198.18.1.2:8080\n      - address: 198.18.1.3:8080\n",
	    /* order */
	    "services:\n  - name: web\n    frontend: 198.19.0.10:80\n    lb: maglev\n"
	    "    backends:\n      - address: 198.18.1.3:8080\n      - address: 198.18.1.2:8080\n",
	};
	static const char *base = "services:\n  - name: web\n    frontend: 198.19.0.10:80\n"
				  "    lb: maglev\n    backends:\n"
				  "      - address: 198.18.1.2:8080\n"
				  "      - address: 198.18.1.3:8080\n";

	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		struct sl_config cfg, next;
		struct sl_state st;
		struct sl_plan plan;

		bootstrap(base, &cfg, &st);
		parse(variants[v], &next);
		cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
		cr_assert_eq(plan.n_ops, 1, "variant %zu", v);
		cr_assert_eq(plan.ops[0].kind, SL_OP_UPDATE, "variant %zu", v);
		cr_assert_eq(plan.ops[0].n_gone, 0, "variant %zu keeps every backend", v);
		cr_assert_eq(plan.ops[0].frontend_changed, v == 0, "variant %zu", v);
		sl_plan_free(&plan);
		sl_config_free(&next);
		sl_state_free(&st);
		sl_config_free(&cfg);
	}
}

Test(plan, rename_is_add_and_remove)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;

	bootstrap("services:\n  - name: a\n    frontend: 198.19.0.10:80\n", &cfg, &st);
	parse("services:\n  - name: b\n    frontend: 198.19.0.10:80\n", &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_add, 1);
	cr_assert_eq(plan.n_remove, 1);
	cr_assert_neq(plan.ops[0].svc_id, st.svcs[0].id, "a new service gets a fresh id");
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

Test(plan, retired_ids_are_not_reused)
{
	struct sl_state st = {0};
	uint32_t dead[] = {1, 2, 3};
	struct sl_config cfg;
	struct sl_plan plan;

	st.dead_be_ids = dead;
	st.n_dead = 3;
	parse("services:\n  - name: a\n    frontend: 198.19.0.10:80\n    backends:\n"
	      "      - address: 198.18.1.2:80\n",
	      &cfg);
	cr_assert_eq(sl_plan_build(&st, &cfg, 100, 1000, &plan), 0);
	cr_assert_eq(plan.ops[0].be_ids[0], 4, "ids 1..3 await reaping");
	sl_plan_free(&plan);
	sl_config_free(&cfg);
}

Test(plan, id_exhaustion_is_enospc)
{
	struct sl_state empty = {0};
	struct sl_config cfg;
	struct sl_plan plan;

	parse(two_services, &cfg);
	cr_assert_eq(sl_plan_build(&empty, &cfg, 1, 1000, &plan), -ENOSPC,
		     "two services do not fit one service id");
	cr_assert_eq(plan.n_ops, 0, "a failed plan is freed");
	cr_assert_eq(sl_plan_build(&empty, &cfg, 100, 2, &plan), -ENOSPC,
		     "three backends do not fit two ids");
	sl_config_free(&cfg);
}

static const char *split_service = "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - {address: 198.18.1.2:8080, subset: v2}\n"
				   "      - {address: 198.18.1.3:8080, subset: v1}\n"
				   "      - {address: 198.18.1.4:8080, subset: v2}\n"
				   "      - {address: 198.18.1.5:8080}\n"
				   "    split: {v1: 30, v2: 70}\n";

Test(plan, split_groups_slots_by_subset_into_views)
{
	struct sluice_service sv;
	struct sl_config cfg;
	size_t order[4];

	parse(split_service, &cfg);
	sl_slot_order(&cfg.services[0], order);
	cr_expect_eq(order[0], 1, "v1 first, as the split lists it");
	cr_expect_eq(order[1], 0);
	cr_expect_eq(order[2], 2);
	cr_expect_eq(order[3], 3, "a backend of no split subset comes last");
	sl_service_value(&cfg.services[0], &sv);
	cr_expect_eq(sv.n_views, 2);
	cr_expect_eq(sv.views[0].slot_start, 0);
	cr_expect_eq(sv.views[0].slot_count, 1);
	cr_expect_eq(sv.views[0].pct_end, 30);
	cr_expect_eq(sv.views[1].slot_start, 1);
	cr_expect_eq(sv.views[1].slot_count, 2);
	cr_expect_eq(sv.views[1].pct_end, 100);
	cr_expect_eq(sv.count, 4);
	sl_config_free(&cfg);
}

Test(plan, split_config_again_is_no_op_and_a_setting_change_is_an_update)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	char yaml[1024];

	bootstrap(split_service, &cfg, &st);
	cr_assert_eq(sl_plan_build(&st, &cfg, 100, 1000, &plan), 0);
	cr_expect_eq(plan.n_ops, 0, "slot order read back matches: no change");
	sl_plan_free(&plan);
	snprintf(yaml, sizeof(yaml), "%s    circuit_breaker: {max_connections: 5}\n",
		 split_service);
	parse(yaml, &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_expect_eq(plan.n_update, 1, "a new limit rewrites the service value");
	cr_expect_eq(plan.ops[0].n_gone, 0, "and keeps every backend");
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

/* mtls: a backend at none of this node's addresses is remote; the service carries its mode. */
Test(plan, mtls_marks_remote_backends_and_follows_the_nodes_addresses)
{
	static const char yaml[] = "mtls: {trust_domain: a.b}\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    mtls: strict\n"
				   "    backends:\n"
				   "      - address: 198.18.1.2:8080\n"
				   "      - address: 198.18.0.1:8080\n"
				   "  - name: plain\n"
				   "    frontend: 198.19.0.11:80\n"
				   "    backends:\n"
				   "      - address: 198.18.1.3:8080\n";
	struct sl_sockaddr mine[2] = {{.family = SLUICE_AF_INET}, {.family = SLUICE_AF_INET}};
	struct sl_addrs local = {.v = mine, .n = 1};
	struct sl_state empty = {0}, st, st2;
	struct sl_plan plan;
	struct sl_config cfg;
	const struct sl_svc_op *web, *plain;

	mine[0].addr.a8[0] = 198, mine[0].addr.a8[1] = 18, mine[0].addr.a8[3] = 1; /* 198.18.0.1 */
	parse(yaml, &cfg);
	cr_assert_eq(sl_plan_build_at(&empty, &cfg, &local, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 2);
	web = &plan.ops[0]; /* config order */
	plain = &plan.ops[1];
	cr_assert_str_eq(web->want->name, "web");
	cr_assert_str_eq(plain->want->name, "plain");
	cr_expect_eq(web->be_flags[0], SLUICE_BE_F_REMOTE, "198.18.1.2 is on another node");
	cr_expect_eq(web->be_flags[1], 0, "198.18.0.1 is this node's");
	cr_expect_eq(plain->be_flags[0], 0, "mtls off: never remote");
	apply_model(&empty, &plan, &st);
	sl_plan_free(&plan);
	cr_expect_eq(sl_state_find(&st, "web")->value.mtls, SLUICE_MTLS_STRICT);
	cr_expect_eq(sl_state_find(&st, "plain")->value.mtls, SLUICE_MTLS_OFF);

	/* Same addresses: nothing to do. */
	cr_assert_eq(sl_plan_build_at(&st, &cfg, &local, 100, 1000, &plan), 0);
	cr_expect_eq(plan.n_ops, 0);
	sl_plan_free(&plan);

	/* The node gained 198.18.1.2: web's first backend is local now. */
	mine[1] = mine[0];
	mine[1].addr.a8[2] = 1, mine[1].addr.a8[3] = 2;
	local.n = 2;
	cr_assert_eq(sl_plan_build_at(&st, &cfg, &local, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_ops, 1);
	cr_expect_str_eq(plan.ops[0].want->name, "web");
	cr_expect_eq(plan.ops[0].kind, SL_OP_UPDATE);
	cr_expect_eq(plan.ops[0].be_flags[0], 0);
	apply_model(&st, &plan, &st2);
	sl_plan_free(&plan);
	sl_state_free(&st2);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

/* locality: prefer_zone with agent.zone z1: within each view, z1's backends first. */
static const char *zone_service = "agent: {zone: z1}\n"
				  "services:\n"
				  "  - name: web\n"
				  "    frontend: 198.19.0.10:80\n"
				  "    locality: prefer_zone\n"
				  "    backends:\n"
				  "      - {address: 198.18.1.2:8080, subset: v1, zone: z2}\n"
				  "      - {address: 198.18.1.3:8080, subset: v1, zone: z1}\n"
				  "      - {address: 198.18.1.4:8080, subset: v2, zone: z2}\n"
				  "      - {address: 198.18.1.5:8080, subset: v1}\n"
				  "      - {address: 198.18.1.6:8080, subset: v2, zone: z1}\n"
				  "      - {address: 198.18.1.7:8080, subset: v1, zone: z1}\n"
				  "    split: {v1: 60, v2: 40}\n";

Test(plan, prefer_zone_puts_the_zone_first_in_each_view)
{
	static const size_t want[] = {1, 5, 0, 3, 4, 2};
	const char *zone;
	struct sluice_service sv;
	struct sl_config cfg;
	size_t order[6];

	parse(zone_service, &cfg);
	zone = sl_locality_zone(&cfg.services[0], cfg.agent.zone);
	cr_assert_str_eq(zone, "z1");
	sl_slot_order_zone(&cfg.services[0], zone, order);
	for (size_t i = 0; i < 6; i++)
		cr_expect_eq(order[i], want[i], "slot %zu: backend %zu, want %zu", i, order[i],
			     want[i]);
	sl_service_value_zone(&cfg.services[0], zone, &sv);
	cr_expect(sv.flags & SLUICE_SVC_F_PREFER_ZONE);
	cr_expect_eq(sv.views[0].slot_count, 4);
	cr_expect_eq(sv.views[0].zone_count, 2, "v1: two of its four in z1");
	cr_expect_eq(sv.views[1].slot_start, 4);
	cr_expect_eq(sv.views[1].zone_count, 1, "v2: one of its two in z1");
	sl_config_free(&cfg);
}

Test(plan, without_locality_or_zone_there_is_no_zone_view)
{
	struct sluice_service sv;
	struct sl_config cfg;
	size_t order[6];
	char *text = strdup(zone_service);

	/* agent.zone unset: locality has nothing to prefer */
	memcpy(strstr(text, "zone: z1}"), "node: n1}", 9);
	parse(text, &cfg);
	cr_expect_null(sl_locality_zone(&cfg.services[0], cfg.agent.zone));
	cr_expect_str_eq(cfg.agent.node, "n1");
	sl_config_free(&cfg);
	/* locality none: config order in each view, no zone view */
	parse(zone_service, &cfg);
	cfg.services[0].locality = SL_LOCALITY_NONE;
	cr_expect_null(sl_locality_zone(&cfg.services[0], cfg.agent.zone));
	sl_slot_order_zone(&cfg.services[0], NULL, order);
	cr_expect_eq(order[0], 0);
	cr_expect_eq(order[1], 1);
	sl_service_value_zone(&cfg.services[0], NULL, &sv);
	cr_expect_eq(sv.views[0].zone_count, 0);
	cr_expect_eq(sv.views[1].zone_count, 0);
	cr_expect_eq(sv.flags & SLUICE_SVC_F_PREFER_ZONE, 0);
	sl_config_free(&cfg);
	free(text);
}

Test(plan, a_view_all_in_the_zone_needs_no_zone_view)
{
	struct sluice_service sv;
	struct sl_config cfg;

	parse("agent: {zone: a}\n"
	      "services:\n"
	      "  - name: web\n"
	      "    frontend: 198.19.0.10:80\n"
	      "    locality: prefer_zone\n"
	      "    backends:\n"
	      "      - {address: 198.18.1.2:8080, zone: a}\n"
	      "      - {address: 198.18.1.3:8080, zone: a}\n",
	      &cfg);
	sl_service_value_zone(&cfg.services[0], "a", &sv);
	cr_expect_eq(sv.views[0].slot_count, 2);
	cr_expect_eq(sv.views[0].zone_count, 0);
	cr_expect(sv.flags & SLUICE_SVC_F_PREFER_ZONE);
	sl_config_free(&cfg);
}

Test(plan, zone_config_again_is_no_op_and_a_zone_change_is_an_update)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	char *text = strdup(zone_service), *z;

	bootstrap(zone_service, &cfg, &st);
	cr_expect_eq(st.svcs[0].value.views[0].zone_count, 2);
	parse(zone_service, &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_expect_eq(plan.n_ops, 0, "the same config with locality changes nothing");
	sl_plan_free(&plan);
	sl_config_free(&next);
	/* backend .2 moves from z2 to z1: its view's zone view grows */
	z = strstr(text, "zone: z2}");
	memcpy(z, "zone: z1}", 9);
	parse(text, &next);
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_assert_eq(plan.n_update, 1);
	cr_expect_str_eq(plan.ops[0].zone, "z1");
	sl_plan_free(&plan);
	sl_config_free(&next);
	/* a zone label alone, with locality none, is an update too (sluicectl shows it) */
	memcpy(strstr(text, "locality: prefer_zone"), "locality: none       ", 21);
	parse(text, &next);
	next.services[0].backends[5].zone[0] = '\0';
	cr_assert_eq(sl_plan_build(&st, &next, 100, 1000, &plan), 0);
	cr_expect_eq(plan.n_update, 1);
	cr_expect_null(plan.ops[0].zone);
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
	free(text);
}

/* sl_plan_build_only looks at the named services alone: one changed and named is planned, one
 * changed but not named is left as it is, a named one gone from the config is removed, a new
 * named one is added with ids no other service holds. */
Test(plan, only_the_named_services_are_planned)
{
	struct sl_config cfg, next;
	struct sl_state st;
	struct sl_plan plan;
	const char only_web[][SLUICE_NAME_LEN] = {"web"};
	const char only_dns_api[][SLUICE_NAME_LEN] = {"api", "dns"};
	const char only_none[][SLUICE_NAME_LEN] = {"nowhere"};

	bootstrap(two_services, &cfg, &st);
	/* web gains a backend, dns changes its backend's port, api is new. */
	parse("services:\n"
	      "  - name: web\n"
	      "    frontend: 198.19.0.10:80\n"
	      "    lb: maglev\n"
	      "    backends:\n"
	      "      - address: 198.18.1.2:8080\n"
	      "      - address: 198.18.1.3:8080\n"
	      "      - address: 198.18.1.5:8080\n"
	      "  - name: dns\n"
	      "    frontend: 198.19.0.53:53\n"
	      "    protocol: udp\n"
	      "    backends:\n"
	      "      - address: 198.18.1.4:5353\n"
	      "  - name: api\n"
	      "    frontend: 198.19.0.11:80\n"
	      "    backends:\n"
	      "      - address: 198.18.1.6:8080\n",
	      &next);
	cr_assert_eq(sl_plan_build_only(&st, &next, NULL, 100, 1000, only_web, 1, &plan), 0);
	cr_assert_eq(plan.n_ops, 1, "web alone (got %zu ops)", plan.n_ops);
	cr_expect_eq(plan.ops[0].kind, SL_OP_UPDATE);
	cr_expect_str_eq(plan.ops[0].want->name, "web");
	sl_plan_free(&plan);

	cr_assert_eq(sl_plan_build_only(&st, &next, NULL, 100, 1000, only_dns_api, 2, &plan), 0);
	cr_assert_eq(plan.n_ops, 2);
	cr_expect_eq(plan.n_add, 1);
	cr_expect_eq(plan.n_update, 1);
	for (size_t i = 0; i < plan.n_ops; i++) {
		if (plan.ops[i].kind != SL_OP_ADD)
			continue;
		cr_expect_str_eq(plan.ops[i].want->name, "api");
		for (size_t k = 0; k < st.n_svcs; k++) {
			cr_expect_neq(plan.ops[i].svc_id, st.svcs[k].id, "a new id for api");
			for (size_t j = 0; j < st.svcs[k].n_bes; j++)
				cr_expect_neq(plan.ops[i].be_ids[0], st.svcs[k].bes[j].id);
		}
	}
	sl_plan_free(&plan);

	cr_assert_eq(sl_plan_build_only(&st, &next, NULL, 100, 1000, only_none, 1, &plan), 0);
	cr_expect_eq(plan.n_ops, 0, "a name in neither is nothing to do");
	sl_plan_free(&plan);
	sl_config_free(&next);

	/* dns leaves the config: named, it is removed; not named, it stays. */
	parse("services:\n"
	      "  - name: web\n"
	      "    frontend: 198.19.0.10:80\n"
	      "    lb: maglev\n"
	      "    backends:\n"
	      "      - address: 198.18.1.2:8080\n"
	      "      - address: 198.18.1.3:8080\n",
	      &next);
	cr_assert_eq(sl_plan_build_only(&st, &next, NULL, 100, 1000, only_web, 1, &plan), 0);
	cr_expect_eq(plan.n_ops, 0, "web is as it was, dns not named");
	sl_plan_free(&plan);
	cr_assert_eq(sl_plan_build_only(&st, &next, NULL, 100, 1000, only_dns_api, 2, &plan), 0);
	cr_assert_eq(plan.n_ops, 1);
	cr_expect_eq(plan.ops[0].kind, SL_OP_REMOVE);
	cr_expect_str_eq(plan.ops[0].cur->name, "dns");
	cr_expect_eq(plan.ops[0].n_gone, 1);
	sl_plan_free(&plan);
	sl_config_free(&next);
	sl_state_free(&st);
	sl_config_free(&cfg);
}

/* More names than PLAN_ONLY_SCAN go through the index: the same answer. */
Test(plan, many_names_are_found_through_the_index)
{
	struct sl_config cfg;
	struct sl_state empty = {0};
	struct sl_plan plan;
	char names[40][SLUICE_NAME_LEN];
	char yaml[8192];
	size_t len = 0;

	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "services:\n");
	for (int i = 0; i < 40; i++) {
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
					"  - name: s%d\n    frontend: 198.19.1.%d:80\n"
					"    backends: [{address: 198.18.2.%d:8080}]\n",
					i, i + 1, i + 1);
		snprintf(names[i], sizeof(names[i]), "s%d", (i * 7) % 40);
	}
	cr_assert_lt(len, sizeof(yaml));
	parse(yaml, &cfg);
	cr_assert_eq(sl_plan_build_only(&empty, &cfg, NULL, 100, 1000,
					(const char(*)[SLUICE_NAME_LEN])names, 25, &plan),
		     0);
	cr_expect_eq(plan.n_add, 25, "the 25 named of 40 (got %zu)", plan.n_add);
	sl_plan_free(&plan);
	cr_assert_eq(sl_plan_build_only(&empty, &cfg, NULL, 100, 1000,
					(const char(*)[SLUICE_NAME_LEN])names, 3, &plan),
		     0);
	cr_expect_eq(plan.n_add, 3, "by a pass each: 3 (got %zu)", plan.n_add);
	sl_plan_free(&plan);
	sl_config_free(&cfg);
}
