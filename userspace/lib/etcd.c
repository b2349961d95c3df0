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
 * Writes failing with a transport error or HTTP 5xx/429 are retried with the same backoff,
 * rotating endpoints, until write_retry_ms after they were queued, then dropped with a
 * warning; any other HTTP error drops the write at once. A key put with a TTL is remembered
 * (key -> lease, last value); a refresh whose lease is gone grants a new one and puts the
 * value again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd.h"
#include "log.h"

#define ET_QUEUE_MAX	   10000       /* queued writes */
#define ET_LEASES_MAX	   10000       /* keys put with a TTL */
#define ET_KV_MAX	   (1u << 20)  /* bytes of key + value in one put (etcd takes 1.5 MiB) */
#define ET_RANGE_MAX	   (16u << 20) /* bytes of a range response */
#define ET_WATCH_MSG_MAX   (16u << 20) /* bytes of one watch message */
#define ET_RESP_MAX	   (1u << 20)  /* bytes of any other response */
#define ET_SNAP_MAX	   (16u << 20) /* bytes of keys and values in the snapshot */
#define ET_BACKOFF_MIN	   100	       /* ms */
#define ET_BACKOFF_MAX	   5000	       /* ms */
#define ET_POLL_MAX	   1000	       /* ms; the worker's longest sleep */
#define ET_KEEPIDLE	   5	       /* s; TCP keepalive of the watch */
#define ET_KEEPINTVL	   2	       /* s */
#define ET_USER_TIMEOUT_MS 15000       /* TCP_USER_TIMEOUT of the watch */

#define ET_DEF_REQUEST_MS 5000
#define ET_DEF_CONNECT_MS 2000
#define ET_DEF_PROBE_MS	  10000
#define ET_DEF_RETRY_MS	  60000

/* The logger writes a line in several stdio calls; hold the stream so that a line of the
 * worker is not cut by another thread's output. */
#define et_log(level, msg, ...)                                                                    \
	do {                                                                                       \
		flockfile(stderr);                                                                 \
		sl_log(level, msg, "" __VA_ARGS__);                                                \
		funlockfile(stderr);                                                               \
	} while (0)

struct buf {
	char *p;
	size_t len, cap, max;
	int over; /* more than max bytes came */
};

enum xkind { X_RANGE, X_WATCH, X_PROBE, X_WRITE };

struct xfer {
	struct sl_etcd *e;
	enum xkind kind;
	CURL *h; /* NULL: idle */
	struct buf resp;
	char err[CURL_ERROR_SIZE];
};

enum op_kind { OP_PUT, OP_REFRESH, OP_DELETE };

struct op {
	struct op *next;
	enum op_kind kind;
	char *key;
	char *value; /* OP_PUT */
	unsigned int ttl;
	uint64_t t_enq; /* ms, monotonic */
};

/* A key put with a TTL. 'known', 'value' and 'ttl' follow the queued writes (the caller's
 * view); 'id' follows the writes done (the worker's). */
struct lease_ent {
	char *key;
	char *value;
	unsigned int ttl;
	int64_t id; /* 0: none yet, or lost */
	int known;  /* the last queued write of the key was a put with a TTL */
	int refresh_queued;
};

enum rstate { R_IDLE, R_RANGE, R_WATCH };
enum wstep { W_GRANT, W_PUT, W_KEEPALIVE, W_DELETE };

struct sl_etcd {
	char **eps; /* without a trailing '/' */
	size_t n_eps;
	char *key_b64, *end_b64; /* the prefix's range */
	struct sl_etcd_opts opts;
	int efd;
	CURLM *multi;
	struct curl_slist *hdrs, *watch_hdrs;
	pthread_t thread;
	int thread_started;
	int curl_inited;
	atomic_int stop;

	pthread_mutex_t mu; /* guards everything down to the worker's own state */
	struct sl_etcd_kv *snap;
	size_t snap_n, snap_cap, snap_bytes;
	int changed;   /* the snapshot changed since the last take */
	int connected; /* a watch is established */
	struct op *q_head, *q_tail;
	size_t q_len;
	struct lease_ent *leases;
	size_t n_leases, cap_leases;
	struct sl_etcd_stats st; /* but st.queued: q_len */

