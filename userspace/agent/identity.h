/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Identities and policy, the agent's side: the maps that name callers
 * (cgroup ids, the ipcache, identity names, the local backends the TC
 * program guards), and the audit of the datapath's policy decisions.
 */
#ifndef SLUICE_AGENT_IDENTITY_H
#define SLUICE_AGENT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "maps.h"

struct sl_ident {
	const struct sl_maps *maps;
	int settings_fd;
	char cgroot[4096]; /* the cgroup2 mount, for cgroup id -> path */
	int pending;	   /* some identity cgroup did not exist yet: retry */
	struct cg_path {
		uint64_t id;
		char path[SL_CGROUP_PATH_LEN];
	} * paths;
	size_t n_paths, cap_paths;
	uint64_t scanned_ns; /* last walk of the cgroup tree */
	struct sl_audit *audit;
};

/* Open the audit log (a failure is logged; decisions still reach the
 * monitor). */
int sl_ident_init(struct sl_ident *x, const struct sl_maps *maps, int settings_fd,
		  const struct sl_config *cfg);
void sl_ident_close(struct sl_ident *x);

/* Make the identity maps say what cfg (the effective config) says. st: the maps' services as
 * they are now (agent.h, applied_st), or NULL: read from the maps when needed. 0 or -errno;
 * cgroups that do not exist yet are retried by sl_ident_tick. */
int sl_ident_sync(struct sl_ident *x, const struct sl_config *cfg, const struct sl_state *st);

/* Every second: cgroups that appeared, and the audit log's drop summary. */
void sl_ident_tick(struct sl_ident *x, const struct sl_config *cfg);

/* One policy decision from the ring buffer: to the audit log, and as a
 * JSON line (malloc'd, newline-terminated) for the monitor. */
char *sl_ident_audit(struct sl_ident *x, const struct sl_config *cfg,
		     const struct sluice_audit_event *a);

#endif /* SLUICE_AGENT_IDENTITY_H */
