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
#include <linux/bpf.h> /* struct bpf_spin_lock */
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
/* agent.limits.revnat's default. Unused since translations moved into the
 * sockets (sluice_revnat is socket storage); the key is still accepted. */
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
#define SLUICE_ZONE_LEN	  32
/* Subsets a service's split can name. */
#define SLUICE_MAX_SPLIT 8

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
_Static_assert(sizeof(union sluice_addr) == 16, "addr size");

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

/* One view of a service: the whole service, or one subset of its split.
 * Its backends are slots [slot_start, slot_start + slot_count) of the
 * live generation; its table, when it has one, is sluice_tables at
 * (svc_id, gen, view index). */
struct sluice_view {
	__u16 slot_start;
	__u16 slot_count;
	/* Positions in the view's table: the Maglev table (maglev), the weighted
	 * sequence (random and round_robin with unequal weights), or 0 (no
	 * table: slots are picked directly). The table map holds two positions
	 * per __u64 entry: SLUICE_TABLE_ENTRIES and SLUICE_TABLE_ID. */
	__u32 table_m;
	__u8 pct_end; /* split: views take new connections with r in [prev pct_end, pct_end) */
	__u8 pad;
	/* locality: prefer_zone: the view's first zone_count slots are the
	 * backends in agent.zone, its zone view, tried first; its table (the
	 * view's lb over those slots alone) is sluice_tables at view index
	 * SLUICE_MAX_SPLIT + the view's, with zone_table_m entries. 0 = none. */
	__u16 zone_count;
	__u32 zone_table_m;
};
_Static_assert(sizeof(struct sluice_view) == 16, "view size");

/* Service flags. */
#define SLUICE_SVC_F_OUTLIER	  0x1 /* outlier_detection is on */
#define SLUICE_SVC_F_POLICY	  0x2 /* the service has a policy: check callers */
#define SLUICE_SVC_F_DEFAULT_DENY 0x4 /* ... and refuses those it does not name */
#define SLUICE_SVC_F_PREFER_ZONE  0x8 /* locality: prefer_zone (the views' zone_count) */

/*
 * sluice_services value. Replaced whole with one update (a no-prealloc hash,
 * so readers see either the old or the new value): 'gen' selects which
 * generation of slots and tables is live; the rest is the service's
 * datapath settings.
 */
struct sluice_service {
	__u32 count;		  /* live slots in generation 'gen' (all backends, every view) */
	__u8 lb;		  /* enum sluice_lb */
	__u8 gen;		  /* 0 or 1 */
	__u8 n_views;		  /* 1, or the number of split subsets */
	__u8 flags;		  /* SLUICE_SVC_F_* */
	__u32 max_connections;	  /* circuit_breaker; 0 = unlimited */
	__u32 rate_per_sec;	  /* rate_limit; 0 = off */
	__u32 rate_burst;	  /* rate_limit burst, >= 1 when rate_per_sec is set */
	__u32 connect_timeout_ms; /* TCP_USER_TIMEOUT during the SYN phase; 0 = off */
	__u32 idle_timeout_s;	  /* keepalive once established; 0 = off */
	__u32 affinity_ms;	  /* client affinity timeout; 0 = off */
	__u32 ejection_base_ms;	  /* outlier_detection.base_ejection_time */
	__u16 ejection_failures;  /* outlier_detection.consecutive_failures */
	__u8 ejection_max_pct;	  /* outlier_detection.max_ejection_percent */
	__u8 pad;
	/* policy: identity id i is bit i - 1; deny wins over allow, and an
	 * identity in neither (or none: id 0) gets the default. */
	__u64 allow_mask;
	__u64 deny_mask;
	struct sluice_view views[SLUICE_MAX_SPLIT];
	__u8 mtls; /* enum sluice_mtls */
	__u8 pad_mtls[7];
};
_Static_assert(sizeof(struct sluice_service) == 64 + 16 * SLUICE_MAX_SPLIT, "service size");

/* A service's mtls (sluice.yaml(5) MTLS). */
enum sluice_mtls {
	SLUICE_MTLS_OFF = 0,
	SLUICE_MTLS_PERMISSIVE = 1, /* tunnel callers with a certificate, plaintext the others */
	SLUICE_MTLS_STRICT = 2,	    /* tunnel, or refuse at connect(); drop plaintext at TC */
};

/* Identities: ids 1..SLUICE_MAX_IDENTITIES, 0 = unknown. */
#define SLUICE_MAX_IDENTITIES 64
/* Cgroup levels below the root that are searched for an identity. */
#define SLUICE_CGROUP_DEPTH 16

