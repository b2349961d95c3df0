// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice's clsact filters on one interface: attach or replace them in place,
 * detach them. A filter is sluice's when it sits at SL_TC_HANDLE/
 * SL_TC_PRIORITY and runs a program whose name begins with
 * SL_TC_PROG_PREFIX; a filter of another program at that slot is never
 * replaced or removed.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "tc_filter.h"

static const enum bpf_tc_attach_point hooks[SLUICE_TC_DIR__MAX] = {
    [SLUICE_TC_INGRESS] = BPF_TC_INGRESS,
    [SLUICE_TC_EGRESS] = BPF_TC_EGRESS,
};

/* libbpf logs the kernel's answer to every failed tc request, and the
 * probes below fail by design (no qdisc, empty slot): they run with libbpf's
 * printing off (NULL), and put the caller's printer back after. */

/* 1 if program 'id' is one of sluice's tc programs, 0 if not, -errno. The
 * programs p (may be NULL) holds are known by id. Any other is opened by id,
 * which needs CAP_SYS_ADMIN: the agent does that only at start, to adopt what
 * a previous run attached, and then drops the capability. */
static int prog_is_sluice(const struct sl_tc_progs *p, __u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, err = 0;

	for (int d = 0; p && d < SLUICE_TC_DIR__MAX; d++)
		if (p->id[d] && p->id[d] == id)
			return 1;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	close(fd);
	if (err)
		return err;
	return !strncmp(info.name, SL_TC_PROG_PREFIX, strlen(SL_TC_PROG_PREFIX));
}

/* The program id in sluice's slot of one hook: 0 and *id, or -ENOENT when
 * the slot (or the clsact qdisc) is empty. */
static int slot_query(int ifindex, enum bpf_tc_attach_point ap, __u32 *id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = SL_TC_HANDLE, .priority = SL_TC_PRIORITY);
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	int err = bpf_tc_query(&hook, &q);

	libbpf_set_print(print);
	/* No clsact qdisc reads as EINVAL. */
	if (err == -ENOENT || err == -EINVAL)
		return -ENOENT;
	if (err)
		return err;
	*id = q.prog_id;
	return 0;
}

/* Remove sluice's filter from one hook. 1 if one was removed, 0 if there was
 * none (or another program's), -errno. */
static int detach_hook(const struct sl_tc_progs *p, int ifindex, enum bpf_tc_attach_point ap)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SL_TC_HANDLE, .priority = SL_TC_PRIORITY);
	__u32 id = 0;
	int err;

	err = slot_query(ifindex, ap, &id);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	err = prog_is_sluice(p, id);
	if (err <= 0)
		return err;
	err = bpf_tc_detach(&hook, &opts);
	if (err == -ENOENT)
		return 0;
	return err ? err : 1;
}

int sl_tc_filter_detach(const struct sl_tc_progs *p, int ifindex, const char *name, const char *why,
			struct sl_problem *e)
{
	int removed = 0;

	for (int d = 0; d < SLUICE_TC_DIR__MAX; d++) {
		int err = detach_hook(p, ifindex, hooks[d]);

		if (err == -ENODEV)
			return 0; /* gone meanwhile, and its filters with it */
		if (err < 0)
			return sl_problem_sys(e, 0, err, "detach tc %s filter from %s: %s",
					      sl_tc_dir_name(d), name, strerror(-err));
		removed |= err;
	}
	if (removed)
		sl_info("tc detached", "interface=%s ifindex=%d reason=%s", name, ifindex, why);
	return 0;
}

int sl_tc_filter_attach(const struct sl_tc_progs *p, int ifindex, const char *name,
			struct sl_problem *e)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	libbpf_print_fn_t print;
	int replaced = 0, err;

	/* Creates the clsact qdisc, which holds both hooks (EEXIST: there). */
	print = libbpf_set_print(NULL);
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(print);
	if (err && err != -EEXIST)
		return sl_problem_sys(e, err == -EPERM, err, "create clsact qdisc on %s: %s%s",
				      name, strerror(-err),
				      err == -EPERM ? " (need CAP_NET_ADMIN)" : "");
	for (int d = 0; d < SLUICE_TC_DIR__MAX; d++) {
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SL_TC_HANDLE, .priority = SL_TC_PRIORITY,
			    .prog_fd = p->fd[d], .flags = BPF_TC_F_REPLACE);
		__u32 id = 0;

		hook.attach_point = hooks[d];
		err = slot_query(ifindex, hooks[d], &id);
		if (!err) {
			err = prog_is_sluice(p, id);
			if (err == 0)
				return sl_problem_sys(
				    e, 0, -EEXIST,
				    "tc %s filter handle 0x%x priority %u on %s runs "
				    "program %u, which is not sluice's: not replacing it",
				    sl_tc_dir_name(d), SL_TC_HANDLE, SL_TC_PRIORITY, name, id);
			replaced = 1;
		}
		if (err < 0 && err != -ENOENT)
			return sl_problem_sys(e, 0, err, "query tc %s filters of %s: %s",
					      sl_tc_dir_name(d), name, strerror(-err));
		err = bpf_tc_attach(&hook, &opts);
		if (err)
			return sl_problem_sys(e, err == -EPERM, err,
					      "attach tc %s program to %s: %s", sl_tc_dir_name(d),
					      name, strerror(-err));
	}
	sl_info("tc attached", "interface=%s ifindex=%d replaced=%d", name, ifindex, replaced);
	return 0;
}
