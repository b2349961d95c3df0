// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Reading the TC flow metrics out of the pinned maps, for the CLI, the
 * metrics page and the tests: no libnl, no programs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps.h"
#include "mem.h"
#include "tc.h"

int sl_tc_open_pinned(const char *bpffs, int rdonly, int *if_stats_fd, int *flows_fd)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = rdonly ? BPF_F_RDONLY : 0);
	const enum sluice_map ids[] = {SLUICE_MAP_TC_IF_STATS, SLUICE_MAP_TC_FLOWS};
	int *fds[] = {if_stats_fd, flows_fd};
	char path[PATH_MAX + 64];

	*if_stats_fd = *flows_fd = -1;
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", bpffs, sl_map_name(ids[i]));
		*fds[i] = bpf_obj_get_opts(path, &opts);
		if (*fds[i] < 0) {
			int err = -errno;

			if (*if_stats_fd >= 0)
				close(*if_stats_fd);
			*if_stats_fd = *flows_fd = -1;
			return err;
		}
	}
	return 0;
}

int sl_tc_read_if_stats(int map_fd, int ifindex, enum sluice_tc_dir dir, struct sl_tc_counters *out)
{
	struct sluice_tc_if_key key = {.ifindex = (__u32)ifindex, .dir = dir};
	struct sluice_tc_if_stats sum;
	int err;

	memset(out, 0, sizeof(*out));
	err = sl_percpu_sum(map_fd, &key, &sum, sizeof(sum));
	if (err)
		return err == -ENOENT ? 0 : err; /* never seen: zeros */
	out->packets = sum.packets;
	out->bytes = sum.bytes;
	out->untracked = sum.untracked;
	return 0;
}

int sl_tc_read_flows(int map_fd, struct sl_tc_flow_entry **out, size_t *n)
{
	struct sluice_tc_flow_key *keys = NULL;
	struct sluice_tc_flow *vals = NULL;
	struct sl_tc_flow_entry *all = NULL;
	size_t have = 0, cap = 0;
	__u32 chunk = 256, batch = 0;
	int err = 0, first = 1;

	*out = NULL;
	*n = 0;
	for (;;) {
		__u32 count = chunk;

		if (!keys) {
			keys = calloc(chunk, sizeof(*keys));
			vals = calloc(chunk, sizeof(*vals));
			if (!keys || !vals) {
				err = -ENOMEM;
				break;
			}
		}
		err = bpf_map_lookup_batch(map_fd, first ? NULL : &batch, &batch, keys, vals,
					   &count, NULL);
		if (err && errno == ENOSPC && count == 0) {
			/* A hash bucket holds more than a chunk: retry bigger. */
			free(keys);
			free(vals);
			keys = NULL;
			vals = NULL;
			chunk *= 2;
			continue;
		}
		if (err && errno != ENOENT) {
			err = -errno;
			break;
		}
		if (SL_ENSURE(&all, &cap, have + count)) {
			err = -ENOMEM;
			break;
		}
		for (__u32 i = 0; i < count; i++) {
			all[have].key = keys[i];
			all[have].flow = vals[i];
			have++;
		}
		if (err) { /* ENOENT: that was the last batch */
			err = 0;
			break;
		}
		first = 0;
	}
	free(keys);
	free(vals);
	if (err) {
		free(all);
		return err;
	}
	*out = all;
	*n = have;
	return 0;
}
