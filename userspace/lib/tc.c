// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC flow metrics: open the tc_flow skeleton (maps pinned under bpffs,
 * reused when a previous run pinned them) -> load -> chmod the pins -> walk
 * the interfaces of this netns and attach, or replace, a filter on the
 * ingress and egress hooks of each matching one -> keep following link
 * events on a netlink socket. One cleanup path (sl_tc_close), which leaves
 * the filters attached. The filters themselves are tc_filter.c's; reading
 * the maps back is tc_read.c's.
 */

/* glibc's net/if.h (through tc.h) before any linux/if.h, which libnl pulls in. */
#include "tc.h"

#include "maps.h"

#include <errno.h>
#include <limits.h>
#include <net/if_arp.h>
#include <linux/magic.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "tc_flow.skel.h"

#include "log.h"
#include "mem.h"
#include "pins.h"
#include "tc_filter.h"

/* Room for the link events that arrive between two sl_tc_on_readable calls;
 * an overrun is survived by a full resync. */
#define SL_TC_NL_RCVBUF (1 << 20)

struct sl_tc {
	struct tc_flow *skel;	/* NULL when there are no globs */
	struct nl_sock *events; /* link events; NULL when there are no globs */
	char **globs;
	size_t n_globs;
	struct sl_tc_if *ifs; /* attached */
	size_t n_ifs, cap_ifs;
	int *skipped; /* matching, but not a device the programs can parse */
	size_t n_skipped, cap_skipped;
	char bpffs[PATH_MAX];
	struct sl_tc_progs progs; /* loaded here */
};

/* tc_flow's maps by id, from the skeleton (NULL: not in tc_flow): its own,
 * and those it shares with the socket datapath (include/sluice/maps.def). */
#define TC_MAP_SOCK(id, name)
#define TC_MAP_SHARED(id, name) m[id] = s->maps.name;
#define TC_MAP_TC(id, name)	m[id] = s->maps.name;
#define TC_MAP_AGENT(id, name)

#define SLUICE_MAP(id, name, field, objects, fd, capacity) TC_MAP_##objects(id, name)
static void skel_maps(const struct tc_flow *s, struct bpf_map *m[SLUICE_MAP__COUNT])
{
	memset(m, 0, SLUICE_MAP__COUNT * sizeof(*m));
#include <sluice/maps.def>
}
#undef SLUICE_MAP
#undef TC_MAP_SOCK
#undef TC_MAP_SHARED
#undef TC_MAP_TC
#undef TC_MAP_AGENT

/* A libnl error as a negative errno, for callers that speak errno. */
static int nl_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NODEV:
		return -ENODEV;
	default:
		return -EIO;
	}
}

/* --- the interface list ------------------------------------------------------------------- */

static struct sl_tc_if *find_if(struct sl_tc *tc, int ifindex)
{
	for (size_t i = 0; i < tc->n_ifs; i++)
		if (tc->ifs[i].ifindex == ifindex)
			return &tc->ifs[i];
	return NULL;
}

static int add_if(struct sl_tc *tc, int ifindex, const char *name)
{
	if (SL_ENSURE(&tc->ifs, &tc->cap_ifs, tc->n_ifs + 1))
		return -ENOMEM;
	tc->ifs[tc->n_ifs].ifindex = ifindex;
	snprintf(tc->ifs[tc->n_ifs].name, sizeof(tc->ifs[0].name), "%s", name);
	tc->n_ifs++;
	return 0;
}

/* Drop an interface's counters, so that gone interfaces do not fill the map. */
static void drop_if_stats(struct sl_tc *tc, int ifindex)
{
	int fd = bpf_map__fd(tc->skel->maps.sluice_tc_if_stats);

	for (__u32 d = 0; d < SLUICE_TC_DIR__MAX; d++) {
		struct sluice_tc_if_key key = {.ifindex = (__u32)ifindex, .dir = d};

		if (bpf_map_delete_elem(fd, &key) && errno != ENOENT)
			sl_warn("tc: cannot drop interface counters", "ifindex=%d error=\"%s\"",
				ifindex, strerror(errno));
	}
}

static void forget_if(struct sl_tc *tc, struct sl_tc_if *cur, const char *why)
{
	sl_info("tc interface forgotten", "interface=%s ifindex=%d reason=%s", cur->name,
		cur->ifindex, why);
	drop_if_stats(tc, cur->ifindex);
	*cur = tc->ifs[--tc->n_ifs];
}

static int is_skipped(const struct sl_tc *tc, int ifindex)
{
	for (size_t i = 0; i < tc->n_skipped; i++)
		if (tc->skipped[i] == ifindex)
			return 1;
	return 0;
}

