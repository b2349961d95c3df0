// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of userspace/lib/maglev.c: table size, fill, weighted shares,
 * disruption on removal, determinism. The measured figures are printed with
 * cr_log_info (run with --verbose to see them).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <sluice/abi.h>

#include "maglev.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_N	      128
#define KEY_LEN	      64

/* Backends "198.18.<i/250>.<i%250+1>:8080" with the given weights (NULL = all 1). */
struct bes {
	char keys[MAX_N][KEY_LEN];
	struct sl_maglev_backend be[MAX_N];
	size_t n;
};

static void bes_init(struct bes *b, size_t n, const uint32_t *weights)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(b->keys[i], KEY_LEN, "198.18.%zu.%zu:8080", i / 250, i % 250 + 1);
		b->be[i].key = b->keys[i];
		b->be[i].weight = weights ? weights[i] : 1;
	}
}

static int is_prime(uint32_t m)
{
	if (m < 2)
		return 0;
	for (uint32_t d = 2; (uint64_t)d * d <= m; d++)
		if (m % d == 0)
			return 0;
	return 1;
}

static uint32_t *table_new(uint32_t m)
{
	uint32_t *t = malloc(m * sizeof(*t));

	/* A pattern the builder must overwrite everywhere. */
	if (t)
		memset(t, 0xa5, m * sizeof(*t));
	return t;
}

/* ---- size --------------------------------------------------------------- */

Test(maglev, size)
{
	/* M follows the backend count: 8 KiB tables at 10 backends, not 128 KiB. */
	cr_assert_eq(sl_maglev_size(1), 101, "n=1: %u", sl_maglev_size(1));
	cr_assert_eq(sl_maglev_size(2), 251, "n=2: %u", sl_maglev_size(2));
	cr_assert_eq(sl_maglev_size(3), 509, "n=3: %u", sl_maglev_size(3));
	cr_assert_eq(sl_maglev_size(10), 1021, "n=10: %u", sl_maglev_size(10));
	cr_assert_eq(sl_maglev_size(11), 2039, "n=11 (1100 > 1021): %u", sl_maglev_size(11));
	cr_assert_eq(sl_maglev_size(100), 16381, "n=100: %u", sl_maglev_size(100));
	cr_assert_eq(sl_maglev_size(163), 16381, "n=163: %u", sl_maglev_size(163));
	cr_assert_eq(sl_maglev_size(164), 32749, "n=164 (16400 > 16381): %u", sl_maglev_size(164));
	cr_assert_eq(sl_maglev_size(200), 32749, "n=200: %u", sl_maglev_size(200));
	cr_assert_eq(sl_maglev_size(SLUICE_MAX_BACKENDS_PER_SERVICE), 131071,
		     "n=%d (the per-service maximum) must have a table: %u",
		     SLUICE_MAX_BACKENDS_PER_SERVICE,
		     sl_maglev_size(SLUICE_MAX_BACKENDS_PER_SERVICE));
	cr_assert_eq(sl_maglev_size(1310), 131071, "n=1310: %u", sl_maglev_size(1310));
	cr_assert_eq(sl_maglev_size(1311), 0, "n=1311 (131100 > M_MAX 131071): %u",
		     sl_maglev_size(1311));
	cr_assert_eq(sl_maglev_size(100000), 0, "n=100000: %u", sl_maglev_size(100000));
	/* n * 100 must not wrap around to a small number. */
	cr_assert_eq(sl_maglev_size(SIZE_MAX / 100 + 1), 0, "n=SIZE_MAX/100+1: %u",
		     sl_maglev_size(SIZE_MAX / 100 + 1));
	cr_assert_eq(sl_maglev_size(SIZE_MAX), 0, "n=SIZE_MAX: %u", sl_maglev_size(SIZE_MAX));

	for (size_t n = 1; n <= 1400; n++) {
		uint32_t m = sl_maglev_size(n);

		if (!m) {
			cr_assert_gt(n * 100, SLUICE_MAGLEV_M_MAX, "n=%zu: no size, yet %zu fits",
				     n, n * 100);
			continue;
		}
		cr_assert(is_prime(m), "sl_maglev_size(%zu) = %u is not prime", n, m);
		cr_assert_geq(m, n * 100, "n=%zu: m=%u < 100 n", n, m);
		/* Few sizes: the smallest rung that fits, so M changes (and flows move)
		 * only when n crosses a rung. */
		cr_assert(n == 1 || m == sl_maglev_size(n - 1) || n * 100 > sl_maglev_size(n - 1),
			  "n=%zu: m=%u, yet %u still fits", n, m, sl_maglev_size(n - 1));
		cr_assert_lt(m, n * 100 * 3 + 101, "n=%zu: m=%u far above 100 n", n, m);
		cr_assert_leq(m, SLUICE_MAGLEV_M_MAX, "n=%zu: m=%u > max", n, m);
	}
}

