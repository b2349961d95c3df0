// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The service map (userspace/lib/graph.c): the JSON document made from a hand-built
 * struct sl_graph, compared whole with the one expected; its Graphviz form; and
 * sl_graph_read() on the agent's real maps (root; skipped otherwise), with edge counters
 * written per CPU as the datapath would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "graph.h"
#include "world.h"

/* frontend (1) and batch (2) are identities, 5 is an id with no name (any more). web (id 3)
 * has a healthy, an ejected and a draining backend; api (id 7) has none; id 9 is gone. */
static struct sl_graph_be web_bes[] = {
    {"198.18.1.2:8080", SLUICE_BE_HEALTHY, 60, 0, 3},
    {"198.18.1.3:8080", SLUICE_BE_EJECTED, 40, 9, 0},
    {"[2001:db8::4]:8080", SLUICE_BE_DRAINING, 0, 0, 1},
};
static struct sl_graph_svc svcs[] = {
    {.id = 7, .name = "api"},
    {.id = 3, .name = "web", .bes = web_bes, .n_bes = 3},
};
static struct sl_edge edges[] = {
    {.key = {.identity = 1, .svc_id = 3}, .st = {.connections = 12}},
    {.key = {.identity = 0, .svc_id = 3},
     .st = {.connections = 3, .failures = 1, .rejected = {[SLUICE_DROP_POLICY] = 2}}},
    {.key = {.identity = 5, .svc_id = 3},
     .st = {.connections = 4, .rejected = {[SLUICE_DROP_RATE_LIMIT] = 1}}},
    {.key = {.identity = 2, .svc_id = 7}, .st = {.connections = 0, .failures = 2}},
    {.key = {.identity = 2, .svc_id = 9}, .st = {.connections = 100}},
};

static const char want_doc[] =
    "{\"nodes\": ["
    " {\"id\": \"identity/batch\", \"kind\": \"identity\", \"name\": \"batch\"},"
    " {\"id\": \"identity/frontend\", \"kind\": \"identity\", \"name\": \"frontend\"},"
    " {\"id\": \"identity/unknown\", \"kind\": \"identity\", \"name\": \"unknown\"},"
    " {\"id\": \"service/api\", \"kind\": \"service\", \"name\": \"api\"},"
    " {\"id\": \"service/web\", \"kind\": \"service\", \"name\": \"web\"},"
    " {\"id\": \"backend/web/198.18.1.2:8080\", \"kind\": \"backend\","
    "  \"name\": \"198.18.1.2:8080\", \"state\": \"healthy\"},"
    " {\"id\": \"backend/web/198.18.1.3:8080\", \"kind\": \"backend\","
    "  \"name\": \"198.18.1.3:8080\", \"state\": \"ejected\"},"
    " {\"id\": \"backend/web/[2001:db8::4]:8080\", \"kind\": \"backend\","
    "  \"name\": \"[2001:db8::4]:8080\", \"state\": \"draining\"}],"
    " \"edges\": ["
    " {\"from\": \"identity/batch\", \"to\": \"service/api\", \"connections\": 0,"
    "  \"failures\": 2, \"rejected\": 0},"
    " {\"from\": \"identity/frontend\", \"to\": \"service/web\", \"connections\": 12,"
    "  \"failures\": 0, \"rejected\": 0},"
    " {\"from\": \"identity/unknown\", \"to\": \"service/web\", \"connections\": 7,"
    "  \"failures\": 1, \"rejected\": 3},"
    " {\"from\": \"service/web\", \"to\": \"backend/web/198.18.1.2:8080\", \"connections\": 60,"
    "  \"failures\": 0, \"active\": 3},"
    " {\"from\": \"service/web\", \"to\": \"backend/web/198.18.1.3:8080\", \"connections\": 40,"
    "  \"failures\": 9, \"active\": 0},"
    " {\"from\": \"service/web\", \"to\": \"backend/web/[2001:db8::4]:8080\","
    "  \"connections\": 0, \"failures\": 0, \"active\": 1}]}";

static void fill(struct sl_graph *g)
{
	memset(g, 0, sizeof(*g));
	strcpy(g->identities[1], "frontend");
	strcpy(g->identities[2], "batch");
	g->svcs = svcs;
	g->n_svcs = 2;
	g->edges = edges;
	g->n_edges = sizeof(edges) / sizeof(edges[0]);
}