static void unskip(struct sl_tc *tc, int ifindex)
{
	for (size_t i = 0; i < tc->n_skipped; i++) {
		if (tc->skipped[i] == ifindex) {
			tc->skipped[i] = tc->skipped[--tc->n_skipped];
			return;
		}
	}
}

static void skip(struct sl_tc *tc, int ifindex, const char *name, unsigned int arptype)
{
	if (is_skipped(tc, ifindex))
		return;
	sl_warn("tc: interface skipped, not an Ethernet device",
		"interface=%s ifindex=%d arptype=%u", name, ifindex, arptype);
	if (SL_ENSURE(&tc->skipped, &tc->cap_skipped, tc->n_skipped + 1))
		return; /* it is logged again on its next event: harmless */
	tc->skipped[tc->n_skipped++] = ifindex;
}

/*
 * Bring one link's state in line with the globs: attach to a new matching
 * interface, follow a rename, detach from one renamed away, forget a
 * removed one. 'gone': the link was deleted. Errors are for the caller to
 * log or return; an interface that vanished meanwhile is not an error.
 */
static int sync_link(struct sl_tc *tc, struct rtnl_link *link, int gone, struct sl_problem *e)
{
	int ifindex = rtnl_link_get_ifindex(link);
	const char *name = rtnl_link_get_name(link);
	struct sl_tc_if *cur = find_if(tc, ifindex);
	unsigned int arptype;
	int match, err;

	/* AF_BRIDGE messages report bridge ports, not the devices themselves. */
	if (rtnl_link_get_family(link) != AF_UNSPEC || ifindex <= 0)
		return 0;
	if (gone || !name) {
		if (cur)
			forget_if(tc, cur, "removed");
		unskip(tc, ifindex);
		return 0;
	}
	match = sl_tc_glob_match((const char *const *)tc->globs, tc->n_globs, name);
	if (cur && !strcmp(cur->name, name))
		return 0; /* most events: a flag or carrier change */
	if (cur && match) {
		sl_info("tc interface renamed", "interface=%s ifindex=%d previous=%s", name,
			ifindex, cur->name);
		snprintf(cur->name, sizeof(cur->name), "%s", name);
		return 0;
	}
	if (cur) {
		err = sl_tc_filter_detach(&tc->progs, ifindex, name, "renamed", e);
		forget_if(tc, cur, "renamed");
		return err;
	}
	if (!match) {
		unskip(tc, ifindex);
		return 0;
	}
	arptype = rtnl_link_get_arptype(link);
	if (arptype != ARPHRD_ETHER && arptype != ARPHRD_LOOPBACK) {
		skip(tc, ifindex, name, arptype);
		return 0;
	}
	err = sl_tc_filter_attach(&tc->progs, ifindex, name, e);
	if (err == -ENODEV || err == -ENXIO)
		return 0;
	if (err)
		return err;
	unskip(tc, ifindex);
	if (add_if(tc, ifindex, name)) {
		/* Attached but not listed: the filter counts, the metrics miss it. */
		return sl_problem_sys(e, 0, -ENOMEM, "tc: out of memory listing %s", name);
	}
	return 0;
}

/* --- netlink ------------------------------------------------------------------------------ */

typedef int (*link_fn)(void *ctx, struct rtnl_link *link, struct sl_problem *e);

/* Call fn for every link of this netns (a fresh dump). */
static int for_each_link(link_fn fn, void *ctx, struct sl_problem *e)
{
	struct nl_cache *cache = NULL;
	struct nl_object *obj;
	struct nl_sock *sk;
	int err;

	sk = nl_socket_alloc();
	if (!sk)
		return sl_problem_sys(e, 0, -ENOMEM, "netlink: cannot allocate a socket");
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err < 0) {
		err = sl_problem_sys(e, 0, nl_to_errno(err), "netlink: connect: %s",
				     nl_geterror(err));
		goto out;
	}
	err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (err < 0) {
		err = sl_problem_sys(e, 0, nl_to_errno(err), "netlink: list interfaces: %s",
				     nl_geterror(err));
		goto out;
	}
	for (obj = nl_cache_get_first(cache); obj; obj = nl_cache_get_next(obj)) {
		err = fn(ctx, (struct rtnl_link *)obj, e);
		if (err)
			break;
	}
	nl_cache_free(cache);
out:
	nl_socket_free(sk);
	return err;
}

struct resync_ctx {
	struct sl_tc *tc;
	int *seen; /* ifindexes present in the dump */
	size_t n_seen, cap_seen;
	int strict; /* fail on missing privileges (open), else log and go on */
};

