// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The mTLS tunnel engine (tunnel.c) end to end, on loopback only: two engines in this process,
 * node A (outbound listeners on 127.0.0.1 and ::1) and node B (inbound on 127.0.0.1 and ::1),
 * certificates from tools/mkcerts.sh, a fake route lookup (the caller's source address picks
 * its identity: 127.0.0.1 and ::1 frontend, 127.0.0.2 batch, 127.0.0.3 ghost, which has no
 * certificate) and a fake policy (frontend may call web, nobody else). The backend is a
 * thread per connection speaking a tiny binary test protocol:
 *
 *   client -> backend: struct req {reply_len, mode, seed}, then the client's bytes
 *   XFER:  the backend sends reply_len bytes of stream(seed) while reading the client's bytes
 *          to EOF, then the 32-byte SHA-256 of what it read, then closes
 *   SHUT:  the backend sends reply_len bytes, half-closes, then reads to EOF (recorded)
 *   ECHO:  everything back, until EOF
 *   RESET: reply_len bytes, then a reset
 *
 * so a client checks both directions byte for byte (and by SHA-256) on its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tunnel.h"

int mtls_test_mkcerts(const char *dir, const char *args, const char *out); /* test_mtls_certs.c */

#define MiB	   (1024 * 1024)
#define IO_MS	   60000 /* any one transfer */
#define MAX_CONNS  128
#define DIGEST_LEN 32
#define CHUNK	   (64 * 1024)

enum mode { MODE_XFER = 0, MODE_SHUT = 1, MODE_ECHO = 2, MODE_RESET = 3 };

struct req {
	uint64_t reply_len;
	uint32_t mode;
	uint32_t seed;
};

/* Timeouts stretch under valgrind (every handshake is ~50 times slower there). */
static unsigned int slow = 1;

static void detect_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	if (p && strstr(p, "vgpreload"))
		slow = 10;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- deterministic byte streams ---- */

struct stream {
	uint64_t s;
	unsigned char pend[8];
	size_t npend;
};

static void stream_init(struct stream *st, uint32_t seed)
{
	st->s = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)seed << 17) ^ seed;
	st->npend = 0;
}

static void stream_fill(struct stream *st, unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!st->npend) {
			st->s ^= st->s << 13;
			st->s ^= st->s >> 7;
			st->s ^= st->s << 17;
			memcpy(st->pend, &st->s, 8);
			st->npend = 8;
		}
		b[i] = st->pend[8 - st->npend--];
	}
}

/* ---- the backend ---- */

struct rec {
	int mode;
	uint64_t in_bytes;
	unsigned char sha[DIGEST_LEN];
	int err; /* errno of a failed read or write, 0 */
	int done;
};

static struct {
	int lfd[2];
	struct sl_sockaddr addr[2]; /* 127.0.0.1, ::1 */
	int dead_fd;		    /* bound, never listening: connections to it are refused */
	struct sl_sockaddr dead;
	int stop[2];
	pthread_t acceptor;
	int acceptor_up;
	pthread_mutex_t lock;
	pthread_t th[MAX_CONNS];
	int fd[MAX_CONNS];
	struct rec rec[MAX_CONNS];
	size_t n;
	volatile int stopping;
} be;

/* Wait for fd to be ready for ev; 1 ready, 0 timeout or stop. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};

	while (!be.stopping && now_ms() < deadline) {
		int r = poll(&p, 1, 100);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
	return 0;
}

static int send_all(int fd, const void *b, size_t n, uint64_t deadline)
{
	const char *p = b;

	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			if (!wait_fd(fd, POLLOUT, deadline))
				return -ETIMEDOUT;
		} else {
			return -errno;
		}
	}
	return 0;
}

static int recv_all(int fd, void *b, size_t n, uint64_t deadline)
{
	char *p = b;

	while (n) {
		ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
		} else if (r == 0) {
			return -EPIPE;
		} else if (errno == EAGAIN) {
			if (!wait_fd(fd, POLLIN, deadline))
				return -ETIMEDOUT;
		} else {
			return -errno;
		}
	}
	return 0;
}

/* XFER: send reply_len bytes of stream(seed) while hashing the input to EOF, then the digest. */
static void be_xfer(int fd, const struct req *q, struct rec *rec, uint64_t deadline)
{
	unsigned char in[CHUNK], out[CHUNK];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct stream st;
	uint64_t sent = 0;
	size_t olen = 0, ooff = 0;
	int eof = 0;

	stream_init(&st, q->seed);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while ((!eof || sent < q->reply_len) && now_ms() < deadline && !be.stopping) {
		struct pollfd p = {
		    .fd = fd, .events = (eof ? 0 : POLLIN) | (sent < q->reply_len ? POLLOUT : 0)};
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (!eof) {
			ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			if (r > 0) {
				EVP_DigestUpdate(md, in, (size_t)r);
				rec->in_bytes += (uint64_t)r;
			} else if (r == 0) {
				eof = 1;
			} else if (errno != EAGAIN) {
				rec->err = errno;
				break;
			}
		}
		if (sent < q->reply_len) {
			if (ooff == olen) {
				olen = q->reply_len - sent < sizeof(out) ? q->reply_len - sent
									 : sizeof(out);
				stream_fill(&st, out, olen);
				ooff = 0;
			}
			ssize_t w = send(fd, out + ooff, olen - ooff, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				ooff += (size_t)w;
				sent += (uint64_t)w;
			} else if (w < 0 && errno != EAGAIN) {
				rec->err = errno;
				break;
			}
		}
	}
	EVP_DigestFinal_ex(md, rec->sha, NULL);
	EVP_MD_CTX_free(md);
	if (!rec->err && eof && sent == q->reply_len) {
		int r = send_all(fd, rec->sha, DIGEST_LEN, deadline);
		if (r)
			rec->err = -r;
	}
}

static void be_shut(int fd, const struct req *q, struct rec *rec, uint64_t deadline)
{
	unsigned char b[CHUNK];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct stream st;
	uint64_t left = q->reply_len;
	int r = 0;

	stream_init(&st, q->seed);
	while (left && !r) {
		size_t n = left < sizeof(b) ? left : sizeof(b);
		stream_fill(&st, b, n);
		r = send_all(fd, b, n, deadline);
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (!r) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			EVP_DigestUpdate(md, b, (size_t)n);
			rec->in_bytes += (uint64_t)n;
		} else if (n == 0) {
			break;
		} else if (errno != EAGAIN) {
			r = -errno;
		} else if (!wait_fd(fd, POLLIN, deadline)) {
			r = -ETIMEDOUT;
		}
	}
	EVP_DigestFinal_ex(md, rec->sha, NULL);
	EVP_MD_CTX_free(md);
	rec->err = -r;
}

static void be_echo(int fd, struct rec *rec, uint64_t deadline)
{
	unsigned char b[CHUNK];
	int r = 0;

	while (!r) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			rec->in_bytes += (uint64_t)n;
			r = send_all(fd, b, (size_t)n, deadline);
		} else if (n == 0) {
			break;
		} else if (errno != EAGAIN) {
			r = -errno;
		} else if (!wait_fd(fd, POLLIN, deadline)) {
			r = -ETIMEDOUT;
		}
	}
	rec->err = -r;
}

