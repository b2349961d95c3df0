// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * For each BPF object, in order: open (from the skeleton's embedded ELF) ->
 * set capacities -> load (libbpf reuses pinned maps, so later objects share
 * the maps the first one pinned) -> attach or adopt each link -> pin. One
 * cleanup path, in reverse.
 *
 * Adoption: when a link is already pinned for a program, the new program is
 * swapped into it with bpf_link__update_program(), an atomic replacement, so
 * there is never a moment with no program attached.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sock_lb.skel.h"
#include <sluice/abi.h>

#include "redirect.skel.h"
#include "sockops.skel.h"

#include "datapath.h"

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

int sl_is_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

int sl_ensure_bpffs(const char *dir, struct sl_problem *e)
{
	char parent[PATH_MAX];
	char *slash;

	if (strlen(dir) >= sizeof(parent))
		return sl_problem_sys(e, 0, -ENAMETOOLONG, "bpffs path %s is too long", dir);
	strcpy(parent, dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return sl_problem_sys(e, 1, -EINVAL,
				      "bpffs %s: must be a directory below a bpf mount", dir);
	*slash = '\0';
	if (sl_is_bpffs(parent))
		return 0;
	if (!strcmp(parent, "/sys/fs/bpf")) {
		if (mkdir(parent, 0700) && errno != EEXIST)
			return sl_problem_sys(e, 1, -errno, "mkdir %s: %s", parent,
					      strerror(errno));
		if (mount("bpf", parent, "bpf", 0, "mode=0700"))
			return sl_problem_sys(e, 1, -errno, "mount bpffs at %s: %s", parent,
					      strerror(errno));
		return 0;
	}
	return sl_problem_sys(e, 1, -ENOTSUP, "%s is not on a bpf filesystem (mount -t bpf bpf %s)",
			      parent, parent);
}

unsigned int sl_dp_capacity(const struct sl_limits *l, const char *map)
{
	/* Hashes get twice the configured room so that moving from one valid
	 * config to another always fits; per-id arrays are indexed 1..2n. */
	if (!strcmp(map, SLUICE_MAP_FRONTENDS) || !strcmp(map, SLUICE_MAP_SERVICES) ||
	    !strcmp(map, SLUICE_MAP_SVC_INFO))
		return 2 * l->services;
	if (!strcmp(map, SLUICE_MAP_TABLES)) /* 2 generations of up to 8 views */
		return 2 * SLUICE_MAX_SPLIT * l->services;
	if (!strcmp(map, SLUICE_MAP_SVC_STATS) || !strcmp(map, SLUICE_MAP_RR) ||
	    !strcmp(map, SLUICE_MAP_SVC_HIST) || !strcmp(map, SLUICE_MAP_SVC_RT))
		return 2 * l->services + 1;
	if (!strcmp(map, SLUICE_MAP_BACKENDS))
		return 2 * l->backends;
	if (!strcmp(map, SLUICE_MAP_SLOTS))
		return 4 * l->backends;
	if (!strcmp(map, SLUICE_MAP_BACKEND_STATS) || !strcmp(map, SLUICE_MAP_BACKEND_RT))
		return 2 * l->backends + 1;
	if (!strcmp(map, SLUICE_MAP_AFFINITY))
		return SLUICE_DEFAULT_AFFINITY;
	if (!strcmp(map, SLUICE_MAP_POLICY_BES))
		return 2 * l->backends;
	if (!strcmp(map, SLUICE_MAP_REVNAT))
		return l->revnat;
	if (!strcmp(map, SLUICE_MAP_SOCKHASH) || !strcmp(map, "sluice_redir_pending"))
		return SLUICE_DEFAULT_SOCKHASH;
	return 0;
}

int sl_pin_adopt_size(const char *dir, struct bpf_map *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX + 64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else if (info.max_entries != bpf_map__max_entries(map))
		err = bpf_map__set_max_entries(map, info.max_entries);
	close(fd);
	return err;
}

int sl_pin_check(const char *dir, struct bpf_map *map, struct sl_problem *e)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX + 64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return sl_problem_sys(e, 0, -errno, "open pinned map %s: %s", path,
				      strerror(errno));
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	close(fd);
	if (err)
		return sl_problem_sys(e, 0, err, "inspect pinned map %s: %s", path, strerror(-err));
	if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map))
		return sl_problem_sys(
		    e, 0, -EEXIST,
		    "pinned map %s has another layout (from another sluice version?); "
		    "run `sluiced --teardown` first",
		    path);
	if (info.max_entries != bpf_map__max_entries(map))
		return sl_problem_sys(
		    e, 0, -EEXIST,
		    "pinned map %s holds %u entries but the config asks for %u; "
		    "capacities change only with `sluiced --teardown` and a restart",
		    path, info.max_entries, bpf_map__max_entries(map));
	return 0;
}

