// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client over TLS with a client certificate, and with etcd auth, against a real etcd
 * (etcd_fixture.c) serving https://127.0.0.1:PORT with --client-cert-auth, with certificates
 * made by the openssl CLI for each test. With auth on: root (by its certificate's CN, over
 * etcdctl's gRPC), a role sluice-node with readwrite on the prefix for the user node-a, and
 * sluice-reader with read for the user reader. The client logs in with a password: etcd's
 * JSON gateway never maps a certificate's CN to a user (cn_certificate_refused shows it).
 *
 * The client's log goes to a file in the test's directory (debug level); every test checks at
 * the end that no password, token or line of a private key reached it. Tests skip when etcd,
 * etcdctl or openssl is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "etcd.h"
#include "etcd_fixture.h"
#include "log.h"

#define PREFIX	 "/sluice/"
#define FILE_MAX 65536

static struct etf srv = {.pid = -1, .janitor_pid = -1, .janitor_fd = -1};
static struct sl_etcd *cli;
static int have_tools, ready, saved_stderr = -1;
static char log_path[128];

/* The whole file, NUL-terminated, in a static buffer ("" if unreadable). */
static const char *slurp(const char *path)
{
	static char buf[FILE_MAX + 1];
	ssize_t n = 0, r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	while (n < FILE_MAX && (r = read(fd, buf + n, (size_t)(FILE_MAX - n))) > 0)
		n += r;
	buf[n] = '\0';
	close(fd);
	return buf;
}

static const char *pki(const char *name)
{
	static char bufs[8][128];
	static unsigned int i;

	return etf_pki_path(&srv, name, bufs[i++ % 8], sizeof(bufs[0]));
}

/* The client's log (stderr) into the test's directory, at debug level. */
static void capture_log(void)
{
	int fd;

	etf_path(&srv, "client.log", log_path, sizeof(log_path));
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0 || dup2(fd, STDERR_FILENO) < 0)
		log_path[0] = '\0';
	close(fd);
	sl_log_set_level(SL_LOG_DEBUG);
}

static int log_has(const char *s)
{
	fflush(stderr);
	return log_path[0] && strstr(slurp(log_path), s) != NULL;
}

/* The certificates only. */
static void setup_pki(void)
{
	have_tools = etf_in_path("etcd") && etf_in_path("etcdctl") && etf_in_path("openssl");
	if (have_tools && !etf_init(&srv, 1)) {
		capture_log();
		ready = 1;
	}
}

/* The users, roles and grants (a key under the prefix first), then auth on. */
static int auth_on(void)
{
	char a[96], r[96];
	const char *const steps[][7] = {
	    {"put", PREFIX "pre", "1"},
	    {"user", "add", "root", "--no-password"},
	    {"user", "grant-role", "root", "root"},
	    {"role", "add", "sluice-node"},
	    {"role", "grant-permission", "sluice-node", "--prefix=true", "readwrite", PREFIX},
	    {"role", "add", "sluice-reader"},
	    {"role", "grant-permission", "sluice-reader", "--prefix=true", "read", PREFIX},
	    {"user", "add", a},
	    {"user", "grant-role", "node-a", "sluice-node"},
	    {"user", "add", r},
	    {"user", "grant-role", "reader", "sluice-reader"},
	    {"auth", "enable"},
	};
	size_t i;

	snprintf(a, sizeof(a), "node-a:%s", slurp(pki("node-a.pw")));
	snprintf(r, sizeof(r), "reader:%s", slurp(pki("reader.pw")));
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (etf_ctl(&srv, steps[i])) {
			cr_log_error("etcdctl %s %s failed", steps[i][0], steps[i][1]);
			return -1;
		}
	}
	return 0;
}

static void setup_auth(void)
{
	setup_pki();
	ready = ready && !etf_start(&srv) && !auth_on();
}

/* Tokens that etcd forgets after 1 s unused. */
static void setup_auth_ttl(void)
{
	setup_pki();
	srv.extra[0] = "--auth-token-ttl=1";
	ready = ready && !etf_start(&srv) && !auth_on();
}

