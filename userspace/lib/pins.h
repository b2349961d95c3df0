/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What sluice keeps on the bpf filesystem: the agent.bpffs directory, the
 * pinned maps an object about to load must be able to reuse, and the ABI
 * stamp (sluice_abi: the SLUICE_ABI_VERSION that made the pins).
 */
#ifndef SLUICE_PINS_H
#define SLUICE_PINS_H

#include "problem.h"

struct bpf_map;

/* Is path on a bpf filesystem? */
int sl_is_bpffs(const char *path);

/* Make sure 'dir' can be created on a bpf filesystem, mounting bpffs at
 * /sys/fs/bpf when needed. */
int sl_ensure_bpffs(const char *dir, struct sl_problem *e);

/* Give map the capacity of its pin under dir, if there is one. 0 or -errno. */
int sl_pin_adopt_size(const char *dir, struct bpf_map *map);

/* A map pinned under dir with map's name must have map's type, key and value
 * sizes and capacity, or libbpf could not reuse it: 0 when it does or when
 * nothing is pinned, -EEXIST with what to do otherwise. */
int sl_pin_check(const char *dir, struct bpf_map *map, struct sl_problem *e);

/* May the state pinned under dir be adopted? 0 when its ABI stamp holds
 * SLUICE_ABI_VERSION, or nothing is pinned there. Pins without a stamp
 * predate it and count as version 1. Otherwise -EPROTO with e saying what
 * to do (env: exit 3). */
int sl_abi_check(const char *dir, struct sl_problem *e);

/* Pin the stamp under dir (mode 0600, frozen) unless one is there: call it
 * after sl_abi_check, once this process's pins are there. */
int sl_abi_stamp(const char *dir, struct sl_problem *e);

#endif /* SLUICE_PINS_H */