static void reset_close(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void *be_conn(void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;
	uint64_t deadline = now_ms() + IO_MS;
	struct rec *rec = &be.rec[i];
	int fd = be.fd[i];
	struct req q;
	int r = recv_all(fd, &q, sizeof(q), deadline);

	if (r) {
		rec->err = -r;
	} else {
		rec->mode = (int)q.mode;
		if (q.mode == MODE_XFER)
			be_xfer(fd, &q, rec, deadline);
		else if (q.mode == MODE_SHUT)
			be_shut(fd, &q, rec, deadline);
		else if (q.mode == MODE_ECHO)
			be_echo(fd, rec, deadline);
	}
	if (!r && q.mode == MODE_RESET) {
		unsigned char b[1000] = {0};
		send_all(fd, b, sizeof(b), deadline);
		usleep(100 * 1000); /* let the bytes leave first */
		reset_close(fd);
	} else {
		close(fd);
	}
	pthread_mutex_lock(&be.lock);
	rec->done = 1;
	pthread_mutex_unlock(&be.lock);
	return NULL;
}

static void *be_accept(void *arg)
{
	struct pollfd p[3] = {{.fd = be.lfd[0], .events = POLLIN},
			      {.fd = be.lfd[1], .events = POLLIN},
			      {.fd = be.stop[0], .events = POLLIN}};

	(void)arg;
	while (!be.stopping) {
		if (poll(p, 3, 1000) <= 0 || p[2].revents)
			continue;
		for (int k = 0; k < 2; k++) {
			int fd;
			if (!(p[k].revents & POLLIN))
				continue;
			fd = accept4(be.lfd[k], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			pthread_mutex_lock(&be.lock);
			if (be.n == MAX_CONNS) {
				pthread_mutex_unlock(&be.lock);
				close(fd);
				continue;
			}
			be.fd[be.n] = fd;
			if (pthread_create(&be.th[be.n], NULL, be_conn, (void *)(uintptr_t)be.n))
				close(fd);
			else
				be.n++;
			pthread_mutex_unlock(&be.lock);
		}
	}
	return NULL;
}

static int parse_sa(const char *s, struct sl_sockaddr *a)
{
	const char *why;

	return sl_parse_hostport(s, a, &why);
}

static int sock_at(const char *hostport, struct sl_sockaddr *bound, int do_listen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct sl_sockaddr a;
	int fd, one = 1;

	if (parse_sa(hostport, &a))
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (a.family == SLUICE_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a.addr.a8, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a.addr.a8, 16);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) ||
	    (do_listen && listen(fd, 256)) || getsockname(fd, (struct sockaddr *)&ss, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*bound = a;
	bound->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static int listen_at(const char *hostport, struct sl_sockaddr *bound)
{
	return sock_at(hostport, bound, 1);
}

static int bind_only(const char *hostport, struct sl_sockaddr *bound)
{
	return sock_at(hostport, bound, 0);
}

static int be_start(void)
{
	pthread_mutex_init(&be.lock, NULL);
	be.lfd[0] = listen_at("127.0.0.1:1", &be.addr[0]);
	be.lfd[1] = listen_at("[::1]:1", &be.addr[1]);
	be.dead_fd = bind_only("127.0.0.1:1", &be.dead);
	if (be.lfd[0] < 0 || be.lfd[1] < 0 || be.dead_fd < 0 || pipe2(be.stop, O_CLOEXEC))
		return -1;
	if (pthread_create(&be.acceptor, NULL, be_accept, NULL))
		return -1;
	be.acceptor_up = 1;
	return 0;
}

static void be_stop(void)
{
	be.stopping = 1;
	if (be.acceptor_up) {
		if (write(be.stop[1], "x", 1) != 1)
			perror("backend stop");
		pthread_join(be.acceptor, NULL);
	}
	for (size_t i = 0; i < be.n; i++)
		pthread_join(be.th[i], NULL);
	for (int k = 0; k < 2; k++)
		if (be.lfd[k] >= 0)
			close(be.lfd[k]);
	if (be.dead_fd >= 0)
		close(be.dead_fd);
}

static size_t be_accepted(void)
{
	size_t n;

	pthread_mutex_lock(&be.lock);
	n = be.n;
	pthread_mutex_unlock(&be.lock);
	return n;
}

/* The record of backend connection i once it is done; 0, or -1 after ms. */
static int be_wait_rec(size_t i, int ms, struct rec *out)
{
	uint64_t end = now_ms() + (uint64_t)ms * slow;

	while (now_ms() < end) {
		int done = 0;
		pthread_mutex_lock(&be.lock);
		if (i < be.n && be.rec[i].done) {
			*out = be.rec[i];
			done = 1;
		}
		pthread_mutex_unlock(&be.lock);
		if (done)
			return 0;
		usleep(10 * 1000);
	}
	return -1;
}

/* ---- events ---- */

static struct {
	pthread_mutex_t lock;
	int results[SL_TUNNEL_DIRS][SL_TUNNEL_RESULTS];
	int closes[SL_TUNNEL_DIRS];
	int aborted[SL_TUNNEL_DIRS];
	char reason[SL_TUNNEL_DIRS][320];
	char serial[SL_TUNNEL_DIRS][SL_MTLS_SERIAL_LEN];
	char identity[SL_TUNNEL_DIRS][SLUICE_NAME_LEN];
} evs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_event(void *arg, const struct sl_tunnel_event *ev)
{
	(void)arg;
	pthread_mutex_lock(&evs.lock);
	if (ev->kind == SL_TUNNEL_EV_RESULT) {
		evs.results[ev->dir][ev->result]++;
		snprintf(evs.reason[ev->dir], sizeof(evs.reason[0]), "%s", ev->reason);
		snprintf(evs.serial[ev->dir], sizeof(evs.serial[0]), "%s", ev->peer_serial);
		snprintf(evs.identity[ev->dir], sizeof(evs.identity[0]), "%s", ev->identity);
	} else {
		evs.closes[ev->dir]++;
		evs.aborted[ev->dir] += ev->aborted;
	}
	pthread_mutex_unlock(&evs.lock);
}

/* Wait until *counter (in evs) reaches want; its value then (or after ms). */
static int wait_ev(const int *counter, int want, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms * slow;
	int v;

	for (;;) {
		pthread_mutex_lock(&evs.lock);
		v = *counter;
		pthread_mutex_unlock(&evs.lock);
		if (v >= want || now_ms() >= end)
			return v;
		usleep(5 * 1000);
	}
}

static void ev_reason(enum sl_tunnel_dir d, char *buf, size_t len)
{
	pthread_mutex_lock(&evs.lock);
	snprintf(buf, len, "%s", evs.reason[d]);
	pthread_mutex_unlock(&evs.lock);
}

static void ev_serial(enum sl_tunnel_dir d, char *buf, size_t len)
{
	pthread_mutex_lock(&evs.lock);
	snprintf(buf, len, "%s", evs.serial[d]);
	pthread_mutex_unlock(&evs.lock);
}

/* ---- the two nodes ---- */

static struct {
	char dir[64];
	char ca[128];
	struct sl_tunnel *a, *b;
	struct sl_sockaddr a_out[2]; /* 127.0.0.1, ::1 */
	struct sl_sockaddr b_in[2];
} w;

static int lookup(void *arg, int fd, const struct sl_sockaddr *caller, struct sl_tunnel_route *out)
{
	struct sl_sockaddr v4 = {0};
	int six = caller->family == SLUICE_AF_INET6;

	(void)arg, (void)fd;
	parse_sa("127.0.0.1:1", &v4);
	if (six)
		strcpy(out->identity, "frontend");
	else if (caller->addr.a8[3] == 1)
		strcpy(out->identity, "frontend");
	else if (caller->addr.a8[3] == 2)
		strcpy(out->identity, "batch");
	else if (caller->addr.a8[3] == 3)
		strcpy(out->identity, "ghost");
	else
		return -ENOENT;
	strcpy(out->service, "web");
	out->target = be.addr[six];
	if (six) /* IPv4 goes the default way: the target's address on peer_port */
		out->via = w.b_in[1];
	return 0;
}

static void authorize(void *arg, const char *identity, const char *service,
		      const struct sl_sockaddr *target, const struct sl_sockaddr *peer,
		      struct sl_tunnel_decision *out)
{
	(void)arg, (void)peer;
	if (!strcmp(service, "dead")) { /* a service whose backend refuses connections */
		out->connect_to = be.dead;
		return;
	}
	if (strcmp(service, "web") ||
	    (!sl_sockaddr_equal(target, &be.addr[0]) && !sl_sockaddr_equal(target, &be.addr[1]))) {
		out->verdict = SL_TUNNEL_NO_TARGET;
		return;
	}
	if (strcmp(identity, "frontend")) {
		out->verdict = SL_TUNNEL_DENY;
		snprintf(out->reason, sizeof(out->reason), "policy: %s may not call %s", identity,
			 service);
	}
}

static const char *const ids[] = {"frontend", "batch"};

/* The set of certificates in DIR (CA bundle CA, or the main one), with or without
 * identities. */
static struct sl_mtls *load_set(const char *td, const char *ca, const char *dir, int with_ids)
{
	char err[256];
	struct sl_mtls_opts o = {.trust_domain = td,
				 .ca = ca ? ca : w.ca,
				 .certs = dir ? dir : w.dir,
				 .node = "n1",
				 .identities = ids,
				 .n_identities = with_ids ? 2 : 0};
	struct sl_mtls *m = sl_mtls_load(&o, err, sizeof(err));

	if (!m)
		fprintf(stderr, "load_set: %s\n", err);
	return m;
}

/* Start node B (inbound), then node A (outbound to B). 0 or -1. The sets stay the caller's. */
static int start_nodes(struct sl_mtls *sa, struct sl_mtls *sb, unsigned int hs_ms,
		       unsigned int max_a)
{
	struct sl_sockaddr lo[2];
	char err[256];
	struct sl_tunnel_opts ob = {.inbound = lo,
				    .n_inbound = 2,
				    .certs = sb,
				    .handshake_timeout_ms = hs_ms,
				    .authorize = authorize,
				    .on_event = on_event};
	struct sl_tunnel_opts oa = {.outbound = lo,
				    .n_outbound = 2,
				    .certs = sa,
				    .handshake_timeout_ms = hs_ms,
				    .max_tunnels = max_a,
				    .lookup = lookup,
				    .on_event = on_event};

	if (!sa || !sb || parse_sa("127.0.0.1:1", &lo[0]) || parse_sa("[::1]:1", &lo[1]))
		return -1;
	ob.handshake_timeout_ms = oa.handshake_timeout_ms = (hs_ms ? hs_ms : 5000) * slow;
	lo[0].port = lo[1].port = 0;
	w.b = sl_tunnel_new(&ob, err, sizeof(err));
	if (!w.b || sl_tunnel_listen_addr(w.b, SL_TUNNEL_INBOUND, 0, &w.b_in[0]) ||
	    sl_tunnel_listen_addr(w.b, SL_TUNNEL_INBOUND, 1, &w.b_in[1]))
		goto fail;
	oa.peer_port = w.b_in[0].port;
	w.a = sl_tunnel_new(&oa, err, sizeof(err));
	if (!w.a || sl_tunnel_listen_addr(w.a, SL_TUNNEL_OUTBOUND, 0, &w.a_out[0]) ||
	    sl_tunnel_listen_addr(w.a, SL_TUNNEL_OUTBOUND, 1, &w.a_out[1]))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "start_nodes: %s\n", err);
	return -1;
}

static int start_default(unsigned int hs_ms)
{
	struct sl_mtls *sa = load_set("sluice.test", NULL, NULL, 1);
	struct sl_mtls *sb = load_set("sluice.test", NULL, NULL, 0);
	int r = start_nodes(sa, sb, hs_ms, 0);

	sl_mtls_unref(sa); /* the engines hold their own references */
	sl_mtls_unref(sb);
	return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(w.dir, sizeof(w.dir), "/tmp/sluice-tunnel-XXXXXX");
	cr_assert_not_null(mkdtemp(w.dir), "mkdtemp: %s", strerror(errno));
	snprintf(w.ca, sizeof(w.ca), "%s/ca.pem", w.dir);
	cr_assert_eq(mtls_test_mkcerts(w.dir, "sluice.test --node n1 frontend batch", NULL), 0);
	detect_valgrind();
	be.lfd[0] = be.lfd[1] = be.dead_fd = -1;
	cr_assert_eq(be_start(), 0, "backend: %s", strerror(errno));
}

static void teardown(void)
{
	sl_tunnel_free(w.a); /* resets what is left, so backend threads finish */
	sl_tunnel_free(w.b);
	be_stop();
	nftw(w.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(tunnel, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the client ---- */

/* A blocking TCP connection from SRC (NULL: any) to DST. */
static int dial(const char *src, const struct sl_sockaddr *dst)
{
	struct sockaddr_storage ss;
	struct sl_sockaddr s;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	fd = socket(dst->family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -1;
	if (src) {
		if (parse_sa(src, &s))
			goto fail;
		s.port = 0;
		memset(&ss, 0, sizeof(ss));
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, s.addr.a8, 4);
		if (bind(fd, (struct sockaddr *)s4, sizeof(*s4)))
			goto fail;
	}
	memset(&ss, 0, sizeof(ss));
	if (dst->family == SLUICE_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(dst->port);
		memcpy(&s6->sin6_addr, dst->addr.a8, 16);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(dst->port);
		memcpy(&s4->sin_addr, dst->addr.a8, 4);
		len = sizeof(*s4);
	}
	if (connect(fd, (struct sockaddr *)&ss, len))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

struct xfer {
	const char *src; /* source address; NULL: 127.0.0.1 / ::1 */
	int six;
	uint64_t send_len, reply_len;
	uint32_t seed;
	char err[256];
	uint64_t got; /* reply bytes received */
};

/* n more received bytes: the first reply_len of all must be stream(seed), then comes the
 * digest. 0, or -1 with x->err. */
static int take_reply(struct xfer *x, struct stream *si, const unsigned char *in, size_t n,
		      uint64_t *rcvd, unsigned char *digest)
{
	unsigned char exp[CHUNK];

	for (size_t i = 0; i < n;) {
		size_t take = n - i;
		if (*rcvd < x->reply_len) {
			if (take > x->reply_len - *rcvd)
				take = (size_t)(x->reply_len - *rcvd);
			stream_fill(si, exp, take);
			if (memcmp(exp, in + i, take)) {
				snprintf(x->err, sizeof(x->err), "reply differs near %llu",
					 (unsigned long long)*rcvd);
				return -1;
			}
		} else {
			if (*rcvd + take > x->reply_len + DIGEST_LEN) {
				snprintf(x->err, sizeof(x->err), "too many bytes");
				return -1;
			}
			memcpy(digest + (*rcvd - x->reply_len), in + i, take);
		}
		*rcvd += take;
		i += take;
	}
	return 0;
}

/* The client half of XFER: send send_len bytes, half-close, check the reply and the
 * backend's digest of what we sent. 0, or -1 with x->err. */
static int xfer_io(int fd, struct xfer *x)
{
	unsigned char out[CHUNK], in[CHUNK], digest[DIGEST_LEN], sha_out[DIGEST_LEN];
	uint64_t deadline = now_ms() + IO_MS, sent = 0, rcvd = 0;
	struct stream so, si;
	struct req q = {.reply_len = x->reply_len, .mode = MODE_XFER, .seed = x->seed};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t olen = 0, ooff = 0;
	int shut = 0, eof = 0;

	stream_init(&so, x->seed + 1);
	stream_init(&si, x->seed);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if (send_all(fd, &q, sizeof(q), deadline)) {
		snprintf(x->err, sizeof(x->err), "sending the request: %s", strerror(errno));
		goto out;
	}
	while (!eof && now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT)};
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (!shut) {
			if (ooff == olen && sent < x->send_len) {
				olen = x->send_len - sent < sizeof(out) ? x->send_len - sent
									: sizeof(out);
				stream_fill(&so, out, olen);
				EVP_DigestUpdate(md, out, olen);
				ooff = 0;
			}
			if (ooff < olen) {
				ssize_t n =
				    send(fd, out + ooff, olen - ooff, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0) {
					ooff += (size_t)n;
					sent += (uint64_t)n;
				} else if (n < 0 && errno != EAGAIN) {
					snprintf(x->err, sizeof(x->err), "send: %s",
						 strerror(errno));
					goto out;
				}
			}
			if (sent == x->send_len && ooff == olen) {
				shutdown(fd, SHUT_WR);
				shut = 1;
			}
		}
		ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (n == 0) {
			eof = 1;
		} else if (n < 0 && errno != EAGAIN) {
			snprintf(x->err, sizeof(x->err), "recv after %llu bytes: %s",
				 (unsigned long long)rcvd, strerror(errno));
			goto out;
		}
		if (n > 0 && take_reply(x, &si, in, (size_t)n, &rcvd, digest))
			goto out;
	}
	x->got = rcvd < x->reply_len ? rcvd : x->reply_len;
	EVP_DigestFinal_ex(md, sha_out, NULL);
	if (!eof)
		snprintf(x->err, sizeof(x->err), "timed out (sent %llu, received %llu)",
			 (unsigned long long)sent, (unsigned long long)rcvd);
	else if (rcvd != x->reply_len + DIGEST_LEN)
		snprintf(x->err, sizeof(x->err), "received %llu bytes, want %llu",
			 (unsigned long long)rcvd, (unsigned long long)(x->reply_len + DIGEST_LEN));
	else if (memcmp(digest, sha_out, DIGEST_LEN))
		snprintf(x->err, sizeof(x->err), "the backend's SHA-256 of our bytes differs");
out:
	EVP_MD_CTX_free(md);
	return x->err[0] ? -1 : 0;
}

static int xfer_run(struct xfer *x)
{
	int fd = dial(x->src, &w.a_out[x->six]), r;

	x->err[0] = 0;
	if (fd < 0) {
		snprintf(x->err, sizeof(x->err), "connect: %s", strerror(errno));
		return -1;
	}
	r = xfer_io(fd, x);
	close(fd);
	return r;
}

static void *xfer_thread(void *arg)
{
	xfer_run(arg);
	return NULL;
}

/* Run n transfers at once; 0 if all passed, else -1 with the first error in err. */
static int xfer_many(struct xfer *x, size_t n, char *err, size_t errlen)
{
	pthread_t th[64];

	if (n > 64)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, xfer_thread, &x[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < n; i++)
		if (x[i].err[0]) {
			snprintf(err, errlen, "transfer %zu: %s", i, x[i].err);
			return -1;
		}
	return 0;
}

static void stats(struct sl_tunnel *t, struct sl_tunnel_stats *st)
{
	sl_tunnel_get_stats(t, st);
}

/* ---- tests ---- */

Test(tunnel, transfers_are_exact_both_ways)
{
	static const uint64_t sizes[] = {0, 1, 64 * 1024, 16 * MiB};
	struct sl_tunnel_stats sa, sb;
	struct xfer x = {0};
	uint64_t total_up = 0, total_down = 0;
	int n = 0;

	cr_assert_eq(start_default(0), 0);
	for (size_t i = 0; i < 4; i++) {
		for (int asym = 0; asym < 2; asym++) {
			x.send_len = sizes[i];
			x.reply_len = asym ? sizes[3 - i] : sizes[i];
			x.seed = (uint32_t)(i * 2 + (size_t)asym + 1);
			cr_assert_eq(xfer_run(&x), 0, "send %llu reply %llu: %s",
				     (unsigned long long)x.send_len,
				     (unsigned long long)x.reply_len, x.err);
			total_up += x.send_len + sizeof(struct req);
			total_down += x.reply_len + DIGEST_LEN;
			n++;
		}
	}
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_INBOUND], n, 5000), n);
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_OUTBOUND], n, 5000), n);
	stats(w.a, &sa);
	stats(w.b, &sb);
	cr_assert_eq(sa.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_OK], (uint64_t)n);
	cr_assert_eq(sb.results[SL_TUNNEL_INBOUND][SL_TUNNEL_OK], (uint64_t)n);
	cr_assert_eq(sa.tx_bytes[SL_TUNNEL_OUTBOUND], total_up);
	cr_assert_eq(sa.rx_bytes[SL_TUNNEL_OUTBOUND], total_down);
	cr_assert_eq(sb.rx_bytes[SL_TUNNEL_INBOUND], total_up);
	cr_assert_eq(sb.tx_bytes[SL_TUNNEL_INBOUND], total_down);
	cr_assert_eq(evs.aborted[SL_TUNNEL_OUTBOUND] + evs.aborted[SL_TUNNEL_INBOUND], 0);
	cr_assert_eq(sa.active[SL_TUNNEL_OUTBOUND] + sb.active[SL_TUNNEL_INBOUND], 0);
	cr_assert_str_eq(evs.identity[SL_TUNNEL_INBOUND], "frontend");
	/* every handshake was timed, in the histogram */
	uint64_t hs = sa.handshake[SL_TUNNEL_OUTBOUND].overflow;
	for (int i = 0; i < SLUICE_HIST_BUCKETS; i++)
		hs += sa.handshake[SL_TUNNEL_OUTBOUND].buckets[i];
	cr_assert_eq(hs, (uint64_t)n);
	if (sl_tunnel_ktls_supported() != 1)
		cr_assert_eq(sa.ktls_tx[SL_TUNNEL_OUTBOUND] + sb.ktls_rx[SL_TUNNEL_INBOUND], 0);
}

