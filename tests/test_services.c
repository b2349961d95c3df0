// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The rules between services across their sources (services.c, the registry's merge): the
 * etcd snapshot skips each key that breaks them on its own and applies the rest, the API
 * stays strict, and a snapshot is indexed, not compared pairwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "registry.h"
#include "registry_int.h"
#include "services.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PFX	      "/sluice/"

static const char file_yaml[] = "registry: {etcd: {endpoints: [http://198.19.0.99:2379]}}\n"
				"identities: [{name: fe, addresses: [198.18.9.0/24]}]\n"
				"services:\n"
				"  - name: web\n"
				"    frontend: 198.19.0.10:80\n"
				"    backends: [{address: 198.18.1.2:8080}]\n"
				"  - name: db\n"
				"    frontend: 198.19.0.20:5432\n"
				"    backends: [{address: 198.18.1.20:5432}]\n"
				"    policy: {default: deny, allow_from: [fe]}\n";

struct kv {
	const char *key, *value;
	int applied; /* 1: it checks out on this node */
};

/* One snapshot with every kind of key that a node must skip on its own. */
static const struct kv snapshot[] = {
    {PFX "services/api",
     "{\"frontend\": \"198.19.0.11:80\", \"backends\": [{\"address\": \"198.18.1.5:80\"}]}", 1},
    {PFX "services/lo", "{\"frontend\": \"127.0.0.1:5432\"}", 0},
    {PFX "services/meta", "{\"frontend\": \"169.254.169.254:80\"}", 0},
    {PFX "services/etcd", "{\"frontend\": \"198.19.0.99:2379\"}", 0},
    {PFX "services/mapped", "{\"frontend\": \"[::ffff:198.19.0.13]:80\"}", 0},
    {PFX "services/steal",
     "{\"frontend\": \"198.19.0.12:5432\", \"backends\": [{\"address\": \"198.18.1.20:5432\"}]}",
     0},
    {PFX "services/twin", "{\"frontend\": \"198.19.0.10:80\"}", 0},
    {PFX "backends/web/198.18.1.3:80", "{\"address\": \"198.18.1.3:80\"}", 1},
    {PFX "backends/ghost/198.18.1.4:80", "{\"address\": \"198.18.1.4:80\"}", 0},
    {PFX "backends/web/198.18.1.2:8080", "{\"address\": \"198.18.1.2:8080\"}", 0},
    {PFX "backends/web/198.18.1.6:80", "{\"address\": \"198.18.1.6:80\", \"identity\": \"fe\"}", 0},
    {PFX "backends/web/198.18.9.6:80", "{\"address\": \"198.18.9.6:80\", \"identity\": \"fe\"}", 1},
    {PFX "backends/api/198.18.1.7:80", "{\"address\": \"198.18.1.7:80\"}", 1},
    {PFX "backends/lo/198.18.1.8:80", "{\"address\": \"198.18.1.8:80\"}", 0},
    {PFX "backends/web/198.18.1.20:5432", "{\"address\": \"198.18.1.20:5432\"}", 0},
    {PFX "backends/web/198.18.1.10:80", "{\"address\": \"198.18.1.11:80\"}", 0},
    {PFX "backends/api/[::ffff:198.18.1.12]:80", "{\"address\": \"[::ffff:198.18.1.12]:80\"}", 0},
};

static struct sl_config file;

static void setup(void)
{
	struct sl_problems d = {0};

	cr_assert_eq(sl_config_parse("t.yaml", file_yaml, strlen(file_yaml), &file, &d), 0, "%s",
		     d.n ? d.list[0].text : "");
}

static void teardown(void)
{
	sl_config_free(&file);
}

TestSuite(etcd_snapshot, .init = setup, .fini = teardown);

/* Load snapshot[] into r as the etcd part. */
static void load_snapshot(struct sl_registry *r)
{
	const char *keys[ARRAY_SIZE(snapshot)], *vals[ARRAY_SIZE(snapshot)];
	int64_t leases[ARRAY_SIZE(snapshot)] = {0};
	struct sl_problem e = {0};

	for (size_t i = 0; i < ARRAY_SIZE(snapshot); i++) {
		keys[i] = snapshot[i].key;
		vals[i] = snapshot[i].value;
	}
	sl_registry_from_etcd(r, PFX, keys, vals, leases, ARRAY_SIZE(snapshot), &file, &e);
}

