// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The registry: its entries, the operations of the control API on them, and the merge with the
 * config file. Its stores (the state file and etcd) are registry_store.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"
#include "registry_int.h"
#include "services.h"

uint64_t sl_registry_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sl_registry_free(struct sl_registry *r)
{
	for (size_t i = 0; i < r->n_svcs; i++)
		free(r->svcs[i].json);
	free(r->svcs);
	free(r->bes);
	free(r->drains);
	memset(r, 0, sizeof(*r));
}

int sl_registry_copy(const struct sl_registry *src, struct sl_registry *dst)
{
	memset(dst, 0, sizeof(*dst));
	if (SL_ENSURE(&dst->svcs, &dst->cap_svcs, src->n_svcs) ||
	    SL_ENSURE(&dst->bes, &dst->cap_bes, src->n_bes) ||
	    SL_ENSURE(&dst->drains, &dst->cap_drains, src->n_drains))
		goto fail;
	for (size_t i = 0; i < src->n_svcs; i++) {
		dst->svcs[i] = src->svcs[i];
		dst->svcs[i].json = strdup(src->svcs[i].json);
		if (!dst->svcs[i].json)
			goto fail;
		dst->n_svcs++;
	}
	if (src->n_bes)
		memcpy(dst->bes, src->bes, src->n_bes * sizeof(*dst->bes));
	dst->n_bes = src->n_bes;
	if (src->n_drains)
		memcpy(dst->drains, src->drains, src->n_drains * sizeof(*dst->drains));
	dst->n_drains = src->n_drains;
	return 0;
fail:
	sl_registry_free(dst);
	return -ENOMEM;
}