Test(tunnel, concurrent_transfers_of_every_size)
{
	struct xfer x[8] = {0};
	char err[320];

	cr_assert_eq(start_default(0), 0);
	for (size_t i = 0; i < 8; i++) {
		static const uint64_t sizes[] = {0, 1, 64 * 1024, 16 * MiB};
		x[i].send_len = sizes[i % 4];
		x[i].reply_len = sizes[3 - i % 4];
		x[i].seed = (uint32_t)(100 + i);
		x[i].six = i >= 4;
	}
	cr_assert_eq(xfer_many(x, 8, err, sizeof(err)), 0, "%s", err);
}

Test(tunnel, fifty_concurrent_connections)
{
	struct xfer x[50] = {0};
	struct sl_tunnel_stats sb;
	char err[320];

	cr_assert_eq(start_default(0), 0);
	for (size_t i = 0; i < 50; i++) {
		x[i].send_len = x[i].reply_len = 64 * 1024;
		x[i].seed = (uint32_t)(1000 + i);
	}
	cr_assert_eq(xfer_many(x, 50, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_OK], 50, 5000), 50);
	stats(w.b, &sb);
	cr_assert_eq(sb.results[SL_TUNNEL_INBOUND][SL_TUNNEL_OK], 50);
	cr_assert_eq(be_accepted(), 50);
}

