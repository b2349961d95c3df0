// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Config parsing walks libyaml's document tree so that every node keeps its
 * position: each problem is reported as FILE:LINE:COL, all of them in one
 * pass, and a config with any problem is rejected whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"

#define DEFAULT_BPFFS	  "/sys/fs/bpf/sluice"
#define DEFAULT_METRICS	  "127.0.0.1:9464"
#define DEFAULT_API	  "/run/sluice/sluiced.sock"
#define DEFAULT_STATE	  "/var/lib/sluice"
#define DEFAULT_AUDIT_LOG "/var/log/sluice/audit.log"

/* The fixed settings, for naming the one that changed; the comparison itself is
 * the whole struct, so a field missing here still counts. */
#define RESTART "cannot change while running; restart sluiced"
#define AGENT_FIELD(f, key)                                                                        \
	{                                                                                          \
		key " " RESTART, offsetof(struct sl_agent_cfg, f),                                 \
		    sizeof(((struct sl_agent_cfg *)0)->f)                                          \
	}
static const struct {
	const char *why;
	size_t off, size;
} agent_fields[] = {
    AGENT_FIELD(cgroup, "agent.cgroup"),
    AGENT_FIELD(state, "agent.state"),
    AGENT_FIELD(bpffs, "agent.bpffs"),
    AGENT_FIELD(metrics_on, "agent.metrics"),
    AGENT_FIELD(metrics, "agent.metrics"),
    AGENT_FIELD(api, "agent.api"),
    AGENT_FIELD(interfaces, "agent.interfaces"),
    AGENT_FIELD(n_interfaces, "agent.interfaces"),
    AGENT_FIELD(redirect_local, "agent.redirect"),
    {"agent.limits cannot change while running; run sluiced --teardown and restart",
     offsetof(struct sl_agent_cfg, limits), sizeof(struct sl_limits)},
    AGENT_FIELD(etcd_endpoints, "registry.etcd"),
    AGENT_FIELD(n_etcd, "registry.etcd"),
    AGENT_FIELD(etcd_prefix, "registry.etcd"),
    AGENT_FIELD(audit_log, "agent.audit_log"),
};

const char *sl_agent_cfg_diff(const struct sl_agent_cfg *a, const struct sl_agent_cfg *b)
{
	if (!memcmp(a, b, sizeof(*a)))
		return NULL;
	for (size_t i = 0; i < sizeof(agent_fields) / sizeof(agent_fields[0]); i++)
		if (memcmp((const char *)a + agent_fields[i].off,
			   (const char *)b + agent_fields[i].off, agent_fields[i].size))
			return agent_fields[i].why;
	return "agent settings " RESTART;
}

const char *sl_lb_name(uint8_t lb)
{
	static const char *const names[SLUICE_LB__MAX] = {
	    [SLUICE_LB_RANDOM] = "random",
	    [SLUICE_LB_ROUND_ROBIN] = "round_robin",
	    [SLUICE_LB_MAGLEV] = "maglev",
	    [SLUICE_LB_LEAST_CONN] = "least_conn",
	};
	return lb < SLUICE_LB__MAX ? names[lb] : "unknown";
}

const char *sl_proto_name(uint8_t proto)
{
	return proto == SLUICE_PROTO_UDP ? "udp" : proto == SLUICE_PROTO_TCP ? "tcp" : "unknown";
}

struct walker {
	const char *file;
	yaml_document_t *doc;
	struct sl_problems *d;
};

static void werr(struct walker *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void werr(struct walker *w, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sl_problems_add(w->d, w->file, (unsigned int)n->start_mark.line + 1,
			(unsigned int)n->start_mark.column + 1, "%s", msg);
}

static const char *scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Keys that the spec defines but this version does not implement yet: they
 * are refused by name rather than silently ignored. */
static int is_unimplemented(const char *key, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(key, *list))
			return 1;
	return 0;
}

/*
 * Walk a mapping: every key must be a scalar, appear once and be one of
 * 'known' (or 'later', which is refused as not implemented). Calls 'fn' per
 * known key.
 */
typedef void (*field_fn)(struct walker *w, const char *key, yaml_node_t *val, void *obj);

static int walk_mapping(struct walker *w, yaml_node_t *n, const char *what,
			const char *const *known, const char *const *later, field_fn fn, void *obj)
{
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE) {
		werr(w, n, "%s must be a mapping", what);
		return -1;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		const char *key = k ? scalar(k) : NULL;
		int found = 0;

		if (!k || !v)
			continue;
		if (!key) {
			werr(w, k, "%s: keys must be plain strings", what);
			continue;
		}
		for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);

			if (qk && scalar(qk) && !strcmp(scalar(qk), key)) {
				werr(w, k, "%s: duplicate key '%s'", what, key);
				found = -1;
				break;
			}
		}
		if (found < 0)
			continue;
		for (const char *const *kn = known; *kn; kn++)
			if (!strcmp(*kn, key))
				found = 1;
		if (found) {
			fn(w, key, v, obj);
		} else if (later && is_unimplemented(key, later)) {
			werr(w, k, "%s: '%s' is not implemented in this version of sluice", what,
			     key);
		} else {
			werr(w, k, "%s: unknown key '%s'", what, key);
		}
	}
	return 0;
}

static const char *want_scalar(struct walker *w, yaml_node_t *v, const char *key)
{
	const char *s = scalar(v);

	if (!s)
		werr(w, v, "'%s' must be a scalar", key);
	return s;
}

/* 0, or -1 after a diagnostic. */
static int want_uint(struct walker *w, yaml_node_t *v, const char *key, uint64_t min, uint64_t max,
		     uint32_t *out)
{
	const char *s = want_scalar(w, v, key);
	const char *why;
	uint64_t u;

	if (!s)
		return -1;
	if (sl_parse_uint(s, min, max, &u, &why)) {
		werr(w, v, "'%s': %s (want %llu..%llu)", key, why, (unsigned long long)min,
		     (unsigned long long)max);
		return -1;
	}
	*out = (uint32_t)u;
	return 0;
}

/* Milliseconds in the largest unit that divides them: "1h", "300ms". */
static const char *fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

