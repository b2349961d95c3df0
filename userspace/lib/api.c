// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "mem.h"
#include "report.h"

#define MAX_SEGMENTS 5

static const struct {
	const char *name;
	int shared, durable_first;
} changes[] = {
#define SL_CHANGE_ROW(id, text, sh, dur)                                                           \
	[SL_CHANGE_##id] = {.name = text, .shared = sh, .durable_first = dur},
    SL_CHANGES(SL_CHANGE_ROW)
#undef SL_CHANGE_ROW
};

const char *sl_change_name(enum sl_change c)
{
	return (unsigned int)c < SL_CHANGE__MAX ? changes[c].name : "unknown change";
}

int sl_change_shared(enum sl_change c)
{
	return (unsigned int)c < SL_CHANGE__MAX && changes[c].shared;
}

int sl_change_durable_first(enum sl_change c)
{
	return (unsigned int)c >= SL_CHANGE__MAX || changes[c].durable_first;
}

static char *dump(json_t *o)
{
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	size_t n, cap;

	json_decref(o);
	if (!text)
		return strdup("{\"error\": \"out of memory\"}\n");
	n = strlen(text);
	cap = n + 1;
	if (SL_ENSURE(&text, &cap, n + 2))
		return text;
	text[n] = '\n';
	text[n + 1] = '\0';
	return text;
}

static void fail(unsigned int *status, char **out, unsigned int code, const char *field,
		 const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);

	if (o && field && *field)
		json_object_set_new(o, "field", json_string(field));
	*status = code;
	*out = dump(o);
}

static void fail_reg(unsigned int *status, char **out, const struct sl_problem *e)
{
	fail(status, out, e->status ? e->status : 400, e->field, e->msg);
}

static const struct sl_service_cfg *find_cfg(const struct sl_config *c, const char *name)
{
	for (size_t i = 0; c && i < c->n_services; i++)
		if (!strcmp(c->services[i].name, name))
			return &c->services[i];
	return NULL;
}

static int has_backend(const struct sl_service_cfg *s, const struct sl_sockaddr *a)
{
	for (size_t i = 0; s && i < s->n_backends; i++)
		if (sl_sockaddr_equal(&s->backends[i].addr, a))
			return 1;
	return 0;
}

/* One service as GET shows it: the maps' view, where it came from, and the
 * registrations' TTLs. */
static json_t *service_out(const struct sl_api *api, const struct sl_state *st,
			   const struct sl_service_cfg *svc)
{
	const struct sl_registry *r = api->registry(api->arg);
	const struct sl_svc_state *s = st ? sl_state_find(st, svc->name) : NULL;
	uint64_t now = sl_registry_now_ms();
	json_t *o, *bes, *b;
	size_t i;

	if (s) {
		o = sl_report_service(api->maps, s);
	} else {
		char hp[SL_HOSTPORT_LEN];

		sl_format_hostport(&svc->frontend, hp, sizeof(hp));
		o = json_pack("{s:s, s:s, s:s, s:s, s:[]}", "name", svc->name, "frontend", hp,
			      "protocol", sl_proto_name(svc->proto), "lb", sl_lb_name(svc->lb),
			      "backends");
	}
	if (!o)
		return NULL;
	json_object_set_new(o, "source",
			    json_string(find_cfg(api->file(api->arg), svc->name) ? "file" : "api"));
	bes = json_object_get(o, "backends");
	json_array_foreach(bes, i, b)
	{
		struct sl_sockaddr a;
		const char *why;

		if (sl_parse_hostport(json_string_value(json_object_get(b, "address")), &a, &why))
			continue;
		for (size_t k = 0; k < r->n_bes; k++) {
			const struct sl_reg_backend *rb = &r->bes[k];

			if (strcmp(rb->service, svc->name) || !sl_sockaddr_equal(&rb->addr, &a))
				continue;
			json_object_set_new(b, "registered", json_true());
			if (rb->expires_ms)
				json_object_set_new(
				    b, "ttl_remaining_s",
				    json_real(rb->expires_ms > now
						  ? (double)(rb->expires_ms - now) / 1000
						  : 0));
		}
		json_object_set_new(b, "drained",
				    json_boolean(sl_registry_is_drained(r, svc->name, &a)));
	}
	return o;
}

