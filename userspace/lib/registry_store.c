// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The registry's two stores: agent.state/registry.json (the local entries, and a copy of the
 * last etcd snapshot) and the shared registry in etcd (registry.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "registry.h"

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

int sl_registry_from_json(const json_t *o, const struct sl_config *agent, struct sl_registry *r,
			  struct sl_problem *e)
{
	json_t *v, *arr;
	size_t i;
	int bad = 0;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) || json_integer_value(json_object_get(o, "version")) != 1) {
		sl_problem_http(e, 400, "version", "not a sluice registry (version 1)");
		return -1;
	}
	arr = json_object_get(o, "services");
	json_array_foreach(arr, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		struct sl_problem se;
		char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (!name || !text ||
		    sl_registry_put_service(r, agent, name, text, strlen(text), SL_REG_LOCAL,
					    &se)) {
			if (!bad++)
				sl_problem_http(e, 400, "services", "service %zu: %s", i,
						name && text ? se.msg : "no name");
		}
		free(text);
	}
	arr = json_object_get(o, "backends");
	json_array_foreach(arr, i, v)
	{
		struct sl_reg_backend b = {0};
		const char *svc = json_string_value(json_object_get(v, "service"));
		json_t *ex = json_object_get(v, "expires_ms"), *copy = json_deep_copy(v);
		const char *origin = json_string_value(json_object_get(v, "origin"));
		struct sl_problem be = {0};
		int bad_be;

		json_object_del(copy, "origin");
		bad_be = !copy || sl_registry_backend_from_json(copy, &b, &be);
		json_decref(copy);
		if (!svc || strlen(svc) >= SLUICE_NAME_LEN || bad_be ||
		    (ex && !json_is_integer(ex)) || SL_ENSURE(&r->bes, &r->cap_bes, r->n_bes + 1)) {
			if (!bad++)
				sl_problem_http(e, 400, "backends", "backend %zu: %s", i,
						svc ? be.msg : "no service");
			continue;
		}
		snprintf(b.service, sizeof(b.service), "%s", svc);
		b.expires_ms = ex ? (uint64_t)json_integer_value(ex) : 0;
		b.origin = origin && !strcmp(origin, "etcd") ? SL_REG_ETCD : SL_REG_LOCAL;
		r->bes[r->n_bes++] = b;
	}
	arr = json_object_get(o, "drains");
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
	return bad ? -1 : 0;
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
	text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
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

static size_t etcd_bad(size_t bad, struct sl_problem *e, const char *key, const char *why)
{
	if (!bad)
		sl_problem_http(e, 400, "", "%.200s: %.250s", key, why);
	return bad + 1;
}

size_t sl_registry_from_etcd(struct sl_registry *r, const char *prefix, const char *const *keys,
			     const char *const *values, const int64_t *leases, size_t n,
			     const struct sl_config *agent, struct sl_problem *e)
{
	size_t plen = strlen(prefix), bad = 0, k = 0;

	/* Out with the old snapshot. */
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
	for (size_t i = 0; i < n; i++) {
		const char *rest = keys[i] + plen;
		struct sl_problem ie = {0};

		if (strncmp(keys[i], prefix, plen))
			continue;
		if (!strncmp(rest, "services/", 9)) {
			const char *name = rest + 9;

			if (sl_registry_find_service(r, name)) {
				bad = etcd_bad(bad, e, keys[i],
					       "a service of that name is registered here");
				continue;
			}
			if (sl_registry_put_service(r, agent, name, values[i], strlen(values[i]),
						    SL_REG_ETCD, &ie))
				bad = etcd_bad(bad, e, keys[i], ie.msg);
		} else if (!strncmp(rest, "backends/", 9)) {
			const char *svc = rest + 9, *slash = strchr(svc, '/');
			struct sl_reg_backend b = {0};
			json_t *o;

			if (!slash || (size_t)(slash - svc) >= SLUICE_NAME_LEN) {
				bad =
				    etcd_bad(bad, e, keys[i], "want backends/<service>/<address>");
				continue;
			}
			o = sl_registry_load_object(values[i], strlen(values[i]), &ie);
			if (!o || sl_registry_backend_from_json(o, &b, &ie)) {
				json_decref(o);
				bad = etcd_bad(bad, e, keys[i], ie.msg);
				continue;
			}
			json_decref(o);
			memcpy(b.service, svc, (size_t)(slash - svc));
			b.service[slash - svc] = '\0';
			b.ttl_ms = leases[i] ? 1 : 0; /* the lease itself is etcd's business */
			b.origin = SL_REG_ETCD;
			if (sl_registry_find_backend(r, b.service, &b.addr)) {
				bad = etcd_bad(bad, e, keys[i], "registered here too");
				continue;
			}
			if (SL_ENSURE(&r->bes, &r->cap_bes, r->n_bes + 1)) {
				bad = etcd_bad(bad, e, keys[i], "out of memory");
				continue;
			}
			r->bes[r->n_bes++] = b;
		} else {
			bad = etcd_bad(bad, e, keys[i], "not services/... or backends/...");
		}
	}
	return bad;
}
