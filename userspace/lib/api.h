/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The control API's requests: method, path and body in, status and JSON
 * out. Every change is tried on a copy of the registry and handed to the
 * agent's commit (merge -> validate -> diff -> apply -> save); a request
 * that fails changes nothing.
 *
 *   GET    /v1/services                              list services
 *   GET    /v1/services/{name}                       one service
 *   PUT    /v1/services/{name}                       the whole service (the YAML schema, as JSON)
 *   DELETE /v1/services/{name}                       remove a service put through the API
 *   POST   /v1/services/{name}/backends              register {address, weight, subset, ttl}
 *   DELETE /v1/services/{name}/backends/{address}    deregister
 *   PUT    /v1/services/{name}/backends/{address}/heartbeat   refresh the TTL
 *   POST   /v1/services/{name}/backends/{address}/drain       no new connections
 *   POST   /v1/services/{name}/backends/{address}/undrain
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stddef.h>

#include "maps.h"
#include "registry.h"

/* Largest request body; more is 413. */
#define SL_API_BODY_MAX (64 * 1024)

/*
 * The kinds of registry change, once: X(name, log text, shared). A shared
 * change (registrations and services) is one that etcd holds when the
 * registry is etcd; drains, expiries and snapshots are local.
 */
/* X(name, log text, shared: goes through etcd when etcd is configured,
 *   durable_first: saved to agent.state before it is applied; a client waits
 *   for it. Expiries and snapshots come from no client: applied first.) */
#define SL_CHANGES(X)                                                                              \
	X(SERVICE_PUT, "service put", 1, 1)                                                        \
	X(SERVICE_DELETED, "service deleted", 1, 1)                                                \
	X(BACKEND_REGISTERED, "backend registered", 1, 1)                                          \
	X(BACKEND_DEREGISTERED, "backend deregistered", 1, 1)                                      \
	X(HEARTBEAT, "heartbeat", 1, 0)                                                            \
	X(BACKEND_DRAINED, "backend drained", 0, 1)                                                \
	X(BACKEND_UNDRAINED, "backend undrained", 0, 1)                                            \
	X(EXPIRED, "registrations expired", 0, 0)                                                  \
	X(ETCD_SNAPSHOT, "etcd snapshot", 0, 0)

enum sl_change {
#define SL_CHANGE_ENUM(name, text, shared, durable) SL_CHANGE_##name,
	SL_CHANGES(SL_CHANGE_ENUM)
#undef SL_CHANGE_ENUM
	    SL_CHANGE__MAX
};

/* For the logs: "backend registered". */
const char *sl_change_name(enum sl_change c);
/* 1 if etcd holds this kind of change when the registry is etcd. */
int sl_change_shared(enum sl_change c);
/* Is it saved to agent.state before it is applied? (See SL_CHANGES.) */
int sl_change_durable_first(enum sl_change c);

struct sl_api {
	void *arg;
	const struct sl_config *(*file)(void *arg);	 /* the config file's services */
	const struct sl_config *(*effective)(void *arg); /* file + registry, applied */
	const struct sl_registry *(*registry)(void *arg);
	/* Make 'next' the registry: 0 (it took 'next' over), 1 (it took it
	 * over, and the change is queued for the shared registry: 202), or -1
	 * with *e (and 'next' still the caller's to free). */
	int (*commit)(void *arg, struct sl_registry *next, enum sl_change what,
		      struct sl_problem *e);
	const struct sl_maps *maps; /* for states and counters; may be NULL */
	/* The maps' state the caller keeps, exactly what a read returns, or NULL (then GET reads
	 * the maps); may be NULL itself. */
	const struct sl_state *(*state)(void *arg);
};

/* Handle one request. *out is a malloc'd JSON document (with a newline). */
void sl_api_handle(const struct sl_api *api, const char *method, const char *url, const char *body,
		   size_t len, unsigned int *status, char **out);

#endif /* SLUICE_API_H */