	/* The worker's own state. */
	uint64_t rng;
	struct xfer rx, px, wx;
	enum rstate rstate;
	size_t r_ep;
	unsigned int r_backoff;
	uint64_t r_due;
	int r_failing; /* failures since the last established watch (first one warns) */
	int has_snap;  /* a snapshot was published */
	int64_t rev;   /* the snapshot's revision */
	uint64_t w_last_rx;
	int w_created, w_resync, w_bad;
	char w_why[160]; /* why w_bad */
	size_t w_scan, w_obj;
	int w_depth, w_instr, w_esc;
	struct op *cur;
	enum wstep w_step;
	int64_t w_lease;
	size_t w_ep;
	unsigned int w_backoff;
	uint64_t w_due;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- base64 ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sl_etcd_b64_encode(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i, o = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters, and the
 * unused bits of the last group zero (what Go's encoder writes). */
char *sl_etcd_b64_decode(const char *s, size_t len, size_t *out_len)
{
	size_t i, o = 0, pad = 0;
	unsigned char *out;

	if (len % 4)
		return NULL;
	if (len && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return NULL;
	for (i = 0; i < len; i += 4) {
		int last = i + 4 == len, v[4], k;
		uint32_t w;

		for (k = 0; k < 4; k++) {
			v[k] = last && k >= 4 - (int)pad ? 0 : b64_val(s[i + k]);
			if (v[k] < 0)
				goto bad;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		    (uint32_t)v[3];
		out[o++] = (unsigned char)(w >> 16);
		if (last && pad == 2) {
			if (w & 0xffff)
				goto bad;
			break;
		}
		out[o++] = (unsigned char)(w >> 8);
		if (last && pad == 1) {
			if (w & 0xff)
				goto bad;
			break;
		}
		out[o++] = (unsigned char)w;
	}
	out[o] = '\0';
	*out_len = o;
	return (char *)out;
bad:
	free(out);
	return NULL;
}

/* ---- small helpers ---- */

static int buf_add(struct buf *b, const char *d, size_t n)
{
	if (n > b->max - b->len) {
		b->over = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void buf_reset(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->over = 0;
}

static uint64_t rng_next(struct sl_etcd *e)
{
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng;
}

/* Equal jitter: half the backoff, plus up to the other half. */
static uint64_t jitter(struct sl_etcd *e, unsigned int backoff)
{
	return backoff / 2 + rng_next(e) % (backoff / 2 + 1);
}

static unsigned int backoff_next(unsigned int b)
{
	return b >= ET_BACKOFF_MAX / 2 ? ET_BACKOFF_MAX : b * 2;
}

/* An int64 the gateway writes as a string (or a number). 0 when absent or bad. */
static int64_t json_i64(const json_t *v)
{
	const char *s;
	char *end;
	long long x;

	if (json_is_integer(v))
		return json_integer_value(v);
	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return 0;
	return x;
}

/* A base64 field as a NUL-terminated string: 0, -EINVAL (bad base64, no memory), or 1 when
 * the bytes hold a NUL. Absent = "". */
static int json_b64(const json_t *v, char **out)
{
	size_t n;
	char *s;

	*out = NULL;
	if (!v) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = sl_etcd_b64_decode(json_string_value(v), json_string_length(v), &n);
	if (!s)
		return -EINVAL;
	if (strlen(s) != n) {
		free(s);
		return 1;
	}
	*out = s;
	return 0;
}

static void kv_clear(struct sl_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	kv->key = kv->value = NULL;
}

void sl_etcd_kvs_free(struct sl_etcd_kv *kvs, size_t n)
{
	size_t i;

	if (!kvs)
		return;
	for (i = 0; i < n; i++)
		kv_clear(&kvs[i]);
	free(kvs);
}

/* kv from a JSON mvccpb.KeyValue: 0, 1 (skip: NUL inside), -EINVAL. */
static int kv_parse(const json_t *j, struct sl_etcd_kv *kv)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return -EINVAL;
	r = json_b64(json_object_get(j, "key"), &kv->key);
	if (r || !*kv->key) {
		kv_clear(kv);
		return r ? r : -EINVAL;
	}
	r = json_b64(json_object_get(j, "value"), &kv->value);
	if (r) {
		kv_clear(kv);
		return r;
	}
	kv->lease = json_i64(json_object_get(j, "lease"));
	kv->mod_revision = json_i64(json_object_get(j, "mod_revision"));
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sl_etcd_kv *)a)->key, ((const struct sl_etcd_kv *)b)->key);
}

static int kv_equal(const struct sl_etcd_kv *a, const struct sl_etcd_kv *b)
{
	return !strcmp(a->key, b->key) && !strcmp(a->value, b->value) && a->lease == b->lease &&
	       a->mod_revision == b->mod_revision;
}

/* Where key is, or would go, in the sorted snapshot. */
static size_t snap_find(const struct sl_etcd *e, const char *key, int *found)
{
	size_t lo = 0, hi = e->snap_n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(e->snap[mid].key, key);

		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void notify(struct sl_etcd *e)
{
	uint64_t one = 1;

	if (write(e->efd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		et_log(SL_LOG_WARN, "etcd eventfd write", "err=\"%s\"", strerror(errno));
}

static void set_connected(struct sl_etcd *e, int c)
{
	int news;

	pthread_mutex_lock(&e->mu);
	news = e->connected != c;
	e->connected = c;
	pthread_mutex_unlock(&e->mu);
	if (news)
		notify(e);
}

static void count(struct sl_etcd *e, uint64_t *counter)
{
	pthread_mutex_lock(&e->mu);
	(*counter)++;
	pthread_mutex_unlock(&e->mu);
}

/* ---- the lease table (under mu) ---- */

static struct lease_ent *lease_find(struct sl_etcd *e, const char *key)
{
	size_t i;

	for (i = 0; i < e->n_leases; i++)
		if (!strcmp(e->leases[i].key, key))
			return &e->leases[i];
	return NULL;
}

static void lease_remove(struct sl_etcd *e, struct lease_ent *l)
{
	free(l->key);
	free(l->value);
	*l = e->leases[--e->n_leases];
}

/* The worker did a put without TTL or a delete of key: no lease any more; the entry goes
 * unless a later queued put gave the key a TTL again. */
static void lease_forget(struct sl_etcd *e, const char *key)
{
	struct lease_ent *l;

	pthread_mutex_lock(&e->mu);
	l = lease_find(e, key);
	if (l) {
		l->id = 0;
		if (!l->known && !l->refresh_queued)
			lease_remove(e, l);
	}
	pthread_mutex_unlock(&e->mu);
}

static void lease_set_id(struct sl_etcd *e, const char *key, int64_t id)
{
	struct lease_ent *l;

	pthread_mutex_lock(&e->mu);
	l = lease_find(e, key);
	if (l)
		l->id = id;
	pthread_mutex_unlock(&e->mu);
}

/* ---- transfers ---- */

static size_t resp_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;

	return buf_add(&x->resp, d, size * nmemb) ? 0 : size * nmemb;
}

static size_t watch_write(char *d, size_t size, size_t nmemb, void *arg);

static int watch_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int ms = ET_USER_TIMEOUT_MS;

	(void)arg;
	if (purpose == CURLSOCKTYPE_IPCXN &&
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)))
		et_log(SL_LOG_DEBUG, "etcd watch TCP_USER_TIMEOUT", "err=\"%s\"", strerror(errno));
	return CURL_SOCKOPT_OK;
}

/* Start a POST of body (consumed) to eps[ep] + path on slot x. 0 or -errno. */
static int xfer_start(struct sl_etcd *e, struct xfer *x, size_t ep, const char *path, json_t *body)
{
	int watch = x->kind == X_WATCH;
	char *text = NULL, *url = NULL;
	CURL *h = NULL;
	int r = -ENOMEM;

	x->e = e;
	buf_reset(&x->resp);
	x->resp.max = x->kind == X_RANGE ? ET_RANGE_MAX : watch ? ET_WATCH_MSG_MAX : ET_RESP_MAX;
	x->err[0] = '\0';
	if (!body)
		goto out;
	text = json_dumps(body, JSON_COMPACT);
	if (!text || asprintf(&url, "%s%s", e->eps[ep], path) < 0) {
		url = NULL;
		goto out;
	}
	h = curl_easy_init();
	if (!h)
		goto out;
	r = -EINVAL;
	if (curl_easy_setopt(h, CURLOPT_URL, url) ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") || curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text)) ||
	    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, text) ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, watch ? e->watch_hdrs : e->hdrs) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch ? watch_write : resp_write) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, watch ? (void *)e : (void *)x) ||
	    curl_easy_setopt(h, CURLOPT_PRIVATE, x) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->err) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)e->opts.connect_timeout_ms))
		goto out;
	if (watch) {
		if (curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) ||
		    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)ET_KEEPIDLE) ||
		    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)ET_KEEPINTVL) ||
		    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, watch_sockopt))
			goto out;
	} else if (curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->opts.request_timeout_ms)) {
		goto out;
	}
	if (curl_multi_add_handle(e->multi, h))
		goto out;
	x->h = h;
	h = NULL;
	r = 0;
