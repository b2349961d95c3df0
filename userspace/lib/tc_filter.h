/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sluice's clsact filters on one interface (tc_filter.c), for tc.c. */
#ifndef SLUICE_TC_FILTER_H
#define SLUICE_TC_FILTER_H

#include "tc.h"

/* sluice's two tc programs as this process loaded them, by enum sluice_tc_dir:
 * fds to attach, ids to know them by. */
struct sl_tc_progs {
	int fd[SLUICE_TC_DIR__MAX];
	__u32 id[SLUICE_TC_DIR__MAX];
};

/* Attach (or replace in place) both programs on one interface, creating the
 * clsact qdisc if needed; refuses to replace another program's filter at
 * sluice's slot. 0, or -errno with e filled in. Logs what it did. */
int sl_tc_filter_attach(const struct sl_tc_progs *p, int ifindex, const char *name,
			struct sl_problem *e);

/* Remove sluice's filters from both hooks of an interface (p, which may be
 * NULL, names programs known to be sluice's; others are recognised by name).
 * An interface gone meanwhile is not an error. Logs what it did, with why. */
int sl_tc_filter_detach(const struct sl_tc_progs *p, int ifindex, const char *name, const char *why,
			struct sl_problem *e);

#endif /* SLUICE_TC_FILTER_H */
