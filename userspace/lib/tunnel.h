/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mTLS tunnel engine: carries a caller's TCP connection from this node's agent to the
 * agent of the node its backend is on, inside one mutually authenticated TLS 1.3 connection
 * per caller connection.
 *
 *   app --TCP--> [outbound listener | agent A] ==TLS 1.3==> [inbound listener | agent B] --TCP-->
 * backend
 *
 * Outbound: an accepted caller connection is looked up (opts.lookup: which backend, service
 * and caller identity); the engine connects to the peer agent (the backend's address on
 * opts.peer_port, or route.via), handshakes presenting the identity's certificate, expects
 * the peer's node certificate of the same trust domain, sends the header below and relays.
 * Inbound: a TLS client must present an identity certificate of the trust domain, chained to
 * mtls.ca; its identity is taken from that certificate alone; the header names the target;
 * opts.authorize decides; only then the engine connects to the local backend, answers one
 * status byte and relays.
 *
 * Wire format, version 1, inside TLS (all sizes in bytes, integers in network order):
 *
 *   client -> server, once, right after the handshake: struct sl_tunnel_hdr (88 bytes)
 *     0  magic    "SLT1"
 *     4  version  1
 *     5  family   2 (IPv4) or 10 (IPv6)
 *     6  port     the target backend's port
 *     8  addr     the target backend's address: 16 bytes, IPv4 in the first 4, the rest 0
 *    24  service  the service's name, NUL-padded to 64 (at least one NUL)
 *   then the caller's bytes, unchanged; the client does not wait for the status (no extra
 *   round trip).
 *   server -> client, once, before any payload: 1 status byte (enum sl_tunnel_status):
 *     0 ok, 1 denied, 2 unknown target, 3 backend unreachable; after a non-zero status the
 *     server closes the tunnel (close_notify), and the caller's bytes sent meanwhile are
 *     dropped.
 *   then the backend's bytes, unchanged.
 * End of stream: a TLS close_notify is a half-close (the other direction goes on), carried to
 * and from the plain TCP side as shutdown(SHUT_WR) / FIN. A TCP reset on either plain side,
 * or a TLS stream that ends without close_notify or with an error, aborts the tunnel: both
 * of its TCP connections are closed with a reset (SO_LINGER {1, 0}), so an application never
 * takes a truncated stream for a complete one.
 *
 * Threading. The engine runs in ONE thread of its own, with its own epoll: bulk data, slow
 * peers and TLS handshakes (a short tunnel costs each side ~0.6 ms of CPU with a full
 * handshake, ~0.25 ms resumed: mtls_certs.h) never stall the agent's main loop (config
 * reloads, health checks, the API, the ring buffer), and that loop's work never adds latency
 * to tunnelled bytes. Everything in the thread is non-blocking; one thread serves every
 * tunnel (one core is not the limit: see README, "Zero-trust transport"). The callbacks
 * (lookup, authorize, on_event) run in that thread: they must be thread-safe with respect to
 * the agent's state and must not block (a BPF map lookup or a lookup in an immutable,
 * reference-counted snapshot is fine). Every other function here
 * is called from the agent's thread. The thread blocks every signal (so a signalfd in the
 * agent keeps working, and SIGPIPE from a write to a closed socket is never delivered); it
 * inherits the creator's capabilities: create the engine after dropping them.
 *
 * Kernel TLS. The contexts ask OpenSSL for kTLS (SSL_OP_ENABLE_KTLS, AES-GCM suites only).
 * After the handshake, each direction whose key went to the kernel (BIO_get_ktls_send /
 * BIO_get_ktls_recv) is relayed with splice() through a pipe, so its payload never enters
 * user space; a direction without is relayed through SSL_read/SSL_write with a bounded buffer
 * (64 KiB). Either way a full destination stops the reads of its source (backpressure).
 * OpenSSL 3.0 (Debian 12) hands only the send key of TLS 1.3 to the kernel; receive offload
 * needs OpenSSL 3.2.
 *
 * Bounds: a tunnel must finish its setup (connect, handshake, header, status) within
 * opts.handshake_timeout_ms or it is dropped; at most opts.max_tunnels exist at once (more are
 * reset at accept and counted as errors). A tunnel holds two sockets, and two pipes (four fds)
 * per spliced direction: RLIMIT_NOFILE must allow for max_tunnels of them. A busy tunnel holds
 * up to 2 x 64 KiB of relay buffers plus OpenSSL's record buffers; an idle one holds neither.
 */
#ifndef SLUICE_TUNNEL_H
#define SLUICE_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