/* Losing backends keeps M while it fits (else every flow moves); growing, or shrinking far
 * below it, takes the size the backends need. */
Test(maglev, keep)
{
	cr_expect_eq(sl_maglev_keep(509, sl_maglev_size(2)), 509, "3 -> 2 backends keeps 509");
	cr_expect_eq(sl_maglev_keep(1021, sl_maglev_size(5)), 1021, "10 -> 5 keeps 1021");
	cr_expect_eq(sl_maglev_keep(2039, sl_maglev_size(5)), 2039,
		     "20 -> 5: two sizes up keeps it");
	cr_expect_eq(sl_maglev_keep(8191, sl_maglev_size(10)), 1021, "80 -> 10 shrinks");
	cr_expect_eq(sl_maglev_keep(1021, sl_maglev_size(11)), 2039, "10 -> 11 grows");
	cr_expect_eq(sl_maglev_keep(0, sl_maglev_size(10)), 1021, "new view");
	cr_expect_eq(sl_maglev_keep(1000, sl_maglev_size(3)), 509, "not a size of the ladder");
	cr_expect_eq(sl_maglev_keep(16381, 0), 0, "too many backends stays an error");
}

Test(maglev, bad_input)
{
	struct sl_maglev_backend be[2] = {{"a:1", 1}, {"b:1", 0}};
	uint32_t t[251];

	cr_assert_eq(sl_maglev_build(be, 0, 251, t), -EINVAL, "n=0 must be -EINVAL");
	cr_assert_eq(sl_maglev_build(be, 2, 251, t), -EINVAL, "weight 0 must be -EINVAL");
	cr_assert_eq(sl_maglev_build(be, 1, 1, t), -EINVAL, "m=1 must be -EINVAL");
}

/* ---- fill --------------------------------------------------------------- */

Test(maglev, every_slot_filled)
{
	static const size_t ns[] = {1, 2, 3, 7, 10, 100};
	const uint32_t m = 16381;
	uint32_t *t = table_new(m);
	struct bes b;

	cr_assert_not_null(t);
	for (size_t k = 0; k < ARRAY_SIZE(ns); k++) {
		size_t *count = calloc(ns[k], sizeof(*count));
		size_t n = ns[k];
		int rc;

		cr_assert_not_null(count);
		bes_init(&b, n, NULL);
		memset(t, 0xa5, m * sizeof(*t));
		rc = sl_maglev_build(b.be, n, m, t);
		cr_assert_eq(rc, 0, "n=%zu: build = %d", n, rc);
		for (uint32_t j = 0; j < m; j++) {
			cr_assert_lt(t[j], n, "n=%zu: slot %u holds %u, not a backend index", n, j,
				     t[j]);
			count[t[j]]++;
		}
		for (size_t i = 0; i < n; i++)
			cr_assert_gt(count[i], 0, "n=%zu: backend %zu got no slot", n, i);
		free(count);
	}
	free(t);
}

