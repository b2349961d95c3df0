// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "services.h"

#include <string.h>

struct sl_service_cfg *sl_service_find(const struct sl_service_cfg *svcs, size_t n,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(svcs[i].name, name))
			return (struct sl_service_cfg *)&svcs[i];
	return NULL;
}

struct sl_service_cfg *sl_service_frontend_user(const struct sl_service_cfg *svcs, size_t n,
						const struct sl_service_cfg *svc)
{
	for (size_t i = 0; i < n; i++)
		if (&svcs[i] != svc && strcmp(svcs[i].name, svc->name) &&
		    svcs[i].proto == svc->proto &&
		    sl_sockaddr_equal(&svcs[i].frontend, &svc->frontend))
			return (struct sl_service_cfg *)&svcs[i];
	return NULL;
}

struct sl_backend_cfg *sl_service_backend(const struct sl_service_cfg *svc,
					  const struct sl_sockaddr *addr)
{
	for (size_t i = 0; i < svc->n_backends; i++)
		if (sl_sockaddr_equal(&svc->backends[i].addr, addr))
			return &svc->backends[i];
	return NULL;
}

uint8_t sl_identity_id(const struct sl_identity_cfg *ids, size_t n, const char *name)
{
	for (size_t i = 0; i < n && i < SL_MAX_IDENTITIES; i++)
		if (!strcmp(ids[i].name, name))
			return (uint8_t)(i + 1);
	return 0;
}

int sl_services_check_name(const struct sl_service_cfg *svcs, size_t n, const char *name,
			   enum sl_svc_src src, struct sl_problem *p)
{
	if (!sl_service_find(svcs, n, name))
		return 0;
	if (src == SL_SVC_FILE)
		sl_problem_http(p, 409, "name", "duplicate service name '%s'", name);
	else
		sl_problem_http(p, 409, "name",
				"service '%s' is defined in the config file and registered "
				"through the API",
				name);
	return -1;
}

int sl_services_check_frontend(const struct sl_service_cfg *svcs, size_t n,
			       const struct sl_service_cfg *svc, enum sl_svc_src src,
			       struct sl_problem *p)
{
	const struct sl_service_cfg *o = sl_service_frontend_user(svcs, n, svc);
	char hp[SL_HOSTPORT_LEN];

	if (!o)
		return 0;
	if (src == SL_SVC_FILE) {
		sl_problem_http(p, 409, "frontend",
				"frontend of '%s' is already used by service '%s' (%s)", svc->name,
				o->name, sl_proto_name(svc->proto));
	} else {
		sl_format_hostport(&svc->frontend, hp, sizeof(hp));
		sl_problem_http(p, 409, "frontend",
				"frontend %s of '%s' is already used by service '%s'", hp,
				svc->name, o->name);
	}
	return -1;
}

int sl_service_check_room(const char *name, size_t n, enum sl_svc_src src, struct sl_problem *p)
{
	if (n <= SLUICE_MAX_BACKENDS_PER_SERVICE)
		return 0;
	if (src == SL_SVC_FILE)
		sl_problem_http(p, 400, "address",
				"service '%s' has %zu backends, more than the %d a service holds",
				name, n, SLUICE_MAX_BACKENDS_PER_SERVICE);
	else
		sl_problem_http(p, 400, "address", "service '%s' already has %d backends", name,
				SLUICE_MAX_BACKENDS_PER_SERVICE);
	return -1;
}

static const char *family_name(uint8_t family)
{
	return family == SLUICE_AF_INET ? "IPv4" : "IPv6";
}

int sl_service_check_backend(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			     int family_too, enum sl_svc_src src, struct sl_problem *p)
{
	char hp[SL_HOSTPORT_LEN];

	sl_format_hostport(addr, hp, sizeof(hp));
	if (family_too && addr->family != svc->frontend.family) {
		if (src == SL_SVC_FILE)
			sl_problem_http(
			    p, 400, "address", "backend %s is %s but the frontend is %s", hp,
			    family_name(addr->family), family_name(svc->frontend.family));
		else
			sl_problem_http(p, 400, "address",
					"backend %s is not of the family of %s's frontend", hp,
					svc->name);
		return -1;
	}
	if (!sl_service_backend(svc, addr))
		return 0;
	if (src == SL_SVC_FILE)
		sl_problem_http(p, 409, "address", "duplicate backend %s in service '%s'", hp,
				svc->name);
	else
		sl_problem_http(p, 409, "address", "%s is already a backend of service '%s'", hp,
				svc->name);
	return -1;
}

int sl_services_check_limits(const struct sl_limits *l, size_t n_services, size_t n_backends,
			     const char *adding, struct sl_problem *p)
{
	if (n_services > l->services) {
		if (adding)
			sl_problem_http(p, 400, "",
					"service '%s' is one more than agent.limits.services (%u) "
					"holds",
					adding, l->services);
		else
			sl_problem_http(p, 400, "",
					"%zu services, more than agent.limits.services (%u)",
					n_services, l->services);
		return -1;
	}
	if (n_backends > l->backends) {
		if (adding)
			sl_problem_http(p, 400, "",
					"service '%s' brings the backends to %zu, more than "
					"agent.limits.backends (%u)",
					adding, n_backends, l->backends);
		else
			sl_problem_http(p, 400, "",
					"%zu backends, more than agent.limits.backends (%u)",
					n_backends, l->backends);
		return -1;
	}
	return 0;
}

size_t sl_services_backends(const struct sl_service_cfg *svcs, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += svcs[i].n_backends;
	return total;
}
