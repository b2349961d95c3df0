// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "hidx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int sl_hidx_init(struct sl_hidx *h, size_t n)
{
	size_t size = 16;

	while (size < 2 * n + 1)
		size *= 2;
	h->slots = calloc(size, sizeof(*h->slots));
	if (!h->slots)
		return -ENOMEM;
	h->mask = size - 1;
	return 0;
}

void sl_hidx_free(struct sl_hidx *h)
{
	free(h->slots);
	memset(h, 0, sizeof(*h));
}

long sl_hidx_find(const struct sl_hidx *h, uint64_t hv, sl_hidx_eq eq, const void *ctx)
{
	for (size_t i = hv & h->mask; h->slots[i]; i = (i + 1) & h->mask)
		if (eq(ctx, h->slots[i] - 1))
			return (long)h->slots[i] - 1;
	return -1;
}

void sl_hidx_add(struct sl_hidx *h, uint64_t hv, size_t pos)
{
	size_t i = hv & h->mask;

	while (h->slots[i])
		i = (i + 1) & h->mask;
	h->slots[i] = (uint32_t)pos + 1;
}

uint64_t sl_hash_bytes(uint64_t hv, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		hv ^= b[i];
		hv *= 0x100000001b3ull;
	}
	return hv;
}

uint64_t sl_hash_str(const char *s)
{
	return sl_hash_bytes(SL_HASH_INIT, s, strlen(s));
}

struct name_key {
	const struct sl_state *st;
	const char *name;
};

static int state_name_eq(const void *ctx, size_t pos)
{
	const struct name_key *k = ctx;

	return !strcmp(k->st->svcs[pos].name, k->name);
}

int sl_state_idx_init(struct sl_state_idx *x, const struct sl_state *st)
{
	int err = sl_hidx_init(&x->h, st->n_svcs);

	x->st = st;
	if (err)
		return err;
	for (size_t i = 0; i < st->n_svcs; i++)
		sl_hidx_add(&x->h, sl_hash_str(st->svcs[i].name), i);
	return 0;
}

void sl_state_idx_free(struct sl_state_idx *x)
{
	sl_hidx_free(&x->h);
	x->st = NULL;
}

/* The first of the services named name, as sl_state_find (positions are added in order, and
 * a probe meets them in the order they were added). */
const struct sl_svc_state *sl_state_idx_find(const struct sl_state_idx *x, const char *name)
{
	struct name_key k = {.st = x->st, .name = name};
	long pos = sl_hidx_find(&x->h, sl_hash_str(name), state_name_eq, &k);

	return pos < 0 ? NULL : &x->st->svcs[pos];
}