Test(tunnel, ipv6_callers_and_peers)
{
	struct xfer x = {.six = 1, .send_len = 3 * MiB, .reply_len = MiB, .seed = 7};

	cr_assert_eq(start_default(0), 0);
	cr_assert_eq(xfer_run(&x), 0, "%s", x.err);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_OK], 1, 5000), 1);
}

/* ---- held connections, raw peers ---- */

/* An ECHO connection through node A from SRC (NULL: 127.0.0.1); -1 on failure. */
static int echo_open(const char *src)
{
	struct req q = {.mode = MODE_ECHO};
	int fd = dial(src, &w.a_out[0]);

	if (fd >= 0 && send_all(fd, &q, sizeof(q), now_ms() + 5000 * slow)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 16 bytes there and back; 0 or -1. */
static int ping(int fd, uint32_t n)
{
	unsigned char b[16], e[16];
	struct stream st;

	stream_init(&st, n);
	stream_fill(&st, b, sizeof(b));
	if (send_all(fd, b, sizeof(b), now_ms() + 5000 * slow) ||
	    recv_all(fd, e, sizeof(e), now_ms() + 5000 * slow))
		return -1;
	return memcmp(b, e, sizeof(b)) ? -1 : 0;
}

/* How a connection ended: 0 clean EOF, else the errno; -ETIMEDOUT if it did not within ms.
 * *bytes counts what arrived before. */
static int read_to_end(int fd, int ms, uint64_t *bytes)
{
	unsigned char b[CHUNK];
	uint64_t end = now_ms() + (uint64_t)ms;

	*bytes = 0;
	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n < 0 && errno != EAGAIN)
			return errno;
		if (n > 0)
			*bytes += (uint64_t)n;
	}
	return -ETIMEDOUT;
}

