// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client (etcd.c) against a real etcd on 127.0.0.1 (etcd_fixture.c: random free
 * client and peer ports, a temporary data dir; killed and removed by .fini, pass or fail, and
 * PR_SET_PDEATHSIG if the test process dies), with etcdctl as the other client. One test
 * uses a scripted fake gateway instead, to split and pack watch messages and to cancel a
 * watch for compaction. Tests skip when etcd or etcdctl is not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "etcd.h"
#include "etcd_fixture.h"

#define PREFIX "/sluice/"

/* Fixture state: each test runs in its own process. */
static struct etf srv = {.pid = -1, .janitor_pid = -1, .janitor_fd = -1};
static struct sl_etcd *cli;
static int have_tools, started;
static pid_t fake_pid = -1;

#define mono_ms	   etf_ms
#define sleep_ms   etf_sleep_ms
#define free_ports etf_free_ports

static int etcdctl(const char *cmd, const char *a, const char *b)
{
	const char *args[] = {cmd, a, b, NULL};

	return etf_ctl(&srv, args);
}

static int etcd_start(void)
{
	return etf_start(&srv);
}

static void etcd_kill(void)
{
	etf_kill(&srv);
}

static void set_client_port(int port)
{
	etf_set_client_port(&srv, port);
}

static void setup(void)
{
	have_tools = etf_in_path("etcd") && etf_in_path("etcdctl");
	if (have_tools && !etf_init(&srv, 0))
		started = !etf_start(&srv);
}

static void teardown(void)
{
	sl_etcd_close(cli);
	cli = NULL;
	if (fake_pid > 0) {
		kill(fake_pid, SIGKILL);
		waitpid(fake_pid, NULL, 0);
	}
	etf_fini(&srv);
}

/* The counters, once the worker has done at least 'watches' watches and 'writes' writes
 * (it counts a write after its effect may already show in the watch), or after 1 s. */
static void stats_after(struct sl_etcd_stats *st, uint64_t watches, uint64_t writes)
{
	uint64_t end = mono_ms() + 1000;

	do {
		sl_etcd_get_stats(cli, st);
		if (st->watches >= watches && st->writes >= writes)
			return;
		sleep_ms(10);
	} while (mono_ms() < end);
}

static struct sl_etcd *open_client(const char *url, const struct sl_etcd_opts *opts)
{
	const char *eps[] = {url};
	char err[256] = "";
	struct sl_etcd *e = sl_etcd_open_opts(eps, 1, PREFIX, opts, err, sizeof(err));

	if (!e)
		cr_log_error("open: %s", err);
	return e;
}

#define NEED_ETCD()                                                                                \
	do {                                                                                       \
		if (!have_tools)                                                                   \
			cr_skip_test("etcd or etcdctl not installed (apt-get install etcd-server " \
				     "etcd-client)");                                              \
		cr_assert(started, "etcd did not start; see %s/etcd.log", srv.dir);                \
	} while (0)

Test(etcd, base64)
{
	static const struct {
		const char *plain, *enc;
	} cases[] = {{"", ""},
		     {"f", "Zg=="},
		     {"fo", "Zm8="},
		     {"foo", "Zm9v"},
		     {"foob", "Zm9vYg=="},
		     {"/sluice/", "L3NsdWljZS8="},
		     {"\xff\xfe", "//4="}};
	static const char *const bad[] = {
	    "Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm9v!A==", "=Zm9", "Zg==Zg=="};
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc = sl_etcd_b64_encode(cases[i].plain, strlen(cases[i].plain));
		char *dec = sl_etcd_b64_decode(cases[i].enc, strlen(cases[i].enc), &n);

		cr_expect_str_eq(enc, cases[i].enc);
		cr_expect(dec && n == strlen(cases[i].plain) && !memcmp(dec, cases[i].plain, n),
			  "decode %s", cases[i].enc);
		free(enc);
		free(dec);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec = sl_etcd_b64_decode(bad[i], strlen(bad[i]), &n);

		cr_expect_null(dec, "accepted %s", bad[i]);
		free(dec);
	}
}

