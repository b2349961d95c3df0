// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The active health checker (health.c) against servers in this process: non-blocking
 * listeners on 127.0.0.1 and ::1 only, pumped from the same epoll loop as the checker's fd.
 * Server modes: accept and close (TCP), answer a canned HTTP response once the request is
 * in, answer it one byte per tick (partial reads), and never accept (the kernel completes
 * the handshake from the backlog, nothing answers: a probe times out).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "health.h"

enum srv_mode {
	SRV_CLOSE,  /* accept, close at once */
	SRV_HTTP,   /* read the request, write 'resp', close */
	SRV_SLOW,   /* read the request, write 'resp' one byte per tick, close */
	SRV_HOLD,   /* read the request, write 'resp', keep the connection open */
	SRV_SILENT, /* never accept */
};

enum tag_kind { TAG_HEALTH, TAG_LISTEN, TAG_CONN };

struct tag {
	enum tag_kind kind;
	struct srv *srv;
	struct conn *conn;
};

#define MAX_CONNS 32

struct conn {
	struct tag tag;
	int fd;
	char req[1024];
	size_t req_len;
	int answering; /* request complete */
	size_t sent;
};

struct srv {
	struct tag tag;
	int family;
	int lfd;
	uint16_t port;
	enum srv_mode mode;
	const char *resp;
	struct conn conns[MAX_CONNS];
	char last_req[1024]; /* the last complete request seen */
	unsigned int accepted;
};

#define MAX_RECS 64

struct rec {
	struct sl_health *h;
	int n;
	struct {
		uint32_t be_id;
		int healthy;
		char why[32];
		uint64_t ms;
		struct sl_hc_stats st;
	} ev[MAX_RECS];
};

struct loop {
	int ep;
	struct tag htag;
	struct sl_health *h;
	struct rec rec;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_change(void *arg, uint32_t be_id, int healthy, const char *why)
{
	struct rec *r = arg;

	if (r->n >= MAX_RECS)
		return;
	r->ev[r->n].be_id = be_id;
	r->ev[r->n].healthy = healthy;
	snprintf(r->ev[r->n].why, sizeof(r->ev[r->n].why), "%s", why);
	r->ev[r->n].ms = mono_ms();
	sl_health_stats(r->h, be_id, &r->ev[r->n].st);
	r->n++;
}

/* The record of the first change of 'be_id' from index 'from' on, or NULL. */
static const struct sl_hc_stats *find_rec(const struct rec *r, uint32_t be_id, int from,
					  int *healthy, const char **why)
{
	for (int i = from; i < r->n; i++)
		if (r->ev[i].be_id == be_id) {
			*healthy = r->ev[i].healthy;
			*why = r->ev[i].why;
			return &r->ev[i].st;
		}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int loop_init(struct loop *l)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->htag};

	memset(l, 0, sizeof(*l));
	l->htag.kind = TAG_HEALTH;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		return -1;
	l->h = sl_health_new(on_change, &l->rec);
	if (!l->h)
		return -1;
	l->rec.h = l->h;
	return epoll_ctl(l->ep, EPOLL_CTL_ADD, sl_health_fd(l->h), &ev);
}

static void loop_fini(struct loop *l)
{
	sl_health_free(l->h);
	if (l->ep >= 0)
		close(l->ep);
}

/* Listen on the loopback address of 'family' (port 0 = any), and join the loop. */
static int srv_listen(struct loop *l, struct srv *s, int family, uint16_t port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tag};
	int one = 1;

	s->tag.kind = TAG_LISTEN;
	s->tag.srv = s;
	s->family = family;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(port);
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(port);
		len = sizeof(*a);
	}
	s->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -1;
	if (setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&ss, len) || listen(s->lfd, 1024) ||
	    getsockname(s->lfd, (struct sockaddr *)&ss, &len))
		goto fail;
	s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					   : ((struct sockaddr_in *)&ss)->sin_port);
	if (s->mode != SRV_SILENT && epoll_ctl(l->ep, EPOLL_CTL_ADD, s->lfd, &ev))
		goto fail;
	return 0;
fail:
	close(s->lfd);
	s->lfd = -1;
	return -1;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void srv_close(struct srv *s)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd > 0)
			conn_close(&s->conns[i]);
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
}

