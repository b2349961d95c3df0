/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TC (clsact) flow metrics: load bpf/tc_flow.bpf.c, attach its two programs
 * to every interface whose name matches one of agent.interfaces' globs, also
 * to interfaces that appear later (a netlink socket reports them), and read
 * the counters back out of the pinned maps.
 *
 * The filters are not bpf links: a clsact filter holds its program by
 * itself, so filters outlive the agent (sl_tc_close leaves them) and a later
 * sl_tc_open replaces them in place, found by their fixed handle and
 * priority. Only sl_tc_teardown removes them.
 */
#ifndef SLUICE_TC_H
#define SLUICE_TC_H

#include <fnmatch.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

#include "datapath.h" /* struct sl_problem */

/*
 * Every sluice filter sits at this handle and priority, on both the ingress
 * and the egress hook, so that there is never more than one per hook.
 * Priority 1 runs first: sluice counts what arrives before another filter
 * can drop or redirect it, and its programs return TC_ACT_UNSPEC, so the
 * filters after it still run.
 */
#define SL_TC_HANDLE   0x51ce
#define SL_TC_PRIORITY 1
/* sluice's tc programs' names begin with this (the kernel keeps 15 bytes). */
#define SL_TC_PROG_PREFIX "sluice_tc_"

struct sl_tc;

/* An interface the programs are attached to. */
struct sl_tc_if {
	char name[IF_NAMESIZE];
	int ifindex;
};

/*
 * Load tc_flow with its maps pinned (0600) under bpffs, reusing maps a
 * previous run pinned, attach it to every interface of this netns whose name
 * matches one of the fnmatch(3) globs (creating the clsact qdisc if needed,
 * replacing a filter a previous run left), remove sluice filters a previous
 * run left on interfaces that no longer match, and open a netlink socket
 * subscribed to link events. With n_globs == 0 nothing is loaded or
 * attached; filters a previous run left are removed. Only Ethernet and
 * loopback devices are attached to (others are logged and skipped).
 * 0 and *out set, or a negative errno with e filled in.
 */
int sl_tc_open(struct sl_tc **out, const char *bpffs, const char *const *globs, size_t n_globs,
	       struct sl_problem *e);

/* The netlink socket for the caller's epoll (EPOLLIN); -1 if none. */
int sl_tc_fd(const struct sl_tc *tc);

/* Handle the link events waiting on sl_tc_fd(): attach to new matching
 * interfaces, forget removed ones. Never blocks. */
void sl_tc_on_readable(struct sl_tc *tc);

/* Interfaces currently attached, in no particular order; valid until the
 * next sl_tc_on_readable or sl_tc_close. */
size_t sl_tc_interfaces(const struct sl_tc *tc, const struct sl_tc_if **out);

/* The loaded maps' fds (owned by tc); -1 when nothing was loaded. */
int sl_tc_if_stats_fd(const struct sl_tc *tc);
int sl_tc_flows_fd(const struct sl_tc *tc);

/* Free everything; the filters stay attached and the maps pinned. */
void sl_tc_close(struct sl_tc *tc);

/* Remove sluice's filters from every interface of this netns (found by
 * handle, priority and program name; other filters and the clsact qdisc
 * stay) and the tc pins under bpffs. Safe when nothing is there. */
int sl_tc_teardown(const char *bpffs, struct sl_problem *e);

/* Open the maps pinned under bpffs, read-only when 'rdonly' (the CLI).
 * -ENOENT when tc metrics were never loaded there. */
int sl_tc_open_pinned(const char *bpffs, int rdonly, int *if_stats_fd, int *flows_fd);

/* Counters of one direction of one interface, summed over CPUs. */
struct sl_tc_counters {
	uint64_t packets;
	uint64_t bytes;
	uint64_t untracked; /* of packets: counted on the interface only */
};

/* Read them from a sluice_tc_if_stats fd. An interface never seen reads
 * as zeros (0 returned). -errno on failure. */
int sl_tc_read_if_stats(int map_fd, int ifindex, enum sluice_tc_dir dir,
			struct sl_tc_counters *out);

struct sl_tc_flow_entry {
	struct sluice_tc_flow_key key;
	struct sluice_tc_flow flow;
};

/* Every flow in a sluice_tc_flows fd, into a malloc'ed array the caller
 * frees. -errno on failure. */
int sl_tc_read_flows(int map_fd, struct sl_tc_flow_entry **out, size_t *n);

/* "ingress" / "egress", the metrics' direction label. */
static inline const char *sl_tc_dir_name(enum sluice_tc_dir dir)
{
	return dir == SLUICE_TC_EGRESS ? "egress" : "ingress";
}

/* 1 if name matches one of the globs. */
static inline int sl_tc_glob_match(const char *const *globs, size_t n_globs, const char *name)
{
	for (size_t i = 0; i < n_globs; i++)
		if (!fnmatch(globs[i], name, 0))
			return 1;
	return 0;
}

/*
 * A flow's state, from the TCP flags seen each way. TCP: "reset" (an RST),
 * "closed" (FIN both ways), "fin" (FIN one way), "syn_sent" (SYN, no answer
 * yet), "syn_recv" (SYN-ACK, handshake not finished), "established" (also a
 * connection picked up after its handshake). UDP: "replied" when packets went
 * both ways, else "unreplied".
 */
static inline const char *sl_tc_flow_state(const struct sluice_tc_flow_key *k,
					   const struct sluice_tc_flow *f)
{
	unsigned int o = f->origin == SLUICE_TC_EGRESS ? SLUICE_TC_EGRESS : SLUICE_TC_INGRESS;
	unsigned int fo = f->tcp_flags[o], fr = f->tcp_flags[!o];

	if (k->proto != SLUICE_PROTO_TCP)
		return f->dir[0].packets && f->dir[1].packets ? "replied" : "unreplied";
	if ((fo | fr) & SLUICE_TCP_RST)
		return "reset";
	if ((fo & SLUICE_TCP_FIN) && (fr & SLUICE_TCP_FIN))
		return "closed";
	if ((fo | fr) & SLUICE_TCP_FIN)
		return "fin";
	if (!((fo | fr) & SLUICE_TCP_SYN))
		return "established";
	if (!(fr & SLUICE_TCP_SYN))
		return "syn_sent";
	if (!(fo & SLUICE_TCP_ACK))
		return "syn_recv";
	return "established";
}

#endif /* SLUICE_TC_H */
