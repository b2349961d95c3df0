// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* mtls: of the config, sluice.yaml(5) MTLS. */
#include <string.h>

#include "config_yaml.h"

/* A DNS-like name: dot-separated labels of [a-z0-9-], none empty, none starting or ending
 * with '-', each at most 63 characters, all at most 253. */
static int valid_trust_domain(const char *s)
{
	size_t label = 0, n = strlen(s);

	if (!n || n > 253)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (!label || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (!label && c == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

static void mtls_trust_domain(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_mtls_cfg *m = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (!valid_trust_domain(s))
		yw_err(w, v,
		       "mtls.trust_domain '%s' must be a DNS name: lowercase labels of [a-z0-9-] "
		       "joined by '.'",
		       s);
	else
		strcpy(m->trust_domain, s);
}

static const struct yw_key mtls_keys[] = {
    YW_KEY_NEED("trust_domain", mtls_trust_domain),
    YW_KEY_PATH("ca", struct sl_mtls_cfg, ca),
    YW_KEY_PATH("certs", struct sl_mtls_cfg, certs),
    YW_KEY_UINT("port", struct sl_mtls_cfg, port, 1, 65535),
    YW_KEY_UINT("outbound_port", struct sl_mtls_cfg, outbound_port, 1, 65535),
};
static const struct yw_schema mtls_schema = YW_SCHEMA("mtls", 1, "mtls needs '%s'", mtls_keys);

void cfg_parse_mtls_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	struct sl_mtls_cfg *m = &cfg->agent.mtls;
	yaml_node_pair_t *at = NULL;
	yaml_node_t *v = yw_get(w, root, "mtls", &at);
	size_t mark;

	if (!v)
		return;
	m->on = 1;
	mark = yw_push_key(w, "mtls");
	if (yw_walk(w, v, &mtls_schema, m, m, NULL) == 0 && m->port == m->outbound_port)
		yw_err_key(w, v, "outbound_port",
			   "mtls.outbound_port %u is mtls.port too: they need two ports",
			   (unsigned int)m->port);
	yw_pop(w, mark);
}