static void srv_accept(struct loop *l, struct srv *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c = NULL;

		if (fd < 0)
			return;
		s->accepted++;
		if (s->mode == SRV_CLOSE) {
			close(fd);
			continue;
		}
		for (int i = 0; i < MAX_CONNS && !c; i++)
			if (s->conns[i].fd <= 0)
				c = &s->conns[i];
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->tag.kind = TAG_CONN;
		c->tag.srv = s;
		c->tag.conn = c;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->tag};

		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
			conn_close(c);
	}
}

/* Write what is due of the answer; 1 byte per call in SRV_SLOW. */
static void conn_answer(struct srv *s, struct conn *c)
{
	size_t len = strlen(s->resp), n = len - c->sent;
	ssize_t w;

	if (s->mode == SRV_SLOW && n > 1)
		n = 1;
	if (n) {
		w = send(c->fd, s->resp + c->sent, n, MSG_NOSIGNAL);
		if (w > 0)
			c->sent += (size_t)w;
	}
	if (c->sent == len && s->mode != SRV_HOLD)
		conn_close(c);
}

static void conn_read(struct srv *s, struct conn *c)
{
	char buf[512];
	ssize_t r;

	while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
		size_t room = sizeof(c->req) - 1 - c->req_len;
		size_t k = (size_t)r < room ? (size_t)r : room;

		memcpy(c->req + c->req_len, buf, k);
		c->req_len += k;
		c->req[c->req_len] = '\0';
	}
	if (!c->answering && strstr(c->req, "\r\n\r\n")) {
		c->answering = 1;
		memcpy(s->last_req, c->req, sizeof(s->last_req));
		conn_answer(s, c);
		return;
	}
	if (r == 0 && c->sent == 0 && !c->answering)
		conn_close(c);
}

/* Run the loop for up to 'ms', or until 'want' changes were recorded (want 0: the full
 * time). 'watch' (may be NULL) is called after every round. */
static void pump(struct loop *l, unsigned int ms, int want, void (*watch)(struct loop *, void *),
		 void *warg)
{
	uint64_t end = mono_ms() + ms;
	struct epoll_event ev[64];

	while (mono_ms() < end && (!want || l->rec.n < want)) {
		int n = epoll_wait(l->ep, ev, 64, 5);

		for (int i = 0; i < n; i++) {
			struct tag *t = ev[i].data.ptr;

			if (t->kind == TAG_HEALTH)
				sl_health_dispatch(l->h);
			else if (t->kind == TAG_LISTEN)
				srv_accept(l, t->srv);
			else if (t->conn->fd > 0)
				conn_read(t->srv, t->conn);
		}
		if (watch)
			watch(l, warg);
	}
}

/* SRV_SLOW servers are dripped by this watch. */
static void drip(struct loop *l, void *arg)
{
	struct srv *s = arg;

	(void)l;
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd > 0 && s->conns[i].answering)
			conn_answer(s, &s->conns[i]);
}

static struct sl_hc_target target(uint32_t be_id, const struct srv *s, uint8_t type,
				  uint32_t interval, uint32_t timeout, uint32_t hthr, uint32_t uthr,
				  int init)
{
	struct sl_hc_target t;

	memset(&t, 0, sizeof(t));
	t.be_id = be_id;
	t.addr.family = s->family == AF_INET6 ? SLUICE_AF_INET6 : SLUICE_AF_INET;
	if (s->family == AF_INET6) {
		memcpy(t.addr.addr.a8, &in6addr_loopback, 16);
	} else {
		uint32_t lo = htonl(INADDR_LOOPBACK);

		memcpy(t.addr.addr.a8, &lo, 4);
	}
	t.addr.port = s->port;
	t.cfg.type = type;
	snprintf(t.cfg.path, sizeof(t.cfg.path), "/healthz");
	t.cfg.interval_ms = interval;
	t.cfg.timeout_ms = timeout;
	t.cfg.healthy_threshold = hthr;
	t.cfg.unhealthy_threshold = uthr;
	t.initially_healthy = init;
	return t;
}

static void srv_init(struct srv *s, enum srv_mode mode, const char *resp)
{
	memset(s, 0, sizeof(*s));
	s->lfd = -1;
	s->mode = mode;
	s->resp = resp;
}

#define HTTP_200 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define HTTP_503 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"

