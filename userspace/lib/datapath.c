// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * For each BPF object, in order, through its skeleton: open -> set
 * capacities (skel->maps) and settings (skel->rodata) -> load (libbpf reuses
 * pinned maps, so later objects share the maps the first one pinned) ->
 * attach or adopt each link -> pin. One cleanup path, in reverse.
 *
 * Adoption: pinned state is taken over only when its ABI stamp (sluice_abi)
 * says it is of this build's SLUICE_ABI_VERSION, and each pinned map has the
 * type, key and value sizes and capacity the object asks for. When a link is
 * already pinned for a program, the new program is swapped into it with
 * bpf_link__update_program(), an atomic replacement, so there is never a
 * moment with no program attached.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sluice/abi.h>

#include "redirect.skel.h"
#include "sock_lb.skel.h"
#include "sockops.skel.h"

#include "datapath.h"
#include "sockdestroy.h"

int sl_find_cgroup2(char *out, size_t len)
{
	char dev[256], dir[4096], type[64];
	FILE *f = fopen("/proc/mounts", "re");
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]\n", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2"))
			continue;
		if (strlen(dir) >= len) {
			found = -ENAMETOOLONG;
			break;
		}
		strcpy(out, dir);
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

unsigned int sl_dp_capacity(const struct sl_limits *l, enum sluice_map map)
{
	/* The names the capacity column of maps.def is written in. */
	const unsigned int services = l->services, backends = l->backends;

	switch (map) {
#define SLUICE_MAP(id, name, field, objects, fd, capacity)                                         \
	case id:                                                                                   \
		return capacity;
#include <sluice/maps.def>
#undef SLUICE_MAP
	case SLUICE_MAP__COUNT:
		break;
	}
	return 0;
}

/* --- the objects ------------------------------------------------------------------------- */

/* One loaded object, whatever its skeleton: its maps by id (NULL: not in
 * this object), from skel->maps. */
struct dp_obj {
	const char *name;
	struct bpf_object_skeleton *skel;
	struct bpf_object *obj;
	struct bpf_map *maps[SLUICE_MAP__COUNT];
};

/* maps.def's SOCK and SHARED maps are in each of the three objects. */
#define DP_MAP_SOCK(id, name)	o->maps[id] = s->maps.name;
#define DP_MAP_SHARED(id, name) o->maps[id] = s->maps.name;
#define DP_MAP_TC(id, name)
#define DP_MAP_AGENT(id, name)

#define SLUICE_MAP(id, name, field, objects, fd, capacity) DP_MAP_##objects(id, name)

static void dp_obj_sock_lb(struct dp_obj *o, const struct sock_lb *s)
{
	*o = (struct dp_obj){.name = "sock_lb", .skel = s->skeleton, .obj = s->obj};
#include <sluice/maps.def>
}

static void dp_obj_sockops(struct dp_obj *o, const struct sockops *s)
{
	*o = (struct dp_obj){.name = "sockops", .skel = s->skeleton, .obj = s->obj};
#include <sluice/maps.def>
}

static void dp_obj_redirect(struct dp_obj *o, const struct redirect *s)
{
	*o = (struct dp_obj){.name = "redirect", .skel = s->skeleton, .obj = s->obj};
#include <sluice/maps.def>
}

#undef SLUICE_MAP
#undef DP_MAP_SOCK
#undef DP_MAP_SHARED
#undef DP_MAP_TC
#undef DP_MAP_AGENT

/* Set capacities, and refuse up front a pinned map that libbpf could not
 * reuse, with a message that says what to do. */
