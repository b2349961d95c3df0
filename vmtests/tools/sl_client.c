// SPDX-License-Identifier: GPL-2.0
/*
 * sl_client - test client for sluice vmtests.
 *
 *   sl_client tcp     HOST:PORT -n COUNT [--timeout-ms MS] [--check-peer]
 *   sl_client udp     HOST:PORT -n COUNT [--timeout-ms MS] [--connected]
 *   sl_client loop    HOST:PORT --seconds S [--interval-ms MS] [--max N] [--timeout-ms MS]
 *                     [--check-peer]
 *   sl_client refused HOST:PORT [--timeout-ms MS]
 *
 * HOST is an IPv4 literal or a bracketed IPv6 literal: 198.19.0.10:80, [2001:db8:f::10]:80.
 *
 * tcp/udp/loop print, one per line:
 *   NAME COUNT           for each distinct backend reply (sorted by name)
 *   ok N
 *   fail N               fail = peer_mismatch + bad_reply + sum of the errno lines
 *   peer_mismatch N      reply/peer address differed from HOST:PORT
 *   bad_reply N          connection closed without a valid "NAME\n" line
 *   errno ENAME N        for each distinct errno seen (sorted by name); ETIMEDOUT = our timeout
 *   elapsed_ms N
 * and exit 0 if fail == 0, else 1 (2 on usage errors).
 *
 * refused prints "ENAME 0.12ms" (or "connected 0.12ms") and exits 0 only for
 * ECONNREFUSED within 1000 ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAME	  200
#define MAX_ERRNO	  4096
#define DEFAULT_TIMEOUT	  2000
#define DEFAULT_INTERVAL  5
#define DEFAULT_LOOP_MAX  100000
#define REFUSED_WITHIN_MS 1000.0

enum mode { M_TCP, M_UDP, M_LOOP, M_REFUSED, M_HOLD };

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

struct name_count {
	char name[MAX_NAME + 1];
	unsigned long count;
};

static const char *prog = "sl_client";

static struct {
	struct name_count *names;
	size_t nnames, cap;
	unsigned long ok, fail, peer_mismatch, bad_reply;
	unsigned long err[MAX_ERRNO];
} st;

/* Outcome of one attempt: OK (name filled in), an errno, or one of these. */
#define RES_OK		  0
#define RES_PEER_MISMATCH (-1)
#define RES_BAD_REPLY	  (-2)

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(2);
}

static void usage(int status)
{
	fprintf(
	    status ? stderr : stdout,
	    "usage: %s tcp     HOST:PORT -n COUNT [--timeout-ms MS] [--check-peer]\n"
	    "       %s udp     HOST:PORT -n COUNT [--timeout-ms MS] [--connected]\n"
	    "       %s loop    HOST:PORT --seconds S [--interval-ms MS] [--max N]\n"
	    "                  [--timeout-ms MS] [--check-peer]\n"
	    "       %s refused HOST:PORT [--timeout-ms MS]\n"
	    "       %s hold    HOST:PORT -n COUNT --seconds S [--timeout-ms MS]\n"
	    "tcp, loop and hold take --bind ADDR (the source address of each connection).\n"
	    "tcp also takes --bind-port-base P (connection i from source port P+i, closed\n"
	    "with an RST), --trace (a line \"port P NAME\" per connection) and --send N\n"
	    "(N bytes written on each connection before the reply is read; hold too).\n"
	    "hold keeps COUNT connections open for S seconds, then closes them.\n"
	    "HOST: IPv4 literal or [IPv6 literal]. Defaults: --timeout-ms %d, --interval-ms %d,\n"
	    "--max %d.\n",
	    prog, prog, prog, prog, prog, DEFAULT_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_LOOP_MAX);
	exit(status);
}

