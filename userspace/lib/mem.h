/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One growth helper for arrays, after libbpf's libbpf_ensure_mem. */
#ifndef SLUICE_MEM_H
#define SLUICE_MEM_H

#include <stddef.h>

/* Make *data (of *cap elements of elem_size bytes) hold at least need
 * elements: it grows geometrically (x1.5, at least 16) and zeroes what it
 * adds. 0, or -ENOMEM with *data and *cap as they were. */
int sl_ensure_mem(void **data, size_t *cap, size_t elem_size, size_t need);

/* The same, typed: SL_ENSURE(&arr, &cap, n) for any T *arr. */
#define SL_ENSURE(pp, capp, need) sl_ensure_mem((void **)(pp), (capp), sizeof(**(pp)), (need))

#endif /* SLUICE_MEM_H */
