// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Label cardinality is bounded by configuration: labels are services,
 * backends, interfaces, maps and enum values, never flows or clients.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "edges.h"
#include "metrics.h"
#include "report.h"

#define SL_STR_(x) #x
#define SL_STR(x)  SL_STR_(x)

/* Bucket i holds whole microseconds in [2^i, 2^(i+1) - 1] (bucket 0 from 0):
 * its inclusive upper bound is 2^(i+1) - 1 us. */
#define HIST_BOUND(i)	((double)((1ULL << ((i) + 1)) - 1) / 1e6)
#define HIST_BOUNDS4(i) HIST_BOUND(i), HIST_BOUND((i) + 1), HIST_BOUND((i) + 2), HIST_BOUND((i) + 3)
_Static_assert(SLUICE_HIST_BUCKETS == 32, "hist_bounds lists 32 bounds");
static const double hist_bounds[SLUICE_HIST_BUCKETS] = {
    HIST_BOUNDS4(0),  HIST_BOUNDS4(4),	HIST_BOUNDS4(8),  HIST_BOUNDS4(12),
    HIST_BOUNDS4(16), HIST_BOUNDS4(20), HIST_BOUNDS4(24), HIST_BOUNDS4(28),
};

unsigned int sl_hist_bucket(uint64_t us)
{
	unsigned int b = us ? 63 - (unsigned int)__builtin_clzll(us) : 0;

	return b < SLUICE_HIST_BUCKETS ? b : SLUICE_HIST_BUCKETS;
}

void sl_hist_observe(struct sluice_hist *h, uint64_t ns)
{
	unsigned int b = sl_hist_bucket(ns / 1000);

	if (b < SLUICE_HIST_BUCKETS)
		h->buckets[b]++;
	else
		h->overflow++;
	h->sum_us += ns / 1000;
}

void sl_prom_hist(struct sl_prom *p, const char *const *labels, const struct sluice_hist *h)
{
	uint64_t counts[SLUICE_HIST_BUCKETS]; /* __u64 is not uint64_t's type here */

	for (unsigned int i = 0; i < SLUICE_HIST_BUCKETS; i++)
		counts[i] = h->buckets[i];
	sl_prom_histogram(p, labels, hist_bounds, counts, SLUICE_HIST_BUCKETS, h->overflow,
			  (double)h->sum_us / 1e6);
}

/* Per-backend counters, read once per scrape. */
struct be_row {
	const struct sl_svc_state *svc;
	const struct sl_be_state *be;
	char addr[SL_HOSTPORT_LEN];
	struct sluice_backend_stats st;
	struct sluice_backend_rt rt;
	uint8_t state; /* as the datapath sees it: ejection included */
	int used;      /* has a figure other than 0: its counters are on the page */
};

enum be_field {
	BE_CONNECTIONS,
	BE_ACTIVE,
	BE_FAILURES,
	BE_SENT,
	BE_RECEIVED,
};

static double be_value(const struct be_row *r, enum be_field f)
{
	const struct sluice_backend_stats *st = &r->st;

	switch (f) {
	case BE_CONNECTIONS:
		return (double)st->connections;
	case BE_ACTIVE:
		return (double)sl_active_count(r->rt.active_gen);
	case BE_FAILURES:
		return (double)st->connect_failures;
	case BE_SENT:
		return (double)st->sent_bytes;
	case BE_RECEIVED:
		return (double)st->received_bytes;
	}
	return 0;
}

static void backend_family(struct sl_prom *p, const struct be_row *rows, size_t n, const char *name,
			   const char *help, enum sl_prom_type type, enum be_field f)
{
	sl_prom_family(p, name, help, type);
	for (size_t i = 0; i < n; i++) {
		const char *labels[] = {"service", rows[i].svc->name, "backend", rows[i].addr,
					NULL};

		if (rows[i].used)
			sl_prom_sample(p, labels, be_value(&rows[i], f));
	}
}

/* Has the histogram counted anything? */
static int hist_used(const struct sluice_hist *h)
{
	if (h->overflow)
		return 1;
	for (unsigned int i = 0; i < SLUICE_HIST_BUCKETS; i++)
		if (h->buckets[i])
			return 1;
	return 0;
}

static int histograms(struct sl_prom *p, const struct sl_maps *m, const struct sl_state *st)
{
	static const struct {
		const char *name, *help;
		size_t offset;
	} hs[] = {
	    {"sluice_connect_duration_seconds",
	     "Time from SYN sent to established, of balanced TCP connections.",
	     offsetof(struct sluice_svc_hist, connect)},
	    {"sluice_tcp_rtt_seconds", "Smoothed RTT of balanced TCP connections, at close.",
	     offsetof(struct sluice_svc_hist, rtt)},
	};
	struct sluice_svc_hist *vals;

	vals = calloc(st->n_svcs ? st->n_svcs : 1, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_svcs; i++)
		sl_maps_service_hist(m, st->svcs[i].id, &vals[i]);
	for (size_t k = 0; k < sizeof(hs) / sizeof(hs[0]); k++) {
		sl_prom_family(p, hs[k].name, hs[k].help, SL_PROM_HISTOGRAM);
		for (size_t i = 0; i < st->n_svcs; i++) {
			const struct sluice_hist *h =
			    (const void *)((const char *)&vals[i] + hs[k].offset);
			const char *labels[] = {"service", st->svcs[i].name, NULL};

			if (hist_used(h))
				sl_prom_hist(p, labels, h);
		}
	}
	free(vals);
	return 0;
}

