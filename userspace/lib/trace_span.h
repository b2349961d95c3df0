/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel's record of a traced connection (struct sluice_span_rec, from the sluice_spans
 * ring buffer) as the exporter's span (struct sl_span, otlp.h): README "Tracing".
 */
#ifndef SLUICE_TRACE_SPAN_H
#define SLUICE_TRACE_SPAN_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

#include "otlp.h"

/* CLOCK_REALTIME minus CLOCK_MONOTONIC (bpf_ktime_get_ns's clock) now, in ns: a monotonic
 * time plus it is the wall-clock time of that instant. */
int64_t sl_trace_clock_offset(void);

/* Why the connection failed, as the span's sluice.reason: "no_backend", "policy", ...
 * for a connect() refused by sluice, "refused", "timeout" or "connect_error" for one the
 * backend's side failed; NULL for a connection that was made (whatever ended it). */
const char *sl_trace_reason(const struct sluice_span_rec *r);

/*
 * Fill *out from the record: the ids (span_id left zero: the exporter picks a fresh random
 * one), start and end in unix ns (the record's monotonic times + offset), the frontend and
 * the backend (none when the record has no backend), the byte and retransmit counts, status
 * ERROR with reason for a failed connect. service and source are the names of r->svc_id and
 * r->identity ("" for no identity); too long, they are cut. 0, or -EINVAL for a record too
 * short (len) or of an unknown family, which is not a span.
 */
int sl_trace_span(const struct sluice_span_rec *r, size_t len, const char *service,
		  const char *source, int64_t offset, struct sl_span *out);

#endif /* SLUICE_TRACE_SPAN_H */
