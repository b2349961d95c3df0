// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC flow metrics: bpf/tc_flow.bpf.c run on crafted frames with
 * BPF_PROG_TEST_RUN (needs root; skipped otherwise), and the pure helpers of
 * userspace/lib/tc.h (glob matching, flow state).
 *
 * BPF_PROG_TEST_RUN runs a tc program on the loopback device of the current
 * netns, so every packet here is counted on "lo".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tc.h"
#include "tc_flow.skel.h"

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#define TC_ACT_UNSPEC_RET ((__u32)-1)
#define HDR4_TCP	  (14 + 20 + 20)
#define HDR4_UDP	  (14 + 20 + 8)
#define HDR6_UDP	  (14 + 40 + 8)

/* --- pure helpers ------------------------------------------------------------------------- */

Test(tc_glob, matches_any_glob)
{
	const char *const globs[] = {"veth*", "eth0", "vt-[a-c]?"};

	cr_expect(sl_tc_glob_match(globs, 3, "veth1234"));
	cr_expect(sl_tc_glob_match(globs, 3, "eth0"));
	cr_expect(sl_tc_glob_match(globs, 3, "vt-b1"));
	cr_expect(!sl_tc_glob_match(globs, 3, "eth1"));
	cr_expect(!sl_tc_glob_match(globs, 3, "vt-d1"));
	cr_expect(!sl_tc_glob_match(globs, 3, "xveth0"));
	cr_expect(!sl_tc_glob_match(globs, 0, "veth0"), "no globs match nothing");
}

static const char *state_of(__u8 proto, __u8 origin, __u8 fl_in, __u8 fl_out, __u64 pk_in,
			    __u64 pk_out)
{
	static struct sluice_tc_flow f;
	static struct sluice_tc_flow_key k;

	memset(&f, 0, sizeof(f));
	memset(&k, 0, sizeof(k));
	k.proto = proto;
	f.origin = origin;
	f.tcp_flags[SLUICE_TC_INGRESS] = fl_in;
	f.tcp_flags[SLUICE_TC_EGRESS] = fl_out;
	f.dir[SLUICE_TC_INGRESS].packets = pk_in;
	f.dir[SLUICE_TC_EGRESS].packets = pk_out;
	return sl_tc_flow_state(&k, &f);
}

Test(tc_state, from_flags)
{
	const __u8 S = SLUICE_TCP_SYN, A = SLUICE_TCP_ACK, F = SLUICE_TCP_FIN, R = SLUICE_TCP_RST;
	const __u8 E = SLUICE_TC_EGRESS, I = SLUICE_TC_INGRESS;

	cr_expect_str_eq(state_of(6, E, 0, S, 0, 1), "syn_sent");
	cr_expect_str_eq(state_of(6, E, S | A, S, 1, 1), "syn_recv");
	cr_expect_str_eq(state_of(6, E, S | A, S | A, 1, 2), "established");
	/* opened by the remote side: the SYN came in */
	cr_expect_str_eq(state_of(6, I, S | A, S | A, 2, 1), "established");
	cr_expect_str_eq(state_of(6, I, S, 0, 1, 0), "syn_sent");
	cr_expect_str_eq(state_of(6, E, A, A, 5, 5), "established", "picked up midway");
	cr_expect_str_eq(state_of(6, E, S | A, S | A | F, 2, 3), "fin");
	cr_expect_str_eq(state_of(6, E, S | A | F, S | A | F, 3, 3), "closed");
	cr_expect_str_eq(state_of(6, E, S | A | R, S | A, 3, 3), "reset");
	cr_expect_str_eq(state_of(17, E, 0, 0, 0, 1), "unreplied");
	cr_expect_str_eq(state_of(17, E, 0, 0, 1, 1), "replied");
}

/* --- frames ------------------------------------------------------------------------------- */

struct ep {
	int family;
	const char *addr;
	__u16 port;
};

/* An Ethernet frame from a to b: TCP (flags, or 0xff for UDP) with 'payload' bytes of data.
 * Returns its length. */