/* A TLS client straight to node B (IPv4), presenting BASE.pem/.key (NULL: no certificate) and
 * checking nothing of the server; after SSL_connect, whatever it returned. */
static SSL *raw_tls(const char *base)
{
	char pem[PATH_MAX], key[PATH_MAX];
	struct timeval tv = {.tv_sec = 5};
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	int fd;

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (base) {
		snprintf(pem, sizeof(pem), "%s.pem", base);
		snprintf(key, sizeof(key), "%s.key", base);
		if (SSL_CTX_use_certificate_file(ctx, pem, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	fd = dial(NULL, &w.b_in[0]);
	if (!ssl || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) || !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	SSL_connect(ssl);
	ERR_clear_error();
	return ssl;
}

static void raw_free(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

/* The documented header, built by hand from tunnel.h's table (not from the struct). */
static void raw_header(unsigned char h[88], const char *magic, const struct sl_sockaddr *t,
		       const char *service)
{
	memset(h, 0, 88);
	memcpy(h, magic, 4);
	h[4] = 1;
	h[5] = t->family;
	h[6] = (unsigned char)(t->port >> 8);
	h[7] = (unsigned char)t->port;
	memcpy(h + 8, t->addr.a8, t->family == SLUICE_AF_INET ? 4 : 16);
	snprintf((char *)h + 24, 64, "%s", service);
}

static void subdir(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", w.dir, name);
}

/* ---- more tests ---- */

Test(tunnel, half_close_each_way)
{
	unsigned char b[CHUNK], exp[CHUNK];
	struct xfer x = {.send_len = 0, .reply_len = 4 * MiB, .seed = 11};
	struct req q = {.reply_len = MiB, .mode = MODE_SHUT, .seed = 12};
	uint64_t deadline = now_ms() + IO_MS, got = 0;
	struct stream st, so;
	struct rec rec;
	unsigned char sha[DIGEST_LEN];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd;

	cr_assert_eq(start_default(0), 0);
	/* the caller half-closes at once, the backend still sends 4 MiB and its digest */
	cr_assert_eq(xfer_run(&x), 0, "%s", x.err);
	/* the backend half-closes first: we read its 1 MiB to EOF, then send 256 KiB */
	fd = dial(NULL, &w.a_out[0]);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send_all(fd, &q, sizeof(q), deadline), 0);
	stream_init(&st, q.seed);
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);
		cr_assert_geq(n, 0, "recv: %s", strerror(errno));
		if (n == 0)
			break;
		stream_fill(&st, exp, (size_t)n);
		cr_assert_eq(memcmp(b, exp, (size_t)n), 0, "reply differs near %llu",
			     (unsigned long long)got);
		got += (uint64_t)n;
	}
	cr_assert_eq(got, MiB);
	stream_init(&so, 99);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (int i = 0; i < 4; i++) {
		stream_fill(&so, b, sizeof(b));
		EVP_DigestUpdate(md, b, sizeof(b));
		cr_assert_eq(send_all(fd, b, sizeof(b), deadline), 0,
			     "send after the backend's EOF");
	}
	EVP_DigestFinal_ex(md, sha, NULL);
	EVP_MD_CTX_free(md);
	shutdown(fd, SHUT_WR);
	cr_assert_eq(be_wait_rec(1, 5000, &rec), 0);
	cr_assert_eq(rec.err, 0, "%s", strerror(rec.err));
	cr_assert_eq(rec.in_bytes, 4 * CHUNK);
	cr_assert_eq(memcmp(rec.sha, sha, DIGEST_LEN), 0);
	cr_assert_eq(read_to_end(fd, 5000 * (int)slow, &got), 0);
	close(fd);
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_INBOUND], 2, 5000), 2);
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_OUTBOUND], 2, 5000), 2);
	cr_assert_eq(evs.aborted[SL_TUNNEL_INBOUND] + evs.aborted[SL_TUNNEL_OUTBOUND], 0);
}

Test(tunnel, caller_reset_resets_the_backend)
{
	struct rec rec;
	int fd;

	cr_assert_eq(start_default(0), 0);
	fd = echo_open(NULL);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ping(fd, 1), 0);
	reset_close(fd);
	cr_assert_eq(be_wait_rec(0, 3000, &rec), 0, "the backend connection is still open");
	cr_assert_eq(rec.err, ECONNRESET, "backend saw %s", rec.err ? strerror(rec.err) : "EOF");
	cr_assert_eq(wait_ev(&evs.aborted[SL_TUNNEL_OUTBOUND], 1, 3000), 1);
	cr_assert_eq(wait_ev(&evs.aborted[SL_TUNNEL_INBOUND], 1, 3000), 1);
}