/* ---- weighted shares ---------------------------------------------------- */

/*
 * Tolerance: a backend's share of the slots must be within 2% of its
 * expected share, RELATIVE to that expected share (|got - want| <= 0.02 *
 * want), with a floor of one slot (1/M): a table can only hold whole slots,
 * and at weights 1000:1 the small backend's ideal is 16.36 slots of 16381,
 * which no table meets to 2% relative (16 slots is off by 2.2%). One slot is
 * 0.006 percentage points at M = 16381, so the floor does not let an
 * ignored or mis-scaled weight through.
 */
struct share_case {
	const char *name;
	size_t n;
	uint32_t w[MAX_N];
};

static double worst_share_dev_rel; /* max |got - want| / want, over all cases */
static double worst_share_dev_pp;  /* same, in percentage points */

static void check_shares(const struct share_case *c, uint32_t m)
{
	uint32_t *t = table_new(m);
	size_t count[MAX_N] = {0};
	double wsum = 0, case_rel = 0, case_pp = 0;
	struct bes b;
	int rc;

	cr_assert_not_null(t);
	bes_init(&b, c->n, c->w);
	rc = sl_maglev_build(b.be, b.n, m, t);
	cr_assert_eq(rc, 0, "%s: build = %d", c->name, rc);
	for (size_t i = 0; i < c->n; i++)
		wsum += c->w[i];
	for (uint32_t j = 0; j < m; j++) {
		cr_assert_lt(t[j], c->n, "%s: slot %u = %u", c->name, j, t[j]);
		count[t[j]]++;
	}
	for (size_t i = 0; i < c->n; i++) {
		double want = c->w[i] / wsum, got = (double)count[i] / m;
		/* No libm: the unit-test link line does not have -lm. */
		double dev = got > want ? got - want : want - got;
		double tol = 0.02 * want > 1.0 / m ? 0.02 * want : 1.0 / m;

		if (dev / want > case_rel)
			case_rel = dev / want;
		if (dev * 100 > case_pp)
			case_pp = dev * 100;
		cr_assert_leq(dev, tol,
			      "%s, M=%u: backend %zu (weight %u) has %zu slots = %.4f%%, want "
			      "%.4f%% +- %.4f pp",
			      c->name, m, i, c->w[i], count[i], got * 100, want * 100, tol * 100);
	}
	cr_log_info("maglev shares %-12s M=%u: max deviation %.3f%% of the expected share "
		    "(%.4f percentage points)",
		    c->name, m, case_rel * 100, case_pp);
	if (case_rel > worst_share_dev_rel)
		worst_share_dev_rel = case_rel;
	if (case_pp > worst_share_dev_pp)
		worst_share_dev_pp = case_pp;
	free(t);
}

Test(maglev, weighted_shares)
{
	static const struct share_case cases[] = {
	    {"equal n=3", 3, {1, 1, 1}},      {"equal n=10", 10, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	    {"equal w=7", 3, {7, 7, 7}},      {"1:2:5", 3, {1, 2, 5}},
	    {"5:2:1", 3, {5, 2, 1}},	      {"1:1:1:10", 4, {1, 1, 1, 10}},
	    {"1000:1", 2, {1000, 1}},	      {"1:1000", 2, {1, 1000}},
	    {"3:7:11:13", 4, {3, 7, 11, 13}},
	};
	static const uint32_t ms[] = {16381, 65521};

	for (size_t k = 0; k < ARRAY_SIZE(ms); k++)
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
			check_shares(&cases[i], ms[k]);
	/* The size the agent picks from the weights keeps them to the same tolerance. */
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bes b;
		uint32_t m;

		bes_init(&b, cases[i].n, cases[i].w);
		m = sl_maglev_size_weighted(b.be, b.n);
		cr_assert_geq(m, sl_maglev_size(cases[i].n), "%s: M=%u below the count's",
			      cases[i].name, m);
		check_shares(&cases[i], m);
	}
	cr_log_info("maglev shares: worst deviation over all cases %.3f%% of the expected "
		    "share, %.4f percentage points",
		    worst_share_dev_rel * 100, worst_share_dev_pp);
}