json_t *sl_registry_load_object(const char *body, size_t len, struct sl_problem *e)
{
	json_error_t je;
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);

	if (!o) {
		sl_problem_http(e, 400, "", "invalid JSON at line %d column %d: %s", je.line,
				je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		sl_problem_http(e, 400, "", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

static ssize_t find_service(const struct sl_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n_svcs; i++)
		if (!strcmp(r->svcs[i].name, name))
			return (ssize_t)i;
	return -1;
}

static ssize_t find_backend(const struct sl_registry *r, const char *service,
			    const struct sl_sockaddr *a)
{
	for (size_t i = 0; i < r->n_bes; i++)
		if (!strcmp(r->bes[i].service, service) && sl_sockaddr_equal(&r->bes[i].addr, a))
			return (ssize_t)i;
	return -1;
}

const struct sl_reg_backend *sl_registry_find_backend(const struct sl_registry *r,
						      const char *service,
						      const struct sl_sockaddr *addr)
{
	ssize_t i = find_backend(r, service, addr);

	return i < 0 ? NULL : &r->bes[i];
}

const struct sl_reg_service *sl_registry_find_service(const struct sl_registry *r, const char *name)
{
	ssize_t i = find_service(r, name);

	return i < 0 ? NULL : &r->svcs[i];
}

static ssize_t find_drain(const struct sl_registry *r, const char *service,
			  const struct sl_sockaddr *a)
{
	for (size_t i = 0; i < r->n_drains; i++)
		if (!strcmp(r->drains[i].service, service) &&
		    sl_sockaddr_equal(&r->drains[i].addr, a))
			return (ssize_t)i;
	return -1;
}

static int parse_address(const char *s, struct sl_sockaddr *a, struct sl_problem *e,
			 unsigned int status)
{
	const char *why;

	if (sl_parse_hostport(s, a, &why)) {
		sl_problem_http(e, status, "address", "address '%s': %s", s, why);
		return -1;
	}
	return 0;
}

/* Check a service body; on success *json is its normalised text. */
static int check_service(const struct sl_config *agent, const char *name, const char *body,
			 size_t len, char **json, struct sl_problem *e)
{
	struct sl_service_cfg svc;
	struct sl_problems d = {0};
	json_t *o = sl_registry_load_object(body, len, e), *jn;
	char *text;
	int err;

	if (!o)
		return -1;
	jn = json_object_get(o, "name");
	if (jn && (!json_is_string(jn) || strcmp(json_string_value(jn), name))) {
		json_decref(o);
		sl_problem_http(e, 400, "name", "'name' in the body must be '%s', as in the path",
				name);
		return -1;
	}
	json_object_set_new(o, "name", json_string(name));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	err = sl_config_parse_service("body", text, strlen(text), agent, &svc, &d);
	if (err) {
		sl_problem_http(e, 400, d.n ? d.list[0].field : "", "%s",
				d.n ? d.list[0].msg : "invalid service");
		sl_problems_free(&d);
		free(text);
		return -1;
	}
	free(svc.backends);
	*json = text;
	return 0;
}

int sl_registry_put_service(struct sl_registry *r, const struct sl_config *agent, const char *name,
			    const char *body, size_t len, uint8_t origin, struct sl_problem *e)
{
	return sl_reg_put_service_at(r, agent, find_service(r, name), name, body, len, origin, e);
}

int sl_reg_put_service_at(struct sl_registry *r, const struct sl_config *agent, ssize_t i,
			  const char *name, const char *body, size_t len, uint8_t origin,
			  struct sl_problem *e)
{
	char *json;

	if (check_service(agent, name, body, len, &json, e))
		return -1;
	if (i >= 0) {
		free(r->svcs[i].json);
		r->svcs[i].json = json;
		r->svcs[i].origin = origin;
		return 0;
	}
	if (SL_ENSURE(&r->svcs, &r->cap_svcs, r->n_svcs + 1)) {
		free(json);
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	memset(&r->svcs[r->n_svcs], 0, sizeof(r->svcs[0]));
	snprintf(r->svcs[r->n_svcs].name, sizeof(r->svcs[0].name), "%s", name);
	r->svcs[r->n_svcs].json = json;
	r->svcs[r->n_svcs].origin = origin;
	r->n_svcs++;
	return 0;
}

int sl_registry_delete_service(struct sl_registry *r, const char *name, struct sl_problem *e)
{
	ssize_t i = find_service(r, name);
	size_t k = 0;

	if (i < 0) {
		sl_problem_http(e, 404, "name", "no registered service '%s'", name);
		return -1;
	}
	free(r->svcs[i].json);
	r->svcs[i] = r->svcs[--r->n_svcs];
	/* Its registrations and drains go with it. */
	for (size_t j = 0; j < r->n_bes; j++)
		if (strcmp(r->bes[j].service, name))
			r->bes[k++] = r->bes[j];
	r->n_bes = k;
	k = 0;
	for (size_t j = 0; j < r->n_drains; j++)
		if (strcmp(r->drains[j].service, name))
			r->drains[k++] = r->drains[j];
	r->n_drains = k;
	return 0;
}

/* "ttl": a duration string ("30s") or whole seconds. */
static int parse_ttl(json_t *v, uint64_t *ms, struct sl_problem *e)
{
	const char *why;

	*ms = 0;
	if (!v)
		return 0;
	if (json_is_string(v)) {
		if (sl_parse_duration(json_string_value(v), ms, &why)) {
			sl_problem_http(e, 400, "ttl", "ttl '%s': %s", json_string_value(v), why);
			return -1;
		}
	} else if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ms = (uint64_t)json_integer_value(v) * 1000;
	} else {
		sl_problem_http(e, 400, "ttl", "ttl must be a duration such as \"30s\"");
		return -1;
	}
	if (*ms > SL_REG_MAX_TTL_MS) {
		sl_problem_http(e, 400, "ttl", "ttl is longer than 24h");
		return -1;
	}
	return 0;
}

/* "zone": a zone label (services.h); "" or none: no zone. */
static int backend_zone(json_t *v, struct sl_reg_backend *b, struct sl_problem *e)
{
	if (!v || (json_is_string(v) && !json_string_length(v)))
		return 0;
	if (!json_is_string(v)) {
		sl_problem_http(e, 400, "zone", "zone must be a string");
		return -1;
	}
	if (sl_zone_check(json_string_value(v), e))
		return -1;
	snprintf(b->zone, sizeof(b->zone), "%s", json_string_value(v));
	return 0;
}

int sl_registry_backend_from_json(json_t *o, struct sl_reg_backend *b, struct sl_problem *e)
{
	char hp[SL_HOSTPORT_LEN];
	struct sl_sockaddr v4;
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "address") && strcmp(key, "weight") && strcmp(key, "subset") &&
		    strcmp(key, "ttl") && strcmp(key, "service") && strcmp(key, "expires_ms") &&
		    strcmp(key, "identity") && strcmp(key, "zone")) {
			sl_problem_http(e, 400, key, "unknown field '%s'", key);
			return -1;
		}
	}
	v = json_object_get(o, "address");
	if (!json_is_string(v)) {
		sl_problem_http(e, 400, "address",
				v ? "address must be a string \"IP:PORT\""
				  : "'address' is required");
		return -1;
	}
	if (parse_address(json_string_value(v), &b->addr, e, 400))
		return -1;
	if (sl_sockaddr_v4mapped(&b->addr, &v4)) {
		sl_format_hostport(&v4, hp, sizeof(hp));
		sl_problem_http(e, 400, "address",
				"address '%s' is an IPv4-mapped IPv6 address: write it as %s",
				json_string_value(v), hp);
		return -1;
	}
	b->weight = 1;
	v = json_object_get(o, "weight");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000) {
			sl_problem_http(e, 400, "weight", "weight must be an integer 1..1000");
			return -1;
		}
		b->weight = (uint16_t)json_integer_value(v);
	}
	v = json_object_get(o, "subset");
	if (v && json_is_string(v) && !json_string_length(v))
		v = NULL; /* "" is no subset */
	if (v) {
		if (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) >= SLUICE_SUBSET_LEN) {
			sl_problem_http(e, 400, "subset",
					"subset must be a string of 1..%d characters",
					SLUICE_SUBSET_LEN - 1);
			return -1;
		}
		snprintf(b->subset, sizeof(b->subset), "%s", json_string_value(v));
	}
	v = json_object_get(o, "identity");
	if (v) {
		if (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) >= SLUICE_NAME_LEN) {
			sl_problem_http(e, 400, "identity",
					"identity must be the name of an identity");
			return -1;
		}
		snprintf(b->identity, sizeof(b->identity), "%s", json_string_value(v));
	}
	if (backend_zone(json_object_get(o, "zone"), b, e))
		return -1;
	return parse_ttl(json_object_get(o, "ttl"), &b->ttl_ms, e);
}

