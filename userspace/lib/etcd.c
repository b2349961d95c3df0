// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * etcd v3 client over the JSON gateway (HTTP/1.1, libcurl, jansson), for the registry.
 *
 * One worker thread drives one curl multi handle with up to three transfers at a time:
 *   read:  POST /v3/kv/range of the prefix, then POST /v3/watch from the range's revision + 1
 *          (a never-ending chunked response of JSON objects, parsed as it arrives);
 *   probe: when the watch has been silent for probe_idle_ms, a linearizable one-key range on
 *          the same endpoint; if that fails too the watch is declared dead;
 *   write: the head of the write queue, one request at a time, so writes stay in order and
 *          never wait for the watch.
 * The caller's thread only takes the mutex: it queues writes (then curl_multi_wakeup) and
 * copies the published snapshot. The worker sleeps in curl_multi_poll (at most 1 s); close
 * sets a flag and wakes it, so the join takes milliseconds.
 *
 * Why a probe and not "15 s without a byte": etcd sends watch progress notifications only
 * every --experimental-watch-progress-notify-interval, 10 min by default (3.4), so an idle
 * healthy watch is silent. A dead peer or a dropped connection is caught by TCP keepalive and
 * TCP_USER_TIMEOUT on the watch socket (~15 s); a hung etcd, or a member cut off from its
 * leader (the watch is also created with the gRPC metadata hasleader=true, so etcd cancels
 * it then), by the probe (probe_idle_ms + request timeout).
 *
 * Failures of the read side (refused, reset, timeouts, HTTP errors, bad JSON, a canceled
 * watch) mark the client disconnected, back off (100 ms doubling to 5 s, equal jitter), move
 * to the next endpoint and start again with a full range; the published snapshot is kept
 * meanwhile. A watch canceled because of compaction resyncs at once, staying connected. The
 * snapshot is published only when its content changed, with a write to the eventfd.
 *
 * Writes failing with a transport error or HTTP 5xx/429/401 are retried with the same
 * backoff, rotating endpoints, until write_retry_ms after they were queued, then dropped with a
 * warning; any other HTTP error (403 permission denied, say) drops the write at once. A key put
 * with a TTL is remembered (key -> lease, last value); a refresh whose lease is gone grants a new
 * one and puts the value again.
 *
 * With https:// endpoints the transfers use TLS (etcd_tls.c): a failed handshake (an unknown
 * CA, a refused client certificate) is a failure like the others, logged with the endpoint
 * and curl's reason, and retried with backoff. With etcd auth (etcd_auth.c) each side logs in
 * before its first request to an endpoint, and again after an HTTP 401.
 *
 * This file: the API, the worker thread and the transfers; the read side is etcd_read.c, the
 * writes etcd_write.c, the replies etcd_parse.c (etcd_int.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etcd_int.h"

#define ET_POLL_MAX	   1000	 /* ms; the worker's longest sleep */
#define ET_KEEPIDLE	   5	 /* s; TCP keepalive of the watch */
#define ET_KEEPINTVL	   2	 /* s */
#define ET_USER_TIMEOUT_MS 15000 /* TCP_USER_TIMEOUT of the watch */

#define ET_DEF_REQUEST_MS 5000
#define ET_DEF_CONNECT_MS 2000
#define ET_DEF_PROBE_MS	  10000
#define ET_DEF_RETRY_MS	  60000

uint64_t et_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_next(struct sl_etcd *e)
{
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng;
}

uint64_t et_jitter(struct sl_etcd *e, unsigned int backoff)
{
	return backoff / 2 + rng_next(e) % (backoff / 2 + 1);
}

unsigned int et_backoff_next(unsigned int b)
{
	return b >= ET_BACKOFF_MAX / 2 ? ET_BACKOFF_MAX : b * 2;
}

void et_notify(struct sl_etcd *e)
{
	uint64_t one = 1;

	if (write(e->efd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		et_log(SL_LOG_WARN, "etcd eventfd write", "err=\"%s\"", strerror(errno));
}

void et_set_connected(struct sl_etcd *e, int c)
{
	int news;

	pthread_mutex_lock(&e->sh.mu);
	news = e->sh.connected != c;
	e->sh.connected = c;
	pthread_mutex_unlock(&e->sh.mu);
	if (news)
		et_notify(e);
}

void et_count(struct sl_etcd *e, uint64_t *counter)
{
	pthread_mutex_lock(&e->sh.mu);
	(*counter)++;
	pthread_mutex_unlock(&e->sh.mu);
}

/* ---- transfers ---- */

static size_t resp_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct et_xfer *x = arg;

	return et_buf_add(&x->resp, d, size * nmemb) ? 0 : size * nmemb;
}

static int watch_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int ms = ET_USER_TIMEOUT_MS;

	(void)arg;
	if (purpose == CURLSOCKTYPE_IPCXN &&
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)))
		et_log(SL_LOG_DEBUG, "etcd watch TCP_USER_TIMEOUT", "err=\"%s\"", strerror(errno));
	return CURL_SOCKOPT_OK;
}