static int resync_one(void *arg, struct rtnl_link *link, struct sl_problem *e)
{
	struct resync_ctx *c = arg;
	const char *name = rtnl_link_get_name(link);
	int ifindex = rtnl_link_get_ifindex(link);
	int err;

	if (SL_ENSURE(&c->seen, &c->cap_seen, c->n_seen + 1))
		return sl_problem_sys(e, 0, -ENOMEM, "tc: out of memory");
	c->seen[c->n_seen++] = ifindex;
	err = sync_link(c->tc, link, 0, e);
	/* A sluice filter a previous run left on an interface that no longer
	 * matches. */
	if (!err && name && !find_if(c->tc, ifindex) &&
	    !sl_tc_glob_match((const char *const *)c->tc->globs, c->tc->n_globs, name))
		err = sl_tc_filter_detach(&c->tc->progs, ifindex, name, "not_matched", e);
	if (!err)
		return 0;
	/* Lacking privileges fails open; one interface's other trouble must
	 * not keep the others unwatched. */
	if (c->strict && (err == -EPERM || err == -EACCES))
		return err;
	sl_warn("tc: interface not attached", "interface=%s error=\"%s\"", name ? name : "?",
		e->msg);
	return 0;
}

/* Walk every link: attach what matches, forget what is gone. */
static int resync(struct sl_tc *tc, int strict, struct sl_problem *e)
{
	struct resync_ctx c = {.tc = tc, .strict = strict};
	int err = for_each_link(resync_one, &c, e);

	if (!err) {
		for (size_t i = 0; i < tc->n_ifs;) {
			size_t j;

			for (j = 0; j < c.n_seen && c.seen[j] != tc->ifs[i].ifindex; j++)
				;
			if (j == c.n_seen)
				forget_if(tc, &tc->ifs[i], "removed");
			else
				i++;
		}
	}
	free(c.seen);
	return err;
}

static void on_link_obj(struct nl_object *obj, void *arg)
{
	struct sl_tc *tc = arg;
	struct sl_problem e = {0};

	if (strcmp(nl_object_get_type(obj), "route/link"))
		return;
	if (sync_link(tc, (struct rtnl_link *)obj, nl_object_get_msgtype(obj) == RTM_DELLINK, &e))
		sl_warn("tc: link event not handled", "error=\"%s\"", e.msg);
}

static int on_nl_msg(struct nl_msg *msg, void *arg)
{
	int type = nlmsg_hdr(msg)->nlmsg_type;
	int err;

	if (type != RTM_NEWLINK && type != RTM_DELLINK)
		return NL_OK;
	err = nl_msg_parse(msg, on_link_obj, arg);
	if (err < 0)
		sl_warn("tc: cannot parse a link event", "error=\"%s\"", nl_geterror(err));
	return NL_OK;
}

static int events_open(struct sl_tc *tc, struct sl_problem *e)
{
	int err;

	tc->events = nl_socket_alloc();
	if (!tc->events)
		return sl_problem_sys(e, 0, -ENOMEM, "netlink: cannot allocate a socket");
	/* Notifications carry no sequence number of ours. */
	nl_socket_disable_seq_check(tc->events);
	err = nl_socket_modify_cb(tc->events, NL_CB_VALID, NL_CB_CUSTOM, on_nl_msg, tc);
	if (err >= 0)
		err = nl_connect(tc->events, NETLINK_ROUTE);
	if (err >= 0)
		err = nl_socket_add_membership(tc->events, RTNLGRP_LINK);
	if (err >= 0)
		err = nl_socket_set_nonblocking(tc->events);
	if (err >= 0)
		err = nl_socket_set_buffer_size(tc->events, SL_TC_NL_RCVBUF, 0);
	if (err < 0)
		return sl_problem_sys(e, 0, nl_to_errno(err),
				      "netlink: subscribe to link events: %s", nl_geterror(err));
	return 0;
}

/* --- maps and pins ------------------------------------------------------------------------ */

/* The maps this object shares with the socket datapath (services, policy,
 * events) take the size the agent gave them there; then refuse up front a
 * pinned map libbpf could not reuse, with what to do. */
