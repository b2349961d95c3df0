/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Services as JSON, from the maps: what `sluicectl services -o json` prints
 * and what the control API answers. */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include <jansson.h>

#include "maps.h"

const char *sl_state_name(uint8_t state);
/* The label of an enum sluice_drop_reason: "no_backend", "policy", ... */
const char *sl_drop_name(unsigned int reason);

/* {"name", "frontend", "protocol", "lb", "active_connections", "rejected":
 * {reason: n}, "backends": [{"address", "weight", "subset", "state",
 * "active_connections", "connections_total", "connect_failures_total",
 * and while ejected "ejected_remaining_s", "times_ejected"}]} */
json_t *sl_report_service(const struct sl_maps *m, const struct sl_svc_state *s);

#endif /* SLUICE_REPORT_H */
