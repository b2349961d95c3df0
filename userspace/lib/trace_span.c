// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A traced connection's record -> an OTLP span (trace_span.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "report.h"
#include "trace_span.h"

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int64_t sl_trace_clock_offset(void)
{
	struct timespec r1, m, r2;

	/* The monotonic reading between two realtime ones: their midpoint is its instant. */
	clock_gettime(CLOCK_REALTIME, &r1);
	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r2);
	return ns_of(&r1) + (ns_of(&r2) - ns_of(&r1)) / 2 - ns_of(&m);
}

const char *sl_trace_reason(const struct sluice_span_rec *r)
{
	if (r->drop)
		return sl_drop_name(r->drop - 1u);
	switch (r->reason) {
	case SLUICE_REASON_REFUSED:
	case SLUICE_REASON_TIMEOUT:
		return sl_event_reason_name(r->reason);
	case SLUICE_REASON_OTHER:
		/* a connect that failed otherwise; after it was made, just an end */
		return r->connect_ns ? NULL : sl_event_reason_name(r->reason);
	default:
		return NULL;
	}
}

static void span_addr(struct sl_span_addr *out, uint8_t family, const union sluice_addr *a,
		      uint16_t port)
{
	out->family = family;
	out->port = port;
	memcpy(out->addr, a->a8, sizeof(out->addr));
}

static uint64_t unix_ns(uint64_t mono, int64_t offset)
{
	int64_t t = (int64_t)mono + offset;

	return t > 0 ? (uint64_t)t : 0;
}

int sl_trace_span(const struct sluice_span_rec *r, size_t len, const char *service,
		  const char *source, int64_t offset, struct sl_span *out)
{
	static const union sluice_addr none;
	const char *reason;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*r) || (r->family != SLUICE_AF_INET && r->family != SLUICE_AF_INET6))
		return -EINVAL;
	memcpy(out->trace_id, r->trace_id, sizeof(out->trace_id));
	memcpy(out->parent_span_id, r->parent_id, sizeof(out->parent_span_id));
	/* Only sampled connections come: a traceparent's flags, or sampled by sluice. */
	out->trace_flags = !(r->flags & SLUICE_SPAN_F_PARENT) || (r->flags & SLUICE_SPAN_F_SAMPLED);
	out->start_ns = unix_ns(r->start_ns, offset);
	out->end_ns = r->end_ns >= r->start_ns ? unix_ns(r->end_ns, offset) : out->start_ns;
	out->connect_ns = r->connect_ns;
	out->bytes_sent = r->bytes_sent;
	out->bytes_received = r->bytes_received;
	out->retransmits = r->retrans;
	span_addr(&out->frontend, r->family, &r->fe_addr, r->fe_port);
	if (r->be_id && memcmp(&r->be_addr, &none, sizeof(none)))
		span_addr(&out->backend, r->family, &r->be_addr, r->be_port);
	snprintf(out->service, sizeof(out->service), "%s", service ? service : "");
	snprintf(out->source, sizeof(out->source), "%s", source ? source : "");
	reason = sl_trace_reason(r);
	if (reason) {
		out->error = 1;
		snprintf(out->reason, sizeof(out->reason), "%s", reason);
	}
	return 0;
}
