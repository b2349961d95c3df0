// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "config.h"
#include "report.h"

const char *sl_state_name(uint8_t s)
{
	static const char *const names[SLUICE_BE__MAX] = {
	    [SLUICE_BE_HEALTHY] = "healthy", [SLUICE_BE_UNHEALTHY] = "unhealthy",
	    [SLUICE_BE_EJECTED] = "ejected", [SLUICE_BE_DRAINING] = "draining",
	    [SLUICE_BE_REMOVED] = "removed",
	};
	return s < SLUICE_BE__MAX ? names[s] : "unknown";
}

const char *sl_drop_name(unsigned int reason)
{
	static const char *const names[SLUICE_DROP__MAX] = {
	    [SLUICE_DROP_NO_BACKEND] = "no_backend",
	    [SLUICE_DROP_CIRCUIT_BREAKER] = "circuit_breaker",
	    [SLUICE_DROP_RATE_LIMIT] = "rate_limit",
	    [SLUICE_DROP_POLICY] = "policy",
	};
	return reason < SLUICE_DROP__MAX ? names[reason] : "unknown";
}

static json_t *backend_json(const struct sl_maps *m, const struct sl_be_state *b, uint64_t now)
{
	struct sluice_backend_stats bs = {0};
	struct sluice_backend_rt rt = {0};
	char addr[SL_HOSTPORT_LEN];
	uint8_t state;
	json_t *o;

	sl_maps_backend_stats(m, b->id, &bs);
	sl_maps_backend_rt(m, b->id, &rt);
	state = sl_backend_state(b->state, &rt, now);
	sl_format_hostport(&b->addr, addr, sizeof(addr));
	o = json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:I}", "address", addr, "weight", (int)b->weight,
	    "subset", b->subset, "zone", b->zone, "state", sl_state_name(state),
	    "active_connections", (json_int_t)sl_active_count(rt.active_gen), "connections_total",
	    (json_int_t)bs.connections, "connect_failures_total", (json_int_t)bs.connect_failures);
	if (o && rt.ejected_until_ns > now)
		json_object_set_new(o, "ejected_remaining_s",
				    json_real((double)(rt.ejected_until_ns - now) / 1e9));
	if (o && rt.times_ejected)
		json_object_set_new(o, "times_ejected", json_integer(rt.times_ejected));
	return o;
}

json_t *sl_report_service(const struct sl_maps *m, const struct sl_svc_state *s)
{
	uint64_t rejected[SLUICE_DROP__MAX] = {0}, now = sl_mono_ns();
	char addr[SL_HOSTPORT_LEN];
	json_t *bes = json_array(), *rej = json_object();
	int64_t active = 0;

	for (size_t i = 0; i < s->n_bes; i++)
		json_array_append_new(bes, backend_json(m, &s->bes[i], now));
	sl_maps_service_rejected(m, s->id, rejected);
	for (unsigned int r = 0; r < SLUICE_DROP__MAX; r++)
		json_object_set_new(rej, sl_drop_name(r), json_integer((json_int_t)rejected[r]));
	sl_maps_service_active(m, s->id, &active);
	sl_format_hostport(&s->frontend, addr, sizeof(addr));
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "name", s->name, "frontend", addr,
			 "protocol", sl_proto_name(s->proto), "lb", sl_lb_name(s->lb),
			 "active_connections", (json_int_t)active, "rejected", rej, "backends",
			 bes);
}
