/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside the agent's HTTP endpoints: shared by http.c (listeners, API, event stream) and
 * http_pages.c (/metrics, /graph, /ui). */
#ifndef SLUICE_AGENT_HTTP_INT_H
#define SLUICE_AGENT_HTTP_INT_H

#include <pthread.h>
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
/* Rendering the maps' part of /metrics reads every map (about 1 s at 10k services), on a
 * thread of its own. A page is served again until it is METRICS_COST_X times as old as it
 * took to render, and never past METRICS_MAX_AGE_NS: however fast scrapes come, rendering
 * takes at most about 1/(1 + METRICS_COST_X) of a CPU. A small node (a render of a
 * millisecond) always gets fresh pages. A scrape that finds the page older waits for the
 * next render, unless the last render took longer than METRICS_WAIT_NS: it is then
 * answered at once with the page it finds, as long as that is younger than
 * METRICS_STALE_MAX_NS (sluice_metrics_page_age_seconds says how old). */
#define METRICS_COST_X	     10ULL
#define METRICS_MAX_AGE_NS   1000000000ULL
#define METRICS_WAIT_NS	     100000000ULL
#define METRICS_STALE_MAX_NS 5000000000ULL

/* The maps' part of /metrics, shared by the responses that send it (refs: on the loop). */
struct mpage {
	unsigned int refs;
	size_t len;
	char *data;
};

/* A render of the maps' part on its thread; done: written by the thread when it ends. */
struct mjob {
	pthread_t thread;
	sl_render_fn job_render; /* the cbs' metrics_render */
	void *snap;
	struct sl_prom *p;
	int err;
	uint64_t start_ns, end_ns;
	int donefd;
};

/* A scrape waiting for the render under way (its connection suspended). */
struct mwaiter {
	struct MHD_Connection *conn;
	struct mwaiter *next;
};

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
	int run_now; /* sl_http_run_soon() was called: the next arm_run() runs MHD at once */
	struct sl_loop_src run_src;
	char api_path[SL_API_PATH_LEN];
	struct sl_http_cbs cbs;
	struct sub *subs;
	size_t n_subs;
	struct upload *batch; /* API requests waiting for agent's api_flush (http.c) */
	struct mpage *page;   /* the maps' part of /metrics last rendered; NULL: none yet */
	uint64_t page_ns;     /* CLOCK_MONOTONIC time its render started (its oldest figure) */
	uint64_t rendered_ns; /* ... and ended */
	uint64_t cost_ns;     /* how long that took */
	struct mjob *job;     /* the render under way; NULL: none */
	int donefd;	      /* eventfd: the render thread has ended */
	struct sl_loop_src done_src;
	struct mwaiter *waiters;
	int waited;  /* its address marks a resumed scrape (*req) */
	char *graph; /* the /graph document last made (NUL-terminated) */
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
/* The render thread has ended (donefd): take its page, answer the scrapes that waited. */
void sl_http_on_render_done(void *ctx);
/* At exit: wait for the render under way, let the waiting scrapes go, drop the page. */
void sl_http_metrics_stop(struct sl_http *h);
/* Ask the loop to run MHD again at once (a resumed connection is served by that run). */
void sl_http_run_soon(struct sl_http *h);

#endif /* SLUICE_AGENT_HTTP_INT_H */
