// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the etcd client's parsers (etcd_codec.h) on arbitrary bytes. The first
 * byte picks the input: a range reply, a watch stream, a reply to a write, or base64.
 *   range: a snapshot is sorted, its keys unique and non-empty, its byte count right;
 *   watch: the stream goes through the splitter in pieces (sizes from the second byte) and
 *          whole, which must pass on the same objects and end the same way; each message is
 *          parsed and its events applied to a snapshot that keeps the rules above; a small
 *          max exercises the oversize path;
 *   write: the reply's error is a NUL-terminated string within its buffer; so is the text
 *          of an error reply, found exactly when non-empty; a login's token, if any, is
 *          visible ASCII within ET_TOKEN_MAX (it becomes a header);
 *   base64: what decodes encodes back to the same text (the decoder is strict).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_snap(const struct et_snap *s)
{
	size_t i, bytes = 0;

	if (s->n > s->cap || (s->n && !s->kvs))
		abort();
	for (i = 0; i < s->n; i++) {
		const struct sl_etcd_kv *kv = &s->kvs[i];

		if (!kv->key || !kv->value || !*kv->key)
			abort();
		if (i && strcmp(s->kvs[i - 1].key, kv->key) >= 0)
			abort();
		bytes += strlen(kv->key) + strlen(kv->value);
	}
	if (bytes != s->bytes || bytes > ET_SNAP_MAX)
		abort();
}

static void fuzz_range(const char *s, size_t n)
{
	struct et_snap snap;
	size_t skipped;
	char why[160];
	int64_t rev;

	if (et_range_parse(s, n, &snap, &rev, &skipped, why, sizeof(why))) {
		if (snap.kvs || snap.n || !why[0] || strlen(why) >= sizeof(why))
			abort();
		return;
	}
	check_snap(&snap);
	et_snap_free(&snap);
}

/* What the splitter passed on: how many objects, and a hash of them in order. */
struct seen {
	size_t n;
	uint64_t hash;
	struct et_snap *snap; /* NULL: only count */
};

static int on_msg(void *arg, const char *obj, size_t len)
{
	struct seen *s = arg;
	struct et_watch_msg m;
	char why[160];
	size_t i;
	int changed;

	if (!len || obj[0] != '{' || obj[len - 1] != '}')
		abort();
	s->n++;
	for (i = 0; i < len; i++)
		s->hash = (s->hash ^ (unsigned char)obj[i]) * 0x100000001b3ull;
	s->hash = (s->hash ^ 0x1ff) * 0x100000001b3ull; /* object boundary */
	if (!s->snap)
		return 0;
	if (!et_watch_parse(obj, len, &m, why, sizeof(why))) {
		et_snap_apply_events(s->snap, m.events, &changed);
		check_snap(s->snap);
	}
	json_decref(m.root);
	return 0;
}

static enum et_split_res split(const char *s, size_t n, size_t max, size_t step, struct seen *seen)
{
	struct et_split sp = {0};
	enum et_split_res r = ET_SPLIT_OK;
	size_t at = 0, k = 0;

	et_split_reset(&sp, max);
	while (at < n && r == ET_SPLIT_OK) {
		size_t piece = step ? 1 + (k++ % step) : n - at;

		if (piece > n - at)
			piece = n - at;
		r = et_split_feed(&sp, s + at, piece, on_msg, seen);
		at += piece;
	}
	et_split_reset(&sp, 0);
	return r;
}

static void fuzz_watch(const char *s, size_t n)
{
	struct et_snap snap = {0};
	struct seen a = {0, 14695981039346656037ull, &snap}, b = {0, 14695981039346656037ull, NULL};
	struct seen c = {0};
	size_t step = n ? (unsigned char)s[0] % 17 + 1 : 1;
	enum et_split_res ra, rb;

	if (!n)
		return;
	ra = split(s + 1, n - 1, 1u << 20, step, &a);
	rb = split(s + 1, n - 1, 1u << 20, 0, &b);
	if (ra != rb || a.n != b.n || a.hash != b.hash || ra == ET_SPLIT_STOPPED)
		abort();
	split(s + 1, n - 1, 64, step, &c);
	et_snap_free(&snap);
}

static void fuzz_reply(const char *s, size_t n)
{
	struct et_reply r;
	char said[64], *tok = et_auth_parse(s, n);
	size_t i;

	/* A login's token goes into a header: visible ASCII only. */
	for (i = 0; tok && tok[i]; i++)
		if (tok[i] <= 0x20 || tok[i] >= 0x7f || i >= ET_TOKEN_MAX)
			abort();
	free(tok);
	memset(said, 0xa5, sizeof(said));
	if (et_error_text(s, n, said, sizeof(said)) != (said[0] != '\0') ||
	    !memchr(said, '\0', sizeof(said)))
		abort();
	memset(&r, 0xa5, sizeof(r));
	if (et_reply_parse(s, n, &r))
		return;
	if (!memchr(r.error, '\0', sizeof(r.error)))
		abort();
}

static void fuzz_b64(const char *s, size_t n)
{
	size_t len;
	char *dec = sl_etcd_b64_decode(s, n, &len), *enc;

	if (!dec)
		return;
	if (dec[len] != '\0')
		abort();
	enc = sl_etcd_b64_encode(dec, len);
	if (!enc || strlen(enc) != n || memcmp(enc, s, n))
		abort();
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size < 1 || size > 65536)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_range(s, size - 1);
		break;
	case 1:
		fuzz_watch(s, size - 1);
		break;
	case 2:
		fuzz_reply(s, size - 1);
		break;
	default:
		fuzz_b64(s, size - 1);
		break;
	}
	return 0;
}