out:
	if (h)
		curl_easy_cleanup(h);
	free(url);
	free(text);
	json_decref(body);
	return r;
}

static void xfer_stop(struct sl_etcd *e, struct xfer *x)
{
	if (!x->h)
		return;
	curl_multi_remove_handle(e->multi, x->h);
	curl_easy_cleanup(x->h);
	x->h = NULL;
}

/* What went wrong with a finished transfer, for a log line; NULL if nothing (HTTP 200). */
static const char *xfer_error(const struct xfer *x, CURLcode rc, long status, char *tmp, size_t n)
{
	if (rc != CURLE_OK)
		return x->err[0] ? x->err : curl_easy_strerror(rc);
	if (status == 200)
		return NULL;
	snprintf(tmp, n, "HTTP %ld", status);
	return tmp;
}

/* ---- the read side: range, watch, probe ---- */

static void read_fail(struct sl_etcd *e, const char *what, const char *why)
{
	uint64_t delay = jitter(e, e->r_backoff);

	xfer_stop(e, &e->rx);
	xfer_stop(e, &e->px);
	buf_reset(&e->rx.resp);
	buf_reset(&e->px.resp);
	count(e, &e->st.read_failures);
	if (!e->r_failing++)
		et_log(SL_LOG_WARN, "etcd registry unreachable", "endpoint=%s step=%s err=\"%s\"",
		       e->eps[e->r_ep], what, why);
	else
		et_log(SL_LOG_DEBUG, "etcd registry retry", "endpoint=%s step=%s err=\"%s\"",
		       e->eps[e->r_ep], what, why);
	set_connected(e, 0);
	e->rstate = R_IDLE;
	e->r_due = now_ms() + delay;
	e->r_backoff = backoff_next(e->r_backoff);
	e->r_ep = (e->r_ep + 1) % e->n_eps;
}

static json_t *range_body(const struct sl_etcd *e)
{
	return json_pack("{s:s, s:s}", "key", e->key_b64, "range_end", e->end_b64);
}

static void range_start(struct sl_etcd *e)
{
	int r;

	e->rx.kind = X_RANGE;
	r = xfer_start(e, &e->rx, e->r_ep, "/v3/kv/range", range_body(e));
	if (r) {
		read_fail(e, "range", strerror(-r));
		return;
	}
	e->rstate = R_RANGE;
}

static void watch_start(struct sl_etcd *e)
{
	json_t *body =
	    json_pack("{s:{s:s, s:s, s:I, s:b}}", "create_request", "key", e->key_b64, "range_end",
		      e->end_b64, "start_revision", (json_int_t)(e->rev + 1), "progress_notify", 1);
	int r;

	e->w_created = e->w_resync = e->w_bad = 0;
	e->w_why[0] = '\0';
	e->w_scan = e->w_obj = 0;
	e->w_depth = e->w_instr = e->w_esc = 0;
	e->w_last_rx = now_ms();
	e->rx.kind = X_WATCH;
	r = xfer_start(e, &e->rx, e->r_ep, "/v3/watch", body);
	if (r) {
		read_fail(e, "watch", strerror(-r));
		return;
	}
	e->rstate = R_WATCH;
}

/* Replace the snapshot with a range's kvs (consumed); publish if the content differs. */
static void snap_replace(struct sl_etcd *e, struct sl_etcd_kv *kvs, size_t n, size_t bytes,
			 int first)
{
	size_t i;
	int same;

	pthread_mutex_lock(&e->mu);
	same = !first && n == e->snap_n;
	for (i = 0; same && i < n; i++)
		same = kv_equal(&kvs[i], &e->snap[i]);
	if (same) {
		pthread_mutex_unlock(&e->mu);
		sl_etcd_kvs_free(kvs, n);
		return;
	}
	sl_etcd_kvs_free(e->snap, e->snap_n);
	e->snap = kvs;
	e->snap_n = e->snap_cap = n;
	e->snap_bytes = bytes;
	e->changed = 1;
	pthread_mutex_unlock(&e->mu);
	notify(e);
}

