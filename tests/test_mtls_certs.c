// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mtls_certs.c: loading and checking identity and node certificates that tools/mkcerts.sh
 * makes in a mkdtemp directory (valid, missing, wrong SAN, expired, not yet valid, another CA,
 * another trust domain, a key that does not match), and the contexts built from them, in TLS
 * handshakes over memory BIOs (no sockets at all).
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mtls_certs.h"

/* Shared with test_tunnel.c (one binary): run tools/mkcerts.sh DIR ARGS, its stdout to OUT
 * (or /dev/null). 0 or -1. */
int mtls_test_mkcerts(const char *dir, const char *args, const char *out);

int mtls_test_mkcerts(const char *dir, const char *args, const char *out)
{
	char script[PATH_MAX + 32], exe[PATH_MAX], cmd[2 * PATH_MAX + 512];
	ssize_t n;

	snprintf(script, sizeof(script), "tools/mkcerts.sh");
	if (access(script, X_OK)) {
		/* not run from the source tree: build/unit-tests -> ../tools */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -1;
		exe[n] = 0;
		*strrchr(exe, '/') = 0;
		snprintf(script, sizeof(script), "%s/../tools/mkcerts.sh", exe);
	}
	snprintf(cmd, sizeof(cmd), "'%s' '%s' %s >>'%s'", script, dir, args,
		 out ? out : "/dev/null");
	return system(cmd) == 0 ? 0 : -1;
}

static char dir[] = "/tmp/sluice-mtls-XXXXXX";
static char ca[PATH_MAX + 16], out[PATH_MAX + 16];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(out, sizeof(out), "%s/mkcerts.out", dir);
	cr_assert_eq(mtls_test_mkcerts(dir, "sluice.test --node n1 frontend batch", out), 0,
		     "tools/mkcerts.sh failed");
}

static void teardown(void)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(mtls_certs, .init = setup, .fini = teardown, .timeout = 60);

static const char *const ids2[] = {"frontend", "batch"};

static struct sl_mtls *load(const char *td, const char *node, const char *const *ids, size_t n,
			    char *err, size_t errlen)
{
	struct sl_mtls_opts o = {
	    .trust_domain = td,
	    .ca = ca,
	    .certs = dir,
	    .node = node,
	    .identities = ids,
	    .n_identities = n,
	};
	return sl_mtls_load(&o, err, errlen);
}

/* The serial mkcerts printed for FILE (its last line for that file), or "". */
static void printed_serial(const char *file, char *serial, size_t len)
{
	char line[1024], path[PATH_MAX + 16];
	FILE *f = fopen(out, "r");

	serial[0] = 0;
	snprintf(path, sizeof(path), "%s/%s ", dir, file);
	while (f && fgets(line, sizeof(line), f)) {
		const char *s = strstr(line, " serial=");
		if (!strncmp(line, path, strlen(path)) && s)
			sscanf(s + 8, "%47[0-9A-F]", serial);
	}
	if (f)
		fclose(f);
	(void)len;
}

Test(mtls_certs, valid_set_has_contexts_serials_and_dates)
{
	char err[256], serial[64];
	struct sl_mtls *m = load("sluice.test", "n1", ids2, 2, err, sizeof(err));
	time_t now = time(NULL);

	cr_assert_not_null(m, "load: %s", err);
	cr_assert_eq(sl_mtls_count(m), 3);
	for (size_t i = 0; i < 3; i++) {
		const struct sl_mtls_status *st = sl_mtls_status_at(m, i);
		cr_assert(st->valid, "%s: %s", st->name, st->error);
		cr_assert_str_empty(st->error);
		cr_assert(st->not_after > now + 364 * 86400 && st->not_after < now + 366 * 86400);
		cr_assert(st->not_before <= now && st->not_before > now - 3600);
	}
	cr_assert_str_eq(sl_mtls_status_at(m, 0)->uri, "spiffe://sluice.test/identity/frontend");
	cr_assert_str_eq(sl_mtls_node_status(m)->uri, "spiffe://sluice.test/node/n1");
	cr_assert(sl_mtls_node_status(m)->is_node);
	cr_assert_str_eq(sl_mtls_node_status(m)->name, "n1");
	printed_serial("batch.pem", serial, sizeof(serial));
	cr_assert_str_not_empty(serial);
	cr_assert_str_eq(sl_mtls_identity_status(m, "batch")->serial, serial);
	printed_serial("node.pem", serial, sizeof(serial));
	cr_assert_str_eq(sl_mtls_node_status(m)->serial, serial);
	cr_assert_not_null(sl_mtls_client_ctx(m, "frontend"));
	cr_assert_not_null(sl_mtls_client_ctx(m, "batch"));
	cr_assert_null(sl_mtls_client_ctx(m, "other"));
	cr_assert_null(sl_mtls_identity_status(m, "other"));
	cr_assert_not_null(sl_mtls_server_ctx(m));
	cr_assert_str_eq(sl_mtls_trust_domain(m), "sluice.test");
	cr_assert_eq(sl_mtls_ref(m), m);
	sl_mtls_unref(m);
	sl_mtls_unref(m);
}