static size_t frame(__u8 *buf, size_t cap, __u8 proto, struct ep a, struct ep b, __u8 flags,
		    size_t payload)
{
	struct ethhdr *eth = (void *)buf;
	size_t l3 = a.family == AF_INET ? 20 : 40, l4 = proto == IPPROTO_TCP ? 20 : 8;
	size_t len = sizeof(*eth) + l3 + l4 + payload;
	__u8 *p = buf + sizeof(*eth);

	if (len > cap)
		return 0;
	memset(buf, 0, len);
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	if (a.family == AF_INET) {
		struct iphdr ip = {0}; /* built aside: p is not 4-byte aligned */

		eth->h_proto = htons(ETH_P_IP);
		ip.version = 4;
		ip.ihl = 5;
		ip.ttl = 64;
		ip.protocol = proto;
		ip.tot_len = htons((__u16)(len - sizeof(*eth)));
		inet_pton(AF_INET, a.addr, &ip.saddr);
		inet_pton(AF_INET, b.addr, &ip.daddr);
		memcpy(p, &ip, sizeof(ip));
	} else {
		struct ipv6hdr ip6 = {0};

		eth->h_proto = htons(ETH_P_IPV6);
		ip6.version = 6;
		ip6.nexthdr = proto;
		ip6.hop_limit = 64;
		ip6.payload_len = htons((__u16)(l4 + payload));
		inet_pton(AF_INET6, a.addr, &ip6.saddr);
		inet_pton(AF_INET6, b.addr, &ip6.daddr);
		memcpy(p, &ip6, sizeof(ip6));
	}
	p += l3;
	if (proto == IPPROTO_TCP) {
		struct tcphdr th = {0};

		th.source = htons(a.port);
		th.dest = htons(b.port);
		th.doff = 5;
		memcpy(p, &th, sizeof(th));
		p[13] = flags;
	} else {
		struct udphdr uh = {0};

		uh.source = htons(a.port);
		uh.dest = htons(b.port);
		uh.len = htons((__u16)(l4 + payload));
		memcpy(p, &uh, sizeof(uh));
	}
	return len;
}

struct world {
	struct tc_flow *skel;
	int prog[SLUICE_TC_DIR__MAX];
	int if_stats, flows;
	__u32 lo;
};

/* The programs, loaded without pins (this test must leave nothing behind). 0, or -errno with
 * what failed in why; on failure nothing stays loaded. No asserts: the fixture decides. */
static int world_up(struct world *w, char *why, size_t len)
{
	struct bpf_map *map;
	int err;

	memset(w, 0, sizeof(*w));
	w->skel = tc_flow__open();
	if (!w->skel) {
		err = -errno;
		snprintf(why, len, "open tc_flow: %s", strerror(-err));
		return err;
	}
	bpf_object__for_each_map(map, w->skel->obj)
	{
		err = bpf_map__set_pin_path(map, NULL);
		if (err) {
			snprintf(why, len, "unpin map %s: %s", bpf_map__name(map), strerror(-err));
			goto fail;
		}
	}
	err = tc_flow__load(w->skel);
	if (err) {
		snprintf(why, len, "load tc_flow: %s", strerror(-err));
		goto fail;
	}
	w->prog[SLUICE_TC_INGRESS] = bpf_program__fd(w->skel->progs.sluice_tc_ingress);
	w->prog[SLUICE_TC_EGRESS] = bpf_program__fd(w->skel->progs.sluice_tc_egress);
	w->if_stats = bpf_map__fd(w->skel->maps.sluice_tc_if_stats);
	w->flows = bpf_map__fd(w->skel->maps.sluice_tc_flows);
	w->lo = if_nametoindex("lo");
	if (!w->lo) {
		err = -errno;
		snprintf(why, len, "no lo in this netns: %s", strerror(-err));
		goto fail;
	}
	return 0;
fail:
	tc_flow__destroy(w->skel);
	w->skel = NULL;
	return err;
}

