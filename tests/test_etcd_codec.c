// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client's pure part (etcd_codec.h): the splitter of the watch stream into JSON
 * objects, fed in every way a stream can be cut, and the parsers of the gateway's replies.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "etcd_codec.h"

#define MAX_OBJS 16

/* What the splitter passed on. */
struct seen {
	char *obj[MAX_OBJS];
	size_t n;
	size_t stop_at; /* stop after this many (0: never) */
};

static int collect(void *arg, const char *obj, size_t len)
{
	struct seen *s = arg;

	if (s->n < MAX_OBJS)
		s->obj[s->n] = strndup(obj, len);
	s->n++;
	return s->stop_at && s->n == s->stop_at;
}

static void seen_free(struct seen *s)
{
	size_t i;

	for (i = 0; i < s->n && i < MAX_OBJS; i++)
		free(s->obj[i]);
	memset(s, 0, sizeof(*s));
}

/* Feed text in pieces of the given sizes (0-terminated; the rest in one piece). The result
 * of the last feed, or the first that is not ET_SPLIT_OK. */
static enum et_split_res feed(struct et_split *sp, struct seen *s, const char *text,
			      const size_t *cuts)
{
	size_t len = strlen(text), at = 0;
	enum et_split_res r = ET_SPLIT_OK;

	while (at < len && r == ET_SPLIT_OK) {
		size_t n = cuts && *cuts ? *cuts++ : len - at;

		if (n > len - at)
			n = len - at;
		r = et_split_feed(sp, text + at, n, collect, s);
		at += n;
	}
	return r;
}

/* Three messages as the gateway writes them, with what makes splitting hard: braces and
 * escaped quotes inside strings, a backslash escaping a backslash, nesting, whitespace. */
static const char stream[] =
    "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}\n"
    "  {\"a\":{\"b\":{\"c\":\"}}}\"}},\"s\":\"{\\\"}\\\\\",\"t\":\"\\\\\"}\r\n"
    "\t{\"k\":[{\"x\":\"\\\"{\"},{}]}\n";
static const char *const stream_objs[] = {
    "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}",
    "{\"a\":{\"b\":{\"c\":\"}}}\"}},\"s\":\"{\\\"}\\\\\",\"t\":\"\\\\\"}",
    "{\"k\":[{\"x\":\"\\\"{\"},{}]}",
};

static int seen_is_stream(const struct seen *s)
{
	size_t i;

	if (s->n != 3)
		return 0;
	for (i = 0; i < 3; i++)
		if (strcmp(s->obj[i], stream_objs[i]))
			return 0;
	return 1;
}

Test(etcd_codec, split_whole_and_every_cut)
{
	struct et_split sp = {0};
	struct seen s = {0};
	size_t len = strlen(stream), i, j;

	et_split_reset(&sp, 4096);
	cr_expect_eq(feed(&sp, &s, stream, NULL), ET_SPLIT_OK);
	cr_expect(seen_is_stream(&s), "whole: %zu objects", s.n);
	seen_free(&s);
	/* Two pieces, cut anywhere. */
	for (i = 1; i < len; i++) {
		size_t cuts[] = {i, 0};

		et_split_reset(&sp, 4096);
		cr_expect_eq(feed(&sp, &s, stream, cuts), ET_SPLIT_OK, "cut at %zu", i);
		cr_expect(seen_is_stream(&s), "cut at %zu: %zu objects", i, s.n);
		seen_free(&s);
	}
	/* Byte by byte, and three pieces of every width. */
	for (j = 1; j < len; j++) {
		size_t cuts[len + 1];

		for (i = 0; i < len; i++)
			cuts[i] = j;
		cuts[len] = 0;
		et_split_reset(&sp, 4096);
		cr_expect_eq(feed(&sp, &s, stream, cuts), ET_SPLIT_OK, "pieces of %zu", j);
		cr_expect(seen_is_stream(&s), "pieces of %zu: %zu objects", j, s.n);
		seen_free(&s);
	}
	et_split_reset(&sp, 0);
}

Test(etcd_codec, split_keeps_only_the_unfinished_object)
{
	struct et_split sp = {0};
	struct seen s = {0};

	et_split_reset(&sp, 4096);
	cr_expect_eq(et_split_feed(&sp, "{\"a\":1}\n{\"b\":", 13, collect, &s), ET_SPLIT_OK);
	cr_expect_eq(s.n, 1);
	cr_expect_eq(sp.buf.len, 5, "kept %zu bytes", sp.buf.len);
	cr_expect_str_eq(sp.buf.p, "{\"b\":");
	cr_expect_eq(et_split_feed(&sp, "\"}\"}", 4, collect, &s), ET_SPLIT_OK);
	cr_expect(s.n == 2 && !strcmp(s.obj[1], "{\"b\":\"}\"}"), "got %s", s.obj[1]);
	cr_expect_eq(sp.buf.len, 0);
	seen_free(&s);
	et_split_reset(&sp, 0);
}

