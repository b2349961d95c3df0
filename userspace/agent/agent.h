/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluiced's state, struct agent, and what its parts call of each other:
 * main.c (options, --check, --teardown, start), apply.c (config file ->
 * maps), registry_sync.c (the API and etcd registry), backends.c (probes,
 * drains, ejections), telemetry.c (events and metrics), loop.c (the epoll
 * loop). Internal to the agent.
 */
#ifndef SLUICE_AGENT_AGENT_H
#define SLUICE_AGENT_AGENT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <bpf/libbpf.h>

#include "api.h"
#include "config.h"
#include "datapath.h"
#include "etcd.h"
#include "health.h"
#include "http.h"
#include "identity.h"
#include "loop.h"
#include "mtls.h"
#include "problem.h"
#include "registry.h"
#include "tc.h"

/* A backend retired from the maps, deleted after a grace period. */
struct retired {
	uint32_t id;
	uint64_t since_ms;
};

/* A backend of a service with outlier detection, whose ejections the agent
 * logs: the datapath ejects on its own. */
struct watched {
	uint32_t be_id;
	char service[SLUICE_NAME_LEN];
	char addr[SL_HOSTPORT_LEN];
	uint64_t until_ns; /* the ejection last logged */
	int over;	   /* ... and its end logged */
};

/* sluice_sockets_closed_total: sockets closed on dead backends. */
struct closed_count {
	char service[SLUICE_NAME_LEN];
	uint8_t proto;
	uint64_t n;
};

/* Why sockets on a backend are closed (sockclose.c). No UDP backend is
 * ever ejected: outlier_detection is for TCP services only. */
enum agent_close_why {
	AGENT_CLOSE_REMOVED,   /* UDP, and TCP with close_on_removal */
	AGENT_CLOSE_UNHEALTHY, /* UDP */
};

/* A probed backend, for logs and events. */
struct probed {
	uint32_t be_id;
	uint32_t svc_id;
	char service[SLUICE_NAME_LEN];
	char addr[SL_HOSTPORT_LEN];
	struct sl_sockaddr sa;
};

/* Where an applied change came from (sluice_config_apply_seconds). */
enum agent_apply_src {
	AGENT_APPLY_FILE,
	AGENT_APPLY_API,
	AGENT_APPLY_ETCD,
	AGENT_APPLY_EXPIRY,
	AGENT_APPLY__MAX,
};

/* The loop's sources, one each. */
struct agent_srcs {
	struct sl_loop_src sig, ino, tick, debounce, events, tc, health, etcd;
};

struct agent {
	const char *config_path;
	char config_dir[4096];
	char config_base[256];
	struct sl_config cfg; /* the config file applied last */
	char *cfg_text;	      /* its bytes (the watcher skips a file that still has them) */
	size_t cfg_len;
	struct sl_registry reg; /* API registrations and drains */
	struct sl_config eff;	/* cfg merged with reg: what the maps hold */
	int reg_dirty;		/* reg changed (heartbeats) and is not saved yet */
	/* API changes taken in one run of the API listener (a group commit): each is checked
	 * and merged as it comes, against the ones before it, then all are saved and applied at
	 * once by agent_api_flush, and only then answered. on: reg and eff are the registry and
	 * its merge with all of them; joined: the request being handled is one of them. */
	struct {
		int on, joined, taking;
		enum sl_change what; /* of its changes (a client's: durable first) */
		struct sl_registry reg;
		struct sl_config eff;
		uint64_t *starts; /* when each arrived (sluice_config_apply_seconds) */
		size_t n, cap;
	} batch;
	uint64_t state_save_failures; /* agent.state writes that failed */
	struct sl_dp dp;
	struct sl_loop loop;
	struct agent_srcs src;
	int sigfd, inofd, tickfd, debouncefd;
	struct retired *retired;
	size_t n_retired, cap_retired;
	uint64_t reloads_ok, reloads_err;
	/* sluice_config_apply_seconds: changes applied, by where they came from */
	struct sluice_hist apply_hist[AGENT_APPLY__MAX];
	/* The last apply's counts, logged as "config applied" once its follow-up work (health
	 * checks, identities) is done too: agent_log_applied. */
	size_t applied_add, applied_update, applied_remove, applied_services;
	int applied_pending;
	/* The maps' services as the last apply left them (sl_maps_state_after: the state
	 * agent_reconcile planned against, with the services its plan touched read again),
	 * kept between changes: the next agent_reconcile plans against it instead of reading
	 * every map, agent_sync_backends and agent_sync_identities (service ids only) take it.
	 * Whoever writes what it holds keeps it in step: agent_sync_backends and
	 * agent_on_health_change (backend states), agent_reap (dead ids); the datapath writes
	 * none of it. Any failure drops it (agent_drop_state): the next change reads the maps.
	 * SLUICE_VERIFY_STATE=1 compares it with a read on every change (apply.c).
	 * have_applied_st 0: none. */
	struct sl_state applied_st;
	int have_applied_st;
	struct sl_http *http;
	struct ring_buffer *events;
	struct sl_tc *tc;
	struct sl_health *health;
	struct sl_ident ident;
	int ident_on;
	struct sl_etcd *etcd;  /* registry.etcd; NULL without */
	uint64_t etcd_node_ms; /* when this node's key (nodes/<agent.node>) was last kept alive */
	struct probed *probed; /* sorted by be_id, as watched */
	size_t n_probed;
	struct watched *watched;
	size_t n_watched;
	int events_on;		 /* what sluice_settings.events says: -1 unknown */
	unsigned ring_left;	 /* records this wakeup may still take */
	struct agent_mtls *mtls; /* mtls: (mtls.c); NULL without */
	/* tracing: (tracing.c); NULL without */
	struct agent_tracing *tracing;
	struct closed_count *closed;
	size_t n_closed, cap_closed;
};

