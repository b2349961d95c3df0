/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service registry: what the control API (and etcd) add to the config
 * file. Services put whole, backends registered (with a TTL or without),
 * and drains. The effective config is the file's merged with it, checked
 * by the same rules; every change goes validate -> diff -> apply.
 *
 * Pure data and JSON: no syscalls but the state file's load and save.
 */
#ifndef SLUICE_REGISTRY_H
#define SLUICE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

/* Where a registration comes from. */
enum sl_reg_origin {
	SL_REG_LOCAL = 0, /* this node's API: kept in agent.state */
	SL_REG_ETCD = 1,  /* the shared registry: kept in etcd */
};

struct sl_reg_backend {
	char service[SLUICE_NAME_LEN];
	struct sl_sockaddr addr;
	uint16_t weight;
	char subset[SLUICE_SUBSET_LEN];
	uint64_t ttl_ms;		/* 0: none */
	uint64_t expires_ms;		/* CLOCK_REALTIME ms; 0: never */
	uint8_t origin;			/* enum sl_reg_origin */
	char identity[SLUICE_NAME_LEN]; /* the identity its address has; "" = none */
	char zone[SLUICE_ZONE_LEN];	/* its zone (locality); "" = none */
};

struct sl_reg_service {
	char name[SLUICE_NAME_LEN];
	char *json; /* the service, compact JSON, as checked */
	uint8_t origin;
};

struct sl_reg_drain {
	char service[SLUICE_NAME_LEN];
	struct sl_sockaddr addr;
};

/* Arrays of n_* entries in cap_* allocated (SL_ENSURE). */
struct sl_registry {
	struct sl_reg_service *svcs;
	size_t n_svcs, cap_svcs;
	struct sl_reg_backend *bes;
	size_t n_bes, cap_bes;
	struct sl_reg_drain *drains;
	size_t n_drains, cap_drains;
};

void sl_registry_free(struct sl_registry *r);
int sl_registry_copy(const struct sl_registry *src, struct sl_registry *dst);

/* The keys of an etcd snapshot left out, each with why, for the log: the first
 * SL_REG_SKIPS_KEPT of them, and how many in all. */
#define SL_REG_SKIPS_KEPT 100
struct sl_reg_skip {
	char key[256];
	char why[384];
};
struct sl_reg_skips {
	struct sl_reg_skip *v;
	size_t n, cap;
	size_t total;
};
void sl_reg_skips_free(struct sl_reg_skips *s);

/*
 * The effective config: a copy of 'file' with the registry's services and backends added,
 * each checked by the rules of the file's (services.h): names, frontends (agent.frontends and
 * the refused ranges), backends, identity labels inside their identity's CIDRs, no backend
 * policy taken over, agent.limits. In order: the etcd entries (services, then registrations),
 * then the local ones (the API's), so a request is checked against what etcd already has.
 *
 * A local entry that breaks a rule fails the merge: 0, or -1 with *e (400/404/409) and *out
 * empty. An etcd entry that breaks one is left out on its own, and the rest applies (one bad
 * key never stops a node); sl_registry_merge_skips also lists them in *skips (keys under
 * file->agent.etcd_prefix).
 */
int sl_registry_merge(const struct sl_config *file, const struct sl_registry *r,
		      struct sl_config *out, struct sl_problem *e);
int sl_registry_merge_skips(const struct sl_config *file, const struct sl_registry *r,
			    struct sl_config *out, struct sl_reg_skips *skips,
			    struct sl_problem *e);

/* Operations. Each checks what it can alone; the merge checks the rest.
 * 0, or -1 with *e. */
int sl_registry_put_service(struct sl_registry *r, const struct sl_config *agent, const char *name,
			    const char *body, size_t len, uint8_t origin, struct sl_problem *e);
int sl_registry_delete_service(struct sl_registry *r, const char *name, struct sl_problem *e);
/* body: {"address": "IP:PORT", "weight": N, "subset": "S", "ttl": "30s",
 * "identity": "NAME", "zone": "Z"} */
int sl_registry_register(struct sl_registry *r, const char *service, const char *body, size_t len,
			 uint64_t now_ms, struct sl_problem *e);
int sl_registry_deregister(struct sl_registry *r, const char *service, const char *address,
			   struct sl_problem *e);
int sl_registry_heartbeat(struct sl_registry *r, const char *service, const char *address,
			  uint64_t now_ms, struct sl_problem *e);
/* Drain or undrain a backend of the effective config 'eff'. */
int sl_registry_drain(struct sl_registry *r, const struct sl_config *eff, const char *service,
		      const char *address, int drain, struct sl_problem *e);
/* A registration, a service put through the API; NULL when there is none. */
const struct sl_reg_backend *sl_registry_find_backend(const struct sl_registry *r,
						      const char *service,
						      const struct sl_sockaddr *addr);
const struct sl_reg_service *sl_registry_find_service(const struct sl_registry *r,
						      const char *name);
