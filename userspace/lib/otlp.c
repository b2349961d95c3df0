// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The span exporter (otlp.h): a bounded queue, one worker thread, libcurl.
 *
 * The queue is Dmitry Vyukov's bounded MPMC array queue (used here with one consumer): each
 * cell carries a sequence number that says whether it is free for position p (seq == p) or
 * holds the span of position p (seq == p + 1). A producer claims a position with one CAS on
 * enq, copies the span, then publishes it by storing seq; the worker takes cells in order,
 * frees them (seq = p + cap) and advances deq. A full queue is seen without waiting (the
 * cell at enq still holds an older span), so sl_otlp_submit() drops and counts.
 *
 * Waking the worker costs a write (curl_multi_wakeup), so producers do it only when the
 * worker sleeps for want of a first span ('sleeping') or when a batch's worth is waiting
 * ('kicked', once per batch). Otherwise the worker sleeps until its next deadline: the end of
 * a batch's max delay, a retry, or curl's own timers. The store of a cell's seq and the load
 * of 'sleeping' (and the reverse on the worker's side) are separated by full fences, so a
 * span published while the worker goes to sleep is never missed.
 *
 * The worker holds at most one batch: popped from the queue, encoded once, then sent until
 * accepted, refused or out of retries. Memory is the queue, that batch's body and curl's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "otlp_int.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define OT_DEF_QUEUE	      4096
#define OT_DEF_BATCH	      512
#define OT_DEF_DELAY_MS	      1000
#define OT_DEF_TIMEOUT_MS     10000
#define OT_DEF_BACKOFF_MIN_MS 500
#define OT_DEF_BACKOFF_MAX_MS 5000
#define OT_DEF_RETRY_MAX_MS   30000
#define OT_DEF_RETRY_AFTER_MS 30000
#define OT_QUEUE_MAX	      (1u << 20)
#define OT_POLL_MAX_MS	      1000	  /* the worker's longest sleep */
#define OT_RESP_MAX	      (64u << 10) /* bytes of a response kept (the rest is ignored) */
#define OT_URL_LEN	      1024
#define OT_HOST_LEN	      256
#define OT_RAND_POOL	      256 /* bytes of getrandom per call: 32 span ids */

struct cell {
	_Atomic uint64_t seq;
	struct sl_span span;
};

/* The batch the worker holds (n == 0: none). */
struct batch {
	char *body;
	size_t n;
	uint64_t first_try; /* ms, monotonic; 0: not tried yet */
	uint64_t next_try;
	unsigned int backoff;
	int running; /* a request is in flight */
};

struct sl_otlp {
	struct sl_otlp_opts o; /* defaults applied; endpoint and host_name point below */
	char url[OT_URL_LEN];
	char host[OT_HOST_LEN];
	struct cell *cells;
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
	struct batch b;
	uint64_t t_first; /* ms: when the worker saw the oldest waiting span; 0: none */
	char errbuf[CURL_ERROR_SIZE];
	char *resp;
	size_t resp_len;
	uint64_t rng; /* jitter, and ids when getrandom fails */
	uint8_t pool[OT_RAND_POOL];
	size_t pool_left;
	int failing; /* the last attempt failed (logged once, until one succeeds) */

	pthread_mutex_t mu; /* with cv: sl_otlp_flush() waits for 'settled' */
	pthread_cond_t cv;
	int sync_inited;
	pthread_t thread;
	int thread_started;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_next(struct sl_otlp *e)
{
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng;
}

/* n random bytes: getrandom, 256 bytes at a time; the xorshift state if it fails (never
 * after boot: it only fails before the kernel's pool is ready, GRND_NONBLOCK). */
static void rand_bytes(struct sl_otlp *e, uint8_t *out, size_t n)
{
	while (n) {
		size_t take;

		if (!e->pool_left) {
			if (getrandom(e->pool, sizeof(e->pool), GRND_NONBLOCK) !=
			    (ssize_t)sizeof(e->pool)) {
				size_t i;

				for (i = 0; i < sizeof(e->pool); i++)
					e->pool[i] = (uint8_t)rng_next(e);
			}
			e->pool_left = sizeof(e->pool);
		}
		take = n < e->pool_left ? n : e->pool_left;
		memcpy(out, e->pool + sizeof(e->pool) - e->pool_left, take);
		e->pool_left -= take;
		out += take;
		n -= take;
	}
}

static int all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* A random id where the agent gave none (all zero is invalid in OTLP). */
static void fill_id(struct sl_otlp *e, uint8_t *id, size_t n)
{
	int tries;

	for (tries = 0; tries < 4 && all_zero(id, n); tries++)
		rand_bytes(e, id, n);
	if (all_zero(id, n))
		id[n - 1] = 1;
}

/* ---- the queue ---- */

int sl_otlp_submit(struct sl_otlp *e, const struct sl_span *span)
{
	uint64_t pos, seq, len;
	struct cell *c;

	atomic_fetch_add_explicit(&e->submitted, 1, memory_order_relaxed);
	pos = atomic_load_explicit(&e->enq, memory_order_relaxed);
	for (;;) {
		c = &e->cells[pos % e->cap];
		seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		if (seq == pos) {
			if (atomic_compare_exchange_weak_explicit(
				&e->enq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))
				break;
		} else if ((int64_t)(seq - pos) < 0) {
			atomic_fetch_add_explicit(&e->d_full, 1, memory_order_relaxed);
			return -ENOSPC;
		} else {
			pos = atomic_load_explicit(&e->enq, memory_order_relaxed);
		}
	}
	c->span = *span;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);

	atomic_thread_fence(memory_order_seq_cst);
	len = pos + 1 - atomic_load_explicit(&e->deq, memory_order_relaxed);
	if ((atomic_load_explicit(&e->sleeping, memory_order_relaxed) &&
	     atomic_exchange(&e->sleeping, 0)) ||
	    (len >= e->o.batch_size && !atomic_load_explicit(&e->kicked, memory_order_relaxed) &&
	     !atomic_exchange(&e->kicked, 1)))
		curl_multi_wakeup(e->multi);
	return 0;
}

/* The next span is published (the worker only). */
static int queue_ready(struct sl_otlp *e)
{
	uint64_t pos = atomic_load_explicit(&e->deq, memory_order_relaxed);

	return atomic_load_explicit(&e->cells[pos % e->cap].seq, memory_order_acquire) == pos + 1;
}

/* Takes the next span into *out; 0, or -EAGAIN when none is published (the worker only). */
static int queue_pop(struct sl_otlp *e, struct sl_span *out)
{
	uint64_t pos = atomic_load_explicit(&e->deq, memory_order_relaxed);
	struct cell *c = &e->cells[pos % e->cap];

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
		return -EAGAIN;
	*out = c->span;
	/* In flight before it leaves the queue, so that a reader of the stats never loses it. */
	atomic_fetch_add(&e->in_flight, 1);
	atomic_store_explicit(&c->seq, pos + e->cap, memory_order_release);
	atomic_store_explicit(&e->deq, pos + 1, memory_order_release);
	return 0;
}

/* ---- batches ---- */

/* n spans taken are done with (exported or dropped): tell sl_otlp_flush(). */
static void settle(struct sl_otlp *e, uint64_t n)
{
	atomic_fetch_sub(&e->in_flight, n);
	atomic_fetch_add(&e->settled, n);
	pthread_mutex_lock(&e->mu);
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

static void batch_done(struct sl_otlp *e)
{
	settle(e, e->b.n);
	free(e->b.body);
	memset(&e->b, 0, sizeof(e->b));
}

/* Is a batch due: a full one waiting, the oldest span's max delay over, or a flush? */
static int batch_due(struct sl_otlp *e, uint64_t now)
{
	uint64_t deq = atomic_load(&e->deq);

	if (!queue_ready(e)) {
		e->t_first = 0;
		return 0;
	}
	if (!e->t_first)
		e->t_first = now;
	return atomic_load(&e->enq) - deq >= e->o.batch_size ||
	       now >= e->t_first + e->o.max_delay_ms || deq < atomic_load(&e->flush_to);
}

/* Pops up to batch_size spans into a new batch, with ids filled in, encoded. */
static void batch_take(struct sl_otlp *e, uint64_t now)
{
	json_t *arr = json_array();
	uint64_t invalid = 0;
	struct sl_span s;
	size_t n = 0;

	atomic_store(&e->kicked, 0);
	if (!arr && !queue_pop(e, &s))
		invalid++; /* no memory: drop one span a turn, so that the queue still moves */
	while (arr && n < e->o.batch_size && !queue_pop(e, &s)) {
		fill_id(e, s.trace_id, sizeof(s.trace_id));
		fill_id(e, s.span_id, sizeof(s.span_id));
		if (json_array_append_new(arr, otlp_span_json(&s)))
			invalid++;
		else
			n++;
	}
	e->t_first = queue_ready(e) ? now : 0;
	if (n) {
		e->b.body = otlp_request_dump(arr, e->host);
		arr = NULL;
		if (!e->b.body)
			invalid += n;
		else
			e->b.n = n;
	}
	json_decref(arr);
	if (invalid) {
		atomic_fetch_add(&e->d_invalid, invalid);
		settle(e, invalid);
		sl_warn("otlp dropped spans that could not be encoded", "spans=%llu",
			(unsigned long long)invalid);
	}
	e->b.backoff = e->o.backoff_min_ms;
	e->b.next_try = now;
}

/* ---- requests ---- */

static size_t resp_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct sl_otlp *e = arg;
	size_t n = size * nmemb, room = OT_RESP_MAX - e->resp_len;

	memcpy(e->resp + e->resp_len, d, n < room ? n : room);
	e->resp_len += n < room ? n : room;
	return n;
}

static void request_start(struct sl_otlp *e, uint64_t now)
{
	e->resp_len = 0;
	e->errbuf[0] = '\0';
	if (!e->b.first_try)
		e->b.first_try = now;
	if (curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, e->b.body) ||
	    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(e->b.body)) ||
	    curl_multi_add_handle(e->multi, e->easy)) {
		/* Counted as a failed attempt; retried like one. */
		sl_warn("otlp request setup failed", "url=%s", e->url);
		atomic_fetch_add(&e->req_failed, 1);
		e->b.next_try = now + e->b.backoff;
		return;
	}
	e->b.running = 1;
}

