/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the etcd client (etcd.h): the client's state and what its files share.
 *   etcd.c        the API, the worker thread, the transfers (libcurl);
 *   etcd_read.c   the read side: range, then watch, and the probe of a silent watch;
 *   etcd_write.c  the write queue, the lease table, and the requests of each write;
 *   etcd_tls.c    the TLS options: checked at open, set on each transfer;
 *   etcd_auth.c   etcd auth: the password, a token per endpoint, the login;
 *   etcd_codec.c, etcd_parse.c: bytes and replies, pure (etcd_codec.h).
 */
#ifndef SLUICE_ETCD_INT_H
#define SLUICE_ETCD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>

#include "etcd.h"
#include "etcd_codec.h"
#include "log.h"

#define ET_QUEUE_MAX	 10000	     /* queued writes */
#define ET_LEASES_MAX	 10000	     /* keys put with a TTL */
#define ET_KV_MAX	 (1u << 20)  /* bytes of key + value in one put (etcd takes 1.5 MiB) */
#define ET_RANGE_MAX	 (16u << 20) /* bytes of a range response */
#define ET_WATCH_MSG_MAX (16u << 20) /* bytes of one watch message */
#define ET_RESP_MAX	 (1u << 20)  /* bytes of any other response */
#define ET_BACKOFF_MIN	 100	     /* ms */
#define ET_BACKOFF_MAX	 5000	     /* ms */
#define ET_LOGIN_PATH	 "/v3/auth/authenticate"

/* The logger writes a line in several stdio calls; hold the stream so that a line of the
 * worker is not cut by another thread's output. */
#define et_log(level, msg, ...)                                                                    \
	do {                                                                                       \
		flockfile(stderr);                                                                 \
		sl_log(level, msg, "" __VA_ARGS__);                                                \
		funlockfile(stderr);                                                               \
	} while (0)

enum xkind { X_RANGE, X_WATCH, X_PROBE, X_WRITE };

/* One transfer slot of the curl multi handle. */
struct et_xfer {
	enum xkind kind;
	CURL *h;	    /* NULL: idle */
	struct et_buf resp; /* the body (not for X_WATCH: the splitter takes it) */
	struct curl_slist *hdrs;
	size_t ep;	  /* the endpoint it went to */
	unsigned int gen; /* the generation of the endpoint's token it carried */
	int login;	  /* it is a login (/v3/auth/authenticate), whatever its kind */
	char err[CURL_ERROR_SIZE];
};

enum op_kind { OP_PUT, OP_REFRESH, OP_DELETE };

/* A queued write. */
struct et_op {
	struct et_op *next;
	enum op_kind kind;
	char *key;
	char *value; /* OP_PUT */
	unsigned int ttl;
	uint64_t t_enq; /* ms, monotonic */
};

/* A key put with a TTL. 'known', 'value' and 'ttl' follow the queued writes (the caller's
 * view); 'id' follows the writes done (the worker's). */
struct et_lease {
	char *key;
	char *value;
	unsigned int ttl;
	int64_t id; /* 0: none yet, or lost */
	int known;  /* the last queued write of the key was a put with a TTL */
	int refresh_queued;
};

/* What the caller's thread and the worker share: every field under mu. */
struct et_shared {
	pthread_mutex_t mu;
	struct et_snap snap; /* the published snapshot */
	int changed;	     /* it changed since the last take */
	int connected;	     /* a watch is established */
	struct et_op *q_head, *q_tail;
	size_t q_len;
	struct et_lease *leases;
	size_t n_leases, cap_leases;
	struct sl_etcd_stats st; /* but st.queued: q_len */
};

/* The watch in progress (the worker's). */
struct et_watch {
	uint64_t last_rx; /* ms: the last bytes, or the last good probe */
	int created;	  /* etcd confirmed it */
	int resync;	  /* canceled for compaction: range again at once */
	int bad;	  /* failed: why */
	char why[160];
	struct et_split split;
};

enum rstate { R_IDLE, R_RANGE, R_WATCH };

/* The read side (the worker's). */
struct et_read {
	struct et_xfer x;     /* the range, then the watch */
	struct et_xfer probe; /* a one-key range while the watch is silent */
	enum rstate state;
	size_t ep;
	unsigned int backoff;
	uint64_t due; /* R_IDLE: range again at */
	int failing;  /* failures since the last established watch (the first one warns) */
	int has_snap; /* a snapshot was published */
	int64_t rev;  /* the snapshot's revision */
	struct et_watch watch;
};

enum wstep { W_GRANT, W_PUT, W_KEEPALIVE, W_DELETE };

/* The write side (the worker's): the write in progress, one request at a time. */
struct et_write {
	struct et_xfer x;
	struct et_op *cur; /* taken off the queue */
	enum wstep step;
	int64_t lease; /* granted for cur, or to keep alive */
	size_t ep;
	unsigned int backoff;
	uint64_t due; /* the next request at */
};