/* ---- disruption --------------------------------------------------------- */

/*
 * Build a table for n backends, remove backend 'rm', build again and return
 * the fraction of slots whose backend KEY changed (indices shift after the
 * removal, so slots are compared by key).
 */
static int removal_disruption(size_t n, size_t rm, uint32_t m, double *changed,
			      double *removed_share)
{
	uint32_t *before = table_new(m), *after = table_new(m);
	struct sl_maglev_backend less[MAX_N];
	size_t diff = 0, owned = 0, k = 0;
	struct bes b;
	int rc = -ENOMEM;

	if (!before || !after)
		goto out;
	bes_init(&b, n, NULL);
	for (size_t i = 0; i < n; i++)
		if (i != rm)
			less[k++] = b.be[i];
	rc = sl_maglev_build(b.be, n, m, before);
	if (rc)
		goto out;
	rc = sl_maglev_build(less, n - 1, m, after);
	if (rc)
		goto out;
	rc = -ERANGE;
	for (uint32_t j = 0; j < m; j++) {
		if (before[j] >= n || after[j] >= n - 1)
			goto out;
		if (before[j] == rm)
			owned++;
		if (strcmp(b.be[before[j]].key, less[after[j]].key))
			diff++;
	}
	*changed = (double)diff / m;
	*removed_share = (double)owned / m;
	rc = 0;
out:
	free(before);
	free(after);
	return rc;
}

/* The bound on the slots that move beyond 1/N, per table size (maglev.c). */
static double removal_slack(size_t n, uint32_t m)
{
	if (m <= 1021)
		return 0.045;
	if (m <= 4093)
		return 0.035;
	if (m < 16381)
		return 0.025;
	return n <= 20 ? 0.01 : n <= 50 ? 0.015 : 0.02;
}

/*
 * Removing one of N equal backends must move the removed backend's slots
 * (about 1/N) and few others. Maglev is not minimally disruptive, the less
 * so the smaller M / N: with M = 16381 we measured 1/N + 0.5% at N = 10 and
 * up to 1/N + 1.17% at N = 50 (an independent reference Maglev with another
 * hash gives the same +1.16%); at the small sizes, over 8 sets of keys, up
 * to 1/N + 4.0% (M = 509), 3.7% (1021), 3.0% (2039), 2.8% (4093), 2.2% (8191).
 * The bounds per size are in removal_slack (README, "maglev").
 * Keyed by position instead of by key, or rebuilt from scratch, the change
 * is tens of percent, far above the bound.
 */
Test(maglev, removal_disruption)
{
	static const size_t ns[] = {2, 3, 5, 6, 10, 11, 20, 21, 40, 50, 80, 100, 128};
	double worst_extra = 0;

	for (size_t k = 0; k < ARRAY_SIZE(ns); k++) {
		size_t n = ns[k];
		uint32_t m = sl_maglev_size(n);
		double case_worst = 0;

		/* Every position: first, middle, last and all between. */
		for (size_t rm = 0; rm < n; rm++) {
			double slack = removal_slack(n, m);
			double changed = 0, owned = 0, bound = 1.0 / n + slack;
			int rc = removal_disruption(n, rm, m, &changed, &owned);

			cr_assert_eq(rc, 0, "N=%zu remove %zu: %d", n, rm, rc);
			cr_assert_geq(changed, owned,
				      "N=%zu remove %zu: %.4f changed, but the removed backend "
				      "alone held %.4f",
				      n, rm, changed, owned);
			cr_assert_leq(changed, bound,
				      "N=%zu remove #%zu: %.2f%% of the slots changed, bound "
				      "1/N + %.1f = %.2f%%",
				      n, rm, changed * 100, slack * 100, bound * 100);
			if (changed - 1.0 / n > case_worst)
				case_worst = changed - 1.0 / n;
		}
		cr_log_info("maglev removal N=%zu M=%u: worst change 1/N + %.2f%% (of all slots)",
			    n, m, case_worst * 100);
		if (case_worst > worst_extra)
			worst_extra = case_worst;
	}
	cr_log_info("maglev removal: worst extra disruption over N in {3,5,10,20,50}: %.2f%%",
		    worst_extra * 100);
}

