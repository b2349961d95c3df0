// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* agent: and registry: of the config, sluice.yaml(5) AGENT and REGISTRY. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_yaml.h"
#include "services.h"

static const struct yw_key limits_keys[] = {
    YW_KEY_UINT("services", struct sl_limits, services, 1, SLUICE_MAX_SERVICES),
    YW_KEY_UINT("backends", struct sl_limits, backends, 1, SLUICE_MAX_BACKENDS),
    YW_KEY_UINT("revnat", struct sl_limits, revnat, 1024, 1U << 24),
};
static const struct yw_schema limits_schema = YW_SCHEMA("agent.limits", 0, NULL, limits_keys);

static void agent_limits(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;

	(void)label;
	yw_walk(w, v, &limits_schema, &cfg->agent.limits, NULL, NULL);
}

/* "HOST:PORT" to listen on, or "" for none. */
static void agent_metrics(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label), *why;

	if (!s)
		return;
	cfg->agent.metrics_on = *s != '\0';
	if (cfg->agent.metrics_on && sl_parse_hostport(s, &cfg->agent.metrics, &why))
		yw_err(w, v, "metrics '%s': %s", s, why);
}

static void agent_api(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (*s && s[0] != '/')
		yw_err(w, v, "'api' must be an absolute path or \"\"");
	else if (strlen(s) >= sizeof(cfg->agent.api))
		yw_err(w, v, "'api' is longer than a Unix socket path may be (%zu)",
		       sizeof(cfg->agent.api) - 1);
	else
		strcpy(cfg->agent.api, s);
}

/* One glob of agent.interfaces: 0, or -1 when the list is full. */
static int agent_glob(struct walker *w, yaml_node_t *g, const char *label, struct sl_config *cfg)
{
	const char *s = yw_want_scalar(w, g, label);

	if (!s)
		return 0;
	if (!*s || strlen(s) >= SL_INTERFACE_GLOB_LEN) {
		yw_err(w, g, "interface glob must be 1..%d characters", SL_INTERFACE_GLOB_LEN - 1);
		return 0;
	}
	if (cfg->agent.n_interfaces == SL_MAX_INTERFACES) {
		yw_err(w, g, "more than %d interface globs", SL_MAX_INTERFACES);
		return -1;
	}
	strcpy(cfg->agent.interfaces[cfg->agent.n_interfaces++], s);
	return 0;
}

static void agent_interfaces(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	yaml_node_item_t *it;
	int full = 0;

	if (v->type != YAML_SEQUENCE_NODE) {
		yw_err(w, v, "'interfaces' must be a list of interface name globs");
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top && !full; it++) {
		yaml_node_t *g = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - v->data.sequence.items.start));

		full = g && agent_glob(w, g, label, ctx);
		yw_pop(w, mark);
	}
}

/* agent.frontends: the CIDRs every frontend must lie in. Read twice (cfg_parse_agent_first,
 * then the walk of agent), so the list starts afresh each time. */
static void agent_frontends(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	yaml_node_item_t *it;

	cfg->agent.n_frontends = 0;
	if (v->type != YAML_SEQUENCE_NODE) {
		yw_err(w, v, "'frontends' must be a list of CIDRs");
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - v->data.sequence.items.start));
		const char *s = e ? yw_want_scalar(w, e, label) : NULL, *why;
		struct sl_cidr c;
		int full = cfg->agent.n_frontends == SL_MAX_FRONTEND_CIDRS;

		if (s && full)
			yw_err(w, e, "agent.frontends: at most %d CIDRs", SL_MAX_FRONTEND_CIDRS);
		else if (s && sl_parse_cidr(s, &c, &why))
			yw_err(w, e, "agent.frontends '%s': %s", s, why);
		else if (s)
			cfg->agent.frontends[cfg->agent.n_frontends++] = c;
		yw_pop(w, mark);
		if (s && full)
			return;
	}
}