/* The answers that OTLP/HTTP says to retry. */
static int retryable(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

static void request_ok(struct sl_otlp *e)
{
	uint64_t rejected = 0;
	char msg[256];

	atomic_fetch_add(&e->req_ok, 1);
	if (otlp_parse_response(e->resp, e->resp_len, &rejected, msg, sizeof(msg)))
		sl_debug("otlp response is not an ExportTraceServiceResponse", "url=%s", e->url);
	if (rejected > e->b.n)
		rejected = e->b.n;
	if (rejected) {
		sl_warn("otlp collector rejected spans", "url=%s spans=%llu why=\"%s\"", e->url,
			(unsigned long long)rejected, msg);
		atomic_fetch_add(&e->d_rejected, rejected);
	}
	atomic_fetch_add(&e->exported, e->b.n - rejected);
	if (e->failing)
		sl_info("otlp export works again", "url=%s", e->url);
	e->failing = 0;
	batch_done(e);
}

/* The wait before the next attempt: the response's Retry-After (seconds, cut to
 * retry_after_max_ms), else the backoff with equal jitter; the backoff doubles. */
static uint64_t retry_delay(struct sl_otlp *e, long status, curl_off_t retry_after)
{
	unsigned int b = e->b.backoff;
	uint64_t d = b / 2 + rng_next(e) % (b / 2 + 1);

	e->b.backoff = b >= e->o.backoff_max_ms / 2 ? e->o.backoff_max_ms : b * 2;
	if (retryable(status) && retry_after > 0) {
		d = (uint64_t)retry_after * 1000;
		if (d > e->o.retry_after_max_ms)
			d = e->o.retry_after_max_ms;
	}
	return d;
}

static void request_failed(struct sl_otlp *e, CURLcode rc, long status, curl_off_t retry_after,
			   uint64_t now)
{
	unsigned long long n = e->b.n;
	char why[CURL_ERROR_SIZE + 32];
	uint64_t delay;

	atomic_fetch_add(&e->req_failed, 1);
	if (rc != CURLE_OK)
		snprintf(why, sizeof(why), "%s", e->errbuf[0] ? e->errbuf : curl_easy_strerror(rc));
	else
		snprintf(why, sizeof(why), "HTTP %ld", status);
	if (rc == CURLE_OK && !retryable(status)) {
		sl_log(e->failing ? SL_LOG_DEBUG : SL_LOG_WARN,
		       "otlp collector refused a batch, dropped", "url=%s spans=%llu why=\"%s\"",
		       e->url, n, why);
		atomic_fetch_add(&e->d_rejected, n);
		batch_done(e);
		e->failing = 1;
		return;
	}
	delay = retry_delay(e, rc == CURLE_OK ? status : 0, retry_after);
	if (now + delay > e->b.first_try + e->o.retry_max_ms) {
		sl_warn("otlp export failed, batch dropped after retries",
			"url=%s spans=%llu why=\"%s\"", e->url, n, why);
		atomic_fetch_add(&e->d_retries, n);
		batch_done(e);
		e->failing = 1;
		return;
	}
	sl_log(e->failing ? SL_LOG_DEBUG : SL_LOG_WARN, "otlp export failed, will retry",
	       "url=%s why=\"%s\" in_ms=%llu", e->url, why, (unsigned long long)delay);
	e->failing = 1;
	e->b.next_try = now + delay;
}

static void requests_done(struct sl_otlp *e)
{
	struct CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		CURLcode rc = m->data.result;
		curl_off_t retry_after = 0;
		long status = 0;

		if (m->msg != CURLMSG_DONE || m->easy_handle != e->easy)
			continue;
		if (curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &status))
			status = 0;
		if (curl_easy_getinfo(e->easy, CURLINFO_RETRY_AFTER, &retry_after))
			retry_after = 0;
		curl_multi_remove_handle(e->multi, e->easy); /* m is gone from here on */
		e->b.running = 0;
		if (rc == CURLE_OK && status >= 200 && status < 300)
			request_ok(e);
		else
			request_failed(e, rc, status, retry_after, mono_ms());
	}
}