Test(etcd_codec, split_garbage)
{
	static const char *const bad[] = {
	    "x{}", "}", "\"s\"", "[1]", "{}x", "{}\n}", "{\"a\":1}} ", "\0", "{}\v",
	};
	static const size_t before[] = {0, 0, 0, 0, 1, 1, 1, 0, 1};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct et_split sp = {0};
		struct seen s = {0};
		size_t n = strlen(bad[i]) ? strlen(bad[i]) : 1;

		et_split_reset(&sp, 4096);
		cr_expect_eq(et_split_feed(&sp, bad[i], n, collect, &s), ET_SPLIT_GARBAGE, "%s",
			     bad[i]);
		cr_expect_eq(s.n, before[i], "%s: the objects before the garbage", bad[i]);
		seen_free(&s);
		et_split_reset(&sp, 0);
	}
}

Test(etcd_codec, split_stop)
{
	struct et_split sp = {0};
	struct seen s = {.stop_at = 2};

	et_split_reset(&sp, 4096);
	cr_expect_eq(feed(&sp, &s, stream, NULL), ET_SPLIT_STOPPED);
	cr_expect_eq(s.n, 2, "went on after the stop");
	seen_free(&s);
	et_split_reset(&sp, 4096);
	cr_expect_eq(feed(&sp, &s, stream, NULL), ET_SPLIT_OK, "not fresh after a reset");
	cr_expect(seen_is_stream(&s));
	seen_free(&s);
	et_split_reset(&sp, 0);
}

/* max bounds the unfinished object together with the bytes of one feed; objects finished
 * and passed on do not count. */
Test(etcd_codec, split_oversize)
{
	static const char obj32[] = "{\"k\":\"012345678901234567890123\"}";
	static const char obj33[] = "{\"k\":\"0123456789012345678901234\"}";
	struct et_split sp = {0};
	struct seen s = {0};
	size_t cuts[] = {10, 10, 10, 0}, i;

	cr_assert_eq(strlen(obj32), 32);
	et_split_reset(&sp, 32);
	cr_expect_eq(feed(&sp, &s, obj32, NULL), ET_SPLIT_OK, "exactly max");
	for (i = 0; i < 4; i++)
		cr_expect_eq(feed(&sp, &s, obj32, cuts), ET_SPLIT_OK, "max, in pieces, again");
	cr_expect_eq(s.n, 5);
	cr_expect_eq(feed(&sp, &s, obj33, cuts), ET_SPLIT_FULL, "over max, in pieces");
	cr_expect(sp.buf.over);
	cr_expect_eq(s.n, 5);
	et_split_reset(&sp, 32);
	cr_expect_eq(feed(&sp, &s, "{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}", NULL), ET_SPLIT_FULL,
		     "one feed over max");
	cr_expect(sp.buf.over && s.n == 5);
	seen_free(&s);
	et_split_reset(&sp, 0);
}

/* ---- replies ---- */

/* base64: /sluice/a L3NsdWljZS9h, /sluice/b L3NsdWljZS9i, "1" MQ==, "a\0b" YQBi */
Test(etcd_codec, range_reply)
{
	static const char ok[] =
	    "{\"header\":{\"revision\":\"42\"},\"kvs\":["
	    "{\"key\":\"L3NsdWljZS9i\",\"value\":\"MQ==\",\"lease\":\"7\",\"mod_revision\":\"40\"},"
	    "{\"key\":\"L3NsdWljZS9h\",\"mod_revision\":41},"
	    "{\"key\":\"L3NsdWljZS9j\",\"value\":\"YQBi\"}]}";
	static const struct {
		const char *body, *why;
	} bad[] = {{"", "'[' or '{' expected near end of file"},
		   {"{\"kvs\":[]}", "no header in response"},
		   {"{\"header\":{},\"kvs\":{}}", "kvs is not an array"},
		   {"{\"header\":{},\"kvs\":[{\"key\":\"\"}]}", "bad kv in response"},
		   {"{\"header\":{},\"kvs\":[{\"key\":\"L3Ns!\"}]}", "bad kv in response"},
		   {"{\"header\":{},\"kvs\":[7]}", "bad kv in response"},
		   {"{\"header\":{},\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"Yg==\"},"
		    "{\"key\":\"YQ==\",\"value\":\"MQ==\"}]}",
		    "key twice in response"}};
	struct et_snap snap;
	size_t skipped, i;
	char why[160];
	int64_t rev;

	cr_assert_eq(et_range_parse(ok, strlen(ok), &snap, &rev, &skipped, why, sizeof(why)), 0,
		     "%s", why);
	cr_expect(rev == 42 && skipped == 1 && snap.n == 2, "rev=%lld skipped=%zu n=%zu",
		  (long long)rev, skipped, snap.n);
	cr_expect_str_eq(snap.kvs[0].key, "/sluice/a", "sorted by key");
	cr_expect_str_eq(snap.kvs[0].value, "", "no value is the empty value");
	cr_expect_eq(snap.kvs[0].mod_revision, 41);
	cr_expect(snap.kvs[1].lease == 7 && !strcmp(snap.kvs[1].value, "1"));
	cr_expect_eq(snap.bytes, 9 + 9 + 1);
	et_snap_free(&snap);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(et_range_parse(bad[i].body, strlen(bad[i].body), &snap, &rev, &skipped,
					    why, sizeof(why)),
			     -1, "%s", bad[i].body);
		cr_expect_str_eq(why, bad[i].why);
		cr_expect(!snap.kvs && !snap.n, "%s: out not empty", bad[i].body);
	}
}

