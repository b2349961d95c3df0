// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Closing the sockets stuck on dead backends (README, "Resilience"): a
 * connected UDP socket whose backend was removed or turned unhealthy, and
 * with close_on_removal a TCP connection to a removed backend,
 * is closed through the socket iterators (sockdestroy.h), so that the
 * application sees an error and reconnects to a live backend. Draining
 * closes nothing. Counted in sluice_sockets_closed_total.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "log.h"
#include "maps.h"
#include "mem.h"
#include "plan.h"
#include "prom.h"
#include "sockdestroy.h"

static const char *const why_names[] = {
    [AGENT_CLOSE_REMOVED] = "removed",
    [AGENT_CLOSE_UNHEALTHY] = "unhealthy",
};

/* The targets of one run, and whose each is. */
struct close_set {
	struct sl_sd_target *t;
	char (*service)[SLUICE_NAME_LEN];
	size_t n;
};

static struct sl_sockaddr sockaddr_of(const union sluice_addr *addr, uint16_t port_be,
				      uint8_t family)
{
	struct sl_sockaddr sa = {.addr = *addr, .port = ntohs(port_be), .family = family};

	return sa;
}

/* A backend that an apply removed: the state read before the apply knows
 * it, its service and its frontend. */
static int target_from_state(const struct sl_state *st, uint32_t be_id, struct sl_sd_target *t,
			     char *service)
{
	for (size_t i = 0; i < st->n_svcs; i++) {
		const struct sl_svc_state *s = &st->svcs[i];

		for (size_t j = 0; j < s->n_bes; j++) {
			if (s->bes[j].id != be_id)
				continue;
			t->backend = s->bes[j].addr;
			t->frontend = s->frontend;
			t->proto = s->proto;
			snprintf(service, SLUICE_NAME_LEN, "%s", s->name);
			return 0;
		}
	}
	return -ENOENT;
}

/* A backend still in the maps: its entry, and its service's. */
static int target_from_maps(const struct agent *a, uint32_t be_id, struct sl_sd_target *t,
			    char *service)
{
	struct sluice_svc_info info;
	struct sluice_backend be;

	if (bpf_map_lookup_elem(a->dp.maps.backends, &be_id, &be) ||
	    bpf_map_lookup_elem(a->dp.maps.svc_info, &be.svc_id, &info))
		return -errno;
	t->backend = sockaddr_of(&be.addr, be.port, be.family);
	t->frontend = sockaddr_of(&info.frontend.addr, info.frontend.port, info.frontend.family);
	t->proto = info.frontend.proto;
	snprintf(service, SLUICE_NAME_LEN, "%s", info.name);
	return 0;
}

/* close_on_removal of the service: in cfg, else in what was applied before. */
static int close_tcp(const struct agent *a, const struct sl_config *cfg, const char *service)
{
	const struct sl_config *in[] = {cfg, &a->eff};

	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; in[k] && i < in[k]->n_services; i++)
			if (!strcmp(in[k]->services[i].name, service))
				return in[k]->services[i].close_on_removal;
	return 0;
}

static void count_closed(struct agent *a, const char *service, uint8_t proto, uint64_t n)
{
	size_t i;

	for (i = 0; i < a->n_closed; i++)
		if (a->closed[i].proto == proto && !strcmp(a->closed[i].service, service))
			break;
	if (i == a->n_closed) {
		if (SL_ENSURE(&a->closed, &a->cap_closed, a->n_closed + 1)) {
			sl_warn("cannot count closed sockets", "service=%s", service);
			return;
		}
		snprintf(a->closed[i].service, sizeof(a->closed[i].service), "%s", service);
		a->closed[i].proto = proto;
		a->n_closed++;
	}
	a->closed[i].n += n;
}

static void report(struct agent *a, const struct close_set *cs, enum agent_close_why why)
{
	char hp[SL_HOSTPORT_LEN];

	for (size_t i = 0; i < cs->n; i++) {
		const struct sl_sd_target *t = &cs->t[i];

		sl_format_hostport(&t->backend, hp, sizeof(hp));
		if (!t->closed) {
			sl_debug("no socket to close on a dead backend", "service=%s backend=%s",
				 cs->service[i], hp);
			continue;
		}
		sl_info("sockets closed on a dead backend",
			"service=%s backend=%s protocol=%s reason=%s closed=%llu", cs->service[i],
			hp, sl_proto_name(t->proto), why_names[why], (unsigned long long)t->closed);
		count_closed(a, cs->service[i], t->proto, t->closed);
	}
}

/*
 * Close the served sockets on these backends: UDP ones always, TCP ones
 * when they were removed from a service with close_on_removal. A removed
 * backend is looked up in st (the state before the apply), the others in
 * the maps. A failure is logged; nothing else depends on it.
 */
void agent_close_sockets(struct agent *a, const struct sl_config *cfg, const struct sl_state *st,
			 const uint32_t *be_ids, size_t n, enum agent_close_why why)
{
	struct close_set cs = {0};
	int err;

	if (!a->dp.sd || !n)
		return;
	cs.t = calloc(n, sizeof(*cs.t));
	cs.service = calloc(n, sizeof(*cs.service));
	if (!cs.t || !cs.service) {
		sl_warn("cannot close sockets on dead backends", "error=\"%s\"", strerror(ENOMEM));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct sl_sd_target *t = &cs.t[cs.n];

		err = st ? target_from_state(st, be_ids[i], t, cs.service[cs.n])
			 : target_from_maps(a, be_ids[i], t, cs.service[cs.n]);
		if (err)
			continue;
		if (t->proto == SLUICE_PROTO_UDP ||
		    (why == AGENT_CLOSE_REMOVED && close_tcp(a, cfg, cs.service[cs.n])))
			cs.n++;
	}
	err = sl_sd_run(a->dp.sd, cs.t, cs.n);
	if (err)
		sl_warn("cannot close sockets on dead backends", "reason=%s error=\"%s\"",
			why_names[why], strerror(-err));
	report(a, &cs, why);
out:
	free(cs.t);
	free(cs.service);
}

static uint64_t closed_of(const struct agent *a, const char *service, uint8_t proto)
{
	for (size_t i = 0; i < a->n_closed; i++)
		if (a->closed[i].proto == proto && !strcmp(a->closed[i].service, service))
			return a->closed[i].n;
	return 0;
}

/* Every service of the effective config (0 until something is closed), and
 * those removed since that had sockets closed. */
void agent_render_sockets_closed(struct agent *a, struct sl_prom *p)
{
	sl_prom_family(p, "sluice_sockets_closed_total",
		       "Sockets closed because their backend was removed or unhealthy.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < a->eff.n_services; i++) {
		const struct sl_service_cfg *s = &a->eff.services[i];
		const char *lv[] = {"service", s->name, "protocol", sl_proto_name(s->proto), NULL};

		sl_prom_sample(p, lv, (double)closed_of(a, s->name, s->proto));
	}
	for (size_t i = 0; i < a->n_closed; i++) {
		const struct closed_count *c = &a->closed[i];
		const char *lv[] = {"service", c->service, "protocol", sl_proto_name(c->proto),
				    NULL};
		int listed = 0;

		for (size_t j = 0; j < a->eff.n_services && !listed; j++)
			listed = !strcmp(a->eff.services[j].name, c->service) &&
				 a->eff.services[j].proto == c->proto;
		if (!listed)
			sl_prom_sample(p, lv, (double)c->n);
	}
}

void agent_backends_free(struct agent *a)
{
	free(a->closed);
	a->closed = NULL;
	a->n_closed = a->cap_closed = 0;
}