/* A node name: a host name's characters, so that it reads the same in a log line, a label
 * value and an etcd key. NULL when valid, else why not. */
static const char *node_invalid(const char *s)
{
	size_t len = strlen(s);

	if (!len || len >= SL_NODE_LEN)
		return "must be 1..63 characters";
	if (!isalnum((unsigned char)s[0]))
		return "must start with a letter or digit";
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return "may hold only letters, digits, '_', '.' and '-'";
	return NULL;
}

static void agent_node(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label), *why;

	if (!s)
		return;
	if (!*s)
		return; /* "": the hostname, as without the key */
	why = node_invalid(s);
	if (why)
		yw_err(w, v, "agent.node '%.*s' %s", SL_NODE_LEN * 2, s, why);
	else
		strcpy(cfg->agent.node, s);
}

static void agent_zone(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label);
	struct sl_problem p;

	if (!s || !*s) /* "": no zone */
		return;
	if (sl_zone_check(s, &p))
		yw_err(w, v, "agent.%s", p.msg);
	else
		strcpy(cfg->agent.zone, s);
}

const char *sl_agent_node(const struct sl_agent_cfg *a)
{
	return a->node[0] ? a->node : "unknown";
}

/* agent.node's default: the hostname, when it makes a valid node name (else "", which
 * sl_agent_node names "unknown"). */
static void agent_node_default(struct sl_config *cfg)
{
	char host[256];

	if (cfg->agent.node[0] || gethostname(host, sizeof(host)))
		return;
	host[sizeof(host) - 1] = '\0';
	if (!node_invalid(host))
		strcpy(cfg->agent.node, host);
}

/* YAML 1.1 reads a bare off as a boolean: its spelling false is accepted too. */
static const struct yw_enum redirect_values[] = {
    {"off", 0, 0}, {"false", 0, 1}, {"local", 1, 0}, {NULL, 0, 0}};
static const struct yw_enum audit_values[] = {{"denied", 0, 0}, {"all", 1, 0}, {NULL, 0, 0}};

static const struct yw_key agent_keys[] = {
    YW_KEY_PATH("cgroup", struct sl_config, agent.cgroup),
    YW_KEY_PATH("bpffs", struct sl_config, agent.bpffs),
    YW_KEY_FN("limits", agent_limits),
    YW_KEY_FN("metrics", agent_metrics),
    YW_KEY_FN("api", agent_api),
    YW_KEY_FN("interfaces", agent_interfaces),
    YW_KEY_FN("frontends", agent_frontends),
    YW_KEY_ENUM("redirect", struct sl_config, agent.redirect_local, redirect_values),
    YW_KEY_PATH("state", struct sl_config, agent.state),
    YW_KEY_PATH("audit_log", struct sl_config, agent.audit_log),
    YW_KEY_ENUM("audit", struct sl_config, audit_all, audit_values),
    YW_KEY_FN("node", agent_node),
    YW_KEY_FN("zone", agent_zone),
};
const struct yw_schema cfg_agent_schema = YW_SCHEMA("agent", 0, NULL, agent_keys);

static void etcd_prefix(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (s[0] != '/' || strlen(s) >= SL_ETCD_PREFIX_LEN)
		yw_err(w, v, "registry.etcd.prefix must start with '/' and be under %d characters",
		       SL_ETCD_PREFIX_LEN);
	else
		strcpy(cfg->agent.etcd_prefix, s);
}

/* An etcd user name: no control characters (it goes into a JSON request, never a log line). */
static void etcd_user(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label);
	size_t len;

	if (!s)
		return;
	len = strlen(s);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			len = SIZE_MAX;
	if (!len || len >= SL_ETCD_USER_LEN)
		yw_err(w, v,
		       "registry.etcd.user must be a name under %d characters, without control "
		       "characters",
		       SL_ETCD_USER_LEN);
	else
		strcpy(cfg->agent.etcd_user, s);
}

