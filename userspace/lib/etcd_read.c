// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client's read side, in the worker: a range of the prefix, published as the
 * snapshot, then a watch from the range's revision + 1 whose events change it; a probe when
 * the watch has been silent for probe_idle_ms (etcd.c says why). Any failure backs off, moves
 * to the next endpoint and starts again with a range; a cancel for compaction ranges at once.
 * With etcd auth, a login comes first when the endpoint has no token (etcd_auth.c): on the
 * read slot before the range, or on the probe's slot, where an answered login is a good probe.
 */
#include <errno.h>
#include <string.h>

#include "etcd_int.h"

static void read_fail(struct sl_etcd *e, const char *what, const char *why)
{
	struct et_read *rd = &e->rd;
	uint64_t delay = et_jitter(e, rd->backoff);

	et_xfer_stop(e, &rd->x);
	et_xfer_stop(e, &rd->probe);
	et_buf_reset(&rd->x.resp);
	et_buf_reset(&rd->probe.resp);
	et_split_reset(&rd->watch.split, ET_WATCH_MSG_MAX);
	et_count(e, &e->sh.st.read_failures);
	if (!rd->failing++)
		et_log(SL_LOG_WARN, "etcd registry unreachable", "endpoint=%s step=%s err=\"%s\"",
		       e->eps[rd->ep], what, why);
	else
		et_log(SL_LOG_DEBUG, "etcd registry retry", "endpoint=%s step=%s err=\"%s\"",
		       e->eps[rd->ep], what, why);
	et_set_connected(e, 0);
	rd->state = R_IDLE;
	rd->due = et_now_ms() + delay;
	rd->backoff = et_backoff_next(rd->backoff);
	rd->ep = (rd->ep + 1) % e->n_eps;
}

static void range_start(struct sl_etcd *e)
{
	int login = et_auth_needed(e, e->rd.ep);
	int r;

	e->rd.x.kind = X_RANGE;
	if (login)
		r = et_auth_start(e, &e->rd.x, e->rd.ep);
	else
		r = et_xfer_start(
		    e, &e->rd.x, e->rd.ep, "/v3/kv/range",
		    json_pack("{s:s, s:s}", "key", e->key_b64, "range_end", e->end_b64));
	if (r) {
		read_fail(e, login ? "login" : "range", strerror(-r));
		return;
	}
	e->rd.state = R_RANGE;
}

static void watch_start(struct sl_etcd *e)
{
	json_t *body = json_pack("{s:{s:s, s:s, s:I, s:b}}", "create_request", "key", e->key_b64,
				 "range_end", e->end_b64, "start_revision",
				 (json_int_t)(e->rd.rev + 1), "progress_notify", 1);
	struct et_watch *w = &e->rd.watch;
	int r;

	w->created = w->resync = w->bad = 0;
	w->why[0] = '\0';
	et_split_reset(&w->split, ET_WATCH_MSG_MAX);
	w->last_rx = et_now_ms();
	e->rd.x.kind = X_WATCH;
	r = et_xfer_start(e, &e->rd.x, e->rd.ep, "/v3/watch", body);
	if (r) {
		read_fail(e, "watch", strerror(-r));
		return;
	}
	e->rd.state = R_WATCH;
}

/* Make next (consumed) the snapshot; publish it if its content differs. */
static void snap_replace(struct sl_etcd *e, struct et_snap *next, int first)
{
	pthread_mutex_lock(&e->sh.mu);
	if (!first && et_snap_equal(next, &e->sh.snap)) {
		pthread_mutex_unlock(&e->sh.mu);
		et_snap_free(next);
		return;
	}
	et_snap_free(&e->sh.snap);
	e->sh.snap = *next;
	e->sh.changed = 1;
	pthread_mutex_unlock(&e->sh.mu);
	et_notify(e);
}

static void range_done(struct sl_etcd *e, const char *why)
{
	struct et_read *rd = &e->rd;
	struct et_snap next;
	size_t skipped;
	char err[160];
	int64_t rev;
	int r;

	if (why) {
		read_fail(e, "range", rd->x.resp.over ? "response over 16 MiB" : why);
		return;
	}
	r = et_range_parse(rd->x.resp.p, rd->x.resp.len, &next, &rev, &skipped, err, sizeof(err));
	et_buf_reset(&rd->x.resp);
	if (r) {
		read_fail(e, "range", err);
		return;
	}
	if (skipped)
		et_log(SL_LOG_DEBUG, "etcd key or value with a NUL byte skipped", "count=%zu",
		       skipped);
	rd->rev = rev;
	et_count(e, &e->sh.st.ranges);
	snap_replace(e, &next, !rd->has_snap);
	rd->has_snap = 1;
	watch_start(e);
}

/* etcd confirmed the watch: connected. */
static void watch_created(struct sl_etcd *e)
{
	struct et_read *rd = &e->rd;

	rd->watch.created = 1;
	rd->backoff = ET_BACKOFF_MIN;
	if (rd->failing)
		et_log(SL_LOG_INFO, "etcd registry reachable again", "endpoint=%s revision=%lld",
		       e->eps[rd->ep], (long long)rd->rev);
	rd->failing = 0;
	et_count(e, &e->sh.st.watches);
	et_set_connected(e, 1);
}

