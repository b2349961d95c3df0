// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tracing: of the config, README "Tracing". tracing.sample reloads (it is one datapath
 * setting); the block's presence and the exporter's keys are fixed for the agent's life, like
 * agent.* (sl_agent_cfg_diff names the key that changed).
 */
#include <math.h> /* isfinite, NAN: macros */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "config_yaml.h"

#define QUEUE_DEFAULT	   4096
#define QUEUE_MAX	   1048576 /* the exporter's own bound (otlp.h) */
#define BATCH_DEFAULT	   512
#define DELAY_DEFAULT_MS   1000
#define TIMEOUT_DEFAULT_MS 10000

uint32_t sl_trace_threshold(double sample)
{
	double t;

	if (!(sample > 0))
		return 0;
	if (sample >= 1)
		return UINT32_MAX;
	t = sample * 4294967296.0 + 0.5; /* rounded; no libm in the agent */
	if (t < 1)
		return 1;
	return t >= (double)UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)t;
}

/* Why url is not an endpoint sluice can POST to, or NULL. curl's URL parser reads it; what
 * it leaves to us: the scheme, a host, and no query, fragment or credentials (a query would
 * swallow "/v1/traces", and the endpoint is logged). */
static const char *endpoint_problem(const char *url)
{
	static const struct {
		CURLUPart part;
		const char *why;
	} absent[] = {
	    {CURLUPART_QUERY, "has a query ('?'): spans go to <endpoint>/v1/traces"},
	    {CURLUPART_FRAGMENT, "has a fragment ('#')"},
	    {CURLUPART_USER, "has credentials: they would be logged"},
	};
	const char *why = NULL;
	char *scheme = NULL, *part = NULL;
	const char *rest = strstr(url, "://");
	CURLU *u = curl_url();

	if (!u)
		return "cannot be checked: out of memory";
	if (!rest) {
		why = "must be an http:// or https:// URL (OTLP/HTTP)";
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0)) {
		why = "is not a URL (want http://host:port or https://host:port)";
		goto out;
	}
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		why = "must be an http:// or https:// URL (OTLP/HTTP)";
		goto out;
	}
	/* curl reads "http:///x" as host x: the host must follow "://" */
	if (!rest[3] || rest[3] == '/' || curl_url_get(u, CURLUPART_HOST, &part, 0) || !*part) {
		why = "has no host";
		goto out;
	}
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		curl_free(part);
		part = NULL;
		if (!curl_url_get(u, absent[i].part, &part, 0)) {
			why = absent[i].why;
			goto out;
		}
	}
out:
	curl_free(part);
	curl_free(scheme);
	curl_url_cleanup(u);
	return why;
}

static void tracing_endpoint(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_tracing_cfg *t = &((struct sl_config *)ctx)->agent.tracing;
	const char *s = yw_want_scalar(w, v, label);
	const char *why;

	if (!s)
		return;
	if (strlen(s) >= sizeof(t->endpoint)) {
		yw_err(w, v, "tracing.endpoint is longer than %zu bytes", sizeof(t->endpoint) - 1);
		return;
	}
	why = endpoint_problem(s);
	if (why)
		yw_err(w, v, "tracing.endpoint '%s' %s", s, why);
	else
		strcpy(t->endpoint, s);
}

/* A decimal number in [0, 1]: "0", "0.05", "1", "1e-3"; no hex, inf or nan. */
static void tracing_sample(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	const char *s = yw_want_scalar(w, v, label);
	char *end = NULL;
	double x;

	if (!s)
		return;
	x = *s && strspn(s, "0123456789.eE+-") == strlen(s) ? strtod(s, &end) : NAN;
	if (!end || *end || !isfinite(x) || x < 0 || x > 1) {
		yw_err(w, v,
		       "tracing.sample '%s' must be a number from 0 to 1 (a share: 0.05 = 5%%)", s);
		return;
	}
	cfg->trace_sample = x;
}

/* The keys; the walk's base is the sl_tracing_cfg, its ctx the sl_config. */
enum { K_ENDPOINT, K_SAMPLE, K_QUEUE, K_BATCH, K_DELAY, K_TIMEOUT, K__COUNT };
static const struct yw_key tracing_keys[K__COUNT] = {
    [K_ENDPOINT] = YW_KEY_FN("endpoint", tracing_endpoint),
    [K_SAMPLE] = YW_KEY_FN("sample", tracing_sample),
    [K_QUEUE] = YW_KEY_UINT("queue_size", struct sl_tracing_cfg, queue_size, 1, QUEUE_MAX),
    [K_BATCH] = YW_KEY_UINT("batch_size", struct sl_tracing_cfg, batch_size, 1, QUEUE_MAX),
    [K_DELAY] = YW_KEY_DURATION("batch_delay", struct sl_tracing_cfg, batch_delay_ms, 1, 60000),
    [K_TIMEOUT] = YW_KEY_DURATION("timeout", struct sl_tracing_cfg, timeout_ms, 100, 60000),
};
static const struct yw_schema tracing_schema =
    YW_SCHEMA("tracing", 1, "tracing needs '%s'", tracing_keys);

void cfg_parse_tracing(struct walker *w, const char *label, yaml_node_t *v, void *ctx)
{
	struct sl_config *cfg = ctx;
	struct sl_tracing_cfg *t = &cfg->agent.tracing;
	yaml_node_t *vals[K__COUNT] = {0};

	(void)label;
	t->on = 1;
	strcpy(t->endpoint, SL_TRACE_ENDPOINT_DEFAULT);
	t->queue_size = QUEUE_DEFAULT;
	t->batch_size = BATCH_DEFAULT;
	t->batch_delay_ms = DELAY_DEFAULT_MS;
	t->timeout_ms = TIMEOUT_DEFAULT_MS;
	if (yw_walk(w, v, &tracing_schema, t, cfg, vals) || t->batch_size <= t->queue_size)
		return;
	/* A queue smaller than the default batch cuts the batch; a batch asked for must fit. */
	if (!vals[K_BATCH])
		t->batch_size = t->queue_size;
	else
		yw_err_key(w, v, "batch_size",
			   "tracing.batch_size %u is larger than tracing.queue_size %u",
			   t->batch_size, t->queue_size);
}
