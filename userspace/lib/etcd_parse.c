// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd gateway's replies, parsed (jansson) into values and the sorted snapshot: the range
 * reply, the messages of the watch stream and their events, the replies to writes and to a
 * login, and the text of error replies (etcd_codec.h). Pure functions: no I/O, no locks, no
 * logging.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "etcd_codec.h"
#include "mem.h"

int64_t et_json_i64(const json_t *v)
{
	const char *s;
	char *end;
	long long x;

	if (json_is_integer(v))
		return json_integer_value(v);
	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return 0;
	return x;
}

/* A base64 field as a NUL-terminated string: 0, -EINVAL (bad base64, no memory), or 1 when
 * the bytes hold a NUL. Absent = "". */
static int json_b64(const json_t *v, char **out)
{
	size_t n;
	char *s;

	*out = NULL;
	if (!v) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = sl_etcd_b64_decode(json_string_value(v), json_string_length(v), &n);
	if (!s)
		return -EINVAL;
	if (strlen(s) != n) {
		free(s);
		return 1;
	}
	*out = s;
	return 0;
}

static void kv_clear(struct sl_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	kv->key = kv->value = NULL;
}

void sl_etcd_kvs_free(struct sl_etcd_kv *kvs, size_t n)
{
	size_t i;

	if (!kvs)
		return;
	for (i = 0; i < n; i++)
		kv_clear(&kvs[i]);
	free(kvs);
}

/* kv from a JSON mvccpb.KeyValue: 0, 1 (skip: NUL inside), -EINVAL. */
static int kv_parse(const json_t *j, struct sl_etcd_kv *kv)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return -EINVAL;
	r = json_b64(json_object_get(j, "key"), &kv->key);
	if (r || !*kv->key) {
		kv_clear(kv);
		return r ? r : -EINVAL;
	}
	r = json_b64(json_object_get(j, "value"), &kv->value);
	if (r) {
		kv_clear(kv);
		return r;
	}
	kv->lease = et_json_i64(json_object_get(j, "lease"));
	kv->mod_revision = et_json_i64(json_object_get(j, "mod_revision"));
	return 0;
}

static size_t kv_bytes(const struct sl_etcd_kv *kv)
{
	return strlen(kv->key) + strlen(kv->value);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sl_etcd_kv *)a)->key, ((const struct sl_etcd_kv *)b)->key);
}

static int kv_equal(const struct sl_etcd_kv *a, const struct sl_etcd_kv *b)
{
	return !strcmp(a->key, b->key) && !strcmp(a->value, b->value) && a->lease == b->lease &&
	       a->mod_revision == b->mod_revision;
}

/* ---- the snapshot ---- */

void et_snap_free(struct et_snap *s)
{
	sl_etcd_kvs_free(s->kvs, s->n);
	memset(s, 0, sizeof(*s));
}

int et_snap_equal(const struct et_snap *a, const struct et_snap *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (!kv_equal(&a->kvs[i], &b->kvs[i]))
			return 0;
	return 1;
}

/* Where key is, or would go. */
static size_t snap_find(const struct et_snap *s, const char *key, int *found)
{
	size_t lo = 0, hi = s->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->kvs[mid].key, key);

		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int snap_delete(struct et_snap *s, struct sl_etcd_kv *kv)
{
	int found;
	size_t at = snap_find(s, kv->key, &found);

	kv_clear(kv);
	if (!found)
		return 0;
	s->bytes -= kv_bytes(&s->kvs[at]);
	kv_clear(&s->kvs[at]);
	memmove(&s->kvs[at], &s->kvs[at + 1], (s->n - at - 1) * sizeof(*kv));
	s->n--;
	return 1;
}

