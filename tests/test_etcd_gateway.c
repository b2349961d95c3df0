// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client against a fake JSON gateway that answers canned bodies: the error and
 * malformed replies a real etcd rarely gives (200 without a lease ID, 200 with text that is
 * not JSON, 4xx/5xx with an error object, a body cut short). The client must count and log
 * them, retry or drop as its header says, and never touch freed memory (run under SAN=1).
 *
 * The gateway is a thread of the test on 127.0.0.1 (an ephemeral port): one request per
 * connection ("Connection: close"), answered from a table of path -> raw HTTP response, and
 * a count of requests per path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "etcd.h"

#define PREFIX	   "/sluice/"
#define GW_ROUTES  8
#define GW_LIFE_MS 30000 /* the gateway thread ends after this, whatever happens */

struct gw_route {
	const char *path;
	int code;
	const char *body;
	long clen; /* >= 0: this Content-Length instead of the body's (a truncated reply) */
};

struct gw {
	int lfd, stop[2];
	pthread_t th;
	int started;
	struct gw_route routes[GW_ROUTES];
	atomic_uint hits[GW_ROUTES];
	char url[64];
};

static struct gw gw = {.lfd = -1, .stop = {-1, -1}};
static struct sl_etcd *cli;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* The request's path, its body read and dropped. 0, or -1. */
static int gw_read(int fd, char *path, size_t path_len)
{
	char buf[16384], *end, *cl;
	size_t len = 0, clen, have;

	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (len == sizeof(buf) - 1)
			return -1;
	}
	if (path_len < 128 || sscanf(buf, "POST %127s", path) != 1)
		return -1;
	cl = strcasestr(buf, "Content-Length:");
	clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
	for (have = len - (size_t)(end + 4 - buf); have < clen;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

static void gw_answer(int fd, const char *path)
{
	static const struct gw_route none = {NULL, 404, "{\"error\":\"no route\",\"code\":5}", -1};
	const struct gw_route *r = &none;
	char head[256];
	size_t i;

	for (i = 0; i < GW_ROUTES && gw.routes[i].path; i++)
		if (!strcmp(gw.routes[i].path, path)) {
			r = &gw.routes[i];
			atomic_fetch_add(&gw.hits[i], 1);
			break;
		}
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nConnection: close\r\n"
		 "Content-Length: %ld\r\n\r\n",
		 r->code, r->clen >= 0 ? r->clen : (long)strlen(r->body));
	if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0 ||
	    send(fd, r->body, strlen(r->body), MSG_NOSIGNAL) < 0)
		return; /* the client went: nothing to tell */
}