static void map_families(struct sl_prom *p, struct sl_maps *m)
{
	uint32_t entries[SL_MAPS_COUNT] = {0}, cap[SL_MAPS_COUNT] = {0};
	int counted[SL_MAPS_COUNT] = {0};

	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++)
		counted[i] = sl_maps_fill(*sl_maps_fd(m, i), &entries[i], &cap[i]) == 0;
	sl_prom_family(p, "sluice_map_entries", "Entries in each hash map.", SL_PROM_GAUGE);
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		const char *labels[] = {"map", sl_map_names[i], NULL};

		if (counted[i])
			sl_prom_sample(p, labels, entries[i]);
	}
	sl_prom_family(p, "sluice_map_capacity", "Capacity (max_entries) of each map.",
		       SL_PROM_GAUGE);
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		const char *labels[] = {"map", sl_map_names[i], NULL};

		if (cap[i])
			sl_prom_sample(p, labels, cap[i]);
	}
}

static void interface_families(struct sl_prom *p, const struct sl_metrics_ctx *ctx)
{
	static const char *const dirs[2] = {"ingress", "egress"};

	if (!ctx->n_ifs)
		return;
	sl_prom_family(p, "sluice_interface_packets_total",
		       "Packets seen by the TC programs, per interface and direction.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < ctx->n_ifs; i++)
		for (int d = 0; d < 2; d++) {
			const char *labels[] = {"interface", ctx->ifs[i].name, "direction", dirs[d],
						NULL};

			sl_prom_sample(p, labels, (double)ctx->ifs[i].packets[d]);
		}
	sl_prom_family(p, "sluice_interface_bytes_total",
		       "Bytes seen by the TC programs, per interface and direction.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < ctx->n_ifs; i++)
		for (int d = 0; d < 2; d++) {
			const char *labels[] = {"interface", ctx->ifs[i].name, "direction", dirs[d],
						NULL};

			sl_prom_sample(p, labels, (double)ctx->ifs[i].bytes[d]);
		}
}

/* One row per backend of st, with its counters and state. *out: calloc'd. */
static int backend_rows(const struct sl_maps *m, const struct sl_state *st, struct be_row **out,
			size_t *n_out)
{
	uint64_t now = sl_mono_ns();
	struct be_row *rows;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < st->n_svcs; i++)
		cap += st->svcs[i].n_bes;
	rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < st->n_svcs; i++)
		for (size_t j = 0; j < st->svcs[i].n_bes; j++) {
			struct be_row *r = &rows[n++];

			r->svc = &st->svcs[i];
			r->be = &st->svcs[i].bes[j];
			sl_format_hostport(&r->be->addr, r->addr, sizeof(r->addr));
			sl_maps_backend_stats(m, r->be->id, &r->st);
			sl_maps_backend_rt(m, r->be->id, &r->rt);
			r->state = sl_backend_state(r->be->state, &r->rt, now);
			r->used = r->st.connections || r->st.connect_failures || r->st.sent_bytes ||
				  r->st.received_bytes || sl_active_count(r->rt.active_gen) > 0;
		}
	*out = rows;
	*n_out = n;
	return 0;
}

/* sluice_backend_state, and the probes' counters when there are any. */
static void state_families(struct sl_prom *p, const struct sl_metrics_ctx *ctx,
			   const struct be_row *rows, size_t n)
{
	sl_prom_family(p, "sluice_backend_state",
		       "1 on the backend's current state (one series per backend).", SL_PROM_GAUGE);
	for (size_t i = 0; i < n; i++) {
		const char *labels[] = {"service", rows[i].svc->name,
					"backend", rows[i].addr,
					"state",   sl_state_name(rows[i].state),
					NULL};

		sl_prom_sample(p, labels, 1);
	}
	if (!ctx->health_stats)
		return;
	sl_prom_family(p, "sluice_health_checks_total",
		       "Active health probes of the backend, by result.", SL_PROM_COUNTER);
	for (size_t i = 0; i < n; i++) {
		uint64_t ok, failed;
		const char *l_ok[] = {
		    "service", rows[i].svc->name, "backend", rows[i].addr, "result", "ok", NULL};
		const char *l_fail[] = {"service", rows[i].svc->name, "backend", rows[i].addr,
					"result",  "failed",	      NULL};

		if (ctx->health_stats(ctx->health_arg, rows[i].be->id, &ok, &failed))
			continue;
		sl_prom_sample(p, l_ok, (double)ok);
		sl_prom_sample(p, l_fail, (double)failed);
	}
}

