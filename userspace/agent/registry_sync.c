// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The registry's side of the agent: API changes are merged with the config
 * file, applied and saved (or, with registry.etcd, written to etcd and
 * applied when the watch brings them back); TTLs expire; etcd snapshots
 * replace the shared part. See the README, "Registry and control API".
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "mem.h"

/* How long a start waits for the shared registry before it serves what it has. */
#define ETCD_FIRST_SNAPSHOT_MS 2000

static int same_backend(const struct sl_reg_backend *o, const struct sl_reg_backend *b)
{
	return o->weight == b->weight && !strcmp(o->subset, b->subset) && o->ttl_ms == b->ttl_ms &&
	       !strcmp(o->zone, b->zone);
}

/* One registration of 'next' that differs from what a->reg has: a put, or
 * for a heartbeat of an etcd entry a lease refresh. 1 when the lease is not
 * this node's (*e set). */
static int etcd_write_backend(struct agent *a, const struct sl_reg_backend *b, struct sl_problem *e)
{
	const struct sl_reg_backend *o = sl_registry_find_backend(&a->reg, b->service, &b->addr);
	char *key, *val;
	int err;

	if (o && same_backend(o, b) && o->expires_ms == b->expires_ms)
		return 0;
	key = sl_registry_backend_key(a->cfg.agent.etcd_prefix, b);
	val = sl_registry_backend_value(b);
	if (!key || !val) {
		err = -ENOMEM;
	} else if (o && same_backend(o, b) && o->origin == SL_REG_ETCD) {
		/* A heartbeat: the lease lives on the node that registered it. */
		err = sl_etcd_refresh(a->etcd, key);
		if (err == -ENOENT) {
			sl_problem_http(e, 409, "address",
					"registered through another node: send its heartbeats "
					"there");
			err = 1;
		}
	} else {
		err = sl_etcd_put(a->etcd, key, val, (unsigned int)((b->ttl_ms + 999) / 1000));
	}
	free(key);
	free(val);
	return err;
}

/*
 * With registry.etcd, an API change of registrations or services is written
 * to etcd (a TTL as a lease) and applied when the watch brings it back, on
 * every node alike. The change is checked first, as if it were applied
 * here: a request that fails writes nothing.
 */
static int etcd_write_through(struct agent *a, const struct sl_registry *next, struct sl_problem *e)
{
	const char *pfx = a->cfg.agent.etcd_prefix;
	int err = 0;

	for (size_t i = 0; i < next->n_bes && !err; i++) {
		err = etcd_write_backend(a, &next->bes[i], e);
		if (err > 0)
			return -1;
	}
	for (size_t i = 0; i < a->reg.n_bes && !err; i++) {
		char *key;

		if (sl_registry_find_backend(next, a->reg.bes[i].service, &a->reg.bes[i].addr))
			continue;
		key = sl_registry_backend_key(pfx, &a->reg.bes[i]);
		err = key ? sl_etcd_delete(a->etcd, key) : -ENOMEM;
		free(key);
	}
	for (size_t i = 0; i < next->n_svcs && !err; i++) {
		const struct sl_reg_service *o =
		    sl_registry_find_service(&a->reg, next->svcs[i].name);
		char *key;

		if (o && !strcmp(o->json, next->svcs[i].json))
			continue;
		key = sl_registry_service_key(pfx, next->svcs[i].name);
		err = key ? sl_etcd_put(a->etcd, key, next->svcs[i].json, 0) : -ENOMEM;
		free(key);
	}
	for (size_t i = 0; i < a->reg.n_svcs && !err; i++) {
		char *key;

		if (sl_registry_find_service(next, a->reg.svcs[i].name))
			continue;
		key = sl_registry_service_key(pfx, a->reg.svcs[i].name);
		err = key ? sl_etcd_delete(a->etcd, key) : -ENOMEM;
		free(key);
	}
	if (err)
		sl_problem_http(e, 503, "", "cannot queue the change for etcd: %s", strerror(-err));
	return err ? -1 : 0;
}

