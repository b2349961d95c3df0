/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Weighted sequences for random and round_robin: smooth weighted round
 * robin (each step, every backend gains its weight, the one with the most
 * credit is picked and pays the total) laid out once, so the datapath walks
 * it with a counter (round_robin) or indexes it at random (random).
 */
#ifndef SLUICE_WSEQ_H
#define SLUICE_WSEQ_H

#include <stddef.h>
#include <stdint.h>

/* Longest sequence; heavier weight sums are scaled down to fit. */
#define SL_WSEQ_MAX 65536

/* The sequence for weights w[0..n): *len entries of indices into w, in
 * *out (malloc'd, the caller frees). Weights are divided by their greatest
 * common divisor; when the sum is still over SL_WSEQ_MAX they are scaled to
 * fit (each at least 1), which rounds the shares. All weights equal: *len
 * is 0 and *out NULL (no table needed). 0 or -errno. */
int sl_wseq_build(const uint16_t *w, size_t n, uint32_t **out, uint32_t *len);

#endif /* SLUICE_WSEQ_H */