Test(tunnel, backend_reset_resets_the_caller)
{
	struct req q = {.reply_len = 1000, .mode = MODE_RESET};
	uint64_t got;
	int fd;

	cr_assert_eq(start_default(0), 0);
	fd = dial(NULL, &w.a_out[0]);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send_all(fd, &q, sizeof(q), now_ms() + 5000 * slow), 0);
	cr_assert_eq(read_to_end(fd, 3000 * (int)slow, &got), ECONNRESET,
		     "the caller did not see a reset");
	close(fd);
	cr_assert_eq(wait_ev(&evs.aborted[SL_TUNNEL_INBOUND], 1, 3000), 1);
	cr_assert_eq(wait_ev(&evs.aborted[SL_TUNNEL_OUTBOUND], 1, 3000), 1);
}

Test(tunnel, denied_identity_never_reaches_the_backend)
{
	struct xfer x = {.src = "127.0.0.2:1", .send_len = 1000, .reply_len = 1000, .seed = 5};
	char why[320];

	cr_assert_eq(start_default(0), 0);
	cr_assert_neq(xfer_run(&x), 0, "batch got through");
	cr_assert_eq(x.got, 0);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_DENIED], 1, 3000), 1);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_DENIED], 1, 3000), 1);
	ev_reason(SL_TUNNEL_INBOUND, why, sizeof(why));
	cr_assert_str_eq(why, "policy: batch may not call web");
	cr_assert_str_eq(evs.identity[SL_TUNNEL_INBOUND], "batch");
	cr_assert_eq(be_accepted(), 0);
	/* frontend still passes on the same engines */
	x.src = NULL;
	cr_assert_eq(xfer_run(&x), 0, "%s", x.err);
}

Test(tunnel, identity_without_certificate_is_refused)
{
	struct xfer x = {.src = "127.0.0.3:1", .send_len = 10, .reply_len = 10};
	char why[320];

	cr_assert_eq(start_default(0), 0);
	cr_assert_neq(xfer_run(&x), 0);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_ERROR], 1, 3000), 1);
	ev_reason(SL_TUNNEL_OUTBOUND, why, sizeof(why));
	cr_assert_str_eq(why, "no valid certificate for identity ghost");
}

Test(tunnel, client_certificate_of_another_ca_fails_the_handshake)
{
	char ca2[PATH_MAX], bundle[PATH_MAX + 16], cmd[3 * PATH_MAX], why[320];
	struct xfer x = {.send_len = 10, .reply_len = 10};
	struct sl_mtls *sa, *sb;
	struct sl_tunnel_stats st;

	subdir(ca2, sizeof(ca2), "ca2");
	snprintf(bundle, sizeof(bundle), "%s/bundle.pem", w.dir);
	cr_assert_eq(mtls_test_mkcerts(ca2, "sluice.test --no-node frontend", NULL), 0);
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s/ca.pem' >'%s'", w.ca, ca2, bundle);
	cr_assert_eq(system(cmd), 0);
	/* A trusts both CAs and presents the other CA's frontend; B trusts only its own */
	sa = load_set("sluice.test", bundle, ca2, 1);
	sb = load_set("sluice.test", NULL, NULL, 0);
	cr_assert(sa && sl_mtls_client_ctx(sa, "frontend"));
	cr_assert_eq(start_nodes(sa, sb, 0, 0), 0);
	sl_mtls_unref(sa);
	sl_mtls_unref(sb);
	cr_assert_neq(xfer_run(&x), 0);
	cr_assert_eq(x.got, 0);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_HANDSHAKE_FAILED], 1, 3000),
		     1);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_HANDSHAKE_FAILED], 1, 3000),
		     1);
	ev_reason(SL_TUNNEL_OUTBOUND, why, sizeof(why));
	cr_assert_not_null(strstr(why, "refused us: tlsv1 alert unknown ca"), "%s", why);
	ev_reason(SL_TUNNEL_INBOUND, why, sizeof(why));
	cr_assert_not_null(strstr(why, "unable to get local issuer certificate"), "%s", why);
	stats(w.b, &st);
	cr_assert_eq(st.results[SL_TUNNEL_INBOUND][SL_TUNNEL_HANDSHAKE_FAILED], 1);
	cr_assert_eq(be_accepted(), 0);
}

Test(tunnel, server_of_another_trust_domain_fails_the_handshake)
{
	char td[PATH_MAX], args[PATH_MAX + 64], why[320];
	struct xfer x = {.send_len = 10, .reply_len = 10};
	struct sl_mtls *sa, *sb;

	subdir(td, sizeof(td), "td");
	snprintf(args, sizeof(args), "other.test --node n1 --ca-from '%s'", w.dir);
	cr_assert_eq(mtls_test_mkcerts(td, args, NULL), 0);
	sa = load_set("sluice.test", NULL, NULL, 1);
	sb = load_set("other.test", NULL, td, 0);
	cr_assert(sb && sl_mtls_server_ctx(sb));
	cr_assert_eq(start_nodes(sa, sb, 0, 0), 0);
	sl_mtls_unref(sa);
	sl_mtls_unref(sb);
	cr_assert_neq(xfer_run(&x), 0);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_HANDSHAKE_FAILED], 1, 3000),
		     1);
	ev_reason(SL_TUNNEL_OUTBOUND, why, sizeof(why));
	cr_assert_not_null(strstr(why, "is not of trust domain sluice.test"), "%s", why);
	cr_assert_eq(be_accepted(), 0);
}

/* B refuses a raw client presenting BASE during the handshake, for WHY. */
static void inbound_refuses(const char *base, const char *why_part, int nth)
{
	SSL *ssl = raw_tls(base);
	char why[320], b;

	cr_assert_not_null(ssl);
	cr_assert_leq(SSL_read(ssl, &b, 1), 0, "the handshake went through");
	raw_free(ssl);
	cr_assert_eq(
	    wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_HANDSHAKE_FAILED], nth, 3000), nth);
	ev_reason(SL_TUNNEL_INBOUND, why, sizeof(why));
	cr_assert_not_null(strstr(why, why_part), "%s", why);
}

Test(tunnel, inbound_refuses_other_trust_domain_node_and_no_certificate)
{
	char td[PATH_MAX], args[PATH_MAX + 64], base[PATH_MAX + 16];

	cr_assert_eq(start_default(0), 0);
	subdir(td, sizeof(td), "td");
	snprintf(args, sizeof(args), "other.test --no-node --ca-from '%s' frontend", w.dir);
	cr_assert_eq(mtls_test_mkcerts(td, args, NULL), 0);
	snprintf(base, sizeof(base), "%s/frontend", td);
	inbound_refuses(base, "is not of trust domain sluice.test", 1);
	snprintf(base, sizeof(base), "%s/node", w.dir);
	inbound_refuses(base, "is not a spiffe://sluice.test/identity/<name> URI", 2);
	inbound_refuses(NULL, "certificate", 3);
	cr_assert_eq(be_accepted(), 0);
}