int sl_registry_register(struct sl_registry *r, const char *service, const char *body, size_t len,
			 uint64_t now_ms, struct sl_problem *e)
{
	struct sl_reg_backend b = {0};
	json_t *o = sl_registry_load_object(body, len, e);
	ssize_t i;

	if (!o)
		return -1;
	if (json_object_get(o, "service") || json_object_get(o, "expires_ms")) {
		json_decref(o);
		sl_problem_http(e, 400, "service", "the service is named by the path only");
		return -1;
	}
	if (sl_registry_backend_from_json(o, &b, e)) {
		json_decref(o);
		return -1;
	}
	json_decref(o);
	snprintf(b.service, sizeof(b.service), "%s", service);
	b.expires_ms = b.ttl_ms ? now_ms + b.ttl_ms : 0;
	b.origin = SL_REG_LOCAL;
	i = find_backend(r, service, &b.addr);
	if (i >= 0) { /* registering again updates it and restarts its TTL */
		r->bes[i] = b;
		return 0;
	}
	if (SL_ENSURE(&r->bes, &r->cap_bes, r->n_bes + 1)) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	r->bes[r->n_bes++] = b;
	return 0;
}

int sl_registry_deregister(struct sl_registry *r, const char *service, const char *address,
			   struct sl_problem *e)
{
	struct sl_sockaddr a;
	ssize_t i, d;

	if (parse_address(address, &a, e, 404))
		return -1;
	i = find_backend(r, service, &a);
	if (i < 0) {
		sl_problem_http(e, 404, "address", "%s is not registered with service '%s'",
				address, service);
		return -1;
	}
	r->bes[i] = r->bes[--r->n_bes];
	d = find_drain(r, service, &a);
	if (d >= 0)
		r->drains[d] = r->drains[--r->n_drains];
	return 0;
}

int sl_registry_heartbeat(struct sl_registry *r, const char *service, const char *address,
			  uint64_t now_ms, struct sl_problem *e)
{
	struct sl_sockaddr a;
	ssize_t i;

	if (parse_address(address, &a, e, 404))
		return -1;
	i = find_backend(r, service, &a);
	if (i < 0) {
		sl_problem_http(e, 404, "address", "%s is not registered with service '%s'",
				address, service);
		return -1;
	}
	if (r->bes[i].ttl_ms)
		r->bes[i].expires_ms = now_ms + r->bes[i].ttl_ms;
	return 0;
}

