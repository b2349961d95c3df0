// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The service map: read from the maps (sl_graph_read), made into the JSON
 * document that `sluicectl graph -o json` prints and GET /graph serves
 * (sl_graph_json), and that document as Graphviz input (sl_graph_dot).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "graph.h"
#include "mem.h"
#include "report.h"

void sl_graph_free(struct sl_graph *g)
{
	for (size_t i = 0; i < g->n_svcs; i++)
		free(g->svcs[i].bes);
	free(g->svcs);
	free(g->edges);
	memset(g, 0, sizeof(*g));
}

static int read_service(const struct sl_maps *m, const struct sl_svc_state *s,
			struct sl_graph_svc *out, uint64_t now)
{
	out->id = s->id;
	snprintf(out->name, sizeof(out->name), "%s", s->name);
	out->bes = calloc(s->n_bes ? s->n_bes : 1, sizeof(*out->bes));
	if (!out->bes)
		return -ENOMEM;
	out->n_bes = s->n_bes;
	for (size_t i = 0; i < s->n_bes; i++) {
		struct sluice_backend_stats bs = {0};
		struct sluice_backend_rt rt = {0};
		struct sl_graph_be *b = &out->bes[i];

		/* Counters of a backend being set up or retired read as zero. */
		sl_maps_backend_stats(m, s->bes[i].id, &bs);
		sl_maps_backend_rt(m, s->bes[i].id, &rt);
		sl_format_hostport(&s->bes[i].addr, b->address, sizeof(b->address));
		b->state = sl_backend_state(s->bes[i].state, &rt, now);
		b->connections = bs.connections;
		b->failures = bs.connect_failures;
		b->active = sl_active_count(rt.active_gen);
	}
	return 0;
}

int sl_graph_read(const struct sl_maps *m, struct sl_graph *g)
{
	uint64_t now = sl_mono_ns();
	struct sl_state st;
	int err;

	memset(g, 0, sizeof(*g));
	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++) {
		struct sluice_identity_info info;

		if (bpf_map_lookup_elem(m->identities, &id, &info))
			continue; /* an array: an id with no identity holds an empty name */
		snprintf(g->identities[id], sizeof(g->identities[id]), "%.*s",
			 (int)sizeof(info.name) - 1, info.name);
	}
	err = sl_maps_read_state(m, &st);
	if (err)
		return err;
	g->svcs = calloc(st.n_svcs ? st.n_svcs : 1, sizeof(*g->svcs));
	if (!g->svcs)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < st.n_svcs; i++) {
		err = read_service(m, &st.svcs[i], &g->svcs[i], now);
		if (!err)
			g->n_svcs++;
	}
	sl_state_free(&st);
	if (!err)
		err = sl_maps_edges(m, &g->edges, &g->n_edges);
	if (err)
		sl_graph_free(g);
	return err;
}

/* One identity -> service edge of the document, summed over the identity ids
 * that share its name (the unnamed ones all go to "unknown"). */
struct call {
	const char *caller;
	const struct sl_graph_svc *svc;
	uint64_t connections, failures, rejected;
};

static int svc_by_name(const void *a, const void *b)
{
	return strcmp((*(const struct sl_graph_svc *const *)a)->name,
		      (*(const struct sl_graph_svc *const *)b)->name);
}

static int svc_by_id(const void *a, const void *b)
{
	uint32_t x = (*(const struct sl_graph_svc *const *)a)->id;
	uint32_t y = (*(const struct sl_graph_svc *const *)b)->id;

	return x < y ? -1 : x > y;
}

static int call_order(const void *a, const void *b)
{
	const struct call *x = a, *y = b;

	return strcmp(x->caller, y->caller) ?: strcmp(x->svc->name, y->svc->name);
}

