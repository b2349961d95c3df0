/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An etcd v3 client for the registry, over etcd's JSON gateway (HTTP/1.1, libcurl).
 *
 * A worker thread keeps a snapshot of every key under a prefix (range, then watch) and
 * performs queued writes; the agent's loop only sees an eventfd and non-blocking calls.
 * Keys and values are text: a key or value holding a NUL byte is skipped (debug log).
 */
#ifndef SLUICE_ETCD_H
#define SLUICE_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct sl_etcd_kv {
	char *key; /* the full key, prefix included */
	char *value;
	int64_t lease; /* 0: none */
	int64_t mod_revision;
};

struct sl_etcd;

/*
 * Options; a zero or NULL field takes the default. Strings are copied by open.
 *
 * TLS: with any of ca, cert, key set, every endpoint must be https://; an https:// endpoint
 * without ca is checked against the system's trust store. The server's certificate and host
 * name are always verified, TLS 1.2 at least. cert and key (PEM, the key unencrypted) come
 * together; open reads them, and fails when one is unreadable or the key does not match the
 * certificate. curl reads the files again for each new connection, so renewed files are
 * taken without a restart.
 *
 * etcd auth: etcd's JSON gateway never takes the user from the client certificate's Common
 * Name (etcd refuses, with HTTP 400, a certificate that has a CN once auth is enabled), so
 * the user logs in with a password: user and password_file (its first line), https://
 * only. The token is kept per endpoint and renewed when etcd no longer knows it (HTTP 401).
 * Neither the password, the token nor the key is ever logged.
 */
struct sl_etcd_opts {
	unsigned int request_timeout_ms; /* non-watch requests, total (default 5000) */
	unsigned int connect_timeout_ms; /* every request (default 2000) */
	unsigned int probe_idle_ms;	 /* a silent watch is checked after this (default 10000) */
	unsigned int write_retry_ms;	 /* a write is retried this long, then dropped (60000) */
	const char *ca;			 /* PEM roots for the server's certificate */
	const char *cert;		 /* PEM client certificate (chain), presented to etcd */
	const char *key;		 /* PEM private key of cert, unencrypted */
	const char *user;		 /* etcd user; NULL or "": no etcd auth */
	const char *password_file;	 /* the user's password, on the file's first line */
};

/* endpoints: "http://127.0.0.1:2379" or "https://..." ...; prefix e.g. "/sluice/" ("" = every
 * key). Starts a worker thread. Never blocks the caller on the network. NULL + message in err
 * on bad arguments (TLS and auth files included) or when out of resources. */
struct sl_etcd *sl_etcd_open(const char *const *endpoints, size_t n, const char *prefix, char *err,
			     size_t err_len);
/* The same, with options: TLS, auth, tuning (opts may be NULL). */
struct sl_etcd *sl_etcd_open_opts(const char *const *endpoints, size_t n, const char *prefix,
				  const struct sl_etcd_opts *opts, char *err, size_t err_len);

/* An eventfd (EFD_NONBLOCK|EFD_CLOEXEC) readable when there is news: a new snapshot or a
 * change of connectedness. The agent adds it to its epoll. */
int sl_etcd_fd(const struct sl_etcd *e);

/* 1 and the latest snapshot (every key under the prefix, sorted by key; full keys) when it
 * changed since the last call; 0 when unchanged (kvs and n untouched). Before the first
 * successful range there is no snapshot (0). *connected (may be NULL): the worker currently
 * has a working watch. Drains the eventfd. Caller frees with sl_etcd_kvs_free. -ENOMEM when
 * the copy fails (the change is reported again on the next call). */
int sl_etcd_take(struct sl_etcd *e, struct sl_etcd_kv **kvs, size_t *n, int *connected);
void sl_etcd_kvs_free(struct sl_etcd_kv *kvs, size_t n);

/* Queued writes of full keys, done by the worker in order (retried with backoff while etcd
 * is unreachable for up to write_retry_ms, then dropped with a warning). ttl_s > 0: the key
 * is attached to a fresh lease of that TTL (lease/grant then kv/put). 0, or -EINVAL (bad
 * key), -E2BIG (key + value over 1 MiB), -ENOSPC (10000 writes queued), -ENOMEM. */
int sl_etcd_put(struct sl_etcd *e, const char *key, const char *value, unsigned int ttl_s);
/* Keep the lease of a key put with a TTL alive once (lease/keepalive); -ENOENT if the last
 * put of the key had no TTL, or it was deleted. When the lease turns out to be gone (etcd
 * was away longer than the TTL), the worker grants a new one and puts the key's last value
 * again. A refresh already queued for the key absorbs this one. */
int sl_etcd_refresh(struct sl_etcd *e, const char *key);
int sl_etcd_delete(struct sl_etcd *e, const char *key);

/* Counters since open, for metrics and tests. */
struct sl_etcd_stats {
	uint64_t ranges;	 /* snapshots loaded (range requests that succeeded) */
	uint64_t watches;	 /* watches established */
	uint64_t read_failures;	 /* range/watch/probe failures (each one: back off, range again) */
	uint64_t resyncs;	 /* watches canceled for compaction, followed by a range */
	uint64_t writes;	 /* writes done */
	uint64_t writes_dropped; /* writes given up */
	uint64_t queued;	 /* writes waiting now */
	uint64_t auths;		 /* etcd auth tokens obtained */
};
void sl_etcd_get_stats(struct sl_etcd *e, struct sl_etcd_stats *out);

/* Stops and joins the worker (within a few ms: in-flight requests are abandoned, queued
 * writes dropped), frees everything. NULL is a no-op. */
void sl_etcd_close(struct sl_etcd *e);

/* Standard base64 with padding, as the gateway encodes bytes. enc: returns a malloc'd
 * NUL-terminated string or NULL. dec: returns a malloc'd buffer (NUL-terminated beyond
 * *out_len) or NULL on bad input / no memory. */
char *sl_etcd_b64_encode(const void *data, size_t len);
char *sl_etcd_b64_decode(const char *s, size_t len, size_t *out_len);

#endif /* SLUICE_ETCD_H */