static double now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die("clock_gettime(CLOCK_MONOTONIC)");
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *n;
	} tab[] = {
#define E(x) {x, #x}
	    E(EPERM),	    E(ENOENT),	     E(EINTR),	      E(EIO),		E(EBADF),
	    E(EAGAIN),	    E(ENOMEM),	     E(EACCES),	      E(EFAULT),	E(EBUSY),
	    E(EEXIST),	    E(ENODEV),	     E(EINVAL),	      E(ENFILE),	E(EMFILE),
	    E(ENOSPC),	    E(EPIPE),	     E(ERANGE),	      E(ENODATA),	E(EPROTO),
	    E(EMSGSIZE),    E(ENOTSOCK),     E(EPROTOTYPE),   E(ENOPROTOOPT),	E(EPROTONOSUPPORT),
	    E(EOPNOTSUPP),  E(EAFNOSUPPORT), E(EADDRINUSE),   E(EADDRNOTAVAIL), E(ENETDOWN),
	    E(ENETUNREACH), E(ENETRESET),    E(ECONNABORTED), E(ECONNRESET),	E(ENOBUFS),
	    E(EISCONN),	    E(ENOTCONN),     E(ESHUTDOWN),    E(ETIMEDOUT),	E(ECONNREFUSED),
	    E(EHOSTDOWN),   E(EHOSTUNREACH), E(EALREADY),     E(EINPROGRESS),	E(ENOSR),
	    E(ENOTSUP),	    E(ECANCELED),    E(EDESTADDRREQ), E(ENOLINK),	E(ECOMM),
#undef E
	};
	static char buf[32];
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].e == e)
			return tab[i].n;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_target(const char *arg, struct target *t)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s, *colon;
	unsigned long port;
	size_t hlen;

	memset(t, 0, sizeof(*t));
	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');

		if (!rb || rb[1] != ':')
			return false;
		hlen = (size_t)(rb - arg - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return false;
		memcpy(host, arg + 1, hlen);
		host[hlen] = 0;
		port_s = rb + 2;
		t->family = AF_INET6;
	} else {
		colon = strrchr(arg, ':');
		if (!colon || strchr(arg, ':') != colon)
			return false; /* none, or an unbracketed IPv6 address */
		hlen = (size_t)(colon - arg);
		if (hlen == 0 || hlen >= sizeof(host))
			return false;
		memcpy(host, arg, hlen);
		host[hlen] = 0;
		port_s = colon + 1;
		t->family = AF_INET;
	}
	if (!parse_ulong(port_s, 65535, &port) || port == 0)
		return false;
	if (t->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		t->len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return false;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		t->len = sizeof(*s4);
	}
	return true;
}

static bool same_addr(const struct target *t, const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family != t->family)
		return false;
	if (t->family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&t->ss, *b = (const void *)ss;

		return len >= sizeof(*b) && a->sin_port == b->sin_port &&
		       a->sin_addr.s_addr == b->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *a = (const void *)&t->ss, *b = (const void *)ss;

		return len >= sizeof(*b) && a->sin6_port == b->sin6_port &&
		       !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
	}
}

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", ss->ss_family);
	}
}

static void note_mismatch(const char *what, const struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 16];

	fmt_addr(ss, buf, sizeof(buf));
	fprintf(stderr, "%s: %s address %s differs from the target\n", prog, what, buf);
}

/* Close and keep the first error; errors from close() on a socket are not expected. */
static void xclose(int fd)
{
	if (close(fd) < 0)
		fprintf(stderr, "%s: close: %s\n", prog, strerror(errno));
}

/* Wait for events on fd until deadline (ms, monotonic). Returns 0, or an errno. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		double left = deadline - now_ms();
		int r;

		if (left <= 0)
			return ETIMEDOUT;
		r = poll(&p, 1, (int)left + 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r > 0)
			return 0;
	}
}

/* Non-blocking connect bounded by deadline. Returns 0 or an errno. */
static int connect_bounded(int fd, const struct target *t, double deadline)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return errno;
	err = wait_fd(fd, POLLOUT, deadline);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return errno;
	return err;
}