int sl_registry_is_drained(const struct sl_registry *r, const char *service,
			   const struct sl_sockaddr *addr);

/* The services whose registry entries differ between a and b, for the merge: a service put,
 * changed or deleted; a registration added, removed, moved or changed in what the merge takes
 * (address, weight, subset, identity, zone, origin; not its TTL). Sorted, each once, in *names
 * (malloc'd, *n of them); *etcd set when an etcd entry is among them. Drains are not looked
 * at. 0 or -ENOMEM.
 *
 * When *etcd is 0, the effective configs of a and b (sl_registry_merge, with the same file)
 * differ in these services alone: the etcd entries, merged first, are the same, and any local
 * entry that broke a rule would have failed the merge. An etcd entry may be left out because
 * of another (agent.limits), so with *etcd set any service may differ. */
int sl_registry_changed(const struct sl_registry *a, const struct sl_registry *b,
			char (**names)[SLUICE_NAME_LEN], size_t *n, int *etcd);

/* A JSON object from a request body or a stored value: NULL with *e (400) when the text is
 * not JSON or not an object. */
json_t *sl_registry_load_object(const char *body, size_t len, struct sl_problem *e);
/* A registration's fields from a JSON object (address, weight, subset, identity, zone, ttl; service
 * and expires_ms are allowed and left to the caller). 0, or -1 with *e naming the field. */
int sl_registry_backend_from_json(json_t *o, struct sl_reg_backend *b, struct sl_problem *e);

/* Drop registrations whose TTL passed; how many. */
size_t sl_registry_expire(struct sl_registry *r, uint64_t now_ms);

/*
 * The shared registry in etcd. Under 'prefix':
 *   services/<name>              a service, the same JSON as PUT /v1/services/<name>
 *   backends/<service>/<address> {"address": "IP:PORT", "weight": N, "subset": "S",
 *                                "identity": "NAME", "zone": "Z"} (the same address as the key's),
 *                                attached to a lease when registered with a TTL
 * Replace every etcd-origin entry of r with those of a snapshot (keys and values and lease
 * ids in parallel arrays; a registration with a lease has ttl_ms 1: "some TTL, kept by
 * etcd"). A key that does not check out alone (or is registered here too, or twice) is
 * skipped and listed in *skips; the checks between keys and the file are the merge's. Keys
 * are indexed: n log n. A snapshot of more than SL_ETCD_MAX_KEYS keys is refused whole: -1
 * with *e, r unchanged (the previous snapshot keeps serving); else 0.
 */
#define SL_ETCD_MAX_KEYS 200000
int sl_registry_etcd_load(struct sl_registry *r, const char *prefix, const char *const *keys,
			  const char *const *values, const int64_t *leases, size_t n,
			  const struct sl_config *agent, struct sl_reg_skips *skips,
			  struct sl_problem *e);
/* The same, returning how many keys were skipped (all n when refused whole) and the first
 * reason in *e. */
size_t sl_registry_from_etcd(struct sl_registry *r, const char *prefix, const char *const *keys,
			     const char *const *values, const int64_t *leases, size_t n,
			     const struct sl_config *agent, struct sl_problem *e);

/* The etcd key and value of a registration or a service (malloc'd; NULL
 * when out of memory). */
char *sl_registry_backend_key(const char *prefix, const struct sl_reg_backend *b);
char *sl_registry_backend_value(const struct sl_reg_backend *b);
char *sl_registry_service_key(const char *prefix, const char *name);
/* This node in etcd: <prefix>nodes/<node>, {"node": N, "zone": Z, "version": V}, on a lease
 * the agent keeps alive. The snapshot loader leaves nodes/ keys alone. */
char *sl_registry_node_key(const char *prefix, const char *node);
char *sl_registry_node_value(const char *node, const char *zone, const char *version);

/* CLOCK_REALTIME in ms: TTLs outlive the agent. */
uint64_t sl_registry_now_ms(void);

/* As JSON, and back: the local entries, and the last etcd snapshot as a
 * cache (marked with their origin) so that a restart while etcd is away
 * still serves it. from_json keeps every entry that checks out and reports
 * the first that does not (an expires_ms that is negative, or far beyond now
 * and its TTL, or a TTL without one, included). */
json_t *sl_registry_to_json(const struct sl_registry *r);
int sl_registry_from_json(const json_t *o, const struct sl_config *agent, struct sl_registry *r,
			  struct sl_problem *e);

/* agent.state/registry.json: written whole to a temporary file, synced and
 * renamed over the old one (mode 0600, directory 0700). A missing file
 * loads as empty. 0 or -1 with *e. */
int sl_registry_save(const struct sl_registry *r, const char *dir, struct sl_problem *e);
int sl_registry_load(const char *dir, const struct sl_config *agent, struct sl_registry *r,
		     struct sl_problem *e);

#endif /* SLUICE_REGISTRY_H */