/* The etcd keys a snapshot left out: one warning each (the first SL_REG_SKIPS_KEPT), and
 * how many more; then *s is freed. */
static void log_skips(struct sl_reg_skips *s)
{
	for (size_t i = 0; i < s->n; i++)
		sl_warn("etcd key skipped; the rest of the snapshot applies",
			"key=\"%s\" why=\"%s\"", s->v[i].key, s->v[i].why);
	if (s->total > s->n)
		sl_warn("more etcd keys skipped", "count=%zu", s->total - s->n);
	sl_reg_skips_free(s);
}

/* The effective config of 'next'. An etcd snapshot logs the keys it leaves out; an API
 * change is checked strictly (sl_registry_merge). */
static int registry_merge(struct agent *a, const struct sl_registry *next, enum sl_change what,
			  struct sl_config *eff, struct sl_problem *e)
{
	struct sl_reg_skips skips = {0};
	int err;

	if (what != SL_CHANGE_ETCD_SNAPSHOT)
		return sl_registry_merge(&a->cfg, next, eff, e);
	err = sl_registry_merge_skips(&a->cfg, next, eff, &skips, e);
	log_skips(&skips);
	return err;
}

/* Save the registry as best effort: a failure (a full disk) is logged and
 * counted, and the next tick tries again. */
void agent_registry_save(struct agent *a)
{
	struct sl_problem e;

	if (sl_registry_save(&a->reg, a->cfg.agent.state, &e)) {
		a->state_save_failures++;
		a->reg_dirty = 1;
		sl_warn("cannot save the registry; serving it, and retrying every second",
			"error=\"%s\" failures=%llu", e.msg,
			(unsigned long long)a->state_save_failures);
		return;
	}
	a->reg_dirty = 0;
}

/* next and its merge eff into the maps, then into a->reg and a->eff. A client's change
 * (durable first) is saved already. starts: when each change arrived, n of them
 * (sluice_config_apply_seconds). 0 (both taken), or -1 with e set, eff freed, next still the
 * caller's, and everything as it was. */
static int commit_apply(struct agent *a, struct sl_registry *next, struct sl_config *eff,
			enum sl_change what, const uint64_t *starts, size_t n, struct sl_problem *e)
{
	static const char none[1][SLUICE_NAME_LEN];
	char(*changed)[SLUICE_NAME_LEN] = NULL;
	const char(*only)[SLUICE_NAME_LEN] = NULL;
	struct sl_problem ignored;
	size_t n_only = 0;
	int err, etcd = 0;

	/* A change of some services is planned for those alone, when the maps are known to
	 * hold a->eff (a kept state: the last change went through whole); a snapshot, or a
	 * change of etcd entries, for every service. */
	if (what != SL_CHANGE_ETCD_SNAPSHOT && a->have_applied_st &&
	    !sl_registry_changed(&a->reg, next, &changed, &n_only, &etcd) && !etcd)
		only = changed ? changed : none; /* a drain changes no service */
	err = agent_reconcile_only(a, eff, only, only ? n_only : 0);
	free(changed);
	if (err) {
		/* Back to what was: the file, then the maps (reconcile retries). */
		if (sl_change_durable_first(what))
			sl_registry_save(&a->reg, a->cfg.agent.state, &ignored);
		agent_reconcile(a, &a->eff);
		agent_log_applied(a);
		sl_config_free(eff);
		sl_problem_http(e, 500, "", "applying the change to the maps failed");
		return -1;
	}
	sl_registry_free(&a->reg);
	a->reg = *next;
	a->reg_dirty = 0;
	if (!sl_change_durable_first(what))
		agent_registry_save(a);
	sl_config_free(&a->eff);
	a->eff = *eff;
	sl_info("registry changed",
		"change=\"%s\" changes=%zu services=%zu registered_backends=%zu drains=%zu",
		sl_change_name(what), n, a->reg.n_svcs, a->reg.n_bes, a->reg.n_drains);
	err = agent_sync_backends(a, &a->eff);
	if (err)
		sl_error("cannot update health checks and drains", "error=\"%s\"", strerror(-err));
	agent_mtls_apply(a); /* registered backends may be local ones of mtls services */
	agent_log_applied(a);
	for (size_t i = 0; i < n; i++)
		agent_observe_apply(a,
				    what == SL_CHANGE_ETCD_SNAPSHOT ? AGENT_APPLY_ETCD
				    : what == SL_CHANGE_EXPIRED	    ? AGENT_APPLY_EXPIRY
								    : AGENT_APPLY_API,
				    starts[i]);
	return 0;
}