/* ---- the worker ---- */

/* Sleep until the next deadline, curl's timers, or a wakeup. */
static void worker_wait(struct sl_otlp *e, uint64_t now)
{
	uint64_t due = now + OT_POLL_MAX_MS;

	if (e->b.running) {
		/* curl_multi_poll also wakes for curl's own timers (the request timeout). */
	} else if (e->b.n) {
		due = e->b.next_try < due ? e->b.next_try : due;
	} else if (queue_ready(e)) {
		if (e->t_first + e->o.max_delay_ms < due)
			due = e->t_first + e->o.max_delay_ms;
	} else {
		atomic_store(&e->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (queue_ready(e)) {
			atomic_store(&e->sleeping, 0);
			return;
		}
	}
	if (due > now && curl_multi_poll(e->multi, NULL, 0, (int)(due - now), NULL) != CURLM_OK) {
		sl_warn("otlp curl_multi_poll failed");
		usleep(10000);
	}
	atomic_store(&e->sleeping, 0);
}

static void *worker(void *arg)
{
	struct sl_otlp *e = arg;
	int running;

	while (!atomic_load(&e->stop)) {
		uint64_t now = mono_ms();

		if (!e->b.n && batch_due(e, now))
			batch_take(e, now);
		if (e->b.n && !e->b.running && now >= e->b.next_try)
			request_start(e, now);
		if (curl_multi_perform(e->multi, &running) != CURLM_OK)
			sl_debug("otlp curl_multi_perform failed");
		requests_done(e);
		worker_wait(e, mono_ms());
	}
	if (e->b.running)
		curl_multi_remove_handle(e->multi, e->easy);
	return NULL;
}

/* ---- the API ---- */

/* <endpoint>/v1/traces, checked by curl's URL parser. */
static int make_url(struct sl_otlp *e, const char *ep, char *err, size_t err_len)
{
	size_t len = ep ? strlen(ep) : 0, host = 0;
	CURLUcode uc;
	CURLU *u;

	if (ep && !strncmp(ep, "http://", 7))
		host = 7;
	else if (ep && !strncmp(ep, "https://", 8))
		host = 8;
	/* curl reads "http:///x" as host x; a query or fragment would swallow the path. */
	if (!host || !ep[host] || ep[host] == '/' || strpbrk(ep, "?#")) {
		snprintf(err, err_len,
			 "otlp: endpoint \"%s\": not an http:// or https:// URL with a host and no "
			 "query",
			 ep ? ep : "");
		return -EINVAL;
	}
	while (len && ep[len - 1] == '/')
		len--;
	if ((size_t)snprintf(e->url, sizeof(e->url), "%.*s/v1/traces", (int)len, ep) >=
	    sizeof(e->url)) {
		snprintf(err, err_len, "otlp: endpoint: longer than %zu bytes",
			 sizeof(e->url) - 12);
		return -EINVAL;
	}
	u = curl_url();
	if (!u) {
		snprintf(err, err_len, "otlp: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	uc = curl_url_set(u, CURLUPART_URL, e->url, 0);
	curl_url_cleanup(u);
	if (uc) {
		snprintf(err, err_len, "otlp: endpoint \"%s\": %s", ep, curl_url_strerror(uc));
		return -EINVAL;
	}
	return 0;
}

static int set_host(struct sl_otlp *e, const char *host, char *err, size_t err_len)
{
	json_t *probe;

	if (!host) {
		if (gethostname(e->host, sizeof(e->host))) {
			snprintf(err, err_len, "otlp: gethostname: %s", strerror(errno));
			return -errno;
		}
		e->host[sizeof(e->host) - 1] = '\0';
		host = e->host;
	}
	probe = json_string(host);
	json_decref(probe);
	if (!*host || strlen(host) >= sizeof(e->host) || !probe) {
		snprintf(err, err_len, "otlp: host name \"%s\": empty, too long or not UTF-8",
			 host);
		return -EINVAL;
	}
	memmove(e->host, host, strlen(host) + 1);
	return 0;
}

#define DEFAULT(f, v) ((f) ? (f) : (v))

static int opts_fill(struct sl_otlp_opts *o, const struct sl_otlp_opts *in, char *err,
		     size_t err_len)
{
	*o = *in;
	o->queue_size = DEFAULT(in->queue_size, OT_DEF_QUEUE);
	o->batch_size = DEFAULT(in->batch_size, OT_DEF_BATCH);
	o->max_delay_ms = DEFAULT(in->max_delay_ms, OT_DEF_DELAY_MS);
	o->timeout_ms = DEFAULT(in->timeout_ms, OT_DEF_TIMEOUT_MS);
	o->backoff_min_ms = DEFAULT(in->backoff_min_ms, OT_DEF_BACKOFF_MIN_MS);
	o->backoff_max_ms = DEFAULT(in->backoff_max_ms, OT_DEF_BACKOFF_MAX_MS);
	o->retry_max_ms = DEFAULT(in->retry_max_ms, OT_DEF_RETRY_MAX_MS);
	o->retry_after_max_ms = DEFAULT(in->retry_after_max_ms, OT_DEF_RETRY_AFTER_MS);
	if (o->queue_size > OT_QUEUE_MAX || o->batch_size > o->queue_size) {
		snprintf(err, err_len,
			 "otlp: queue_size %u, batch_size %u: need batch_size <= queue_size <= %u",
			 o->queue_size, o->batch_size, OT_QUEUE_MAX);
		return -EINVAL;
	}
	if (o->backoff_min_ms > o->backoff_max_ms) {
		snprintf(err, err_len, "otlp: backoff_min_ms %u is over backoff_max_ms %u",
			 o->backoff_min_ms, o->backoff_max_ms);
		return -EINVAL;
	}
	return 0;
}

static struct curl_slist *headers(void)
{
	/* "Expect:" keeps curl from waiting for a 100-continue on large bodies. */
	static const char *const h[] = {"Content-Type: application/json",
					"Expect:", "User-Agent: sluice/" SLUICE_VERSION};
	struct curl_slist *l = NULL, *t;
	size_t i;

	for (i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		t = curl_slist_append(l, h[i]);
		if (!t) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = t;
	}
	return l;
}

static int easy_setup(struct sl_otlp *e)
{
	CURL *h = e->easy;

	return curl_easy_setopt(h, CURLOPT_URL, e->url) ||
	       curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	       curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	       curl_easy_setopt(h, CURLOPT_PROXY, "") ||
	       curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) || curl_easy_setopt(h, CURLOPT_POST, 1L) ||
	       curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs) ||
	       curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, resp_write) ||
	       curl_easy_setopt(h, CURLOPT_WRITEDATA, e) ||
	       curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e->errbuf) ||
	       curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->o.timeout_ms);
}

