// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* services: of the config, sluice.yaml(5) SERVICES; the rules between services are
 * services.c's, shared with the registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"
#include "hidx.h"
#include "services.h"

struct service_ctx {
	struct sl_service_cfg *svc;
	const struct sl_config *cfg; /* identities, for policy and backends */
	int frontend_ok;	     /* the frontend was read */
	/* Blocks whose checks need the whole service (protocol, backends):
	 * their value nodes, set only when the block itself was valid. */
	yaml_node_t *split, *health, *outlier, *breaker, *timeouts;
};

static void service_name(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (strlen(s) >= SLUICE_NAME_LEN)
		yw_err(w, v, "service name '%s' is longer than %d characters", s,
		       SLUICE_NAME_LEN - 1);
	else if (!yw_valid_name(s))
		yw_err(w, v, "service name '%s' must match [a-z0-9][a-z0-9_.-]*", s);
	else
		strcpy(sc->svc->name, s);
}

static void service_frontend(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	const char *s = yw_want_scalar(w, v, label), *why;
	struct sl_problem p;

	if (!s)
		return;
	if (sl_parse_hostport(s, &sc->svc->frontend, &why))
		yw_err(w, v, "frontend '%s': %s", s, why);
	else if (sl_frontend_check(&sc->cfg->agent, &sc->svc->frontend, &p))
		yw_err(w, v, "%s", p.msg);
	else
		sc->frontend_ok = 1;
}

/* ---- split ------------------------------------------------------------------------------ */

/* One SUBSET: PERCENT pair of split: 0, or -1 after a problem. */
static int split_pair(struct walker *w, yaml_node_t *v, yaml_node_pair_t *p, struct sl_split_cfg *e)
{
	yaml_node_t *k = yw_node(w, p->key), *pv = yw_node(w, p->value);
	const char *name = yw_scalar(k), *pct, *why;
	uint64_t u;

	if (!k || !pv)
		return -1;
	if (!name) {
		yw_err(w, k, "split: keys must be subset names");
		return -1;
	}
	if (!*name || strlen(name) >= SLUICE_SUBSET_LEN) {
		yw_err(w, k, "split: subset name must be 1..%d characters", SLUICE_SUBSET_LEN - 1);
		return -1;
	}
	for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < p; q++) {
		if (yw_scalar(yw_node(w, q->key)) && !strcmp(yw_scalar(yw_node(w, q->key)), name)) {
			yw_err_key(w, k, name, "split: duplicate subset '%s'", name);
			return -1;
		}
	}
	pct = yw_scalar(pv);
	if (!pct) {
		yw_err_key(w, pv, name, "split: percent of subset '%s' must be a scalar", name);
		return -1;
	}
	if (sl_parse_uint(pct, 0, 100, &u, &why)) {
		yw_err_key(w, pv, name, "split: percent of subset '%s': %s (want 0..100)", name,
			   why);
		return -1;
	}
	strcpy(e->subset, name);
	e->percent = (uint8_t)u;
	return 0;
}

/* split: {SUBSET: PERCENT, ...}. The sum and the subsets' backends are checked once the
 * whole service is read (check_service). */
static void service_split(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	struct sl_service_cfg *svc = sc->svc;
	size_t before = w->d->n, n;

	(void)label;
	if (v->type != YAML_MAPPING_NODE) {
		yw_err(w, v, "'split' must be a mapping of subset to percent");
		return;
	}
	n = yw_len(v);
	if (n > SLUICE_MAX_SPLIT) {
		yw_err(w, v, "split has %zu subsets, more than the %d a service holds", n,
		       SLUICE_MAX_SPLIT);
		return;
	}
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++)
		if (!split_pair(w, v, p, &svc->split[svc->n_split]))
			svc->n_split++;
	if (w->d->n == before)
		sc->split = v;
}

/* ---- health_check --------------------------------------------------------------------- */