static const struct sl_service_cfg *find(const struct sl_config *c, const char *name)
{
	return sl_service_find(c->services, c->n_services, name);
}

static int has_backend(const struct sl_service_cfg *svc, const char *hp)
{
	struct sl_sockaddr a;
	const char *why;

	cr_assert_eq(sl_parse_hostport(hp, &a, &why), 0, "%s", hp);
	return svc && sl_service_backend(svc, &a);
}

/* M2: one bad key does not stop the snapshot: every key that checks out applies. */
Test(etcd_snapshot, bad_keys_are_skipped_one_by_one)
{
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;
	const struct sl_service_cfg *web, *api;

	load_snapshot(&r);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0, "the snapshot was refused: %s",
		     e.msg);
	web = find(&eff, "web");
	api = find(&eff, "api");
	cr_assert_not_null(web);
	cr_assert_not_null(api, "services/api applies");
	cr_expect_eq(eff.n_services, 3, "web, db and api only");
	cr_expect(has_backend(web, "198.18.1.3:80"));
	cr_expect(has_backend(web, "198.18.9.6:80"), "an identity label inside its CIDR");
	cr_expect_eq(web->n_backends, 3, "the file's, .3 and .9.6");
	cr_expect(has_backend(api, "198.18.1.5:80"));
	cr_expect(has_backend(api, "198.18.1.7:80"));
	cr_expect_eq(api->n_backends, 2);
	cr_expect_eq(find(&eff, "db")->n_backends, 1, "db's guarded backend is its own");
	sl_config_free(&eff);
	sl_registry_free(&r);
}

/* The skipped keys, each with why: the ones that fail alone when the snapshot is read, the
 * ones that fail against the file or each other when it is merged. Each key that does not
 * apply is listed once; none that applies is. */
Test(etcd_snapshot, skipped_keys_are_listed_with_why)
{
	const char *keys[ARRAY_SIZE(snapshot)], *vals[ARRAY_SIZE(snapshot)];
	int64_t leases[ARRAY_SIZE(snapshot)] = {0};
	struct sl_reg_skips read = {0}, merged = {0};
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;
	size_t listed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(snapshot); i++) {
		keys[i] = snapshot[i].key;
		vals[i] = snapshot[i].value;
	}
	cr_assert_eq(sl_registry_etcd_load(&r, PFX, keys, vals, leases, ARRAY_SIZE(snapshot), &file,
					   &read, &e),
		     0, "%s", e.msg);
	cr_assert_eq(sl_registry_merge_skips(&file, &r, &eff, &merged, &e), 0, "%s", e.msg);
	cr_expect_eq(read.total, read.n);
	cr_expect_eq(merged.total, merged.n);
	for (size_t i = 0; i < ARRAY_SIZE(snapshot); i++) {
		size_t times = 0;

		for (size_t j = 0; j < read.n; j++)
			times += !strcmp(read.v[j].key, snapshot[i].key) && read.v[j].why[0];
		for (size_t j = 0; j < merged.n; j++)
			times += !strcmp(merged.v[j].key, snapshot[i].key) && merged.v[j].why[0];
		cr_expect_eq(times, !snapshot[i].applied, "%s listed %zu times", snapshot[i].key,
			     times);
		listed += !snapshot[i].applied;
	}
	cr_expect_eq(read.n + merged.n, listed);
	for (size_t j = 0; j < read.n; j++)
		cr_log_info("read: %s: %s", read.v[j].key, read.v[j].why);
	for (size_t j = 0; j < merged.n; j++)
		cr_log_info("merged: %s: %s", merged.v[j].key, merged.v[j].why);
	for (size_t j = 0; j < read.n; j++) {
		if (!strcmp(read.v[j].key, PFX "services/lo"))
			cr_expect(strstr(read.v[j].why, "loopback"), "%s", read.v[j].why);
		if (!strcmp(read.v[j].key, PFX "services/etcd"))
			cr_expect(strstr(read.v[j].why, "etcd endpoint"), "%s", read.v[j].why);
		if (!strcmp(read.v[j].key, PFX "backends/web/198.18.1.10:80"))
			cr_expect(strstr(read.v[j].why, "198.18.1.11:80"), "%s", read.v[j].why);
	}
	for (size_t j = 0; j < merged.n; j++) {
		if (!strcmp(merged.v[j].key, PFX "services/steal"))
			cr_expect(strstr(merged.v[j].why, "'db'"), "%s", merged.v[j].why);
		if (!strcmp(merged.v[j].key, PFX "backends/ghost/198.18.1.4:80"))
			cr_expect(strstr(merged.v[j].why, "no service 'ghost'"), "%s",
				  merged.v[j].why);
		if (!strcmp(merged.v[j].key, PFX "backends/web/198.18.1.6:80"))
			cr_expect(strstr(merged.v[j].why, "identity 'fe'"), "%s", merged.v[j].why);
	}
	sl_config_free(&eff);
	sl_reg_skips_free(&read);
	sl_reg_skips_free(&merged);
	sl_registry_free(&r);
}