/* Put kv (consumed): 1, or -EFBIG / -ENOMEM. */
static int snap_put(struct et_snap *s, struct sl_etcd_kv *kv)
{
	int found;
	size_t at = snap_find(s, kv->key, &found), old = found ? kv_bytes(&s->kvs[at]) : 0;
	int r = 1;

	if (s->bytes - old + kv_bytes(kv) > ET_SNAP_MAX)
		r = -EFBIG;
	else if (!found && SL_ENSURE(&s->kvs, &s->cap, s->n + 1))
		r = -ENOMEM;
	if (r < 0) {
		kv_clear(kv);
		return r;
	}
	s->bytes = s->bytes - old + kv_bytes(kv);
	if (found) {
		kv_clear(&s->kvs[at]);
	} else {
		memmove(&s->kvs[at + 1], &s->kvs[at], (s->n - at) * sizeof(*kv));
		s->n++;
	}
	s->kvs[at] = *kv;
	return 1;
}

/* One event: 1 if the snapshot changed, 0 if not, -errno on bad data or over the cap. */
static int snap_apply(struct et_snap *s, const json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	struct sl_etcd_kv kv;
	int r;

	r = kv_parse(json_object_get(ev, "kv"), &kv);
	if (r)
		return r > 0 ? 0 : r;
	if (type && !strcmp(type, "DELETE"))
		return snap_delete(s, &kv);
	if (type && strcmp(type, "PUT")) {
		kv_clear(&kv);
		return -EINVAL;
	}
	return snap_put(s, &kv);
}

int et_snap_apply_events(struct et_snap *s, const json_t *events, int *changed)
{
	size_t i;

	*changed = 0;
	for (i = 0; i < json_array_size(events); i++) {
		int c = snap_apply(s, json_array_get(events, i));

		if (c < 0)
			return -1;
		*changed |= c;
	}
	return 0;
}

/* ---- replies ---- */

/* The kvs of a range reply into out (sized for them). 0, or -1 and why. */
static int range_kvs(const json_t *arr, struct et_snap *out, size_t *skipped, char *why,
		     size_t why_len)
{
	size_t i;

	if (json_array_size(arr)) {
		out->kvs = calloc(json_array_size(arr), sizeof(*out->kvs));
		if (!out->kvs) {
			snprintf(why, why_len, "%s", strerror(ENOMEM));
			return -1;
		}
		out->cap = json_array_size(arr);
	}
	for (i = 0; i < json_array_size(arr); i++) {
		int r = kv_parse(json_array_get(arr, i), &out->kvs[out->n]);

		if (r < 0) {
			snprintf(why, why_len, "bad kv in response");
			return -1;
		}
		if (r > 0) {
			(*skipped)++;
			continue;
		}
		out->bytes += kv_bytes(&out->kvs[out->n]);
		out->n++;
	}
	if (out->bytes > ET_SNAP_MAX) {
		snprintf(why, why_len, "snapshot over 16 MiB");
		return -1;
	}
	if (out->n > 1)
		qsort(out->kvs, out->n, sizeof(*out->kvs), kv_cmp);
	for (i = 1; i < out->n; i++)
		if (!kv_cmp(&out->kvs[i - 1], &out->kvs[i])) {
			snprintf(why, why_len, "key twice in response");
			return -1;
		}
	return 0;
}

int et_range_parse(const char *s, size_t n, struct et_snap *out, int64_t *rev, size_t *skipped,
		   char *why, size_t why_len)
{
	json_t *root, *arr;
	json_error_t jerr;
	int r = -1;

	memset(out, 0, sizeof(*out));
	*rev = 0;
	*skipped = 0;
	root = json_loadb(s ? s : "", n, 0, &jerr);
	if (!root || !json_is_object(json_object_get(root, "header"))) {
		snprintf(why, why_len, "%s", root ? "no header in response" : jerr.text);
		goto out;
	}
	*rev = et_json_i64(json_object_get(json_object_get(root, "header"), "revision"));
	arr = json_object_get(root, "kvs");
	if (arr && !json_is_array(arr)) {
		snprintf(why, why_len, "kvs is not an array");
		goto out;
	}
	r = range_kvs(arr, out, skipped, why, why_len);
out:
	if (r)
		et_snap_free(out);
	json_decref(root);
	return r;
}

