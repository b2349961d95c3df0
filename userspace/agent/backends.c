// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The backends' bookkeeping after every apply: which ones are probed
 * (health_check), which ones the datapath may eject (outlier_detection,
 * logged here), and which ones are drained. See the README, "Resilience".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "log.h"
#include "maps.h"
#include "mem.h"

/* a->probed and a->watched are sorted by backend id (agent_sync_backends). */
static int cmp_be_id(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static const struct probed *find_probed(const struct agent *a, uint32_t be_id)
{
	return a->n_probed ? bsearch(&be_id, a->probed, a->n_probed, sizeof(*a->probed), cmp_be_id)
			   : NULL;
}

/* A probe verdict changed: the datapath follows at once. A draining
 * backend stays draining; its health is applied when it is undrained. */
void agent_on_health_change(void *arg, uint32_t be_id, int healthy, const char *why)
{
	struct agent *a = arg;
	const struct probed *p = find_probed(a, be_id);
	struct sluice_backend be;
	struct sluice_event ev = {0};
	uint8_t to = healthy ? SLUICE_BE_HEALTHY : SLUICE_BE_UNHEALTHY;
	int err = 0, probed_state;

	if (!p)
		return;
	probed_state = !bpf_map_lookup_elem(a->dp.maps.backends, &be_id, &be) &&
		       (be.state == SLUICE_BE_HEALTHY || be.state == SLUICE_BE_UNHEALTHY);
	if (probed_state)
		err = sl_maps_set_state(&a->dp.maps, be_id, to);
	/* The kept state follows (agent.h, applied_st); a backend it does not hold drops it. */
	if (err || (probed_state && a->have_applied_st &&
		    sl_state_set_backend(&a->applied_st, p->service, be_id, to)))
		agent_drop_state(a);
	if (err)
		sl_error("cannot set backend state", "service=%s backend=%s error=\"%s\"",
			 p->service, p->addr, strerror(-err));
	else if (!healthy && probed_state)
		agent_close_sockets(a, NULL, NULL, &be_id, 1, AGENT_CLOSE_UNHEALTHY);
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
	agent_publish_event(a, &ev, p->service);
}

/* A drained backend is draining in the maps; an undrained one gets its
 * health back (the probes' verdict, or healthy without probes). */
static int sync_drain(struct agent *a, const struct sl_svc_state *s, struct sl_be_state *b)
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
	b->state = to; /* the state in hand stays what the maps hold */
	sl_format_hostport(&b->addr, hp, sizeof(hp));
	sl_info(drained ? "backend draining: no new connections" : "backend undrained",
		"service=%s backend=%s", s->name, hp);
	return 0;
}

/* What sync_backends builds: the probe targets (targets[i] is probed[i]), and who is probed
 * and watched. Grown as found: a few services of many may check health. */
struct backend_sets {
	struct sl_hc_target *targets;
	struct probed *probed;
	struct watched *watched;
	size_t n_t, n_w, cap_t, cap_p, cap_w;
};

/* A backend of a service with outlier detection: watched, with what was
 * logged of it so far. 0 or -ENOMEM. */
static int watch_backend(const struct agent *a, struct backend_sets *bs,
			 const struct sl_svc_state *s, const struct sl_be_state *b)
{
	const struct watched *old =
	    a->n_watched ? bsearch(&b->id, a->watched, a->n_watched, sizeof(*a->watched), cmp_be_id)
			 : NULL;
	struct watched *x;

	if (SL_ENSURE(&bs->watched, &bs->cap_w, bs->n_w + 1))
		return -ENOMEM;
	x = &bs->watched[bs->n_w++];
	memset(x, 0, sizeof(*x));
	x->be_id = b->id;
	snprintf(x->service, sizeof(x->service), "%s", s->name);
	sl_format_hostport(&b->addr, x->addr, sizeof(x->addr));
	if (old) {
		x->until_ns = old->until_ns;
		x->over = old->over;
	}
	return 0;
}

