// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the agent shows: datapath events (the ring buffer) and probe
 * verdicts to every `sluicectl monitor`, and the /metrics page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "settings.h"

void agent_publish_event(struct agent *a, const struct sluice_event *ev, const char *service)
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

/* One datapath event: to every monitor client (and a policy decision to
 * the audit log). */
static void on_ring_event(struct agent *a, void *data, size_t len)
{
	const struct sluice_event *ev = data;
	struct sluice_svc_info info;
	const char *service = "";

	if (len < sizeof(*ev))
		return;
	if (ev->type == SLUICE_EV_POLICY) {
		char *line;

		if (len < sizeof(struct sluice_audit_event))
			return;
		line = sl_ident_audit(&a->ident, &a->eff, data);
		if (line && sl_http_subscribers(a->http))
			sl_http_publish(a->http, line, strlen(line));
		free(line);
		return;
	}
	if (!bpf_map_lookup_elem(a->dp.maps.svc_info, &ev->svc_id, &info)) {
		info.name[sizeof(info.name) - 1] = '\0';
		service = info.name;
	}
	agent_publish_event(a, ev, service);
}

/* ring_buffer__consume()'s callback: the record is taken whatever this
 * returns; AGENT_RING_SPENT ends the wakeup's batch. */
int agent_on_ring_event(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;

	on_ring_event(a, data, len);
	if (a->ring_left && --a->ring_left)
		return 0;
	return AGENT_RING_SPENT;
}

static int edit_events(struct sluice_settings *set, const void *arg)
{
	__u32 on = *(const __u32 *)arg;

	if (set->events == on)
		return 0;
	set->events = on;
	return 1;
}

/* The datapath emits events only while someone watches `sluicectl monitor`. */
void agent_sync_event_switch(struct agent *a)
{
	__u32 on = sl_http_subscribers(a->http) > 0;
	int err;

	if ((int)on == a->events_on)
		return;
	err = sl_settings_edit(a->dp.settings_fd, edit_events, &on);
	if (err < 0) {
		sl_warn("cannot switch datapath events", "error=\"%s\"", strerror(-err));
		return;
	}
	a->events_on = (int)on;
	sl_info(on ? "datapath events on: a monitor is attached"
		   : "datapath events off: no monitor attached");
}

static void render_apply(const struct agent *a, struct sl_prom *p)
{
	static const char *const src[AGENT_APPLY__MAX] = {"file", "api", "etcd", "expiry"};

	sl_prom_family(
	    p, "sluice_config_apply_seconds",
	    "Changes applied, by source (file, api, etcd, expiry): from the agent taking "
	    "one up to its being in the maps with the health and identity sync done; a "
	    "client's change includes its save to agent.state.",
	    SL_PROM_HISTOGRAM);
	for (int s = 0; s < AGENT_APPLY__MAX; s++)
		sl_prom_hist(p, (const char *const[]){"source", src[s], NULL}, &a->apply_hist[s]);
}

/* What a render of the maps' part of /metrics needs, taken on the loop and read on the
 * render thread: duplicates of the maps' fds, and copies of what the agent owns. */
struct metrics_snap {
	struct sl_maps maps;
	struct sl_metrics_ctx mc;
	char node[SL_NODE_LEN], zone[SLUICE_ZONE_LEN];
	struct sl_if_counters *ifs;
	struct sl_hc_count *hc; /* the probes' counters, sorted by be_id */
	size_t n_hc;
};

static int snap_health(void *arg, uint32_t be_id, uint64_t *ok, uint64_t *failed)
{
	const struct metrics_snap *s = arg;
	const struct sl_hc_count *c = sl_health_count_find(s->hc, s->n_hc, be_id);

	if (!c)
		return -ENOENT;
	*ok = c->ok;
	*failed = c->failed;
	return 0;
}

void agent_metrics_drop(void *snap)
{
	struct metrics_snap *s = snap;

	if (!s)
		return;
	sl_maps_close(&s->maps);
	free(s->ifs);
	free(s->hc);
	free(s);
}

/* The interfaces' TC counters, read now (a few per interface). */
static int snap_interfaces(struct agent *a, struct metrics_snap *s)
{
	const struct sl_tc_if *tifs;
	size_t n = sl_tc_interfaces(a->tc, &tifs);

	if (!n)
		return 0;
	s->ifs = calloc(n, sizeof(*s->ifs));
	if (!s->ifs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(s->ifs[i].name, sizeof(s->ifs[i].name), "%s", tifs[i].name);
		for (int d = 0; d < SLUICE_TC_DIR__MAX; d++) {
			struct sl_tc_counters c = {0};

			sl_tc_read_if_stats(sl_tc_if_stats_fd(a->tc), tifs[i].ifindex, d, &c);
			s->ifs[i].packets[d] = c.packets;
			s->ifs[i].bytes[d] = c.bytes;
		}
	}
	s->mc.ifs = s->ifs;
	s->mc.n_ifs = n;
	return 0;
}

void *agent_metrics_snapshot(void *ctx, int *err)
{
	struct agent *a = ctx;
	struct metrics_snap *s = calloc(1, sizeof(*s));
	const char *node = sl_agent_node(&a->cfg.agent);

	*err = -ENOMEM;
	if (!s)
		return NULL;
	*err = sl_maps_dup(&a->dp.maps, &s->maps);
	if (*err) {
		free(s);
		return NULL;
	}
	snprintf(s->zone, sizeof(s->zone), "%s", a->cfg.agent.zone);
	s->mc = (struct sl_metrics_ctx){
	    .version = SLUICE_VERSION,
	    .zone = s->zone,
	    .reloads_ok = a->reloads_ok,
	    .reloads_error = a->reloads_err,
	    .health_stats = snap_health,
	    .health_arg = s,
	};
	if (node) {
		snprintf(s->node, sizeof(s->node), "%s", node);
		s->mc.node = s->node;
	}
	*err = snap_interfaces(a, s);
	if (!*err && a->health)
		*err = sl_health_counts(a->health, &s->hc, &s->n_hc);
	if (*err) {
		agent_metrics_drop(s);
		return NULL;
	}
	return s;
}

int agent_metrics_render(void *snap, struct sl_prom *p)
{
	struct metrics_snap *s = snap;

	return sl_metrics_render(&s->maps, &s->mc, p);
}

int agent_render_live(void *ctx, struct sl_prom *p)
{
	struct agent *a = ctx;

	sl_prom_family(p, "sluice_state_save_failures_total",
		       "Writes of agent.state that failed (the registry kept serving).",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)a->state_save_failures);
	render_apply(a, p);
	agent_mtls_render(a, p);
	agent_tracing_render(a, p);
	agent_render_sockets_closed(a, p);
	return sl_prom_failed(p) ? -ENOMEM : 0;
}
