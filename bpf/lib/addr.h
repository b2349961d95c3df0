/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address helpers shared by the programs. */
#ifndef SLUICE_BPF_ADDR_H
#define SLUICE_BPF_ADDR_H

#include <bpf/bpf_endian.h>

/* ::ffff:a.b.c.d, as a dual-stack IPv6 socket addresses an IPv4 peer. */
static __always_inline int sl_is_v4mapped(__u32 w0, __u32 w1, __u32 w2)
{
	return w0 == 0 && w1 == 0 && w2 == bpf_htonl(0x0000ffff);
}

#endif /* SLUICE_BPF_ADDR_H */
