// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include "events.h"
#include "parse.h"

const char *sl_event_type_name(unsigned int type)
{
	static const char *const names[SLUICE_EV__MAX] = {
	    [SLUICE_EV_OPEN] = "open",
	    [SLUICE_EV_CLOSE] = "close",
	    [SLUICE_EV_CONNECT_FAIL] = "connect_failure",
	    [SLUICE_EV_NO_BACKEND] = "no_backend",
	    [SLUICE_EV_REJECT] = "rejected",
	    [SLUICE_EV_EJECT] = "ejected",
	    [SLUICE_EV_HEALTH] = "health",
	};
	return type < SLUICE_EV__MAX && names[type] ? names[type] : NULL;
}

const char *sl_event_reason_name(unsigned int reason)
{
	static const char *const names[SLUICE_REASON__MAX] = {
	    [SLUICE_REASON_NONE] = "",
	    [SLUICE_REASON_FIN] = "fin",
	    [SLUICE_REASON_RESET] = "reset",
	    [SLUICE_REASON_REFUSED] = "refused",
	    [SLUICE_REASON_TIMEOUT] = "timeout",
	    [SLUICE_REASON_OTHER] = "other",
	    [SLUICE_REASON_CIRCUIT_BREAKER] = "circuit_breaker",
	    [SLUICE_REASON_RATE_LIMIT] = "rate_limit",
	    [SLUICE_REASON_HEALTHY] = "healthy",
	    [SLUICE_REASON_UNHEALTHY] = "unhealthy",
	};
	return reason < SLUICE_REASON__MAX ? names[reason] : "other";
}

static void hostport(const union sluice_addr *a, uint8_t family, uint16_t port, char *buf,
		     size_t len)
{
	struct sl_sockaddr sa = {.addr = *a, .port = port, .family = family};

	sl_format_hostport(&sa, buf, len);
}

json_t *sl_event_json(const struct sluice_event *ev, const char *service)
{
	const char *type = sl_event_type_name(ev->type);
	char src[SL_HOSTPORT_LEN], dst[SL_HOSTPORT_LEN];
	int to_frontend = ev->type == SLUICE_EV_NO_BACKEND || ev->type == SLUICE_EV_REJECT;
	json_t *o;

	if (!type || (ev->family != SLUICE_AF_INET && ev->family != SLUICE_AF_INET6))
		return NULL;
	hostport(&ev->src, ev->family, ev->sport, src, sizeof(src));
	hostport(&ev->dst, ev->family, ev->dport, dst, sizeof(dst));
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:I}", "time_ns", (json_int_t)ev->ts_ns,
		      "type", type, "service", service, "protocol",
		      ev->proto == SLUICE_PROTO_UDP ? "udp" : "tcp", "client", src,
		      to_frontend ? "frontend" : "backend", dst, "cookie", (json_int_t)ev->cookie);
	if (!o)
		return NULL;
	if (!to_frontend && ev->type != SLUICE_EV_HEALTH)
		json_object_set_new(o, "duration_ms", json_real((double)ev->duration_ns / 1e6));
	if (ev->type == SLUICE_EV_CLOSE || ev->type == SLUICE_EV_CONNECT_FAIL ||
	    ev->type == SLUICE_EV_REJECT || ev->type == SLUICE_EV_HEALTH)
		json_object_set_new(o, "reason", json_string(sl_event_reason_name(ev->reason)));
	if (ev->type == SLUICE_EV_CLOSE) {
		json_object_set_new(o, "bytes_sent", json_integer((json_int_t)ev->bytes_sent));
		json_object_set_new(o, "bytes_received",
				    json_integer((json_int_t)ev->bytes_received));
		json_object_set_new(o, "rtt_us", json_integer(ev->srtt_us));
		json_object_set_new(o, "retransmits", json_integer(ev->retrans));
	}
	return o;
}
