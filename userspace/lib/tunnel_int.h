/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Inside the tunnel engine (tunnel.h): shared by tunnel.c (the thread, listeners, lifecycle,
 * counters), tunnel_setup.c (connect, handshake, header, status) and tunnel_relay.c (moving
 * the bytes). Everything here runs in the relay thread, except where tunnel.c says otherwise.
 */
#ifndef SLUICE_TUNNEL_INT_H
#define SLUICE_TUNNEL_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "tunnel.h"

#define TUN_BUF_SIZE	  (64 * 1024) /* per direction, OpenSSL path */
#define TUN_PUMP_ROUNDS	  16	      /* relay rounds per wakeup before others get a turn */
#define TUN_ACCEPT_BURST  64	      /* accepts per listener wakeup */
#define TUN_DEFAULT_HS_MS 5000
#define TUN_DEFAULT_MAX	  4096
#define TUN_SPARE_BUFS	  16 /* idle relay buffers the engine keeps for the next (1 MiB) */

/* An epoll source: epoll_event.data.ptr points at one; fn handles its events. */
struct tun_src {
	void (*fn)(struct tun_src *src, uint32_t events);
	int fd;
};

enum tun_state {
	TS_CONNECT,   /* outbound: TCP connect to the peer agent */
	TS_HANDSHAKE, /* TLS handshake */
	TS_HEADER,    /* outbound: writing the header; inbound: reading it */
	TS_STATUS,    /* outbound: reading the status byte (the caller's bytes flow already) */
	TS_BACKEND,   /* inbound: TCP connect to the backend */
	TS_ANSWER,    /* inbound: writing status 0 */
	TS_RELAY,
	TS_DEAD, /* closed; freed at the end of the loop round */
};

/*
 * One direction of a relay. up: plain -> TLS; down: TLS -> plain. A *_block field holds the
 * epoll bit (EPOLLIN/EPOLLOUT) that the last attempt of that operation waits for on its fd;
 * 0 means "try". The fds are edge-triggered: an event clears the bits it carries, and an
 * operation is tried again only then (or when the other end of its own flow made room).
 */
struct tun_flow {
	char *buf; /* OpenSSL path: [off, len) waits for the destination */
	size_t off, len;
	int pipe[2]; /* splice path: kTLS in this direction */
	size_t in_pipe;
	int splice;
	int ctl; /* down + splice: a non-data record is next, read it with SSL_read */
	uint32_t src_block, dst_block;
	int eof;  /* the source ended cleanly (FIN, close_notify) */
	int done; /* ... and that end was passed on */
	uint64_t bytes;
};

struct tun;

struct tun_end {
	struct tun_src src;
	struct tun *tun;
};

struct tun {
	struct sl_tunnel *t;
	enum sl_tunnel_dir dir;
	enum tun_state state;
	struct tun_end plain; /* the caller (outbound) or the backend (inbound); fd -1: none yet */
	struct tun_end tls;   /* the TCP connection that carries TLS */
	SSL *ssl;
	struct sl_mtls *certs; /* the set ssl's context came from */
	struct tun_flow up, down;
	uint32_t tls_block, plain_block; /* setup steps' waits, as in tun_flow */
	struct sl_tunnel_hdr hdr;
	size_t hdr_off;
	uint64_t start_ns, hs_start_ns, handshake_ns, deadline_ns;
	struct sl_sockaddr peer, target;
	struct sl_sockaddr backend; /* inbound: where the plain side connects (authorize's pick) */
	char service[SLUICE_NAME_LEN];
	char identity[SLUICE_NAME_LEN];
	char peer_serial[SL_MTLS_SERIAL_LEN];
	int result_done;
	enum sl_tunnel_result result;
	struct tun *next, *prev;   /* every tunnel */
	struct tun *snext, *sprev; /* in setup, oldest (earliest deadline) first */
	struct tun *rnext;	   /* run queue / dead list */
	int on_runq, in_setup;
};

struct tun_listener {
	struct tun_src src;
	struct sl_tunnel *t;
	enum sl_tunnel_dir dir;
	struct sl_sockaddr addr;
	uint64_t paused_until_ns; /* out of fds: accept nothing until then */
};

struct sl_tunnel {
	struct sl_tunnel_opts o; /* listener arrays not kept */
	int ep;
	struct tun_src stop; /* eventfd */
	pthread_t thread;
	int started, stopping;
	struct tun_listener lis[SL_TUNNEL_DIRS][SL_TUNNEL_MAX_LISTEN];
	size_t n_lis[SL_TUNNEL_DIRS];
	pthread_mutex_t certs_lock; /* guards certs: swapped by the agent, read at accept */
	struct sl_mtls *certs;
	struct tun *all;
	struct tun *setup_head, *setup_tail;
	struct tun *runq, *dead;
	size_t n_tunnels;
	char *spare[TUN_SPARE_BUFS]; /* relay buffers no flow uses: malloc/free of 64 KiB per
					burst cost more than the copy */
	size_t n_spare;
	struct sl_tunnel_stats st; /* __atomic */
};

/* tunnel.c */
struct tun *tun_new(struct sl_tunnel *t, enum sl_tunnel_dir dir); /* linked, in setup */
struct sl_mtls *tun_certs_get(struct sl_tunnel *t);		  /* a reference */
void tun_close_fd(int *fd, int reset);				  /* reset: SO_LINGER {1, 0} */
uint64_t tun_now_ns(void);
void tun_count(uint64_t *counter, uint64_t n);
void tun_result(struct tun *u, enum sl_tunnel_result r, const char *reason);
void tun_setup_done(struct tun *u);
void tun_runq_add(struct tun *u);
void tun_abort(struct tun *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tun_fail(struct tun *u, enum sl_tunnel_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tun_finish(struct tun *u);
void tun_kill(struct tun *u, int reset_plain, int reset_tls); /* close now, free later */
void tun_handshake_done(struct tun *u);			      /* time it */
int tun_add_end(struct tun *u, struct tun_end *e, int fd);
const char *tun_ssl_why(SSL *ssl, int ret, int err);

/* tunnel_setup.c */
void tun_accept_outbound(struct sl_tunnel *t, int fd, const struct sl_sockaddr *caller);
void tun_accept_inbound(struct sl_tunnel *t, int fd, const struct sl_sockaddr *peer);
void tun_sockaddr_to(const struct sl_sockaddr *a, struct sockaddr_storage *ss, socklen_t *len);
void tun_sockaddr_from(const struct sockaddr_storage *ss, struct sl_sockaddr *a);
void tun_step(struct tun *u);
/* Outbound before the status, after a failure: what the peer said before it went, still
 * unread (an alert: it refused our certificate; a status byte): the result and why, or -1. */
int tun_peer_verdict(struct tun *u, char *why, size_t len);
void tun_setup_refuse(struct tun *u, enum sl_tunnel_status st, enum sl_tunnel_result r,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* tunnel_relay.c */
int tun_relay_start(struct tun *u); /* after the handshake: pick splice or buffers per flow */
void tun_relay_up(struct tun *u, int *progress);
void tun_relay_pump(struct tun *u);
void tun_relay_free(struct tun *u);

#endif /* SLUICE_TUNNEL_INT_H */