static int str_order(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *caller_name(const struct sl_graph *g, uint32_t id)
{
	if (id >= 1 && id <= SLUICE_MAX_IDENTITIES && g->identities[id][0])
		return g->identities[id];
	return SL_GRAPH_UNKNOWN;
}

/* The edges of g as calls, one per (caller name, service), sorted; edges to a
 * service that is gone are left out. *n of them, or NULL (out of memory). */
static struct call *merge_calls(const struct sl_graph *g, const struct sl_graph_svc **by_id,
				size_t *n)
{
	struct call *c = calloc(g->n_edges ? g->n_edges : 1, sizeof(*c));
	size_t len = 0, out = 0;

	if (!c)
		return NULL;
	for (size_t i = 0; i < g->n_edges; i++) {
		const struct sl_edge *e = &g->edges[i];
		struct sl_graph_svc key = {.id = e->key.svc_id};
		const struct sl_graph_svc *kp = &key, **s;

		s = bsearch(&kp, by_id, g->n_svcs, sizeof(*by_id), svc_by_id);
		if (!s)
			continue;
		c[len] = (struct call){.caller = caller_name(g, e->key.identity),
				       .svc = *s,
				       .connections = e->st.connections,
				       .failures = e->st.failures};
		for (unsigned int r = 0; r < SLUICE_DROP__MAX; r++)
			c[len].rejected += e->st.rejected[r];
		len++;
	}
	qsort(c, len, sizeof(*c), call_order);
	for (size_t i = 0; i < len; i++) {
		if (out && !call_order(&c[out - 1], &c[i])) {
			c[out - 1].connections += c[i].connections;
			c[out - 1].failures += c[i].failures;
			c[out - 1].rejected += c[i].rejected;
		} else {
			c[out++] = c[i];
		}
	}
	*n = out;
	return c;
}

static json_t *node(const char *kind, const char *id, const char *name)
{
	return json_pack("{s:s, s:s, s:s}", "id", id, "kind", kind, "name", name);
}

/* The identity nodes: every named identity, and unknown when it calls. */
static int add_identities(const struct sl_graph *g, const struct call *c, size_t n_calls,
			  json_t *nodes)
{
	const char *names[SLUICE_MAX_IDENTITIES + 1];
	size_t n = 0, unknown = 0;
	char id[SLUICE_NAME_LEN + 16];

	for (uint32_t i = 1; i <= SLUICE_MAX_IDENTITIES; i++) {
		if (!g->identities[i][0])
			continue;
		names[n++] = g->identities[i];
		unknown |= !strcmp(g->identities[i], SL_GRAPH_UNKNOWN);
	}
	for (size_t i = 0; !unknown && i < n_calls; i++)
		if (!strcmp(c[i].caller, SL_GRAPH_UNKNOWN)) {
			names[n++] = SL_GRAPH_UNKNOWN;
			unknown = 1;
		}
	qsort(names, n, sizeof(*names), str_order);
	for (size_t i = 0; i < n; i++) {
		/* Two ids with one name (an identity renamed into another's place
		 * between two reads): one node. */
		if (i && !strcmp(names[i - 1], names[i]))
			continue;
		snprintf(id, sizeof(id), "identity/%s", names[i]);
		if (json_array_append_new(nodes, node("identity", id, names[i])))
			return -ENOMEM;
	}
	return 0;
}

/* The service and backend nodes, and the service -> backend edges. */
static int add_services(const struct sl_graph_svc **by_name, size_t n, json_t *nodes, json_t *edges)
{
	char sid[SLUICE_NAME_LEN + 16], bid[SLUICE_NAME_LEN + SL_HOSTPORT_LEN + 16];

	for (size_t i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "service/%s", by_name[i]->name);
		if (json_array_append_new(nodes, node("service", sid, by_name[i]->name)))
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "service/%s", by_name[i]->name);
		for (size_t j = 0; j < by_name[i]->n_bes; j++) {
			const struct sl_graph_be *b = &by_name[i]->bes[j];

			snprintf(bid, sizeof(bid), "backend/%s/%s", by_name[i]->name, b->address);
			if (json_array_append_new(nodes,
						  json_pack("{s:s, s:s, s:s, s:s}", "id", bid,
							    "kind", "backend", "name", b->address,
							    "state", sl_state_name(b->state))) ||
			    json_array_append_new(
				edges, json_pack("{s:s, s:s, s:I, s:I, s:I}", "from", sid, "to",
						 bid, "connections", (json_int_t)b->connections,
						 "failures", (json_int_t)b->failures, "active",
						 (json_int_t)b->active)))
				return -ENOMEM;
		}
	}
	return 0;
}

static int add_calls(const struct call *c, size_t n, json_t *edges)
{
	char from[SLUICE_NAME_LEN + 16], to[SLUICE_NAME_LEN + 16];

	for (size_t i = 0; i < n; i++) {
		snprintf(from, sizeof(from), "identity/%s", c[i].caller);
		snprintf(to, sizeof(to), "service/%s", c[i].svc->name);
		if (json_array_append_new(edges,
					  json_pack("{s:s, s:s, s:I, s:I, s:I}", "from", from, "to",
						    to, "connections", (json_int_t)c[i].connections,
						    "failures", (json_int_t)c[i].failures,
						    "rejected", (json_int_t)c[i].rejected)))
			return -ENOMEM;
	}
	return 0;
}