Test(tunnel, wire_format_as_documented)
{
	unsigned char h[88], st = 0xff, b[1000 + DIGEST_LEN], sha[DIGEST_LEN];
	struct req q = {.reply_len = 1000, .mode = MODE_XFER, .seed = 3};
	char base[PATH_MAX + 16], why[320], want[128];
	SSL *ssl;
	int n = 0;

	cr_assert_eq(start_default(0), 0);
	snprintf(base, sizeof(base), "%s/frontend", w.dir);
	/* a valid header and the caller's bytes in one go, then close_notify as half-close */
	ssl = raw_tls(base);
	cr_assert_not_null(ssl);
	raw_header(h, "SLT1", &be.addr[0], "web");
	cr_assert_eq(SSL_write(ssl, h, sizeof(h)), (int)sizeof(h));
	cr_assert_eq(SSL_write(ssl, &q, sizeof(q)), (int)sizeof(q));
	cr_assert_eq(SSL_read(ssl, &st, 1), 1);
	cr_assert_eq(st, SL_TUNNEL_ST_OK);
	cr_assert_geq(SSL_shutdown(ssl), 0);
	for (int i = 0; i < 100 && n < (int)sizeof(b); i++) {
		int r = SSL_read(ssl, b + n, (int)sizeof(b) - n);
		if (r <= 0)
			break;
		n += r;
	}
	cr_assert_eq(n, (int)sizeof(b));
	EVP_Digest("", 0, sha, NULL, EVP_sha256(), NULL);
	cr_assert_eq(memcmp(b + 1000, sha, DIGEST_LEN), 0, "digest of nothing");
	raw_free(ssl);
	/* a service that is not there: status 2 */
	ssl = raw_tls(base);
	raw_header(h, "SLT1", &be.addr[0], "nope");
	cr_assert_eq(SSL_write(ssl, h, sizeof(h)), (int)sizeof(h));
	cr_assert_eq(SSL_read(ssl, &st, 1), 1);
	cr_assert_eq(st, SL_TUNNEL_ST_UNKNOWN_TARGET);
	raw_free(ssl);
	/* a backend that refuses: status 3 */
	ssl = raw_tls(base);
	raw_header(h, "SLT1", &be.addr[0], "dead");
	cr_assert_eq(SSL_write(ssl, h, sizeof(h)), (int)sizeof(h));
	cr_assert_eq(SSL_read(ssl, &st, 1), 1);
	cr_assert_eq(st, SL_TUNNEL_ST_UNREACHABLE);
	raw_free(ssl);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_ERROR], 2, 3000), 2);
	ev_reason(SL_TUNNEL_INBOUND, why, sizeof(why));
	snprintf(want, sizeof(want), "connect to backend 127.0.0.1:%u: Connection refused",
		 be.dead.port);
	cr_assert_str_eq(why, want);
	/* bad magic: no status, the tunnel is dropped */
	ssl = raw_tls(base);
	raw_header(h, "HTTP", &be.addr[0], "web");
	cr_assert_eq(SSL_write(ssl, h, sizeof(h)), (int)sizeof(h));
	cr_assert_leq(SSL_read(ssl, &st, 1), 0);
	raw_free(ssl);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_ERROR], 3, 3000), 3);
	ev_reason(SL_TUNNEL_INBOUND, why, sizeof(why));
	cr_assert_not_null(strstr(why, "bad header"), "%s", why);
	cr_assert_eq(be_accepted(), 1);
}

Test(tunnel, silent_peers_are_dropped_after_the_timeout)
{
	char base[PATH_MAX + 16];
	struct sl_tunnel_stats st;
	uint64_t t0, got;
	int held, silent, r = -ETIMEDOUT;
	SSL *quiet;

	cr_assert_eq(start_default(500), 0);
	held = echo_open(NULL);
	cr_assert_geq(held, 0);
	cr_assert_eq(ping(held, 1), 0);
	t0 = now_ms();
	silent = dial(NULL, &w.b_in[0]); /* TCP, never a ClientHello */
	cr_assert_geq(silent, 0);
	snprintf(base, sizeof(base), "%s/frontend", w.dir);
	quiet = raw_tls(base); /* a handshake, never a header */
	cr_assert_not_null(quiet);
	for (unsigned int i = 0; i < 40 * slow && r == -ETIMEDOUT; i++) {
		cr_assert_eq(ping(held, i + 2), 0, "the held tunnel stalled");
		r = read_to_end(silent, 100, &got);
	}
	cr_assert_neq(r, -ETIMEDOUT, "the silent peer was not dropped");
	cr_assert_geq(now_ms() - t0, 400 * slow);
	cr_assert_leq(now_ms() - t0, 3000 * slow);
	cr_assert_eq(wait_ev(&evs.results[SL_TUNNEL_INBOUND][SL_TUNNEL_ERROR], 1, 3000), 1);
	stats(w.b, &st);
	cr_assert_eq(st.timeouts[SL_TUNNEL_INBOUND], 2);
	cr_assert_eq(st.results[SL_TUNNEL_INBOUND][SL_TUNNEL_HANDSHAKE_FAILED], 1);
	cr_assert_eq(st.results[SL_TUNNEL_INBOUND][SL_TUNNEL_ERROR], 1);
	cr_assert_eq(ping(held, 100), 0);
	raw_free(quiet);
	close(silent);
	close(held);
}

Test(tunnel, rotation_keeps_held_connections_and_new_ones_use_the_new_serial)
{
	char dir2[PATH_MAX], args[PATH_MAX + 64], s[SL_MTLS_SERIAL_LEN];
	struct sl_mtls *sa = load_set("sluice.test", NULL, NULL, 1);
	struct sl_mtls *sb = load_set("sluice.test", NULL, NULL, 0);
	struct sl_mtls *sa2, *sb2;
	struct xfer x = {.send_len = 100000, .reply_len = 100000, .seed = 8};
	uint64_t got;
	int held;

	cr_assert_eq(start_nodes(sa, sb, 0, 0), 0);
	held = echo_open(NULL);
	cr_assert_geq(held, 0);
	cr_assert_eq(ping(held, 1), 0);
	ev_serial(SL_TUNNEL_INBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_identity_status(sa, "frontend")->serial);
	ev_serial(SL_TUNNEL_OUTBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_node_status(sb)->serial);
	/* every certificate replaced, same CA */
	subdir(dir2, sizeof(dir2), "new");
	snprintf(args, sizeof(args), "sluice.test --node n1 --ca-from '%s' frontend batch", w.dir);
	cr_assert_eq(mtls_test_mkcerts(dir2, args, NULL), 0);
	sa2 = load_set("sluice.test", NULL, dir2, 1);
	sb2 = load_set("sluice.test", NULL, dir2, 0);
	cr_assert(sa2 && sb2 && sl_mtls_client_ctx(sa2, "frontend") && sl_mtls_server_ctx(sb2));
	cr_assert_str_neq(sl_mtls_identity_status(sa2, "frontend")->serial,
			  sl_mtls_identity_status(sa, "frontend")->serial);
	sl_tunnel_set_certs(w.a, sa2);
	sl_tunnel_set_certs(w.b, sb2);
	sl_mtls_unref(sa); /* the old sets now live on in the held tunnel only */
	sl_mtls_unref(sb);
	cr_assert_eq(ping(held, 2), 0, "the held connection broke");
	cr_assert_eq(xfer_run(&x), 0, "%s", x.err);
	ev_serial(SL_TUNNEL_INBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_identity_status(sa2, "frontend")->serial);
	ev_serial(SL_TUNNEL_OUTBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_node_status(sb2)->serial);
	sl_mtls_unref(sa2);
	sl_mtls_unref(sb2);
	cr_assert_eq(ping(held, 3), 0);
	shutdown(held, SHUT_WR);
	cr_assert_eq(read_to_end(held, 3000 * (int)slow, &got), 0);
	close(held);
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_INBOUND], 2, 3000), 2);
	cr_assert_eq(evs.aborted[SL_TUNNEL_INBOUND], 0);
}

