/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the registry (registry*.c only). */
#ifndef SLUICE_REGISTRY_INT_H
#define SLUICE_REGISTRY_INT_H

#include <sys/types.h>

#include "registry.h"

/* Longest TTL a registration may ask for. */
#define SL_REG_MAX_TTL_MS (24ULL * 3600 * 1000)

/* sl_registry_put_service where the caller knows the service's index in r (-1: a new one),
 * so that loading many needs no search. */
int sl_reg_put_service_at(struct sl_registry *r, const struct sl_config *agent, ssize_t at,
			  const char *name, const char *body, size_t len, uint8_t origin,
			  struct sl_problem *e);

/* One more skipped etcd key; kept while fewer than SL_REG_SKIPS_KEPT are. */
void sl_reg_skip_add(struct sl_reg_skips *s, const char *key, const char *why);

#endif /* SLUICE_REGISTRY_INT_H */