/* The options of a POST of text to url on slot x. 0, or -1. */
static int xfer_setopts(struct sl_etcd *e, struct et_xfer *x, CURL *h, const char *url,
			const char *text)
{
	long timeout_ms = (long)e->opts.request_timeout_ms;
	int watch = x->kind == X_WATCH;

	if (curl_easy_setopt(h, CURLOPT_URL, url) || et_tls_setopts(e, h) ||
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") || curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text)) ||
	    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, text) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch ? et_watch_write : resp_write) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, watch ? (void *)e : (void *)x) ||
	    curl_easy_setopt(h, CURLOPT_PRIVATE, x) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->err) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->opts.connect_timeout_ms))
		return -1;
	if (!watch)
		return curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms) ? -1 : 0;
	if (curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) ||
	    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)ET_KEEPIDLE) ||
	    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)ET_KEEPINTVL) ||
	    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, watch_sockopt))
		return -1;
	return 0;
}

/* The headers of a transfer on slot x to eps[ep]; x->gen set. NULL when out of memory. */
static struct curl_slist *headers(const struct sl_etcd *e, struct et_xfer *x, size_t ep)
{
	/* "Expect:" keeps curl from waiting for a 100-continue on large bodies. With the gRPC
	 * metadata hasleader, etcd cancels a watch when its member loses the leader. */
	const char *h[] = {"Content-Type: application/json", "Expect:", NULL, NULL};
	struct curl_slist *l = NULL, *t;
	char *auth = NULL;
	size_t i, n = 2;

