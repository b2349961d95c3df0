// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Config parsing walks libyaml's document tree so that every node keeps its
 * position: each problem is reported as FILE:LINE:COL, all of them in one
 * pass, and a config with any problem is rejected whole.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config.h"

#define DEFAULT_BPFFS	"/sys/fs/bpf/sluice"
#define DEFAULT_METRICS "127.0.0.1:9464"
#define DEFAULT_API	"/run/sluice/sluiced.sock"

void sl_diag_add(struct sl_diag *d, const char *file, unsigned int line, unsigned int col,
		 const char *fmt, ...)
{
	char msg[512], *full;
	char **grown;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&full, "%s:%u:%u: %s", file, line, col, msg) < 0)
		return;
	grown = realloc(d->msgs, (d->n + 1) * sizeof(*d->msgs));
	if (!grown) {
		free(full);
		return;
	}
	d->msgs = grown;
	d->msgs[d->n++] = full;
}

void sl_diag_free(struct sl_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = 0;
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
	struct sl_diag *d;
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
	sl_diag_add(w->d, w->file, (unsigned int)n->start_mark.line + 1,
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

static void want_uint(struct walker *w, yaml_node_t *v, const char *key, uint64_t min, uint64_t max,
		      uint32_t *out)
{
	const char *s = want_scalar(w, v, key);
	const char *why;
	uint64_t u;

	if (!s)
		return;
	if (sl_parse_uint(s, min, max, &u, &why)) {
		werr(w, v, "'%s': %s (want %llu..%llu)", key, why, (unsigned long long)min,
		     (unsigned long long)max);
		return;
	}
	*out = (uint32_t)u;
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
		cfg->redirect_local = 0;
	else if (!strcmp(s, "local"))
		cfg->redirect_local = 1;
	else
		werr(w, v, "redirect '%s': want off or local", s);
}

/* "HOST:PORT" to listen on, or "" for none. */
static void want_listen(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "metrics"), *why;

	if (!s)
		return;
	cfg->metrics_on = *s != '\0';
	if (cfg->metrics_on && sl_parse_hostport(s, &cfg->metrics, &why))
		werr(w, v, "metrics '%s': %s", s, why);
}

static void want_api(struct walker *w, yaml_node_t *v, struct sl_config *cfg)
{
	const char *s = want_scalar(w, v, "api");

	if (!s)
		return;
	if (*s && s[0] != '/')
		werr(w, v, "'api' must be an absolute path or \"\"");
	else if (strlen(s) >= sizeof(cfg->api))
		werr(w, v, "'api' is longer than a Unix socket path may be (%zu)",
		     sizeof(cfg->api) - 1);
	else
		strcpy(cfg->api, s);
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
		if (cfg->n_interfaces == SL_MAX_INTERFACES) {
			werr(w, g, "more than %d interface globs", SL_MAX_INTERFACES);
			return;
		}
		strcpy(cfg->interfaces[cfg->n_interfaces++], s);
	}
}

static void agent_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	static const char *const known[] = {"services", "backends", "revnat", NULL};
	struct sl_config *cfg = obj;

	if (!strcmp(key, "cgroup"))
		want_path(w, v, key, cfg->cgroup, sizeof(cfg->cgroup));
	else if (!strcmp(key, "bpffs"))
		want_path(w, v, key, cfg->bpffs, sizeof(cfg->bpffs));
	else if (!strcmp(key, "limits"))
		walk_mapping(w, v, "agent.limits", known, NULL, limits_field, &cfg->limits);
	else if (!strcmp(key, "metrics"))
		want_listen(w, v, cfg);
	else if (!strcmp(key, "api"))
		want_api(w, v, cfg);
	else if (!strcmp(key, "interfaces"))
		want_globs(w, v, cfg);
	else if (!strcmp(key, "redirect"))
		want_redirect(w, v, cfg);
}

struct backend_ctx {
	struct sl_backend_cfg *be;
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
	yaml_node_t *backends;
	yaml_node_t *frontend_node;
	int has_name, has_frontend;
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

static void service_field(struct walker *w, const char *key, yaml_node_t *v, void *obj)
{
	struct service_ctx *sc = obj;
	const char *s = NULL, *why;

	/* Present, even when its value is bad: no "has no 'name'" on top. */
	if (!strcmp(key, "name"))
		sc->has_name = 1;
	else if (!strcmp(key, "frontend"))
		sc->has_frontend = -1;
	if (strcmp(key, "backends")) {
		s = want_scalar(w, v, key);
		if (!s)
			return;
	}
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
			werr(w, v, "lb 'least_conn' is not implemented in this version of sluice");
		else
			werr(w, v, "lb '%s': want random, round_robin or maglev", s);
	} else if (!strcmp(key, "backends")) {
		sc->backends = v;
	}
}