static void health_path(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_health_cfg *hc = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (s[0] != '/') {
		yw_err(w, v, "'%s' must start with '/'", label);
		return;
	}
	if (strlen(s) >= sizeof(hc->path)) {
		yw_err(w, v, "'%s' is longer than %zu characters", label, sizeof(hc->path) - 1);
		return;
	}
	for (const char *c = s; *c; c++) {
		if (*c <= ' ' || *c > '~') {
			yw_err(w, v, "'%s' must be printable ASCII without spaces", label);
			return;
		}
	}
	strcpy(hc->path, s);
}

static const struct yw_enum hc_types[] = {
    {"none", SL_HC_NONE, 0}, {"tcp", SL_HC_TCP, 0}, {"http", SL_HC_HTTP, 0}, {NULL, 0, 0}};

enum { HK_TYPE, HK_PORT, HK_PATH, HK_INTERVAL, HK_TIMEOUT, HK_HEALTHY, HK_UNHEALTHY, HK__N };
static const struct yw_key health_keys[HK__N] = {
    [HK_TYPE] = YW_KEY_ENUM("type", struct sl_health_cfg, type, hc_types),
    [HK_PORT] = YW_KEY_UINT("port", struct sl_health_cfg, port, 0, 65535),
    [HK_PATH] = YW_KEY_FN("path", health_path),
    [HK_INTERVAL] = YW_KEY_DURATION("interval", struct sl_health_cfg, interval_ms, 100, 3600000),
    [HK_TIMEOUT] = YW_KEY_DURATION("timeout", struct sl_health_cfg, timeout_ms, 10, 3600000),
    [HK_HEALTHY] =
	YW_KEY_UINT("healthy_threshold", struct sl_health_cfg, healthy_threshold, 1, 100),
    [HK_UNHEALTHY] =
	YW_KEY_UINT("unhealthy_threshold", struct sl_health_cfg, unhealthy_threshold, 1, 100),
};
static const struct yw_schema health_schema = YW_SCHEMA("health_check", 1, NULL, health_keys);

static void service_health(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	struct sl_health_cfg *hc = &sc->svc->health;
	yaml_node_t *vals[HK__N] = {0};
	size_t before = w->d->n;
	char a[24], b[24];

	(void)label;
	hc->type = SL_HC_TCP;
	hc->port = 0;
	strcpy(hc->path, "/healthz");
	hc->interval_ms = 2000;
	hc->timeout_ms = 1000;
	hc->healthy_threshold = 2;
	hc->unhealthy_threshold = 3;
	if (yw_walk(w, v, &health_schema, hc, hc, vals) || w->d->n != before)
		return;
	/* The default timeout never exceeds an interval shorter than it. */
	if (!vals[HK_TIMEOUT] && hc->timeout_ms > hc->interval_ms)
		hc->timeout_ms = hc->interval_ms;
	if (hc->timeout_ms > hc->interval_ms) {
		yw_err_key(w, vals[HK_TIMEOUT] ? vals[HK_TIMEOUT] : v, "timeout",
			   "health_check.timeout %s is longer than health_check.interval %s",
			   yw_fmt_duration(hc->timeout_ms, a, sizeof(a)),
			   yw_fmt_duration(hc->interval_ms, b, sizeof(b)));
		return;
	}
	if (hc->type == SL_HC_NONE)
		memset(hc, 0, sizeof(*hc)); /* the same as no block */
	else
		sc->health = v;
}

/* ---- outlier_detection, circuit_breaker, rate_limit, timeouts ------------------------------ */

static const struct yw_key outlier_keys[] = {
    YW_KEY_UINT("consecutive_failures", struct sl_outlier_cfg, consecutive_failures, 1, 1000),
    YW_KEY_DURATION("base_ejection_time", struct sl_outlier_cfg, base_ejection_ms, 1000, 300000),
    YW_KEY_UINT("max_ejection_percent", struct sl_outlier_cfg, max_ejection_percent, 0, 100),
};
static const struct yw_schema outlier_schema =
    YW_SCHEMA("outlier_detection", 1, NULL, outlier_keys);

