/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int sl_ensure_mem(void **data, size_t *cap, size_t elem_size, size_t need)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	if (!elem_size)
		return -EINVAL;
	ncap = *cap + *cap / 2;
	if (ncap < 16)
		ncap = 16;
	if (ncap < need)
		ncap = need;
	if (ncap > SIZE_MAX / elem_size)
		return -ENOMEM;
	p = realloc(*data, ncap * elem_size);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *cap * elem_size, 0, (ncap - *cap) * elem_size);
	*data = p;
	*cap = ncap;
	return 0;
}