/* Read "NAME\n" into name. Returns RES_OK, RES_BAD_REPLY or an errno. */
static int read_reply(int fd, char *name, double deadline, bool datagram)
{
	char buf[MAX_NAME + 2];
	size_t have = 0;

	for (;;) {
		ssize_t n;
		char *nl;
		int err = wait_fd(fd, POLLIN, deadline);

		if (err)
			return err;
		n = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return errno;
		}
		if (n == 0)
			return RES_BAD_REPLY; /* EOF before the newline */
		have += (size_t)n;
		buf[have] = 0;
		nl = memchr(buf, '\n', have);
		if (nl || datagram) {
			size_t len = nl ? (size_t)(nl - buf) : have;
			size_t i;

			if (len == 0 || len > MAX_NAME)
				return RES_BAD_REPLY;
			for (i = 0; i < len; i++)
				if (buf[i] <= ' ' || buf[i] > '~')
					return RES_BAD_REPLY;
			memcpy(name, buf, len);
			name[len] = 0;
			return RES_OK;
		}
		if (have >= sizeof(buf) - 1)
			return RES_BAD_REPLY;
	}
}

static void record(int r, const char *name)
{
	size_t i;

	if (r == RES_OK) {
		st.ok++;
		for (i = 0; i < st.nnames; i++) {
			if (!strcmp(st.names[i].name, name)) {
				st.names[i].count++;
				return;
			}
		}
		if (st.nnames == st.cap) {
			size_t cap = st.cap ? st.cap * 2 : 8;
			struct name_count *p = realloc(st.names, cap * sizeof(*p));

			if (!p)
				die("realloc");
			st.names = p;
			st.cap = cap;
		}
		snprintf(st.names[st.nnames].name, sizeof(st.names[0].name), "%s", name);
		st.names[st.nnames].count = 1;
		st.nnames++;
		return;
	}
	st.fail++;
	if (r == RES_PEER_MISMATCH)
		st.peer_mismatch++;
	else if (r == RES_BAD_REPLY)
		st.bad_reply++;
	else if (r > 0 && r < MAX_ERRNO)
		st.err[r]++;
	else
		st.err[0]++; /* cannot happen; keeps fail == sum of the parts */
}

/* tcp --send N: bytes written on each connection before the reply is read. */
static unsigned long opt_send;