/* Only the first SL_REG_SKIPS_KEPT are kept for the log; all are counted. */
Test(etcd_snapshot, skips_are_bounded)
{
	struct sl_reg_skips s = {0};

	for (int i = 0; i < 1000; i++)
		sl_reg_skip_add(&s, PFX "x", "why");
	cr_expect_eq(s.total, 1000);
	cr_expect_eq(s.n, SL_REG_SKIPS_KEPT);
	sl_reg_skips_free(&s);
}

/* The API stays strict beside skipped etcd keys: a request that breaks a rule is refused,
 * one that does not is applied. */
Test(etcd_snapshot, api_stays_strict)
{
	static const char clash[] = "{\"frontend\": \"198.19.0.11:80\"}"; /* api's */
	static const char fine[] = "{\"frontend\": \"198.19.0.30:80\"}";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;

	load_snapshot(&r);
	cr_assert_eq(
	    sl_registry_put_service(&r, &file, "local", clash, strlen(clash), SL_REG_LOCAL, &e), 0);
	cr_expect_eq(sl_registry_merge(&file, &r, &eff, &e), -1,
		     "its frontend is the etcd service api's");
	cr_expect_eq(e.status, 409);
	cr_expect_str_eq(e.field, "frontend");
	cr_assert_eq(
	    sl_registry_put_service(&r, &file, "local", fine, strlen(fine), SL_REG_LOCAL, &e), 0);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0, "%s", e.msg);
	cr_expect_not_null(find(&eff, "local"));
	sl_config_free(&eff);
	cr_assert_eq(
	    sl_registry_register(&r, "web", "{\"address\": \"198.18.1.20:5432\"}", 31, 0, &e), 0);
	cr_expect_eq(sl_registry_merge(&file, &r, &eff, &e), -1, "db's guarded backend");
	cr_expect_eq(e.status, 409);
	sl_registry_free(&r);
}

/* A snapshot of n_svc services with per backends each: keys, values and leases. */
struct big {
	char **keys, **vals;
	int64_t *leases;
	size_t n;
};

static void big_make(struct big *b, size_t n_svc, size_t per)
{
	size_t cap = n_svc * (per + 1), k = 0;

	b->keys = calloc(cap, sizeof(*b->keys));
	b->vals = calloc(cap, sizeof(*b->vals));
	b->leases = calloc(cap, sizeof(*b->leases));
	cr_assert(b->keys && b->vals && b->leases);
	for (size_t s = 0; s < n_svc; s++) {
		cr_assert(asprintf(&b->keys[k], PFX "services/s%zu", s) > 0);
		cr_assert(asprintf(&b->vals[k], "{\"frontend\": \"198.19.%zu.%zu:80\"}", s / 250,
				   1 + s % 250) > 0);
		k++;
		for (size_t j = 0; j < per; j++) {
			size_t a = s * per + j;

			cr_assert(asprintf(&b->keys[k], PFX "backends/s%zu/198.18.%zu.%zu:%zu", s,
					   (a / 250) % 250, 1 + a % 250, 80 + a / 62500) > 0);
			cr_assert(asprintf(&b->vals[k], "{\"address\": \"198.18.%zu.%zu:%zu\"}",
					   (a / 250) % 250, 1 + a % 250, 80 + a / 62500) > 0);
			k++;
		}
	}
	b->n = k;
}