/* Set capacities, and refuse up front a pinned map that libbpf could not
 * reuse, with a message that says what to do. */
static int prepare_maps(struct sl_dp *dp, struct bpf_object *obj, const struct sl_config *cfg,
			struct sl_problem *e)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
	{
		const char *name = bpf_map__name(map);
		unsigned int cap = sl_dp_capacity(&cfg->agent.limits, name);
		int err;

		if (cap && bpf_map__set_max_entries(map, cap))
			return sl_problem_sys(e, 0, -EINVAL, "set capacity of map %s", name);
		if (!bpf_map__pin_path(map) && !cap)
			continue; /* .rodata and friends: not pinned */
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
	/* The pinned map, shared by every object; objs[0] created it. */
	struct bpf_map *map = bpf_object__find_map_by_name(dp->objs[0], SLUICE_MAP_SOCKHASH);

	if (!map)
		return sl_problem_sys(e, 0, -ENOENT, "%s: no %s map", bpf_program__name(prog),
				      SLUICE_MAP_SOCKHASH);
	if (bpf_prog_attach(bpf_program__fd(prog), bpf_map__fd(map), BPF_SK_MSG_VERDICT, 0))
		return sl_problem_sys(e, 0, -errno, "attach %s to %s: %s", bpf_program__name(prog),
				      SLUICE_MAP_SOCKHASH, strerror(errno));
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

static int pins_private(struct bpf_object *obj, struct sl_problem *e)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj)
	{
		const char *path = bpf_map__pin_path(map);
		int err;

		if (!path)
			continue;
		err = pin_private(path);
		if (err)
			return sl_problem_sys(e, 0, err, "chmod %s: %s", path, strerror(-err));
	}
	return 0;
}

struct dp_obj {
	const char *name;
	const void *(*elf)(size_t *sz);
	/* Fill the object's .rodata from the config; NULL if it has none. */
	int (*rodata)(void *data, size_t len, const struct sl_config *cfg);
};

static int sockops_rodata(void *data, size_t len, const struct sl_config *cfg)
{
	struct sluice_sockops_cfg *c = data;

	if (len != sizeof(*c))
		return -EINVAL;
	c->redirect_local = cfg->agent.redirect_local;
	return 0;
}

/* In load order: the first creates and pins the shared maps. */
static const struct dp_obj dp_objs[SL_DP_OBJS] = {
    {"sock_lb", sock_lb__elf_bytes, NULL},
    {"sockops", sockops__elf_bytes, sockops_rodata},
    {"redirect", redirect__elf_bytes, NULL},
};