static void range_done(struct sl_etcd *e, const char *why)
{
	struct sl_etcd_kv *kvs = NULL;
	json_t *root = NULL, *arr;
	size_t i, n = 0, bytes = 0;
	json_error_t jerr;

	if (why) {
		read_fail(e, "range", e->rx.resp.over ? "response over 16 MiB" : why);
		return;
	}
	root = json_loadb(e->rx.resp.p ? e->rx.resp.p : "", e->rx.resp.len, 0, &jerr);
	if (!root || !json_is_object(json_object_get(root, "header"))) {
		read_fail(e, "range", root ? "no header in response" : jerr.text);
		goto out;
	}
	e->rev = json_i64(json_object_get(json_object_get(root, "header"), "revision"));
	arr = json_object_get(root, "kvs");
	if (arr && !json_is_array(arr)) {
		read_fail(e, "range", "kvs is not an array");
		goto out;
	}
	if (json_array_size(arr)) {
		kvs = calloc(json_array_size(arr), sizeof(*kvs));
		if (!kvs) {
			read_fail(e, "range", strerror(ENOMEM));
			goto out;
		}
	}
	for (i = 0; i < json_array_size(arr); i++) {
		int r = kv_parse(json_array_get(arr, i), &kvs[n]);

		if (r < 0) {
			read_fail(e, "range", "bad kv in response");
			goto out;
		}
		if (r > 0) {
			et_log(SL_LOG_DEBUG, "etcd key or value with a NUL byte skipped");
			continue;
		}
		bytes += strlen(kvs[n].key) + strlen(kvs[n].value);
		n++;
	}
	if (bytes > ET_SNAP_MAX) {
		read_fail(e, "range", "snapshot over 16 MiB");
		goto out;
	}
	if (n > 1)
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
	count(e, &e->st.ranges);
	snap_replace(e, kvs, n, bytes, !e->has_snap);
	e->has_snap = 1;
	kvs = NULL;
	n = 0;
	watch_start(e);
out:
	sl_etcd_kvs_free(kvs, n);
	json_decref(root);
	buf_reset(&e->rx.resp);
}

/* One event: 1 if the snapshot changed, 0 if not, -errno on bad data or over the cap.
 * Called with mu held. */
static int snap_apply(struct sl_etcd *e, const json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	struct sl_etcd_kv kv;
	int r, found;
	size_t at;

	r = kv_parse(json_object_get(ev, "kv"), &kv);
	if (r)
		return r > 0 ? 0 : r;
	at = snap_find(e, kv.key, &found);
	if (type && !strcmp(type, "DELETE")) {
		kv_clear(&kv);
		if (!found)
			return 0;
		e->snap_bytes -= strlen(e->snap[at].key) + strlen(e->snap[at].value);
		kv_clear(&e->snap[at]);
		memmove(&e->snap[at], &e->snap[at + 1], (e->snap_n - at - 1) * sizeof(kv));
		e->snap_n--;
		return 1;
	}
	if (type && strcmp(type, "PUT")) {
		kv_clear(&kv);
		return -EINVAL;
	}
	if (found) {
		size_t old = strlen(e->snap[at].key) + strlen(e->snap[at].value);

		if (e->snap_bytes - old + strlen(kv.key) + strlen(kv.value) > ET_SNAP_MAX) {
			kv_clear(&kv);
			return -EFBIG;
		}
		e->snap_bytes = e->snap_bytes - old + strlen(kv.key) + strlen(kv.value);
		kv_clear(&e->snap[at]);
		e->snap[at] = kv;
		return 1;
	}
	if (e->snap_bytes + strlen(kv.key) + strlen(kv.value) > ET_SNAP_MAX) {
		kv_clear(&kv);
		return -EFBIG;
	}
	if (e->snap_n == e->snap_cap) {
		size_t cap = e->snap_cap ? e->snap_cap * 2 : 16;
		struct sl_etcd_kv *p = realloc(e->snap, cap * sizeof(*p));

		if (!p) {
			kv_clear(&kv);
			return -ENOMEM;
		}
		e->snap = p;
		e->snap_cap = cap;
	}
	memmove(&e->snap[at + 1], &e->snap[at], (e->snap_n - at) * sizeof(kv));
	e->snap[at] = kv;
	e->snap_n++;
	e->snap_bytes += strlen(kv.key) + strlen(kv.value);
	return 1;
}

/* One complete watch message: 0 to go on, 1 to resync (compacted), -1 on failure. */
static int watch_msg(struct sl_etcd *e, const char *s, size_t n)
{
	json_t *root, *res, *evs;
	json_error_t jerr;
	int64_t rev;
	int r = 0, changed = 0;
	size_t i;

	root = json_loadb(s, n, 0, &jerr);
	if (!root) {
		snprintf(e->w_why, sizeof(e->w_why), "bad JSON in watch stream: %.100s", jerr.text);
		return -1;
	}
	res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		json_t *err = json_object_get(root, "error");
		const char *m = json_string_value(json_object_get(err, "message"));

		if (!m)
			m = json_string_value(err);
		snprintf(e->w_why, sizeof(e->w_why), "watch error: %.140s", m ? m : "no result");
		r = -1;
		goto out;
	}
	rev = json_i64(json_object_get(json_object_get(res, "header"), "revision"));
	if (json_is_true(json_object_get(res, "canceled"))) {
		int64_t compact = json_i64(json_object_get(res, "compact_revision"));
		const char *why = json_string_value(json_object_get(res, "cancel_reason"));

		if (compact > 0) {
			et_log(SL_LOG_INFO, "etcd watch compacted, resyncing",
			       "revision=%lld compact_revision=%lld", (long long)e->rev,
			       (long long)compact);
			r = 1;
		} else {
			snprintf(e->w_why, sizeof(e->w_why), "watch canceled: %.140s",
				 why && *why ? why : "no reason given");
			r = -1;
		}
		goto out;
	}
	if (json_is_true(json_object_get(res, "created")) && !e->w_created) {
		e->w_created = 1;
		e->r_backoff = ET_BACKOFF_MIN;
		if (e->r_failing)
			et_log(SL_LOG_INFO, "etcd registry reachable again",
			       "endpoint=%s revision=%lld", e->eps[e->r_ep], (long long)e->rev);
		e->r_failing = 0;
		count(e, &e->st.watches);
		set_connected(e, 1);
	}
	evs = json_object_get(res, "events");
	if (json_array_size(evs)) {
		pthread_mutex_lock(&e->mu);
		for (i = 0; i < json_array_size(evs) && r >= 0; i++) {
			int c = snap_apply(e, json_array_get(evs, i));

			if (c < 0)
				r = -1;
			else
				changed |= c;
		}
		if (changed)
			e->changed = 1;
		pthread_mutex_unlock(&e->mu);
		if (changed)
			notify(e);
		if (r < 0)
			snprintf(e->w_why, sizeof(e->w_why), "watch event not applied");
	}
	if (rev > e->rev)
		e->rev = rev;
