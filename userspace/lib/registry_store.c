// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The registry's two stores: agent.state/registry.json (the local entries, and a copy of the
 * last etcd snapshot) and the shared registry in etcd (registry.h). */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "registry_int.h"

#define STATE_FILE "registry.json"

json_t *sl_registry_to_json(const struct sl_registry *r)
{
	json_t *o = json_object(), *svcs = json_array(), *bes = json_array(),
	       *drains = json_array();
	char hp[SL_HOSTPORT_LEN];

	if (!o || !svcs || !bes || !drains) {
		json_decref(o);
		json_decref(svcs);
		json_decref(bes);
		json_decref(drains);
		return NULL;
	}
	for (size_t i = 0; i < r->n_svcs; i++) {
		json_t *s = json_loads(r->svcs[i].json, 0, NULL);

		if (s && r->svcs[i].origin == SL_REG_ETCD)
			json_object_set_new(s, "x-sluice-origin", json_string("etcd"));
		if (s)
			json_array_append_new(svcs, s);
	}
	for (size_t i = 0; i < r->n_bes; i++) {
		const struct sl_reg_backend *b = &r->bes[i];

		json_t *jb;

		sl_format_hostport(&b->addr, hp, sizeof(hp));
		jb = json_pack("{s:s, s:s, s:i}", "service", b->service, "address", hp, "weight",
			       (int)b->weight);
		if (!jb)
			continue;
		if (b->subset[0])
			json_object_set_new(jb, "subset", json_string(b->subset));
		if (b->identity[0])
			json_object_set_new(jb, "identity", json_string(b->identity));
		if (b->zone[0])
			json_object_set_new(jb, "zone", json_string(b->zone));
		if (b->origin == SL_REG_ETCD)
			json_object_set_new(jb, "origin", json_string("etcd"));
		if (b->ttl_ms) {
			char ttl[32];

			snprintf(ttl, sizeof(ttl), "%llums", (unsigned long long)b->ttl_ms);
			json_object_set_new(jb, "ttl", json_string(ttl));
			json_object_set_new(jb, "expires_ms",
					    json_integer((json_int_t)b->expires_ms));
		}
		json_array_append_new(bes, jb);
	}
	for (size_t i = 0; i < r->n_drains; i++) {
		sl_format_hostport(&r->drains[i].addr, hp, sizeof(hp));
		json_array_append_new(drains, json_pack("{s:s, s:s}", "service",
							r->drains[i].service, "address", hp));
	}
	json_object_set_new(o, "version", json_integer(1));
	json_object_set_new(o, "services", svcs);
	json_object_set_new(o, "backends", bes);
	json_object_set_new(o, "drains", drains);
	return o;
}

/* A saved service's name and index, for loading many without a search each. */
struct saved_name {
	char name[SLUICE_NAME_LEN];
	ssize_t at;
};

static int cmp_saved(const void *a, const void *b)
{
	return strcmp(((const struct saved_name *)a)->name, ((const struct saved_name *)b)->name);
}

/* The index of the service called name in r, or -1. */
static ssize_t saved_at(void **tree, const char *name)
{
	struct saved_name probe = {.at = -1};
	void *f;

	snprintf(probe.name, sizeof(probe.name), "%s", name);
	f = tfind(&probe, tree, cmp_saved);
	return f ? (*(struct saved_name **)f)->at : -1;
}

/* name is now r's service at index 'at'. 0 or -ENOMEM. */
static int saved_add(void **tree, const char *name, ssize_t at)
{
	struct saved_name *k = malloc(sizeof(*k));

	if (!k)
		return -ENOMEM;
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->at = at;
	if (!tsearch(k, tree, cmp_saved)) {
		free(k);
		return -ENOMEM;
	}
	return 0;
}

/* "services": each as put through the API (the etcd snapshot's marked by their origin). */
static int load_services(json_t *arr, const struct sl_config *agent, struct sl_registry *r,
			 struct sl_problem *e)
{
	void *tree = NULL;
	json_t *v;
	size_t i;
	int bad = 0;

