// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A tunnel's setup, one non-blocking step at a time (tunnel_int.h): outbound CONNECT ->
 * HANDSHAKE -> HEADER (write) -> STATUS (read) -> RELAY; inbound HANDSHAKE -> HEADER (read)
 * -> authorize -> BACKEND (connect) -> ANSWER (write status 0) -> RELAY. A step that would
 * block records the epoll bit it waits for and returns; the tunnel's next event runs it again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tunnel_int.h"

#define STEP_TRIES 4 /* partial reads/writes of the header within one step */

void tun_sockaddr_to(const struct sl_sockaddr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == SLUICE_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		memcpy(&s6->sin6_addr, a->addr.a8, 16);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		memcpy(&s4->sin_addr, a->addr.a8, 4);
		*len = sizeof(*s4);
	}
}

void tun_sockaddr_from(const struct sockaddr_storage *ss, struct sl_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		a->family = SLUICE_AF_INET6;
		a->port = ntohs(s6->sin6_port);
		memcpy(a->addr.a8, &s6->sin6_addr, 16);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		a->family = SLUICE_AF_INET;
		a->port = ntohs(s4->sin_port);
		memcpy(a->addr.a8, &s4->sin_addr, 4);
	}
}

static const char *peer_str(const struct tun *u, char *buf, size_t len)
{
	sl_format_hostport(&u->peer, buf, len);
	return buf;
}

/* 0, or the epoll bit an SSL call that returned r waits for; -1 for a real failure. */
static int ssl_wait(SSL *ssl, int r, int *err)
{
	*err = SSL_get_error(ssl, r);
	if (*err == SSL_ERROR_WANT_READ)
		return EPOLLIN;
	if (*err == SSL_ERROR_WANT_WRITE)
		return EPOLLOUT;
	return -1;
}

