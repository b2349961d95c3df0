/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * OpenTelemetry span exporter: OTLP/HTTP with JSON bodies, one span per traced connection.
 *
 * The agent hands one struct sl_span per traced connection to sl_otlp_submit(), which only
 * copies it into a bounded lock-free queue: it never blocks, takes no lock and makes no
 * system call but, at most, one write to wake the worker. One worker thread (libcurl) takes
 * batches from the queue and POSTs them to <endpoint>/v1/traces, one request at a time. A
 * slow or dead collector only holds the worker: the queue fills, further spans are dropped
 * and counted, and memory stays what sl_otlp_new() allocated (the queue, one batch).
 *
 * Batching: a request leaves when batch_size spans are waiting, or max_delay_ms after the
 * first of them was seen, or at once during sl_otlp_flush().
 *
 * Retries (as the OTLP/HTTP spec says): a transport error (refused, reset, timeout) or HTTP
 * 429, 502, 503 or 504 is retried after a backoff (backoff_min_ms doubling to
 * backoff_max_ms, with jitter), or after the response's Retry-After when it has one (cut to
 * retry_after_max_ms). A batch whose next attempt would fall more than retry_max_ms after its
 * first attempt is dropped. Any other answer but 2xx (400, 401, 413, 500, ...) drops the
 * batch at once. A 2xx with partialSuccess.rejectedSpans = k counts k spans as rejected.
 *
 * The encoding, per span (ExportTraceServiceRequest, OTLP JSON: ids are lowercase hex,
 * enums are numbers, 64-bit integers are decimal strings):
 *
 *   resourceSpans[0].resource.attributes: service.name = "sluice", host.name = host_name
 *   resourceSpans[0].scopeSpans[0].scope: {name: "sluice", version: SLUICE_VERSION}
 *   span field           from
 *   traceId              trace_id, 32 hex (all zero in: a random one, a new trace)
 *   spanId               span_id, 16 hex (all zero in: a random one, from getrandom)
 *   parentSpanId         parent_span_id, 16 hex; left out when all zero (a root span)
 *   flags                trace_flags | 0x100, | 0x200 with a parent (W3C flags; the
 *                        parent, from a traceparent header, is remote)
 *   name                 service
 *   kind                 3 (SPAN_KIND_CLIENT)
 *   startTimeUnixNano    start_ns, decimal string
 *   endTimeUnixNano      end_ns, decimal string
 *   attributes (value type in brackets; int = intValue, a decimal string)
 *     sluice.service         [string] service
 *     server.address/.port   [string]/[int] frontend (left out when family is 0)
 *     network.peer.address/.port [string]/[int] backend (left out when family is 0)
 *     sluice.source          [string] source, "unknown" when empty
 *     sluice.bytes_sent      [int] bytes_sent
 *     sluice.bytes_received  [int] bytes_received
 *     sluice.retransmits     [int] retransmits
 *     sluice.reason          [string] reason, only when error
 *   status               {code: 2 (STATUS_CODE_ERROR), message: reason} when error;
 *                        left out otherwise (STATUS_CODE_UNSET)
 */
#ifndef SLUICE_OTLP_H
#define SLUICE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#define SL_SPAN_NAME_LEN   64 /* service and identity names (SLUICE_NAME_LEN) */
#define SL_SPAN_REASON_LEN 24

/* An address and port of either family. */
struct sl_span_addr {
	uint16_t family;  /* AF_INET or AF_INET6; 0: none (its attributes are left out) */
	uint16_t port;	  /* host byte order */
	uint8_t addr[16]; /* network byte order; AF_INET uses the first 4 bytes */
};

/* One traced connection, filled by the agent from the kernel's record. Strings are
 * NUL-terminated or fill their array; they must be UTF-8 (else the span is dropped). */
