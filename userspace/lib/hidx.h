/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A hash index over an array the caller owns: it maps a key to the position of the element
 * that has it, so that "is this name already used" is one probe instead of a pass over the
 * array. Open addressing, linear probing; the caller hashes and compares. */
#ifndef SLUICE_HIDX_H
#define SLUICE_HIDX_H

#include <stddef.h>
#include <stdint.h>

struct sl_service_cfg;

struct sl_hidx {
	uint32_t *slots; /* position + 1; 0 = empty */
	size_t mask;
};

/* Room for n elements (never grows: size it for the whole array). 0, or -ENOMEM. */
int sl_hidx_init(struct sl_hidx *h, size_t n);
void sl_hidx_free(struct sl_hidx *h);

/* Whether element pos has the key being looked for. */
typedef int (*sl_hidx_eq)(const void *ctx, size_t pos);

/* The position of the element whose key hashes to hv and satisfies eq, or -1. */
long sl_hidx_find(const struct sl_hidx *h, uint64_t hv, sl_hidx_eq eq, const void *ctx);
/* Records pos under hv (the key must not be there yet, and there must be room). */
void sl_hidx_add(struct sl_hidx *h, uint64_t hv, size_t pos);

/* FNV-1a over n bytes, continuing from hv (start with SL_HASH_INIT). */
#define SL_HASH_INIT 0xcbf29ce484222325ull
uint64_t sl_hash_bytes(uint64_t hv, const void *p, size_t n);
uint64_t sl_hash_str(const char *s);
/* The same over an address's family, port and address bytes (not its padding). */
struct sl_sockaddr;
uint64_t sl_hash_sockaddr(uint64_t hv, const struct sl_sockaddr *a);

/* An index over an array of services (the config check's "is this name or frontend already
 * used"), by name and by (protocol, frontend). The indexed services' names and frontends must
 * be unique (the check keeps only such), so each lookup has at most one match. */
struct sl_svc_idx {
	const struct sl_service_cfg *svcs;
	struct sl_hidx names;
	struct sl_hidx fes;
};

/* Room for n services of svcs. 0, or -ENOMEM. */
int sl_svc_idx_init(struct sl_svc_idx *x, const struct sl_service_cfg *svcs, size_t n);
void sl_svc_idx_free(struct sl_svc_idx *x);
/* Indexes svcs[pos]. */
void sl_svc_idx_add(struct sl_svc_idx *x, size_t pos);
/* As sl_service_find and sl_service_frontend_user over the indexed services. */
const struct sl_service_cfg *sl_svc_idx_name(const struct sl_svc_idx *x, const char *name);
const struct sl_service_cfg *sl_svc_idx_frontend_user(const struct sl_svc_idx *x,
						      const struct sl_service_cfg *svc);

#endif /* SLUICE_HIDX_H */
