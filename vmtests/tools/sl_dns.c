// SPDX-License-Identifier: GPL-2.0
/*
 * sl_dns - a DNS-like client for sluice vmtests (sl_server answers "NAME\n").
 *
 *   sl_dns connected   HOST:PORT --seconds S [--interval-ms MS] [--timeout-ms MS]
 *   sl_dns unconnected HOST:PORT -n COUNT [--burst B] [--timeout-ms MS]
 *   sl_dns hold        HOST:PORT --seconds S
 *
 * connected: one connected UDP socket asks every MS ms (default 20) and waits for the
 * answer, as a resolver does. An error on the socket (the agent closed it) is printed, the
 * socket closed, and a new one connected at once. Each event is a line with the wall clock
 * in ms (CLOCK_REALTIME) first:
 *   MS reply NAME        an answer from NAME
 *   MS timeout           no answer within the timeout (default 300 ms): asked again
 *   MS error ENAME       send/recv failed: reconnected
 * then a summary: "NAME COUNT" per backend, "ok N", "errors N", "timeouts N".
 *
 * unconnected: one unconnected socket sends COUNT datagrams (sendto the frontend), B at a
 * time (default 1) before their answers are read with recvfrom; prints "NAME COUNT" per backend,
 * "ok N", "fail N", "peer_mismatch N" (an answer whose source was not HOST:PORT).
 *
 * hold: one TCP connection; reads the "NAME\n" greeting ("MS connected NAME"), then waits
 * up to S s for the end: "MS eof" (the server closed) or "MS error ENAME".
 *
 * Every run is bounded by S s or COUNT x timeout. Exit 0, or 1 on a failure, 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES 16
#define NAME_LEN  64

struct target {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

struct tally {
	char name[MAX_NAMES][NAME_LEN];
	unsigned long count[MAX_NAMES];
	int n;
};

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_target(const char *s, struct target *t)
{
	char host[128];
	const char *colon;
	struct sockaddr_in *in = (struct sockaddr_in *)&t->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&t->ss;
	size_t hl;
	long port;

	memset(t, 0, sizeof(*t));
	colon = strrchr(s, ':');
	if (!colon)
		return -1;
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']' || hl - 2 >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = 0;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		t->family = AF_INET6;
		t->len = sizeof(*in6);
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? 0 : -1;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	t->family = AF_INET;
	t->len = sizeof(*in);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
}

static void tally_add(struct tally *t, const char *name)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->name[i], name))
			break;
	if (i == t->n) {
		if (t->n == MAX_NAMES)
			return;
		snprintf(t->name[i], NAME_LEN, "%s", name);
		t->n++;
	}
	t->count[i]++;
}

static void tally_print(const struct tally *t)
{
	for (int i = 0; i < t->n; i++)
		printf("%s %lu\n", t->name[i], t->count[i]);
}

/* Wait for fd to be readable until 'deadline' (mono ms): 0, ETIMEDOUT or an errno. */
static int wait_in(int fd, double deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	double left = deadline - mono_ms();
	int r;

	if (left <= 0)
		return ETIMEDOUT;
	r = poll(&p, 1, (int)left + 1);
	if (r < 0)
		return errno == EINTR ? 0 : errno;
	return r ? 0 : ETIMEDOUT;
}

/* A reply's NAME, without the newline; -1 if the bytes are not "NAME\n". */
static int reply_name(char *buf, ssize_t n)
{
	if (n < 2 || n >= NAME_LEN || buf[n - 1] != '\n')
		return -1;
	buf[n - 1] = 0;
	return 0;
}

