// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The registry: registrations, TTLs, drains, services put whole, the merge with the config
 * file, and the state file. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "registry.h"

static struct sl_config file;

static void setup(void)
{
	static const char yaml[] = "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - address: 198.18.1.2:8080\n";
	struct sl_problems d = {0};

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &file, &d), 0);
}

static void teardown(void)
{
	sl_config_free(&file);
}

TestSuite(registry, .init = setup, .fini = teardown);

#define REG(r, body, now) sl_registry_register(r, "web", body, strlen(body), now, &e)

Test(registry, register_merges_into_the_service)
{
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;

	cr_assert_eq(
	    REG(&r, "{\"address\": \"198.18.1.3:8080\", \"weight\": 3, \"subset\": \"v2\"}", 0), 0,
	    "%s", e.msg);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0, "%s", e.msg);
	cr_assert_eq(eff.services[0].n_backends, 2);
	cr_expect_eq(eff.services[0].backends[1].weight, 3);
	cr_expect_str_eq(eff.services[0].backends[1].subset, "v2");
	cr_expect_eq(file.services[0].n_backends, 1, "the file's config is not touched");
	sl_config_free(&eff);
	/* The file's own backend cannot be registered again. */
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.2:8080\"}", 0), 0);
	cr_expect_eq(sl_registry_merge(&file, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 409);
	cr_expect_str_eq(e.field, "address");
	sl_registry_free(&r);
}

Test(registry, bad_registrations_name_the_field)
{
	static const struct {
		const char *body, *field;
	} cases[] = {
	    {"{\"weight\": 2}", "address"},
	    {"{\"address\": \"198.18.1.3\"}", "address"},
	    {"{\"address\": \"198.18.1.3:80\", \"weight\": 0}", "weight"},
	    {"{\"address\": \"198.18.1.3:80\", \"ttl\": \"later\"}", "ttl"},
	    {"{\"address\": \"198.18.1.3:80\", \"ttl\": \"25h\"}", "ttl"},
	    {"{\"address\": \"198.18.1.3:80\", \"zone\": 7}", "zone"},
	    {"{\"address\": \"198.18.1.3:80\", \"zone\": \"a b\"}", "zone"},
	    {"{\"address\": \"198.18.1.3:80\", \"zone\": \"-a\"}", "zone"},
	    {"{\"address\": \"198.18.1.3:80\", \"subset\": 7}", "subset"},
	};
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(REG(&r, cases[i].body, 0), -1, "%s", cases[i].body);
		cr_expect_eq(e.status, 400, "%s", cases[i].body);
		cr_expect_str_eq(e.field, cases[i].field, "%s: %s", cases[i].body, e.msg);
	}
	cr_expect_eq(REG(&r, "not json", 0), -1);
	cr_expect_eq(r.n_bes, 0, "nothing was added");
	sl_registry_free(&r);
}

Test(registry, ttl_expires_unless_refreshed)
{
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.3:80\", \"ttl\": \"2s\"}", 1000), 0);
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.4:80\"}", 1000), 0);
	cr_expect_eq(sl_registry_expire(&r, 2999), 0);
	cr_assert_eq(sl_registry_heartbeat(&r, "web", "198.18.1.3:80", 2500, &e), 0);
	cr_expect_eq(sl_registry_expire(&r, 4499), 0, "the heartbeat moved the expiry to 4500");
	cr_expect_eq(sl_registry_expire(&r, 4500), 1);
	cr_expect_eq(r.n_bes, 1, "a registration without a TTL never expires");
	cr_expect_eq(sl_registry_heartbeat(&r, "web", "198.18.1.3:80", 5000, &e), -1);
	cr_expect_eq(e.status, 404);
	sl_registry_free(&r);
}