Test(health, tcp_thresholds_and_first_probe)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t;
	struct sl_hc_stats st;
	uint64_t ok_at_down;
	uint16_t port;

	srv_init(&s, SRV_CLOSE, NULL);
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	port = s.port;
	t = target(1, &s, SL_HC_TCP, 100, 100, 2, 3, 0);
	cr_assert_eq(sl_health_sync(l.h, &t, 1), 0);
	cr_assert_eq(sl_health_stats(l.h, 1, &st), 0);
	cr_expect_eq(st.healthy, 0, "starts as initially_healthy says");

	/* Unhealthy and never healthy: ONE passing probe is enough (healthy_threshold 2). */
	pump(&l, 1000, 1, NULL, NULL);
	cr_assert_eq(l.rec.n, 1, "no change after 1 s");
	cr_expect_eq(l.rec.ev[0].healthy, 1);
	cr_expect_str_eq(l.rec.ev[0].why, "ok");
	cr_expect_eq(l.rec.ev[0].st.ok, 1, "healthy after %lu probes",
		     (unsigned long)l.rec.ev[0].st.ok);

	pump(&l, 350, 0, NULL, NULL);
	cr_expect_eq(l.rec.n, 1, "stays healthy without a callback");
	cr_assert_eq(sl_health_stats(l.h, 1, &st), 0);
	cr_expect_eq(st.healthy, 1);
	cr_expect_geq(st.ok, 3, "probed every ~100 ms: %lu", (unsigned long)st.ok);
	cr_expect_eq(st.failed, 0);

	/* Down: exactly unhealthy_threshold failures. */
	srv_close(&s);
	pump(&l, 1500, 2, NULL, NULL);
	cr_assert_eq(l.rec.n, 2, "no change 1.5 s after the listener closed");
	cr_expect_eq(l.rec.ev[1].healthy, 0);
	cr_expect_str_eq(l.rec.ev[1].why, "connect refused");
	cr_expect_eq(l.rec.ev[1].st.failed, 3);
	ok_at_down = l.rec.ev[1].st.ok;

	/* Back: once it has been healthy, healthy_threshold (2) applies. */
	cr_assert_eq(srv_listen(&l, &s, AF_INET, port), 0);
	pump(&l, 1500, 3, NULL, NULL);
	cr_assert_eq(l.rec.n, 3, "not healthy again 1.5 s after relistening");
	cr_expect_eq(l.rec.ev[2].healthy, 1);
	cr_expect_eq(l.rec.ev[2].st.ok - ok_at_down, 2, "healthy after %lu successes",
		     (unsigned long)(l.rec.ev[2].st.ok - ok_at_down));

	srv_close(&s);
	loop_fini(&l);
}

Test(health, http_200_and_request)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t;
	char want[128];

	srv_init(&s, SRV_HTTP, HTTP_200);
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	t = target(7, &s, SL_HC_HTTP, 1000, 500, 2, 2, 0);
	cr_assert_eq(sl_health_sync(l.h, &t, 1), 0);
	pump(&l, 1000, 1, NULL, NULL);
	cr_assert_eq(l.rec.n, 1);
	cr_expect_eq(l.rec.ev[0].be_id, 7);
	cr_expect_eq(l.rec.ev[0].healthy, 1);
	cr_expect_str_eq(l.rec.ev[0].why, "ok");
	snprintf(want, sizeof(want),
		 "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUser-Agent: sluice-health\r\n"
		 "Connection: close\r\n\r\n",
		 s.port);
	cr_expect_str_eq(s.last_req, want);
	srv_close(&s);
	loop_fini(&l);
}

Test(health, http_503_is_unhealthy)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t;

	srv_init(&s, SRV_HTTP, HTTP_503);
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	t = target(3, &s, SL_HC_HTTP, 100, 100, 2, 2, 1);
	cr_assert_eq(sl_health_sync(l.h, &t, 1), 0);
	pump(&l, 1000, 1, NULL, NULL);
	cr_assert_eq(l.rec.n, 1);
	cr_expect_eq(l.rec.ev[0].healthy, 0);
	cr_expect_str_eq(l.rec.ev[0].why, "HTTP 503");
	cr_expect_eq(l.rec.ev[0].st.failed, 2);
	cr_expect_eq(l.rec.ev[0].st.ok, 0);
	srv_close(&s);
	loop_fini(&l);
}

