/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the span exporter (otlp.h):
 *   otlp.c       the API, the queue and the worker thread (libcurl);
 *   otlp_json.c  the OTLP JSON of requests and the reading of responses (jansson), pure.
 */
#ifndef SLUICE_OTLP_INT_H
#define SLUICE_OTLP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "otlp.h"

/* One span's JSON object, or NULL (a string not UTF-8, no memory). */
json_t *otlp_span_json(const struct sl_span *s);

/* The request around an array of span objects (stolen, even on failure), dumped compact.
 * A malloc'd string, or NULL. */
char *otlp_request_dump(json_t *spans, const char *host_name);

/* A 2xx body (ExportTraceServiceResponse, may be empty): *rejected = its
 * partialSuccess.rejectedSpans (0 when absent), msg its errorMessage ("" when absent).
 * 0, or -EINVAL when the body is not such JSON (*rejected is 0 then). */
int otlp_parse_response(const char *body, size_t len, uint64_t *rejected, char *msg, size_t n);

#endif /* SLUICE_OTLP_INT_H */
