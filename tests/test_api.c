// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control API's router, sl_api_handle (userspace/lib/api.c): every route, 404 for what
 * is not one, 405 for a route's other methods, 400 with {"error", "field"}, 409 for what the
 * config file owns or what would conflict, 202 when the commit queues the change (etcd), and
 * a failed request that changes nothing.
 *
 * The agent is faked: a config file from sl_config_parse, the registry in memory, and a
 * commit that merges like the agent's and can be told to queue (1) or refuse (-1). No maps
 * (GET then lists services without backends), but for the api_maps suite: there the commit
 * applies to a datapath of the test's own (tests/world.h; root only), and GET shows backends. The
 * 413 for a body over SL_API_BODY_MAX is not the router's: agent/http.c answers it before the
 * router runs (vmtests/38-api.sh checks it).
 *
 * The fixture (Criterion .init/.fini) owns the fake agent and the last response, so a failed
 * cr_assert frees everything all the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "api.h"
#include "world.h"

static const char file_yaml[] = "services:\n"
				"  - name: web\n"
				"    frontend: 198.19.0.10:80\n"
				"    backends:\n"
				"      - address: 198.18.1.2:8080\n"
				"      - address: 198.18.1.3:8080\n"
				"  - name: dns\n"
				"    frontend: 198.19.0.53:53\n"
				"    protocol: udp\n"
				"    lb: round_robin\n"
				"    backends:\n"
				"      - address: 198.18.1.4:53\n";

struct fake {
	struct sl_config file, eff;
	struct sl_registry reg;
	int have_file, have_eff;
	int commit_rc; /* after a merge that works: 0 (applied) or 1 (queued for etcd) */
	int refuse;    /* the commit fails with 503 */
	unsigned int commits;
	char what[64];
};

static struct fake f;
static struct sl_api api;
static struct test_world w; /* api_maps only */
static int have_world;

/* The last response. */
static unsigned int status;
static char *text;
static json_t *body;

static const struct sl_config *fake_file(void *arg)
{
	return &((struct fake *)arg)->file;
}

static const struct sl_config *fake_effective(void *arg)
{
	return &((struct fake *)arg)->eff;
}

static const struct sl_registry *fake_registry(void *arg)
{
	return &((struct fake *)arg)->reg;
}

/* As the agent's: merge, then take 'next' over; queued, it is dropped (etcd brings it back). */
static int fake_commit(void *arg, struct sl_registry *next, enum sl_change what,
		       struct sl_problem *e)
{
	struct fake *fk = arg;
	struct sl_config eff;

	fk->commits++;
	snprintf(fk->what, sizeof(fk->what), "%s", sl_change_name(what));
	if (fk->refuse) {
		sl_problem_http(e, 503, "", "the fake refuses");
		return -1;
	}
	if (sl_registry_merge(&fk->file, next, &eff, e))
		return -1;
	if (have_world) {
		char why[256];

		if (test_world_apply(&w, &eff, why, sizeof(why))) {
			sl_config_free(&eff);
			sl_problem_http(e, 500, "", "%s", why);
			return -1;
		}
	}
	if (fk->commit_rc) {
		sl_config_free(&eff);
		sl_registry_free(next);
		return fk->commit_rc;
	}
	sl_registry_free(&fk->reg);
	fk->reg = *next;
	sl_config_free(&fk->eff);
	fk->eff = eff;
	return 0;
}

static void forget_response(void)
{
	free(text);
	text = NULL;
	json_decref(body);
	body = NULL;
	status = 0;
}

static void teardown(void)
{
	forget_response();
	sl_registry_free(&f.reg);
	if (f.have_eff)
		sl_config_free(&f.eff);
	if (f.have_file)
		sl_config_free(&f.file);
	memset(&f, 0, sizeof(f));
}

static void setup(void)
{
	struct sl_problems d = {0};
	struct sl_problem e = {0};
	int err;

	memset(&f, 0, sizeof(f));
	err = sl_config_parse("t.yaml", file_yaml, strlen(file_yaml), &f.file, &d);
	f.have_file = !err;
	if (!err)
		err = sl_registry_merge(&f.file, &f.reg, &f.eff, &e);
	f.have_eff = f.have_file && !err;
	if (err) {
		cr_log_error("fixture: %s%s", d.n ? d.list[0].text : "", e.msg);
		sl_problems_free(&d);
		teardown(); /* .fini does not run when .init fails */
		cr_assert_fail("the fixture's config does not load");
	}
	api = (struct sl_api){.arg = &f,
			      .file = fake_file,
			      .effective = fake_effective,
			      .registry = fake_registry,
			      .commit = fake_commit,
			      .maps = NULL};
}

