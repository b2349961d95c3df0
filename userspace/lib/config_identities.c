// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* identities: of the config, sluice.yaml(5) IDENTITIES. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"
#include "services.h"

/* The label of callers without an identity: SL_EDGE_UNKNOWN (edges.h) and
 * SL_GRAPH_UNKNOWN (graph.h); an identity may not take it. */
#define RESERVED_NAME "unknown"

static void identity_name(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_identity_cfg *id = ctx;
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (strlen(s) >= SLUICE_NAME_LEN || !yw_valid_name(s))
		yw_err(w, v,
		       "identity name '%s' must match [a-z0-9][a-z0-9_.-]* (at most %d characters)",
		       s, SLUICE_NAME_LEN - 1);
	else if (!strcmp(s, RESERVED_NAME))
		yw_err(w, v,
		       "%s: identity name '%s' is reserved: the service map shows callers "
		       "without an identity as '%s' (sluice_edge_*{source=\"%s\"}, identity/%s "
		       "in sluicectl graph); choose another name",
		       w->path, s, s, s, s);
	else
		strcpy(id->name, s);
}

/* One item of cgroups or addresses: 0, or -1 when the list is full. */
typedef int (*item_fn)(struct walker *w, yaml_node_t *e, const char *s, struct sl_identity_cfg *id);

static int identity_cgroup(struct walker *w, yaml_node_t *e, const char *s,
			   struct sl_identity_cfg *id)
{
	if (id->n_cgroups == SL_MAX_ID_CGROUPS) {
		yw_err(w, e, "an identity has at most %d cgroups", SL_MAX_ID_CGROUPS);
		return -1;
	}
	if (s[0] != '/' || strlen(s) >= SL_CGROUP_PATH_LEN)
		yw_err(w, e, "cgroup '%s' must be an absolute path under %d characters", s,
		       SL_CGROUP_PATH_LEN);
	else
		strcpy(id->cgroups[id->n_cgroups++], s);
	return 0;
}

static int identity_addr(struct walker *w, yaml_node_t *e, const char *s,
			 struct sl_identity_cfg *id)
{
	const char *why;

	if (id->n_addrs == SL_MAX_ID_ADDRS) {
		yw_err(w, e, "an identity has at most %d addresses", SL_MAX_ID_ADDRS);
		return -1;
	}
	if (sl_parse_cidr(s, &id->addrs[id->n_addrs], &why))
		yw_err(w, e, "address '%s': %s", s, why);
	else
		id->n_addrs++;
	return 0;
}

static void identity_list(struct walker *w, const char *label, yaml_node_t *v,
			  struct sl_identity_cfg *id, item_fn fn)
{
	yaml_node_item_t *it;
	int full = 0;

	if (v->type != YAML_SEQUENCE_NODE) {
		yw_err(w, v, "'%s' must be a list", label);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top && !full; it++) {
		yaml_node_t *e = yw_node(w, *it);
		size_t mark = yw_push_index(w, (size_t)(it - v->data.sequence.items.start));
		const char *s = e ? yw_want_scalar(w, e, label) : NULL;

		full = s && fn(w, e, s, id);
		yw_pop(w, mark);
	}
}

static void identity_cgroups(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	identity_list(w, label, v, ctx, identity_cgroup);
}

static void identity_addresses(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	identity_list(w, label, v, ctx, identity_addr);
}

static const struct yw_key identity_keys[] = {
    YW_KEY_NEED("name", identity_name),
    YW_KEY_FN("cgroups", identity_cgroups),
    YW_KEY_FN("addresses", identity_addresses),
};
static const struct yw_schema identity_schema =
    YW_SCHEMA("identity", 0, "identity has no '%s'", identity_keys);

/* One identity of the list: kept (cfg->n_identities grows) when valid and new. */
static void parse_identity(struct walker *w, yaml_node_t *e, struct sl_config *cfg)
{
	struct sl_identity_cfg *id = &cfg->identities[cfg->n_identities];

	if (yw_walk(w, e, &identity_schema, id, id, NULL) || !id->name[0])
		return;
	if (sl_identity_id(cfg->identities, cfg->n_identities, id->name)) {
		yw_err(w, e, "duplicate identity '%s'", id->name);
		memset(id, 0, sizeof(*id));
		return;
	}
	cfg->n_identities++;
}

/* The first identities: only; the walk of the root reports a second one as a duplicate. */
void cfg_parse_identities_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg)
{
	yaml_node_pair_t *at = NULL;
	yaml_node_t *v = yw_get(w, root, "identities", &at);
	yaml_node_item_t *it;
	size_t n, mark;

	if (!v)
		return;
	mark = yw_push_key(w, "identities");
	n = yw_len(v);
	if (v->type != YAML_SEQUENCE_NODE)
		yw_err(w, v, "'identities' must be a list");
	else if (n > SL_MAX_IDENTITIES)
		yw_err(w, v, "%zu identities, more than the %d sluice holds", n, SL_MAX_IDENTITIES);
	else if (!(cfg->identities = calloc(n ? n : 1, sizeof(*cfg->identities))))
		yw_err(w, v, "out of memory");
	else
		for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
			yaml_node_t *e = yw_node(w, *it);
			size_t imark =
			    yw_push_index(w, (size_t)(it - v->data.sequence.items.start));

			if (e)
				parse_identity(w, e, cfg);
			yw_pop(w, imark);
		}
	yw_pop(w, mark);
}