/* A message without a result: the gateway's error ({"error": {"message": ...}} or
 * {"error": "..."}). */
static void watch_error(const json_t *root, char *why, size_t why_len)
{
	json_t *err = json_object_get(root, "error");
	const char *m = json_string_value(json_object_get(err, "message"));

	if (!m)
		m = json_string_value(err);
	snprintf(why, why_len, "watch error: %.140s", m ? m : "no result");
}

int et_watch_parse(const char *s, size_t n, struct et_watch_msg *m, char *why, size_t why_len)
{
	json_error_t jerr;
	json_t *res;

	memset(m, 0, sizeof(*m));
	m->root = json_loadb(s, n, 0, &jerr);
	if (!m->root) {
		snprintf(why, why_len, "bad JSON in watch stream: %.100s", jerr.text);
		return -1;
	}
	res = json_object_get(m->root, "result");
	if (!json_is_object(res)) {
		watch_error(m->root, why, why_len);
		return -1;
	}
	m->rev = et_json_i64(json_object_get(json_object_get(res, "header"), "revision"));
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *reason = json_string_value(json_object_get(res, "cancel_reason"));

		m->compact_rev = et_json_i64(json_object_get(res, "compact_revision"));
		if (m->compact_rev > 0)
			return 1;
		snprintf(why, why_len, "watch canceled: %.140s",
			 reason && *reason ? reason : "no reason given");
		return -1;
	}
	m->created = json_is_true(json_object_get(res, "created"));
	m->events = json_object_get(res, "events");
	return 0;
}

int et_reply_parse(const char *s, size_t n, struct et_reply *r)
{
	json_error_t jerr;
	json_t *root, *res;
	const char *err;

	memset(r, 0, sizeof(*r));
	root = json_loadb(s ? s : "", n, 0, &jerr);
	if (!root)
		return -1;
	r->id = et_json_i64(json_object_get(root, "ID"));
	/* A keepalive is a stream on the gateway: {"result": {..., "TTL": "n"}}. */
	res = json_object_get(root, "result");
	r->ttl = et_json_i64(json_object_get(res ? res : root, "TTL"));
	err = json_string_value(json_object_get(root, "error"));
	snprintf(r->error, sizeof(r->error), "%s", err ? err : "");
	json_decref(root);
	return 0;
}

int et_error_text(const char *s, size_t n, char *out, size_t out_len)
{
	const char *m = NULL;
	json_error_t jerr;
	json_t *root, *err;
	size_t i, o = 0;

	if (!out_len)
		return 0;
	out[0] = '\0';
	root = s && n ? json_loadb(s, n, 0, &jerr) : NULL;
	if (root) {
		err = json_object_get(root, "error");
		m = json_string_value(err);
		if (!m)
			m = json_string_value(json_object_get(err, "message"));
		if (!m)
			m = json_string_value(json_object_get(root, "message"));
		if (m)
			snprintf(out, out_len, "%s", m);
		json_decref(root);
		return m && *out ? 1 : 0;
	}
	/* Text (etcd's own HTTP errors): its first line, printable ASCII only. */
	for (i = 0; s && i < n && s[i] != '\n' && s[i] != '\r' && o + 1 < out_len; i++)
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return o ? 1 : 0;
}

char *et_auth_parse(const char *s, size_t n)
{
	json_error_t jerr;
	json_t *root = json_loadb(s ? s : "", n, 0, &jerr);
	const char *t = json_string_value(json_object_get(root, "token"));
	char *out = NULL;
	size_t i, len = t ? strlen(t) : 0;

	/* It becomes a header line: visible ASCII only, so that it can add no other. */
	for (i = 0; i < len && t[i] > 0x20 && t[i] < 0x7f; i++)
		;
	if (len && i == len && len <= ET_TOKEN_MAX)
		out = strdup(t);
	json_decref(root);
	return out;
}