/* Does svc's policy refuse the caller with this identity (0 = unknown)? Deny
 * wins, then allow, then the default. One rule for the connect hooks, TC and
 * the agent's mtls inbound check. */
static inline int sluice_policy_denies(const struct sluice_service *svc, __u32 identity)
{
	__u64 bit = identity && identity <= SLUICE_MAX_IDENTITIES ? 1ULL << (identity - 1) : 0;

	if (bit & svc->deny_mask)
		return 1;
	if (bit & svc->allow_mask)
		return 0;
	return !!(svc->flags & SLUICE_SVC_F_DEFAULT_DENY);
}

/* sluice_ipcache key (LPM trie): an address prefix; IPv4 as ::ffff:a.b.c.d
 * with the prefix length + 96. */
struct sluice_ipcache_key {
	__u32 prefixlen;
	__u8 addr[16];
};
_Static_assert(sizeof(struct sluice_ipcache_key) == 20, "ipcache key size");

/* sluice_identities value (array, by identity id): its name, for the CLI. */
struct sluice_identity_info {
	char name[SLUICE_NAME_LEN];
};
_Static_assert(sizeof(struct sluice_identity_info) == SLUICE_NAME_LEN, "identity info size");

#ifndef SLUICE_DEFAULT_IPCACHE
#define SLUICE_DEFAULT_IPCACHE 16384
#endif
#ifndef SLUICE_DEFAULT_CGROUP_IDS
#define SLUICE_DEFAULT_CGROUP_IDS 4096
#endif

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

/* A view's table of m positions is an array of SLUICE_TABLE_ENTRIES(m) __u64: position p
 * is the backend id SLUICE_TABLE_ID(entry p / 2, p) (low half for even p). An array map
 * rounds each value up to 8 bytes, so one __u32 per entry would take twice the memory. */
#define SLUICE_TABLE_ENTRIES(m)	  (((m) + 1) / 2)
#define SLUICE_TABLE_ID(v, p)	  ((__u32)((p)&1 ? (__u64)(v) >> 32 : (__u64)(v)))
#define SLUICE_TABLE_PAIR(lo, hi) ((__u64)(lo) | (__u64)(hi) << 32)

/* sluice_tables key (hash of maps): one view's table for one generation. */
struct sluice_table_key {
	__u32 svc_id;
	__u8 gen;
	__u8 view;
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_table_key) == 8, "table key size");

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
	__u32 flags;		    /* SLUICE_BE_F_* */
	char zone[SLUICE_ZONE_LEN]; /* its zone label, for the CLI; the datapath reads the views */
};
_Static_assert(sizeof(struct sluice_backend) == 96, "backend size");

/* The backend's address is none of this node's (read at each apply): a
 * connection to it goes through the mtls tunnel. Set only for backends of
 * services whose mtls is not off. */
#define SLUICE_BE_F_REMOTE 0x1

/* sluice_backend_stats value (per-CPU), keyed by backend id. */
struct sluice_backend_stats {
	__u64 connections;	/* times this backend was chosen at connect/sendmsg */
	__u64 connect_failures; /* TCP connects that ended in SYN_SENT (refused, timed out) */
	__u64 sent_bytes;	/* bytes the backend acknowledged, counted at close */
	__u64 received_bytes;	/* bytes received from the backend, counted at close */
	__u64 retransmits;	/* segments retransmitted, counted at close */
};
_Static_assert(sizeof(struct sluice_backend_stats) == 40, "backend stats size");

/*
 * Ids are reused: a backend or service id freed by a removal goes to the
 * next one added. Sockets outlive that: a connection tagged with the old
 * backend's id can close, fail or succeed long after its id went to another
 * backend. So each id's run-time state carries a generation, which the agent
 * bumps whenever it (re)assigns the id, resetting the rest of that state.
 * The generation and the active-connection count share one 64-bit word, so
 * one atomic add both counts a connection and says which generation it was
 * counted in: the tag keeps that generation, and a later -1 that lands on
 * another generation is undone at once (see bpf/lib/active.h). A tag whose
 * generation is no longer the id's charges nothing: no count, no failure,
 * no ejection, no bytes.
 *
 * The word: active connections in the high 32 bits (signed), the
 * generation in the low 32 bits. A count going below 0 borrows from nothing
 * (the carry leaves the top), so the generation is never disturbed.
 */
#define SLUICE_RT_ONE (1ULL << 32) /* one connection, in an active_gen word */

