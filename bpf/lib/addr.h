/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address helpers shared by the programs. */
#ifndef SLUICE_BPF_ADDR_H
#define SLUICE_BPF_ADDR_H

#include <bpf/bpf_endian.h>

#include <sluice/abi.h>

/* ::ffff:a.b.c.d, as a dual-stack IPv6 socket addresses an IPv4 peer. */
static __always_inline int sl_is_v4mapped(__u32 w0, __u32 w1, __u32 w2)
{
	return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0x0000ffff);
}

/* ::ffff:a.b.c.d as the IPv4 address a.b.c.d: word 0, the rest zero. */
static __always_inline void sl_v4mapped_to_v4(__u32 a[4])
{
	a[0] = a[3];
	a[1] = a[2] = a[3] = 0;
}

/* An IPv6 address that is v4-mapped becomes IPv4, family included.
 * Returns 1 when it did. */
static __always_inline int sl_unmap(__u8 *family, __u32 a[4])
{
	if (*family != SLUICE_AF_INET6 || !sl_is_v4mapped(a[0], a[1], a[2]))
		return 0;
	*family = SLUICE_AF_INET;
	sl_v4mapped_to_v4(a);
	return 1;
}

/* A dual-stack IPv6 socket talking IPv4 (::ffff:a.b.c.d both ways) is keyed
 * as IPv4, so that it pairs with its IPv4 peer (sockops and sk_msg alike). */
static __always_inline void sl_unmap_pair(__u8 *family, __u32 l[4], __u32 r[4])
{
	if (*family != SLUICE_AF_INET6 || !sl_is_v4mapped(l[0], l[1], l[2]) ||
	    !sl_is_v4mapped(r[0], r[1], r[2]))
		return;
	*family = SLUICE_AF_INET;
	sl_v4mapped_to_v4(l);
	sl_v4mapped_to_v4(r);
}

/* The same address (of one family: the other words are zero). */
static __always_inline int sl_addr_eq(const union sluice_addr *a, const union sluice_addr *b)
{
	return a->a32[0] == b->a32[0] && a->a32[1] == b->a32[1] && a->a32[2] == b->a32[2] &&
	       a->a32[3] == b->a32[3];
}

#endif /* SLUICE_BPF_ADDR_H */