static void st_connect(struct tun *u)
{
	char p[SL_HOSTPORT_LEN];
	socklen_t len = sizeof(int);
	int err = 0;

	if (u->tls_block)
		return;
	if (getsockopt(u->tls.src.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
		return tun_fail(u, SL_TUNNEL_ERROR, "connect to peer %s: %s",
				peer_str(u, p, sizeof(p)), strerror(err ? err : errno));
	u->state = TS_HANDSHAKE;
	u->hs_start_ns = tun_now_ns();
}

static void handshake_done(struct tun *u)
{
	char p[SL_HOSTPORT_LEN], name[SLUICE_NAME_LEN], why[384];
	int out = u->dir == SL_TUNNEL_OUTBOUND;

	tun_handshake_done(u);
	/* The verify callback checked the SAN already; this is where the name comes from. */
	if (sl_mtls_peer_name(u->ssl, sl_mtls_trust_domain(u->certs),
			      out ? SL_MTLS_NODE : SL_MTLS_IDENTITY, name, sizeof(name),
			      u->peer_serial, sizeof(u->peer_serial), why, sizeof(why)))
		return tun_fail(u, SL_TUNNEL_HANDSHAKE_FAILED, "peer %s: %s",
				peer_str(u, p, sizeof(p)), why);
	if (!out)
		memcpy(u->identity, name, sizeof(u->identity));
	if (tun_relay_start(u))
		return tun_fail(u, SL_TUNNEL_ERROR, "relay buffers: %s", strerror(ENOMEM));
	if (out) {
		memcpy(u->hdr.magic, SL_TUNNEL_MAGIC, sizeof(u->hdr.magic));
		u->hdr.version = SL_TUNNEL_VERSION;
		u->hdr.family = u->target.family;
		u->hdr.port = htons(u->target.port);
		memcpy(u->hdr.addr, u->target.addr.a8,
		       u->target.family == SLUICE_AF_INET ? 4 : sizeof(u->hdr.addr));
		memcpy(u->hdr.service, u->service, sizeof(u->hdr.service));
	}
	u->state = TS_HEADER;
}

static void st_handshake(struct tun *u)
{
	char p[SL_HOSTPORT_LEN];
	int r, e, w;

	if (u->tls_block)
		return;
	ERR_clear_error();
	r = SSL_do_handshake(u->ssl);
	if (r == 1)
		return handshake_done(u);
	w = ssl_wait(u->ssl, r, &e);
	if (w > 0) {
		u->tls_block = (uint32_t)w;
		return;
	}
	tun_fail(u, SL_TUNNEL_HANDSHAKE_FAILED, "TLS handshake with %s: %s",
		 peer_str(u, p, sizeof(p)), tun_ssl_why(u->ssl, r, e));
}

/* An alert from the server in the OpenSSL error queue: its reason, or NULL. */
static const char *queued_alert(void)
{
	unsigned long e = ERR_peek_last_error();

	if (ERR_GET_LIB(e) != ERR_LIB_SSL || ERR_GET_REASON(e) < SSL_AD_REASON_OFFSET)
		return NULL;
	return ERR_reason_error_string(e);
}

static const char *status_name(uint8_t st);

int tun_peer_verdict(struct tun *u, char *why, size_t len)
{
	const char *a = queued_alert();
	char p[SL_HOSTPORT_LEN];
	uint8_t st;
	int r = -1;

	if (u->dir != SL_TUNNEL_OUTBOUND || !u->ssl || u->state < TS_HEADER || u->state > TS_STATUS)
		return -1;
	peer_str(u, p, sizeof(p));
	if (!a) {
		/* a write failed on the reset that followed the alert or the status: read it */
		ERR_clear_error();
		if (SSL_read(u->ssl, &st, 1) == 1 && st != SL_TUNNEL_ST_OK) {
			snprintf(why, len, "peer %s: %s", p, status_name(st));
			r = st == SL_TUNNEL_ST_DENIED ? SL_TUNNEL_DENIED : SL_TUNNEL_ERROR;
		}
		a = queued_alert();
	}
	if (a) {
		snprintf(why, len, "peer %s refused us: %s", p, a);
		r = SL_TUNNEL_HANDSHAKE_FAILED;
	}
	ERR_clear_error();
	return r;
}

/* Outbound, the handshake done but no status yet: a failure is the peer refusing our
 * certificate (TLS 1.3 clients finish first), or an error. */
static void out_fail(struct tun *u, const char *what, int r, int e)
{
	char p[SL_HOSTPORT_LEN], why[320];
	int v = tun_peer_verdict(u, why, sizeof(why));

	if (v >= 0)
		return tun_fail(u, (enum sl_tunnel_result)v, "%s", why);
	tun_fail(u, SL_TUNNEL_ERROR, "%s %s: %s", what, peer_str(u, p, sizeof(p)),
		 tun_ssl_why(u->ssl, r, e));
}

static void st_send_header(struct tun *u)
{
	int r, e, w;

	for (int i = 0; i < STEP_TRIES && !u->tls_block; i++) {
		ERR_clear_error();
		r = SSL_write(u->ssl, (char *)&u->hdr + u->hdr_off,
			      (int)(sizeof(u->hdr) - u->hdr_off));
		if (r > 0) {
			u->hdr_off += (size_t)r;
			if (u->hdr_off == sizeof(u->hdr)) {
				u->state = TS_STATUS;
				return;
			}
			continue;
		}
		w = ssl_wait(u->ssl, r, &e);
		if (w < 0)
			return out_fail(u, "sending the header to", r, e);
		u->tls_block = (uint32_t)w;
	}
}

static const char *status_name(uint8_t st)
{
	switch (st) {
	case SL_TUNNEL_ST_DENIED:
		return "denied";
	case SL_TUNNEL_ST_UNKNOWN_TARGET:
		return "unknown target";
	case SL_TUNNEL_ST_UNREACHABLE:
		return "backend unreachable";
	default:
		return "unknown status";
	}
}

/* Outbound: the caller's bytes flow already; wait for the peer's verdict. */
static void st_status(struct tun *u)
{
	char p[SL_HOSTPORT_LEN];
	uint8_t st;
	int r, e, w, progress = 1;

	for (int i = 0; i < TUN_PUMP_ROUNDS && progress; i++) {
		progress = 0;
		tun_relay_up(u, &progress);
		if (u->state == TS_DEAD)
			return;
	}
	if (progress)
		tun_runq_add(u);
	if (u->down.src_block)
		return;
	ERR_clear_error();
	r = SSL_read(u->ssl, &st, 1);
	if (r == 1 && st == SL_TUNNEL_ST_OK) {
		tun_result(u, SL_TUNNEL_OK, "");
		tun_setup_done(u);
		u->state = TS_RELAY;
		return;
	}
	if (r == 1)
		return tun_fail(u, st == SL_TUNNEL_ST_DENIED ? SL_TUNNEL_DENIED : SL_TUNNEL_ERROR,
				"peer %s: %s", peer_str(u, p, sizeof(p)), status_name(st));
	w = ssl_wait(u->ssl, r, &e);
	if (w > 0) {
		u->down.src_block = (uint32_t)w;
		return;
	}
	/* TLS 1.3: the server checks the client's certificate after the client's handshake has
	 * completed, so its refusal (an alert) arrives here */
	out_fail(u, "waiting for the status from", r, e);
}

void tun_setup_refuse(struct tun *u, enum sl_tunnel_status st, enum sl_tunnel_result r,
		      const char *fmt, ...)
{
	uint8_t b = (uint8_t)st;
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* best effort: one byte and an alert fit any fresh socket buffer */
	ERR_clear_error();
	if (SSL_write(u->ssl, &b, 1) == 1)
		SSL_shutdown(u->ssl);
	ERR_clear_error();
	tun_kill(u, 1, 0);
	tun_result(u, r, why);
}

static const char *header_error(const struct sl_tunnel_hdr *h)
{
	static const uint8_t zero[12];

	if (memcmp(h->magic, SL_TUNNEL_MAGIC, sizeof(h->magic)))
		return "bad magic";
	if (h->version != SL_TUNNEL_VERSION)
		return "unsupported version";
	if (h->family != SLUICE_AF_INET && h->family != SLUICE_AF_INET6)
		return "bad address family";
	if (h->family == SLUICE_AF_INET && memcmp(h->addr + 4, zero, sizeof(zero)))
		return "IPv4 address not zero-padded";
	if (!h->port)
		return "port 0";
	if (!memchr(h->service, 0, sizeof(h->service)) || !sl_mtls_name_valid(h->service))
		return "bad service name";
	return NULL;
}

static void connect_backend(struct tun *u, const struct sl_sockaddr *to)
{
	char b[SL_HOSTPORT_LEN];
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc;

	u->backend = *to;
	sl_format_hostport(to, b, sizeof(b));
	fd = socket(to->family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return tun_setup_refuse(u, SL_TUNNEL_ST_UNREACHABLE, SL_TUNNEL_ERROR,
					"backend %s: socket: %s", b, strerror(errno));
	rc = tun_add_end(u, &u->plain, fd); /* u owns fd from here */
	if (rc)
		return tun_setup_refuse(u, SL_TUNNEL_ST_UNREACHABLE, SL_TUNNEL_ERROR,
					"backend %s: epoll: %s", b, strerror(-rc));
	tun_sockaddr_to(to, &ss, &len);
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		u->state = TS_ANSWER;
	} else if (errno == EINPROGRESS) {
		u->plain_block = EPOLLOUT;
		u->state = TS_BACKEND;
	} else {
		tun_setup_refuse(u, SL_TUNNEL_ST_UNREACHABLE, SL_TUNNEL_ERROR,
				 "connect to backend %s: %s", b, strerror(errno));
	}
}

/* Inbound: the whole header is in; ask the policy. */
static void header_done(struct tun *u)
{
	struct sl_tunnel_decision d = {0};
	char p[SL_HOSTPORT_LEN];
	const char *bad = header_error(&u->hdr);

	if (bad)
		return tun_fail(u, SL_TUNNEL_ERROR, "bad header from %s: %s",
				peer_str(u, p, sizeof(p)), bad);
	memcpy(u->service, u->hdr.service, sizeof(u->service));
	u->target.family = u->hdr.family;
	u->target.port = ntohs(u->hdr.port);
	memcpy(u->target.addr.a8, u->hdr.addr, sizeof(u->target.addr.a8));
	u->t->o.authorize(u->t->o.arg, u->identity, u->service, &u->target, &u->peer, &d);
	d.reason[sizeof(d.reason) - 1] = 0;
	switch (d.verdict) {
	case SL_TUNNEL_ALLOW:
		return connect_backend(u, d.connect_to.family ? &d.connect_to : &u->target);
	case SL_TUNNEL_NO_TARGET:
		return tun_setup_refuse(u, SL_TUNNEL_ST_UNKNOWN_TARGET, SL_TUNNEL_ERROR, "%s",
					d.reason[0] ? d.reason : "unknown target");
	default:
		return tun_setup_refuse(u, SL_TUNNEL_ST_DENIED, SL_TUNNEL_DENIED, "%s",
					d.reason[0] ? d.reason : "denied");
	}
}

static void st_read_header(struct tun *u)
{
	char p[SL_HOSTPORT_LEN];
	int r, e, w;

	for (int i = 0; i < STEP_TRIES && !u->down.src_block; i++) {
		ERR_clear_error();
		r = SSL_read(u->ssl, (char *)&u->hdr + u->hdr_off,
			     (int)(sizeof(u->hdr) - u->hdr_off));
		if (r > 0) {
			u->hdr_off += (size_t)r;
			if (u->hdr_off == sizeof(u->hdr))
				return header_done(u);
			continue;
		}
		w = ssl_wait(u->ssl, r, &e);
		if (w < 0)
			return tun_fail(u, SL_TUNNEL_ERROR, "reading the header from %s: %s",
					peer_str(u, p, sizeof(p)), tun_ssl_why(u->ssl, r, e));
		u->down.src_block = (uint32_t)w;
	}
}

static void st_backend(struct tun *u)
{
	char b[SL_HOSTPORT_LEN];
	socklen_t len = sizeof(int);
	int err = 0;

	if (u->plain_block)
		return;
	if (getsockopt(u->plain.src.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		sl_format_hostport(&u->backend, b, sizeof(b));
		return tun_setup_refuse(u, SL_TUNNEL_ST_UNREACHABLE, SL_TUNNEL_ERROR,
					"connect to backend %s: %s", b,
					strerror(err ? err : errno));
	}
	u->state = TS_ANSWER;
}

static void st_answer(struct tun *u)
{
	static const uint8_t ok = SL_TUNNEL_ST_OK;
	char p[SL_HOSTPORT_LEN];
	int r, e, w;

	if (u->tls_block)
		return;
	ERR_clear_error();
	r = SSL_write(u->ssl, &ok, 1);
	if (r == 1) {
		tun_result(u, SL_TUNNEL_OK, "");
		tun_setup_done(u);
		u->state = TS_RELAY;
		return;
	}
	w = ssl_wait(u->ssl, r, &e);
	if (w < 0)
		return tun_fail(u, SL_TUNNEL_ERROR, "answering %s: %s", peer_str(u, p, sizeof(p)),
				tun_ssl_why(u->ssl, r, e));
	u->tls_block = (uint32_t)w;
}

void tun_step(struct tun *u)
{
	/* a few transitions per event at most: CONNECT -> ... -> RELAY is five */
	for (int i = 0; i < 8; i++) {
		enum tun_state s = u->state;

		switch (s) {
		case TS_CONNECT:
			st_connect(u);
			break;
		case TS_HANDSHAKE:
			st_handshake(u);
			break;
		case TS_HEADER:
			if (u->dir == SL_TUNNEL_OUTBOUND)
				st_send_header(u);
			else
				st_read_header(u);
			break;
		case TS_STATUS:
			st_status(u);
			break;
		case TS_BACKEND:
			st_backend(u);
			break;
		case TS_ANSWER:
			st_answer(u);
			break;
		case TS_RELAY:
			tun_relay_pump(u);
			return;
		case TS_DEAD:
			return;
		}
		if (u->state == s)
			return;
	}
}

static int route_ok(const struct sl_tunnel_route *r)
{
	return (r->target.family == SLUICE_AF_INET || r->target.family == SLUICE_AF_INET6) &&
	       r->target.port && sl_mtls_name_valid(r->service) &&
	       sl_mtls_name_valid(r->identity) &&
	       (!r->via.family || r->via.family == SLUICE_AF_INET ||
		r->via.family == SLUICE_AF_INET6);
}

void tun_accept_outbound(struct sl_tunnel *t, int fd, const struct sl_sockaddr *caller)
{
	struct tun *u = tun_new(t, SL_TUNNEL_OUTBOUND);
	struct sl_tunnel_route r = {0};
	struct sockaddr_storage ss;
	char host[SL_HOSTPORT_LEN];
	socklen_t len;
	int rc, tfd;

	if (!u) {
		tun_close_fd(&fd, 1);
		return;
	}
	u->plain.src.fd = fd;
	rc = t->o.lookup(t->o.arg, fd, caller, &r);
	sl_format_hostport(caller, host, sizeof(host));
	if (rc || !route_ok(&r))
		return tun_fail(u, SL_TUNNEL_ERROR, "no route for caller %s: %s", host,
				rc ? strerror(-rc) : "the lookup gave an invalid route");
	memcpy(u->service, r.service, sizeof(u->service));
	memcpy(u->identity, r.identity, sizeof(u->identity));
	u->target = r.target;
	u->peer = r.via.family ? r.via : r.target;
	if (!r.via.family)
		u->peer.port = t->o.peer_port;
	u->certs = tun_certs_get(t);
	if (!sl_mtls_client_ctx(u->certs, u->identity))
		return tun_fail(u, SL_TUNNEL_ERROR, "no valid certificate for identity %s",
				u->identity);
	tun_sockaddr_to(&u->peer, &ss, &len); /* also the key of the peer's tickets */
	u->ssl = sl_mtls_client_ssl(u->certs, u->identity, &ss, len);
	tfd = socket(u->peer.family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!u->ssl || tfd < 0) {
		tun_close_fd(&tfd, 0);
		return tun_fail(u, SL_TUNNEL_ERROR, "tunnel socket: %s",
				u->ssl ? strerror(errno) : "SSL_new failed");
	}
	u->tls.src.fd = tfd;
	if (!SSL_set_fd(u->ssl, tfd) || (rc = tun_add_end(u, &u->plain, fd)) ||
	    (rc = tun_add_end(u, &u->tls, tfd)))
		return tun_fail(u, SL_TUNNEL_ERROR, "tunnel setup: %s",
				rc ? strerror(-rc) : "SSL_set_fd failed");
	SSL_set_connect_state(u->ssl);
	if (connect(tfd, (struct sockaddr *)&ss, len) == 0) {
		u->state = TS_HANDSHAKE;
	} else if (errno == EINPROGRESS) {
		u->state = TS_CONNECT;
		u->tls_block = EPOLLOUT;
		return;
	} else {
		sl_format_hostport(&u->peer, host, sizeof(host));
		return tun_fail(u, SL_TUNNEL_ERROR, "connect to peer %s: %s", host,
				strerror(errno));
	}
	u->hs_start_ns = tun_now_ns();
	tun_step(u);
}

void tun_accept_inbound(struct sl_tunnel *t, int fd, const struct sl_sockaddr *peer)
{
	struct tun *u = tun_new(t, SL_TUNNEL_INBOUND);
	SSL_CTX *ctx;
	int rc;

	if (!u) {
		tun_close_fd(&fd, 1);
		return;
	}
	u->tls.src.fd = fd;
	u->peer = *peer;
	u->certs = tun_certs_get(t);
	ctx = sl_mtls_server_ctx(u->certs);
	if (!ctx)
		return tun_fail(u, SL_TUNNEL_HANDSHAKE_FAILED, "no valid node certificate");
	u->ssl = SSL_new(ctx);
	if (!u->ssl || !SSL_set_fd(u->ssl, fd))
		return tun_fail(u, SL_TUNNEL_ERROR, "SSL_new/SSL_set_fd failed");
	rc = tun_add_end(u, &u->tls, fd);
	if (rc)
		return tun_fail(u, SL_TUNNEL_ERROR, "epoll: %s", strerror(-rc));
	SSL_set_accept_state(u->ssl);
	u->state = TS_HANDSHAKE;
	tun_step(u);
}
