// SPDX-License-Identifier: GPL-2.0
/*
 * sl_bench - the load generator of `make bench`.
 *
 *   sl_bench conn|ka ADDR:PORT[,ADDR:PORT...] [-c CONC] [-n MAX_OPS] [-d SECONDS]
 *                    [-w WARMUP_S] [-p PATH] [-t TIMEOUT_MS]
 *
 * conn: every operation is socket(), connect(), one HTTP/1.1 GET with "Connection: close",
 *       the whole response read until the server closes, close(). Latency = the whole of that.
 * ka:   every thread keeps one connection open and sends GETs on it one after another
 *       (keep-alive); an operation is one request and its response (Content-Length framed).
 *
 * CONC threads (default 8) run for WARMUP_S (default 0.3, not counted), then for SECONDS
 * (default 2) or until MAX_OPS (default 1000000) operations were measured, whichever comes
 * first. Several targets are used in turn (client-side round robin). Every socket has a
 * TIMEOUT_MS (default 2000) send/receive timeout, so the run ends by WARMUP_S + SECONDS +
 * TIMEOUT_MS/1000 at the latest.
 *
 * Network safety: only IPv4 targets in 198.18.0.0/15 (RFC 2544 benchmarking) are accepted.
 *
 * Prints one line of key=value pairs:
 *   mode=conn ops=N errors=N secs=S rate=OPS_PER_S p50_us=.. p90_us=.. p99_us=.. max_us=..
 *   bytes=N mbit_s=.. [err_ENAME=N ...]
 * and exits 0 if at least one operation succeeded and at most 1% failed, else 1; 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS   64
#define MAX_THREADS   256
#define MAX_ERRNO     256
#define BUF_SIZE      65536
#define LAT_FAILED    UINT64_MAX
#define ERR_BAD_REPLY 0 /* errno slot 0: a reply that was not "HTTP/1.x 200" */

enum mode { M_CONN, M_KA };

static const char *prog = "sl_bench";
static enum mode mode;
static struct sockaddr_in targets[MAX_TARGETS];
static unsigned ntargets;
static char request[512];
static size_t request_len;
static unsigned long max_ops = 1000000;
static int timeout_ms = 2000;

static uint64_t t_measure, t_end; /* monotonic ns */
static uint64_t *lat;		  /* per measured op, ns; LAT_FAILED on error */
static atomic_ulong next_slot;	  /* measured ops claimed */
static atomic_ulong next_target;
static atomic_ulong err_count[MAX_ERRNO];
static atomic_ullong body_bytes;
static atomic_ullong t_last; /* latest finish of a measured op */

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s conn|ka ADDR:PORT[,ADDR:PORT...] [-c CONC] [-n MAX_OPS] [-d SECONDS]\n"
		"       [-w WARMUP_S] [-p PATH] [-t TIMEOUT_MS]\n"
		"  conn: connect, GET (Connection: close), read to EOF, close; per operation.\n"
		"  ka:   GETs on one keep-alive connection per thread.\n"
		"  Targets: IPv4 in 198.18.0.0/15 only.\n",
		prog);
	exit(status);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool parse_targets(char *arg)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct sockaddr_in *s = &targets[ntargets];
		char *colon = strrchr(tok, ':'), *end;
		unsigned long port;
		uint32_t a;

		if (ntargets >= MAX_TARGETS || !colon)
			return false;
		*colon = 0;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || *end || port == 0 || port > 65535)
			return false;
		memset(s, 0, sizeof(*s));
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, tok, &s->sin_addr) != 1)
			return false;
		a = ntohl(s->sin_addr.s_addr);
		if ((a & 0xfffe0000u) != 0xc6120000u) { /* 198.18.0.0/15 */
			fprintf(stderr, "%s: %s is outside 198.18.0.0/15; refused\n", prog, tok);
			exit(2);
		}
		ntargets++;
	}
	return ntargets > 0;
}

