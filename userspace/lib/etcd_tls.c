// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The etcd client's TLS: at open, the options are checked against the endpoints and the files
 * are read once (OpenSSL), so that a missing file, a key that does not match its certificate or
 * an encrypted key is an error of the config and not a retry loop; on each transfer, curl gets
 * the paths, with the server's certificate and host name verified and TLS 1.2 at least. curl
 * reads the files itself for each new connection, so renewed files are picked up.
 *
 * No error message holds anything read from a file: paths, and OpenSSL's reason strings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "etcd_int.h"

/* OpenSSL's reason for the last error of this thread, then the queue emptied. */
static const char *ossl_why(void)
{
	unsigned long code = ERR_peek_last_error();
	const char *r = code ? ERR_reason_error_string(code) : NULL;

	ERR_clear_error();
	return r ? r : "not PEM";
}

/* A passphrase prompt must never happen (the agent has no terminal): an encrypted key fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static FILE *open_pem(const char *what, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "re");

	if (!f)
		snprintf(err, err_len, "etcd %s %s: %s", what, path, strerror(errno));
	return f;
}

/* At least one certificate in the CA file. 0, or -1 with err. */
static int check_ca(const char *path, char *err, size_t err_len)
{
	FILE *f = open_pem("ca", path, err, err_len);
	X509 *x;
	int n = 0;

	if (!f)
		return -1;
	while ((x = PEM_read_X509(f, NULL, no_passphrase, NULL))) {
		X509_free(x);
		n++;
	}
	ERR_clear_error(); /* the end of the file is an error to PEM_read */
	fclose(f);
	if (!n) {
		snprintf(err, err_len, "etcd ca %s: no PEM certificate in it", path);
		return -1;
	}
	return 0;
}

/* The certificate (the first of the file) and the key, and that they belong together. */
static int check_pair(const char *cert, const char *key, char *err, size_t err_len)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	FILE *f;
	int r = -1;

	f = open_pem("cert", cert, err, err_len);
	if (!f)
		return -1;
	x = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!x) {
		snprintf(err, err_len, "etcd cert %s: no PEM certificate in it (%s)", cert,
			 ossl_why());
		return -1;
	}
	f = open_pem("key", key, err, err_len);
	if (!f)
		goto out;
	pk = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!pk) {
		snprintf(err, err_len, "etcd key %s: not an unencrypted PEM private key (%s)", key,
			 ossl_why());
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		snprintf(err, err_len, "etcd key %s does not match the certificate in %s", key,
			 cert);
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(pk); /* wipes the key's private parts */
	X509_free(x);
	return r;
}

static int set_path(char **dst, const char *src)
{
	if (!src || !*src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

int et_tls_open(struct sl_etcd *e, const struct sl_etcd_opts *o, char *err, size_t err_len)
{
	if (!o)
		return 0;
	if (set_path(&e->ca, o->ca) || set_path(&e->cert, o->cert) || set_path(&e->key, o->key)) {
		snprintf(err, err_len, "etcd: %s", strerror(ENOMEM));
		return -1;
	}
	if (!e->cert != !e->key) {
		snprintf(err, err_len, "etcd: %s given without %s", e->cert ? "cert" : "key",
			 e->cert ? "key" : "cert");
		return -1;
	}
	if (e->ca && check_ca(e->ca, err, err_len))
		return -1;
	if (e->cert && check_pair(e->cert, e->key, err, err_len))
		return -1;
	return 0;
}

int et_tls_setopts(const struct sl_etcd *e, CURL *h)
{
	/* Verification is curl's default; set anyway, so that nothing can turn it off. */
	if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, e->https_only ? "https" : "http,https") ||
	    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L))
		return -1;
	if (e->ca && curl_easy_setopt(h, CURLOPT_CAINFO, e->ca))
		return -1;
	if (e->cert && (curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert) ||
			curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM") ||
			curl_easy_setopt(h, CURLOPT_SSLKEY, e->key) ||
			curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM")))
		return -1;
	return 0;
}