static int prepare_maps(struct sl_dp *dp, const struct dp_obj *o, const struct sl_config *cfg,
			struct sl_problem *e)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, o->obj)
	{
		const char *name = bpf_map__name(map);
		unsigned int id, cap;
		int err;

		for (id = 0; id < SLUICE_MAP__COUNT && o->maps[id] != map; id++)
			;
		if (id == SLUICE_MAP__COUNT) {
			if (!bpf_map__pin_path(map))
				continue; /* .rodata and friends: not pinned */
			return sl_problem_sys(
			    e, 0, -EINVAL,
			    "BPF object %s: map %s is not in include/sluice/maps.def", o->name,
			    name);
		}
		cap = sl_dp_capacity(&cfg->agent.limits, id);
		if (cap && bpf_map__set_max_entries(map, cap))
			return sl_problem_sys(e, 0, -EINVAL, "set capacity of map %s", name);
		err = sl_pin_check(dp->bpffs, map, e);
		if (err)
			return err;
	}
	return 0;
}

int sl_cgroup_id(const char *path, unsigned long long *id)
{
	struct {
		struct file_handle fh;
		unsigned long long id;
	} h = {.fh.handle_bytes = sizeof(unsigned long long)};
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

static int link_cgroup_id(struct bpf_link *link, unsigned long long *id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return -errno;
	*id = info.cgroup.cgroup_id;
	return 0;
}

static int pin_private(const char *path)
{
	return chmod(path, 0600) ? -errno : 0;
}

/* Attach one program, or swap it into the link pinned by a previous run. */
static int attach_one(struct sl_dp *dp, struct bpf_program *prog, unsigned long long cg_id,
		      struct sl_problem *e)
{
	const char *name = bpf_program__name(prog);
	struct bpf_link *old = NULL, *link;
	unsigned long long old_cg = 0;
	char path[PATH_MAX + 64];
	int err;

	snprintf(path, sizeof(path), "%s/links/%s", dp->bpffs, name);
	if (!access(path, F_OK)) {
		old = bpf_link__open(path);
		if (!old)
			return sl_problem_sys(e, 0, -errno, "open pinned link %s: %s", path,
					      strerror(errno));
		err = link_cgroup_id(old, &old_cg);
		if (err) {
			bpf_link__destroy(old);
			return sl_problem_sys(e, 0, err, "inspect link %s: %s", path,
					      strerror(-err));
		}
		if (old_cg == cg_id) {
			err = bpf_link__update_program(old, prog);
			if (err) {
				bpf_link__destroy(old);
				return sl_problem_sys(e, 0, err, "replace program in %s: %s", path,
						      strerror(-err));
			}
			dp->links[dp->n_links++] = old;
			dp->adopted = 1;
			return 0;
		}
	}
	/* New, or the cgroup changed: attach first, then drop the old link. */
	link = bpf_program__attach_cgroup(prog, dp->cgroup_fd);
	if (!link) {
		err = -errno;
		bpf_link__destroy(old);
		return sl_problem_sys(
		    e, (err == -EPERM || err == -EACCES), err, "attach %s to %s: %s%s", name,
		    dp->cgroup, strerror(-err),
		    (err == -EPERM || err == -EACCES) ? " (need CAP_BPF and CAP_NET_ADMIN)" : "");
	}
	if (old) {
		bpf_link__unpin(old);
		bpf_link_detach(bpf_link__fd(old));
		bpf_link__destroy(old);
	}
	err = bpf_link__pin(link, path);
	if (!err)
		err = pin_private(path);
	if (err) {
		bpf_link__destroy(link);
		return sl_problem_sys(e, 0, err, "pin link %s: %s", path, strerror(-err));
	}
	dp->links[dp->n_links++] = link;
	return 0;
}

/*
 * sk_msg programs attach to the sockhash, not to the cgroup. Attaching
 * replaces the program a previous run left (sockets already in the map keep
 * the one they joined with until they close).
 */
static int attach_sk_msg(struct sl_dp *dp, struct bpf_program *prog, struct sl_problem *e)
{
	/* The pinned map, shared by every object; sock_lb created it. */
	struct bpf_map *map = dp->sock_lb->maps.sluice_sockhash;

	if (bpf_prog_attach(bpf_program__fd(prog), bpf_map__fd(map), BPF_SK_MSG_VERDICT, 0))
		return sl_problem_sys(e, 0, -errno, "attach %s to %s: %s", bpf_program__name(prog),
				      bpf_map__name(map), strerror(errno));
	return 0;
}

/* Is the capability in this process's effective set? */
static int has_cap(int cap)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	if (syscall(SYS_capget, &hdr, data))
		return 1; /* unknown: do not blame privileges */
	return !!(data[cap / 32].effective & (1u << (cap % 32)));
}