/* ---- determinism -------------------------------------------------------- */

Test(maglev, deterministic)
{
	static const uint32_t w[] = {1, 2, 5, 1, 1, 10, 3};
	const uint32_t m = 16381;
	uint32_t *a = table_new(m), *b2 = table_new(m);
	struct bes b;

	cr_assert(a && b2);
	bes_init(&b, ARRAY_SIZE(w), w);
	cr_assert_eq(sl_maglev_build(b.be, b.n, m, a), 0);
	memset(b2, 0, m * sizeof(*b2));
	cr_assert_eq(sl_maglev_build(b.be, b.n, m, b2), 0);
	for (uint32_t j = 0; j < m; j++)
		cr_assert_eq(a[j], b2[j], "slot %u: %u then %u for the same input", j, a[j], b2[j]);
	free(a);
	free(b2);
}

/*
 * The table depends on the backends' keys, not on their order in the array:
 * the agent may list the same backends in another order (after a restart
 * adopting pinned state, or a reordered config) and must not move traffic.
 */
static size_t order_mismatch(size_t n, const uint32_t *w, uint32_t m)
{
	uint32_t *fwd = table_new(m), *rev = table_new(m);
	struct sl_maglev_backend r[MAX_N];
	size_t diff = SIZE_MAX;
	struct bes b;

	if (!fwd || !rev)
		goto out;
	bes_init(&b, n, w);
	for (size_t i = 0; i < n; i++)
		r[n - 1 - i] = b.be[i];
	if (sl_maglev_build(b.be, n, m, fwd) || sl_maglev_build(r, n, m, rev))
		goto out;
	diff = 0;
	for (uint32_t j = 0; j < m; j++)
		if (strcmp(b.be[fwd[j]].key, r[rev[j]].key))
			diff++;
out:
	free(fwd);
	free(rev);
	return diff;
}

/*
 * KNOWN BUG, so this test skips itself: sl_maglev_build() gives contested
 * slots to the backend that comes first in the array, so reversing the
 * array moves 2..32 of 16381 slots (n = 2..10) to another key. A builder
 * that sorts the backends by key first passes this test and all the others
 * (checked). Set MAGLEV_ORDER_BUG to 0 once the builder orders the backends
 * by key itself (or the agent always passes them sorted by key and the
 * header says so). (Not .disabled = true: cppcheck cannot parse that.)
 */
#define MAGLEV_ORDER_BUG 0

Test(maglev, order_independent)
{
	static const uint32_t w[] = {1, 2, 5, 1, 1, 10, 3, 1, 1, 1};
	const uint32_t m = 16381;

	if (MAGLEV_ORDER_BUG)
		cr_skip_test("known bug: the Maglev table depends on the backends' array order");

	for (size_t n = 2; n <= 10; n++) {
		size_t d1 = order_mismatch(n, NULL, m), dw = order_mismatch(n, w, m);

		cr_log_info("maglev order: n=%zu reversed array -> %zu slots (equal weights), "
			    "%zu slots (weighted) with another key",
			    n, d1, dw);
		cr_expect_eq(d1, 0,
			     "n=%zu equal weights: reversing the array moved %zu of %u slots", n,
			     d1, m);
		cr_expect_eq(dw, 0, "n=%zu weighted: reversing the array moved %zu of %u slots", n,
			     dw, m);
	}
}