/* Write n bytes of payload. Returns 0 or an errno. */
static int send_payload(int fd, unsigned long n, double deadline)
{
	static const char chunk[4096] = {[0 ... 4095] = 'x'};

	while (n) {
		size_t len = n < sizeof(chunk) ? n : sizeof(chunk);
		ssize_t w = send(fd, chunk, len, MSG_NOSIGNAL);
		int err;

		if (w > 0) {
			n -= (unsigned long)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

/* --bind ADDR: the source address of every TCP connection (else the wildcard). */
static const char *bind_addr;

/* Bind fd to --bind's address (or the wildcard of t's family) and the given
 * source port (0: any). */
static int bind_port(int fd, const struct target *t, unsigned int port)
{
	struct sockaddr_storage ss;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)t->family;
	if (t->family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		if (bind_addr &&
		    inet_pton(AF_INET, bind_addr, &((struct sockaddr_in *)&ss)->sin_addr) != 1)
			return EINVAL;
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		if (bind_addr &&
		    inet_pton(AF_INET6, bind_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) != 1)
			return EINVAL;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return errno;
	if (bind(fd, (const struct sockaddr *)&ss, t->len) < 0)
		return errno;
	return 0;
}

/*
 * Connect (from source port 'port' when non-zero), check the peer, read the
 * reply. On success *fdp holds the open socket; the caller closes it.
 */
static int tcp_open(const struct target *t, int timeout_ms, bool check_peer, unsigned int port,
		    char *name, int *fdp)
{
	double deadline = now_ms() + timeout_ms;
	int fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = 0;

	*fdp = -1;
	if (fd < 0)
		return errno;
	if (port || bind_addr)
		r = bind_port(fd, t, port);
	if (!r)
		r = connect_bounded(fd, t, deadline);
	if (!r && check_peer) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		memset(&peer, 0, sizeof(peer));
		if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) {
			r = errno;
		} else if (!same_addr(t, &peer, plen)) {
			note_mismatch("getpeername", &peer);
			r = RES_PEER_MISMATCH;
		}
	}
	if (!r && opt_send)
		r = send_payload(fd, opt_send, deadline);
	if (!r)
		r = read_reply(fd, name, deadline, false);
	if (r) {
		xclose(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

/* Close with an RST, so that a fixed source port is free again at once. */
static void close_abort(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		fprintf(stderr, "%s: SO_LINGER: %s\n", prog, strerror(errno));
	xclose(fd);
}

static int one_tcp(const struct target *t, int timeout_ms, bool check_peer, unsigned int port,
		   char *name)
{
	int fd, r = tcp_open(t, timeout_ms, check_peer, port, name, &fd);

	if (r)
		return r;
	if (port)
		close_abort(fd);
	else
		xclose(fd);
	return 0;
}

static int one_udp(const struct target *t, int timeout_ms, bool connected, char *name)
{
	static const char ping[] = "ping\n";
	double deadline = now_ms() + timeout_ms;
	int fd = socket(t->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_storage from;
	socklen_t flen;
	int r;

	if (fd < 0)
		return errno;
	if (connected) {
		if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
			r = errno;
			goto out;
		}
		memset(&from, 0, sizeof(from));
		flen = sizeof(from);
		if (getpeername(fd, (struct sockaddr *)&from, &flen) < 0) {
			r = errno;
			goto out;
		}
		if (!same_addr(t, &from, flen)) {
			note_mismatch("getpeername", &from);
			r = RES_PEER_MISMATCH;
			goto out;
		}
		if (send(fd, ping, sizeof(ping) - 1, 0) < 0) {
			r = errno;
			goto out;
		}
	} else if (sendto(fd, ping, sizeof(ping) - 1, 0, (const struct sockaddr *)&t->ss, t->len) <
		   0) {
		r = errno;
		goto out;
	}

	for (;;) {
		char buf[MAX_NAME + 2];
		ssize_t n;
		size_t len, i;

		r = wait_fd(fd, POLLIN, deadline);
		if (r)
			goto out;
		memset(&from, 0, sizeof(from));
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&from,
			     &flen);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			r = errno;
			goto out;
		}
		if (!same_addr(t, &from, flen)) {
			note_mismatch("reply source", &from);
			r = RES_PEER_MISMATCH;
			goto out;
		}
		len = (size_t)n;
		if (len && buf[len - 1] == '\n')
			len--;
		r = RES_OK;
		if (len == 0 || len > MAX_NAME)
			r = RES_BAD_REPLY;
		for (i = 0; r == RES_OK && i < len; i++)
			if (buf[i] <= ' ' || buf[i] > '~')
				r = RES_BAD_REPLY;
		if (r == RES_OK) {
			memcpy(name, buf, len);
			name[len] = 0;
		}
		goto out;
	}
out:
	xclose(fd);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct name_count *)a)->name, ((const struct name_count *)b)->name);
}

static int cmp_errnos(const void *a, const void *b)
{
	char na[32];

	snprintf(na, sizeof(na), "%s", errno_name(*(const int *)a));
	return strcmp(na, errno_name(*(const int *)b));
}

