/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Least privilege (README, "Running it as a node agent", Privileges): what
 * sluiced keeps once the datapath is up. */
#ifndef SLUICE_CAPS_H
#define SLUICE_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include <linux/capability.h> /* CAP_* */

/*
 * Keep only the capabilities in 'keep' (a mask of 1ULL << CAP_*): every
 * other one leaves the bounding set, and the effective and permitted sets
 * become keep & permitted; the inheritable and ambient sets are emptied.
 * Returns 0, or -errno with what failed in why.
 */
int sl_caps_keep_only(uint64_t keep, char *why, size_t len);

/* The effective set, as a mask; 0 on error. */
uint64_t sl_caps_effective(void);

/* "cap_bpf,cap_net_admin" for a mask. */
void sl_caps_format(uint64_t mask, char *buf, size_t len);

#endif /* SLUICE_CAPS_H */
