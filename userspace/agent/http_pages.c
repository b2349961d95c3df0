// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pages of the metrics listener: /metrics, /graph (the service map) and /ui. Both
 * documents are cached by the rule of METRICS_COST_X. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The metrics page in h->page: rendered again, or the last one (see
 * METRICS_COST_X). 0 or -errno. */
static int metrics_page(struct sl_http *h)
{
	struct sl_prom *p;
	const char *data;
	size_t len;
	int err;

	uint64_t start = sl_mono_ns();

	if (!metrics_stale(h, start))
		return 0;
	p = sl_prom_new();
	if (!p)
		return -ENOMEM;
	err = h->cbs.render(h->cbs.ctx, p);
	data = sl_prom_data(p, &len);
	if (!err && !data)
		err = -ENOMEM;
	if (!err && SL_ENSURE(&h->page, &h->page_cap, len + 1))
		err = -ENOMEM;
	if (!err) {
		memcpy(h->page, data, len);
		h->page_len = len;
		h->rendered_ns = sl_mono_ns();
		h->cost_ns = h->rendered_ns - start;
	}
	sl_prom_free(p);
	return err;
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
	struct MHD_Response *r;
	enum MHD_Result ret;
	int err;

	(void)version, (void)upload, (void)upload_len, (void)req;
	if (strcmp(url, "/metrics") && strcmp(url, "/graph") && strcmp(url, "/ui"))
		return sl_http_reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
				     "not found: try /metrics, /graph or /ui\n");
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return sl_http_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
	if (strcmp(url, "/metrics"))
		return on_graph(h, c, url);
	err = metrics_page(h);
	if (err) {
		sl_warn("cannot render metrics", "error=\"%s\"", strerror(-err));
		return sl_http_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				     "cannot read the maps\n");
	}
	r = MHD_create_response_from_buffer(h->page_len, h->page, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}