static int pins_private(const struct dp_obj *o, struct sl_problem *e)
{
	for (unsigned int id = 0; id < SLUICE_MAP__COUNT; id++) {
		const char *path = o->maps[id] ? bpf_map__pin_path(o->maps[id]) : NULL;
		int err;

		if (!path)
			continue;
		err = pin_private(path);
		if (err)
			return sl_problem_sys(e, 0, err, "chmod %s: %s", path, strerror(-err));
	}
	return 0;
}

/* Size, load (through the skeleton: libbpf creates or reuses the pins) and
 * chmod the pins of an opened object. */
static int load_obj(struct sl_dp *dp, const struct dp_obj *o, const struct sl_config *cfg,
		    struct sl_problem *e)
{
	int err = prepare_maps(dp, o, cfg, e);

	if (err)
		return err;
	err = bpf_object__load_skeleton(o->skel);
	if (err) {
		/* Without CAP_PERFMON the verifier also walks speculative paths:
		 * the socket programs then exceed its limits (E2BIG, or EFAULT). */
		int priv = err == -EPERM || err == -EACCES ||
			   ((err == -E2BIG || err == -EFAULT) && !has_cap(CAP_PERFMON));

		return sl_problem_sys(
		    e, priv, err, "load BPF object %s: %s%s", o->name, strerror(-err),
		    priv ? " (missing privileges: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; "
			   "or the kernel's verifier refused it: see the log above)"
			 : "");
	}
	return pins_private(o, e);
}

static int open_failed(const char *name, struct sl_problem *e)
{
	return sl_problem_sys(e, 0, -errno, "open BPF object %s: %s", name, strerror(errno));
}

/*
 * The objects in load order: sock_lb creates and pins the shared maps (and,
 * once it has, the ABI stamp goes beside them), sockops and redirect reuse
 * them.
 */
static int load_objs(struct sl_dp *dp, const struct sl_config *cfg, struct sl_problem *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = dp->bpffs);
	struct dp_obj o;
	int err;

	dp->sock_lb = sock_lb__open_opts(&opts);
	if (!dp->sock_lb)
		return open_failed("sock_lb", e);
	dp->sock_lb->rodata->sl_zone_on = cfg->agent.zone[0] != '\0';
	dp_obj_sock_lb(&o, dp->sock_lb);
	err = load_obj(dp, &o, cfg, e);
	if (!err)
		err = sl_abi_stamp(dp->bpffs, e);
	if (err)
		return err;

	dp->sockops = sockops__open_opts(&opts);
	if (!dp->sockops)
		return open_failed("sockops", e);
	dp->sockops->rodata->sl_cfg.redirect_local = cfg->agent.redirect_local;
	dp_obj_sockops(&o, dp->sockops);
	err = load_obj(dp, &o, cfg, e);
	if (err)
		return err;

	dp->redirect = redirect__open_opts(&opts);
	if (!dp->redirect)
		return open_failed("redirect", e);
	dp_obj_redirect(&o, dp->redirect);
	return load_obj(dp, &o, cfg, e);
}

static int tracing_on(const struct sl_config *cfg)
{
	return cfg->agent.tracing.on;
}

/*
 * Programs attached only when the config asks for what they do; the others always are. The
 * egress program only looks for a traceparent: without a tracing: block it is not attached
 * (so it costs nothing per packet). Adding or removing the block needs a restart, so this
 * holds until then.
 */
