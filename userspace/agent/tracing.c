// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tracing (README "Tracing"): the datapath's tracing settings, and the sluice_spans ring
 * buffer to the OTLP exporter. The loop only reads records and queues spans (sl_otlp_submit
 * never blocks); the exporter's thread sends them. The exporter starts after the capability
 * drop, so its thread holds no more than the loop does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "log.h"
#include "otlp.h"
#include "settings.h"
#include "trace_span.h"

/* At exit, the spans queued get this long to leave. */
#define TRACE_FLUSH_MS 3000

struct agent_tracing {
	struct sl_otlp *exp;
	struct ring_buffer *rb;
	struct sl_loop_src src;
	unsigned int left; /* records this wakeup may still take */
	int64_t offset;	   /* realtime - monotonic, for this wakeup's records */
	uint64_t invalid;  /* records that were no span (short, unknown family) */
	char host[256];
};

/* host.name: agent.node (the hostname by default). */
static const char *trace_host_name(const struct agent *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s", sl_agent_node(&a->cfg.agent));
	return buf;
}

struct trace_set {
	__u32 on, sample;
};

static int edit_trace(struct sluice_settings *set, const void *arg)
{
	const struct trace_set *t = arg;

	if (set->trace_on == t->on && set->trace_sample == t->sample)
		return 0;
	set->trace_on = t->on;
	set->trace_sample = t->sample;
	return 1;
}

/* sluice_settings.trace_on and trace_sample, written only when they change. */
static void settings_write(struct agent *a, __u32 on)
{
	struct trace_set t = {on, on ? sl_trace_threshold(a->cfg.trace_sample) : 0};
	int err = sl_settings_edit(a->dp.settings_fd, edit_trace, &t);

	if (err < 0)
		sl_warn("cannot write the datapath's tracing settings", "error=\"%s\"",
			strerror(-err));
	else if (err && on)
		sl_info("tracing", "sample=%g threshold=%u", a->cfg.trace_sample, t.sample);
	else if (err)
		sl_info("tracing off");
}

/* On while an exporter takes the records. */
void agent_tracing_sync(struct agent *a)
{
	settings_write(a, a->tracing != NULL);
}

/* The name of the caller's identity; "" for none. */
static const char *identity_name(const struct agent *a, uint32_t id)
{
	return id && id <= a->cfg.n_identities ? a->cfg.identities[id - 1].name : "";
}

/* ring_buffer__consume()'s callback: one record, one span queued (or dropped and counted
 * by the exporter when its queue is full). AGENT_RING_SPENT ends the wakeup's batch. */
static int on_record(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;
	struct agent_tracing *t = a->tracing;
	const struct sluice_span_rec *r = data;
	struct sluice_svc_info info;
	const char *service = "unknown";
	struct sl_span span;

	if (len >= sizeof(*r) && !bpf_map_lookup_elem(a->dp.maps.svc_info, &r->svc_id, &info)) {
		info.name[sizeof(info.name) - 1] = '\0';
		service = info.name;
	}
	if (sl_trace_span(r, len, service, len >= sizeof(*r) ? identity_name(a, r->identity) : "",
			  t->offset, &span))
		t->invalid++;
	else
		sl_otlp_submit(t->exp, &span);
	if (t->left && --t->left)
		return 0;
	return AGENT_RING_SPENT;
}

/* At most AGENT_RING_BUDGET records a wakeup; the rest stays readable for the next round. */
static void on_spans(void *arg)
{
	struct agent *a = arg;
	struct agent_tracing *t = a->tracing;
	int n;

	t->left = AGENT_RING_BUDGET;
	t->offset = sl_trace_clock_offset();
	n = ring_buffer__consume(t->rb);
	if (n < 0 && n != AGENT_RING_SPENT)
		sl_warn("cannot read traced connections", "error=\"%s\"", strerror(-n));
}

static int tracing_open(struct agent *a, struct agent_tracing *t)
{
	const struct sl_tracing_cfg *c = &a->cfg.agent.tracing;
	const struct sl_otlp_opts o = {
	    .endpoint = c->endpoint,
	    .host_name = trace_host_name(a, t->host, sizeof(t->host)),
	    .queue_size = c->queue_size,
	    .batch_size = c->batch_size,
	    .max_delay_ms = c->batch_delay_ms,
	    .timeout_ms = c->timeout_ms,
	};
	char why[256] = "";
	int err;

	t->exp = sl_otlp_new(&o, why, sizeof(why));
	if (!t->exp) {
		sl_error("cannot start the span exporter", "endpoint=%s error=\"%s\"", c->endpoint,
			 why);
		return -EINVAL;
	}
	t->rb = ring_buffer__new(a->dp.spans_fd, on_record, a, NULL);
	if (!t->rb) {
		err = -errno;
		sl_error("cannot open the sluice_spans ring buffer", "error=\"%s\"",
			 strerror(-err));
		return err;
	}
	err = sl_loop_add(&a->loop, &t->src, ring_buffer__epoll_fd(t->rb), on_spans, a);
	if (err)
		sl_error("cannot watch the sluice_spans ring buffer", "error=\"%s\"",
			 strerror(-err));
	return err;
}