#include "mtls_certs.h"
#include "parse.h"

#define SL_TUNNEL_MAGIC	  "SLT1"
#define SL_TUNNEL_VERSION 1

struct sl_tunnel_hdr {
	char magic[4];	 /* "SLT1", no NUL */
	uint8_t version; /* SL_TUNNEL_VERSION */
	uint8_t family;	 /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	uint16_t port;	 /* network order */
	uint8_t addr[16];
	char service[SLUICE_NAME_LEN];
};
_Static_assert(sizeof(struct sl_tunnel_hdr) == 88, "tunnel header size");

enum sl_tunnel_status {
	SL_TUNNEL_ST_OK = 0,
	SL_TUNNEL_ST_DENIED = 1,
	SL_TUNNEL_ST_UNKNOWN_TARGET = 2,
	SL_TUNNEL_ST_UNREACHABLE = 3,
};

enum sl_tunnel_dir {
	SL_TUNNEL_OUTBOUND = 0,
	SL_TUNNEL_INBOUND = 1,
	SL_TUNNEL_DIRS,
};

/* A tunnel's outcome, counted once per tunnel when its setup ends (the metric
 * sluice_mtls_connections_total{service,direction,result}). */
enum sl_tunnel_result {
	SL_TUNNEL_OK = 0,
	SL_TUNNEL_HANDSHAKE_FAILED = 1, /* TLS failed or timed out, peer certificate refused */
	SL_TUNNEL_DENIED = 2, /* the policy said no (inbound), or the peer did (outbound) */
	SL_TUNNEL_ERROR = 3,  /* anything else: no route, connect failed, bad header, ... */
	SL_TUNNEL_RESULTS,
};

const char *sl_tunnel_dir_name(enum sl_tunnel_dir d);	    /* "outbound", "inbound" */
const char *sl_tunnel_result_name(enum sl_tunnel_result r); /* "ok", "handshake_failed", ... */

/* Outbound: where an accepted caller connection goes. */
struct sl_tunnel_route {
	struct sl_sockaddr target;	/* the backend the caller was balanced to */
	struct sl_sockaddr via;		/* the peer agent; family 0: target's address, peer_port */
	char service[SLUICE_NAME_LEN];	/* the service (named in the header) */
	char identity[SLUICE_NAME_LEN]; /* the caller's identity: whose certificate to present */
};

/* fd: the accepted caller connection (e.g. for SO_COOKIE); caller: its peer address. Fill
 * *out and return 0, or return -errno (-ENOENT: not a connection sluice redirected); the
 * connection is then reset and counted as an error. */
typedef int (*sl_tunnel_lookup_fn)(void *arg, int fd, const struct sl_sockaddr *caller,
				   struct sl_tunnel_route *out);

enum sl_tunnel_verdict {
	SL_TUNNEL_ALLOW = 0,
	SL_TUNNEL_DENY = 1,	 /* status 1, result denied */
	SL_TUNNEL_NO_TARGET = 2, /* status 2, result error: not a local backend of that service */
};

struct sl_tunnel_decision {
	enum sl_tunnel_verdict verdict;
	struct sl_sockaddr connect_to; /* ALLOW: where to connect; family 0: the target itself */
	char reason[96];	       /* DENY / NO_TARGET: why, for the event (audit) */
};

/* Inbound: the verified caller identity (from its certificate), the service and target the
 * header names, and the peer agent's address. Fill *out (it starts zeroed: ALLOW to the
 * target). It MUST refuse a target that is not a local backend of that service, or the node
 * relays anywhere a certificate holder asks. */
typedef void (*sl_tunnel_authorize_fn)(void *arg, const char *identity, const char *service,
				       const struct sl_sockaddr *target,
				       const struct sl_sockaddr *peer,
				       struct sl_tunnel_decision *out);

enum sl_tunnel_event_kind {
	SL_TUNNEL_EV_RESULT = 0, /* setup ended: result is final, counters were bumped */
	SL_TUNNEL_EV_CLOSE = 1,	 /* a tunnel whose result was ok is gone: bytes, how it ended */
};

