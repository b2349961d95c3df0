// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: sl_config_parse() on arbitrary bytes. A config is either
 * refused with diagnostics and nothing kept, or accepted within its limits and
 * the rules of services.h: frontends inside agent.frontends or outside the
 * refused ranges, no v4-mapped address, identity labels inside their CIDRs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "services.h"

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
		struct sl_problem p;

		if (!s->name[0] || memchr(s->name, '\0', sizeof(s->name)) == NULL ||
		    sl_frontend_check(&cfg.agent, &s->frontend, &p))
			abort();
		for (size_t j = 0; j < s->n_backends; j++)
			if (s->backends[j].addr.family != s->frontend.family ||
			    !s->backends[j].weight || s->backends[j].weight > 1000 ||
			    sl_sockaddr_v4mapped(&s->backends[j].addr, NULL) ||
			    sl_identity_check(cfg.identities, cfg.n_identities,
					      s->backends[j].identity, &s->backends[j].addr, &p))
				abort();
		total += s->n_backends;
	}
	if (total > cfg.agent.limits.backends)
		abort();
	sl_config_free(&cfg);
	return 0;
}
