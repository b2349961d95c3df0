// SPDX-License-Identifier: GPL-2.0
/*
 * sl_stress - abuse patterns against the datapath, for sluice vmtests. Every
 * mode is bounded in count and in time.
 *
 *   sl_stress flood   HOST:PORT --seconds S [--max N]
 *       TCP connect()s in a tight loop, each on a new socket (a denied or
 *       refused connect fails at once). Prints "attempts N", "errno ENAME N"
 *       per errno, "connected N", "elapsed_ms N".
 *   sl_stress churn   HOST:PORT -n N [--seconds S]
 *       N UDP sockets, each connect()ed to HOST:PORT and closed. Prints
 *       "churned N", "failed N", "elapsed_ms N".
 *   sl_stress peer    --udp HOST:PORT --tcp HOST:PORT --go FILE --seconds S
 *       Checks that getpeername() (UDP and TCP) and recvmsg() (the UDP
 *       reply's source) show the address asked for, on a first pair of
 *       sockets that it then closes ("before" lines). Then opens a connected
 *       UDP socket and a TCP socket to the same addresses and leaves them
 *       alone (a translation nobody looks at is the first an LRU evicts),
 *       prints "ready", waits until FILE exists (at most S seconds), and
 *       checks those ("after" lines). Prints per check "PHASE WHAT ok" or
 *       "PHASE WHAT mismatch ADDR"; exits 0 only if every check saw the
 *       address asked for.
 *   sl_stress synhold HOST:PORT -n N --seconds S
 *       N non-blocking TCP connects left pending; prints "pending N" once
 *       they are sent, then waits until each ends (at most S seconds).
 *       Prints "connected N", "errno ENAME N" per errno, "still_pending N".
 *
 * HOST is an IPv4 literal or a bracketed IPv6 literal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERRNO     4096
#define MAX_FLOOD     50000000UL
#define MAX_COUNT     1000000UL
#define MAX_SECONDS   600.0
#define REPLY_WAIT_MS 2000

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static const char *prog = "sl_stress";
static unsigned long errs[MAX_ERRNO];

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(2);
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s flood   HOST:PORT --seconds S [--max N]\n"
		"       %s churn   HOST:PORT -n N [--seconds S]\n"
		"       %s peer    --udp HOST:PORT --tcp HOST:PORT --go FILE --seconds S\n"
		"       %s synhold HOST:PORT -n N --seconds S\n",
		prog, prog, prog, prog);
	exit(status);
}

static double now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die("clock_gettime");
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* HOST:PORT, HOST an IPv4 literal or [IPv6]. 0 or -1. */
static int parse_target(const char *s, struct target *t)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = s;
	size_t hl;
	char *end;
	long port;

	memset(t, 0, sizeof(*t));
	if (*s == '[') {
		colon = strstr(s, "]:");
		if (!colon)
			return -1;
		h = s + 1;
		hl = (size_t)(colon - h);
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 1 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&t->ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&t->ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&t->ss)->sin_port = htons((uint16_t)port);
		t->len = sizeof(struct sockaddr_in);
		t->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&t->ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&t->ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&t->ss)->sin6_port = htons((uint16_t)port);
		t->len = sizeof(struct sockaddr_in6);
		t->family = AF_INET6;
		return 0;
	}
	return -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		snprintf(out, len, "family-%d", ss->ss_family);
	}
}

static int same_addr(const struct target *t, const struct sockaddr_storage *ss)
{
	if (ss->ss_family != t->family)
		return 0;
	if (t->family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&t->ss, *b = (const void *)ss;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)&t->ss, *b = (const void *)ss;

	return a->sin6_port == b->sin6_port &&
	       !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr));
}

static void count_errno(int e)
{
	errs[e > 0 && e < MAX_ERRNO ? e : 0]++;
}

static void print_errnos(void)
{
	for (int e = 0; e < MAX_ERRNO; e++) {
		const char *name = e ? strerrorname_np(e) : NULL;

		if (errs[e])
			printf("errno %s %lu\n", name ? name : "other", errs[e]);
	}
}