	json_array_foreach(arr, i, v)
	{
		json_t *copy = json_deep_copy(v);
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *origin = json_string_value(json_object_get(v, "x-sluice-origin"));
		uint8_t from = origin && !strcmp(origin, "etcd") ? SL_REG_ETCD : SL_REG_LOCAL;
		struct sl_problem se = {0};
		char *text;
		ssize_t at;
		int err;

		json_object_del(copy, "x-sluice-origin");
		text = copy ? json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(copy);
		at = name && text ? saved_at(&tree, name) : -1;
		if (!name || !text) {
			sl_problem_http(&se, 400, "", name ? "out of memory" : "no name");
			err = -1;
		} else {
			err = sl_reg_put_service_at(r, agent, at, name, text, strlen(text), from,
						    &se);
			if (!err && at < 0 && saved_add(&tree, name, (ssize_t)r->n_svcs - 1))
				sl_problem_http(&se, 500, "", "out of memory");
		}
		if (err && !bad++)
			sl_problem_http(e, 400, "services", "service %zu: %s", i, se.msg);
		free(text);
	}
	tdestroy(tree, free);
	return bad;
}

/* Why a saved registration's expiry cannot be, or NULL. A local one with a TTL expires at
 * expires_ms, within its TTL of now (and a day more, for a clock that was stepped back);
 * an etcd one's lease is etcd's. */
static const char *bad_expiry(const json_t *ex, const struct sl_reg_backend *b, uint64_t now)
{
	json_int_t v;

	if (!ex)
		return b->ttl_ms && b->origin == SL_REG_LOCAL ? "a ttl without expires_ms" : NULL;
	if (!json_is_integer(ex))
		return "expires_ms must be an integer";
	v = json_integer_value(ex);
	if (v < 0)
		return "expires_ms is negative";
	if (b->origin == SL_REG_ETCD)
		return NULL;
	if (!b->ttl_ms)
		return v ? "expires_ms without a ttl" : NULL;
	if (!v)
		return "expires_ms 0 with a ttl: it would never expire";
	if ((uint64_t)v > now + b->ttl_ms + SL_REG_MAX_TTL_MS)
		return "expires_ms is further from now than its ttl allows";
	return NULL;
}

/* "backends": the registrations. */
static int load_backends(json_t *arr, struct sl_registry *r, struct sl_problem *e)
{
	uint64_t now = sl_registry_now_ms();
	json_t *v;
	size_t i;
	int bad = 0;

	json_array_foreach(arr, i, v)
	{
		struct sl_reg_backend b = {0};
		const char *svc = json_string_value(json_object_get(v, "service"));
		json_t *ex = json_object_get(v, "expires_ms"), *copy = json_deep_copy(v);
		const char *origin = json_string_value(json_object_get(v, "origin")), *why = NULL;
		struct sl_problem be = {0};
		int bad_be;

		json_object_del(copy, "origin");
		bad_be = !copy || sl_registry_backend_from_json(copy, &b, &be);
		json_decref(copy);
		b.origin = origin && !strcmp(origin, "etcd") ? SL_REG_ETCD : SL_REG_LOCAL;
		if (!bad_be)
			why = bad_expiry(ex, &b, now);
		if (!svc || strlen(svc) >= SLUICE_NAME_LEN || bad_be || why ||
		    SL_ENSURE(&r->bes, &r->cap_bes, r->n_bes + 1)) {
			if (!bad++)
				sl_problem_http(e, 400, "backends", "backend %zu: %s", i,
						!svc  ? "no service"
						: why ? why
						      : be.msg);
			continue;
		}
		snprintf(b.service, sizeof(b.service), "%s", svc);
		b.expires_ms = ex ? (uint64_t)json_integer_value(ex) : 0;
		r->bes[r->n_bes++] = b;
	}
	return bad;
}