void agent_batch_free(struct agent *a)
{
	if (a->batch.on) {
		sl_registry_free(&a->batch.reg);
		sl_config_free(&a->batch.eff);
	}
	a->batch.on = 0;
	a->batch.n = 0;
	free(a->batch.starts);
	a->batch.starts = NULL;
	a->batch.cap = 0;
}

/* A client's change into the batch: checked and merged now (the batch's registry and
 * effective config become it), saved and applied by agent_api_flush. 0 or -1 (e set, the
 * batch as it was). */
static int batch_add(struct agent *a, struct sl_registry *next, enum sl_change what, uint64_t start,
		     struct sl_problem *e)
{
	int counted = sl_change_durable_first(what); /* a heartbeat only follows the others */
	struct sl_config eff;

	if (counted && SL_ENSURE(&a->batch.starts, &a->batch.cap, a->batch.n + 1)) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	if (registry_merge(a, next, what, &eff, e))
		return -1;
	if (a->batch.on) {
		sl_registry_free(&a->batch.reg);
		sl_config_free(&a->batch.eff);
	}
	a->batch.reg = *next;
	a->batch.eff = eff;
	if (!a->batch.on) /* a heartbeat only joins a batch that is on */
		a->batch.what = what;
	a->batch.on = 1;
	a->batch.joined = 1;
	if (counted)
		a->batch.starts[a->batch.n++] = start;
	return 0;
}

int agent_api_flush(void *ctx, unsigned int *status, char **out)
{
	struct agent *a = ctx;
	struct sl_registry next;
	struct sl_config eff;
	struct sl_problem e = {0};
	json_t *o;

	*status = 0;
	*out = NULL;
	if (!a->batch.on)
		return 0;
	next = a->batch.reg;
	eff = a->batch.eff;
	a->batch.on = 0;
	if (sl_registry_save(&next, a->cfg.agent.state, &e)) {
		a->state_save_failures++;
		sl_config_free(&eff);
		sl_registry_free(&next);
	} else if (!commit_apply(a, &next, &eff, a->batch.what, a->batch.starts, a->batch.n, &e)) {
		a->batch.n = 0;
		return 0;
	} else {
		sl_registry_free(&next);
	}
	sl_warn("registry changes refused", "changes=%zu error=\"%s\"", a->batch.n, e.msg);
	a->batch.n = 0;
	*status = e.status ? (unsigned int)e.status : 500;
	o = json_pack("{s:s}", "error", e.msg);
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return -1;
}

int agent_api_joined(void *ctx)
{
	struct agent *a = ctx;
	int joined = a->batch.joined;

	a->batch.joined = 0;
	return joined;
}

int agent_registry_commit(struct agent *a, struct sl_registry *next, enum sl_change what,
			  struct sl_problem *e)
{
	struct sl_config eff;
	uint64_t start = sl_mono_ns();

