/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The etcd client's pure part, without libcurl or threads (so that the fuzz targets and unit
 * tests take it alone): a growing byte buffer, the splitter that finds JSON objects in the
 * watch stream, and the parsers of the gateway's replies (range, watch messages, writes) into
 * values and a sorted snapshot, the token of a login, the text of an error reply. Base64 is
 * public, in etcd.h.
 */
#ifndef SLUICE_ETCD_CODEC_H
#define SLUICE_ETCD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "etcd.h"

#define ET_SNAP_MAX (16u << 20) /* bytes of keys and values in the snapshot */

/* ---- etcd_codec.c ---- */

/* Bytes kept NUL-terminated (p[len] == '\0' once anything was added), at most max of them. */
struct et_buf {
	char *p;
	size_t len, cap, max;
	int over; /* more than max bytes came */
};

/* Append n bytes: 0, or -1 (over max: over set; or no memory). */
int et_buf_add(struct et_buf *b, const char *d, size_t n);
/* Free the bytes; max stays. */
void et_buf_reset(struct et_buf *b);

/*
 * The watch's body is a stream of JSON objects: one per line from the gateway, but split or
 * packed anyhow across the reads. The splitter finds each complete top-level object by brace
 * depth, outside strings (with their escapes); between objects only whitespace may come.
 */
struct et_split {
	struct et_buf buf; /* the unfinished object (and, during a feed, what follows) */
	size_t scan;	   /* bytes of buf already scanned */
	size_t obj;	   /* where the object being read starts in buf */
	int depth, in_str, esc;
};

enum et_split_res {
	ET_SPLIT_OK,	  /* every byte taken; the objects complete so far were passed on */
	ET_SPLIT_STOPPED, /* the callback returned non-zero */
	ET_SPLIT_GARBAGE, /* something other than whitespace between objects */
	ET_SPLIT_FULL,	  /* the unfinished object and the bytes fed are over max, or no memory */
};

/* Called for each complete object (obj[len - 1] is its '}'): 0 to go on, else stop. */
typedef int (*et_split_fn)(void *arg, const char *obj, size_t len);

/* Free the buffer and start afresh; an unfinished object may then hold max bytes. */
void et_split_reset(struct et_split *s, size_t max);
/* Take n more bytes of the stream. After anything but ET_SPLIT_OK, reset before feeding
 * again. */
enum et_split_res et_split_feed(struct et_split *s, const char *d, size_t n, et_split_fn fn,
				void *arg);

/* ---- etcd_parse.c ---- */

/* The keys and values under the prefix, sorted by key, with their byte count. */
struct et_snap {
	struct sl_etcd_kv *kvs;
	size_t n, cap, bytes;
};

void et_snap_free(struct et_snap *s);
/* Same keys, values, leases and revisions. */
int et_snap_equal(const struct et_snap *a, const struct et_snap *b);

/* An int64 the gateway writes as a string (or a number). 0 when absent or bad. */
int64_t et_json_i64(const json_t *v);

/* A /v3/kv/range reply into out (empty on entry): its kvs sorted by key, those whose key or
 * value holds a NUL byte left out (counted in *skipped), and header.revision in *rev. 0, or
 * -1 with why (out empty then); a key that comes twice is an error. */
int et_range_parse(const char *s, size_t n, struct et_snap *out, int64_t *rev, size_t *skipped,
		   char *why, size_t why_len);

/* One message of the watch stream. */
struct et_watch_msg {
	json_t *root;	      /* the message; json_decref it (NULL on bad JSON) */
	const json_t *events; /* result.events (NULL if none) */
	int64_t rev;	      /* result.header.revision */
	int64_t compact_rev;  /* canceled for compaction: result.compact_revision */
	int created;	      /* result.created */
};

/* 0 (events or news), 1 (the watch was canceled for compaction: resync), -1 (an error, a
 * cancel for another reason, bad JSON: why). */
int et_watch_parse(const char *s, size_t n, struct et_watch_msg *m, char *why, size_t why_len);

/* Apply watch events (mvccpb.Event: type PUT, the default, or DELETE) in order, keeping the
 * snapshot sorted and within ET_SNAP_MAX. *changed: some event changed it. 0, or -1 at the
 * first event that is bad or over the cap (the ones before it stay applied). */
int et_snap_apply_events(struct et_snap *s, const json_t *events, int *changed);

/* A reply to a write (lease grant or keepalive, put, deleterange). */
struct et_reply {
	int64_t id;	 /* "ID": the lease granted; 0 if none */
	int64_t ttl;	 /* result.TTL (or TTL): the lease kept alive; 0 if it is gone */
	char error[160]; /* the "error" string, "" if none */
};

/* 0, or -1 when the body is not a JSON object or array. */
int et_reply_parse(const char *s, size_t n, struct et_reply *r);

/* What an error reply says, for a log line: the gateway's "error" (a string, or an object's
 * "message") or "message"; for a body that is not JSON (etcd's own HTTP errors), its first
 * line with anything but printable ASCII replaced by '?'. Cut to out_len. 1 if found, else 0
 * (out ""). */
int et_error_text(const char *s, size_t n, char *out, size_t out_len);

#define ET_TOKEN_MAX 4096 /* bytes of an auth token (simple or JWT) */

/* The token of a /v3/auth/authenticate reply, malloc'd; NULL when there is none, or it is
 * longer than ET_TOKEN_MAX or holds anything but visible ASCII (it goes into a header). */
char *et_auth_parse(const char *s, size_t n);

#endif /* SLUICE_ETCD_CODEC_H */
