// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "edges.h"
#include "mem.h"
#include "report.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

int sl_edge_forgotten(const struct sluice_edge_key *k, const uint32_t *svc_ids, size_t n,
		      uint64_t ids)
{
	if (k->identity && k->identity <= SLUICE_MAX_IDENTITIES &&
	    (ids & (1ULL << (k->identity - 1))))
		return 1;
	return n && bsearch(&k->svc_id, svc_ids, n, sizeof(*svc_ids), cmp_u32) != NULL;
}

int sl_edges_forget(const struct sl_maps *m, uint32_t *svc_ids, size_t n, uint64_t ids)
{
	struct sluice_edge_key key, next, *gone = NULL;
	size_t n_gone = 0, cap = 0;
	int err = 0;

	if (!n && !ids)
		return 0;
	if (n)
		qsort(svc_ids, n, sizeof(*svc_ids), cmp_u32);
	/* Keys first, deletes after: a walk goes on from a key that exists. */
	for (const void *prev = NULL; !bpf_map_get_next_key(m->edges, prev, &next); prev = &key) {
		key = next;
		if (!sl_edge_forgotten(&key, svc_ids, n, ids))
			continue;
		err = SL_ENSURE(&gone, &cap, n_gone + 1);
		if (err)
			goto out;
		gone[n_gone++] = key;
	}
	if (errno != ENOENT) {
		err = -errno;
		goto out;
	}
	for (size_t i = 0; i < n_gone; i++)
		if (bpf_map_delete_elem(m->edges, &gone[i]) && errno != ENOENT) {
			err = -errno;
			goto out;
		}
out:
	free(gone);
	return err;
}

static int cmp_row(const void *a, const void *b)
{
	const struct sl_edge_row *x = a, *y = b;
	int c = strcmp(x->service, y->service);

	return c ? c : strcmp(x->source, y->source);
}

static void stats_add(struct sluice_edge_stats *to, const struct sluice_edge_stats *from)
{
	to->connections += from->connections;
	to->failures += from->failures;
	for (unsigned int r = 0; r < SLUICE_DROP__MAX; r++)
		to->rejected[r] += from->rejected[r];
}

static int cmp_svc(const void *a, const void *b)
{
	const struct sl_svc_state *const *x = a, *const *y = b;

	return cmp_u32(&(*x)->id, &(*y)->id);
}

/* The service of id in by_id (st's services, sorted by id), or NULL. */
static const char *svc_name(const struct sl_svc_state *const *by_id, size_t n, uint32_t id)
{
	const struct sl_svc_state key = {.id = id}, *k = &key, *const * s;

	s = n ? bsearch(&k, by_id, n, sizeof(*by_id), cmp_svc) : NULL;
	return s ? (*s)->name : NULL;
}

int sl_edge_rows(const struct sl_edge *e, size_t n, const struct sl_state *st,
		 const char (*names)[SLUICE_NAME_LEN], size_t n_names, struct sl_edge_row **out,
		 size_t *n_out)
{
	struct sl_edge_row *rows = calloc(n ? n : 1, sizeof(*rows));
	const struct sl_svc_state **by_id = calloc(st->n_svcs ? st->n_svcs : 1, sizeof(*by_id));
	size_t len = 0, merged = 0;

	if (!rows || !by_id) {
		free(rows);
		free(by_id);
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_svcs; i++)
		by_id[i] = &st->svcs[i];
	qsort(by_id, st->n_svcs, sizeof(*by_id), cmp_svc);
	for (size_t i = 0; i < n; i++) {
		uint32_t id = e[i].key.identity;
		const char *service = svc_name(by_id, st->n_svcs, e[i].key.svc_id);

		if (!service || (id && (id >= n_names || !names[id][0])))
			continue;
		snprintf(rows[len].source, sizeof(rows[len].source), "%.*s", SLUICE_NAME_LEN - 1,
			 id ? names[id] : SL_EDGE_UNKNOWN);
		rows[len].service = service;
		rows[len].st = e[i].st;
		len++;
	}
	free(by_id);
	qsort(rows, len, sizeof(*rows), cmp_row);
	for (size_t i = 0; i < len; i++) {
		if (merged && !cmp_row(&rows[merged - 1], &rows[i]))
			stats_add(&rows[merged - 1].st, &rows[i].st);
		else
			rows[merged++] = rows[i];
	}
	*out = rows;
	*n_out = merged;
	return 0;
}

/* The identities' names by id (sluice_identities); "" where there is none. */
static void identity_names(const struct sl_maps *m, char (*names)[SLUICE_NAME_LEN])
{
	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++) {
		struct sluice_identity_info info;

		names[id][0] = '\0';
		if (bpf_map_lookup_elem(m->identities, &id, &info))
			continue;
		memcpy(names[id], info.name, SLUICE_NAME_LEN);
		names[id][SLUICE_NAME_LEN - 1] = '\0';
	}
}

int sl_metrics_edges(struct sl_prom *p, const struct sl_maps *m, const struct sl_state *st)
{
	char names[SLUICE_MAX_IDENTITIES + 1][SLUICE_NAME_LEN] = {{0}};
	struct sl_edge *edges = NULL;
	struct sl_edge_row *rows = NULL;
	size_t n = 0, n_rows = 0;
	int err;

	identity_names(m, names);
	err = sl_maps_edges(m, &edges, &n);
	if (!err)
		err = sl_edge_rows(edges, n, st, (const char(*)[SLUICE_NAME_LEN])names,
				   SLUICE_MAX_IDENTITIES + 1, &rows, &n_rows);
	free(edges);
	if (err)
		return err;
	sl_prom_family(p, "sluice_edge_connections_total",
		       "Connections (TCP) and unconnected sends (UDP) of a caller identity to a "
		       "service that were given a backend.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < n_rows; i++)
		sl_prom_sample(p,
			       (const char *const[]){"source", rows[i].source, "service",
						     rows[i].service, NULL},
			       (double)rows[i].st.connections);
	sl_prom_family(p, "sluice_edge_connect_failures_total",
		       "TCP connects of a caller identity to a service that were never "
		       "established (refused or timed out).",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < n_rows; i++)
		sl_prom_sample(p,
			       (const char *const[]){"source", rows[i].source, "service",
						     rows[i].service, NULL},
			       (double)rows[i].st.failures);
	sl_prom_family(p, "sluice_edge_rejected_connections_total",
		       "connect()/sendmsg() of a caller identity to a service refused, by reason.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < n_rows; i++)
		for (unsigned int r = 0; r < SLUICE_DROP__MAX; r++)
			sl_prom_sample(p,
				       (const char *const[]){"source", rows[i].source, "service",
							     rows[i].service, "reason",
							     sl_drop_name(r), NULL},
				       (double)rows[i].st.rejected[r]);
	free(rows);
	return 0;
}