static void big_free(struct big *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->keys[i]);
		free(b->vals[i]);
	}
	free(b->keys);
	free(b->vals);
	free(b->leases);
}

/* This thread's CPU time: the work done, not the time other processes took the CPU (the
 * tests run beside others on a shared machine). */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The best of 'runs' times of snapshot b turned into the effective config. */
static double time_snapshot(const struct sl_config *cfg, const struct big *b, int runs)
{
	double best = 1e9;

	for (int i = 0; i < runs; i++) {
		struct sl_registry r = {0};
		struct sl_problem e = {0};
		struct sl_config eff;
		double t0 = now_s(), t;
		size_t bad;

		bad = sl_registry_from_etcd(&r, PFX, (const char *const *)b->keys,
					    (const char *const *)b->vals, b->leases, b->n, cfg, &e);
		cr_assert_eq(bad, 0, "%s", e.msg);
		cr_assert_eq(sl_registry_merge(cfg, &r, &eff, &e), 0, "%s", e.msg);
		t = now_s() - t0;
		cr_assert_eq(sl_services_backends(eff.services, eff.n_services), b->n - r.n_svcs);
		sl_config_free(&eff);
		sl_registry_free(&r);
		if (t < best)
			best = t;
	}
	return best;
}

/* M3: 10x the keys cost about 10x the time (n log n), not 100x (pairwise). */
Test(etcd_snapshot, scales_n_log_n)
{
	static const char yaml[] = "agent: {limits: {services: 1024, backends: 65536}}\n";
	struct sl_problems d = {0};
	struct sl_config cfg;
	struct big small, large;
	double ts, tl;

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0);
	big_make(&small, 40, 99);  /* 4000 keys */
	big_make(&large, 400, 99); /* 40000 keys */
	ts = time_snapshot(&cfg, &small, 3);
	tl = time_snapshot(&cfg, &large, 3);
	cr_log_info("etcd snapshot: %zu keys %.1f ms, %zu keys %.1f ms (%.1fx)", small.n, ts * 1e3,
		    large.n, tl * 1e3, tl / ts);
	cr_expect_leq(tl, 20 * ts, "%zu keys took %.1f ms, %zu keys %.1f ms: %.1fx for 10x",
		      small.n, ts * 1e3, large.n, tl * 1e3, tl / ts);
	big_free(&small);
	big_free(&large);
	sl_config_free(&cfg);
}

/* M3: a snapshot of more keys than sluice indexes is refused whole, and the previous one
 * keeps serving. */
Test(etcd_snapshot, too_many_keys_refused_whole)
{
	const size_t n = 200001;
	const char **keys = calloc(n, sizeof(*keys)), **vals = calloc(n, sizeof(*vals));
	int64_t *leases = calloc(n, sizeof(*leases));
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	cr_assert(keys && vals && leases);
	load_snapshot(&r);
	cr_assert_gt(r.n_bes, 0);
	for (size_t i = 0; i < n; i++) {
		keys[i] = PFX "backends/web/198.18.1.3:80";
		vals[i] = "{\"address\": \"198.18.1.3:80\"}";
	}
	cr_expect_eq(sl_registry_from_etcd(&r, PFX, keys, vals, leases, n, &file, &e), n);
	cr_expect(strstr(e.msg, "200001 keys"), "%s", e.msg);
	cr_expect(strstr(e.msg, "200000"), "%s", e.msg);
	cr_expect(sl_registry_find_service(&r, "api"), "the previous snapshot is kept");
	sl_registry_free(&r);
	free(keys);
	free(vals);
	free(leases);
}