int sl_registry_drain(struct sl_registry *r, const struct sl_config *eff, const char *service,
		      const char *address, int drain, struct sl_problem *e)
{
	const struct sl_service_cfg *svc = sl_service_find(eff->services, eff->n_services, service);
	struct sl_sockaddr a;
	ssize_t i;

	if (!svc) {
		sl_problem_http(e, 404, "service", "no service '%s'", service);
		return -1;
	}
	if (parse_address(address, &a, e, 404))
		return -1;
	if (!sl_service_backend(svc, &a)) {
		sl_problem_http(e, 404, "address", "%s is not a backend of service '%s'", address,
				service);
		return -1;
	}
	i = find_drain(r, service, &a);
	if (drain && i < 0) {
		if (SL_ENSURE(&r->drains, &r->cap_drains, r->n_drains + 1)) {
			sl_problem_http(e, 500, "", "out of memory");
			return -1;
		}
		memset(&r->drains[r->n_drains], 0, sizeof(r->drains[0]));
		snprintf(r->drains[r->n_drains].service, sizeof(r->drains[0].service), "%s",
			 service);
		r->drains[r->n_drains++].addr = a;
	} else if (!drain && i >= 0) {
		r->drains[i] = r->drains[--r->n_drains];
	}
	return 0;
}

int sl_registry_is_drained(const struct sl_registry *r, const char *service,
			   const struct sl_sockaddr *addr)
{
	return find_drain(r, service, addr) >= 0;
}

size_t sl_registry_expire(struct sl_registry *r, uint64_t now_ms)
{
	size_t k = 0, gone;

	for (size_t i = 0; i < r->n_bes; i++) {
		const struct sl_reg_backend *b = &r->bes[i];

		if (b->origin == SL_REG_LOCAL && b->expires_ms && b->expires_ms <= now_ms)
			continue;
		r->bes[k++] = r->bes[i];
	}
	gone = r->n_bes - k;
	r->n_bes = k;
	return gone;
}

/* Registrations grouped by service, each group in the registry's order (the merge's). */
static int cmp_reg_by_service(const void *x, const void *y)
{
	const struct sl_reg_backend *a = *(const struct sl_reg_backend *const *)x;
	const struct sl_reg_backend *b = *(const struct sl_reg_backend *const *)y;
	int c = strcmp(a->service, b->service);

	if (c)
		return c;
	return a < b ? -1 : a > b;
}

static int cmp_reg_svc_by_name(const void *x, const void *y)
{
	const struct sl_reg_service *a = *(const struct sl_reg_service *const *)x;
	const struct sl_reg_service *b = *(const struct sl_reg_service *const *)y;

	return strcmp(a->name, b->name);
}

/* Does the merge take the two registrations alike? (Their TTLs it does not look at.) */
static int same_in_merge(const struct sl_reg_backend *a, const struct sl_reg_backend *b)
{
	return sl_sockaddr_equal(&a->addr, &b->addr) && a->weight == b->weight &&
	       a->origin == b->origin && !strcmp(a->subset, b->subset) &&
	       !strcmp(a->identity, b->identity) && !strcmp(a->zone, b->zone);
}

/* The registrations of r, grouped (cmp_reg_by_service); NULL when out of memory. */
static const struct sl_reg_backend **regs_grouped(const struct sl_registry *r)
{
	const struct sl_reg_backend **v = calloc(r->n_bes ? r->n_bes : 1, sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < r->n_bes; i++)
		v[i] = &r->bes[i];
	qsort(v, r->n_bes, sizeof(*v), cmp_reg_by_service);
	return v;
}

/* How many of v[i..n) are registrations of v[i]'s service. */
static size_t group_len(const struct sl_reg_backend *const *v, size_t i, size_t n)
{
	size_t k = i + 1;

	while (k < n && !strcmp(v[k]->service, v[i]->service))
		k++;
	return k - i;
}

