// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Active health checks, run from the agent's epoll loop.
 *
 * One internal epoll fd holds a timerfd and the sockets of the probes in
 * flight. Every target always sits in a binary min-heap keyed by the time of
 * its next step: the deadline of its probe while one is in flight, else the
 * time its next probe is due. The timerfd is armed (absolute,
 * CLOCK_MONOTONIC) for the top of the heap, so a tick costs O(log n) per
 * target that has something to do, whatever the number of targets.
 *
 * Schedule: a new (or changed) target is probed at once. When a probe
 * starts, the next one is set one interval after the time this one was due,
 * plus a uniform jitter of +-10% of the interval from a seeded xorshift
 * PRNG, so many backends added together drift apart instead of probing in
 * lockstep. Scheduling from the due time (not the start) keeps the long-run
 * rate exact when the loop is a little late; after a long stall the phase
 * restarts from now rather than bursting. Two starts of one target are
 * never closer than 0.9 * interval; a probe still running when the next is
 * due delays that next one until it ends (never two at once).
 *
 * Epoll data is the target pointer (NULL for the timerfd). A dispatch
 * handles all socket events of its batch before the timer work, because the
 * timer work may close a probe's socket (timeout) and open a new one; doing
 * it last means no event of the batch can refer to a socket that is gone.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "log.h"

#define HC_BATCH	256  /* epoll events per epoll_wait */
#define HC_ROUNDS	4    /* epoll_wait rounds per dispatch, to bound its time */
#define HC_READ_CAP	1024 /* bytes of response read looking for the status line */
#define HC_MIN_INTERVAL 10   /* ms; a lower (invalid) interval is raised to this */
#define HC_HEAD_LEN	16   /* "HTTP/1.1 200 " is 13 bytes */
#define HC_WHY_LEN	24
#define HC_REQ_LEN	(SL_HC_PATH_LEN + SL_HOSTPORT_LEN + 128)

enum hc_phase {
	HC_IDLE = 0,
	HC_CONNECTING,
	HC_SENDING, /* http: writing the request */
	HC_READING, /* http: reading the status line */
};

struct hc_target {
	uint32_t be_id;
	struct sl_sockaddr addr;
	struct sl_health_cfg cfg;
	uint32_t interval_ms; /* cfg values made safe to compute with */
	uint32_t timeout_ms;

	int healthy;
	int ever_healthy; /* has been healthy at some point (see hc_finish) */
	uint32_t succ_run, fail_run;
	uint64_t ok, failed, last_probe_ms;

	uint64_t due_ms; /* when the next probe is (or the current one was) due */
	uint64_t key_ms; /* heap key: the probe's deadline in flight, else due_ms */
	size_t hidx;	 /* position in the heap */

	/* The probe in flight. */
	int fd; /* -1 when idle */
	uint8_t phase;
	uint16_t sent;		/* request bytes sent */
	uint16_t got;		/* response bytes read */
	char head[HC_HEAD_LEN]; /* first bytes of the response */
	char why[HC_WHY_LEN];	/* "HTTP 503" lives here */
};

struct sl_health {
	int epfd;
	int tfd;
	uint64_t armed_ms; /* what the timerfd is armed for; 0 = disarmed */
	sl_hc_change_fn fn;
	void *arg;
	uint64_t rng;
	int dispatching;

	struct hc_target **tv; /* sorted by be_id */
	struct hc_target **heap;
	size_t n;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift64*: quality enough for jitter, and never 0 once seeded non-zero. */
static uint64_t hc_rand(struct sl_health *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 0x2545F4914F6CDD1DULL;
}

/* ---- min-heap on key_ms ---- */

static void heap_set(struct sl_health *h, size_t i, struct hc_target *t)
{
	h->heap[i] = t;
	t->hidx = i;
}

static void heap_up(struct sl_health *h, size_t i)
{
	struct hc_target *t = h->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h->heap[p]->key_ms <= t->key_ms)
			break;
		heap_set(h, i, h->heap[p]);
		i = p;
	}
	heap_set(h, i, t);
}

static void heap_down(struct sl_health *h, size_t i)
{
	struct hc_target *t = h->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->heap[c + 1]->key_ms < h->heap[c]->key_ms)
			c++;
		if (t->key_ms <= h->heap[c]->key_ms)
			break;
		heap_set(h, i, h->heap[c]);
		i = c;
	}
	heap_set(h, i, t);
}

