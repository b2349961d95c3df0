// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config: parse (the YAML walker is config_yaml.c; the agent, services and identities
 * parts are config_agent.c, config_services.c and config_identities.c), load, copy and free.
 * Every problem is reported as FILE:LINE:COL, all of them in one pass, and a config with any
 * problem is rejected whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"
#include "services.h"

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
    AGENT_FIELD(frontends, "agent.frontends"),
    AGENT_FIELD(n_frontends, "agent.frontends"),
    AGENT_FIELD(etcd_endpoints, "registry.etcd"),
    AGENT_FIELD(n_etcd, "registry.etcd"),
    AGENT_FIELD(etcd_prefix, "registry.etcd"),
    AGENT_FIELD(etcd_ca, "registry.etcd.ca"),
    AGENT_FIELD(etcd_cert, "registry.etcd.cert"),
    AGENT_FIELD(etcd_key, "registry.etcd.key"),
    AGENT_FIELD(etcd_user, "registry.etcd.user"),
    AGENT_FIELD(etcd_password_file, "registry.etcd.password_file"),
    AGENT_FIELD(audit_log, "agent.audit_log"),
    AGENT_FIELD(mtls.on, "mtls"),
    AGENT_FIELD(mtls.trust_domain, "mtls.trust_domain"),
    AGENT_FIELD(mtls.ca, "mtls.ca"),
    AGENT_FIELD(mtls.certs, "mtls.certs"),
    AGENT_FIELD(mtls.port, "mtls.port"),
    AGENT_FIELD(mtls.outbound_port, "mtls.outbound_port"),
    AGENT_FIELD(tracing.on, "tracing"),
    AGENT_FIELD(tracing.endpoint, "tracing.endpoint"),
    AGENT_FIELD(tracing.queue_size, "tracing.queue_size"),
    AGENT_FIELD(tracing.batch_size, "tracing.batch_size"),
    AGENT_FIELD(tracing.batch_delay_ms, "tracing.batch_delay"),
    AGENT_FIELD(tracing.timeout_ms, "tracing.timeout"),
    AGENT_FIELD(node, "agent.node"),
    AGENT_FIELD(zone, "agent.zone"),
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

static void root_agent(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	(void)label;
	yw_walk(w, v, &cfg_agent_schema, ctx, ctx, NULL);
}

static void root_registry(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	(void)label;
	yw_walk(w, v, &cfg_registry_schema, ctx, ctx, NULL);
}

static const struct yw_key root_keys[] = {
    YW_KEY_FN("agent", root_agent),
    YW_KEY_FN("services", cfg_parse_services),
    YW_KEY_FN("registry", root_registry),
    YW_KEY_NODE("identities"), /* cfg_parse_identities_first */
    YW_KEY_NODE("mtls"),       /* cfg_parse_mtls_first */
    YW_KEY_FN("tracing", cfg_parse_tracing),
};
static const struct yw_schema root_schema = YW_SCHEMA("configuration", 0, NULL, root_keys);

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
	strcpy(cfg->agent.mtls.ca, SL_MTLS_CA_DEFAULT);
	strcpy(cfg->agent.mtls.certs, SL_MTLS_CERTS_DEFAULT);
	cfg->agent.mtls.port = SL_MTLS_PORT_DEFAULT;
	cfg->agent.mtls.outbound_port = SL_MTLS_OUTBOUND_DEFAULT;
}

/* Only one document per file: what follows the first is a problem. */
static void check_end(yaml_parser_t *parser, const char *file, struct sl_problems *d)
{
	yaml_document_t extra;

	if (yaml_parser_load(parser, &extra)) {
		if (yaml_document_get_root_node(&extra))
			sl_problems_add(d, file, (unsigned int)extra.start_mark.line + 1,
					(unsigned int)extra.start_mark.column + 1,
					"only one YAML document is allowed");
		yaml_document_delete(&extra);
	} else {
		sl_problems_add(d, file, (unsigned int)parser->problem_mark.line + 1,
				(unsigned int)parser->problem_mark.column + 1, "YAML syntax: %s",
				parser->problem ? parser->problem : "unknown error");
	}
}

/* sl_config_parse, with the first 'skip' characters of each problem's key path left out, and
 * frontends checked under the agent settings 'rules', and services' mtls
 * against its mtls: block (NULL: the text's own). */