/* "drains". */
static int load_drains(json_t *arr, struct sl_registry *r, struct sl_problem *e)
{
	json_t *v;
	size_t i;
	int bad = 0;

	json_array_foreach(arr, i, v)
	{
		const char *svc = json_string_value(json_object_get(v, "service"));
		const char *addr = json_string_value(json_object_get(v, "address"));
		struct sl_reg_drain d = {0};
		const char *why;

		if (!svc || !addr || strlen(svc) >= SLUICE_NAME_LEN ||
		    sl_parse_hostport(addr, &d.addr, &why) ||
		    SL_ENSURE(&r->drains, &r->cap_drains, r->n_drains + 1)) {
			if (!bad++)
				sl_problem_http(e, 400, "drains", "drain %zu is malformed", i);
			continue;
		}
		snprintf(d.service, sizeof(d.service), "%s", svc);
		r->drains[r->n_drains++] = d;
	}
	return bad;
}

int sl_registry_from_json(const json_t *o, const struct sl_config *agent, struct sl_registry *r,
			  struct sl_problem *e)
{
	struct sl_problem first[3] = {0};
	int bad[3];

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) || json_integer_value(json_object_get(o, "version")) != 1) {
		sl_problem_http(e, 400, "version", "not a sluice registry (version 1)");
		return -1;
	}
	bad[0] = load_services(json_object_get(o, "services"), agent, r, &first[0]);
	bad[1] = load_backends(json_object_get(o, "backends"), r, &first[1]);
	bad[2] = load_drains(json_object_get(o, "drains"), r, &first[2]);
	for (int k = 0; k < 3; k++)
		if (bad[k]) {
			*e = first[k];
			return -1;
		}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int sl_registry_save(const struct sl_registry *r, const char *dir, struct sl_problem *e)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *o = sl_registry_to_json(r);
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	size_t len, off = 0;
	int fd = -1, err = 0;

	json_decref(o);
	if (!text) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = errno;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	len = strlen(text);
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0600) || fsync(fd)) {
		err = errno;
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		err = errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path)) {
		err = errno;
		goto out;
	}
	err = -fsync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		unlink(tmp);
		sl_problem_http(e, 500, "", "cannot write %.300s: %s", path, strerror(err));
	}
	free(text);
	return err ? -1 : 0;
}

int sl_registry_load(const char *dir, const struct sl_config *agent, struct sl_registry *r,
		     struct sl_problem *e)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *o;
	int err;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE);
	if (access(path, F_OK) && errno == ENOENT)
		return 0;
	o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		sl_problem_http(e, 400, "", "%.200s:%d:%d: %.200s", path, je.line, je.column,
				je.text);
		return -1;
	}
	err = sl_registry_from_json(o, agent, r, e);
	json_decref(o);
	if (err) {
		char msg[sizeof(e->msg)];

		snprintf(msg, sizeof(msg), "%s", e->msg);
		snprintf(e->msg, sizeof(e->msg), "%.200s: %.300s", path, msg);
	}
	return err;
}

char *sl_registry_backend_key(const char *prefix, const struct sl_reg_backend *b)
{
	char hp[SL_HOSTPORT_LEN], *key;

	sl_format_hostport(&b->addr, hp, sizeof(hp));
	if (asprintf(&key, "%sbackends/%s/%s", prefix, b->service, hp) < 0)
		return NULL;
	return key;
}

char *sl_registry_backend_value(const struct sl_reg_backend *b)
{
	char hp[SL_HOSTPORT_LEN], *text;
	json_t *o;

	sl_format_hostport(&b->addr, hp, sizeof(hp));
	o = json_pack("{s:s, s:i}", "address", hp, "weight", (int)b->weight);
	if (o && b->subset[0])
		json_object_set_new(o, "subset", json_string(b->subset));
	if (o && b->identity[0])
		json_object_set_new(o, "identity", json_string(b->identity));
	if (o && b->zone[0])
		json_object_set_new(o, "zone", json_string(b->zone));
	text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return text;
}

char *sl_registry_node_key(const char *prefix, const char *node)
{
	char *key;

	if (asprintf(&key, "%snodes/%s", prefix, node) < 0)
		return NULL;
	return key;
}

