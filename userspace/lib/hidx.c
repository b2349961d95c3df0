// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "hidx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services.h"

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

struct svc_key {
	const struct sl_service_cfg *svcs;
	const struct sl_service_cfg *svc;
	const char *name;
};

/* A word at a time (the merge hashes every backend of the config), mixed down into the low
 * bits that pick the slot. */
uint64_t sl_hash_sockaddr(uint64_t hv, const struct sl_sockaddr *a)
{
	uint64_t w[2];

	memcpy(w, a->addr.a8, sizeof(w));
	hv = (hv ^ ((uint64_t)a->family << 16 | a->port)) * 0x100000001b3ull;
	hv = (hv ^ w[0]) * 0xff51afd7ed558ccdull;
	hv = (hv ^ (hv >> 29) ^ w[1]) * 0xc4ceb9fe1a85ec53ull;
	return hv ^ (hv >> 32);
}

static uint64_t fe_hash(const struct sl_service_cfg *svc)
{
	return sl_hash_sockaddr(sl_hash_bytes(SL_HASH_INIT, &svc->proto, sizeof(svc->proto)),
				&svc->frontend);
}

static int svc_name_eq(const void *ctx, size_t pos)
{
	const struct svc_key *k = ctx;

	return !strcmp(k->svcs[pos].name, k->name);
}

/* As sl_service_frontend_user: same protocol and frontend, another name. */
static int svc_fe_eq(const void *ctx, size_t pos)
{
	const struct svc_key *k = ctx;
	const struct sl_service_cfg *o = &k->svcs[pos];

	return o->proto == k->svc->proto && sl_sockaddr_equal(&o->frontend, &k->svc->frontend) &&
	       strcmp(o->name, k->svc->name);
}

int sl_svc_idx_init(struct sl_svc_idx *x, const struct sl_service_cfg *svcs, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->svcs = svcs;
	if (sl_hidx_init(&x->names, n) || sl_hidx_init(&x->fes, n)) {
		sl_svc_idx_free(x);
		return -ENOMEM;
	}
	return 0;
}

void sl_svc_idx_free(struct sl_svc_idx *x)
{
	sl_hidx_free(&x->names);
	sl_hidx_free(&x->fes);
}

void sl_svc_idx_add(struct sl_svc_idx *x, size_t pos)
{
	sl_hidx_add(&x->names, sl_hash_str(x->svcs[pos].name), pos);
	sl_hidx_add(&x->fes, fe_hash(&x->svcs[pos]), pos);
}

const struct sl_service_cfg *sl_svc_idx_name(const struct sl_svc_idx *x, const char *name)
{
	struct svc_key k = {.svcs = x->svcs, .name = name};
	long pos = sl_hidx_find(&x->names, sl_hash_str(name), svc_name_eq, &k);

	return pos < 0 ? NULL : &x->svcs[pos];
}

const struct sl_service_cfg *sl_svc_idx_frontend_user(const struct sl_svc_idx *x,
						      const struct sl_service_cfg *svc)
{
	struct svc_key k = {.svcs = x->svcs, .svc = svc};
	long pos = sl_hidx_find(&x->fes, fe_hash(svc), svc_fe_eq, &k);

	return pos < 0 ? NULL : &x->svcs[pos];
}
