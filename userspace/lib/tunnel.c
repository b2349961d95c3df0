// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tunnel engine's thread and lifecycle (tunnel.h): listeners, accepting, the setup
 * deadline list, results and counters, closing, and the kTLS probe. Setup steps are in
 * tunnel_setup.c, the relay in tunnel_relay.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "metrics.h"
#include "tunnel_int.h"

#define EP_EVENTS	      64
#define PAUSE_NS	      (100 * 1000000ULL) /* a listener's rest when out of fds */
#define END_EVENTS	      (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

_Static_assert(sizeof(struct sl_tunnel_stats) % sizeof(uint64_t) == 0,
	       "stats are read as an array of u64");

static const char *const dir_names[SL_TUNNEL_DIRS] = {"outbound", "inbound"};
static const char *const result_names[SL_TUNNEL_RESULTS] = {"ok", "handshake_failed", "denied",
							    "error"};

const char *sl_tunnel_dir_name(enum sl_tunnel_dir d)
{
	return (unsigned int)d < SL_TUNNEL_DIRS ? dir_names[d] : "unknown";
}

const char *sl_tunnel_result_name(enum sl_tunnel_result r)
{
	return (unsigned int)r < SL_TUNNEL_RESULTS ? result_names[r] : "unknown";
}

uint64_t tun_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void tun_count(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

/* Why an SSL call failed, for events: the verify reason, OpenSSL's, or errno's. */
const char *tun_ssl_why(SSL *ssl, int ret, int err)
{
	const char *v = ssl ? sl_mtls_verify_reason(ssl) : NULL;
	unsigned long e = ERR_peek_last_error();

	if (v)
		return v;
	if (err == SSL_ERROR_ZERO_RETURN)
		return "the peer closed the TLS session";
	if (e && ERR_reason_error_string(e))
		return ERR_reason_error_string(e);
	if (err == SSL_ERROR_SYSCALL)
		return ret == 0 || !errno ? "the peer closed the connection" : strerror(errno);
	return "TLS error";
}

static void emit(struct tun *u, enum sl_tunnel_event_kind kind, const char *reason, int aborted)
{
	struct sl_tunnel_event ev = {
	    .kind = kind,
	    .dir = u->dir,
	    .result = u->result,
	    .service = u->service,
	    .identity = u->identity,
	    .reason = reason ? reason : "",
	    .peer_serial = u->peer_serial,
	    .peer = u->peer,
	    .target = u->target,
	    .handshake_ns = u->handshake_ns,
	    .tx_bytes = u->up.bytes,
	    .rx_bytes = u->down.bytes,
	    .aborted = aborted,
	    .ktls_tx = u->up.splice,
	    .ktls_rx = u->down.splice,
	};
	if (u->t->o.on_event)
		u->t->o.on_event(u->t->o.arg, &ev);
}

void tun_result(struct tun *u, enum sl_tunnel_result r, const char *reason)
{
	if (u->result_done)
		return;
	u->result_done = 1;
	u->result = r;
	tun_count(&u->t->st.results[u->dir][r], 1);
	emit(u, SL_TUNNEL_EV_RESULT, r == SL_TUNNEL_OK ? "" : reason, 0);
}

static void setup_unlink(struct tun *u)
{
	struct sl_tunnel *t = u->t;

	if (!u->in_setup)
		return;
	if (u->sprev)
		u->sprev->snext = u->snext;
	else
		t->setup_head = u->snext;
	if (u->snext)
		u->snext->sprev = u->sprev;
	else
		t->setup_tail = u->sprev;
	u->snext = u->sprev = NULL;
	u->in_setup = 0;
}

void tun_setup_done(struct tun *u)
{
	setup_unlink(u);
}

void tun_runq_add(struct tun *u)
{
	if (u->on_runq || u->state == TS_DEAD)
		return;
	u->on_runq = 1;
	u->rnext = u->t->runq;
	u->t->runq = u;
}

void tun_close_fd(int *fd, int reset)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	if (*fd < 0)
		return;
	if (reset)
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(*fd);
	*fd = -1;
}

