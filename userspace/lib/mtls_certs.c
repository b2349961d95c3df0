// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Loading and checking mutual-TLS certificates, and the SSL_CTX built from them (mtls_certs.h). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mtls_certs.h"
#include "mtls_sess.h"

#define SUITES	   "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
#define MAX_CHAIN  8 /* intermediates after the leaf in a certificate file */
#define VERIFY_MAX 8 /* chain depth a peer may present */
/* Resumption (mtls_certs.h): how long a session may be resumed, and how many the server keeps */
#define SESS_LIFETIME_S 300
#define SESS_CACHE_MAX	4096
#define SESS_ID_CTX	"sluice-mtls-1"

struct entry {
	struct sl_mtls_status st;
	SSL_CTX *ctx; /* NULL unless st.valid */
};

struct sl_mtls {
	int refs; /* __atomic */
	char td[SL_MTLS_TD_LEN];
	X509_STORE *store; /* the CA bundle */
	size_t n;	   /* identities, then the node */
	struct entry *e;
};

/* What a context's verify callback checks; owned by the SSL_CTX (freed with it), so an SSL
 * outliving its set still finds it. */
struct ctx_info {
	char td[SL_MTLS_TD_LEN];
	enum sl_mtls_kind want;
	struct sl_mtls_sess *sess; /* a client's sessions per peer; NULL on the server */
};

/* The peer an outbound SSL talks to: where its new session goes (ex_data, freed with it). */
struct peer_key {
	size_t len;
	uint8_t key[SL_MTLS_PEER_KEY_LEN];
};

/* ex_data indexes: process-wide, allocated once (OpenSSL hands them out per class). */
static int ctx_idx = -1, ssl_idx = -1, peer_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void ctx_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	struct ctx_info *ci = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ci)
		sl_mtls_sess_free(ci->sess);
	free(ci);
}

static void idx_init(void)
{
	ctx_idx =
	    CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, ctx_info_free);
	ssl_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, ex_free);
	peer_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, ex_free);
}

static const char *kind_word(enum sl_mtls_kind k)
{
	return k == SL_MTLS_NODE ? "node" : "identity";
}

int sl_mtls_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= SLUICE_NAME_LEN ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static int td_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= SL_MTLS_TD_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

/* The last OpenSSL error's reason, and an empty queue afterwards. */
static const char *ossl_why(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void format_utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", (long long)t);
}

/* The serial as `openssl x509 -serial` prints it: each content byte as two upper-case digits. */
static void serial_hex(X509 *cert, char *buf, size_t len)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(cert);
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);
	size_t o = 0;

	buf[0] = 0;
	for (int i = 0; i < n && o + 3 <= len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02X", d[i]);
}

/* The one SAN URI of cert: 0, or -1 with why. */
static int san_uri(X509 *cert, char *uri, size_t len, char *why, size_t whylen)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const ASN1_IA5STRING *u = NULL;
	int nuri = 0, n;

	if (!g) {
		snprintf(why, whylen, "no subjectAltName (want one SPIFFE URI)");
		ERR_clear_error();
		return -1;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(g, i);
		if (gn->type == GEN_URI) {
			u = gn->d.uniformResourceIdentifier;
			nuri++;
		}
	}
	if (nuri != 1) {
		snprintf(why, whylen, "%d SAN URIs, want exactly one", nuri);
		GENERAL_NAMES_free(g);
		return -1;
	}
	n = ASN1_STRING_length(u);
	if (n <= 0 || (size_t)n >= len || memchr(ASN1_STRING_get0_data(u), 0, (size_t)n)) {
		snprintf(why, whylen, "SAN URI is empty, too long or holds a NUL");
		GENERAL_NAMES_free(g);
		return -1;
	}
	memcpy(uri, ASN1_STRING_get0_data(u), (size_t)n);
	uri[n] = 0;
	GENERAL_NAMES_free(g);
	return 0;
}