static const struct {
	const char *prog;
	int (*wanted)(const struct sl_config *cfg);
} optional_progs[] = {
    {"sluice_trace_egress", tracing_on},
};

/* 1 when prog is not wanted now: then a link that a previous run pinned for it goes too.
 * 0 to attach it; -errno with e filled. */
static int skip_unwanted(struct sl_dp *dp, struct bpf_program *prog, const struct sl_config *cfg,
			 struct sl_problem *e)
{
	const char *name = bpf_program__name(prog);
	char path[PATH_MAX + 64];
	struct bpf_link *old;
	size_t i;

	for (i = 0; i < sizeof(optional_progs) / sizeof(optional_progs[0]); i++)
		if (!strcmp(name, optional_progs[i].prog))
			break;
	if (i == sizeof(optional_progs) / sizeof(optional_progs[0]) ||
	    optional_progs[i].wanted(cfg))
		return 0;
	snprintf(path, sizeof(path), "%s/links/%s", dp->bpffs, name);
	if (access(path, F_OK))
		return 1;
	old = bpf_link__open(path);
	if (!old)
		return sl_problem_sys(e, 0, -errno, "open pinned link %s: %s", path,
				      strerror(errno));
	if (bpf_link__unpin(old) || bpf_link_detach(bpf_link__fd(old))) {
		int err = -errno;

		bpf_link__destroy(old);
		return sl_problem_sys(e, 0, err, "detach the unwanted %s (link %s): %s", name, path,
				      strerror(-err));
	}
	bpf_link__destroy(old);
	return 1;
}

/* Attach every program of obj: sk_msg to the sockhash, the rest to the cgroup. */
static int attach_obj(struct sl_dp *dp, struct bpf_object *obj, unsigned long long cg_id,
		      const struct sl_config *cfg, struct sl_problem *e)
{
	struct bpf_program *prog;
	int err;

	bpf_object__for_each_program(prog, obj)
	{
		err = skip_unwanted(dp, prog, cfg, e);
		if (err < 0)
			return err;
		if (err)
			continue;
		if (dp->n_links == SL_DP_PROGS)
			return sl_problem_sys(e, 0, -E2BIG, "more programs than links");
		if (bpf_program__type(prog) == BPF_PROG_TYPE_SK_MSG)
			err = attach_sk_msg(dp, prog, e);
		else
			err = attach_one(dp, prog, cg_id, e);
		if (err)
			return err;
	}
	return 0;
}

int sl_dp_open(struct sl_dp *dp, const struct sl_config *cfg, struct sl_problem *e)
{
	unsigned long long cg_id = 0;
	char links[PATH_MAX + 8];
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->cgroup_fd = -1;
	dp->events_fd = -1;
	dp->settings_fd = -1;
	dp->spans_fd = -1;
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++)
		*sl_maps_fd(&dp->maps, i) = -1;
	snprintf(dp->bpffs, sizeof(dp->bpffs), "%s", cfg->agent.bpffs);
	snprintf(dp->cgroup, sizeof(dp->cgroup), "%s", cfg->agent.cgroup);

	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return sl_problem_sys(e, 1, -ENOENT,
				      "kernel BTF (/sys/kernel/btf/vmlinux) is missing: "
				      "sluice needs CONFIG_DEBUG_INFO_BTF");
	dp->cgroup_fd = open(dp->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->cgroup_fd < 0)
		return sl_problem_sys(e, 1, -errno, "open cgroup %s: %s", dp->cgroup,
				      strerror(errno));
	err = sl_cgroup_id(dp->cgroup, &cg_id);
	if (err) {
		err = sl_problem_sys(e, 1, err, "cgroup %s: %s (is it on cgroup v2?)", dp->cgroup,
				     strerror(-err));
		goto fail;
	}
	err = sl_ensure_bpffs(dp->bpffs, e);
	if (!err)
		err = sl_abi_check(dp->bpffs, e);
	if (err)
		goto fail;
	snprintf(links, sizeof(links), "%s/links", dp->bpffs);
	if ((mkdir(dp->bpffs, 0700) && errno != EEXIST) ||
	    (mkdir(links, 0700) && errno != EEXIST)) {
		err = sl_problem_sys(e, 1, -errno, "mkdir %s: %s", links, strerror(errno));
		goto fail;
	}

	err = load_objs(dp, cfg, e);
	if (!err)
		err = attach_obj(dp, dp->sock_lb->obj, cg_id, cfg, e);
	if (!err)
		err = attach_obj(dp, dp->sockops->obj, cg_id, cfg, e);
	if (!err)
		err = attach_obj(dp, dp->redirect->obj, cg_id, cfg, e);
	if (err)
		goto fail;
