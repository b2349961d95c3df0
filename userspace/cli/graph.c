// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl graph`: the service map, as a table, JSON (-o json) or Graphviz input (-o dot). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "graph.h"

/* One row of the table: an edge of the document, with its nodes' names. */
struct row {
	const char *from, *to, *state;
	json_int_t connections, failures, third; /* rejected, or active */
};

static int row_order(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->connections != y->connections)
		return x->connections > y->connections ? -1 : 1;
	if (x->failures != y->failures)
		return x->failures > y->failures ? -1 : 1;
	return strcmp(x->from, y->from) ?: strcmp(x->to, y->to);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The width of the "FROM -> TO" column: its widest entry, at least min. */
static int width(const struct row *r, size_t n, size_t min)
{
	size_t w = min;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(r[i].from) + 4 + strlen(r[i].to);

		if (l > w)
			w = l;
	}
	return (int)w;
}

/* The rows of the edges whose source is of kind 'kind' (identity or service), sorted. */
static struct row *rows_of(const json_t *doc, const json_t *by_id, const char *kind, size_t *n)
{
	json_t *edges = json_object_get(doc, "edges"), *e;
	struct row *r = calloc(json_array_size(edges) + 1, sizeof(*r));
	size_t i;

	*n = 0;
	if (!r)
		return NULL;
	json_array_foreach(edges, i, e)
	{
		json_t *from = json_object_get(by_id, str(e, "from"));
		json_t *to = json_object_get(by_id, str(e, "to"));

		if (!from || !to || strcmp(str(from, "kind"), kind))
			continue;
		r[*n] = (struct row){
		    .from = str(from, "name"),
		    .to = str(to, "name"),
		    .state = str(to, "state"),
		    .connections = num(e, "connections"),
		    .failures = num(e, "failures"),
		    .third = num(e, json_object_get(e, "active") ? "active" : "rejected")};
		(*n)++;
	}
	qsort(r, *n, sizeof(*r), row_order);
	return r;
}

static void print_rows(const struct row *r, size_t n, int backends)
{
	int w = width(r, n, backends ? 18 : 17);
	char pair[2 * SLUICE_NAME_LEN + SL_HOSTPORT_LEN + 8];

	if (backends)
		printf("%-*s %-10s %12s %9s %7s\n", w, "SERVICE -> BACKEND", "STATE", "CONNECTIONS",
		       "FAILURES", "ACTIVE");
	else
		printf("%-*s %12s %9s %9s\n", w, "CALLER -> SERVICE", "CONNECTIONS", "FAILURES",
		       "REJECTED");
	for (size_t i = 0; i < n; i++) {
		snprintf(pair, sizeof(pair), "%s -> %s", r[i].from, r[i].to);
		if (backends)
			printf("%-*s %-10s %12lld %9lld %7lld\n", w, pair, r[i].state,
			       (long long)r[i].connections, (long long)r[i].failures,
			       (long long)r[i].third);
		else
			printf("%-*s %12lld %9lld %9lld\n", w, pair, (long long)r[i].connections,
			       (long long)r[i].failures, (long long)r[i].third);
	}
}

/* Callers -> services, then services -> backends, each busiest first. */
static int graph_table(const json_t *doc)
{
	json_t *by_id = json_object(), *n;
	struct row *calls = NULL, *bes = NULL;
	size_t i, n_calls = 0, n_bes = 0;
	int err = -ENOMEM;

	if (!by_id)
		return err;
	json_array_foreach(json_object_get(doc, "nodes"), i, n)
	{
		json_object_set(by_id, str(n, "id"), n);
	}
	calls = rows_of(doc, by_id, "identity", &n_calls);
	bes = rows_of(doc, by_id, "service", &n_bes);
	if (calls && bes) {
		if (n_calls)
			print_rows(calls, n_calls, 0);
		else
			printf("no callers counted yet\n");
		printf("\n");
		if (n_bes)
			print_rows(bes, n_bes, 1);
		else
			printf("no services with backends\n");
		err = 0;
	}
	free(calls);
	free(bes);
	json_decref(by_id);
	return err;
}

int do_graph(struct cli *c, int argc, char **argv)
{
	struct sl_graph g;
	struct sl_maps m;
	json_t *doc;
	int err;

	(void)argv;
	if (argc > 1)
		return fail(c, EXIT_USAGE, "graph takes no arguments");
	err = cli_open_state(c, &m, NULL);
	if (err)
		return err;
	err = sl_graph_read(&m, &g);
	sl_maps_close(&m);
	if (err)
		return fail(c, EXIT_FAIL, "read the service map from %s: %s", c->bpffs,
			    strerror(-err));
	doc = sl_graph_json(&g);
	sl_graph_free(&g);
	if (!doc)
		return fail(c, EXIT_FAIL, "service map: out of memory");
	if (c->json)
		return emit(doc);
	err = c->dot ? sl_graph_dot(stdout, doc) : graph_table(doc);
	json_decref(doc);
	if (err)
		return fail(c, EXIT_FAIL, "print the service map: %s", strerror(-err));
	return EXIT_OK;
}
