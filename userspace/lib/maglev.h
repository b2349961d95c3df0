/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maglev lookup tables (Eisenbud et al., NSDI'16) with weights: in each
 * round every backend adds its weight to a credit and takes its next
 * preferred slot whenever the credit reaches the largest weight, so slot
 * shares follow the weights (the scheme of Katran's "V2" weighting).
 */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

struct sl_maglev_backend {
	const char *key; /* stable identity, e.g. "198.18.1.2:8080"; not its position */
	uint32_t weight; /* >= 1 */
};

/* Table size for n backends: the smallest of a few primes (101, 251, 509,
 * 1021, ... 131071, about doubling) that is >= 100 n. 0 when n is too large
 * for SLUICE_MAGLEV_M_MAX. Disruption bounds per size: maglev.c. */
uint32_t sl_maglev_size(size_t n);

/* Table size for weighted backends: sl_maglev_size of their total weight in
 * units of the smallest weight (n when the weights are equal), so that every
 * backend holds about 100 slots or more and the shares follow the weights to
 * about 1%; SLUICE_MAGLEV_M_MAX when the weights are further apart than that
 * allows; 0 when n alone is too large. */
uint32_t sl_maglev_size_weighted(const struct sl_maglev_backend *bes, size_t n);

/* The size to build with when the view's table has size prev and the
 * backends need 'need': prev while it still fits and is at most 4 x need (two
 * sizes up), so that losing backends does not change M and move every flow;
 * else need. */
uint32_t sl_maglev_keep(uint32_t prev, uint32_t need);

/* Fill table[0..m) with indices into bes. m must be prime; n >= 1.
 * Returns 0 or -ENOMEM / -EINVAL. */
int sl_maglev_build(const struct sl_maglev_backend *bes, size_t n, uint32_t m, uint32_t *table);

#endif /* SLUICE_MAGLEV_H */
