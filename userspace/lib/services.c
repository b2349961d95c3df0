// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "services.h"

#include <ctype.h>
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

int sl_service_check_address(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			     int family_too, enum sl_svc_src src, struct sl_problem *p)
{
	char hp[SL_HOSTPORT_LEN], hp4[SL_HOSTPORT_LEN];
	struct sl_sockaddr v4;

	sl_format_hostport(addr, hp, sizeof(hp));
	if (sl_sockaddr_v4mapped(addr, &v4)) {
		sl_format_hostport(&v4, hp4, sizeof(hp4));
		sl_problem_http(p, 400, "address",
				"backend %s is an IPv4-mapped IPv6 address: write it as %s", hp,
				hp4);
		return -1;
	}
	if (!family_too || addr->family == svc->frontend.family)
		return 0;
	if (src == SL_SVC_FILE)
		sl_problem_http(p, 400, "address", "backend %s is %s but the frontend is %s", hp,
				family_name(addr->family), family_name(svc->frontend.family));
	else
		sl_problem_http(p, 400, "address",
				"backend %s is not of the family of %s's frontend", hp, svc->name);
	return -1;
}

void sl_service_dup_problem(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			    enum sl_svc_src src, struct sl_problem *p)
{
	char hp[SL_HOSTPORT_LEN];

	sl_format_hostport(addr, hp, sizeof(hp));
	if (src == SL_SVC_FILE)
		sl_problem_http(p, 409, "address", "duplicate backend %s in service '%s'", hp,
				svc->name);
	else
		sl_problem_http(p, 409, "address", "%s is already a backend of service '%s'", hp,
				svc->name);
}

int sl_service_check_backend(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			     int family_too, enum sl_svc_src src, struct sl_problem *p)
{
	if (sl_service_check_address(svc, addr, family_too, src, p))
		return -1;
	if (!sl_service_backend(svc, addr))
		return 0;
	sl_service_dup_problem(svc, addr, src, p);
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

int sl_zone_check(const char *zone, struct sl_problem *p)
{
	size_t len = strlen(zone);
	int ok = len && len < SLUICE_ZONE_LEN && isalnum((unsigned char)zone[0]);

	for (size_t i = 0; ok && i < len; i++)
		ok = isalnum((unsigned char)zone[i]) || strchr("_.-", zone[i]);
	if (ok)
		return 0;
	sl_problem_http(p, 400, "zone",
			"zone '%.*s' must be 1..%d characters of [A-Za-z0-9_.-], starting with a "
			"letter or digit",
			SLUICE_ZONE_LEN * 2, zone, SLUICE_ZONE_LEN - 1);
	return -1;
}

size_t sl_services_backends(const struct sl_service_cfg *svcs, size_t n)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += svcs[i].n_backends;
	return total;
}

/* The ranges a frontend may be in only when agent.frontends lists them. */
static const struct {
	struct sl_cidr c;
	const char *what;
} refused[] = {
    {{.addr.a8 = {127}, .family = SLUICE_AF_INET, .prefix = 8}, "a loopback address"},
    {{.addr.a8 = {169, 254}, .family = SLUICE_AF_INET, .prefix = 16}, "a link-local address"},
    {{.addr.a8 = {0}, .family = SLUICE_AF_INET, .prefix = 32}, "the unspecified address"},
    {{.addr.a8 = {224}, .family = SLUICE_AF_INET, .prefix = 4}, "a multicast address"},
    {{.addr.a8 = {[15] = 1}, .family = SLUICE_AF_INET6, .prefix = 128}, "a loopback address"},
    {{.addr.a8 = {0xfe, 0x80}, .family = SLUICE_AF_INET6, .prefix = 10}, "a link-local address"},
    {{.addr.a8 = {0}, .family = SLUICE_AF_INET6, .prefix = 128}, "the unspecified address"},
    {{.addr.a8 = {0xff}, .family = SLUICE_AF_INET6, .prefix = 8}, "a multicast address"},
};

int sl_frontend_check(const struct sl_agent_cfg *a, const struct sl_sockaddr *fe,
		      struct sl_problem *p)
{
	char hp[SL_HOSTPORT_LEN], other[SL_HOSTPORT_LEN];
	struct sl_sockaddr v4, ep;
	size_t i;

