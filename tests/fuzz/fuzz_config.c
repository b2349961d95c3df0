// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: sl_config_parse() on arbitrary bytes. A config is either
 * refused with diagnostics and nothing kept, or accepted within its limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_config cfg;
	struct sl_problems d = {0};
	size_t total = 0;

	if (sl_config_parse("fuzz.yaml", (const char *)data, size, &cfg, &d)) {
		if (!d.n || cfg.services || cfg.n_services)
			abort(); /* refused: a reason, and nothing kept */
		sl_problems_free(&d);
		return 0;
	}
	if (d.n || cfg.n_services > cfg.agent.limits.services)
		abort();
	for (size_t i = 0; i < cfg.n_services; i++) {
		const struct sl_service_cfg *s = &cfg.services[i];

		if (!s->name[0] || memchr(s->name, '\0', sizeof(s->name)) == NULL)
			abort();
		for (size_t j = 0; j < s->n_backends; j++)
			if (s->backends[j].addr.family != s->frontend.family ||
			    !s->backends[j].weight || s->backends[j].weight > 1000)
				abort();
		total += s->n_backends;
	}
	if (total > cfg.agent.limits.backends)
		abort();
	sl_config_free(&cfg);
	return 0;
}