static int push_name(char (**names)[SLUICE_NAME_LEN], size_t *n, size_t *cap, const char *name)
{
	if (SL_ENSURE(names, cap, *n + 1))
		return -ENOMEM;
	snprintf((*names)[*n], SLUICE_NAME_LEN, "%s", name);
	(*n)++;
	return 0;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(x, y);
}

/* The services whose registrations differ: a group on one side only, or of other lengths or
 * entries. 0 or -ENOMEM. */
static int changed_regs(const struct sl_registry *a, const struct sl_registry *b,
			char (**names)[SLUICE_NAME_LEN], size_t *n, size_t *cap, int *etcd)
{
	const struct sl_reg_backend **va = regs_grouped(a), **vb = regs_grouped(b);
	size_t i = 0, j = 0;
	int err = va && vb ? 0 : -ENOMEM;

	while (!err && (i < a->n_bes || j < b->n_bes)) {
		int c = i == a->n_bes	? 1
			: j == b->n_bes ? -1
					: strcmp(va[i]->service, vb[j]->service);
		size_t la = c <= 0 ? group_len(va, i, a->n_bes) : 0;
		size_t lb = c >= 0 ? group_len(vb, j, b->n_bes) : 0;
		int differs = la != lb;

		for (size_t k = 0; k < la && k < lb && !differs; k++)
			differs = !same_in_merge(va[i + k], vb[j + k]);
		for (size_t k = 0; differs && k < la; k++)
			*etcd |= va[i + k]->origin == SL_REG_ETCD;
		for (size_t k = 0; differs && k < lb; k++)
			*etcd |= vb[j + k]->origin == SL_REG_ETCD;
		if (differs)
			err = push_name(names, n, cap, c <= 0 ? va[i]->service : vb[j]->service);
		i += la;
		j += lb;
	}
	free(va);
	free(vb);
	return err;
}

/* The services put, deleted or changed. 0 or -ENOMEM. */
static int changed_svcs(const struct sl_registry *a, const struct sl_registry *b,
			char (**names)[SLUICE_NAME_LEN], size_t *n, size_t *cap, int *etcd)
{
	const struct sl_reg_service **va = calloc(a->n_svcs + 1, sizeof(*va));
	const struct sl_reg_service **vb = calloc(b->n_svcs + 1, sizeof(*vb));
	size_t i = 0, j = 0;
	int err = va && vb ? 0 : -ENOMEM;

	for (size_t k = 0; !err && k < a->n_svcs; k++)
		va[k] = &a->svcs[k];
	for (size_t k = 0; !err && k < b->n_svcs; k++)
		vb[k] = &b->svcs[k];
	if (!err) {
		qsort(va, a->n_svcs, sizeof(*va), cmp_reg_svc_by_name);
		qsort(vb, b->n_svcs, sizeof(*vb), cmp_reg_svc_by_name);
	}
	while (!err && (i < a->n_svcs || j < b->n_svcs)) {
		int c = i == a->n_svcs ? 1 : j == b->n_svcs ? -1 : strcmp(va[i]->name, vb[j]->name);

		if (c || va[i]->origin != vb[j]->origin || strcmp(va[i]->json, vb[j]->json)) {
			*etcd |= (c <= 0 && va[i]->origin == SL_REG_ETCD) ||
				 (c >= 0 && vb[j]->origin == SL_REG_ETCD);
			err = push_name(names, n, cap, c <= 0 ? va[i]->name : vb[j]->name);
		}
		i += c <= 0;
		j += c >= 0;
	}
	free(va);
	free(vb);
	return err;
}

int sl_registry_changed(const struct sl_registry *a, const struct sl_registry *b,
			char (**names)[SLUICE_NAME_LEN], size_t *n, int *etcd)
{
	size_t cap = 0, k = 0;
	int err;

	*names = NULL;
	*n = 0;
	*etcd = 0;
	err = changed_regs(a, b, names, n, &cap, etcd);
	if (!err)
		err = changed_svcs(a, b, names, n, &cap, etcd);
	if (err) {
		free(*names);
		*names = NULL;
		*n = 0;
		return err;
	}
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), cmp_names);
	for (size_t i = 0; i < *n; i++)
		if (!k || strcmp((*names)[k - 1], (*names)[i]))
			memmove((*names)[k++], (*names)[i], SLUICE_NAME_LEN);
	*n = k;
	return 0;
}
