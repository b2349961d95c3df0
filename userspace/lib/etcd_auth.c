// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * etcd auth for the etcd client. etcd's JSON gateway never maps a client certificate's Common
 * Name to a user (etcd documents it, and refuses such a certificate once auth is on), so the
 * client logs in with a user and password (POST /v3/auth/authenticate) and sends the token it
 * gets in the Authorization header of every other request.
 *
 * A simple token (etcd's default) is known to the member that issued it, and only until it
 * restarts or the token has been unused for --auth-token-ttl; so there is a token per endpoint,
 * and an HTTP 401 forgets the one the request carried. The read and the write side each log in
 * as the first step of their next request to an endpoint without a token, and a failed login
 * is a failure of that side like any other (backoff, next endpoint).
 *
 * The password is read once at open and wiped at close; it and the tokens are never logged,
 * and the buffers that held them are wiped before they are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd_int.h"

#define ET_PASSWORD_FILE_MAX 4096 /* bytes */

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* The file's first line (without "\r\n"), malloc'd, or NULL with err. */
static char *read_password(const char *path, char *err, size_t err_len)
{
	char buf[ET_PASSWORD_FILE_MAX + 1], *out = NULL;
	size_t len = 0, n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, err_len, "etcd password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, err_len, "etcd password_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (!r)
			break;
		len += (size_t)r;
	}
	for (n = 0; n < len && buf[n] != '\n'; n++)
		;
	if (n == len && len == sizeof(buf)) {
		snprintf(err, err_len, "etcd password_file %s: over %d bytes", path,
			 ET_PASSWORD_FILE_MAX);
		goto out;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	if (!n || memchr(buf, '\0', n)) {
		snprintf(err, err_len, "etcd password_file %s: %s", path,
			 n ? "holds a NUL byte" : "the first line is empty");
		goto out;
	}
	out = strndup(buf, n);
	if (!out)
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return out;
}

int et_auth_open(struct sl_etcd *e, const struct sl_etcd_opts *o, char *err, size_t err_len)
{
	const char *user = o ? o->user : NULL, *pf = o ? o->password_file : NULL;

	if (!user || !*user) {
		if (pf && *pf) {
			snprintf(err, err_len, "etcd: password_file given without user");
			return -1;
		}
		return 0;
	}
	if (!pf || !*pf) {
		snprintf(err, err_len, "etcd: user \"%s\" given without password_file", user);
		return -1;
	}
	e->user = strdup(user);
	e->toks = calloc(e->n_eps, sizeof(*e->toks));
	if (!e->user || !e->toks) {
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
		return -1;
	}
	e->password = read_password(pf, err, err_len);
	return e->password ? 0 : -1;
}

void et_sec_free(struct sl_etcd *e)
{
	size_t i;

	for (i = 0; e->toks && i < e->n_eps; i++)
		wipe_free(e->toks[i].tok);
	free(e->toks);
	e->toks = NULL;
	wipe_free(e->password);
	e->password = NULL;
	free(e->user);
	free(e->ca);
	free(e->cert);
	free(e->key);
	e->user = e->ca = e->cert = e->key = NULL;
}

int et_auth_needed(const struct sl_etcd *e, size_t ep)
{
	return e->user && !e->toks[ep].tok;
}

int et_auth_start(struct sl_etcd *e, struct et_xfer *x, size_t ep)
{
	json_t *body = json_pack("{s:s, s:s}", "name", e->user, "password", e->password);

	return et_xfer_start(e, x, ep, ET_LOGIN_PATH, body);
}

const char *et_auth_done(struct sl_etcd *e, struct et_xfer *x, const char *why, char *buf,
			 size_t len)
{
	struct et_token *t = &e->toks[x->ep];
	char *tok = why ? NULL : et_auth_parse(x->resp.p, x->resp.len);

	if (x->resp.p)
		explicit_bzero(x->resp.p, x->resp.len);
	et_buf_reset(&x->resp);
	if (why)
		return why;
	if (!tok) {
		snprintf(buf, len, "no token in the login reply");
		return buf;
	}
	wipe_free(t->tok);
	t->tok = tok;
	t->gen++;
	et_count(e, &e->sh.st.auths);
	et_log(t->gen == 1 ? SL_LOG_INFO : SL_LOG_DEBUG, "etcd logged in",
	       "endpoint=%s user=\"%s\"", e->eps[x->ep], e->user);
	return NULL;
}

void et_auth_reject(struct sl_etcd *e, const struct et_xfer *x)
{
	struct et_token *t;

	if (!e->user || x->login)
		return;
	t = &e->toks[x->ep];
	if (!t->tok || t->gen != x->gen)
		return; /* already forgotten, or a newer one came */
	et_log(SL_LOG_DEBUG, "etcd auth token rejected, logging in again", "endpoint=%s",
	       e->eps[x->ep]);
	wipe_free(t->tok);
	t->tok = NULL;
}

char *et_auth_header(const struct sl_etcd *e, size_t ep, unsigned int *gen)
{
	char *h;

	if (!e->user || !e->toks[ep].tok)
		return NULL;
	if (asprintf(&h, "Authorization: %s", e->toks[ep].tok) < 0)
		return NULL;
	*gen = e->toks[ep].gen;
	return h;
}