static void heap_rekey(struct sl_health *h, struct hc_target *t, uint64_t key)
{
	t->key_ms = key;
	heap_up(h, t->hidx);
	heap_down(h, t->hidx);
}

/* ---- the timer ---- */

static void hc_arm(struct sl_health *h)
{
	struct itimerspec its = {0};
	uint64_t at = h->n ? h->heap[0]->key_ms : 0;

	if (at == h->armed_ms)
		return;
	if (at) {
		its.it_value.tv_sec = (time_t)(at / 1000);
		its.it_value.tv_nsec = (long)(at % 1000) * 1000000;
	}
	if (timerfd_settime(h->tfd, TFD_TIMER_ABSTIME, &its, NULL)) {
		sl_warn("arm health check timer", "err=\"%s\"", strerror(errno));
		h->armed_ms = 0;
		return;
	}
	h->armed_ms = at;
}

/* ---- one probe ---- */

static const char *errno_why(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connect refused";
	case ETIMEDOUT:
		return "timeout";
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return "unreachable";
	case ECONNRESET:
	case EPIPE:
		return "connection reset";
	case EADDRNOTAVAIL:
		return "no local address";
	default:
		return "connect failed";
	}
}

static void hc_close(struct hc_target *t)
{
	if (t->fd >= 0)
		close(t->fd); /* also removes it from the epoll set */
	t->fd = -1;
	t->phase = HC_IDLE;
}

/*
 * A probe ended. Thresholds count consecutive outcomes. The spec makes a
 * newly added backend unhealthy "until its first probe passes", so a target
 * that has never been healthy (it started unhealthy and no probe passed yet)
 * turns healthy on ONE passing probe, whatever healthy_threshold says;
 * after it has been healthy once, healthy_threshold applies as usual.
 */
static void hc_finish(struct sl_health *h, struct hc_target *t, int ok, const char *why)
{
	uint64_t now = now_ms();
	uint32_t hthr = t->cfg.healthy_threshold ? t->cfg.healthy_threshold : 1;
	uint32_t uthr = t->cfg.unhealthy_threshold ? t->cfg.unhealthy_threshold : 1;
	int change = 0;

	hc_close(t);
	t->last_probe_ms = now;
	if (ok) {
		t->ok++;
		t->fail_run = 0;
		if (t->succ_run < UINT32_MAX)
			t->succ_run++;
		if (!t->healthy && (t->succ_run >= hthr || !t->ever_healthy)) {
			t->healthy = 1;
			t->ever_healthy = 1;
			change = 1;
		}
	} else {
		t->failed++;
		t->succ_run = 0;
		if (t->fail_run < UINT32_MAX)
			t->fail_run++;
		if (t->healthy && t->fail_run >= uthr) {
			t->healthy = 0;
			change = 1;
		}
	}
	/* The next probe: when due, but not before this one has ended. */
	heap_rekey(h, t, t->due_ms > now ? t->due_ms : now);
	if (change && h->fn)
		h->fn(h->arg, t->be_id, t->healthy, why);
}

static size_t hc_request(const struct hc_target *t, char *buf, size_t len)
{
	char host[SL_HOSTPORT_LEN];
	size_t plen = strnlen(t->cfg.path, sizeof(t->cfg.path));
	int n;

	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)t->cfg.path[i] <= ' ' || t->cfg.path[i] == 0x7f)
			return 0; /* would break the request line */
	sl_format_hostport(&t->addr, host, sizeof(host));
	n = snprintf(buf, len,
		     "GET %.*s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-health\r\n"
		     "Connection: close\r\n\r\n",
		     plen ? (int)plen : 1, plen ? t->cfg.path : "/", host);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/*
 * The status code of a status line "HTTP/d.d ddd[ reason]" held in 'head'
 * (its first 'len' bytes, the whole line already seen), or -1.
 */