Test(registry, services_put_whole_and_deleted_with_their_backends)
{
	static const char svc[] = "{\"frontend\": \"198.19.0.11:80\", \"lb\": \"maglev\"}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;

	cr_assert_eq(sl_registry_put_service(&r, &file, "api", svc, strlen(svc), SL_REG_LOCAL, &e),
		     0, "%s", e.msg);
	cr_assert_eq(sl_registry_register(&r, "api", "{\"address\": \"198.18.1.5:80\"}", 28, 0, &e),
		     0);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0, "%s", e.msg);
	cr_expect_eq(eff.n_services, 2);
	cr_expect_eq(eff.services[1].lb, SLUICE_LB_MAGLEV);
	cr_expect_eq(eff.services[1].n_backends, 1);
	sl_config_free(&eff);
	cr_expect_eq(sl_registry_put_service(&r, &file, "api", "{\"lb\": \"fastest\"}", 17,
					     SL_REG_LOCAL, &e),
		     -1);
	cr_expect_eq(e.status, 400);
	cr_expect(strstr(e.msg, "fastest"), "%s", e.msg);
	cr_expect_eq(sl_registry_put_service(&r, &file, "dup", "{\"frontend\": \"198.19.0.10:80\"}",
					     30, SL_REG_LOCAL, &e),
		     0, "alone it checks out");
	cr_expect_eq(sl_registry_merge(&file, &r, &eff, &e), -1, "but its frontend is web's");
	cr_expect_eq(e.status, 409);
	cr_assert_eq(sl_registry_delete_service(&r, "dup", &e), 0);
	cr_assert_eq(sl_registry_delete_service(&r, "api", &e), 0);
	cr_expect_eq(r.n_bes, 0, "its registrations went with it");
	sl_registry_free(&r);
}

Test(registry, state_file_round_trip)
{
	char dir[] = "/tmp/sl-registry-XXXXXX", path[64];
	struct sl_registry r = {0}, back = {0};
	struct sl_problem e = {0};
	struct sl_config eff;
	struct stat st;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(
	    REG(&r, "{\"address\": \"198.18.1.3:80\", \"ttl\": \"1500ms\", \"subset\": \"v1\"}",
		1000),
	    0);
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.4:80\", \"weight\": 7}", 1000), 0);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0);
	cr_assert_eq(sl_registry_drain(&r, &eff, "web", "198.18.1.2:8080", 1, &e), 0);
	sl_config_free(&eff);
	cr_assert_eq(sl_registry_save(&r, dir, &e), 0, "%s", e.msg);
	snprintf(path, sizeof(path), "%s/registry.json", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(sl_registry_load(dir, &file, &back, &e), 0, "%s", e.msg);
	cr_assert_eq(back.n_bes, 2);
	cr_expect_eq(back.bes[0].ttl_ms, 1500);
	cr_expect_eq(back.bes[0].expires_ms, 2500);
	cr_expect_str_eq(back.bes[0].subset, "v1");
	cr_expect_eq(back.bes[1].weight, 7);
	cr_expect_eq(back.bes[1].expires_ms, 0);
	cr_assert_eq(back.n_drains, 1);
	cr_expect_str_eq(back.drains[0].service, "web");
	sl_registry_free(&back);
	/* A damaged file is an error that names it, not an empty registry. */
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("{\"version\": 1, \"backends\": [", f);
	fclose(f);
	cr_expect_eq(sl_registry_load(dir, &file, &back, &e), -1);
	cr_expect(strstr(e.msg, "registry.json"), "%s", e.msg);
	sl_registry_free(&back);
	sl_registry_free(&r);
	unlink(path);
	rmdir(dir);
}

Test(registry, identity_label_must_be_defined)
{
	static const char id_yaml[] = "identities: [{name: peers, addresses: [198.18.1.0/24]}]\n"
				      "services:\n"
				      "  - name: web\n"
				      "    frontend: 198.19.0.10:80\n";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config cfg, eff;
	struct sl_problems d = {0};

	cr_assert_eq(sl_config_parse("t.yaml", id_yaml, strlen(id_yaml), &cfg, &d), 0);
	static const char ok[] = "{\"address\": \"198.18.1.3:80\", \"identity\": \"peers\"}";
	static const char bad[] = "{\"address\": \"198.18.1.4:80\", \"identity\": \"nobody\"}";

	cr_assert_eq(sl_registry_register(&r, "web", ok, strlen(ok), 0, &e), 0, "%s", e.msg);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), 0, "%s", e.msg);
	cr_expect_eq(eff.services[0].backends[0].identity, 1);
	sl_config_free(&eff);
	cr_assert_eq(sl_registry_register(&r, "web", bad, strlen(bad), 0, &e), 0,
		     "alone it checks out");
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_str_eq(e.field, "identity");
	sl_registry_free(&r);
	sl_config_free(&cfg);
}