static inline __s64 sluice_rt_active(__u64 active_gen)
{
	return (__s32)(active_gen >> 32);
}

static inline __u32 sluice_rt_gen(__u64 active_gen)
{
	return (__u32)active_gen;
}

/*
 * sluice_backend_rt value (shared array, atomics), keyed by backend id: what
 * the datapath decides with, as opposed to what it counts.
 */
struct sluice_backend_rt {
	/* Open TCP connections (+1 when connect() is given this backend, -1
	 * when that socket closes by any path, or is released before its SYN)
	 * and the id's generation: see SLUICE_RT_ONE. Read by least_conn. */
	__u64 active_gen;
	__u64 ejected_until_ns; /* outlier ejection ends (bpf_ktime_get_ns); 0 = never ejected */
	__u64 ejected_at_ns;	/* when the last ejection began */
	__u32 failures;		/* consecutive failed connects; a success resets it */
	__u32 times_ejected;	/* ejections in a row; scales the ejection time */
};
_Static_assert(sizeof(struct sluice_backend_rt) == 32, "backend rt size");

/* Longest outlier ejection, whatever times_ejected says. */
#define SLUICE_MAX_EJECTION_NS (300ULL * 1000000000ULL)

/* sluice_svc_rt value (shared array), keyed by service id. */
struct sluice_svc_rt {
	struct bpf_spin_lock lock; /* guards tat_ns */
	__u32 pad;
	/* rate_limit as GCRA: the theoretical arrival time of the next
	 * connection; one is admitted while tat_ns - now <= burst intervals. */
	__u64 tat_ns;
	/* Open TCP connections of the service and the id's generation
	 * (atomic; see SLUICE_RT_ONE). */
	__u64 active_gen;
};
_Static_assert(sizeof(struct sluice_svc_rt) == 24, "svc rt size");

/* Log2 histograms of microseconds: bucket i counts values in [2^i, 2^(i+1))
 * us, bucket 0 also what is below 1 us; values of 2^SLUICE_HIST_BUCKETS us
 * and more go to the last bucket's overflow. */
#define SLUICE_HIST_BUCKETS 32 /* a power of two: the datapath masks with it */
struct sluice_hist {
	__u64 buckets[SLUICE_HIST_BUCKETS];
	__u64 overflow;
	__u64 sum_us;
};
_Static_assert(sizeof(struct sluice_hist) == 8 * (SLUICE_HIST_BUCKETS + 2), "hist size");

/* sluice_svc_hist value (per-CPU), keyed by service id. */
struct sluice_svc_hist {
	struct sluice_hist connect; /* SYN sent -> established */
	struct sluice_hist rtt;	    /* smoothed RTT at close */
};
_Static_assert(sizeof(struct sluice_svc_hist) == 2 * 8 * (SLUICE_HIST_BUCKETS + 2),
	       "svc hist size");

/* One socket's translation: the backend it was sent to, and the frontend it
 * asked for, which getpeername() and recvmsg() show instead. The addresses
 * are of 'family' (a v4-mapped frontend of an IPv6 socket is kept as IPv4). */
struct sluice_revnat {
	union sluice_addr be_addr;
	union sluice_addr fe_addr;
	__u16 be_port; /* network order */
	__u16 fe_port; /* network order */
	__u8 family;   /* 0: the entry is free */
	__u8 pad[3];
};
_Static_assert(sizeof(struct sluice_revnat) == 40, "revnat size");

/* Translations a UDP socket keeps (an unconnected one may talk to several
 * frontends); past that, the socket's own oldest is replaced. */
#ifndef SLUICE_REVNAT_SLOTS
#define SLUICE_REVNAT_SLOTS 4
#endif

/*
 * sluice_revnat value (socket storage): a UDP socket's translations. Kept
 * in the socket, not in a shared table: it is freed with the socket, and
 * no other socket can push it out. (A TCP socket has one backend; its
 * translation is in its sluice_sk_backend tag.)
 */
struct sluice_sk_revnat {
	struct sluice_revnat slot[SLUICE_REVNAT_SLOTS];
	__u32 next; /* the slot the next new translation takes, modulo SLUICE_REVNAT_SLOTS */
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_sk_revnat) == 40 * SLUICE_REVNAT_SLOTS + 8, "sk revnat size");

/* sluice_sk_backend value (socket storage): the backend a TCP socket's
 * connect() was given, and where its lifecycle is. */