	if (a->etcd && sl_change_shared(what)) {
		if (sl_registry_merge(&a->cfg, next, &eff, e))
			return -1;
		sl_config_free(&eff);
		if (etcd_write_through(a, next, e))
			return -1;
		sl_info("registry change sent to etcd", "change=\"%s\"", sl_change_name(what));
		sl_registry_free(next); /* the watch brings it back */
		return 1;
	}
	if (what == SL_CHANGE_HEARTBEAT && !a->batch.on) { /* a TTL moved: saved next tick */
		sl_registry_free(&a->reg);
		a->reg = *next;
		a->reg_dirty = 1;
		return 0;
	}
	/* A client's change: into the batch of this run of the API listener. */
	if (a->batch.taking && (sl_change_durable_first(what) || what == SL_CHANGE_HEARTBEAT))
		return batch_add(a, next, what, start, e);
	if (registry_merge(a, next, what, &eff, e))
		return -1;
	/* A client's change is saved before it is applied: it is answered only
	 * once it would survive a restart. Expiries and etcd snapshots come from
	 * no client and must not wait for a disk: applied first, saved as best
	 * effort (retried every tick, logged and counted). */
	if (sl_change_durable_first(what) && sl_registry_save(next, a->cfg.agent.state, e)) {
		a->state_save_failures++;
		sl_config_free(&eff);
		return -1;
	}
	if (commit_apply(a, next, &eff, what, &start, 1, e))
		return -1;
	return 0;
}

/*
 * The registry with the etcd part replaced by the latest snapshot, in
 * *next (a copy of a->reg). 1 when there was a new snapshot, 0 when not,
 * -errno.
 */
static int etcd_snapshot(struct agent *a, struct sl_registry *next)
{
	struct sl_etcd_kv *kvs = NULL;
	const char **keys = NULL, **vals = NULL;
	int64_t *leases = NULL;
	struct sl_reg_skips skips = {0};
	struct sl_problem e = {0};
	size_t n = 0;
	int got, err = 0;

	got = sl_etcd_take(a->etcd, &kvs, &n, NULL);
	if (got <= 0)
		return got;
	keys = calloc(n + 1, sizeof(*keys));
	vals = calloc(n + 1, sizeof(*vals));
	leases = calloc(n + 1, sizeof(*leases));
	if (!keys || !vals || !leases || sl_registry_copy(&a->reg, next)) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		keys[i] = kvs[i].key;
		vals[i] = kvs[i].value;
		leases[i] = kvs[i].lease;
	}
	if (sl_registry_etcd_load(next, a->cfg.agent.etcd_prefix, keys, vals, leases, n, &a->cfg,
				  &skips, &e)) {
		sl_error("the etcd snapshot cannot be loaded; the previous state keeps serving",
			 "error=\"%s\"", e.msg);
		sl_registry_free(next);
		got = 0;
	}
	log_skips(&skips);
out:
	free(keys);
	free(vals);
	free(leases);
	sl_etcd_kvs_free(kvs, n);
	return err ? err : got;
}

/* A new snapshot of the shared registry: it replaces the previous one. */
void agent_on_etcd(void *arg)
{
	struct agent *a = arg;
	struct sl_registry next;
	struct sl_problem e = {0};
	int got = etcd_snapshot(a, &next);

	if (got < 0)
		sl_error("cannot take the etcd snapshot", "error=\"%s\"", strerror(-got));
	if (got <= 0)
		return;
	if (agent_registry_commit(a, &next, SL_CHANGE_ETCD_SNAPSHOT, &e)) {
		sl_error("the etcd snapshot cannot be applied; the previous state keeps serving",
			 "error=\"%s\"", e.msg);
		sl_registry_free(&next);
	}
}

/* This node's key in etcd: a lease of NODE_TTL_S kept alive every NODE_REFRESH_MS from the
 * tick, so it is gone within NODE_TTL_S of the agent (README "Locality"). */
#define NODE_TTL_S	30
#define NODE_REFRESH_MS 10000

static void etcd_node(struct agent *a)
{
	const struct sl_agent_cfg *c = &a->cfg.agent;
	char *key = sl_registry_node_key(c->etcd_prefix, sl_agent_node(c)), *value = NULL;
	uint64_t now = agent_now_ms();
	int err;

	if (a->etcd_node_ms && now - a->etcd_node_ms < NODE_REFRESH_MS) {
		free(key);
		return;
	}
	if (!key) {
		err = -ENOMEM;
	} else if (a->etcd_node_ms) {
		err = sl_etcd_refresh(a->etcd, key);
	} else {
		value = sl_registry_node_value(sl_agent_node(c), c->zone, SLUICE_VERSION);
		err = value ? sl_etcd_put(a->etcd, key, value, NODE_TTL_S) : -ENOMEM;
	}
	if (err)
		sl_warn("cannot keep this node's etcd key", "key=%s error=\"%s\"", key ? key : "?",
			strerror(-err));
	else
		a->etcd_node_ms = now;
	free(key);
	free(value);
}