static void count_err(int e)
{
	if (e < 0 || e >= MAX_ERRNO)
		e = MAX_ERRNO - 1;
	atomic_fetch_add(&err_count[e], 1);
}

static int open_conn(void)
{
	const struct sockaddr_in *t;
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	int fd, one = 1;

	t = &targets[atomic_fetch_add(&next_target, 1) % ntargets];
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)t, sizeof(*t)) < 0) {
		int e = errno == EINPROGRESS ? ETIMEDOUT : errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one response. With until_eof, reads to EOF; otherwise Content-Length frames it.
 * Returns the body length, -errno on failure, or -1000 for a reply that is not a 200. */
static long read_response(int fd, char *buf, bool until_eof)
{
	size_t have = 0, hdr_len = 0;
	long clen = -1, body = 0;
	char *eoh = NULL;

	for (;;) {
		ssize_t r;

		if (!eoh) {
			if (have >= BUF_SIZE - 1)
				return -EMSGSIZE;
			r = recv(fd, buf + have, BUF_SIZE - 1 - have, 0);
		} else {
			r = recv(fd, buf, BUF_SIZE, 0);
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (r == 0) {
			if (eoh && (until_eof || body >= clen))
				return body;
			return -ECONNRESET;
		}
		if (eoh) {
			body += r;
		} else {
			have += (size_t)r;
			buf[have] = 0;
			eoh = strstr(buf, "\r\n\r\n");
			if (eoh) {
				const char *cl;

				if (strncmp(buf, "HTTP/1.1 200 ", 13) &&
				    strncmp(buf, "HTTP/1.0 200 ", 13))
					return -1000;
				hdr_len = (size_t)(eoh + 4 - buf);
				body = (long)(have - hdr_len);
				cl = strcasestr(buf, "\r\ncontent-length:");
				if (cl && cl < eoh)
					clen = strtol(cl + 17, NULL, 10);
				if (!until_eof && clen < 0)
					return -1000;
			}
		}
		if (eoh && !until_eof && body >= clen)
			return body;
	}
}

/* A measured op claims a slot; returns the slot or -1 when the run is over. */
static long claim_slot(uint64_t t)
{
	unsigned long s;

	if (t >= t_end)
		return -1;
	if (t < t_measure)
		return -2; /* warm-up: not recorded */
	s = atomic_fetch_add(&next_slot, 1);
	return s < max_ops ? (long)s : -1;
}

static void record(long slot, uint64_t t0, long res)
{
	uint64_t t1 = now_ns(), prev;

	if (slot < 0)
		return; /* warm-up */
	if (res < 0)
		count_err(res == -1000 ? ERR_BAD_REPLY : (int)-res);
	if (res >= 0)
		atomic_fetch_add(&body_bytes, (unsigned long long)res);
	lat[slot] = res >= 0 ? t1 - t0 : LAT_FAILED;
	prev = atomic_load(&t_last);
	while (t1 > prev && !atomic_compare_exchange_weak(&t_last, &prev, t1))
		;
}

static void *worker(void *arg)
{
	char *buf = malloc(BUF_SIZE + 1);
	int fd = -1;

	(void)arg;
	if (!buf)
		return NULL;
	for (;;) {
		uint64_t t0 = now_ns();
		long slot = claim_slot(t0), res;

		if (slot == -1)
			break;
		if (fd < 0) {
			fd = open_conn();
			if (fd < 0) {
				record(slot, t0, fd);
				fd = -1;
				usleep(1000); /* a refused or failed connect must not spin */
				continue;
			}
		}
		res = send_all(fd, request, request_len);
		if (!res)
			res = read_response(fd, buf, mode == M_CONN);
		if (mode == M_CONN || res < 0) {
			close(fd);
			fd = -1;
		}
		record(slot, t0, res);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}

static const char *errno_name(int e)
{
	static char b[32];

	switch (e) {
	case ERR_BAD_REPLY:
		return "BADREPLY";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ECONNRESET:
		return "ECONNRESET";
	case EADDRNOTAVAIL:
		return "EADDRNOTAVAIL";
	case EINVAL:
		return "EINVAL";
	case EPERM:
		return "EPERM";
	case EPIPE:
		return "EPIPE";
	case EMFILE:
		return "EMFILE";
	case ENETUNREACH:
		return "ENETUNREACH";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	default:
		snprintf(b, sizeof(b), "E%d", e);
		return b;
	}
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	double conc = 8, dur = 2, warm = 0.3, v;
	const char *path = "/";
	pthread_t th[MAX_THREADS];
	unsigned long ok = 0, failed = 0, i, n;
	uint64_t t_start, *good;
	double secs;
	int opt, nth;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		usage(0);
	if (argc < 3)
		usage(2);
	if (!strcmp(argv[1], "conn"))
		mode = M_CONN;
	else if (!strcmp(argv[1], "ka"))
		mode = M_KA;
	else
		usage(2);
	if (!parse_targets(argv[2])) {
		fprintf(stderr, "%s: bad target list\n", prog);
		usage(2);
	}
	optind = 3;
	while ((opt = getopt_long(argc, argv, "c:n:d:w:p:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (!parse_num(optarg, 1, MAX_THREADS, &conc))
				usage(2);
			break;
		case 'n':
			if (!parse_num(optarg, 1, 50000000, &v))
				usage(2);
			max_ops = (unsigned long)v;
			break;
		case 'd':
			if (!parse_num(optarg, 0.1, 600, &dur))
				usage(2);
			break;
		case 'w':
			if (!parse_num(optarg, 0, 60, &warm))
				usage(2);
			break;
		case 'p':
			if (optarg[0] != '/' || strlen(optarg) > 200 || strpbrk(optarg, " \r\n"))
				usage(2);
			path = optarg;
			break;
		case 't':
			if (!parse_num(optarg, 10, 60000, &v))
				usage(2);
			timeout_ms = (int)v;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	request_len =
	    (size_t)snprintf(request, sizeof(request),
			     "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: sl_bench\r\n%s\r\n",
			     path, mode == M_CONN ? "Connection: close\r\n" : "");
	lat = calloc(max_ops, sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 2;
	}
	nth = (int)conc;
	t_start = now_ns();
	t_measure = t_start + (uint64_t)(warm * 1e9);
	t_end = t_measure + (uint64_t)(dur * 1e9);
	atomic_store(&t_last, t_measure);
	for (i = 0; i < (unsigned long)nth; i++) {
		if (pthread_create(&th[i], NULL, worker, NULL)) {
			fprintf(stderr, "%s: pthread_create failed\n", prog);
			return 2;
		}
	}
	for (i = 0; i < (unsigned long)nth; i++)
		pthread_join(th[i], NULL);

	n = atomic_load(&next_slot);
	if (n > max_ops)
		n = max_ops;
	good = malloc((n + 1) * sizeof(*good));
	if (!good) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (lat[i] == LAT_FAILED)
			failed++;
		else
			good[ok++] = lat[i];
	}
	qsort(good, ok, sizeof(*good), cmp_u64);
	secs = (double)(atomic_load(&t_last) - t_measure) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	printf("mode=%s ops=%lu errors=%lu secs=%.3f rate=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f max_us=%.1f bytes=%llu mbit_s=%.1f",
	       mode == M_CONN ? "conn" : "ka", ok, failed, secs, (double)ok / secs,
	       pct(good, ok, 0.50), pct(good, ok, 0.90), pct(good, ok, 0.99), pct(good, ok, 1.0),
	       (unsigned long long)atomic_load(&body_bytes),
	       (double)atomic_load(&body_bytes) * 8.0 / secs / 1e6);
	for (i = 0; i < MAX_ERRNO; i++) {
		unsigned long c = atomic_load(&err_count[i]);

		if (c)
			printf(" err_%s=%lu", errno_name((int)i), c);
	}
	printf("\n");
	free(good);
	free(lat);
	return ok > 0 && failed * 100 <= ok ? 0 : 1;
}
