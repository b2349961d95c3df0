/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "mem.h"

Test(mem, grows_and_zeroes)
{
	uint32_t *v = NULL;
	size_t cap = 0;

	cr_assert_eq(SL_ENSURE(&v, &cap, 1), 0);
	cr_assert_geq(cap, 16);
	for (size_t i = 0; i < cap; i++)
		cr_assert_eq(v[i], 0, "new element %zu is zeroed", i);
	for (size_t i = 0; i < cap; i++)
		v[i] = 0xffffffffu;
	size_t old = cap;
	cr_assert_eq(SL_ENSURE(&v, &cap, old + 1), 0);
	cr_assert_geq(cap, old + old / 2, "grows geometrically");
	for (size_t i = 0; i < old; i++)
		cr_assert_eq(v[i], 0xffffffffu, "old element %zu kept", i);
	for (size_t i = old; i < cap; i++)
		cr_assert_eq(v[i], 0, "added element %zu is zeroed", i);
	free(v);
}

Test(mem, no_change_when_big_enough)
{
	char *v = NULL;
	size_t cap = 0;

	cr_assert_eq(SL_ENSURE(&v, &cap, 100), 0);
	char *was = v;
	size_t was_cap = cap;
	cr_assert_eq(SL_ENSURE(&v, &cap, 50), 0);
	cr_assert_eq(v, was);
	cr_assert_eq(cap, was_cap);
	free(v);
}

Test(mem, overflow_is_enomem)
{
	uint64_t *v = NULL;
	size_t cap = 0;

	cr_assert_eq(SL_ENSURE(&v, &cap, SIZE_MAX / 4), -ENOMEM);
	cr_assert_null(v, "nothing allocated");
	cr_assert_eq(cap, 0);
}
