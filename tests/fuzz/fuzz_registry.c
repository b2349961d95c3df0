// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the control API's request bodies and the saved registry,
 * on arbitrary bytes. The first byte picks the input: a registration body, a
 * service body (PUT), or a whole state file. A refused input leaves the
 * registry as it was and says why (a 4xx/5xx status and a message); an
 * accepted one merges with the config file into a config within its rules,
 * or is refused by the merge with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sl_config file;
static int file_ready;

static void check_merge(const struct sl_registry *r)
{
	struct sl_problem e = {0};
	struct sl_config eff;

	if (sl_registry_merge(&file, r, &eff, &e)) {
		if (e.status < 400 || e.status > 599 || !e.msg[0])
			abort();
		return;
	}
	for (size_t i = 0; i < eff.n_services; i++)
		for (size_t j = 0; j < eff.services[i].n_backends; j++)
			if (eff.services[i].backends[j].addr.family !=
				eff.services[i].frontend.family ||
			    !eff.services[i].backends[j].weight)
				abort();
	sl_config_free(&eff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char yaml[] = "services:\n"
				   "  - name: web\n"
				   "    frontend: 198.19.0.10:80\n"
				   "    backends:\n"
				   "      - address: 198.18.1.2:8080\n";
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
	switch (data[0] % 3) {
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
	default:
		o = json_loadb(body, size - 1, 0, NULL);
		err = o ? sl_registry_from_json(o, &file, &r, &e) : -1;
		json_decref(o);
		if (!o)
			e.status = 400, strcpy(e.msg, "not JSON");
		break;
	}
	if (err && (e.status < 400 || e.status > 599 || !e.msg[0]))
		abort();
	check_merge(&r);
	sl_registry_free(&r);
	return 0;
}
