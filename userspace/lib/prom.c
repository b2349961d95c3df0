// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Prometheus text exposition format 0.0.4 writer; see prom.h. */
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "prom.h"

#define PROM_INITIAL_CAP 4096
#define PROM_VALUE_MAX	 32 /* "-1.2345678901234567e-308" and NUL fit */

struct sl_prom {
	char *buf; /* always NUL-terminated */
	size_t len;
	size_t cap;
	char **families; /* names of the families started, the current one last */
	size_t n_families;
	size_t cap_families;
	enum sl_prom_type type; /* of the current family */
	int failed;
};

struct sl_prom *sl_prom_new(void)
{
	struct sl_prom *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->buf = malloc(PROM_INITIAL_CAP);
	if (!p->buf) {
		free(p);
		return NULL;
	}
	p->buf[0] = '\0';
	p->cap = PROM_INITIAL_CAP;
	return p;
}

void sl_prom_free(struct sl_prom *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_families; i++)
		free(p->families[i]);
	free(p->families);
	free(p->buf);
	free(p);
}

const char *sl_prom_data(const struct sl_prom *p, size_t *len)
{
	if (sl_prom_failed(p)) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = p->len;
	return p->buf;
}

char *sl_prom_take(struct sl_prom *p, size_t *len)
{
	char *buf;

	if (!sl_prom_data(p, len))
		return NULL;
	buf = p->buf;
	p->buf = NULL;
	p->len = p->cap = 0;
	p->failed = 1;
	return buf;
}

int sl_prom_failed(const struct sl_prom *p)
{
	return !p || p->failed;
}

/* ---- buffer --------------------------------------------------------------- */

static void prom_put(struct sl_prom *p, const char *s, size_t n)
{
	if (p->failed)
		return;
	if (n >= p->cap - p->len) {
		if (n > SIZE_MAX / 2 - p->len || SL_ENSURE(&p->buf, &p->cap, p->len + n + 1)) {
			p->failed = 1;
			return;
		}
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void prom_puts(struct sl_prom *p, const char *s)
{
	prom_put(p, s, strlen(s));
}

/* Length of the valid UTF-8 sequence (RFC 3629) at s, or 0 when there is none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing above U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* s with backslash and newline escaped (and double quote when quote is set),
 * invalid UTF-8 replaced by U+FFFD. */
static void prom_put_escaped(struct sl_prom *p, const char *s, int quote)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t run = 0, n;

		/* Copy the longest run that needs no change at once. */
		while ((n = utf8_len(u + run)) != 0 && u[run] != '\\' && u[run] != '\n' &&
		       !(quote && u[run] == '"') && u[run] != '\0')
			run += n;
		prom_put(p, (const char *)u, run);
		u += run;
		if (*u == '\0')
			break;
		if (*u == '\\')
			prom_put(p, "\\\\", 2);
		else if (*u == '\n')
			prom_put(p, "\\n", 2);
		else if (*u == '"')
			prom_put(p, "\\\"", 2);
		else
			prom_put(p, "\xef\xbf\xbd", 3);
		u++;
	}
}

/* ---- values and names ------------------------------------------------------ */

/*
 * v as Prometheus reads it (Go's strconv.ParseFloat): integers of magnitude
 * up to 2^53 in full, other values in the shortest %g form that reads back
 * as v, "NaN", "+Inf", "-Inf". Always with '.' whatever LC_NUMERIC says.
 */
static void prom_format_value(char *buf, size_t size, double v)
{
	const char *dp;

	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == trunc(v) && fabs(v) <= 9007199254740992.0) {
		snprintf(buf, size, "%.0f", v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	dp = localeconv()->decimal_point;
	if (dp && strcmp(dp, ".") != 0 && *dp) {
		char *at = strstr(buf, dp);

		if (at) {
			size_t dl = strlen(dp);

			*at = '.';
			memmove(at + 1, at + dl, strlen(at + dl) + 1);
		}
	}
}

static void prom_put_value(struct sl_prom *p, double v)
{
	char buf[PROM_VALUE_MAX];

	prom_format_value(buf, sizeof(buf), v);
	prom_puts(p, buf);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, without ':' for label names. */
static int prom_valid_name(const char *s, int colon)
{
	if (!s || !*s)
		return 0;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (colon && c == ':'))
			continue;
		if (i > 0 && c >= '0' && c <= '9')
			continue;
		return 0;
	}
	return 1;
}

static int prom_valid_labels(const char *const *labels, int histogram)
{
	if (!labels)
		return 1;
	for (size_t i = 0; labels[i]; i += 2) {
		if (!labels[i + 1] || !prom_valid_name(labels[i], 0) ||
		    strncmp(labels[i], "__", 2) == 0)
			return 0;
		if (histogram && strcmp(labels[i], "le") == 0)
			return 0;
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(labels[j], labels[i]) == 0)
				return 0;
	}
	return 1;
}