/* A service put through the API names the key at fault in its service (field), as the
 * config diagnostic does; the message is the config's. */
Test(registry, put_service_names_the_key)
{
	static const struct {
		const char *body, *field;
	} cases[] = {
	    {"{\"frontend\": \"198.19.0.50:80\", \"backends\": [{\"address\": \"198.18.1.9:80\"}, "
	     "{\"address\": \"198.18.1.8:80\", \"weight\": 0}]}",
	     "backends[1].weight"},
	    {"{\"frontend\": \"198.19.0.50:80\", \"lb\": \"fastest\"}", "lb"},
	    {"{\"frontend\": \"198.19.0.50:80\", \"colour\": 1}", "colour"},
	    {"{\"frontend\": \"198.19.0.50:80\", \"health_check\": {\"intervall\": \"5s\"}}",
	     "health_check.intervall"},
	    {"{\"lb\": \"maglev\"}", "frontend"},
	    {"{\"name\": \"other\", \"frontend\": \"198.19.0.50:80\"}", "name"},
	};
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(sl_registry_put_service(&r, &file, "new1", cases[i].body,
						     strlen(cases[i].body), SL_REG_LOCAL, &e),
			     -1, "%s", cases[i].body);
		cr_expect_eq(e.status, 400, "%s", cases[i].body);
		cr_expect_str_eq(e.field, cases[i].field, "%s: %s", cases[i].body, e.msg);
	}
	cr_expect_eq(r.n_svcs, 0);
	sl_registry_free(&r);
}

/* The merge holds the file's and the registry's services to the same rules: frontends,
 * backends and agent.limits. */
Test(registry, merge_keeps_the_rules)
{
	static const char yaml[] = "agent: {limits: {services: 2, backends: 3}}\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends: [{address: 198.18.1.2:8080}]\n";
	static const char api[] = "{\"frontend\": \"198.19.0.11:80\"}";
	static const char dup[] = "{\"frontend\": \"198.19.0.10:80\"}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_problems d = {0};
	struct sl_config cfg, eff;

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0);
	cr_assert_eq(sl_registry_put_service(&r, &cfg, "api", api, strlen(api), SL_REG_LOCAL, &e),
		     0, "%s", e.msg);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), 0, "%s", e.msg);
	sl_config_free(&eff);
	cr_assert_eq(sl_registry_put_service(&r, &cfg, "dup", dup, strlen(dup), SL_REG_LOCAL, &e),
		     0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 409);
	cr_expect_str_eq(e.field, "frontend");
	cr_expect_str_eq(e.msg,
			 "frontend 198.19.0.10:80 of 'dup' is already used by service 'web'");
	cr_assert_eq(sl_registry_put_service(&r, &cfg, "dup", "{\"frontend\": \"198.19.0.12:80\"}",
					     30, SL_REG_LOCAL, &e),
		     0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1, "three services, limit two");
	cr_expect_eq(e.status, 400);
	cr_expect_str_eq(e.msg, "3 services, more than agent.limits.services (2)");
	cr_assert_eq(sl_registry_delete_service(&r, "dup", &e), 0);
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.3:80\"}", 0), 0);
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.4:80\"}", 0), 0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), 0, "%s", e.msg);
	cr_expect_eq(eff.services[0].n_backends, 3);
	sl_config_free(&eff);
	cr_assert_eq(REG(&r, "{\"address\": \"198.18.1.5:80\"}", 0), 0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1, "four backends, limit three");
	cr_expect_str_eq(e.msg, "4 backends, more than agent.limits.backends (3)");
	cr_assert_eq(REG(&r, "{\"address\": \"[2001:db8::5]:80\"}", 0), 0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 400);
	cr_expect_str_eq(e.field, "address");
	cr_expect_str_eq(e.msg, "backend [2001:db8::5]:80 is not of the family of web's frontend");
	sl_registry_free(&r);
	sl_config_free(&cfg);
}