static void teardown(void)
{
	sl_etcd_close(cli);
	cli = NULL;
	if (saved_stderr >= 0) {
		fflush(stderr);
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
	etf_fini(&srv);
}

#define NEED(what)                                                                                 \
	do {                                                                                       \
		if (!have_tools)                                                                   \
			cr_skip_test("etcd, etcdctl or openssl not installed (apt-get install "    \
				     "etcd-server etcd-client openssl)");                          \
		cr_assert(ready, "%s failed; see %s/pki.log and %s/etcd.log", what, srv.dir,       \
			  srv.dir);                                                                \
	} while (0)

/* etcd's simple token: 16 random letters, '.', a number. */
static int has_simple_token(const char *s)
{
	regex_t re;
	int r;

	if (regcomp(&re, "[A-Za-z]{16}\\.[0-9]+", REG_EXTENDED | REG_NOSUB))
		return 1;
	r = !regexec(&re, s, 0, NULL, 0);
	regfree(&re);
	return r;
}

/* Where no secret may show: each password, each line of each client's private key, and any
 * token. 0 if s holds none; else 1, and which one (by name, never the secret) is logged. */
static int leaks(const char *where, const char *s)
{
	static const char *const keys[] = {"node-a.key",    "reader.key", "intruder.key",
					   "cn-node-a.key", "root.key",	  "enc.key"};
	static const char *const pws[] = {"node-a.pw", "reader.pw"};
	char text[FILE_MAX + 1], *line, *save = NULL;
	size_t i;

	for (i = 0; i < sizeof(pws) / sizeof(pws[0]); i++) {
		const char *pw = slurp(pki(pws[i]));

		if (*pw && strstr(s, pw)) {
			cr_log_error("%s holds the password of %s", where, pws[i]);
			return 1;
		}
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), "%s", slurp(pki(keys[i])));
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "-----", 5) && strlen(line) >= 16 && strstr(s, line)) {
				cr_log_error("%s holds a line of %s", where, keys[i]);
				return 1;
			}
		}
	}
	if (strstr(s, "\"token\"") || strstr(s, "token\\\"") || strstr(s, "Authorization") ||
	    has_simple_token(s)) {
		cr_log_error("%s holds a token", where);
		return 1;
	}
	return 0;
}

/* 1 if the client's log holds a secret (which one is logged). */
static int secret_logged(void)
{
	static char copy[FILE_MAX + 1];

	fflush(stderr);
	snprintf(copy, sizeof(copy), "%s", slurp(log_path));
	return leaks("the client's log", copy);
}

/* Options for a client with the given certificate (NULL: none), CA, user and password file
 * (the user's own when pw is NULL). */
static struct sl_etcd_opts opts_for(const char *cert, const char *ca, const char *user,
				    const char *pw)
{
	static char c[128], k[128], a[128], p[128];
	struct sl_etcd_opts o = {.write_retry_ms = 5000};
	char name[64];

	if (cert) {
		snprintf(name, sizeof(name), "%s.pem", cert);
		o.cert = etf_pki_path(&srv, name, c, sizeof(c));
		snprintf(name, sizeof(name), "%s.key", cert);
		o.key = etf_pki_path(&srv, name, k, sizeof(k));
	}
	if (ca) {
		snprintf(name, sizeof(name), "%s.pem", ca);
		o.ca = etf_pki_path(&srv, name, a, sizeof(a));
	}
	if (user) {
		o.user = user;
		snprintf(name, sizeof(name), "%s.pw", pw ? pw : user);
		o.password_file = etf_pki_path(&srv, name, p, sizeof(p));
	}
	return o;
}

static struct sl_etcd *open_client(const char *url, const struct sl_etcd_opts *o)
{
	const char *eps[] = {url};
	char err[512] = "";
	struct sl_etcd *e = sl_etcd_open_opts(eps, 1, PREFIX, o, err, sizeof(err));

	if (!e)
		cr_log_error("open: %s", err);
	return e;
}

/* The counters once at least 'writes' writes were done and 'dropped' dropped, or after
 * timeout_ms. */
static void stats_wait(struct sl_etcd_stats *st, uint64_t writes, uint64_t dropped, int timeout_ms)
{
	uint64_t end = etf_ms() + (uint64_t)timeout_ms;

	do {
		sl_etcd_get_stats(cli, st);
		if (st->writes >= writes && st->writes_dropped >= dropped)
			return;
		etf_sleep_ms(10);
	} while (etf_ms() < end);
}

/* ---- open refuses what cannot work ---- */

struct bad_case {
	const char *name;
	int http;			    /* an http:// endpoint */
	const char *ca, *cert, *key, *user; /* pki file names */
	const char *pw;			    /* pki file name, or an absolute path */
	const char *want;		    /* in the message */
};