/* uri = spiffe://<td>/<kind>/<name>: 0 with name, or -1 with why. */
static int uri_name(const char *uri, const char *td, enum sl_mtls_kind kind, char *name,
		    size_t namelen, char *why, size_t whylen)
{
	static const char scheme[] = "spiffe://";
	const char *p, *slash;
	size_t tdlen = strlen(td), klen = strlen(kind_word(kind));

	if (strncmp(uri, scheme, sizeof(scheme) - 1)) {
		snprintf(why, whylen, "SAN URI %s is not a spiffe:// URI", uri);
		return -1;
	}
	p = uri + sizeof(scheme) - 1;
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) != tdlen || strncmp(p, td, tdlen)) {
		snprintf(why, whylen, "SAN URI %s is not of trust domain %s", uri, td);
		return -1;
	}
	p = slash + 1;
	if (strncmp(p, kind_word(kind), klen) || p[klen] != '/') {
		snprintf(why, whylen, "SAN URI %s is not a spiffe://%s/%s/<name> URI", uri, td,
			 kind_word(kind));
		return -1;
	}
	p += klen + 1;
	if (!sl_mtls_name_valid(p) || strlen(p) >= namelen) {
		snprintf(why, whylen, "SAN URI %s: bad %s name", uri, kind_word(kind));
		return -1;
	}
	strcpy(name, p);
	return 0;
}

/* Remember why the handshake refused the peer (sl_mtls_verify_reason). */
static void set_reason(SSL *ssl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(SSL *ssl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	char *s;

	if (!ssl || SSL_get_ex_data(ssl, ssl_idx))
		return; /* keep the first reason: it is the cause */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s = strdup(buf);
	if (s && !SSL_set_ex_data(ssl, ssl_idx, s))
		free(s);
}

const char *sl_mtls_verify_reason(const SSL *ssl)
{
	const char *r = ssl_idx >= 0 ? SSL_get_ex_data(ssl, ssl_idx) : NULL;
	long v = SSL_get_verify_result(ssl);

	if (r)
		return r;
	return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

/* The chain has verified up to here (ok) or not; at depth 0 also check the SAN URI. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct ctx_info *ci;
	char uri[SL_MTLS_URI_LEN], name[SLUICE_NAME_LEN], why[384];

	if (!ssl)
		return 0;
	if (!ok) {
		set_reason(ssl, "peer certificate: %s",
			   X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	ci = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	if (!ci) {
		set_reason(ssl, "no trust domain on this context");
		return 0;
	}
	if (san_uri(X509_STORE_CTX_get_current_cert(xs), uri, sizeof(uri), why, sizeof(why)) ||
	    uri_name(uri, ci->td, ci->want, name, sizeof(name), why, sizeof(why))) {
		set_reason(ssl, "peer certificate: %s", why);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

int sl_mtls_peer_name(SSL *ssl, const char *trust_domain, enum sl_mtls_kind kind, char *name,
		      size_t namelen, char *serial, size_t seriallen, char *err, size_t errlen)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	char uri[SL_MTLS_URI_LEN];
	long v;

	if (!peer) {
		snprintf(err, errlen, "the peer presented no certificate");
		return -EACCES;
	}
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK) {
		snprintf(err, errlen, "peer certificate: %s", X509_verify_cert_error_string(v));
		return -EACCES;
	}
	if (san_uri(peer, uri, sizeof(uri), err, errlen) ||
	    uri_name(uri, trust_domain, kind, name, namelen, err, errlen))
		return -EACCES;
	if (serial && seriallen)
		serial_hex(peer, serial, seriallen);
	return 0;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return 0; /* an encrypted key is an error, never a prompt */
}

/* A loaded certificate file: the leaf, its intermediates and its key. */
struct loaded {
	X509 *leaf;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
};

static void loaded_free(struct loaded *l)
{
	X509_free(l->leaf);
	sk_X509_pop_free(l->chain, X509_free);
	EVP_PKEY_free(l->key);
}

/* Mark st invalid with why; -1. */
static int fail(struct sl_mtls_status *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct sl_mtls_status *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->error, sizeof(st->error), fmt, ap);
	va_end(ap);
	st->valid = 0;
	return -1;
}