static int check_pinned(struct sl_tc *tc, struct sl_problem *e)
{
	struct bpf_map *maps[SLUICE_MAP__COUNT], *map;

	skel_maps(tc->skel, maps);
	bpf_object__for_each_map(map, tc->skel->obj)
	{
		unsigned int id;
		int err;

		for (id = 0; id < SLUICE_MAP__COUNT && maps[id] != map; id++)
			;
		if (!bpf_map__pin_path(map))
			continue;
		if (id == SLUICE_MAP__COUNT)
			return sl_problem_sys(
			    e, 0, -EINVAL,
			    "BPF object tc_flow: map %s is not in include/sluice/maps.def",
			    bpf_map__name(map));
		if (sl_map_objects(id) == SL_MAP_OBJ_SHARED) {
			err = sl_pin_adopt_size(tc->bpffs, map);
			if (err)
				return sl_problem_sys(e, 0, err, "size %s from its pin: %s",
						      bpf_map__name(map), strerror(-err));
		}
		err = sl_pin_check(tc->bpffs, map, e);
		if (err)
			return err;
	}
	return 0;
}

static int load(struct sl_tc *tc, struct sl_problem *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = tc->bpffs);
	struct bpf_map *map;
	int err;

	err = sl_abi_check(tc->bpffs, e);
	if (err)
		return err;
	/* The skeleton opens the ELF embedded in it (tc_flow__elf_bytes()). */
	tc->skel = tc_flow__open_opts(&opts);
	if (!tc->skel)
		return sl_problem_sys(e, 0, -errno, "open BPF object tc_flow: %s", strerror(errno));
	err = check_pinned(tc, e);
	if (err)
		return err;
	err = tc_flow__load(tc->skel);
	if (err)
		return sl_problem_sys(
		    e, err == -EPERM, err, "load BPF object tc_flow: %s%s", strerror(-err),
		    err == -EPERM ? " (need root, or CAP_BPF and CAP_NET_ADMIN)" : "");
	for (int d = 0; d < SLUICE_TC_DIR__MAX; d++) {
		const struct bpf_program *prog = d == SLUICE_TC_INGRESS
						     ? tc->skel->progs.sluice_tc_ingress
						     : tc->skel->progs.sluice_tc_egress;
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		tc->progs.fd[d] = bpf_program__fd(prog);
		if (!bpf_obj_get_info_by_fd(tc->progs.fd[d], &info, &len))
			tc->progs.id[d] = info.id;
	}
	bpf_object__for_each_map(map, tc->skel->obj)
	{
		const char *path = bpf_map__pin_path(map);

		if (path && chmod(path, 0600))
			return sl_problem_sys(e, 0, -errno, "chmod %s: %s", path, strerror(errno));
	}
	return sl_abi_stamp(tc->bpffs, e);
}

/* Drop the counters of interfaces a previous run watched and this one does
 * not (gone, or no longer matching). */