/* Criterion's message for two documents that differ: both, compact. */
static void expect_doc(json_t *got, const char *want_text)
{
	json_error_t jerr;
	json_t *want = json_loads(want_text, 0, &jerr);
	char *g, *w;

	cr_assert_not_null(want, "expected document: %s", jerr.text);
	cr_assert_not_null(got, "sl_graph_json gave NULL");
	g = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
	w = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_expect(json_equal(got, want), "got\n%s\nwant\n%s", g, w);
	/* Order matters too (the CLI prints it; the page sorts anyway). */
	cr_expect_str_eq(g, w);
	free(g);
	free(w);
	json_decref(want);
}

Test(graph, document_nodes_edges_and_unknown_callers)
{
	struct sl_graph g;
	json_t *doc;

	fill(&g);
	doc = sl_graph_json(&g);
	expect_doc(doc, want_doc);
	json_decref(doc);
}

Test(graph, unknown_only_when_it_calls_and_merges_with_an_identity_of_that_name)
{
	struct sl_graph g;
	json_t *doc;

	fill(&g);
	g.n_edges = 1; /* frontend -> web only */
	doc = sl_graph_json(&g);
	cr_assert_not_null(doc);
	cr_expect_eq(json_array_size(json_object_get(doc, "nodes")), 2 + 2 + 3,
		     "no identity/unknown node without an unknown caller");
	json_decref(doc);

	fill(&g);
	strcpy(g.identities[4], SL_GRAPH_UNKNOWN);
	doc = sl_graph_json(&g);
	cr_assert_not_null(doc);
	cr_expect_eq(json_array_size(json_object_get(doc, "nodes")), 3 + 2 + 3,
		     "an identity named unknown and the unknown callers share one node");
	json_decref(doc);
}

Test(graph, empty)
{
	struct sl_graph g;
	json_t *doc;

	memset(&g, 0, sizeof(g));
	doc = sl_graph_json(&g);
	expect_doc(doc, "{\"nodes\": [], \"edges\": []}");
	json_decref(doc);
}

static char *dot_of(const json_t *doc, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = sl_graph_dot(f, doc);
	fclose(f);
	return buf;
}

Test(graph, dot)
{
	struct sl_graph g;
	json_t *doc, *bad;
	char *out;
	int rc;

	fill(&g);
	doc = sl_graph_json(&g);
	cr_assert_not_null(doc);
	/* A name that DOT must see quoted: it reaches the output escaped, not raw. */
	json_object_set_new(json_array_get(json_object_get(doc, "nodes"), 0), "name",
			    json_string("ba\"t\\ch"));
	out = dot_of(doc, &rc);
	cr_expect_eq(rc, 0);
	cr_expect(strncmp(out, "digraph sluice {\n", 17) == 0, "%s", out);
	cr_expect_not_null(strstr(out, "\t\"identity/batch\" [label=\"ba\\\"t\\\\ch\""), "%s", out);
	cr_expect_not_null(strstr(out, "\t\"identity/frontend\" -> \"service/web\" [label=\"12 "
				       "conns\""),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"identity/unknown\" -> \"service/web\" [label=\"7 conns, "
				       "1 failed, 3 rejected\", color=\"#cf222e\""),
			   "%s", out);
	cr_expect_not_null(strstr(out, "[label=\"198.18.1.3:8080 (ejected)\""), "%s", out);
	cr_expect_not_null(strstr(out, "\"service/web\" -> \"backend/web/198.18.1.2:8080\" "
				       "[label=\"60 conns, 3 open\""),
			   "%s", out);
	cr_expect(strlen(out) > 2 && !strcmp(out + strlen(out) - 2, "}\n"));
	free(out);

	bad = json_pack("{s:[{s:s}], s:[]}", "nodes", "id", "x", "edges");
	out = dot_of(bad, &rc);
	cr_expect_eq(rc, -EINVAL, "a node without kind and name is not a service map");
	cr_expect_str_eq(out, "");
	free(out);
	json_decref(bad);
	json_decref(doc);
}

/* --- sl_graph_read on real maps ---------------------------------------------------------- */

static const char maps_yaml[] = "services:\n"
				"  - name: web\n"
				"    frontend: 198.19.0.10:80\n"
				"    backends:\n"
				"      - {address: 198.18.1.2:8080}\n"
				"      - {address: 198.18.1.3:8080}\n"
				"  - name: api\n"
				"    frontend: 198.19.0.11:80\n"
				"    health_check: {type: tcp}\n"
				"    backends:\n"
				"      - {address: 198.18.1.4:8080}\n";

static struct test_world w; /* owns cfg */
static struct sl_config cfg;

static void teardown(void)
{
	test_world_down(&w);
}