/* A duration within [min_ms, max_ms], in milliseconds. 0, or -1 after a diagnostic. */
static int want_duration(struct walker *w, yaml_node_t *v, const char *key, uint64_t min_ms,
			 uint64_t max_ms, uint32_t *out)
{
	const char *s = want_scalar(w, v, key);
	char lo[24], hi[24];
	const char *why;
	uint64_t ms;

	if (!s)
		return -1;
	if (sl_parse_duration(s, &ms, &why)) {
		werr(w, v, "'%s': %s", key, why);
		return -1;
	}
	if (ms < min_ms || ms > max_ms) {
		werr(w, v, "'%s': %s is out of range (want %s..%s)", key, s,
		     fmt_duration(min_ms, lo, sizeof(lo)), fmt_duration(max_ms, hi, sizeof(hi)));
		return -1;
	}
	*out = (uint32_t)ms;
	return 0;
}

static void want_path(struct walker *w, yaml_node_t *v, const char *key, char *out, size_t len)
{
	const char *s = want_scalar(w, v, key);

	if (!s)
		return;
	if (s[0] != '/') {
		werr(w, v, "'%s' must be an absolute path", key);
		return;
	}
	if (strlen(s) >= len) {
		werr(w, v, "'%s' is too long", key);
		return;
	}
	strcpy(out, s);
}

static void limits_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct sl_limits *l = obj;

	if (!strcmp(key, "services"))
		want_uint(w, v, key, 1, SLUICE_MAX_SERVICES, &l->services);
	else if (!strcmp(key, "backends"))
		want_uint(w, v, key, 1, SLUICE_MAX_BACKENDS, &l->backends);
	else if (!strcmp(key, "revnat"))
		want_uint(w, v, key, 1024, 1U << 24, &l->revnat);
}

static void want_redirect(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "redirect");

	if (!s)
		return;
	/* YAML 1.1 reads a bare off as a boolean: accept its spellings. */
	if (!strcmp(s, "off") || !strcmp(s, "false"))
		cfg->agent.redirect_local = 0;
	else if (!strcmp(s, "local"))
		cfg->agent.redirect_local = 1;
	else
		werr(w, v, "redirect '%s': want off or local", s);
}

/* "HOST:PORT" to listen on, or "" for none. */
static void want_listen(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "metrics"), *why;

	if (!s)
		return;
	cfg->agent.metrics_on = *s != '\0';
	if (cfg->agent.metrics_on && sl_parse_hostport(s, &cfg->agent.metrics, &why))
		werr(w, v, "metrics '%s': %s", s, why);
}

static void want_api(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "api");

	if (!s)
		return;
	if (*s && s[0] != '/')
		werr(w, v, "'api' must be an absolute path or \"\"");
	else if (strlen(s) >= sizeof(cfg->agent.api))
		werr(w, v, "'api' is longer than a Unix socket path may be (%zu)",
		     sizeof(cfg->agent.api) - 1);
	else
		strcpy(cfg->agent.api, s);
}

static void want_globs(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE) {
		werr(w, v, "'interfaces' must be a list of interface name globs");
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *g = yaml_document_get_node(w->doc, *it);
		const char *s = g ? want_scalar(w, g, "interfaces") : NULL;

		if (!s)
			continue;
		if (!*s || strlen(s) >= SL_INTERFACE_GLOB_LEN) {
			werr(w, g, "interface glob must be 1..%d characters",
			     SL_INTERFACE_GLOB_LEN - 1);
			continue;
		}
		if (cfg->agent.n_interfaces == SL_MAX_INTERFACES) {
			werr(w, g, "more than %d interface globs", SL_MAX_INTERFACES);
			return;
		}
		strcpy(cfg->agent.interfaces[cfg->agent.n_interfaces++], s);
	}
}

static void want_audit(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "audit");

	if (!s)
		return;
	if (!strcmp(s, "all"))
		cfg->audit_all = 1;
	else if (!strcmp(s, "denied"))
		cfg->audit_all = 0;
	else
		werr(w, v, "audit '%s': want denied or all", s);
}

static void agent_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const known[] = {"services", "backends", "revnat", NULL};
	struct sl_config *cfg = obj;

	if (!strcmp(key, "cgroup"))
		want_path(w, v, key, cfg->agent.cgroup, sizeof(cfg->agent.cgroup));
	else if (!strcmp(key, "bpffs"))
		want_path(w, v, key, cfg->agent.bpffs, sizeof(cfg->agent.bpffs));
	else if (!strcmp(key, "limits"))
		walk_mapping(w, v, "agent.limits", known, NULL, limits_field, &cfg->agent.limits);
	else if (!strcmp(key, "metrics"))
		want_listen(w, v, cfg);
	else if (!strcmp(key, "api"))
		want_api(w, v, cfg);
	else if (!strcmp(key, "interfaces"))
		want_globs(w, v, cfg);
	else if (!strcmp(key, "redirect"))
		want_redirect(w, v, cfg);
	else if (!strcmp(key, "state"))
		want_path(w, v, key, cfg->agent.state, sizeof(cfg->agent.state));
	else if (!strcmp(key, "audit_log"))
		want_path(w, v, key, cfg->agent.audit_log, sizeof(cfg->agent.audit_log));
	else if (!strcmp(key, "audit"))
		want_audit(w, v, cfg);
}

struct etcd_ctx {
	struct sl_config *cfg;
	int saw_endpoints;
};

static void etcd_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct etcd_ctx *ec = obj;
	struct sl_config *cfg = ec->cfg;
	yaml_node_item_t *it;
	const char *s;

	if (!strcmp(key, "prefix")) {
		s = want_scalar(w, v, "registry.etcd.prefix");
		if (!s)
			return;
		if (s[0] != '/' || strlen(s) >= SL_ETCD_PREFIX_LEN)
			werr(w, v,
			     "registry.etcd.prefix must start with '/' and be under %d characters",
			     SL_ETCD_PREFIX_LEN);
		else
			strcpy(cfg->agent.etcd_prefix, s);
		return;
	}
	/* endpoints */
	ec->saw_endpoints = 1;
	if (v->type != YAML_SEQUENCE_NODE) {
		werr(w, v, "registry.etcd.endpoints must be a list of URLs");
		return;
	}
	if (v->data.sequence.items.top == v->data.sequence.items.start)
		werr(w, v, "registry.etcd.endpoints is empty");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);

		s = e ? want_scalar(w, e, "registry.etcd.endpoints[]") : NULL;
		if (!s)
			continue;
		if (cfg->agent.n_etcd == SL_MAX_ETCD_ENDPOINTS) {
			werr(w, e, "registry.etcd.endpoints: at most %d", SL_MAX_ETCD_ENDPOINTS);
			return;
		}
		if (strncmp(s, "http://", 7) || !s[7] || strlen(s) >= SL_ETCD_URL_LEN ||
		    strpbrk(s, " \t\"'")) {
			werr(w, e, "etcd endpoint '%s': want http://HOST:PORT", s);
			continue;
		}
		strcpy(cfg->agent.etcd_endpoints[cfg->agent.n_etcd++], s);
	}
}