/* Close everything of u now (with resets or not); the memory goes at the end of the round. */
void tun_kill(struct tun *u, int reset_plain, int reset_tls)
{
	struct sl_tunnel *t = u->t;

	if (u->state == TS_DEAD)
		return;
	setup_unlink(u);
	if (u->ssl) {
		SSL_free(u->ssl);
		u->ssl = NULL;
	}
	ERR_clear_error();
	tun_close_fd(&u->plain.src.fd, reset_plain);
	tun_close_fd(&u->tls.src.fd, reset_tls);
	tun_relay_free(u);
	if (u->prev)
		u->prev->next = u->next;
	else
		t->all = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->state = TS_DEAD;
	t->n_tunnels--;
	__atomic_sub_fetch(&t->st.active[u->dir], 1, __ATOMIC_RELAXED);
	if (!u->on_runq) { /* a queued one is reaped when the queue is run */
		u->rnext = t->dead;
		t->dead = u;
	}
}

void tun_fail(struct tun *u, enum sl_tunnel_result r, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	tun_kill(u, 1, 1); /* first, so that the gauge is right when the event comes */
	tun_result(u, r, why);
}

void tun_abort(struct tun *u, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!u->result_done) {
		char said[320];
		int v = tun_peer_verdict(u, said, sizeof(said));
		tun_kill(u, 1, 1);
		tun_result(u, v >= 0 ? (enum sl_tunnel_result)v : SL_TUNNEL_ERROR,
			   v >= 0 ? said : why);
		return;
	}
	tun_kill(u, 1, 1);
	if (u->result == SL_TUNNEL_OK) {
		tun_count(&u->t->st.aborted[u->dir], 1);
		emit(u, SL_TUNNEL_EV_CLOSE, why, 1);
	}
}

void tun_finish(struct tun *u)
{
	tun_kill(u, 0, 0);
	emit(u, SL_TUNNEL_EV_CLOSE, "", 0);
}

static void end_event(struct tun_src *s, uint32_t events)
{
	struct tun_end *e = container_of(s, struct tun_end, src);
	struct tun *u = e->tun;
	uint32_t bits = events & (EPOLLIN | EPOLLOUT);
	int err = 0;
	socklen_t len = sizeof(err);

	if (u->state == TS_DEAD)
		return;
	if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
		bits = EPOLLIN | EPOLLOUT; /* let every waiting operation see it */
	/* A reset on a side nothing reads or writes now must still end the tunnel at once;
	 * during setup the steps see their own errors (connect, handshake). */
	if ((events & EPOLLERR) &&
	    (u->state == TS_RELAY || (e == &u->plain && u->dir == SL_TUNNEL_OUTBOUND)) &&
	    !getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) && err) {
		tun_abort(u, "%s: %s",
			  e == &u->plain ? (u->dir == SL_TUNNEL_OUTBOUND ? "caller" : "backend")
					 : "peer",
			  strerror(err));
		return;
	}
	if (e == &u->plain) {
		u->plain_block &= ~bits;
		u->up.src_block &= ~bits;
		u->down.dst_block &= ~bits;
	} else {
		u->tls_block &= ~bits;
		u->up.dst_block &= ~bits;
		u->down.src_block &= ~bits;
	}
	tun_step(u);
}

