// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "datapath.h"
#include "edges.h"
#include "events.h"
#include "identity.h"
#include "log.h"
#include "mem.h"
#include "plan.h"
#include "settings.h"

/* Audit log lines per second, and at once. */
#define AUDIT_RATE  100
#define AUDIT_BURST 200
/* Cgroups remembered for cgroup id -> path, and how often the tree is walked. */
#define CG_PATHS_MAX 4096
#define CG_RESCAN_NS 1000000000ULL

int sl_ident_init(struct sl_ident *x, const struct sl_maps *maps, int settings_fd,
		  const struct sl_config *cfg)
{
	char err[256] = "";

	memset(x, 0, sizeof(*x));
	x->maps = maps;
	x->settings_fd = settings_fd;
	if (sl_find_cgroup2(x->cgroot, sizeof(x->cgroot)))
		x->cgroot[0] = '\0';
	x->audit = sl_audit_open(cfg->agent.audit_log, AUDIT_RATE, AUDIT_BURST, err, sizeof(err));
	if (!x->audit)
		sl_error("cannot open the audit log; policy decisions go to the monitor only",
			 "path=%s error=\"%s\"", cfg->agent.audit_log, err);
	return 0;
}

void sl_ident_close(struct sl_ident *x)
{
	sl_audit_close(x->audit);
	free(x->paths);
	memset(x, 0, sizeof(*x));
}

static int cmp_key(const void *a, const void *b, void *size)
{
	return memcmp(a, b, *(const size_t *)size);
}

/* Whether key is one of the n sorted keys of key_size bytes at v. */
static int has_key(const unsigned char *v, size_t n, size_t key_size, const void *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(v + mid * key_size, key, key_size);

		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Delete every key of a hash map that is not one of 'want' (n keys of
 * key_size bytes, back to back; sorted here, so a lookup is a binary search). */
static int prune(int fd, size_t key_size, void *want, size_t n_want)
{
	unsigned char key[64], next[64];
	void *prev = NULL;
	size_t n = 0, cap = 0;
	unsigned char *gone = NULL;
	int err = 0;

	if (key_size > sizeof(key))
		return -E2BIG;
	if (n_want)
		qsort_r(want, n_want, key_size, cmp_key, &key_size);
	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (!has_key(want, n_want, key_size, next)) {
			if (sl_ensure_mem((void **)&gone, &cap, key_size, n + 1)) {
				free(gone);
				return -ENOMEM;
			}
			memcpy(gone + n * key_size, next, key_size);
			n++;
		}
		memcpy(key, next, key_size);
		prev = key;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, gone + i * key_size) && errno != ENOENT)
			err = -errno;
	free(gone);
	return err;
}

/* --- cgroup ids ------------------------------------------------------------------------- */

static int sync_cgroups(struct sl_ident *x, const struct sl_config *cfg)
{
	uint64_t *ids;
	size_t n = 0;
	int err = 0, pending = 0;

	ids = calloc(cfg->n_identities * SL_MAX_ID_CGROUPS + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_identities; i++)
		for (size_t j = 0; j < cfg->identities[i].n_cgroups; j++) {
			unsigned long long id;
			int e = sl_cgroup_id(cfg->identities[i].cgroups[j], &id);

			if (e) {
				if (!x->pending)
					sl_warn(
					    "identity cgroup not found yet; retried every second",
					    "identity=%s cgroup=%s error=\"%s\"",
					    cfg->identities[i].name, cfg->identities[i].cgroups[j],
					    strerror(-e));
				pending = 1;
				continue;
			}
			uint32_t identity = (uint32_t)i + 1;

			ids[n] = id;
			if (!err &&
			    bpf_map_update_elem(x->maps->cgroup_ids, &ids[n], &identity, BPF_ANY))
				err = -errno;
			n++;
		}
	if (!err)
		err = prune(x->maps->cgroup_ids, sizeof(*ids), ids, n);
	free(ids);
	x->pending = pending;
	return err;
}

