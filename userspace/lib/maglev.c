// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/abi.h>

#include "maglev.h"

/*
 * The sizes, about doubling: M moves to another rung only when the backend
 * count crosses 100 n = M, and a new M moves nearly every flow (the slots are
 * hash % M), so sizes must be few. Each backend gets its share of M within a
 * slot or two (weights: sl_maglev_size_weighted), and removing one of N
 * backends moves its own 1/N of the slots plus at most, per size (measured
 * at the top of each rung over 8 sets of keys, tests/test_maglev.c
 * removal_disruption):
 *   M = 251 (N = 2): 1/N + 0.5 percentage points;
 *   M = 509 (N <= 5), 1021 (N <= 10): 1/N + 4.5 points (measured up to + 4.0);
 *   M = 2039 (N <= 20), 4093 (N <= 40): 1/N + 3.5 (measured + 3.0);
 *   M = 8191 (N <= 81): 1/N + 2.5 (measured + 2.2);
 *   M >= 16381: 1/N + 1 up to N = 20, + 1.5 up to 50, + 2 above (measured + 1.6).
 * Memory per table: 8 bytes a slot (the kernel pads array values to 8), so
 * 8 KiB at N = 10 instead of 128 KiB at the former floor of 16381.
 */
static const uint32_t maglev_primes[] = {101,  251,   509,   1021,  2039,  4093,
					 8191, 16381, 32749, 65521, 131071};

uint32_t sl_maglev_size(size_t n)
{
	size_t want = n > SIZE_MAX / 100 ? SIZE_MAX : n * 100;

	for (size_t i = 0; i < sizeof(maglev_primes) / sizeof(maglev_primes[0]); i++) {
		uint32_t m = maglev_primes[i];

		if (m >= want && m <= SLUICE_MAGLEV_M_MAX)
			return m;
	}
	return 0;
}

uint32_t sl_maglev_size_weighted(const struct sl_maglev_backend *bes, size_t n)
{
	uint64_t sum = 0;
	uint32_t wmin = UINT32_MAX, m;
	size_t units;

	if (!n)
		return sl_maglev_size(n);
	for (size_t i = 0; i < n; i++) {
		sum += bes[i].weight;
		if (bes[i].weight && bes[i].weight < wmin)
			wmin = bes[i].weight;
	}
	if (wmin == UINT32_MAX) /* all weights 0: sl_maglev_build refuses them */
		return sl_maglev_size(n);
	/* Backends counted in units of the smallest weight: every backend then has
	 * at least 100 slots of its ideal share, so one slot more or less is <= 1%. */
	units = (size_t)((sum + wmin - 1) / wmin);
	m = sl_maglev_size(units);
	if (!m && sl_maglev_size(n))
		m = SLUICE_MAGLEV_M_MAX; /* weights too far apart for 100 slots: the finest table */
	return m;
}

uint32_t sl_maglev_keep(uint32_t prev, uint32_t need)
{
	if (!need || prev < need || prev / 4 > need)
		return need;
	for (size_t i = 0; i < sizeof(maglev_primes) / sizeof(maglev_primes[0]); i++)
		if (maglev_primes[i] == prev && prev <= SLUICE_MAGLEV_M_MAX)
			return prev;
	return need;
}

/* 64-bit FNV-1a with a seed folded in first, then a murmur finaliser. */
static uint64_t maglev_hash(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static int by_key(const void *a, const void *b, void *arg)
{
	const struct sl_maglev_backend *bes = arg;

	return strcmp(bes[*(const size_t *)a].key, bes[*(const size_t *)b].key);
}

int sl_maglev_build(const struct sl_maglev_backend *bes, size_t n, uint32_t m, uint32_t *table)
{
	uint64_t *offset, *skip, *next, *credit;
	size_t *order;
	uint32_t wmax = 0;
	size_t filled = 0;

	if (!n || m < 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!bes[i].weight)
			return -EINVAL;
		if (bes[i].weight > wmax)
			wmax = bes[i].weight;
	}
	offset = calloc(n, sizeof(*offset));
	skip = calloc(n, sizeof(*skip));
	next = calloc(n, sizeof(*next));
	credit = calloc(n, sizeof(*credit));
	order = calloc(n, sizeof(*order));
	if (!offset || !skip || !next || !credit || !order) {
		free(offset);
		free(skip);
		free(next);
		free(credit);
		free(order);
		return -ENOMEM;
	}
	/* Backends take turns in the order of their keys, not of the array, so
	 * the table depends only on the set of backends. */
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), by_key, (void *)bes);
	for (size_t i = 0; i < n; i++) {
		offset[i] = maglev_hash(bes[i].key, 0x9e3779b97f4a7c15ULL) % m;
		skip[i] = maglev_hash(bes[i].key, 0x6a09e667f3bcc909ULL) % (m - 1) + 1;
	}
	for (uint32_t j = 0; j < m; j++)
		table[j] = UINT32_MAX;
	while (filled < m) {
		for (size_t k = 0; k < n && filled < m; k++) {
			size_t i = order[k];
			uint64_t c;

			credit[i] += bes[i].weight;
			if (credit[i] < wmax)
				continue;
			credit[i] -= wmax;
			/* The next preferred slot not yet taken. */
			do {
				c = (offset[i] + next[i] * skip[i]) % m;
				next[i]++;
			} while (table[c] != UINT32_MAX);
			table[c] = (uint32_t)i;
			filled++;
		}
	}
	free(offset);
	free(skip);
	free(next);
	free(credit);
	free(order);
	return 0;
}
