/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's side of the mtls outbound interception: cgroup/connect sends a
 * tunnelled connection to the agent's outbound listener (127.0.0.1 or ::1 at
 * mtls.outbound_port), and sockops records where it was going in
 * sluice_mtls_conn, keyed by the caller's end. After accept(), the agent
 * asks here with the accepted socket's peer address (getpeername).
 */
#ifndef SLUICE_MTLS_MAP_H
#define SLUICE_MTLS_MAP_H

#include <stdint.h>
#include <sys/socket.h>

#include "maps.h"
#include "parse.h"

/* Where a tunnelled connection was going, and who made it. */
struct sl_mtls_orig {
	struct sl_sockaddr backend;  /* the backend chosen: the tunnel's target */
	struct sl_sockaddr frontend; /* the frontend the caller asked for */
	uint32_t svc_id;
	uint32_t be_id;
	uint32_t identity; /* the caller's identity id (1..64; the config's index + 1) */
};

/* Look the record of the connection whose caller end is 'peer' (sockaddr_in,
 * or sockaddr_in6 with ::1 or ::ffff:127.0.0.1) up in m->mtls_conn, and
 * delete it: each record is read once. 0, -ENOENT when there is none (not a
 * tunnelled connection, or its record aged out), -EAFNOSUPPORT, or another
 * negative errno. */
int sl_mtls_lookup(const struct sl_maps *m, const struct sockaddr *peer, struct sl_mtls_orig *out);

#endif /* SLUICE_MTLS_MAP_H */
