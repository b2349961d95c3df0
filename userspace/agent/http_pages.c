// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pages of the metrics listener: /metrics, /graph (the service map) and /ui. Both
 * documents are cached by the rule of METRICS_COST_X; the maps' part of /metrics is rendered
 * on a thread of its own (see http_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "graph.h"
#include "http_int.h"
#include "log.h"
#include "maps.h"
#include "mem.h"
#include "ui_html.h"

enum MHD_Result sl_http_reply(struct MHD_Connection *c, unsigned int status, const char *type,
			      const char *body)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result sl_http_json_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", msg);
	return sl_http_reply(c, status, "application/json", body);
}

/* Must a page made at 'made' in 'cost' ns be made again now? (See
 * METRICS_COST_X; /graph follows the same rule.) */
static int page_stale(const void *page, uint64_t made, uint64_t cost, uint64_t now)
{
	uint64_t max_age = cost * METRICS_COST_X;

	if (max_age > METRICS_MAX_AGE_NS)
		max_age = METRICS_MAX_AGE_NS;
	return !page || now - made >= max_age;
}

static int metrics_stale(const struct sl_http *h, uint64_t now)
{
	return page_stale(h->page, h->rendered_ns, h->cost_ns, now);
}

static void mpage_unref(struct mpage *pg)
{
	if (pg && !--pg->refs) {
		free(pg->data);
		free(pg);
	}
}

static void *render_thread(void *arg)
{
	struct mjob *j = arg;
	uint64_t one = 1;

	j->err = j->p ? j->job_render(j->snap, j->p) : -ENOMEM;
	j->end_ns = sl_mono_ns();
	/* The loop joins the thread when it reads this; a write to an eventfd whose
	 * counter is below its maximum does not fail. */
	if (write(j->donefd, &one, sizeof(one)) != sizeof(one))
		j->err = j->err ? j->err : -EIO;
	return NULL;
}

/* Start a render of the maps' part on its thread. 0 or -errno (logged). */
static int render_start(struct sl_http *h)
{
	struct mjob *j = calloc(1, sizeof(*j));
	int err = -ENOMEM;

	if (!j)
		goto fail;
	j->donefd = h->donefd;
	j->job_render = h->cbs.metrics_render;
	j->start_ns = sl_mono_ns();
	j->snap = h->cbs.metrics_snapshot(h->cbs.ctx, &err);
	if (!j->snap)
		goto fail;
	j->p = sl_prom_new();
	err = -pthread_create(&j->thread, NULL, render_thread, j);
	if (err)
		goto fail;
	h->job = j;
	return 0;
fail:
	if (j) {
		if (j->snap)
			h->cbs.metrics_drop(j->snap);
		sl_prom_free(j->p);
		free(j);
	}
	sl_warn("cannot start rendering the metrics", "error=\"%s\"", strerror(-err));
	return err;
}

/* Join the render thread and take its page (on failure, the last page stays). */
static void render_finish(struct sl_http *h)
{
	struct mjob *j = h->job;
	struct mpage *pg;

	h->job = NULL;
	pthread_join(j->thread, NULL);
	h->cbs.metrics_drop(j->snap);
	pg = j->err ? NULL : calloc(1, sizeof(*pg));
	if (pg) {
		pg->data = sl_prom_take(j->p, &pg->len);
		pg->refs = 1;
	}
	if (pg && pg->data) {
		mpage_unref(h->page);
		h->page = pg;
		h->page_ns = j->start_ns;
		h->rendered_ns = j->end_ns;
		h->cost_ns = j->end_ns - j->start_ns;
	} else {
		free(pg);
		sl_warn("cannot render metrics", "error=\"%s\"",
			strerror(j->err ? -j->err : ENOMEM));
	}
	sl_prom_free(j->p);
	free(j);
}

/* Resume the scrapes that waited: MHD calls on_metrics for each again. */
static void release_waiters(struct sl_http *h)
{
	struct mwaiter *w = h->waiters;

	h->waiters = NULL;
	while (w) {
		struct mwaiter *next = w->next;

		MHD_resume_connection(w->conn);
		free(w);
		w = next;
	}
	sl_http_run_soon(h);
}