char *sl_registry_node_value(const char *node, const char *zone, const char *version)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "node", node, "zone", zone, "version", version);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return text;
}

char *sl_registry_service_key(const char *prefix, const char *name)
{
	char *key;

	if (asprintf(&key, "%sservices/%s", prefix, name) < 0)
		return NULL;
	return key;
}

/* ---- the etcd snapshot ------------------------------------------------------------------ */

/* A service name or a registration seen in the snapshot or registered here, in a search
 * tree (tsearch(3)): n keys, n log n. */
struct seen {
	uint8_t kind; /* 0: a service, 1: a registration */
	uint8_t origin;
	char service[SLUICE_NAME_LEN];
	struct sl_sockaddr addr; /* a registration's */
};

static int cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = strcmp(x->service, y->service);
	return c ? c : sl_sockaddr_cmp(&x->addr, &y->addr);
}

/* *k into the tree: 0 when it is new, 1 with the one there already in *was, -ENOMEM. */
static int see(void **tree, const struct seen *k, const struct seen **was)
{
	struct seen *copy;
	void *f = tfind(k, tree, cmp_seen);

	if (f) {
		*was = *(const struct seen **)f;
		return 1;
	}
	copy = malloc(sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	*copy = *k;
	if (!tsearch(copy, tree, cmp_seen)) {
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

/* Out with the old snapshot; the local entries into the tree. 0 or -ENOMEM. */
static int etcd_begin(struct sl_registry *r, void **tree)
{
	const struct seen *was;
	size_t k = 0;

	for (size_t i = 0; i < r->n_svcs; i++) {
		if (r->svcs[i].origin == SL_REG_ETCD)
			free(r->svcs[i].json);
		else
			r->svcs[k++] = r->svcs[i];
	}
	r->n_svcs = k;
	k = 0;
	for (size_t i = 0; i < r->n_bes; i++)
		if (r->bes[i].origin != SL_REG_ETCD)
			r->bes[k++] = r->bes[i];
	r->n_bes = k;
	for (size_t i = 0; i < r->n_svcs; i++) {
		struct seen s = {.kind = 0, .origin = SL_REG_LOCAL};

		memcpy(s.service, r->svcs[i].name, sizeof(s.service));
		if (see(tree, &s, &was) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_bes; i++) {
		struct seen s = {.kind = 1, .origin = SL_REG_LOCAL, .addr = r->bes[i].addr};

		memcpy(s.service, r->bes[i].service, sizeof(s.service));
		if (see(tree, &s, &was) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Whether k is new: 0, or -1 with *p naming whom it repeats. */
static int etcd_new(void **tree, const struct seen *k, struct sl_problem *p)
{
	const struct seen *was;
	int rc = see(tree, k, &was);

	if (rc < 0)
		sl_problem_http(p, 500, "", "out of memory");
	else if (rc && was->origin == SL_REG_LOCAL)
		sl_problem_http(p, 409, k->kind ? "address" : "name",
				k->kind ? "registered here too"
					: "a service of that name is "
					  "registered here");
	else if (rc)
		sl_problem_http(p, 409, k->kind ? "address" : "name",
				"the same as an earlier key of the snapshot");
	return rc ? -1 : 0;
}

/* services/<name>: 0, or -1 with *p. */
static int etcd_service(struct sl_registry *r, void **tree, const char *name, const char *value,
			const struct sl_config *agent, struct sl_problem *p)
{
	struct seen s = {.kind = 0, .origin = SL_REG_ETCD};

	if (!*name || strlen(name) >= sizeof(s.service)) {
		sl_problem_http(p, 400, "name", "a service name is 1..%d characters",
				SLUICE_NAME_LEN - 1);
		return -1;
	}
	strcpy(s.service, name);
	if (etcd_new(tree, &s, p))
		return -1;
	return sl_reg_put_service_at(r, agent, -1, name, value, strlen(value), SL_REG_ETCD, p);
}

/* backends/<service>/<address>: 0, or -1 with *p. */
static int etcd_backend(struct sl_registry *r, void **tree, const char *rest, const char *value,
			int64_t lease, struct sl_problem *p)
{
	const char *slash = strchr(rest, '/'), *why;
	struct seen s = {.kind = 1, .origin = SL_REG_ETCD};
	struct sl_reg_backend b = {0};
	char hp[SL_HOSTPORT_LEN];
	json_t *o;

	if (!slash || slash == rest || (size_t)(slash - rest) >= SLUICE_NAME_LEN ||
	    sl_parse_hostport(slash + 1, &s.addr, &why)) {
		sl_problem_http(p, 400, "", "want backends/<service>/<address>");
		return -1;
	}
	o = sl_registry_load_object(value, strlen(value), p);
	if (!o || sl_registry_backend_from_json(o, &b, p)) {
		json_decref(o);
		return -1;
	}
	json_decref(o);
	if (!sl_sockaddr_equal(&s.addr, &b.addr)) {
		sl_format_hostport(&b.addr, hp, sizeof(hp));
		sl_problem_http(p, 400, "address", "the key names %s but its value %s", slash + 1,
				hp);
		return -1;
	}
	memcpy(s.service, rest, (size_t)(slash - rest));
	if (etcd_new(tree, &s, p))
		return -1;
	memcpy(b.service, s.service, sizeof(b.service));
	b.ttl_ms = lease ? 1 : 0; /* the lease itself is etcd's business */
	b.origin = SL_REG_ETCD;
	if (SL_ENSURE(&r->bes, &r->cap_bes, r->n_bes + 1)) {
		sl_problem_http(p, 500, "", "out of memory");
		return -1;
	}
	r->bes[r->n_bes++] = b;
	return 0;
}

static void seen_free(void *p)
{
	free(p);
}

int sl_registry_etcd_load(struct sl_registry *r, const char *prefix, const char *const *keys,
			  const char *const *values, const int64_t *leases, size_t n,
			  const struct sl_config *agent, struct sl_reg_skips *skips,
			  struct sl_problem *e)
{
	size_t plen = strlen(prefix);
	void *tree = NULL;
	int err;

	if (n > SL_ETCD_MAX_KEYS) {
		sl_problem_http(e, 400, "",
				"the etcd snapshot has %zu keys, more than the %d sluice takes: "
				"refused whole, the previous one keeps serving",
				n, SL_ETCD_MAX_KEYS);
		return -1;
	}
	err = etcd_begin(r, &tree);
	for (size_t i = 0; i < n && !err; i++) {
		const char *rest = keys[i] + plen;
		struct sl_problem p = {0};
		int bad;

		if (strncmp(keys[i], prefix, plen))
			continue;
		if (!strncmp(rest, "services/", 9)) {
			bad = etcd_service(r, &tree, rest + 9, values[i], agent, &p);
		} else if (!strncmp(rest, "backends/", 9)) {
			bad = etcd_backend(r, &tree, rest + 9, values[i], leases[i], &p);
		} else if (!strncmp(rest, "nodes/", 6)) {
			continue; /* who is there (sl_registry_node_key), not what to serve */
		} else {
			sl_problem_http(&p, 400, "", "not services/... or backends/...");
			bad = 1;
		}
		if (bad)
			sl_reg_skip_add(skips, keys[i], p.msg);
	}
	tdestroy(tree, seen_free);
	if (err) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	return 0;
}

size_t sl_registry_from_etcd(struct sl_registry *r, const char *prefix, const char *const *keys,
			     const char *const *values, const int64_t *leases, size_t n,
			     const struct sl_config *agent, struct sl_problem *e)
{
	struct sl_reg_skips skips = {0};
	size_t bad;

	if (sl_registry_etcd_load(r, prefix, keys, values, leases, n, agent, &skips, e)) {
		sl_reg_skips_free(&skips);
		return n;
	}
	if (skips.n)
		sl_problem_http(e, 400, "", "%.200s: %.250s", skips.v[0].key, skips.v[0].why);
	bad = skips.total;
	sl_reg_skips_free(&skips);
	return bad;
}
