// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The service map's edges (userspace/lib/edges.c). Suite edges: which edges are forgotten, and
 * how edges become metric rows (names, order, what is left out, what is summed), on made-up
 * input. Suite edges_maps: on the agent's real maps (tests/world.h; needs root, skipped
 * otherwise), edges written into sluice_edges render as the sluice_edge_* families, and go when
 * their service is removed by a plan or their identity is forgotten.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "edges.h"
#include "fixtures.h"
#include "world.h"

static struct sl_edge edge(uint32_t identity, uint32_t svc_id, uint64_t conns, uint64_t fails,
			   uint64_t policy)
{
	struct sl_edge e = {.key = {.identity = identity, .svc_id = svc_id}};

	e.st.connections = conns;
	e.st.failures = fails;
	e.st.rejected[SLUICE_DROP_POLICY] = policy;
	return e;
}

Test(edges, forgotten_by_service_or_identity)
{
	const uint32_t svcs[] = {2, 5, 9};
	struct sluice_edge_key k;

	k = (struct sluice_edge_key){.identity = 1, .svc_id = 5};
	cr_expect(sl_edge_forgotten(&k, svcs, 3, 0), "a listed service");
	k.svc_id = 9;
	cr_expect(sl_edge_forgotten(&k, svcs, 3, 0), "the last listed service");
	k.svc_id = 4;
	cr_expect(!sl_edge_forgotten(&k, svcs, 3, 0), "a service between listed ones");
	cr_expect(!sl_edge_forgotten(&k, NULL, 0, 0), "nothing listed");
	cr_expect(sl_edge_forgotten(&k, NULL, 0, 1ULL << 0), "identity 1 is bit 0");
	k.identity = 64;
	cr_expect(sl_edge_forgotten(&k, NULL, 0, 1ULL << 63), "identity 64 is bit 63");
	cr_expect(!sl_edge_forgotten(&k, NULL, 0, ~(1ULL << 63)), "other identities' bits");
	k.identity = 0;
	cr_expect(!sl_edge_forgotten(&k, NULL, 0, ~0ULL), "unknown (0) goes only with its service");
	k.identity = 65;
	cr_expect(!sl_edge_forgotten(&k, NULL, 0, ~0ULL), "no identity past 64");
}

Test(edges, rows_named_sorted_left_out_and_summed)
{
	struct sl_svc_state svcs[2] = {{.id = 3, .name = "web"}, {.id = 1, .name = "api"}};
	struct sl_state st = {.svcs = svcs, .n_svcs = 2};
	char names[4][SLUICE_NAME_LEN] = {"", "frontend", "", "unknown"};
	struct sl_edge e[] = {
	    edge(1, 3, 7, 1, 0), /* frontend -> web */
	    edge(0, 3, 3, 0, 0), /* unknown -> web */
	    edge(1, 1, 2, 0, 4), /* frontend -> api */
	    edge(2, 3, 9, 0, 0), /* id 2 has no name: left out */
	    edge(1, 8, 9, 0, 0), /* service 8 is not in the state: left out */
	    edge(5, 3, 9, 0, 0), /* id 5 is past the names: left out */
	    edge(3, 3, 4, 2, 1), /* an identity named "unknown": summed with id 0 */
	};
	struct sl_edge_row *rows = NULL;
	size_t n = 0;

	cr_assert_eq(sl_edge_rows(e, sizeof(e) / sizeof(e[0]), &st,
				  (const char(*)[SLUICE_NAME_LEN])names, 4, &rows, &n),
		     0);
	cr_assert_eq(n, 3, "%zu rows", n);
	cr_expect_str_eq(rows[0].service, "api");
	cr_expect_str_eq(rows[0].source, "frontend");
	cr_expect_eq(rows[0].st.connections, 2);
	cr_expect_eq(rows[0].st.rejected[SLUICE_DROP_POLICY], 4);
	cr_expect_str_eq(rows[1].service, "web");
	cr_expect_str_eq(rows[1].source, "frontend");
	cr_expect_eq(rows[1].st.connections, 7);
	cr_expect_eq(rows[1].st.failures, 1);
	cr_expect_str_eq(rows[2].service, "web");
	cr_expect_str_eq(rows[2].source, SL_EDGE_UNKNOWN);
	cr_expect_eq(rows[2].st.connections, 7);
	cr_expect_eq(rows[2].st.failures, 2);
	cr_expect_eq(rows[2].st.rejected[SLUICE_DROP_POLICY], 1);
	free(rows);
}