static void registry_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const known[] = {"endpoints", "prefix", NULL};
	struct etcd_ctx ec = {.cfg = obj};

	(void)key; /* "etcd", the only key */
	if (walk_mapping(w, v, "registry.etcd", known, NULL, etcd_field, &ec))
		return;
	if (!ec.saw_endpoints)
		werr(w, v, "registry.etcd needs 'endpoints'");
}

struct backend_ctx {
	struct sl_backend_cfg *be;
	const struct sl_config *cfg; /* identities */
	int has_address;
};

static void backend_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct backend_ctx *bc = obj;
	const char *s, *why;
	uint32_t weight;

	if (!strcmp(key, "address")) {
		s = want_scalar(w, v, key);
		if (!s)
			return;
		bc->has_address = 1;
		if (sl_parse_hostport(s, &bc->be->addr, &why)) {
			werr(w, v, "backend address '%s': %s", s, why);
			bc->has_address = -1;
		}
	} else if (!strcmp(key, "weight")) {
		weight = bc->be->weight;
		want_uint(w, v, key, 1, 1000, &weight);
		bc->be->weight = (uint16_t)weight;
	} else if (!strcmp(key, "identity")) {
		s = want_scalar(w, v, key);
		if (!s)
			return;
		for (size_t i = 0; bc->cfg && i < bc->cfg->n_identities; i++)
			if (!strcmp(bc->cfg->identities[i].name, s))
				bc->be->identity = (uint8_t)(i + 1);
		if (!bc->be->identity)
			werr(w, v, "backend identity '%s' is not defined in 'identities'", s);
	} else if (!strcmp(key, "subset")) {
		s = want_scalar(w, v, key);
		if (!s)
			return;
		if (!*s || strlen(s) >= SLUICE_SUBSET_LEN)
			werr(w, v, "'subset' must be 1..%d characters", SLUICE_SUBSET_LEN - 1);
		else
			strcpy(bc->be->subset, s);
	}
}

struct service_ctx {
	struct sl_service_cfg *svc;
	const struct sl_config *cfg; /* identities, for policy */
	yaml_node_t *backends;
	yaml_node_t *frontend_node;
	int has_name, has_frontend;
	/* Blocks whose checks need the whole service (protocol, backends):
	 * their value nodes, set only when the block itself was valid. */
	yaml_node_t *split, *health, *outlier, *breaker, *timeouts;
};

static int valid_name(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return 0;
	return 1;
}

/* split: {SUBSET: PERCENT, ...}. The sum and the subsets' backends are
 * checked once the whole service is read (check_service). */
static void parse_split(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	struct sl_service_cfg *svc = sc->svc;
	size_t before = w->d->n, n;
	yaml_node_pair_t *p;

	if (v->type != YAML_MAPPING_NODE) {
		werr(w, v, "'split' must be a mapping of subset to percent");
		return;
	}
	n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	if (n > SLUICE_MAX_SPLIT) {
		werr(w, v, "split has %zu subsets, more than the %d a service holds", n,
		     SLUICE_MAX_SPLIT);
		return;
	}
	for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *pv = yaml_document_get_node(w->doc, p->value);
		const char *name = k ? scalar(k) : NULL, *pct, *why;
		struct sl_split_cfg *e = &svc->split[svc->n_split];
		int dup = 0;
		uint64_t u;

		if (!k || !pv)
			continue;
		if (!name) {
			werr(w, k, "split: keys must be subset names");
			continue;
		}
		if (!*name || strlen(name) >= SLUICE_SUBSET_LEN) {
			werr(w, k, "split: subset name must be 1..%d characters",
			     SLUICE_SUBSET_LEN - 1);
			continue;
		}
		for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < p && !dup; q++) {
			yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);

			dup = qk && scalar(qk) && !strcmp(scalar(qk), name);
		}
		if (dup) {
			werr(w, k, "split: duplicate subset '%s'", name);
			continue;
		}
		pct = scalar(pv);
		if (!pct) {
			werr(w, pv, "split: percent of subset '%s' must be a scalar", name);
			continue;
		}
		if (sl_parse_uint(pct, 0, 100, &u, &why)) {
			werr(w, pv, "split: percent of subset '%s': %s (want 0..100)", name, why);
			continue;
		}
		strcpy(e->subset, name);
		e->percent = (uint8_t)u;
		svc->n_split++;
	}
	if (w->d->n == before)
		sc->split = v;
}

struct health_ctx {
	struct sl_health_cfg *hc;
	yaml_node_t *timeout;
};

static void want_hc_path(struct walker *w, yaml_node_t *v, struct sl_health_cfg *hc)
{
	const char *s = want_scalar(w, v, "health_check.path");

	if (!s)
		return;
	if (s[0] != '/') {
		werr(w, v, "'health_check.path' must start with '/'");
		return;
	}
	if (strlen(s) >= sizeof(hc->path)) {
		werr(w, v, "'health_check.path' is longer than %zu characters",
		     sizeof(hc->path) - 1);
		return;
	}
	for (const char *c = s; *c; c++) {
		if (*c <= ' ' || *c > '~') {
			werr(w, v, "'health_check.path' must be printable ASCII without spaces");
			return;
		}
	}
	strcpy(hc->path, s);
}

