// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The weighted sequence of random and round_robin (userspace/lib/wseq.c): smooth weighted
 * round robin laid out once. Counts follow the weights exactly (after dividing by their
 * greatest common divisor), picks are spread out rather than bunched, and weight sums over
 * SL_WSEQ_MAX are scaled down to fit.
 *
 * Pure: no fixture needed; each test frees what it built before it asserts on it.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "wseq.h"

#define MAX_N 1024 /* SLUICE_MAX_BACKENDS_PER_SERVICE */

/* What a sequence looks like. */
struct shape {
	int rc;
	uint32_t len;
	int out_null;
	int in_range;	       /* every entry is an index into the weights */
	uint32_t count[MAX_N]; /* picks of each index */
	double max_dev;	       /* largest |picks in a prefix - its share of the prefix| */
	double max_gap; /* largest gap between picks of one index (circular), over len/count */
};

static void measure(const uint16_t *w, size_t n, struct shape *s)
{
	uint32_t *seq = (uint32_t *)(uintptr_t)0x1; /* must be overwritten */
	uint32_t run[MAX_N] = {0};
	int64_t first[MAX_N], last[MAX_N];

	memset(s, 0, sizeof(*s));
	s->len = 12345;
	s->rc = sl_wseq_build(w, n, &seq, &s->len);
	s->out_null = seq == NULL;
	if (s->rc || !seq)
		return;
	s->in_range = 1;
	for (uint32_t k = 0; k < s->len; k++) {
		if (seq[k] >= n) {
			s->in_range = 0;
			free(seq);
			return;
		}
		s->count[seq[k]]++;
	}
	for (size_t i = 0; i < n; i++)
		first[i] = last[i] = -1;
	for (uint32_t k = 0; k < s->len; k++) {
		uint32_t b = seq[k];

		run[b]++;
		for (size_t i = 0; i < n; i++) {
			double want = (double)(k + 1) * s->count[i] / s->len;
			double dev = fabs((double)run[i] - want);

			if (dev > s->max_dev)
				s->max_dev = dev;
		}
		if (last[b] >= 0) {
			double gap = (double)(k - last[b]) * s->count[b] / s->len;

			if (gap > s->max_gap)
				s->max_gap = gap;
		} else {
			first[b] = k;
		}
		last[b] = k;
	}
	for (size_t i = 0; i < n; i++) { /* the gap that wraps around */
		double gap = (double)(s->len - last[i] + first[i]) * s->count[i] / s->len;

		if (s->count[i] && gap > s->max_gap)
			s->max_gap = gap;
	}
	free(seq);
}

static struct shape sh;