struct sluice_sk_backend {
	__u32 be_id;
	__u32 svc_id;
	__u32 be_gen;		  /* the generations of be_id and svc_id the connection */
	__u32 svc_gen;		  /* was counted in: see SLUICE_RT_ONE */
	__u64 start_ns;		  /* SYN sent; then established */
	__u32 flags;		  /* SLUICE_SK_F_* */
	__u32 user_timeout;	  /* the socket's own TCP_USER_TIMEOUT, put back once established */
	__u32 connect_timeout_ms; /* the service's timeouts, copied at connect() */
	__u32 idle_timeout_s;
	struct sluice_revnat revnat; /* for getpeername() */
	__u32 identity; /* the caller's identity (0 = unknown): its edge counts a failed connect */
	__u32 pad;
	__u64 connect_ns; /* SYN sent -> established (a traced span's connect time) */
};
_Static_assert(sizeof(struct sluice_sk_backend) == 96, "sk backend size");

#define SLUICE_SK_F_ESTABLISHED 0x1
#define SLUICE_SK_F_RESERVED	0x2 /* counted in the service's and backend's active */
#define SLUICE_SK_F_SYN		0x4 /* TCP_CONNECT_CB seen: the close will be reported */
#define SLUICE_SK_F_MTLS	0x8 /* sent to the mtls outbound listener (sluice_mtls_sk) */
/* Tracing (bpf/lib/trace.h): established while tracing was on, and the first
 * payload not looked at yet; TRACED: the socket has its sluice_sk_trace. */
#define SLUICE_SK_F_TRACE_PENDING 0x100
#define SLUICE_SK_F_TRACED	  0x200

/* Datapath events, carried by the sluice_events ring buffer. */
enum sluice_event_type {
	SLUICE_EV_OPEN = 1,	    /* a balanced TCP connection is established */
	SLUICE_EV_CLOSE = 2,	    /* ... and closed */
	SLUICE_EV_CONNECT_FAIL = 3, /* ... or never got established */
	SLUICE_EV_NO_BACKEND = 4,   /* connect()/sendmsg() refused: no usable backend */
	SLUICE_EV_REJECT = 5,	    /* connect() refused by a limit (reason says which) */
	SLUICE_EV_EJECT = 6,  /* outlier detection ejected a backend (duration: for how long) */
	SLUICE_EV_HEALTH = 7, /* the agent's probes changed a backend's state (reason) */
	SLUICE_EV_POLICY = 8, /* a policy decision (struct sluice_audit_event) */
	SLUICE_EV__MAX,
};

enum sluice_event_reason {
	SLUICE_REASON_NONE = 0,
	SLUICE_REASON_FIN = 1,		   /* CLOSE: orderly */
	SLUICE_REASON_RESET = 2,	   /* CLOSE: aborted (RST either way) */
	SLUICE_REASON_REFUSED = 3,	   /* CONNECT_FAIL: RST to the SYN */
	SLUICE_REASON_TIMEOUT = 4,	   /* CONNECT_FAIL: no answer */
	SLUICE_REASON_OTHER = 5,	   /* CONNECT_FAIL: another error */
	SLUICE_REASON_CIRCUIT_BREAKER = 6, /* REJECT: circuit_breaker.max_connections */
	SLUICE_REASON_RATE_LIMIT = 7,	   /* REJECT: rate_limit */
	SLUICE_REASON_HEALTHY = 8,	   /* HEALTH */
	SLUICE_REASON_UNHEALTHY = 9,	   /* HEALTH */
	SLUICE_REASON_CONNECT = 10,	   /* POLICY: enforced at connect() */
	SLUICE_REASON_SENDMSG = 11,	   /* POLICY: at sendmsg() */
	SLUICE_REASON_TC_INGRESS = 12,	   /* POLICY: at TC ingress, for a local backend */
	SLUICE_REASON__MAX,
};

struct sluice_event {
	__u64 ts_ns;	   /* bpf_ktime_get_ns() */
	__u64 cookie;	   /* socket cookie */
	__u64 duration_ns; /* OPEN: connect time; CLOSE: lifetime; FAIL: time to fail */
	__u64 bytes_sent;  /* CLOSE */
	__u64 bytes_received;
	union sluice_addr src; /* the client socket's address, if known */
	union sluice_addr dst; /* the backend (NO_BACKEND: the frontend) */
	__u32 svc_id;
	__u32 be_id;   /* 0 for NO_BACKEND */
	__u32 srtt_us; /* CLOSE */
	__u32 retrans; /* CLOSE */
	__u16 sport;   /* host order */
	__u16 dport;   /* host order */
	__u8 type;     /* enum sluice_event_type */
	__u8 family;
	__u8 proto;
	__u8 reason; /* enum sluice_event_reason */
};
_Static_assert(sizeof(struct sluice_event) == 96, "event size");