/* One URL of registry.etcd.endpoints: 0, or -1 when the list is full. */
static int etcd_endpoint(struct walker *w, yaml_node_t *e, struct sl_config *cfg)
{
	const char *s = yw_want_scalar(w, e, "registry.etcd.endpoints[]");

	if (!s)
		return 0;
	if (cfg->agent.n_etcd == SL_MAX_ETCD_ENDPOINTS) {
		yw_err(w, e, "registry.etcd.endpoints: at most %d", SL_MAX_ETCD_ENDPOINTS);
		return -1;
	}
	if ((strncmp(s, "http://", 7) || !s[7]) && (strncmp(s, "https://", 8) || !s[8])) {
		yw_err(w, e, "etcd endpoint '%s': want http://HOST:PORT or https://HOST:PORT", s);
		return 0;
	}
	if (strlen(s) >= SL_ETCD_URL_LEN || strpbrk(s, " \t\"'")) {
		yw_err(w, e, "etcd endpoint '%s': want http://HOST:PORT, under %d characters", s,
		       SL_ETCD_URL_LEN);
		return 0;
	}
	strcpy(cfg->agent.etcd_endpoints[cfg->agent.n_etcd++], s);
	return 0;
}

static void etcd_endpoints(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	yaml_node_item_t *it;
	int full = 0;

	(void)label;
	((struct sl_config *)ctx)->agent.n_etcd = 0; /* read twice, as agent.frontends */
	if (v->type != YAML_SEQUENCE_NODE) {
		yw_err(w, v, "registry.etcd.endpoints must be a list of URLs");
		return;
	}
	if (!yw_len(v))
		yw_err(w, v, "registry.etcd.endpoints is empty");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top && !full; it++) {
		yaml_node_t *e = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - v->data.sequence.items.start));

		full = e && etcd_endpoint(w, e, ctx);
		yw_pop(w, mark);
	}
}

enum { EK_ENDPOINTS, EK_PREFIX, EK_CA, EK_CERT, EK_KEY, EK_USER, EK_PASSWORD_FILE, EK__N };
static const struct yw_key etcd_keys[EK__N] = {
    [EK_ENDPOINTS] = YW_KEY_NEED("endpoints", etcd_endpoints),
    [EK_PREFIX] = YW_KEY_FN("prefix", etcd_prefix),
    [EK_CA] = YW_KEY_PATH("ca", struct sl_config, agent.etcd_ca),
    [EK_CERT] = YW_KEY_PATH("cert", struct sl_config, agent.etcd_cert),
    [EK_KEY] = YW_KEY_PATH("key", struct sl_config, agent.etcd_key),
    [EK_USER] = YW_KEY_FN("user", etcd_user),
    [EK_PASSWORD_FILE] = YW_KEY_PATH("password_file", struct sl_config, agent.etcd_password_file),
};
static const struct yw_schema etcd_schema =
    YW_SCHEMA("registry.etcd", 1, "registry.etcd needs '%s'", etcd_keys);

/* ca, cert and key come together, and then every endpoint is https://; without them every
 * endpoint is http://. Each endpoint of the wrong scheme is reported. */