/* A service put through the API takes no frontend the file could not: the refused ranges,
 * v4-mapped addresses, and outside agent.frontends when it is set (400, field "frontend"). */
Test(registry, put_service_frontend_rules)
{
	static const char *const bad[] = {
	    "{\"frontend\": \"127.0.0.1:5432\"}",
	    "{\"frontend\": \"169.254.169.254:80\"}",
	    "{\"frontend\": \"0.0.0.0:80\"}",
	    "{\"frontend\": \"224.0.0.251:5353\", \"protocol\": \"udp\"}",
	    "{\"frontend\": \"[::1]:80\"}",
	    "{\"frontend\": \"[fe80::1]:80\"}",
	    "{\"frontend\": \"[ff02::fb]:5353\", \"protocol\": \"udp\"}",
	    "{\"frontend\": \"[::]:80\"}",
	    "{\"frontend\": \"[::ffff:198.19.0.11]:80\"}",
	};
	static const char yaml[] = "agent: {frontends: [198.19.0.0/16]}\n"
				   "services: [{name: web, frontend: 198.19.0.10:80}]\n";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_problems d = {0};
	struct sl_config cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(sl_registry_put_service(&r, &file, "api", bad[i], strlen(bad[i]),
						     SL_REG_LOCAL, &e),
			     -1, "%s was accepted", bad[i]);
		cr_expect_eq(e.status, 400, "%s", bad[i]);
		cr_expect_str_eq(e.field, "frontend", "%s: %s", bad[i], e.msg);
	}
	cr_expect(strstr(e.msg, "write it as 198.19.0.11:80"), "%s", e.msg);
	cr_expect_eq(r.n_svcs, 0);
	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0, "%s",
		     d.n ? d.list[0].text : "");
	cr_expect_eq(sl_registry_put_service(&r, &cfg, "api", "{\"frontend\": \"10.96.0.1:80\"}",
					     28, SL_REG_LOCAL, &e),
		     -1, "outside agent.frontends");
	cr_expect_str_eq(e.field, "frontend");
	cr_expect(strstr(e.msg, "outside agent.frontends"), "%s", e.msg);
	cr_expect_eq(sl_registry_put_service(&r, &cfg, "api", "{\"frontend\": \"198.19.7.1:80\"}",
					     29, SL_REG_LOCAL, &e),
		     0, "%s", e.msg);
	sl_registry_free(&r);
	sl_config_free(&cfg);
}

/* A registration's identity label holds only inside a CIDR of that identity (and its longest
 * match): no one who can register can claim to be 'frontend'. 400, field "identity". */
Test(registry, identity_label_only_inside_its_cidr)
{
	static const char yaml[] = "identities:\n"
				   "  - {name: frontend, addresses: [198.18.2.0/24]}\n"
				   "  - {name: peers, addresses: [198.18.0.0/16]}\n"
				   "services: [{name: web, frontend: 198.19.0.10:80}]\n";
	static const char claim[] = "{\"address\": \"198.18.1.3:80\", \"identity\": \"frontend\"}";
	static const char wider[] = "{\"address\": \"198.18.2.7:80\", \"identity\": \"peers\"}";
	static const char own[] = "{\"address\": \"198.18.2.8:80\", \"identity\": \"frontend\"}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_problems d = {0};
	struct sl_config cfg, eff;

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0, "%s",
		     d.n ? d.list[0].text : "");
	cr_assert_eq(REG(&r, claim, 0), 0, "alone it checks out");
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1, "198.18.1.3 is not frontend's");
	cr_expect_eq(e.status, 400);
	cr_expect_str_eq(e.field, "identity");
	cr_expect(strstr(e.msg, "198.18.1.3:80"), "%s", e.msg);
	cr_assert_eq(sl_registry_deregister(&r, "web", "198.18.1.3:80", &e), 0);
	cr_assert_eq(REG(&r, wider, 0), 0);
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1,
		     "198.18.2.7 is frontend's by its longer prefix, not peers'");
	cr_expect_str_eq(e.field, "identity");
	cr_assert_eq(sl_registry_deregister(&r, "web", "198.18.2.7:80", &e), 0);
	cr_assert_eq(REG(&r, own, 0), 0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), 0, "%s", e.msg);
	cr_expect_eq(eff.services[0].backends[0].identity, 1);
	sl_config_free(&eff);
	sl_registry_free(&r);
	sl_config_free(&cfg);
}

