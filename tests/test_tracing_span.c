// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A traced connection's record (struct sluice_span_rec) as the span sluice exports
 * (userspace/lib/trace_span.c, README "Tracing"): synthetic records, as the datapath emits
 * them, through sl_trace_span() and then through the exporter's encoder, read back with
 * jansson: ids, kind, name, times, attributes, status and sluice.reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <sluice/abi.h>

#include "otlp.h"
#include "trace_span.h"

static const uint8_t TRACE[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
				  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t PARENT[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

/* A connection of 'web' from 198.18.0.2 to 10.96.0.10:80, sent to 198.18.1.2:8080, traced
 * from a traceparent, closed orderly after 1.5 ms. */
static struct sluice_span_rec rec4(void)
{
	struct sluice_span_rec r = {0};

	memcpy(r.trace_id, TRACE, sizeof(TRACE));
	memcpy(r.parent_id, PARENT, sizeof(PARENT));
	r.start_ns = 1000000000;
	r.end_ns = 1001500000;
	r.connect_ns = 120000;
	r.cookie = 77;
	r.bytes_sent = 123;
	r.bytes_received = 4567;
	inet_pton(AF_INET, "198.18.0.2", r.src.a8);
	inet_pton(AF_INET, "10.96.0.10", r.fe_addr.a8);
	inet_pton(AF_INET, "198.18.1.2", r.be_addr.a8);
	r.svc_id = 3;
	r.be_id = 9;
	r.identity = 1;
	r.retrans = 2;
	r.sport = 40000;
	r.fe_port = 80;
	r.be_port = 8080;
	r.family = SLUICE_AF_INET;
	r.proto = SLUICE_PROTO_TCP;
	r.reason = SLUICE_REASON_FIN;
	r.flags = SLUICE_SPAN_F_SAMPLED | SLUICE_SPAN_F_PARENT;
	return r;
}

/* The one span of the encoded request, owned by *root. */
static json_t *encode_one(const struct sl_span *s, json_t **root)
{
	char *text = sl_otlp_encode(s, 1, "node-1");
	json_error_t e;

	cr_assert_not_null(text, "sl_otlp_encode failed");
	*root = json_loads(text, 0, &e);
	free(text);
	cr_assert_not_null(*root, "not JSON: %s", e.text);
	return json_array_get(
	    json_object_get(
		json_array_get(
		    json_object_get(json_array_get(json_object_get(*root, "resourceSpans"), 0),
				    "scopeSpans"),
		    0),
		"spans"),
	    0);
}

/* The attribute's value object ({"stringValue": ...} or {"intValue": ...}), or NULL. */
static json_t *attr(json_t *span, const char *key)
{
	size_t i;
	json_t *a;

	json_array_foreach(json_object_get(span, "attributes"), i, a)
	{
		if (!strcmp(json_string_value(json_object_get(a, "key")), key))
			return json_object_get(a, "value");
	}
	return NULL;
}

static const char *attr_str(json_t *span, const char *key)
{
	json_t *v = attr(span, key);
	const char *s = v ? json_string_value(json_object_get(v, "stringValue")) : NULL;

	return s ? s : "(none)";
}

static const char *attr_int(json_t *span, const char *key)
{
	json_t *v = attr(span, key);
	const char *s = v ? json_string_value(json_object_get(v, "intValue")) : NULL;

	return s ? s : "(none)";
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "(none)";
}

Test(trace_span, traceparent_connection)
{
	struct sluice_span_rec r = rec4();
	struct sl_span s;
	json_t *root, *sp, *ev;

	cr_assert_eq(sl_trace_span(&r, sizeof(r), "web", "frontend", 5000, &s), 0);
	cr_expect_eq(memcmp(s.trace_id, TRACE, 16), 0);
	cr_expect_eq(memcmp(s.parent_span_id, PARENT, 8), 0);
	cr_expect_eq(s.start_ns, 1000005000);
	cr_expect_eq(s.end_ns, 1001505000);
	cr_expect_eq(s.error, 0);
	cr_expect_eq(s.trace_flags, 1);

	sp = encode_one(&s, &root);
	cr_expect_str_eq(str(sp, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_expect_str_eq(str(sp, "parentSpanId"), "00f067aa0ba902b7");
	cr_expect_eq(json_integer_value(json_object_get(sp, "kind")), 3, "SPAN_KIND_CLIENT");
	cr_expect_str_eq(str(sp, "name"), "web");
	cr_expect_str_eq(str(sp, "startTimeUnixNano"), "1000005000");
	cr_expect_str_eq(str(sp, "endTimeUnixNano"), "1001505000");
	cr_expect_str_eq(attr_str(sp, "sluice.service"), "web");
	cr_expect_str_eq(attr_str(sp, "server.address"), "10.96.0.10");
	cr_expect_str_eq(attr_int(sp, "server.port"), "80");
	cr_expect_str_eq(attr_str(sp, "network.peer.address"), "198.18.1.2");
	cr_expect_str_eq(attr_int(sp, "network.peer.port"), "8080");
	cr_expect_str_eq(attr_str(sp, "sluice.source"), "frontend");
	cr_expect_str_eq(attr_int(sp, "sluice.bytes_sent"), "123");
	cr_expect_str_eq(attr_int(sp, "sluice.bytes_received"), "4567");
	cr_expect_str_eq(attr_int(sp, "sluice.retransmits"), "2");
	cr_expect_str_eq(attr_int(sp, "sluice.connect_ns"), "120000");
	ev = json_array_get(json_object_get(sp, "events"), 0);
	cr_expect_str_eq(str(ev, "name"), "established");
	cr_expect_str_eq(str(ev, "timeUnixNano"), "1000125000", "start + the handshake");
	cr_expect_eq(json_array_size(json_object_get(sp, "events")), 1);
	cr_expect_null(attr(sp, "sluice.reason"));
	cr_expect_null(json_object_get(sp, "status"), "a connection that was made: UNSET");
	json_decref(root);
}

Test(trace_span, sampled_root_ipv6)
{
	struct sluice_span_rec r = rec4();
	struct sl_span s;
	json_t *root, *sp;

	memset(r.parent_id, 0, sizeof(r.parent_id));
	r.flags = SLUICE_SPAN_F_REDIRECTED; /* sampled by sluice: no traceparent */
	r.family = SLUICE_AF_INET6;
	inet_pton(AF_INET6, "fd00::10", r.fe_addr.a8);
	inet_pton(AF_INET6, "2001:db8::2", r.be_addr.a8);
	cr_assert_eq(sl_trace_span(&r, sizeof(r), "web", "", 0, &s), 0);
	cr_expect_eq(s.trace_flags, 1, "a span sluice sampled is sampled");
	sp = encode_one(&s, &root);
	cr_expect_null(json_object_get(sp, "parentSpanId"), "a root span has no parent");
	cr_expect_str_eq(attr_str(sp, "server.address"), "fd00::10");
	cr_expect_str_eq(attr_str(sp, "network.peer.address"), "2001:db8::2");
	cr_expect_str_eq(attr_str(sp, "sluice.source"), "unknown", "no identity");
	cr_expect_eq(memcmp(s.span_id, (uint8_t[8]){0}, 8), 0,
		     "span id left zero: the exporter's worker draws a fresh random one");
	json_decref(root);
}

Test(trace_span, no_backend_is_an_error)
{
	struct sluice_span_rec r = rec4();
	struct sl_span s;
	json_t *root, *sp, *st;

	r.drop = SLUICE_DROP_NO_BACKEND + 1;
	r.be_id = 0;
	memset(&r.be_addr, 0, sizeof(r.be_addr));
	r.be_port = 0;
	r.connect_ns = 0;
	r.bytes_sent = r.bytes_received = 0;
	r.end_ns = r.start_ns;
	r.reason = SLUICE_REASON_NONE;
	cr_assert_eq(sl_trace_span(&r, sizeof(r), "web", "frontend", 0, &s), 0);
	cr_expect_eq(s.error, 1);
	cr_expect_str_eq(s.reason, "no_backend");
	cr_expect_eq(s.backend.family, 0, "no backend: no network.peer.*");
	sp = encode_one(&s, &root);
	st = json_object_get(sp, "status");
	cr_expect_eq(json_integer_value(json_object_get(st, "code")), 2, "STATUS_CODE_ERROR");
	cr_expect_str_eq(attr_str(sp, "sluice.reason"), "no_backend");
	cr_expect_null(attr(sp, "network.peer.address"));
	cr_expect_null(attr(sp, "sluice.connect_ns"), "never established");
	cr_expect_null(json_object_get(sp, "events"));
	json_decref(root);
}

Test(trace_span, reasons)
{
	static const struct {
		uint8_t drop, reason;
		uint64_t connect_ns;
		const char *want; /* NULL: not an error */
	} cases[] = {
	    {SLUICE_DROP_POLICY + 1, SLUICE_REASON_NONE, 0, "policy"},
	    {SLUICE_DROP_CIRCUIT_BREAKER + 1, SLUICE_REASON_NONE, 0, "circuit_breaker"},
	    {SLUICE_DROP_RATE_LIMIT + 1, SLUICE_REASON_NONE, 0, "rate_limit"},
	    {0, SLUICE_REASON_REFUSED, 0, "refused"},
	    {0, SLUICE_REASON_TIMEOUT, 0, "timeout"},
	    {0, SLUICE_REASON_OTHER, 0, "other"},
	    {0, SLUICE_REASON_OTHER, 1000, NULL},
	    {0, SLUICE_REASON_FIN, 1000, NULL},
	    {0, SLUICE_REASON_RESET, 1000, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sluice_span_rec r = rec4();
		struct sl_span s;

		r.drop = cases[i].drop;
		r.reason = cases[i].reason;
		r.connect_ns = cases[i].connect_ns;
		cr_assert_eq(sl_trace_span(&r, sizeof(r), "web", "", 0, &s), 0);
		if (cases[i].want) {
			cr_expect_eq(s.error, 1, "case %zu: not an error", i);
			cr_expect_str_eq(s.reason, cases[i].want, "case %zu", i);
		} else {
			cr_expect_eq(s.error, 0, "case %zu: an error (%s)", i, s.reason);
		}
	}
}

Test(trace_span, not_a_span)
{
	struct sluice_span_rec r = rec4();
	struct sl_span s;

	cr_expect_eq(sl_trace_span(&r, sizeof(r) - 1, "web", "", 0, &s), -EINVAL, "short");
	r.family = 0;
	cr_expect_eq(sl_trace_span(&r, sizeof(r), "web", "", 0, &s), -EINVAL, "no family");
}

Test(trace_span, end_before_start_and_long_names)
{
	struct sluice_span_rec r = rec4();
	char longname[200];
	struct sl_span s;

	r.end_ns = r.start_ns - 1;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(sl_trace_span(&r, sizeof(r), longname, longname, 0, &s), 0);
	cr_expect_eq(s.end_ns, s.start_ns, "never ends before it starts");
	cr_expect_eq(strlen(s.service), sizeof(s.service) - 1);
	cr_expect_eq(strlen(s.source), sizeof(s.source) - 1);
}

/* The monotonic clock (bpf_ktime_get_ns) plus the offset is the wall clock. */
Test(trace_span, clock_offset)
{
	struct timespec m, w;
	int64_t off = sl_trace_clock_offset(), mono, wall;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &w);
	mono = (int64_t)m.tv_sec * 1000000000 + m.tv_nsec;
	wall = (int64_t)w.tv_sec * 1000000000 + w.tv_nsec;
	cr_expect(llabs(mono + off - wall) < 1000000, "off by %lld ns",
		  (long long)(mono + off - wall));
}