/* The current family's name, or NULL (and the writer failed) when there is
 * none, or it is a histogram and histogram is not set, or the reverse. */
static const char *prom_current(struct sl_prom *p, int histogram)
{
	if (p->failed)
		return NULL;
	if (p->n_families == 0 || (p->type == SL_PROM_HISTOGRAM) != histogram) {
		p->failed = 1;
		return NULL;
	}
	return p->families[p->n_families - 1];
}

/* name + suffix + {labels[,le="le"]} + ' ' : the start of a sample line. */
static void prom_put_series(struct sl_prom *p, const char *name, const char *suffix,
			    const char *const *labels, const char *le)
{
	int any = 0;

	prom_puts(p, name);
	prom_puts(p, suffix);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		prom_puts(p, any ? "," : "{");
		prom_puts(p, labels[i]);
		prom_puts(p, "=\"");
		prom_put_escaped(p, labels[i + 1], 1);
		prom_puts(p, "\"");
		any = 1;
	}
	if (le) {
		prom_puts(p, any ? ",le=\"" : "{le=\"");
		prom_puts(p, le);
		prom_puts(p, "\"");
		any = 1;
	}
	prom_puts(p, any ? "} " : " ");
}

/* ---- API ------------------------------------------------------------------- */

void sl_prom_family(struct sl_prom *p, const char *name, const char *help, enum sl_prom_type type)
{
	static const char *const type_names[] = {
	    [SL_PROM_COUNTER] = "counter",
	    [SL_PROM_GAUGE] = "gauge",
	    [SL_PROM_HISTOGRAM] = "histogram",
	};
	char *copy;

	if (sl_prom_failed(p))
		return;
	if (!prom_valid_name(name, 1) || !help || (unsigned)type > SL_PROM_HISTOGRAM) {
		p->failed = 1;
		return;
	}
	for (size_t i = 0; i < p->n_families; i++) {
		if (strcmp(p->families[i], name) == 0) {
			p->failed = 1;
			return;
		}
	}
	if (SL_ENSURE(&p->families, &p->cap_families, p->n_families + 1)) {
		p->failed = 1;
		return;
	}
	copy = strdup(name);
	if (!copy) {
		p->failed = 1;
		return;
	}
	p->families[p->n_families++] = copy;
	p->type = type;

	prom_puts(p, "# HELP ");
	prom_puts(p, name);
	prom_puts(p, " ");
	prom_put_escaped(p, help, 0);
	prom_puts(p, "\n# TYPE ");
	prom_puts(p, name);
	prom_puts(p, " ");
	prom_puts(p, type_names[type]);
	prom_puts(p, "\n");
}

void sl_prom_sample(struct sl_prom *p, const char *const *labels, double value)
{
	const char *name;

	if (sl_prom_failed(p))
		return;
	name = prom_current(p, 0);
	if (!name)
		return;
	if (!prom_valid_labels(labels, 0)) {
		p->failed = 1;
		return;
	}
	prom_put_series(p, name, "", labels, NULL);
	prom_put_value(p, value);
	prom_puts(p, "\n");
}

void sl_prom_histogram(struct sl_prom *p, const char *const *labels, const double *bounds,
		       const uint64_t *counts, size_t n, uint64_t overflow, double sum)
{
	char le[PROM_VALUE_MAX], num[24];
	uint64_t total = 0;
	const char *name;

	if (sl_prom_failed(p))
		return;
	name = prom_current(p, 1);
	if (!name)
		return;
	if (!prom_valid_labels(labels, 1) || (n && (!bounds || !counts))) {
		p->failed = 1;
		return;
	}
	/* Check everything before writing anything. */
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])) ||
		    __builtin_add_overflow(total, counts[i], &total)) {
			p->failed = 1;
			return;
		}
	}
	if (__builtin_add_overflow(total, overflow, &total)) {
		p->failed = 1;
		return;
	}

	total = 0;
	for (size_t i = 0; i < n; i++) {
		total += counts[i];
		prom_format_value(le, sizeof(le), bounds[i]);
		prom_put_series(p, name, "_bucket", labels, le);
		snprintf(num, sizeof(num), "%" PRIu64 "\n", total);
		prom_puts(p, num);
	}
	total += overflow;
	prom_put_series(p, name, "_bucket", labels, "+Inf");
	snprintf(num, sizeof(num), "%" PRIu64 "\n", total);
	prom_puts(p, num);
	prom_put_series(p, name, "_sum", labels, NULL);
	prom_put_value(p, sum);
	prom_puts(p, "\n");
	prom_put_series(p, name, "_count", labels, NULL);
	prom_puts(p, num);
}