/* --- the ipcache ------------------------------------------------------------------------- */

static void ipcache_key(struct sluice_ipcache_key *k, const struct sl_cidr *c)
{
	memset(k, 0, sizeof(*k));
	if (c->family == SLUICE_AF_INET) {
		k->prefixlen = 96u + c->prefix;
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		memcpy(&k->addr[12], c->addr.a8, 4);
	} else {
		k->prefixlen = c->prefix;
		memcpy(k->addr, c->addr.a8, 16);
	}
}

struct want_ips {
	struct sluice_ipcache_key *v;
	size_t n, cap;
};

static int sync_ipcache(struct sl_ident *x, const struct sl_config *cfg)
{
	struct want_ips w = {0};
	int err = 0;

	w.cap = cfg->n_identities * SL_MAX_ID_ADDRS + 1;
	w.v = calloc(w.cap, sizeof(*w.v));
	if (!w.v)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_identities && !err; i++)
		for (size_t j = 0; j < cfg->identities[i].n_addrs && !err; j++) {
			uint32_t id = (uint32_t)i + 1;

			ipcache_key(&w.v[w.n], &cfg->identities[i].addrs[j]);
			if (bpf_map_update_elem(x->maps->ipcache, &w.v[w.n], &id, BPF_ANY))
				err = -errno;
			w.n++;
		}
	/* Backends labelled with an identity: their address, as a host prefix. */
	for (size_t i = 0; i < cfg->n_services && !err; i++)
		for (size_t j = 0; j < cfg->services[i].n_backends && !err; j++) {
			const struct sl_backend_cfg *b = &cfg->services[i].backends[j];
			struct sl_cidr c = {.addr = b->addr.addr, .family = b->addr.family};
			uint32_t id = b->identity;

			if (!id)
				continue;
			c.prefix = c.family == SLUICE_AF_INET ? 32 : 128;
			if (SL_ENSURE(&w.v, &w.cap, w.n + 1)) {
				err = -ENOMEM;
				break;
			}
			ipcache_key(&w.v[w.n], &c);
			if (bpf_map_update_elem(x->maps->ipcache, &w.v[w.n], &id, BPF_ANY))
				err = -errno;
			w.n++;
		}
	if (!err)
		err = prune(x->maps->ipcache, sizeof(*w.v), w.v, w.n);
	free(w.v);
	return err;
}

/* --- local backends of services with a policy (TC ingress) ---------------------------------- */

struct want_bes {
	struct sluice_frontend_key *v;
	size_t n;
};

static int wants_policy(const struct sl_service_cfg *svc)
{
	return svc->policy.on || svc->mtls == SL_MTLS_STRICT;
}

/* Local backends of services with a policy or strict mtls -> their service id, from st (the
 * maps' services; NULL: read here). */
static int sync_policy_backends(struct sl_ident *x, const struct sl_config *cfg,
				const struct sl_state *st)
{
	struct want_bes w = {0};
	struct sl_state own = {0};
	size_t cap = 1, n_want = 0;
	int err = 0;

	/* The service ids come from the maps; without a service that wants them, only the prune
	 * is left (#17: reading the maps back cost a third of a reload at 10 000 services). */
	for (size_t i = 0; i < cfg->n_services; i++)
		n_want += wants_policy(&cfg->services[i]);
	if (!n_want)
		return prune(x->maps->policy_bes, sizeof(*w.v), NULL, 0);
	if (!st) {
		err = sl_maps_read_state(x->maps, &own);
		if (err)
			return err;
		st = &own;
	}
	for (size_t i = 0; i < cfg->n_services; i++)
		cap += cfg->services[i].n_backends;
	w.v = calloc(cap, sizeof(*w.v));
	if (!w.v) {
		sl_state_free(&own);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_services && !err; i++) {
		const struct sl_service_cfg *svc = &cfg->services[i];
		const struct sl_svc_state *s = sl_state_find(st, svc->name);

		if (!wants_policy(svc) || !s)
			continue;
		for (size_t j = 0; j < svc->n_backends && !err; j++) {
			struct sluice_frontend_key *k = &w.v[w.n++];

			memset(k, 0, sizeof(*k));
			k->addr = svc->backends[j].addr.addr;
			k->port = htons(svc->backends[j].addr.port);
			k->proto = svc->proto;
			k->family = svc->backends[j].addr.family;
			if (bpf_map_update_elem(x->maps->policy_bes, k, &s->id, BPF_ANY))
				err = -errno;
		}
	}
	if (!err)
		err = prune(x->maps->policy_bes, sizeof(*w.v), w.v, w.n);
	free(w.v);
	sl_state_free(&own);
	return err;
}