json_t *sl_graph_json(const struct sl_graph *g)
{
	const struct sl_graph_svc **by_name = calloc(g->n_svcs + 1, sizeof(*by_name));
	const struct sl_graph_svc **by_id = calloc(g->n_svcs + 1, sizeof(*by_id));
	json_t *nodes = json_array(), *edges = json_array(), *doc = NULL;
	struct call *calls = NULL;
	size_t n_calls = 0;

	if (!by_name || !by_id || !nodes || !edges)
		goto out;
	for (size_t i = 0; i < g->n_svcs; i++)
		by_name[i] = by_id[i] = &g->svcs[i];
	qsort(by_name, g->n_svcs, sizeof(*by_name), svc_by_name);
	qsort(by_id, g->n_svcs, sizeof(*by_id), svc_by_id);
	calls = merge_calls(g, by_id, &n_calls);
	if (!calls || add_identities(g, calls, n_calls, nodes) ||
	    add_calls(calls, n_calls, edges) || add_services(by_name, g->n_svcs, nodes, edges))
		goto out;
	doc = json_pack("{s:O, s:O}", "nodes", nodes, "edges", edges);
out:
	json_decref(nodes);
	json_decref(edges);
	free(calls);
	free(by_name);
	free(by_id);
	return doc;
}

/* s as the inside of a DOT string: quotes and backslashes escaped, control
 * characters dropped (no name holds any; an address holds none). */
static void dot_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static json_int_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Fill and line colours of a node, by kind and (backends) state. */
static void dot_node(FILE *f, const json_t *n)
{
	const char *kind = str(n, "kind"), *state = str(n, "state");
	const char *fill = "#f6f8fa", *line = "#8c959f", *style = "rounded,filled";

	if (!strcmp(kind, "identity"))
		fill = "#fbefff", line = "#8250df";
	else if (!strcmp(kind, "service"))
		fill = "#dafbe1", line = "#1a7f37";
	else if (state && !strcmp(state, "unhealthy"))
		fill = "#fff1e5", line = "#bc4c00";
	else if (state && !strcmp(state, "ejected"))
		fill = "#ffebe9", line = "#cf222e";
	else if (state && !strcmp(state, "draining"))
		style = "rounded,filled,dashed";
	fputc('\t', f);
	dot_str(f, str(n, "id"));
	fputs(" [label=", f);
	if (state && strcmp(state, "healthy")) {
		char label[SL_HOSTPORT_LEN + 32];

		snprintf(label, sizeof(label), "%s (%s)", str(n, "name"), state);
		dot_str(f, label);
	} else {
		dot_str(f, str(n, "name"));
	}
	fprintf(f, ", style=\"%s\", fillcolor=\"%s\", color=\"%s\"];\n", style, fill, line);
}

static void dot_edge(FILE *f, const json_t *e)
{
	json_int_t fails = num(e, "failures"), rej = num(e, "rejected");
	const char *color = fails ? "#cf222e" : rej ? "#bc4c00" : "#57606a";
	char label[128];
	int n;

	n = snprintf(label, sizeof(label), "%lld conns", (long long)num(e, "connections"));
	if (json_object_get(e, "active"))
		n += snprintf(label + n, sizeof(label) - (size_t)n, ", %lld open",
			      (long long)num(e, "active"));
	if (fails)
		n += snprintf(label + n, sizeof(label) - (size_t)n, ", %lld failed",
			      (long long)fails);
	if (rej)
		snprintf(label + n, sizeof(label) - (size_t)n, ", %lld rejected", (long long)rej);
	fputc('\t', f);
	dot_str(f, str(e, "from"));
	fputs(" -> ", f);
	dot_str(f, str(e, "to"));
	fputs(" [label=", f);
	dot_str(f, label);
	fprintf(f, ", color=\"%s\", fontcolor=\"%s\"];\n", color, color);
}

static int valid(const json_t *graph)
{
	json_t *nodes = json_object_get(graph, "nodes"), *edges = json_object_get(graph, "edges");
	json_t *v;
	size_t i;

	if (!json_is_array(nodes) || !json_is_array(edges))
		return 0;
	json_array_foreach(nodes, i, v)
	{
		if (!str(v, "id") || !str(v, "kind") || !str(v, "name"))
			return 0;
	}
	json_array_foreach(edges, i, v)
	{
		if (!str(v, "from") || !str(v, "to"))
			return 0;
	}
	return 1;
}

int sl_graph_dot(FILE *f, const json_t *graph)
{
	static const char *const kinds[] = {"identity", "service", "backend"};
	json_t *nodes = json_object_get(graph, "nodes"), *v;
	size_t i;

	if (!valid(graph))
		return -EINVAL;
	fputs("digraph sluice {\n"
	      "\trankdir=LR;\n"
	      "\tnode [shape=box, fontname=\"sans-serif\", fontsize=10];\n"
	      "\tedge [fontname=\"sans-serif\", fontsize=9];\n",
	      f);
	/* One column per kind: identities, services, backends. */
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		fputs("\t{\n\trank=same;\n", f);
		json_array_foreach(nodes, i, v)
		{
			if (!strcmp(str(v, "kind"), kinds[k]))
				dot_node(f, v);
		}
		fputs("\t}\n", f);
	}
	json_array_foreach(json_object_get(graph, "edges"), i, v)
	{
		dot_edge(f, v);
	}
	fputs("}\n", f);
	return fflush(f) || ferror(f) ? -EIO : 0;
}