#ifndef SLUICE_LC_SCAN_MAX
#define SLUICE_LC_SCAN_MAX 16
#endif

/* A policy decision: the event (type SLUICE_EV_POLICY, reason = the
 * enforcement point; src the caller, dst the frontend or local backend),
 * then who asked. */
struct sluice_audit_event {
	struct sluice_event ev;
	__u64 cgroup_id; /* the caller's cgroup; 0 at TC */
	__u32 pid;	 /* thread group id; 0 at TC */
	__u32 uid;
	__u32 identity; /* 0: unknown */
	__u8 denied;
	__u8 pad[3];
	char comm[16];
};
_Static_assert(sizeof(struct sluice_audit_event) == 136, "audit event size");

#ifndef SLUICE_RINGBUF_BYTES
#define SLUICE_RINGBUF_BYTES (256 * 1024)
#endif

/* sluice_settings value (one entry): knobs the agent flips at run time. */
struct sluice_settings {
	__u32 events; /* non-zero: emit events (someone is watching `sluicectl monitor`) */
	/* least_conn scans a view of up to this many backends exactly and uses
	 * the power of two choices above it; 0 = SLUICE_LC_SCAN_MAX. */
	__u32 lc_scan_max;
	__u32 audit_all; /* non-zero: audit allowed connections too (agent.audit: all) */
	__u32 pad;
	/* mtls: identity id i is bit i - 1 when the agent holds a valid
	 * certificate for it; 0 = none. */
	__u64 mtls_valid_ids;
	/* mtls.outbound_port (host order): tunnelled connections are sent to
	 * 127.0.0.1 or ::1 at it; 0 = no tunnel (strict refuses, permissive
	 * sends plaintext). */
	__u16 mtls_outbound_port;
	__u16 pad_mtls[3];
	/* The agent's network namespace (its cookie): only callers in it reach
	 * its loopback listener, so only they are tunnelled; 0 = any. */
	__u64 mtls_netns;
	/* tracing: non-zero when a tracing block is configured (the datapath
	 * looks at the first payload of balanced TCP sockets only then). */
	__u32 trace_on;
	/* tracing.sample for connections without a traceparent: traced when
	 * bpf_get_prandom_u32() < trace_sample, always when it is 0xffffffff. */
	__u32 trace_sample;
	/* agent.zone's id (the zone ids the agent gave backends' zones); 0 = none. */
	__u32 zone;
	__u32 pad_zone;
};
_Static_assert(sizeof(struct sluice_settings) == 56, "settings size");

/* sluice_global_stats value (per-CPU, one entry). */
struct sluice_global_stats {
	__u64 events_lost;	/* ring buffer full: the event was dropped */
	__u64 redirected_bytes; /* sent socket to socket by sk_msg */
	__u64 redirected_conns; /* connections whose two ends were paired */
	__u64 audit_suppressed; /* audit events over this CPU's budget (sluice_audit_budget) */
	__u64 revnat_failures;	/* a translation could not be stored (no memory for the
				 * socket's storage): that socket sees the backend's address */
};
_Static_assert(sizeof(struct sluice_global_stats) == 40, "global stats size");

/*
 * Audit events are a budget per CPU: denials are caused by unprivileged
 * callers, who must not be able to flood the ring buffer and keep the agent
 * busy draining it. A token bucket (GCRA, like rate_limit) lets
 * SLUICE_AUDIT_BURST events through at once and SLUICE_AUDIT_RATE a second
 * after that, on each CPU; what is over is counted in audit_suppressed. The
 * verdict itself never depends on it.
 */
#ifndef SLUICE_AUDIT_RATE
#define SLUICE_AUDIT_RATE 200
#endif
#ifndef SLUICE_AUDIT_BURST
#define SLUICE_AUDIT_BURST 400
#endif

/* sluice_audit_budget value (per-CPU, one entry). */
struct sluice_audit_budget {
	__u64 tat_ns; /* theoretical arrival time of the next event */
};
_Static_assert(sizeof(struct sluice_audit_budget) == 8, "audit budget size");

/* sluice_sockhash key: one established TCP socket of this node, as seen from
 * itself. The netns cookie keeps apart sockets whose addresses repeat in
 * other namespaces: only peers in the same netns are paired. */
