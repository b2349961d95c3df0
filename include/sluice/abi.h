/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The sluice ABI: keys, values, enums and limits shared by the BPF programs,
 * the agent, the CLI and the tests. This is the only copy. Every struct has
 * explicit padding and a size assertion, because the kernel, the agent and
 * the CLI all read the same bytes out of pinned maps.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Limits; a build can override any of them with -D. Runtime capacities are
 * set from the config (agent.limits) and must not exceed these. */
#ifndef SLUICE_MAX_SERVICES
#define SLUICE_MAX_SERVICES 65536
#endif
#ifndef SLUICE_MAX_BACKENDS
#define SLUICE_MAX_BACKENDS 262144
#endif
#ifndef SLUICE_MAX_BACKENDS_PER_SERVICE
#define SLUICE_MAX_BACKENDS_PER_SERVICE 1024
#endif
/* Default capacities, used when the config does not set agent.limits. */
#ifndef SLUICE_DEFAULT_SERVICES
#define SLUICE_DEFAULT_SERVICES 1024
#endif
#ifndef SLUICE_DEFAULT_BACKENDS
#define SLUICE_DEFAULT_BACKENDS 16384
#endif
#ifndef SLUICE_DEFAULT_REVNAT
#define SLUICE_DEFAULT_REVNAT 65536
#endif
/* Maglev table size: prime, at least 100 x the backend count. */
#ifndef SLUICE_MAGLEV_M_DEFAULT
#define SLUICE_MAGLEV_M_DEFAULT 16381
#endif
#ifndef SLUICE_MAGLEV_M_MAX
#define SLUICE_MAGLEV_M_MAX 131071
#endif
/* How many further slots the datapath tries when the picked backend is not
 * usable (a health or drain change the agent has not folded in yet). */
#ifndef SLUICE_PICK_RETRIES
#define SLUICE_PICK_RETRIES 4
#endif

#define SLUICE_NAME_LEN	  64
#define SLUICE_SUBSET_LEN 32

#define SLUICE_AF_INET	2  /* == AF_INET */
#define SLUICE_AF_INET6 10 /* == AF_INET6 */

enum sluice_proto {
	SLUICE_PROTO_TCP = 6,  /* == IPPROTO_TCP */
	SLUICE_PROTO_UDP = 17, /* == IPPROTO_UDP */
};

enum sluice_lb {
	SLUICE_LB_RANDOM = 0,
	SLUICE_LB_ROUND_ROBIN = 1,
	SLUICE_LB_MAGLEV = 2,
	SLUICE_LB_LEAST_CONN = 3,
	SLUICE_LB__MAX,
};

enum sluice_backend_state {
	SLUICE_BE_HEALTHY = 0,
	SLUICE_BE_UNHEALTHY = 1,
	SLUICE_BE_EJECTED = 2,
	SLUICE_BE_DRAINING = 3,
	/* Removed from its service; kept for a grace period so that a program
	 * that read the previous slot generation still finds it. */
	SLUICE_BE_REMOVED = 4,
	SLUICE_BE__MAX,
};

/* Why a connect()/sendmsg() to a frontend was not given a backend. */
enum sluice_drop_reason {
	SLUICE_DROP_NO_BACKEND = 0,
	SLUICE_DROP_CIRCUIT_BREAKER = 1,
	SLUICE_DROP_RATE_LIMIT = 2,
	SLUICE_DROP_POLICY = 3,
	SLUICE_DROP__MAX,
};

/* An address of either family: IPv4 uses the first 4 bytes, the rest zero. */
union sluice_addr {
	__u8 a8[16];
	__u32 a32[4]; /* network order */
};

/* sluice_frontends key: a service's virtual address. */
struct sluice_frontend_key {
	union sluice_addr addr;
	__u16 port; /* network order */
	__u8 proto; /* enum sluice_proto */
	__u8 family;
};
_Static_assert(sizeof(struct sluice_frontend_key) == 20, "frontend key size");

/* sluice_frontends value. */
struct sluice_frontend {
	__u32 svc_id;
};
_Static_assert(sizeof(struct sluice_frontend) == 4, "frontend size");

