/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath's lifecycle: load the skeleton (reusing pinned maps), attach
 * or adopt the cgroup links, pin everything, and tear it all down.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <limits.h>
#include <stddef.h>

#include "config.h"
#include "maps.h"

#define SL_DP_PROGS 16
#define SL_DP_OBJS  3

struct bpf_object;
struct bpf_link;

struct sl_dp {
	struct bpf_object *objs[SL_DP_OBJS]; /* from the embedded skeletons */
	size_t n_objs;
	struct bpf_link *links[SL_DP_PROGS];
	size_t n_links;
	int cgroup_fd;
	int adopted; /* pinned state existed and was taken over */
	char bpffs[PATH_MAX];
	char cgroup[PATH_MAX];
	struct sl_maps maps; /* owned by objs[0] */
	int events_fd;	     /* the sluice_events ring buffer, owned by objs[0] */
	int settings_fd;     /* sluice_settings, owned by objs[0] */
};

/* Is path on a bpf filesystem? */
int sl_is_bpffs(const char *path);

/* A map pinned under dir with map's name must have map's type, key and value
 * sizes and capacity, or libbpf could not reuse it: 0 when it does or when
 * nothing is pinned, -EEXIST with what to do otherwise. */
struct bpf_map;
/* Give map the capacity of its pin under dir, if there is one. 0 or -errno. */
int sl_pin_adopt_size(const char *dir, struct bpf_map *map);
int sl_pin_check(const char *dir, struct bpf_map *map, struct sl_problem *e);

/* The cgroup2 mount point, from /proc/mounts. */
int sl_find_cgroup2(char *out, size_t len);

/* The id of the cgroup v2 directory at path (its inode, as BPF sees it). 0 or -errno. */
int sl_cgroup_id(const char *path, unsigned long long *id);

/* Make sure 'dir' can be created on a bpf filesystem, mounting bpffs at
 * /sys/fs/bpf when needed. */
int sl_ensure_bpffs(const char *dir, struct sl_problem *e);

/* Load, attach or adopt, pin. cfg->cgroup must be resolved. */
int sl_dp_open(struct sl_dp *dp, const struct sl_config *cfg, struct sl_problem *e);
/* Close our handles; pinned maps and links stay, traffic keeps flowing. */
void sl_dp_close(struct sl_dp *dp);

/* Detach every pinned link under bpffs and remove every pin. */
int sl_dp_teardown(const char *bpffs, struct sl_problem *e);

/* Capacities the maps are created with for these limits (by map name). */
unsigned int sl_dp_capacity(const struct sl_limits *l, const char *map);

#endif /* SLUICE_DATAPATH_H */
