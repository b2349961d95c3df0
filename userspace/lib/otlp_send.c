// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The span exporter's worker thread (otlp.h, otlp_int.h). It holds at most one batch:
 * popped from the queue when due, encoded once (otlp_json.c), then POSTed with one reused
 * curl easy handle on a multi handle until accepted, refused or out of retries. It sleeps in
 * curl_multi_poll (at most 1 s) until its next deadline, curl's own timers, or a
 * curl_multi_wakeup from a producer, sl_otlp_flush() or sl_otlp_free().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "otlp_int.h"

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

	if (!otlp_queue_ready(e)) {
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
	if (!arr && !otlp_queue_pop(e, &s))
		invalid++; /* no memory: drop one span a turn, so that the queue still moves */
	while (arr && n < e->o.batch_size && !otlp_queue_pop(e, &s)) {
		fill_id(e, s.trace_id, sizeof(s.trace_id));
		fill_id(e, s.span_id, sizeof(s.span_id));
		if (json_array_append_new(arr, otlp_span_json(&s)))
			invalid++;
		else
			n++;
	}
	e->t_first = otlp_queue_ready(e) ? now : 0;
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
	size_t n = size * nmemb, room = OTLP_RESP_MAX - e->resp_len;

	memcpy(e->resp + e->resp_len, d, n < room ? n : room);
	e->resp_len += n < room ? n : room;
	return n;
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

static void request_start(struct sl_otlp *e, uint64_t now)
{
	e->resp_len = 0;
	e->errbuf[0] = '\0';
	if (!e->b.first_try)
		e->b.first_try = now;
	if (curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, e->b.body) ||
	    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(e->b.body)) ||
	    curl_multi_add_handle(e->multi, e->easy)) {
		/* A failed attempt, retried like one. */
		request_failed(e, CURLE_FAILED_INIT, 0, 0, now);
		return;
	}
	e->b.running = 1;
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
			request_failed(e, rc, status, retry_after, otlp_now_ms());
	}
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

int otlp_curl_init(struct sl_otlp *e)
{
	CURL *h;

	e->multi = curl_multi_init();
	e->easy = h = curl_easy_init();
	e->hdrs = headers();
	if (!e->multi || !e->easy || !e->hdrs)
		return -ENOMEM;
	if (curl_easy_setopt(h, CURLOPT_URL, e->url) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") || curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_POST, 1L) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, resp_write) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, e) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e->errbuf) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->o.timeout_ms))
		return -EINVAL;
	return 0;
}

/* ---- the worker ---- */

/* Sleep until the next deadline, curl's timers, or a wakeup. */
static void worker_wait(struct sl_otlp *e, uint64_t now)
{
	uint64_t due = now + OTLP_POLL_MAX_MS;

	if (e->b.running) {
		/* curl_multi_poll also wakes for curl's own timers (the request timeout). */
	} else if (e->b.n) {
		due = e->b.next_try < due ? e->b.next_try : due;
	} else if (otlp_queue_ready(e)) {
		if (e->t_first + e->o.max_delay_ms < due)
			due = e->t_first + e->o.max_delay_ms;
	} else {
		atomic_store(&e->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (otlp_queue_ready(e)) {
			atomic_store(&e->sleeping, 0);
			return;
		}
	}
	if (due > now) {
		CURLMcode mc = curl_multi_poll(e->multi, NULL, 0, (int)(due - now), NULL);

		if (mc != CURLM_OK) {
			sl_warn("otlp curl_multi_poll failed", "err=\"%s\"",
				curl_multi_strerror(mc));
			usleep(10000);
		}
	}
	atomic_store(&e->sleeping, 0);
}

void *otlp_worker(void *arg)
{
	struct sl_otlp *e = arg;
	CURLMcode mc;
	int running;

	while (!atomic_load(&e->stop)) {
		uint64_t now = otlp_now_ms();

		if (!e->b.n && batch_due(e, now))
			batch_take(e, now);
		if (e->b.n && !e->b.running && now >= e->b.next_try)
			request_start(e, now);
		mc = curl_multi_perform(e->multi, &running);
		if (mc != CURLM_OK)
			sl_debug("otlp curl_multi_perform failed", "err=\"%s\"",
				 curl_multi_strerror(mc));
		requests_done(e);
		worker_wait(e, otlp_now_ms());
	}
	if (e->b.running)
		curl_multi_remove_handle(e->multi, e->easy);
	return NULL;
}