static void health_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct health_ctx *hx = obj;
	struct sl_health_cfg *hc = hx->hc;
	const char *s;
	uint32_t u;

	if (!strcmp(key, "type")) {
		s = want_scalar(w, v, "health_check.type");
		if (!s)
			return;
		if (!strcmp(s, "none"))
			hc->type = SL_HC_NONE;
		else if (!strcmp(s, "tcp"))
			hc->type = SL_HC_TCP;
		else if (!strcmp(s, "http"))
			hc->type = SL_HC_HTTP;
		else
			werr(w, v, "health_check.type '%s': want none, tcp or http", s);
	} else if (!strcmp(key, "port")) {
		if (!want_uint(w, v, "health_check.port", 0, 65535, &u))
			hc->port = (uint16_t)u;
	} else if (!strcmp(key, "path")) {
		want_hc_path(w, v, hc);
	} else if (!strcmp(key, "interval")) {
		want_duration(w, v, "health_check.interval", 100, 3600000, &hc->interval_ms);
	} else if (!strcmp(key, "timeout")) {
		if (!want_duration(w, v, "health_check.timeout", 10, 3600000, &hc->timeout_ms))
			hx->timeout = v;
	} else if (!strcmp(key, "healthy_threshold")) {
		want_uint(w, v, "health_check.healthy_threshold", 1, 100, &hc->healthy_threshold);
	} else if (!strcmp(key, "unhealthy_threshold")) {
		want_uint(w, v, "health_check.unhealthy_threshold", 1, 100,
			  &hc->unhealthy_threshold);
	}
}

static void parse_health(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"type",
					    "port",
					    "path",
					    "interval",
					    "timeout",
					    "healthy_threshold",
					    "unhealthy_threshold",
					    NULL};
	struct sl_health_cfg *hc = &sc->svc->health;
	struct health_ctx hx = {.hc = hc};
	size_t before = w->d->n;
	char a[24], b[24];

	hc->type = SL_HC_TCP;
	hc->port = 0;
	strcpy(hc->path, "/healthz");
	hc->interval_ms = 2000;
	hc->timeout_ms = 1000;
	hc->healthy_threshold = 2;
	hc->unhealthy_threshold = 3;
	if (walk_mapping(w, v, "health_check", known, NULL, health_field, &hx) || w->d->n != before)
		return;
	/* The default timeout never exceeds an interval shorter than it. */
	if (!hx.timeout && hc->timeout_ms > hc->interval_ms)
		hc->timeout_ms = hc->interval_ms;
	if (hc->timeout_ms > hc->interval_ms) {
		werr(w, hx.timeout ? hx.timeout : v,
		     "health_check.timeout %s is longer than health_check.interval %s",
		     fmt_duration(hc->timeout_ms, a, sizeof(a)),
		     fmt_duration(hc->interval_ms, b, sizeof(b)));
		return;
	}
	if (hc->type == SL_HC_NONE)
		memset(hc, 0, sizeof(*hc)); /* the same as no block */
	else
		sc->health = v;
}

static void outlier_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct sl_outlier_cfg *o = obj;

	if (!strcmp(key, "consecutive_failures"))
		want_uint(w, v, "outlier_detection.consecutive_failures", 1, 1000,
			  &o->consecutive_failures);
	else if (!strcmp(key, "base_ejection_time"))
		want_duration(w, v, "outlier_detection.base_ejection_time", 1000, 300000,
			      &o->base_ejection_ms);
	else if (!strcmp(key, "max_ejection_percent"))
		want_uint(w, v, "outlier_detection.max_ejection_percent", 0, 100,
			  &o->max_ejection_percent);
}

static void parse_outlier(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"consecutive_failures", "base_ejection_time",
					    "max_ejection_percent", NULL};
	struct sl_outlier_cfg *o = &sc->svc->outlier;

	o->consecutive_failures = 5;
	o->base_ejection_ms = 30000;
	o->max_ejection_percent = 50;
	if (!walk_mapping(w, v, "outlier_detection", known, NULL, outlier_field, o))
		sc->outlier = v;
}

static void breaker_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct sl_service_cfg *svc = obj;

	if (!strcmp(key, "max_connections"))
		want_uint(w, v, "circuit_breaker.max_connections", 0, 1000000,
			  &svc->max_connections);
}

static void parse_breaker(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"max_connections", NULL};

	if (!walk_mapping(w, v, "circuit_breaker", known, NULL, breaker_field, sc->svc))
		sc->breaker = v;
}

struct rate_ctx {
	struct sl_service_cfg *svc;
	yaml_node_t *burst;
};

static void rate_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct rate_ctx *rx = obj;

	if (!strcmp(key, "connections_per_second"))
		want_uint(w, v, "rate_limit.connections_per_second", 0, 1000000,
			  &rx->svc->rate_per_sec);
	else if (!strcmp(key, "burst") &&
		 !want_uint(w, v, "rate_limit.burst", 0, 1000000, &rx->svc->rate_burst))
		rx->burst = v;
}

static void parse_rate(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"connections_per_second", "burst", NULL};
	struct sl_service_cfg *svc = sc->svc;
	struct rate_ctx rx = {.svc = svc};
	size_t before = w->d->n;

	if (walk_mapping(w, v, "rate_limit", known, NULL, rate_field, &rx) || w->d->n != before)
		return;
	if (svc->rate_per_sec && !svc->rate_burst)
		werr(w, rx.burst ? rx.burst : v,
		     "rate_limit.burst must be at least 1 when connections_per_second is set");
	else if (svc->rate_burst && !svc->rate_per_sec)
		werr(w, rx.burst ? rx.burst : v,
		     "rate_limit.burst is set but connections_per_second is 0: set both or "
		     "neither");
}

static void timeouts_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct sl_service_cfg *svc = obj;

	if (!strcmp(key, "connect")) {
		want_duration(w, v, "timeouts.connect", 0, 3600000, &svc->connect_timeout_ms);
	} else if (!strcmp(key, "idle")) {
		if (!want_duration(w, v, "timeouts.idle", 0, 32767000, &svc->idle_timeout_ms) &&
		    svc->idle_timeout_ms % 1000) {
			werr(w, v,
			     "timeouts.idle must be whole seconds: keepalive timers count "
			     "seconds");
			svc->idle_timeout_ms = 0;
		}
	}
}

static void parse_timeouts(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"connect", "idle", NULL};

	if (!walk_mapping(w, v, "timeouts", known, NULL, timeouts_field, sc->svc))
		sc->timeouts = v;
}

struct policy_ctx {
	struct sl_service_cfg *svc;
	const struct sl_config *cfg;
};

