// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config file into the maps: reload (load, check, merge with the
 * registry, diff, apply), and the backends an apply retired, deleted after
 * a grace period.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "metrics.h"
#include "maps.h"
#include "mem.h"
#include "plan.h"

/* How long a retired backend stays in the maps before it is deleted. */
#define REAP_GRACE_MS 1000

uint64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agent_print_problems(const struct sl_problems *d, int to_log)
{
	for (size_t i = 0; i < d->n; i++) {
		if (to_log)
			sl_error("invalid config", "error=\"%s\"", d->list[i].text);
		else
			fprintf(stderr, "%s\n", d->list[i].text);
	}
}

int agent_resolve_cgroup(struct sl_config *cfg)
{
	if (cfg->agent.cgroup[0])
		return 0;
	return sl_find_cgroup2(cfg->agent.cgroup, sizeof(cfg->agent.cgroup));
}

int agent_track_retired(struct agent *a, const uint32_t *ids, size_t n)
{
	uint64_t now = agent_now_ms();

	if (!n)
		return 0;
	if (SL_ENSURE(&a->retired, &a->cap_retired, a->n_retired + n))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		a->retired[a->n_retired++] = (struct retired){.id = ids[i], .since_ms = now};
	return 0;
}

void agent_reap(struct agent *a)
{
	uint64_t now = agent_now_ms();
	size_t keep = 0;

	for (size_t i = 0; i < a->n_retired; i++) {
		if (now - a->retired[i].since_ms < REAP_GRACE_MS) {
			a->retired[keep++] = a->retired[i];
			continue;
		}
		/* The kept state (agent.h, applied_st) loses the ids whose entries are gone. */
		int err = a->have_applied_st ? sl_maps_reap_state(&a->dp.maps, &a->applied_st,
								  &a->retired[i].id, 1)
					     : sl_maps_reap(&a->dp.maps, &a->retired[i].id, 1);

		if (err) {
			sl_warn("cannot delete retired backend", "backend_id=%u error=\"%s\"",
				a->retired[i].id, strerror(-err));
			a->retired[keep++] = a->retired[i];
			agent_drop_state(a);
		}
	}
	a->n_retired = keep;
}

static void log_plan(const struct sl_plan *plan)
{
	static const char *const verbs[] = {"service added", "service updated", "service removed"};

	for (size_t i = 0; i < plan->n_ops; i++) {
		const struct sl_svc_op *op = &plan->ops[i];
		const char *name = op->want ? op->want->name : op->cur->name;
		size_t n = op->want ? op->want->n_backends : 0;
		char fe[SL_HOSTPORT_LEN];

		sl_format_hostport(op->want ? &op->want->frontend : &op->cur->frontend, fe,
				   sizeof(fe));
		sl_info(verbs[op->kind], "service=%s frontend=%s backends=%zu removed_backends=%zu",
			name, fe, n, op->n_gone);
	}
}

void agent_drop_state(struct agent *a)
{
	sl_state_free(&a->applied_st);
	a->have_applied_st = 0;
}

/* What the apply left in the maps, kept for the rest of the change and the next ones (agent.h,
 * applied_st). Without it (it could not be read) they read the maps themselves. */
static void keep_applied_state(struct agent *a, struct sl_state *st, const struct sl_plan *plan,
			       const uint32_t *dead, size_t n_dead)
{
	int err = sl_maps_state_after(&a->dp.maps, st, plan, dead, n_dead);

	if (err) {
		sl_warn("cannot read back the services the change touched; the health and "
			"identity sync and the next change read the maps again",
			"error=\"%s\"", strerror(-err));
		return;
	}
	a->applied_st = *st;
	a->have_applied_st = 1;
	memset(st, 0, sizeof(*st));
}

/* SLUICE_VERIFY_STATE=1 (README, "sluiced"; sluiced(8), ENVIRONMENT): check the kept state on
 * every change and API GET. */
static int verify_state(void)
{
	const char *v = getenv("SLUICE_VERIFY_STATE");

	return v && !strcmp(v, "1");
}

/* Under SLUICE_VERIFY_STATE=1: the kept state compared with a read of the maps, a difference
 * logged (the first one) and the kept state then dropped. 0, or -errno of the read (kept). */