Test(edges, rows_of_nothing)
{
	struct sl_state st = {0};
	struct sl_edge_row *rows = NULL;
	size_t n = 1;

	cr_assert_eq(sl_edge_rows(NULL, 0, &st, NULL, 0, &rows, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_not_null(rows);
	free(rows);
}

/* --- on the real maps ------------------------------------------------------------------------- */

static const char cfg_a_yaml[] = "services:\n"
				 "  - name: web\n"
				 "    frontend: 198.19.0.10:80\n"
				 "    backends: [{address: 198.18.1.2:8080}]\n"
				 "  - name: dns\n"
				 "    frontend: 198.19.0.53:53\n"
				 "    protocol: udp\n"
				 "    backends: [{address: 198.18.1.4:53}]\n";
static const char cfg_b_yaml[] = "services:\n"
				 "  - name: web\n"
				 "    frontend: 198.19.0.10:80\n"
				 "    backends: [{address: 198.18.1.2:8080}]\n";

static struct test_world w; /* owns cfg_a and cfg_b */
static struct sl_config cfg_a, cfg_b;

static void world_down(void)
{
	test_world_down(&w);
}

/* The world with cfg_a applied; on failure test_world_setup has cleaned up (.fini does not
 * run when .init fails). */
static void world_up(void)
{
	const struct test_world_cfg cfgs[] = {{cfg_a_yaml, &cfg_a}, {cfg_b_yaml, &cfg_b}};
	char why[512];
	int err = test_world_setup(&w, cfgs, 2, &cfg_a, why, sizeof(why));

	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
}

TestSuite(edges_maps, .init = world_up, .fini = world_down);

/* Put an edge: its counters on the last CPU, so that only a sum over CPUs finds them. */
static int edge_put(const struct sl_edge *e)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_edge_stats *v;
	int err = 0;

	if (ncpu < 1)
		return ncpu < 0 ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[ncpu - 1] = e->st;
	if (bpf_map_update_elem(w.maps->edges, &e->key, v, BPF_ANY))
		err = -errno;
	free(v);
	return err;
}

static uint32_t svc_id(const char *name)
{
	struct sl_state st;
	const struct sl_svc_state *s;
	uint32_t id;

	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	s = sl_state_find(&st, name);
	cr_assert_not_null(s, "no service %s", name);
	id = s->id;
	sl_state_free(&st);
	return id;
}

static size_t edges_in_map(void)
{
	struct sl_edge *e = NULL;
	size_t n = 0;

	cr_assert_eq(sl_maps_edges(w.maps, &e, &n), 0);
	free(e);
	return n;
}

Test(edges_maps, render_then_forget)
{
	struct sluice_identity_info fe = {.name = "frontend"};
	uint32_t one = 1, web = svc_id("web"), dns = svc_id("dns");
	struct sl_edge e[] = {edge(1, web, 7, 1, 0), edge(0, web, 3, 0, 2), edge(1, dns, 4, 0, 0)};
	struct sl_state st;
	struct sl_prom *p = sl_prom_new();
	const char *text;
	char why[512];
	uint32_t none[1];

	cr_assert_not_null(p);
	cr_assert_eq(bpf_map_update_elem(w.maps->identities, &one, &fe, BPF_ANY), 0);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(edge_put(&e[i]), 0);
	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	cr_assert_eq(sl_metrics_edges(p, w.maps, &st), 0);
	sl_state_free(&st);
	text = sl_prom_data(p, NULL);
	cr_assert_not_null(text);
	EXPECT_LINE(text, "# TYPE sluice_edge_connections_total counter");
	EXPECT_LINE(text, "sluice_edge_connections_total{source=\"frontend\",service=\"web\"} 7");
	EXPECT_LINE(text, "sluice_edge_connections_total{source=\"unknown\",service=\"web\"} 3");
	EXPECT_LINE(text, "sluice_edge_connections_total{source=\"frontend\",service=\"dns\"} 4");
	EXPECT_LINE(text,
		    "sluice_edge_connect_failures_total{source=\"frontend\",service=\"web\"} 1");
	EXPECT_LINE(text, "sluice_edge_rejected_connections_total{source=\"unknown\","
			  "service=\"web\",reason=\"policy\"} 2");
	EXPECT_LINE(text, "sluice_edge_rejected_connections_total{source=\"unknown\","
			  "service=\"web\",reason=\"no_backend\"} 0");
	sl_prom_free(p);

	/* dns leaves the config: its edge goes with it. */
	cr_assert_eq(test_world_apply(&w, &cfg_b, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(edges_in_map(), 2);
	/* Nothing to forget: nothing goes. */
	cr_assert_eq(sl_edges_forget(w.maps, none, 0, 0), 0);
	cr_expect_eq(edges_in_map(), 2);
	/* frontend's id changes hands: its edge goes, unknown's stays. */
	cr_assert_eq(sl_edges_forget(w.maps, NULL, 0, 1ULL << 0), 0);
	cr_expect_eq(edges_in_map(), 1);
	/* A stale edge of dns's old id (a connect() racing the removal), then dns comes back
	 * with that id (the lowest free one): it starts with no edge. */
	cr_assert_eq(edge_put(&e[2]), 0);
	cr_assert_eq(test_world_apply(&w, &cfg_a, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(svc_id("dns"), dns, "dns did not get its old id back");
	cr_expect_eq(edges_in_map(), 1, "the stale dns edge was not forgotten on the add");
}
