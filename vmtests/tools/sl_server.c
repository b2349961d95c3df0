// SPDX-License-Identifier: GPL-2.0
/*
 * sl_server - tiny TCP+UDP backend for sluice vmtests.
 *
 *   sl_server --name NAME --port PORT [--addr ADDR] [--pidfile FILE]
 *
 * Listens on TCP and UDP PORT at ADDR (default "::", dual stack with IPV6_V6ONLY=0).
 * TCP: every accepted connection gets "NAME\n", then the server reads until EOF or 2 s
 * and closes. UDP: every datagram is answered with "NAME\n" from the address it was sent to.
 * One epoll loop, non-blocking sockets: no client can block another.
 * SIGTERM/SIGINT: clean exit (status 0), the pidfile is removed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MS	    2000
#define MAX_EVENTS  256
#define MAX_NAME    200
#define TAG_LISTEN  ((uint64_t)1)
#define TAG_UDP	    ((uint64_t)2)
#define TAG_SIGNAL  ((uint64_t)3)
#define TAG_CONN_LO ((uint64_t)16) /* above: a struct conn pointer */

struct conn {
	int fd;
	size_t sent;	  /* bytes of the reply already written */
	int64_t deadline; /* monotonic ms */
	struct conn *prev, *next;
};

static const char *prog = "sl_server";
static char reply[MAX_NAME + 2];
static size_t reply_len;
static int epfd = -1;
/* Connections in accept order == deadline order (all get HOLD_MS): a FIFO. */
static struct conn *conn_head, *conn_tail;
static unsigned long nconns;

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die("clock_gettime(CLOCK_MONOTONIC)");
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s --name NAME --port PORT [--addr ADDR] [--pidfile FILE]\n"
		"  TCP: writes NAME\\n to each connection, reads until EOF or %d ms, closes.\n"
		"  UDP: answers each datagram with NAME\\n.\n"
		"  ADDR defaults to :: (dual stack IPv4+IPv6).\n",
		prog, HOLD_MS);
	exit(status);
}

static void conn_unlink(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conn_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		conn_tail = c->prev;
	c->prev = c->next = NULL;
}

static void conn_close(struct conn *c)
{
	conn_unlink(c);
	/* close() also removes the fd from the epoll set (no dup'ed fds here). */
	if (close(c->fd) < 0)
		fprintf(stderr, "%s: close(conn fd %d): %s\n", prog, c->fd, strerror(errno));
	free(c);
	nconns--;
}

static void ep_add(int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl(ADD)");
}

/* Write what is left of the reply; returns false when the connection must be closed. */
static bool conn_send(struct conn *c)
{
	while (c->sent < reply_len) {
		ssize_t n = send(c->fd, reply + c->sent, reply_len - c->sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			/* Peer went away early (RST): not a server error. */
			if (errno != EPIPE && errno != ECONNRESET)
				fprintf(stderr, "%s: send: %s\n", prog, strerror(errno));
			return false;
		}
		c->sent += (size_t)n;
	}
	return true;
}

static void conn_update_events(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uintptr_t)c};

	if (c->sent < reply_len)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		fprintf(stderr, "%s: epoll_ctl(MOD): %s\n", prog, strerror(errno));
		conn_close(c);
	}
}

/* Drain the input; returns false on EOF or error (close the connection). */
static bool conn_read(struct conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n > 0)
			continue;
		if (n == 0)
			return false;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		if (errno != ECONNRESET)
			fprintf(stderr, "%s: recv: %s\n", prog, strerror(errno));
		return false;
	}
}