static void policy_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct policy_ctx *pc = obj;
	struct sl_policy_cfg *pol = &pc->svc->policy;
	yaml_node_item_t *it;
	const char *s;

	if (!strcmp(key, "default")) {
		s = want_scalar(w, v, "policy.default");
		if (!s)
			return;
		if (!strcmp(s, "deny"))
			pol->default_deny = 1;
		else if (strcmp(s, "allow"))
			werr(w, v, "policy.default '%s': want allow or deny", s);
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		werr(w, v, "'policy.%s' must be a list of identity names", key);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);
		size_t i;

		s = e ? want_scalar(w, e, key) : NULL;
		if (!s)
			continue;
		for (i = 0; i < pc->cfg->n_identities; i++)
			if (!strcmp(pc->cfg->identities[i].name, s))
				break;
		if (i == pc->cfg->n_identities) {
			werr(w, e,
			     "policy.%s names identity '%s', which 'identities' does not define",
			     key, s);
			continue;
		}
		if (!strcmp(key, "allow_from"))
			pol->allow |= 1ULL << i;
		else
			pol->deny |= 1ULL << i;
	}
}

static void parse_policy(struct walker *w, yaml_node_t *v, struct service_ctx *sc)
{
	static const char *const known[] = {"default", "allow_from", "deny_from", NULL};
	struct policy_ctx pc = {.svc = sc->svc, .cfg = sc->cfg};

	sc->svc->policy.on = 1;
	walk_mapping(w, v, "policy", known, NULL, policy_field, &pc);
}

/* The blocks of a service, each a mapping of its own. */
static const struct {
	const char *key;
	void (*parse)(struct walker *w, yaml_node_t *v, struct service_ctx *sc);
} service_blocks[] = {
    {"split", parse_split},
    {"health_check", parse_health},
    {"outlier_detection", parse_outlier},
    {"circuit_breaker", parse_breaker},
    {"rate_limit", parse_rate},
    {"timeouts", parse_timeouts},
    {"policy", parse_policy},
};

static void service_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct service_ctx *sc = obj;
	const char *s, *why;

	/* Present, even when its value is bad: no "has no 'name'" on top. */
	if (!strcmp(key, "name"))
		sc->has_name = 1;
	else if (!strcmp(key, "frontend"))
		sc->has_frontend = -1;
	if (!strcmp(key, "backends")) {
		sc->backends = v;
		return;
	}
	for (size_t i = 0; i < sizeof(service_blocks) / sizeof(service_blocks[0]); i++) {
		if (!strcmp(key, service_blocks[i].key)) {
			service_blocks[i].parse(w, v, sc);
			return;
		}
	}
	s = want_scalar(w, v, key);
	if (!s)
		return;
	if (!strcmp(key, "name")) {
		if (strlen(s) >= SLUICE_NAME_LEN)
			werr(w, v, "service name '%s' is longer than %d characters", s,
			     SLUICE_NAME_LEN - 1);
		else if (!valid_name(s))
			werr(w, v, "service name '%s' must match [a-z0-9][a-z0-9_.-]*", s);
		else
			strcpy(sc->svc->name, s);
		sc->has_name = 1;
	} else if (!strcmp(key, "frontend")) {
		sc->has_frontend = 1;
		sc->frontend_node = v;
		if (sl_parse_hostport(s, &sc->svc->frontend, &why)) {
			werr(w, v, "frontend '%s': %s", s, why);
			sc->has_frontend = -1;
		}
	} else if (!strcmp(key, "protocol")) {
		if (!strcmp(s, "tcp"))
			sc->svc->proto = SLUICE_PROTO_TCP;
		else if (!strcmp(s, "udp"))
			sc->svc->proto = SLUICE_PROTO_UDP;
		else
			werr(w, v, "protocol '%s': want tcp or udp", s);
	} else if (!strcmp(key, "lb")) {
		if (!strcmp(s, "random"))
			sc->svc->lb = SLUICE_LB_RANDOM;
		else if (!strcmp(s, "round_robin"))
			sc->svc->lb = SLUICE_LB_ROUND_ROBIN;
		else if (!strcmp(s, "maglev"))
			sc->svc->lb = SLUICE_LB_MAGLEV;
		else if (!strcmp(s, "least_conn"))
			sc->svc->lb = SLUICE_LB_LEAST_CONN;
		else
			werr(w, v, "lb '%s': want random, round_robin, maglev or least_conn", s);
	} else if (!strcmp(key, "affinity")) {
		want_duration(w, v, "affinity", 0, 86400000, &sc->svc->affinity_ms);
	}
}

/* A valid split's sum, and its subsets against the backends. 'backends_ok'
 * is 0 when a backend was refused (its subset would be missing for no fault
 * of the split). */
static void check_split(struct walker *w, struct service_ctx *sc, const char *name, int backends_ok)
{
	struct sl_service_cfg *svc = sc->svc;
	yaml_node_pair_t *p = sc->split->data.mapping.pairs.start;
	unsigned int sum = 0;

	for (size_t i = 0; i < svc->n_split; i++, p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		size_t j = 0;

		sum += svc->split[i].percent;
		while (j < svc->n_backends && strcmp(svc->backends[j].subset, svc->split[i].subset))
			j++;
		if (backends_ok && j == svc->n_backends)
			werr(w, k ? k : sc->split,
			     "split names subset '%s' but no backend of service '%s' has it",
			     svc->split[i].subset, name);
	}
	if (sum != 100)
		werr(w, sc->split, "split of service '%s' sums to %u, not 100", name, sum);
}

/* What needs the whole service: the protocol may come after a block, and a
 * split's subsets must be carried by backends. */
static void check_service(struct walker *w, struct service_ctx *sc, int backends_ok)
{
	struct sl_service_cfg *svc = sc->svc;
	const char *name = svc->name[0] ? svc->name : "?";

	if (sc->split)
		check_split(w, sc, name, backends_ok);
	if (svc->proto != SLUICE_PROTO_UDP)
		return;
	if (sc->health && !svc->health.port)
		werr(w, sc->health,
		     "health_check of udp service '%s' needs a 'port': probes are TCP", name);
	if (sc->outlier)
		werr(w, sc->outlier,
		     "outlier_detection needs protocol tcp: failures are seen by TCP sockops");
	if (sc->breaker && svc->max_connections)
		werr(w, sc->breaker,
		     "circuit_breaker needs protocol tcp: connections are counted by TCP sockops");
	if (sc->timeouts && (svc->connect_timeout_ms || svc->idle_timeout_ms))
		werr(w, sc->timeouts, "timeouts needs protocol tcp: they are TCP socket options");
}