static void rejected_family(struct sl_prom *p, const struct sl_maps *m, const struct sl_state *st)
{
	sl_prom_family(p, "sluice_rejected_connections_total",
		       "connect()/sendmsg() to a frontend refused, by reason.", SL_PROM_COUNTER);
	for (size_t i = 0; i < st->n_svcs; i++) {
		uint64_t rej[SLUICE_DROP__MAX] = {0};

		sl_maps_service_rejected(m, st->svcs[i].id, rej);
		for (unsigned int r = 0; r < SLUICE_DROP__MAX; r++) {
			const char *labels[] = {"service", st->svcs[i].name, "reason",
						sl_drop_name(r), NULL};

			if (rej[r])
				sl_prom_sample(p, labels, (double)rej[r]);
		}
	}
}

/* The node-wide counters of sluice_global_stats. */
static void global_families(struct sl_prom *p, const struct sl_maps *m)
{
	struct sluice_global_stats gs = {0};

	sl_maps_global_stats(m, &gs);
	sl_prom_family(p, "sluice_events_lost_total",
		       "Datapath events dropped because the ring buffer was full.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)gs.events_lost);
	sl_prom_family(p, "sluice_redirected_bytes_total",
		       "Bytes sent socket to socket between same-node peers (sk_msg).",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)gs.redirected_bytes);
	sl_prom_family(p, "sluice_redirected_connections_total",
		       "Same-node connections whose two ends were paired for redirection.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)gs.redirected_conns);
	sl_prom_family(p, "sluice_audit_events_suppressed_total",
		       "Audit events the datapath did not emit: over a CPU's budget "
		       "(" SL_STR(SLUICE_AUDIT_RATE) "/s, burst " SL_STR(SLUICE_AUDIT_BURST) ").",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)gs.audit_suppressed);
	sl_prom_family(p, "sluice_revnat_update_failures_total",
		       "Translations a socket could not store: it sees the backend's address.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)gs.revnat_failures);
}

int sl_metrics_render(const struct sl_maps *m, const struct sl_metrics_ctx *ctx, struct sl_prom *p)
{
	struct be_row *rows = NULL;
	struct sl_state st;
	size_t n = 0;
	int err;

	err = sl_maps_read_state(m, &st);
	if (err)
		return err;
	err = backend_rows(m, &st, &rows, &n);
	if (err) {
		sl_state_free(&st);
		return err;
	}
	sl_prom_family(p, "sluice_build_info", "Version of the running sluiced.", SL_PROM_GAUGE);
	sl_prom_sample(p, (const char *const[]){"version", ctx->version, NULL}, 1);
	if (ctx->node) {
		/* An info metric: who this agent is, joined on the scrape's labels. */
		sl_prom_family(p, "sluice_node_info", "This node: agent.node and agent.zone.",
			       SL_PROM_GAUGE);
		sl_prom_sample(p,
			       (const char *const[]){"node", ctx->node, "zone",
						     ctx->zone ? ctx->zone : "", NULL},
			       1);
	}
	sl_prom_family(p, "sluice_config_reloads_total",
		       "Config loads and reloads, by result; a rejected config changes nothing.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, (const char *const[]){"result", "ok", NULL}, (double)ctx->reloads_ok);
	sl_prom_sample(p, (const char *const[]){"result", "error", NULL},
		       (double)ctx->reloads_error);

	backend_family(p, rows, n, "sluice_connections_total",
		       "Connections (TCP) and unconnected sends (UDP) given this backend.",
		       SL_PROM_COUNTER, BE_CONNECTIONS);
	backend_family(p, rows, n, "sluice_active_connections",
		       "Balanced TCP connections open (connecting or established).", SL_PROM_GAUGE,
		       BE_ACTIVE);
	backend_family(p, rows, n, "sluice_connect_failures_total",
		       "Balanced TCP connects that failed (refused or timed out).", SL_PROM_COUNTER,
		       BE_FAILURES);
	backend_family(p, rows, n, "sluice_sent_bytes_total",
		       "Bytes sent to the backend and acknowledged, counted at close.",
		       SL_PROM_COUNTER, BE_SENT);
	backend_family(p, rows, n, "sluice_received_bytes_total",
		       "Bytes received from the backend, counted at close.", SL_PROM_COUNTER,
		       BE_RECEIVED);
	state_families(p, ctx, rows, n);
	rejected_family(p, m, &st);
	err = sl_metrics_edges(p, m, &st);
	if (!err)
		err = histograms(p, m, &st);
	interface_families(p, ctx);
	global_families(p, m);
	map_families(p, (struct sl_maps *)m);

	free(rows);
	sl_state_free(&st);
	if (err)
		return err;
	return sl_prom_failed(p) ? -EINVAL : 0;
}