static void on_conn(struct conn *c, uint32_t events)
{
	bool had_pending = c->sent < reply_len;

	if (events & EPOLLOUT) {
		if (!conn_send(c)) {
			conn_close(c);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		if (!conn_read(c)) {
			conn_close(c);
			return;
		}
	}
	if (had_pending && c->sent == reply_len)
		conn_update_events(c);
}

static void on_accept(int lfd)
{
	for (;;) {
		struct conn *c;
		struct epoll_event ev;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			fprintf(stderr, "%s: accept4: %s\n", prog, strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			fprintf(stderr, "%s: calloc(conn): out of memory\n", prog);
			if (close(fd) < 0)
				fprintf(stderr, "%s: close: %s\n", prog, strerror(errno));
			continue;
		}
		c->fd = fd;
		c->deadline = now_ms() + HOLD_MS;
		c->prev = conn_tail;
		if (conn_tail)
			conn_tail->next = c;
		else
			conn_head = c;
		conn_tail = c;
		nconns++;

		if (!conn_send(c)) {
			conn_close(c);
			continue;
		}
		ev.events = EPOLLIN | EPOLLRDHUP;
		if (c->sent < reply_len)
			ev.events |= EPOLLOUT;
		ev.data.u64 = (uintptr_t)c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			fprintf(stderr, "%s: epoll_ctl(ADD conn): %s\n", prog, strerror(errno));
			conn_close(c);
		}
	}
}

/* Answer every queued datagram, from the address it was sent to (IPV6_PKTINFO / IP_PKTINFO). */
static void on_udp(int fd, int family)
{
	for (;;) {
		struct sockaddr_storage peer;
		char buf[2048];
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
				 CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} cin, cout;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr msg = {
		    .msg_name = &peer,
		    .msg_namelen = sizeof(peer),
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = cin.buf,
		    .msg_controllen = sizeof(cin.buf),
		};
		struct cmsghdr *cm, *om;
		ssize_t n = recvmsg(fd, &msg, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ICMP errors from earlier replies may surface here; keep serving. */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
				continue;
			fprintf(stderr, "%s: recvmsg(udp): %s\n", prog, strerror(errno));
			return;
		}

		memset(&cout, 0, sizeof(cout));
		struct msghdr out = {
		    .msg_name = &peer,
		    .msg_namelen = msg.msg_namelen,
		    .msg_iov = &(struct iovec){.iov_base = reply, .iov_len = reply_len},
		    .msg_iovlen = 1,
		    .msg_control = cout.buf,
		    .msg_controllen = 0,
		};
		om = (struct cmsghdr *)cout.buf;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (family == AF_INET6 && cm->cmsg_level == IPPROTO_IPV6 &&
			    cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				pi.ipi6_ifindex =
				    0; /* source address only; routing picks the dev */
				om->cmsg_level = IPPROTO_IPV6;
				om->cmsg_type = IPV6_PKTINFO;
				om->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(om), &pi, sizeof(pi));
				out.msg_controllen = CMSG_SPACE(sizeof(pi));
				break;
			}
			if (family == AF_INET && cm->cmsg_level == IPPROTO_IP &&
			    cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				pi.ipi_ifindex = 0;
				pi.ipi_spec_dst = pi.ipi_addr;
				om->cmsg_level = IPPROTO_IP;
				om->cmsg_type = IP_PKTINFO;
				om->cmsg_len = CMSG_LEN(sizeof(pi));
				memcpy(CMSG_DATA(om), &pi, sizeof(pi));
				out.msg_controllen = CMSG_SPACE(sizeof(pi));
				break;
			}
		}
		if (out.msg_controllen == 0)
			out.msg_control = NULL;
		for (;;) {
			if (sendmsg(fd, &out, MSG_DONTWAIT) >= 0)
				break;
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: sendmsg(udp reply): %s\n", prog, strerror(errno));
			break;
		}
	}
}

static void set_int(int fd, int level, int opt, int val, const char *what)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)) < 0)
		die(what);
}

static int open_socket(int family, int type, const struct sockaddr *sa, socklen_t salen,
		       const char *what)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	char msg[128];

	if (fd < 0) {
		snprintf(msg, sizeof(msg), "socket(%s)", what);
		die(msg);
	}
	set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)");
	if (family == AF_INET6) {
		set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "setsockopt(IPV6_V6ONLY=0)");
		if (type == SOCK_DGRAM) {
			set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1,
				"setsockopt(IPV6_RECVPKTINFO)");
			/* v4-mapped datagrams on the dual-stack socket report IPV6_PKTINFO too */
		}
	} else if (type == SOCK_DGRAM) {
		set_int(fd, IPPROTO_IP, IP_PKTINFO, 1, "setsockopt(IP_PKTINFO)");
	}
	if (bind(fd, sa, salen) < 0) {
		snprintf(msg, sizeof(msg), "bind(%s)", what);
		die(msg);
	}
	return fd;
}

