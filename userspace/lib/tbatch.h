/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The changes of one apply to the outer hash of maps `sluice_tables`, put in
 * with one BPF_MAP_UPDATE_BATCH and one BPF_MAP_DELETE_BATCH instead of one
 * call per table: the kernel waits a full RCU grace period after every write
 * to a map of maps (synchronize_rcu), per call, not per element. A kernel
 * that refuses batch operations on a hash of maps gets one call per element.
 */
#ifndef SLUICE_TBATCH_H
#define SLUICE_TBATCH_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

/* Most inner map fds held open before a flush. */
#define SL_TBATCH_MAX_PUT 384

struct sl_tbatch {
	int outer; /* fd of sluice_tables */
	struct sluice_table_key *put_keys;
	__u32 *put_fds; /* owned: closed by the flush */
	size_t n_put, cap_put, cap_put_fds;
	struct sluice_table_key *del_keys;
	size_t n_del, cap_del;
};

/* Calls made so far, for tests and the bench: batch calls and per-element
 * calls (the fallback, or an element a batch stopped at). */
struct sl_tbatch_stats {
	uint64_t batch_calls;
	uint64_t elem_calls;
	int elem_only; /* the kernel refused batches, or a test forced one at a time */
};

void sl_tbatch_init(struct sl_tbatch *b, int outer);
/* Queue (key -> inner map fd); takes the fd, which is closed on flush or
 * free, also on error. 0 or -ENOMEM. */
int sl_tbatch_put(struct sl_tbatch *b, const struct sluice_table_key *k, int fd);
/* Queue the deletion of key, if the map holds it. 0 or -errno. */
int sl_tbatch_del(struct sl_tbatch *b, const struct sluice_table_key *k);
/* Write the queued entries, then delete the queued keys; empty the queues.
 * 0 or -errno. */
int sl_tbatch_flush(struct sl_tbatch *b);
void sl_tbatch_free(struct sl_tbatch *b);

void sl_tbatch_stats(struct sl_tbatch_stats *out);
/* Tests: 1 makes every flush go one element at a time; 2 makes every batch
 * call fail as a kernel without batch operations on a hash of maps answers
 * (ENOTSUPP, no count written back: Debian's 6.1), which the flush must
 * detect; 0 back to normal. */
void sl_tbatch_force_elem(int mode);

#endif /* SLUICE_TBATCH_H */