static int load_obj(struct sl_dp *dp, const struct dp_obj *d, const struct sl_config *cfg,
		    struct sl_problem *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = d->name, .pin_root_path = dp->bpffs);
	struct bpf_object *obj;
	const void *elf;
	size_t sz;
	int err;

	elf = d->elf(&sz);
	obj = bpf_object__open_mem(elf, sz, &opts);
	if (!obj)
		return sl_problem_sys(e, 0, -errno, "open BPF object %s: %s", d->name,
				      strerror(errno));
	dp->objs[dp->n_objs++] = obj;
	err = prepare_maps(dp, obj, cfg, e);
	if (err)
		return err;
	if (d->rodata) {
		struct bpf_map *ro = bpf_object__find_map_by_name(obj, ".rodata");
		const void *init = NULL;
		size_t len = 0;
		char buf[64];

		if (ro)
			init = bpf_map__initial_value(ro, &len);
		if (!init || len > sizeof(buf))
			return sl_problem_sys(e, 0, -EINVAL, "BPF object %s: unexpected .rodata",
					      d->name);
		memcpy(buf, init, len);
		if (d->rodata(buf, len, cfg) || bpf_map__set_initial_value(ro, buf, len))
			return sl_problem_sys(e, 0, -EINVAL,
					      "BPF object %s: unexpected .rodata layout", d->name);
	}
	err = bpf_object__load(obj);
	if (err) {
		/* Without CAP_PERFMON the verifier also walks speculative paths:
		 * the socket programs then exceed its limits (E2BIG, or EFAULT). */
		int priv = err == -EPERM || err == -EACCES ||
			   ((err == -E2BIG || err == -EFAULT) && !has_cap(CAP_PERFMON));

		return sl_problem_sys(
		    e, priv, err, "load BPF object %s: %s%s", d->name, strerror(-err),
		    priv ? " (missing privileges: CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; "
			   "or the kernel's verifier refused it: see the log above)"
			 : "");
	}
	return pins_private(obj, e);
}

int sl_dp_open(struct sl_dp *dp, const struct sl_config *cfg, struct sl_problem *e)
{
	struct bpf_program *prog;
	unsigned long long cg_id = 0;
	char links[PATH_MAX + 8];
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->cgroup_fd = -1;
	dp->events_fd = -1;
	dp->settings_fd = -1;
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
	if (err)
		goto fail;
	snprintf(links, sizeof(links), "%s/links", dp->bpffs);
	if ((mkdir(dp->bpffs, 0700) && errno != EEXIST) ||
	    (mkdir(links, 0700) && errno != EEXIST)) {
		err = sl_problem_sys(e, 1, -errno, "mkdir %s: %s", links, strerror(errno));
		goto fail;
	}

	for (size_t i = 0; i < sizeof(dp_objs) / sizeof(dp_objs[0]); i++) {
		err = load_obj(dp, &dp_objs[i], cfg, e);
		if (err)
			goto fail;
	}
	for (size_t i = 0; i < dp->n_objs; i++) {
		bpf_object__for_each_program(prog, dp->objs[i])
		{
			if (dp->n_links == SL_DP_PROGS) {
				err = sl_problem_sys(e, 0, -E2BIG, "more programs than links");
				goto fail;
			}
			if (bpf_program__type(prog) == BPF_PROG_TYPE_SK_MSG)
				err = attach_sk_msg(dp, prog, e);
			else
				err = attach_one(dp, prog, cg_id, e);
			if (err)
				goto fail;
		}
	}
	for (unsigned int i = 0; i < SL_MAPS_COUNT; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(dp->objs[0], sl_map_names[i]);

		if (!map) {
			err = sl_problem_sys(e, 0, -ENOENT, "map %s missing from the BPF object",
					     sl_map_names[i]);
			goto fail;
		}
		*sl_maps_fd(&dp->maps, i) = bpf_map__fd(map);
	}
	dp->events_fd = bpf_map__fd(bpf_object__find_map_by_name(dp->objs[0], SLUICE_MAP_EVENTS));
	dp->settings_fd =
	    bpf_map__fd(bpf_object__find_map_by_name(dp->objs[0], SLUICE_MAP_SETTINGS));
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
	while (dp->n_objs)
		bpf_object__close(dp->objs[--dp->n_objs]);
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