static int hc_status(const char *head, size_t len)
{
	const char *s = head;

	if (len < 12 || memcmp(s, "HTTP/", 5) || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
	    s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (len > 12 && s[12] != ' ' && s[12] != '\r' && s[12] != '\n')
		return -1;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

/* http: read what there is; finish once the status line is complete. */
static void hc_read(struct sl_health *h, struct hc_target *t)
{
	char buf[512];

	for (;;) {
		size_t want = HC_READ_CAP - t->got;
		ssize_t r = recv(t->fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
		int code;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			hc_finish(h, t, 0, errno_why(errno));
			return;
		}
		if (r == 0) {
			hc_finish(h, t, 0, "bad response");
			return;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (t->got < HC_HEAD_LEN)
				t->head[t->got] = buf[i];
			t->got++;
			if (buf[i] != '\n')
				continue;
			code = hc_status(t->head, t->got < HC_HEAD_LEN ? t->got : HC_HEAD_LEN);
			if (code < 0) {
				hc_finish(h, t, 0, "bad response");
			} else if (code >= 200 && code <= 299) {
				hc_finish(h, t, 1, "ok");
			} else {
				snprintf(t->why, sizeof(t->why), "HTTP %d", code);
				hc_finish(h, t, 0, t->why);
			}
			return;
		}
		if (t->got >= HC_READ_CAP) {
			hc_finish(h, t, 0, "bad response");
			return;
		}
	}
}

/* http: send (the rest of) the request, then wait for the answer. */
static void hc_send(struct sl_health *h, struct hc_target *t)
{
	char req[HC_REQ_LEN];
	size_t len = hc_request(t, req, sizeof(req));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};

	if (!len) {
		hc_finish(h, t, 0, "bad path");
		return;
	}
	while (t->sent < len) {
		ssize_t w = send(t->fd, req + t->sent, len - t->sent, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return; /* EPOLLOUT again */
			hc_finish(h, t, 0, errno_why(errno));
			return;
		}
		t->sent = (uint16_t)(t->sent + (size_t)w);
	}
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, t->fd, &ev)) {
		hc_finish(h, t, 0, "epoll failed");
		return;
	}
	t->phase = HC_READING;
}

/* The connect finished one way or the other (EPOLLOUT/EPOLLERR/EPOLLHUP). */
static void hc_connected(struct sl_health *h, struct hc_target *t)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &elen))
		err = errno;
	if (err) {
		hc_finish(h, t, 0, errno_why(err));
		return;
	}
	if (t->cfg.type == SL_HC_TCP) {
		hc_finish(h, t, 1, "ok");
		return;
	}
	t->phase = HC_SENDING;
	hc_send(h, t);
}

static void hc_io(struct sl_health *h, struct hc_target *t, uint32_t events)
{
	switch (t->phase) {
	case HC_CONNECTING:
		hc_connected(h, t);
		break;
	case HC_SENDING:
		if (events & EPOLLERR)
			hc_connected(h, t); /* reports SO_ERROR */
		else
			hc_send(h, t);
		break;
	case HC_READING:
		hc_read(h, t);
		break;
	default:
		break; /* stale: cannot happen, see the top of the file */
	}
}

static void hc_start(struct sl_health *h, struct hc_target *t, uint64_t now)
{
	uint32_t iv = t->interval_ms, span = iv / 10;
	uint64_t jittered = iv - span + hc_rand(h) % (2 * (uint64_t)span + 1);
	uint64_t next = t->due_ms + jittered;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = t};
	struct sockaddr_storage ss = {0};
	socklen_t sslen;
	int fd, af = t->addr.family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET;

	/* Late by more than half an interval (a stalled loop): restart the
	 * phase from now instead of catching up in a burst. */
	t->due_ms = next >= now + iv / 2 ? next : now + jittered;
	if (af == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(t->addr.port);
		memcpy(&s6->sin6_addr, t->addr.addr.a8, 16);
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(t->addr.port);
		memcpy(&s4->sin_addr, t->addr.addr.a8, 4);
		sslen = sizeof(*s4);
	}

	t->sent = 0;
	t->got = 0;
	t->phase = HC_CONNECTING;
	fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sl_warn("health check socket", "backend_id=%u err=\"%s\"", t->be_id,
			strerror(errno));
		hc_finish(h, t, 0, "no socket");
		return;
	}
	t->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, sslen) && errno != EINPROGRESS) {
		hc_finish(h, t, 0, errno_why(errno));
		return;
	}
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		sl_warn("health check epoll_ctl", "backend_id=%u err=\"%s\"", t->be_id,
			strerror(errno));
		hc_finish(h, t, 0, "epoll failed");
		return;
	}
}