struct sluice_sock_key {
	union sluice_addr local;
	union sluice_addr remote;
	__u64 netns;
	__u16 local_port;  /* host order */
	__u16 remote_port; /* host order */
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sluice_sock_key) == 48, "sock key size");

#ifndef SLUICE_DEFAULT_SOCKHASH
#define SLUICE_DEFAULT_SOCKHASH 65536
#endif

/* Read-only settings of the sockops object, fixed when it is loaded. */
struct sluice_sockops_cfg {
	__u32 redirect_local; /* agent.redirect: local */
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_sockops_cfg) == 8, "sockops cfg size");

/* sluice_svc_stats value (per-CPU), keyed by service id. */
struct sluice_svc_stats {
	__u64 rejected[SLUICE_DROP__MAX]; /* by enum sluice_drop_reason */
};
_Static_assert(sizeof(struct sluice_svc_stats) == 8 * SLUICE_DROP__MAX, "svc stats size");

/* sluice_affinity key (LRU): one client of one service. A client is its
 * network namespace and, when the socket is bound, its address. */
struct sluice_affinity_key {
	__u64 netns; /* bpf_get_netns_cookie() */
	union sluice_addr client;
	__u32 svc_id;
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_affinity_key) == 32, "affinity key size");

struct sluice_affinity {
	__u64 last_ns; /* last connection given this backend */
	__u32 be_id;
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_affinity) == 16, "affinity size");

#ifndef SLUICE_DEFAULT_AFFINITY
#define SLUICE_DEFAULT_AFFINITY 65536
#endif

/* The original destination of a connection sent to the agent's outbound
 * listener (struct sluice_mtls_orig), and who made it. */
struct sluice_mtls_orig {
	union sluice_addr addr;	   /* the backend chosen */
	union sluice_addr fe_addr; /* the frontend the caller asked for */
	__u16 port;		   /* the backend's, network order */
	__u16 fe_port;		   /* network order */
	__u8 family;		   /* of addr and fe_addr (a v4-mapped caller: IPv4) */
	__u8 pad[3];
	__u32 svc_id;
	__u32 be_id;
	__u32 identity; /* the caller's identity id (1..64) */
	__u32 pad2;
};
_Static_assert(sizeof(struct sluice_mtls_orig) == 56, "mtls orig size");

/* sluice_mtls_conn key (LRU): the caller's end of a tunnelled connection, as
 * the agent sees it from the accepted socket (getpeername): 127.0.0.1 or
 * ::1 (a v4-mapped caller: 127.0.0.1) and its port. */
struct sluice_mtls_conn_key {
	union sluice_addr addr;
	__u16 port; /* network order */
	__u8 family;
	__u8 pad;
};
_Static_assert(sizeof(struct sluice_mtls_conn_key) == 20, "mtls conn key size");

#ifndef SLUICE_DEFAULT_MTLS_CONNS
#define SLUICE_DEFAULT_MTLS_CONNS 65536
#endif

/* sluice_edges key (per-CPU hash): one caller identity calling one service. */
struct sluice_edge_key {
	__u32 identity; /* sluice_identities id of the caller's cgroup (1..64); 0 = unknown */
	__u32 svc_id;
};
_Static_assert(sizeof(struct sluice_edge_key) == 8, "edge key size");

/* sluice_edges value (per-CPU). */
struct sluice_edge_stats {
	__u64 connections;		  /* connect()/sendmsg() given a backend */
	__u64 failures;			  /* TCP connects never established (sockops) */
	__u64 rejected[SLUICE_DROP__MAX]; /* refused, by enum sluice_drop_reason */
};
_Static_assert(sizeof(struct sluice_edge_stats) == 8 * (2 + SLUICE_DROP__MAX), "edge stats size");

#ifndef SLUICE_DEFAULT_EDGES
#define SLUICE_DEFAULT_EDGES 65536
#endif

/*
 * Tracing. A traced connection ends in one struct sluice_span_rec on the
 * sluice_spans ring buffer: at its close, or when its connect() failed or
 * was refused. The agent turns it into an OTLP span.
 */