static void service_outlier(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	struct sl_outlier_cfg *o = &sc->svc->outlier;

	(void)label;
	o->consecutive_failures = 5;
	o->base_ejection_ms = 30000;
	o->max_ejection_percent = 50;
	if (!yw_walk(w, v, &outlier_schema, o, o, NULL))
		sc->outlier = v;
}

static const struct yw_key breaker_keys[] = {
    YW_KEY_UINT("max_connections", struct sl_service_cfg, max_connections, 0, 1000000),
};
static const struct yw_schema breaker_schema = YW_SCHEMA("circuit_breaker", 1, NULL, breaker_keys);

static void service_breaker(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	(void)label;
	if (!yw_walk(w, v, &breaker_schema, sc->svc, sc, NULL))
		sc->breaker = v;
}

enum { RK_RATE, RK_BURST, RK__N };
static const struct yw_key rate_keys[RK__N] = {
    [RK_RATE] =
	YW_KEY_UINT("connections_per_second", struct sl_service_cfg, rate_per_sec, 0, 1000000),
    [RK_BURST] = YW_KEY_UINT("burst", struct sl_service_cfg, rate_burst, 0, 1000000),
};
static const struct yw_schema rate_schema = YW_SCHEMA("rate_limit", 1, NULL, rate_keys);

static void service_rate(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;
	struct sl_service_cfg *svc = sc->svc;
	yaml_node_t *vals[RK__N] = {0}, *at;
	size_t before = w->d->n;

	(void)label;
	if (yw_walk(w, v, &rate_schema, svc, sc, vals) || w->d->n != before)
		return;
	at = vals[RK_BURST] ? vals[RK_BURST] : v;
	if (svc->rate_per_sec && !svc->rate_burst)
		yw_err_key(w, at, "burst",
			   "rate_limit.burst must be at least 1 when connections_per_second is "
			   "set");
	else if (svc->rate_burst && !svc->rate_per_sec)
		yw_err_key(w, at, "burst",
			   "rate_limit.burst is set but connections_per_second is 0: set both or "
			   "neither");
}

static void timeouts_idle(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	if (!yw_want_duration(w, v, label, 0, 32767000, &sc->svc->idle_timeout_ms) &&
	    sc->svc->idle_timeout_ms % 1000) {
		yw_err(w, v, "timeouts.idle must be whole seconds: keepalive timers count seconds");
		sc->svc->idle_timeout_ms = 0;
	}
}

static const struct yw_key timeouts_keys[] = {
    YW_KEY_DURATION("connect", struct sl_service_cfg, connect_timeout_ms, 0, 3600000),
    YW_KEY_FN("idle", timeouts_idle),
};
static const struct yw_schema timeouts_schema = YW_SCHEMA("timeouts", 1, NULL, timeouts_keys);

static void service_timeouts(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	(void)label;
	if (!yw_walk(w, v, &timeouts_schema, sc->svc, sc, NULL))
		sc->timeouts = v;
}

/* ---- policy ------------------------------------------------------------------------------ */

/* allow_from or deny_from ('key'): identity names into the bits of *mask. */
static void policy_list(struct walker *w, const char *label, const char *key, yaml_node_t *v,
			const struct sl_config *cfg, uint64_t *mask)
{
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE) {
		yw_err(w, v, "'%s' must be a list of identity names", label);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - v->data.sequence.items.start));
		const char *s = e ? yw_want_scalar(w, e, key) : NULL;
		uint8_t id = s ? sl_identity_id(cfg->identities, cfg->n_identities, s) : 0;

		if (s && !id)
			yw_err(w, e, "%s names identity '%s', which 'identities' does not define",
			       label, s);
		else if (id)
			*mask |= 1ULL << (id - 1);
		yw_pop(w, mark);
	}
}

static void policy_allow(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	policy_list(w, label, "allow_from", v, sc->cfg, &sc->svc->policy.allow);
}