#define WMSG(res) "{\"result\":{\"header\":{\"revision\":\"9\"}," res "}}"

Test(etcd_codec, watch_messages)
{
	static const struct {
		const char *msg;
		int r;
		const char *why;
	} cases[] = {
	    {WMSG("\"created\":true"), 0, NULL},
	    {WMSG("\"canceled\":true,\"compact_revision\":\"5\""), 1, NULL},
	    {WMSG("\"canceled\":true,\"cancel_reason\":\"gone\""), -1, "watch canceled: gone"},
	    {WMSG("\"canceled\":true"), -1, "watch canceled: no reason given"},
	    {"{\"error\":{\"grpc_code\":14,\"message\":\"no leader\"}}", -1,
	     "watch error: no leader"},
	    {"{\"error\":\"plain\"}", -1, "watch error: plain"},
	    {"{\"result\":7}", -1, "watch error: no result"},
	    {"{\"result\":", -1, "bad JSON in watch stream: "},
	};
	struct et_watch_msg m;
	char why[160];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		cr_expect_eq(
		    et_watch_parse(cases[i].msg, strlen(cases[i].msg), &m, why, sizeof(why)),
		    cases[i].r, "%s", cases[i].msg);
		if (cases[i].why)
			cr_expect(!strncmp(why, cases[i].why, strlen(cases[i].why)), "%s: %s",
				  cases[i].msg, why);
		json_decref(m.root);
	}
	cr_assert_eq(et_watch_parse(cases[0].msg, strlen(cases[0].msg), &m, why, sizeof(why)), 0);
	cr_expect(m.created && m.rev == 9 && !m.events);
	json_decref(m.root);
	cr_assert_eq(et_watch_parse(cases[1].msg, strlen(cases[1].msg), &m, why, sizeof(why)), 1);
	cr_expect_eq(m.compact_rev, 5);
	json_decref(m.root);
}

static json_t *events(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!j)
		cr_log_error("test JSON: %s", err.text);
	return j;
}

Test(etcd_codec, snapshot_events)
{
	struct et_snap s = {0};
	int changed;
	json_t *ev;

	ev = events("[{\"kv\":{\"key\":\"L3NsdWljZS9i\",\"value\":\"MQ==\"}},"
		    "{\"type\":\"PUT\",\"kv\":{\"key\":\"L3NsdWljZS9h\"}},"
		    "{\"type\":\"PUT\",\"kv\":{\"key\":\"L3NsdWljZS9h\",\"value\":\"MQ==\"}},"
		    "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3NsdWljZS9j\"}},"
		    "{\"kv\":{\"key\":\"L3NsdWljZS9j\",\"value\":\"YQBi\"}}]");
	cr_assert_not_null(ev);
	cr_expect_eq(et_snap_apply_events(&s, ev, &changed), 0);
	cr_expect(changed && s.n == 2, "n=%zu", s.n);
	cr_expect(!strcmp(s.kvs[0].key, "/sluice/a") && !strcmp(s.kvs[0].value, "1"));
	cr_expect_eq(s.bytes, 20);
	json_decref(ev);
	ev = events("[{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3NsdWljZS9j\"}}]");
	cr_expect_eq(et_snap_apply_events(&s, ev, &changed), 0);
	cr_expect_eq(changed, 0, "delete of an absent key changed the snapshot");
	json_decref(ev);
	ev = events("[{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3NsdWljZS9h\"}},"
		    "{\"type\":\"NOPE\",\"kv\":{\"key\":\"L3NsdWljZS9i\"}},"
		    "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3NsdWljZS9i\"}}]");
	cr_expect_eq(et_snap_apply_events(&s, ev, &changed), -1);
	cr_expect(changed && s.n == 1 && !strcmp(s.kvs[0].key, "/sluice/b"),
		  "the events before the bad one stay applied");
	cr_expect_eq(s.bytes, 10);
	json_decref(ev);
	et_snap_free(&s);
}

