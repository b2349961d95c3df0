// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The active_gen word of sluice_backend_rt and sluice_svc_rt (SLUICE_RT_ONE in
 * abi.h): what the datapath's atomic adds rely on, and how the agent reads it.
 */
#include <stdint.h>

#include <criterion/criterion.h>

#include "maps.h"

/* What bpf/lib/active.h does with __sync_fetch_and_add: returns the old word. */
static uint64_t add(uint64_t *w, uint64_t v)
{
	return __atomic_fetch_add(w, v, __ATOMIC_SEQ_CST);
}

Test(rtword, counting_never_touches_the_generation)
{
	uint64_t w = 0xfffffffeULL; /* generation 2^32 - 2, no connections */

	add(&w, -SLUICE_RT_ONE); /* a transient below zero borrows from nothing */
	cr_expect_eq(sluice_rt_gen(w), 0xfffffffeU);
	cr_expect_eq(sluice_rt_active(w), -1);
	cr_expect_eq(sl_active_count(w), 0, "a negative count reads as 0");
	add(&w, SLUICE_RT_ONE);
	add(&w, SLUICE_RT_ONE);
	add(&w, SLUICE_RT_ONE);
	cr_expect_eq(sluice_rt_gen(w), 0xfffffffeU);
	cr_expect_eq(sluice_rt_active(w), 2);
	cr_expect_eq(sl_active_count(w), 2);
}

Test(rtword, the_add_says_which_generation_it_counted_in)
{
	uint64_t w = 7; /* generation 7 */
	uint32_t gen = sluice_rt_gen(add(&w, SLUICE_RT_ONE));

	cr_expect_eq(gen, 7);
	/* The id is reassigned: the agent writes generation 8, count 0. */
	w = 8;
	/* A release that raced the reset sees generation 8 in the word it
	 * changed, and undoes itself: the new holder's count is untouched. */
	if (sluice_rt_gen(add(&w, -SLUICE_RT_ONE)) != gen)
		add(&w, SLUICE_RT_ONE);
	cr_expect_eq(w, 8);
}