/* The world with cfg applied; on failure test_world_setup has cleaned up. */
static void setup(void)
{
	const struct test_world_cfg cfgs[] = {{maps_yaml, &cfg}};
	char why[512];
	int err = test_world_setup(&w, cfgs, 1, &cfg, why, sizeof(why));

	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
}

/* Add the counters to (identity, service) on two CPUs (CPU 0 and the last). */
static void count_edge(uint32_t identity, uint32_t svc_id, uint64_t conns, uint64_t rej)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_edge_key k = {.identity = identity, .svc_id = svc_id};
	struct sluice_edge_stats *v;

	cr_assert_gt(ncpu, 0);
	v = calloc((size_t)ncpu, sizeof(*v));
	cr_assert_not_null(v);
	v[0].connections = conns - conns / 2;
	v[ncpu - 1].connections += conns / 2;
	v[0].rejected[SLUICE_DROP_NO_BACKEND] = rej;
	cr_assert_eq(bpf_map_update_elem(w.maps->edges, &k, v, BPF_ANY), 0, "%s", strerror(errno));
	free(v);
}

TestSuite(graph_maps, .init = setup, .fini = teardown);

Test(graph_maps, read_from_the_maps)
{
	struct sluice_identity_info info = {.name = "frontend"};
	const struct sl_svc_state *web, *api;
	struct sl_state st;
	struct sl_graph g;
	uint32_t id = 3;
	json_t *doc, *want;
	char *text;

	cr_assert_eq(sl_maps_read_state(w.maps, &st), 0);
	web = sl_state_find(&st, "web");
	api = sl_state_find(&st, "api");
	cr_assert(web && api);
	cr_assert_eq(bpf_map_update_elem(w.maps->identities, &id, &info, BPF_ANY), 0);
	count_edge(3, web->id, 11, 0);
	count_edge(0, api->id, 0, 5);
	count_edge(0, web->id, 2, 0);
	cr_assert_eq(sl_graph_read(w.maps, &g), 0);
	sl_state_free(&st);
	cr_expect_str_eq(g.identities[3], "frontend");
	cr_expect_eq(g.n_svcs, 2);
	cr_expect_eq(g.n_edges, 3);
	doc = sl_graph_json(&g);
	sl_graph_free(&g);
	cr_assert_not_null(doc);
	want = json_loads(
	    "{\"nodes\": ["
	    " {\"id\": \"identity/frontend\", \"kind\": \"identity\", \"name\": \"frontend\"},"
	    " {\"id\": \"identity/unknown\", \"kind\": \"identity\", \"name\": \"unknown\"},"
	    " {\"id\": \"service/api\", \"kind\": \"service\", \"name\": \"api\"},"
	    " {\"id\": \"service/web\", \"kind\": \"service\", \"name\": \"web\"},"
	    " {\"id\": \"backend/api/198.18.1.4:8080\", \"kind\": \"backend\","
	    "  \"name\": \"198.18.1.4:8080\", \"state\": \"unhealthy\"},"
	    " {\"id\": \"backend/web/198.18.1.2:8080\", \"kind\": \"backend\","
	    "  \"name\": \"198.18.1.2:8080\", \"state\": \"healthy\"},"
	    " {\"id\": \"backend/web/198.18.1.3:8080\", \"kind\": \"backend\","
	    "  \"name\": \"198.18.1.3:8080\", \"state\": \"healthy\"}],"
	    " \"edges\": ["
	    " {\"from\": \"identity/frontend\", \"to\": \"service/web\", \"connections\": 11,"
	    "  \"failures\": 0, \"rejected\": 0},"
	    " {\"from\": \"identity/unknown\", \"to\": \"service/api\", \"connections\": 0,"
	    "  \"failures\": 0, \"rejected\": 5},"
	    " {\"from\": \"identity/unknown\", \"to\": \"service/web\", \"connections\": 2,"
	    "  \"failures\": 0, \"rejected\": 0},"
	    " {\"from\": \"service/api\", \"to\": \"backend/api/198.18.1.4:8080\","
	    "  \"connections\": 0, \"failures\": 0, \"active\": 0},"
	    " {\"from\": \"service/web\", \"to\": \"backend/web/198.18.1.2:8080\","
	    "  \"connections\": 0, \"failures\": 0, \"active\": 0},"
	    " {\"from\": \"service/web\", \"to\": \"backend/web/198.18.1.3:8080\","
	    "  \"connections\": 0, \"failures\": 0, \"active\": 0}]}",
	    0, NULL);
	cr_assert_not_null(want);
	text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_expect(json_equal(doc, want), "got %s", text);
	free(text);
	json_decref(want);
	json_decref(doc);
}