static void *gw_main(void *arg)
{
	struct pollfd p[2] = {{.fd = gw.lfd, .events = POLLIN},
			      {.fd = gw.stop[0], .events = POLLIN}};
	struct timeval tv = {2, 0};
	uint64_t end = mono_ms() + GW_LIFE_MS;

	(void)arg;
	while (mono_ms() < end) {
		char path[128];
		int fd;

		if (poll(p, 2, 100) < 0 || p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(gw.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (!setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) &&
		    !gw_read(fd, path, sizeof(path)))
			gw_answer(fd, path);
		close(fd);
	}
	return NULL;
}

/* Listen on 127.0.0.1 and serve gw.routes (set them first). 0, or -1. */
static int gw_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	gw.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (gw.lfd < 0 || bind(gw.lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(gw.lfd, 16) ||
	    getsockname(gw.lfd, (struct sockaddr *)&sa, &len) || pipe2(gw.stop, O_CLOEXEC))
		return -1;
	snprintf(gw.url, sizeof(gw.url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
	if (pthread_create(&gw.th, NULL, gw_main, NULL))
		return -1;
	gw.started = 1;
	return 0;
}

static void teardown(void)
{
	sl_etcd_close(cli);
	cli = NULL;
	if (gw.started) {
		if (write(gw.stop[1], "x", 1) != 1)
			pthread_cancel(gw.th);
		pthread_join(gw.th, NULL);
	}
	gw.started = 0;
	if (gw.lfd >= 0)
		close(gw.lfd);
	if (gw.stop[0] >= 0) {
		close(gw.stop[0]);
		close(gw.stop[1]);
	}
	gw.lfd = gw.stop[0] = gw.stop[1] = -1;
}

static unsigned int hits(const char *path)
{
	size_t i;

	for (i = 0; i < GW_ROUTES && gw.routes[i].path; i++)
		if (!strcmp(gw.routes[i].path, path))
			return atomic_load(&gw.hits[i]);
	return 0;
}

static struct sl_etcd *open_client(void)
{
	/* Long enough for a few retries even under valgrind. */
	struct sl_etcd_opts o = {.write_retry_ms = 1500, .request_timeout_ms = 1000};
	const char *eps[] = {gw.url};
	char err[256] = "";
	struct sl_etcd *e = sl_etcd_open_opts(eps, 1, PREFIX, &o, err, sizeof(err));

	if (!e)
		cr_log_error("open: %s", err);
	return e;
}

/* Wait until n writes are done or dropped and none is queued (8 s at most). */
static void wait_writes(struct sl_etcd_stats *st, uint64_t n)
{
	uint64_t end = mono_ms() + 8000;

	do {
		sl_etcd_get_stats(cli, st);
		if (st->writes + st->writes_dropped >= n && !st->queued)
			return;
		sleep_ms(10);
	} while (mono_ms() < end);
}

/* The read side is kept away (503), so that only the writes talk to the gateway. */
#define READ_AWAY                                                                                  \
	{                                                                                          \
		"/v3/kv/range", 503, "{\"error\":\"away\",\"code\":14}", -1                        \
	}

static void set_routes(const struct gw_route *r, size_t n)
{
	size_t i;

	cr_assert_leq(n, GW_ROUTES - 1);
	for (i = 0; i < n; i++)
		gw.routes[i] = r[i];
}

#define ROUTES(...)                                                                                \
	do {                                                                                       \
		static const struct gw_route r_[] = {READ_AWAY, __VA_ARGS__};                      \
		set_routes(r_, sizeof(r_) / sizeof(r_[0]));                                        \
		cr_assert_eq(gw_start(), 0, "fake gateway: %s", strerror(errno));                  \
		cli = open_client();                                                               \
		cr_assert_not_null(cli);                                                           \
	} while (0)

/* The lease grant answers 200 with an error and no ID: the put is dropped at once, and the
 * log line quotes the gateway's error (read after the reply was freed, before the fix). */
Test(etcd_gateway, grant_200_error_without_id, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES(
	    {"/v3/lease/grant", 200, "{\"error\":\"etcdserver: too many leases\",\"code\":8}", -1},
	    {"/v3/kv/put", 200, "{\"header\":{}}", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 5), 0);
	wait_writes(&st, 1);
	cr_expect(st.writes_dropped == 1 && st.writes == 0, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_eq(hits("/v3/lease/grant"), 1, "a grant without ID is not retried");
	cr_expect_eq(hits("/v3/kv/put"), 0, "put without a lease");
}

/* No error text at all: dropped the same way. */
Test(etcd_gateway, grant_200_without_id, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES({"/v3/lease/grant", 200, "{\"header\":{\"revision\":\"3\"}}", -1},
	       {"/v3/kv/put", 200, "{\"header\":{}}", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 5), 0);
	wait_writes(&st, 1);
	cr_expect(st.writes_dropped == 1 && st.writes == 0, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_eq(hits("/v3/lease/grant"), 1);
	cr_expect_eq(hits("/v3/kv/put"), 0);
}

/* 200 with a body that is not JSON: retried as a gateway fault, then dropped. */
Test(etcd_gateway, put_200_not_json, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES({"/v3/kv/put", 200, "<html>oops</html>", -1},
	       {"/v3/lease/grant", 200, "{\"ID\":", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 0), 0);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "b", "1", 5), 0);
	wait_writes(&st, 2);
	cr_expect(st.writes_dropped == 2 && st.writes == 0, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_geq(hits("/v3/kv/put"), 2, "not retried");
	/* The grant ran after the put's window: its first failure drops it. */
	cr_expect_eq(hits("/v3/lease/grant"), 1);
}

/* 4xx with an error object: dropped at once. 5xx: retried, then dropped. */
Test(etcd_gateway, http_errors, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES(
	    {"/v3/kv/put", 400, "{\"error\":\"etcdserver: key is not provided\",\"code\":3}", -1},
	    {"/v3/kv/deleterange", 500,
	     "{\"error\":\"etcdserver: request timed out\",\"code\":14,\"message\":\"x\"}", -1},
	    {"/v3/lease/keepalive", 429, "{\"error\":{\"grpc_code\":8}}", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 0), 0);
	wait_writes(&st, 1);
	cr_expect_eq(st.writes_dropped, 1);
	cr_expect_eq(hits("/v3/kv/put"), 1, "a 4xx was retried");
	cr_assert_eq(sl_etcd_delete(cli, PREFIX "a"), 0);
	wait_writes(&st, 2);
	cr_expect_eq(st.writes_dropped, 2);
	cr_expect_geq(hits("/v3/kv/deleterange"), 2, "a 5xx was not retried");
	cr_expect_eq(st.writes, 0);
}

/* A reply cut short (Content-Length beyond the body, then close): retried, then dropped. */
Test(etcd_gateway, truncated_reply, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES({"/v3/kv/put", 200, "{\"header\":{\"rev", 200},
	       {"/v3/lease/grant", 200, "{\"ID\":\"7\",\"TTL\":\"5\"}", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 5), 0);
	wait_writes(&st, 1);
	cr_expect(st.writes_dropped == 1 && st.writes == 0, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_geq(hits("/v3/kv/put"), 2, "not retried");
}

/* The good path through the same gateway, and a keepalive answer without TTL (the lease is
 * gone): granted again and put again. */
Test(etcd_gateway, keepalive_without_ttl, .fini = teardown)
{
	struct sl_etcd_stats st;

	ROUTES({"/v3/lease/grant", 200, "{\"ID\":\"7\",\"TTL\":\"5\"}", -1},
	       {"/v3/kv/put", 200, "{\"header\":{\"revision\":\"2\"}}", -1},
	       {"/v3/lease/keepalive", 200, "{\"result\":{\"ID\":\"7\"}}", -1});
	cr_assert_eq(sl_etcd_put(cli, PREFIX "a", "1", 5), 0);
	wait_writes(&st, 1);
	cr_expect_eq(st.writes, 1);
	cr_assert_eq(sl_etcd_refresh(cli, PREFIX "a"), 0);
	wait_writes(&st, 2);
	cr_expect(st.writes == 2 && !st.writes_dropped, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_eq(hits("/v3/lease/keepalive"), 1);
	cr_expect_eq(hits("/v3/lease/grant"), 2, "no new grant for a lost lease");
	cr_expect_eq(hits("/v3/kv/put"), 2, "the key was not put again");
}

/* ---- the read side: every malformed reply is a read failure, never a snapshot ---- */

struct read_case {
	const char *name;
	struct gw_route range, watch;
	int snapshot; /* the range is good: an (empty) snapshot is published */
};

#define RANGE_OK                                                                                   \
	{                                                                                          \
		"/v3/kv/range", 200, "{\"header\":{\"revision\":\"5\"}}", -1                       \
	}

static const struct read_case read_cases[] = {
    {"range not JSON", {"/v3/kv/range", 200, "not json", -1}, {NULL, 0, NULL, -1}, 0},
    {"range without header", {"/v3/kv/range", 200, "{\"kvs\":[]}", -1}, {NULL, 0, NULL, -1}, 0},
    {"kvs not an array",
     {"/v3/kv/range", 200, "{\"header\":{},\"kvs\":{\"key\":\"YQ==\"}}", -1},
     {NULL, 0, NULL, -1},
     0},
    {"bad base64 key",
     {"/v3/kv/range", 200, "{\"header\":{},\"kvs\":[{\"key\":\"L3Nsd!\",\"value\":\"\"}]}", -1},
     {NULL, 0, NULL, -1},
     0},
    {"range truncated", {"/v3/kv/range", 200, "{\"header\":{", 100}, {NULL, 0, NULL, -1}, 0},
    {"range 500",
     {"/v3/kv/range", 500, "{\"error\":\"boom\",\"code\":2}", -1},
     {NULL, 0, NULL, -1},
     0},
    {"watch error object",
     RANGE_OK,
     {"/v3/watch", 200, "{\"error\":{\"grpc_code\":14,\"message\":\"no leader\"}}\n", -1},
     1},
    {"watch garbage", RANGE_OK, {"/v3/watch", 200, "hello\n", -1}, 1},
    {"watch canceled",
     RANGE_OK,
     {"/v3/watch", 200, "{\"result\":{\"header\":{},\"canceled\":true}}\n", -1},
     1},
    {"watch bad event",
     RANGE_OK,
     {"/v3/watch", 200,
      "{\"result\":{\"header\":{},\"created\":true}}{\"result\":{\"events\":[{\"type\":"
      "\"PUT\",\"kv\":{\"key\":7}}]}}",
      -1},
     1},
    {"watch truncated", RANGE_OK, {"/v3/watch", 200, "{\"result\":{\"crea", 300}, 1},
};

/* Serve one case until the client failed three times. 0 if it behaved, else -1 and why. */
static int read_case_run(const struct read_case *c, char *why, size_t why_len)
{
	struct sl_etcd_kv *kvs = NULL;
	struct sl_etcd_stats st = {0};
	uint64_t end;
	int conn = 0, r = -1, took;
	size_t n = 0;

	memset(&gw, 0, sizeof(gw));
	gw.lfd = gw.stop[0] = gw.stop[1] = -1;
	gw.routes[0] = c->range;
	gw.routes[1] = c->watch;
	snprintf(why, why_len, "%s: no gateway or client", c->name);
	if (gw_start() || !(cli = open_client()))
		goto out;
	end = mono_ms() + 5000;
	do {
		sleep_ms(20);
		sl_etcd_get_stats(cli, &st);
	} while (st.read_failures < 3 && mono_ms() < end);
	took = sl_etcd_take(cli, &kvs, &n, &conn);
	snprintf(why, why_len, "%s: failures=%llu ranges=%llu take=%d n=%zu", c->name,
		 (unsigned long long)st.read_failures, (unsigned long long)st.ranges, took, n);
	if (st.read_failures >= 3 && took == c->snapshot && !n && (st.ranges > 0) == c->snapshot)
		r = 0;
	sl_etcd_kvs_free(kvs, n);
out:
	teardown();
	return r;
}

Test(etcd_gateway, read_error_bodies, .fini = teardown)
{
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++)
		cr_expect_eq(read_case_run(&read_cases[i], why, sizeof(why)), 0, "%s", why);
}
