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

int agent_render_metrics(void *ctx, struct sl_prom *p)
{
	struct agent *a = ctx;
	struct sl_metrics_ctx mc = {
	    .version = SLUICE_VERSION,
	    .node = sl_agent_node(&a->cfg.agent),
	    .zone = a->cfg.agent.zone,
	    .reloads_ok = a->reloads_ok,
	    .reloads_error = a->reloads_err,
	    .health_stats = agent_health_counters,
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
	if (!err) {
		sl_prom_family(p, "sluice_state_save_failures_total",
			       "Writes of agent.state that failed (the registry kept serving).",
			       SL_PROM_COUNTER);
		sl_prom_sample(p, NULL, (double)a->state_save_failures);
		render_apply(a, p);
		agent_mtls_render(a, p);
		agent_tracing_render(a, p);
		agent_render_sockets_closed(a, p);
	}
	return err;
}