TestSuite(api, .init = setup, .fini = teardown);

/* One request; the answer in status, text and body (NULL when it is not JSON). */
static void call(const char *method, const char *url, const char *req)
{
	forget_response();
	sl_api_handle(&api, method, url, req, req ? strlen(req) : 0, &status, &text);
	if (text)
		body = json_loads(text, 0, NULL);
}

/* Every answer is one JSON document and a newline. */
#define CALL(method, url, req, want)                                                               \
	do {                                                                                       \
		call(method, url, req);                                                            \
		cr_assert_not_null(text, "%s %s: no body", method, url);                           \
		cr_assert_not_null(body, "%s %s: not JSON: %s", method, url, text);                \
		cr_expect(text[0] && text[strlen(text) - 1] == '\n', "%s %s: no newline", method,  \
			  url);                                                                    \
		cr_assert_eq(status, (want), "%s %s: %u, want %u: %s", method, url, status,        \
			     (unsigned int)(want), text);                                          \
	} while (0)

/* An error: {"error": message} and "field" when one is at fault (NULL: none; ANY_FIELD: not
 * checked). */
static const char ANY_FIELD[] = "(any)";

#define CALL_ERR(method, url, req, want, field_)                                                   \
	do {                                                                                       \
		const char *field__ = (field_);                                                    \
		json_t *fv__;                                                                      \
                                                                                                   \
		CALL(method, url, req, want);                                                      \
		cr_expect(json_is_object(body) &&                                                  \
			      json_string_length(json_object_get(body, "error")) > 0,              \
			  "%s %s: no error message: %s", method, url, text);                       \
		fv__ = json_object_get(body, "field");                                             \
		if (field__ == ANY_FIELD)                                                          \
			cr_expect(json_is_string(fv__), "%s %s: no field: %s", method, url, text); \
		else if (field__)                                                                  \
			cr_expect_str_eq(json_string_value(fv__) ? json_string_value(fv__) : "",   \
					 field__, "%s %s: field: %s", method, url, text);          \
		else                                                                               \
			cr_expect_null(fv__, "%s %s: a field where none is at fault: %s", method,  \
				       url, text);                                                 \
	} while (0)

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "(none)";
}

static const struct sl_service_cfg *eff_service(const char *name)
{
	for (size_t i = 0; i < f.eff.n_services; i++)
		if (!strcmp(f.eff.services[i].name, name))
			return &f.eff.services[i];
	return NULL;
}

static int drained(const char *service, const char *address)
{
	struct sl_sockaddr a;
	const char *why;

	return !sl_parse_hostport(address, &a, &why) && sl_registry_is_drained(&f.reg, service, &a);
}

/* ---- reading ------------------------------------------------------------------------------ */

Test(api, list_services)
{
	json_t *web, *dns;

	CALL("GET", "/v1/services", NULL, 200);
	cr_assert(json_is_array(body));
	cr_assert_eq(json_array_size(body), 2);
	web = json_array_get(body, 0);
	dns = json_array_get(body, 1);
	cr_expect_str_eq(str(web, "name"), "web");
	cr_expect_str_eq(str(web, "frontend"), "198.19.0.10:80");
	cr_expect_str_eq(str(web, "protocol"), "tcp");
	cr_expect_str_eq(str(web, "lb"), "random");
	cr_expect_str_eq(str(web, "source"), "file");
	cr_expect(json_is_array(json_object_get(web, "backends")));
	cr_expect_str_eq(str(dns, "name"), "dns");
	cr_expect_str_eq(str(dns, "protocol"), "udp");
	cr_expect_str_eq(str(dns, "lb"), "round_robin");
	CALL("GET", "/v1/services/", NULL, 200);
	cr_expect_eq(json_array_size(body), 2, "a trailing slash is the same list");
	cr_expect_eq(f.commits, 0, "reading commits nothing");
}