/* Ring buffer records served per wakeup of the loop; the callback returns
 * AGENT_RING_SPENT to stop ring_buffer__consume() when they are taken. */
#define AGENT_RING_BUDGET 512
#define AGENT_RING_SPENT  (-EAGAIN)

uint64_t agent_now_ms(void);

/* apply.c: the config file and the registry into the maps. */
void agent_print_problems(const struct sl_problems *d, int to_log);
int agent_resolve_cgroup(struct sl_config *cfg);
int agent_track_retired(struct agent *a, const uint32_t *ids, size_t n);
void agent_reap(struct agent *a);
int agent_reconcile(struct agent *a, const struct sl_config *cfg);
/* The same for a change known to touch the services only[0..n_only) alone
 * (sl_registry_changed; only NULL: every service). */
int agent_reconcile_only(struct agent *a, const struct sl_config *cfg,
			 const char (*only)[SLUICE_NAME_LEN], size_t n_only);
void agent_reload(struct agent *a, const char *why);
void agent_log_applied(struct agent *a);
/* A change of src taken up at start_ns (sl_mono_ns) is applied: into sluice_config_apply_seconds.
 */
void agent_observe_apply(struct agent *a, enum agent_apply_src src, uint64_t start_ns);
/* Forget the kept state (applied_st): the next change reads the maps. */
void agent_drop_state(struct agent *a);
/* The kept state for a reader between changes (the API's GETs), checked as agent_reconcile
 * checks it under SLUICE_VERIFY_STATE=1; NULL: none, read the maps. */
const struct sl_state *agent_kept_state(struct agent *a);
void agent_sync_identities(struct agent *a);

/* registry_sync.c: API changes, TTLs and the etcd registry. */
void agent_registry_save(struct agent *a);
int agent_registry_commit(struct agent *a, struct sl_registry *next, enum sl_change what,
			  struct sl_problem *e);
int agent_load_registry(struct agent *a);
int agent_start_etcd(struct agent *a);
void agent_on_etcd(void *arg);
void agent_registry_tick(struct agent *a);
void agent_on_api_request(void *ctx, const char *method, const char *url, const char *body,
			  size_t len, unsigned int *status, char **out);
void agent_batch_free(struct agent *a);
/* Did the request just handled join the batch (its answer waits for agent_api_flush)? */
int agent_api_joined(void *ctx);
/* Save and apply the batch. 0, or -1 with the answer for each of its requests. */
int agent_api_flush(void *ctx, unsigned int *status, char **out);

/* backends.c: probes, drains and ejections follow the effective config. */
int agent_sync_backends(struct agent *a, const struct sl_config *cfg);
void agent_on_health_change(void *arg, uint32_t be_id, int healthy, const char *why);
void agent_watch_ejections(struct agent *a);
void agent_close_sockets(struct agent *a, const struct sl_config *cfg, const struct sl_state *st,
			 const uint32_t *be_ids, size_t n, enum agent_close_why why);
void agent_render_sockets_closed(struct agent *a, struct sl_prom *p);
void agent_backends_free(struct agent *a);

/* telemetry.c: datapath events to the monitors, and the metrics page. */
void agent_publish_event(struct agent *a, const struct sluice_event *ev, const char *service);
int agent_on_ring_event(void *ctx, void *data, size_t len);
void agent_sync_event_switch(struct agent *a);
/* /metrics in two parts (see http.h): the maps' part from a snapshot taken on the loop
 * (agent_metrics_snapshot: NULL with -errno in *err) and rendered on the render thread, then
 * dropped on the loop; the live part, the agent's own counters, on the loop. */
void *agent_metrics_snapshot(void *ctx, int *err);
int agent_metrics_render(void *snap, struct sl_prom *p);
void agent_metrics_drop(void *snap);
int agent_render_live(void *ctx, struct sl_prom *p);

/* tracing.c: traced connections' records to the OTLP exporter. start: after the capability
 * drop, with the loop open (0 or -errno, logged); sync: the datapath's settings after a
 * reload; stop: at exit, a bounded flush; render: the sluice_spans_* metrics. */
int agent_tracing_start(struct agent *a);
void agent_tracing_sync(struct agent *a);
void agent_tracing_stop(struct agent *a);
void agent_tracing_render(struct agent *a, struct sl_prom *p);

#endif /* SLUICE_AGENT_AGENT_H */