/* Load {frontend, batch} + node n1 and return frontend's status error ("" if valid); batch
 * must stay valid whatever happened to frontend. */
static void load_frontend(char *error, size_t len, int *frontend_ctx)
{
	char err[256];
	struct sl_mtls *m = load("sluice.test", "n1", ids2, 2, err, sizeof(err));

	cr_assert_not_null(m, "load: %s", err);
	snprintf(error, len, "%s", sl_mtls_identity_status(m, "frontend")->error);
	cr_assert_eq(sl_mtls_identity_status(m, "frontend")->valid, error[0] == 0);
	cr_assert(sl_mtls_identity_status(m, "batch")->valid, "batch: %s",
		  sl_mtls_identity_status(m, "batch")->error);
	cr_assert_not_null(sl_mtls_client_ctx(m, "batch"));
	cr_assert(sl_mtls_node_status(m)->valid);
	*frontend_ctx = sl_mtls_client_ctx(m, "frontend") != NULL;
	sl_mtls_unref(m);
}

static void expect_frontend_error(const char *want_fmt, const char *arg)
{
	char error[1024], want[1024];
	int has_ctx;

	load_frontend(error, sizeof(error), &has_ctx);
	snprintf(want, sizeof(want), want_fmt, dir, arg);
	cr_assert_str_eq(error, want);
	cr_assert_eq(has_ctx, 0);
}

Test(mtls_certs, wrong_san_is_refused_and_named)
{
	cr_assert_eq(
	    mtls_test_mkcerts(dir, "sluice.test --no-node --san spiffe://x/identity/batch frontend",
			      NULL),
	    0);
	expect_frontend_error("%s/frontend.pem: SAN URI is spiffe://x/identity/batch, want "
			      "spiffe://sluice.test/identity/frontend%s",
			      "");
}

Test(mtls_certs, expired_certificate_is_refused)
{
	char error[1024];
	int has_ctx;

	cr_assert_eq(mtls_test_mkcerts(dir, "sluice.test --no-node --expired frontend", NULL), 0);
	load_frontend(error, sizeof(error), &has_ctx);
	cr_assert_not_null(strstr(error, "/frontend.pem: certificate has expired (not after 20"),
			   "%s", error);
	cr_assert_eq(has_ctx, 0);
}

Test(mtls_certs, not_yet_valid_certificate_is_refused)
{
	char error[1024];
	int has_ctx;

	cr_assert_eq(mtls_test_mkcerts(dir, "sluice.test --no-node --not-yet-valid frontend", NULL),
		     0);
	load_frontend(error, sizeof(error), &has_ctx);
	cr_assert_not_null(strstr(error, "/frontend.pem: certificate is not yet valid"), "%s",
			   error);
	cr_assert_eq(has_ctx, 0);
}

Test(mtls_certs, certificate_of_another_ca_is_refused)
{
	char other[PATH_MAX + 16], cmd[3 * PATH_MAX];

	snprintf(other, sizeof(other), "%s/other", dir);
	cr_assert_eq(mtls_test_mkcerts(other, "sluice.test --no-node frontend", NULL), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s/frontend.pem' '%s/frontend.key' '%s/'", other, other,
		 dir);
	cr_assert_eq(system(cmd), 0);
	expect_frontend_error("%s/frontend.pem: does not verify against the CA bundle: unable to "
			      "get local issuer certificate%s",
			      "");
}