static void policy_deny(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	policy_list(w, label, "deny_from", v, sc->cfg, &sc->svc->policy.deny);
}

static const struct yw_enum policy_defaults[] = {{"allow", 0, 0}, {"deny", 1, 0}, {NULL, 0, 0}};
static const struct yw_key policy_keys[] = {
    YW_KEY_ENUM("default", struct sl_policy_cfg, default_deny, policy_defaults),
    YW_KEY_FN("allow_from", policy_allow),
    YW_KEY_FN("deny_from", policy_deny),
};
static const struct yw_schema policy_schema = YW_SCHEMA("policy", 1, NULL, policy_keys);

static void service_policy(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct service_ctx *sc = ctx;

	(void)label;
	sc->svc->policy.on = 1;
	yw_walk(w, v, &policy_schema, &sc->svc->policy, sc, NULL);
}

/* ---- a service -------------------------------------------------------------------------- */

static const struct yw_enum protocols[] = {
    {"tcp", SLUICE_PROTO_TCP, 0}, {"udp", SLUICE_PROTO_UDP, 0}, {NULL, 0, 0}};
static const struct yw_enum lbs[] = {{"random", SLUICE_LB_RANDOM, 0},
				     {"round_robin", SLUICE_LB_ROUND_ROBIN, 0},
				     {"maglev", SLUICE_LB_MAGLEV, 0},
				     {"least_conn", SLUICE_LB_LEAST_CONN, 0},
				     {NULL, 0, 0}};

enum {
	SK_NAME,
	SK_FRONTEND,
	SK_PROTOCOL,
	SK_LB,
	SK_BACKENDS,
	SK_AFFINITY,
	SK_SPLIT,
	SK_HEALTH,
	SK_OUTLIER,
	SK_BREAKER,
	SK_RATE,
	SK_TIMEOUTS,
	SK_POLICY,
	SK_MTLS,
	SK_CLOSE,
	SK_LOCALITY,
	SK__N
};
/* YAML 1.1 reads a bare off as a boolean: its spelling false is accepted too. */
static const struct yw_enum mtls_modes[] = {{"off", SL_MTLS_OFF, 0},
					    {"false", SL_MTLS_OFF, 1},
					    {"permissive", SL_MTLS_PERMISSIVE, 0},
					    {"strict", SL_MTLS_STRICT, 0},
					    {NULL, 0, 0}};
static const struct yw_enum booleans[] = {{"false", 0, 0}, {"true", 1, 0}, {NULL, 0, 0}};
static const struct yw_enum localities[] = {
    {"none", SL_LOCALITY_NONE, 0}, {"prefer_zone", SL_LOCALITY_PREFER_ZONE, 0}, {NULL, 0, 0}};
static const struct yw_key service_keys[SK__N] = {
    [SK_NAME] = YW_KEY_NEED("name", service_name),
    [SK_FRONTEND] = YW_KEY_NEED("frontend", service_frontend),
    [SK_PROTOCOL] = YW_KEY_ENUM("protocol", struct sl_service_cfg, proto, protocols),
    [SK_LB] = YW_KEY_ENUM("lb", struct sl_service_cfg, lb, lbs),
    [SK_BACKENDS] = YW_KEY_NODE("backends"), /* parse_backends, once name and frontend are known */
    [SK_AFFINITY] = YW_KEY_DURATION("affinity", struct sl_service_cfg, affinity_ms, 0, 86400000),
    [SK_SPLIT] = YW_KEY_FN("split", service_split),
    [SK_HEALTH] = YW_KEY_FN("health_check", service_health),
    [SK_OUTLIER] = YW_KEY_FN("outlier_detection", service_outlier),
    [SK_BREAKER] = YW_KEY_FN("circuit_breaker", service_breaker),
    [SK_RATE] = YW_KEY_FN("rate_limit", service_rate),
    [SK_TIMEOUTS] = YW_KEY_FN("timeouts", service_timeouts),
    [SK_POLICY] = YW_KEY_FN("policy", service_policy),
    [SK_MTLS] = YW_KEY_ENUM("mtls", struct sl_service_cfg, mtls, mtls_modes),
    [SK_CLOSE] = YW_KEY_ENUM("close_on_removal", struct sl_service_cfg, close_on_removal, booleans),
    [SK_LOCALITY] = YW_KEY_ENUM("locality", struct sl_service_cfg, locality, localities),
};
static const struct yw_schema service_schema =
    YW_SCHEMA("service", 0, "service has no '%s'", service_keys);
