// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What sluice keeps on the bpf filesystem, as opposed to what it loads: the
 * directory (agent.bpffs), whether a pinned map can be reused by an object
 * about to load, and the ABI stamp that says which sluice made the pins.
 */
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sluice/abi.h>

#include "maps.h"
#include "pins.h"

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

/* --- the ABI stamp ------------------------------------------------------------------------- */

static void abi_path(char *out, size_t len, const char *dir)
{
	snprintf(out, len, "%s/%s", dir, sl_map_name(SLUICE_MAP_ABI));
}

/* Is any map of maps.def pinned under dir? */
static int any_pin(const char *dir)
{
	char path[PATH_MAX + 64];

	for (unsigned int id = 0; id < SLUICE_MAP__COUNT; id++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sl_map_name(id));
		if (!access(path, F_OK))
			return 1;
	}
	return 0;
}

/* The version in the stamp pinned at path: 0, -ENOENT (none), -EPROTO (not
 * a stamp), or -errno. */
static int abi_read(const char *path, __u32 *version)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), key = 0;
	int fd, err = 0;

	fd = bpf_obj_get_opts(path, &opts);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else if (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != sizeof(key) ||
		 info.value_size != sizeof(*version) || !info.max_entries)
		err = -EPROTO;
	else if (bpf_map_lookup_elem(fd, &key, version))
		err = -errno;
	close(fd);
	return err;
}

int sl_abi_check(const char *dir, struct sl_problem *e)
{
	char path[PATH_MAX + 64];
	__u32 version = 0;
	int err;

	abi_path(path, sizeof(path), dir);
	err = abi_read(path, &version);
	if (err == -ENOENT) {
		if (!any_pin(dir))
			return 0; /* nothing to adopt */
		version = 1;	  /* pinned before there was a stamp */
	} else if (err == -EPROTO) {
		return sl_problem_sys(
		    e, 1, err, "%s is not a sluice ABI stamp: run `sluiced --teardown` first",
		    path);
	} else if (err) {
		return sl_problem_sys(e, 0, err, "read the ABI stamp %s: %s", path, strerror(-err));
	}
	if (version != SLUICE_ABI_VERSION)
		return sl_problem_sys(e, 1, -EPROTO,
				      "pinned state under %s has ABI v%u, this sluiced has v%u: "
				      "run `sluiced --teardown` first",
				      dir, version, SLUICE_ABI_VERSION);
	return 0;
}

int sl_abi_stamp(const char *dir, struct sl_problem *e)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = BPF_F_RDONLY_PROG);
	__u32 key = 0, version = SLUICE_ABI_VERSION;
	char path[PATH_MAX + 64];
	int fd, err = 0;

	abi_path(path, sizeof(path), dir);
	if (!access(path, F_OK))
		return 0; /* sl_abi_check found it to be ours */
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, sl_map_name(SLUICE_MAP_ABI), sizeof(key),
			    sizeof(version), 1, &copts);
	if (fd < 0)
		return sl_problem_sys(e, 0, -errno, "create the ABI stamp %s: %s", path,
				      strerror(errno));
	/* Frozen: no one rewrites it through the pin either. */
	if (bpf_map_update_elem(fd, &key, &version, BPF_ANY) || bpf_map_freeze(fd) ||
	    bpf_obj_pin(fd, path) || chmod(path, 0600))
		err = -errno;
	close(fd);
	if (err)
		return sl_problem_sys(e, 0, err, "write the ABI stamp %s: %s", path,
				      strerror(-err));
	return 0;
}