/* TTLs that passed, heartbeats not yet saved, this node's etcd key (every tick). */
void agent_registry_tick(struct agent *a)
{
	struct sl_registry next;
	struct sl_problem e;
	size_t gone;

	if (a->reg.n_bes && !sl_registry_copy(&a->reg, &next)) {
		gone = sl_registry_expire(&next, sl_registry_now_ms());
		if (gone) {
			sl_info("registrations expired: no heartbeat within their TTL",
				"backends=%zu", gone);
			if (agent_registry_commit(a, &next, SL_CHANGE_EXPIRED, &e)) {
				sl_error("cannot remove expired registrations", "error=\"%s\"",
					 e.msg);
				sl_registry_free(&next);
			}
		} else {
			sl_registry_free(&next);
		}
	}
	if (a->reg_dirty)
		agent_registry_save(a);
	if (a->etcd)
		etcd_node(a);
}

static const struct sl_config *api_file(void *arg)
{
	return &((struct agent *)arg)->cfg;
}

/* A change sees the batch's changes before it (agent_registry_commit); GET sees what is
 * applied. */
static const struct sl_config *api_effective(void *arg)
{
	struct agent *a = arg;

	return a->batch.on && a->batch.taking ? &a->batch.eff : &a->eff;
}

static const struct sl_registry *api_registry(void *arg)
{
	struct agent *a = arg;

	return a->batch.on && a->batch.taking ? &a->batch.reg : &a->reg;
}

static int api_commit(void *arg, struct sl_registry *next, enum sl_change what,
		      struct sl_problem *e)
{
	return agent_registry_commit(arg, next, what, e);
}

/* GET /v1/mtls: the certificates' status (sluicectl status), from the agent's loaded set. */
static void api_mtls(struct agent *a, unsigned int *status, char **out)
{
	json_t *o = agent_mtls_json(a);

	*status = o ? 200 : 404;
	if (!o)
		o = json_pack("{s:s}", "error", "mtls is not configured");
	*out = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!*out)
		*status = 500;
}

/* GET's view of the maps: the kept state (agent.h, applied_st). */
static const struct sl_state *api_state(void *arg)
{
	return agent_kept_state(arg);
}

void agent_on_api_request(void *ctx, const char *method, const char *url, const char *body,
			  size_t len, unsigned int *status, char **out)
{
	struct agent *a = ctx;
	struct sl_api api = {
	    .arg = a,
	    .file = api_file,
	    .effective = api_effective,
	    .registry = api_registry,
	    .commit = api_commit,
	    .maps = &a->dp.maps,
	    .state = api_state,
	};

	if (!strcmp(url, "/v1/mtls") && !strcmp(method, "GET")) {
		api_mtls(a, status, out);
		return;
	}
	/* A change joins the batch; a GET is answered from what is applied. */
	a->batch.taking = strcmp(method, "GET") != 0;
	sl_api_handle(&api, method, url, body, len, status, out);
	a->batch.taking = 0;
	if (strcmp(method, "GET"))
		sl_info("api request", "method=%s path=\"%s\" status=%u", method, url, *status);
}

/* "" is NULL: the option is not set. */
static const char *opt(const char *s)
{
	return s[0] ? s : NULL;
}

/*
 * registry.etcd: start the client, and give it a moment to bring the first
 * snapshot, so that a (re)start serves the shared registrations at once.
 * Without it in time, the agent starts from its saved copy of the last
 * snapshot and applies the real one when it comes.
 */