static void world_down(struct world *w)
{
	tc_flow__destroy(w->skel);
	w->skel = NULL;
}

/*
 * The fixture. Criterion (2.4) runs .fini after a failed cr_assert in the test, but not when
 * .init itself fails or skips, nor after a cr_skip_test in the test: so setup leaves nothing
 * loaded when it gives up, and the tests never skip.
 */
static struct world tw;

static void setup(void)
{
	char why[256];
	int err;

	if (geteuid() != 0)
		cr_skip_test("needs root to load BPF programs");
	err = world_up(&tw, why, sizeof(why));
	if (err == -EPERM)
		cr_skip_test("cannot load BPF programs here (EPERM)");
	cr_assert_eq(err, 0, "%s", why);
}

static void teardown(void)
{
	world_down(&tw);
}

TestSuite(tc_prog, .init = setup, .fini = teardown);

/* Run one direction's program on a frame; returns its verdict, or a
 * negative errno when the run itself failed. */
static long long run(const struct world *w, enum sluice_tc_dir dir, const __u8 *buf, size_t len,
		     __u32 gso_segs, __u32 gso_size)
{
	struct __sk_buff ctx = {.gso_segs = gso_segs, .gso_size = gso_size};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err = bpf_prog_test_run_opts(w->prog[dir], &opts);

	return err ? (long long)err : (long long)opts.retval;
}

static struct sl_tc_counters if_stats(const struct world *w, enum sluice_tc_dir dir)
{
	struct sluice_tc_if_key key = {.ifindex = w->lo, .dir = dir};
	struct sl_tc_counters c = {0};
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_tc_if_stats v[ncpu > 0 ? ncpu : 1];

	if (ncpu <= 0 || bpf_map_lookup_elem(w->if_stats, &key, v))
		return c;
	for (int i = 0; i < ncpu; i++) {
		c.packets += v[i].packets;
		c.bytes += v[i].bytes;
		c.untracked += v[i].untracked;
	}
	return c;
}

static size_t flow_count(const struct world *w)
{
	struct sluice_tc_flow_key k, next;
	size_t n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(w->flows, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static struct sluice_tc_flow_key flow_key(const struct world *w, __u8 proto, struct ep local,
					  struct ep remote)
{
	struct sluice_tc_flow_key k;

	memset(&k, 0, sizeof(k));
	inet_pton(local.family, local.addr, k.local.a8);
	inet_pton(remote.family, remote.addr, k.remote.a8);
	k.ifindex = w->lo;
	k.local_port = htons(local.port);
	k.remote_port = htons(remote.port);
	k.family = local.family == AF_INET ? SLUICE_AF_INET : SLUICE_AF_INET6;
	k.proto = proto;
	return k;
}

/* --- programs ----------------------------------------------------------------------------- */

static const struct ep c4 = {AF_INET, "198.18.0.1", 40000}, s4 = {AF_INET, "198.18.1.2", 8080};
static const struct ep c6 = {AF_INET6, "2001:db8::1", 40001}, s6 = {AF_INET6, "2001:db8:1::2", 53};

Test(tc_prog, tcp_connection_is_one_normalised_flow)
{
	const __u8 S = SLUICE_TCP_SYN, A = SLUICE_TCP_ACK, F = SLUICE_TCP_FIN;
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow f;
	struct sl_tc_counters in, out;
	__u8 buf[256];
	size_t len;

	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, S, 0);
	cr_expect_eq(run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0), TC_ACT_UNSPEC_RET,
		     "programs pass the packet on (TC_ACT_UNSPEC)");
	len = frame(buf, sizeof(buf), IPPROTO_TCP, s4, c4, S | A, 0);
	cr_expect_eq(run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0), TC_ACT_UNSPEC_RET);
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, A, 0);
	run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0);
	len = frame(buf, sizeof(buf), IPPROTO_TCP, s4, c4, A, 100);
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);

	cr_expect_eq(flow_count(&tw), 1, "both directions share one entry");
	key = flow_key(&tw, IPPROTO_TCP, c4, s4);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0, "flow keyed local=client");
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].packets, 2);
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].bytes, 2 * HDR4_TCP);
	cr_expect_eq(f.dir[SLUICE_TC_INGRESS].packets, 2);
	cr_expect_eq(f.dir[SLUICE_TC_INGRESS].bytes, 2 * HDR4_TCP + 100);
	cr_expect_eq(f.origin, SLUICE_TC_EGRESS);
	cr_expect_eq(f.tcp_flags[SLUICE_TC_EGRESS], S | A);
	cr_expect_eq(f.tcp_flags[SLUICE_TC_INGRESS], S | A);
	cr_expect(f.first_ns > 0 && f.last_ns >= f.first_ns);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "established");

	out = if_stats(&tw, SLUICE_TC_EGRESS);
	in = if_stats(&tw, SLUICE_TC_INGRESS);
	cr_expect_eq(out.packets, 2);
	cr_expect_eq(out.bytes, 2 * HDR4_TCP);
	cr_expect_eq(in.packets, 2);
	cr_expect_eq(in.bytes, 2 * HDR4_TCP + 100);
	cr_expect_eq(out.untracked + in.untracked, 0);

	/* Close both ways, then a new connection on the same 5-tuple. */
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, F | A, 0);
	run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0);
	len = frame(buf, sizeof(buf), IPPROTO_TCP, s4, c4, F | A, 0);
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "closed");
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, S, 0);
	run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0);
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].packets, 1, "a SYN after the close starts over");
	cr_expect_eq(f.dir[SLUICE_TC_INGRESS].packets, 0);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "syn_sent");
}