static void parse_backends(struct walker *w, struct service_ctx *sc)
{
	static const char *const known[] = {"address", "weight", "subset", "identity", NULL};
	struct sl_service_cfg *svc = sc->svc;
	yaml_node_t *seq = sc->backends;
	yaml_node_item_t *it;
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE) {
		werr(w, seq, "'backends' must be a list");
		return;
	}
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n > SLUICE_MAX_BACKENDS_PER_SERVICE) {
		werr(w, seq, "service '%s' has %zu backends, more than the %d a service holds",
		     svc->name, n, SLUICE_MAX_BACKENDS_PER_SERVICE);
		return;
	}
	svc->backends = calloc(n ? n : 1, sizeof(*svc->backends));
	if (!svc->backends) {
		werr(w, seq, "out of memory");
		return;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *bn = yaml_document_get_node(w->doc, *it);
		struct sl_backend_cfg *be = &svc->backends[svc->n_backends];
		struct backend_ctx bc = {.be = be, .cfg = sc->cfg};

		if (!bn)
			continue;
		be->weight = 1;
		if (walk_mapping(w, bn, "backend", known, NULL, backend_field, &bc))
			continue;
		if (!bc.has_address) {
			werr(w, bn, "backend has no 'address'");
			continue;
		}
		if (bc.has_address < 0)
			continue;
		if (sc->has_frontend > 0 && be->addr.family != svc->frontend.family) {
			char hp[SL_HOSTPORT_LEN];

			sl_format_hostport(&be->addr, hp, sizeof(hp));
			werr(w, bn, "backend %s is %s but the frontend is %s", hp,
			     be->addr.family == SLUICE_AF_INET ? "IPv4" : "IPv6",
			     svc->frontend.family == SLUICE_AF_INET ? "IPv4" : "IPv6");
			continue;
		}
		for (size_t j = 0; j < svc->n_backends; j++) {
			if (sl_sockaddr_equal(&svc->backends[j].addr, &be->addr)) {
				char hp[SL_HOSTPORT_LEN];

				sl_format_hostport(&be->addr, hp, sizeof(hp));
				werr(w, bn, "duplicate backend %s in service '%s'", hp, svc->name);
				bc.has_address = -1;
				break;
			}
		}
		if (bc.has_address > 0)
			svc->n_backends++;
	}
}

static void parse_services(struct walker *w, yaml_node_t *seq, struct sl_config *cfg)
{
	static const char *const known[] = {"name",
					    "frontend",
					    "protocol",
					    "lb",
					    "backends",
					    "affinity",
					    "split",
					    "health_check",
					    "outlier_detection",
					    "circuit_breaker",
					    "rate_limit",
					    "timeouts",
					    "policy",
					    NULL};
	yaml_node_t **fe_nodes;
	yaml_node_item_t *it;
	size_t n, total_backends = 0;

	if (seq->type != YAML_SEQUENCE_NODE) {
		werr(w, seq, "'services' must be a list");
		return;
	}
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	cfg->services = calloc(n ? n : 1, sizeof(*cfg->services));
	fe_nodes = calloc(n ? n : 1, sizeof(*fe_nodes));
	if (!cfg->services || !fe_nodes) {
		werr(w, seq, "out of memory");
		free(fe_nodes);
		return;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *sn = yaml_document_get_node(w->doc, *it);
		struct sl_service_cfg *svc = &cfg->services[cfg->n_services];
		struct service_ctx sc = {.svc = svc, .cfg = cfg};
		size_t before;
		int ok = 1;

		if (!sn)
			continue;
		svc->proto = SLUICE_PROTO_TCP;
		svc->lb = SLUICE_LB_RANDOM;
		if (walk_mapping(w, sn, "service", known, NULL, service_field, &sc))
			continue;
		if (!sc.has_name) {
			werr(w, sn, "service has no 'name'");
			ok = 0;
		}
		if (!sc.has_frontend) {
			werr(w, sn, "service has no 'frontend'");
			ok = 0;
		}
		before = w->d->n;
		if (sc.backends)
			parse_backends(w, &sc);
		check_service(w, &sc, w->d->n == before);
		if (!ok || !svc->name[0] || sc.has_frontend < 0) {
			free(svc->backends);
			memset(svc, 0, sizeof(*svc));
			continue;
		}
		for (size_t j = 0; j < cfg->n_services; j++) {
			struct sl_service_cfg *o = &cfg->services[j];

			if (!strcmp(o->name, svc->name)) {
				werr(w, sn, "duplicate service name '%s'", svc->name);
				ok = 0;
			} else if (o->proto == svc->proto &&
				   sl_sockaddr_equal(&o->frontend, &svc->frontend)) {
				werr(w, sc.frontend_node,
				     "frontend of '%s' is already used by service '%s' (%s)",
				     svc->name, o->name, sl_proto_name(svc->proto));
				ok = 0;
			}
		}
		if (ok && cfg->n_services + 1 > cfg->agent.limits.services) {
			werr(w, sn,
			     "service '%s' is one more than agent.limits.services (%u) holds",
			     svc->name, cfg->agent.limits.services);
			ok = 0;
		}
		if (ok && total_backends + svc->n_backends > cfg->agent.limits.backends) {
			werr(w, sn,
			     "service '%s' brings the backends to %zu, more than "
			     "agent.limits.backends (%u)",
			     svc->name, total_backends + svc->n_backends,
			     cfg->agent.limits.backends);
			ok = 0;
		}
		if (!ok) {
			free(svc->backends);
			memset(svc, 0, sizeof(*svc));
			continue;
		}
		fe_nodes[cfg->n_services] = sc.frontend_node;
		total_backends += svc->n_backends;
		cfg->n_services++;
	}
	free(fe_nodes);
}

