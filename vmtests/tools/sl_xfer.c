// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl_xfer: byte-exact transfer tests for same-node redirection.
 *
 *   sl_xfer serve --port P [--addr A] [--mode echo|flip|sink] [--sink-dir DIR]
 *                 [--pidfile F] [--seconds S]
 *       echo: send back every byte read; at EOF, shut down the write side.
 *       flip: the same with every byte XOR 1 (a different peer, to catch misdelivery).
 *       sink: keep what is read in DIR/conn-N.bin; say nothing.
 *       One child process per connection. Ends after S seconds (default 600).
 *   sl_xfer send HOST:PORT --file F [--method write|small|writev|sendfile|splice]
 *       Sends F, half-closes (shutdown SHUT_WR), and copies all that comes back to
 *       stdout until EOF. Writing and reading interleave, so large files do not deadlock.
 *   sl_xfer drop HOST:PORT --file F
 *       Sends F and closes at once, without reading (a close while data is in flight).
 *   sl_xfer reset HOST:PORT --bytes N
 *       Sends N bytes, then closes with an RST (SO_LINGER 0).
 * Exit 0 on success, 1 on a failed transfer, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static void die(const char *what)
{
	fprintf(stderr, "sl_xfer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: sl_xfer serve --port P [--addr A] [--mode echo|flip|sink] "
			"[--sink-dir DIR] [--pidfile F] [--seconds S]\n"
			"       sl_xfer send HOST:PORT --file F "
			"[--method write|small|writev|sendfile|splice]\n"
			"       sl_xfer drop HOST:PORT --file F\n"
			"       sl_xfer reset HOST:PORT --bytes N\n");
	exit(2);
}

static int parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = 0;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(rb + 2));
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -1;
	}
	colon = strrchr(s, ':');
	hl = colon ? (size_t)(colon - s) : 0;
	if (!colon || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)atoi(colon + 1));
	*len = sizeof(struct sockaddr_in);
	return inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1 ? 0 : -1;
}

static int dial(const char *target)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (parse_target(target, &ss, &len))
		usage();
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&ss, len))
		die("connect");
	return fd;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One server connection. */
static int serve_conn(int fd, const char *mode, const char *dir, unsigned long n)
{
	char buf[CHUNK], path[4200];
	int out = -1;
	ssize_t r;

	if (!strcmp(mode, "sink")) {
		snprintf(path, sizeof(path), "%s/conn-%lu.bin", dir, n);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0)
			die(path);
	}
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sl_xfer: conn %lu: read: %s\n", n, strerror(errno));
			return 1;
		}
		if (out >= 0) {
			if (write_all(out, buf, (size_t)r))
				die("write sink");
			continue;
		}
		if (!strcmp(mode, "flip"))
			for (ssize_t i = 0; i < r; i++)
				buf[i] ^= 1;
		if (write_all(fd, buf, (size_t)r)) {
			fprintf(stderr, "sl_xfer: conn %lu: write: %s\n", n, strerror(errno));
			return 1;
		}
	}
	if (out >= 0 && close(out))
		die("close sink");
	shutdown(fd, SHUT_WR);
	fprintf(stderr, "sl_xfer: conn %lu: done\n", n);
	return 0;
}

static int serve(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"addr", required_argument, NULL, 'a'},
	    {"mode", required_argument, NULL, 'm'},
	    {"sink-dir", required_argument, NULL, 'd'},
	    {"pidfile", required_argument, NULL, 'f'},
	    {"seconds", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *addr = "::", *mode = "echo", *dir = ".", *pidfile = NULL;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	int port = 0, opt, one = 1, zero = 0, lfd;
	unsigned long n = 0, seconds = 600;
	time_t end;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'a':
			addr = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'f':
			pidfile = optarg;
			break;
		case 's':
			seconds = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 ||
	    (strcmp(mode, "echo") && strcmp(mode, "flip") && strcmp(mode, "sink")))
		usage();
	sa.sin6_port = htons((uint16_t)port);
	if (strchr(addr, ':')) {
		if (inet_pton(AF_INET6, addr, &sa.sin6_addr) != 1)
			usage();
	} else {
		/* An IPv4 address as ::ffff:a.b.c.d on the dual-stack socket. */
		char mapped[64];

		snprintf(mapped, sizeof(mapped), "::ffff:%s", addr);
		if (inet_pton(AF_INET6, mapped, &sa.sin6_addr) != 1)
			usage();
	}
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 256))
		die("listen");
	signal(SIGCHLD, SIG_IGN); /* children reap themselves */
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");

		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
			die(pidfile);
	}
	end = time(NULL) + (time_t)seconds;
	while (time(NULL) < end) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 1000) <= 0)
			continue;
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		n++;
		if (fork() == 0) {
			close(lfd);
			exit(serve_conn(c, mode, dir, n));
		}
		close(c);
	}
	return 0;
}