out:
	json_decref(root);
	return r;
}

/* The watch's body: a stream of JSON objects (one per line from the gateway, but split or
 * packed anyhow across calls). Complete objects are found by brace depth outside strings. */
static size_t watch_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct sl_etcd *e = arg;
	struct buf *b = &e->rx.resp;
	size_t i, keep;

	e->w_last_rx = now_ms();
	if (buf_add(b, d, size * nmemb)) {
		snprintf(e->w_why, sizeof(e->w_why), "watch message over 16 MiB or no memory");
		e->w_bad = 1;
		return 0;
	}
	for (i = e->w_scan; i < b->len; i++) {
		char c = b->p[i];

		if (e->w_instr) {
			if (e->w_esc)
				e->w_esc = 0;
			else if (c == '\\')
				e->w_esc = 1;
			else if (c == '"')
				e->w_instr = 0;
		} else if (c == '"' && e->w_depth > 0) {
			e->w_instr = 1;
		} else if (c == '{') {
			if (!e->w_depth++)
				e->w_obj = i;
		} else if (c == '}' && e->w_depth > 0) {
			int r = --e->w_depth ? 0 : watch_msg(e, b->p + e->w_obj, i - e->w_obj + 1);

			if (r > 0)
				e->w_resync = 1;
			if (r < 0)
				e->w_bad = 1;
			if (r)
				return 0;
		} else if (e->w_depth == 0 && c != ' ' && c != '\n' && c != '\r' && c != '\t') {
			snprintf(e->w_why, sizeof(e->w_why), "watch stream is not JSON");
			e->w_bad = 1;
			return 0;
		}
	}
	keep = e->w_depth ? e->w_obj : b->len;
	memmove(b->p, b->p + keep, b->len - keep);
	b->len -= keep;
	b->p[b->len] = '\0';
	e->w_obj = 0;
	e->w_scan = b->len;
	return size * nmemb;
}

static void watch_done(struct sl_etcd *e, const char *why)
{
	int resync = e->w_resync;

	buf_reset(&e->rx.resp);
	xfer_stop(e, &e->px);
	if (resync) {
		count(e, &e->st.resyncs);
		range_start(e);
		return;
	}
	read_fail(e, "watch", e->w_bad ? e->w_why : why ? why : "watch ended");
}

static void probe_start(struct sl_etcd *e)
{
	json_t *body =
	    json_pack("{s:s, s:I, s:b}", "key", e->key_b64, "limit", (json_int_t)1, "keys_only", 1);
	int r = xfer_start(e, &e->px, e->r_ep, "/v3/kv/range", body);

	if (r)
		read_fail(e, "probe", strerror(-r)); /* rather than spin on it */
}

static void probe_done(struct sl_etcd *e, const char *why)
{
	buf_reset(&e->px.resp);
	if (e->rstate != R_WATCH)
		return;
	if (!why) {
		e->w_last_rx = now_ms();
		return;
	}
	read_fail(e, "probe of a silent watch", why);
}

/* ---- the write side ---- */

static const char *op_name(const struct op *op)
{
	return op->kind == OP_PUT ? "put" : op->kind == OP_REFRESH ? "refresh" : "delete";
}

static void op_free(struct op *op)
{
	if (!op)
		return;
	free(op->key);
	free(op->value);
	free(op);
}

static void write_finish(struct sl_etcd *e, int done)
{
	if (done)
		count(e, &e->st.writes);
	op_free(e->cur);
	e->cur = NULL;
	e->w_due = now_ms();
}

static void write_drop(struct sl_etcd *e, const char *why)
{
	struct op *op = e->cur;

	et_log(SL_LOG_WARN, "etcd write dropped", "op=%s key=\"%s\" queued_ms=%llu err=\"%s\"",
	       op_name(op), op->key, (unsigned long long)(now_ms() - op->t_enq), why);
	count(e, &e->st.writes_dropped);
	if (op->kind == OP_PUT && op->ttl)
		lease_set_id(e, op->key, 0); /* a refresh will grant and put again */
	else if (op->kind != OP_REFRESH)
		lease_forget(e, op->key);
	write_finish(e, 0);
}

/* A refresh about to run: 0 (keepalive of w_lease), 1 (the lease is unknown: turned into
 * a put of the key's last value), -1 (nothing to do). */
static int refresh_resolve(struct sl_etcd *e, int lease_gone)
{
	struct op *op = e->cur;
	struct lease_ent *l;
	int r = -1;

	pthread_mutex_lock(&e->mu);
	l = lease_find(e, op->key);
	if (l && l->known) {
		if (l->id && !lease_gone) {
			e->w_lease = l->id;
			r = 0;
		} else {
			char *v = strdup(l->value);

			if (v) {
				free(op->value);
				op->value = v;
				op->ttl = l->ttl;
				op->kind = OP_PUT;
				r = 1;
			}
		}
	}
	pthread_mutex_unlock(&e->mu);
	return r;
}

