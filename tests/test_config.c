// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of the config parser (userspace/lib/config*.c) against sluice.yaml(5) and the
 * README's "Configuration": valid configs are parsed field by field; every invalid config
 * is refused with the exact FILE:LINE:COL of the problem and its key path, all problems are
 * reported, and nothing of a refused config is kept. Also the service rules of services.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <sluice/abi.h>

#include "config.h"
#include "fixtures.h"
#include "services.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_NAME     TEST_CONFIG_FILE

/*
 * Diagnostic i of d is exactly "FILE:LINE:COL: " followed by a message that
 * contains 'sub'. 'what' names the case in the failure message.
 */
#define ASSERT_DIAG(d, i, file, line, col, sub, what)                                              \
	do {                                                                                       \
		char _pfx[512];                                                                    \
		const char *_m;                                                                    \
		size_t _pl;                                                                        \
                                                                                                   \
		cr_assert_lt((i), (d)->n, "%s: no diagnostic #%zu (only %zu)", (what),             \
			     (size_t)(i), (d)->n);                                                 \
		_m = (d)->list[(i)].text;                                                          \
		_pl = (size_t)snprintf(_pfx, sizeof(_pfx), "%s:%u:%u: ", (file), (unsigned)(line), \
				       (unsigned)(col));                                           \
		cr_assert(!strncmp(_m, _pfx, _pl), "%s: diagnostic \"%s\", want prefix \"%s\"",    \
			  (what), _m, _pfx);                                                       \
		cr_assert(strstr(_m + _pl, (sub)), "%s: diagnostic \"%s\", want it to say \"%s\"", \
			  (what), _m, (sub));                                                      \
	} while (0)

/* Every failed parse leaves no service behind. */
#define ASSERT_NOTHING_APPLIED(cfg, what)                                                          \
	do {                                                                                       \
		cr_assert_eq((cfg)->n_services, 0, "%s: refused, yet n_services = %zu", (what),    \
			     (cfg)->n_services);                                                   \
		cr_assert_null((cfg)->services, "%s: refused, yet services != NULL", (what));      \
	} while (0)

static const struct sl_service_cfg *find_svc(const struct sl_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}

/* ---- valid configs ------------------------------------------------------ */

#define NAME63 "abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh"

static const char full_yaml[] =
    "# a config with every implemented key\n"
    "agent:\n"
    "  cgroup: /sys/fs/cgroup/test.slice\n"
    "  bpffs: /sys/fs/bpf/sluice-test\n"
    "  limits:\n"
    "    services: 100\n"
    "    backends: 1000\n"
    "    revnat: 4096\n"
    "services:\n"
    "  - name: web\n"
    "    frontend: 10.96.0.10:80\n"
    "    protocol: tcp\n"
    "    lb: maglev\n"
    "    backends:\n"
    "      - address: 198.18.1.2:8080\n"
    "        weight: 3\n"
    "        subset: v1\n"
    "      - address: 198.18.1.3:8080   # weight defaults to 1\n"
    "        subset: v2\n"
    "  - name: dns\n"
    "    frontend: 10.96.0.53:53\n"
    "    protocol: udp\n"
    "    lb: round_robin\n"
    "    backends:\n"
    "      - {address: 198.18.2.1:53, weight: 1000}\n"
    "  - name: dns-tcp                # same frontend as dns, other protocol\n"
    "    frontend: 10.96.0.53:53\n"
    "    backends:\n"
    "      - address: 198.18.2.1:53\n"
    "  - name: api.v6_1\n"
    "    frontend: \"[fd00::10]:443\"\n"
    "    protocol: tcp\n"
    "    lb: random\n"
    "    backends:\n"
    "      - address: \"[2001:db8::2]:8443\"\n"
    "        weight: 1\n"
    "      - address: \"[2001:db8::3]:8443\"\n"
    "        weight: 2\n"
    "        subset: canary-0123456789abcdefghijklm\n"
    "  - name: 0empty\n"
    "    frontend: 10.96.0.11:65535\n"
    "    protocol: udp\n"
    "    backends: []\n"
    "  - name: " NAME63 "\n"
    "    frontend: \"[fd00::11]:1\"\n"
    "    protocol: udp\n"
    "    lb: maglev\n";

static void assert_addr4(const struct sl_sockaddr *sa, uint8_t a, uint8_t b, uint8_t c, uint8_t e,
			 uint16_t port, const char *what)
{
	const uint8_t want[16] = {a, b, c, e};

	cr_assert_eq(sa->family, SLUICE_AF_INET, "%s: family %u, want IPv4", what, sa->family);
	cr_assert_arr_eq(sa->addr.a8, want, 16, "%s: address is not %u.%u.%u.%u", what, a, b, c, e);
	cr_assert_eq(sa->port, port, "%s: port %u, want %u", what, sa->port, port);
}

static void assert_addr6(const struct sl_sockaddr *sa, const uint8_t want[16], uint16_t port,
			 const char *what)
{
	cr_assert_eq(sa->family, SLUICE_AF_INET6, "%s: family %u, want IPv6", what, sa->family);
	cr_assert_arr_eq(sa->addr.a8, want, 16, "%s: IPv6 address bytes", what);
	cr_assert_eq(sa->port, port, "%s: port %u, want %u", what, sa->port, port);
}

/* A service without affinity, split or any block: every feature is off. */
static void assert_features_off(const struct sl_service_cfg *s, const char *what)
{
	static const struct sl_health_cfg no_health;

	cr_assert_eq(s->affinity_ms, 0, "%s: affinity_ms %u", what, s->affinity_ms);
	cr_assert_eq(s->n_split, 0, "%s: n_split %zu", what, s->n_split);
	cr_assert_eq(s->health.type, SL_HC_NONE, "%s: health.type %u", what, s->health.type);
	cr_assert(!memcmp(&s->health, &no_health, sizeof(no_health)), "%s: health not all zero",
		  what);
	cr_assert_eq(s->outlier.consecutive_failures, 0, "%s: outlier on", what);
	cr_assert_eq(s->outlier.base_ejection_ms, 0, "%s: base_ejection_ms", what);
	cr_assert_eq(s->outlier.max_ejection_percent, 0, "%s: max_ejection_percent", what);
	cr_assert_eq(s->max_connections, 0, "%s: max_connections %u", what, s->max_connections);
	cr_assert_eq(s->rate_per_sec, 0, "%s: rate_per_sec %u", what, s->rate_per_sec);
	cr_assert_eq(s->rate_burst, 0, "%s: rate_burst %u", what, s->rate_burst);
	cr_assert_eq(s->connect_timeout_ms, 0, "%s: connect_timeout_ms", what);
	cr_assert_eq(s->idle_timeout_ms, 0, "%s: idle_timeout_ms", what);
}

