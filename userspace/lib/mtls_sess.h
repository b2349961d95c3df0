/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TLS 1.3 sessions a client context of mtls_certs.c keeps for resumption: per peer (a key
 * of up to SL_MTLS_PEER_KEY_LEN bytes, e.g. the peer's sockaddr), the last few tickets the
 * peer gave. A tunnel takes one (each ticket is used once: the server's session cache drops
 * it when used), and the handshake's new ticket is put back. The cache belongs to one
 * SSL_CTX, so to one certificate set: a reload makes new contexts with empty caches, and a
 * rotated certificate is presented from the next tunnel on. Thread-safe (a mutex).
 */
#ifndef SLUICE_MTLS_SESS_H
#define SLUICE_MTLS_SESS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define SL_MTLS_PEER_KEY_LEN  32
#define SL_MTLS_SESS_PER_PEER 8	  /* tickets kept per peer: about the tunnels set up at once */
#define SL_MTLS_SESS_PEERS    256 /* peers remembered; the least recently used goes first */

struct sl_mtls_sess;

struct sl_mtls_sess *sl_mtls_sess_new(void);	/* NULL: no memory */
void sl_mtls_sess_free(struct sl_mtls_sess *c); /* frees the sessions it holds; NULL is fine */

/* A session for the peer, now the caller's (SSL_SESSION_free it), or NULL when none is kept. */
SSL_SESSION *sl_mtls_sess_take(struct sl_mtls_sess *c, const void *key, size_t len);

/* Keep s (a resumable session from the peer): 1 when the cache took the caller's reference,
 * 0 when not (len too long, no memory): the caller keeps it. */
int sl_mtls_sess_put(struct sl_mtls_sess *c, const void *key, size_t len, SSL_SESSION *s);

#endif /* SLUICE_MTLS_SESS_H */
