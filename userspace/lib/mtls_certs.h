/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The certificates of mutual TLS between nodes (the mtls: block of sluice.yaml): the CA bundle
 * that peers must chain to, one certificate per local identity (SAN URI
 * spiffe://<trust_domain>/identity/<name>) and one for the node
 * (spiffe://<trust_domain>/node/<node>), each checked when loaded, and the OpenSSL contexts
 * built from them: a client SSL_CTX per identity, one server SSL_CTX for the node.
 *
 * A loaded set never changes. Reloading is loading a new set and swapping the pointer; the
 * set is reference counted (atomically: the relay thread holds references too), and an SSL
 * made from one of its contexts keeps that context alive on its own (SSL_CTX are refcounted),
 * so held connections survive a reload and the old set is freed with its last user.
 *
 * Both kinds of context speak TLS 1.3 only, with the AES-GCM suites only (the ones the kernel's
 * TLS offers: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384), ask OpenSSL for kTLS
 * (SSL_OP_ENABLE_KTLS). Each verifies its peer's chain against the CA bundle, then the peer's
 * SAN URI during the handshake: a client wants a node of the same trust domain, the server an
 * identity of the same trust domain, so a wrong peer fails the handshake itself, with a TLS
 * alert.
 *
 * Resumption (TLS 1.3 PSK with a fresh ECDHE, psk_dhe_ke). A full handshake costs each side a
 * signature, two ECDSA verifications and the decoding of the peer's certificates; a resumed
 * one none of them. The server context keeps the sessions it made in its own cache (stateful
 * tickets: the ticket is a session id, single use, 300 s; there is no ticket key to leak or
 * rotate) and sends one ticket per handshake, right after it, before any payload (the client
 * reads it with the status byte, before a kTLS receive key could be installed). A client
 * context keeps the tickets per peer (mtls_sess.h) and sl_mtls_client_ssl() offers one. A
 * session is only ever resumed with the context that made it: the same CA bundle, trust
 * domain, certificate and identity. It carries the peer certificate that was verified when it
 * was made, so sl_mtls_peer_name() names the same peer on a resumed connection, and the policy
 * is applied to it as to any other. A reload makes new contexts with empty caches: after a
 * certificate rotates, the next tunnel makes a full handshake with the new certificate.
 */
#ifndef SLUICE_MTLS_CERTS_H
#define SLUICE_MTLS_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <sluice/abi.h>

/* Longest trust domain (a DNS-like name) and SAN URI sluice accepts, with their NULs. */
#define SL_MTLS_TD_LEN 256
#define SL_MTLS_URI_LEN                                                                            \
	(sizeof("spiffe://") - 1 + SL_MTLS_TD_LEN + sizeof("/identity/") - 1 + SLUICE_NAME_LEN)
/* Serial numbers as `openssl x509 -serial` prints them: upper-case hex, 20 bytes at most. */
#define SL_MTLS_SERIAL_LEN 48

struct sl_mtls_opts {
	const char *trust_domain; /* mtls.trust_domain */
	const char *ca;		  /* mtls.ca: PEM file of the roots peers must chain to */
	const char *certs; /* mtls.certs: the directory of <name>.pem/.key and node.pem/.key */
	const char *node;  /* this node's name (agent.node, default the hostname) */
	const char *const *identities; /* the local identities that want a certificate */
	size_t n_identities;
};

/* One certificate's state, for logs and `sluicectl status`. */
struct sl_mtls_status {
	char name[SLUICE_NAME_LEN]; /* the identity, or the node's name for the node entry */
	int is_node;
	int valid;		   /* usable: every check passed */
	char uri[SL_MTLS_URI_LEN]; /* the SAN URI it must carry */
	char path[256];		   /* its certificate file */
	int64_t not_before;	   /* UNIX seconds; 0 when the certificate could not be read */
	int64_t not_after;
	char serial[SL_MTLS_SERIAL_LEN]; /* "" when the certificate could not be read */
	/* "" when valid; else "<file>: <cause>", e.g. "/etc/sluice/mtls/frontend.pem: SAN URI is
	 * spiffe://x/identity/batch, want spiffe://sluice.test/identity/frontend" */
	char error[1024];
};

struct sl_mtls;

/*
 * Load the CA bundle and the certificates of the node and of each identity in o. A missing or
 * invalid certificate fails only its own entry (valid 0, error set): the caller decides what
 * to do without it. NULL only when the set cannot exist at all (a bad option, an unreadable or
 * empty CA bundle, no memory), with err saying why. The result holds one reference.
 *
 * Checks per certificate: the PEM file holds a certificate (then optionally intermediates),
 * the key file a private key that matches it, the SAN holds exactly one URI and it is the
 * wanted one, and the chain verifies against the CA bundle now (so also not expired, not yet
 * valid).
 */
struct sl_mtls *sl_mtls_load(const struct sl_mtls_opts *o, char *err, size_t errlen);

/* Take and drop a reference; thread-safe. unref of NULL does nothing. */
struct sl_mtls *sl_mtls_ref(struct sl_mtls *m);
void sl_mtls_unref(struct sl_mtls *m);

const char *sl_mtls_trust_domain(const struct sl_mtls *m);

/* The entries: the identities in the order given to sl_mtls_load, then the node. */
size_t sl_mtls_count(const struct sl_mtls *m);
const struct sl_mtls_status *sl_mtls_status_at(const struct sl_mtls *m, size_t i);
/* The entry of an identity (NULL if it was not asked for), and the node's. */
const struct sl_mtls_status *sl_mtls_identity_status(const struct sl_mtls *m, const char *name);
const struct sl_mtls_status *sl_mtls_node_status(const struct sl_mtls *m);

/* The client context of an identity, presenting its certificate; the server context,
 * presenting the node's. Borrowed from m (SSL_new() takes its own reference); NULL when that
 * certificate is not valid or the identity was not asked for. */
SSL_CTX *sl_mtls_client_ctx(const struct sl_mtls *m, const char *identity);
SSL_CTX *sl_mtls_server_ctx(const struct sl_mtls *m);

/* A new client SSL of an identity for a tunnel to peer (a key naming it, at most 32 bytes: its
 * sockaddr), offering a ticket from an earlier tunnel to that peer when one is kept; the
 * ticket the peer sends afterwards is kept for the next. SSL_session_reused() says whether it
 * resumed. NULL when the identity has no valid certificate, peerlen is too long, or no memory. */
SSL *sl_mtls_client_ssl(const struct sl_mtls *m, const char *identity, const void *peer,
			size_t peerlen);

enum sl_mtls_kind {
	SL_MTLS_IDENTITY = 0, /* spiffe://<td>/identity/<name> */
	SL_MTLS_NODE = 1,     /* spiffe://<td>/node/<name> */
};

/*
 * The name in a peer certificate, after a completed handshake: the certificate must be there,
 * have verified (SSL_get_verify_result), and carry exactly one SAN URI of the form
 * spiffe://<trust_domain>/<kind>/<name> with a valid name. 0 with name filled in (and serial,
 * when not NULL, the certificate's serial), or -EACCES with err saying why (another trust
 * domain, a node where an identity is wanted, no certificate, ...).
 */
int sl_mtls_peer_name(SSL *ssl, const char *trust_domain, enum sl_mtls_kind kind, char *name,
		      size_t namelen, char *serial, size_t seriallen, char *err, size_t errlen);

/* Why the peer's certificate was refused during the handshake, or NULL if it was not: the
 * SAN check's reason, else the chain verification error. Valid while ssl lives. */
const char *sl_mtls_verify_reason(const SSL *ssl);

/* Whether s is a valid identity, node or service name: [a-z0-9][a-z0-9_.-]*, shorter than
 * SLUICE_NAME_LEN. */
int sl_mtls_name_valid(const char *s);

#endif /* SLUICE_MTLS_CERTS_H */
