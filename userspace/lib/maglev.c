// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/abi.h>

#include "maglev.h"

static const uint32_t maglev_primes[] = {251,  509,   1021,  2039,  4093,
					 8191, 16381, 32749, 65521, 131071};

uint32_t sl_maglev_size(size_t n)
{
	size_t want = n > SIZE_MAX / 100 ? SIZE_MAX : n * 100;

	for (size_t i = 0; i < sizeof(maglev_primes) / sizeof(maglev_primes[0]); i++) {
		uint32_t m = maglev_primes[i];

		if (m >= SLUICE_MAGLEV_M_DEFAULT && m >= want && m <= SLUICE_MAGLEV_M_MAX)
			return m;
	}
	return 0;
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
