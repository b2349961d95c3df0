/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath's lifecycle: load the skeletons (reusing pinned maps of the
 * same ABI version), attach or adopt the cgroup links, pin everything, and
 * tear it all down.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <limits.h>
#include <stddef.h>

#include "config.h"
#include "maps.h"
#include "pins.h" /* sl_ensure_bpffs, sl_pin_check, sl_abi_check, ... */

#define SL_DP_PROGS 16

struct bpf_link;
/* The skeletons (build/<name>.skel.h), which only datapath.c includes. */
struct sock_lb;
struct sockops;
struct redirect;
struct sl_sd;

struct sl_dp {
	struct sock_lb *sock_lb; /* loaded first: creates and pins the shared maps */
	struct sockops *sockops;
	struct redirect *redirect;
	struct bpf_link *links[SL_DP_PROGS];
	size_t n_links;
	int cgroup_fd;
	int adopted; /* pinned state existed and was taken over */
	char bpffs[PATH_MAX];
	char cgroup[PATH_MAX];
	struct sl_maps maps; /* owned by sock_lb */
	int events_fd;	     /* the sluice_events ring buffer, owned by sock_lb */
	int settings_fd;     /* sluice_settings, owned by sock_lb */
	int spans_fd;	     /* the sluice_spans ring buffer (traced connections), ditto */
	struct sl_sd *sd;    /* socket iterators (sockdestroy.h); NULL: the kernel lacks them */
};

/* The cgroup2 mount point, from /proc/mounts. */
int sl_find_cgroup2(char *out, size_t len);

/* The id of the cgroup v2 directory at path (its inode, as BPF sees it). 0 or -errno. */
int sl_cgroup_id(const char *path, unsigned long long *id);

/* Load, attach or adopt, pin. cfg->cgroup must be resolved. */
int sl_dp_open(struct sl_dp *dp, const struct sl_config *cfg, struct sl_problem *e);
/* Close our handles; pinned maps and links stay, traffic keeps flowing. */
void sl_dp_close(struct sl_dp *dp);

/* Detach every pinned link under bpffs and remove every pin. */
int sl_dp_teardown(const char *bpffs, struct sl_problem *e);

/* The capacity a map is created with for these limits (maps.def); 0: the
 * BPF definition's. */
unsigned int sl_dp_capacity(const struct sl_limits *l, enum sluice_map map);

#endif /* SLUICE_DATAPATH_H */
