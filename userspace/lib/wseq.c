// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>

#include "wseq.h"

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

int sl_wseq_build(const uint16_t *w, size_t n, uint32_t **out, uint32_t *len)
{
	uint32_t g = 0, total = 0, *seq, *wt;
	int64_t *credit;
	int equal = 1;

	*out = NULL;
	*len = 0;
	for (size_t i = 0; i < n; i++) {
		if (!w[i])
			return -EINVAL;
		g = gcd(g, w[i]);
		equal &= w[i] == w[0];
	}
	if (equal)
		return 0;
	wt = calloc(n, sizeof(*wt));
	credit = calloc(n, sizeof(*credit));
	if (!wt || !credit) {
		free(wt);
		free(credit);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		wt[i] = w[i] / g;
		total += wt[i];
	}
	if (total > SL_WSEQ_MAX) {
		uint64_t sum = total;

		total = 0;
		for (size_t i = 0; i < n; i++) {
			wt[i] = (uint32_t)((uint64_t)wt[i] * (SL_WSEQ_MAX - n) / sum);
			if (!wt[i])
				wt[i] = 1;
			total += wt[i];
		}
	}
	seq = calloc(total, sizeof(*seq));
	if (!seq) {
		free(wt);
		free(credit);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < total; k++) {
		size_t best = 0;

		for (size_t i = 0; i < n; i++) {
			credit[i] += wt[i];
			if (credit[i] > credit[best])
				best = i;
		}
		credit[best] -= total;
		seq[k] = (uint32_t)best;
	}
	free(wt);
	free(credit);
	*out = seq;
	*len = total;
	return 0;
}