Test(api, get_one_service)
{
	char long_name[SLUICE_NAME_LEN + 20] = "/v1/services/";

	CALL("GET", "/v1/services/dns", NULL, 200);
	cr_assert(json_is_object(body));
	cr_expect_str_eq(str(body, "name"), "dns");
	cr_expect_str_eq(str(body, "frontend"), "198.19.0.53:53");
	cr_expect_str_eq(str(body, "source"), "file");
	CALL_ERR("GET", "/v1/services/nosuch", NULL, 404, "name");
	memset(long_name + strlen(long_name), 'a', SLUICE_NAME_LEN);
	CALL_ERR("GET", long_name, NULL, 404, "name");
}

/* ---- routing ------------------------------------------------------------------------------ */

Test(api, not_an_endpoint_is_404)
{
	static const char *const urls[] = {
	    "/",
	    "/v1",
	    "/v1/servicesx",
	    "/v2/services",
	    "/v1/services/web/frontends",
	    "/v1/services/web/backends/198.18.1.2:8080/bogus",
	    "/v1/services/web/backends/198.18.1.2:8080/drain/now",
	};
	char huge[2048] = "/v1/services/";

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
		CALL_ERR("GET", urls[i], NULL, 404, NULL);
	memset(huge + strlen(huge), 'a', sizeof(huge) - strlen(huge) - 1);
	CALL_ERR("GET", huge, NULL, 404, NULL);
	cr_expect_eq(f.commits, 0);
}

Test(api, other_methods_are_405)
{
	static const char *const reqs[][2] = {
	    {"POST", "/v1/services"},
	    {"DELETE", "/v1/services"},
	    {"PATCH", "/v1/services/web"},
	    {"POST", "/v1/services/web"},
	    {"GET", "/v1/services/web/backends"},
	    {"PUT", "/v1/services/web/backends"},
	    {"DELETE", "/v1/services/web/backends"},
	    {"GET", "/v1/services/web/backends/198.18.1.2:8080"},
	    {"POST", "/v1/services/web/backends/198.18.1.2:8080"},
	    {"PUT", "/v1/services/web/backends/198.18.1.2:8080"},
	    {"GET", "/v1/services/web/backends/198.18.1.2:8080/heartbeat"},
	    {"POST", "/v1/services/web/backends/198.18.1.2:8080/heartbeat"},
	    {"GET", "/v1/services/web/backends/198.18.1.2:8080/drain"},
	    {"PUT", "/v1/services/web/backends/198.18.1.2:8080/drain"},
	    {"DELETE", "/v1/services/web/backends/198.18.1.2:8080/undrain"},
	};

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		CALL_ERR(reqs[i][0], reqs[i][1], "{}", 405, NULL);
	cr_expect_eq(f.commits, 0, "a 405 commits nothing");
}

/* ---- services put whole ------------------------------------------------------------------ */

Test(api, put_creates_updates_and_deletes_a_service)
{
	static const char v1[] = "{\"frontend\": \"198.19.0.20:80\", "
				 "\"backends\": [{\"address\": \"198.18.1.5:80\"}]}";
	static const char v2[] = "{\"name\": \"new\", \"frontend\": \"198.19.0.20:80\", "
				 "\"lb\": \"maglev\", \"backends\": [{\"address\": "
				 "\"198.18.1.5:80\"}, {\"address\": \"198.18.1.6:80\"}]}";

	CALL("PUT", "/v1/services/new", v1, 201);
	cr_expect_str_eq(str(body, "result"), "created");
	cr_expect_str_eq(str(body, "service"), "new");
	cr_expect_str_eq(f.what, "service put");
	cr_assert_not_null(eff_service("new"), "the commit did not get the service");
	cr_expect_eq(eff_service("new")->n_backends, 1);
	CALL("GET", "/v1/services/new", NULL, 200);
	cr_expect_str_eq(str(body, "source"), "api");

	CALL("PUT", "/v1/services/new", v2, 200);
	cr_expect_str_eq(str(body, "result"), "updated");
	cr_assert_not_null(eff_service("new"));
	cr_expect_eq(eff_service("new")->n_backends, 2);
	cr_expect_eq(eff_service("new")->lb, SLUICE_LB_MAGLEV);
	CALL("GET", "/v1/services", NULL, 200);
	cr_expect_eq(json_array_size(body), 3);

	CALL("DELETE", "/v1/services/new", NULL, 200);
	cr_expect_str_eq(str(body, "result"), "deleted");
	cr_expect_str_eq(str(body, "service"), "new");
	cr_expect_str_eq(f.what, "service deleted");
	cr_expect_null(eff_service("new"));
	cr_expect_eq(f.reg.n_svcs, 0);
	CALL_ERR("DELETE", "/v1/services/new", NULL, 404, "name");
	CALL_ERR("GET", "/v1/services/new", NULL, 404, "name");
}