static int read_files(struct sl_mtls_status *st, const char *keypath, struct loaded *l)
{
	FILE *f = fopen(st->path, "re");

	if (!f)
		return fail(st, "%s: %s", st->path, strerror(errno));
	l->leaf = PEM_read_X509(f, NULL, no_password, NULL);
	l->chain = sk_X509_new_null();
	for (int i = 0; l->leaf && l->chain && i < MAX_CHAIN; i++) {
		X509 *c = PEM_read_X509(f, NULL, no_password, NULL);
		if (!c)
			break;
		if (!sk_X509_push(l->chain, c)) {
			X509_free(c);
			break;
		}
	}
	ERR_clear_error(); /* the end of the file reads as "no start line" */
	fclose(f);
	if (!l->leaf)
		return fail(st, "%s: no PEM certificate in it", st->path);
	if (!l->chain)
		return fail(st, "%s: out of memory", st->path);
	f = fopen(keypath, "re");
	if (!f)
		return fail(st, "%s: %s", keypath, strerror(errno));
	l->key = PEM_read_PrivateKey(f, NULL, no_password, NULL);
	fclose(f);
	if (!l->key)
		return fail(st, "%s: no unencrypted PEM private key in it (%s)", keypath,
			    ossl_why());
	if (X509_check_private_key(l->leaf, l->key) != 1) {
		ERR_clear_error();
		return fail(st, "%s: the key does not match the certificate %s", keypath, st->path);
	}
	return 0;
}

/* The SAN and the chain (and with it the validity period) of a read certificate. */
static int check_cert(struct sl_mtls *m, struct sl_mtls_status *st, const struct loaded *l)
{
	char uri[SL_MTLS_URI_LEN], why[384], when[32];
	X509_STORE_CTX *xs;
	int r, e;

	st->not_before = asn1_time_unix(X509_get0_notBefore(l->leaf));
	st->not_after = asn1_time_unix(X509_get0_notAfter(l->leaf));
	serial_hex(l->leaf, st->serial, sizeof(st->serial));
	if (san_uri(l->leaf, uri, sizeof(uri), why, sizeof(why)))
		return fail(st, "%s: %s", st->path, why);
	if (strcmp(uri, st->uri))
		return fail(st, "%s: SAN URI is %s, want %s", st->path, uri, st->uri);
	xs = X509_STORE_CTX_new();
	if (!xs || !X509_STORE_CTX_init(xs, m->store, l->leaf, l->chain)) {
		X509_STORE_CTX_free(xs);
		return fail(st, "%s: verify: %s", st->path, ossl_why());
	}
	X509_STORE_CTX_set_purpose(xs,
				   st->is_node ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
	r = X509_verify_cert(xs);
	e = X509_STORE_CTX_get_error(xs);
	X509_STORE_CTX_free(xs);
	ERR_clear_error();
	if (r == 1)
		return 0;
	if (e == X509_V_ERR_CERT_HAS_EXPIRED) {
		format_utc(st->not_after, when, sizeof(when));
		return fail(st, "%s: certificate has expired (not after %s)", st->path, when);
	}
	if (e == X509_V_ERR_CERT_NOT_YET_VALID) {
		format_utc(st->not_before, when, sizeof(when));
		return fail(st, "%s: certificate is not yet valid (not before %s)", st->path, when);
	}
	return fail(st, "%s: does not verify against the CA bundle: %s", st->path,
		    X509_verify_cert_error_string(e));
}

/* A client's new session (a ticket from the server, read after the handshake): keep it for
 * the next tunnel to the same peer. 1: the cache took it. */
static int new_session(SSL *ssl, SSL_SESSION *s)
{
	const struct ctx_info *ci = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	const struct peer_key *pk = SSL_get_ex_data(ssl, peer_idx);

	if (!ci || !ci->sess || !pk || !SSL_SESSION_is_resumable(s))
		return 0;
	return sl_mtls_sess_put(ci->sess, pk->key, pk->len, s);
}

/* TLS 1.3 resumption (mtls_certs.h): the server keeps its sessions in its own cache (stateful
 * tickets: a ticket is a session id, no ticket key to manage), the client its tickets per peer
 * in mtls_sess.c. Both live and die with the context, so with the certificate set. */
static int set_resumption(SSL_CTX *ctx, int server)
{
	SSL_CTX_set_timeout(ctx, SESS_LIFETIME_S);
	if (!server) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
							SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session);
		return SSL_CTX_set_num_tickets(ctx, 0);
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* TLS 1.3: stateful tickets */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, SESS_CACHE_MAX);
	return SSL_CTX_set_num_tickets(ctx, 1) &&
	       SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESS_ID_CTX,
					      sizeof(SESS_ID_CTX) - 1);
}