/* etcd auth's token for one endpoint (simple tokens are known to one member only). */
struct et_token {
	char *tok;	  /* NULL: none (yet, or etcd no longer knew it) */
	unsigned int gen; /* bumped on each new token */
};

struct sl_etcd {
	/* Set by open, then read-only. */
	char **eps; /* without a trailing '/' */
	size_t n_eps;
	char *key_b64, *end_b64;  /* the prefix's range */
	struct sl_etcd_opts opts; /* its strings: NULL (copies below) */
	char *ca, *cert, *key;	  /* NULL: none */
	char *user, *password;	  /* NULL: no etcd auth */
	int https_only;		  /* TLS or auth set: every endpoint is https:// */
	int efd;
	CURLM *multi;
	pthread_t thread;
	int thread_started;
	int curl_inited;
	atomic_int stop;

	struct et_shared sh;
	struct et_read rd;
	struct et_write wr;
	struct et_token *toks; /* [n_eps], the worker's */
	uint64_t rng;	       /* the worker's */
};

/* etcd.c */
uint64_t et_now_ms(void);
/* Equal jitter: half the backoff, plus up to the other half. */
uint64_t et_jitter(struct sl_etcd *e, unsigned int backoff);
unsigned int et_backoff_next(unsigned int b);
void et_notify(struct sl_etcd *e);
void et_set_connected(struct sl_etcd *e, int c);
/* (*counter)++ under mu. */
void et_count(struct sl_etcd *e, uint64_t *counter);
/* Start a POST of body (consumed) to eps[ep] + path on slot x, with the endpoint's token if
 * there is one. 0 or -errno. */
int et_xfer_start(struct sl_etcd *e, struct et_xfer *x, size_t ep, const char *path, json_t *body);
void et_xfer_stop(struct sl_etcd *e, struct et_xfer *x);

/* etcd_tls.c */
/* Copy opts' TLS files and check them (at open): 0, or -1 with err. */
int et_tls_open(struct sl_etcd *e, const struct sl_etcd_opts *o, char *err, size_t err_len);
/* The TLS options of a transfer. 0, or -1. */
int et_tls_setopts(const struct sl_etcd *e, CURL *h);

/* etcd_auth.c */
/* Copy the user and read the password file (at open): 0, or -1 with err. */
int et_auth_open(struct sl_etcd *e, const struct sl_etcd_opts *o, char *err, size_t err_len);
/* Free TLS and auth state (the worker is gone); the password is wiped. */
void et_sec_free(struct sl_etcd *e);
/* 1 if a request to eps[ep] needs a login first (auth is on and there is no token). */
int et_auth_needed(const struct sl_etcd *e, size_t ep);
/* Start a login to eps[ep] on slot x (x->login set). 0 or -errno. */
int et_auth_start(struct sl_etcd *e, struct et_xfer *x, size_t ep);
/* A login on x ended; why as for et_read_done. NULL when the endpoint has a token now, else
 * what went wrong (in buf, or why). */
const char *et_auth_done(struct sl_etcd *e, struct et_xfer *x, const char *why, char *buf,
			 size_t len);
/* etcd answered x with HTTP 401: forget the token it carried, unless a newer one came. */
void et_auth_reject(struct sl_etcd *e, const struct et_xfer *x);
/* The header line carrying eps[ep]'s token, or NULL (none, or no memory). */
char *et_auth_header(const struct sl_etcd *e, size_t ep, unsigned int *gen);

/* etcd_read.c */
/* Start a range, or a probe of a silent watch, when it is time. */
void et_read_tick(struct sl_etcd *e, uint64_t now);
/* due, or the read side's next deadline if sooner. */
uint64_t et_read_due(const struct sl_etcd *e, uint64_t due);
/* A transfer of the read side ended; why: NULL (HTTP 200) or what went wrong. */
void et_read_done(struct sl_etcd *e, struct et_xfer *x, const char *why);
/* The watch transfer's body callback. */
size_t et_watch_write(char *d, size_t size, size_t nmemb, void *arg);
/* Abandon the transfers and free their buffers (the worker ends). */
void et_read_stop(struct sl_etcd *e);

/* etcd_write.c */
/* Start the next write, or the next step of the current one, when it is time. */
void et_write_tick(struct sl_etcd *e, uint64_t now);
/* due, or the write side's next deadline if sooner. */
uint64_t et_write_due(struct sl_etcd *e, uint64_t due);
/* The write transfer ended: why as above, from curl's rc and the HTTP status. */
void et_write_done(struct sl_etcd *e, const char *why, CURLcode rc, long status);
void et_write_stop(struct sl_etcd *e);
/* Free the queue and the lease table (the worker is gone). */
void et_write_free(struct sl_etcd *e);

#endif /* SLUICE_ETCD_INT_H */
