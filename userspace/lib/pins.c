// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What sluice keeps on the bpf filesystem, as opposed to what it loads: the
 * directory (agent.bpffs), and whether a pinned map can be reused by an
 * object about to load.
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