static void tracing_free(struct agent_tracing *t)
{
	ring_buffer__free(t->rb);
	sl_otlp_free(t->exp);
	free(t);
}

int agent_tracing_start(struct agent *a)
{
	struct agent_tracing *t;

	if (a->cfg.agent.tracing.on) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			sl_error("cannot start tracing", "error=\"%s\"", strerror(ENOMEM));
			return -ENOMEM;
		}
		if (tracing_open(a, t)) {
			tracing_free(t);
			return -EINVAL;
		}
		a->tracing = t;
		sl_info("span exporter started", "endpoint=%s host=%s queue=%u batch=%u",
			a->cfg.agent.tracing.endpoint, t->host, a->cfg.agent.tracing.queue_size,
			a->cfg.agent.tracing.batch_size);
	}
	agent_tracing_sync(a); /* also off, after a run that had it on */
	return 0;
}

/* At exit: the datapath stops recording (nobody would read it), the records already made
 * become spans, and the queue gets TRACE_FLUSH_MS to leave. */
void agent_tracing_stop(struct agent *a)
{
	struct agent_tracing *t = a->tracing;
	struct sl_otlp_stats st;
	int err;

	if (!t)
		return;
	settings_write(a, 0);
	t->left = SLUICE_SPANS_RINGBUF_BYTES / sizeof(struct sluice_span_rec); /* all there is */
	t->offset = sl_trace_clock_offset();
	ring_buffer__consume(t->rb);
	err = sl_otlp_flush(t->exp, TRACE_FLUSH_MS);
	sl_otlp_get_stats(t->exp, &st);
	if (err)
		sl_warn("spans still queued at exit are lost", "waited_ms=%d queued=%llu",
			TRACE_FLUSH_MS, (unsigned long long)(st.queued + st.in_flight));
	sl_info("span exporter stopped", "exported=%llu dropped=%llu",
		(unsigned long long)st.exported, (unsigned long long)(st.dropped + t->invalid));
	a->tracing = NULL;
	tracing_free(t);
}

void agent_tracing_render(struct agent *a, struct sl_prom *p)
{
	struct agent_tracing *t = a->tracing;
	struct sl_otlp_stats st;
	static const char *const why[] = {"queue_full", "rejected", "retries", "invalid"};
	uint64_t n[4];

	if (!t)
		return;
	sl_otlp_get_stats(t->exp, &st);
	n[0] = st.dropped_queue_full;
	n[1] = st.dropped_rejected;
	n[2] = st.dropped_retries;
	n[3] = st.dropped_invalid + t->invalid;
	sl_prom_family(p, "sluice_spans_exported_total",
		       "Spans of traced connections the collector accepted.", SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, (double)st.exported);
	sl_prom_family(p, "sluice_spans_dropped_total",
		       "Spans dropped: queue full (collector slow or down), rejected by the "
		       "collector, retries exhausted, or invalid.",
		       SL_PROM_COUNTER);
	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		const char *lv[] = {"reason", why[i], NULL};

		sl_prom_sample(p, lv, (double)n[i]);
	}
	sl_prom_family(p, "sluice_spans_queued", "Spans waiting for export or being sent now.",
		       SL_PROM_GAUGE);
	sl_prom_sample(p, NULL, (double)(st.queued + st.in_flight));
	sl_prom_family(p, "sluice_spans_queue_capacity", "Spans the export queue holds at most.",
		       SL_PROM_GAUGE);
	sl_prom_sample(p, NULL, (double)a->cfg.agent.tracing.queue_size);
	sl_prom_family(p, "sluice_spans_export_requests_total",
		       "Export requests (each attempt) by result.", SL_PROM_COUNTER);
	sl_prom_sample(p, (const char *const[]){"result", "ok", NULL}, (double)st.requests_ok);
	sl_prom_sample(p, (const char *const[]){"result", "error", NULL},
		       (double)st.requests_failed);
}
