/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service map's edges (caller identity x service, counted by the
 * datapath in sluice_edges): their lifetime, and their metrics.
 *
 * Service ids and identity ids are reused, so an edge goes when either of
 * its ids changes hands: the agent forgets a service's edges when it adds
 * the service (a reused id starts from nothing) and when it removes it, and
 * an identity's edges when the identity behind its id changes.
 */
#ifndef SLUICE_EDGES_H
#define SLUICE_EDGES_H

#include <stddef.h>
#include <stdint.h>

#include "maps.h"
#include "prom.h"

/* The source label of callers without an identity (identity id 0). */
#define SL_EDGE_UNKNOWN "unknown"

/* Is the edge one to forget: its service is one of svc_ids (n of them,
 * sorted ascending), or its identity id i (1..64) has bit i - 1 in ids? */
int sl_edge_forgotten(const struct sluice_edge_key *k, const uint32_t *svc_ids, size_t n,
		      uint64_t ids);

/* Delete every edge sl_edge_forgotten() names (svc_ids is sorted in place).
 * Nothing to forget: no walk. 0 or -errno. */
int sl_edges_forget(const struct sl_maps *m, uint32_t *svc_ids, size_t n, uint64_t ids);

/* One edge as the metrics show it. */
struct sl_edge_row {
	char source[SLUICE_NAME_LEN]; /* the identity's name, or SL_EDGE_UNKNOWN */
	const char *service;	      /* in the state the rows were made from */
	struct sluice_edge_stats st;
};

/*
 * The rows of edges e[0..n): sources named by names[id] (id 1..n_names - 1;
 * id 0 is SL_EDGE_UNKNOWN), services by st. Edges of a service that st does
 * not hold, or of an identity without a name, are left out (they are about
 * to be forgotten). Sorted by service then source; edges that end up with
 * the same labels are summed. *out: malloc'd, *n_out rows. 0 or -ENOMEM.
 */
int sl_edge_rows(const struct sl_edge *e, size_t n, const struct sl_state *st,
		 const char (*names)[SLUICE_NAME_LEN], size_t n_names, struct sl_edge_row **out,
		 size_t *n_out);

/* The sluice_edge_* families, from the maps: one series per edge (per edge
 * and reason for rejections). 0 or -errno. */
int sl_metrics_edges(struct sl_prom *p, const struct sl_maps *m, const struct sl_state *st);

#endif /* SLUICE_EDGES_H */