/* A backend of a service with health_check: a probe target. 0 or -ENOMEM. */
static int probe_backend(struct backend_sets *bs, const struct sl_service_cfg *w,
			 const struct sl_svc_state *s, const struct sl_be_state *b)
{
	struct sl_hc_target *t;
	struct probed *p;

	if (SL_ENSURE(&bs->targets, &bs->cap_t, bs->n_t + 1) ||
	    SL_ENSURE(&bs->probed, &bs->cap_p, bs->n_t + 1))
		return -ENOMEM;
	t = &bs->targets[bs->n_t];
	p = &bs->probed[bs->n_t];
	memset(t, 0, sizeof(*t));
	memset(p, 0, sizeof(*p));

	t->be_id = b->id;
	t->addr = b->addr;
	if (w->health.port)
		t->addr.port = w->health.port;
	t->cfg = w->health;
	t->initially_healthy = b->state != SLUICE_BE_UNHEALTHY;
	p->be_id = b->id;
	p->svc_id = s->id;
	p->sa = t->addr;
	snprintf(p->service, sizeof(p->service), "%s", s->name);
	sl_format_hostport(&b->addr, p->addr, sizeof(p->addr));
	bs->n_t++;
	return 0;
}

/* One backend of one service: drain, watch, probe (or made healthy when its
 * service no longer checks health). 0 or -errno. */
static int sync_backend(struct agent *a, struct backend_sets *bs, const struct sl_service_cfg *w,
			const struct sl_svc_state *s, struct sl_be_state *b)
{
	int err = sync_drain(a, s, b);

	if (err)
		return err;
	if (w->outlier.consecutive_failures && watch_backend(a, bs, s, b))
		return -ENOMEM;
	if (w->health.type != SL_HC_NONE)
		return probe_backend(bs, w, s, b);
	if (b->state == SLUICE_BE_UNHEALTHY &&
	    !sl_registry_is_drained(&a->reg, s->name, &b->addr)) {
		err = sl_maps_set_state(&a->dp.maps, b->id, SLUICE_BE_HEALTHY);
		if (!err)
			b->state = SLUICE_BE_HEALTHY;
	}
	return err;
}

/*
 * After every apply: probe the backends of services with health_check (and
 * only those), follow the ejections of services with outlier_detection, and
 * make healthy the backends of services that no longer check health.
 */
int agent_sync_backends(struct agent *a, const struct sl_config *cfg)
{
	struct backend_sets bs = {0};
	struct sl_state own = {0}, *st = &a->applied_st;
	int err = 0;

	if (!a->have_applied_st) { /* none kept (agent.h, applied_st) */
		err = sl_maps_read_state(&a->dp.maps, &own);
		if (err)
			return err;
		st = &own;
	}
	for (size_t i = 0; i < cfg->n_services && !err; i++) {
		const struct sl_service_cfg *w = &cfg->services[i];
		const struct sl_svc_state *found = sl_state_find(st, w->name);
		struct sl_svc_state *s = found ? &st->svcs[found - st->svcs] : NULL;

		for (size_t j = 0; s && j < s->n_bes && !err; j++)
			err = sync_backend(a, &bs, w, s, &s->bes[j]);
	}
	if (!err)
		err = sl_health_sync(a->health, bs.targets, bs.n_t);
	if (err)
		goto out;
	if (bs.n_t)
		qsort(bs.probed, bs.n_t, sizeof(*bs.probed), cmp_be_id);
	if (bs.n_w)
		qsort(bs.watched, bs.n_w, sizeof(*bs.watched), cmp_be_id);
	free(a->probed);
	a->probed = bs.probed;
	a->n_probed = bs.n_t;
	bs.probed = NULL;
	free(a->watched);
	a->watched = bs.watched;
	a->n_watched = bs.n_w;
	bs.watched = NULL;
out:
	if (err) /* a write may have failed half way: the kept state no longer tells */
		agent_drop_state(a);
	free(bs.targets);
	free(bs.probed);
	free(bs.watched);
	sl_state_free(&own);
	return err;
}

/* Log the datapath's own ejections, and their ends (every tick). */
void agent_watch_ejections(struct agent *a)
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
