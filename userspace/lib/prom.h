/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A writer of the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), served
 * with "Content-Type: text/plain; version=0.0.4; charset=utf-8".
 *
 * Output goes to a growable buffer. Every misuse (an invalid metric or label
 * name, a sample outside a family, a family written twice, ...) and every
 * allocation failure sets a sticky failure flag instead of emitting bad text;
 * after that, writes do nothing and sl_prom_data() returns NULL. So a caller
 * writes everything, then checks sl_prom_failed() once. A NULL writer (from a
 * failed sl_prom_new()) is accepted everywhere and counts as failed.
 *
 *	struct sl_prom *p = sl_prom_new();
 *	const char *const lv[] = {"service", "web", "backend", "198.18.1.2:8080", NULL};
 *
 *	sl_prom_family(p, "sluice_connections_total", "Connections made.", SL_PROM_COUNTER);
 *	sl_prom_sample(p, lv, 42);
 *	if (sl_prom_failed(p)) ...
 *	text = sl_prom_data(p, &len);
 *
 * Not checked (the caller's job): two samples of a family with the same
 * label set, and the sign of counter values.
 */
#ifndef SLUICE_PROM_H
#define SLUICE_PROM_H

#include <stddef.h>
#include <stdint.h>

enum sl_prom_type {
	SL_PROM_COUNTER,
	SL_PROM_GAUGE,
	SL_PROM_HISTOGRAM,
};

struct sl_prom;

/* A new, empty writer, or NULL when out of memory. */
struct sl_prom *sl_prom_new(void);

/* Free the writer and its buffer; NULL is a no-op. */
void sl_prom_free(struct sl_prom *p);

/* The text written so far (NUL-terminated; its length in *len when len is
 * not NULL), owned by p and valid until the next write or sl_prom_free().
 * NULL with *len = 0 when sl_prom_failed(p). */
const char *sl_prom_data(const struct sl_prom *p, size_t *len);

/* The text written so far, handed over: the caller frees it. p then counts as failed (write
 * nothing more to it; sl_prom_free it). NULL with *len = 0 when sl_prom_failed(p). */
char *sl_prom_take(struct sl_prom *p, size_t *len);

/* Nonzero once anything has failed (sticky), or when p is NULL. */
int sl_prom_failed(const struct sl_prom *p);

/*
 * Start a metric family: writes its "# HELP" and "# TYPE" lines. Following
 * samples belong to it. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and must
 * not have been used for an earlier family of this writer; help must not be
 * NULL (backslash and newline are escaped; invalid UTF-8 is replaced by
 * U+FFFD).
 */
void sl_prom_family(struct sl_prom *p, const char *name, const char *help, enum sl_prom_type type);

/*
 * One sample of the current counter or gauge family. labels is NULL (no
 * labels) or a NULL-terminated array of name, value pairs, e.g.
 * {"service", "web", "backend", "198.18.1.2:8080", NULL}. Label names must
 * match [a-zA-Z_][a-zA-Z0-9_]*, not start with "__" and not repeat; values
 * have backslash, double quote and newline escaped and invalid UTF-8
 * replaced by U+FFFD. The value is printed as an integer when it is one of
 * magnitude up to 2^53, else in the shortest form that reads back as the
 * same double; NaN, +Inf and -Inf are spelled "NaN", "+Inf" and "-Inf".
 */
void sl_prom_sample(struct sl_prom *p, const char *const *labels, double value);

/*
 * One histogram of the current histogram family, with labels as for
 * sl_prom_sample() ("le" is reserved). bounds[0..n) are the buckets' upper
 * bounds, finite and strictly ascending, in the metric's unit (e.g.
 * seconds); counts[0..n) the NON-cumulative number of observations in each
 * bucket, overflow the number above bounds[n - 1], sum the sum of all
 * observations. Writes the cumulative name_bucket lines, the le="+Inf"
 * bucket, name_sum and name_count (the total of counts and overflow).
 * n may be 0 (then bounds and counts may be NULL).
 */
void sl_prom_histogram(struct sl_prom *p, const char *const *labels, const double *bounds,
		       const uint64_t *counts, size_t n, uint64_t overflow, double sum);

#endif /* SLUICE_PROM_H */