static int check_kept_state(struct agent *a)
{
	struct sl_state fresh;
	char why[512];
	int err, d;

	if (!a->have_applied_st || !verify_state())
		return 0;
	err = sl_maps_read_state(&a->dp.maps, &fresh);
	if (err)
		return err;
	d = sl_state_diff(&a->applied_st, &fresh, why, sizeof(why));
	if (d) {
		sl_error("kept state differs from the maps", "difference=\"%s\"",
			 d < 0 ? strerror(-d) : why);
		agent_drop_state(a);
	}
	sl_state_free(&fresh);
	return 0;
}

/* The maps' state to plan against, st's now: the kept one (agent.h, applied_st; checked
 * under SLUICE_VERIFY_STATE=1), else a read. */
static int state_for_change(struct agent *a, struct sl_state *st)
{
	int err = check_kept_state(a);

	if (err)
		agent_drop_state(a);
	if (!a->have_applied_st)
		return sl_maps_read_state(&a->dp.maps, st);
	*st = a->applied_st;
	memset(&a->applied_st, 0, sizeof(a->applied_st));
	a->have_applied_st = 0;
	return 0;
}

const struct sl_state *agent_kept_state(struct agent *a)
{
	if (check_kept_state(a))
		agent_drop_state(a);
	return a->have_applied_st ? &a->applied_st : NULL;
}

/* Under SLUICE_VERIFY_STATE=1, after a change planned for some services alone: a plan of
 * every service against the kept state must find nothing left to do. */
static void check_scoped(struct agent *a, const struct sl_config *cfg, uint32_t max_svc,
			 uint32_t max_be)
{
	struct sl_addrs local = {0};
	struct sl_plan full;
	int err;

	if (!a->have_applied_st || !verify_state())
		return;
	err = cfg->agent.mtls.on ? sl_local_addrs(&local) : -ENOENT;
	err = sl_plan_build_at(&a->applied_st, cfg, err ? NULL : &local, max_svc, max_be, &full);
	sl_addrs_free(&local);
	if (err)
		return;
	if (full.n_ops) {
		sl_error("a scoped change missed a service", "service=%s kind=%d ops=%zu",
			 full.ops[0].want ? full.ops[0].want->name : full.ops[0].cur->name,
			 (int)full.ops[0].kind, full.n_ops);
		agent_drop_state(a);
	}
	sl_plan_free(&full);
}

/* Diff the maps against cfg and write the difference. */
int agent_reconcile(struct agent *a, const struct sl_config *cfg)
{
	return agent_reconcile_only(a, cfg, NULL, 0);
}

int agent_reconcile_only(struct agent *a, const struct sl_config *cfg,
			 const char (*only)[SLUICE_NAME_LEN], size_t n_only)
{
	struct sl_state st;
	struct sl_plan plan;
	struct sl_addrs local = {0};
	uint32_t max_svc, max_be, *dead = NULL;
	size_t n_dead = 0;
	int err;

	err = sl_maps_id_limits(&a->dp.maps, &max_svc, &max_be);
	if (err)
		agent_drop_state(a);
	else
		err = state_for_change(a, &st);
	if (err) {
		sl_error("cannot read the maps", "error=\"%s\"", strerror(-err));
		return err;
	}
	/* mtls: a backend at none of this node's addresses, read now, is remote. */
	err = cfg->agent.mtls.on ? sl_local_addrs(&local) : -ENOENT;
	if (err && err != -ENOENT)
		sl_warn("cannot read this node's addresses: every backend counts as local",
			"error=\"%s\"", strerror(-err));
	err =
	    sl_plan_build_only(&st, cfg, err ? NULL : &local, max_svc, max_be, only, n_only, &plan);
	sl_addrs_free(&local);
	if (err) {
		sl_error("cannot plan the change", "error=\"%s\"", strerror(-err));
		sl_state_free(&st);
		return err;
	}
	err = sl_maps_apply(&a->dp.maps, &plan, &dead, &n_dead);
	if (err)
		sl_error("applying the config failed part way; the next reload retries",
			 "error=\"%s\"", strerror(-err));
	else
		log_plan(&plan);
	if (!err)
		agent_close_sockets(a, cfg, &st, dead, n_dead, AGENT_CLOSE_REMOVED);
	if (agent_track_retired(a, dead, n_dead))
		sl_warn("cannot track retired backends", "count=%zu", n_dead);
	if (!err) {
		a->applied_add = plan.n_add;
		a->applied_update = plan.n_update;
		a->applied_remove = plan.n_remove;
		a->applied_services = cfg->n_services;
		a->applied_pending = 1;
		keep_applied_state(a, &st, &plan, dead, n_dead);
		if (only)
			check_scoped(a, cfg, max_svc, max_be);
	}
	free(dead);
	sl_plan_free(&plan);
	sl_state_free(&st);
	return err;
}