/* curl, the mutex and condition variable, the worker. 0, or -1 with err. */
static int start(struct sl_otlp *e, char *err, size_t err_len)
{
	pthread_condattr_t ca;
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, err_len, "otlp: curl_global_init failed");
		return -1;
	}
	e->curl_inited = 1;
	e->multi = curl_multi_init();
	e->easy = curl_easy_init();
	e->hdrs = headers();
	if (!e->multi || !e->easy || !e->hdrs || easy_setup(e)) {
		snprintf(err, err_len, "otlp: curl setup: %s", strerror(ENOMEM));
		return -1;
	}
	r = pthread_condattr_init(&ca);
	if (!r) {
		r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (!r)
			r = pthread_cond_init(&e->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (!r) {
		r = pthread_mutex_init(&e->mu, NULL);
		if (r)
			pthread_cond_destroy(&e->cv);
	}
	if (r) {
		snprintf(err, err_len, "otlp: mutex and condition: %s", strerror(r));
		return -1;
	}
	e->sync_inited = 1;
	r = pthread_create(&e->thread, NULL, worker, e);
	if (r) {
		snprintf(err, err_len, "otlp: start worker thread: %s", strerror(r));
		return -1;
	}
	e->thread_started = 1;
	return 0;
}

struct sl_otlp *sl_otlp_new(const struct sl_otlp_opts *opts, char *err, size_t err_len)
{
	char scratch[1]; /* err when the caller gave none */
	struct sl_otlp *e;
	uint64_t i;

	if (!err || !err_len) {
		err = scratch;
		err_len = sizeof(scratch);
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, err_len, "otlp: %s", strerror(ENOMEM));
		return NULL;
	}
	if (!opts || opts_fill(&e->o, opts, err, err_len) ||
	    make_url(e, opts->endpoint, err, err_len) ||
	    set_host(e, opts->host_name, err, err_len)) {
		if (!opts)
			snprintf(err, err_len, "otlp: no options");
		free(e);
		return NULL;
	}
	e->o.endpoint = e->url;
	e->o.host_name = e->host;
	e->cap = e->o.queue_size;
	e->cells = calloc(e->cap, sizeof(*e->cells));
	e->resp = malloc(OT_RESP_MAX);
	if (!e->cells || !e->resp) {
		snprintf(err, err_len, "otlp: queue of %u spans: %s", e->o.queue_size,
			 strerror(ENOMEM));
		sl_otlp_free(e);
		return NULL;
	}
	for (i = 0; i < e->cap; i++)
		atomic_init(&e->cells[i].seq, i);
	if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != sizeof(e->rng))
		e->rng = mono_ms() ^ (uint64_t)(uintptr_t)e;
	e->rng |= 1;
	if (start(e, err, err_len)) {
		sl_otlp_free(e);
		return NULL;
	}
	return e;
}