/* Start every probe that is due; fail every probe past its deadline. */
static void hc_run_timers(struct sl_health *h)
{
	uint64_t now = now_ms();

	while (h->n && h->heap[0]->key_ms <= now) {
		struct hc_target *t = h->heap[0];

		if (t->phase != HC_IDLE) {
			hc_finish(h, t, 0, "timeout"); /* re-heaps */
		} else {
			hc_start(h, t, now);
			if (t->phase != HC_IDLE) /* else hc_finish re-heaped it */
				heap_rekey(h, t, now + t->timeout_ms);
		}
	}
}

void sl_health_dispatch(struct sl_health *h)
{
	struct epoll_event ev[HC_BATCH];
	uint64_t expirations;
	int n = HC_BATCH;

	h->dispatching = 1;
	for (int round = 0; round < HC_ROUNDS && n == HC_BATCH; round++) {
		n = epoll_wait(h->epfd, ev, HC_BATCH, 0);
		if (n < 0) {
			if (errno != EINTR)
				sl_warn("health check epoll_wait", "err=\"%s\"", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			if (ev[i].data.ptr)
				hc_io(h, ev[i].data.ptr, ev[i].events);
		/* After the socket events: see the top of the file. */
		if (read(h->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
			sl_warn("health check timer read", "err=\"%s\"", strerror(errno));
		hc_run_timers(h);
	}
	/* An expiry read above was acted on (the top of the heap is now
	 * later than it), so re-arming only on a change loses nothing. */
	hc_arm(h);
	h->dispatching = 0;
}

/* ---- the set ---- */

static void hc_target_free(struct hc_target *t)
{
	if (!t)
		return;
	hc_close(t);
	free(t);
}

static int cfg_equal(const struct sl_health_cfg *a, const struct sl_health_cfg *b)
{
	return a->type == b->type && a->port == b->port && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->healthy_threshold == b->healthy_threshold &&
	       a->unhealthy_threshold == b->unhealthy_threshold &&
	       (a->type != SL_HC_HTTP || !strncmp(a->path, b->path, sizeof(a->path)));
}

static struct hc_target *hc_find(const struct sl_health *h, uint32_t be_id)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->tv[mid]->be_id == be_id)
			return h->tv[mid];
		if (h->tv[mid]->be_id < be_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_target_id(const void *a, const void *b)
{
	const struct sl_hc_target *x = *(const struct sl_hc_target *const *)a;
	const struct sl_hc_target *y = *(const struct sl_hc_target *const *)b;

	return x->be_id < y->be_id ? -1 : x->be_id > y->be_id;
}

static struct hc_target *hc_target_new(const struct sl_hc_target *in, uint64_t now)
{
	struct hc_target *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->be_id = in->be_id;
	t->addr = in->addr;
	t->cfg = in->cfg;
	t->interval_ms =
	    in->cfg.interval_ms > HC_MIN_INTERVAL ? in->cfg.interval_ms : HC_MIN_INTERVAL;
	t->timeout_ms = in->cfg.timeout_ms ? in->cfg.timeout_ms : 1;
	t->healthy = !!in->initially_healthy;
	t->ever_healthy = t->healthy;
	t->due_ms = now; /* probed at once */
	t->key_ms = now;
	t->fd = -1;
	return t;
}

/* The target for 'in' in the new set: the old one when nothing changed
 * (state, counters and schedule stay), else a new one. NULL: out of memory. */
static struct hc_target *hc_target_next(struct sl_health *h, const struct sl_hc_target *in,
					uint64_t now)
{
	struct hc_target *old = hc_find(h, in->be_id), *t;

	if (old && sl_sockaddr_equal(&old->addr, &in->addr) && cfg_equal(&old->cfg, &in->cfg))
		return old;
	t = hc_target_new(in, now);
	if (t && old) {
		/* Changed: probed again from scratch, but the state and the
		 * counters (metrics are monotonic) carry over. */
		t->healthy = old->healthy;
		t->ever_healthy = old->ever_healthy;
		t->ok = old->ok;
		t->failed = old->failed;
		t->last_probe_ms = old->last_probe_ms;
	}
	return t;
}

/* Make tv (sorted by be_id) the set: drop what is not in it (gone or
 * replaced), then heapify. */
static void hc_commit(struct sl_health *h, struct hc_target **tv, struct hc_target **heap, size_t n)
{
	size_t j;

	for (size_t i = 0, k = 0; i < h->n; i++) {
		struct hc_target *old = h->tv[i];

		while (k < n && tv[k]->be_id < old->be_id)
			k++;
		if (k < n && tv[k] == old)
			continue;
		hc_target_free(old);
	}
	free(h->tv);
	free(h->heap);
	h->tv = tv;
	h->heap = heap;
	h->n = n;
	for (j = 0; j < n; j++)
		heap_set(h, j, tv[j]);
	for (j = n / 2; j-- > 0;)
		heap_down(h, j);
}

int sl_health_sync(struct sl_health *h, const struct sl_hc_target *targets, size_t n)
{
	const struct sl_hc_target **in = NULL;
	struct hc_target **tv = NULL, **heap = NULL;
	uint64_t now = now_ms();
	int err = -ENOMEM;

	if (h->dispatching)
		return -EBUSY; /* called from the change callback */
	if (n && !targets)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((targets[i].cfg.type != SL_HC_TCP && targets[i].cfg.type != SL_HC_HTTP) ||
		    (targets[i].addr.family != SLUICE_AF_INET &&
		     targets[i].addr.family != SLUICE_AF_INET6))
			return -EINVAL;

	/* Build the new set beside the old one; nothing changes until it is whole. */
	if (n) {
		in = calloc(n, sizeof(*in));
		tv = calloc(n, sizeof(*tv));
		heap = calloc(n, sizeof(*heap));
		if (!in || !tv || !heap)
			goto fail;
	}
	for (size_t i = 0; i < n; i++)
		in[i] = &targets[i];
	if (n > 1)
		qsort(in, n, sizeof(*in), cmp_target_id);
	for (size_t i = 1; i < n; i++)
		if (in[i]->be_id == in[i - 1]->be_id) {
			err = -EINVAL; /* one be_id twice */
			goto fail;
		}
	for (size_t i = 0; i < n; i++) {
		tv[i] = hc_target_next(h, in[i], now);
		if (!tv[i])
			goto fail;
	}
	hc_commit(h, tv, heap, n);
	free(in);
	hc_arm(h);
	return 0;

fail:
	for (size_t i = 0; i < n && tv; i++)
		if (tv[i] && tv[i] != hc_find(h, tv[i]->be_id))
			hc_target_free(tv[i]);
	free(in);
	free(tv);
	free(heap);
	return err;
}

int sl_health_stats(const struct sl_health *h, uint32_t be_id, struct sl_hc_stats *out)
{
	const struct hc_target *t = hc_find(h, be_id);

	if (!t)
		return -ENOENT;
	out->ok = t->ok;
	out->failed = t->failed;
	out->healthy = t->healthy;
	out->last_probe_ms = t->last_probe_ms;
	return 0;
}

int sl_health_counts(const struct sl_health *h, struct sl_hc_count **out, size_t *n)
{
	struct sl_hc_count *c = NULL;

	*out = NULL;
	*n = 0;
	if (!h->n)
		return 0;
	c = malloc(h->n * sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < h->n; i++) /* h->tv is sorted by be_id */
		c[i] = (struct sl_hc_count){h->tv[i]->be_id, h->tv[i]->ok, h->tv[i]->failed};
	*out = c;
	*n = h->n;
	return 0;
}

const struct sl_hc_count *sl_health_count_find(const struct sl_hc_count *counts, size_t n,
					       uint32_t be_id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (counts[mid].be_id == be_id)
			return &counts[mid];
		if (counts[mid].be_id < be_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int sl_health_fd(const struct sl_health *h)
{
	return h->epfd;
}

struct sl_health *sl_health_new(sl_hc_change_fn fn, void *arg)
{
	struct sl_health *h = calloc(1, sizeof(*h));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	struct timespec ts;

	if (!h)
		return NULL;
	h->epfd = -1;
	h->tfd = -1;
	h->fn = fn;
	h->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	h->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
		 (uint64_t)(uintptr_t)h;
	if (!h->rng)
		h->rng = 0x9E3779B97F4A7C15ULL;

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0)
		goto fail;
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->tfd < 0)
		goto fail;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->tfd, &ev))
		goto fail;
	return h;

fail:
	sl_warn("create health checker", "err=\"%s\"", strerror(errno));
	sl_health_free(h);
	return NULL;
}

void sl_health_free(struct sl_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		hc_target_free(h->tv[i]);
	free(h->tv);
	free(h->heap);
	if (h->tfd >= 0)
		close(h->tfd);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h);
}
