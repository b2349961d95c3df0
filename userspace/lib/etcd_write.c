// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client's writes: the caller queues them (sl_etcd_put, _refresh, _delete); the worker
 * does the head of the queue, one request at a time, so writes stay in order. A put with a TTL
 * is a lease grant, then the put; a refresh is a keepalive of the key's lease, or (the lease is
 * gone) a grant and a put of the key's last value. Transport errors, HTTP 5xx, 429 and 401 (the
 * token was no longer known: log in again) are retried with backoff, rotating endpoints, until
 * write_retry_ms after the write was queued; any other HTTP error (403: the user may not write
 * there) drops it at once. With etcd auth, a step to an endpoint without a token is preceded
 * by a login (etcd_auth.c), which fails or is retried like the step.
 *
 * The lease table (key -> lease, last value and TTL, under mu) follows the queued writes for
 * what the caller may refresh, and the writes done for the lease IDs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_int.h"
#include "mem.h"

/* ---- the lease table (under mu) ---- */

static struct et_lease *lease_find(struct et_shared *sh, const char *key)
{
	size_t i;

	for (i = 0; i < sh->n_leases; i++)
		if (!strcmp(sh->leases[i].key, key))
			return &sh->leases[i];
	return NULL;
}

static void lease_remove(struct et_shared *sh, struct et_lease *l)
{
	free(l->key);
	free(l->value);
	*l = sh->leases[--sh->n_leases];
}

/* The worker did a put without TTL or a delete of key: no lease any more; the entry goes
 * unless a later queued put gave the key a TTL again. */
static void lease_forget(struct sl_etcd *e, const char *key)
{
	struct et_lease *l;

	pthread_mutex_lock(&e->sh.mu);
	l = lease_find(&e->sh, key);
	if (l) {
		l->id = 0;
		if (!l->known && !l->refresh_queued)
			lease_remove(&e->sh, l);
	}
	pthread_mutex_unlock(&e->sh.mu);
}

static void lease_set_id(struct sl_etcd *e, const char *key, int64_t id)
{
	struct et_lease *l;

	pthread_mutex_lock(&e->sh.mu);
	l = lease_find(&e->sh, key);
	if (l)
		l->id = id;
	pthread_mutex_unlock(&e->sh.mu);
}

/* A put of key with a TTL was queued: remember its value (consumed) and TTL. 0 or -errno. */
static int lease_note_put(struct et_shared *sh, const char *key, char *value, unsigned int ttl)
{
	struct et_lease *l = lease_find(sh, key);

	if (!l) {
		if (sh->n_leases >= ET_LEASES_MAX)
			goto fail_nospc;
		if (SL_ENSURE(&sh->leases, &sh->cap_leases, sh->n_leases + 1))
			goto fail_nomem;
		l = &sh->leases[sh->n_leases];
		memset(l, 0, sizeof(*l));
		l->key = strdup(key);
		if (!l->key)
			goto fail_nomem;
		sh->n_leases++;
	}
	free(l->value);
	l->value = value;
	l->ttl = ttl;
	l->known = 1;
	return 0;
fail_nospc:
	free(value);
	return -ENOSPC;
fail_nomem:
	free(value);
	return -ENOMEM;
}

/* The lease table follows a write being queued, at once. 0, 1 (a refresh absorbed by the one
 * already queued), or -errno. */
static int lease_note(struct et_shared *sh, const struct et_op *op)
{
	struct et_lease *l = lease_find(sh, op->key);
	char *v;

	if (op->kind == OP_REFRESH) {
		if (!l || !l->known)
			return -ENOENT;
		if (l->refresh_queued)
			return 1;
		l->refresh_queued = 1;
	} else if (op->kind == OP_PUT && op->ttl) {
		v = strdup(op->value);
		return v ? lease_note_put(sh, op->key, v, op->ttl) : -ENOMEM;
	} else if (l) {
		l->known = 0;
	}
	return 0;
}

/* ---- the queue ---- */