static void write_start(struct sl_etcd *e)
{
	struct op *op = e->cur;
	char *k = NULL, *v = NULL, id[24];
	json_t *body = NULL;
	const char *path;
	int r;

	snprintf(id, sizeof(id), "%lld", (long long)e->w_lease);
	switch (e->w_step) {
	case W_GRANT:
		path = "/v3/lease/grant";
		body = json_pack("{s:I}", "TTL", (json_int_t)op->ttl);
		break;
	case W_PUT:
		path = "/v3/kv/put";
		k = sl_etcd_b64_encode(op->key, strlen(op->key));
		v = sl_etcd_b64_encode(op->value, strlen(op->value));
		if (k && v)
			body = op->ttl
				   ? json_pack("{s:s, s:s, s:s}", "key", k, "value", v, "lease", id)
				   : json_pack("{s:s, s:s}", "key", k, "value", v);
		break;
	case W_KEEPALIVE:
		path = "/v3/lease/keepalive";
		body = json_pack("{s:s}", "ID", id);
		break;
	default:
		path = "/v3/kv/deleterange";
		k = sl_etcd_b64_encode(op->key, strlen(op->key));
		if (k)
			body = json_pack("{s:s}", "key", k);
		break;
	}
	free(k);
	free(v);
	r = xfer_start(e, &e->wx, e->w_ep, path, body);
	if (r)
		write_drop(e, strerror(-r));
}

/* Take the next write if none is running and its time has come. */
static void write_next(struct sl_etcd *e, uint64_t now)
{
	if (e->wx.h || now < e->w_due)
		return;
	if (!e->cur) {
		struct op *op;

		pthread_mutex_lock(&e->mu);
		op = e->q_head;
		if (op) {
			e->q_head = op->next;
			if (!e->q_head)
				e->q_tail = NULL;
			e->q_len--;
			if (op->kind == OP_REFRESH) {
				struct lease_ent *l = lease_find(e, op->key);

				if (l) {
					l->refresh_queued = 0;
					if (!l->known)
						lease_remove(e, l);
				}
			}
		}
		pthread_mutex_unlock(&e->mu);
		if (!op)
			return;
		e->cur = op;
		e->w_lease = 0;
		if (op->kind == OP_DELETE) {
			e->w_step = W_DELETE;
		} else if (op->kind == OP_PUT) {
			e->w_step = op->ttl ? W_GRANT : W_PUT;
		} else {
			int r = refresh_resolve(e, 0);

			if (r < 0) {
				write_finish(e, 0);
				return;
			}
			e->w_step = r ? W_GRANT : W_KEEPALIVE;
		}
	}
	write_start(e);
}

static void write_done(struct sl_etcd *e, CURLcode rc, long status)
{
	struct op *op = e->cur;
	char tmp[32];
	const char *why = xfer_error(&e->wx, rc, status, tmp, sizeof(tmp));
	json_t *root = NULL, *res;
	json_error_t jerr;
	uint64_t now = now_ms();

	if (!why) {
		root = json_loadb(e->wx.resp.p ? e->wx.resp.p : "", e->wx.resp.len, 0, &jerr);
		if (!root) {
			why = "bad JSON in response";
			status = 502; /* retry */
		}
	}
	buf_reset(&e->wx.resp);
	if (why && rc == CURLE_OK && status != 429 && status < 500) {
		/* The lease expired between grant and put: grant again. */
		if (status == 404 && e->w_step == W_PUT && op->ttl) {
			e->w_step = W_GRANT;
			goto retry;
		}
		write_drop(e, why);
		return;
	}
	if (why)
		goto retry;
	e->w_backoff = ET_BACKOFF_MIN;
	switch (e->w_step) {
	case W_GRANT:
		e->w_lease = json_i64(json_object_get(root, "ID"));
		if (!e->w_lease) {
			const char *m = json_string_value(json_object_get(root, "error"));

			/* m is the reply's: log it before the reply goes. */
			write_drop(e, m && *m ? m : "no lease ID in response");
			json_decref(root);
			return;
		}
		e->w_step = W_PUT;
		e->w_due = now;
		break;
	case W_PUT:
		if (op->ttl)
			lease_set_id(e, op->key, e->w_lease);
		else
			lease_forget(e, op->key);
		write_finish(e, 1);
		break;
	case W_KEEPALIVE:
		/* A stream on the gateway: {"result": {..., "TTL": "n"}}; no TTL: expired. */
		res = json_object_get(root, "result");
		if (json_i64(json_object_get(res ? res : root, "TTL")) > 0) {
			write_finish(e, 1);
			break;
		}
		et_log(SL_LOG_INFO, "etcd lease expired, putting the key again", "key=\"%s\"",
		       op->key);
		if (refresh_resolve(e, 1) == 1) {
			e->w_step = W_GRANT;
			e->w_due = now;
		} else {
			write_finish(e, 1);
		}
		break;
	default:
		lease_forget(e, op->key);
		write_finish(e, 1);
		break;
	}
	json_decref(root);
	return;
retry:
	if (now - op->t_enq >= e->opts.write_retry_ms) {
		write_drop(e, why);
		return;
	}
	et_log(SL_LOG_DEBUG, "etcd write retry", "op=%s key=\"%s\" endpoint=%s err=\"%s\"",
	       op_name(op), op->key, e->eps[e->w_ep], why);
	e->w_due = now + jitter(e, e->w_backoff);
	e->w_backoff = backoff_next(e->w_backoff);
	e->w_ep = (e->w_ep + 1) % e->n_eps;
}

/* ---- the worker ---- */