_Static_assert(SK__N <= YW_MAX_KEYS, "the largest mapping has more keys than yw_walk holds");

/* A valid split's sum, and its subsets against the backends. 'backends_ok' is 0 when a
 * backend was refused (its subset would be missing for no fault of the split). */
static void check_split(struct walker *w, struct service_ctx *sc, const char *name, int backends_ok)
{
	struct sl_service_cfg *svc = sc->svc;
	yaml_node_pair_t *p = sc->split->data.mapping.pairs.start;
	unsigned int sum = 0;

	for (size_t i = 0; i < svc->n_split; i++, p++) {
		yaml_node_t *k = yw_node(w, p->key);
		size_t j = 0;

		sum += svc->split[i].percent;
		while (j < svc->n_backends && strcmp(svc->backends[j].subset, svc->split[i].subset))
			j++;
		if (backends_ok && j == svc->n_backends)
			yw_err_key(w, k ? k : sc->split, "split",
				   "split names subset '%s' but no backend of service '%s' has it",
				   svc->split[i].subset, name);
	}
	if (sum != 100)
		yw_err_key(w, sc->split, "split", "split of service '%s' sums to %u, not 100", name,
			   sum);
}

/* What needs the whole service: the protocol may come after a block, and a split's subsets
 * must be carried by backends. */
static void check_service(struct walker *w, struct service_ctx *sc, int backends_ok)
{
	struct sl_service_cfg *svc = sc->svc;
	const char *name = svc->name[0] ? svc->name : "?";

	if (sc->split)
		check_split(w, sc, name, backends_ok);
	if (svc->proto != SLUICE_PROTO_UDP)
		return;
	if (sc->health && !svc->health.port)
		yw_err_key(w, sc->health, "health_check.port",
			   "health_check of udp service '%s' needs a 'port': probes are TCP", name);
	if (sc->outlier)
		yw_err_key(
		    w, sc->outlier, "outlier_detection",
		    "outlier_detection needs protocol tcp: failures are seen by TCP sockops");
	if (sc->breaker && svc->max_connections)
		yw_err_key(w, sc->breaker, "circuit_breaker",
			   "circuit_breaker needs protocol tcp: connections are counted by TCP "
			   "sockops");
	if (sc->timeouts && (svc->connect_timeout_ms || svc->idle_timeout_ms))
		yw_err_key(w, sc->timeouts, "timeouts",
			   "timeouts needs protocol tcp: they are TCP socket options");
}

/* mtls other than off needs the mtls: block, and TCP: UDP is never tunnelled. */
static void check_mtls(struct walker *w, const struct service_ctx *sc, yaml_node_t *v)
{
	const struct sl_service_cfg *svc = sc->svc;
	const char *name = svc->name[0] ? svc->name : "?";

	if (!v || svc->mtls == SL_MTLS_OFF)
		return;
	if (!sc->cfg->agent.mtls.on)
		yw_err_key(w, v, "mtls",
			   "mtls of service '%s' needs the top-level mtls: block (trust_domain, "
			   "ca, certs)",
			   name);
	else if (svc->proto == SLUICE_PROTO_UDP)
		yw_err_key(w, v, "mtls", "mtls needs protocol tcp: UDP is never tunnelled");
}

/* ---- backends --------------------------------------------------------------------------- */

struct backend_ctx {
	struct sl_backend_cfg *be;
	const struct sl_config *cfg; /* identities */
	int address_ok;
};