Test(tc_prog, flow_opened_by_the_remote_side)
{
	const __u8 S = SLUICE_TCP_SYN, A = SLUICE_TCP_ACK;
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow f;
	__u8 buf[256];
	size_t len;

	/* A server: the SYN comes in, the SYN-ACK goes out. */
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, S, 0);
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	len = frame(buf, sizeof(buf), IPPROTO_TCP, s4, c4, S | A, 0);
	run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0);
	key = flow_key(&tw, IPPROTO_TCP, s4, c4);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0, "flow keyed local=server");
	cr_expect_eq(f.origin, SLUICE_TC_INGRESS);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "syn_recv");
}

Test(tc_prog, udp6_flow)
{
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow f;
	__u8 buf[512];
	size_t len;

	len = frame(buf, sizeof(buf), IPPROTO_UDP, c6, s6, 0, 100);
	run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 0);
	key = flow_key(&tw, IPPROTO_UDP, c6, s6);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "unreplied");
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s6, c6, 0, 300);
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0);
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].bytes, HDR6_UDP + 100);
	cr_expect_eq(f.dir[SLUICE_TC_INGRESS].bytes, HDR6_UDP + 300);
	cr_expect_eq(f.tcp_flags[0] | f.tcp_flags[1], 0);
	cr_expect_str_eq(sl_tc_flow_state(&key, &f), "replied");
	cr_expect_eq(flow_count(&tw), 1);
}

Test(tc_prog, ipv4_options_are_skipped)
{
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow f;
	__u8 buf[256], opt[256];
	size_t len;

	/* The same UDP frame with a 4-byte IPv4 option (NOP x4): ihl 6. */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, c4, s4, 0, 10);
	memcpy(opt, buf, 14 + 20);
	memset(opt + 34, 1, 4);
	memcpy(opt + 38, buf + 34, len - 34);
	opt[14] = 0x46;
	run(&tw, SLUICE_TC_EGRESS, opt, len + 4, 0, 0);
	key = flow_key(&tw, IPPROTO_UDP, c4, s4);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0, "ports read after the options");
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].bytes, len + 4);
}