static void dispatch_done(struct sl_etcd *e)
{
	struct CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(e->multi, &left))) {
		CURL *h = m->easy_handle;
		CURLcode rc = m->data.result;
		struct xfer *x;
		char *priv = NULL;
		long status = 0;
		const char *why;
		char tmp[32];

		if (m->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv) || !priv)
			continue;
		x = (struct xfer *)priv;
		if (x->h != h)
			continue;
		if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status))
			status = 0;
		why = xfer_error(x, rc, status, tmp, sizeof(tmp));
		xfer_stop(e, x); /* m is gone from here on */
		switch (x->kind) {
		case X_RANGE:
			range_done(e, why);
			break;
		case X_WATCH:
			watch_done(e, why);
			break;
		case X_PROBE:
			probe_done(e, why);
			break;
		case X_WRITE:
			write_done(e, rc, status);
			break;
		}
	}
}

static int write_pending(struct sl_etcd *e)
{
	int r;

	if (e->cur)
		return 1;
	pthread_mutex_lock(&e->mu);
	r = e->q_head != NULL;
	pthread_mutex_unlock(&e->mu);
	return r;
}

static void *worker(void *arg)
{
	struct sl_etcd *e = arg;

	while (!atomic_load(&e->stop)) {
		uint64_t now = now_ms(), due = now + ET_POLL_MAX;
		int running;

		if (e->rstate == R_IDLE && now >= e->r_due)
			range_start(e);
		if (e->rstate == R_WATCH && !e->px.h && now >= e->w_last_rx + e->opts.probe_idle_ms)
			probe_start(e);
		write_next(e, now);
		if (curl_multi_perform(e->multi, &running))
			et_log(SL_LOG_DEBUG, "etcd curl_multi_perform failed");
		dispatch_done(e);

		/* Sleep until curl, a deadline of ours, or a wakeup has something. */
		now = now_ms();
		if (e->rstate == R_IDLE && e->r_due < due)
			due = e->r_due;
		if (e->rstate == R_WATCH && !e->px.h && e->w_last_rx + e->opts.probe_idle_ms < due)
			due = e->w_last_rx + e->opts.probe_idle_ms;
		if (!e->wx.h && e->w_due < due && write_pending(e))
			due = e->w_due;
		if (due > now &&
		    curl_multi_poll(e->multi, NULL, 0, (int)(due - now), NULL) != CURLM_OK) {
			et_log(SL_LOG_WARN, "etcd curl_multi_poll failed");
			usleep(10000);
		}
	}
	xfer_stop(e, &e->rx);
	xfer_stop(e, &e->px);
	xfer_stop(e, &e->wx);
	buf_reset(&e->rx.resp);
	buf_reset(&e->px.resp);
	buf_reset(&e->wx.resp);
	op_free(e->cur);
	e->cur = NULL;
	return NULL;
}

/* ---- the API ---- */

