/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's HTTP endpoints, both run by libmicrohttpd inside the agent's
 * own epoll loop (the maps' part of /metrics is rendered on a thread): GET /metrics, GET /graph
 * (the service map as JSON) and GET /ui (the page that draws it) on agent.metrics, and the control
 * API on the Unix socket agent.api (GET /v1/events streams datapath events as JSON lines).
 */
#ifndef SLUICE_AGENT_HTTP_H
#define SLUICE_AGENT_HTTP_H

#include <stddef.h>

#include "config.h"
#include "loop.h"
#include "maps.h"
#include "prom.h"

struct sl_http;

/* Renders (part of) the metrics page into p; 0 or -errno. */
typedef int (*sl_render_fn)(void *ctx, struct sl_prom *p);

/* Answers a control API request (other than /v1/events): *status and a
 * malloc'd JSON body in *out. */
typedef void (*sl_api_fn)(void *ctx, const char *method, const char *url, const char *body,
			  size_t len, unsigned int *status, char **out);

/* What the endpoints call back; ctx is passed to each. */
struct sl_http_cbs {
	/* /metrics is two parts. The maps' part (every service and backend: about a second
	 * at 10 000 services) is rendered on a thread from a snapshot: metrics_snapshot (on
	 * the loop, with ctx; NULL with -errno in *err), metrics_render (on the thread, with
	 * the snapshot), metrics_drop (on the loop). The live part, the agent's own counters,
	 * is rendered on the loop for each scrape by render_live (with ctx). */
	void *(*metrics_snapshot)(void *ctx, int *err);
	sl_render_fn metrics_render;
	void (*metrics_drop)(void *snap);
	sl_render_fn render_live;
	sl_api_fn api;
	/* A group commit of API changes: after api, api_joined says whether the request joined
	 * the batch; its answer then waits, its connection suspended, until the listener's run
	 * ends and api_flush saved and applied the batch (0), or failed (-1: *status and a
	 * malloc'd *out answer each of its requests instead). May be NULL. */
	int (*api_joined)(void *ctx);
	int (*api_flush)(void *ctx, unsigned int *status, char **out);
	/* After each run of a listener (a request served, a monitor came or
	 * went): the agent follows the number of subscribers. May be NULL. */
	void (*ran)(void *ctx);
	void *ctx;
	/* The maps GET /graph reads (the service map); NULL: none yet. */
	const struct sl_maps *maps;
};

/* Start the listeners that cfg asks for. -errno with a message in err. */
int sl_http_start(struct sl_http **out, const struct sl_config *cfg, const struct sl_http_cbs *cbs,
		  char *err, size_t err_len);
/* Add each listener to the loop, served by its own source. 0 or -errno. */
int sl_http_watch(struct sl_http *h, struct sl_loop *loop);
/* Let both servers do their work now. The listeners' sources and a timer armed from
 * MHD_get_timeout() call it when MHD asks; the agent's tick calls it too. */
void sl_http_run(struct sl_http *h);
/* Queue one line (with its newline) for every /v1/events subscriber. */
void sl_http_publish(struct sl_http *h, const char *line, size_t len);
size_t sl_http_subscribers(const struct sl_http *h);
void sl_http_stop(struct sl_http *h);

#endif /* SLUICE_AGENT_HTTP_H */