static void get_services(const struct sl_api *api, const char *only, unsigned int *status,
			 char **out)
{
	const struct sl_config *eff = api->effective(api->arg);
	const struct sl_state *kept = api->state ? api->state(api->arg) : NULL;
	struct sl_state st;
	int have_state = !kept && api->maps && !sl_maps_read_state(api->maps, &st);
	json_t *arr = json_array();

	for (size_t i = 0; i < eff->n_services; i++) {
		if (only && strcmp(eff->services[i].name, only))
			continue;
		json_array_append_new(arr, service_out(api,
						       kept	    ? kept
						       : have_state ? &st
								    : NULL,
						       &eff->services[i]));
	}
	if (have_state)
		sl_state_free(&st);
	if (only) {
		json_t *one = json_incref(json_array_get(arr, 0));

		json_decref(arr);
		if (!one) {
			fail(status, out, 404, "name", "no such service");
			return;
		}
		*status = 200;
		*out = dump(one);
		return;
	}
	*status = 200;
	*out = dump(arr);
}

/* Try a change on a copy; commit it or answer why not. */
typedef int (*change_fn)(struct sl_registry *next, const struct sl_api *api, void *ctx,
			 struct sl_problem *e);

static void change(const struct sl_api *api, change_fn fn, void *ctx, enum sl_change what,
		   unsigned int ok_status, json_t *ok_body, unsigned int *status, char **out)
{
	struct sl_registry next;
	struct sl_problem e = {0};
	int rc;

	if (sl_registry_copy(api->registry(api->arg), &next)) {
		json_decref(ok_body);
		fail(status, out, 500, "", "out of memory");
		return;
	}
	rc = fn(&next, api, ctx, &e);
	if (!rc)
		rc = api->commit(api->arg, &next, what, &e);
	if (rc < 0) {
		sl_registry_free(&next);
		json_decref(ok_body);
		fail_reg(status, out, &e);
		return;
	}
	*status = ok_status;
	if (rc > 0) { /* queued for the shared registry: applied when etcd has it */
		*status = 202;
		json_object_set_new(ok_body, "result", json_string("accepted"));
		json_object_set_new(ok_body, "pending",
				    json_string("written to etcd; applied on "
						"every node when the watch "
						"brings it back"));
	}
	*out = dump(ok_body);
}

struct req {
	const char *name, *address, *body;
	size_t len;
	int drain;
};

static int do_put(struct sl_registry *n, const struct sl_api *api, void *ctx, struct sl_problem *e)
{
	const struct req *q = ctx;

	return sl_registry_put_service(n, api->file(api->arg), q->name, q->body, q->len,
				       SL_REG_LOCAL, e);
}

static int do_delete(struct sl_registry *n, const struct sl_api *api, void *ctx,
		     struct sl_problem *e)
{
	(void)api;
	return sl_registry_delete_service(n, ((const struct req *)ctx)->name, e);
}

static int do_register(struct sl_registry *n, const struct sl_api *api, void *ctx,
		       struct sl_problem *e)
{
	const struct req *q = ctx;

	(void)api;
	return sl_registry_register(n, q->name, q->body, q->len, sl_registry_now_ms(), e);
}

static int do_deregister(struct sl_registry *n, const struct sl_api *api, void *ctx,
			 struct sl_problem *e)
{
	const struct req *q = ctx;

	(void)api;
	return sl_registry_deregister(n, q->name, q->address, e);
}

static int do_heartbeat(struct sl_registry *n, const struct sl_api *api, void *ctx,
			struct sl_problem *e)
{
	const struct req *q = ctx;

	(void)api;
	return sl_registry_heartbeat(n, q->name, q->address, sl_registry_now_ms(), e);
}

static int do_drain(struct sl_registry *n, const struct sl_api *api, void *ctx,
		    struct sl_problem *e)
{
	const struct req *q = ctx;

	return sl_registry_drain(n, api->effective(api->arg), q->name, q->address, q->drain, e);
}

static json_t *ok(const char *result, const char *name, const char *address)
{
	json_t *o = json_pack("{s:s, s:s}", "result", result, "service", name);

	if (o && address)
		json_object_set_new(o, "address", json_string(address));
	return o;
}

/* A backend named in the path: 404 unless the service has it. A backend of
 * the config file cannot be deregistered (409). */
static int check_backend(const struct sl_api *api, const struct req *q, int registered_only,
			 unsigned int *status, char **out)
{
	const struct sl_service_cfg *svc = find_cfg(api->effective(api->arg), q->name);
	const struct sl_service_cfg *fsvc = find_cfg(api->file(api->arg), q->name);
	struct sl_sockaddr a;
	const char *why;

	if (!svc) {
		fail(status, out, 404, "service", "no such service");
		return -1;
	}
	if (sl_parse_hostport(q->address, &a, &why)) {
		fail(status, out, 404, "address", why);
		return -1;
	}
	if (!has_backend(svc, &a)) {
		fail(status, out, 404, "address", "no such backend in this service");
		return -1;
	}
	if (registered_only && has_backend(fsvc, &a)) {
		fail(status, out, 409, "address",
		     "this backend is in the config file: remove it there");
		return -1;
	}
	return 0;
}