/* A key registered here too, or twice in the snapshot under another spelling of the address,
 * is skipped; the local registration stays. */
Test(etcd_snapshot, duplicates_skipped)
{
	static const char *const keys[] = {
	    PFX "backends/web/[2001:db8::5]:80",
	    PFX "backends/web/[2001:db8:0::5]:80",
	    PFX "backends/web/198.18.1.3:80",
	    PFX "services/api",
	};
	static const char *const vals[] = {
	    "{\"address\": \"[2001:db8::5]:80\"}",
	    "{\"address\": \"[2001:db8:0::5]:80\"}",
	    "{\"address\": \"198.18.1.3:80\"}",
	    "{\"frontend\": \"198.19.0.11:80\"}",
	};
	static const char api[] = "{\"frontend\": \"198.19.0.11:80\"}";
	int64_t leases[ARRAY_SIZE(keys)] = {0};
	struct sl_reg_skips skips = {0};
	struct sl_registry r = {0};
	struct sl_problem e = {0};

	cr_assert_eq(sl_registry_register(&r, "web", "{\"address\": \"198.18.1.3:80\"}", 28, 0, &e),
		     0);
	cr_assert_eq(sl_registry_put_service(&r, &file, "api", api, strlen(api), SL_REG_LOCAL, &e),
		     0);
	cr_assert_eq(
	    sl_registry_etcd_load(&r, PFX, keys, vals, leases, ARRAY_SIZE(keys), &file, &skips, &e),
	    0);
	cr_assert_eq(skips.n, 3, "the second v6 spelling, .3 and api");
	cr_expect_str_eq(skips.v[0].key, keys[1]);
	cr_expect(strstr(skips.v[0].why, "earlier key"), "%s", skips.v[0].why);
	cr_expect(strstr(skips.v[1].why, "registered here too"), "%s", skips.v[1].why);
	cr_expect(strstr(skips.v[2].why, "registered here"), "%s", skips.v[2].why);
	cr_expect_eq(r.n_bes, 2);
	cr_expect_eq(r.bes[0].origin, SL_REG_LOCAL);
	cr_expect_eq(r.svcs[0].origin, SL_REG_LOCAL);
	sl_reg_skips_free(&skips);
	sl_registry_free(&r);
}

/* The state file keeps the etcd snapshot as a cache: its services come back marked etcd. */
Test(etcd_snapshot, cached_in_the_state_file)
{
	struct sl_registry r = {0}, back = {0};
	struct sl_problem e = {0};
	json_t *o;

	load_snapshot(&r);
	o = sl_registry_to_json(&r);
	cr_assert_not_null(o);
	cr_expect_eq(sl_registry_from_json(o, &file, &back, &e), 0, "%s", e.msg);
	cr_expect_eq(back.n_svcs, r.n_svcs);
	cr_expect_eq(back.n_bes, r.n_bes);
	for (size_t i = 0; i < back.n_svcs; i++)
		cr_expect_eq(back.svcs[i].origin, SL_REG_ETCD, "%s", back.svcs[i].name);
	json_decref(o);
	sl_registry_free(&back);
	sl_registry_free(&r);
}

/* The rule of sl_be_users: a clash needs another service, a policy on one side, and not
 * both of the file. */
Test(services, backend_users)
{
	struct sl_be_users u;

	sl_be_users_init(&u);
	cr_expect_eq(sl_be_users_clash(&u, 1, 1, 0), -1, "nobody has it");
	sl_be_users_add(&u, 0, 1, 1); /* file service 0, with a policy */
	cr_expect_eq(sl_be_users_clash(&u, 0, 1, 0), -1, "its own service");
	cr_expect_eq(sl_be_users_clash(&u, 1, 0, 1), -1, "another of the file");
	cr_expect_eq(sl_be_users_clash(&u, 1, 1, 1), -1, "another of the file, with a policy");
	cr_expect_eq(sl_be_users_clash(&u, 1, 0, 0), 0, "the registry's, into a guarded one");
	sl_be_users_add(&u, 1, 0, 1); /* file service 1 shares it */
	cr_expect_eq(sl_be_users_clash(&u, 0, 1, 0), 1,
		     "an entry of the registry into guarded 0 would share it with 1");
	sl_be_users_init(&u);
	sl_be_users_add(&u, 2, 0, 0); /* a registry service without a policy */
	cr_expect_eq(sl_be_users_clash(&u, 3, 0, 0), -1, "no policy on either side");
	cr_expect_eq(sl_be_users_clash(&u, 3, 1, 1), 2, "a file service with a policy");
	sl_be_users_add(&u, 3, 0, 0);
	sl_be_users_add(&u, 4, 0, 0);
	cr_expect_neq(sl_be_users_clash(&u, 2, 1, 0), -1, "two others kept: one is not 2");
	cr_expect_neq(sl_be_users_clash(&u, 2, 1, 0), 2);
}