static int udp_connect(const struct target *t)
{
	int fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* One question on a connected socket: 0 (answered, *name), ETIMEDOUT, or an errno. */
static int ask(int fd, int timeout_ms, char *name)
{
	char buf[NAME_LEN + 1];
	double deadline = mono_ms() + timeout_ms;
	ssize_t n;
	int r;

	if (send(fd, "ping\n", 5, 0) < 0)
		return errno;
	for (;;) {
		r = wait_in(fd, deadline);
		if (r)
			return r;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return errno;
		if (!reply_name(buf, n)) {
			memcpy(name, buf, (size_t)n);
			return 0;
		}
	}
}

static int do_connected(const struct target *t, double seconds, int interval_ms, int timeout_ms)
{
	double end = mono_ms() + seconds * 1e3;
	unsigned long ok = 0, errors = 0, timeouts = 0;
	struct tally tl = {0};
	char name[NAME_LEN];
	int fd = -1, r;

	while (mono_ms() < end) {
		if (fd < 0) {
			fd = udp_connect(t);
			if (fd < 0) {
				printf("%.0f error %s\n", wall_ms(), strerrorname_np(-fd));
				errors++;
				usleep((useconds_t)interval_ms * 1000);
				continue;
			}
		}
		r = ask(fd, timeout_ms, name);
		if (!r) {
			printf("%.0f reply %s\n", wall_ms(), name);
			tally_add(&tl, name);
			ok++;
		} else if (r == ETIMEDOUT) {
			printf("%.0f timeout\n", wall_ms());
			timeouts++;
		} else {
			printf("%.0f error %s\n", wall_ms(), strerrorname_np(r));
			errors++;
			close(fd);
			fd = -1;
			continue; /* a resolver asks again at once */
		}
		usleep((useconds_t)interval_ms * 1000);
	}
	if (fd >= 0)
		close(fd);
	tally_print(&tl);
	printf("ok %lu\nerrors %lu\ntimeouts %lu\n", ok, errors, timeouts);
	return ok ? 0 : 1;
}

static int same_addr(const struct target *t, const struct sockaddr_storage *from)
{
	if (from->ss_family != t->family)
		return 0;
	if (t->family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&t->ss, *b = (const void *)from;

		return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)&t->ss, *b = (const void *)from;

	return a->sin6_port == b->sin6_port && !memcmp(&a->sin6_addr, &b->sin6_addr, 16);
}

/* One answer on an unconnected socket: 0 (its NAME in buf, its source in from), or an errno. */
static int answer(int fd, int timeout_ms, char *buf, struct sockaddr_storage *from)
{
	double deadline = mono_ms() + timeout_ms;
	socklen_t flen = sizeof(*from);
	ssize_t n;
	int r;

	while (!(r = wait_in(fd, deadline))) {
		n = recvfrom(fd, buf, NAME_LEN + 1, MSG_DONTWAIT, (struct sockaddr *)from, &flen);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return errno;
		return reply_name(buf, n) ? EBADMSG : 0;
	}
	return r;
}

/* COUNT datagrams, BURST sent before their answers are read. */
static int do_unconnected(const struct target *t, unsigned long count, unsigned long burst,
			  int timeout_ms)
{
	unsigned long ok = 0, fail = 0, mismatch = 0, sent;
	struct tally tl = {0};
	int fd = socket(t->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		return 1;
	}
	for (unsigned long i = 0; i < count; i += sent) {
		for (sent = 0; sent < burst && i + sent < count; sent++)
			if (sendto(fd, "ping\n", 5, 0, (const struct sockaddr *)&t->ss, t->len) < 0)
				fail++;
		for (unsigned long j = 0; j < sent; j++) {
			struct sockaddr_storage from;
			char buf[NAME_LEN + 1];

			if (answer(fd, timeout_ms, buf, &from)) {
				fail++;
			} else if (!same_addr(t, &from)) {
				mismatch++;
				fail++;
			} else {
				tally_add(&tl, buf);
				ok++;
			}
		}
	}
	close(fd);
	tally_print(&tl);
	printf("ok %lu\nfail %lu\npeer_mismatch %lu\n", ok, fail, mismatch);
	return fail ? 1 : 0;
}

static int do_hold(const struct target *t, double seconds)
{
	int fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	double deadline = mono_ms() + seconds * 1e3;
	char buf[NAME_LEN + 1];
	ssize_t n;
	int r;

	if (fd < 0 || connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
		printf("%.0f error %s\n", wall_ms(), strerrorname_np(errno));
		return 1;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0 || reply_name(buf, n)) {
		printf("%.0f error %s\n", wall_ms(), n < 0 ? strerrorname_np(errno) : "greeting");
		close(fd);
		return 1;
	}
	printf("%.0f connected %s\n", wall_ms(), buf);
	fflush(stdout);
	for (;;) {
		r = wait_in(fd, deadline);
		if (r) {
			printf("%.0f error %s\n", wall_ms(), strerrorname_np(r));
			break;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (n == 0)
				printf("%.0f eof\n", wall_ms());
			else
				printf("%.0f error %s\n", wall_ms(), strerrorname_np(errno));
			break;
		}
	}
	close(fd);
	return 0;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: sl_dns connected HOST:PORT --seconds S [--interval-ms MS] [--timeout-ms MS]\n"
	    "       sl_dns unconnected HOST:PORT -n COUNT [--timeout-ms MS]\n"
	    "       sl_dns hold HOST:PORT --seconds S\n");
	return 2;
}

int main(int argc, char **argv)
{
	double seconds = 0;
	long count = 0, burst = 1, interval = 20, timeout = 300;
	struct target t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || parse_target(argv[2], &t))
		return usage();
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seconds"))
			seconds = strtod(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "-n"))
			count = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--burst"))
			burst = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--interval-ms"))
			interval = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--timeout-ms"))
			timeout = strtol(argv[i + 1], NULL, 10);
		else
			return usage();
	}
	if (interval < 1 || interval > 10000 || timeout < 1 || timeout > 10000 || seconds > 600 ||
	    count > 1000000 || burst < 1 || burst > 64)
		return usage();
	if (!strcmp(argv[1], "connected") && seconds > 0)
		return do_connected(&t, seconds, (int)interval, (int)timeout);
	if (!strcmp(argv[1], "unconnected") && count > 0)
		return do_unconnected(&t, (unsigned long)count, (unsigned long)burst, (int)timeout);
	if (!strcmp(argv[1], "hold") && seconds > 0)
		return do_hold(&t, seconds);
	return usage();
}
