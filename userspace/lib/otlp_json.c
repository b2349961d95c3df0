// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The OTLP/HTTP JSON of the span exporter (the mapping is in otlp.h): building
 * ExportTraceServiceRequest bodies and reading ExportTraceServiceResponse ones. Pure: no I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "otlp_int.h"
#include "parse.h"

#define SPAN_KIND_CLIENT	 3
#define STATUS_CODE_ERROR	 2
#define SPAN_FLAGS_HAS_IS_REMOTE 0x100 /* SpanFlags: bit 8 says whether bit 9 is known */
#define SPAN_FLAGS_IS_REMOTE	 0x200 /* ... and bit 9: the parent is remote */
#define SCOPE_NAME		 "sluice"

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* {"key": key, "value": {"stringValue": v}}; v of at most max bytes, NUL-terminated or not;
 * dflt when empty. */
static int add_str(json_t *attrs, const char *key, const char *v, size_t max, const char *dflt)
{
	size_t len = strnlen(v, max);

	if (!len) {
		v = dflt;
		len = strlen(dflt);
	}
	return json_array_append_new(
	    attrs, json_pack("{s:s, s:{s:s%}}", "key", key, "value", "stringValue", v, len));
}

/* {"key": key, "value": {"intValue": "<decimal>"}}: an int64, so cut to INT64_MAX. */
static int add_int(json_t *attrs, const char *key, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v > INT64_MAX ? (uint64_t)INT64_MAX : v);
	return json_array_append_new(
	    attrs, json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", num));
}

/* The address and port attributes of a; nothing when its family is neither IPv4 nor IPv6. */
static int add_addr(json_t *attrs, const char *addr_key, const char *port_key,
		    const struct sl_span_addr *a)
{
	char text[INET6_ADDRSTRLEN];

	if (a->family != AF_INET && a->family != AF_INET6)
		return 0;
	if (!inet_ntop(a->family, a->addr, text, sizeof(text)))
		return -1;
	if (add_str(attrs, addr_key, text, sizeof(text), "") || add_int(attrs, port_key, a->port))
		return -1;
	return 0;
}

static json_t *span_attrs(const struct sl_span *s)
{
	json_t *a = json_array();

	if (!a || add_str(a, "sluice.service", s->service, sizeof(s->service), "") ||
	    add_addr(a, "server.address", "server.port", &s->frontend) ||
	    add_addr(a, "network.peer.address", "network.peer.port", &s->backend) ||
	    add_str(a, "sluice.source", s->source, sizeof(s->source), "unknown") ||
	    add_int(a, "sluice.bytes_sent", s->bytes_sent) ||
	    add_int(a, "sluice.bytes_received", s->bytes_received) ||
	    add_int(a, "sluice.retransmits", s->retransmits) ||
	    (s->connect_ns && add_int(a, "sluice.connect_ns", s->connect_ns)) ||
	    (s->error && add_str(a, "sluice.reason", s->reason, sizeof(s->reason), "unknown"))) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *span_status(const struct sl_span *s)
{
	size_t len = strnlen(s->reason, sizeof(s->reason));

	return json_pack("{s:i, s:s%}", "code", STATUS_CODE_ERROR, "message",
			 len ? s->reason : "unknown", len ? len : strlen("unknown"));
}

/* The span event "established" at the handshake's end, on the span's timeline; NULL on
 * failure. */
static json_t *span_events(const struct sl_span *s)
{
	char at[24];

	snprintf(at, sizeof(at), "%" PRIu64, s->start_ns + s->connect_ns);
	return json_pack("[{s:s, s:s}]", "timeUnixNano", at, "name", "established");
}

json_t *otlp_span_json(const struct sl_span *s)
{
	char tid[33], sid[17], pid[17], start[24], end[24];
	int has_parent = !all_zero(s->parent_span_id, sizeof(s->parent_span_id));
	int flags =
	    s->trace_flags | SPAN_FLAGS_HAS_IS_REMOTE | (has_parent ? SPAN_FLAGS_IS_REMOTE : 0);
	json_t *o;

	hex(s->trace_id, sizeof(s->trace_id), tid);
	hex(s->span_id, sizeof(s->span_id), sid);
	hex(s->parent_span_id, sizeof(s->parent_span_id), pid);
	snprintf(start, sizeof(start), "%" PRIu64, s->start_ns);
	/* A span cannot end before it starts. */
	snprintf(end, sizeof(end), "%" PRIu64, s->end_ns < s->start_ns ? s->start_ns : s->end_ns);
	o = json_pack("{s:s, s:s, s:i, s:s%, s:i, s:s, s:s, s:o}", "traceId", tid, "spanId", sid,
		      "flags", flags, "name", s->service, strnlen(s->service, sizeof(s->service)),
		      "kind", SPAN_KIND_CLIENT, "startTimeUnixNano", start, "endTimeUnixNano", end,
		      "attributes", span_attrs(s));
	if (!o)
		return NULL;
	if ((has_parent && json_object_set_new(o, "parentSpanId", json_string(pid))) ||
	    (s->error && json_object_set_new(o, "status", span_status(s))) ||
	    (s->connect_ns && json_object_set_new(o, "events", span_events(s)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *otlp_request_dump(json_t *spans, const char *host_name)
{
	json_t *req;
	char *text;

	/* One resource (this agent), one scope (sluice), every span of the batch. */
	req = json_pack("{s:[{s:{s:[{s:s, s:{s:s}}, {s:s, s:{s:s}}]}, s:[{s:{s:s, s:s}, s:o}]}]}",
			"resourceSpans", "resource", "attributes", "key", "service.name", "value",
			"stringValue", "sluice", "key", "host.name", "value", "stringValue",
			host_name, "scopeSpans", "scope", "name", SCOPE_NAME, "version",
			SLUICE_VERSION, "spans", spans);
	if (!req)
		return NULL;
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	return text;
}

char *sl_otlp_encode(const struct sl_span *spans, size_t n, const char *host_name)
{
	json_t *arr = json_array();
	size_t i;

	if (!arr || !host_name)
		goto fail;
	for (i = 0; i < n; i++)
		if (json_array_append_new(arr, otlp_span_json(&spans[i])))
			goto fail;
	return otlp_request_dump(arr, host_name);
fail:
	json_decref(arr);
	return NULL;
}

int otlp_parse_response(const char *body, size_t len, uint64_t *rejected, char *msg, size_t n)
{
	json_t *root, *ps, *rs, *em;
	const char *why;
	int r = -EINVAL;

	*rejected = 0;
	if (n)
		msg[0] = '\0';
	if (!len)
		return 0;
	root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(root))
		goto out;
	ps = json_object_get(root, "partialSuccess");
	if (!ps) {
		r = 0;
		goto out;
	}
	rs = json_object_get(ps, "rejectedSpans");
	em = json_object_get(ps, "errorMessage");
	if (!json_is_object(ps) || (em && !json_is_string(em)))
		goto out;
	/* An int64: a decimal string in OTLP JSON; a number is accepted too. */
	if (json_is_string(rs)) {
		if (sl_parse_uint(json_string_value(rs), 0, INT64_MAX, rejected, &why))
			goto out;
	} else if (json_is_integer(rs) && json_integer_value(rs) >= 0) {
		*rejected = (uint64_t)json_integer_value(rs);
	} else if (rs) {
		goto out;
	}
	if (em && n)
		snprintf(msg, n, "%s", json_string_value(em));
	r = 0;
out:
	if (r)
		*rejected = 0;
	json_decref(root);
	return r;
}
