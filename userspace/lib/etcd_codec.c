// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client's byte level: base64 as the gateway encodes bytes, a growing buffer, and the
 * splitter of the watch stream into JSON objects (etcd_codec.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "etcd_codec.h"
#include "mem.h"

/* ---- base64 ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sl_etcd_b64_encode(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i, o = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters, and the
 * unused bits of the last group zero (what Go's encoder writes). */
char *sl_etcd_b64_decode(const char *s, size_t len, size_t *out_len)
{
	size_t i, o = 0, pad = 0;
	unsigned char *out;

	if (len % 4)
		return NULL;
	if (len && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return NULL;
	for (i = 0; i < len; i += 4) {
		int last = i + 4 == len, v[4], k;
		uint32_t w;

		for (k = 0; k < 4; k++) {
			v[k] = last && k >= 4 - (int)pad ? 0 : b64_val(s[i + k]);
			if (v[k] < 0)
				goto bad;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		    (uint32_t)v[3];
		out[o++] = (unsigned char)(w >> 16);
		if (last && pad == 2) {
			if (w & 0xffff)
				goto bad;
			break;
		}
		out[o++] = (unsigned char)(w >> 8);
		if (last && pad == 1) {
			if (w & 0xff)
				goto bad;
			break;
		}
		out[o++] = (unsigned char)w;
	}
	out[o] = '\0';
	*out_len = o;
	return (char *)out;
bad:
	free(out);
	return NULL;
}

/* ---- the buffer ---- */

int et_buf_add(struct et_buf *b, const char *d, size_t n)
{
	if (n > b->max - b->len) {
		b->over = 1;
		return -1;
	}
	if (SL_ENSURE(&b->p, &b->cap, b->len + n + 1))
		return -1;
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

void et_buf_reset(struct et_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->over = 0;
}

/* ---- the splitter ---- */

void et_split_reset(struct et_split *s, size_t max)
{
	et_buf_reset(&s->buf);
	s->buf.max = max;
	s->scan = s->obj = 0;
	s->depth = s->in_str = s->esc = 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* One byte outside a string: 1 when it closes a top-level object, -1 when it is garbage. */
static int split_byte(struct et_split *s, size_t i, char c)
{
	if (c == '"' && s->depth > 0) {
		s->in_str = 1;
	} else if (c == '{') {
		if (!s->depth++)
			s->obj = i;
	} else if (c == '}' && s->depth > 0) {
		return !--s->depth;
	} else if (!s->depth && !is_space(c)) {
		return -1;
	}
	return 0;
}

enum et_split_res et_split_feed(struct et_split *s, const char *d, size_t n, et_split_fn fn,
				void *arg)
{
	struct et_buf *b = &s->buf;
	size_t i, keep;

	if (et_buf_add(b, d, n))
		return ET_SPLIT_FULL;
	for (i = s->scan; i < b->len; i++) {
		char c = b->p[i];
		int r;

		if (s->in_str) {
			if (s->esc)
				s->esc = 0;
			else if (c == '\\')
				s->esc = 1;
			else if (c == '"')
				s->in_str = 0;
			continue;
		}
		r = split_byte(s, i, c);
		if (r < 0)
			return ET_SPLIT_GARBAGE;
		if (r > 0 && fn(arg, b->p + s->obj, i - s->obj + 1))
			return ET_SPLIT_STOPPED;
	}
	/* Keep only the unfinished object. */
	keep = s->depth ? s->obj : b->len;
	memmove(b->p, b->p + keep, b->len - keep);
	b->len -= keep;
	b->p[b->len] = '\0';
	s->obj = 0;
	s->scan = b->len;
	return ET_SPLIT_OK;
}