Test(health, http_no_answer_times_out)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t;
	uint64_t start, took;
	int fds;

	srv_init(&s, SRV_SILENT, NULL);
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	fds = count_fds();
	t = target(4, &s, SL_HC_HTTP, 5000, 300, 1, 1, 1);
	start = mono_ms();
	cr_assert_eq(sl_health_sync(l.h, &t, 1), 0);
	pump(&l, 100, 0, NULL, NULL);
	cr_expect_eq(count_fds(), fds + 1, "one probe socket in flight");
	pump(&l, 2000, 1, NULL, NULL);
	took = mono_ms() - start;
	cr_assert_eq(l.rec.n, 1, "no timeout within 2 s");
	cr_expect_eq(l.rec.ev[0].healthy, 0);
	cr_expect_str_eq(l.rec.ev[0].why, "timeout");
	cr_expect(took >= 290 && took <= 800, "timed out after %lu ms (timeout 300)",
		  (unsigned long)took);
	cr_expect_eq(count_fds(), fds, "the probe socket is closed");
	srv_close(&s);
	loop_fini(&l);
}

Test(health, http_bad_responses_and_partial_reads)
{
	static const struct {
		enum srv_mode mode;
		const char *resp;
		int healthy;
		const char *why;
	} cases[] = {
	    {SRV_HTTP, "garbage\r\n", 0, "bad response"},
	    {SRV_HTTP, "HTTP/1.1 2000 OK\r\n\r\n", 0, "bad response"},
	    {SRV_HTTP, "HTTP/1.1 20 OK\r\n\r\n", 0, "bad response"},
	    {SRV_HTTP, "HTTP/1.1 200", 0, "bad response"}, /* closed mid status line */
	    {SRV_HTTP, "", 0, "bad response"},		   /* closed without a byte */
	    {SRV_HOLD, NULL, 0, "bad response"},	   /* 2 KiB without a newline */
	    {SRV_HTTP, "HTTP/1.0 204 No Content\n\n", 1, "ok"},
	    {SRV_SLOW, HTTP_200, 1, "ok"}, /* one byte per tick */
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	static char longline[2048 + 16];
	struct srv s[N];
	struct sl_hc_target t[N];
	struct loop l;
	uint64_t start = mono_ms();

	memcpy(longline, "HTTP/1.1 200 ", 13);
	memset(longline + 13, 'x', 2048);
	cr_assert_eq(loop_init(&l), 0);
	for (int i = 0; i < N; i++) {
		srv_init(&s[i], cases[i].mode, cases[i].resp ? cases[i].resp : longline);
		cr_assert_eq(srv_listen(&l, &s[i], AF_INET, 0), 0);
		/* unhealthy_threshold 1 and a start that makes the outcome a change */
		t[i] = target(100 + (uint32_t)i, &s[i], SL_HC_HTTP, 5000, 1500, 1, 1,
			      !cases[i].healthy);
	}
	cr_assert_eq(sl_health_sync(l.h, t, N), 0);
	pump(&l, 1400, N, drip, &s[N - 1]);
	cr_expect_lt(mono_ms() - start, 1400, "each case decided before the timeout");
	for (int i = 0; i < N; i++) {
		int healthy = -1;
		const char *why = "(none)";

		cr_expect_not_null(find_rec(&l.rec, 100 + (uint32_t)i, 0, &healthy, &why),
				   "case %d: no change", i);
		cr_expect_eq(healthy, cases[i].healthy, "case %d", i);
		cr_expect_str_eq(why, cases[i].why, "case %d", i);
	}
	cr_expect_gt(s[N - 1].accepted, 0);
	for (int i = 0; i < N; i++)
		srv_close(&s[i]);
	loop_fini(&l);
}

Test(health, ipv6_loopback)
{
	struct loop l;
	struct srv tcp, http;
	struct sl_hc_target t[2];
	int healthy;
	const char *why;
	char want[64];

	srv_init(&tcp, SRV_CLOSE, NULL);
	srv_init(&http, SRV_HTTP, HTTP_200);
	cr_assert_eq(loop_init(&l), 0);
	if (srv_listen(&l, &tcp, AF_INET6, 0))
		cr_skip_test("cannot listen on [::1] (IPv6 off?): %s", strerror(errno));
	cr_assert_eq(srv_listen(&l, &http, AF_INET6, 0), 0);
	t[0] = target(61, &tcp, SL_HC_TCP, 1000, 500, 2, 2, 0);
	t[1] = target(62, &http, SL_HC_HTTP, 1000, 500, 2, 2, 0);
	cr_assert_eq(sl_health_sync(l.h, t, 2), 0);
	pump(&l, 1000, 2, NULL, NULL);
	cr_assert_eq(l.rec.n, 2);
	cr_expect_not_null(find_rec(&l.rec, 61, 0, &healthy, &why));
	cr_expect_eq(healthy, 1);
	cr_expect_not_null(find_rec(&l.rec, 62, 0, &healthy, &why));
	cr_expect_eq(healthy, 1);
	snprintf(want, sizeof(want), "Host: [::1]:%u\r\n", http.port);
	cr_expect_not_null(strstr(http.last_req, want), "request: %s", http.last_req);
	srv_close(&tcp);
	srv_close(&http);
	loop_fini(&l);
}

Test(health, sync_keeps_changes_and_drops)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t[3], u[3];
	struct sl_hc_stats st1, st2, st, st4;
	uint64_t synced;

	srv_init(&s, SRV_CLOSE, NULL);
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	for (uint32_t i = 0; i < 3; i++)
		t[i] = target(i + 1, &s, SL_HC_TCP, 300, 200, 1, 2, 0);
	cr_assert_eq(sl_health_sync(l.h, t, 3), 0);
	pump(&l, 1000, 3, NULL, NULL);
	cr_assert_eq(l.rec.n, 3, "all three healthy");
	pump(&l, 100, 0, NULL, NULL);
	cr_assert_eq(sl_health_stats(l.h, 1, &st1), 0);
	cr_assert_eq(sl_health_stats(l.h, 2, &st2), 0);

	/* 1 unchanged, 2 changed (interval), 3 gone, 4 new; in another order. */
	u[0] = target(4, &s, SL_HC_TCP, 300, 200, 1, 2, 0);
	u[1] = t[0];
	u[2] = t[1];
	u[2].cfg.interval_ms = 400;
	synced = mono_ms();
	cr_assert_eq(sl_health_sync(l.h, u, 3), 0);
	cr_expect_eq(sl_health_stats(l.h, 3, &st), -ENOENT, "3 is gone");
	cr_assert_eq(sl_health_stats(l.h, 1, &st), 0);
	cr_expect(st.ok == st1.ok && st.healthy == 1 && st.last_probe_ms == st1.last_probe_ms,
		  "1 kept as it was");
	cr_assert_eq(sl_health_stats(l.h, 2, &st), 0);
	cr_expect(st.healthy == 1 && st.ok == st2.ok, "2 keeps its state and counters");
	cr_assert_eq(sl_health_stats(l.h, 4, &st4), 0);
	cr_expect_eq(st4.healthy, 0);
	cr_expect_eq(st4.ok, 0);

	/* 2 and 4 are probed at once; 1 keeps its schedule (last probe < 300 ms ago). */
	pump(&l, 60, 0, NULL, NULL);
	cr_assert_eq(sl_health_stats(l.h, 2, &st), 0);
	cr_expect_eq(st.ok, st2.ok + 1, "the changed target restarts: probed at once");
	cr_expect_geq(st.last_probe_ms, synced);
	cr_assert_eq(sl_health_stats(l.h, 4, &st4), 0);
	cr_expect_eq(st4.ok, 1, "the new target is probed at once");
	cr_expect_eq(st4.healthy, 1);
	cr_expect_eq(l.rec.n, 4, "only 4 changed");
	srv_close(&s);
	loop_fini(&l);
}

