/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The configuration: YAML (libyaml) -> validated struct sl_config. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

#include "parse.h"
#include "problem.h"

struct sl_backend_cfg {
	struct sl_sockaddr addr;
	uint16_t weight;
	char subset[SLUICE_SUBSET_LEN];
	uint8_t identity;	    /* the identity its address has (id = index + 1); 0 = none */
	char zone[SLUICE_ZONE_LEN]; /* its zone label (locality); "" = none */
};

/* A service's locality. */
enum sl_locality {
	SL_LOCALITY_NONE = 0,
	SL_LOCALITY_PREFER_ZONE = 1, /* usable backends in agent.zone first */
};

/* health_check.type */
enum sl_hc_type {
	SL_HC_NONE = 0,
	SL_HC_TCP = 1,
	SL_HC_HTTP = 2,
};

#define SL_HC_PATH_LEN 128

/* health_check: active probes from the agent. */
struct sl_health_cfg {
	uint8_t type;		      /* enum sl_hc_type; SL_HC_NONE without the block */
	uint16_t port;		      /* 0 = the backend's own port */
	char path[SL_HC_PATH_LEN];    /* http: the GET path, default "/healthz" */
	uint32_t interval_ms;	      /* default 2000 */
	uint32_t timeout_ms;	      /* default 1000, at most interval_ms */
	uint32_t healthy_threshold;   /* default 2 */
	uint32_t unhealthy_threshold; /* default 3 */
};

/* outlier_detection: passive ejection in the kernel. consecutive_failures
 * 0 = off (no block). */
struct sl_outlier_cfg {
	uint32_t consecutive_failures; /* default 5 when the block is present */
	uint32_t base_ejection_ms;     /* default 30000 */
	uint32_t max_ejection_percent; /* default 50; 0..100 */
};

/* One subset's share of new connections (split). */
struct sl_split_cfg {
	char subset[SLUICE_SUBSET_LEN];
	uint8_t percent;
};

/* policy: identities are bits of 64-bit masks (bit i = identity id i + 1). */
struct sl_policy_cfg {
	uint8_t on;	      /* the service has a policy block */
	uint8_t default_deny; /* default: deny */
	uint64_t allow;	      /* allow_from */
	uint64_t deny;	      /* deny_from; deny wins */
};

struct sl_service_cfg {
	char name[SLUICE_NAME_LEN];
	struct sl_sockaddr frontend;
	uint8_t proto; /* enum sluice_proto */
	uint8_t lb;    /* enum sluice_lb */
	struct sl_backend_cfg *backends;
	size_t n_backends;
	uint32_t affinity_ms; /* 0 = off */
	struct sl_split_cfg split[SLUICE_MAX_SPLIT];
	size_t n_split; /* 0 = no split */
	struct sl_health_cfg health;
	struct sl_outlier_cfg outlier;
	uint32_t max_connections;    /* circuit_breaker; 0 = unlimited */
	uint32_t rate_per_sec;	     /* rate_limit.connections_per_second; 0 = off */
	uint32_t rate_burst;	     /* rate_limit.burst */
	uint32_t connect_timeout_ms; /* timeouts.connect; 0 = kernel default */
	uint32_t idle_timeout_ms;    /* timeouts.idle; 0 = off; whole seconds */
	struct sl_policy_cfg policy;
	uint8_t mtls;	  /* enum sl_mtls_mode; SL_MTLS_OFF needs no mtls: block */
	uint8_t locality; /* enum sl_locality */
	/* close_on_removal: also close TCP connections to a removed backend */
	uint8_t close_on_removal;
	/* backends is another config's (sl_config_borrow): not freed with this one, never
	 * grown in place */
	uint8_t backends_borrowed;
};

#define SL_MAX_IDENTITIES  64 /* identity ids are bits of a 64-bit mask */
#define SL_MAX_ID_CGROUPS  16
#define SL_MAX_ID_ADDRS	   64
#define SL_CGROUP_PATH_LEN 256

/* identities[]: a name for callers in these cgroups (with their subtrees)
 * or from these addresses. Its id is its index + 1. */
struct sl_identity_cfg {
	char name[SLUICE_NAME_LEN];
	char cgroups[SL_MAX_ID_CGROUPS][SL_CGROUP_PATH_LEN];
	size_t n_cgroups;
	struct sl_cidr addrs[SL_MAX_ID_ADDRS];
	size_t n_addrs;
};

