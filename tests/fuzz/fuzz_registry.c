// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the control API's request bodies, the saved registry and the etcd
 * snapshot, on arbitrary bytes. The first byte picks the input: a registration body, a
 * service body (PUT), a whole state file, or an etcd snapshot (lines of "KEY VALUE"). A
 * refused input leaves the registry as it was and says why (a 4xx/5xx status and a
 * message); an accepted one merges with the config file into a config within its rules, or
 * is refused by the merge with a reason. A snapshot is never refused whole by the merge: its
 * keys that break a rule are left out, each with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "services.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_config file;
static int file_ready;

/* Every backend of eff obeys the rules of services.h. */
static void check_backends(const struct sl_config *eff)
{
	struct sl_problem p;

	for (size_t i = 0; i < eff->n_services; i++) {
		const struct sl_service_cfg *s = &eff->services[i];

		if (sl_frontend_check(&eff->agent, &s->frontend, &p))
			abort();
		for (size_t j = 0; j < s->n_backends; j++) {
			const struct sl_backend_cfg *b = &s->backends[j];

			if (b->addr.family != s->frontend.family || !b->weight ||
			    sl_sockaddr_v4mapped(&b->addr, NULL) ||
			    sl_identity_check(eff->identities, eff->n_identities, b->identity,
					      &b->addr, &p))
				abort();
		}
	}
}

static void check_merge(const struct sl_registry *r, int snapshot)
{
	struct sl_reg_skips skips = {0};
	struct sl_problem e = {0};
	struct sl_config eff;

	if (sl_registry_merge_skips(&file, r, &eff, &skips, &e)) {
		if (e.status < 400 || e.status > 599 || !e.msg[0] || (snapshot && e.status != 500))
			abort();
		sl_reg_skips_free(&skips);
		return;
	}
	if (skips.n > skips.total || (skips.n && !skips.v[0].why[0]))
		abort();
	check_backends(&eff);
	sl_reg_skips_free(&skips);
	sl_config_free(&eff);
}

/* Lines of "KEY VALUE" as an etcd snapshot under /sluice/. */
static int from_snapshot(struct sl_registry *r, const char *text, size_t len, struct sl_problem *e)
{
	char *copy = strndup(text, len), *line, *save = NULL;
	const char *keys[64], *vals[64];
	int64_t leases[64] = {0};
	struct sl_reg_skips skips = {0};
	size_t n = 0;
	int err;

	if (!copy)
		return 0;
	for (line = strtok_r(copy, "\n", &save); line && n < 64;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');

		if (!sp)
			continue;
		*sp = '\0';
		keys[n] = line;
		vals[n] = sp + 1;
		leases[n] = n & 1;
		n++;
	}
	err = sl_registry_etcd_load(r, "/sluice/", keys, vals, leases, n, &file, &skips, e);
	if (err || skips.total > n)
		abort(); /* a snapshot this small is never refused whole */
	sl_reg_skips_free(&skips);
	free(copy);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char yaml[] = "registry: {etcd: {endpoints: ['http://198.19.0.99:2379']}}\n"
				   "identities: [{name: fe, addresses: [198.18.9.0/24]}]\n"
				   "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - address: 198.18.1.2:8080\n"
				   "  - name: db\n"
				   "    frontend: 198.19.0.20:5432\n"
				   "    backends: [{address: 198.18.1.20:5432}]\n"
				   "    policy: {default: deny, allow_from: [fe]}\n";
	struct sl_registry r = {0};
	struct sl_problem e = {0};
	const char *body = (const char *)data + 1;
	json_t *o;
	int err;

	if (!file_ready) {
		struct sl_problems d = {0};

		if (sl_config_parse("t.yaml", yaml, strlen(yaml), &file, &d))
			abort();
		file_ready = 1;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		err = sl_registry_register(&r, "web", body, size - 1, 1000, &e);
		if (err ? r.n_bes != 0 : r.n_bes != 1)
			abort();
		break;
	case 1:
		err = sl_registry_put_service(&r, &file, "api", body, size - 1, SL_REG_LOCAL, &e);
		if (err ? r.n_svcs != 0 : r.n_svcs != 1)
			abort();
		break;
	case 2:
		o = json_loadb(body, size - 1, 0, NULL);
		err = o ? sl_registry_from_json(o, &file, &r, &e) : -1;
		json_decref(o);
		if (!o)
			e.status = 400, strcpy(e.msg, "not JSON");
		break;
	default:
		err = from_snapshot(&r, body, size - 1, &e);
		break;
	}
	if (err && (e.status < 400 || e.status > 599 || !e.msg[0]))
		abort();
	check_merge(&r, data[0] % 4 == 3);
	sl_registry_free(&r);
	return 0;
}