Test(api, put_errors_change_nothing)
{
	CALL_ERR("PUT", "/v1/services/web", "{\"frontend\": \"198.19.0.30:80\"}", 409, "name");
	CALL_ERR("DELETE", "/v1/services/web", NULL, 409, "name");
	CALL_ERR("DELETE", "/v1/services/nosuch", NULL, 404, "name");
	CALL_ERR("PUT", "/v1/services/new", "{\"frontend\": ", 400, NULL);
	CALL_ERR("PUT", "/v1/services/new", "[1, 2]", 400, NULL);
	CALL_ERR("PUT", "/v1/services/new", "", 400, NULL);
	CALL_ERR("PUT", "/v1/services/new",
		 "{\"name\": \"other\", \"frontend\": \"198.19.0.30:80\"}", 400, "name");
	CALL_ERR("PUT", "/v1/services/new", "{\"frontend\": \"198.19.0.30:80\", \"colour\": 1}",
		 400, "colour");
	CALL_ERR("PUT", "/v1/services/new", "{}", 400, "frontend");
	/* A bad value names the value, not its key ("sctp", not "protocol"): not pinned here. */
	CALL_ERR("PUT", "/v1/services/new",
		 "{\"frontend\": \"198.19.0.30:80\", \"protocol\": \"sctp\"}", 400, ANY_FIELD);
	/* Valid alone, but web has that frontend: the merge in the commit refuses it. */
	CALL_ERR("PUT", "/v1/services/new", "{\"frontend\": \"198.19.0.10:80\"}", 409, "frontend");
	cr_expect_eq(f.reg.n_svcs, 0);
	cr_expect_eq(f.eff.n_services, 2);
	cr_expect_null(eff_service("new"));
}

/* ---- registrations ------------------------------------------------------------------------ */

Test(api, register_and_deregister)
{
	const struct sl_service_cfg *web;

	CALL(
	    "POST", "/v1/services/web/backends",
	    "{\"address\": \"198.18.1.9:80\", \"weight\": 3, \"subset\": \"v2\", \"ttl\": \"30s\"}",
	    201);
	cr_expect_str_eq(str(body, "result"), "registered");
	cr_expect_str_eq(str(body, "service"), "web");
	cr_expect_str_eq(f.what, "backend registered");
	cr_assert_eq(f.reg.n_bes, 1);
	cr_expect_eq(f.reg.bes[0].weight, 3);
	cr_expect_str_eq(f.reg.bes[0].subset, "v2");
	cr_expect_eq(f.reg.bes[0].ttl_ms, 30000);
	web = eff_service("web");
	cr_assert_not_null(web);
	cr_expect_eq(web->n_backends, 3);

	CALL("PUT", "/v1/services/web/backends/198.18.1.9:80/heartbeat", NULL, 200);
	cr_expect_str_eq(str(body, "result"), "refreshed");
	cr_expect_str_eq(str(body, "address"), "198.18.1.9:80");
	cr_expect_str_eq(f.what, "heartbeat");

	CALL("DELETE", "/v1/services/web/backends/198.18.1.9:80", NULL, 200);
	cr_expect_str_eq(str(body, "result"), "deregistered");
	cr_expect_str_eq(str(body, "service"), "web");
	cr_expect_str_eq(str(body, "address"), "198.18.1.9:80");
	cr_expect_str_eq(f.what, "backend deregistered");
	cr_expect_eq(f.reg.n_bes, 0);
	cr_assert_not_null(eff_service("web"));
	cr_expect_eq(eff_service("web")->n_backends, 2);
	CALL_ERR("DELETE", "/v1/services/web/backends/198.18.1.9:80", NULL, 404, "address");
}