/* /v1/services/{name}: GET, PUT, DELETE. */
static void route_service(const struct sl_api *api, const char *method, struct req *q,
			  unsigned int *status, char **out)
{
	if (!strcmp(method, "GET")) {
		get_services(api, q->name, status, out);
	} else if (!strcmp(method, "PUT")) {
		int exists = find_cfg(api->effective(api->arg), q->name) != NULL;

		if (find_cfg(api->file(api->arg), q->name))
			fail(status, out, 409, "name",
			     "this service is in the config file: change it there");
		else
			change(api, do_put, q, SL_CHANGE_SERVICE_PUT, exists ? 200 : 201,
			       ok(exists ? "updated" : "created", q->name, NULL), status, out);
	} else if (!strcmp(method, "DELETE")) {
		if (find_cfg(api->file(api->arg), q->name))
			fail(status, out, 409, "name",
			     "this service is in the config file: remove it there");
		else
			change(api, do_delete, q, SL_CHANGE_SERVICE_DELETED, 200,
			       ok("deleted", q->name, NULL), status, out);
	} else {
		fail(status, out, 405, "", "GET, PUT or DELETE");
	}
}

/* /v1/services/{name}/backends[/{address}[/heartbeat|drain|undrain]]: seg
 * holds the n segments after /v1/services. */
static void route_backends(const struct sl_api *api, const char *method, struct req *q, char **seg,
			   size_t n, unsigned int *status, char **out)
{
	if (n == 2) {
		if (strcmp(method, "POST"))
			fail(status, out, 405, "", "POST only");
		else if (!find_cfg(api->effective(api->arg), q->name))
			fail(status, out, 404, "service", "no such service");
		else
			change(api, do_register, q, SL_CHANGE_BACKEND_REGISTERED, 201,
			       ok("registered", q->name, NULL), status, out);
		return;
	}
	q->address = seg[2];
	if (n == 3) {
		if (strcmp(method, "DELETE"))
			fail(status, out, 405, "", "DELETE only");
		else if (!check_backend(api, q, 1, status, out))
			change(api, do_deregister, q, SL_CHANGE_BACKEND_DEREGISTERED, 200,
			       ok("deregistered", q->name, q->address), status, out);
		return;
	}
	if (n == 4 && !strcmp(seg[3], "heartbeat")) {
		if (strcmp(method, "PUT"))
			fail(status, out, 405, "", "PUT only");
		else if (!check_backend(api, q, 1, status, out))
			change(api, do_heartbeat, q, SL_CHANGE_HEARTBEAT, 200,
			       ok("refreshed", q->name, q->address), status, out);
		return;
	}
	if (n == 4 && (!strcmp(seg[3], "drain") || !strcmp(seg[3], "undrain"))) {
		q->drain = !strcmp(seg[3], "drain");
		if (strcmp(method, "POST"))
			fail(status, out, 405, "", "POST only");
		else if (!check_backend(api, q, 0, status, out))
			change(api, do_drain, q,
			       q->drain ? SL_CHANGE_BACKEND_DRAINED : SL_CHANGE_BACKEND_UNDRAINED,
			       200, ok(q->drain ? "draining" : "undrained", q->name, q->address),
			       status, out);
		return;
	}
	fail(status, out, 404, "", "no such endpoint");
}

void sl_api_handle(const struct sl_api *api, const char *method, const char *url, const char *body,
		   size_t len, unsigned int *status, char **out)
{
	static const char prefix[] = "/v1/services";
	char path[1024], *seg[MAX_SEGMENTS] = {0}, *save = NULL, *p;
	size_t n = 0;
	struct req q = {.body = body ? body : "", .len = len};

	if (strncmp(url, prefix, sizeof(prefix) - 1) ||
	    (url[sizeof(prefix) - 1] && url[sizeof(prefix) - 1] != '/') ||
	    strlen(url) >= sizeof(path)) {
		fail(status, out, 404, "", "no such endpoint");
		return;
	}
	snprintf(path, sizeof(path), "%s", url + sizeof(prefix) - 1);
	for (p = strtok_r(path, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGMENTS) {
			fail(status, out, 404, "", "no such endpoint");
			return;
		}
		seg[n++] = p;
	}
	q.name = seg[0];
	if (n == 0) {
		if (strcmp(method, "GET"))
			fail(status, out, 405, "", "GET only");
		else
			get_services(api, NULL, status, out);
	} else if (strlen(q.name) >= SLUICE_NAME_LEN) {
		fail(status, out, 404, "name", "no such service");
	} else if (n == 1) {
		route_service(api, method, &q, status, out);
	} else if (strcmp(seg[1], "backends")) {
		fail(status, out, 404, "", "no such endpoint");
	} else {
		route_backends(api, method, &q, seg, n, status, out);
	}
}
