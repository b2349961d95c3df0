// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluiced: loads and pins the datapath, keeps the maps in step with the
 * config, and reloads on SIGHUP or when the config file changes. One epoll
 * loop over a signalfd, an inotify watch and two timerfds; all state lives
 * in struct agent.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "api.h"
#include "caps.h"
#include "config.h"
#include "datapath.h"
#include "etcd.h"
#include "events.h"
#include "health.h"
#include "identity.h"
#include "kfeatures.h"
#include "http.h"
#include "log.h"
#include "maps.h"
#include "metrics.h"
#include "notify.h"
#include "plan.h"
#include "registry.h"
#include "tc.h"

#define DEFAULT_CONFIG "/etc/sluice/sluice.yaml"

enum {
	EXIT_OK = 0,
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_ENV = 3,
};

/* How long a retired backend stays in the maps before it is deleted. */
#define REAP_GRACE_MS 1000
/* Config file events within this window are coalesced into one reload. */
#define RELOAD_DEBOUNCE_MS 200

struct retired {
	uint32_t id;
	uint64_t since_ms;
};

/* A backend of a service with outlier detection, whose ejections the agent
 * logs: the datapath ejects on its own. */
struct watched {
	uint32_t be_id;
	char service[SLUICE_NAME_LEN];
	char addr[SL_HOSTPORT_LEN];
	uint64_t until_ns; /* the ejection last logged */
	int over;	   /* ... and its end logged */
};

/* A probed backend, for logs and events. */
struct probed {
	uint32_t be_id;
	uint32_t svc_id;
	char service[SLUICE_NAME_LEN];
	char addr[SL_HOSTPORT_LEN];
	struct sl_sockaddr sa;
};

struct agent {
	const char *config_path;
	char config_dir[4096];
	char config_base[256];
	struct sl_config cfg;	/* the config file applied last */
	struct sl_registry reg; /* API registrations and drains */
	struct sl_config eff;	/* cfg merged with reg: what the maps hold */
	int reg_dirty;		/* reg changed (heartbeats) and is not saved yet */
	struct sl_dp dp;
	int epfd, sigfd, inofd, tickfd, debouncefd;
	struct retired *retired;
	size_t n_retired;
	uint64_t reloads_ok, reloads_err;
	struct sl_http *http;
	int http_fds[2];
	size_t n_http_fds;
	struct ring_buffer *events;
	struct sl_tc *tc;
	struct sl_health *health;
	struct sl_ident ident;
	int ident_on;
	struct sl_etcd *etcd; /* registry.etcd; NULL without */
	struct probed *probed;
	size_t n_probed;
	struct watched *watched;
	size_t n_watched;
	int events_on; /* what sluice_settings.events says: -1 unknown */
	int running;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sluiced [-c FILE] [--check] [--teardown] "
		   "[--log-level debug|info|warn|error]\n"
		   "               [--log-format logfmt|journal] [--version]\n"
		   "  -c, --config FILE    config file (default " DEFAULT_CONFIG ")\n"
		   "      --check          validate the config, print each error as "
		   "FILE:LINE:COL, exit\n"
		   "      --teardown       detach every program, remove every pin under "
		   "agent.bpffs, exit\n"
		   "      --log-level L    debug, info (default), warn or error\n"
		   "      --log-format F   logfmt (default) or journal (<N> syslog priority "
		   "prefixes;\n"
		   "                       the default when stderr is the journal, "
		   "see $JOURNAL_STREAM)\n"
		   "      --version        version, commit, libbpf and kernel features\n"
		   "  -h, --help           this help\n");
}

static void print_diag(const struct sl_problems *d, int to_log)
{
	for (size_t i = 0; i < d->n; i++) {
		if (to_log)
			sl_error("invalid config", "error=\"%s\"", d->list[i].text);
		else
			fprintf(stderr, "%s\n", d->list[i].text);
	}
}

