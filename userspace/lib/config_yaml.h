/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the config parser (config*.c only): the walker over libyaml's document tree, and the
 * schema tables that say, once per mapping, which keys it has and how each is read.
 *
 * Every problem is reported at its node's FILE:LINE:COL and names the key path of that node
 * in sl_problem.field ("services[1].backends[0].weight").
 */
#ifndef SLUICE_CONFIG_YAML_H
#define SLUICE_CONFIG_YAML_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"

#define YW_PATH_LEN 192
#define YW_MAX_KEYS 16 /* keys of the largest mapping (a service has 13) */

struct walker {
	const char *file;
	yaml_document_t *doc;
	struct sl_problems *d;
	char path[YW_PATH_LEN]; /* key path of the node being read */
	size_t plen;
	size_t skip; /* leading path characters left out of sl_problem.field */
};

/* Report a problem at node n; its field is the current key path. */
void yw_err(struct walker *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, with ".key" added to the field: a key of the current mapping. */
void yw_err_key(struct walker *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A problem from the service rules (services.h) at node n; its field under the current path. */
void yw_err_problem(struct walker *w, const yaml_node_t *n, const struct sl_problem *p);

/* The key path: push ".key" or "[i]", and pop back to what push returned. */
size_t yw_push_key(struct walker *w, const char *key);
size_t yw_push_index(struct walker *w, size_t i);
void yw_pop(struct walker *w, size_t mark);

/* A node's text when it is a scalar, else NULL. */
const char *yw_scalar(const yaml_node_t *n);
/* The node of a sequence item or a mapping pair's key or value. */
yaml_node_t *yw_node(struct walker *w, int id);
/* Items of a sequence; pairs of a mapping. */
size_t yw_len(const yaml_node_t *n);

/* Typed values, each reported at v under 'label' (the key as messages name it). 0, or -1
 * after a problem. */
const char *yw_want_scalar(struct walker *w, yaml_node_t *v, const char *label);
int yw_want_uint(struct walker *w, yaml_node_t *v, const char *label, uint64_t min, uint64_t max,
		 uint64_t *out);
int yw_want_duration(struct walker *w, yaml_node_t *v, const char *label, uint64_t min_ms,
		     uint64_t max_ms, uint32_t *out);

/* Milliseconds in the largest unit that divides them: "1h", "300ms". */
const char *yw_fmt_duration(uint64_t ms, char *buf, size_t len);

/* [a-z0-9][a-z0-9_.-]*: service and identity names. */
int yw_valid_name(const char *s);

/* ---- schemas ------------------------------------------------------------------------------ */

/* How a key's value is read. */
enum yw_kind {
	YW_FN,	     /* by fn(w, label, v, ctx); with fn NULL the caller reads it from vals[] */
	YW_UINT,     /* an unsigned integer within [min, max] into the field at off */
	YW_DURATION, /* milliseconds within [min, max] into the uint32_t at off */
	YW_PATH,     /* an absolute path into the char array at off */
	YW_ENUM,     /* one of 'values' into the field at off */
	YW_LATER,    /* a key sluice.yaml(5) lists under NOT YET IMPLEMENTED: refused by name */
};

#define YW_REQUIRED 1u /* its absence is reported (the schema's 'missing') */

/* One name of an enum. An alias is accepted but not offered in "want ...". */
struct yw_enum {
	const char *name;
	int value;
	int alias;
};

typedef void (*yw_fn)(struct walker *w, const char *label, yaml_node_t *v, void *ctx);

struct yw_key {
	const char *name;
	enum yw_kind kind;
	unsigned int flags;
	size_t off, size;	      /* the field in 'base' (typed kinds) */
	uint64_t min, max;	      /* YW_UINT, YW_DURATION */
	const struct yw_enum *values; /* YW_ENUM, ending with {NULL} */
	yw_fn fn;		      /* YW_FN */
};

struct yw_schema {
	const char *what;    /* the mapping in messages: "health_check: unknown key 'x'" */
	int dotted;	     /* its keys are named "what.key" in messages, else "key" */
	const char *missing; /* "service has no '%s'": a YW_REQUIRED key is absent */
	const struct yw_key *keys;
	size_t n;
};

#define YW_FIELD(T, m) .off = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define YW_KEY_FN(k, f)                                                                            \
	{                                                                                          \
		.name = (k), .kind = YW_FN, .fn = (f)                                              \
	}
#define YW_KEY_NEED(k, f)                                                                          \
	{                                                                                          \
		.name = (k), .kind = YW_FN, .flags = YW_REQUIRED, .fn = (f)                        \
	}
#define YW_KEY_NODE(k)                                                                             \
	{                                                                                          \
		.name = (k), .kind = YW_FN                                                         \
	}
#define YW_KEY_LATER(k)                                                                            \
	{                                                                                          \
		.name = (k), .kind = YW_LATER                                                      \
	}
#define YW_KEY_PATH(k, T, m)                                                                       \
	{                                                                                          \
		.name = (k), .kind = YW_PATH, YW_FIELD(T, m)                                       \
	}
#define YW_KEY_UINT(k, T, m, lo, hi)                                                               \
	{                                                                                          \
		.name = (k), .kind = YW_UINT, YW_FIELD(T, m), .min = (lo), .max = (hi)             \
	}
#define YW_KEY_DURATION(k, T, m, lo, hi)                                                           \
	{                                                                                          \
		.name = (k), .kind = YW_DURATION, YW_FIELD(T, m), .min = (lo), .max = (hi)         \
	}
#define YW_KEY_ENUM(k, T, m, v)                                                                    \
	{                                                                                          \
		.name = (k), .kind = YW_ENUM, YW_FIELD(T, m), .values = (v)                        \
	}
#define YW_SCHEMA(what_, dotted_, missing_, keys_)                                                 \
	{                                                                                          \
		.what = (what_), .dotted = (dotted_), .missing = (missing_), .keys = (keys_),      \
		.n = sizeof(keys_) / sizeof((keys_)[0])                                            \
	}

/*
 * Walk mapping n by schema s: every key a scalar, present once, and one of the schema's
 * (a YW_LATER key is refused as not implemented, any other as unknown). Typed values go into
 * 'base', YW_FN keys get 'ctx'. vals (s->n entries, or NULL) receives each key's value node.
 * Then every YW_REQUIRED key that is absent is reported at n.
 * 0; 1 when a required key is absent; -1 when n is not a mapping (reported).
 */
int yw_walk(struct walker *w, yaml_node_t *n, const struct yw_schema *s, void *base, void *ctx,
	    yaml_node_t **vals);

/* The value of the first 'key' of mapping n, from 'after' on (NULL: the first pair); its
 * pair in *at. NULL when there is none, or n is not a mapping. */
yaml_node_t *yw_get(struct walker *w, yaml_node_t *n, const char *key, yaml_node_pair_t **at);

/* ---- the parts of the config (config_agent.c, config_services.c, config_identities.c) ---- */

extern const struct yw_schema cfg_agent_schema;	   /* agent:, base and ctx the sl_config */
extern const struct yw_schema cfg_registry_schema; /* registry:, ditto */

/* agent.limits, agent.frontends and registry.etcd.endpoints before anything else: services
 * are counted against the limits and their frontends checked against the others. Quietly, as
 * the walks of agent and registry report their problems. */
void cfg_parse_agent_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg);
/* identities: before the services, whose policies and backends name them. */
void cfg_parse_identities_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg);
/* mtls: before the services, whose mtls key needs it (config_mtls.c). */
void cfg_parse_mtls_first(struct walker *w, yaml_node_t *root, struct sl_config *cfg);
/* tracing: (YW_FN of the root schema; ctx the sl_config; config_tracing.c) */
void cfg_parse_tracing(struct walker *w, const char *label, yaml_node_t *v, void *ctx);
/* services: (YW_FN of the root schema; ctx the sl_config) */
void cfg_parse_services(struct walker *w, const char *label, yaml_node_t *v, void *ctx);

#endif /* SLUICE_CONFIG_YAML_H */