int tun_add_end(struct tun *u, struct tun_end *e, int fd)
{
	struct epoll_event ev = {.events = END_EVENTS, .data.ptr = &e->src};
	int one = 1;

	/* The relay already writes what it has in one go: Nagle would only hold a
	 * small write (the header, a request) for the peer's delayed ACK, 40 ms. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	e->src.fd = fd;
	e->src.fn = end_event;
	e->tun = u;
	return epoll_ctl(u->t->ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

struct sl_mtls *tun_certs_get(struct sl_tunnel *t)
{
	struct sl_mtls *m;

	pthread_mutex_lock(&t->certs_lock);
	m = sl_mtls_ref(t->certs);
	pthread_mutex_unlock(&t->certs_lock);
	return m;
}

static void hs_observe(struct sl_tunnel *t, enum sl_tunnel_dir d, uint64_t ns)
{
	struct sluice_hist *h = &t->st.handshake[d];
	uint64_t us = ns / 1000;
	unsigned int b = sl_hist_bucket(us);

	__atomic_add_fetch(b < SLUICE_HIST_BUCKETS ? &h->buckets[b] : &h->overflow, 1,
			   __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->sum_us, us, __ATOMIC_RELAXED);
}

void tun_handshake_done(struct tun *u)
{
	u->handshake_ns = tun_now_ns() - u->hs_start_ns;
	hs_observe(u->t, u->dir, u->handshake_ns);
	if (SSL_session_reused(u->ssl))
		tun_count(&u->t->st.resumed[u->dir], 1);
}

struct tun *tun_new(struct sl_tunnel *t, enum sl_tunnel_dir dir)
{
	struct tun *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->t = t;
	u->dir = dir;
	u->plain.src.fd = u->tls.src.fd = -1;
	u->up.pipe[0] = u->up.pipe[1] = u->down.pipe[0] = u->down.pipe[1] = -1;
	u->start_ns = u->hs_start_ns = tun_now_ns();
	u->deadline_ns = u->start_ns + (uint64_t)t->o.handshake_timeout_ms * 1000000ULL;
	u->next = t->all;
	if (t->all)
		t->all->prev = u;
	t->all = u;
	u->sprev = t->setup_tail;
	if (t->setup_tail)
		t->setup_tail->snext = u;
	else
		t->setup_head = u;
	t->setup_tail = u;
	u->in_setup = 1;
	t->n_tunnels++;
	tun_count(&t->st.active[dir], 1);
	return u;
}

static void listener_pause(struct tun_listener *l, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = &l->src};

	epoll_ctl(l->t->ep, EPOLL_CTL_MOD, l->src.fd, &ev);
}

static void listener_event(struct tun_src *s, uint32_t events)
{
	struct tun_listener *l = container_of(s, struct tun_listener, src);
	struct sl_tunnel *t = l->t;
	struct sockaddr_storage ss;
	struct sl_sockaddr from;
	socklen_t len;
	int fd;

	(void)events;
	for (int i = 0; i < TUN_ACCEPT_BURST; i++) {
		len = sizeof(ss);
		fd = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* level-triggered: rest a moment rather than spin */
				l->paused_until_ns = tun_now_ns() + PAUSE_NS;
				listener_pause(l, 0);
			}
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		tun_sockaddr_from(&ss, &from);
		if (t->n_tunnels >= t->o.max_tunnels) {
			tun_count(&t->st.results[l->dir][SL_TUNNEL_ERROR], 1);
			tun_close_fd(&fd, 1);
			continue;
		}
		if (l->dir == SL_TUNNEL_OUTBOUND)
			tun_accept_outbound(t, fd, &from);
		else
			tun_accept_inbound(t, fd, &from);
	}
}

static void stop_event(struct tun_src *s, uint32_t events)
{
	struct sl_tunnel *t = container_of(s, struct sl_tunnel, stop);
	uint64_t v;

	(void)events;
	if (read(s->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	t->stopping = 1;
}

/* Setups past their deadline fail; listeners at rest wake up. The epoll timeout until the
 * next of those, in ms (-1: none). */
static int timers(struct sl_tunnel *t)
{
	uint64_t now = tun_now_ns(), next = UINT64_MAX;

	while (t->setup_head && t->setup_head->deadline_ns <= now) {
		struct tun *u = t->setup_head;
		tun_count(&t->st.timeouts[u->dir], 1);
		tun_fail(u, u->state <= TS_HANDSHAKE ? SL_TUNNEL_HANDSHAKE_FAILED : SL_TUNNEL_ERROR,
			 "setup timed out after %u ms (%s)", t->o.handshake_timeout_ms,
			 u->state <= TS_HANDSHAKE ? "handshake" : "header/status");
	}
	if (t->setup_head)
		next = t->setup_head->deadline_ns;
	for (int d = 0; d < SL_TUNNEL_DIRS; d++)
		for (size_t i = 0; i < t->n_lis[d]; i++) {
			struct tun_listener *l = &t->lis[d][i];
			if (!l->paused_until_ns)
				continue;
			if (l->paused_until_ns <= now) {
				l->paused_until_ns = 0;
				listener_pause(l, EPOLLIN);
			} else if (l->paused_until_ns < next) {
				next = l->paused_until_ns;
			}
		}
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now + 999999) / 1000000);
}