static const char *op_name(const struct et_op *op)
{
	return op->kind == OP_PUT ? "put" : op->kind == OP_REFRESH ? "refresh" : "delete";
}

static void op_free(struct et_op *op)
{
	if (!op)
		return;
	free(op->key);
	free(op->value);
	free(op);
}

static struct et_op *op_new(enum op_kind kind, const char *key, const char *value, unsigned int ttl)
{
	struct et_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->kind = kind;
	op->ttl = kind == OP_PUT ? ttl : 0;
	op->t_enq = et_now_ms();
	op->key = strdup(key);
	op->value = value ? strdup(value) : NULL;
	if (!op->key || (value && !op->value)) {
		op_free(op);
		return NULL;
	}
	return op;
}

/* Queue a write; the lease table follows the caller's view at once. */
static int enqueue(struct sl_etcd *e, enum op_kind kind, const char *key, const char *value,
		   unsigned int ttl)
{
	struct et_shared *sh = &e->sh;
	struct et_op *op;
	int r;

	if (!key || !*key || (kind == OP_PUT && !value))
		return -EINVAL;
	if (strlen(key) > ET_KV_MAX || (value && strlen(value) > ET_KV_MAX - strlen(key)))
		return -E2BIG;
	op = op_new(kind, key, value, ttl);
	if (!op)
		return -ENOMEM;

	pthread_mutex_lock(&sh->mu);
	r = sh->q_len >= ET_QUEUE_MAX ? -ENOSPC : lease_note(sh, op);
	if (!r) {
		if (sh->q_tail)
			sh->q_tail->next = op;
		else
			sh->q_head = op;
		sh->q_tail = op;
		sh->q_len++;
		op = NULL;
	}
	pthread_mutex_unlock(&sh->mu);
	op_free(op);
	if (r > 0)
		return 0;
	if (!r)
		curl_multi_wakeup(e->multi);
	return r;
}

int sl_etcd_put(struct sl_etcd *e, const char *key, const char *value, unsigned int ttl_s)
{
	return enqueue(e, OP_PUT, key, value, ttl_s);
}

int sl_etcd_refresh(struct sl_etcd *e, const char *key)
{
	return enqueue(e, OP_REFRESH, key, NULL, 0);
}

int sl_etcd_delete(struct sl_etcd *e, const char *key)
{
	return enqueue(e, OP_DELETE, key, NULL, 0);
}

/* The head of the queue, or NULL. */
static struct et_op *dequeue(struct sl_etcd *e)
{
	struct et_shared *sh = &e->sh;
	struct et_op *op;