Test(tc_prog, gso_counts_segments_and_their_headers)
{
	const __u8 A = SLUICE_TCP_ACK;
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow f;
	struct sl_tc_counters out;
	__u8 buf[4096];
	size_t len;

	/* 3000 bytes of data leaving as 3 segments of at most 1448 (test runs
	 * take less than a page of data). */
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, A, 3000);
	cr_assert_eq(run(&tw, SLUICE_TC_EGRESS, buf, len, 3, 1448), TC_ACT_UNSPEC_RET);
	/* gso_segs left unset by the driver: derived from gso_size. */
	len = frame(buf, sizeof(buf), IPPROTO_TCP, c4, s4, A, 2500);
	cr_assert_eq(run(&tw, SLUICE_TC_EGRESS, buf, len, 0, 1000), TC_ACT_UNSPEC_RET);
	key = flow_key(&tw, IPPROTO_TCP, c4, s4);
	cr_assert_eq(bpf_map_lookup_elem(tw.flows, &key, &f), 0);
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].packets, 3 + 3);
	cr_expect_eq(f.dir[SLUICE_TC_EGRESS].bytes, (3000 + 3 * HDR4_TCP) + (2500 + 3 * HDR4_TCP));
	out = if_stats(&tw, SLUICE_TC_EGRESS);
	cr_expect_eq(out.packets, 6);
	cr_expect_eq(out.bytes, f.dir[SLUICE_TC_EGRESS].bytes);
}

Test(tc_prog, untracked_packets_count_on_the_interface_only)
{
	struct sl_tc_counters in;
	__u8 buf[256], v6[256];
	size_t len, n = 0, bytes = 0;

	/* ARP request: 14 + 28 */
	memset(buf, 0, 42);
	memset(buf, 0xff, 6);
	buf[12] = 0x08;
	buf[13] = 0x06;
	run(&tw, SLUICE_TC_INGRESS, buf, 42, 0, 0);
	n++, bytes += 42;

	/* ICMP echo over IPv4 */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s4, c4, 0, 20);
	buf[14 + 9] = IPPROTO_ICMP;
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	n++, bytes += len;

	/* An IPv4 fragment, first and later */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s4, c4, 0, 20);
	buf[14 + 6] = 0x20; /* MF */
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	buf[14 + 6] = 0x00;
	buf[14 + 7] = 0x10; /* offset 16 */
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	n += 2, bytes += 2 * len;

	/* IPv6 with a hop-by-hop header before UDP */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s6, c6, 0, 20);
	memcpy(v6, buf, 54);
	v6[14 + 6] = 0; /* next header: hop-by-hop */
	memset(v6 + 54, 0, 8);
	v6[54] = IPPROTO_UDP;
	memcpy(v6 + 62, buf + 54, len - 54);
	run(&tw, SLUICE_TC_INGRESS, v6, len + 8, 0, 0);
	n++, bytes += len + 8;

	/* An 802.1Q tag in the frame */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s4, c4, 0, 20);
	memmove(buf + 16, buf + 12, len - 12);
	buf[12] = 0x81;
	buf[13] = 0x00;
	buf[14] = 0x00;
	buf[15] = 0x05;
	run(&tw, SLUICE_TC_INGRESS, buf, len + 4, 0, 0);
	n++, bytes += len + 4;

	/* TCP cut short: the IPv4 header says TCP, 10 bytes of it are there */
	len = frame(buf, sizeof(buf), IPPROTO_TCP, s4, c4, 0, 0);
	run(&tw, SLUICE_TC_INGRESS, buf, len - 10, 0, 0);
	n++, bytes += len - 10;

	/* IPv4 header length below 5 */
	len = frame(buf, sizeof(buf), IPPROTO_UDP, s4, c4, 0, 20);
	buf[14] = 0x44;
	run(&tw, SLUICE_TC_INGRESS, buf, len, 0, 0);
	n++, bytes += len;

	in = if_stats(&tw, SLUICE_TC_INGRESS);
	cr_expect_eq(in.packets, n);
	cr_expect_eq(in.untracked, n);
	cr_expect_eq(in.bytes, bytes);
	cr_expect_eq(flow_count(&tw), 0, "none of them is a flow");
}