/* A registration at a v4-mapped address is refused at once: it names the IPv4 form. */
Test(registry, v4_mapped_registration)
{
	static const char body[] = "{\"address\": \"[::ffff:198.18.1.3]:80\"}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	cr_expect_eq(REG(&r, body, 0), -1);
	cr_expect_eq(e.status, 400);
	cr_expect_str_eq(e.field, "address");
	cr_expect(strstr(e.msg, "write it as 198.18.1.3:80"), "%s", e.msg);
	cr_expect_eq(r.n_bes, 0);
	sl_registry_free(&r);
}

/* The server-side policy entry of a backend (sluice_policy_backends: address, port and
 * protocol -> the service whose policy guards it) is not taken over: an address:port of a
 * service with a policy is a backend of no other service, unless both are the file's. */
Test(registry, no_policy_takeover)
{
	static const char yaml[] = "identities: [{name: fe, cgroups: [/fe]}]\n"
				   "services:\n"
				   "  - name: db\n"
				   "    frontend: 198.19.0.20:5432\n"
				   "    backends: [{address: 198.18.1.2:5432}]\n"
				   "    policy: {default: deny, allow_from: [fe]}\n"
				   "  - name: db-ro\n"
				   "    frontend: 198.19.0.21:5432\n"
				   "    backends: [{address: 198.18.1.2:5432}]\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends: [{address: 198.18.1.3:80}]\n";
	static const char steal[] = "{\"frontend\": \"198.19.0.22:5432\", \"backends\": "
				    "[{\"address\": \"198.18.1.2:5432\"}]}";
	static const char guard[] = "{\"frontend\": \"198.19.0.23:80\", \"policy\": {\"default\": "
				    "\"deny\"}, \"backends\": [{\"address\": \"198.18.1.3:80\"}]}";
	static const char udp[] = "{\"frontend\": \"198.19.0.24:5432\", \"protocol\": \"udp\", "
				  "\"backends\": [{\"address\": \"198.18.1.2:5432\"}]}";
	static const char open[] = "{\"frontend\": \"198.19.0.25:80\", \"backends\": "
				   "[{\"address\": \"198.18.1.3:80\"}]}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_problems d = {0};
	struct sl_config cfg, eff;

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0,
		     "two services of the file may share a guarded backend: %s",
		     d.n ? d.list[0].text : "");
	/* An API service with a guarded backend of the file. */
	cr_assert_eq(
	    sl_registry_put_service(&r, &cfg, "steal", steal, strlen(steal), SL_REG_LOCAL, &e), 0,
	    "%s", e.msg);
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1,
		     "steal shares db's guarded backend");
	cr_expect_eq(e.status, 409);
	cr_expect(strstr(e.msg, "'db'"), "%s", e.msg);
	cr_expect(strstr(e.msg, "198.18.1.2:5432"), "%s", e.msg);
	cr_assert_eq(sl_registry_delete_service(&r, "steal", &e), 0);
	/* An API service with a policy over a backend of the file's web. */
	cr_assert_eq(
	    sl_registry_put_service(&r, &cfg, "guard", guard, strlen(guard), SL_REG_LOCAL, &e), 0,
	    "%s", e.msg);
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 409);
	cr_expect(strstr(e.msg, "'web'"), "%s", e.msg);
	cr_assert_eq(sl_registry_delete_service(&r, "guard", &e), 0);
	/* A registration of the guarded address into another service. */
	cr_assert_eq(
	    sl_registry_register(&r, "web", "{\"address\": \"198.18.1.2:5432\"}", 30, 0, &e), 0);
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 409);
	cr_expect(strstr(e.msg, "'db'"), "%s", e.msg);
	cr_assert_eq(sl_registry_deregister(&r, "web", "198.18.1.2:5432", &e), 0);
	/* Other protocol, or no policy on either side: no entry to take over. A registration
	 * into the guarded service itself is its own. */
	cr_assert_eq(sl_registry_put_service(&r, &cfg, "udp", udp, strlen(udp), SL_REG_LOCAL, &e),
		     0);
	cr_assert_eq(
	    sl_registry_put_service(&r, &cfg, "open", open, strlen(open), SL_REG_LOCAL, &e), 0);
	cr_assert_eq(
	    sl_registry_register(&r, "db", "{\"address\": \"198.18.1.4:5432\"}", 30, 0, &e), 0);
	cr_assert_eq(sl_registry_merge(&cfg, &r, &eff, &e), 0, "%s", e.msg);
	sl_config_free(&eff);
	/* ... but not into another one then. */
	cr_assert_eq(
	    sl_registry_register(&r, "db-ro", "{\"address\": \"198.18.1.4:5432\"}", 30, 0, &e), 0);
	cr_expect_eq(sl_registry_merge(&cfg, &r, &eff, &e), -1);
	cr_expect_eq(e.status, 409);
	sl_registry_free(&r);
	sl_config_free(&cfg);
}