	if (x->kind == X_WATCH && !x->login)
		h[n++] = "Grpc-Metadata-hasleader: true";
	x->gen = 0;
	if (!x->login && e->user) {
		auth = et_auth_header(e, ep, &x->gen);
		if (auth)
			h[n++] = auth;
	}
	for (i = 0; i < n; i++) {
		t = curl_slist_append(l, h[i]);
		if (!t) {
			curl_slist_free_all(l);
			l = NULL;
			break;
		}
		l = t;
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	return l;
}

int et_xfer_start(struct sl_etcd *e, struct et_xfer *x, size_t ep, const char *path, json_t *body)
{
	char *text = NULL, *url = NULL;
	CURL *h = NULL;
	int r = -ENOMEM;

	et_buf_reset(&x->resp);
	x->resp.max = x->kind == X_RANGE   ? ET_RANGE_MAX
		      : x->kind == X_WATCH ? ET_WATCH_MSG_MAX
					   : ET_RESP_MAX;
	x->err[0] = '\0';
	x->ep = ep;
	x->login = !strcmp(path, ET_LOGIN_PATH);
	if (!body)
		goto out;
	text = json_dumps(body, JSON_COMPACT);
	if (!text || asprintf(&url, "%s%s", e->eps[ep], path) < 0) {
		url = NULL;
		goto out;
	}
	x->hdrs = headers(e, x, ep);
	h = curl_easy_init();
	if (!x->hdrs || !h)
		goto out;
	r = -EINVAL;
	if (xfer_setopts(e, x, h, url, text) || curl_multi_add_handle(e->multi, h))
		goto out;
	x->h = h;
	h = NULL;
	r = 0;
out:
	if (h)
		curl_easy_cleanup(h);
	if (r) {
		curl_slist_free_all(x->hdrs);
		x->hdrs = NULL;
	}
	free(url);
	if (text && x->login) /* it holds the password (curl took a copy) */
		explicit_bzero(text, strlen(text));
	free(text);
	json_decref(body);
	return r;
}

void et_xfer_stop(struct sl_etcd *e, struct et_xfer *x)
{
	if (!x->h)
		return;
	curl_multi_remove_handle(e->multi, x->h);
	curl_easy_cleanup(x->h);
	x->h = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

/* A guess at the cause of a transport error that curl cannot name, or "". */
static const char *xfer_hint(const struct sl_etcd *e, const struct et_xfer *x, CURL *h, CURLcode rc)
{
	curl_off_t tls_us = 0;

	if (rc != CURLE_SEND_ERROR && rc != CURLE_RECV_ERROR && rc != CURLE_GOT_NOTHING &&
	    rc != CURLE_WEIRD_SERVER_REPLY)
		return "";
	if (!strncmp(e->eps[x->ep], "http://", 7)) /* etcd's TLS port says nothing to it */
		return rc == CURLE_GOT_NOTHING || rc == CURLE_WEIRD_SERVER_REPLY
			   ? " (an https:// endpoint?)"
			   : "";
	/* With TLS 1.3 the server checks the client's certificate after the client finished
	 * the handshake: its alert may be lost when the connection is reset under the request
	 * that followed. A new connection that broke right after its handshake is most likely
	 * that. */
	if (strstr(x->err, "alert") ||
	    curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_us) != CURLE_OK || tls_us <= 0)
		return "";
	return " (right after the TLS handshake: did etcd refuse the client certificate?)";
}

/* What went wrong with a finished transfer, for a log line; NULL if nothing (HTTP 200). curl's
 * class of error and its own words (for TLS: OpenSSL's reason, such as "unable to get local
 * issuer certificate" or "alert bad certificate"); or the HTTP status and what the body says
 * (not for the watch, whose body is the stream's). */
static const char *xfer_error(const struct sl_etcd *e, const struct et_xfer *x, CURL *h,
			      CURLcode rc, long status, char *tmp, size_t n)
{
	char said[160];

	if (rc != CURLE_OK) {
		snprintf(tmp, n, "%s%s%s%s", curl_easy_strerror(rc), x->err[0] ? ": " : "", x->err,
			 xfer_hint(e, x, h, rc));
		return tmp;
	}
	if (status == 200)
		return NULL;
	if (x->kind != X_WATCH && et_error_text(x->resp.p, x->resp.len, said, sizeof(said)))
		snprintf(tmp, n, "HTTP %ld: %s", status, said);
	else
		snprintf(tmp, n, "HTTP %ld", status);
	return tmp;
}

/* ---- the worker ---- */

static void dispatch_done(struct sl_etcd *e)
{
	struct CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		CURL *h = m->easy_handle;
		CURLcode rc = m->data.result;
		struct et_xfer *x;
		char *priv = NULL;
		long status = 0;
		const char *why;
		char tmp[CURL_ERROR_SIZE + 128];

		if (m->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv) || !priv)
			continue;
		x = (struct et_xfer *)priv;
		if (x->h != h)
			continue;
		if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status))
			status = 0;
		why = xfer_error(e, x, h, rc, status, tmp, sizeof(tmp));
		if (status == 401)
			et_auth_reject(e, x);
		et_xfer_stop(e, x); /* m is gone from here on */
		if (x->kind == X_WRITE)
			et_write_done(e, why, rc, status);
		else
			et_read_done(e, x, why);
	}
}

static void *worker(void *arg)
{
	struct sl_etcd *e = arg;

	while (!atomic_load(&e->stop)) {
		uint64_t now = et_now_ms(), due = now + ET_POLL_MAX;
		int running;

		et_read_tick(e, now);
		et_write_tick(e, now);
		if (curl_multi_perform(e->multi, &running))
			et_log(SL_LOG_DEBUG, "etcd curl_multi_perform failed");
		dispatch_done(e);

		/* Sleep until curl, a deadline of ours, or a wakeup has something. */
		now = et_now_ms();
		due = et_write_due(e, et_read_due(e, due));
		if (due > now &&
		    curl_multi_poll(e->multi, NULL, 0, (int)(due - now), NULL) != CURLM_OK) {
			et_log(SL_LOG_WARN, "etcd curl_multi_poll failed");
			usleep(10000);
		}
	}
	et_read_stop(e);
	et_write_stop(e);
	return NULL;
}

/* ---- the API ---- */

static void destroy(struct sl_etcd *e)
{
	size_t i;

	if (e->thread_started) {
		atomic_store(&e->stop, 1);
		curl_multi_wakeup(e->multi);
		pthread_join(e->thread, NULL);
		pthread_mutex_destroy(&e->sh.mu);
	}
	if (e->multi)
		curl_multi_cleanup(e->multi);
	if (e->curl_inited)
		curl_global_cleanup();
	et_write_free(e);
	et_sec_free(e);
	et_snap_free(&e->sh.snap);
	for (i = 0; i < e->n_eps; i++)
		free(e->eps[i]);
	free(e->eps);
	free(e->key_b64);
	free(e->end_b64);
	if (e->efd >= 0)
		close(e->efd);
	free(e);
}