	pthread_mutex_lock(&sh->mu);
	op = sh->q_head;
	if (op) {
		sh->q_head = op->next;
		if (!sh->q_head)
			sh->q_tail = NULL;
		sh->q_len--;
		if (op->kind == OP_REFRESH) {
			struct et_lease *l = lease_find(sh, op->key);

			if (l) {
				l->refresh_queued = 0;
				if (!l->known)
					lease_remove(sh, l);
			}
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return op;
}

/* ---- the worker's side ---- */

static void write_finish(struct sl_etcd *e, int done)
{
	if (done)
		et_count(e, &e->sh.st.writes);
	op_free(e->wr.cur);
	e->wr.cur = NULL;
	e->wr.due = et_now_ms();
}

static void write_drop(struct sl_etcd *e, const char *why)
{
	struct et_op *op = e->wr.cur;

	et_log(SL_LOG_WARN, "etcd write dropped", "op=%s key=\"%s\" queued_ms=%llu err=\"%s\"",
	       op_name(op), op->key, (unsigned long long)(et_now_ms() - op->t_enq), why);
	et_count(e, &e->sh.st.writes_dropped);
	if (op->kind == OP_PUT && op->ttl)
		lease_set_id(e, op->key, 0); /* a refresh will grant and put again */
	else if (op->kind != OP_REFRESH)
		lease_forget(e, op->key);
	write_finish(e, 0);
}

/* A refresh about to run: 0 (keepalive of wr.lease), 1 (the lease is unknown: turned into a
 * put of the key's last value), -1 (nothing to do). */
static int refresh_resolve(struct sl_etcd *e, int lease_gone)
{
	struct et_op *op = e->wr.cur;
	struct et_lease *l;
	int r = -1;

	pthread_mutex_lock(&e->sh.mu);
	l = lease_find(&e->sh, op->key);
	if (l && l->known) {
		if (l->id && !lease_gone) {
			e->wr.lease = l->id;
			r = 0;
		} else {
			char *v = strdup(l->value);

			if (v) {
				free(op->value);
				op->value = v;
				op->ttl = l->ttl;
				op->kind = OP_PUT;
				r = 1;
			}
		}
	}
	pthread_mutex_unlock(&e->sh.mu);
	return r;
}

/* The request body of the current step; *path set. NULL when out of memory. */
static json_t *step_body(const struct et_write *w, const char **path)
{
	const struct et_op *op = w->cur;
	char *k = NULL, *v = NULL, id[24];
	json_t *body = NULL;

	snprintf(id, sizeof(id), "%lld", (long long)w->lease);
	switch (w->step) {
	case W_GRANT:
		*path = "/v3/lease/grant";
		body = json_pack("{s:I}", "TTL", (json_int_t)op->ttl);
		break;
	case W_PUT:
		*path = "/v3/kv/put";
		k = sl_etcd_b64_encode(op->key, strlen(op->key));
		v = sl_etcd_b64_encode(op->value, strlen(op->value));
		if (k && v)
			body = op->ttl
				   ? json_pack("{s:s, s:s, s:s}", "key", k, "value", v, "lease", id)
				   : json_pack("{s:s, s:s}", "key", k, "value", v);
		break;
	case W_KEEPALIVE:
		*path = "/v3/lease/keepalive";
		body = json_pack("{s:s}", "ID", id);
		break;
	case W_DELETE:
		*path = "/v3/kv/deleterange";
		k = sl_etcd_b64_encode(op->key, strlen(op->key));
		if (k)
			body = json_pack("{s:s}", "key", k);
		break;
	}
	free(k);
	free(v);
	return body;
}

static void write_start(struct sl_etcd *e)
{
	const char *path = "";
	json_t *body;
	int r;

	if (et_auth_needed(e, e->wr.ep)) {
		r = et_auth_start(e, &e->wr.x, e->wr.ep);
	} else {
		body = step_body(&e->wr, &path);
		r = et_xfer_start(e, &e->wr.x, e->wr.ep, path, body);
	}
	if (r)
		write_drop(e, strerror(-r));
}

/* Take the head of the queue as the current write, at its first step. 0, or -1 if there is
 * nothing to do. */
static int write_take(struct sl_etcd *e)
{
	struct et_write *w = &e->wr;
	struct et_op *op = dequeue(e);
	int r;

	if (!op)
		return -1;
	w->cur = op;
	w->lease = 0;
	if (op->kind == OP_DELETE) {
		w->step = W_DELETE;
	} else if (op->kind == OP_PUT) {
		w->step = op->ttl ? W_GRANT : W_PUT;
	} else {
		r = refresh_resolve(e, 0);
		if (r < 0) {
			write_finish(e, 0);
			return -1;
		}
		w->step = r ? W_GRANT : W_KEEPALIVE;
	}
	return 0;
}

void et_write_tick(struct sl_etcd *e, uint64_t now)
{
	if (e->wr.x.h || now < e->wr.due)
		return;
	if (!e->wr.cur && write_take(e))
		return;
	write_start(e);
}

static int write_pending(struct sl_etcd *e)
{
	int r;

	if (e->wr.cur)
		return 1;
	pthread_mutex_lock(&e->sh.mu);
	r = e->sh.q_head != NULL;
	pthread_mutex_unlock(&e->sh.mu);
	return r;
}

uint64_t et_write_due(struct sl_etcd *e, uint64_t due)
{
	if (!e->wr.x.h && e->wr.due < due && write_pending(e))
		due = e->wr.due;
	return due;
}

/* The step's request failed in a way worth retrying: again later, or drop it when its time
 * is up. */
static void write_retry(struct sl_etcd *e, const char *why, uint64_t now)
{
	struct et_write *w = &e->wr;
	struct et_op *op = w->cur;

	if (now - op->t_enq >= e->opts.write_retry_ms) {
		write_drop(e, why);
		return;
	}
	et_log(SL_LOG_DEBUG, "etcd write retry", "op=%s key=\"%s\" endpoint=%s err=\"%s\"",
	       op_name(op), op->key, e->eps[w->ep], why);
	w->due = now + et_jitter(e, w->backoff);
	w->backoff = et_backoff_next(w->backoff);
	w->ep = (w->ep + 1) % e->n_eps;
}

/* The step succeeded with reply rep: the next step, or the write is done. */
static void step_done(struct sl_etcd *e, const struct et_reply *rep, uint64_t now)
{
	struct et_write *w = &e->wr;
	struct et_op *op = w->cur;

	switch (w->step) {
	case W_GRANT:
		w->lease = rep->id;
		if (!w->lease) {
			write_drop(e, rep->error[0] ? rep->error : "no lease ID in response");
			return;
		}
		w->step = W_PUT;
		w->due = now;
		break;
	case W_PUT:
		if (op->ttl)
			lease_set_id(e, op->key, w->lease);
		else
			lease_forget(e, op->key);
		write_finish(e, 1);
		break;
	case W_KEEPALIVE:
		if (rep->ttl > 0) { /* else the lease expired */
			write_finish(e, 1);
			break;
		}
		et_log(SL_LOG_INFO, "etcd lease expired, putting the key again", "key=\"%s\"",
		       op->key);
		if (refresh_resolve(e, 1) == 1) {
			w->step = W_GRANT;
			w->due = now;
		} else {
			write_finish(e, 1);
		}
		break;
	case W_DELETE:
		lease_forget(e, op->key);
		write_finish(e, 1);
		break;
	}
}

void et_write_done(struct sl_etcd *e, const char *why, CURLcode rc, long status)
{
	struct et_write *w = &e->wr;
	uint64_t now = et_now_ms();
	struct et_reply rep;
	char buf[64];

	if (w->x.login) {
		const char *err = et_auth_done(e, &w->x, why, buf, sizeof(buf));

		if (!err) { /* the step itself, at once */
			w->due = now;
			return;
		}
		if (!why)
			status = 502; /* 200 without a token: retry */
		why = err;
	} else if (!why && et_reply_parse(w->x.resp.p, w->x.resp.len, &rep)) {
		why = "bad JSON in response";
		status = 502; /* retry */
	}
	et_buf_reset(&w->x.resp);
	if (why && rc == CURLE_OK && status != 429 && status != 401 && status < 500) {
		/* The lease expired between grant and put: grant again. */
		if (status == 404 && w->step == W_PUT && w->cur->ttl) {
			w->step = W_GRANT;
			write_retry(e, why, now);
			return;
		}
		write_drop(e, why);
		return;
	}
	if (why) {
		write_retry(e, why, now);
		return;
	}
	w->backoff = ET_BACKOFF_MIN;
	step_done(e, &rep, now);
}

void et_write_stop(struct sl_etcd *e)
{
	et_xfer_stop(e, &e->wr.x);
	et_buf_reset(&e->wr.x.resp);
	op_free(e->wr.cur);
	e->wr.cur = NULL;
}

void et_write_free(struct sl_etcd *e)
{
	struct et_op *op, *next;
	size_t i;

	for (op = e->sh.q_head; op; op = next) {
		next = op->next;
		op_free(op);
	}
	e->sh.q_head = e->sh.q_tail = NULL;
	e->sh.q_len = 0;
	for (i = 0; i < e->sh.n_leases; i++) {
		free(e->sh.leases[i].key);
		free(e->sh.leases[i].value);
	}
	free(e->sh.leases);
	e->sh.leases = NULL;
	e->sh.n_leases = e->sh.cap_leases = 0;
}
