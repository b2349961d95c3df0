/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * This node's addresses: those of every interface in the caller's network
 * namespace (getifaddrs). A backend at none of them is on another node; the
 * agent reads them at each apply, so an address added later counts from the
 * next reload on.
 */
#ifndef SLUICE_LOCALADDR_H
#define SLUICE_LOCALADDR_H

#include <stddef.h>

#include "parse.h"

struct sl_addrs {
	struct sl_sockaddr *v; /* port 0 */
	size_t n;
};

/* 0, or a negative errno (*out then holds nothing to free). */
int sl_local_addrs(struct sl_addrs *out);
/* Is a's address (its port aside) one of s? */
int sl_addrs_has(const struct sl_addrs *s, const struct sl_sockaddr *a);
void sl_addrs_free(struct sl_addrs *s);

#endif /* SLUICE_LOCALADDR_H */