Test(etcd, bad_arguments)
{
	const char *ok[] = {"http://127.0.0.1:1"}, *bad[] = {"127.0.0.1:2379"},
		   *empty[] = {"http://"}, *null[] = {NULL};
	char err[128];

	err[0] = '\0';
	cr_expect_null(sl_etcd_open(NULL, 0, PREFIX, err, sizeof(err)));
	cr_expect(err[0], "no message");
	cr_expect_null(sl_etcd_open(ok, 0, PREFIX, err, sizeof(err)));
	cr_expect_null(sl_etcd_open(ok, 1, NULL, err, sizeof(err)));
	cr_expect_null(sl_etcd_open(bad, 1, PREFIX, err, sizeof(err)));
	cr_expect(strstr(err, "127.0.0.1:2379"), "message names the endpoint: %s", err);
	cr_expect_null(sl_etcd_open(empty, 1, PREFIX, err, sizeof(err)));
	cr_expect_null(sl_etcd_open(null, 1, PREFIX, err, sizeof(err)));
}

/* Nothing listens: open and the calls return at once, nothing is published, writes queue,
 * close joins quickly and drops them. */
Test(etcd, unreachable_close_fast)
{
	struct sl_etcd_opts o = {.write_retry_ms = 300};
	struct sl_etcd_stats st;
	struct view v = {0};
	char url[64];
	uint64_t t0;
	int a, b;

	cr_assert_eq(free_ports(&a, &b), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", a);
	t0 = mono_ms();
	cli = open_client(url, &o);
	cr_assert_not_null(cli);
	cr_expect_eq(sl_etcd_put(cli, PREFIX "x", "1", 0), 0);
	cr_expect_eq(sl_etcd_put(cli, PREFIX "y", "1", 5), 0);
	cr_expect_eq(sl_etcd_refresh(cli, PREFIX "y"), 0);
	cr_expect_eq(sl_etcd_refresh(cli, PREFIX "x"), -ENOENT);
	cr_expect_eq(sl_etcd_put(cli, "", "1", 0), -EINVAL);
	cr_expect_lt(mono_ms() - t0, 100, "the API blocked");
	cr_expect_eq(wait_for(cli, &v, 1, NULL, 600), -ETIMEDOUT);
	cr_expect_eq(v.takes, 0);
	cr_expect_eq(v.connected, 0);
	/* Dropped at the first failure after 300 ms: within the backoff after that. */
	for (t0 = mono_ms(); mono_ms() - t0 < 2000; sleep_ms(10)) {
		sl_etcd_get_stats(cli, &st);
		if (st.writes_dropped == 3)
			break;
	}
	cr_expect(st.read_failures >= 2 && st.writes_dropped == 3 && !st.queued && !st.writes,
		  "failures=%llu dropped=%llu", (unsigned long long)st.read_failures,
		  (unsigned long long)st.writes_dropped);
	t0 = mono_ms();
	sl_etcd_close(cli);
	cli = NULL;
	cr_expect_lt(mono_ms() - t0, 1000, "close took %llu ms",
		     (unsigned long long)(mono_ms() - t0));
}

Test(etcd, initial_snapshot, .init = setup, .fini = teardown)
{
	struct view v = {0};
	uint64_t t0;

	NEED_ETCD();
	cr_assert_eq(etcdctl("put", PREFIX "svc/web", "{\"port\": 80}"), 0);
	cr_assert_eq(etcdctl("put", PREFIX "svc/db", "x"), 0);
	cr_assert_eq(etcdctl("put", "/sluice0", "outside: the prefix's range end"), 0);
	cr_assert_eq(etcdctl("put", "/other/k", "outside"), 0);
	cli = open_client(srv.url, NULL);
	cr_assert_not_null(cli);
	cr_assert_eq(
	    wait_for(cli, &v, 1, W(PREFIX "svc/db=x", PREFIX "svc/web={\"port\": 80}"), 3000), 0,
	    "n=%zu connected=%d", v.n, v.connected);
	cr_expect_str_eq(v.kvs[0].key, PREFIX "svc/db", "sorted by key");
	cr_expect_gt(v.kvs[0].mod_revision, 0);
	cr_expect_eq(v.kvs[0].lease, 0);
	cr_expect_eq(view_take(cli, &v), 0, "unchanged snapshot reported again");
	t0 = mono_ms();
	sl_etcd_close(cli);
	cli = NULL;
	cr_expect_lt(mono_ms() - t0, 1000, "close with a live watch took %llu ms",
		     (unsigned long long)(mono_ms() - t0));
	view_free(&v);
}

Test(etcd, watch_put_delete, .init = setup, .fini = teardown)
{
	struct view v = {0};
	struct sl_etcd_stats st;
	const char *odd = "line1\nline2 \"q\" {}\xc3\xa9";
	char want_odd[128];

	NEED_ETCD();
	cli = open_client(srv.url, NULL);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, NONE, 3000), 0);

	cr_assert_eq(etcdctl("put", PREFIX "a", "1"), 0);
	cr_assert_eq(etcdctl("put", "/other/a", "1"), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "a=1"), 1000), 0, "put not seen within 1 s");
	cr_assert_eq(etcdctl("put", PREFIX "a", "2"), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "a=2"), 1000), 0, "update not seen within 1 s");
	cr_assert_eq(etcdctl("del", PREFIX "a", NULL), 0);
	cr_expect_eq(wait_for(cli, &v, 1, NONE, 1000), 0, "delete not seen within 1 s");

	/* Our own writes go through the same watch. */
	snprintf(want_odd, sizeof(want_odd), PREFIX "odd=%s", odd);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "odd", odd, 0), 0);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "b", "", 0), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(want_odd, PREFIX "b="), 1000), 0);
	cr_assert_eq(sl_etcd_delete(cli, PREFIX "odd"), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "b="), 1000), 0);
	stats_after(&st, 1, 3);
	cr_expect(st.ranges == 1 && st.watches == 1 && !st.read_failures,
		  "the watch was redone: ranges=%llu watches=%llu failures=%llu",
		  (unsigned long long)st.ranges, (unsigned long long)st.watches,
		  (unsigned long long)st.read_failures);
	cr_expect_eq(st.writes, 3);
	view_free(&v);
}