void sl_http_on_render_done(void *ctx)
{
	struct sl_http *h = ctx;
	uint64_t n;

	if (read(h->donefd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		sl_warn("cannot read the render eventfd", "error=\"%s\"", strerror(errno));
	if (!h->job)
		return;
	render_finish(h);
	release_waiters(h);
}

void sl_http_metrics_stop(struct sl_http *h)
{
	if (h->job)
		render_finish(h);
	if (h->waiters)
		release_waiters(h);
	mpage_unref(h->page);
	h->page = NULL;
}

/* A response's body: the maps' part (a reference) and the live part (its own). */
struct mbody {
	struct mpage *page;
	char *live;
};

static void mbody_free(void *cls)
{
	struct mbody *b = cls;

	mpage_unref(b->page);
	free(b->live);
	free(b);
}

/* The live part, with how old the maps' part is; malloc'd, NULL on failure. */
static char *live_part(struct sl_http *h, uint64_t now, size_t *len)
{
	struct sl_prom *p = sl_prom_new();
	char *out = NULL;

	if (p && h->cbs.render_live && h->cbs.render_live(h->cbs.ctx, p))
		goto out;
	sl_prom_family(p, "sluice_metrics_render_seconds",
		       "How long the last render of the maps' figures on this page took.",
		       SL_PROM_GAUGE);
	sl_prom_sample(p, NULL, (double)h->cost_ns / 1e9);
	sl_prom_family(p, "sluice_metrics_page_age_seconds",
		       "Age of the maps' figures on this page: since their render started.",
		       SL_PROM_GAUGE);
	sl_prom_sample(p, NULL, (double)(now - h->page_ns) / 1e9);
	out = sl_prom_take(p, len);
out:
	sl_prom_free(p);
	return out;
}

static enum MHD_Result serve_metrics(struct sl_http *h, struct MHD_Connection *c)
{
	struct MHD_IoVec iov[2];
	struct MHD_Response *r;
	struct mbody *b;
	enum MHD_Result ret;
	size_t live_len = 0;

	if (!h->page)
		return sl_http_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				     "cannot read the maps\n");
	b = calloc(1, sizeof(*b));
	if (!b)
		return MHD_NO;
	b->live = live_part(h, sl_mono_ns(), &live_len);
	if (!b->live) {
		free(b);
		return sl_http_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				     "cannot render the agent's metrics\n");
	}
	b->page = h->page;
	b->page->refs++;
	iov[0] = (struct MHD_IoVec){h->page->data, h->page->len};
	iov[1] = (struct MHD_IoVec){b->live, live_len};
	r = MHD_create_response_from_iovec(iov, 2, mbody_free, b);
	if (!r) {
		mbody_free(b);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* GET /metrics: the page as it is, or after the render it starts (see METRICS_WAIT_NS). */
static enum MHD_Result on_metrics(struct sl_http *h, struct MHD_Connection *c, void **req)
{
	uint64_t now = sl_mono_ns();
	struct mwaiter *w;

	if (*req == &h->waited || !metrics_stale(h, now))
		return serve_metrics(h, c);
	if (!h->job && render_start(h))
		return serve_metrics(h, c); /* the last page, if there is one */
	if (h->page && h->cost_ns > METRICS_WAIT_NS && now - h->page_ns < METRICS_STALE_MAX_NS)
		return serve_metrics(h, c);
	w = calloc(1, sizeof(*w));
	if (!w)
		return MHD_NO;
	w->conn = c;
	w->next = h->waiters;
	h->waiters = w;
	*req = &h->waited;
	MHD_suspend_connection(c);
	return MHD_YES;
}

/* The service map in h->graph: made again, or the last one, by the rule
 * of /metrics (it reads about as much). 0 or -errno. */
static int graph_page(struct sl_http *h)
{
	uint64_t start = sl_mono_ns();
	struct sl_graph g;
	json_t *doc;
	char *out;
	int err;

	if (!page_stale(h->graph, h->graph_ns, h->graph_cost_ns, start))
		return 0;
	err = sl_graph_read(h->cbs.maps, &g);
	if (err)
		return err;
	doc = sl_graph_json(&g);
	sl_graph_free(&g);
	out = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!out)
		return -ENOMEM;
	free(h->graph);
	h->graph = out;
	h->graph_len = strlen(out);
	h->graph_ns = sl_mono_ns();
	h->graph_cost_ns = h->graph_ns - start;
	return 0;
}

/* GET /graph: the service map as JSON; GET /ui: the page that draws it. */
static enum MHD_Result on_graph(struct sl_http *h, struct MHD_Connection *c, const char *url)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int err;

	if (!strcmp(url, "/ui")) {
		r = MHD_create_response_from_buffer(SL_UI_HTML_LEN, (void *)sl_ui_html,
						    MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/html; charset=utf-8");
	} else {
		err = h->cbs.maps ? graph_page(h) : -ENOENT;
		if (err) {
			sl_warn("cannot read the service map", "error=\"%s\"", strerror(-err));
			return sl_http_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
						  "cannot read the maps");
		}
		r = MHD_create_response_from_buffer(h->graph_len, h->graph, MHD_RESPMEM_MUST_COPY);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result sl_http_on_metrics(void *cls, struct MHD_Connection *c, const char *url,
				   const char *method, const char *version, const char *upload,
				   size_t *upload_len, void **req)
{
	struct sl_http *h = cls;

	(void)version, (void)upload, (void)upload_len;
	if (strcmp(url, "/metrics") && strcmp(url, "/graph") && strcmp(url, "/ui"))
		return sl_http_reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
				     "not found: try /metrics, /graph or /ui\n");
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return sl_http_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
	if (strcmp(url, "/metrics"))
		return on_graph(h, c, url);
	return on_metrics(h, c, req);
}