void sl_etcd_close(struct sl_etcd *e)
{
	if (e)
		destroy(e);
}

static const char *url_host(const char *ep)
{
	if (!strncmp(ep, "http://", 7))
		return ep + 7;
	if (!strncmp(ep, "https://", 8))
		return ep + 8;
	return NULL;
}

static int check_args(const char *const *endpoints, size_t n, const char *prefix, char *err,
		      size_t err_len)
{
	size_t i;

	if (!endpoints || !n) {
		snprintf(err, err_len, "etcd: no endpoints");
		return -EINVAL;
	}
	if (!prefix) {
		snprintf(err, err_len, "etcd: no prefix");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		const char *ep = endpoints[i];
		const char *host = ep ? url_host(ep) : NULL;

		if (!host || !*host || *host == '/' || strpbrk(ep, " \t\r\n")) {
			snprintf(err, err_len,
				 "etcd endpoint %zu \"%s\": not an http:// or https:// URL", i,
				 ep ? ep : "(null)");
			return -EINVAL;
		}
	}
	return 0;
}

static int nonempty(const char *s)
{
	return s && *s;
}

/* TLS and auth (etcd_tls.c, etcd_auth.c). With any of them set, only https:// endpoints: no
 * certificate, password or token is ever sent in clear. 0, or -1 with err. */
static int sec_open(struct sl_etcd *e, const struct sl_etcd_opts *o, char *err, size_t err_len)
{
	size_t i;

	if (!o)
		return 0;
	e->https_only = nonempty(o->ca) || nonempty(o->cert) || nonempty(o->key) ||
			nonempty(o->user) || nonempty(o->password_file);
	for (i = 0; e->https_only && i < e->n_eps; i++) {
		if (strncmp(e->eps[i], "https://", 8)) {
			snprintf(err, err_len,
				 "etcd endpoint %zu \"%s\": ca, cert, key and user need https://",
				 i, e->eps[i]);
			return -1;
		}
	}
	return et_tls_open(e, o, err, err_len) || et_auth_open(e, o, err, err_len) ? -1 : 0;
}

static void opts_fill(struct sl_etcd_opts *o, const struct sl_etcd_opts *given)
{
	if (given)
		*o = *given;
	/* The strings are copied by sec_open; none of the caller's is kept. */
	o->ca = o->cert = o->key = o->user = o->password_file = NULL;
	if (!o->request_timeout_ms)
		o->request_timeout_ms = ET_DEF_REQUEST_MS;
	if (!o->connect_timeout_ms)
		o->connect_timeout_ms = ET_DEF_CONNECT_MS;
	if (!o->probe_idle_ms)
		o->probe_idle_ms = ET_DEF_PROBE_MS;
	if (!o->write_retry_ms)
		o->write_retry_ms = ET_DEF_RETRY_MS;
}

/* The endpoints without trailing '/', and the prefix's range in base64. 0, or -ENOMEM. */
static int copy_args(struct sl_etcd *e, const char *const *endpoints, size_t n, const char *prefix)
{
	unsigned char *end;
	size_t plen, elen, i;

	e->eps = calloc(n, sizeof(*e->eps));
	if (!e->eps)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t len = strlen(endpoints[i]);

		while (len && endpoints[i][len - 1] == '/')
			len--;
		e->eps[i] = strndup(endpoints[i], len);
		if (!e->eps[i])
			return -ENOMEM;
		e->n_eps++;
	}

	/* The range of the prefix: [prefix, prefix with its last byte below 0xff plus one);
	 * "" (or all 0xff) is every key from the prefix on: "\0" in etcd's terms. */
	plen = strlen(prefix);
	end = malloc(plen + 1);
	if (!end)
		return -ENOMEM;
	memcpy(end, prefix, plen);
	for (elen = plen; elen && end[elen - 1] == 0xff; elen--)
		;
	if (elen)
		end[elen - 1]++;
	else
		end[elen++] = '\0';
	e->key_b64 = plen ? sl_etcd_b64_encode(prefix, plen) : sl_etcd_b64_encode("", 1);
	e->end_b64 = sl_etcd_b64_encode(end, elen);
	free(end);
	return e->key_b64 && e->end_b64 ? 0 : -ENOMEM;
}

