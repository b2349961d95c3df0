/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the span exporter (otlp.h): its state, and what its files share.
 *   otlp.c       the API, the options and the queue;
 *   otlp_send.c  the worker thread: batches and requests (libcurl);
 *   otlp_json.c  the OTLP JSON of requests and the reading of responses (jansson), pure.
 */
#ifndef SLUICE_OTLP_INT_H
#define SLUICE_OTLP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "otlp.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define OTLP_DEF_QUEUE		4096
#define OTLP_DEF_BATCH		512
#define OTLP_DEF_DELAY_MS	1000
#define OTLP_DEF_TIMEOUT_MS	10000
#define OTLP_DEF_BACKOFF_MIN_MS 500
#define OTLP_DEF_BACKOFF_MAX_MS 5000
#define OTLP_DEF_RETRY_MAX_MS	30000
#define OTLP_DEF_RETRY_AFTER_MS 30000
#define OTLP_QUEUE_MAX		(1u << 20)
#define OTLP_POLL_MAX_MS	1000	    /* the worker's longest sleep */
#define OTLP_RESP_MAX		(64u << 10) /* bytes of a response kept (the rest is ignored) */
#define OTLP_URL_LEN		1024
#define OTLP_HOST_LEN		256
#define OTLP_RAND_POOL		256 /* bytes of getrandom per call: 32 span ids */

struct otlp_cell {
	_Atomic uint64_t seq;
	struct sl_span span;
};

/* The batch the worker holds (n == 0: none). */
struct otlp_batch {
	char *body;
	size_t n;
	uint64_t first_try; /* ms, monotonic; 0: not tried yet */
	uint64_t next_try;
	unsigned int backoff;
	int running; /* a request is in flight */
};

struct sl_otlp {
	struct sl_otlp_opts o; /* defaults applied; endpoint and host_name point below */
	char url[OTLP_URL_LEN];
	char host[OTLP_HOST_LEN];
	struct otlp_cell *cells;
	uint64_t cap;

	/* Written by producers. */
	_Alignas(64) _Atomic uint64_t enq; /* the next position to claim */
	_Atomic uint64_t submitted;
	_Atomic uint64_t d_full;
	_Atomic int sleeping; /* the worker waits for a first span */
	_Atomic int kicked;   /* a producer woke the worker for a full batch */

	/* Written by the worker. */
	_Alignas(64) _Atomic uint64_t deq; /* the next position to take */
	_Atomic uint64_t in_flight;
	_Atomic uint64_t settled; /* spans taken, then exported or dropped */
	_Atomic uint64_t exported, d_rejected, d_retries, d_invalid, req_ok, req_failed;

	_Atomic uint64_t flush_to; /* send partial batches until deq reaches this */
	_Atomic int stop;

	/* The worker's own. */
	CURLM *multi;
	CURL *easy;
	struct curl_slist *hdrs;
	int curl_inited;
	struct otlp_batch b;
	uint64_t t_first; /* ms: when the worker saw the oldest waiting span; 0: none */
	char errbuf[CURL_ERROR_SIZE];
	char *resp;
	size_t resp_len;
	uint64_t rng; /* jitter, and ids when getrandom fails */
	uint8_t pool[OTLP_RAND_POOL];
	size_t pool_left;
	int failing; /* the last attempt failed (logged once, until one succeeds) */

	pthread_mutex_t mu; /* with cv: sl_otlp_flush() waits for 'settled' */
	pthread_cond_t cv;
	int sync_inited;
	pthread_t thread;
	int thread_started;
};

static inline uint64_t otlp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The queue (otlp.c), for the worker only: is the next span published; take it into *out
 * (0, or -EAGAIN when none is published). */
int otlp_queue_ready(struct sl_otlp *e);
int otlp_queue_pop(struct sl_otlp *e, struct sl_span *out);

/* The worker (otlp_send.c): its curl handles (0, or -ENOMEM / -EINVAL: an option curl
 * refused), and the thread. */
int otlp_curl_init(struct sl_otlp *e);
void *otlp_worker(void *arg);

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