/* Send the file the chosen way while copying the reply to stdout. */
static int send_file(int fd, int file, const char *method)
{
	struct stat st;
	char in[CHUNK], out[CHUNK];
	off_t off = 0;
	int pipefd[2] = {-1, -1}, done_writing = 0;
	size_t small = 1, in_pipe = 0;
	loff_t spliced = 0;

	if (fstat(file, &st))
		die("fstat");
	if (!strcmp(method, "splice") && pipe2(pipefd, O_CLOEXEC))
		die("pipe2");
	if (st.st_size == 0) {
		shutdown(fd, SHUT_WR);
		done_writing = 1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (done_writing ? 0 : POLLOUT)};
		ssize_t r;

		if (poll(&p, 1, 30000) <= 0) {
			fprintf(stderr, "sl_xfer: stalled at %lld of %lld bytes\n", (long long)off,
				(long long)st.st_size);
			return 1;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read(fd, in, sizeof(in));
			if (r < 0 && errno != EINTR && errno != EAGAIN) {
				fprintf(stderr, "sl_xfer: read: %s\n", strerror(errno));
				return 1;
			}
			if (r == 0) {
				if (!done_writing) {
					fprintf(stderr, "sl_xfer: EOF before all was sent\n");
					return 1;
				}
				return 0;
			}
			if (r > 0 && write_all(STDOUT_FILENO, in, (size_t)r))
				die("stdout");
		}
		if (done_writing || !(p.revents & POLLOUT))
			continue;
		if (!strcmp(method, "sendfile")) {
			r = sendfile(fd, file, &off, CHUNK);
		} else if (!strcmp(method, "splice")) {
			/* file -> pipe, then pipe -> socket as the socket takes it. */
			if (!in_pipe) {
				r = splice(file, &spliced, pipefd[1], NULL, CHUNK, SPLICE_F_MOVE);
				if (r > 0)
					in_pipe = (size_t)r;
			}
			if (in_pipe) {
				r = splice(pipefd[0], NULL, fd, NULL, in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (r > 0) {
					in_pipe -= (size_t)r;
					off += r;
				}
			}
		} else {
			size_t want = CHUNK;

			if (!strcmp(method, "small"))
				want = small = small % 16 + 1; /* 1..16 bytes a write */
			r = pread(file, out, want, off);
			if (r > 0) {
				ssize_t w;

				if (!strcmp(method, "writev")) {
					size_t a = (size_t)r / 3, b = (size_t)r / 3;
					struct iovec iov[3] = {{out, a},
							       {out + a, b},
							       {out + a + b, (size_t)r - a - b}};

					w = writev(fd, iov, 3);
				} else {
					w = write(fd, out, (size_t)r);
				}
				r = w;
				if (r > 0)
					off += r;
			}
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			die(method);
		if (off >= st.st_size) {
			shutdown(fd, SHUT_WR);
			done_writing = 1;
		}
	}
}

int main(int argc, char **argv)
{
	const char *file = NULL, *method = "write";
	unsigned long bytes = 0;
	int opt, fd, f;

	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"method", required_argument, NULL, 'm'},
	    {"bytes", required_argument, NULL, 'b'},
	    {NULL, 0, NULL, 0},
	};

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "serve"))
		return serve(argc - 1, argv + 1);
	if (argc < 3)
		usage();
	optind = 3;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			file = optarg;
			break;
		case 'm':
			method = optarg;
			break;
		case 'b':
			bytes = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (!strcmp(argv[1], "reset")) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		char buf[CHUNK] = {0};

		fd = dial(argv[2]);
		while (bytes) {
			size_t n = bytes < sizeof(buf) ? bytes : sizeof(buf);

			if (write_all(fd, buf, n))
				die("write");
			bytes -= n;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
			die("SO_LINGER");
		return close(fd) ? 1 : 0;
	}
	if (!file)
		usage();
	f = open(file, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		die(file);
	if (!strcmp(argv[1], "drop")) {
		char buf[CHUNK];
		ssize_t r;

		fd = dial(argv[2]);
		while ((r = read(f, buf, sizeof(buf))) > 0)
			if (write_all(fd, buf, (size_t)r))
				die("write");
		return close(fd) ? 1 : 0;
	}
	if (strcmp(argv[1], "send") ||
	    (strcmp(method, "write") && strcmp(method, "small") && strcmp(method, "writev") &&
	     strcmp(method, "sendfile") && strcmp(method, "splice")))
		usage();
	fd = dial(argv[2]);
	if (fcntl(fd, F_SETFL, O_NONBLOCK))
		die("fcntl");
	return send_file(fd, f, method);
}