static int track_retired(struct agent *a, const uint32_t *ids, size_t n)
{
	struct retired *grown;
	uint64_t now = now_ms();

	if (!n)
		return 0;
	grown = realloc(a->retired, (a->n_retired + n) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	a->retired = grown;
	for (size_t i = 0; i < n; i++)
		a->retired[a->n_retired++] = (struct retired){.id = ids[i], .since_ms = now};
	return 0;
}

static void reap(struct agent *a)
{
	uint64_t now = now_ms();
	size_t keep = 0;

	for (size_t i = 0; i < a->n_retired; i++) {
		if (now - a->retired[i].since_ms < REAP_GRACE_MS) {
			a->retired[keep++] = a->retired[i];
			continue;
		}
		int err = sl_maps_reap(&a->dp.maps, &a->retired[i].id, 1);

		if (err) {
			sl_warn("cannot delete retired backend", "backend_id=%u error=\"%s\"",
				a->retired[i].id, strerror(-err));
			a->retired[keep++] = a->retired[i];
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

/* Diff the maps against cfg and write the difference. */
static int reconcile(struct agent *a, const struct sl_config *cfg)
{
	struct sl_state st;
	struct sl_plan plan;
	uint32_t max_svc, max_be, *dead = NULL;
	size_t n_dead = 0;
	int err;

	err = sl_maps_id_limits(&a->dp.maps, &max_svc, &max_be);
	if (!err)
		err = sl_maps_read_state(&a->dp.maps, &st);
	if (err) {
		sl_error("cannot read the maps", "error=\"%s\"", strerror(-err));
		return err;
	}
	err = sl_plan_build(&st, cfg, max_svc, max_be, &plan);
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
	if (track_retired(a, dead, n_dead))
		sl_warn("cannot track retired backends", "count=%zu", n_dead);
	if (!err)
		sl_info("config applied", "added=%zu updated=%zu removed=%zu services=%zu",
			plan.n_add, plan.n_update, plan.n_remove, cfg->n_services);
	free(dead);
	sl_plan_free(&plan);
	sl_state_free(&st);
	return err;
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

static int resolve_cgroup(struct sl_config *cfg)
{
	if (cfg->agent.cgroup[0])
		return 0;
	return sl_find_cgroup2(cfg->agent.cgroup, sizeof(cfg->agent.cgroup));
}

static int sync_backends(struct agent *a, const struct sl_config *cfg);
static void sync_identities(struct agent *a);

static void reload(struct agent *a, const char *why)
{
	struct sl_config cfg, eff;
	struct sl_problems d = {0};
	struct sl_problem re;
	int err;

	sl_info("reloading", "reason=%s file=%s", why, a->config_path);
	if (sl_config_load(a->config_path, &cfg, &d)) {
		print_diag(&d, 1);
		a->reloads_err++;
		sl_error("config rejected; the previous config keeps serving",
			 "errors=%zu reloads_error=%llu", d.n, (unsigned long long)a->reloads_err);
		sl_problems_free(&d);
		return;
	}
	if (resolve_cgroup(&cfg) || check_fixed(&a->cfg, &cfg)) {
		sl_config_free(&cfg);
		a->reloads_err++;
		return;
	}
	if (sl_registry_merge(&cfg, &a->reg, &eff, &re)) {
		sl_error("config rejected: it conflicts with the API registrations; the previous "
			 "config keeps serving",
			 "error=\"%s\"", re.msg);
		sl_config_free(&cfg);
		a->reloads_err++;
		return;
	}
	if (reconcile(a, &eff)) {
		sl_config_free(&eff);
		sl_config_free(&cfg);
		a->reloads_err++;
		return;
	}
	sl_config_free(&a->cfg);
	sl_config_free(&a->eff);
	a->cfg = cfg;
	a->eff = eff;
	a->reloads_ok++;
	err = sync_backends(a, &a->eff);
	if (err)
		sl_error("cannot update health checks; the next reload retries", "error=\"%s\"",
			 strerror(-err));
	sync_identities(a);
}

/* After every apply: the identity maps follow the effective config. */
static void sync_identities(struct agent *a)
{
	int err;

	if (!a->ident_on)
		return;
	err = sl_ident_sync(&a->ident, &a->eff);
	if (err)
		sl_error("cannot update identities and policy maps; the next apply retries",
			 "error=\"%s\"", strerror(-err));
}

/* Is this an API change of registrations or services (which etcd holds
 * when the registry is etcd), rather than a drain or a snapshot? */
static int shared_change(const char *what)
{
	return !strcmp(what, "backend registered") || !strcmp(what, "backend deregistered") ||
	       !strcmp(what, "heartbeat") || !strcmp(what, "service put") ||
	       !strcmp(what, "service deleted");
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
		const struct sl_reg_backend *b = &next->bes[i], *o = sl_registry_find_backend(
								    &a->reg, b->service, &b->addr);
		char *key, *val;

		if (o && o->weight == b->weight && !strcmp(o->subset, b->subset) &&
		    o->ttl_ms == b->ttl_ms && o->expires_ms == b->expires_ms)
			continue;
		key = sl_registry_backend_key(pfx, b);
		val = sl_registry_backend_value(b);
		if (!key || !val)
			err = -ENOMEM;
		else if (o && o->weight == b->weight && !strcmp(o->subset, b->subset) &&
			 o->ttl_ms == b->ttl_ms && o->origin == SL_REG_ETCD) {
			/* A heartbeat: the lease lives on the node that registered it. */
			err = sl_etcd_refresh(a->etcd, key);
			if (err == -ENOENT) {
				sl_problem_http(
				    e, 409, "address",
				    "registered through another node: send its heartbeats "
				    "there");
				free(key);
				free(val);
				return -1;
			}
		} else {
			err = sl_etcd_put(a->etcd, key, val,
					  (unsigned int)((b->ttl_ms + 999) / 1000));
		}
		free(key);
		free(val);
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

/* Make 'next' the registry: merge, apply, save (0), or with etcd send an API
 * change there (1). On failure (-1) nothing changed. */
static int registry_commit(struct agent *a, struct sl_registry *next, const char *what,
			   struct sl_problem *e)
{
	struct sl_config eff;
	struct sl_problem ignored;
	int err;

	if (a->etcd && shared_change(what)) {
		if (sl_registry_merge(&a->cfg, next, &eff, e))
			return -1;
		sl_config_free(&eff);
		if (etcd_write_through(a, next, e))
			return -1;
		sl_info("registry change sent to etcd", "change=\"%s\"", what);
		sl_registry_free(next); /* the watch brings it back */
		return 1;
	}
	if (!strcmp(what, "heartbeat")) { /* only a TTL moved: saved on the next tick */
		sl_registry_free(&a->reg);
		a->reg = *next;
		a->reg_dirty = 1;
		return 0;
	}
	if (sl_registry_merge(&a->cfg, next, &eff, e))
		return -1;
	if (sl_registry_save(next, a->cfg.agent.state, e)) {
		sl_config_free(&eff);
		return -1;
	}
	if (reconcile(a, &eff)) {
		/* Back to what was: the file, then the maps (reconcile retries). */
		sl_registry_save(&a->reg, a->cfg.agent.state, &ignored);
		reconcile(a, &a->eff);
		sl_config_free(&eff);
		sl_problem_http(e, 500, "", "applying the change to the maps failed");
		return -1;
	}
	sl_registry_free(&a->reg);
	a->reg = *next;
	a->reg_dirty = 0;
	sl_config_free(&a->eff);
	a->eff = eff;
	sl_info("registry changed", "change=\"%s\" services=%zu registered_backends=%zu drains=%zu",
		what, a->reg.n_svcs, a->reg.n_bes, a->reg.n_drains);
	err = sync_backends(a, &a->eff);
	if (err)
		sl_error("cannot update health checks and drains", "error=\"%s\"", strerror(-err));
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
	struct sl_problem e = {0};
	size_t n = 0, bad;
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
	bad = sl_registry_from_etcd(next, a->cfg.agent.etcd_prefix, keys, vals, leases, n, &a->cfg,
				    &e);
	if (bad)
		sl_warn("etcd entries left out", "count=%zu first=\"%s\"", bad, e.msg);
out:
	free(keys);
	free(vals);
	free(leases);
	sl_etcd_kvs_free(kvs, n);
	return err ? err : 1;
}

/* A new snapshot of the shared registry: it replaces the previous one. */
static void on_etcd(struct agent *a)
{
	struct sl_registry next;
	struct sl_problem e = {0};
	int got = etcd_snapshot(a, &next);

	if (got < 0)
		sl_error("cannot take the etcd snapshot", "error=\"%s\"", strerror(-got));
	if (got <= 0)
		return;
	if (registry_commit(a, &next, "etcd snapshot", &e)) {
		sl_error("the etcd snapshot cannot be applied; the previous state keeps serving",
			 "error=\"%s\"", e.msg);
		sl_registry_free(&next);
	}
}

/* TTLs that passed, and heartbeats not yet saved (every tick). */
static void registry_tick(struct agent *a)
{
	struct sl_registry next;
	struct sl_problem e;
	size_t gone;

	if (a->reg.n_bes && !sl_registry_copy(&a->reg, &next)) {
		gone = sl_registry_expire(&next, sl_registry_now_ms());
		if (gone) {
			sl_info("registrations expired: no heartbeat within their TTL",
				"backends=%zu", gone);
			if (registry_commit(a, &next, "registrations expired", &e)) {
				sl_error("cannot remove expired registrations", "error=\"%s\"",
					 e.msg);
				sl_registry_free(&next);
			}
		} else {
			sl_registry_free(&next);
		}
	}
	if (a->reg_dirty) {
		if (sl_registry_save(&a->reg, a->cfg.agent.state, &e))
			sl_warn("cannot save the registry", "error=\"%s\"", e.msg);
		else
			a->reg_dirty = 0;
	}
}

static const struct sl_config *api_file(void *arg)
{
	return &((struct agent *)arg)->cfg;
}

static const struct sl_config *api_effective(void *arg)
{
	return &((struct agent *)arg)->eff;
}

static const struct sl_registry *api_registry(void *arg)
{
	return &((struct agent *)arg)->reg;
}

static int api_commit(void *arg, struct sl_registry *next, const char *what, struct sl_problem *e)
{
	return registry_commit(arg, next, what, e);
}

static void on_api_request(void *ctx, const char *method, const char *url, const char *body,
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
	};

	sl_api_handle(&api, method, url, body, len, status, out);
	if (strcmp(method, "GET"))
		sl_info("api request", "method=%s path=\"%s\" status=%u", method, url, *status);
}

static const struct probed *find_probed(const struct agent *a, uint32_t be_id)
{
	for (size_t i = 0; i < a->n_probed; i++)
		if (a->probed[i].be_id == be_id)
			return &a->probed[i];
	return NULL;
}

static void publish_event(struct agent *a, const struct sluice_event *ev, const char *service)
{
	json_t *o;
	char *line;
	size_t n;

	if (!sl_http_subscribers(a->http))
		return;
	o = sl_event_json(ev, service);
	line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!line)
		return;
	n = strlen(line);
	line[n] = '\n'; /* json_dumps leaves room: replace the NUL */
	sl_http_publish(a->http, line, n + 1);
	free(line);
}

/* A probe verdict changed: the datapath follows at once. A draining
 * backend stays draining; its health is applied when it is undrained. */
static void on_health_change(void *arg, uint32_t be_id, int healthy, const char *why)
{
	struct agent *a = arg;
	const struct probed *p = find_probed(a, be_id);
	struct sluice_backend be;
	struct sluice_event ev = {0};
	int err = 0;

	if (!p)
		return;
	if (!bpf_map_lookup_elem(a->dp.maps.backends, &be_id, &be) &&
	    (be.state == SLUICE_BE_HEALTHY || be.state == SLUICE_BE_UNHEALTHY))
		err = sl_maps_set_state(&a->dp.maps, be_id,
					healthy ? SLUICE_BE_HEALTHY : SLUICE_BE_UNHEALTHY);
	if (err)
		sl_error("cannot set backend state", "service=%s backend=%s error=\"%s\"",
			 p->service, p->addr, strerror(-err));
	if (healthy)
		sl_info("backend healthy", "service=%s backend=%s probe=\"%s\"", p->service,
			p->addr, why);
	else
		sl_warn("backend unhealthy", "service=%s backend=%s probe=\"%s\"", p->service,
			p->addr, why);
	ev.ts_ns = sl_mono_ns();
	ev.type = SLUICE_EV_HEALTH;
	ev.reason = healthy ? SLUICE_REASON_HEALTHY : SLUICE_REASON_UNHEALTHY;
	ev.svc_id = p->svc_id;
	ev.be_id = be_id;
	ev.family = p->sa.family;
	ev.proto = SLUICE_PROTO_TCP;
	ev.dst = p->sa.addr;
	ev.dport = p->sa.port;
	publish_event(a, &ev, p->service);
}

static int health_counters(void *arg, uint32_t be_id, uint64_t *ok, uint64_t *failed)
{
	struct agent *a = arg;
	struct sl_hc_stats hs;

	if (!a->health || sl_health_stats(a->health, be_id, &hs))
		return -ENOENT;
	*ok = hs.ok;
	*failed = hs.failed;
	return 0;
}

/* A drained backend is draining in the maps; an undrained one gets its
 * health back (the probes' verdict, or healthy without probes). */
static int sync_drain(struct agent *a, const struct sl_svc_state *s, const struct sl_be_state *b)
{
	int drained = sl_registry_is_drained(&a->reg, s->name, &b->addr);
	struct sl_hc_stats hs;
	char hp[SL_HOSTPORT_LEN];
	uint8_t to;
	int err;

	if (drained == (b->state == SLUICE_BE_DRAINING))
		return 0;
	to = SLUICE_BE_DRAINING;
	if (!drained)
		to = a->health && !sl_health_stats(a->health, b->id, &hs) && !hs.healthy
			 ? SLUICE_BE_UNHEALTHY
			 : SLUICE_BE_HEALTHY;
	err = sl_maps_set_state(&a->dp.maps, b->id, to);
	if (err)
		return err;
	sl_format_hostport(&b->addr, hp, sizeof(hp));
	sl_info(drained ? "backend draining: no new connections" : "backend undrained",
		"service=%s backend=%s", s->name, hp);
	return 0;
}

/*
 * After every apply: probe the backends of services with health_check (and
 * only those), follow the ejections of services with outlier_detection, and
 * make healthy the backends of services that no longer check health.
 */
static int sync_backends(struct agent *a, const struct sl_config *cfg)
{
	struct sl_hc_target *targets = NULL;
	struct probed *probed = NULL;
	struct watched *watched = NULL;
	size_t n_t = 0, n_w = 0, cap = 0;
	struct sl_state st;
	int err;

	err = sl_maps_read_state(&a->dp.maps, &st);
	if (err)
		return err;
	for (size_t i = 0; i < st.n_svcs; i++)
		cap += st.svcs[i].n_bes;
	targets = calloc(cap ? cap : 1, sizeof(*targets));
	probed = calloc(cap ? cap : 1, sizeof(*probed));
	watched = calloc(cap ? cap : 1, sizeof(*watched));
	if (!targets || !probed || !watched) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct sl_service_cfg *w = &cfg->services[i];
		const struct sl_svc_state *s = sl_state_find(&st, w->name);

		for (size_t j = 0; s && j < s->n_bes; j++) {
			const struct sl_be_state *b = &s->bes[j];

			err = sync_drain(a, s, b);
			if (err)
				goto out;

			if (w->outlier.consecutive_failures) {
				struct watched *x = &watched[n_w++];

				x->be_id = b->id;
				snprintf(x->service, sizeof(x->service), "%s", s->name);
				sl_format_hostport(&b->addr, x->addr, sizeof(x->addr));
				for (size_t k = 0; k < a->n_watched; k++)
					if (a->watched[k].be_id == b->id) {
						x->until_ns = a->watched[k].until_ns;
						x->over = a->watched[k].over;
					}
			}
			if (w->health.type == SL_HC_NONE) {
				if (b->state == SLUICE_BE_UNHEALTHY &&
				    !sl_registry_is_drained(&a->reg, s->name, &b->addr)) {
					err = sl_maps_set_state(&a->dp.maps, b->id,
								SLUICE_BE_HEALTHY);
					if (err)
						goto out;
				}
				continue;
			}
			targets[n_t].be_id = b->id;
			targets[n_t].addr = b->addr;
			if (w->health.port)
				targets[n_t].addr.port = w->health.port;
			targets[n_t].cfg = w->health;
			targets[n_t].initially_healthy = b->state != SLUICE_BE_UNHEALTHY;
			probed[n_t].be_id = b->id;
			probed[n_t].svc_id = s->id;
			probed[n_t].sa = targets[n_t].addr;
			snprintf(probed[n_t].service, sizeof(probed[n_t].service), "%s", s->name);
			sl_format_hostport(&b->addr, probed[n_t].addr, sizeof(probed[n_t].addr));
			n_t++;
		}
	}
	err = sl_health_sync(a->health, targets, n_t);
	if (err)
		goto out;
	free(a->probed);
	a->probed = probed;
	a->n_probed = n_t;
	probed = NULL;
	free(a->watched);
	a->watched = watched;
	a->n_watched = n_w;
	watched = NULL;
out:
	free(targets);
	free(probed);
	free(watched);
	sl_state_free(&st);
	return err;
}

/* Log the datapath's own ejections, and their ends (every tick). */
static void watch_ejections(struct agent *a)
{
	uint64_t now = sl_mono_ns();

	for (size_t i = 0; i < a->n_watched; i++) {
		struct watched *w = &a->watched[i];
		struct sluice_backend_rt rt;

		if (sl_maps_backend_rt(&a->dp.maps, w->be_id, &rt))
			continue;
		if (rt.ejected_until_ns > now && rt.ejected_until_ns != w->until_ns) {
			w->until_ns = rt.ejected_until_ns;
			w->over = 0;
			sl_warn("backend ejected", "service=%s backend=%s for_s=%.1f times=%u",
				w->service, w->addr,
				(double)(rt.ejected_until_ns - rt.ejected_at_ns) / 1e9,
				rt.times_ejected);
		} else if (w->until_ns && !w->over && now >= w->until_ns) {
			w->over = 1;
			sl_info("backend ejection over; half-open", "service=%s backend=%s",
				w->service, w->addr);
		}
	}
}

static int render_metrics(void *ctx, struct sl_prom *p)
{
	struct agent *a = ctx;
	struct sl_metrics_ctx mc = {
	    .version = SLUICE_VERSION,
	    .reloads_ok = a->reloads_ok,
	    .reloads_error = a->reloads_err,
	    .health_stats = health_counters,
	    .health_arg = a,
	};
	struct sl_if_counters *ifs = NULL;
	const struct sl_tc_if *tifs;
	size_t n = sl_tc_interfaces(a->tc, &tifs);
	int err;

	if (n) {
		ifs = calloc(n, sizeof(*ifs));
		if (!ifs)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(ifs[i].name, sizeof(ifs[i].name), "%s", tifs[i].name);
		for (int d = 0; d < SLUICE_TC_DIR__MAX; d++) {
			struct sl_tc_counters c = {0};

			sl_tc_read_if_stats(sl_tc_if_stats_fd(a->tc), tifs[i].ifindex, d, &c);
			ifs[i].packets[d] = c.packets;
			ifs[i].bytes[d] = c.bytes;
		}
	}
	mc.ifs = ifs;
	mc.n_ifs = n;
	err = sl_metrics_render(&a->dp.maps, &mc, p);
	free(ifs);
	return err;
}

/* The datapath emits events only while someone watches `sluicectl monitor`. */
static void sync_event_switch(struct agent *a)
{
	struct sluice_settings set = {.events = sl_http_subscribers(a->http) > 0};
	__u32 zero = 0;

	if ((int)set.events == a->events_on)
		return;
	if (bpf_map_update_elem(a->dp.settings_fd, &zero, &set, BPF_ANY)) {
		sl_warn("cannot switch datapath events", "error=\"%s\"", strerror(errno));
		return;
	}
	a->events_on = (int)set.events;
	sl_info(set.events ? "datapath events on: a monitor is attached"
			   : "datapath events off: no monitor attached");
}

/* TC flow programs on the interfaces agent.interfaces names. */
static int start_tc(struct agent *a)
{
	const char *globs[SL_MAX_INTERFACES];
	struct sl_problem e = {0};
	int err;

	for (size_t i = 0; i < a->cfg.agent.n_interfaces; i++)
		globs[i] = a->cfg.agent.interfaces[i];
	err = sl_tc_open(&a->tc, a->cfg.agent.bpffs, globs, a->cfg.agent.n_interfaces, &e);
	if (err)
		sl_error("cannot start TC flow metrics", "error=\"%s\"", e.msg);
	return err;
}

/* One datapath event: to every monitor client. */
static int on_event(void *ctx, void *data, size_t len)
{
	const struct sluice_event *ev = data;
	struct sluice_svc_info info;
	struct agent *a = ctx;
	const char *service = "";

	if (len < sizeof(*ev))
		return 0;
	if (ev->type == SLUICE_EV_POLICY) {
		char *line;

		if (len < sizeof(struct sluice_audit_event))
			return 0;
		line = sl_ident_audit(&a->ident, &a->eff, data);
		if (line && sl_http_subscribers(a->http))
			sl_http_publish(a->http, line, strlen(line));
		free(line);
		return 0;
	}
	if (!bpf_map_lookup_elem(a->dp.maps.svc_info, &ev->svc_id, &info)) {
		info.name[sizeof(info.name) - 1] = '\0';
		service = info.name;
	}
	publish_event(a, ev, service);
	return 0;
}

static int arm_timer(int fd, uint64_t first_ms, uint64_t every_ms)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = (time_t)(first_ms / 1000),
			 .tv_nsec = (long)(first_ms % 1000) * 1000000},
	    .it_interval = {.tv_sec = (time_t)(every_ms / 1000),
			    .tv_nsec = (long)(every_ms % 1000) * 1000000},
	};

	return timerfd_settime(fd, 0, &its, NULL) ? -errno : 0;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int loop_setup(struct agent *a)
{
	char copy[4096];
	sigset_t mask;

	snprintf(copy, sizeof(copy), "%s", a->config_path);
	snprintf(a->config_dir, sizeof(a->config_dir), "%s", dirname(copy));
	snprintf(copy, sizeof(copy), "%s", a->config_path);
	snprintf(a->config_base, sizeof(a->config_base), "%s", basename(copy));

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	a->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->debouncefd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->sigfd < 0 || a->epfd < 0 || a->inofd < 0 || a->tickfd < 0 || a->debouncefd < 0)
		return -errno;
	/* Watch the directory: editors replace the file rather than write it. */
	if (inotify_add_watch(a->inofd, a->config_dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0)
		return -errno;
	if (arm_timer(a->tickfd, 1000, 1000))
		return -errno;
	if (epoll_add(a->epfd, a->sigfd) || epoll_add(a->epfd, a->inofd) ||
	    epoll_add(a->epfd, a->tickfd) || epoll_add(a->epfd, a->debouncefd))
		return -errno;
	a->events = ring_buffer__new(a->dp.events_fd, on_event, a, NULL);
	if (!a->events || epoll_add(a->epfd, ring_buffer__epoll_fd(a->events)))
		return -errno;
	if (sl_tc_fd(a->tc) >= 0 && epoll_add(a->epfd, sl_tc_fd(a->tc)))
		return -errno;
	if (epoll_add(a->epfd, sl_health_fd(a->health)))
		return -errno;
	if (a->etcd && epoll_add(a->epfd, sl_etcd_fd(a->etcd)))
		return -errno;
	a->n_http_fds = sl_http_fds(a->http, a->http_fds);
	for (size_t i = 0; i < a->n_http_fds; i++)
		if (epoll_add(a->epfd, a->http_fds[i]))
			return -errno;
	return 0;
}

static void on_inotify(struct agent *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	int hit = 0;

	while ((len = read(a->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->len && !strcmp(ev->name, a->config_base))
				hit = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (hit && arm_timer(a->debouncefd, RELOAD_DEBOUNCE_MS, 0))
		sl_warn("cannot arm the reload timer", "error=\"%s\"", strerror(errno));
}

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(a, "SIGHUP");
		} else if (si.ssi_signo == SIGUSR1) {
			if (a->ident.audit && !sl_audit_reopen(a->ident.audit))
				sl_info("audit log reopened", "path=%s", a->cfg.agent.audit_log);
		} else {
			sl_info("stopping; programs stay attached and maps pinned", "signal=%s",
				si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			a->running = 0;
		}
	}
}

static void drain_timer(int fd)
{
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		sl_warn("timer read failed", "error=\"%s\"", strerror(errno));
}

static int run_loop(struct agent *a)
{
	struct epoll_event evs[8];

	a->running = 1;
	while (a->running) {
		int n = epoll_wait(a->epfd, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			sl_error("epoll_wait failed", "error=\"%s\"", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == a->sigfd) {
				on_signal(a);
			} else if (fd == a->inofd) {
				on_inotify(a);
			} else if (fd == a->debouncefd) {
				drain_timer(fd);
				reload(a, "file-changed");
			} else if (fd == a->tickfd) {
				drain_timer(fd);
				reap(a);
				watch_ejections(a);
				registry_tick(a);
				if (a->ident_on)
					sl_ident_tick(&a->ident, &a->eff);
				sl_http_run(a->http); /* its timeouts */
				sync_event_switch(a);
			} else if (a->etcd && fd == sl_etcd_fd(a->etcd)) {
				on_etcd(a);
			} else if (fd == sl_health_fd(a->health)) {
				sl_health_dispatch(a->health);
			} else if (a->tc && fd == sl_tc_fd(a->tc)) {
				sl_tc_on_readable(a->tc);
			} else if (a->events && fd == ring_buffer__epoll_fd(a->events)) {
				if (ring_buffer__consume(a->events) < 0)
					sl_warn("cannot read datapath events", "error=\"%s\"",
						strerror(errno));
			} else {
				sl_http_run(a->http);
				sync_event_switch(a);
			}
		}
	}
	return 0;
}

static void agent_close(struct agent *a)
{
	int *fds[] = {&a->sigfd, &a->inofd, &a->tickfd, &a->debouncefd, &a->epfd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	ring_buffer__free(a->events);
	sl_http_stop(a->http);
	sl_tc_close(a->tc);
	sl_etcd_close(a->etcd);
	sl_health_free(a->health);
	if (a->ident_on)
		sl_ident_close(&a->ident);
	free(a->probed);
	free(a->watched);
	sl_dp_close(&a->dp);
	sl_config_free(&a->cfg);
	sl_config_free(&a->eff);
	sl_registry_free(&a->reg);
	free(a->retired);
}

/*
 * Spec §8: attached, applied and listening, the agent keeps only what the
 * loop needs. CAP_BPF: map updates and the Maglev tables a reload creates.
 * CAP_NET_ADMIN: TC filters on interfaces that appear later. CAP_PERFMON:
 * kept as the spec lists it. CAP_SYS_ADMIN (adopting TC programs by id) is
 * needed only at start: later, tc.c knows its own programs by id.
 */
static int drop_privileges(void)
{
	const uint64_t keep = 1ULL << CAP_BPF | 1ULL << CAP_NET_ADMIN | 1ULL << CAP_PERFMON;
	char why[256] = "", kept[128];
	int err = sl_caps_keep_only(keep, why, sizeof(why));

	if (err) {
		sl_error("cannot drop capabilities", "error=\"%s\"", why);
		return err;
	}
	sl_caps_format(sl_caps_effective(), kept, sizeof(kept));
	sl_info("capabilities dropped", "kept=%s", kept);
	return 0;
}

/* How long a start waits for the shared registry before it serves what it has. */
#define ETCD_FIRST_SNAPSHOT_MS 2000

/*
 * registry.etcd: start the client, and give it a moment to bring the first
 * snapshot, so that a (re)start serves the shared registrations at once.
 * Without it in time, the agent starts from its saved copy of the last
 * snapshot and applies the real one when it comes.
 */
static int start_etcd(struct agent *a)
{
	const char *eps[SL_MAX_ETCD_ENDPOINTS];
	struct pollfd pfd = {.events = POLLIN};
	struct sl_config eff;
	struct sl_problem e = {0};
	char why[256] = "";
	uint64_t deadline = now_ms() + ETCD_FIRST_SNAPSHOT_MS;

	for (size_t i = 0; i < a->cfg.agent.n_etcd; i++)
		eps[i] = a->cfg.agent.etcd_endpoints[i];
	a->etcd =
	    sl_etcd_open(eps, a->cfg.agent.n_etcd, a->cfg.agent.etcd_prefix, why, sizeof(why));
	if (!a->etcd) {
		sl_error("cannot start the etcd client", "error=\"%s\"", why);
		return -EINVAL;
	}
	pfd.fd = sl_etcd_fd(a->etcd);
	while (now_ms() < deadline) {
		struct sl_registry next;
		int got;

		if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
			continue;
		got = etcd_snapshot(a, &next);
		if (got <= 0)
			continue;
		if (sl_registry_merge(&a->cfg, &next, &eff, &e)) {
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
static int load_registry(struct agent *a)
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

static int start(struct agent *a)
{
	struct sl_problem e = {0};
	struct sl_state st;
	uint32_t *dead = NULL;
	size_t n_dead = 0;
	int err;

	if (geteuid() != 0) {
		fprintf(stderr, "sluiced: must be started as root (it loads BPF programs "
				"and attaches them to cgroups)\n");
		return EXIT_ENV;
	}
	if (resolve_cgroup(&a->cfg)) {
		fprintf(stderr, "sluiced: no cgroup v2 mount in /proc/mounts and no "
				"agent.cgroup set\n");
		return EXIT_ENV;
	}
	sl_log_hook_libbpf();
	err = sl_dp_open(&a->dp, &a->cfg, &e);
	if (err) {
		sl_error("cannot start the datapath", "error=\"%s\"", e.msg);
		return e.env ? EXIT_ENV : EXIT_CONFIG;
	}
	sl_info(a->dp.adopted ? "adopted the pinned datapath" : "datapath attached",
		"cgroup=%s bpffs=%s programs=%zu", a->dp.cgroup, a->dp.bpffs, a->dp.n_links);
	/* Backends in no live slot (retired by a previous run, or left by an
	 * apply cut short) are retired now and reaped after the grace period. */
	err = sl_maps_read_state(&a->dp.maps, &st);
	if (!err) {
		err = sl_maps_retire(&a->dp.maps, st.dead_be_ids, st.n_dead, &dead, &n_dead);
		if (!err)
			err = track_retired(a, dead, n_dead);
		free(dead);
		sl_state_free(&st);
	}
	if (!err)
		err = load_registry(a);
	if (!err && a->cfg.agent.n_etcd)
		err = start_etcd(a);
	if (!err)
		err = reconcile(a, &a->eff);
	if (err) {
		sl_error("cannot apply the config", "error=\"%s\"", strerror(-err));
		return EXIT_CONFIG;
	}
	a->health = sl_health_new(on_health_change, a);
	if (!a->health) {
		sl_error("cannot start health checks", "error=\"%s\"", strerror(errno));
		return EXIT_ENV;
	}
	err = sync_backends(a, &a->eff);
	if (err) {
		sl_error("cannot start health checks", "error=\"%s\"", strerror(-err));
		return EXIT_ENV;
	}
	sl_ident_init(&a->ident, &a->dp.maps, a->dp.settings_fd, &a->cfg);
	a->ident_on = 1;
	sync_identities(a);
	a->reloads_ok++;
	if (start_tc(a))
		return EXIT_ENV;
	{
		char why[512] = "";

		err = sl_http_start(&a->http, &a->cfg, render_metrics, on_api_request, a, why,
				    sizeof(why));
		if (err) {
			sl_error("cannot start the HTTP endpoints", "error=\"%s\"", why);
			return EXIT_ENV;
		}
	}
	a->events_on = -1;
	sync_event_switch(a); /* off until a monitor attaches */
	err = loop_setup(a);
	if (err) {
		sl_error("cannot set up the event loop", "error=\"%s\"", strerror(-err));
		return EXIT_ENV;
	}
	if (drop_privileges())
		return EXIT_ENV;
	{
		char hp[SL_HOSTPORT_LEN] = "";

		if (a->cfg.agent.metrics_on)
			sl_format_hostport(&a->cfg.agent.metrics, hp, sizeof(hp));
		sl_info("ready", "services=%zu metrics=%s api=%s", a->cfg.n_services, hp,
			a->cfg.agent.api);
		/* systemd (Type=notify): the datapath is attached, the config applied. */
		err = sl_notifyf("READY=1\nSTATUS=serving %zu services", a->cfg.n_services);
		if (err)
			sl_warn("cannot notify the service manager", "error=\"%s\"",
				strerror(-err));
	}
	return run_loop(a) ? EXIT_ENV : EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'C'},
	    {"teardown", no_argument, NULL, 'T'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"log-format", required_argument, NULL, 'F'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct agent a = {.config_path = DEFAULT_CONFIG,
			  .epfd = -1,
			  .sigfd = -1,
			  .inofd = -1,
			  .tickfd = -1,
			  .debouncefd = -1};
	enum sl_log_level level;
	enum sl_log_format format;
	struct sl_features feats;
	struct sl_problems d = {0};
	int check = 0, teardown = 0, format_set = 0, opt, rc;

	a.dp.cgroup_fd = -1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a.config_path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'T':
			teardown = 1;
			break;
		case 'l':
			if (sl_log_parse_level(optarg, &level)) {
				fprintf(stderr, "sluiced: --log-level: unknown level '%s'\n",
					optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			sl_log_set_level(level);
			break;
		case 'F':
			if (sl_log_parse_format(optarg, &format)) {
				fprintf(stderr,
					"sluiced: --log-format: want logfmt or journal, not '%s'\n",
					optarg);
				usage(stderr);
				return EXIT_USAGE;
			}
			sl_log_set_format(format);
			format_set = 1;
			break;
		case 'V':
			sl_features_probe(&feats);
			sl_version_print(stdout, "sluiced", &feats);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (check && teardown)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!format_set && sl_log_stderr_is_journal())
		sl_log_set_format(SL_LOG_FMT_JOURNAL);
	if (sl_config_load(a.config_path, &a.cfg, &d)) {
		print_diag(&d, 0);
		sl_problems_free(&d);
		return EXIT_CONFIG;
	}
	if (check) {
		sl_config_free(&a.cfg);
		printf("%s: ok\n", a.config_path);
		return EXIT_OK;
	}
	if (teardown) {
		struct sl_problem e = {0};

		/* TC filters first: they are found through the pins. */
		rc = sl_tc_teardown(a.cfg.agent.bpffs, &e) || sl_dp_teardown(a.cfg.agent.bpffs, &e)
			 ? (e.env ? EXIT_ENV : EXIT_CONFIG)
			 : EXIT_OK;
		if (rc)
			sl_error("teardown failed", "error=\"%s\"", e.msg);
		else
			sl_info("torn down: programs detached, pins removed", "bpffs=%s",
				a.cfg.agent.bpffs);
		sl_config_free(&a.cfg);
		return rc;
	}
	rc = start(&a);
	sl_notify("STOPPING=1");
	agent_close(&a);
	return rc;
}