/*
 * sluice_services value. Replaced whole with one update (a no-prealloc hash,
 * so readers see either the old or the new value): 'gen' selects which
 * generation of slots and Maglev table is live.
 */
struct sluice_service {
	__u32 count;	/* live slots in generation 'gen' */
	__u32 maglev_m; /* Maglev table size of generation 'gen' (0 unless maglev) */
	__u8 lb;	/* enum sluice_lb */
	__u8 gen;	/* 0 or 1 */
	__u16 flags;	/* reserved, 0 */
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_service) == 16, "service size");

/* sluice_svc_info value: what the CLI and an adopting agent need to know
 * about a service and that the datapath never reads. */
struct sluice_svc_info {
	char name[SLUICE_NAME_LEN];
	struct sluice_frontend_key frontend;
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_svc_info) == 88, "svc info size");

/* sluice_slots key: slot 'slot' of generation 'gen' of service 'svc_id'. */
struct sluice_slot_key {
	__u32 svc_id;
	__u16 slot;
	__u8 gen;
	__u8 pad;
};
_Static_assert(sizeof(struct sluice_slot_key) == 8, "slot key size");

/* sluice_maglev key (hash of maps): a service's table for one generation. */
struct sluice_maglev_key {
	__u32 svc_id;
	__u32 gen;
};
_Static_assert(sizeof(struct sluice_maglev_key) == 8, "maglev key size");

/* sluice_backends value, keyed by a __u32 backend id (unique per service). */
struct sluice_backend {
	union sluice_addr addr;
	__u16 port; /* network order */
	__u8 family;
	__u8 state; /* enum sluice_backend_state */
	__u16 weight;
	__u16 pad;
	__u32 svc_id;
	char subset[SLUICE_SUBSET_LEN];
};
_Static_assert(sizeof(struct sluice_backend) == 60, "backend size");

/* sluice_backend_stats value (per-CPU), keyed by backend id. */
struct sluice_backend_stats {
	__u64 connections; /* times this backend was chosen at connect/sendmsg */
	/* Established TCP connections: +1 on this CPU at establishment, -1 on
	 * whichever CPU sees the close. Only the sum over CPUs is meaningful. */
	__s64 active;
};
_Static_assert(sizeof(struct sluice_backend_stats) == 16, "backend stats size");

/* sluice_sk_backend value (socket storage): the backend a TCP socket's
 * connect() was given. */
struct sluice_sk_backend {
	__u32 be_id;
	__u32 flags; /* SLUICE_SK_F_* */
};
_Static_assert(sizeof(struct sluice_sk_backend) == 8, "sk backend size");

#define SLUICE_SK_F_ESTABLISHED 0x1

/* sluice_svc_stats value (per-CPU), keyed by service id. */
struct sluice_svc_stats {
	__u64 rejected[SLUICE_DROP__MAX]; /* by enum sluice_drop_reason */
};

/* sluice_revnat key (LRU): one socket talking to one backend. */
struct sluice_revnat_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	union sluice_addr addr;
	__u16 port;
	__u8 family;
	__u8 pad[5];
};
_Static_assert(sizeof(struct sluice_revnat_key) == 32, "revnat key size");

/* sluice_revnat value: the frontend that socket asked for. */
struct sluice_revnat {
	union sluice_addr addr;
	__u16 port;
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_revnat) == 20, "revnat size");

/* Map pin names, also the names in the BPF object. */
#define SLUICE_MAP_FRONTENDS	 "sluice_frontends"
#define SLUICE_MAP_SERVICES	 "sluice_services"
#define SLUICE_MAP_SVC_INFO	 "sluice_svc_info"
#define SLUICE_MAP_SLOTS	 "sluice_slots"
#define SLUICE_MAP_MAGLEV	 "sluice_maglev"
#define SLUICE_MAP_BACKENDS	 "sluice_backends"
#define SLUICE_MAP_BACKEND_STATS "sluice_backend_stats"
#define SLUICE_MAP_SVC_STATS	 "sluice_svc_stats"
#define SLUICE_MAP_RR		 "sluice_rr"
#define SLUICE_MAP_REVNAT	 "sluice_revnat"
#define SLUICE_MAP_SK_BACKEND	 "sluice_sk_backend"

#endif /* SLUICE_ABI_H */