Test(wseq, counts_follow_the_weights)
{
	static const uint16_t w[] = {1, 2, 5};

	measure(w, 3, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_eq(sh.len, 8);
	cr_assert(sh.in_range);
	cr_expect_eq(sh.count[0], 1);
	cr_expect_eq(sh.count[1], 2);
	cr_expect_eq(sh.count[2], 5);
}

Test(wseq, weights_divided_by_their_gcd)
{
	static const uint16_t w[] = {300, 200, 500, 100};

	measure(w, 4, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_eq(sh.len, 11, "1100 / 100");
	cr_expect_eq(sh.count[0], 3);
	cr_expect_eq(sh.count[1], 2);
	cr_expect_eq(sh.count[2], 5);
	cr_expect_eq(sh.count[3], 1);
}

/* The sequence itself: nginx's smooth weighted round robin gives a a b a c a a for 5, 1, 1
 * (ties go to the lower index), where a plain one would give a a a a a b c. */
Test(wseq, smooth_order_for_5_1_1)
{
	static const uint16_t w[] = {5, 1, 1};
	static const uint32_t want[] = {0, 0, 1, 0, 2, 0, 0};
	uint32_t *seq = NULL, len = 0;

	cr_assert_eq(sl_wseq_build(w, 3, &seq, &len), 0);
	cr_assert_not_null(seq);
	cr_assert_eq(len, 7);
	for (uint32_t k = 0; k < len; k++)
		cr_expect_eq(seq[k], want[k], "entry %u: %u, want %u", k, seq[k], want[k]);
	free(seq);
}

/* Near-equal weights alternate instead of running in blocks. */
Test(wseq, near_equal_weights_alternate)
{
	static const uint16_t w[] = {2, 3};
	static const uint32_t want[] = {1, 0, 1, 0, 1};
	uint32_t *seq = NULL, len = 0;

	cr_assert_eq(sl_wseq_build(w, 2, &seq, &len), 0);
	cr_assert_eq(len, 5);
	for (uint32_t k = 0; k < len; k++)
		cr_expect_eq(seq[k], want[k], "entry %u: %u, want %u", k, seq[k], want[k]);
	free(seq);
}

/* Over many weight vectors: every prefix of the sequence holds each backend's share to within
 * 2 picks, and no backend waits more than twice its average spacing. A sequence in blocks
 * (a a a a a b c) fails both for large weights. */
Test(wseq, every_prefix_is_close_to_the_shares)
{
	uint32_t rng = 12345;
	uint16_t w[12];

	for (int t = 0; t < 2000; t++) {
		size_t n = 2 + t % 11;

		for (size_t i = 0; i < n; i++) {
			rng = rng * 1103515245u + 12345u;
			w[i] = (uint16_t)(1 + (rng >> 16) % (t % 2 ? 1000 : 20));
		}
		measure(w, n, &sh);
		cr_assert_eq(sh.rc, 0);
		if (!sh.len)
			continue; /* all equal */
		cr_assert(sh.in_range);
		cr_assert_lt(sh.max_dev, 2.0, "vector %d (n %zu): a prefix is %.2f picks off", t, n,
			     sh.max_dev);
		cr_assert_leq(sh.max_gap, 2.0, "vector %d (n %zu): a gap of %.2f times the average",
			      t, n, sh.max_gap);
	}
}

Test(wseq, blocks_of_a_heavy_pair_are_interleaved)
{
	static const uint16_t w[] = {500, 500, 1};

	measure(w, 3, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_eq(sh.len, 1001);
	cr_expect_eq(sh.count[0], 500);
	cr_expect_eq(sh.count[1], 500);
	cr_expect_eq(sh.count[2], 1);
	cr_expect_lt(sh.max_dev, 2.0, "%.2f", sh.max_dev);
}

/* All weights equal: no table (the datapath picks slots directly). */
Test(wseq, equal_weights_need_no_table)
{
	static const uint16_t three[] = {7, 7, 7}, one[] = {42};

	measure(three, 3, &sh);
	cr_expect_eq(sh.rc, 0);
	cr_expect_eq(sh.len, 0);
	cr_expect(sh.out_null);
	measure(one, 1, &sh);
	cr_expect_eq(sh.rc, 0);
	cr_expect_eq(sh.len, 0);
	cr_expect(sh.out_null);
	measure(NULL, 0, &sh);
	cr_expect_eq(sh.rc, 0, "no backends");
	cr_expect_eq(sh.len, 0);
	cr_expect(sh.out_null);
}

Test(wseq, zero_weight_is_invalid)
{
	static const uint16_t first[] = {0, 1}, later[] = {3, 3, 0}, alone[] = {0};

	measure(first, 2, &sh);
	cr_expect_eq(sh.rc, -EINVAL);
	cr_expect(sh.out_null);
	cr_expect_eq(sh.len, 0);
	measure(later, 3, &sh);
	cr_expect_eq(sh.rc, -EINVAL, "a zero after equal weights");
	cr_expect(sh.out_null);
	measure(alone, 1, &sh);
	cr_expect_eq(sh.rc, -EINVAL);
}

/* A sum of exactly SL_WSEQ_MAX fits as it is. */
Test(wseq, sum_at_the_limit_is_kept)
{
	static const uint16_t w[] = {1, SL_WSEQ_MAX - 1};

	measure(w, 2, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_eq(sh.len, SL_WSEQ_MAX);
	cr_expect_eq(sh.count[0], 1);
	cr_expect_eq(sh.count[1], SL_WSEQ_MAX - 1);
}

/* Over the limit: scaled down to fit, every backend keeps at least one entry, the shares
 * stay within 0.1%. */
Test(wseq, sums_over_the_limit_are_scaled)
{
	static const uint16_t pair[] = {2, 65535}, trio[] = {65535, 65534, 1};

	measure(pair, 2, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_leq(sh.len, SL_WSEQ_MAX);
	cr_expect_eq(sh.count[0], 1, "2 / 65537 of the sequence: one entry");
	cr_expect_eq(sh.count[0] + sh.count[1], sh.len);

	measure(trio, 3, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert_leq(sh.len, SL_WSEQ_MAX);
	cr_assert_gt(sh.len, SL_WSEQ_MAX - 8, "scaled to fill the room, %u", sh.len);
	cr_expect_geq(sh.count[2], 1, "the lightest keeps an entry");
	cr_expect(fabs((double)sh.count[0] / sh.len - 65535.0 / 131070) < 0.001);
	cr_expect(fabs((double)sh.count[1] / sh.len - 65534.0 / 131070) < 0.001);
}

/* The largest service: 1024 backends, weights 1..1000 (sum 525,312). */
Test(wseq, largest_service_fits)
{
	uint16_t w[MAX_N];
	double total = 0;

	for (size_t i = 0; i < MAX_N; i++) {
		w[i] = (uint16_t)(1 + i % 1000);
		total += w[i];
	}
	measure(w, MAX_N, &sh);
	cr_assert_eq(sh.rc, 0);
	cr_assert(sh.in_range);
	cr_assert_leq(sh.len, SL_WSEQ_MAX);
	for (size_t i = 0; i < MAX_N; i++) {
		double want = w[i] / total * sh.len;

		cr_assert_geq(sh.count[i], 1, "backend %zu has no entry", i);
		cr_expect_leq(fabs(sh.count[i] - want), 1.0 + want * 0.02,
			      "backend %zu (weight %u): %u entries, want %.1f", i, w[i],
			      sh.count[i], want);
	}
}