/* "config applied", for the last successful agent_reconcile, once the caller's follow-up work
 * is done: tools and tests take this line as "the change is in place". */
void agent_log_applied(struct agent *a)
{
	if (!a->applied_pending)
		return;
	a->applied_pending = 0;
	sl_info("config applied", "added=%zu updated=%zu removed=%zu services=%zu", a->applied_add,
		a->applied_update, a->applied_remove, a->applied_services);
}

void agent_observe_apply(struct agent *a, enum agent_apply_src src, uint64_t start_ns)
{
	sl_hist_observe(&a->apply_hist[src], sl_mono_ns() - start_ns);
}

/* Settings that shape the maps, links, sockets and threads are fixed for the
 * agent's life: the whole struct sl_agent_cfg. */
static int check_fixed(const struct sl_config *old, const struct sl_config *cfg)
{
	const char *why = sl_agent_cfg_diff(&old->agent, &cfg->agent);

	if (!why)
		return 0;
	sl_error(why);
	return -1;
}

/* After every apply: the identity maps and the mtls policy snapshot follow the effective
 * config. */
void agent_sync_identities(struct agent *a)
{
	int err;

	if (!a->ident_on)
		return;
	err = sl_ident_sync(&a->ident, &a->eff, a->have_applied_st ? &a->applied_st : NULL);
	if (err)
		sl_error("cannot update identities and policy maps; the next apply retries",
			 "error=\"%s\"", strerror(-err));
	agent_mtls_apply(a);
}

void agent_reload(struct agent *a, const char *why)
{
	uint64_t start = sl_mono_ns();
	struct sl_config cfg, eff;
	struct sl_problems d = {0};
	struct sl_problem re;
	char *text;
	size_t len;
	int err;

	sl_info("reloading", "reason=%s file=%s", why, a->config_path);
	if (sl_config_load_text(a->config_path, &cfg, &d, &text, &len)) {
		free(text);
		agent_print_problems(&d, 1);
		a->reloads_err++;
		sl_error("config rejected; the previous config keeps serving",
			 "errors=%zu reloads_error=%llu", d.n, (unsigned long long)a->reloads_err);
		sl_problems_free(&d);
		return;
	}
	if (agent_resolve_cgroup(&cfg) || check_fixed(&a->cfg, &cfg)) {
		sl_config_free(&cfg);
		free(text);
		a->reloads_err++;
		return;
	}
	if (sl_registry_merge(&cfg, &a->reg, &eff, &re)) {
		sl_error("config rejected: it conflicts with the API registrations; the previous "
			 "config keeps serving",
			 "error=\"%s\"", re.msg);
		sl_config_free(&cfg);
		free(text);
		a->reloads_err++;
		return;
	}
	a->applied_pending = 0;
	if (agent_reconcile(a, &eff)) {
		sl_config_free(&eff);
		sl_config_free(&cfg);
		free(text);
		a->reloads_err++;
		return;
	}
	sl_config_free(&a->cfg);
	sl_config_free(&a->eff);
	free(a->cfg_text);
	a->cfg = cfg;
	a->eff = eff;
	a->cfg_text = text;
	a->cfg_len = len;
	a->reloads_ok++;
	err = agent_sync_backends(a, &a->eff);
	if (err)
		sl_error("cannot update health checks; the next reload retries", "error=\"%s\"",
			 strerror(-err));
	agent_sync_identities(a);
	agent_log_applied(a);
	agent_observe_apply(a, AGENT_APPLY_FILE, start);
}
