// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl_tcctl - drives userspace/lib/tc.c for vmtests/40-tc.sh until the agent
 * does. Links libsluice (so it is not under vmtests/tools/, which the
 * Makefile builds standalone); the test compiles it.
 *
 *   sl_tcctl open BPFFS GLOB... [--seconds N]
 *       sl_tc_open, then an epoll loop on sl_tc_fd() that hands link events
 *       to sl_tc_on_readable(), for N seconds (default 10) or until SIGTERM/
 *       SIGINT; then sl_tc_close() (filters stay). Logs "ready" once open,
 *       and "attached interfaces=a,b,..." after open and after each event.
 *   sl_tcctl teardown BPFFS
 *   sl_tcctl dump BPFFS
 *       One line per interface direction and per flow, key=value:
 *       if ifindex=I name=N dir=ingress|egress packets=P bytes=B untracked=U
 *       flow ifindex=I name=N proto=tcp|udp local=A:P remote=A:P origin=ingress|egress
 *            state=S ingress_packets= ingress_bytes= egress_packets= egress_bytes=
 *            age_ms= idle_ms=
 *
 * Exit 0 on success, 1 on failure, 2 on usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "log.h"
#include "tc.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout, "usage: sl_tcctl open BPFFS GLOB... [--seconds N]\n"
					  "       sl_tcctl teardown BPFFS\n"
					  "       sl_tcctl dump BPFFS\n");
	exit(status);
}

static void log_attached(const struct sl_tc *tc)
{
	const struct sl_tc_if *ifs;
	size_t n = sl_tc_interfaces(tc, &ifs);
	char list[4096] = "";
	size_t off = 0;

	for (size_t i = 0; i < n && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "",
					ifs[i].name);
	sl_info("attached", "interfaces=%s count=%zu", n ? list : "-", n);
}

static int cmd_open(const char *bpffs, const char *const *globs, size_t n, long seconds)
{
	struct itimerspec its = {.it_value.tv_sec = seconds};
	struct epoll_event ev = {.events = EPOLLIN};
	struct sl_problem e = {0};
	struct sl_tc *tc = NULL;
	int ep = -1, tfd = -1, sfd = -1, rc = 1, err;
	sigset_t mask;

	err = sl_tc_open(&tc, bpffs, globs, n, &e);
	if (err) {
		sl_error("tc open failed", "error=\"%s\"", e.msg);
		return e.env ? 3 : 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) < 0 ||
	    timerfd_settime(tfd, 0, &its, NULL) || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		sl_error("setup failed", "error=\"%s\"", strerror(errno));
		goto out;
	}
	ev.data.fd = sfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev))
		goto fail_ctl;
	ev.data.fd = tfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev))
		goto fail_ctl;
	if (sl_tc_fd(tc) >= 0) {
		ev.data.fd = sl_tc_fd(tc);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, sl_tc_fd(tc), &ev))
			goto fail_ctl;
	}
	log_attached(tc);
	sl_info("ready", "seconds=%ld", seconds);
	for (;;) {
		struct epoll_event got[4];
		int k = epoll_wait(ep, got, 4, -1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			sl_error("epoll_wait failed", "error=\"%s\"", strerror(errno));
			goto out;
		}
		for (int i = 0; i < k; i++) {
			if (got[i].data.fd == sfd || got[i].data.fd == tfd) {
				rc = 0;
				goto out;
			}
			sl_tc_on_readable(tc);
			log_attached(tc);
		}
	}
fail_ctl:
	sl_error("epoll_ctl failed", "error=\"%s\"", strerror(errno));
out:
	sl_tc_close(tc);
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	sl_info("closed", "rc=%d", rc);
	return rc;
}

static void fmt_ep(char *buf, size_t len, __u8 family, const union sluice_addr *a, __u16 port)
{
	char s[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family == SLUICE_AF_INET6 ? AF_INET6 : AF_INET, a->a8, s, sizeof(s));
	snprintf(buf, len, family == SLUICE_AF_INET6 ? "[%s]:%u" : "%s:%u", s, ntohs(port));
}