/* Frontends and etcd endpoints given by name: only address literals are compared. */
Test(services, frontend_check)
{
	struct sl_agent_cfg a = {0};
	struct sl_sockaddr fe;
	struct sl_problem p;
	const char *why;

	strcpy(a.etcd_endpoints[0], "http://localhost:2379");
	strcpy(a.etcd_endpoints[1], "https://[fd00::99]:2379/");
	strcpy(a.etcd_endpoints[2], "https://198.19.0.99");
	a.n_etcd = 3;
	cr_assert_eq(sl_parse_hostport("198.19.0.10:80", &fe, &why), 0);
	cr_expect_eq(sl_frontend_check(&a, &fe, &p), 0, "%s", p.msg);
	cr_assert_eq(sl_parse_hostport("198.19.0.99:443", &fe, &why), 0);
	cr_expect_eq(sl_frontend_check(&a, &fe, &p), -1);
	cr_expect_str_eq(p.field, "frontend");
	cr_expect_eq(p.status, 400);
	cr_assert_eq(sl_parse_hostport("[fd00::99]:80", &fe, &why), 0);
	cr_expect_eq(sl_frontend_check(&a, &fe, &p), -1);
	cr_expect(strstr(p.msg, "https://[fd00::99]:2379/"), "%s", p.msg);
}

/* A backend's zone comes through etcd (and is checked there, key by key); nodes/ keys are
 * agents announcing themselves, neither served nor skipped. */
Test(etcd_snapshot, zones_apply_and_node_keys_are_left_alone)
{
	const char *keys[] = {PFX "backends/web/198.18.1.3:8080",
			      PFX "backends/web/198.18.1.4:8080", PFX "nodes/node-1"};
	const char *vals[] = {"{\"address\": \"198.18.1.3:8080\", \"zone\": \"z2\"}",
			      "{\"address\": \"198.18.1.4:8080\", \"zone\": \"z 2\"}",
			      "{\"node\": \"node-1\", \"zone\": \"z1\", \"version\": \"0\"}"};
	int64_t leases[ARRAY_SIZE(keys)] = {0};
	struct sl_reg_skips skips = {0};
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	struct sl_config eff;
	const struct sl_backend_cfg *b;
	char *value;

	cr_assert_eq(
	    sl_registry_etcd_load(&r, PFX, keys, vals, leases, ARRAY_SIZE(keys), &file, &skips, &e),
	    0, "%s", e.msg);
	cr_assert_eq(skips.n, 1, "only the bad zone is skipped (%zu)", skips.n);
	cr_expect_str_eq(skips.v[0].key, keys[1]);
	cr_expect(strstr(skips.v[0].why, "zone 'z 2'"), "%s", skips.v[0].why);
	cr_assert_eq(sl_registry_merge(&file, &r, &eff, &e), 0, "%s", e.msg);
	b = sl_service_backend(sl_service_find(eff.services, eff.n_services, "web"),
			       &r.bes[0].addr);
	cr_assert_not_null(b);
	cr_expect_str_eq(b->zone, "z2");
	value = sl_registry_backend_value(&r.bes[0]);
	cr_expect(value && strstr(value, "\"zone\":\"z2\""), "%s", value ? value : "NULL");
	free(value);
	sl_config_free(&eff);
	sl_reg_skips_free(&skips);
	sl_registry_free(&r);
}