static int config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
			struct sl_problems *d, size_t skip, const struct sl_agent_cfg *rules)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct walker w = {.file = file, .doc = &doc, .d = d, .skip = skip};
	size_t before = d->n;

	config_defaults(cfg);
	if (rules) {
		memcpy(cfg->agent.frontends, rules->frontends, sizeof(rules->frontends));
		cfg->agent.n_frontends = rules->n_frontends;
		memcpy(cfg->agent.etcd_endpoints, rules->etcd_endpoints,
		       sizeof(rules->etcd_endpoints));
		cfg->agent.n_etcd = rules->n_etcd;
		cfg->agent.mtls = rules->mtls;
	}
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
		cfg_parse_agent_first(&w, root, cfg);
		cfg_parse_identities_first(&w, root, cfg);
		cfg_parse_mtls_first(&w, root, cfg);
		if (yw_walk(&w, root, &root_schema, cfg, cfg, NULL) == 0)
			check_end(&parser, file, d);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (d->n != before) {
		sl_config_free(cfg);
		return -1;
	}
	return 0;
}

int sl_config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
		    struct sl_problems *d)
{
	return config_parse(file, text, len, cfg, d, 0, NULL);
}

int sl_config_load(const char *path, struct sl_config *cfg, struct sl_problems *d)
{
	return sl_config_load_text(path, cfg, d, NULL, NULL);
}

int sl_config_read(const char *path, char **textp, size_t *lenp, const char **step)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f, *mem;
	char buf[65536];
	size_t n;
	int err;

	*step = "cannot open";
	f = fopen(path, "re");
	if (!f)
		return -errno;
	*step = "out of memory";
	mem = open_memstream(&text, &len);
	if (!mem) {
		fclose(f);
		return -ENOMEM;
	}
	*step = "cannot read";
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	err = ferror(f);
	fclose(f);
	if (fclose(mem) || err) {
		err = errno ? -errno : -EIO;
		free(text);
		return err;
	}
	*textp = text;
	*lenp = len;
	return 0;
}

int sl_config_load_text(const char *path, struct sl_config *cfg, struct sl_problems *d,
			char **textp, size_t *lenp)
{
	const char *step;
	char *text = NULL;
	size_t len = 0;
	int err;

	config_defaults(cfg);
	if (textp)
		*textp = NULL;
	err = sl_config_read(path, &text, &len, &step);
	if (err == -ENOMEM && !strcmp(step, "out of memory")) {
		sl_problems_add(d, path, 1, 1, "out of memory");
		return -1;
	}
	if (err) {
		sl_problems_add(d, path, 1, 1, "%s: %s", step, strerror(-err));
		return -1;
	}
	err = sl_config_parse(path, text, len, cfg, d);
	if (textp) {
		*textp = text;
		*lenp = len;
	} else {
		free(text);
	}
	return err;
}

void sl_config_free(struct sl_config *cfg)
{
	free(cfg->identities);
	cfg->identities = NULL;
	cfg->n_identities = 0;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (!cfg->services[i].backends_borrowed)
			free(cfg->services[i].backends);
	free(cfg->services);
	cfg->services = NULL;
	cfg->n_services = 0;
}

/* A copy of src: the backend arrays copied too, or borrowed (sl_config_borrow). */
static int config_copy(const struct sl_config *src, struct sl_config *dst, int borrow)
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
	/* Every entry is written below (a failure frees only those before it). */
	dst->services = malloc((src->n_services ? src->n_services : 1) * sizeof(*dst->services));
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
		b->backends_borrowed = (uint8_t)borrow;
		if (borrow)
			continue;
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

int sl_config_clone(const struct sl_config *src, struct sl_config *dst)
{
	return config_copy(src, dst, 0);
}

int sl_config_borrow(const struct sl_config *src, struct sl_config *dst)
{
	return config_copy(src, dst, 1);
}

int sl_config_parse_service(const char *what, const char *text, size_t len,
			    const struct sl_config *agent, struct sl_service_cfg *out,
			    struct sl_problems *d)
{
	static const char head[] = "services: [";
	struct sl_problem p;
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
	/* Problems name their key in the service: "backends[0].weight", not "services[0]...". */
	/* The service's frontend and mtls are checked against the agent's settings. */
	err = config_parse(what, doc, sizeof(head) - 1 + len + 2, &cfg, d, strlen("services[0]."),
			   agent ? &agent->agent : NULL);
	free(doc);
	if (err)
		return -1;
	if (cfg.n_services != 1) {
		sl_problems_add(d, what, 1, 1, "want exactly one service");
		sl_config_free(&cfg);
		return -1;
	}
	/* Alone within agent's limits; the merge with the others counts them all. */
	if (agent && sl_services_check_limits(&agent->agent.limits, 1, cfg.services[0].n_backends,
					      NULL, &p)) {
		sl_problems_add(d, what, 1, 1, "%s", p.msg);
		sl_config_free(&cfg);
		return -1;
	}
	*out = cfg.services[0];
	cfg.services[0].backends = NULL;
	sl_config_free(&cfg);
	return 0;
}