struct sl_tunnel_event {
	enum sl_tunnel_event_kind kind;
	enum sl_tunnel_dir dir;
	enum sl_tunnel_result result;
	const char *service;	   /* "" when not known yet (e.g. a failed inbound handshake) */
	const char *identity;	   /* the caller's identity; "" when not known */
	const char *reason;	   /* why it failed, or how it closed; "" when ok */
	const char *peer_serial;   /* the peer certificate's serial (hex); "" before a handshake */
	struct sl_sockaddr peer;   /* the other agent */
	struct sl_sockaddr target; /* the backend; family 0 when not known */
	uint64_t handshake_ns;	   /* the TLS handshake's duration; 0 if it did not complete */
	uint64_t tx_bytes;	   /* CLOSE: payload bytes sent into the tunnel (TLS side) */
	uint64_t rx_bytes;	   /* CLOSE: payload bytes received from the tunnel */
	int aborted;		   /* CLOSE: ended with a reset rather than two clean closes */
	int ktls_tx, ktls_rx;	   /* the directions whose crypto ran in the kernel (splice) */
};

/* Called in the relay thread; the strings are valid during the call only. Keep it cheap. */
typedef void (*sl_tunnel_event_fn)(void *arg, const struct sl_tunnel_event *ev);

#define SL_TUNNEL_MAX_LISTEN 4

struct sl_tunnel_opts {
	/* Outbound listeners, e.g. 127.0.0.1:15001 and [::1]:15001; port 0 picks one. */
	const struct sl_sockaddr *outbound;
	size_t n_outbound;
	/* Inbound listeners: "[::]:15008" listens on every address of both families (dual
	 * stack); a specific IPv6 address only on that one. */
	const struct sl_sockaddr *inbound;
	size_t n_inbound;
	uint16_t peer_port;		   /* the peers' inbound port (mtls.port) */
	struct sl_mtls *certs;		   /* the engine takes its own reference */
	unsigned int handshake_timeout_ms; /* 0: 5000 */
	unsigned int max_tunnels;	   /* 0: 4096 */
	sl_tunnel_lookup_fn lookup;	   /* needed with outbound listeners */
	sl_tunnel_authorize_fn authorize;  /* needed with inbound listeners */
	sl_tunnel_event_fn on_event;	   /* optional */
	void *arg;			   /* for the three callbacks */
};

/* Counters since sl_tunnel_new, read with atomic loads (any thread). */
struct sl_tunnel_stats {
	uint64_t results[SL_TUNNEL_DIRS][SL_TUNNEL_RESULTS];
	uint64_t active[SL_TUNNEL_DIRS];   /* tunnels that exist now, in setup or relaying */
	uint64_t tx_bytes[SL_TUNNEL_DIRS]; /* payload into TLS, so far */
	uint64_t rx_bytes[SL_TUNNEL_DIRS]; /* payload out of TLS, so far */
	uint64_t ktls_tx[SL_TUNNEL_DIRS];  /* tunnels relayed with kTLS send + splice */
	uint64_t ktls_rx[SL_TUNNEL_DIRS];  /* ... with kTLS receive + splice */
	uint64_t timeouts[SL_TUNNEL_DIRS]; /* setups dropped by handshake_timeout_ms */
	uint64_t resumed[SL_TUNNEL_DIRS];  /* handshakes that resumed a TLS session (a ticket) */
	uint64_t aborted[SL_TUNNEL_DIRS];  /* relays ended by a reset */
	struct sluice_hist handshake[SL_TUNNEL_DIRS]; /* handshake durations, log2 us as in abi.h
							 (sluice_mtls_handshake_seconds) */
};

/* Bind the listeners, take a reference to opts->certs, start the relay thread. NULL with err
 * saying what failed (e.g. "bind [::]:15008: Address already in use"). */
struct sl_tunnel *sl_tunnel_new(const struct sl_tunnel_opts *o, char *err, size_t errlen);

/* Stop the thread, reset every tunnel, close the listeners, drop the certificates. */
void sl_tunnel_free(struct sl_tunnel *t);

/* The address listener i of a direction is bound to (its port when 0 was asked).
 * 0, or -ENOENT. */
int sl_tunnel_listen_addr(const struct sl_tunnel *t, enum sl_tunnel_dir dir, size_t i,
			  struct sl_sockaddr *out);

/* New tunnels use certs (the engine takes a reference and drops the old set's); tunnels that
 * exist keep the contexts they were made with. */
void sl_tunnel_set_certs(struct sl_tunnel *t, struct sl_mtls *certs);

void sl_tunnel_get_stats(const struct sl_tunnel *t, struct sl_tunnel_stats *out);

/* Whether this kernel can do TLS (CONFIG_TLS): 1 yes, 0 no (setsockopt(TCP_ULP, "tls") on a
 * connected loopback socket gives ENOENT), -errno when the probe itself failed. */
int sl_tunnel_ktls_supported(void);

#endif /* SLUICE_TUNNEL_H */