Test(etcd, lease_expiry_and_refresh, .init = setup, .fini = teardown)
{
	struct view v = {0};
	uint64_t t0, next;
	const struct sl_etcd_kv *kv;

	NEED_ETCD();
	cli = open_client(srv.url, NULL);
	cr_assert_not_null(cli);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "gone", "1", 2), 0);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "kept", "1", 2), 0);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "gone=1", PREFIX "kept=1"), 3000), 0);
	kv = view_get(&v, PREFIX "gone");
	cr_expect_neq(kv->lease, 0, "no lease on the key");
	t0 = next = mono_ms();
	/* Refresh only 'kept', every 500 ms: 'gone' expires (TTL 2 s), 'kept' stays. */
	while (mono_ms() - t0 < 5000 && view_get(&v, PREFIX "gone")) {
		if (mono_ms() >= next) {
			cr_assert_eq(sl_etcd_refresh(cli, PREFIX "kept"), 0);
			next += 500;
		}
		wait_for(cli, &v, -1, W(PREFIX "kept=1"), 100);
	}
	cr_expect_null(view_get(&v, PREFIX "gone"), "the lease did not expire within 5 s");
	cr_expect_geq(mono_ms() - t0, 1500, "expired too early");
	/* Well past the 2 s TTL of 'kept' (refreshed meanwhile). */
	while (mono_ms() - t0 < 3500) {
		if (mono_ms() >= next) {
			cr_assert_eq(sl_etcd_refresh(cli, PREFIX "kept"), 0);
			next += 500;
		}
		wait_for(cli, &v, -1, NULL, 100);
	}
	cr_expect(view_is(&v, W(PREFIX "kept=1")), "refreshed key lost");
	cr_expect_eq(sl_etcd_delete(cli, PREFIX "kept"), 0);
	cr_expect_eq(sl_etcd_refresh(cli, PREFIX "kept"), -ENOENT);
	cr_expect_eq(sl_etcd_refresh(cli, PREFIX "never"), -ENOENT);
	cr_expect_eq(wait_for(cli, &v, 1, NONE, 1000), 0);
	view_free(&v);
}

/* The lease goes away behind our back: a refresh grants a new one and puts the key again. */
Test(etcd, refresh_after_lease_lost, .init = setup, .fini = teardown)
{
	struct view v = {0};
	char id[32];
	int64_t lease;

	NEED_ETCD();
	cli = open_client(srv.url, NULL);
	cr_assert_not_null(cli);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "me", "v", 30), 0);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "me=v"), 3000), 0);
	lease = view_get(&v, PREFIX "me")->lease;
	snprintf(id, sizeof(id), "%llx", (unsigned long long)lease);
	cr_assert_eq(etcdctl("lease", "revoke", id), 0);
	cr_assert_eq(wait_for(cli, &v, 1, NONE, 1000), 0);
	cr_assert_eq(sl_etcd_refresh(cli, PREFIX "me"), 0);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "me=v"), 2000), 0);
	cr_expect_neq(view_get(&v, PREFIX "me")->lease, lease);
	cr_expect_neq(view_get(&v, PREFIX "me")->lease, 0);
	view_free(&v);
}

/* etcd killed: disconnected, the snapshot kept, writes wait; restarted on the same port and
 * data dir: connected again, and what changed meanwhile (while the client could not reach
 * it) converges, the queued write included. */
