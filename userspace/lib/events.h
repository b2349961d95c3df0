/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Datapath events (struct sluice_event) as JSON, for `sluicectl monitor`. */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include <jansson.h>

#include <sluice/abi.h>

/* {"time_ns", "type", "service", "client", "backend" | "frontend", ...}; the
 * keys that do not apply to the type are left out. NULL on bad input. */
json_t *sl_event_json(const struct sluice_event *ev, const char *service);

const char *sl_event_type_name(unsigned int type);
const char *sl_event_reason_name(unsigned int reason);

#endif /* SLUICE_EVENTS_H */