Test(config_valid, full)
{
	static const uint8_t fd00_10[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
	static const uint8_t fd00_11[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11};
	static const uint8_t db8_2[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					  0,	0,    0,    0,	  0, 0, 0, 2};
	static const uint8_t db8_3[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					  0,	0,    0,    0,	  0, 0, 0, 3};
	struct sl_config cfg;
	struct sl_problems d = {0};
	const struct sl_service_cfg *s;
	int rc = test_config_parse(full_yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "full config refused:%s", test_problems_text(&d));
	cr_assert_eq(d.n, 0, "valid config, yet diagnostics:%s", test_problems_text(&d));
	cr_assert_str_eq(cfg.agent.cgroup, "/sys/fs/cgroup/test.slice");
	cr_assert_str_eq(cfg.agent.bpffs, "/sys/fs/bpf/sluice-test");
	cr_assert_eq(cfg.agent.limits.services, 100, "limits.services %u",
		     cfg.agent.limits.services);
	cr_assert_eq(cfg.agent.limits.backends, 1000, "limits.backends %u",
		     cfg.agent.limits.backends);
	cr_assert_eq(cfg.agent.limits.revnat, 4096, "limits.revnat %u", cfg.agent.limits.revnat);
	cr_assert_eq(cfg.n_services, 6, "n_services %zu, want 6", cfg.n_services);

	/* Services keep the file's order. */
	cr_assert_str_eq(cfg.services[0].name, "web");
	cr_assert_str_eq(cfg.services[1].name, "dns");
	cr_assert_str_eq(cfg.services[2].name, "dns-tcp");
	cr_assert_str_eq(cfg.services[3].name, "api.v6_1");
	cr_assert_str_eq(cfg.services[4].name, "0empty");
	cr_assert_str_eq(cfg.services[5].name, NAME63);

	s = &cfg.services[0];
	assert_addr4(&s->frontend, 10, 96, 0, 10, 80, "web frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_TCP, "web proto %u", s->proto);
	cr_assert_eq(s->lb, SLUICE_LB_MAGLEV, "web lb %u", s->lb);
	cr_assert_eq(s->n_backends, 2, "web n_backends %zu", s->n_backends);
	assert_addr4(&s->backends[0].addr, 198, 18, 1, 2, 8080, "web backend 0");
	cr_assert_eq(s->backends[0].weight, 3, "web backend 0 weight %u", s->backends[0].weight);
	cr_assert_str_eq(s->backends[0].subset, "v1");
	assert_addr4(&s->backends[1].addr, 198, 18, 1, 3, 8080, "web backend 1");
	cr_assert_eq(s->backends[1].weight, 1, "web backend 1 default weight %u",
		     s->backends[1].weight);
	cr_assert_str_eq(s->backends[1].subset, "v2");

	s = &cfg.services[1];
	assert_addr4(&s->frontend, 10, 96, 0, 53, 53, "dns frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_UDP, "dns proto %u", s->proto);
	cr_assert_eq(s->lb, SLUICE_LB_ROUND_ROBIN, "dns lb %u", s->lb);
	cr_assert_eq(s->n_backends, 1, "dns n_backends %zu", s->n_backends);
	assert_addr4(&s->backends[0].addr, 198, 18, 2, 1, 53, "dns backend 0");
	cr_assert_eq(s->backends[0].weight, 1000, "dns weight %u", s->backends[0].weight);
	cr_assert_str_eq(s->backends[0].subset, "", "no subset given, got '%s'",
			 s->backends[0].subset);

	s = &cfg.services[2];
	assert_addr4(&s->frontend, 10, 96, 0, 53, 53, "dns-tcp frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_TCP, "dns-tcp default proto %u", s->proto);
	cr_assert_eq(s->lb, SLUICE_LB_RANDOM, "dns-tcp default lb %u", s->lb);
	cr_assert_eq(s->n_backends, 1, "dns-tcp n_backends %zu", s->n_backends);

	s = &cfg.services[3];
	assert_addr6(&s->frontend, fd00_10, 443, "api.v6_1 frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_TCP, "api.v6_1 proto %u", s->proto);
	cr_assert_eq(s->lb, SLUICE_LB_RANDOM, "api.v6_1 lb %u", s->lb);
	cr_assert_eq(s->n_backends, 2, "api.v6_1 n_backends %zu", s->n_backends);
	assert_addr6(&s->backends[0].addr, db8_2, 8443, "api.v6_1 backend 0");
	cr_assert_eq(s->backends[0].weight, 1);
	cr_assert_str_eq(s->backends[0].subset, "");
	assert_addr6(&s->backends[1].addr, db8_3, 8443, "api.v6_1 backend 1");
	cr_assert_eq(s->backends[1].weight, 2);
	cr_assert_str_eq(s->backends[1].subset, "canary-0123456789abcdefghijklm");

	s = &cfg.services[4];
	assert_addr4(&s->frontend, 10, 96, 0, 11, 65535, "0empty frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_UDP);
	cr_assert_eq(s->n_backends, 0, "'backends: []' gave %zu backends", s->n_backends);

	for (size_t i = 0; i < cfg.n_services; i++)
		assert_features_off(&cfg.services[i], cfg.services[i].name);

	s = &cfg.services[5];
	assert_addr6(&s->frontend, fd00_11, 1, "63-char service frontend");
	cr_assert_eq(s->proto, SLUICE_PROTO_UDP);
	cr_assert_eq(s->lb, SLUICE_LB_MAGLEV);
	cr_assert_eq(s->n_backends, 0, "no 'backends' key gave %zu backends", s->n_backends);

	sl_config_free(&cfg);
	cr_assert_eq(cfg.n_services, 0, "sl_config_free leaves n_services %zu", cfg.n_services);
	cr_assert_null(cfg.services);
	sl_problems_free(&d);
}

Test(config_valid, defaults)
{
	static const char yaml[] = "services:\n"
				   "  - name: a\n"
				   "    frontend: 10.0.0.1:80\n"
				   "    backends:\n"
				   "      - address: 10.0.1.1:80\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	/* Whatever was in cfg before is not kept. */
	memset(&cfg, 0x5a, sizeof(cfg));
	rc = test_config_parse(yaml, &cfg, &d);
	cr_assert_eq(rc, 0, "refused:%s", test_problems_text(&d));
	cr_assert_str_eq(cfg.agent.cgroup, "", "default cgroup must be \"\" (the cgroup2 mount)");
	cr_assert_str_eq(cfg.agent.bpffs, "/sys/fs/bpf/sluice");
	cr_assert_eq(cfg.agent.limits.services, 1024, "default limits.services %u",
		     cfg.agent.limits.services);
	cr_assert_eq(cfg.agent.limits.backends, 16384, "default limits.backends %u",
		     cfg.agent.limits.backends);
	cr_assert_eq(cfg.agent.limits.revnat, 65536, "default limits.revnat %u",
		     cfg.agent.limits.revnat);
	cr_assert_eq(cfg.n_services, 1);
	cr_assert_eq(cfg.services[0].proto, SLUICE_PROTO_TCP, "default protocol %u (want tcp)",
		     cfg.services[0].proto);
	cr_assert_eq(cfg.services[0].lb, SLUICE_LB_RANDOM, "default lb %u (want random)",
		     cfg.services[0].lb);
	cr_assert_eq(cfg.services[0].n_backends, 1);
	cr_assert_eq(cfg.services[0].backends[0].weight, 1, "default weight %u",
		     cfg.services[0].backends[0].weight);
	cr_assert_str_eq(cfg.services[0].backends[0].subset, "");
	assert_features_off(&cfg.services[0], "no feature keys");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

Test(config_valid, empty_services)
{
	static const char *const yamls[] = {
	    "services: []\n",
	    "agent:\n  bpffs: /sys/fs/bpf/x\nservices: []\n",
	    "agent: {}\n",
	    "{}\n",
	    "---\nservices: []\n...\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(yamls); i++) {
		struct sl_config cfg;
		struct sl_problems d = {0};
		int rc = test_config_parse(yamls[i], &cfg, &d);

		cr_assert_eq(rc, 0, "\"%s\" refused:%s", yamls[i], test_problems_text(&d));
		cr_assert_eq(d.n, 0, "\"%s\": diagnostics on success", yamls[i]);
		cr_assert_eq(cfg.n_services, 0, "\"%s\": %zu services", yamls[i], cfg.n_services);
		sl_config_free(&cfg);
		sl_problems_free(&d);
	}
}

/* JSON is YAML: the same config in flow style gives the same result. */
Test(config_valid, json)
{
	static const char json[] =
	    "{\"agent\": {\"bpffs\": \"/sys/fs/bpf/j\", \"limits\": {\"services\": 8}},\n"
	    " \"services\": [\n"
	    "  {\"name\": \"web\", \"frontend\": \"10.96.0.10:80\", \"lb\": \"maglev\",\n"
	    "   \"backends\": [{\"address\": \"198.18.1.2:8080\", \"weight\": 3, \"subset\": "
	    "\"v1\"},\n"
	    "                {\"address\": \"198.18.1.3:8080\"}]},\n"
	    "  {\"name\": \"v6\", \"frontend\": \"[fd00::10]:53\", \"protocol\": \"udp\",\n"
	    "   \"backends\": [{\"address\": \"[2001:db8::2]:53\", \"weight\": 7}]}]}\n";
	static const char yaml[] = "agent:\n"
				   "  bpffs: /sys/fs/bpf/j\n"
				   "  limits: {services: 8}\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 10.96.0.10:80\n"
				   "    lb: maglev\n"
				   "    backends:\n"
				   "      - {address: 198.18.1.2:8080, weight: 3, subset: v1}\n"
				   "      - address: 198.18.1.3:8080\n"
				   "  - name: v6\n"
				   "    frontend: '[fd00::10]:53'\n"
				   "    protocol: udp\n"
				   "    backends: [{address: '[2001:db8::2]:53', weight: 7}]\n";
	struct sl_config j, y;
	struct sl_problems d = {0};
	int rc;

	rc = test_config_parse(json, &j, &d);
	cr_assert_eq(rc, 0, "JSON refused:%s", test_problems_text(&d));
	rc = test_config_parse(yaml, &y, &d);
	cr_assert_eq(rc, 0, "YAML twin refused:%s", test_problems_text(&d));
	cr_assert_str_eq(j.agent.bpffs, "/sys/fs/bpf/j");
	cr_assert_eq(j.agent.limits.services, 8);
	cr_assert_eq(j.n_services, 2, "JSON: %zu services", j.n_services);
	cr_assert_eq(y.n_services, 2, "YAML: %zu services", y.n_services);
	for (size_t i = 0; i < 2; i++) {
		const struct sl_service_cfg *a = &j.services[i], *b = &y.services[i];

		cr_assert_str_eq(a->name, b->name);
		cr_assert(sl_sockaddr_equal(&a->frontend, &b->frontend), "%s frontend", a->name);
		cr_assert_eq(a->proto, b->proto, "%s proto", a->name);
		cr_assert_eq(a->lb, b->lb, "%s lb", a->name);
		cr_assert_eq(a->n_backends, b->n_backends, "%s n_backends", a->name);
		for (size_t k = 0; k < a->n_backends; k++) {
			cr_assert(sl_sockaddr_equal(&a->backends[k].addr, &b->backends[k].addr),
				  "%s backend %zu address", a->name, k);
			cr_assert_eq(a->backends[k].weight, b->backends[k].weight,
				     "%s backend %zu weight", a->name, k);
			cr_assert_str_eq(a->backends[k].subset, b->backends[k].subset);
		}
	}
	cr_assert_eq(j.services[0].lb, SLUICE_LB_MAGLEV);
	cr_assert_eq(j.services[0].backends[0].weight, 3);
	cr_assert_eq(j.services[0].backends[1].weight, 1);
	cr_assert_str_eq(j.services[0].backends[0].subset, "v1");
	cr_assert_eq(j.services[1].proto, SLUICE_PROTO_UDP);
	cr_assert_eq(j.services[1].frontend.family, SLUICE_AF_INET6);
	cr_assert_eq(j.services[1].backends[0].weight, 7);
	sl_config_free(&j);
	sl_config_free(&y);
	sl_problems_free(&d);
}

/* The limits are checked whatever the order of 'agent' and 'services'. */
Test(config_valid, limits_at_exact_capacity)
{
	static const char yaml[] =
	    "services:\n"
	    "  - name: a\n"
	    "    frontend: 10.0.0.1:80\n"
	    "    backends: [{address: 10.0.1.1:80}, {address: 10.0.1.2:80}]\n"
	    "  - name: b\n"
	    "    frontend: 10.0.0.2:80\n"
	    "    backends: [{address: 10.0.1.1:80}]\n"
	    "agent:\n"
	    "  limits: {services: 2, backends: 3}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "2 services / 3 backends at limits 2 / 3 refused:%s",
		     test_problems_text(&d));
	cr_assert_eq(cfg.n_services, 2);
	cr_assert_eq(cfg.agent.limits.services, 2);
	cr_assert_eq(cfg.agent.limits.backends, 3);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* Exactly SLUICE_MAX_BACKENDS_PER_SERVICE backends are accepted. */
static char *gen_backends_yaml(size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "services:\n"
		   "  - name: big\n"
		   "    frontend: 10.96.0.10:80\n"
		   "    backends:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "      - address: 10.%zu.%zu.%zu:8080\n", i >> 16, (i >> 8) & 255,
			i & 255);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

Test(config_valid, max_backends_per_service)
{
	char *yaml = gen_backends_yaml(SLUICE_MAX_BACKENDS_PER_SERVICE);
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	cr_assert_not_null(yaml);
	rc = test_config_parse(yaml, &cfg, &d);
	cr_assert_eq(rc, 0, "%d backends refused:%s", SLUICE_MAX_BACKENDS_PER_SERVICE,
		     test_problems_text(&d));
	cr_assert_eq(cfg.services[0].n_backends, SLUICE_MAX_BACKENDS_PER_SERVICE);
	sl_config_free(&cfg);
	sl_problems_free(&d);
	free(yaml);
}

/* Diagnostics that were already in *d do not fail a valid config. */
Test(config_valid, diag_appends)
{
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	sl_problems_add(&d, "earlier", 7, 3, "an earlier problem %d", 42);
	cr_assert_eq(d.n, 1);
	cr_assert_str_eq(d.list[0].text, "earlier:7:3: an earlier problem 42");
	rc = test_config_parse("services: []\n", &cfg, &d);
	cr_assert_eq(rc, 0, "valid config failed because *d was not empty");
	cr_assert_eq(d.n, 1);
	sl_config_free(&cfg);
	rc = test_config_parse("bogus: 1\n", &cfg, &d);
	cr_assert_eq(rc, -1);
	cr_assert_eq(d.n, 2, "the new problem is appended: %zu", d.n);
	cr_assert_str_eq(d.list[0].text, "earlier:7:3: an earlier problem 42");
	ASSERT_DIAG(&d, 1, FILE_NAME, 1, 1, "unknown key 'bogus'", "append");
	sl_problems_free(&d);
	cr_assert_eq(d.n, 0);
	cr_assert_null(d.list);
}

/* ---- service features: lb, affinity, split and the blocks --------------- */

static const char features_yaml[] =
    "services:\n"
    "  - name: web\n"
    "    frontend: 10.96.0.10:80\n"
    "    lb: least_conn\n"
    "    affinity: 90s\n"
    "    backends:\n"
    "      - {address: 198.18.1.2:8080, subset: v1}\n"
    "      - {address: 198.18.1.3:8080, subset: v2, weight: 2}\n"
    "      - {address: 198.18.1.4:8080, subset: v3}   # in no split: no new connections\n"
    "      - {address: 198.18.1.5:8080}\n"
    "    split: {v1: 90, v2: 10}\n"
    "    health_check:\n"
    "      type: http\n"
    "      port: 8081\n"
    "      path: /ready?full=1\n"
    "      interval: 5s\n"
    "      timeout: 1500ms\n"
    "      healthy_threshold: 4\n"
    "      unhealthy_threshold: 6\n"
    "    outlier_detection: {consecutive_failures: 7, base_ejection_time: 2m,\n"
    "                        max_ejection_percent: 0}\n"
    "    circuit_breaker: {max_connections: 1000000}\n"
    "    rate_limit: {connections_per_second: 250, burst: 500}\n"
    "    timeouts: {connect: 3s, idle: 10m}\n"
    "  - name: dns\n"
    "    health_check: {type: tcp, port: 53}   # before the protocol: checked at the end\n"
    "    frontend: 10.96.0.53:53\n"
    "    protocol: udp\n"
    "    backends: [{address: 198.18.2.1:53}]\n"
    "    rate_limit: {connections_per_second: 1000000, burst: 1000000}\n"
    "    circuit_breaker: {max_connections: 0}  # 0 asks nothing of TCP\n"
    "    timeouts: {connect: 0s, idle: 0s}\n"
    "  - name: plain\n"
    "    frontend: 10.96.0.11:80\n"
    "    lb: round_robin\n"
    "    affinity: 0s\n";

Test(config_valid, features)
{
	struct sl_config cfg;
	struct sl_problems d = {0};
	const struct sl_service_cfg *s;
	int rc = test_config_parse(features_yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "refused:%s", test_problems_text(&d));
	cr_assert_eq(cfg.n_services, 3);

	s = find_svc(&cfg, "web");
	cr_assert_not_null(s);
	cr_assert_eq(s->lb, SLUICE_LB_LEAST_CONN, "lb %u", s->lb);
	cr_assert_str_eq(sl_lb_name(s->lb), "least_conn");
	cr_assert_eq(s->affinity_ms, 90000, "affinity_ms %u", s->affinity_ms);
	cr_assert_eq(s->n_backends, 4);
	cr_assert_str_eq(s->backends[2].subset, "v3");
	cr_assert_eq(s->n_split, 2, "n_split %zu", s->n_split);
	cr_assert_str_eq(s->split[0].subset, "v1");
	cr_assert_eq(s->split[0].percent, 90);
	cr_assert_str_eq(s->split[1].subset, "v2");
	cr_assert_eq(s->split[1].percent, 10);
	cr_assert_eq(s->health.type, SL_HC_HTTP, "health.type %u", s->health.type);
	cr_assert_eq(s->health.port, 8081);
	cr_assert_str_eq(s->health.path, "/ready?full=1");
	cr_assert_eq(s->health.interval_ms, 5000, "interval_ms %u", s->health.interval_ms);
	cr_assert_eq(s->health.timeout_ms, 1500, "timeout_ms %u", s->health.timeout_ms);
	cr_assert_eq(s->health.healthy_threshold, 4);
	cr_assert_eq(s->health.unhealthy_threshold, 6);
	cr_assert_eq(s->outlier.consecutive_failures, 7);
	cr_assert_eq(s->outlier.base_ejection_ms, 120000, "base_ejection_ms %u",
		     s->outlier.base_ejection_ms);
	cr_assert_eq(s->outlier.max_ejection_percent, 0);
	cr_assert_eq(s->max_connections, 1000000);
	cr_assert_eq(s->rate_per_sec, 250);
	cr_assert_eq(s->rate_burst, 500);
	cr_assert_eq(s->connect_timeout_ms, 3000, "connect_timeout_ms %u", s->connect_timeout_ms);
	cr_assert_eq(s->idle_timeout_ms, 600000, "idle_timeout_ms %u", s->idle_timeout_ms);

	s = find_svc(&cfg, "dns");
	cr_assert_not_null(s);
	cr_assert_eq(s->proto, SLUICE_PROTO_UDP);
	cr_assert_eq(s->health.type, SL_HC_TCP);
	cr_assert_eq(s->health.port, 53);
	cr_assert_str_eq(s->health.path, "/healthz", "default path '%s'", s->health.path);
	cr_assert_eq(s->health.interval_ms, 2000);
	cr_assert_eq(s->health.timeout_ms, 1000);
	cr_assert_eq(s->rate_per_sec, 1000000);
	cr_assert_eq(s->rate_burst, 1000000);
	cr_assert_eq(s->max_connections, 0);
	cr_assert_eq(s->outlier.consecutive_failures, 0, "no outlier block: off");
	cr_assert_eq(s->connect_timeout_ms, 0);
	cr_assert_eq(s->idle_timeout_ms, 0);
	cr_assert_eq(s->n_split, 0);

	s = find_svc(&cfg, "plain");
	cr_assert_not_null(s);
	cr_assert_eq(s->lb, SLUICE_LB_ROUND_ROBIN);
	assert_features_off(s, "plain");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* Each block present but empty: its defaults. */
Test(config_valid, empty_blocks_defaults)
{
	static const char yaml[] = "services:\n"
				   "  - name: web\n"
				   "    frontend: 10.96.0.10:80\n"
				   "    health_check: {}\n"
				   "    outlier_detection: {}\n"
				   "    circuit_breaker: {}\n"
				   "    rate_limit: {}\n"
				   "    timeouts: {}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	const struct sl_service_cfg *s;
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "refused:%s", test_problems_text(&d));
	s = &cfg.services[0];
	cr_assert_eq(s->health.type, SL_HC_TCP, "default type %u", s->health.type);
	cr_assert_eq(s->health.port, 0);
	cr_assert_str_eq(s->health.path, "/healthz");
	cr_assert_eq(s->health.interval_ms, 2000, "default interval %u", s->health.interval_ms);
	cr_assert_eq(s->health.timeout_ms, 1000, "default timeout %u", s->health.timeout_ms);
	cr_assert_eq(s->health.healthy_threshold, 2);
	cr_assert_eq(s->health.unhealthy_threshold, 3);
	cr_assert_eq(s->outlier.consecutive_failures, 5);
	cr_assert_eq(s->outlier.base_ejection_ms, 30000);
	cr_assert_eq(s->outlier.max_ejection_percent, 50);
	cr_assert_eq(s->max_connections, 0);
	cr_assert_eq(s->rate_per_sec, 0);
	cr_assert_eq(s->rate_burst, 0);
	cr_assert_eq(s->connect_timeout_ms, 0);
	cr_assert_eq(s->idle_timeout_ms, 0);
	cr_assert_eq(s->affinity_ms, 0);
	cr_assert_eq(s->n_split, 0);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* The limits themselves are accepted; type none is the same as no block. */
Test(config_valid, feature_limits)
{
	static const char yaml[] =
	    "services:\n"
	    "  - name: a\n"
	    "    frontend: 10.96.0.1:80\n"
	    "    affinity: 24h\n"
	    "    backends:\n"
	    "      - {address: 10.0.0.1:80, subset: s1}\n"
	    "      - {address: 10.0.0.2:80, subset: s2}\n"
	    "      - {address: 10.0.0.3:80, subset: s3}\n"
	    "      - {address: 10.0.0.4:80, subset: s4}\n"
	    "      - {address: 10.0.0.5:80, subset: s5}\n"
	    "      - {address: 10.0.0.6:80, subset: s6}\n"
	    "      - {address: 10.0.0.7:80, subset: s7}\n"
	    "      - {address: 10.0.0.8:80, subset: abcdefghij-abcdefghij-abcdefghi}\n"
	    "    split: {s1: 0, s2: 0, s3: 0, s4: 0, s5: 0, s6: 0, s7: 0,\n"
	    "            abcdefghij-abcdefghij-abcdefghi: 100}\n"
	    "    health_check: {type: http, port: 65535, interval: 1h, timeout: 1h,\n"
	    "                   healthy_threshold: 100, unhealthy_threshold: 1,\n"
	    "                   path: '/~!$&()*+,;=:@%2F'}\n"
	    "    outlier_detection: {consecutive_failures: 1000, base_ejection_time: 300s,\n"
	    "                        max_ejection_percent: 100}\n"
	    "    timeouts: {connect: 1h, idle: 32767s}\n"
	    "  - name: b\n"
	    "    frontend: 10.96.0.2:80\n"
	    "    health_check: {interval: 100ms}   # the default timeout shrinks to fit\n"
	    "    outlier_detection: {consecutive_failures: 1, base_ejection_time: 1s}\n"
	    "    timeouts: {idle: 1s}\n"
	    "    rate_limit: {connections_per_second: 1, burst: 1}\n"
	    "  - name: c\n"
	    "    frontend: 10.96.0.3:53\n"
	    "    protocol: udp\n"
	    "    health_check: {type: none, port: 0, interval: 5s}\n"
	    "  - name: d\n"
	    "    frontend: 10.96.0.4:80\n"
	    "    health_check: {type: tcp, timeout: 10ms, interval: 100ms}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	const struct sl_service_cfg *s;
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "refused:%s", test_problems_text(&d));
	cr_assert_eq(cfg.n_services, 4);
	s = &cfg.services[0];
	cr_assert_eq(s->affinity_ms, 86400000u);
	cr_assert_eq(s->n_split, SLUICE_MAX_SPLIT, "n_split %zu", s->n_split);
	cr_assert_str_eq(s->split[7].subset, "abcdefghij-abcdefghij-abcdefghi");
	cr_assert_eq(s->split[7].percent, 100);
	cr_assert_eq(s->split[0].percent, 0);
	cr_assert_eq(s->health.port, 65535);
	cr_assert_eq(s->health.interval_ms, 3600000u);
	cr_assert_eq(s->health.timeout_ms, 3600000u, "timeout == interval is allowed");
	cr_assert_eq(s->health.healthy_threshold, 100);
	cr_assert_eq(s->health.unhealthy_threshold, 1);
	cr_assert_str_eq(s->health.path, "/~!$&()*+,;=:@%2F");
	cr_assert_eq(s->outlier.consecutive_failures, 1000);
	cr_assert_eq(s->outlier.base_ejection_ms, 300000);
	cr_assert_eq(s->outlier.max_ejection_percent, 100);
	cr_assert_eq(s->connect_timeout_ms, 3600000u);
	cr_assert_eq(s->idle_timeout_ms, 32767000u);

	s = &cfg.services[1];
	cr_assert_eq(s->health.interval_ms, 100);
	cr_assert_eq(s->health.timeout_ms, 100, "default timeout %u, want the 100ms interval",
		     s->health.timeout_ms);
	cr_assert_eq(s->outlier.consecutive_failures, 1);
	cr_assert_eq(s->outlier.base_ejection_ms, 1000);
	cr_assert_eq(s->outlier.max_ejection_percent, 50, "default kept");
	cr_assert_eq(s->idle_timeout_ms, 1000);
	cr_assert_eq(s->rate_per_sec, 1);
	cr_assert_eq(s->rate_burst, 1);

	s = &cfg.services[2];
	assert_features_off(s, "type none on udp");

	s = &cfg.services[3];
	cr_assert_eq(s->health.timeout_ms, 10);
	cr_assert_eq(s->health.interval_ms, 100);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* ---- invalid configs ---------------------------------------------------- */

/* Lines 1-3; what a case adds starts on line 4 (keys at column 5). */
#define SVC                                                                                        \
	"services:\n"                                                                              \
	"  - name: web\n"                                                                          \
	"    frontend: 10.96.0.10:80\n"
/* Lines 1-5; a second backend starts on line 6 (its keys at column 9). */
#define SVC_BE                                                                                     \
	SVC "    backends:\n"                                                                      \
	    "      - address: 198.18.1.2:8080\n"

/* Lines 1-6: backends of subsets v1 and v2; a case adds from line 7. */
#define SVC_SUB                                                                                    \
	SVC "    backends:\n"                                                                      \
	    "      - {address: 198.18.1.2:8080, subset: v1}\n"                                     \
	    "      - {address: 198.18.1.3:8080, subset: v2}\n"
/* Lines 1-4 of a udp service; a case adds from line 5 (keys at column 5). */
#define SVC_UDP SVC "    protocol: udp\n"
/* A service with frontend F: its value at line 3, column 15. */
#define FE(f) "services:\n  - name: web\n    frontend: " f "\n"
/* A 129-character path. */
#define S16	"abcdefghijklmnop"
#define PATH129 "/" S16 S16 S16 S16 S16 S16 S16 S16

struct bad_case {
	const char *name;
	const char *yaml;
	unsigned int line, col;
	const char *msg; /* substring of the message after "FILE:LINE:COL: " */
	/* Diagnostics expected in all (0 = exactly 1); the first is checked. */
	size_t n_diag;
};

#define BAD(name_, yaml_, line_, col_, msg_)                                                       \
	{                                                                                          \
		.name = (name_), .yaml = (yaml_), .line = (line_), .col = (col_), .msg = (msg_)    \
	}
static const struct bad_case bad_cases[] = {
    /* YAML itself */
    BAD("syntax: unclosed flow sequence", "services: [\n", 2, 1, "YAML syntax"),
    BAD("syntax: tab indentation", "services:\n\t- name: web\n", 2, 1, "YAML syntax"),
    BAD("syntax: bad indentation", SVC "   lb: maglev\n", 4, 4, "YAML syntax"),
    BAD("empty file", "", 1, 1, "the configuration is empty"),
    BAD("only a comment", "# nothing here\n", 1, 1, "the configuration is empty"),
    BAD("root is a list", "- services\n", 1, 1, "configuration must be a mapping"),
    BAD("root key not a string", "{[a]: 1}\n", 1, 2, "keys must be plain strings"),
    BAD("second document", "services: []\n---\nservices: []\n", 2, 1,
	"only one YAML document is allowed"),
    /* unknown and not implemented keys */
    BAD("unknown root key", "services: []\nservice: []\n", 2, 1,
	"configuration: unknown key 'service'"),
    BAD("unknown agent key", "agent:\n  bpfs: /sys/fs/bpf/x\n", 2, 3, "agent: unknown key 'bpfs'"),
    BAD("unknown limits key", "agent:\n  limits:\n    service: 10\n", 3, 5,
	"agent.limits: unknown key 'service'"),
    BAD("unknown service key", SVC "    port: 80\n", 4, 5, "service: unknown key 'port'"),
    BAD("unknown backend key", SVC_BE "        wieght: 2\n", 6, 9, "backend: unknown key 'wieght'"),
    BAD("registry.etcd without endpoints", "services: []\nregistry: {etcd: {}}\n", 2, 18,
	"registry.etcd needs 'endpoints'"),
    BAD("registry.etcd bad endpoint", "registry:\n  etcd: {endpoints: [127.0.0.1:2379]}\n", 2, 22,
	"etcd endpoint '127.0.0.1:2379': want http://HOST:PORT"),
    BAD("registry.etcd bad prefix",
	"registry:\n  etcd: {endpoints: [http://127.0.0.1:2379], prefix: sluice}\n", 2, 54,
	"registry.etcd.prefix must start with '/'"),
    BAD("registry unknown key", "registry:\n  consul: {}\n", 2, 3,
	"registry: unknown key 'consul'"),
    BAD("agent.node starts with a dash", "agent:\n  node: -n1\n", 2, 9,
	"agent.node '-n1' must start with a letter or digit"),
    BAD("agent.node with a slash", "agent:\n  node: a/b\n", 2, 9,
	"agent.node 'a/b' may hold only letters, digits"),
    BAD("agent.node too long",
	"agent:\n  node: "
	"n123456789012345678901234567890123456789012345678901234567890123\n",
	2, 9, "must be 1..63 characters"),
    BAD("agent.zone with a space", "agent:\n  zone: 'z 1'\n", 2, 9,
	"agent.zone 'z 1' must be 1..31 characters of [A-Za-z0-9_.-]"),
    BAD("agent.zone a list", "agent:\n  zone: [z1]\n", 2, 9, "zone"),
    BAD("backend zone too long", SVC_BE "        zone: z1234567890123456789012345678901\n", 6, 15,
	"zone 'z1234567890123456789012345678901' must be 1..31 characters"),
    BAD("backend zone empty", SVC_BE "        zone: ''\n", 6, 15, "zone '' must be 1..31"),
    BAD("unknown locality", SVC "    locality: nearest\n", 4, 15, "locality"),
    BAD("bad agent.metrics", "agent:\n  metrics: localhost:9464\n", 2, 12,
	"metrics 'localhost:9464': bad IPv4 address"),
    BAD("relative agent.api", "agent:\n  api: run/s.sock\n", 2, 8,
	"'api' must be an absolute path"),
    BAD("agent.interfaces not a list", "agent:\n  interfaces: eth0\n", 2, 15,
	"'interfaces' must be a list"),
    BAD("empty interface glob", "agent:\n  interfaces: ['']\n", 2, 16,
	"interface glob must be 1..63 characters"),
    BAD("relative agent.state", "agent: {state: var/lib/sluice}\n", 1, 16,
	"'state' must be an absolute path"),
    BAD("identities not a list", "identities: {}\n", 1, 13, "'identities' must be a list"),
    BAD("identity without name", "identities:\n  - {cgroups: [/a]}\n", 2, 5,
	"identity has no 'name'"),
    BAD("identity bad name", "identities:\n  - {name: Front}\n", 2, 12,
	"identity name 'Front' must match"),
    BAD("identity named unknown", "identities:\n  - {name: unknown}\n", 2, 12,
	"identities[0].name: identity name 'unknown' is reserved: the service map shows callers "
	"without an identity as 'unknown'"),
    BAD("identity duplicate", "identities:\n  - {name: a}\n  - {name: a}\n", 3, 5,
	"duplicate identity 'a'"),
    BAD("identity unknown key", "identities:\n  - {name: a, pods: []}\n", 2, 15,
	"identity: unknown key 'pods'"),
    BAD("identity cgroups not a list", "identities:\n  - {name: a, cgroups: /x}\n", 2, 24,
	"'cgroups' must be a list"),
    BAD("identity relative cgroup", "identities:\n  - {name: a, cgroups: [x.slice]}\n", 2, 25,
	"cgroup 'x.slice' must be an absolute path"),
    BAD("identity bad cidr", "identities:\n  - {name: a, addresses: [198.18.1.0/33]}\n", 2, 27,
	"address '198.18.1.0/33'"),
    BAD("identity cidr host bits", "identities:\n  - {name: a, addresses: [198.18.1.5/24]}\n", 2,
	27, "has address bits set beyond its prefix length"),
    BAD("identity not an address", "identities:\n  - {name: a, addresses: [frontend]}\n", 2, 27,
	"not an IPv4 or IPv6 address"),
    BAD("identity v6 cidr host bits",
	"identities:\n  - {name: a, addresses: [\"2001:db8::1/64\"]}\n", 2, 27,
	"has address bits set beyond"),
    BAD("policy not a mapping",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: deny\n",
	6, 13, "policy must be a mapping"),
    BAD("policy bad default",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {default: block}\n",
	6, 23, "policy.default 'block': want allow or deny"),
    BAD("policy unknown key",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {allow: [frontend]}\n",
	6, 14, "policy: unknown key 'allow'"),
    BAD("policy unknown identity",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {allow_from: [backend]}\n",
	6, 27, "policy.allow_from names identity 'backend', which 'identities' does not define"),
    BAD("policy deny unknown identity",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {deny_from: [frontend, batch]}\n",
	6, 36, "policy.deny_from names identity 'batch'"),
    BAD("policy allow_from not a list",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {allow_from: frontend}\n",
	6, 26, "'policy.allow_from' must be a list of identity names"),
    BAD("policy allow_from a mapping item",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {allow_from: [{name: x}]}\n",
	6, 27, "'allow_from' must be a scalar"),
    BAD("policy duplicate key",
	"identities:\n  - {name: frontend, cgroups: [/sys/fs/cgroup/fe]}\n" SVC
	"    policy: {default: deny, default: allow}\n",
	6, 29, "policy: duplicate key 'default'"),
    BAD("policy without identities", SVC "    policy: {allow_from: [frontend]}\n", 4, 27,
	"policy.allow_from names identity 'frontend'"),
    BAD("backend identity unknown", "identities: [{name: fe}]\n" SVC_BE "        identity: be\n", 7,
	19, "backend identity 'be' is not defined in 'identities'"),
    BAD("agent.audit bad", "agent: {audit: some}\n", 1, 16, "audit 'some': want denied or all"),
    BAD("relative audit_log", "agent: {audit_log: audit.log}\n", 1, 20,
	"'audit_log' must be an absolute path"),
    /* duplicates */
    BAD("duplicate root key", "services: []\nservices: {}\n", 2, 1,
	"configuration: duplicate key 'services'"),
    /* The duplicate's value is bad too: it is not looked at, one diagnostic. */
    BAD("duplicate service key", SVC "    frontend: 10.96.0.11:0\n", 4, 5,
	"service: duplicate key 'frontend'"),
    BAD("duplicate backend key", SVC_BE "        address: 198.18.1.3\n", 6, 9,
	"backend: duplicate key 'address'"),
    BAD("duplicate service name", SVC "  - name: web\n    frontend: 10.96.0.11:80\n", 4, 5,
	"duplicate service name 'web'"),
    BAD("duplicate frontend tcp", SVC "  - name: api\n    frontend: 10.96.0.10:80\n", 5, 15,
	"frontend of 'api' is already used by service 'web' (tcp)"),
    BAD("duplicate frontend udp",
	SVC "    protocol: udp\n  - name: dns\n    frontend: 10.96.0.10:80\n    protocol: udp\n", 6,
	15, "frontend of 'dns' is already used by service 'web' (udp)"),
    BAD("duplicate frontend v6",
	"services:\n  - {name: a, frontend: '[fd00::1]:80'}\n  - {name: b, frontend: "
	"'[fd00:0::1]:80'}\n",
	3, 25, "frontend of 'b' is already used by service 'a'"),
    BAD("duplicate backend", SVC_BE "      - address: 198.18.1.2:8080\n", 6, 9,
	"duplicate backend 198.18.1.2:8080 in service 'web'"),
    BAD("duplicate backend v6",
	"services:\n  - name: web\n    frontend: '[fd00::1]:80'\n    backends:\n"
	"      - address: '[2001:db8::2]:80'\n      - address: '[2001:DB8:0::2]:80'\n",
	6, 9, "duplicate backend [2001:db8::2]:80 in service 'web'"),
    /* service names */
    BAD("name uppercase", "services:\n  - name: Web\n    frontend: 10.96.0.10:80\n", 2, 11,
	"service name 'Web' must match [a-z0-9][a-z0-9_.-]*"),
    BAD("name leading dash", "services:\n  - name: \"-web\"\n    frontend: 10.96.0.10:80\n", 2, 11,
	"service name '-web' must match"),
    BAD("name leading dot", "services:\n  - name: .web\n    frontend: 10.96.0.10:80\n", 2, 11,
	"service name '.web' must match"),
    BAD("name with a space", "services:\n  - name: my web\n    frontend: 10.96.0.10:80\n", 2, 11,
	"service name 'my web' must match"),
    BAD("name empty", "services:\n  - name: ''\n    frontend: 10.96.0.10:80\n", 2, 11,
	"service name '' must match"),
    BAD("name 64 chars", "services:\n  - name: " NAME63 "x\n    frontend: 10.96.0.10:80\n", 2, 11,
	"is longer than 63 characters"),
    BAD("name not a scalar", "services:\n  - name: [web]\n    frontend: 10.96.0.10:80\n", 2, 11,
	"'name' must be a scalar"),
    BAD("missing name", "services:\n  - frontend: 10.96.0.10:80\n", 2, 5, "service has no 'name'"),
    BAD("missing frontend", "services:\n  - name: web\n    lb: maglev\n", 2, 5,
	"service has no 'frontend'"),
    /* frontends */
    BAD("frontend bad v4", "services:\n  - name: web\n    frontend: 10.96.0.300:80\n", 3, 15,
	"frontend '10.96.0.300:80': bad IPv4 address"),
    BAD("frontend hostname", "services:\n  - name: web\n    frontend: web.local:80\n", 3, 15,
	"frontend 'web.local:80': bad IPv4 address"),
    BAD("frontend port 0", "services:\n  - name: web\n    frontend: 10.96.0.10:0\n", 3, 15,
	"frontend '10.96.0.10:0': port must be 1..65535"),
    BAD("frontend port 65536", "services:\n  - name: web\n    frontend: 10.96.0.10:65536\n", 3, 15,
	"frontend '10.96.0.10:65536': port must be 1..65535"),
    BAD("frontend no port", "services:\n  - name: web\n    frontend: 10.96.0.10\n", 3, 15,
	"frontend '10.96.0.10': missing :port"),
    BAD("frontend v6 without brackets", "services:\n  - name: web\n    frontend: fd00::10:80\n", 3,
	15, "frontend 'fd00::10:80': an IPv6 address is written [addr]:port"),
    BAD("frontend bad v6", "services:\n  - name: web\n    frontend: '[fd00::1::2]:80'\n", 3, 15,
	"bad IPv6 address"),
    BAD("frontend is a list", "services:\n  - name: web\n    frontend: [10.96.0.10, 80]\n", 3, 15,
	"'frontend' must be a scalar"),
    /* protocol, lb */
    BAD("bad protocol", SVC "    protocol: sctp\n", 4, 15, "protocol 'sctp': want tcp or udp"),
    BAD("protocol uppercase", SVC "    protocol: TCP\n", 4, 15, "protocol 'TCP': want tcp or udp"),
    BAD("bad lb", SVC "    lb: fastest\n", 4, 9,
	"lb 'fastest': want random, round_robin, maglev or least_conn"),
    /* backends */
    BAD("weight 0", SVC_BE "        weight: 0\n", 6, 17, "'weight': out of range (want 1..1000)"),
    BAD("weight 1001", SVC_BE "        weight: 1001\n", 6, 17,
	"'weight': out of range (want 1..1000)"),
    BAD("weight non-numeric", SVC_BE "        weight: heavy\n", 6, 17,
	"'weight': not an unsigned integer"),
    BAD("weight negative", SVC_BE "        weight: -1\n", 6, 17,
	"'weight': not an unsigned integer"),
    BAD("weight fraction", SVC_BE "        weight: 1.5\n", 6, 17,
	"'weight': not an unsigned integer"),
    BAD("backend missing address", SVC "    backends:\n      - weight: 2\n", 5, 9,
	"backend has no 'address'"),
    BAD("backend bad address", SVC "    backends:\n      - address: 198.18.1.2\n", 5, 18,
	"backend address '198.18.1.2': missing :port"),
    BAD("backend port 0", SVC "    backends:\n      - address: 198.18.1.2:0\n", 5, 18,
	"backend address '198.18.1.2:0': port must be 1..65535"),
    BAD("backend v6 in v4 service", SVC "    backends:\n      - address: '[2001:db8::2]:80'\n", 5,
	9, "backend [2001:db8::2]:80 is IPv6 but the frontend is IPv4"),
    BAD("backend v4 in v6 service",
	"services:\n  - name: web\n    frontend: '[fd00::1]:80'\n    backends:\n"
	"      - address: 198.18.1.2:80\n",
	5, 9, "backend 198.18.1.2:80 is IPv4 but the frontend is IPv6"),
    BAD("backend not a mapping", SVC "    backends:\n      - 198.18.1.2:8080\n", 5, 9,
	"backend must be a mapping"),
    BAD("subset too long", SVC_BE "        subset: abcdefghij-abcdefghij-abcdefghij\n", 6, 17,
	"'subset' must be 1..31 characters"),
    BAD("subset empty", SVC_BE "        subset: ''\n", 6, 17, "'subset' must be 1..31 characters"),
    /* structure */
    BAD("services not a list", "services: {name: web, frontend: 10.96.0.10:80}\n", 1, 11,
	"'services' must be a list"),
    BAD("services a scalar", "services: web\n", 1, 11, "'services' must be a list"),
    BAD("service not a mapping", "services:\n  - web\n", 2, 5, "service must be a mapping"),
    BAD("backends not a list", SVC "    backends: {address: 198.18.1.2:8080}\n", 4, 15,
	"'backends' must be a list"),
    BAD("backends a scalar", SVC "    backends: 198.18.1.2:8080\n", 4, 15,
	"'backends' must be a list"),
    BAD("agent not a mapping", "agent: /sys/fs/bpf\n", 1, 8, "agent must be a mapping"),
    BAD("limits not a mapping", "agent:\n  limits: 10\n", 2, 11, "agent.limits must be a mapping"),
    /* agent */
    BAD("relative bpffs", "agent:\n  bpffs: sys/fs/bpf/sluice\n", 2, 10,
	"'bpffs' must be an absolute path"),
    BAD("relative cgroup", "agent:\n  cgroup: ./test.slice\n", 2, 11,
	"'cgroup' must be an absolute path"),
    BAD("empty bpffs", "agent:\n  bpffs: ''\n", 2, 10, "'bpffs' must be an absolute path"),
    BAD("limits.services 0", "agent:\n  limits: {services: 0}\n", 2, 22,
	"'services': out of range (want 1..65536)"),
    BAD("limits.services above max", "agent:\n  limits: {services: 65537}\n", 2, 22,
	"'services': out of range (want 1..65536)"),
    BAD("limits.backends above max", "agent:\n  limits: {backends: 262145}\n", 2, 22,
	"'backends': out of range (want 1..262144)"),
    BAD("limits.revnat below 1024", "agent:\n  limits: {revnat: 1023}\n", 2, 20,
	"'revnat': out of range (want 1024..16777216)"),
    BAD("limits.services not a number", "agent:\n  limits: {services: many}\n", 2, 22,
	"'services': not an unsigned integer"),
    /* capacity */
    BAD("limits.services exceeded",
	"agent:\n  limits:\n    services: 2\nservices:\n"
	"  - {name: a, frontend: 10.96.0.1:80}\n"
	"  - {name: b, frontend: 10.96.0.2:80}\n"
	"  - {name: c, frontend: 10.96.0.3:80}\n",
	7, 5, "service 'c' is one more than agent.limits.services (2) holds"),
    BAD("limits.services exceeded, agent last",
	"services:\n"
	"  - {name: a, frontend: 10.96.0.1:80}\n"
	"  - {name: b, frontend: 10.96.0.2:80}\n"
	"  - {name: c, frontend: 10.96.0.3:80}\n"
	"agent: {limits: {services: 2}}\n",
	4, 5, "service 'c' is one more than agent.limits.services (2) holds"),
    BAD("limits.backends exceeded",
	"agent: {limits: {backends: 3}}\nservices:\n"
	"  - name: a\n    frontend: 10.96.0.1:80\n"
	"    backends: [{address: 10.0.0.1:80}, {address: 10.0.0.2:80}]\n"
	"  - name: b\n    frontend: 10.96.0.2:80\n"
	"    backends: [{address: 10.0.0.1:80}, {address: 10.0.0.2:80}]\n",
	6, 5, "service 'b' brings the backends to 4, more than agent.limits.backends (3)"),
    /* lb, affinity */
    BAD("affinity without unit", SVC "    affinity: 10\n", 4, 15,
	"'affinity': a duration needs a unit"),
    BAD("affinity unknown unit", SVC "    affinity: 1d\n", 4, 15,
	"'affinity': unknown duration unit"),
    BAD("affinity above 24h", SVC "    affinity: 25h\n", 4, 15,
	"'affinity': 25h is out of range (want 0s..24h)"),
    BAD("affinity not a scalar", SVC "    affinity: [10s]\n", 4, 15, "'affinity' must be a scalar"),
    BAD("affinity negative", SVC "    affinity: -1s\n", 4, 15,
	"'affinity': a duration is a number and a unit"),
    /* split */
    BAD("split not a mapping", SVC_SUB "    split: [v1, v2]\n", 7, 12,
	"'split' must be a mapping of subset to percent"),
    BAD("split too many subsets",
	SVC "    split: {a: 10, b: 10, c: 10, d: 10, e: 10, f: 10, g: 10, h: 10, i: 20}\n", 4, 12,
	"split has 9 subsets, more than the 8 a service holds"),
    BAD("split duplicate subset", SVC_SUB "    split: {v1: 50, v1: 50}\n", 7, 21,
	"split: duplicate subset 'v1'"),
    BAD("split percent above 100", SVC_SUB "    split: {v1: 101, v2: 0}\n", 7, 17,
	"split: percent of subset 'v1': out of range (want 0..100)"),
    BAD("split percent fraction", SVC_SUB "    split: {v1: 90.5, v2: 10}\n", 7, 17,
	"split: percent of subset 'v1': not an unsigned integer"),
    BAD("split percent negative", SVC_SUB "    split: {v1: 100, v2: -0}\n", 7, 26,
	"split: percent of subset 'v2': not an unsigned integer"),
    BAD("split percent with a sign", SVC_SUB "    split: {v1: +90, v2: 10}\n", 7, 17,
	"split: percent of subset 'v1': not an unsigned integer"),
    BAD("split percent not a scalar", SVC_SUB "    split: {v1: [90], v2: 10}\n", 7, 17,
	"split: percent of subset 'v1' must be a scalar"),
    BAD("split subset name too long",
	SVC_SUB "    split: {abcdefghij-abcdefghij-abcdefghij-x: 100}\n", 7, 13,
	"split: subset name must be 1..31 characters"),
    BAD("split subset name empty", SVC_SUB "    split: {'': 100}\n", 7, 13,
	"split: subset name must be 1..31 characters"),
    BAD("split subset name not a scalar", SVC_SUB "    split: {[v1]: 100}\n", 7, 13,
	"split: keys must be subset names"),
    BAD("split sums to 95", SVC_SUB "    split: {v1: 90, v2: 5}\n", 7, 12,
	"split of service 'web' sums to 95, not 100"),
    BAD("split sums to 110", SVC_SUB "    split:\n      v1: 90\n      v2: 20\n", 8, 7,
	"split of service 'web' sums to 110, not 100"),
    BAD("split empty", SVC_SUB "    split: {}\n", 7, 12,
	"split of service 'web' sums to 0, not 100"),
    BAD("split unknown subset", SVC_SUB "    split: {v1: 90, v3: 10}\n", 7, 21,
	"split names subset 'v3' but no backend of service 'web' has it"),
    BAD("split without backends", SVC "    split: {v1: 100}\n", 4, 13,
	"split names subset 'v1' but no backend of service 'web' has it"),
    /* The name comes after the split: the message still names the service. */
    BAD("split before the service name",
	"services:\n  - split: {v1: 50}\n    name: web\n    frontend: 10.96.0.10:80\n"
	"    backends: [{address: 198.18.1.2:8080, subset: v1}]\n",
	2, 12, "split of service 'web' sums to 50, not 100"),
    /* health_check */
    BAD("health_check not a mapping", SVC "    health_check: tcp\n", 4, 19,
	"health_check must be a mapping"),
    BAD("health_check unknown key", SVC "    health_check: {type: tcp, intervall: 5s}\n", 4, 31,
	"health_check: unknown key 'intervall'"),
    BAD("health_check duplicate key", SVC "    health_check: {port: 1, port: 2}\n", 4, 29,
	"health_check: duplicate key 'port'"),
    BAD("health_check bad type", SVC "    health_check: {type: icmp}\n", 4, 26,
	"health_check.type 'icmp': want none, tcp or http"),
    BAD("health_check type not a scalar", SVC "    health_check: {type: [tcp]}\n", 4, 26,
	"'health_check.type' must be a scalar"),
    BAD("health_check port 65536", SVC "    health_check: {port: 65536}\n", 4, 26,
	"'health_check.port': out of range (want 0..65535)"),
    BAD("health_check port a name", SVC "    health_check: {port: http}\n", 4, 26,
	"'health_check.port': not an unsigned integer"),
    BAD("health_check relative path", SVC "    health_check: {type: http, path: healthz}\n", 4, 38,
	"'health_check.path' must start with '/'"),
    BAD("health_check path with a space", SVC "    health_check: {path: '/a b'}\n", 4, 26,
	"'health_check.path' must be printable ASCII without spaces"),
    BAD("health_check path with a control char", SVC "    health_check: {path: \"/a\\tb\"}\n", 4,
	26, "'health_check.path' must be printable ASCII without spaces"),
    BAD("health_check path too long", SVC "    health_check: {path: " PATH129 "}\n", 4, 26,
	"'health_check.path' is longer than 127 characters"),
    BAD("health_check interval below 100ms", SVC "    health_check: {interval: 50ms}\n", 4, 30,
	"'health_check.interval': 50ms is out of range (want 100ms..1h)"),
    BAD("health_check interval above 1h", SVC "    health_check: {interval: 61m}\n", 4, 30,
	"'health_check.interval': 61m is out of range (want 100ms..1h)"),
    BAD("health_check interval without unit", SVC "    health_check: {interval: 2}\n", 4, 30,
	"'health_check.interval': a duration needs a unit"),
    BAD("health_check timeout below 10ms", SVC "    health_check: {timeout: 9ms}\n", 4, 29,
	"'health_check.timeout': 9ms is out of range (want 10ms..1h)"),
    BAD("health_check timeout above interval",
	SVC "    health_check: {interval: 1s, timeout: 2s}\n", 4, 43,
	"health_check.timeout 2s is longer than health_check.interval 1s"),
    BAD("health_check default interval below timeout", SVC "    health_check: {timeout: 2500ms}\n",
	4, 29, "health_check.timeout 2500ms is longer than health_check.interval 2s"),
    BAD("health_check healthy_threshold 0", SVC "    health_check: {healthy_threshold: 0}\n", 4, 39,
	"'health_check.healthy_threshold': out of range (want 1..100)"),
    BAD("health_check unhealthy_threshold 101",
	SVC "    health_check: {unhealthy_threshold: 101}\n", 4, 41,
	"'health_check.unhealthy_threshold': out of range (want 1..100)"),
    BAD("health_check empty value", SVC "    health_check:\n    lb: random\n", 4, 18,
	"health_check must be a mapping"),
    BAD("health_check of udp without port", SVC_UDP "    health_check: {type: tcp}\n", 5, 19,
	"health_check of udp service 'web' needs a 'port': probes are TCP"),
    BAD("health_check of udp, empty block", SVC_UDP "    health_check: {}\n", 5, 19,
	"health_check of udp service 'web' needs a 'port': probes are TCP"),
    BAD("health_check http before protocol udp",
	SVC "    health_check: {type: http, port: 0}\n    protocol: udp\n", 4, 19,
	"health_check of udp service 'web' needs a 'port': probes are TCP"),
    /* outlier_detection */
    BAD("outlier_detection not a mapping", SVC "    outlier_detection: 5\n", 4, 24,
	"outlier_detection must be a mapping"),
    BAD("outlier_detection unknown key", SVC "    outlier_detection: {consecutive_errors: 5}\n", 4,
	25, "outlier_detection: unknown key 'consecutive_errors'"),
    BAD("outlier consecutive_failures 0", SVC "    outlier_detection: {consecutive_failures: 0}\n",
	4, 47, "'outlier_detection.consecutive_failures': out of range (want 1..1000)"),
    BAD("outlier consecutive_failures 1001",
	SVC "    outlier_detection: {consecutive_failures: 1001}\n", 4, 47,
	"'outlier_detection.consecutive_failures': out of range (want 1..1000)"),
    BAD("outlier base_ejection_time 999ms",
	SVC "    outlier_detection: {base_ejection_time: 999ms}\n", 4, 45,
	"'outlier_detection.base_ejection_time': 999ms is out of range (want 1s..5m)"),
    BAD("outlier base_ejection_time 301s",
	SVC "    outlier_detection: {base_ejection_time: 301s}\n", 4, 45,
	"'outlier_detection.base_ejection_time': 301s is out of range (want 1s..5m)"),
    BAD("outlier max_ejection_percent 101",
	SVC "    outlier_detection: {max_ejection_percent: 101}\n", 4, 47,
	"'outlier_detection.max_ejection_percent': out of range (want 0..100)"),
    BAD("outlier_detection of udp", SVC_UDP "    outlier_detection: {}\n", 5, 24,
	"outlier_detection needs protocol tcp: failures are seen by TCP sockops"),
    /* circuit_breaker */
    BAD("circuit_breaker not a mapping", SVC "    circuit_breaker: 100\n", 4, 22,
	"circuit_breaker must be a mapping"),
    BAD("circuit_breaker unknown key", SVC "    circuit_breaker: {max_requests: 10}\n", 4, 23,
	"circuit_breaker: unknown key 'max_requests'"),
    BAD("circuit_breaker above max", SVC "    circuit_breaker: {max_connections: 1000001}\n", 4, 40,
	"'circuit_breaker.max_connections': out of range (want 0..1000000)"),
    BAD("circuit_breaker not a number", SVC "    circuit_breaker: {max_connections: lots}\n", 4, 40,
	"'circuit_breaker.max_connections': not an unsigned integer"),
    BAD("circuit_breaker of udp", SVC_UDP "    circuit_breaker: {max_connections: 10}\n", 5, 22,
	"circuit_breaker needs protocol tcp: connections are counted by TCP sockops"),
    /* rate_limit */
    BAD("rate_limit not a mapping", SVC "    rate_limit: 100\n", 4, 17,
	"rate_limit must be a mapping"),
    BAD("rate_limit unknown key", SVC "    rate_limit: {rate: 10}\n", 4, 18,
	"rate_limit: unknown key 'rate'"),
    BAD("rate_limit rate above max",
	SVC "    rate_limit: {connections_per_second: 1000001, burst: 1}\n", 4, 42,
	"'rate_limit.connections_per_second': out of range (want 0..1000000)"),
    BAD("rate_limit burst above max",
	SVC "    rate_limit: {connections_per_second: 1, burst: 1000001}\n", 4, 52,
	"'rate_limit.burst': out of range (want 0..1000000)"),
    BAD("rate_limit rate without burst", SVC "    rate_limit: {connections_per_second: 100}\n", 4,
	17, "rate_limit.burst must be at least 1 when connections_per_second is set"),
    BAD("rate_limit burst 0", SVC "    rate_limit: {connections_per_second: 100, burst: 0}\n", 4,
	54, "rate_limit.burst must be at least 1 when connections_per_second is set"),
    BAD("rate_limit burst without rate", SVC "    rate_limit: {burst: 10}\n", 4, 25,
	"rate_limit.burst is set but connections_per_second is 0"),
    BAD("rate_limit burst without rate, udp", SVC_UDP "    rate_limit: {burst: 10}\n", 5, 25,
	"rate_limit.burst is set but connections_per_second is 0"),
    /* timeouts */
    BAD("timeouts not a mapping", SVC "    timeouts: 5s\n", 4, 15, "timeouts must be a mapping"),
    BAD("timeouts unknown key", SVC "    timeouts: {read: 5s}\n", 4, 16,
	"timeouts: unknown key 'read'"),
    BAD("timeouts connect above 1h", SVC "    timeouts: {connect: 2h}\n", 4, 25,
	"'timeouts.connect': 2h is out of range (want 0s..1h)"),
    BAD("timeouts connect not a scalar", SVC "    timeouts: {connect: {s: 1}}\n", 4, 25,
	"'timeouts.connect' must be a scalar"),
    BAD("timeouts idle not whole seconds", SVC "    timeouts: {idle: 1500ms}\n", 4, 22,
	"timeouts.idle must be whole seconds: keepalive timers count seconds"),
    BAD("timeouts idle below 1s", SVC "    timeouts: {idle: 500ms}\n", 4, 22,
	"timeouts.idle must be whole seconds: keepalive timers count seconds"),
    BAD("timeouts idle above 32767s", SVC "    timeouts: {idle: 32768s}\n", 4, 22,
	"'timeouts.idle': 32768s is out of range (want 0s..32767s)"),
    BAD("timeouts idle without unit", SVC "    timeouts: {idle: 30}\n", 4, 22,
	"'timeouts.idle': a duration needs a unit"),
    BAD("timeouts of udp", SVC_UDP "    timeouts: {idle: 30s}\n", 5, 15,
	"timeouts needs protocol tcp: they are TCP socket options"),
    /* frontends a service may not take: without agent.frontends, the refused ranges */
    BAD("frontend loopback v4", FE("127.0.0.1:80"), 3, 15,
	"frontend 127.0.0.1:80 is a loopback address (127.0.0.0/8)"),
    BAD("frontend loopback v4, top", FE("127.255.255.254:5432"), 3, 15, "is a loopback address"),
    BAD("frontend loopback v6", FE("'[::1]:80'"), 3, 15,
	"frontend [::1]:80 is a loopback address (::1/128)"),
    BAD("frontend link-local v4", FE("169.254.169.254:80"), 3, 15,
	"frontend 169.254.169.254:80 is a link-local address (169.254.0.0/16)"),
    BAD("frontend link-local v6", FE("'[febf::1]:80'"), 3, 15,
	"is a link-local address (fe80::/10)"),
    BAD("frontend unspecified v4", FE("0.0.0.0:80"), 3, 15,
	"frontend 0.0.0.0:80 is the unspecified address"),
    BAD("frontend unspecified v6", FE("'[::]:80'"), 3, 15, "is the unspecified address"),
    BAD("frontend multicast v4", FE("224.0.0.1:80"), 3, 15, "is a multicast address (224.0.0.0/4)"),
    BAD("frontend multicast v4, top", FE("239.255.255.250:1900"), 3, 15, "is a multicast address"),
    BAD("frontend multicast v6", FE("'[ff02::1]:80'"), 3, 15, "is a multicast address (ff00::/8)"),
    BAD("frontend v4-mapped", FE("'[::ffff:10.96.0.10]:80'"), 3, 15,
	"frontend [::ffff:10.96.0.10]:80 is an IPv4-mapped IPv6 address: write it as "
	"10.96.0.10:80"),
    BAD("frontend the etcd endpoint's address",
	"registry: {etcd: {endpoints: [http://10.96.0.99:2379]}}\n" FE("10.96.0.99:80"), 4, 15,
	"frontend 10.96.0.99:80 is the address of etcd endpoint http://10.96.0.99:2379"),
    BAD("frontend the etcd endpoint's v6 address",
	"registry: {etcd: {endpoints: ['http://[fd00::99]:2379']}}\n" FE("'[fd00::99]:443'"), 4, 15,
	"is the address of etcd endpoint http://[fd00::99]:2379"),
    /* with agent.frontends: inside one of them, never an etcd endpoint, never v4-mapped */
    BAD("frontend outside agent.frontends",
	"agent: {frontends: [10.96.0.0/16]}\n" FE("10.97.0.1:80"), 4, 15,
	"frontend 10.97.0.1:80 is outside agent.frontends"),
    BAD("frontend outside agent.frontends given after the services",
	FE("10.97.0.1:80") "agent: {frontends: [10.96.0.0/16, 'fd00::/64']}\n", 3, 15,
	"frontend 10.97.0.1:80 is outside agent.frontends"),
    BAD("frontend v6 outside v4 agent.frontends",
	"agent: {frontends: [10.96.0.0/16]}\n" FE("'[fd00::10]:80'"), 4, 15,
	"is outside agent.frontends"),
    BAD("frontend in agent.frontends but etcd's",
	"agent: {frontends: [10.96.0.0/16]}\n"
	"registry: {etcd: {endpoints: [http://10.96.0.99:2379]}}\n" FE("10.96.0.99:80"),
	5, 15, "is the address of etcd endpoint"),
    BAD("frontend v4-mapped though agent.frontends has it",
	"agent: {frontends: ['::ffff:0:0/96']}\n" FE("'[::ffff:10.96.0.10]:80'"), 4, 15,
	"write it as 10.96.0.10:80"),
    BAD("agent.frontends not a list", "agent: {frontends: 10.96.0.0/16}\n", 1, 20,
	"'frontends' must be a list of CIDRs"),
    BAD("agent.frontends host bits", "agent: {frontends: [10.96.0.1/8]}\n", 1, 21,
	"agent.frontends '10.96.0.1/8': has address bits set beyond its prefix length"),
    BAD("agent.frontends not an address", "agent: {frontends: [web]}\n", 1, 21,
	"agent.frontends 'web': not an IPv4 or IPv6 address"),
    /* v4-mapped backends */
    BAD("backend v4-mapped in v6 service",
	"services:\n  - name: web\n    frontend: '[fd00::1]:80'\n    backends:\n"
	"      - address: '[::ffff:198.18.1.2]:80'\n",
	5, 9,
	"backend [::ffff:198.18.1.2]:80 is an IPv4-mapped IPv6 address: write it as "
	"198.18.1.2:80"),
    BAD("backend v4-mapped in v4 service",
	SVC "    backends:\n      - address: '[::ffff:198.18.1.2]:80'\n", 5, 9,
	"write it as 198.18.1.2:80"),
    /* identity labels: only inside a CIDR the identity has, and its longest match */
    BAD("backend identity outside its addresses",
	"identities: [{name: fe, addresses: [198.18.2.0/24]}]\n" SVC_BE "        identity: fe\n", 7,
	19,
	"backend 198.18.1.2:8080 cannot have identity 'fe': no address of 'fe' in "
	"identities[].addresses holds it"),
    BAD("backend identity without addresses",
	"identities: [{name: fe, cgroups: [/x]}]\n" SVC_BE "        identity: fe\n", 7, 19,
	"no address of 'fe' in identities[].addresses holds it"),
    BAD("backend identity, another's longer prefix",
	"identities: [{name: a, addresses: [198.18.0.0/16]}, {name: b, addresses: "
	"[198.18.1.0/24]}]\n" SVC_BE "        identity: a\n",
	7, 19,
	"backend 198.18.1.2:8080 cannot have identity 'a': identity 'b' holds it by a longer "
	"prefix (198.18.1.0/24)"),
    /* registry.etcd TLS: ca, cert and key together, and https:// with them only */
    BAD("registry.etcd cert without key",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379'], ca: /c.pem, cert: /d.pem}\n", 2,
	9, "registry.etcd: ca, cert and key come together; 'key' is missing"),
    BAD("registry.etcd key alone",
	"registry:\n  etcd: {endpoints: ['http://10.0.0.5:2379'], key: /k.pem}\n", 2, 9,
	"registry.etcd: ca, cert and key come together; 'ca' is missing"),
    BAD("registry.etcd https without TLS",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379']}\n", 2, 22,
	"etcd endpoint 'https://10.0.0.5:2379': https:// needs registry.etcd.ca, cert and key"),
    BAD("registry.etcd http with TLS",
	"registry:\n  etcd: {endpoints: ['http://10.0.0.5:2379'], ca: /c, cert: /d, key: /k}\n", 2,
	22,
	"etcd endpoint 'http://10.0.0.5:2379': with registry.etcd.ca, cert and key, want "
	"https://HOST:PORT"),
    BAD("registry.etcd relative ca",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379'], ca: c.pem, cert: /d, key: /k}\n",
	2, 52, "'registry.etcd.ca' must be an absolute path"),
    /* registry.etcd auth: user and password_file together, with TLS only */
    BAD("registry.etcd user without password_file",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379'], ca: /c, cert: /d, key: /k, "
	"user: node}\n",
	2, 9, "registry.etcd: user and password_file come together; 'password_file' is missing"),
    BAD("registry.etcd password_file without user",
	"registry:\n  etcd: {endpoints: ['http://10.0.0.5:2379'], password_file: /p}\n", 2, 9,
	"registry.etcd: user and password_file come together; 'user' is missing"),
    BAD("registry.etcd user without TLS",
	"registry:\n  etcd: {endpoints: ['http://10.0.0.5:2379'], user: node, password_file: /p}\n",
	2, 53, "registry.etcd.user needs TLS (registry.etcd.ca, cert and key)"),
    BAD("registry.etcd relative password_file",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379'], ca: /c, cert: /d, key: /k, "
	"user: node, password_file: p}\n",
	2, 102, "'registry.etcd.password_file' must be an absolute path"),
    BAD("registry.etcd empty user",
	"registry:\n  etcd: {endpoints: ['https://10.0.0.5:2379'], ca: /c, cert: /d, key: /k, "
	"user: '', password_file: /p}\n",
	2, 81, "registry.etcd.user must be a name under 128 characters"),
    /* mtls */
    BAD("mtls without trust_domain", "mtls: {port: 1}\n", 1, 7, "mtls needs 'trust_domain'"),
    BAD("mtls trust_domain not a DNS name", "mtls: {trust_domain: Sluice_Test}\n", 1, 22,
	"mtls.trust_domain 'Sluice_Test' must be a DNS name"),
    BAD("mtls trust_domain empty label", "mtls: {trust_domain: a..b}\n", 1, 22,
	"must be a DNS name"),
    BAD("mtls trust_domain trailing dash", "mtls: {trust_domain: a-.b}\n", 1, 22,
	"must be a DNS name"),
    BAD("mtls port 0", "mtls: {trust_domain: a.b, port: 0}\n", 1, 33, "port"),
    BAD("mtls outbound_port is port", "mtls: {trust_domain: a.b, outbound_port: 15008}\n", 1, 7,
	"mtls.outbound_port 15008 is mtls.port too"),
    BAD("mtls ca relative", "mtls: {trust_domain: a.b, ca: ca.pem}\n", 1, 31,
	"must be an absolute path"),
    BAD("mtls unknown key", "mtls: {trust_domain: a.b, cert: /x}\n", 1, 27,
	"mtls: unknown key 'cert'"),
    BAD("service mtls without the block", SVC "    mtls: strict\n", 4, 11,
	"mtls of service 'web' needs the top-level mtls: block"),
    BAD("service mtls bad value", SVC "    mtls: loose\nmtls: {trust_domain: a.b}\n", 4, 11,
	"mtls 'loose': want off, permissive or strict"),
    BAD("service mtls on udp", SVC_UDP "    mtls: permissive\nmtls: {trust_domain: a.b}\n", 5, 11,
	"mtls needs protocol tcp: UDP is never tunnelled"),
};

Test(config_mtls, block_defaults_and_service_modes)
{
	static const char yaml[] = "services:\n"
				   "  - {name: a, frontend: \"10.96.0.1:80\", mtls: strict}\n"
				   "  - {name: b, frontend: \"10.96.0.2:80\", mtls: permissive}\n"
				   "  - {name: c, frontend: \"10.96.0.3:80\", mtls: off}\n"
				   "  - {name: d, frontend: \"10.96.0.4:80\"}\n"
				   "mtls:\n"
				   "  trust_domain: sluice.test\n";
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "%s", test_problems_text(&d));
	cr_expect_eq(cfg.agent.mtls.on, 1);
	cr_expect_str_eq(cfg.agent.mtls.trust_domain, "sluice.test");
	cr_expect_str_eq(cfg.agent.mtls.ca, "/etc/sluice/mtls/ca.pem");
	cr_expect_str_eq(cfg.agent.mtls.certs, "/etc/sluice/mtls");
	cr_expect_eq(cfg.agent.mtls.port, 15008);
	cr_expect_eq(cfg.agent.mtls.outbound_port, 15001);
	cr_expect_eq(find_svc(&cfg, "a")->mtls, SL_MTLS_STRICT);
	cr_expect_eq(find_svc(&cfg, "b")->mtls, SL_MTLS_PERMISSIVE);
	cr_expect_eq(find_svc(&cfg, "c")->mtls, SL_MTLS_OFF);
	cr_expect_eq(find_svc(&cfg, "d")->mtls, SL_MTLS_OFF);
	sl_config_free(&cfg);

	cr_assert_eq(
	    test_config_parse("mtls: {trust_domain: x.y, ca: /c/ca.pem, certs: /c, port: 443, "
			      "outbound_port: 8443}\nservices: []\n",
			      &cfg, &d),
	    0, "%s", test_problems_text(&d));
	cr_expect_str_eq(cfg.agent.mtls.ca, "/c/ca.pem");
	cr_expect_str_eq(cfg.agent.mtls.certs, "/c");
	cr_expect_eq(cfg.agent.mtls.port, 443);
	cr_expect_eq(cfg.agent.mtls.outbound_port, 8443);
	sl_config_free(&cfg);

	cr_assert_eq(test_config_parse("services: []\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_expect_eq(cfg.agent.mtls.on, 0, "no block, no mtls");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* A service from the API or etcd: its mtls is checked against the agent's block. */
Test(config_mtls, registered_service_needs_the_agents_block)
{
	static const char body[] = "{name: a, frontend: \"10.96.0.1:80\", mtls: strict}";
	struct sl_problems d = {0};
	struct sl_config agent;
	struct sl_service_cfg svc;

	cr_assert_eq(test_config_parse("services: []\n", &agent, &d), 0, "%s",
		     test_problems_text(&d));
	cr_expect_neq(sl_config_parse_service("body", body, strlen(body), &agent, &svc, &d), 0);
	cr_expect(d.n && strstr(d.list[0].text, "needs the top-level mtls: block"), "%s",
		  test_problems_text(&d));
	sl_problems_free(&d);
	sl_config_free(&agent);
	cr_assert_eq(test_config_parse("mtls: {trust_domain: a.b}\nservices: []\n", &agent, &d), 0,
		     "%s", test_problems_text(&d));
	cr_assert_eq(sl_config_parse_service("body", body, strlen(body), &agent, &svc, &d), 0, "%s",
		     test_problems_text(&d));
	cr_expect_eq(svc.mtls, SL_MTLS_STRICT);
	free(svc.backends);
	sl_config_free(&agent);
	sl_problems_free(&d);
}

ParameterizedTestParameters(config_invalid, table)
{
	static size_t idx[ARRAY_SIZE(bad_cases)];

	for (size_t i = 0; i < ARRAY_SIZE(idx); i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, ARRAY_SIZE(idx));
}

ParameterizedTest(size_t *ip, config_invalid, table)
{
	const struct bad_case *c = &bad_cases[*ip];
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	memset(&cfg, 0x5a, sizeof(cfg));
	rc = test_config_parse(c->yaml, &cfg, &d);
	cr_assert_eq(rc, -1, "case \"%s\" was accepted:\n%s", c->name, c->yaml);
	cr_assert_eq(d.n, c->n_diag ? c->n_diag : 1, "case \"%s\": %zu diagnostics, want %zu:%s",
		     c->name, d.n, c->n_diag ? c->n_diag : 1, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, FILE_NAME, c->line, c->col, c->msg, c->name);
	ASSERT_NOTHING_APPLIED(&cfg, c->name);
	sl_problems_free(&d);
}

/* The case names are unique, so a failure names one case. */
Test(config_invalid, table_size)
{
	cr_assert_geq(ARRAY_SIZE(bad_cases), 150, "only %zu invalid cases", ARRAY_SIZE(bad_cases));
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++)
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(bad_cases[i].name, bad_cases[j].name,
					  "two cases named \"%s\"", bad_cases[i].name);
}

/* Each problem names the key path of its node in field: what the API answers as "field". */
Test(config_invalid, problems_name_their_key_path)
{
	static const struct {
		const char *yaml, *field;
	} cases[] = {
	    {"bogus: 1\n", "bogus"},
	    {"agent:\n  limits: {services: 0}\n", "agent.limits.services"},
	    {"agent: {interfaces: [eth0, '']}\n", "agent.interfaces[1]"},
	    {"registry: {etcd: {}}\n", "registry.etcd.endpoints"},
	    {"identities:\n  - {name: a, addresses: [198.18.1.0/24, 198.18.1.0/33]}\n",
	     "identities[0].addresses[1]"},
	    {"identities:\n  - {cgroups: [/a]}\n", "identities[0].name"},
	    {SVC "    lb: fastest\n", "services[0].lb"},
	    {SVC_BE "        weight: 0\n", "services[0].backends[0].weight"},
	    {SVC_BE "      - {address: 198.18.1.3:80, weight: 0}\n",
	     "services[0].backends[1].weight"},
	    {SVC "    health_check: {intervall: 5s}\n", "services[0].health_check.intervall"},
	    {SVC "    policy: {allow_from: [nobody]}\n", "services[0].policy.allow_from[0]"},
	    {"services:\n  - frontend: 10.96.0.10:80\n", "services[0].name"},
	    {SVC "  - name: api\n    frontend: 10.96.0.10:80\n", "services[1].frontend"},
	    {SVC "  - name: web\n    frontend: 10.96.0.11:80\n", "services[1].name"},
	    {SVC_BE "      - address: 198.18.1.2:8080\n", "services[0].backends[1].address"},
	    {"agent: {limits: {services: 1}}\n" SVC "  - {name: b, frontend: 10.96.0.2:80}\n",
	     "services[1]"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_config cfg;
		struct sl_problems d = {0};

		cr_assert_eq(test_config_parse(cases[i].yaml, &cfg, &d), -1, "accepted:\n%s",
			     cases[i].yaml);
		cr_expect_eq(d.n, 1, "%s:%s", cases[i].yaml, test_problems_text(&d));
		cr_expect_str_eq(d.list[0].field, cases[i].field, "%s%s", cases[i].yaml,
				 d.list[0].text);
		sl_problems_free(&d);
	}
}

/* A service body (the API's PUT): the key path starts at the service. */
Test(config_invalid, service_body_fields)
{
	static const struct {
		const char *body, *field, *msg;
	} cases[] = {
	    {"{\"name\": \"a\", \"frontend\": \"198.19.0.50:80\", \"backends\": "
	     "[{\"address\": \"198.18.1.9:80\", \"weight\": 0}]}",
	     "backends[0].weight", "'weight': out of range (want 1..1000)"},
	    {"{\"name\": \"a\", \"frontend\": \"198.19.0.50:80\", \"lb\": \"fastest\"}", "lb",
	     "lb 'fastest': want random, round_robin, maglev or least_conn"},
	    {"{\"name\": \"a\", \"frontend\": \"nonsense\"}", "frontend",
	     "frontend 'nonsense': missing :port"},
	    {"{\"name\": \"a\", \"frontend\": \"198.19.0.50:80\", \"colour\": 1}", "colour",
	     "service: unknown key 'colour'"},
	    {"{\"frontend\": \"198.19.0.50:80\"}", "name", "service has no 'name'"},
	    {"{\"name\": \"a\", \"frontend\": \"198.19.0.50:80\", \"backends\": "
	     "[{\"address\": \"198.18.1.9:80\"}, {\"address\": \"198.18.1.8:80\"}]}",
	     "", "2 backends, more than agent.limits.backends (1)"},
	};
	struct sl_config agent;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse("agent: {limits: {backends: 1}}\n", &agent, &d), 0, "%s",
		     test_problems_text(&d));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_service_cfg svc;

		cr_assert_eq(sl_config_parse_service("body", cases[i].body, strlen(cases[i].body),
						     &agent, &svc, &d),
			     -1, "accepted: %s", cases[i].body);
		cr_expect_str_eq(d.list[0].field, cases[i].field, "%s: %s", cases[i].body,
				 d.list[0].text);
		cr_expect(strstr(d.list[0].msg, cases[i].msg), "%s: %s", cases[i].body,
			  d.list[0].msg);
		sl_problems_free(&d);
	}
	sl_config_free(&agent);
}

/* ---- the service rules (services.c), as the file and the registry word them --------------- */

static struct sl_service_cfg rule_svc(const char *name, const char *frontend, uint8_t proto)
{
	struct sl_service_cfg s = {.proto = proto};
	const char *why;

	snprintf(s.name, sizeof(s.name), "%s", name);
	sl_parse_hostport(frontend, &s.frontend, &why);
	return s;
}

Test(services, name_and_frontend)
{
	struct sl_service_cfg set[2] = {rule_svc("web", "198.19.0.10:80", SLUICE_PROTO_TCP),
					rule_svc("dns", "198.19.0.53:53", SLUICE_PROTO_UDP)};
	struct sl_service_cfg fe = rule_svc("api", "198.19.0.10:80", SLUICE_PROTO_TCP);
	struct sl_service_cfg udp = rule_svc("api", "198.19.0.10:80", SLUICE_PROTO_UDP);
	struct sl_problem p;

	cr_expect_eq(sl_service_find(set, 2, "dns"), &set[1]);
	cr_expect_null(sl_service_find(set, 2, "api"));
	cr_expect_eq(sl_services_check_name(set, 2, "api", SL_SVC_FILE, &p), 0);
	cr_assert_eq(sl_services_check_name(set, 2, "web", SL_SVC_FILE, &p), -1);
	cr_expect_str_eq(p.msg, "duplicate service name 'web'");
	cr_assert_eq(sl_services_check_name(set, 2, "web", SL_SVC_REGISTRY, &p), -1);
	cr_expect_eq(p.status, 409);
	cr_expect_str_eq(p.field, "name");
	cr_expect_str_eq(
	    p.msg, "service 'web' is defined in the config file and registered through the API");

	cr_expect_eq(sl_service_frontend_user(set, 2, &fe), &set[0]);
	cr_expect_null(sl_service_frontend_user(set, 2, &udp), "another protocol is no clash");
	cr_expect_null(sl_service_frontend_user(set, 2, &set[0]), "a service is not its own clash");
	cr_assert_eq(sl_services_check_frontend(set, 2, &fe, SL_SVC_FILE, &p), -1);
	cr_expect_str_eq(p.msg, "frontend of 'api' is already used by service 'web' (tcp)");
	cr_assert_eq(sl_services_check_frontend(set, 2, &fe, SL_SVC_REGISTRY, &p), -1);
	cr_expect_eq(p.status, 409);
	cr_expect_str_eq(p.field, "frontend");
	cr_expect_str_eq(p.msg,
			 "frontend 198.19.0.10:80 of 'api' is already used by service 'web'");
	cr_expect_eq(sl_services_check_frontend(set, 2, &udp, SL_SVC_REGISTRY, &p), 0);
}

Test(services, backends_and_limits)
{
	struct sl_service_cfg svc = rule_svc("web", "198.19.0.10:80", SLUICE_PROTO_TCP);
	struct sl_backend_cfg be[1] = {0};
	struct sl_limits lim = {.services = 2, .backends = 3};
	struct sl_sockaddr v6, dup, other;
	struct sl_problem p;
	const char *why;

	sl_parse_hostport("198.18.1.2:80", &be[0].addr, &why);
	svc.backends = be;
	svc.n_backends = 1;
	sl_parse_hostport("[2001:db8::2]:80", &v6, &why);
	sl_parse_hostport("198.18.1.2:80", &dup, &why);
	sl_parse_hostport("198.18.1.3:80", &other, &why);
	cr_expect_eq(sl_service_backend(&svc, &dup), &be[0]);
	cr_expect_eq(sl_service_check_backend(&svc, &other, 1, SL_SVC_FILE, &p), 0);
	cr_expect_eq(sl_service_check_backend(&svc, &v6, 0, SL_SVC_FILE, &p), 0,
		     "the family is not checked without a frontend");
	cr_assert_eq(sl_service_check_backend(&svc, &v6, 1, SL_SVC_FILE, &p), -1);
	cr_expect_str_eq(p.msg, "backend [2001:db8::2]:80 is IPv6 but the frontend is IPv4");
	cr_assert_eq(sl_service_check_backend(&svc, &v6, 1, SL_SVC_REGISTRY, &p), -1);
	cr_expect_eq(p.status, 400);
	cr_expect_str_eq(p.msg, "backend [2001:db8::2]:80 is not of the family of web's frontend");
	cr_assert_eq(sl_service_check_backend(&svc, &dup, 1, SL_SVC_FILE, &p), -1);
	cr_expect_str_eq(p.msg, "duplicate backend 198.18.1.2:80 in service 'web'");
	cr_assert_eq(sl_service_check_backend(&svc, &dup, 1, SL_SVC_REGISTRY, &p), -1);
	cr_expect_eq(p.status, 409);
	cr_expect_str_eq(p.field, "address");
	cr_expect_str_eq(p.msg, "198.18.1.2:80 is already a backend of service 'web'");

	cr_expect_eq(sl_service_check_room("web", SLUICE_MAX_BACKENDS_PER_SERVICE, SL_SVC_FILE, &p),
		     0);
	cr_assert_eq(
	    sl_service_check_room("web", SLUICE_MAX_BACKENDS_PER_SERVICE + 1, SL_SVC_REGISTRY, &p),
	    -1);
	cr_expect(strstr(p.msg, "service 'web' already has"), "%s", p.msg);

	cr_expect_eq(sl_services_check_limits(&lim, 2, 3, NULL, &p), 0, "at the limits");
	cr_assert_eq(sl_services_check_limits(&lim, 3, 3, NULL, &p), -1);
	cr_expect_str_eq(p.msg, "3 services, more than agent.limits.services (2)");
	cr_assert_eq(sl_services_check_limits(&lim, 2, 4, NULL, &p), -1);
	cr_expect_str_eq(p.msg, "4 backends, more than agent.limits.backends (3)");
	cr_assert_eq(sl_services_check_limits(&lim, 2, 4, "b", &p), -1);
	cr_expect_str_eq(p.msg, "service 'b' brings the backends to 4, more than "
				"agent.limits.backends (3)");
	cr_expect_eq(sl_services_backends(&svc, 1), 1);
}

/* The same frontend under two protocols is two services, not a clash. */
Test(config_valid, same_frontend_other_protocol)
{
	static const char yaml[] = SVC "    protocol: tcp\n"
				       "  - name: web-udp\n"
				       "    frontend: 10.96.0.10:80\n"
				       "    protocol: udp\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, 0, "tcp and udp on one frontend refused:%s", test_problems_text(&d));
	cr_assert_eq(cfg.n_services, 2);
	cr_assert(sl_sockaddr_equal(&cfg.services[0].frontend, &cfg.services[1].frontend));
	cr_assert_eq(cfg.services[0].proto, SLUICE_PROTO_TCP);
	cr_assert_eq(cfg.services[1].proto, SLUICE_PROTO_UDP);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

Test(config_invalid, too_many_backends_per_service)
{
	char *yaml = gen_backends_yaml(SLUICE_MAX_BACKENDS_PER_SERVICE + 1);
	char want[128];
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	cr_assert_not_null(yaml);
	rc = test_config_parse(yaml, &cfg, &d);
	cr_assert_eq(rc, -1, "%d backends accepted", SLUICE_MAX_BACKENDS_PER_SERVICE + 1);
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	snprintf(want, sizeof(want), "service 'big' has %d backends, more than the %d",
		 SLUICE_MAX_BACKENDS_PER_SERVICE + 1, SLUICE_MAX_BACKENDS_PER_SERVICE);
	/* Reported at the list: line 5, column 7 ("- address" of the first). */
	ASSERT_DIAG(&d, 0, FILE_NAME, 5, 7, want, "too many backends");
	ASSERT_NOTHING_APPLIED(&cfg, "too many backends");
	sl_problems_free(&d);
	free(yaml);
}

/* A config with several problems reports every one of them, in file order. */
Test(config_invalid, all_problems_reported)
{
	static const char yaml[] = "agent:\n"					    /* 1 */
				   "  bpffs: relative/path\n"			    /* 2 */
				   "  metrics: 127.0.0.1\n"			    /* 3 */
				   "  limits: {services: 0}\n"			    /* 4 */
				   "services:\n"				    /* 5 */
				   "  - name: Web\n"				    /* 6 */
				   "    frontend: 10.96.0.10:0\n"		    /* 7 */
				   "    backends:\n"				    /* 8 */
				   "      - address: 198.18.1.2:8080\n"		    /* 9 */
				   "        weight: 0\n"			    /* 10 */
				   "  - name: ok\n"				    /* 11 */
				   "    frontend: 10.96.0.11:80\n"		    /* 12 */
				   "    affinity: 25h\n"			    /* 13 */
				   "    health_check: {type: tcp, timeout: 5s}\n"   /* 14 */
				   "  - name: ok2\n"				    /* 15 */
				   "    frontend: 10.96.0.12:80\n"		    /* 16 */
				   "    backends:\n"				    /* 17 */
				   "      - address: '[2001:db8::2]:80'\n"	    /* 18 */
				   "      - {address: 198.18.1.2:80, color: red}\n" /* 19 */
				   "  - frontend: 10.96.0.13:80\n"		    /* 20 */
				   "bogus: true\n";				    /* 21 */
	static const struct {
		unsigned int line, col;
		const char *msg;
	} want[] = {
	    {2, 10, "'bpffs' must be an absolute path"},
	    {3, 12, "metrics '127.0.0.1': missing :port"},
	    {4, 22, "'services': out of range"},
	    {6, 11, "service name 'Web' must match"},
	    {7, 15, "frontend '10.96.0.10:0': port must be 1..65535"},
	    {10, 17, "'weight': out of range"},
	    {13, 15, "'affinity': 25h is out of range (want 0s..24h)"},
	    {14, 40, "health_check.timeout 5s is longer than health_check.interval 2s"},
	    {18, 9, "is IPv6 but the frontend is IPv4"},
	    {19, 34, "backend: unknown key 'color'"},
	    {20, 5, "service has no 'name'"},
	    {21, 1, "configuration: unknown key 'bogus'"},
	};
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, -1, "accepted");
	cr_assert_eq(d.n, ARRAY_SIZE(want), "%zu diagnostics, want %zu:%s", d.n, ARRAY_SIZE(want),
		     test_problems_text(&d));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char what[32];

		snprintf(what, sizeof(what), "problem #%zu", i + 1);
		ASSERT_DIAG(&d, i, FILE_NAME, want[i].line, want[i].col, want[i].msg, what);
	}
	ASSERT_NOTHING_APPLIED(&cfg, "several problems");
	sl_problems_free(&d);
}

/*
 * One bad service among good ones: the good ones are not applied either,
 * and the limits of a refused config are not half-applied into services.
 */
Test(config_invalid, nothing_half_applied)
{
	static const char yaml[] = "services:\n"
				   "  - {name: a, frontend: 10.96.0.1:80}\n"
				   "  - {name: b, frontend: 10.96.0.2:80}\n"
				   "  - {name: c, frontend: 10.96.0.3:80, lb: fastest}\n"
				   "  - {name: d, frontend: 10.96.0.4:80}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, -1);
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, FILE_NAME, 4, 43, "lb 'fastest'", "bad lb among good services");
	ASSERT_NOTHING_APPLIED(&cfg, "bad lb among good services");
	sl_problems_free(&d);
}

/*
 * KNOWN BUG, so this test skips itself: a syntax error in a second
 * document is not reported. sl_config_parse() only looks at the second
 * document when yaml_parser_load() succeeds, so this file is accepted
 * (rc 0, no diagnostic). Set SECOND_DOC_BUG to 0 once config.c reports a
 * failing second load. (Not .disabled = true: cppcheck cannot parse that.)
 */
#define SECOND_DOC_BUG 0

Test(config_invalid, second_document_syntax_error)
{
	static const char yaml[] = "services: []\n---\nservices: [\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc;

	if (SECOND_DOC_BUG)
		cr_skip_test("known bug: a syntax error in a second YAML document is ignored");
	rc = test_config_parse(yaml, &cfg, &d);

	cr_assert_eq(rc, -1, "a broken second document was accepted");
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, FILE_NAME, 4, 1, "YAML syntax", "broken second document");
	sl_problems_free(&d);
}

/* ---- sl_config_load ----------------------------------------------------- */

Test(config_load, temp_file)
{
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	struct sl_config cfg;
	struct sl_problems d = {0};
	FILE *f;
	int fd, rc;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	f = fdopen(fd, "w");
	cr_assert_not_null(f, "fdopen: %s", strerror(errno));
	cr_assert_eq(fwrite(full_yaml, 1, sizeof(full_yaml) - 1, f), sizeof(full_yaml) - 1);
	cr_assert_eq(fclose(f), 0);

	rc = sl_config_load(path, &cfg, &d);
	unlink(path);
	cr_assert_eq(rc, 0, "load %s:%s", path, test_problems_text(&d));
	cr_assert_eq(cfg.n_services, 6, "n_services %zu", cfg.n_services);
	cr_assert_str_eq(cfg.agent.bpffs, "/sys/fs/bpf/sluice-test");
	cr_assert_not_null(find_svc(&cfg, "api.v6_1"));
	cr_assert_eq(find_svc(&cfg, "web")->lb, SLUICE_LB_MAGLEV);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* Diagnostics of a loaded file name the file's path. */
Test(config_load, invalid_file_names_path)
{
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	static const char yaml[] = SVC "    lb: fastest\n";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int fd, rc;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)sizeof(yaml) - 1);
	cr_assert_eq(close(fd), 0);
	rc = sl_config_load(path, &cfg, &d);
	unlink(path);
	cr_assert_eq(rc, -1);
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, path, 4, 9, "lb 'fastest'", "loaded file");
	ASSERT_NOTHING_APPLIED(&cfg, "loaded file");
	sl_problems_free(&d);
}

Test(config_load, missing_file)
{
	static const char path[] = "/nonexistent-sluice-dir/sluice.yaml";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = sl_config_load(path, &cfg, &d);

	cr_assert_eq(rc, -1, "loading a missing file succeeded");
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, path, 1, 1, "cannot open: No such file or directory", "missing file");
	ASSERT_NOTHING_APPLIED(&cfg, "missing file");
	sl_problems_free(&d);
}

Test(config_load, empty_file)
{
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	struct sl_config cfg;
	struct sl_problems d = {0};
	int fd, rc;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(close(fd), 0);
	rc = sl_config_load(path, &cfg, &d);
	unlink(path);
	cr_assert_eq(rc, -1, "an empty file was accepted");
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	ASSERT_DIAG(&d, 0, path, 1, 1, "the configuration is empty", "empty file");
	sl_problems_free(&d);
}

Test(config_load, directory)
{
	struct sl_config cfg;
	struct sl_problems d = {0};
	int rc = sl_config_load("/tmp", &cfg, &d);

	cr_assert_eq(rc, -1, "loading a directory succeeded");
	cr_assert_eq(d.n, 1, "%zu diagnostics:%s", d.n, test_problems_text(&d));
	cr_assert(!strncmp(d.list[0].text, "/tmp:1:1: ", 10),
		  "diagnostic \"%s\" does not name /tmp", d.list[0].text);
	ASSERT_NOTHING_APPLIED(&cfg, "directory");
	sl_problems_free(&d);
}

/* The agent's listeners and interface globs, and their defaults. */
Test(config_valid, agent_endpoints)
{
	static const char yaml[] = "agent:\n"
				   "  metrics: '[::1]:9500'\n"
				   "  api: /tmp/x/sluiced.sock\n"
				   "  interfaces: [eth*, 'veth?', lo]\n";
	struct sl_config cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse("services: []\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert(cfg.agent.metrics_on, "metrics on by default");
	cr_assert_eq(cfg.agent.metrics.family, SLUICE_AF_INET);
	cr_assert_eq(cfg.agent.metrics.port, 9464);
	cr_assert_str_eq(cfg.agent.api, "/run/sluice/sluiced.sock");
	cr_assert_eq(cfg.agent.n_interfaces, 0);
	sl_config_free(&cfg);

	cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "%s", test_problems_text(&d));
	cr_assert(cfg.agent.metrics_on);
	cr_assert_eq(cfg.agent.metrics.family, SLUICE_AF_INET6);
	cr_assert_eq(cfg.agent.metrics.port, 9500);
	cr_assert_str_eq(cfg.agent.api, "/tmp/x/sluiced.sock");
	cr_assert_eq(cfg.agent.n_interfaces, 3);
	cr_assert_str_eq(cfg.agent.interfaces[0], "eth*");
	cr_assert_str_eq(cfg.agent.interfaces[1], "veth?");
	cr_assert_str_eq(cfg.agent.interfaces[2], "lo");
	sl_config_free(&cfg);

	cr_assert_eq(test_config_parse("agent: {metrics: '', api: ''}\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert_not(cfg.agent.metrics_on, "\"\" disables metrics");
	cr_assert_str_eq(cfg.agent.api, "", "\"\" disables the API");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* agent.redirect: off | local. */
Test(config_valid, redirect)
{
	struct sl_config cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse("services: []\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert_eq(cfg.agent.redirect_local, 1, "local is the default");
	sl_config_free(&cfg);
	cr_assert_eq(test_config_parse("agent: {redirect: local}\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert_eq(cfg.agent.redirect_local, 1);
	sl_config_free(&cfg);
	cr_assert_eq(test_config_parse("agent: {redirect: off}\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert_eq(cfg.agent.redirect_local, 0);
	sl_config_free(&cfg);
	cr_assert_eq(test_config_parse("agent: {redirect: remote}\n", &cfg, &d), -1);
	cr_assert_eq(d.n, 1);
	ASSERT_DIAG(&d, 0, FILE_NAME, 1, 19, "redirect 'remote': want off or local", "redirect");
	sl_problems_free(&d);
}

Test(config, backend_identity_label)
{
	static const char yaml[] = "identities: [{name: peers}, {name: batch, addresses: "
				   "[198.18.1.0/24]}]\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - {address: 198.18.1.2:8080, identity: batch}\n"
				   "      - {address: 198.18.1.3:8080}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};

	cr_assert_eq(sl_config_parse("t.yaml", yaml, strlen(yaml), &cfg, &d), 0, "%s",
		     d.n ? d.list[0].text : "");
	cr_expect_eq(cfg.services[0].backends[0].identity, 2, "batch is identity 2");
	cr_expect_eq(cfg.services[0].backends[1].identity, 0);
	sl_config_free(&cfg);
}

/* The fixed agent settings are compared whole: any agent.* (but agent.audit)
 * or registry.* difference stops a reload and is named; services and
 * agent.audit may change. */
Test(config_fixed, compared_whole)
{
	static const struct {
		const char *yaml, *why;
	} cases[] = {
	    {"agent: {bpffs: /sys/fs/bpf/other}\n", "agent.bpffs"},
	    {"agent: {state: /tmp/elsewhere}\n", "agent.state"},
	    {"agent: {audit_log: /tmp/audit.log}\n", "agent.audit_log"},
	    {"agent: {metrics: \"\"}\n", "agent.metrics"},
	    {"agent: {limits: {services: 100}}\n", "agent.limits"},
	    {"registry: {etcd: {endpoints: [\"http://127.0.0.1:2379\"]}}\n", "registry.etcd"},
	    {"agent: {redirect: \"off\"}\n", "agent.redirect"},
	    {"agent: {frontends: [198.19.0.0/16]}\n", "agent.frontends"},
	    {"registry: {etcd: {endpoints: [\"https://10.0.0.5:2379\"], ca: /c.pem, cert: /d.pem, "
	     "key: /k.pem}}\n",
	     "registry.etcd"},
	    {"mtls: {trust_domain: a.test}\n", "mtls cannot change"},
	};
	struct sl_config base, cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse("services: []\n", &base, &d), 0, "%s",
		     test_problems_text(&d));
	cr_assert_eq(test_config_parse("agent: {audit: all}\nservices:\n  - {name: a, frontend: "
				       "\"10.96.0.1:80\", backends: []}\n",
				       &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_assert_null(sl_agent_cfg_diff(&base.agent, &cfg.agent),
		       "services and agent.audit are reloadable");
	sl_config_free(&cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;

		cr_assert_eq(test_config_parse(cases[i].yaml, &cfg, &d), 0, "%s: %s", cases[i].yaml,
			     test_problems_text(&d));
		why = sl_agent_cfg_diff(&base.agent, &cfg.agent);
		cr_assert_not_null(why, "%s", cases[i].yaml);
		cr_assert(strstr(why, cases[i].why), "%s: %s", cases[i].yaml, why);
		sl_config_free(&cfg);
	}
	sl_config_free(&base);
}

/* Frontends: anything but the refused ranges by default, only agent.frontends when it is
 * set. The neighbours of each refused range are accepted. */
Test(config_valid, frontends)
{
	static const char *const ok[] = {
	    "10.96.0.10:80",	  "198.19.0.10:80",	 "126.255.255.255:80",
	    "128.0.0.1:80",	  "169.253.255.255:80",	 "169.255.0.1:80",
	    "0.0.0.1:80",	  "223.255.255.255:80",	 "240.0.0.1:80",
	    "'[fec0::1]:80'",	  "'[fe7f::1]:80'",	 "'[::2]:80'",
	    "'[2001:db8::1]:80'", "'[feff:ffff::1]:80'", "'[::fffe:a00:1]:80'",
	};
	char yaml[256];
	struct sl_config cfg;
	struct sl_problems d = {0};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		snprintf(yaml, sizeof(yaml), "services:\n  - {name: web, frontend: %s}\n", ok[i]);
		cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "%s:%s", ok[i],
			     test_problems_text(&d));
		sl_config_free(&cfg);
	}
	/* Listed, a refused range is allowed; the list is kept. */
	cr_assert_eq(test_config_parse("agent: {frontends: [127.0.0.0/8, '::1', 10.96.0.0/12]}\n"
				       "registry: {etcd: {endpoints: [http://localhost:2379]}}\n"
				       "services:\n"
				       "  - {name: a, frontend: 127.0.0.5:80}\n"
				       "  - {name: b, frontend: '[::1]:80'}\n"
				       "  - {name: c, frontend: 10.111.0.1:80}\n",
				       &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_assert_eq(cfg.agent.n_frontends, 3);
	cr_expect_eq(cfg.agent.frontends[0].family, SLUICE_AF_INET);
	cr_expect_eq(cfg.agent.frontends[0].prefix, 8);
	cr_expect_eq(cfg.agent.frontends[1].family, SLUICE_AF_INET6);
	cr_expect_eq(cfg.agent.frontends[1].prefix, 128);
	cr_expect_eq(cfg.agent.frontends[2].prefix, 12);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* registry.etcd ca, cert and key: absolute paths, all three, with https:// endpoints. */
Test(config_valid, etcd_tls)
{
	struct sl_config cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse(
			 "registry:\n"
			 "  etcd:\n"
			 "    endpoints: ['https://10.0.0.5:2379', 'https://etcd.example:2379']\n"
			 "    ca: /etc/sluice/etcd/ca.pem\n"
			 "    cert: /etc/sluice/etcd/node.pem\n"
			 "    key: /etc/sluice/etcd/node.key\n",
			 &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_expect_eq(cfg.agent.n_etcd, 2);
	cr_expect_str_eq(cfg.agent.etcd_ca, "/etc/sluice/etcd/ca.pem");
	cr_expect_str_eq(cfg.agent.etcd_cert, "/etc/sluice/etcd/node.pem");
	cr_expect_str_eq(cfg.agent.etcd_key, "/etc/sluice/etcd/node.key");
	cr_expect_str_eq(cfg.agent.etcd_user, "", "no etcd auth");
	cr_expect_str_eq(cfg.agent.etcd_password_file, "");
	sl_config_free(&cfg);
	cr_assert_eq(test_config_parse("registry:\n"
				       "  etcd:\n"
				       "    endpoints: ['https://10.0.0.5:2379']\n"
				       "    ca: /etc/sluice/etcd/ca.pem\n"
				       "    cert: /etc/sluice/etcd/node.pem\n"
				       "    key: /etc/sluice/etcd/node.key\n"
				       "    user: node-1\n"
				       "    password_file: /etc/sluice/etcd/password\n",
				       &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_expect_str_eq(cfg.agent.etcd_user, "node-1");
	cr_expect_str_eq(cfg.agent.etcd_password_file, "/etc/sluice/etcd/password");
	sl_config_free(&cfg);
	cr_assert_eq(test_config_parse("registry: {etcd: {endpoints: ['http://10.0.0.5:2379']}}\n",
				       &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_expect_str_eq(cfg.agent.etcd_ca, "", "none: plain http://");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* A label inside the identity's own CIDR, and its longest match, is kept. */
Test(config_valid, backend_identity_inside_its_cidr)
{
	static const char yaml[] = "identities:\n"
				   "  - {name: a, addresses: [198.18.0.0/16]}\n"
				   "  - {name: b, addresses: [198.18.1.0/24, '2001:db8:1::/64']}\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - {address: 198.18.1.2:8080, identity: b}\n"
				   "      - {address: 198.18.2.2:8080, identity: a}\n"
				   "  - name: web6\n"
				   "    frontend: '[2001:db8:f::10]:80'\n"
				   "    backends:\n"
				   "      - {address: '[2001:db8:1::2]:8080', identity: b}\n";
	struct sl_config cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "%s", test_problems_text(&d));
	cr_expect_eq(cfg.services[0].backends[0].identity, 2);
	cr_expect_eq(cfg.services[0].backends[1].identity, 1);
	cr_expect_eq(cfg.services[1].backends[0].identity, 2);
	sl_config_free(&cfg);
	sl_problems_free(&d);
}

/* Each of registry.etcd's TLS files is fixed, and named when it changes. */
Test(config_fixed, etcd_tls_files)
{
#define ETCD_TLS(ca, cert, key)                                                                    \
	"registry: {etcd: {endpoints: [\"https://10.0.0.5:2379\"], ca: " ca ", cert: " cert        \
	", key: " key "}}\n"
	static const struct {
		const char *yaml, *why;
	} cases[] = {
	    {ETCD_TLS("/ca2.pem", "/c.pem", "/k.pem"), "registry.etcd.ca cannot change"},
	    {ETCD_TLS("/ca.pem", "/c2.pem", "/k.pem"), "registry.etcd.cert cannot change"},
	    {ETCD_TLS("/ca.pem", "/c.pem", "/k2.pem"), "registry.etcd.key cannot change"},
	};
	struct sl_config base, cfg;
	struct sl_problems d = {0};

	cr_assert_eq(test_config_parse(ETCD_TLS("/ca.pem", "/c.pem", "/k.pem"), &base, &d), 0, "%s",
		     test_problems_text(&d));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why;

		cr_assert_eq(test_config_parse(cases[i].yaml, &cfg, &d), 0, "%s",
			     test_problems_text(&d));
		why = sl_agent_cfg_diff(&base.agent, &cfg.agent);
		cr_assert_not_null(why);
		cr_expect(strstr(why, cases[i].why), "%s: %s", cases[i].yaml, why);
		sl_config_free(&cfg);
	}
	sl_config_free(&base);
#undef ETCD_TLS
}

/* agent.node and agent.zone, a backend's zone, a service's locality; node defaults to the
 * hostname. */
Test(config, node_zone_and_locality)
{
	struct sl_problems d = {0};
	struct sl_config cfg;
	char host[256] = "";

	cr_assert_eq(test_config_parse("agent: {node: node-7.example, zone: eu-west-1a}\n"
				       "services:\n"
				       "  - name: web\n"
				       "    frontend: 10.96.0.10:80\n"
				       "    locality: prefer_zone\n"
				       "    backends:\n"
				       "      - {address: 198.18.1.2:8080, zone: eu-west-1a}\n"
				       "      - {address: 198.18.1.3:8080}\n",
				       &cfg, &d),
		     0, "%s", test_problems_text(&d));
	cr_expect_str_eq(cfg.agent.node, "node-7.example");
	cr_expect_str_eq(sl_agent_node(&cfg.agent), "node-7.example");
	cr_expect_str_eq(cfg.agent.zone, "eu-west-1a");
	cr_expect_eq(cfg.services[0].locality, SL_LOCALITY_PREFER_ZONE);
	cr_expect_str_eq(cfg.services[0].backends[0].zone, "eu-west-1a");
	cr_expect_str_eq(cfg.services[0].backends[1].zone, "");
	sl_config_free(&cfg);

	cr_assert_eq(test_config_parse("services: []\n", &cfg, &d), 0);
	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	if (strlen(host) < SL_NODE_LEN && !strchr(host, '/'))
		cr_expect_str_eq(cfg.agent.node, host, "agent.node defaults to the hostname");
	cr_expect_str_eq(cfg.agent.zone, "");
	sl_config_free(&cfg);
	sl_problems_free(&d);
}