static void reap(struct sl_tunnel *t)
{
	while (t->dead) {
		struct tun *u = t->dead;
		t->dead = u->rnext;
		sl_mtls_unref(u->certs);
		free(u);
	}
}

static void run_queue(struct sl_tunnel *t)
{
	struct tun *q = t->runq;

	t->runq = NULL;
	while (q) {
		struct tun *u = q;
		q = u->rnext;
		u->on_runq = 0;
		if (u->state == TS_DEAD) {
			u->rnext = t->dead;
			t->dead = u;
		} else {
			tun_step(u);
		}
	}
}

static void *tunnel_main(void *arg)
{
	struct sl_tunnel *t = arg;
	struct epoll_event ev[EP_EVENTS];

	while (!t->stopping) {
		int timeout = timers(t), n;

		if (t->runq)
			timeout = 0;
		n = epoll_wait(t->ep, ev, EP_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			sl_error("tunnel: epoll_wait failed, relay stopped", "error=\"%s\"",
				 strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct tun_src *s = ev[i].data.ptr;
			s->fn(s, ev[i].events);
		}
		run_queue(t);
		reap(t);
	}
	return NULL;
}

static int listen_on(struct sl_tunnel *t, enum sl_tunnel_dir d, const struct sl_sockaddr *a,
		     char *err, size_t errlen)
{
	struct tun_listener *l = &t->lis[d][t->n_lis[d]];
	static const uint8_t any6[16];
	struct sockaddr_storage ss;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->src};
	char host[SL_HOSTPORT_LEN];
	const char *what = "socket";
	socklen_t len;
	int one = 1, v6only = memcmp(a->addr.a8, any6, 16) != 0;
	int fd = socket(a->family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	tun_sockaddr_to(a, &ss, &len);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (a->family == SLUICE_AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only))) ||
	    (what = "bind", bind(fd, (struct sockaddr *)&ss, len)) ||
	    (what = "listen", listen(fd, SOMAXCONN)) ||
	    (what = "getsockname", getsockname(fd, (struct sockaddr *)&ss, &len)) ||
	    (what = "epoll", epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev))) {
		sl_format_hostport(a, host, sizeof(host));
		snprintf(err, errlen, "%s %s %s: %s", sl_tunnel_dir_name(d), what, host,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	l->src.fd = fd;
	l->src.fn = listener_event;
	l->t = t;
	l->dir = d;
	tun_sockaddr_from(&ss, &l->addr);
	t->n_lis[d]++;
	return 0;
}

static int opts_ok(const struct sl_tunnel_opts *o, char *err, size_t errlen)
{
	const char *why = NULL;

	if (!o->certs)
		why = "no certificates";
	else if (o->n_outbound > SL_TUNNEL_MAX_LISTEN || o->n_inbound > SL_TUNNEL_MAX_LISTEN)
		why = "too many listen addresses";
	else if (o->n_outbound && !o->lookup)
		why = "outbound listeners need a lookup callback";
	else if (o->n_inbound && !o->authorize)
		why = "inbound listeners need an authorize callback";
	if (why)
		snprintf(err, errlen, "tunnel: %s", why);
	return why == NULL;
}

struct sl_tunnel *sl_tunnel_new(const struct sl_tunnel_opts *o, char *err, size_t errlen)
{
	struct sl_tunnel *t;
	sigset_t all, old;
	int rc;

	if (!opts_ok(o, err, errlen))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "tunnel: out of memory");
		return NULL;
	}
	t->o = *o;
	t->o.outbound = t->o.inbound = NULL;
	if (!t->o.handshake_timeout_ms)
		t->o.handshake_timeout_ms = TUN_DEFAULT_HS_MS;
	if (!t->o.max_tunnels)
		t->o.max_tunnels = TUN_DEFAULT_MAX;
	t->certs = sl_mtls_ref(o->certs);
	pthread_mutex_init(&t->certs_lock, NULL);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->stop.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->stop.fn = stop_event;
	if (t->ep < 0 || t->stop.fd < 0 ||
	    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->stop.fd,
		      &(struct epoll_event){.events = EPOLLIN, .data.ptr = &t->stop})) {
		snprintf(err, errlen, "tunnel: epoll/eventfd: %s", strerror(errno));
		sl_tunnel_free(t);
		return NULL;
	}
	for (size_t i = 0; i < o->n_outbound; i++)
		if (listen_on(t, SL_TUNNEL_OUTBOUND, &o->outbound[i], err, errlen))
			goto fail;
	for (size_t i = 0; i < o->n_inbound; i++)
		if (listen_on(t, SL_TUNNEL_INBOUND, &o->inbound[i], err, errlen))
			goto fail;
	/* the thread starts with every signal blocked (see tunnel.h) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->thread, NULL, tunnel_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "tunnel: thread: %s", strerror(rc));
		goto fail;
	}
	t->started = 1;
	return t;
fail:
	sl_tunnel_free(t);
	return NULL;
}

void sl_tunnel_free(struct sl_tunnel *t)
{
	uint64_t one = 1;

	if (!t)
		return;
	if (t->started) {
		if (write(t->stop.fd, &one, sizeof(one)) != sizeof(one))
			sl_error("tunnel: cannot wake the relay thread", "error=\"%s\"",
				 strerror(errno));
		pthread_join(t->thread, NULL);
	}
	t->o.on_event = NULL; /* no callbacks from this thread */
	while (t->all)
		tun_abort(t->all, "shutting down");
	run_queue(t);
	reap(t);
	for (int d = 0; d < SL_TUNNEL_DIRS; d++)
		for (size_t i = 0; i < t->n_lis[d]; i++)
			close(t->lis[d][i].src.fd);
	if (t->stop.fd >= 0)
		close(t->stop.fd);
	if (t->ep >= 0)
		close(t->ep);
	while (t->n_spare)
		free(t->spare[--t->n_spare]);
	sl_mtls_unref(t->certs);
	pthread_mutex_destroy(&t->certs_lock);
	free(t);
}

int sl_tunnel_listen_addr(const struct sl_tunnel *t, enum sl_tunnel_dir dir, size_t i,
			  struct sl_sockaddr *out)
{
	if ((unsigned int)dir >= SL_TUNNEL_DIRS || i >= t->n_lis[dir])
		return -ENOENT;
	*out = t->lis[dir][i].addr;
	return 0;
}

void sl_tunnel_set_certs(struct sl_tunnel *t, struct sl_mtls *certs)
{
	struct sl_mtls *old;

	sl_mtls_ref(certs);
	pthread_mutex_lock(&t->certs_lock);
	old = t->certs;
	t->certs = certs;
	pthread_mutex_unlock(&t->certs_lock);
	sl_mtls_unref(old);
}

void sl_tunnel_get_stats(const struct sl_tunnel *t, struct sl_tunnel_stats *out)
{
	const uint64_t *src = (const uint64_t *)&t->st;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int sl_tunnel_ktls_supported(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, s = -1, rc;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len) ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) ||
	    (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		rc = -errno;
	} else if (setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		rc = 1;
	} else {
		rc = errno == ENOENT ? 0 : -errno;
	}
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return rc;
}