static void ctx_info_drop(struct ctx_info *ci)
{
	if (ci)
		sl_mtls_sess_free(ci->sess);
	free(ci);
}

/* A TLS 1.3-only context presenting l, verifying peers against m's CA bundle. */
static SSL_CTX *make_ctx(struct sl_mtls *m, struct sl_mtls_status *st, const struct loaded *l)
{
	SSL_CTX *ctx = SSL_CTX_new(st->is_node ? TLS_server_method() : TLS_client_method());
	struct ctx_info *ci = calloc(1, sizeof(*ci));
	int ok = ctx && ci && (st->is_node || (ci->sess = sl_mtls_sess_new()));

	if (ok) {
		snprintf(ci->td, sizeof(ci->td), "%s", m->td);
		/* a client wants a node, the server an identity */
		ci->want = st->is_node ? SL_MTLS_IDENTITY : SL_MTLS_NODE;
		ok = SSL_CTX_set_ex_data(ctx, ctx_idx, ci);
		if (ok)
			ci = NULL;
	}
	ok = ok && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) &&
	     SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
	     SSL_CTX_set_ciphersuites(ctx, SUITES) && SSL_CTX_use_certificate(ctx, l->leaf) &&
	     SSL_CTX_use_PrivateKey(ctx, l->key) && SSL_CTX_check_private_key(ctx) &&
	     SSL_CTX_set1_verify_cert_store(ctx, m->store) && set_resumption(ctx, st->is_node);
	for (int i = 0; ok && i < sk_X509_num(l->chain); i++)
		ok = SSL_CTX_add1_chain_cert(ctx, sk_X509_value(l->chain, i));
	ctx_info_drop(ci);
	if (!ok) {
		fail(st, "%s: TLS context: %s", st->path, ctx ? ossl_why() : "out of memory");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
#if OPENSSL_VERSION_NUMBER < 0x30200000L
	/* One read() per buffer of records, not two per record (header, body). Before 3.2 OpenSSL
	 * never gives a TLS 1.3 receive key to the kernel, so no direction that reads through
	 * OpenSSL ever switches to splice() with records left in OpenSSL's buffer. */
	SSL_CTX_set_read_ahead(ctx, 1);
#endif
	/* RELEASE_BUFFERS: an idle connection keeps no OpenSSL record buffers (~34 KiB) */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | (st->is_node ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), verify_cb);
	SSL_CTX_set_verify_depth(ctx, VERIFY_MAX);
	return ctx;
}

static void load_entry(struct sl_mtls *m, struct entry *e, const char *dir, const char *name,
		       int is_node)
{
	struct sl_mtls_status *st = &e->st;
	struct loaded l = {0};
	char keypath[sizeof(st->path)];
	const char *file = is_node ? "node" : name;

	snprintf(st->name, sizeof(st->name), "%s", name);
	st->is_node = is_node;
	snprintf(st->uri, sizeof(st->uri), "spiffe://%s/%s/%s", m->td,
		 kind_word(is_node ? SL_MTLS_NODE : SL_MTLS_IDENTITY), name);
	if ((size_t)snprintf(st->path, sizeof(st->path), "%s/%s.pem", dir, file) >=
		sizeof(st->path) ||
	    (size_t)snprintf(keypath, sizeof(keypath), "%s/%s.key", dir, file) >= sizeof(keypath)) {
		fail(st, "%s/%s.pem: path too long", dir, file);
		return;
	}
	if (!sl_mtls_name_valid(name)) {
		fail(st, "%s: %s name '%s' is not valid ([a-z0-9][a-z0-9_.-]*)", st->path,
		     is_node ? "node" : "identity", name);
		return;
	}
	if (!read_files(st, keypath, &l) && !check_cert(m, st, &l)) {
		e->ctx = make_ctx(m, st, &l);
		st->valid = e->ctx != NULL;
	}
	loaded_free(&l);
}

static void mtls_free(struct sl_mtls *m)
{
	for (size_t i = 0; i < m->n; i++)
		SSL_CTX_free(m->e[i].ctx);
	free(m->e);
	X509_STORE_free(m->store);
	free(m);
}

