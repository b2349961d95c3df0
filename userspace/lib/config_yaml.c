// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The walker over libyaml's document tree: every node keeps its position, so each problem is
 * reported as FILE:LINE:COL with the key path of its node, and all of them in one pass. The
 * mappings are read by schema tables (config_yaml.h): one table per mapping says its keys,
 * how each value is read, and which keys are required.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_yaml.h"

static void vreport(struct walker *w, const yaml_node_t *n, const char *key, const char *fmt,
		    va_list ap)
{
	char msg[400], field[YW_PATH_LEN + SLUICE_NAME_LEN + 2];
	const char *f;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(field, sizeof(field), "%s%s%s", w->path, key && *key && w->plen ? "." : "",
		 key ? key : "");
	/* The path up to 'skip' is the wrapper of a service body: "services[0]." */
	f = strlen(field) > w->skip ? field + w->skip : "";
	sl_problems_add_field(w->d, w->file, (unsigned int)n->start_mark.line + 1,
			      (unsigned int)n->start_mark.column + 1, f, "%s", msg);
}

void yw_err(struct walker *w, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(w, n, NULL, fmt, ap);
	va_end(ap);
}

void yw_err_key(struct walker *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(w, n, key, fmt, ap);
	va_end(ap);
}

void yw_err_problem(struct walker *w, const yaml_node_t *n, const struct sl_problem *p)
{
	yw_err_key(w, n, p->field, "%s", p->msg);
}

/* Append text to the path; a path too long for the buffer is cut (only fields name it).
 * memcpy, not snprintf: every key of a 100 000-backend file passes here. */
static void append(struct walker *w, const char *text)
{
	size_t room = sizeof(w->path) - w->plen - 1, n = strlen(text);

	if (n > room)
		n = room;
	memcpy(w->path + w->plen, text, n);
	w->plen += n;
	w->path[w->plen] = '\0';
}

size_t yw_push_key(struct walker *w, const char *key)
{
	size_t mark = w->plen;

	if (w->plen)
		append(w, ".");
	append(w, key);
	return mark;
}

size_t yw_push_index(struct walker *w, size_t i)
{
	size_t mark = w->plen;
	char seg[24];

	snprintf(seg, sizeof(seg), "[%zu]", i);
	append(w, seg);
	return mark;
}

void yw_pop(struct walker *w, size_t mark)
{
	w->plen = mark;
	w->path[mark] = '\0';
}

const char *yw_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

yaml_node_t *yw_node(struct walker *w, int id)
{
	return yaml_document_get_node(w->doc, id);
}

size_t yw_len(const yaml_node_t *n)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (n->type == YAML_MAPPING_NODE)
		return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	return 0;
}

const char *yw_want_scalar(struct walker *w, yaml_node_t *v, const char *label)
{
	const char *s = yw_scalar(v);

	if (!s)
		yw_err(w, v, "'%s' must be a scalar", label);
	return s;
}

int yw_want_uint(struct walker *w, yaml_node_t *v, const char *label, uint64_t min, uint64_t max,
		 uint64_t *out)
{
	const char *s = yw_want_scalar(w, v, label);
	const char *why;

	if (!s)
		return -1;
	if (sl_parse_uint(s, min, max, out, &why)) {
		yw_err(w, v, "'%s': %s (want %llu..%llu)", label, why, (unsigned long long)min,
		       (unsigned long long)max);
		return -1;
	}
	return 0;
}

const char *yw_fmt_duration(uint64_t ms, char *buf, size_t len)
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

int yw_want_duration(struct walker *w, yaml_node_t *v, const char *label, uint64_t min_ms,
		     uint64_t max_ms, uint32_t *out)
{
	const char *s = yw_want_scalar(w, v, label);
	char lo[24], hi[24];
	const char *why;
	uint64_t ms;

	if (!s)
		return -1;
	if (sl_parse_duration(s, &ms, &why)) {
		yw_err(w, v, "'%s': %s", label, why);
		return -1;
	}
	if (ms < min_ms || ms > max_ms) {
		yw_err(w, v, "'%s': %s is out of range (want %s..%s)", label, s,
		       yw_fmt_duration(min_ms, lo, sizeof(lo)),
		       yw_fmt_duration(max_ms, hi, sizeof(hi)));
		return -1;
	}
	*out = (uint32_t)ms;
	return 0;
}

int yw_valid_name(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return 0;
	return 1;
}

/* ---- typed keys --------------------------------------------------------------------------- */

static void store(void *field, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*(uint8_t *)field = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)field = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)field = (uint32_t)v;
		break;
	default:
		*(uint64_t *)field = v;
		break;
	}
}

static void want_path(struct walker *w, yaml_node_t *v, const char *label, char *out, size_t len)
{
	const char *s = yw_want_scalar(w, v, label);

	if (!s)
		return;
	if (s[0] != '/') {
		yw_err(w, v, "'%s' must be an absolute path", label);
		return;
	}
	if (strlen(s) >= len) {
		yw_err(w, v, "'%s' is too long", label);
		return;
	}
	strcpy(out, s);
}