static int report(double start)
{
	int errs[MAX_ERRNO] = {0};
	size_t i, ne = 0;

	if (st.nnames) /* st.names is NULL until a reply names a backend */
		qsort(st.names, st.nnames, sizeof(st.names[0]), cmp_names);
	for (i = 0; i < st.nnames; i++)
		printf("%s %lu\n", st.names[i].name, st.names[i].count);
	printf("ok %lu\nfail %lu\npeer_mismatch %lu\nbad_reply %lu\n", st.ok, st.fail,
	       st.peer_mismatch, st.bad_reply);
	for (i = 0; i < MAX_ERRNO; i++)
		if (st.err[i])
			errs[ne++] = (int)i;
	qsort(errs, ne, sizeof(errs[0]), cmp_errnos);
	for (i = 0; i < ne; i++)
		printf("errno %s %lu\n", errno_name(errs[i]), st.err[errs[i]]);
	printf("elapsed_ms %.0f\n", now_ms() - start);
	if (fflush(stdout) != 0)
		die("fflush(stdout)");
	return st.fail ? 1 : 0;
}

static void sleep_ms(double ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000.0);
	ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
	while (nanosleep(&ts, &ts) < 0) {
		if (errno != EINTR)
			die("nanosleep");
	}
}

static int do_refused(const struct target *t, int timeout_ms)
{
	double start = now_ms(), elapsed;
	int fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		die("socket");
	r = connect_bounded(fd, t, start + timeout_ms);
	elapsed = now_ms() - start;
	xclose(fd);
	printf("%s %.2fms\n", r ? errno_name(r) : "connected", elapsed);
	if (fflush(stdout) != 0)
		die("fflush(stdout)");
	return (r == ECONNREFUSED && elapsed < REFUSED_WITHIN_MS) ? 0 : 1;
}

enum {
	O_TIMEOUT = 1000,
	O_CHECK_PEER,
	O_CONNECTED,
	O_SECONDS,
	O_INTERVAL,
	O_MAX,
	O_BIND_PORT,
	O_BIND,
	O_TRACE,
	O_SEND,
};