/* write_state DIR TEXT: agent.state/registry.json with that text. */
static void write_state(const char *dir, const char *text)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/registry.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* An expires_ms that is negative or absurd (never expiring) drops that entry with a
 * problem; the rest of the file loads. */
Test(registry, state_file_bad_expiry)
{
	static const char *const bad[] = {
	    "{\"service\": \"web\", \"address\": \"198.18.1.3:80\", \"ttl\": \"30s\", "
	    "\"expires_ms\": -5}",
	    "{\"service\": \"web\", \"address\": \"198.18.1.3:80\", \"ttl\": \"30s\", "
	    "\"expires_ms\": 9000000000000000}",
	    "{\"service\": \"web\", \"address\": \"198.18.1.3:80\", \"ttl\": \"30s\", "
	    "\"expires_ms\": 0}",
	    "{\"service\": \"web\", \"address\": \"198.18.1.3:80\", \"expires_ms\": 5000}",
	    "{\"service\": \"web\", \"address\": \"198.18.1.3:80\", \"ttl\": \"30s\"}",
	};
	char dir[] = "/tmp/sl-registry-XXXXXX", text[512], path[64];
	struct sl_registry back = {0};
	struct sl_problem e = {0};

	cr_assert_not_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"version\": 1, \"backends\": [%s, {\"service\": \"web\", \"address\": "
			 "\"198.18.1.4:80\"}]}",
			 bad[i]);
		write_state(dir, text);
		cr_expect_eq(sl_registry_load(dir, &file, &back, &e), -1, "%s was loaded", bad[i]);
		cr_expect(strstr(e.msg, "expires_ms"), "%s: %s", bad[i], e.msg);
		cr_expect_eq(back.n_bes, 1, "%s: the good entry loads", bad[i]);
		cr_expect(back.n_bes < 1 || back.bes[0].addr.port == 80);
		sl_registry_free(&back);
	}
	/* In the near future, or past (it expires at the next tick): kept. */
	snprintf(
	    text, sizeof(text),
	    "{\"version\": 1, \"backends\": [{\"service\": \"web\", \"address\": "
	    "\"198.18.1.3:80\", \"ttl\": \"30s\", \"expires_ms\": %llu}, {\"service\": \"web\", "
	    "\"address\": \"198.18.1.5:80\", \"ttl\": \"30s\", \"expires_ms\": 1000}]}",
	    (unsigned long long)sl_registry_now_ms() + 20000);
	write_state(dir, text);
	cr_expect_eq(sl_registry_load(dir, &file, &back, &e), 0, "%s", e.msg);
	cr_expect_eq(back.n_bes, 2);
	sl_registry_free(&back);
	/* The cached etcd snapshot: a leased registration is "ttl 1ms", never expiring here. */
	write_state(dir, "{\"version\": 1, \"backends\": [{\"service\": \"web\", \"address\": "
			 "\"198.18.1.3:80\", \"ttl\": \"1ms\", \"origin\": \"etcd\", "
			 "\"expires_ms\": 0}]}");
	cr_expect_eq(sl_registry_load(dir, &file, &back, &e), 0, "%s", e.msg);
	cr_expect_eq(back.n_bes, 1);
	sl_registry_free(&back);
	snprintf(path, sizeof(path), "%s/registry.json", dir);
	unlink(path);
	rmdir(dir);
}