Test(api, register_errors_change_nothing)
{
	static const struct {
		const char *body;
		unsigned int status;
		const char *field;
	} bad[] = {
	    {"{\"address\": \"nonsense\"}", 400, "address"},
	    {"{}", 400, "address"},
	    {"{\"address\": 42}", 400, "address"},
	    {"{\"address\": \"198.18.1.9:80\", \"weight\": 0}", 400, "weight"},
	    {"{\"address\": \"198.18.1.9:80\", \"weight\": 1001}", 400, "weight"},
	    {"{\"address\": \"198.18.1.9:80\", \"colour\": \"red\"}", 400, "colour"},
	    {"{\"address\": \"198.18.1.9:80\", \"ttl\": \"soon\"}", 400, "ttl"},
	    {"{\"address\": \"198.18.1.9:80\", \"service\": \"dns\"}", 400, "service"},
	    {"{\"address\": \"198.18.1.9:80\",", 400, NULL},
	    /* Checked by the merge in the commit: */
	    {"{\"address\": \"[2001:db8:1::9]:80\"}", 400, "address"},
	    {"{\"address\": \"198.18.1.2:8080\"}", 409, "address"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CALL_ERR("POST", "/v1/services/web/backends", bad[i].body, bad[i].status,
			 bad[i].field);
	CALL_ERR("POST", "/v1/services/nosuch/backends", "{\"address\": \"198.18.1.9:80\"}", 404,
		 "service");
	cr_expect_eq(f.reg.n_bes, 0);
	cr_assert_not_null(eff_service("web"));
	cr_expect_eq(eff_service("web")->n_backends, 2);
}

/* A backend named in the path: the service must have it; the file's own are not the API's. */
Test(api, backend_in_the_path)
{
	CALL_ERR("DELETE", "/v1/services/nosuch/backends/198.18.1.2:8080", NULL, 404, "service");
	CALL_ERR("DELETE", "/v1/services/web/backends/nonsense", NULL, 404, "address");
	CALL_ERR("DELETE", "/v1/services/web/backends/198.18.1.99:80", NULL, 404, "address");
	CALL_ERR("DELETE", "/v1/services/web/backends/198.18.1.4:53", NULL, 404, "address");
	CALL_ERR("DELETE", "/v1/services/web/backends/198.18.1.2:8080", NULL, 409, "address");
	CALL_ERR("PUT", "/v1/services/web/backends/198.18.1.2:8080/heartbeat", NULL, 409,
		 "address");
	CALL_ERR("PUT", "/v1/services/web/backends/198.18.1.99:80/heartbeat", NULL, 404, "address");
	CALL_ERR("POST", "/v1/services/web/backends/198.18.1.99:80/drain", NULL, 404, "address");
	CALL_ERR("POST", "/v1/services/nosuch/backends/198.18.1.2:8080/drain", NULL, 404,
		 "service");
	cr_expect_eq(f.commits, 0, "refused before any commit");
}

Test(api, drain_and_undrain)
{
	CALL("POST", "/v1/services/web/backends/198.18.1.2:8080/drain", NULL, 200);
	cr_expect_str_eq(str(body, "result"), "draining");
	cr_expect_str_eq(str(body, "service"), "web");
	cr_expect_str_eq(str(body, "address"), "198.18.1.2:8080");
	cr_expect_str_eq(f.what, "backend drained");
	cr_expect(drained("web", "198.18.1.2:8080"), "a file backend can be drained");
	cr_expect(!drained("web", "198.18.1.3:8080"));
	CALL("POST", "/v1/services/web/backends/198.18.1.2:8080/undrain", NULL, 200);
	cr_expect_str_eq(str(body, "result"), "undrained");
	cr_expect_str_eq(f.what, "backend undrained");
	cr_expect(!drained("web", "198.18.1.2:8080"));

	/* A registered backend too. */
	CALL("POST", "/v1/services/dns/backends", "{\"address\": \"198.18.1.8:53\"}", 201);
	CALL("POST", "/v1/services/dns/backends/198.18.1.8:53/drain", NULL, 200);
	cr_expect(drained("dns", "198.18.1.8:53"));
}

/* ---- what the commit says ------------------------------------------------------------------ */

/* With etcd the change is queued, not applied: 202, and it says so. */
Test(api, queued_change_is_202)
{
	f.commit_rc = 1;
	CALL("POST", "/v1/services/web/backends", "{\"address\": \"198.18.1.9:80\"}", 202);
	cr_expect_str_eq(str(body, "result"), "accepted");
	cr_expect_str_eq(str(body, "service"), "web");
	cr_expect(json_string_length(json_object_get(body, "pending")) > 0, "%s", text);
	cr_expect_eq(f.reg.n_bes, 0, "not applied here: etcd brings it back");
	CALL("PUT", "/v1/services/new", "{\"frontend\": \"198.19.0.20:80\"}", 202);
	cr_expect_str_eq(str(body, "result"), "accepted");
	CALL("POST", "/v1/services/web/backends/198.18.1.2:8080/drain", NULL, 202);
	cr_expect_str_eq(str(body, "result"), "accepted");
}

Test(api, failed_commit_changes_nothing)
{
	f.refuse = 1;
	CALL_ERR("POST", "/v1/services/web/backends", "{\"address\": \"198.18.1.9:80\"}", 503,
		 NULL);
	CALL_ERR("PUT", "/v1/services/new", "{\"frontend\": \"198.19.0.20:80\"}", 503, NULL);
	CALL_ERR("POST", "/v1/services/web/backends/198.18.1.2:8080/drain", NULL, 503, NULL);
	cr_expect_eq(f.commits, 3);
	cr_expect_eq(f.reg.n_bes + f.reg.n_svcs + f.reg.n_drains, 0);
	cr_expect_eq(f.eff.n_services, 2);
}

/* ---- with maps ----------------------------------------------------------------------------- */

static void teardown_maps(void)
{
	test_world_down(&w);
	have_world = 0;
	teardown();
}

static void setup_maps(void)
{
	char why[512];
	int err;

	if (geteuid() != 0)
		cr_skip_test("needs root for BPF maps");
	setup();
	err = test_world_up(&w, why, sizeof(why));
	have_world = !err;
	if (!err)
		err = test_world_apply(&w, &f.eff, why, sizeof(why));
	if (err)
		teardown_maps(); /* .fini does not run when .init fails */
	if (err == -EPERM || err == -EACCES)
		cr_skip_test("%s", why);
	cr_assert_eq(err, 0, "%s", why);
	api.maps = w.maps;
}

TestSuite(api_maps, .init = setup_maps, .fini = teardown_maps);

static json_t *backend_of(json_t *svc, const char *address)
{
	size_t i;
	json_t *b;

	json_array_foreach(json_object_get(svc, "backends"), i, b)
	{
		if (!strcmp(str(b, "address"), address))
			return b;
	}
	return NULL;
}

/* GET shows each backend as the maps hold it, with its registration and its drain. */
Test(api_maps, get_shows_registrations_and_drains)
{
	json_t *b, *ttl;

	CALL("POST", "/v1/services/web/backends",
	     "{\"address\": \"198.18.1.9:80\", \"weight\": 4, \"ttl\": \"30s\"}", 201);
	CALL("POST", "/v1/services/web/backends/198.18.1.2:8080/drain", NULL, 200);
	CALL("GET", "/v1/services/web", NULL, 200);
	cr_assert_eq(json_array_size(json_object_get(body, "backends")), 3, "%s", text);

	b = backend_of(body, "198.18.1.9:80");
	cr_assert_not_null(b, "the registered backend is not in the maps: %s", text);
	cr_expect_eq(json_integer_value(json_object_get(b, "weight")), 4);
	cr_expect_str_eq(str(b, "state"), "healthy");
	cr_expect(json_is_true(json_object_get(b, "registered")), "%s", text);
	ttl = json_object_get(b, "ttl_remaining_s");
	cr_expect(json_is_number(ttl) && json_number_value(ttl) > 25 &&
		      json_number_value(ttl) <= 30,
		  "ttl_remaining_s: %s", text);
	cr_expect(json_is_false(json_object_get(b, "drained")));

	b = backend_of(body, "198.18.1.2:8080");
	cr_assert_not_null(b);
	cr_expect(json_is_true(json_object_get(b, "drained")), "%s", text);
	cr_expect_null(json_object_get(b, "registered"), "a file backend is not registered");
	cr_expect_null(json_object_get(b, "ttl_remaining_s"));
	b = backend_of(body, "198.18.1.3:8080");
	cr_assert_not_null(b);
	cr_expect(json_is_false(json_object_get(b, "drained")));

	CALL("DELETE", "/v1/services/web/backends/198.18.1.9:80", NULL, 200);
	CALL("GET", "/v1/services", NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(json_array_get(body, 0), "backends")), 2,
		     "deregistered: gone from the maps: %s", text);
	cr_expect_eq(json_array_size(json_object_get(json_array_get(body, 1), "backends")), 1);
}