static void etcd_tls(struct walker *w, yaml_node_t *v, yaml_node_t **vals, struct sl_config *cfg)
{
	static const char *const names[] = {"ca", "cert", "key"};
	const char *files[] = {cfg->agent.etcd_ca, cfg->agent.etcd_cert, cfg->agent.etcd_key};
	yaml_node_t *eps = vals[EK_ENDPOINTS];
	int given = 0, tls;

	for (size_t i = 0; i < 3; i++)
		given += vals[EK_CA + i] != NULL;
	for (size_t i = 0; i < 3 && given && given < 3; i++)
		if (!vals[EK_CA + i]) {
			yw_err(w, v,
			       "registry.etcd: ca, cert and key come together; '%s' is missing",
			       names[i]);
			return;
		}
	tls = given == 3 && files[0][0] && files[1][0] && files[2][0];
	if (!eps || eps->type != YAML_SEQUENCE_NODE || (given && !tls))
		return;
	for (yaml_node_item_t *it = eps->data.sequence.items.start;
	     it < eps->data.sequence.items.top; it++) {
		yaml_node_t *e = yw_node(w, *it);
		const char *s = e ? yw_scalar(e) : NULL;
		size_t mark;

		if (!s || (tls ? !strncmp(s, "https://", 8) : !!strncmp(s, "https://", 8)))
			continue;
		mark = yw_push_key(w, "endpoints");
		yw_push_index(w, (size_t)(it - eps->data.sequence.items.start));
		if (tls)
			yw_err(w, e,
			       "etcd endpoint '%s': with registry.etcd.ca, cert and key, want "
			       "https://HOST:PORT",
			       s);
		else
			yw_err(w, e,
			       "etcd endpoint '%s': https:// needs registry.etcd.ca, cert and key",
			       s);
		yw_pop(w, mark);
	}
}

/* user and password_file come together, and only with TLS: etcd's JSON gateway takes the
 * user from a password login, never from the client certificate, and the password must not
 * cross the network in clear. 0, or -1 when reported. */
static int etcd_auth(struct walker *w, yaml_node_t *v, yaml_node_t **vals)
{
	yaml_node_t *user = vals[EK_USER], *pw = vals[EK_PASSWORD_FILE];

	if (!user && !pw)
		return 0;
	if (!user || !pw) {
		yw_err(w, v, "registry.etcd: user and password_file come together; '%s' is missing",
		       user ? "password_file" : "user");
		return -1;
	}
	if (!vals[EK_CA]) {
		size_t mark = yw_push_key(w, "user");

		yw_err(
		    w, user,
		    "registry.etcd.user needs TLS (registry.etcd.ca, cert and key): the password "
		    "must not cross the network in clear");
		yw_pop(w, mark);
		return -1;
	}
	return 0;
}

static void registry_etcd(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	yaml_node_t *vals[EK__N] = {0};
	size_t before = w->d->n;

	(void)label;
	if (!yw_walk(w, v, &etcd_schema, ctx, ctx, vals) && w->d->n == before)
		if (!etcd_auth(w, v, vals))
			etcd_tls(w, v, vals, ctx);
}

static const struct yw_key registry_keys[] = {YW_KEY_FN("etcd", registry_etcd)};
const struct yw_schema cfg_registry_schema = YW_SCHEMA("registry", 0, NULL, registry_keys);

/* The limits must be known before services are counted against them, and the frontends and
 * etcd endpoints before frontends are checked: every agent.limits, agent.frontends and
 * registry.etcd.endpoints is read first, quietly (the walks of agent and registry report
 * their problems in file order). */
void cfg_parse_agent_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	struct sl_problems scratch = {0};
	struct walker quiet = *w;
	yaml_node_pair_t *a = NULL, *l;
	yaml_node_t *agent, *v, *reg, *etcd;

	quiet.d = &scratch;
	agent_node_default(cfg);
	while ((agent = yw_get(w, root, "agent", &a))) {
		l = NULL;
		while ((v = yw_get(w, agent, "limits", &l)))
			yw_walk(&quiet, v, &limits_schema, &cfg->agent.limits, NULL, NULL);
		l = NULL;
		while ((v = yw_get(w, agent, "frontends", &l)))
			agent_frontends(&quiet, "frontends", v, cfg);
	}
	a = NULL;
	while ((reg = yw_get(w, root, "registry", &a))) {
		yaml_node_pair_t *r = NULL;

		while ((etcd = yw_get(w, reg, "etcd", &r))) {
			l = NULL;
			while ((v = yw_get(w, etcd, "endpoints", &l)))
				etcd_endpoints(&quiet, "endpoints", v, cfg);
		}
	}
	sl_problems_free(&scratch);
}
