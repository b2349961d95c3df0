// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The span exporter (otlp.h): its API, its options, and the bounded queue between the
 * callers of sl_otlp_submit() and the worker thread (otlp_send.c).
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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "otlp_int.h"

/* ---- the queue ---- */

int sl_otlp_submit(struct sl_otlp *e, const struct sl_span *span)
{
	uint64_t pos, seq, len;
	struct otlp_cell *c;

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

int otlp_queue_ready(struct sl_otlp *e)
{
	uint64_t pos = atomic_load_explicit(&e->deq, memory_order_relaxed);

	return atomic_load_explicit(&e->cells[pos % e->cap].seq, memory_order_acquire) == pos + 1;
}

int otlp_queue_pop(struct sl_otlp *e, struct sl_span *out)
{
	uint64_t pos = atomic_load_explicit(&e->deq, memory_order_relaxed);
	struct otlp_cell *c = &e->cells[pos % e->cap];

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
		return -EAGAIN;
	*out = c->span;
	/* In flight before it leaves the queue, so that a reader of the stats never loses it. */
	atomic_fetch_add(&e->in_flight, 1);
	atomic_store_explicit(&c->seq, pos + e->cap, memory_order_release);
	atomic_store_explicit(&e->deq, pos + 1, memory_order_release);
	return 0;
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
	o->queue_size = DEFAULT(in->queue_size, OTLP_DEF_QUEUE);
	o->batch_size = DEFAULT(in->batch_size, OTLP_DEF_BATCH);
	o->max_delay_ms = DEFAULT(in->max_delay_ms, OTLP_DEF_DELAY_MS);
	o->timeout_ms = DEFAULT(in->timeout_ms, OTLP_DEF_TIMEOUT_MS);
	o->backoff_min_ms = DEFAULT(in->backoff_min_ms, OTLP_DEF_BACKOFF_MIN_MS);
	o->backoff_max_ms = DEFAULT(in->backoff_max_ms, OTLP_DEF_BACKOFF_MAX_MS);
	o->retry_max_ms = DEFAULT(in->retry_max_ms, OTLP_DEF_RETRY_MAX_MS);
	o->retry_after_max_ms = DEFAULT(in->retry_after_max_ms, OTLP_DEF_RETRY_AFTER_MS);
	if (o->queue_size > OTLP_QUEUE_MAX || o->batch_size > o->queue_size) {
		snprintf(err, err_len,
			 "otlp: queue_size %u, batch_size %u: need batch_size <= queue_size <= %u",
			 o->queue_size, o->batch_size, OTLP_QUEUE_MAX);
		return -EINVAL;
	}
	if (o->backoff_min_ms > o->backoff_max_ms) {
		snprintf(err, err_len, "otlp: backoff_min_ms %u is over backoff_max_ms %u",
			 o->backoff_min_ms, o->backoff_max_ms);
		return -EINVAL;
	}
	return 0;
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
	r = otlp_curl_init(e);
	if (r) {
		snprintf(err, err_len, "otlp: curl setup: %s",
			 r == -ENOMEM ? strerror(ENOMEM) : "an option was refused");
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
	r = pthread_create(&e->thread, NULL, otlp_worker, e);
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
	/* Aligned as its members ask (producers' and worker's counters on their own lines). */
	e = aligned_alloc(_Alignof(struct sl_otlp), sizeof(*e));
	if (e)
		memset(e, 0, sizeof(*e));
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
	e->resp = malloc(OTLP_RESP_MAX);
	if (!e->cells || !e->resp) {
		snprintf(err, err_len, "otlp: queue of %u spans: %s", e->o.queue_size,
			 strerror(ENOMEM));
		sl_otlp_free(e);
		return NULL;
	}
	for (i = 0; i < e->cap; i++)
		atomic_init(&e->cells[i].seq, i);
	if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != sizeof(e->rng))
		e->rng = otlp_now_ms() ^ (uint64_t)(uintptr_t)e;
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