/* Map capacities (agent.limits). Fixed once the maps exist. */
struct sl_limits {
	uint32_t services;
	uint32_t backends;
	uint32_t revnat;
};

#define SL_API_PATH_LEN	      108 /* sizeof(sun_path) */
#define SL_NODE_LEN	      64  /* agent.node: a host name (HOST_NAME_MAX) */
#define SL_MAX_INTERFACES     32
#define SL_INTERFACE_GLOB_LEN 64

#define SL_MAX_FRONTEND_CIDRS 64

#define SL_MAX_ETCD_ENDPOINTS 8
#define SL_ETCD_URL_LEN	      256
#define SL_ETCD_PREFIX_LEN    128
#define SL_ETCD_USER_LEN      128

/* A service's mtls: what a caller's connection to a backend on another node does. */
enum sl_mtls_mode {
	SL_MTLS_OFF = 0,	/* plaintext, as without mtls: */
	SL_MTLS_PERMISSIVE = 1, /* through the tunnel where the caller has a certificate */
	SL_MTLS_STRICT = 2, /* through the tunnel, or refused; plaintext from other nodes dropped */
};

#define SL_TRUST_DOMAIN_LEN	 254 /* a DNS name: at most 253 characters */
#define SL_MTLS_PORT_DEFAULT	 15008
#define SL_MTLS_OUTBOUND_DEFAULT 15001
#define SL_MTLS_CA_DEFAULT	 "/etc/sluice/mtls/ca.pem"
#define SL_MTLS_CERTS_DEFAULT	 "/etc/sluice/mtls"

/* mtls: zero-trust transport between nodes (sluice.yaml(5) MTLS). */
struct sl_mtls_cfg {
	int on;					/* the block is present */
	char trust_domain[SL_TRUST_DOMAIN_LEN]; /* required with the block */
	char ca[PATH_MAX];			/* PEM roots peers must chain to */
	char certs[PATH_MAX];			/* <identity>.pem/.key, node.pem/.key */
	uint16_t port;				/* inbound tunnels, every address */
	uint16_t outbound_port;			/* the agent's outbound listener, loopback */
};

#define SL_TRACE_URL_LEN	  1000 /* tracing.endpoint, without "/v1/traces" */
#define SL_TRACE_ENDPOINT_DEFAULT "http://127.0.0.1:4318"

/* tracing: OpenTelemetry connection spans (README "Tracing"). The exporter's settings; they
 * are fixed for the agent's life. tracing.sample is not: it is sl_config.trace_sample. */
struct sl_tracing_cfg {
	int on;				 /* the block is present */
	char endpoint[SL_TRACE_URL_LEN]; /* http(s)://host[:port][/prefix] */
	uint32_t queue_size;		 /* spans waiting for export, at most */
	uint32_t batch_size;		 /* spans per request, at most */
	uint32_t batch_delay_ms;	 /* the longest a span waits for its batch */
	uint32_t timeout_ms;		 /* one request */
};

/* The agent's own settings (agent.* but agent.audit, and registry.*): they shape the maps,
 * links, sockets and threads, so they are fixed for the agent's life. A reload compares this
 * struct whole (sl_agent_cfg_diff), so a key added here is fixed without further code. The
 * parser zeroes it first, so unused bytes compare equal. */
