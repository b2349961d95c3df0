// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Datapath and agent events as the monitor stream carries them. */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>

#include "events.h"

static struct sluice_event v4_event(uint8_t type, uint8_t reason)
{
	struct sluice_event ev = {.type = type, .reason = reason, .family = SLUICE_AF_INET};

	ev.proto = SLUICE_PROTO_TCP;
	ev.dst.a32[0] = htonl(0xc6120103); /* 198.18.1.3 */
	ev.dport = 8080;
	ev.duration_ns = 4000000000ULL;
	return ev;
}

Test(events, health_change)
{
	struct sluice_event ev = v4_event(SLUICE_EV_HEALTH, SLUICE_REASON_UNHEALTHY);
	json_t *o = sl_event_json(&ev, "hc");

	cr_assert_not_null(o);
	cr_expect_str_eq(json_string_value(json_object_get(o, "type")), "health");
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")), "unhealthy");
	cr_expect_str_eq(json_string_value(json_object_get(o, "service")), "hc");
	cr_expect_str_eq(json_string_value(json_object_get(o, "backend")), "198.18.1.3:8080");
	cr_expect_null(json_object_get(o, "duration_ms"), "a state change has no duration");
	json_decref(o);
}

Test(events, ejection_has_its_duration)
{
	struct sluice_event ev = v4_event(SLUICE_EV_EJECT, SLUICE_REASON_NONE);
	json_t *o = sl_event_json(&ev, "web");

	cr_assert_not_null(o);
	cr_expect_str_eq(json_string_value(json_object_get(o, "type")), "ejected");
	cr_expect_float_eq(json_real_value(json_object_get(o, "duration_ms")), 4000.0, 1e-9);
	json_decref(o);
}

Test(events, limit_rejection_names_the_frontend_and_reason)
{
	struct sluice_event ev = v4_event(SLUICE_EV_REJECT, SLUICE_REASON_CIRCUIT_BREAKER);
	json_t *o = sl_event_json(&ev, "web");

	cr_assert_not_null(o);
	cr_expect_str_eq(json_string_value(json_object_get(o, "type")), "rejected");
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")), "circuit_breaker");
	cr_expect_str_eq(json_string_value(json_object_get(o, "frontend")), "198.18.1.3:8080");
	cr_expect_null(json_object_get(o, "backend"));
	json_decref(o);
}