static void root_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const agent_known[] = {"cgroup",    "bpffs",	     "limits",	 "metrics",
						  "api",       "interfaces", "redirect", "state",
						  "audit_log", "audit",	     NULL};
	static const char *const agent_later[] = {"node", NULL};
	static const char *const registry_known[] = {"etcd", NULL};
	struct sl_config *cfg = obj;

	if (!strcmp(key, "agent"))
		walk_mapping(w, v, "agent", agent_known, agent_later, agent_field, cfg);
	else if (!strcmp(key, "services"))
		parse_services(w, v, cfg);
	else if (!strcmp(key, "registry"))
		walk_mapping(w, v, "registry", registry_known, NULL, registry_field, cfg);
}

static void config_defaults(struct sl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->agent.bpffs, DEFAULT_BPFFS);
	strcpy(cfg->agent.api, DEFAULT_API);
	strcpy(cfg->agent.state, DEFAULT_STATE);
	strcpy(cfg->agent.audit_log, DEFAULT_AUDIT_LOG);
	strcpy(cfg->agent.etcd_prefix, "/sluice/");
	/* tools/bench/redirect.sh measured a gain on every figure: on by default. */
	cfg->agent.redirect_local = 1;
	cfg->agent.metrics_on = 1;
	if (sl_parse_hostport(DEFAULT_METRICS, &cfg->agent.metrics, &(const char *){NULL}))
		cfg->agent.metrics_on = 0;
	cfg->agent.limits.services = SLUICE_DEFAULT_SERVICES;
	cfg->agent.limits.backends = SLUICE_DEFAULT_BACKENDS;
	cfg->agent.limits.revnat = SLUICE_DEFAULT_REVNAT;
}

/* The limits must be known before services are counted against them. */
/* "198.18.1.0/24", "2001:db8:1::/64", or an address alone (/32, /128). */
static int parse_cidr(const char *s, struct sl_cidr *c, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	uint64_t prefix;
	unsigned int max, bits;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf)) {
		*why = "too long";
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	if (slash)
		buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, c->addr.a8) == 1) {
		c->family = SLUICE_AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr.a8) == 1) {
		c->family = SLUICE_AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	prefix = max;
	if (slash && sl_parse_uint(slash + 1, 0, max, &prefix, why))
		return -1;
	c->prefix = (uint8_t)prefix;
	/* No bits beyond the prefix: "198.18.1.5/24" is most likely a mistake. */
	for (bits = (unsigned int)prefix; bits < max; bits++)
		if (c->addr.a8[bits / 8] & (0x80 >> (bits % 8))) {
			*why = "has address bits set beyond its prefix length";
			return -1;
		}
	return 0;
}

struct identity_ctx {
	struct sl_identity_cfg *id;
	int has_name;
};

static void identity_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct identity_ctx *ic = obj;
	struct sl_identity_cfg *id = ic->id;
	yaml_node_item_t *it;
	const char *s, *why;

	if (!strcmp(key, "name")) {
		ic->has_name = 1;
		s = want_scalar(w, v, key);
		if (!s)
			return;
		if (strlen(s) >= SLUICE_NAME_LEN || !valid_name(s))
			werr(w, v,
			     "identity name '%s' must match [a-z0-9][a-z0-9_.-]* (at most %d "
			     "characters)",
			     s, SLUICE_NAME_LEN - 1);
		else
			strcpy(id->name, s);
		return;
	}
	if (v->type != YAML_SEQUENCE_NODE) {
		werr(w, v, "'%s' must be a list", key);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);

		s = e ? want_scalar(w, e, key) : NULL;
		if (!s)
			continue;
		if (!strcmp(key, "cgroups")) {
			if (id->n_cgroups == SL_MAX_ID_CGROUPS) {
				werr(w, e, "an identity has at most %d cgroups", SL_MAX_ID_CGROUPS);
				return;
			}
			if (s[0] != '/' || strlen(s) >= SL_CGROUP_PATH_LEN)
				werr(w, e,
				     "cgroup '%s' must be an absolute path under %d characters", s,
				     SL_CGROUP_PATH_LEN);
			else
				strcpy(id->cgroups[id->n_cgroups++], s);
		} else {
			if (id->n_addrs == SL_MAX_ID_ADDRS) {
				werr(w, e, "an identity has at most %d addresses", SL_MAX_ID_ADDRS);
				return;
			}
			if (parse_cidr(s, &id->addrs[id->n_addrs], &why))
				werr(w, e, "address '%s': %s", s, why);
			else
				id->n_addrs++;
		}
	}
}

/* identities are read before the services, whose policies name them. */
static void parse_identities_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	static const char *const known[] = {"name", "cgroups", "addresses", NULL};
	yaml_node_pair_t *p;

	if (root->type != YAML_MAPPING_NODE)
		return;
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		yaml_node_item_t *it;
		size_t n;

		if (!k || !v || !scalar(k) || strcmp(scalar(k), "identities") || cfg->identities)
			continue;
		if (v->type != YAML_SEQUENCE_NODE) {
			werr(w, v, "'identities' must be a list");
			return;
		}
		n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (n > SL_MAX_IDENTITIES) {
			werr(w, v, "%zu identities, more than the %d sluice holds", n,
			     SL_MAX_IDENTITIES);
			return;
		}
		cfg->identities = calloc(n ? n : 1, sizeof(*cfg->identities));
		if (!cfg->identities) {
			werr(w, v, "out of memory");
			return;
		}
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(w->doc, *it);
			struct sl_identity_cfg *id = &cfg->identities[cfg->n_identities];
			struct identity_ctx ic = {.id = id};
			int dup = 0;

			if (!e || walk_mapping(w, e, "identity", known, NULL, identity_field, &ic))
				continue;
			if (!ic.has_name) {
				werr(w, e, "identity has no 'name'");
				continue;
			}
			if (!id->name[0])
				continue;
			for (size_t j = 0; j < cfg->n_identities && !dup; j++)
				dup = !strcmp(cfg->identities[j].name, id->name);
			if (dup) {
				werr(w, e, "duplicate identity '%s'", id->name);
				memset(id, 0, sizeof(*id));
				continue;
			}
			cfg->n_identities++;
		}
	}
}