/* Both engines' resumed handshakes: outbound (A) and inbound (B) must agree. */
static uint64_t resumed(void)
{
	struct sl_tunnel_stats sa, sb;

	stats(w.a, &sa);
	stats(w.b, &sb);
	if (sa.resumed[SL_TUNNEL_OUTBOUND] != sb.resumed[SL_TUNNEL_INBOUND])
		return UINT64_MAX;
	return sa.resumed[SL_TUNNEL_OUTBOUND];
}

/* One tunnel from caller src (NULL: frontend); its inbound identity must be id, its result
 * ok (or denied when deny): 0, or -1 with why printed. */
static int tunnel_once(const char *src, const char *id, int deny)
{
	struct xfer x = {.src = src, .send_len = 5000, .reply_len = 5000, .seed = 12};
	int *res = &evs.results[SL_TUNNEL_INBOUND][deny ? SL_TUNNEL_DENIED : SL_TUNNEL_OK];
	int before = wait_ev(res, 0, 0), r = xfer_run(&x);

	if ((r != 0) != deny || wait_ev(res, before + 1, 3000) != before + 1) {
		fprintf(stderr, "tunnel_once %s: xfer %d (%s)\n", id, r, x.err);
		return -1;
	}
	pthread_mutex_lock(&evs.lock);
	r = strcmp(evs.identity[SL_TUNNEL_INBOUND], id);
	pthread_mutex_unlock(&evs.lock);
	if (r) {
		fprintf(stderr, "tunnel_once: inbound identity %s, want %s\n",
			evs.identity[SL_TUNNEL_INBOUND], id);
		return -1;
	}
	return 0;
}

Test(tunnel, resumption_keeps_identity_and_policy_and_ends_with_rotation)
{
	char dir2[PATH_MAX], args[PATH_MAX + 64], s[SL_MTLS_SERIAL_LEN];
	struct sl_mtls *sa2, *sb2;
	uint64_t n;

	/* the rotated certificates, made before the engines run: system() forks, and a child
	 * holding a copy of a socket the relay thread closes keeps its epoll events coming */
	subdir(dir2, sizeof(dir2), "new");
	snprintf(args, sizeof(args), "sluice.test --node n1 --ca-from '%s' frontend batch", w.dir);
	cr_assert_eq(mtls_test_mkcerts(dir2, args, NULL), 0);
	cr_assert_eq(start_default(0), 0);
	/* the first tunnel of an identity to a peer: full handshake; the next resume */
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 0);
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 1);
	/* another identity resumes only its own sessions, and the policy still applies */
	cr_assert_eq(tunnel_once("127.0.0.2:1", "batch", 1), 0);
	cr_assert_eq(resumed(), 1);
	cr_assert_eq(tunnel_once("127.0.0.2:1", "batch", 1), 0);
	cr_assert_eq(resumed(), 2);
	cr_assert_eq(be_accepted(), 2, "a denied tunnel reached the backend");
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 3);

	/* the node's certificate rotates: the old ticket is refused, a full handshake shows the
	 * new certificate, and the next tunnel resumes the new session */
	sb2 = load_set("sluice.test", NULL, dir2, 0);
	cr_assert(sb2 && sl_mtls_server_ctx(sb2));
	sl_tunnel_set_certs(w.b, sb2);
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 3);
	ev_serial(SL_TUNNEL_OUTBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_node_status(sb2)->serial);
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 4);
	ev_serial(SL_TUNNEL_OUTBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_node_status(sb2)->serial);

	/* the identity's certificate rotates: the caller's cache went with its old set */
	sa2 = load_set("sluice.test", NULL, dir2, 1);
	cr_assert(sa2 && sl_mtls_client_ctx(sa2, "frontend"));
	sl_tunnel_set_certs(w.a, sa2);
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	n = resumed();
	cr_assert_eq(n, 4);
	ev_serial(SL_TUNNEL_INBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_identity_status(sa2, "frontend")->serial);
	cr_assert_eq(tunnel_once(NULL, "frontend", 0), 0);
	cr_assert_eq(resumed(), 5);
	ev_serial(SL_TUNNEL_INBOUND, s, sizeof(s));
	cr_assert_str_eq(s, sl_mtls_identity_status(sa2, "frontend")->serial);
	sl_mtls_unref(sa2);
	sl_mtls_unref(sb2);
}

Test(tunnel, tunnels_beyond_the_cap_are_reset)
{
	struct sl_mtls *sa = load_set("sluice.test", NULL, NULL, 1);
	struct sl_mtls *sb = load_set("sluice.test", NULL, NULL, 0);
	struct sl_tunnel_stats st;
	uint64_t got;
	int h1, h2, h3;

	cr_assert_eq(start_nodes(sa, sb, 0, 2), 0);
	sl_mtls_unref(sa);
	sl_mtls_unref(sb);
	h1 = echo_open(NULL);
	h2 = echo_open(NULL);
	cr_assert(h1 >= 0 && h2 >= 0);
	cr_assert_eq(ping(h1, 1), 0);
	cr_assert_eq(ping(h2, 2), 0);
	h3 = dial(NULL, &w.a_out[0]);
	cr_assert_geq(h3, 0);
	cr_assert_eq(read_to_end(h3, 3000 * (int)slow, &got), ECONNRESET);
	close(h3);
	stats(w.a, &st);
	cr_assert_eq(st.results[SL_TUNNEL_OUTBOUND][SL_TUNNEL_ERROR], 1);
	cr_assert_eq(st.active[SL_TUNNEL_OUTBOUND], 2);
	close(h1);
	cr_assert_eq(wait_ev(&evs.closes[SL_TUNNEL_OUTBOUND], 1, 3000), 1);
	h3 = echo_open(NULL);
	cr_assert_eq(ping(h3, 3), 0, "a slot came free but the tunnel failed");
	close(h2);
	close(h3);
}

Test(tunnel, ktls_probe_agrees_with_the_kernel)
{
	char ulp[256] = "";
	FILE *f;
	int r = sl_tunnel_ktls_supported();

	cr_assert(r == 0 || r == 1, "probe failed: %s", strerror(-r));
	f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(ulp, sizeof(ulp), f));
	fclose(f);
	/* after the probe, a kernel with TLS has the ULP registered (module loaded) */
	cr_assert_eq(r, strstr(ulp, "tls") != NULL, "probe %d, tcp_available_ulp: %s", r, ulp);
	cr_assert_str_eq(sl_tunnel_dir_name(SL_TUNNEL_INBOUND), "inbound");
	cr_assert_str_eq(sl_tunnel_result_name(SL_TUNNEL_HANDSHAKE_FAILED), "handshake_failed");
}