static const char *ifname(__u32 ifindex, char *buf)
{
	return if_indextoname(ifindex, buf) ? buf : "-";
}

static int cmd_dump(const char *bpffs)
{
	struct sluice_tc_if_key key, next;
	struct sl_tc_flow_entry *flows = NULL;
	char name[IF_NAMESIZE], l[64], r[64];
	int if_fd, flow_fd, err;
	struct timespec now;
	void *prev = NULL;
	size_t n = 0;

	err = sl_tc_open_pinned(bpffs, 1, &if_fd, &flow_fd);
	if (err) {
		fprintf(stderr, "sl_tcctl: open maps under %s: %s\n", bpffs, strerror(-err));
		return 1;
	}
	while (!bpf_map_get_next_key(if_fd, prev, &next)) {
		struct sl_tc_counters c;

		key = next;
		prev = &key;
		err = sl_tc_read_if_stats(if_fd, (int)key.ifindex, key.dir, &c);
		if (err)
			break;
		printf("if ifindex=%u name=%s dir=%s packets=%llu bytes=%llu untracked=%llu\n",
		       key.ifindex, ifname(key.ifindex, name), sl_tc_dir_name(key.dir),
		       (unsigned long long)c.packets, (unsigned long long)c.bytes,
		       (unsigned long long)c.untracked);
	}
	if (!err)
		err = sl_tc_read_flows(flow_fd, &flows, &n);
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (size_t i = 0; !err && i < n; i++) {
		const struct sluice_tc_flow_key *k = &flows[i].key;
		const struct sluice_tc_flow *f = &flows[i].flow;
		unsigned long long t = (unsigned long long)now.tv_sec * 1000000000ULL +
				       (unsigned long long)now.tv_nsec;

		fmt_ep(l, sizeof(l), k->family, &k->local, k->local_port);
		fmt_ep(r, sizeof(r), k->family, &k->remote, k->remote_port);
		printf("flow ifindex=%u name=%s proto=%s local=%s remote=%s origin=%s state=%s "
		       "ingress_packets=%llu ingress_bytes=%llu egress_packets=%llu "
		       "egress_bytes=%llu age_ms=%llu idle_ms=%llu\n",
		       k->ifindex, ifname(k->ifindex, name),
		       k->proto == SLUICE_PROTO_TCP ? "tcp" : "udp", l, r,
		       sl_tc_dir_name(f->origin), sl_tc_flow_state(k, f),
		       (unsigned long long)f->dir[SLUICE_TC_INGRESS].packets,
		       (unsigned long long)f->dir[SLUICE_TC_INGRESS].bytes,
		       (unsigned long long)f->dir[SLUICE_TC_EGRESS].packets,
		       (unsigned long long)f->dir[SLUICE_TC_EGRESS].bytes,
		       (t - f->first_ns) / 1000000ULL, (t - f->last_ns) / 1000000ULL);
	}
	free(flows);
	close(if_fd);
	close(flow_fd);
	if (err) {
		fprintf(stderr, "sl_tcctl: read maps: %s\n", strerror(-err));
		return 1;
	}
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"seconds", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	long seconds = 10;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			errno = 0;
			seconds = strtol(optarg, &end, 10);
			if (errno || *end || seconds <= 0)
				usage(2);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc < 2)
		usage(2);
	sl_log_hook_libbpf();
	if (!strcmp(argv[0], "open"))
		return cmd_open(argv[1], (const char *const *)argv + 2, (size_t)argc - 2, seconds);
	if (argc != 2)
		usage(2);
	if (!strcmp(argv[0], "teardown")) {
		struct sl_problem e = {0};

		if (sl_tc_teardown(argv[1], &e)) {
			sl_error("tc teardown failed", "error=\"%s\"", e.msg);
			return 1;
		}
		return 0;
	}
	if (!strcmp(argv[0], "dump"))
		return cmd_dump(argv[1]);
	usage(2);
}