static void flush_or_die(void)
{
	if (fflush(stdout))
		die("fflush(stdout)");
}

static int do_flood(const struct target *t, double seconds, unsigned long max)
{
	double start = now_ms(), end = start + seconds * 1e3;
	unsigned long n = 0, connected = 0;

	while (n < max && (n % 256 || now_ms() < end)) {
		int fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket");
		n++;
		if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == 0 ||
		    errno == EINPROGRESS)
			connected++;
		else
			count_errno(errno);
		if (close(fd) < 0)
			die("close");
	}
	printf("attempts %lu\nconnected %lu\n", n, connected);
	print_errnos();
	printf("elapsed_ms %.0f\n", now_ms() - start);
	flush_or_die();
	return 0;
}

static int do_churn(const struct target *t, unsigned long count, double seconds)
{
	double start = now_ms(), end = start + seconds * 1e3;
	unsigned long n = 0, failed = 0;

	for (; n < count && (n % 256 || now_ms() < end); n++) {
		int fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket");
		if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
			count_errno(errno);
			failed++;
		}
		if (close(fd) < 0)
			die("close");
	}
	printf("churned %lu\nfailed %lu\n", n, failed);
	print_errnos();
	printf("elapsed_ms %.0f\n", now_ms() - start);
	flush_or_die();
	return n == count && !failed ? 0 : 1;
}

/* One check: the address a call returned is the one asked for. */
static int check(const char *phase, const char *what, const struct target *t, int rc,
		 const struct sockaddr_storage *got)
{
	char a[INET6_ADDRSTRLEN + 16];

	if (rc < 0) {
		printf("%s %s error %s\n", phase, what, strerror(errno));
		return 1;
	}
	if (same_addr(t, got)) {
		printf("%s %s ok\n", phase, what);
		return 0;
	}
	format_addr(got, a, sizeof(a));
	printf("%s %s mismatch %s\n", phase, what, a);
	return 1;
}

static int peer_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	return getpeername(fd, (struct sockaddr *)ss, &len);
}

/* Send a datagram on the connected UDP socket; the reply's source. */
static int udp_roundtrip(int fd, struct sockaddr_storage *from)
{
	static const char ping[] = "ping\n";
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	socklen_t len = sizeof(*from);
	char buf[256];
	int r;

	memset(from, 0, sizeof(*from));
	if (send(fd, ping, sizeof(ping) - 1, 0) < 0)
		return -1;
	r = poll(&pfd, 1, REPLY_WAIT_MS);
	if (r <= 0) {
		errno = r ? errno : ETIMEDOUT;
		return -1;
	}
	return recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &len) < 0 ? -1 : 0;
}

static int peer_checks(const char *phase, int ufd, const struct target *u, int tfd,
		       const struct target *tt)
{
	struct sockaddr_storage ss;
	int bad = 0, rc;

	rc = peer_of(ufd, &ss);
	bad += check(phase, "udp_getpeername", u, rc, &ss);
	rc = udp_roundtrip(ufd, &ss);
	bad += check(phase, "udp_recvmsg", u, rc, &ss);
	rc = peer_of(tfd, &ss);
	bad += check(phase, "tcp_getpeername", tt, rc, &ss);
	flush_or_die();
	return bad;
}

static int tcp_connect(const struct target *t)
{
	int fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 2};

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		die("SO_SNDTIMEO");
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0)
		die("connect (tcp)");
	return fd;
}

static int udp_connect(const struct target *t)
{
	int fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0)
		die("connect (udp)");
	return fd;
}

static int do_peer(const struct target *u, const struct target *tt, const char *go, double seconds)
{
	double end = now_ms() + seconds * 1e3;
	int ufd, tfd, bad;
	struct stat sb;

	ufd = udp_connect(u);
	tfd = tcp_connect(tt);
	bad = peer_checks("before", ufd, u, tfd, tt);
	if (close(ufd) < 0 || close(tfd) < 0)
		die("close");
	ufd = udp_connect(u);
	tfd = tcp_connect(tt);
	printf("ready\n");
	flush_or_die();
	while (stat(go, &sb) < 0 && now_ms() < end)
		usleep(50 * 1000);
	bad += peer_checks("after", ufd, u, tfd, tt);
	if (close(ufd) < 0 || close(tfd) < 0)
		die("close");
	return bad ? 1 : 0;
}