/* changed(a, b): the names sl_registry_changed gives, "," joined ("" for none); *etcd. */
static const char *changed(const struct sl_registry *a, const struct sl_registry *b, int *etcd)
{
	static char out[256];
	char(*names)[SLUICE_NAME_LEN];
	size_t n, len = 0;

	cr_assert_eq(sl_registry_changed(a, b, &names, &n, etcd), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len +=
		    (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? "," : "", names[i]);
	free(names);
	return out;
}

/* What a change touches, for the agent's scoped plan: each kind of change names its service;
 * a TTL or a drain names none; a registration moved within its service's order names it; an
 * etcd entry among them says so. */
Test(registry, changed_names_the_services_a_change_touches)
{
	static const char api[] = "{\"frontend\": \"198.19.0.11:80\", \"backends\": "
				  "[{\"address\": \"198.18.1.9:8080\"}]}";
	struct sl_registry a = {0}, b = {0};
	struct sl_problem e = {0};
	int etcd;

	cr_assert_eq(REG(&a, "{\"address\": \"198.18.1.3:8080\"}", 0), 0, "%s", e.msg);
	cr_assert_eq(REG(&a, "{\"address\": \"198.18.1.4:8080\"}", 0), 0, "%s", e.msg);
	cr_assert_eq(sl_registry_copy(&a, &b), 0);
	cr_expect_str_eq(changed(&a, &b, &etcd), "", "the same registry");
	cr_expect_eq(etcd, 0);

	cr_assert_eq(REG(&b, "{\"address\": \"198.18.1.5:8080\"}", 0), 0, "%s", e.msg);
	cr_expect_str_eq(changed(&a, &b, &etcd), "web", "a registration added");
	cr_expect_str_eq(changed(&b, &a, &etcd), "web", "... and removed");
	sl_registry_free(&b);

	cr_assert_eq(sl_registry_copy(&a, &b), 0);
	b.bes[1].weight = 7;
	cr_expect_str_eq(changed(&a, &b, &etcd), "web", "a weight changed");
	b.bes[1].weight = a.bes[1].weight;
	b.bes[1].ttl_ms = 30000;
	b.bes[1].expires_ms = 123456;
	cr_expect_str_eq(changed(&a, &b, &etcd), "", "a TTL is not the merge's");
	b.bes[0] = a.bes[1];
	b.bes[1] = a.bes[0];
	cr_expect_str_eq(changed(&a, &b, &etcd), "web", "the order of web's backends changed");
	sl_registry_free(&b);

	cr_assert_eq(sl_registry_copy(&a, &b), 0);
	cr_assert_eq(sl_registry_drain(&b, &file, "web", "198.18.1.2:8080", 1, &e), 0, "%s", e.msg);
	cr_expect_str_eq(changed(&a, &b, &etcd), "", "a drain changes no service");
	cr_assert_eq(sl_registry_put_service(&b, &file, "api", api, strlen(api), SL_REG_LOCAL, &e),
		     0, "%s", e.msg);
	cr_expect_str_eq(changed(&a, &b, &etcd), "api", "a service put");
	cr_expect_str_eq(changed(&b, &a, &etcd), "api", "... and deleted");
	cr_expect_eq(etcd, 0);
	b.svcs[0].origin = SL_REG_ETCD;
	cr_expect_str_eq(changed(&a, &b, &etcd), "api");
	cr_expect_eq(etcd, 1, "an etcd service among them");
	b.svcs[0].origin = SL_REG_LOCAL;
	cr_assert_eq(sl_registry_deregister(&b, "web", "198.18.1.3:8080", &e), 0, "%s", e.msg);
	cr_expect_str_eq(changed(&a, &b, &etcd), "api,web", "sorted, each once");
	cr_expect_eq(etcd, 0);
	b.bes[0].origin = SL_REG_ETCD;
	cr_expect_str_eq(changed(&a, &b, &etcd), "api,web");
	cr_expect_eq(etcd, 1, "an etcd registration among them");
	sl_registry_free(&b);
	sl_registry_free(&a);
}