static void backend_address(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct backend_ctx *bc = ctx;
	const char *s = yw_want_scalar(w, v, label), *why;

	if (!s)
		return;
	if (sl_parse_hostport(s, &bc->be->addr, &why))
		yw_err(w, v, "backend address '%s': %s", s, why);
	else
		bc->address_ok = 1;
}

static void backend_identity(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct backend_ctx *bc = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	bc->be->identity = sl_identity_id(bc->cfg->identities, bc->cfg->n_identities, s);
	if (!bc->be->identity)
		yw_err(w, v, "backend identity '%s' is not defined in 'identities'", s);
}

static void backend_subset(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct backend_ctx *bc = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (!*s || strlen(s) >= SLUICE_SUBSET_LEN)
		yw_err(w, v, "'subset' must be 1..%d characters", SLUICE_SUBSET_LEN - 1);
	else
		strcpy(bc->be->subset, s);
}

static void backend_zone(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct backend_ctx *bc = ctx;
	const char *s = yw_want_scalar(w, v, label);
	struct sl_problem p;

	if (s && sl_zone_check(s, &p))
		yw_err(w, v, "%s", p.msg);
	else if (s)
		strcpy(bc->be->zone, s);
}

enum { BK_ADDRESS, BK_WEIGHT, BK_SUBSET, BK_IDENTITY, BK_ZONE, BK__N };
static const struct yw_key backend_keys[BK__N] = {
    [BK_ADDRESS] = YW_KEY_NEED("address", backend_address),
    [BK_WEIGHT] = YW_KEY_UINT("weight", struct sl_backend_cfg, weight, 1, 1000),
    [BK_SUBSET] = YW_KEY_FN("subset", backend_subset),
    [BK_IDENTITY] = YW_KEY_FN("identity", backend_identity),
    [BK_ZONE] = YW_KEY_FN("zone", backend_zone),
};
static const struct yw_schema backend_schema =
    YW_SCHEMA("backend", 0, "backend has no '%s'", backend_keys);

/* One backend: kept (svc->n_backends grows) when valid and new. */
static void parse_backend(struct walker *w, yaml_node_t *bn, struct service_ctx *sc)
{
	struct sl_service_cfg *svc = sc->svc;
	struct sl_backend_cfg *be = &svc->backends[svc->n_backends];
	struct backend_ctx bc = {.be = be, .cfg = sc->cfg};
	yaml_node_t *vals[BK__N] = {0};
	struct sl_problem p;

	memset(be, 0, sizeof(*be));
	be->weight = 1;
	if (yw_walk(w, bn, &backend_schema, be, &bc, vals) || !bc.address_ok)
		return;
	if (sl_service_check_backend(svc, &be->addr, sc->frontend_ok, SL_SVC_FILE, &p)) {
		yw_err_problem(w, bn, &p);
		return;
	}
	if (sl_identity_check(sc->cfg->identities, sc->cfg->n_identities, be->identity, &be->addr,
			      &p)) {
		yw_err_problem(w, vals[BK_IDENTITY], &p);
		return;
	}
	svc->n_backends++;
}

static void parse_backends(struct walker *w, yaml_node_t *seq, struct service_ctx *sc)
{
	struct sl_service_cfg *svc = sc->svc;
	struct sl_problem p;
	yaml_node_item_t *it;
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE) {
		yw_err(w, seq, "'backends' must be a list");
		return;
	}
	n = yw_len(seq);
	if (sl_service_check_room(svc->name, n, SL_SVC_FILE, &p)) {
		yw_err(w, seq, "%s", p.msg);
		return;
	}
	svc->backends = calloc(n ? n : 1, sizeof(*svc->backends));
	if (!svc->backends) {
		yw_err(w, seq, "out of memory");
		return;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *bn = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - seq->data.sequence.items.start));

		if (bn)
			parse_backend(w, bn, sc);
		yw_pop(w, mark);
	}
}

/* ---- the list ----------------------------------------------------------------------------- */

