/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The Prometheus page (spec §7), rendered from the pinned maps. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

#include "maps.h"
#include "prom.h"

/* One interface with TC flow programs: [0] ingress, [1] egress. */
struct sl_if_counters {
	char name[16];
	uint64_t packets[2];
	uint64_t bytes[2];
};

/* What the agent knows that the maps do not. */
struct sl_metrics_ctx {
	const char *version;
	const char *node, *zone; /* sluice_node_info; NULL node: none */
	uint64_t reloads_ok, reloads_error;
	const struct sl_if_counters *ifs;
	size_t n_ifs;
	/* Health probe counters of a backend; non-zero when it is not probed.
	 * NULL: no sluice_health_checks_total. */
	int (*health_stats)(void *arg, uint32_t be_id, uint64_t *ok, uint64_t *failed);
	void *health_arg;
};

/* Write every metric into p. 0, or -errno when the maps could not be read
 * (p may then hold part of the page: do not serve it). What has counted nothing is left out,
 * so that a node of 10 000 idle services makes a small page: a backend's five counters appear
 * once one of them is not 0 (it has been given a connection), a service's histograms once
 * they count a connection, a rejected_connections reason once it is not 0.
 * sluice_backend_state is one series per backend, on its current state. */
int sl_metrics_render(const struct sl_maps *m, const struct sl_metrics_ctx *ctx, struct sl_prom *p);

/* The bucket of a value of us microseconds (SLUICE_HIST_BUCKETS: the overflow). */
unsigned int sl_hist_bucket(uint64_t us);
/* One value of ns nanoseconds into h (one thread's). */
void sl_hist_observe(struct sluice_hist *h, uint64_t ns);
/* h as one histogram of the current family of p, with labels: bucket i's bound (le) is
 * 2^(i+1) - 1 us (abi.h). */
void sl_prom_hist(struct sl_prom *p, const char *const *labels, const struct sluice_hist *h);

#endif /* SLUICE_METRICS_H */