Test(etcd, restart, .init = setup, .fini = teardown)
{
	int port = srv.cport, alt, unused;
	struct view v = {0};
	uint64_t t0;

	NEED_ETCD();
	cr_assert_eq(etcdctl("put", PREFIX "a", "1"), 0);
	cr_assert_eq(etcdctl("put", PREFIX "b", "1"), 0);
	cli = open_client(srv.url, NULL);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "a=1", PREFIX "b=1"), 3000), 0);

	etcd_kill();
	t0 = mono_ms();
	cr_assert_eq(wait_for(cli, &v, 0, NULL, 2000), 0, "still connected 2 s after the kill");
	cr_expect_lt(mono_ms() - t0, 1000, "disconnect seen after %llu ms",
		     (unsigned long long)(mono_ms() - t0));
	cr_expect(view_is(&v, W(PREFIX "a=1", PREFIX "b=1")), "snapshot not kept");
	cr_assert_eq(sl_etcd_put(cli, PREFIX "queued", "q", 0), 0);
	sleep_ms(700); /* a few failed reconnects and write retries */
	cr_expect_eq(view_take(cli, &v), 0);
	cr_expect_eq(v.connected, 0);

	/* Changes the client cannot see as they happen: the same member and data dir, serving
	 * clients on another port for a while. */
	cr_assert_eq(free_ports(&alt, &unused), 0);
	set_client_port(alt);
	cr_assert_eq(etcd_start(), 0, "start on port %d failed; see %s/etcd.log", alt, srv.dir);
	cr_assert_eq(etcdctl("put", PREFIX "c", "new"), 0);
	cr_assert_eq(etcdctl("del", PREFIX "a", NULL), 0);
	etcd_kill();
	set_client_port(port);
	cr_expect_eq(view_take(cli, &v), 0);
	cr_expect_eq(v.connected, 0);

	cr_assert_eq(etcd_start(), 0, "restart failed; see %s/etcd.log", srv.dir);
	t0 = mono_ms();
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "b=1", PREFIX "c=new", PREFIX "queued=q"), 8000),
		     0, "n=%zu connected=%d", v.n, v.connected);
	cr_log_info("reconnected and converged %llu ms after the restart",
		    (unsigned long long)(mono_ms() - t0));
	view_free(&v);
}

/* A hung etcd (SIGSTOP) keeps the watch's TCP connection up: the probe of a silent watch
 * notices, and SIGCONT brings the client back. */
Test(etcd, hung_server, .init = setup, .fini = teardown)
{
	struct sl_etcd_opts o = {.probe_idle_ms = 500, .request_timeout_ms = 800};
	struct view v = {0};
	uint64_t t0;

	NEED_ETCD();
	cr_assert_eq(etcdctl("put", PREFIX "a", "1"), 0);
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "a=1"), 3000), 0);
	sleep_ms(1200); /* probes of a healthy idle watch must not disconnect it */
	cr_expect_eq(view_take(cli, &v), 0);
	cr_expect_eq(v.connected, 1, "an idle healthy watch was dropped");
	cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
	t0 = mono_ms();
	cr_expect_eq(wait_for(cli, &v, 0, W(PREFIX "a=1"), 3000), 0, "hang not noticed");
	cr_log_info("hang noticed after %llu ms", (unsigned long long)(mono_ms() - t0));
	cr_assert_eq(kill(srv.pid, SIGCONT), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "a=1"), 6000), 0, "no reconnect after SIGCONT");
	view_free(&v);
}

/* ---- a scripted gateway: split and packed watch messages, a compaction resync ---- */

static int read_request(int fd, char *path, size_t path_len, char *body, size_t body_len)
{
	char buf[8192];
	size_t len = 0, clen;
	char *end, *cl;

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
	if (sscanf(buf, "POST %255s", path) != 1 || path_len < 256)
		return -1;
	cl = strcasestr(buf, "Content-Length:");
	clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
	end += 4;
	while ((size_t)(buf + len - end) < clen) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
	snprintf(body, body_len, "%.*s", (int)clen, end);
	return 0;
}

static int put_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int respond(int fd, int code, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 code, strlen(body));
	return put_all(fd, head, strlen(head)) || put_all(fd, body, strlen(body)) ? -1 : 0;
}

#define HDR(rev) "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"" rev "\"}"
/* base64: /sluice/a L3NsdWljZS9h, /sluice/b L3NsdWljZS9i, /sluice/c L3NsdWljZS9j,
 * /sluice/z L3NsdWljZS96, "1" MQ==, "2" Mg==, "{\"x\":1}" eyJ4IjoxfQ==, "26" MjY= */