/* Apply a message's events to the snapshot; publish if it changed. 0, or -1. */
static int watch_events(struct sl_etcd *e, const json_t *events)
{
	int changed, r;

	if (!json_array_size(events))
		return 0;
	pthread_mutex_lock(&e->sh.mu);
	r = et_snap_apply_events(&e->sh.snap, events, &changed);
	if (changed)
		e->sh.changed = 1;
	pthread_mutex_unlock(&e->sh.mu);
	if (changed)
		et_notify(e);
	if (r)
		snprintf(e->rd.watch.why, sizeof(e->rd.watch.why), "watch event not applied");
	return r;
}

/* The splitter's callback: one complete watch message. 0 to go on, else stop (resync or bad
 * set). */
static int watch_msg(void *arg, const char *s, size_t n)
{
	struct sl_etcd *e = arg;
	struct et_watch *w = &e->rd.watch;
	struct et_watch_msg m;
	int r = et_watch_parse(s, n, &m, w->why, sizeof(w->why));

	if (r > 0) {
		et_log(SL_LOG_INFO, "etcd watch compacted, resyncing",
		       "revision=%lld compact_revision=%lld", (long long)e->rd.rev,
		       (long long)m.compact_rev);
		w->resync = 1;
	} else if (!r) {
		if (m.created && !w->created)
			watch_created(e);
		r = watch_events(e, m.events);
		if (m.rev > e->rd.rev)
			e->rd.rev = m.rev;
	}
	if (r < 0)
		w->bad = 1;
	json_decref(m.root);
	return r;
}

size_t et_watch_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct sl_etcd *e = arg;
	struct et_watch *w = &e->rd.watch;

	w->last_rx = et_now_ms();
	switch (et_split_feed(&w->split, d, size * nmemb, watch_msg, e)) {
	case ET_SPLIT_OK:
		return size * nmemb;
	case ET_SPLIT_FULL:
		snprintf(w->why, sizeof(w->why), "watch message over 16 MiB or no memory");
		w->bad = 1;
		break;
	case ET_SPLIT_GARBAGE:
		snprintf(w->why, sizeof(w->why), "watch stream is not JSON");
		w->bad = 1;
		break;
	case ET_SPLIT_STOPPED: /* watch_msg set resync or bad */
		break;
	}
	return 0; /* ends the transfer */
}

static void watch_done(struct sl_etcd *e, const char *why)
{
	struct et_watch *w = &e->rd.watch;

	et_split_reset(&w->split, ET_WATCH_MSG_MAX);
	et_xfer_stop(e, &e->rd.probe);
	if (w->resync) {
		et_count(e, &e->sh.st.resyncs);
		range_start(e);
		return;
	}
	read_fail(e, "watch", w->bad ? w->why : why ? why : "watch ended");
}

static void probe_start(struct sl_etcd *e)
{
	int r;

	if (et_auth_needed(e, e->rd.ep))
		r = et_auth_start(e, &e->rd.probe, e->rd.ep);
	else
		r = et_xfer_start(e, &e->rd.probe, e->rd.ep, "/v3/kv/range",
				  json_pack("{s:s, s:I, s:b}", "key", e->key_b64, "limit",
					    (json_int_t)1, "keys_only", 1));
	if (r)
		read_fail(e, "probe", strerror(-r)); /* rather than spin on it */
}

static void probe_done(struct sl_etcd *e, const char *why)
{
	et_buf_reset(&e->rd.probe.resp);
	if (e->rd.state != R_WATCH)
		return;
	if (!why) {
		e->rd.watch.last_rx = et_now_ms();
		return;
	}
	read_fail(e, "probe of a silent watch", why);
}

void et_read_tick(struct sl_etcd *e, uint64_t now)
{
	struct et_read *rd = &e->rd;

	if (rd->state == R_IDLE && now >= rd->due)
		range_start(e);
	if (rd->state == R_WATCH && !rd->probe.h &&
	    now >= rd->watch.last_rx + e->opts.probe_idle_ms)
		probe_start(e);
}

uint64_t et_read_due(const struct sl_etcd *e, uint64_t due)
{
	const struct et_read *rd = &e->rd;

	if (rd->state == R_IDLE && rd->due < due)
		due = rd->due;
	if (rd->state == R_WATCH && !rd->probe.h && rd->watch.last_rx + e->opts.probe_idle_ms < due)
		due = rd->watch.last_rx + e->opts.probe_idle_ms;
	return due;
}

/* A login on the read slot (then the range) or on the probe's (then it was a good probe). */
static void login_done(struct sl_etcd *e, struct et_xfer *x, const char *why)
{
	char buf[64];

	why = et_auth_done(e, x, why, buf, sizeof(buf));
	if (x == &e->rd.probe) {
		probe_done(e, why);
		return;
	}
	if (why)
		read_fail(e, "login", why);
	else
		range_start(e);
}

void et_read_done(struct sl_etcd *e, struct et_xfer *x, const char *why)
{
	if (x->login) {
		login_done(e, x, why);
		return;
	}
	switch (x->kind) {
	case X_RANGE:
		range_done(e, why);
		break;
	case X_WATCH:
		watch_done(e, why);
		break;
	case X_PROBE:
		probe_done(e, why);
		break;
	case X_WRITE:
		break;
	}
}

void et_read_stop(struct sl_etcd *e)
{
	et_xfer_stop(e, &e->rd.x);
	et_xfer_stop(e, &e->rd.probe);
	et_buf_reset(&e->rd.x.resp);
	et_buf_reset(&e->rd.probe.resp);
	et_split_reset(&e->rd.watch.split, ET_WATCH_MSG_MAX);
}