static void destroy(struct sl_etcd *e)
{
	struct op *op, *next;
	size_t i;

	if (e->thread_started) {
		atomic_store(&e->stop, 1);
		curl_multi_wakeup(e->multi);
		pthread_join(e->thread, NULL);
		pthread_mutex_destroy(&e->mu);
	}
	if (e->multi)
		curl_multi_cleanup(e->multi);
	curl_slist_free_all(e->hdrs);
	curl_slist_free_all(e->watch_hdrs);
	if (e->curl_inited)
		curl_global_cleanup();
	for (op = e->q_head; op; op = next) {
		next = op->next;
		op_free(op);
	}
	for (i = 0; i < e->n_leases; i++) {
		free(e->leases[i].key);
		free(e->leases[i].value);
	}
	free(e->leases);
	sl_etcd_kvs_free(e->snap, e->snap_n);
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

static struct curl_slist *headers(int watch)
{
	/* "Expect:" keeps curl from waiting for a 100-continue on large bodies. With the gRPC
	 * metadata hasleader, etcd cancels a watch when its member loses the leader. */
	static const char *const h[] = {"Content-Type: application/json",
					"Expect:", "Grpc-Metadata-hasleader: true"};
	struct curl_slist *l = NULL, *t;
	size_t i;

	for (i = 0; i < (watch ? 3u : 2u); i++) {
		t = curl_slist_append(l, h[i]);
		if (!t) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = t;
	}
	return l;
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

struct sl_etcd *sl_etcd_open_opts(const char *const *endpoints, size_t n, const char *prefix,
				  const struct sl_etcd_opts *opts, char *err, size_t err_len)
{
	char scratch[1]; /* err when the caller gave none */
	struct sl_etcd *e;
	unsigned char *end;
	size_t plen, elen, i;
	int r;

	if (!err || !err_len) {
		err = scratch;
		err_len = sizeof(scratch);
	}
	if (check_args(endpoints, n, prefix, err, err_len))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto nomem;
	e->efd = -1;
	if (opts)
		e->opts = *opts;
	if (!e->opts.request_timeout_ms)
		e->opts.request_timeout_ms = ET_DEF_REQUEST_MS;
	if (!e->opts.connect_timeout_ms)
		e->opts.connect_timeout_ms = ET_DEF_CONNECT_MS;
	if (!e->opts.probe_idle_ms)
		e->opts.probe_idle_ms = ET_DEF_PROBE_MS;
	if (!e->opts.write_retry_ms)
		e->opts.write_retry_ms = ET_DEF_RETRY_MS;
	e->rx.kind = X_RANGE; /* the read slot: X_WATCH while the watch runs */
	e->px.kind = X_PROBE;
	e->wx.kind = X_WRITE;
	e->r_backoff = e->w_backoff = ET_BACKOFF_MIN;

	e->eps = calloc(n, sizeof(*e->eps));
	if (!e->eps)
		goto nomem;
	for (i = 0; i < n; i++) {
		size_t len = strlen(endpoints[i]);

		while (len && endpoints[i][len - 1] == '/')
			len--;
		e->eps[i] = strndup(endpoints[i], len);
		if (!e->eps[i])
			goto nomem;
		e->n_eps++;
	}

	/* The range of the prefix: [prefix, prefix with its last byte below 0xff plus one);
	 * "" (or all 0xff) is every key from the prefix on: "\0" in etcd's terms. */
	plen = strlen(prefix);
	end = malloc(plen + 1);
	if (!end)
		goto nomem;
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
	if (!e->key_b64 || !e->end_b64)
		goto nomem;

	if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != sizeof(e->rng))
		e->rng = now_ms() ^ (uint64_t)(uintptr_t)e;
	e->rng |= 1;

	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		snprintf(err, err_len, "etcd: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, err_len, "etcd: curl_global_init failed");
		goto fail;
	}
	e->curl_inited = 1;
	e->multi = curl_multi_init();
	e->hdrs = headers(0);
	e->watch_hdrs = headers(1);
	if (!e->multi || !e->hdrs || !e->watch_hdrs)
		goto nomem;
	r = pthread_mutex_init(&e->mu, NULL);
	if (r) {
		snprintf(err, err_len, "etcd: pthread_mutex_init: %s", strerror(r));
		goto fail;
	}
	r = pthread_create(&e->thread, NULL, worker, e);
	if (r) {
		pthread_mutex_destroy(&e->mu);
		snprintf(err, err_len, "etcd: start worker thread: %s", strerror(r));
		goto fail;
	}
	e->thread_started = 1;
	return e;
nomem:
	snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
fail:
	if (e)
		destroy(e);
	return NULL;
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

int sl_etcd_take(struct sl_etcd *e, struct sl_etcd_kv **kvs, size_t *n, int *connected)
{
	struct sl_etcd_kv *out = NULL;
	uint64_t v;
	size_t i;

	/* Drain first: a write of the worker after this is about state it set before. */
	if (read(e->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		sl_warn("etcd eventfd read", "err=\"%s\"", strerror(errno));
	pthread_mutex_lock(&e->mu);
	if (connected)
		*connected = e->connected;
	if (!e->changed) {
		pthread_mutex_unlock(&e->mu);
		return 0;
	}
	if (e->snap_n) {
		out = calloc(e->snap_n, sizeof(*out));
		for (i = 0; out && i < e->snap_n; i++) {
			out[i].key = strdup(e->snap[i].key);
			out[i].value = strdup(e->snap[i].value);
			out[i].lease = e->snap[i].lease;
			out[i].mod_revision = e->snap[i].mod_revision;
			if (!out[i].key || !out[i].value) {
				sl_etcd_kvs_free(out, i + 1);
				out = NULL;
			}
		}
		if (!out) {
			pthread_mutex_unlock(&e->mu);
			notify(e); /* try again on the next turn of the loop */
			return -ENOMEM;
		}
	}
	*kvs = out;
	*n = e->snap_n;
	e->changed = 0;
	pthread_mutex_unlock(&e->mu);
	return 1;
}

/* Queue a write; the lease table follows the caller's view at once. */
static int enqueue(struct sl_etcd *e, enum op_kind kind, const char *key, const char *value,
		   unsigned int ttl)
{
	struct lease_ent *l;
	struct op *op;
	int r = 0;

	if (!key || !*key || (kind == OP_PUT && !value))
		return -EINVAL;
	if (strlen(key) > ET_KV_MAX || (value && strlen(value) > ET_KV_MAX - strlen(key)))
		return -E2BIG;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->kind = kind;
	op->ttl = kind == OP_PUT ? ttl : 0;
	op->t_enq = now_ms();
	op->key = strdup(key);
	op->value = value ? strdup(value) : NULL;
	if (!op->key || (value && !op->value)) {
		op_free(op);
		return -ENOMEM;
	}

	pthread_mutex_lock(&e->mu);
	if (e->q_len >= ET_QUEUE_MAX) {
		r = -ENOSPC;
		goto out;
	}
	l = lease_find(e, key);
	if (kind == OP_REFRESH) {
		if (!l || !l->known) {
			r = -ENOENT;
			goto out;
		}
		if (l->refresh_queued)
			goto out; /* absorbed by the one queued */
		l->refresh_queued = 1;
	} else if (kind == OP_PUT && ttl) {
		char *v = strdup(value);

		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		if (!l) {
			if (e->n_leases >= ET_LEASES_MAX) {
				free(v);
				r = -ENOSPC;
				goto out;
			}
			if (e->n_leases == e->cap_leases) {
				size_t cap = e->cap_leases ? e->cap_leases * 2 : 8;
				struct lease_ent *p = realloc(e->leases, cap * sizeof(*p));

				if (!p) {
					free(v);
					r = -ENOMEM;
					goto out;
				}
				e->leases = p;
				e->cap_leases = cap;
			}
			l = &e->leases[e->n_leases];
			memset(l, 0, sizeof(*l));
			l->key = strdup(key);
			if (!l->key) {
				free(v);
				r = -ENOMEM;
				goto out;
			}
			e->n_leases++;
		}
		free(l->value);
		l->value = v;
		l->ttl = ttl;
		l->known = 1;
	} else if (l) {
		l->known = 0;
	}
	if (e->q_tail)
		e->q_tail->next = op;
	else
		e->q_head = op;
	e->q_tail = op;
	e->q_len++;
	op = NULL;
out:
	pthread_mutex_unlock(&e->mu);
	op_free(op);
	if (!r)
		curl_multi_wakeup(e->multi);
	return r;
}

void sl_etcd_get_stats(struct sl_etcd *e, struct sl_etcd_stats *out)
{
	pthread_mutex_lock(&e->mu);
	*out = e->st;
	out->queued = e->q_len;
	pthread_mutex_unlock(&e->mu);
}

int sl_etcd_put(struct sl_etcd *e, const char *key, const char *value, unsigned int ttl_s)
{
	return enqueue(e, OP_PUT, key, value, ttl_s);
}

int sl_etcd_refresh(struct sl_etcd *e, const char *key)
{
	return enqueue(e, OP_REFRESH, key, NULL, 0);
}

int sl_etcd_delete(struct sl_etcd *e, const char *key)
{
	return enqueue(e, OP_DELETE, key, NULL, 0);
}
