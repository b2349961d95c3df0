/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A datapath of the tests' own, for tests of code that needs real BPF maps (root, the real
 * kernel): sl_dp_open() on a bpffs directory and an empty cgroup named after the test's pid,
 * so the maps are exactly the agent's, made with small agent.limits.
 *
 * As soon as the datapath is open its pins and its cgroup are removed again: the maps live on
 * in the open objects, and the programs, attached to a cgroup nobody is in, go with it. So even
 * a test that crashes (Criterion then runs no .fini) leaves nothing behind. test_world_down()
 * closes the rest, and removes pins and cgroup itself if they are still there.
 *
 * No asserts in here: the fixtures decide. Each function returns 0 or -errno, with what failed,
 * on what and why in 'why'.
 */
#ifndef SLUICE_TESTS_WORLD_H
#define SLUICE_TESTS_WORLD_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "datapath.h"
#include "maps.h"

/* agent.limits of the world: services and backends. */
#define TEST_WORLD_SERVICES 16
#define TEST_WORLD_BACKENDS 32
/* Configs a world may own (test_world_setup). */
#define TEST_WORLD_CFGS 2

/* A config a suite's setup parses: yaml into *cfg. */
struct test_world_cfg {
	const char *yaml;
	struct sl_config *cfg;
};

struct test_world {
	char bpffs[PATH_MAX];
	char cgroup[PATH_MAX];
	struct sl_config agent; /* the agent settings the datapath was opened with */
	struct sl_dp dp;
	unsigned int have_agent : 1, have_cgroup : 1, have_dp : 1;
	const struct sl_maps *maps; /* &dp.maps, once up */
	uint32_t max_svc_id, max_be_id;
	struct sl_config *cfgs[TEST_WORLD_CFGS]; /* owned: test_world_down frees them */
	size_t n_cfgs;
};

/* Open the world's datapath; on failure nothing of it is left. */
int test_world_up(struct test_world *w, char *why, size_t len);
/* What a suite of tests on the real maps sets up, in one call: needs root (-EPERM otherwise),
 * parses the n configs (n <= TEST_WORLD_CFGS), opens the world and, unless 'apply' is NULL,
 * applies that config to it. The world owns the configs from then on. On failure nothing of
 * it is left, and the configs are freed. */
int test_world_setup(struct test_world *w, const struct test_world_cfg *cfgs, size_t n,
		     const struct sl_config *apply, char *why, size_t len);
/* Close it, free the configs it owns and remove whatever of it is left; safe on a world that
 * is partly up or down. */
void test_world_down(struct test_world *w);

/* Parse a config that must be valid into *cfg. */
int test_world_parse(const char *yaml, struct sl_config *cfg, char *why, size_t len);

/* Bring the maps to cfg as the agent does: read the state, plan, apply, and reap the
 * backends the apply retired. */
int test_world_apply(struct test_world *w, const struct sl_config *cfg, char *why, size_t len);

#endif /* SLUICE_TESTS_WORLD_H */