struct sl_span {
	uint8_t trace_id[16];	   /* all zero: a new trace, random id */
	uint8_t span_id[8];	   /* all zero: the exporter picks a random id */
	uint8_t parent_span_id[8]; /* all zero: a root span */
	uint8_t trace_flags;	   /* W3C trace flags (bit 0: sampled) */
	uint8_t error;		   /* 1: the connect failed or was refused: status ERROR */
	uint16_t pad;
	uint32_t retransmits;	      /* TCP segments retransmitted */
	uint64_t start_ns;	      /* unix time in ns: connect() */
	uint64_t end_ns;	      /* unix time in ns: close, or the failure */
	uint64_t connect_ns;	      /* SYN sent -> established; 0: never established */
	uint64_t bytes_sent;	      /* by the caller */
	uint64_t bytes_received;      /* by the caller */
	struct sl_span_addr frontend; /* the service's address: server.address/port */
	struct sl_span_addr backend;  /* the backend chosen: network.peer.address/port */
	char service[SL_SPAN_NAME_LEN];
	char source[SL_SPAN_NAME_LEN];	 /* the caller's identity; "" = unknown */
	char reason[SL_SPAN_REASON_LEN]; /* with error: "refused", "timeout", "no_backend",
					  * "policy", "circuit_breaker", "rate_limit", ... */
};

/* Settings; a zero field takes the default. */
struct sl_otlp_opts {
	const char *endpoint;		 /* "http://host:port[/prefix]" (or https): required */
	const char *host_name;		 /* resource host.name (agent.node); NULL: gethostname */
	unsigned int queue_size;	 /* spans waiting, at most (4096; up to 1048576) */
	unsigned int batch_size;	 /* spans per request, at most (512; up to queue_size) */
	unsigned int max_delay_ms;	 /* the longest a span waits for its batch to fill (1000) */
	unsigned int timeout_ms;	 /* one request, connect to last byte (10000) */
	unsigned int backoff_min_ms;	 /* the first retry's delay (500) */
	unsigned int backoff_max_ms;	 /* the longest retry delay (5000) */
	unsigned int retry_max_ms;	 /* a batch is retried this long, then dropped (30000) */
	unsigned int retry_after_max_ms; /* a longer Retry-After is cut to this (30000) */
};

/* Counters since sl_otlp_new(); each is read atomically (not all at one instant). */
struct sl_otlp_stats {
	uint64_t submitted;	     /* sl_otlp_submit() calls */
	uint64_t exported;	     /* accepted by the collector: sluice_spans_exported_total */
	uint64_t dropped;	     /* the sum of the four below: sluice_spans_dropped_total */
	uint64_t dropped_queue_full; /* the queue was full at submit */
	uint64_t dropped_rejected;   /* refused: not 2xx, not retryable; partialSuccess */
	uint64_t dropped_retries;    /* retries exhausted */
	uint64_t dropped_invalid;    /* could not be encoded (not UTF-8, no memory) */
	uint64_t requests_ok;	     /* requests answered 2xx */
	uint64_t requests_failed;    /* other answers and transport errors, each attempt */
	uint64_t queued;	     /* in the queue now */
	uint64_t in_flight;	     /* taken by the worker, not yet exported nor dropped */
};

struct sl_otlp;

/* Checks the options, allocates the queue and starts the worker thread. NULL with a message
 * in err (what is wrong, and why) on bad options or when out of resources. */
struct sl_otlp *sl_otlp_new(const struct sl_otlp_opts *opts, char *err, size_t err_len);

/* Queues a copy of *span. Never blocks. 0, or -ENOSPC when the queue is full (the span is
 * dropped and counted). Safe from any number of threads at once, as are get_stats and
 * flush; sl_otlp_free() must be the last call. */
int sl_otlp_submit(struct sl_otlp *exp, const struct sl_span *span);

void sl_otlp_get_stats(const struct sl_otlp *exp, struct sl_otlp_stats *out);

/* Blocks the caller (for shutdown, not for the agent's loop) until every span submitted
 * before the call is exported or dropped, sending partial batches at once. 0, or
 * -ETIMEDOUT after timeout_ms. */
int sl_otlp_flush(struct sl_otlp *exp, unsigned int timeout_ms);

/* Stops the worker within milliseconds (a request in flight is abandoned; the number of
 * spans not exported is logged), frees everything. NULL is a no-op. */
void sl_otlp_free(struct sl_otlp *exp);

/* The ExportTraceServiceRequest JSON of n spans, as sent (ids as given: the exporter fills
 * zero ids before this). A malloc'd string, or NULL (a string not UTF-8, no memory). */
char *sl_otlp_encode(const struct sl_span *spans, size_t n, const char *host_name);

#endif /* SLUICE_OTLP_H */