struct sluice_span_rec {
	__u8 trace_id[16]; /* the caller's (traceparent), or a new random one */
	__u8 parent_id[8]; /* traceparent's parent-id; all zero: a root span */
	__u64 start_ns;	   /* bpf_ktime_get_ns() at connect() */
	__u64 end_ns;	   /* ... at the close or the failure */
	__u64 connect_ns;  /* SYN sent -> established; 0: never established */
	__u64 cookie;	   /* socket cookie */
	__u64 bytes_sent;  /* payload bytes the caller sent (bytes_acked) */
	__u64 bytes_received;
	union sluice_addr src;	   /* the caller's address, if known */
	union sluice_addr fe_addr; /* the frontend it asked for */
	union sluice_addr be_addr; /* the backend (all zero: none was given) */
	__u32 svc_id;
	__u32 be_id;	/* 0: no backend was given */
	__u32 identity; /* the caller's identity id; 0 = unknown */
	__u32 retrans;	/* segments retransmitted */
	__u16 sport;	/* host order */
	__u16 fe_port;	/* host order */
	__u16 be_port;	/* host order */
	__u8 family;
	__u8 proto;
	__u8 reason; /* enum sluice_event_reason of the end: FIN, RESET, REFUSED, TIMEOUT, OTHER */
	__u8 drop;   /* refused at connect(): enum sluice_drop_reason + 1; 0 = not refused */
	__u8 flags;  /* SLUICE_SPAN_F_* */
	__u8 pad[3];
};
_Static_assert(sizeof(struct sluice_span_rec) == 152, "span rec size");

#define SLUICE_SPAN_F_SAMPLED	 0x1 /* the trace flags' sampled bit */
#define SLUICE_SPAN_F_PARENT	 0x2 /* trace_id/parent_id came from a traceparent */
#define SLUICE_SPAN_F_REDIRECTED 0x4 /* same-node, sent socket to socket by sk_msg */

/*
 * sluice_sk_trace value (socket storage): a traced TCP connection's trace
 * context, and the bytes that sk_msg moved socket to socket, which the TCP
 * counters sockops reads at close never see. Only traced sockets have one.
 */
struct sluice_sk_trace {
	__u8 trace_id[16];
	__u8 parent_id[8];
	__u64 redir_sent; /* payload bytes sk_msg redirected from this socket */
	/* Its own key in sluice_sockhash, once it is in sluice_trace_redir
	 * (linked): where its peer counts the bytes it redirects to it. */
	struct sluice_sock_key key;
	__u8 flags; /* SLUICE_SPAN_F_* */
	__u8 linked;
	__u8 pad[6];
};
_Static_assert(sizeof(struct sluice_sk_trace) == 88, "sk trace size");

/* The first payload bytes of a balanced socket searched for a traceparent. */
#ifndef SLUICE_TRACE_SCAN_BYTES
#define SLUICE_TRACE_SCAN_BYTES 512
#endif

/* sluice_trace_scratch value (per-CPU array of 2): a buffer for the first
 * payload bytes, with room for the longest header line the scan can start
 * (indexes stay inside without masking). Two, for a program that interrupts
 * another on the same CPU (a softirq send during a process's). */
struct sluice_trace_scratch {
	__u8 buf[2 * SLUICE_TRACE_SCAN_BYTES];
	__u32 depth; /* entry 0's: how many programs on this CPU use a buffer */
	__u32 pad;
};
_Static_assert(sizeof(struct sluice_trace_scratch) == 2 * SLUICE_TRACE_SCAN_BYTES + 8,
	       "trace scratch size");

/* Traced same-node connections whose redirected bytes are counted at once;
 * past that, the oldest's received bytes are those TCP carried only. */
#ifndef SLUICE_TRACE_REDIR_ENTRIES
#define SLUICE_TRACE_REDIR_ENTRIES 4096
#endif

#ifndef SLUICE_SPANS_RINGBUF_BYTES
#define SLUICE_SPANS_RINGBUF_BYTES (1 << 20)
#endif

/*
 * Closing sockets stuck on dead backends (bpf/sock_destroy.bpf.c). The
 * agent lists the dead backends in that object's own map, sluice_dead (not
 * pinned, so no part of the pinned ABI), runs its socket iterators once,
 * and reads back how many sockets each entry closed (a __u64 value). A key
 * is a backend as a socket's translation records it: the backend and the
 * frontend it was given for, of 'family' (a v4-mapped frontend is IPv4).
 */
struct sluice_dead_key {
	union sluice_addr be_addr;
	union sluice_addr fe_addr;
	__u16 be_port; /* network order */
	__u16 fe_port; /* network order */
	__u8 family;
	__u8 proto; /* enum sluice_proto */
	__u8 pad[2];
};
_Static_assert(sizeof(struct sluice_dead_key) == 40, "dead key size");

/* Dead backends one iterator run looks for; more are done in several runs. */
#ifndef SLUICE_DEAD_MAX
#define SLUICE_DEAD_MAX 1024
#endif