void sl_otlp_get_stats(const struct sl_otlp *e, struct sl_otlp_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->submitted = atomic_load(&e->submitted);
	out->exported = atomic_load(&e->exported);
	out->dropped_queue_full = atomic_load(&e->d_full);
	out->dropped_rejected = atomic_load(&e->d_rejected);
	out->dropped_retries = atomic_load(&e->d_retries);
	out->dropped_invalid = atomic_load(&e->d_invalid);
	out->dropped = out->dropped_queue_full + out->dropped_rejected + out->dropped_retries +
		       out->dropped_invalid;
	out->requests_ok = atomic_load(&e->req_ok);
	out->requests_failed = atomic_load(&e->req_failed);
	out->in_flight = atomic_load(&e->in_flight);
	out->queued = atomic_load(&e->enq) - atomic_load(&e->deq);
}

int sl_otlp_flush(struct sl_otlp *e, unsigned int timeout_ms)
{
	uint64_t target = atomic_load(&e->enq), cur = atomic_load(&e->flush_to);
	struct timespec dl;
	int r = 0;

	while (cur < target && !atomic_compare_exchange_weak(&e->flush_to, &cur, target))
		;
	curl_multi_wakeup(e->multi);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&e->mu);
	while (atomic_load(&e->settled) < target && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&e->cv, &e->mu, &dl);
	r = atomic_load(&e->settled) < target ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&e->mu);
	return r;
}

void sl_otlp_free(struct sl_otlp *e)
{
	uint64_t left;

	if (!e)
		return;
	if (e->thread_started) {
		atomic_store(&e->stop, 1);
		curl_multi_wakeup(e->multi);
		pthread_join(e->thread, NULL);
		left = e->b.n + atomic_load(&e->enq) - atomic_load(&e->deq);
		if (left)
			sl_warn("otlp spans left unexported at shutdown", "url=%s spans=%llu",
				e->url, (unsigned long long)left);
	}
	if (e->sync_inited) {
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->cv);
	}
	if (e->easy)
		curl_easy_cleanup(e->easy);
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->hdrs);
	if (e->curl_inited)
		curl_global_cleanup();
	free(e->b.body);
	free(e->resp);
	free(e->cells);
	free(e);
}