static const struct bad_case bad_cases[] = {
    {"ca with http://", 1, "ca.pem", NULL, NULL, NULL, NULL, "need https://"},
    {"cert with http://", 1, NULL, "node-a.pem", "node-a.key", NULL, NULL, "need https://"},
    {"user with http://", 1, NULL, NULL, NULL, "node-a", "node-a.pw", "need https://"},
    {"cert without key", 0, "ca.pem", "node-a.pem", NULL, NULL, NULL, "cert given without key"},
    {"key without cert", 0, "ca.pem", NULL, "node-a.key", NULL, NULL, "key given without cert"},
    {"no ca file", 0, "nope.pem", NULL, NULL, NULL, NULL, "No such file or directory"},
    {"ca holds no certificate", 0, "node-a.key", NULL, NULL, NULL, NULL, "no PEM certificate"},
    {"no cert file", 0, "ca.pem", "nope.pem", "node-a.key", NULL, NULL, "nope.pem: No such"},
    {"no key file", 0, "ca.pem", "node-a.pem", "nope.key", NULL, NULL, "nope.key: No such"},
    {"key of another cert", 0, "ca.pem", "node-a.pem", "reader.key", NULL, NULL,
     "does not match the certificate"},
    {"encrypted key", 0, "ca.pem", "enc.pem", "enc.key", NULL, NULL,
     "not an unencrypted PEM private key"},
    {"user without password", 0, "ca.pem", NULL, NULL, "node-a", NULL,
     "given without password_file"},
    {"password without user", 0, "ca.pem", NULL, NULL, NULL, "node-a.pw", "without user"},
    {"no password file", 0, "ca.pem", NULL, NULL, "node-a", "nope.pw", "nope.pw: No such"},
    {"empty password file", 0, "ca.pem", NULL, NULL, "node-a", "/dev/null", "is empty"},
};

static const char *bad_path(const char *name, char *buf, size_t len)
{
	if (!name)
		return NULL;
	if (name[0] == '/')
		return name;
	return etf_pki_path(&srv, name, buf, len);
}

Test(etcd_tls, bad_options, .init = setup_pki, .fini = teardown)
{
	char ca[128], cert[128], key[128], pw[128], err[512];
	struct sl_etcd_opts o = opts_for("node-a", "ca", "node-a", NULL);
	const char *https[] = {"https://127.0.0.1:1"}, *http[] = {"http://127.0.0.1:1"};
	size_t i;

	NEED("the PKI");
	cli = sl_etcd_open_opts(https, 1, PREFIX, &o, err, sizeof(err));
	cr_assert_not_null(cli, "good options refused: %s", err);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct sl_etcd_opts b = {
		    .ca = bad_path(c->ca, ca, sizeof(ca)),
		    .cert = bad_path(c->cert, cert, sizeof(cert)),
		    .key = bad_path(c->key, key, sizeof(key)),
		    .user = c->user,
		    .password_file = bad_path(c->pw, pw, sizeof(pw)),
		};
		struct sl_etcd *e;

		err[0] = '\0';
		e = sl_etcd_open_opts(c->http ? http : https, 1, PREFIX, &b, err, sizeof(err));
		cr_expect_null(e, "%s: accepted", c->name);
		sl_etcd_close(e);
		cr_expect(strstr(err, c->want), "%s: \"%s\" does not say \"%s\"", c->name, err,
			  c->want);
		if (c->http)
			cr_expect(strstr(err, http[0]), "%s: the endpoint not named: %s", c->name,
				  err);
		cr_expect_not(leaks(c->name, err), "%s: the message holds a secret", c->name);
	}
}

/* ---- a real etcd with TLS, client certificates and auth ---- */

/* node-a's certificate and password: the snapshot, the watch, writes with and without a
 * lease, a delete. */