static void write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
		fprintf(stderr, "%s: pidfile path too long\n", prog);
		exit(1);
	}
	f = fopen(tmp, "w");
	if (!f)
		die("fopen(pidfile)");
	if (fprintf(f, "%d\n", (int)getpid()) < 0)
		die("write(pidfile)");
	if (fclose(f) != 0)
		die("fclose(pidfile)");
	if (rename(tmp, path) < 0)
		die("rename(pidfile)");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("getrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE): %s (continuing)\n", prog,
				strerror(errno));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'}, {"port", required_argument, NULL, 'p'},
	    {"addr", required_argument, NULL, 'a'}, {"pidfile", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0},
	};
	const char *name = NULL, *addr = "::", *pidfile = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct epoll_event evs[MAX_EVENTS];
	sigset_t mask;
	long port = -1;
	int family, lfd, ufd, sfd, opt;
	bool running = true;
	char *end;

	while ((opt = getopt_long(argc, argv, "n:p:a:f:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case 'p':
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || port < 1 || port > 65535) {
				fprintf(stderr, "%s: bad port '%s'\n", prog, optarg);
				usage(2);
			}
			break;
		case 'a':
			addr = optarg;
			break;
		case 'f':
			pidfile = optarg;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc || !name || port < 0)
		usage(2);
	if (!*name || strlen(name) > MAX_NAME || strpbrk(name, " \t\r\n")) {
		fprintf(stderr, "%s: --name must be 1..%d chars without whitespace\n", prog,
			MAX_NAME);
		exit(2);
	}
	reply_len = (size_t)snprintf(reply, sizeof(reply), "%s\n", name);

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		family = AF_INET6;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sslen = sizeof(*s6);
	} else if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		family = AF_INET;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sslen = sizeof(*s4);
	} else {
		fprintf(stderr, "%s: bad --addr '%s' (want an IPv4 or IPv6 literal)\n", prog, addr);
		exit(2);
	}

	raise_nofile();

	/* Signals via signalfd: no async handler, SIGTERM just ends the loop. */
	if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGTERM) < 0 || sigaddset(&mask, SIGINT) < 0)
		die("sigset");
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		die("sigprocmask");
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die("signal(SIGPIPE)");

	lfd = open_socket(family, SOCK_STREAM, (struct sockaddr *)&ss, sslen, "tcp");
	if (listen(lfd, 4096) < 0)
		die("listen");
	ufd = open_socket(family, SOCK_DGRAM, (struct sockaddr *)&ss, sslen, "udp");

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	ep_add(lfd, EPOLLIN, TAG_LISTEN);
	ep_add(ufd, EPOLLIN, TAG_UDP);
	ep_add(sfd, EPOLLIN, TAG_SIGNAL);

	/* The pidfile appears only once both sockets listen: it doubles as a ready flag. */
	if (pidfile)
		write_pidfile(pidfile);

	while (running) {
		int64_t now = now_ms();
		int timeout = -1, n, i;

		while (conn_head && conn_head->deadline <= now)
			conn_close(conn_head);
		if (conn_head)
			timeout = (int)(conn_head->deadline - now);

		n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == TAG_LISTEN) {
				on_accept(lfd);
			} else if (tag == TAG_UDP) {
				on_udp(ufd, family);
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;
				ssize_t r = read(sfd, &si, sizeof(si));

				if (r < 0 && errno != EAGAIN && errno != EINTR)
					die("read(signalfd)");
				if (r == (ssize_t)sizeof(si))
					running = false;
			} else if (tag >= TAG_CONN_LO) {
				on_conn((struct conn *)(uintptr_t)tag, evs[i].events);
			}
		}
	}

	while (conn_head)
		conn_close(conn_head);
	if (close(lfd) < 0 || close(ufd) < 0 || close(sfd) < 0 || close(epfd) < 0)
		die("close");
	if (pidfile && unlink(pidfile) < 0 && errno != ENOENT)
		die("unlink(pidfile)");
	return 0;
}