Test(mtls_certs, certificate_of_another_trust_domain_is_refused)
{
	cr_assert_eq(mtls_test_mkcerts(dir, "other.test --no-node frontend", NULL), 0);
	expect_frontend_error("%s/frontend.pem: SAN URI is spiffe://other.test/identity/frontend, "
			      "want spiffe://sluice.test/identity/frontend%s",
			      "");
}

Test(mtls_certs, key_that_does_not_match_is_refused)
{
	char cmd[2 * PATH_MAX];

	snprintf(cmd, sizeof(cmd), "cp '%s/batch.key' '%s/frontend.key'", dir, dir);
	cr_assert_eq(system(cmd), 0);
	expect_frontend_error("%s/frontend.key: the key does not match the certificate "
			      "%s/frontend.pem",
			      dir);
}

Test(mtls_certs, missing_certificate_fails_only_its_identity)
{
	static const char *const ids[] = {"frontend", "ghost", "batch"};
	char err[256], want[PATH_MAX + 64];
	struct sl_mtls *m = load("sluice.test", "n1", ids, 3, err, sizeof(err));

	cr_assert_not_null(m, "load: %s", err);
	snprintf(want, sizeof(want), "%s/ghost.pem: No such file or directory", dir);
	cr_assert_str_eq(sl_mtls_identity_status(m, "ghost")->error, want);
	cr_assert_eq(sl_mtls_identity_status(m, "ghost")->serial[0], 0);
	cr_assert_null(sl_mtls_client_ctx(m, "ghost"));
	cr_assert(sl_mtls_identity_status(m, "frontend")->valid);
	cr_assert(sl_mtls_identity_status(m, "batch")->valid);
	sl_mtls_unref(m);
}

Test(mtls_certs, node_certificate_must_name_this_node)
{
	char err[256];
	struct sl_mtls *m = load("sluice.test", "n2", ids2, 2, err, sizeof(err));

	cr_assert_not_null(m, "load: %s", err);
	cr_assert_not(sl_mtls_node_status(m)->valid);
	cr_assert_not_null(strstr(sl_mtls_node_status(m)->error,
				  "/node.pem: SAN URI is spiffe://sluice.test/node/n1, want "
				  "spiffe://sluice.test/node/n2"),
			   "%s", sl_mtls_node_status(m)->error);
	cr_assert_null(sl_mtls_server_ctx(m));
	cr_assert(sl_mtls_identity_status(m, "frontend")->valid);
	sl_mtls_unref(m);
}

Test(mtls_certs, unreadable_ca_or_bad_options_fail_the_load)
{
	char err[512];
	struct sl_mtls_opts o = {
	    .trust_domain = "sluice.test", .ca = "/nonexistent/ca.pem", .certs = dir, .node = "n1"};

	cr_assert_null(sl_mtls_load(&o, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "/nonexistent/ca.pem: cannot load the CA bundle"), "%s",
			   err);
	o.ca = ca;
	o.trust_domain = "Bad Domain";
	cr_assert_null(sl_mtls_load(&o, err, sizeof(err)));
}

/* A handshake between two SSL over a memory BIO pair; 1 if both completed. */
static int mem_handshake(SSL *c, SSL *s)
{
	BIO *b1, *b2;
	int cdone = 0, sdone = 0;

	if (!BIO_new_bio_pair(&b1, 0, &b2, 0))
		return 0;
	SSL_set_bio(c, b1, b1);
	SSL_set_bio(s, b2, b2);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		int rc = cdone ? 1 : SSL_do_handshake(c), rs = sdone ? 1 : SSL_do_handshake(s);
		if (rc == 1)
			cdone = 1;
		else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
			return 0;
		if (rs == 1)
			sdone = 1;
		else if (SSL_get_error(s, rs) != SSL_ERROR_WANT_READ)
			return 0;
	}
	/* TLS 1.3: the server verifies the client's certificate last; push its verdict back */
	if (cdone && sdone) {
		char b;
		SSL_read(c, &b, 1);
	}
	ERR_clear_error();
	return cdone && sdone;
}