Test(health, sync_closes_probes_and_fails_whole)
{
	struct loop l;
	struct srv s;
	struct sl_hc_target t[3], dup[2];
	struct sl_hc_stats st;
	int base;

	srv_init(&s, SRV_SILENT, NULL);
	base = count_fds();
	cr_assert_eq(loop_init(&l), 0);
	cr_assert_eq(srv_listen(&l, &s, AF_INET, 0), 0);
	base += 3; /* the loop's epoll, the checker's epoll and timerfd; + 1: the listener */
	cr_assert_eq(count_fds(), base + 1);
	for (uint32_t i = 0; i < 3; i++)
		t[i] = target(i + 1, &s, SL_HC_HTTP, 10000, 5000, 1, 1, 1);
	cr_assert_eq(sl_health_sync(l.h, t, 3), 0);
	pump(&l, 50, 0, NULL, NULL);
	cr_expect_eq(count_fds(), base + 1 + 3, "three probes in flight");

	/* A set with one be_id twice is refused; the old set stays. */
	dup[0] = t[0];
	dup[1] = t[0];
	cr_expect_eq(sl_health_sync(l.h, dup, 2), -EINVAL);
	for (uint32_t i = 1; i <= 3; i++)
		cr_expect_eq(sl_health_stats(l.h, i, &st), 0);
	cr_expect_eq(count_fds(), base + 1 + 3);

	/* Drop two: their sockets close at once. */
	cr_assert_eq(sl_health_sync(l.h, t, 1), 0);
	cr_expect_eq(count_fds(), base + 1 + 1);
	cr_assert_eq(sl_health_sync(l.h, NULL, 0), 0);
	cr_expect_eq(count_fds(), base + 1);
	pump(&l, 50, 0, NULL, NULL);
	cr_expect_eq(count_fds(), base + 1);
	cr_expect_eq(l.rec.n, 0, "no probe ended, no change");
	srv_close(&s);
	loop_fini(&l);
	cr_expect_eq(count_fds(), base - 3, "back to the start");
}