	sl_format_hostport(fe, hp, sizeof(hp));
	if (sl_sockaddr_v4mapped(fe, &v4)) {
		sl_format_hostport(&v4, other, sizeof(other));
		sl_problem_http(p, 400, "frontend",
				"frontend %s is an IPv4-mapped IPv6 address: write it as %s", hp,
				other);
		return -1;
	}
	for (i = 0; i < a->n_etcd; i++)
		if (!sl_url_host_addr(a->etcd_endpoints[i], &ep) && ep.family == fe->family &&
		    !memcmp(ep.addr.a8, fe->addr.a8, sizeof(ep.addr.a8))) {
			sl_problem_http(p, 400, "frontend",
					"frontend %s is the address of etcd endpoint %s", hp,
					a->etcd_endpoints[i]);
			return -1;
		}
	if (a->n_frontends) {
		for (i = 0; i < a->n_frontends; i++)
			if (sl_cidr_contains(&a->frontends[i], fe->family, &fe->addr))
				return 0;
		sl_problem_http(p, 400, "frontend", "frontend %s is outside agent.frontends", hp);
		return -1;
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (!sl_cidr_contains(&refused[i].c, fe->family, &fe->addr))
			continue;
		sl_format_cidr(&refused[i].c, other, sizeof(other));
		sl_problem_http(p, 400, "frontend",
				"frontend %s is %s (%s), which a frontend may be only when "
				"agent.frontends lists it",
				hp, refused[i].what, other);
		return -1;
	}
	return 0;
}

int sl_identity_check(const struct sl_identity_cfg *ids, size_t n, uint8_t id,
		      const struct sl_sockaddr *addr, struct sl_problem *p)
{
	const struct sl_cidr *best_other = NULL;
	int own = -1, other = -1;
	size_t other_id = 0;
	char hp[SL_HOSTPORT_LEN], cidr[SL_HOSTPORT_LEN];

	if (!id || id > n)
		return 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ids[i].n_addrs; j++) {
			const struct sl_cidr *c = &ids[i].addrs[j];

			if (!sl_cidr_contains(c, addr->family, &addr->addr))
				continue;
			if (i + 1 == id && c->prefix > own) {
				own = c->prefix;
			} else if (i + 1 != id && c->prefix > other) {
				other = c->prefix;
				best_other = c;
				other_id = i;
			}
		}
	if (own >= 0 && own >= other)
		return 0;
	sl_format_hostport(addr, hp, sizeof(hp));
	if (own < 0) {
		sl_problem_http(p, 400, "identity",
				"backend %s cannot have identity '%s': no address of '%s' in "
				"identities[].addresses holds it",
				hp, ids[id - 1].name, ids[id - 1].name);
		return -1;
	}
	sl_format_cidr(best_other, cidr, sizeof(cidr));
	sl_problem_http(p, 400, "identity",
			"backend %s cannot have identity '%s': identity '%s' holds it by a longer "
			"prefix (%s)",
			hp, ids[id - 1].name, ids[other_id].name, cidr);
	return -1;
}

void sl_be_users_init(struct sl_be_users *u)
{
	memset(u, 0xff, sizeof(*u)); /* every slot -1 */
}

/* A service of the pair other than svc, or -1. */
static int32_t other_than(const int32_t pair[2], int32_t svc)
{
	if (pair[0] >= 0 && pair[0] != svc)
		return pair[0];
	if (pair[1] >= 0 && pair[1] != svc)
		return pair[1];
	return -1;
}

static void pair_add(int32_t pair[2], int32_t svc)
{
	if (pair[0] == svc || pair[1] == svc)
		return;
	if (pair[0] < 0)
		pair[0] = svc;
	else if (pair[1] < 0)
		pair[1] = svc;
}

int32_t sl_be_users_clash(const struct sl_be_users *u, int32_t svc, int policy, int from_file)
{
	/* A clash: another service has it, one of the two has a policy, and not both are of
	 * the file. */
	if (policy)
		return other_than(from_file ? u->not_file : u->any, svc);
	return other_than(from_file ? u->policy_not_file : u->policy, svc);
}

void sl_be_users_add(struct sl_be_users *u, int32_t svc, int policy, int from_file)
{
	pair_add(u->any, svc);
	if (!from_file)
		pair_add(u->not_file, svc);
	if (policy)
		pair_add(u->policy, svc);
	if (policy && !from_file)
		pair_add(u->policy_not_file, svc);
}

void sl_be_users_problem(const struct sl_service_cfg *svc, const struct sl_sockaddr *addr,
			 const struct sl_service_cfg *other, struct sl_problem *p)
{
	char hp[SL_HOSTPORT_LEN];

	sl_format_hostport(addr, hp, sizeof(hp));
	if (other->policy.on)
		sl_problem_http(p, 409, "address",
				"backend %s (%s) of '%s' is a backend of service '%s' too, whose "
				"policy guards it: only services of the config file may share a "
				"backend with a policy",
				hp, sl_proto_name(svc->proto), svc->name, other->name);
	else
		sl_problem_http(
		    p, 409, "address",
		    "backend %s (%s) of '%s' is a backend of service '%s' too: a service "
		    "with a policy shares its backends only with services of the config "
		    "file",
		    hp, sl_proto_name(svc->proto), svc->name, other->name);
}