struct sl_mtls *sl_mtls_load(const struct sl_mtls_opts *o, char *err, size_t errlen)
{
	struct sl_mtls *m;

	pthread_once(&idx_once, idx_init);
	if (ctx_idx < 0 || ssl_idx < 0 || peer_idx < 0) {
		snprintf(err, errlen, "OpenSSL ex_data index: %s", ossl_why());
		return NULL;
	}
	if (!o->trust_domain || !td_valid(o->trust_domain) || !o->ca || !o->certs || !o->node ||
	    (o->n_identities && !o->identities)) {
		snprintf(err, errlen,
			 "mtls: trust_domain ([a-z0-9.-]+), ca, certs and node are needed");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m)
		m->e = calloc(o->n_identities + 1, sizeof(*m->e));
	if (!m || !m->e) {
		free(m);
		snprintf(err, errlen, "mtls: out of memory");
		return NULL;
	}
	m->refs = 1;
	m->n = o->n_identities + 1;
	snprintf(m->td, sizeof(m->td), "%s", o->trust_domain);
	m->store = X509_STORE_new();
	if (!m->store || !X509_STORE_load_file(m->store, o->ca)) {
		snprintf(err, errlen, "%s: cannot load the CA bundle: %s", o->ca,
			 m->store ? ossl_why() : "out of memory");
		mtls_free(m);
		return NULL;
	}
	for (size_t i = 0; i < o->n_identities; i++)
		load_entry(m, &m->e[i], o->certs, o->identities[i], 0);
	load_entry(m, &m->e[o->n_identities], o->certs, o->node, 1);
	ERR_clear_error();
	return m;
}

struct sl_mtls *sl_mtls_ref(struct sl_mtls *m)
{
	if (m)
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return m;
}

void sl_mtls_unref(struct sl_mtls *m)
{
	if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		mtls_free(m);
}

const char *sl_mtls_trust_domain(const struct sl_mtls *m)
{
	return m->td;
}

size_t sl_mtls_count(const struct sl_mtls *m)
{
	return m->n;
}

const struct sl_mtls_status *sl_mtls_status_at(const struct sl_mtls *m, size_t i)
{
	return i < m->n ? &m->e[i].st : NULL;
}

static const struct entry *find_identity(const struct sl_mtls *m, const char *name)
{
	for (size_t i = 0; i + 1 < m->n; i++)
		if (!strcmp(m->e[i].st.name, name))
			return &m->e[i];
	return NULL;
}

const struct sl_mtls_status *sl_mtls_identity_status(const struct sl_mtls *m, const char *name)
{
	const struct entry *e = find_identity(m, name);

	return e ? &e->st : NULL;
}

const struct sl_mtls_status *sl_mtls_node_status(const struct sl_mtls *m)
{
	return &m->e[m->n - 1].st;
}

SSL_CTX *sl_mtls_client_ctx(const struct sl_mtls *m, const char *identity)
{
	const struct entry *e = find_identity(m, identity);

	return e ? e->ctx : NULL;
}

SSL_CTX *sl_mtls_server_ctx(const struct sl_mtls *m)
{
	return m->e[m->n - 1].ctx;
}

SSL *sl_mtls_client_ssl(const struct sl_mtls *m, const char *identity, const void *peer,
			size_t peerlen)
{
	SSL_CTX *ctx = sl_mtls_client_ctx(m, identity);
	const struct ctx_info *ci = ctx ? SSL_CTX_get_ex_data(ctx, ctx_idx) : NULL;
	struct peer_key *pk = NULL;
	SSL_SESSION *s;
	SSL *ssl;

	if (!ci || peerlen > sizeof(pk->key))
		return NULL;
	ssl = SSL_new(ctx);
	pk = malloc(sizeof(*pk));
	if (!ssl || !pk || !SSL_set_ex_data(ssl, peer_idx, pk)) {
		free(pk);
		SSL_free(ssl);
		return NULL;
	}
	pk->len = peerlen;
	memcpy(pk->key, peer, peerlen);
	s = sl_mtls_sess_take(ci->sess, peer, peerlen);
	if (s && !SSL_set_session(ssl, s))
		ERR_clear_error(); /* then a full handshake */
	SSL_SESSION_free(s);
	return ssl;
}
