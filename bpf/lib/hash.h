/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A small 32-bit mixing hash over 32-bit words (murmur3 finaliser rounds). */
#ifndef SLUICE_BPF_HASH_H
#define SLUICE_BPF_HASH_H

static __always_inline __u32 sl_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 sl_final(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

#endif /* SLUICE_BPF_HASH_H */