Test(etcd_tls, node_reads_watches_writes, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("node-a", "ca", "node-a", NULL);
	const char *const put_a[] = {"put", PREFIX "a", "1", NULL};
	struct sl_etcd_stats st;
	struct view v = {0};

	NEED("etcd with TLS and auth");
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1"), 5000), 0,
		     "no snapshot: n=%zu connected=%d", v.n, v.connected);
	cr_assert_eq(etf_ctl(&srv, put_a), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1", PREFIX "a=1"), 2000), 0,
		     "the watch missed a put");
	cr_assert_eq(sl_etcd_put(cli, PREFIX "mine", "x", 0), 0);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "leased", "y", 5), 0);
	cr_assert_eq(sl_etcd_delete(cli, PREFIX "a"), 0);
	cr_expect_eq(
	    wait_for(cli, &v, 1, W(PREFIX "pre=1", PREFIX "mine=x", PREFIX "leased=y"), 3000), 0,
	    "own writes not seen: n=%zu", v.n);
	cr_expect_neq(view_get(&v, PREFIX "leased") ? view_get(&v, PREFIX "leased")->lease : 0, 0);
	cr_assert_eq(sl_etcd_refresh(cli, PREFIX "leased"), 0);
	stats_wait(&st, 4, 0, 2000);
	cr_expect(st.writes == 4 && !st.writes_dropped && !st.read_failures && st.auths >= 1,
		  "writes=%llu dropped=%llu read_failures=%llu auths=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped,
		  (unsigned long long)st.read_failures, (unsigned long long)st.auths);
	cr_expect(log_has("etcd logged in"), "no login logged");
	view_free(&v);
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* A client that never gets anywhere: within 1.5 s and until its first failure is logged
 * (slower under valgrind: up to 8 s), no snapshot and never connected; the log names the
 * endpoint and says why. 0, or -1 and what went otherwise in msg. */
static int refused(const char *url, const char *why, char *msg, size_t len)
{
	uint64_t t0 = etf_ms();
	struct sl_etcd_stats st;
	struct view v = {0};
	int seen = 0, r = -1;

	while (etf_ms() - t0 < 8000) {
		if (wait_for(cli, &v, 1, NULL, 100) != -ETIMEDOUT || v.takes) {
			snprintf(msg, len, "connected, or a snapshot came");
			goto out;
		}
		sl_etcd_get_stats(cli, &st);
		seen = st.read_failures >= 1 && log_has(url) && log_has(why);
		if (seen && etf_ms() - t0 >= 1500)
			break;
	}
	r = seen ? 0 : -1;
	if (!seen)
		snprintf(msg, len, "no failure that names %s and says \"%s\": %s", url, why,
			 slurp(log_path));
out:
	view_free(&v);
	return r;
}

#define EXPECT_REFUSED(url, why)                                                                   \
	do {                                                                                       \
		char msg_[FILE_MAX + 256];                                                         \
		cr_expect_eq(refused(url, why, msg_, sizeof(msg_)), 0, "%s", msg_);                \
	} while (0)

/* A certificate from another CA (with node-a's subject and password): the handshake fails,
 * and the log says etcd refused the certificate. */
Test(etcd_tls, other_ca_refused, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("intruder", "ca", "node-a", NULL);
	struct sl_etcd_stats st;

	NEED("etcd with TLS and auth");
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "evil", "1", 0), 0);
	/* curl says "alert bad certificate", or, when the alert was lost (TLS 1.3), the client
	 * guesses it. */
	EXPECT_REFUSED(srv.url, "");
	cr_expect(log_has("alert bad certificate") ||
		      log_has("did etcd refuse the client certificate?"),
		  "the cause is not named: %s", slurp(log_path));
	sl_etcd_get_stats(cli, &st);
	cr_expect_eq(st.writes, 0);
	cr_expect_eq(st.auths, 0, "logged in without a trusted certificate");
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* reader reads and watches; its writes fail with etcd's "permission denied" and are dropped
 * at once (not retried for write_retry_ms), logged. */
Test(etcd_tls, reader_cannot_write, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("reader", "ca", "reader", NULL);
	const char *const put_b[] = {"put", PREFIX "b", "2", NULL};
	struct sl_etcd_stats st;
	struct view v = {0};
	uint64_t t0;

	NEED("etcd with TLS and auth");
	o.write_retry_ms = 30000;
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1"), 5000), 0, "no snapshot");
	cr_assert_eq(etf_ctl(&srv, put_b), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1", PREFIX "b=2"), 2000), 0,
		     "the watch missed a put");
	t0 = etf_ms();
	cr_assert_eq(sl_etcd_put(cli, PREFIX "r", "1", 0), 0);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "rl", "1", 5), 0);
	cr_assert_eq(sl_etcd_delete(cli, PREFIX "pre"), 0);
	stats_wait(&st, 0, 3, 3000);
	cr_expect(st.writes_dropped == 3 && !st.writes, "writes=%llu dropped=%llu",
		  (unsigned long long)st.writes, (unsigned long long)st.writes_dropped);
	cr_expect_lt(etf_ms() - t0, 2000, "the writes were retried");
	cr_expect(log_has("etcd write dropped") &&
		      log_has("HTTP 403: etcdserver: permission denied"),
		  "no clear log line: %s", slurp(log_path));
	etf_sleep_ms(300);
	cr_expect_eq(view_take(cli, &v), 0, "the snapshot changed");
	cr_expect(view_is(&v, W(PREFIX "pre=1", PREFIX "b=2")), "a write went through");
	view_free(&v);
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* A plain http:// client to the https:// endpoint. */
Test(etcd_tls, http_to_https_endpoint, .init = setup_auth, .fini = teardown)
{
	char url[64];

	NEED("etcd with TLS and auth");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.cport);
	cli = open_client(url, NULL);
	cr_assert_not_null(cli);
	EXPECT_REFUSED(url, "(an https:// endpoint?)");
}