#define SLUICE_MAP(id, name, field, objects, fd, capacity)                                         \
	SL_MAPS_IF_##fd(dp->maps.field = bpf_map__fd(dp->sock_lb->maps.name);)
#include <sluice/maps.def>
#undef SLUICE_MAP
	dp->events_fd = bpf_map__fd(dp->sock_lb->maps.sluice_events);
	dp->settings_fd = bpf_map__fd(dp->sock_lb->maps.sluice_settings);
	dp->spans_fd = bpf_map__fd(dp->sock_lb->maps.sluice_spans);
	/* Optional (kernel 6.5+): without it, sockets on dead backends stay. */
	sl_sd_open(&dp->sd, bpf_map__fd(dp->sock_lb->maps.sluice_revnat),
		   bpf_map__fd(dp->sock_lb->maps.sluice_sk_backend), cg_id);
	return 0;
fail:
	sl_dp_close(dp);
	return err;
}

void sl_dp_close(struct sl_dp *dp)
{
	/* Links are pinned: destroying our handle does not detach them. */
	while (dp->n_links)
		bpf_link__destroy(dp->links[--dp->n_links]);
	sl_sd_free(dp->sd);
	dp->sd = NULL;
	redirect__destroy(dp->redirect);
	sockops__destroy(dp->sockops);
	sock_lb__destroy(dp->sock_lb);
	dp->redirect = NULL;
	dp->sockops = NULL;
	dp->sock_lb = NULL;
	if (dp->cgroup_fd >= 0)
		close(dp->cgroup_fd);
	dp->cgroup_fd = -1;
}

static int remove_dir(const char *dir, int detach_links, struct sl_problem *e)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT
			   ? 0
			   : sl_problem_sys(e, 0, -errno, "open %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR) {
			err = remove_dir(path, detach_links, e);
			if (err)
				break;
			continue;
		}
		if (detach_links) {
			int fd = bpf_obj_get(path);

			if (fd >= 0) {
				/* Only links detach; a map pin fails with EINVAL. */
				if (bpf_link_detach(fd) && errno != EINVAL && errno != ENOLINK) {
					err = sl_problem_sys(e, 0, -errno, "detach %s: %s", path,
							     strerror(errno));
					close(fd);
					break;
				}
				close(fd);
			}
		}
		if (unlink(path)) {
			err = sl_problem_sys(e, 0, -errno, "unlink %s: %s", path, strerror(errno));
			break;
		}
	}
	closedir(d);
	if (!err && rmdir(dir))
		err = sl_problem_sys(e, 0, -errno, "rmdir %s: %s", dir, strerror(errno));
	return err;
}

int sl_dp_teardown(const char *bpffs, struct sl_problem *e)
{
	char links[PATH_MAX + 8];
	int err;

	if (access(bpffs, F_OK))
		return 0;
	if (!sl_is_bpffs(bpffs))
		return sl_problem_sys(e, 1, -ENOTSUP, "%s is not on a bpf filesystem", bpffs);
	/* Links first, so no program is left running against maps that are
	 * about to go. */
	snprintf(links, sizeof(links), "%s/links", bpffs);
	err = remove_dir(links, 1, e);
	if (!err)
		err = remove_dir(bpffs, 0, e);
	return err;
}