/* svc against the services read before it: name and frontend, each problem reported in the
 * order of the service it clashes with. 0, or -1 after a problem. */
static int check_unique(struct walker *w, const struct sl_config *cfg, const struct sl_svc_idx *u,
			const struct sl_service_cfg *svc, yaml_node_t *sn, yaml_node_t *fe_node)
{
	const struct sl_service_cfg *prev = cfg->services;
	const struct sl_service_cfg *same_name = sl_svc_idx_name(u, svc->name);
	const struct sl_service_cfg *same_fe = sl_svc_idx_frontend_user(u, svc);
	struct sl_problem pn, pf;

	if (same_fe && (!same_name || same_fe < same_name)) {
		sl_services_check_frontend(prev, cfg->n_services, svc, SL_SVC_FILE, &pf);
		yw_err_problem(w, fe_node, &pf);
	}
	if (same_name) {
		sl_services_check_name(prev, cfg->n_services, svc->name, SL_SVC_FILE, &pn);
		yw_err_problem(w, sn, &pn);
	}
	if (same_fe && same_name && same_fe > same_name) {
		sl_services_check_frontend(prev, cfg->n_services, svc, SL_SVC_FILE, &pf);
		yw_err_problem(w, fe_node, &pf);
	}
	return same_name || same_fe ? -1 : 0;
}

/* One service: kept (cfg->n_services grows, and *total by its backends) when valid, new and
 * within agent.limits. */
static void parse_service(struct walker *w, yaml_node_t *sn, struct sl_config *cfg,
			  struct sl_svc_idx *u, size_t *total)
{
	struct sl_service_cfg *svc = &cfg->services[cfg->n_services];
	struct service_ctx sc = {.svc = svc, .cfg = cfg};
	yaml_node_t *vals[SK__N] = {0};
	struct sl_problem p;
	size_t before, mark;
	int rc;

	svc->proto = SLUICE_PROTO_TCP;
	svc->lb = SLUICE_LB_RANDOM;
	rc = yw_walk(w, sn, &service_schema, svc, &sc, vals);
	if (rc < 0)
		return;
	before = w->d->n;
	if (vals[SK_BACKENDS]) {
		mark = yw_push_key(w, "backends");
		parse_backends(w, vals[SK_BACKENDS], &sc);
		yw_pop(w, mark);
	}
	check_service(w, &sc, w->d->n == before);
	check_mtls(w, &sc, vals[SK_MTLS]);
	if (rc || !svc->name[0] || !sc.frontend_ok ||
	    check_unique(w, cfg, u, svc, sn, vals[SK_FRONTEND]))
		goto drop;
	if (sl_services_check_limits(&cfg->agent.limits, cfg->n_services + 1,
				     *total + svc->n_backends, svc->name, &p)) {
		yw_err_problem(w, sn, &p);
		goto drop;
	}
	*total += svc->n_backends;
	sl_svc_idx_add(u, cfg->n_services);
	cfg->n_services++;
	return;
drop:
	free(svc->backends);
	memset(svc, 0, sizeof(*svc));
}

void cfg_parse_services(struct walker *w, const char *label, yaml_node_t *seq, void *ctx)
{
	struct sl_config *cfg = ctx;
	struct sl_svc_idx u = {0};
	yaml_node_item_t *it;
	size_t n, total = 0;

	(void)label;
	if (seq->type != YAML_SEQUENCE_NODE) {
		yw_err(w, seq, "'services' must be a list");
		return;
	}
	n = yw_len(seq);
	cfg->services = calloc(n ? n : 1, sizeof(*cfg->services));
	if (!cfg->services || sl_svc_idx_init(&u, cfg->services, n)) {
		yw_err(w, seq, "out of memory");
		return;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *sn = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - seq->data.sequence.items.start));

		if (sn)
			parse_service(w, sn, cfg, &u, &total);
		yw_pop(w, mark);
	}
	sl_svc_idx_free(&u);
}
