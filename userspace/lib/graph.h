/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service map: who calls which service (caller identity -> service, from
 * sluice_edges) and where each service sends its connections (service ->
 * backend). `sluicectl graph` prints it and sluiced serves it at GET /graph,
 * both from sl_graph_json(); its format is README's "Service map".
 */
#ifndef SLUICE_GRAPH_H
#define SLUICE_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "maps.h"
#include "parse.h"

/* The name of the caller node for sockets with no identity (identity 0), and
 * for an identity id that has no name (any more). */
#define SL_GRAPH_UNKNOWN "unknown"

struct sl_graph_be {
	char address[SL_HOSTPORT_LEN];
	uint8_t state; /* enum sluice_backend_state, as the datapath sees it (ejected too) */
	uint64_t connections;
	uint64_t failures;
	int64_t active;
};

struct sl_graph_svc {
	uint32_t id;
	char name[SLUICE_NAME_LEN];
	struct sl_graph_be *bes; /* in slot order */
	size_t n_bes;
};

/* What the map is made of. */
struct sl_graph {
	/* Identity names by id ("" for none; [0], the unknown caller, unused). */
	char identities[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN];
	struct sl_graph_svc *svcs; /* any order */
	size_t n_svcs;
	struct sl_edge *edges; /* as sl_maps_edges() reads them */
	size_t n_edges;
};

/* Read it all from the maps. 0 or -errno (then g holds nothing). */
int sl_graph_read(const struct sl_maps *m, struct sl_graph *g);
void sl_graph_free(struct sl_graph *g);

/*
 * {"nodes": [{"id", "kind", "name"}, ...], "edges": [{"from", "to",
 * "connections", "failures", then "rejected" (identity -> service) or
 * "active" (service -> backend)}, ...]}. Nodes: every identity, then
 * identity/unknown if it called anything, every service, every backend
 * (with its "state"); ids are identity/NAME, service/NAME and
 * backend/SERVICE/ADDRESS. Identity edges are those with counts in
 * sluice_edges (to services that still exist); each backend has its edge.
 * Sorted by name, backends in slot order. NULL when out of memory.
 */
json_t *sl_graph_json(const struct sl_graph *g);

/* The same document as Graphviz input (`dot -Tsvg`). 0 or -errno (-EINVAL:
 * graph is not such a document; -EIO: writing f failed). */
int sl_graph_dot(FILE *f, const json_t *graph);

#endif /* SLUICE_GRAPH_H */