struct sl_agent_cfg {
	char cgroup[PATH_MAX]; /* "" = the cgroup2 mount point */
	char state[PATH_MAX];  /* agent.state: API registrations and drains */
	char bpffs[PATH_MAX];
	int metrics_on;		    /* agent.metrics is not "" */
	struct sl_sockaddr metrics; /* where GET /metrics is served */
	char api[SL_API_PATH_LEN];  /* control API socket; "" = none */
	char interfaces[SL_MAX_INTERFACES][SL_INTERFACE_GLOB_LEN]; /* fnmatch(3) globs */
	size_t n_interfaces;
	int redirect_local; /* agent.redirect: local */
	struct sl_limits limits;
	/* agent.frontends: the CIDRs frontends must lie in; none = any but the refused ranges */
	struct sl_cidr frontends[SL_MAX_FRONTEND_CIDRS];
	size_t n_frontends;
	/* registry.etcd; no endpoints = no etcd */
	char etcd_endpoints[SL_MAX_ETCD_ENDPOINTS][SL_ETCD_URL_LEN];
	size_t n_etcd;
	char etcd_prefix[SL_ETCD_PREFIX_LEN];
	/* registry.etcd.ca, cert, key: PEM files for TLS with a client certificate; all three
	 * ("" = none, and then the endpoints are http://) */
	char etcd_ca[PATH_MAX];
	char etcd_cert[PATH_MAX];
	char etcd_key[PATH_MAX];
	/* registry.etcd.user, password_file: etcd auth (a password login); both or neither
	 * ("" = none), and only with TLS */
	char etcd_user[SL_ETCD_USER_LEN];
	char etcd_password_file[PATH_MAX];
	char audit_log[PATH_MAX];   /* agent.audit_log */
	struct sl_mtls_cfg mtls;    /* mtls: */
	char node[SL_NODE_LEN];	    /* agent.node; default: the hostname */
	char zone[SLUICE_ZONE_LEN]; /* agent.zone; "" = none (locality does nothing) */
	/* tracing: but its sample */
	struct sl_tracing_cfg tracing;
};

/* agent.node: this node's name in logs, metrics (sluice_node_info), etcd and
 * traces (host.name). */
const char *sl_agent_node(const struct sl_agent_cfg *a);

/* The config: the fixed agent settings, and what a reload may change (services, identities,
 * agent.audit). */
struct sl_config {
	struct sl_agent_cfg agent;
	struct sl_service_cfg *services;
	size_t n_services;
	struct sl_identity_cfg *identities;
	size_t n_identities;
	int audit_all; /* agent.audit: all (allowed connections too); reloadable */
	/* tracing.sample, 0..1; reloadable */
	double trace_sample;
};

/* The datapath's sluice_settings.trace_sample for a tracing.sample in [0, 1]: a connection
 * without a traceparent is traced when bpf_get_prandom_u32() is below it, always at
 * 0xffffffff (sample 1), never at 0; any sample above 0 gives at least 1. */
uint32_t sl_trace_threshold(double sample);

/* NULL when two configs have the same fixed settings, else why a reload
 * cannot go ahead ("agent.bpffs cannot change while running; ..."). */
const char *sl_agent_cfg_diff(const struct sl_agent_cfg *a, const struct sl_agent_cfg *b);

/* Parse and validate. 0 when valid; -1 with every problem in *d otherwise, each at its
 * FILE:LINE:COL and naming its key path in field ("services[1].backends[0].weight").
 * 'file' names the input in diagnostics. */
int sl_config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
		    struct sl_problems *d);
int sl_config_load(const char *path, struct sl_config *cfg, struct sl_problems *d);
/* The same, and *text (malloc'd, *len bytes; the caller frees it) gets the bytes parsed, when
 * the file could be read (else NULL). */
int sl_config_load_text(const char *path, struct sl_config *cfg, struct sl_problems *d, char **text,
			size_t *len);
/* The bytes of the file at path into *text (malloc'd, *len bytes). 0, or -errno with *step
 * saying what failed ("cannot open", "cannot read", "out of memory"). */
int sl_config_read(const char *path, char **text, size_t *len, const char **step);
void sl_config_free(struct sl_config *cfg);

/* A deep copy. 0 or -ENOMEM (dst then holds nothing to free). */
int sl_config_clone(const struct sl_config *src, struct sl_config *dst);
/* The same, but each service's backends are src's own arrays, borrowed (backends_borrowed): dst
 * must be freed before src, or with it, and whoever changes a borrowed array copies it first.
 * Copies the services, not their 100 000 backends. 0 or -ENOMEM. */
int sl_config_borrow(const struct sl_config *src, struct sl_config *dst);

/* One service from JSON (or YAML) text, checked by the same rules as a
 * service of the config file, under agent settings 'agent' (limits, and
 * agent.frontends and the etcd endpoints for its frontend).
 * 0, or -1 with the problems in *d, each "what:LINE:COL: message" with
 * its key in the service in field ("backends[0].weight", "lb"). */
int sl_config_parse_service(const char *what, const char *text, size_t len,
			    const struct sl_config *agent, struct sl_service_cfg *out,
			    struct sl_problems *d);

const char *sl_lb_name(uint8_t lb);
const char *sl_proto_name(uint8_t proto);

#endif /* SLUICE_CONFIG_H */