/* Every pinned map, by id; the list is maps.def. */
enum sluice_map {
#define SLUICE_MAP(id, ...) id,
#include "maps.def"
#undef SLUICE_MAP
	SLUICE_MAP__COUNT,
};

/*
 * The version of this file's layouts and of the map list, as pinned state
 * carries it: sluice_abi, an array of one frozen __u32 entry that the agent
 * creates and pins beside the maps. A sluiced adopts pinned state only of its
 * own version; pins without the stamp predate it and are version 1. Bump it
 * whenever a key, value, map type or map meaning changes, or a map is added
 * or removed.
 */
#define SLUICE_ABI_VERSION 3

/* TC flow metrics
 *
 * bpf/tc_flow.bpf.c counts, on the clsact hooks of the chosen interfaces,
 * packets and bytes per interface and direction, and per TCP/UDP flow.
 * Packets and bytes are what the wire carries: a GSO packet counts as its
 * segments, each with its own headers, and bytes are whole Ethernet frames
 * (14-byte header included; no FCS, preamble or padding to 60 bytes).
 */
#ifndef SLUICE_TC_MAX_IFACES
#define SLUICE_TC_MAX_IFACES 1024 /* interfaces counted at once */
#endif
#ifndef SLUICE_TC_MAX_FLOWS
#define SLUICE_TC_MAX_FLOWS 65536 /* LRU: the least recently seen flow makes room */
#endif

/* Direction of a packet on an interface. */
enum sluice_tc_dir {
	SLUICE_TC_INGRESS = 0, /* received on the interface */
	SLUICE_TC_EGRESS = 1,  /* sent out of it */
	SLUICE_TC_DIR__MAX,
};

/* sluice_tc_if_stats key: one direction of one interface. */
struct sluice_tc_if_key {
	__u32 ifindex;
	__u32 dir; /* enum sluice_tc_dir */
};
_Static_assert(sizeof(struct sluice_tc_if_key) == 8, "tc if key size");

/* sluice_tc_if_stats value (per-CPU). */
struct sluice_tc_if_stats {
	__u64 packets;
	__u64 bytes;
	/* Packets of 'packets' that no flow holds: not TCP or UDP over IPv4 or
	 * IPv6 (ARP, ICMP, ...), IPv6 with extension headers, IPv4 fragments,
	 * 802.1Q tags in the frame, truncated headers, a full flow table. */
	__u64 untracked;
};
_Static_assert(sizeof(struct sluice_tc_if_stats) == 24, "tc if stats size");

/*
 * sluice_tc_flows key: one TCP or UDP flow as seen on one interface.
 * Normalised, so that both directions of a connection share one entry:
 * 'local' is this host's side of the interface (the source of an egress
 * packet, the destination of an ingress one), 'remote' the other side.
 */
struct sluice_tc_flow_key {
	union sluice_addr local;
	union sluice_addr remote;
	__u32 ifindex;
	__u16 local_port;  /* network order */
	__u16 remote_port; /* network order */
	__u8 family;	   /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 proto;	   /* enum sluice_proto */
	__u16 pad;
};
_Static_assert(sizeof(struct sluice_tc_flow_key) == 44, "tc flow key size");

/* One direction of a flow. */
struct sluice_tc_flow_dir {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct sluice_tc_flow_dir) == 16, "tc flow dir size");

/* sluice_tc_flows value. */
struct sluice_tc_flow {
	/* By enum sluice_tc_dir: ingress is remote -> local, egress the reverse. */
	struct sluice_tc_flow_dir dir[SLUICE_TC_DIR__MAX];
	__u64 first_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the first packet */
	__u64 last_ns;	/* ... at the latest packet */
	__u8 tcp_flags[SLUICE_TC_DIR__MAX]; /* OR of the SLUICE_TCP_* flags seen, by direction */
	/* enum sluice_tc_dir of the packet that opened the flow: for TCP the
	 * SYN without ACK when one was seen, else the first packet seen. */
	__u8 origin;
	__u8 pad[5];
};
_Static_assert(sizeof(struct sluice_tc_flow) == 56, "tc flow size");

/* TCP header flags, as in byte 13 of the header. */
#define SLUICE_TCP_FIN 0x01
#define SLUICE_TCP_SYN 0x02
#define SLUICE_TCP_RST 0x04
#define SLUICE_TCP_PSH 0x08
#define SLUICE_TCP_ACK 0x10

#endif /* SLUICE_ABI_H */