int agent_start_etcd(struct agent *a)
{
	const struct sl_agent_cfg *c = &a->cfg.agent;
	const struct sl_etcd_opts opts = {
	    .ca = opt(c->etcd_ca),
	    .cert = opt(c->etcd_cert),
	    .key = opt(c->etcd_key),
	    .user = opt(c->etcd_user),
	    .password_file = opt(c->etcd_password_file),
	};
	const char *eps[SL_MAX_ETCD_ENDPOINTS];
	struct pollfd pfd = {.events = POLLIN};
	struct sl_config eff;
	struct sl_problem e = {0};
	char why[256] = "";
	uint64_t deadline = agent_now_ms() + ETCD_FIRST_SNAPSHOT_MS;
	size_t plain = 0;

	for (size_t i = 0; i < c->n_etcd; i++) {
		eps[i] = c->etcd_endpoints[i];
		plain += !strncmp(eps[i], "http://", 7);
	}
	if (plain)
		sl_warn("etcd is reached without TLS: anyone on the path can read and write the "
			"registry",
			"plain_endpoints=%zu first=%s", plain, eps[0]);
	a->etcd = sl_etcd_open_opts(eps, c->n_etcd, c->etcd_prefix, &opts, why, sizeof(why));
	if (!a->etcd) {
		sl_error("cannot start the etcd client", "error=\"%s\"", why);
		return -EINVAL;
	}
	etcd_node(a);
	pfd.fd = sl_etcd_fd(a->etcd);
	while (agent_now_ms() < deadline) {
		struct sl_registry next;
		int got;

		if (poll(&pfd, 1, (int)(deadline - agent_now_ms())) <= 0)
			continue;
		got = etcd_snapshot(a, &next);
		if (got <= 0)
			continue;
		if (registry_merge(a, &next, SL_CHANGE_ETCD_SNAPSHOT, &eff, &e)) {
			sl_error(
			    "the etcd registry conflicts with the config file; serving without it "
			    "until it changes",
			    "error=\"%s\"", e.msg);
			sl_registry_free(&next);
			return 0;
		}
		sl_registry_free(&a->reg);
		a->reg = next;
		sl_config_free(&a->eff);
		a->eff = eff;
		sl_info("etcd registry loaded", "services=%zu backends=%zu", a->reg.n_svcs,
			a->reg.n_bes);
		return 0;
	}
	sl_warn("no etcd snapshot yet; serving the saved copy until it comes", "waited_ms=%d",
		ETCD_FIRST_SNAPSHOT_MS);
	return 0;
}

/*
 * The registrations and drains a previous run kept in agent.state, merged
 * with the config file into what the maps will hold. Entries that no longer
 * check out are logged and left out; a file that cannot be used at all is
 * moved aside (not lost) and the agent starts from the config file alone.
 */
int agent_load_registry(struct agent *a)
{
	char path[PATH_MAX + 32], aside[PATH_MAX + 64];
	struct sl_problem e = {0};

	if (sl_registry_load(a->cfg.agent.state, &a->cfg, &a->reg, &e))
		sl_error("some saved registrations were not restored", "error=\"%s\"", e.msg);
	if (!sl_registry_merge(&a->cfg, &a->reg, &a->eff, &e)) {
		if (a->reg.n_svcs || a->reg.n_bes || a->reg.n_drains)
			sl_info("registry restored", "dir=%s services=%zu backends=%zu drains=%zu",
				a->cfg.agent.state, a->reg.n_svcs, a->reg.n_bes, a->reg.n_drains);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/registry.json", a->cfg.agent.state);
	snprintf(aside, sizeof(aside), "%s.rejected", path);
	sl_error("the saved registry conflicts with the config file; it is moved aside",
		 "error=\"%s\" file=%s moved_to=%s", e.msg, path, aside);
	if (rename(path, aside))
		sl_warn("cannot move the registry aside", "error=\"%s\"", strerror(errno));
	sl_registry_free(&a->reg);
	return sl_config_clone(&a->cfg, &a->eff);
}