static const char range1[] = HDR("10") ",\"kvs\":[{\"key\":\"L3NsdWljZS9h\",\"value\":\"MQ==\","
				       "\"mod_revision\":\"9\"}],\"count\":\"1\"}";
static const char range2[] = HDR("30") ",\"kvs\":[{\"key\":\"L3NsdWljZS96\",\"value\":\"MjY=\","
				       "\"mod_revision\":\"29\"}],\"count\":\"1\"}";
static const char created[] = "{\"result\":" HDR("10") ",\"created\":true}}\n";
/* Two messages in one write; a string holding braces and an escaped quote. */
static const char packed[] = "{\"result\":" HDR(
    "11") ",\"events\":[{\"kv\":{\"key\":\"L3NsdWljZS9i\",\"value\":"
	  "\"Mg==\",\"mod_revision\":\"11\"}}],\"note\":\"}{\\\"}\"}}\n"
	  "{\"result\":" HDR("12") ",\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":"
				   "\"L3NsdWljZS9h\",\"mod_revision\":\"12\"}}]}}\n";
static const char split[] =
    "{\"result\":" HDR("13") ",\"events\":[{\"type\":\"PUT\",\"kv\":{"
			     "\"key\":\"L3NsdWljZS9j\",\"value\":\"eyJ4IjoxfQ==\",\"lease\":"
			     "\"7\",\"mod_revision\":\"13\"}}]}}\n";
static const char compacted[] = "{\"result\":" HDR("13") ",\"canceled\":true,"
							 "\"compact_revision\":\"20\"}}\n";

/* One connection at a time: the client never has two requests in flight here (writes are
 * not used, and the probe waits for 10 s of silence). */
static void fake_gateway(int lfd)
{
	int ranges = 0, watches = 0;

	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char path[256], body[2048];

		if (fd < 0)
			_exit(1);
		while (!read_request(fd, path, sizeof(path), body, sizeof(body))) {
			static const char stream_head[] =
			    "HTTP/1.1 200 OK\r\nContent-Type: "
			    "application/json\r\nConnection: close\r\n\r\n";
			char hold;
			size_t i;

			if (!strcmp(path, "/v3/kv/range") && strstr(body, "\"L3NsdWljZS8=\"") &&
			    strstr(body, "\"range_end\":\"L3NsdWljZTA=\"")) {
				respond(fd, 200, ++ranges == 1 ? range1 : range2);
				continue;
			}
			if (strcmp(path, "/v3/watch") ||
			    !strstr(body,
				    watches ? "\"start_revision\":31" : "\"start_revision\":11") ||
			    !strstr(body, "\"progress_notify\":true")) {
				respond(fd, 400, "{\"error\":\"unexpected request\",\"code\":3}");
				continue;
			}
			put_all(fd, stream_head, strlen(stream_head));
			if (watches++) {
				put_all(fd, created, strlen(created));
			} else {
				for (i = 0; i < strlen(created); i++) { /* byte by byte */
					put_all(fd, created + i, 1);
					usleep(500);
				}
				put_all(fd, packed, strlen(packed));
				put_all(fd, split, 40);
				usleep(50000);
				put_all(fd, split + 40, strlen(split) - 40);
				usleep(400000); /* let the test see this state */
				put_all(fd, compacted, strlen(compacted));
			}
			while (read(fd, &hold, 1) > 0) /* until the client goes */
				;
			break;
		}
		close(fd);
	}
}

Test(etcd, stream_framing_and_compaction, .fini = teardown)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct sl_etcd_stats st;
	struct view v = {0};
	char url[64];
	int lfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	fake_pid = fork();
	cr_assert_geq(fake_pid, 0);
	if (!fake_pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fake_gateway(lfd);
	}
	close(lfd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	cli = open_client(url, NULL);
	cr_assert_not_null(cli);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "b=2", PREFIX "c={\"x\":1}"), 2000), 0,
		     "n=%zu connected=%d", v.n, v.connected);
	cr_expect_eq(view_get(&v, PREFIX "c") ? view_get(&v, PREFIX "c")->lease : 0, 7);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "z=26"), 2000), 0, "no resync after compaction");
	stats_after(&st, 2, 0);
	cr_expect(st.ranges == 2 && st.watches == 2 && st.resyncs == 1 && !st.read_failures,
		  "ranges=%llu watches=%llu resyncs=%llu failures=%llu",
		  (unsigned long long)st.ranges, (unsigned long long)st.watches,
		  (unsigned long long)st.resyncs, (unsigned long long)st.read_failures);
	view_free(&v);
}
