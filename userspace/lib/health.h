/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Active health checks: non-blocking TCP-connect and HTTP GET probes, all
 * driven from one epoll instance of their own (sl_health_fd), which the
 * agent adds to its loop like any other fd. No threads, no blocking call.
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "parse.h"

/* One backend to probe. */
struct sl_hc_target {
	uint32_t be_id;		  /* the agent's key for the backend */
	struct sl_sockaddr addr;  /* where to probe: the port is already resolved */
	struct sl_health_cfg cfg; /* type is SL_HC_TCP or SL_HC_HTTP */
	int initially_healthy;	  /* the state to start from (adopted state) */
};

/* Called on every state change: the backend passed healthy_threshold
 * probes in a row (healthy = 1) or failed unhealthy_threshold (0). A target
 * that has never been healthy (a new backend, initially_healthy 0) turns
 * healthy on its first passing probe, as the spec says. 'why' says what the
 * last probe saw ("connect refused", "timeout", "HTTP 503", "bad response",
 * "ok"); it is valid during the call only. Runs inside sl_health_dispatch:
 * it may call sl_health_stats, not sl_health_sync (-EBUSY) or _free. */
typedef void (*sl_hc_change_fn)(void *arg, uint32_t be_id, int healthy, const char *why);

struct sl_health;

struct sl_health *sl_health_new(sl_hc_change_fn fn, void *arg);
void sl_health_free(struct sl_health *h);

/* An epoll fd, readable when sl_health_dispatch has work to do. */
int sl_health_fd(const struct sl_health *h);

/* Make the probed set exactly 'targets'. A target whose be_id, address and
 * config are unchanged keeps its state, counters and schedule; a new one is
 * probed at once (then every interval, with jitter); a changed one too, but
 * it keeps its state and counters; a removed one's probe is cancelled.
 * 0 or -errno (-EINVAL: a be_id twice, a type other than tcp/http, a bad
 * family); on error the previous set stays as it was. */
int sl_health_sync(struct sl_health *h, const struct sl_hc_target *targets, size_t n);

/* Run every probe step that is due. Never blocks. */
void sl_health_dispatch(struct sl_health *h);

/* A backend's probe outcome counters and current state. -ENOENT if not probed. */
struct sl_hc_stats {
	uint64_t ok;
	uint64_t failed;
	int healthy;
	uint64_t last_probe_ms; /* CLOCK_MONOTONIC ms of the last finished probe */
};
int sl_health_stats(const struct sl_health *h, uint32_t be_id, struct sl_hc_stats *out);

/* The outcome counters of every probed backend, sorted by be_id (a copy, for a reader on
 * another thread). *out: malloc'd, NULL when none is probed. 0 or -ENOMEM. */
struct sl_hc_count {
	uint32_t be_id;
	uint64_t ok, failed;
};
int sl_health_counts(const struct sl_health *h, struct sl_hc_count **out, size_t *n);
/* The counters of be_id in counts (as sl_health_counts made them); NULL: not probed. */
const struct sl_hc_count *sl_health_count_find(const struct sl_hc_count *counts, size_t n,
					       uint32_t be_id);

#endif /* SLUICE_HEALTH_H */