static void parse_backends(struct walker *w, struct service_ctx *sc)
{
	static const char *const known[] = {"address", "weight", "subset", NULL};
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
		struct backend_ctx bc = {.be = be};

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
	static const char *const known[] = {"name", "frontend", "protocol", "lb", "backends", NULL};
	static const char *const later[] = {"affinity",		 "split",	    "health_check",
					    "outlier_detection", "circuit_breaker", "rate_limit",
					    "timeouts",		 "policy",	    NULL};
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
		struct service_ctx sc = {.svc = svc};
		int ok = 1;

		if (!sn)
			continue;
		svc->proto = SLUICE_PROTO_TCP;
		svc->lb = SLUICE_LB_RANDOM;
		if (walk_mapping(w, sn, "service", known, later, service_field, &sc))
			continue;
		if (!sc.has_name) {
			werr(w, sn, "service has no 'name'");
			ok = 0;
		}
		if (!sc.has_frontend) {
			werr(w, sn, "service has no 'frontend'");
			ok = 0;
		}
		if (sc.backends)
			parse_backends(w, &sc);
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
		if (ok && cfg->n_services + 1 > cfg->limits.services) {
			werr(w, sn,
			     "service '%s' is one more than agent.limits.services (%u) holds",
			     svc->name, cfg->limits.services);
			ok = 0;
		}
		if (ok && total_backends + svc->n_backends > cfg->limits.backends) {
			werr(w, sn,
			     "service '%s' brings the backends to %zu, more than "
			     "agent.limits.backends (%u)",
			     svc->name, total_backends + svc->n_backends, cfg->limits.backends);
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
	static const char *const agent_known[] = {"cgroup", "bpffs",	  "limits",   "metrics",
						  "api",    "interfaces", "redirect", NULL};
	static const char *const agent_later[] = {"node", "state", "audit_log", NULL};
	struct sl_config *cfg = obj;

	if (!strcmp(key, "agent"))
		walk_mapping(w, v, "agent", agent_known, agent_later, agent_field, cfg);
	else if (!strcmp(key, "services"))
		parse_services(w, v, cfg);
}

static void config_defaults(struct sl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->bpffs, DEFAULT_BPFFS);
	strcpy(cfg->api, DEFAULT_API);
	/* tools/bench/redirect.sh measured a gain on every figure: on by default. */
	cfg->redirect_local = 1;
	cfg->metrics_on = 1;
	if (sl_parse_hostport(DEFAULT_METRICS, &cfg->metrics, &(const char *){NULL}))
		cfg->metrics_on = 0;
	cfg->limits.services = SLUICE_DEFAULT_SERVICES;
	cfg->limits.backends = SLUICE_DEFAULT_BACKENDS;
	cfg->limits.revnat = SLUICE_DEFAULT_REVNAT;
}

/* The limits must be known before services are counted against them. */
static void parse_limits_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	static const char *const known[] = {"services", "backends", "revnat", NULL};
	struct sl_diag scratch = {0};
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
					     &cfg->limits);
		}
	}
	sl_diag_free(&scratch);
}

int sl_config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
		    struct sl_diag *d)
{
	static const char *const root_known[] = {"agent", "services", NULL};
	static const char *const root_later[] = {"identities", "registry", NULL};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct walker w = {.file = file, .doc = &doc, .d = d};
	size_t before = d->n;

	config_defaults(cfg);
	if (!yaml_parser_initialize(&parser)) {
		sl_diag_add(d, file, 1, 1, "cannot initialise the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		sl_diag_add(d, file, (unsigned int)parser.problem_mark.line + 1,
			    (unsigned int)parser.problem_mark.column + 1, "YAML syntax: %s%s%s",
			    parser.problem ? parser.problem : "unknown error",
			    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		sl_diag_add(d, file, 1, 1, "the configuration is empty");
	} else {
		parse_limits_first(&w, root, cfg);
		if (walk_mapping(&w, root, "configuration", root_known, root_later, root_field,
				 cfg) == 0) {
			/* Only one document per file. */
			yaml_document_t extra;

			if (yaml_parser_load(&parser, &extra)) {
				if (yaml_document_get_root_node(&extra))
					sl_diag_add(d, file,
						    (unsigned int)extra.start_mark.line + 1,
						    (unsigned int)extra.start_mark.column + 1,
						    "only one YAML document is allowed");
				yaml_document_delete(&extra);
			} else {
				sl_diag_add(d, file, (unsigned int)parser.problem_mark.line + 1,
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

int sl_config_load(const char *path, struct sl_config *cfg, struct sl_diag *d)
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
		sl_diag_add(d, path, 1, 1, "cannot open: %s", strerror(errno));
		return -1;
	}
	mem = open_memstream(&text, &len);
	if (!mem) {
		fclose(f);
		sl_diag_add(d, path, 1, 1, "out of memory");
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	err = ferror(f);
	fclose(f);
	if (fclose(mem) || err) {
		free(text);
		sl_diag_add(d, path, 1, 1, "cannot read: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	err = sl_config_parse(path, text, len, cfg, d);
	free(text);
	return err;
}

void sl_config_free(struct sl_config *cfg)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		free(cfg->services[i].backends);
	free(cfg->services);
	cfg->services = NULL;
	cfg->n_services = 0;
}