/* The eventfd, curl, the mutex and the worker. 0, or -1 with err. */
static int start(struct sl_etcd *e, char *err, size_t err_len)
{
	int r;

	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		snprintf(err, err_len, "etcd: eventfd: %s", strerror(errno));
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, err_len, "etcd: curl_global_init failed");
		return -1;
	}
	e->curl_inited = 1;
	e->multi = curl_multi_init();
	if (!e->multi) {
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
		return -1;
	}
	r = pthread_mutex_init(&e->sh.mu, NULL);
	if (r) {
		snprintf(err, err_len, "etcd: pthread_mutex_init: %s", strerror(r));
		return -1;
	}
	r = pthread_create(&e->thread, NULL, worker, e);
	if (r) {
		pthread_mutex_destroy(&e->sh.mu);
		snprintf(err, err_len, "etcd: start worker thread: %s", strerror(r));
		return -1;
	}
	e->thread_started = 1;
	return 0;
}

struct sl_etcd *sl_etcd_open_opts(const char *const *endpoints, size_t n, const char *prefix,
				  const struct sl_etcd_opts *opts, char *err, size_t err_len)
{
	char scratch[1]; /* err when the caller gave none */
	struct sl_etcd *e;

	if (!err || !err_len) {
		err = scratch;
		err_len = sizeof(scratch);
	}
	if (check_args(endpoints, n, prefix, err, err_len))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
		return NULL;
	}
	e->efd = -1;
	opts_fill(&e->opts, opts);
	e->rd.x.kind = X_RANGE; /* the read slot: X_WATCH while the watch runs */
	e->rd.probe.kind = X_PROBE;
	e->wr.x.kind = X_WRITE;
	e->rd.backoff = e->wr.backoff = ET_BACKOFF_MIN;
	if (copy_args(e, endpoints, n, prefix)) {
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
		destroy(e);
		return NULL;
	}
	if (sec_open(e, opts, err, err_len)) {
		destroy(e);
		return NULL;
	}
	if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != sizeof(e->rng))
		e->rng = et_now_ms() ^ (uint64_t)(uintptr_t)e;
	e->rng |= 1;
	if (start(e, err, err_len)) {
		destroy(e);
		return NULL;
	}
	return e;
}

struct sl_etcd *sl_etcd_open(const char *const *endpoints, size_t n, const char *prefix, char *err,
			     size_t err_len)
{
	return sl_etcd_open_opts(endpoints, n, prefix, NULL, err, err_len);
}

int sl_etcd_fd(const struct sl_etcd *e)
{
	return e->efd;
}

/* A copy of the snapshot's kvs (n > 0), or NULL. */
static struct sl_etcd_kv *kvs_copy(const struct sl_etcd_kv *kvs, size_t n)
{
	struct sl_etcd_kv *out = calloc(n, sizeof(*out));
	size_t i;

	for (i = 0; out && i < n; i++) {
		out[i].key = strdup(kvs[i].key);
		out[i].value = strdup(kvs[i].value);
		out[i].lease = kvs[i].lease;
		out[i].mod_revision = kvs[i].mod_revision;
		if (!out[i].key || !out[i].value) {
			sl_etcd_kvs_free(out, i + 1);
			out = NULL;
		}
	}
	return out;
}

int sl_etcd_take(struct sl_etcd *e, struct sl_etcd_kv **kvs, size_t *n, int *connected)
{
	struct sl_etcd_kv *out = NULL;
	uint64_t v;

	/* Drain first: a write of the worker after this is about state it set before. */
	if (read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		sl_warn("etcd eventfd read", "err=\"%s\"", strerror(errno));
	pthread_mutex_lock(&e->sh.mu);
	if (connected)
		*connected = e->sh.connected;
	if (!e->sh.changed) {
		pthread_mutex_unlock(&e->sh.mu);
		return 0;
	}
	if (e->sh.snap.n) {
		out = kvs_copy(e->sh.snap.kvs, e->sh.snap.n);
		if (!out) {
			pthread_mutex_unlock(&e->sh.mu);
			et_notify(e); /* try again on the next turn of the loop */
			return -ENOMEM;
		}
	}
	*kvs = out;
	*n = e->sh.snap.n;
	e->sh.changed = 0;
	pthread_mutex_unlock(&e->sh.mu);
	return 1;
}

void sl_etcd_get_stats(struct sl_etcd *e, struct sl_etcd_stats *out)
{
	pthread_mutex_lock(&e->sh.mu);
	*out = e->sh.st;
	out->queued = e->sh.q_len;
	pthread_mutex_unlock(&e->sh.mu);
}
