/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the agent's HTTP endpoints: shared by http.c (listeners, API, event stream) and
 * http_pages.c (/metrics, /graph, /ui). */
#ifndef SLUICE_AGENT_HTTP_INT_H
#define SLUICE_AGENT_HTTP_INT_H

#include <stdint.h>

#include <microhttpd.h>

#include "api.h"
#include "http.h"

/* A /v1/events subscriber that reads slower than this loses events. */
#define SUB_BUFFER_MAX (1 << 20)

/* Both daemons run inside the agent's epoll loop (no thread). */
#define DAEMON_FLAGS (MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG)
/* Connections per listener, and per client address on the metrics one. */
#define CONN_LIMIT     64U
#define METRICS_PER_IP 8U
/* A connection idle this long is closed (a /v1/events stream excepted). */
#define CONN_TIMEOUT_S 10U
/* Rendering /metrics reads every map, inside the loop (about 1 s at 10k
 * services). A page is served again until it is METRICS_COST_X times as old
 * as it took to render, and never past METRICS_MAX_AGE_NS: however fast
 * scrapes come, rendering takes at most about 1/(1 + METRICS_COST_X) of the
 * loop. A small node (a render of a millisecond) always gets fresh pages. */
#define METRICS_COST_X	   10ULL
#define METRICS_MAX_AGE_NS 1000000000ULL

struct sub {
	struct sl_http *h;
	struct MHD_Connection *conn;
	char *buf;
	size_t len, cap;
	unsigned long long dropped;
	int suspended;
	struct sub *next;
};

/* One MHD daemon and its source in the agent's loop. */
struct listener {
	struct sl_http *h;
	struct MHD_Daemon *d;
	struct sl_loop_src src;
};

struct sl_http {
	struct listener metrics;
	struct listener api;
	/* When MHD next wants to run: it has more to do than its epoll fd shows (a resumed
	 * /v1/events stream with data to send, a connection timeout). */
	int runfd;
	struct sl_loop_src run_src;
	char api_path[SL_API_PATH_LEN];
	struct sl_http_cbs cbs;
	struct sub *subs;
	size_t n_subs;
	char *page; /* the metrics page last rendered */
	size_t page_len, page_cap;
	uint64_t rendered_ns; /* CLOCK_MONOTONIC time the page was rendered */
	uint64_t cost_ns;     /* how long that took */
	char *graph;	      /* the /graph document last made (NUL-terminated) */
	size_t graph_len;
	uint64_t graph_ns, graph_cost_ns; /* as rendered_ns and cost_ns */
};

enum MHD_Result sl_http_reply(struct MHD_Connection *c, unsigned int status, const char *type,
			      const char *body);
/* {"error": msg}; msg is a fixed text (it is not escaped). */
enum MHD_Result sl_http_json_error(struct MHD_Connection *c, unsigned int status, const char *msg);
/* The metrics listener's handler: GET /metrics, /graph and /ui. */
enum MHD_Result sl_http_on_metrics(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version, const char *upload,
				   size_t *upload_len, void **req);

#endif /* SLUICE_AGENT_HTTP_INT_H */