/* Open count connections, keep them open for 'seconds', then close them all. */
static int do_hold(const struct target *t, int timeout_ms, unsigned long count, double seconds)
{
	double start = now_ms();
	char name[MAX_NAME + 1];
	unsigned long i, held = 0;
	int *fds = calloc(count ? count : 1, sizeof(*fds));

	if (!fds)
		die("calloc");
	for (i = 0; i < count; i++) {
		int r = tcp_open(t, timeout_ms, false, 0, name, &fds[i]);

		record(r, name);
		held += r == RES_OK;
	}
	printf("holding %lu\n", held);
	if (fflush(stdout) != 0)
		die("fflush(stdout)");
	sleep_ms(start + seconds * 1000.0 - now_ms());
	for (i = 0; i < count; i++)
		if (fds[i] >= 0)
			xclose(fds[i]);
	free(fds);
	return report(start);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"timeout-ms", required_argument, NULL, O_TIMEOUT},
	    {"check-peer", no_argument, NULL, O_CHECK_PEER},
	    {"connected", no_argument, NULL, O_CONNECTED},
	    {"seconds", required_argument, NULL, O_SECONDS},
	    {"interval-ms", required_argument, NULL, O_INTERVAL},
	    {"max", required_argument, NULL, O_MAX},
	    {"bind-port-base", required_argument, NULL, O_BIND_PORT},
	    {"bind", required_argument, NULL, O_BIND},
	    {"trace", no_argument, NULL, O_TRACE},
	    {"send", required_argument, NULL, O_SEND},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long count = 0, max = DEFAULT_LOOP_MAX, timeout = DEFAULT_TIMEOUT,
		      interval = DEFAULT_INTERVAL, port_base = 0, i;
	bool have_count = false, check_peer = false, connected = false, trace = false;
	double seconds = -1, start;
	char name[MAX_NAME + 1];
	struct target t;
	enum mode mode;
	int opt;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage(0);
	if (argc < 3)
		usage(2);
	if (!strcmp(argv[1], "tcp"))
		mode = M_TCP;
	else if (!strcmp(argv[1], "udp"))
		mode = M_UDP;
	else if (!strcmp(argv[1], "loop"))
		mode = M_LOOP;
	else if (!strcmp(argv[1], "refused"))
		mode = M_REFUSED;
	else if (!strcmp(argv[1], "hold"))
		mode = M_HOLD;
	else
		usage(2);
	if (!parse_target(argv[2], &t)) {
		fprintf(stderr, "%s: bad target '%s' (want A.B.C.D:PORT or [V6]:PORT)\n", prog,
			argv[2]);
		exit(2);
	}

	optind = 3;
	while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		bool ok = true;

		switch (opt) {
		case 'n':
			ok = (mode == M_TCP || mode == M_UDP || mode == M_HOLD) &&
			     parse_ulong(optarg, 100000000UL, &count);
			have_count = true;
			break;
		case O_TIMEOUT:
			ok = parse_ulong(optarg, 3600000UL, &timeout) && timeout > 0;
			break;
		case O_CHECK_PEER:
			ok = mode == M_TCP || mode == M_LOOP;
			check_peer = true;
			break;
		case O_CONNECTED:
			ok = mode == M_UDP;
			connected = true;
			break;
		case O_SECONDS: {
			char *end;

			errno = 0;
			seconds = strtod(optarg, &end);
			ok = (mode == M_LOOP || mode == M_HOLD) && !errno && !*end &&
			     end != optarg && seconds > 0 && seconds <= 86400;
			break;
		}
		case O_INTERVAL:
			ok = mode == M_LOOP && parse_ulong(optarg, 3600000UL, &interval);
			break;
		case O_MAX:
			ok = mode == M_LOOP && parse_ulong(optarg, 100000000UL, &max) && max > 0;
			break;
		case O_BIND:
			bind_addr = optarg;
			break;
		case O_BIND_PORT:
			ok = mode == M_TCP && parse_ulong(optarg, 65535UL, &port_base) &&
			     port_base >= 1024;
			break;
		case O_TRACE:
			ok = mode == M_TCP;
			trace = true;
			break;
		case O_SEND:
			ok = (mode == M_TCP || mode == M_HOLD) &&
			     parse_ulong(optarg, 1UL << 30, &opt_send);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
		if (!ok) {
			fprintf(stderr, "%s: bad or inapplicable option for mode %s\n", prog,
				argv[1]);
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (port_base && port_base + count > 65536) {
		fprintf(stderr, "%s: --bind-port-base + -n goes past port 65535\n", prog);
		usage(2);
	}
	if ((mode == M_TCP || mode == M_UDP || mode == M_HOLD) && !have_count) {
		fprintf(stderr, "%s: %s needs -n COUNT\n", prog, argv[1]);
		usage(2);
	}
	if ((mode == M_LOOP || mode == M_HOLD) && seconds < 0) {
		fprintf(stderr, "%s: %s needs --seconds S\n", prog, argv[1]);
		usage(2);
	}

	start = now_ms();
	switch (mode) {
	case M_TCP:
		for (i = 0; i < count; i++) {
			unsigned int port = port_base ? (unsigned int)(port_base + i) : 0;
			int r = one_tcp(&t, (int)timeout, check_peer, port, name);

			if (trace)
				printf("port %u %s\n", port, r == RES_OK ? name : "-");
			record(r, name);
		}
		return report(start);
	case M_HOLD:
		return do_hold(&t, (int)timeout, count, seconds);
	case M_UDP:
		for (i = 0; i < count; i++)
			record(one_udp(&t, (int)timeout, connected, name), name);
		return report(start);
	case M_LOOP: {
		double end = start + seconds * 1000.0;

		for (i = 0; i < max && now_ms() < end; i++) {
			record(one_tcp(&t, (int)timeout, check_peer, 0, name), name);
			if (i + 1 < max) {
				double left = end - now_ms();

				sleep_ms(left < (double)interval ? left : (double)interval);
			}
		}
		return report(start);
	}
	case M_REFUSED:
		return do_refused(&t, (int)timeout);
	}
	return 2;
}