static void parse_limits_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	static const char *const known[] = {"services", "backends", "revnat", NULL};
	struct sl_problems scratch = {0};
	struct walker quiet = {.file = w->file, .doc = w->doc, .d = &scratch};
	yaml_node_pair_t *p;

	if (root->type != YAML_MAPPING_NODE)
		return;
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);

		if (!k || !v || !scalar(k) || strcmp(scalar(k), "agent") ||
		    v->type != YAML_MAPPING_NODE)
			continue;
		for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
		     q < v->data.mapping.pairs.top; q++) {
			yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);
			yaml_node_t *qv = yaml_document_get_node(w->doc, q->value);

			if (qk && qv && scalar(qk) && !strcmp(scalar(qk), "limits"))
				walk_mapping(&quiet, qv, "agent.limits", known, NULL, limits_field,
					     &cfg->agent.limits);
		}
	}
	sl_problems_free(&scratch);
}

int sl_config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
		    struct sl_problems *d)
{
	static const char *const root_known[] = {"agent", "services", "registry", "identities",
						 NULL};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct walker w = {.file = file, .doc = &doc, .d = d};
	size_t before = d->n;

	config_defaults(cfg);
	if (!yaml_parser_initialize(&parser)) {
		sl_problems_add(d, file, 1, 1, "cannot initialise the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		sl_problems_add(d, file, (unsigned int)parser.problem_mark.line + 1,
				(unsigned int)parser.problem_mark.column + 1, "YAML syntax: %s%s%s",
				parser.problem ? parser.problem : "unknown error",
				parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		sl_problems_add(d, file, 1, 1, "the configuration is empty");
	} else {
		parse_limits_first(&w, root, cfg);
		parse_identities_first(&w, root, cfg);
		if (walk_mapping(&w, root, "configuration", root_known, NULL, root_field, cfg) ==
		    0) {
			/* Only one document per file. */
			yaml_document_t extra;

			if (yaml_parser_load(&parser, &extra)) {
				if (yaml_document_get_root_node(&extra))
					sl_problems_add(d, file,
							(unsigned int)extra.start_mark.line + 1,
							(unsigned int)extra.start_mark.column + 1,
							"only one YAML document is allowed");
				yaml_document_delete(&extra);
			} else {
				sl_problems_add(d, file, (unsigned int)parser.problem_mark.line + 1,
						(unsigned int)parser.problem_mark.column + 1,
						"YAML syntax: %s",
						parser.problem ? parser.problem : "unknown error");
			}
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (d->n != before) {
		sl_config_free(cfg);
		return -1;
	}
	return 0;
}

int sl_config_load(const char *path, struct sl_config *cfg, struct sl_problems *d)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f, *mem;
	char buf[65536];
	size_t n;
	int err;

	config_defaults(cfg);
	f = fopen(path, "re");
	if (!f) {
		sl_problems_add(d, path, 1, 1, "cannot open: %s", strerror(errno));
		return -1;
	}
	mem = open_memstream(&text, &len);
	if (!mem) {
		fclose(f);
		sl_problems_add(d, path, 1, 1, "out of memory");
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	err = ferror(f);
	fclose(f);
	if (fclose(mem) || err) {
		free(text);
		sl_problems_add(d, path, 1, 1, "cannot read: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	err = sl_config_parse(path, text, len, cfg, d);
	free(text);
	return err;
}

void sl_config_free(struct sl_config *cfg)
{
	free(cfg->identities);
	cfg->identities = NULL;
	cfg->n_identities = 0;
	for (size_t i = 0; i < cfg->n_services; i++)
		free(cfg->services[i].backends);
	free(cfg->services);
	cfg->services = NULL;
	cfg->n_services = 0;
}

int sl_config_clone(const struct sl_config *src, struct sl_config *dst)
{
	*dst = *src;
	dst->identities = NULL;
	if (src->n_identities) {
		dst->identities = malloc(src->n_identities * sizeof(*dst->identities));
		if (!dst->identities) {
			dst->services = NULL;
			dst->n_services = 0;
			dst->n_identities = 0;
			return -ENOMEM;
		}
		memcpy(dst->identities, src->identities,
		       src->n_identities * sizeof(*dst->identities));
	}
	dst->services = calloc(src->n_services ? src->n_services : 1, sizeof(*dst->services));
	if (!dst->services) {
		free(dst->identities);
		dst->identities = NULL;
		dst->n_identities = 0;
		dst->n_services = 0;
		return -ENOMEM;
	}
	for (size_t i = 0; i < src->n_services; i++) {
		const struct sl_service_cfg *a = &src->services[i];
		struct sl_service_cfg *b = &dst->services[i];

		*b = *a;
		b->backends = calloc(a->n_backends ? a->n_backends : 1, sizeof(*b->backends));
		if (!b->backends) {
			dst->n_services = i;
			goto fail;
		}
		if (a->n_backends)
			memcpy(b->backends, a->backends, a->n_backends * sizeof(*b->backends));
	}
	return 0;
fail:
	sl_config_free(dst);
	return -ENOMEM;
}

int sl_config_parse_service(const char *what, const char *text, size_t len,
			    const struct sl_config *agent, struct sl_service_cfg *out,
			    struct sl_problems *d)
{
	static const char head[] = "services: [";
	struct sl_config cfg;
	char *doc;
	int err;

	memset(out, 0, sizeof(*out));
	doc = malloc(sizeof(head) + len + 2);
	if (!doc) {
		sl_problems_add(d, what, 1, 1, "out of memory");
		return -1;
	}
	/* The text becomes the one item of a flow sequence: JSON as it is. */
	memcpy(doc, head, sizeof(head) - 1);
	memcpy(doc + sizeof(head) - 1, text, len);
	memcpy(doc + sizeof(head) - 1 + len, "]\n", 3);
	err = sl_config_parse(what, doc, sizeof(head) - 1 + len + 2, &cfg, d);
	free(doc);
	if (err)
		return -1;
	if (cfg.n_services != 1) {
		sl_problems_add(d, what, 1, 1, "want exactly one service");
		sl_config_free(&cfg);
		return -1;
	}
	if (agent && cfg.services[0].n_backends > agent->agent.limits.backends) {
		sl_problems_add(d, what, 1, 1, "%zu backends, more than agent.limits.backends (%u)",
				cfg.services[0].n_backends, agent->agent.limits.backends);
		sl_config_free(&cfg);
		return -1;
	}
	*out = cfg.services[0];
	cfg.services[0].backends = NULL;
	sl_config_free(&cfg);
	return 0;
}