#define REPLY(text) et_reply_parse(text, strlen(text), &r)

Test(etcd_codec, write_replies)
{
	struct et_reply r;
	char body[] = "{\"ID\":\"694d77aa9e38260f\",\"error\":\"etcdserver: too many leases\"}";

	cr_expect_eq(REPLY("{\"ID\":\"7587\",\"TTL\":\"5\"}"), 0);
	cr_expect(r.id == 7587 && r.ttl == 5 && !r.error[0]);
	cr_expect_eq(REPLY("{\"result\":{\"ID\":\"1\",\"TTL\":\"3\"},\"TTL\":\"9\"}"), 0);
	cr_expect_eq(r.ttl, 3, "the result's TTL first");
	cr_expect_eq(REPLY("{\"result\":{\"ID\":\"1\"}}"), 0);
	cr_expect_eq(r.ttl, 0);
	cr_expect_eq(et_reply_parse(body, strlen(body), &r), 0);
	memset(body, 'x', sizeof(body) - 1);
	cr_expect_eq(r.id, 0, "a hex ID is no ID");
	cr_expect_str_eq(r.error, "etcdserver: too many leases", "the error is a copy");
	cr_expect_eq(REPLY("<html>"), -1);
	cr_expect_eq(et_reply_parse(NULL, 0, &r), -1);
	cr_expect_eq(REPLY("[]"), 0);
}

#define ERRTEXT(text) et_error_text(text, strlen(text), out, sizeof(out))

Test(etcd_codec, error_text)
{
	char out[48], small[8];

	cr_expect_eq(ERRTEXT("{\"error\":\"etcdserver: permission denied\",\"code\":7}"), 1);
	cr_expect_str_eq(out, "etcdserver: permission denied");
	cr_expect_eq(ERRTEXT("{\"error\":{\"grpc_code\":14,\"message\":\"no leader\"}}"), 1);
	cr_expect_str_eq(out, "no leader");
	cr_expect_eq(ERRTEXT("{\"message\":\"m\"}"), 1);
	cr_expect_str_eq(out, "m");
	cr_expect_eq(ERRTEXT("{\"code\":3}"), 0);
	cr_expect_str_eq(out, "");
	cr_expect_eq(ERRTEXT("CommonName of client sending a request\r\nsecond line"), 1);
	cr_expect_str_eq(out, "CommonName of client sending a request");
	cr_expect_eq(ERRTEXT("bad\x01\x7f\xc3\xa9 \n"), 1);
	cr_expect_str_eq(out, "bad????");
	cr_expect_eq(ERRTEXT(""), 0);
	cr_expect_eq(et_error_text(NULL, 0, out, sizeof(out)), 0);
	cr_expect_eq(ERRTEXT("a line longer than the buffer, cut to its size, never past it"), 1);
	cr_expect_eq(strlen(out), sizeof(out) - 1);
	cr_expect_eq(et_error_text("0123456789", 10, small, sizeof(small)), 1);
	cr_expect_str_eq(small, "0123456");
}

Test(etcd_codec, login_reply)
{
	static const char *const bad[] = {"{\"token\":\"\"}",
					  "{\"token\":7}",
					  "{\"token\":\"a b\"}",
					  "{\"token\":\"a\\r\\nX-Evil: 1\"}",
					  "{\"token\":\"\\u00e9\"}",
					  "{\"error\":\"x\"}",
					  "<html>",
					  "[]"};
	const char good[] = "{\"header\":{},\"token\":\"AbCdEfGhIjKlMnOp.12\"}";
	char *t = et_auth_parse(good, strlen(good)), *big;
	size_t i;

	cr_expect_str_eq(t ? t : "(null)", "AbCdEfGhIjKlMnOp.12");
	free(t);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = et_auth_parse(bad[i], strlen(bad[i]));
		cr_expect_null(t, "accepted %s", bad[i]);
		free(t);
	}
	cr_expect_null(et_auth_parse(NULL, 0));
	big = malloc(ET_TOKEN_MAX + 32);
	cr_assert_not_null(big);
	memcpy(big, "{\"token\":\"", 10);
	memset(big + 10, 'a', ET_TOKEN_MAX + 1);
	memcpy(big + 10 + ET_TOKEN_MAX + 1, "\"}", 3);
	t = et_auth_parse(big, strlen(big));
	cr_expect_null(t, "a token over ET_TOKEN_MAX accepted");
	free(t);
	free(big);
}