/* "want a, b or c": the names that are not aliases. */
static void want_enum(struct walker *w, yaml_node_t *v, const char *label,
		      const struct yw_enum *values, void *field, size_t size)
{
	const char *s = yw_want_scalar(w, v, label);
	char want[128] = "";
	size_t n = 0, len = 0, k = 0;

	if (!s)
		return;
	for (const struct yw_enum *e = values; e->name; e++) {
		if (!strcmp(s, e->name)) {
			store(field, size, (uint64_t)e->value);
			return;
		}
		n += !e->alias;
	}
	for (const struct yw_enum *e = values; e->name && len < sizeof(want); e++) {
		if (e->alias)
			continue;
		k++;
		len += (size_t)snprintf(want + len, sizeof(want) - len, "%s%s",
					k == 1	 ? ""
					: k == n ? " or "
						 : ", ",
					e->name);
	}
	yw_err(w, v, "%s '%s': want %s", label, s, want);
}

static void read_value(struct walker *w, const struct yw_key *k, const char *label, yaml_node_t *v,
		       void *base, void *ctx)
{
	void *field = (char *)base + k->off;
	uint64_t u;

	switch (k->kind) {
	case YW_FN:
		if (k->fn)
			k->fn(w, label, v, ctx);
		break;
	case YW_UINT:
		if (!yw_want_uint(w, v, label, k->min, k->max, &u))
			store(field, k->size, u);
		break;
	case YW_DURATION:
		yw_want_duration(w, v, label, k->min, k->max, field);
		break;
	case YW_PATH:
		want_path(w, v, label, field, k->size);
		break;
	case YW_ENUM:
		want_enum(w, v, label, k->values, field, k->size);
		break;
	case YW_LATER:
		break;
	}
}

/* ---- mappings ----------------------------------------------------------------------------- */

static int seen_before(struct walker *w, const yaml_node_t *n, const yaml_node_pair_t *p,
		       const char *key)
{
	for (const yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
		const char *qk = yw_scalar(yw_node(w, q->key));

		if (qk && !strcmp(qk, key))
			return 1;
	}
	return 0;
}

static const struct yw_key *find_key(const struct yw_schema *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->keys[i].name, key))
			return &s->keys[i];
	return NULL;
}

/* One pair of the mapping: its key checked, its value read. */
static void walk_pair(struct walker *w, yaml_node_t *n, yaml_node_pair_t *p,
		      const struct yw_schema *s, void *base, void *ctx, yaml_node_t **vals)
{
	yaml_node_t *k = yw_node(w, p->key), *v = yw_node(w, p->value);
	const char *key = yw_scalar(k);
	const struct yw_key *sk;
	char label[96];
	size_t mark;

	if (!k || !v)
		return;
	if (!key) {
		yw_err(w, k, "%s: keys must be plain strings", s->what);
		return;
	}
	if (seen_before(w, n, p, key)) {
		yw_err_key(w, k, key, "%s: duplicate key '%s'", s->what, key);
		return;
	}
	sk = find_key(s, key);
	if (!sk) {
		yw_err_key(w, k, key, "%s: unknown key '%s'", s->what, key);
		return;
	}
	if (sk->kind == YW_LATER) {
		yw_err_key(w, k, key, "%s: '%s' is not implemented in this version of sluice",
			   s->what, key);
		return;
	}
	vals[sk - s->keys] = v;
	label[0] = '\0';
	if (s->dotted) {
		strncat(label, s->what, sizeof(label) - 2);
		strcat(label, ".");
	}
	strncat(label, key, sizeof(label) - strlen(label) - 1);
	mark = yw_push_key(w, key);
	read_value(w, sk, label, v, base, ctx);
	yw_pop(w, mark);
}

int yw_walk(struct walker *w, yaml_node_t *n, const struct yw_schema *s, void *base, void *ctx,
	    yaml_node_t **vals)
{
	yaml_node_t *local[YW_MAX_KEYS] = {0};
	int missing = 0;

	if (n->type != YAML_MAPPING_NODE) {
		yw_err(w, n, "%s must be a mapping", s->what);
		return -1;
	}
	if (!vals)
		vals = local;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
		walk_pair(w, n, p, s, base, ctx, vals);
	for (size_t i = 0; i < s->n; i++) {
		if (!(s->keys[i].flags & YW_REQUIRED) || vals[i])
			continue;
		yw_err_key(w, n, s->keys[i].name, s->missing, s->keys[i].name);
		missing = 1;
	}
	return missing;
}

yaml_node_t *yw_get(struct walker *w, yaml_node_t *n, const char *key, yaml_node_pair_t **at)
{
	yaml_node_pair_t *p;

	if (n->type != YAML_MAPPING_NODE)
		return NULL;
	p = *at ? *at + 1 : n->data.mapping.pairs.start;
	for (; p < n->data.mapping.pairs.top; p++) {
		const char *k = yw_scalar(yw_node(w, p->key));
		yaml_node_t *v = yw_node(w, p->value);

		if (k && v && !strcmp(k, key)) {
			*at = p;
			return v;
		}
	}
	return NULL;
}