/* The server's certificate checked against another CA, or the system's store: refused. */
Test(etcd_tls, server_not_trusted, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("node-a", "ca2", "node-a", NULL);

	NEED("etcd with TLS and auth");
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	EXPECT_REFUSED(srv.url, "SSL certificate problem: unable to get local issuer certificate");
	sl_etcd_close(cli);
	o.ca = NULL; /* the system's trust store */
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	EXPECT_REFUSED(srv.url, "SSL certificate problem");
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* A client certificate with a Common Name: etcd's gateway refuses it once auth is on (it
 * would not use the CN as the user); the log says so. */
Test(etcd_tls, cn_certificate_refused, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("cn-node-a", "ca", "node-a", NULL);

	NEED("etcd with TLS and auth");
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	EXPECT_REFUSED(srv.url, "HTTP 400: CommonName of client sending a request against gateway");
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* node-a with reader's password: the login fails, and says why. */
Test(etcd_tls, wrong_password, .init = setup_auth, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("node-a", "ca", "node-a", "reader");

	NEED("etcd with TLS and auth");
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	EXPECT_REFUSED(srv.url, "authentication failed, invalid user ID or password");
	cr_expect(log_has("step=login"), "the failed step is not named");
	cr_expect_not(secret_logged(), "a secret was logged");
}

/* Tokens expire after 1 s unused: a write after 2.5 s idle gets a 401, logs in again and is
 * done; so is the read side after etcd restarts (it forgets every token). */
Test(etcd_tls, token_renewed, .init = setup_auth_ttl, .fini = teardown)
{
	struct sl_etcd_opts o = opts_for("node-a", "ca", "node-a", NULL);
	struct sl_etcd_stats st;
	struct view v = {0};

	NEED("etcd with TLS and auth");
	o.probe_idle_ms = 60000; /* no probe keeps the token in use */
	o.write_retry_ms = 3000;
	cli = open_client(srv.url, &o);
	cr_assert_not_null(cli);
	cr_assert_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1"), 5000), 0, "no snapshot");
	etf_sleep_ms(2500);
	cr_assert_eq(sl_etcd_put(cli, PREFIX "late", "1", 0), 0);
	cr_expect_eq(wait_for(cli, &v, 1, W(PREFIX "pre=1", PREFIX "late=1"), 3000), 0,
		     "a write with an expired token was not redone");
	stats_wait(&st, 1, 0, 1000);
	cr_expect(st.writes == 1 && !st.writes_dropped && st.auths >= 2,
		  "writes=%llu dropped=%llu auths=%llu", (unsigned long long)st.writes,
		  (unsigned long long)st.writes_dropped, (unsigned long long)st.auths);

	etf_kill(&srv);
	cr_assert_eq(wait_for(cli, &v, 0, NULL, 3000), 0, "still connected after the kill");
	cr_assert_eq(etf_start(&srv), 0, "restart failed; see %s/etcd.log", srv.dir);
	cr_expect_eq(wait_for(cli, &v, 1, NULL, 8000), 0, "no reconnect after the restart");
	cr_assert_eq(sl_etcd_put(cli, PREFIX "after", "1", 0), 0);
	cr_expect_eq(
	    wait_for(cli, &v, 1, W(PREFIX "pre=1", PREFIX "late=1", PREFIX "after=1"), 3000), 0,
	    "no write after the restart");
	view_free(&v);
	cr_expect_not(secret_logged(), "a secret was logged");
}
