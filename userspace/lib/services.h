/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rules a set of services obeys, in one place for the config file (config_services.c) and
 * for the file merged with the registry (registry.c): a name per service, one service per
 * frontend and protocol, backends of the frontend's family, each backend address once per
 * service and at most SLUICE_MAX_BACKENDS_PER_SERVICE of them, and the map capacities of
 * agent.limits (README "Configuration" and "Registry and control API").
 *
 * The checks fill a struct sl_problem: HTTP status, the key at fault (relative to the
 * service: "name", "frontend", "address"; "" for the limits) and the message. A set read
 * from the file and one merged with the registry break the same rules, but their messages
 * differ: the file's point at a line, so they name the service; the API's have no line, so
 * they name the address and whom it clashes with.
 */
#ifndef SLUICE_SERVICES_H
#define SLUICE_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "problem.h"

/* Where the set being checked comes from: the wording of its problems. */
enum sl_svc_src {
	SL_SVC_FILE = 0,     /* the config file alone */
	SL_SVC_REGISTRY = 1, /* the file with the registry's services and backends merged in */
};

/* The service named 'name' in svcs[0..n), or NULL. */
struct sl_service_cfg *sl_service_find(const struct sl_service_cfg *svcs, size_t n,
				       const char *name);

/* The service of svcs[0..n) that has svc's frontend and protocol, or NULL. svc itself, or a
 * service of its name, is svc: its name is checked apart (sl_services_check_name). */
struct sl_service_cfg *sl_service_frontend_user(const struct sl_service_cfg *svcs, size_t n,
						const struct sl_service_cfg *svc);

/* The backend of svc at 'addr', or NULL. */
struct sl_backend_cfg *sl_service_backend(const struct sl_service_cfg *svc,
					  const struct sl_sockaddr *addr);

/* The id of the identity named 'name' (its index + 1), or 0 when there is none. */
uint8_t sl_identity_id(const struct sl_identity_cfg *ids, size_t n, const char *name);

/* A service named 'name' may join svcs[0..n): none of them has its name. 0, or -1 with *p
 * (409, "name"). */
int sl_services_check_name(const struct sl_service_cfg *svcs, size_t n, const char *name,
			   enum sl_svc_src src, struct sl_problem *p);

/* svc may join svcs[0..n): no other service has its frontend and protocol. 0, or -1 with *p
 * (409, "frontend"). */
int sl_services_check_frontend(const struct sl_service_cfg *svcs, size_t n,
			       const struct sl_service_cfg *svc, enum sl_svc_src src,
			       struct sl_problem *p);

/* A service named 'name' may have n backends. 0, or -1 with *p (400, "address"). */
int sl_service_check_room(const char *name, size_t n, enum sl_svc_src src, struct sl_problem *p);

/* 'addr' may be a backend of svc: not IPv4-mapped, of its frontend's family (family_too; 0
 * when the frontend is not known) and not one yet. 0, or -1 with *p (400 or 409, "address"). */
int sl_service_check_backend(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			     int family_too, enum sl_svc_src src, struct sl_problem *p);
/* The same but the last: the caller knows whether it is one yet (an index), and tells it
 * with sl_service_dup_problem. */
int sl_service_check_address(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			     int family_too, enum sl_svc_src src, struct sl_problem *p);
void sl_service_dup_problem(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			    enum sl_svc_src src, struct sl_problem *p);

/* n_services services with n_backends backends in all fit agent.limits 'l'. 'adding' is the
 * service that brings the counts there, named in the message; NULL when a whole set is
 * counted. 0, or -1 with *p (400, ""). */
int sl_services_check_limits(const struct sl_limits *l, size_t n_services, size_t n_backends,
			     const char *adding, struct sl_problem *p);

/* A zone label (a backend's zone, agent.zone): 1..SLUICE_ZONE_LEN - 1 characters of
 * [A-Za-z0-9_.-], starting with a letter or digit. 0, or -1 with *p (400, "zone"). */
int sl_zone_check(const char *zone, struct sl_problem *p);

/* The backends of svcs[0..n) together. */
size_t sl_services_backends(const struct sl_service_cfg *svcs, size_t n);

/*
 * fe may be a frontend under agent settings a (sluice.yaml(5) "frontend"): never IPv4-mapped,
 * never the address of an etcd endpoint, and inside agent.frontends, or, with none, outside
 * the refused ranges: loopback, link-local, unspecified and multicast. 0, or -1 with *p (400,
 * "frontend").
 */
int sl_frontend_check(const struct sl_agent_cfg *a, const struct sl_sockaddr *fe,
		      struct sl_problem *p);

/* A backend at addr may be labelled identity 'id' (1-based) of ids[0..n): a CIDR of that
 * identity holds addr, and no other identity's holds it by a longer prefix. Otherwise the
 * label's host entry in the ipcache would beat the configured CIDRs. 0, or -1 with *p (400,
 * "identity"). */
int sl_identity_check(const struct sl_identity_cfg *ids, size_t n, uint8_t id,
		      const struct sl_sockaddr *addr, struct sl_problem *p);

/*
 * Who has a backend address:port of a protocol: the key of the server-side policy map,
 * sluice_policy_backends, where the agent writes the service with a policy that has that
 * backend (the last one applied wins). So a backend of a service with a policy may be a
 * backend of another service only when both come from the config file, whose author sees
 * both (README "Identity and access policy"). Services are indices; for each kind of user
 * two different ones are kept, enough to name one that is not a given service.
 */
struct sl_be_users {
	int32_t any[2];		    /* services that have it, -1: none */
	int32_t not_file[2];	    /* ... by a registration or a service not of the file */
	int32_t policy[2];	    /* services with a policy that have it */
	int32_t policy_not_file[2]; /* ... not of the file */
};

void sl_be_users_init(struct sl_be_users *u);
/* The service that a backend of service svc (with a policy or not, of the file or not) would
 * share it with against the rule, or -1. */
int32_t sl_be_users_clash(const struct sl_be_users *u, int32_t svc, int policy, int from_file);
void sl_be_users_add(struct sl_be_users *u, int32_t svc, int policy, int from_file);
/* The problem of that clash, backend addr of svc against other: 409, "address". */
void sl_be_users_problem(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			 const struct sl_service_cfg *other, struct sl_problem *p);

#endif /* SLUICE_SERVICES_H */
