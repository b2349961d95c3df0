// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The maps' state at scale (#17): sl_state_find through the state's name index, one probe
 * instead of a pass over every service; the plan's removals found the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"
#include "plan.h"

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
