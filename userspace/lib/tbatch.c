// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "mem.h"
#include "tbatch.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's internal "not supported", seen by user space */
#endif

/* Elements per batch call; the kernel copies them one by one anyway. */
#define TBATCH_CHUNK 4096

static struct sl_tbatch_stats stats;
/* 1 once the kernel refused a batch on the outer map, or a test forced it. */
static int no_batch;
/* Tests: every batch call fails as a kernel without them answers. */
static int refuse;

void sl_tbatch_stats(struct sl_tbatch_stats *out)
{
	*out = stats;
	out->elem_only = no_batch;
}

void sl_tbatch_force_elem(int mode)
{
	no_batch = mode == 1;
	refuse = mode == 2;
}

void sl_tbatch_init(struct sl_tbatch *b, int outer)
{
	memset(b, 0, sizeof(*b));
	b->outer = outer;
}

int sl_tbatch_put(struct sl_tbatch *b, const struct sluice_table_key *k, int fd)
{
	if (SL_ENSURE(&b->put_keys, &b->cap_put, b->n_put + 1) ||
	    SL_ENSURE(&b->put_fds, &b->cap_put_fds, b->n_put + 1)) {
		close(fd);
		return -ENOMEM;
	}
	b->put_keys[b->n_put] = *k;
	b->put_fds[b->n_put++] = (__u32)fd;
	return 0;
}

int sl_tbatch_del(struct sl_tbatch *b, const struct sluice_table_key *k)
{
	__u32 id;

	/* Only what is there: a batch stops at a missing key, and every call
	 * on a map of maps waits a grace period, even a failed one. */
	if (bpf_map_lookup_elem(b->outer, k, &id))
		return errno == ENOENT ? 0 : -errno;
	if (SL_ENSURE(&b->del_keys, &b->cap_del, b->n_del + 1))
		return -ENOMEM;
	b->del_keys[b->n_del++] = *k;
	return 0;
}

static int unsupported(int e)
{
	return e == EINVAL || e == EOPNOTSUPP || e == ENOTSUPP;
}

/* One element, as the fallback: put when fds, else delete. */
static int one(int outer, const struct sluice_table_key *k, const __u32 *fd)
{
	stats.elem_calls++;
	if (fd)
		return bpf_map_update_elem(outer, k, fd, BPF_ANY) ? -errno : 0;
	return bpf_map_delete_elem(outer, k) && errno != ENOENT ? -errno : 0;
}

/* Write (fds) or delete (fds NULL) keys[0..n). */
static int run(int outer, const struct sluice_table_key *keys, const __u32 *fds, size_t n)
{
	size_t i = 0;

	while (i < n) {
		__u32 req = (__u32)(n - i < TBATCH_CHUNK ? n - i : TBATCH_CHUNK), count = req;
		int r, e;

		if (no_batch) {
			r = one(outer, &keys[i], fds ? &fds[i] : NULL);
			if (r)
				return r;
			i++;
			continue;
		}
		stats.batch_calls++;
		if (refuse) {
			r = -1;
			errno = ENOTSUPP;
		} else if (fds) {
			r = bpf_map_update_batch(outer, &keys[i], &fds[i], &count, NULL);
		} else {
			r = bpf_map_delete_batch(outer, &keys[i], &count, NULL);
		}
		e = errno;
		if (!r) {
			i += count;
			continue;
		}
		/* A refused call writes no count back: nothing of it was done. */
		if (count >= req)
			count = 0;
		if (count == 0 && unsupported(e)) {
			no_batch = 1; /* e.g. older kernels: no batch ops on a hash of maps */
			continue;
		}
		/* The batch stopped at keys[i + count]: that one alone says why. */
		i += count;
		r = one(outer, &keys[i], fds ? &fds[i] : NULL);
		if (r)
			return r;
		i++;
	}
	return 0;
}

static void close_puts(struct sl_tbatch *b)
{
	for (size_t i = 0; i < b->n_put; i++)
		close((int)b->put_fds[i]);
	b->n_put = 0;
}

int sl_tbatch_flush(struct sl_tbatch *b)
{
	int err = run(b->outer, b->put_keys, b->put_fds, b->n_put);

	close_puts(b);
	if (!err)
		err = run(b->outer, b->del_keys, NULL, b->n_del);
	b->n_del = 0;
	return err;
}

void sl_tbatch_free(struct sl_tbatch *b)
{
	close_puts(b);
	free(b->put_keys);
	free(b->put_fds);
	free(b->del_keys);
	memset(b, 0, sizeof(*b));
	b->outer = -1;
}
