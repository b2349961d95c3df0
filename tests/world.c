// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The tests' own datapath: see world.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "world.h"

int test_world_parse(const char *yaml, struct sl_config *cfg, char *why, size_t len)
{
	struct sl_problems d = {0};

	if (sl_config_parse("test.yaml", yaml, strlen(yaml), cfg, &d)) {
		snprintf(why, len, "parse config: %s", d.n ? d.list[0].text : "invalid");
		sl_problems_free(&d);
		return -EINVAL;
	}
	sl_problems_free(&d);
	return 0;
}

static int remove_cgroup(struct test_world *w, char *why, size_t len)
{
	if (!w->have_cgroup)
		return 0;
	if (rmdir(w->cgroup) && errno != ENOENT) {
		int err = -errno;

		snprintf(why, len, "rmdir %s: %s", w->cgroup, strerror(-err));
		return err;
	}
	w->have_cgroup = 0;
	return 0;
}

/* The pins and the cgroup: the maps stay alive in dp's objects. */
static int unlink_world(struct test_world *w, char *why, size_t len)
{
	struct sl_problem e = {.env = 0};
	int err = 0;

	if (w->bpffs[0])
		err = sl_dp_teardown(w->bpffs, &e);
	if (err) {
		snprintf(why, len, "remove the pins under %s: %s", w->bpffs, e.msg);
		return err;
	}
	return remove_cgroup(w, why, len);
}

void test_world_down(struct test_world *w)
{
	char ignored[256];

	if (w->have_dp)
		sl_dp_close(&w->dp);
	w->have_dp = 0;
	w->maps = NULL;
	unlink_world(w, ignored, sizeof(ignored));
	if (w->have_agent)
		sl_config_free(&w->agent);
	w->have_agent = 0;
	w->bpffs[0] = '\0';
	for (size_t i = 0; i < w->n_cfgs; i++)
		sl_config_free(w->cfgs[i]);
	w->n_cfgs = 0;
}

int test_world_up(struct test_world *w, char *why, size_t len)
{
	char cg2[PATH_MAX], yaml[3 * PATH_MAX];
	struct sl_problem e = {.env = 0};
	int err;

	memset(w, 0, sizeof(*w));
	err = sl_find_cgroup2(cg2, sizeof(cg2));
	if (err) {
		snprintf(why, len, "find the cgroup2 mount in /proc/mounts: %s", strerror(-err));
		return err;
	}
	if (snprintf(w->cgroup, sizeof(w->cgroup), "%s/sluice-utest-%d", cg2, (int)getpid()) >=
	    (int)sizeof(w->cgroup)) {
		snprintf(why, len, "cgroup path under %s is too long", cg2);
		return -ENAMETOOLONG;
	}
	if (mkdir(w->cgroup, 0700)) {
		err = -errno;
		snprintf(why, len, "mkdir %s: %s", w->cgroup, strerror(-err));
		return err;
	}
	w->have_cgroup = 1;
	/* bpffs is set only now: a pin directory of that name is ours to remove. */
	snprintf(w->bpffs, sizeof(w->bpffs), "/sys/fs/bpf/sluice-utest-%d", (int)getpid());
	snprintf(yaml, sizeof(yaml),
		 "agent:\n"
		 "  bpffs: %s\n"
		 "  cgroup: %s\n"
		 "  limits: {services: %d, backends: %d, revnat: 1024}\n",
		 w->bpffs, w->cgroup, TEST_WORLD_SERVICES, TEST_WORLD_BACKENDS);
	err = test_world_parse(yaml, &w->agent, why, len);
	if (err)
		goto fail;
	w->have_agent = 1;
	err = sl_dp_open(&w->dp, &w->agent, &e);
	if (err) {
		snprintf(why, len, "open the datapath: %s", e.msg);
		goto fail;
	}
	w->have_dp = 1;
	err = unlink_world(w, why, len);
	if (err)
		goto fail;
	w->maps = &w->dp.maps;
	err = sl_maps_id_limits(w->maps, &w->max_svc_id, &w->max_be_id);
	if (err) {
		snprintf(why, len, "read the maps' capacities: %s", strerror(-err));
		goto fail;
	}
	return 0;
fail:
	test_world_down(w);
	return err;
}

int test_world_apply(struct test_world *w, const struct sl_config *cfg, char *why, size_t len)
{
	struct sl_plan plan = {0};
	struct sl_state st;
	uint32_t *dead = NULL;
	size_t n_dead = 0;
	int err;

	err = sl_maps_read_state(w->maps, &st);
	if (err) {
		snprintf(why, len, "read the maps' state: %s", strerror(-err));
		return err;
	}
	err = sl_plan_build(&st, cfg, w->max_svc_id, w->max_be_id, &plan);
	if (err) {
		snprintf(why, len, "plan: %s", strerror(-err));
		goto out;
	}
	err = sl_maps_apply(w->maps, &plan, &dead, &n_dead);
	if (err) {
		snprintf(why, len, "apply the plan: %s", strerror(-err));
		goto out;
	}
	err = sl_maps_reap(w->maps, dead, n_dead);
	if (err)
		snprintf(why, len, "reap %zu retired backends: %s", n_dead, strerror(-err));
out:
	free(dead);
	sl_plan_free(&plan);
	sl_state_free(&st);
	return err;
}

int test_world_setup(struct test_world *w, const struct test_world_cfg *cfgs, size_t n,
		     const struct sl_config *apply, char *why, size_t len)
{
	size_t parsed = 0;
	int err = 0;

	if (geteuid() != 0) {
		snprintf(why, len, "needs root for BPF maps");
		return -EPERM;
	}
	if (n > TEST_WORLD_CFGS) {
		snprintf(why, len, "%zu configs, a world holds %d", n, TEST_WORLD_CFGS);
		return -E2BIG;
	}
	while (parsed < n && !err) {
		err = test_world_parse(cfgs[parsed].yaml, cfgs[parsed].cfg, why, len);
		parsed += !err;
	}
	if (!err)
		err = test_world_up(w, why, len);
	if (err) {
		for (size_t i = 0; i < parsed; i++)
			sl_config_free(cfgs[i].cfg);
		return err;
	}
	for (size_t i = 0; i < n; i++)
		w->cfgs[i] = cfgs[i].cfg;
	w->n_cfgs = n;
	err = apply ? test_world_apply(w, apply, why, len) : 0;
	if (err)
		test_world_down(w);
	return err;
}