/* Identity ids are positions in the config: *changed gets the ids whose
 * name changes (the identity removed, renamed or moved: see sl_ident_sync). */
static int sync_names(struct sl_ident *x, const struct sl_config *cfg, uint64_t *changed)
{
	for (uint32_t id = 1; id <= SLUICE_MAX_IDENTITIES; id++) {
		struct sluice_identity_info info = {0}, old;

		if (id <= cfg->n_identities)
			snprintf(info.name, sizeof(info.name), "%s", cfg->identities[id - 1].name);
		if (!bpf_map_lookup_elem(x->maps->identities, &id, &old) &&
		    memcmp(&old, &info, sizeof(old)))
			*changed |= 1ULL << (id - 1);
		if (bpf_map_update_elem(x->maps->identities, &id, &info, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int edit_audit(struct sluice_settings *set, const void *arg)
{
	__u32 all = *(const __u32 *)arg;

	if (set->audit_all == all)
		return 0;
	set->audit_all = all;
	return 1;
}

static int sync_settings(struct sl_ident *x, const struct sl_config *cfg)
{
	__u32 all = (__u32)cfg->audit_all;
	int err = sl_settings_edit(x->settings_fd, edit_audit, &all);

	return err < 0 ? err : 0;
}

int sl_ident_sync(struct sl_ident *x, const struct sl_config *cfg, const struct sl_state *st)
{
	uint64_t renamed = 0;
	int err = sync_names(x, cfg, &renamed);

	if (!err)
		err = sync_cgroups(x, cfg);
	if (!err)
		err = sync_ipcache(x, cfg);
	if (!err)
		err = sync_policy_backends(x, cfg, st);
	if (!err)
		err = sync_settings(x, cfg);
	/* Once the cgroups say who is who: an id that changed hands loses its
	 * edges of the service map. */
	if (!err)
		err = sl_edges_forget(x->maps, NULL, 0, renamed);
	return err;
}

void sl_ident_tick(struct sl_ident *x, const struct sl_config *cfg)
{
	if (x->pending) {
		int err = sync_cgroups(x, cfg);

		if (!err && !x->pending)
			sl_info("every identity cgroup is resolved");
		else if (err)
			sl_warn("cannot update the identity cgroups", "error=\"%s\"",
				strerror(-err));
	}
	if (x->audit) {
		uint64_t n = sl_audit_flush_dropped(x->audit, sl_mono_ns());

		if (n)
			sl_warn("the audit log dropped lines over its rate", "dropped=%llu",
				(unsigned long long)n);
	}
}

/* --- cgroup id -> path ------------------------------------------------------------------- */

static struct sl_ident *walking; /* nftw has no context argument */

static int walk_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
	unsigned long long id;
	struct cg_path *p;

	(void)sb;
	if (type != FTW_D || f->level > SLUICE_CGROUP_DEPTH)
		return 0;
	if (walking->n_paths == CG_PATHS_MAX)
		return 1;
	if (sl_cgroup_id(path, &id))
		return 0;
	if (SL_ENSURE(&walking->paths, &walking->cap_paths, walking->n_paths + 1))
		return 1;
	p = &walking->paths[walking->n_paths++];
	p->id = id;
	snprintf(p->path, sizeof(p->path), "%s", path);
	return 0;
}

static const char *cgroup_path(struct sl_ident *x, uint64_t id)
{
	uint64_t now = sl_mono_ns();

	if (!id)
		return "";
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < x->n_paths; i++)
			if (x->paths[i].id == id)
				return x->paths[i].path;
		if (pass || !x->cgroot[0] || now - x->scanned_ns < CG_RESCAN_NS)
			break;
		/* A cgroup not seen yet: walk the tree again (at most once a second). */
		x->scanned_ns = now;
		x->n_paths = 0;
		walking = x;
		nftw(x->cgroot, walk_one, 16, FTW_PHYS | FTW_MOUNT);
		walking = NULL;
	}
	return "";
}

static const char *point_name(uint8_t reason)
{
	switch (reason) {
	case SLUICE_REASON_CONNECT:
		return "connect";
	case SLUICE_REASON_SENDMSG:
		return "sendmsg";
	case SLUICE_REASON_TC_INGRESS:
		return "tc_ingress";
	default:
		return "unknown";
	}
}

char *sl_ident_audit(struct sl_ident *x, const struct sl_config *cfg,
		     const struct sluice_audit_event *a)
{
	const struct sluice_event *ev = &a->ev;
	struct sluice_svc_info info;
	struct sl_sockaddr src = {.addr = ev->src, .port = ev->sport, .family = ev->family};
	struct sl_sockaddr dst = {.addr = ev->dst, .port = ev->dport, .family = ev->family};
	char source[SL_HOSTPORT_LEN] = "", frontend[SL_HOSTPORT_LEN], comm[17];
	const char *identity = "", *service = "", *cgpath = cgroup_path(x, a->cgroup_id);
	struct sl_audit_record r = {0};
	struct timespec ts;
	json_t *o;
	char *line;
	size_t n, cap;

	if (a->identity && a->identity <= cfg->n_identities)
		identity = cfg->identities[a->identity - 1].name;
	if (!bpf_map_lookup_elem(x->maps->svc_info, &ev->svc_id, &info)) {
		info.name[sizeof(info.name) - 1] = '\0';
		service = info.name;
	}
	if (ev->sport || memcmp(&ev->src, &(union sluice_addr){0}, sizeof(ev->src)))
		sl_format_hostport(&src, source, sizeof(source));
	sl_format_hostport(&dst, frontend, sizeof(frontend));
	memcpy(comm, a->comm, sizeof(a->comm));
	comm[16] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	r.verdict = a->denied ? "deny" : "allow";
	r.point = point_name(ev->reason);
	r.identity = identity;
	r.cgroup_id = a->cgroup_id;
	r.cgroup_path = cgpath;
	r.pid = a->pid;
	r.uid = a->uid;
	r.comm = comm;
	r.source = source;
	r.service = service;
	r.frontend = frontend;
	r.protocol = ev->proto == SLUICE_PROTO_UDP ? "udp" : "tcp";
	if (x->audit)
		sl_audit_write(x->audit, &r, sl_mono_ns());
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time_ns",
		      (json_int_t)ev->ts_ns, "type", "policy", "verdict", r.verdict, "point",
		      r.point, "service", service, "identity", identity, "source", source,
		      "frontend", frontend, "protocol", r.protocol);
	if (!o)
		return NULL;
	if (a->pid) {
		json_object_set_new(o, "pid", json_integer(a->pid));
		json_object_set_new(o, "uid", json_integer(a->uid));
		json_object_set_new(o, "comm", json_string(comm));
		json_object_set_new(o, "cgroup_id", json_integer((json_int_t)a->cgroup_id));
		json_object_set_new(o, "cgroup", json_string(cgpath));
	}
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!line)
		return NULL;
	n = strlen(line);
	cap = n + 1;
	if (SL_ENSURE(&line, &cap, n + 2)) {
		free(line);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}