static int do_synhold(const struct target *t, unsigned long count, double seconds)
{
	double end = now_ms() + seconds * 1e3;
	unsigned long connected = 0, pending = 0;
	struct pollfd *pfds = calloc(count, sizeof(*pfds));

	if (!pfds)
		die("calloc");
	for (unsigned long i = 0; i < count; i++) {
		int fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket");
		pfds[i] = (struct pollfd){.fd = fd, .events = POLLOUT};
		if (connect(fd, (const struct sockaddr *)&t->ss, t->len) == 0) {
			connected++;
		} else if (errno == EINPROGRESS) {
			pending++;
			continue;
		} else {
			count_errno(errno);
		}
		close(fd);
		pfds[i].fd = -1;
	}
	printf("pending %lu\n", pending);
	flush_or_die();
	while (pending && now_ms() < end) {
		int r = poll(pfds, count, 100);

		if (r < 0 && errno != EINTR)
			die("poll");
		for (unsigned long i = 0; r > 0 && i < count; i++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (pfds[i].fd < 0 || !pfds[i].revents)
				continue;
			if (getsockopt(pfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				die("SO_ERROR");
			if (err)
				count_errno(err);
			else
				connected++;
			close(pfds[i].fd);
			pfds[i].fd = -1;
			pending--;
		}
	}
	for (unsigned long i = 0; i < count; i++)
		if (pfds[i].fd >= 0)
			close(pfds[i].fd);
	free(pfds);
	printf("connected %lu\n", connected);
	print_errnos();
	printf("still_pending %lu\n", pending);
	flush_or_die();
	return 0;
}

enum { O_SECONDS = 1000, O_MAX, O_UDP, O_TCP, O_GO };

static double parse_seconds(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v <= 0 || v > MAX_SECONDS)
		usage(2);
	return v;
}

static unsigned long parse_count(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > max)
		usage(2);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, O_SECONDS},
	    {"max", required_argument, NULL, O_MAX},
	    {"udp", required_argument, NULL, O_UDP},
	    {"tcp", required_argument, NULL, O_TCP},
	    {"go", required_argument, NULL, O_GO},
	    {NULL, 0, NULL, 0},
	};
	struct target t = {0}, u = {0}, tt = {0};
	unsigned long count = 0, max = MAX_FLOOD;
	double seconds = 0;
	const char *mode, *go = NULL;
	int opt, have_t = 0, have_u = 0, have_tt = 0;

	if (argc < 2)
		usage(2);
	mode = argv[1];
	optind = 2;
	if (argc > 2 && argv[2][0] != '-') {
		if (parse_target(argv[2], &t))
			usage(2);
		have_t = 1;
		optind = 3;
	}
	while ((opt = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			count = parse_count(optarg, MAX_COUNT);
			break;
		case O_SECONDS:
			seconds = parse_seconds(optarg);
			break;
		case O_MAX:
			max = parse_count(optarg, MAX_FLOOD);
			break;
		case O_UDP:
			have_u = !parse_target(optarg, &u);
			if (!have_u)
				usage(2);
			break;
		case O_TCP:
			have_tt = !parse_target(optarg, &tt);
			if (!have_tt)
				usage(2);
			break;
		case O_GO:
			go = optarg;
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (!strcmp(mode, "flood") && have_t && seconds > 0)
		return do_flood(&t, seconds, max);
	if (!strcmp(mode, "churn") && have_t && count)
		return do_churn(&t, count, seconds > 0 ? seconds : MAX_SECONDS);
	if (!strcmp(mode, "peer") && have_u && have_tt && go && seconds > 0)
		return do_peer(&u, &tt, go, seconds);
	if (!strcmp(mode, "synhold") && have_t && count && seconds > 0)
		return do_synhold(&t, count, seconds);
	usage(2);
	return 2;
}