#define SCALE_N	       500
#define SCALE_SRVS     5
#define SCALE_INTERVAL 200
#define SCALE_RUN      2000

struct scale_watch {
	struct sl_health *h;
	uint64_t last[SCALE_N];
	uint64_t min_gap, gaps, gap_sum;
};

static void scale_watch(struct loop *l, void *arg)
{
	struct scale_watch *w = arg;
	struct sl_hc_stats st;

	(void)l;
	for (uint32_t i = 0; i < SCALE_N; i++) {
		if (sl_health_stats(w->h, i + 1, &st) || st.last_probe_ms == w->last[i])
			continue;
		if (w->last[i]) {
			uint64_t gap = st.last_probe_ms - w->last[i];

			if (gap < w->min_gap)
				w->min_gap = gap;
			w->gaps++;
			w->gap_sum += gap;
		}
		w->last[i] = st.last_probe_ms;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

Test(health, scale_500_targets_keep_their_interval)
{
	static struct scale_watch w;
	static struct sl_hc_target t[SCALE_N];
	struct srv s[SCALE_SRVS];
	struct loop l;
	struct sl_hc_stats st;
	uint64_t lo = UINT64_MAX, hi = 0, distinct = 0;

	cr_assert_eq(loop_init(&l), 0);
	for (int i = 0; i < SCALE_SRVS; i++) {
		srv_init(&s[i], SRV_CLOSE, NULL);
		cr_assert_eq(srv_listen(&l, &s[i], AF_INET, 0), 0);
	}
	for (uint32_t i = 0; i < SCALE_N; i++)
		t[i] = target(i + 1, &s[i % SCALE_SRVS], SL_HC_TCP, SCALE_INTERVAL, 150, 2, 3, 0);
	memset(&w, 0, sizeof(w));
	w.h = l.h;
	w.min_gap = UINT64_MAX;
	cr_assert_eq(sl_health_sync(l.h, t, SCALE_N), 0);
	pump(&l, SCALE_RUN, 0, scale_watch, &w);

	for (uint32_t i = 0; i < SCALE_N; i++) {
		cr_assert_eq(sl_health_stats(l.h, i + 1, &st), 0);
		cr_expect_eq(st.failed, 0, "target %u: %lu failures", i + 1,
			     (unsigned long)st.failed);
		cr_expect_eq(st.healthy, 1);
		if (st.ok < lo)
			lo = st.ok;
		if (st.ok > hi)
			hi = st.ok;
		w.last[i] = st.last_probe_ms;
	}
	/* One at once, then one every 200 ms +-10%: 10 or 11 in 2 s. */
	cr_expect(lo >= 10 - 3 && hi <= 11 + 3, "probes per target in [%lu, %lu]",
		  (unsigned long)lo, (unsigned long)hi);
	/* A probe the loop ran late is followed by one on schedule: a gap can be short by the
	 * lateness (load), but never near 0 (a target probed twice). */
	cr_expect_geq(w.min_gap, SCALE_INTERVAL / 4, "two probes %lu ms apart",
		      (unsigned long)w.min_gap);
	cr_assert_gt(w.gaps, 0);
	cr_expect(w.gap_sum / w.gaps >= 180 && w.gap_sum / w.gaps <= 230, "mean gap %lu ms",
		  (unsigned long)(w.gap_sum / w.gaps));
	/* Jitter: the targets, all added at once, no longer probe in lockstep. */
	qsort(w.last, SCALE_N, sizeof(w.last[0]), cmp_u64);
	for (uint32_t i = 0; i < SCALE_N; i++)
		distinct += !i || w.last[i] != w.last[i - 1];
	cr_expect_gt(distinct, 40, "last probes at only %lu distinct ms", (unsigned long)distinct);
	for (int i = 0; i < SCALE_SRVS; i++)
		srv_close(&s[i]);
	loop_fini(&l);
}