static void drop_stale_if_stats(struct sl_tc *tc)
{
	int fd = bpf_map__fd(tc->skel->maps.sluice_tc_if_stats);
	struct sluice_tc_if_key key, next, *stale = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (find_if(tc, (int)key.ifindex))
			continue;
		if (SL_ENSURE(&stale, &cap, n + 1))
			break;
		stale[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	free(stale);
}

/* --- API ---------------------------------------------------------------------------------- */

int sl_tc_open(struct sl_tc **out, const char *bpffs, const char *const *globs, size_t n_globs,
	       struct sl_problem *e)
{
	struct sl_tc *tc;
	int err;

	*out = NULL;
	if (strlen(bpffs) >= PATH_MAX)
		return sl_problem_sys(e, 0, -ENAMETOOLONG, "bpffs path %s is too long", bpffs);
	if (!n_globs) {
		char pin[PATH_MAX + 64];

		/* No interface gets tc metrics: clear what a previous run with
		 * some left (only if it pinned maps here, to spare a walk). */
		snprintf(pin, sizeof(pin), "%s/%s", bpffs, sl_map_name(SLUICE_MAP_TC_FLOWS));
		if (!access(pin, F_OK)) {
			err = sl_tc_teardown(bpffs, e);
			if (err)
				return err;
		}
	}
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return sl_problem_sys(e, 0, -ENOMEM, "tc: out of memory");
	snprintf(tc->bpffs, sizeof(tc->bpffs), "%s", bpffs);
	if (!n_globs) {
		*out = tc;
		return 0;
	}

	tc->globs = calloc(n_globs, sizeof(*tc->globs));
	if (!tc->globs) {
		err = sl_problem_sys(e, 0, -ENOMEM, "tc: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n_globs; i++) {
		tc->globs[i] = strdup(globs[i]);
		if (!tc->globs[i]) {
			err = sl_problem_sys(e, 0, -ENOMEM, "tc: out of memory");
			goto fail;
		}
		tc->n_globs++;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		err = sl_problem_sys(e, 1, -ENOENT,
				     "kernel BTF (/sys/kernel/btf/vmlinux) is missing: "
				     "sluice needs CONFIG_DEBUG_INFO_BTF");
		goto fail;
	}
	err = sl_ensure_bpffs(tc->bpffs, e);
	if (err)
		goto fail;
	if (mkdir(tc->bpffs, 0700) && errno != EEXIST) {
		err = sl_problem_sys(e, 1, -errno, "mkdir %s: %s", tc->bpffs, strerror(errno));
		goto fail;
	}
	err = load(tc, e);
	if (err)
		goto fail;
	/* Subscribe before the walk, so that no interface that appears
	 * meanwhile is missed (seeing one twice is harmless). */
	err = events_open(tc, e);
	if (err)
		goto fail;
	err = resync(tc, 1, e);
	if (err)
		goto fail;
	drop_stale_if_stats(tc);
	*out = tc;
	return 0;
fail:
	sl_tc_close(tc);
	return err;
}

int sl_tc_fd(const struct sl_tc *tc)
{
	return tc && tc->events ? nl_socket_get_fd(tc->events) : -1;
}

void sl_tc_on_readable(struct sl_tc *tc)
{
	int err;

	if (!tc || !tc->events)
		return;
	do {
		err = nl_recvmsgs_default(tc->events);
	} while (err >= 0);
	if (err == -NLE_AGAIN)
		return;
	if (err == -NLE_NOMEM) {
		/* The socket overran (ENOBUFS): events were lost. */
		struct sl_problem e = {0};

		sl_warn("tc: link events lost, rescanning interfaces");
		if (resync(tc, 0, &e))
			sl_warn("tc: rescan failed", "error=\"%s\"", e.msg);
		return;
	}
	sl_warn("tc: reading link events", "error=\"%s\"", nl_geterror(err));
}

size_t sl_tc_interfaces(const struct sl_tc *tc, const struct sl_tc_if **out)
{
	*out = tc ? tc->ifs : NULL;
	return tc ? tc->n_ifs : 0;
}

int sl_tc_if_stats_fd(const struct sl_tc *tc)
{
	return tc && tc->skel ? bpf_map__fd(tc->skel->maps.sluice_tc_if_stats) : -1;
}

int sl_tc_flows_fd(const struct sl_tc *tc)
{
	return tc && tc->skel ? bpf_map__fd(tc->skel->maps.sluice_tc_flows) : -1;
}

void sl_tc_close(struct sl_tc *tc)
{
	if (!tc)
		return;
	if (tc->events)
		nl_socket_free(tc->events);
	/* Filters hold their programs: closing the object detaches nothing. */
	tc_flow__destroy(tc->skel);
	for (size_t i = 0; i < tc->n_globs; i++)
		free(tc->globs[i]);
	free(tc->globs);
	free(tc->ifs);
	free(tc->skipped);
	free(tc);
}

static int teardown_one(void *arg, struct rtnl_link *link, struct sl_problem *e)
{
	const char *name = rtnl_link_get_name(link);

	(void)arg;
	if (rtnl_link_get_family(link) != AF_UNSPEC)
		return 0;
	return sl_tc_filter_detach(NULL, rtnl_link_get_ifindex(link), name ? name : "?", "teardown",
				   e);
}

int sl_tc_teardown(const char *bpffs, struct sl_problem *e)
{
	char path[PATH_MAX + 64];
	int err, alone;

	/* Filters first, so no program is left counting into maps that go. */
	err = for_each_link(teardown_one, NULL, e);
	if (err)
		return err;
	if (access(bpffs, F_OK))
		return 0;
	if (!sl_is_bpffs(bpffs))
		return sl_problem_sys(e, 1, -ENOTSUP, "%s is not on a bpf filesystem", bpffs);
	/* The maps shared with the socket datapath, and the ABI stamp, are its
	 * to remove, unless there is none: then this object made them alone. */
	snprintf(path, sizeof(path), "%s/%s", bpffs, sl_map_name(SLUICE_MAP_FRONTENDS));
	alone = access(path, F_OK) && errno == ENOENT;
	for (unsigned int id = 0; id < SLUICE_MAP__COUNT; id++) {
		enum sl_map_objects o = sl_map_objects(id);

		if (o != SL_MAP_OBJ_TC &&
		    !(alone && (o == SL_MAP_OBJ_SHARED || o == SL_MAP_OBJ_AGENT)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", bpffs, sl_map_name(id));
		if (unlink(path) && errno != ENOENT)
			return sl_problem_sys(e, 0, -errno, "unlink %s: %s", path, strerror(errno));
	}
	/* The directory goes too when nothing else is pinned there. */
	if (rmdir(bpffs) && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
		return sl_problem_sys(e, 0, -errno, "rmdir %s: %s", bpffs, strerror(errno));
	return 0;
}