Test(mtls_certs, contexts_authenticate_both_ways_and_outlive_their_set)
{
	char err[256], name[SLUICE_NAME_LEN], serial[SL_MTLS_SERIAL_LEN], want[64];
	struct sl_mtls *m = load("sluice.test", "n1", ids2, 2, err, sizeof(err));
	SSL *c, *s;

	cr_assert_not_null(m, "load: %s", err);
	c = SSL_new(sl_mtls_client_ctx(m, "frontend"));
	s = SSL_new(sl_mtls_server_ctx(m));
	cr_assert(c && s);
	snprintf(want, sizeof(want), "%s", sl_mtls_identity_status(m, "frontend")->serial);
	sl_mtls_unref(m); /* the SSL keep their contexts */
	cr_assert(mem_handshake(c, s), "handshake failed: %s / %s", sl_mtls_verify_reason(c),
		  sl_mtls_verify_reason(s));
	cr_assert_str_eq(SSL_get_version(s), "TLSv1.3");
	cr_assert_null(sl_mtls_verify_reason(s));
	cr_assert_eq(sl_mtls_peer_name(s, "sluice.test", SL_MTLS_IDENTITY, name, sizeof(name),
				       serial, sizeof(serial), err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(name, "frontend");
	cr_assert_str_eq(serial, want);
	cr_assert_eq(sl_mtls_peer_name(c, "sluice.test", SL_MTLS_NODE, name, sizeof(name), NULL, 0,
				       err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(name, "n1");
	/* the helper refuses the wrong kind and the wrong trust domain */
	cr_assert_eq(sl_mtls_peer_name(s, "sluice.test", SL_MTLS_NODE, name, sizeof(name), NULL, 0,
				       err, sizeof(err)),
		     -EACCES);
	cr_assert_not_null(strstr(err, "is not a spiffe://sluice.test/node/<name> URI"), "%s", err);
	cr_assert_eq(sl_mtls_peer_name(s, "other.test", SL_MTLS_IDENTITY, name, sizeof(name), NULL,
				       0, err, sizeof(err)),
		     -EACCES);
	cr_assert_not_null(strstr(err, "is not of trust domain other.test"), "%s", err);
	SSL_free(c);
	SSL_free(s);
}

/* A client that presents FILE.pem/.key and checks nothing about the server. */
static SSL *raw_client(const char *base)
{
	char pem[PATH_MAX + 16], key[PATH_MAX + 16];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;

	snprintf(pem, sizeof(pem), "%s.pem", base);
	snprintf(key, sizeof(key), "%s.key", base);
	if (!ctx || SSL_CTX_use_certificate_file(ctx, pem, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	return ssl;
}

/* The server refuses, during the handshake, a client of BASE; its reason has WHY. */
static void server_refuses(const char *base, const char *why)
{
	char err[256];
	struct sl_mtls *m = load("sluice.test", "n1", ids2, 2, err, sizeof(err));
	SSL *c = raw_client(base), *s;

	cr_assert_not_null(m, "load: %s", err);
	cr_assert_not_null(c);
	s = SSL_new(sl_mtls_server_ctx(m));
	cr_assert_not(mem_handshake(c, s));
	cr_assert_not_null(sl_mtls_verify_reason(s));
	cr_assert_not_null(strstr(sl_mtls_verify_reason(s), why), "%s", sl_mtls_verify_reason(s));
	SSL_free(c);
	SSL_free(s);
	sl_mtls_unref(m);
}

Test(mtls_certs, server_refuses_other_trust_domain_node_uri_and_other_ca)
{
	char sub[PATH_MAX + 32], base[PATH_MAX + 48], args[PATH_MAX + 64];

	snprintf(sub, sizeof(sub), "%s/td", dir);
	snprintf(args, sizeof(args), "other.test --no-node --ca-from '%s' frontend", dir);
	cr_assert_eq(mtls_test_mkcerts(sub, args, NULL), 0);
	snprintf(base, sizeof(base), "%s/frontend", sub);
	server_refuses(base, "is not of trust domain sluice.test");
	snprintf(base, sizeof(base), "%s/node", dir);
	server_refuses(base, "is not a spiffe://sluice.test/identity/<name> URI");
	snprintf(sub, sizeof(sub), "%s/other", dir);
	cr_assert_eq(mtls_test_mkcerts(sub, "sluice.test --no-node frontend", NULL), 0);
	snprintf(base, sizeof(base), "%s/frontend", sub);
	server_refuses(base, "unable to get local issuer certificate");
}
