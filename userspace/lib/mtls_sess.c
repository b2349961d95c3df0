// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A client context's TLS 1.3 sessions, per peer, for resumption (mtls_sess.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "mtls_sess.h"

struct peer {
	uint8_t key[SL_MTLS_PEER_KEY_LEN];
	size_t len;
	SSL_SESSION *s[SL_MTLS_SESS_PER_PEER]; /* oldest first */
	size_t n;
	uint64_t used; /* the cache's clock at the last take or put */
};

struct sl_mtls_sess {
	pthread_mutex_t lock;
	struct peer *p;
	size_t n, cap;
	uint64_t clock;
};

struct sl_mtls_sess *sl_mtls_sess_new(void)
{
	struct sl_mtls_sess *c = calloc(1, sizeof(*c));

	if (c && pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return NULL;
	}
	return c;
}

static void peer_clear(struct peer *p)
{
	for (size_t i = 0; i < p->n; i++)
		SSL_SESSION_free(p->s[i]);
	p->n = 0;
}

void sl_mtls_sess_free(struct sl_mtls_sess *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		peer_clear(&c->p[i]);
	free(c->p);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct peer *find(struct sl_mtls_sess *c, const void *key, size_t len)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->p[i].len == len && !memcmp(c->p[i].key, key, len))
			return &c->p[i];
	return NULL;
}

/* A slot for a new peer: a new one, or the least recently used one emptied. */
static struct peer *slot(struct sl_mtls_sess *c)
{
	struct peer *lru;

	if (c->n < SL_MTLS_SESS_PEERS && !SL_ENSURE(&c->p, &c->cap, c->n + 1))
		return &c->p[c->n++];
	if (!c->n)
		return NULL;
	lru = &c->p[0];
	for (size_t i = 1; i < c->n; i++)
		if (c->p[i].used < lru->used)
			lru = &c->p[i];
	peer_clear(lru);
	return lru;
}

SSL_SESSION *sl_mtls_sess_take(struct sl_mtls_sess *c, const void *key, size_t len)
{
	SSL_SESSION *s = NULL;
	struct peer *p;

	if (!c || len > SL_MTLS_PEER_KEY_LEN)
		return NULL;
	pthread_mutex_lock(&c->lock);
	p = find(c, key, len);
	if (p && p->n) {
		s = p->s[--p->n]; /* the newest */
		p->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->lock);
	return s;
}

int sl_mtls_sess_put(struct sl_mtls_sess *c, const void *key, size_t len, SSL_SESSION *s)
{
	struct peer *p;

	if (!c || !s || len > SL_MTLS_PEER_KEY_LEN)
		return 0;
	pthread_mutex_lock(&c->lock);
	p = find(c, key, len);
	if (!p) {
		p = slot(c);
		if (p) {
			memcpy(p->key, key, len);
			p->len = len;
		}
	}
	if (p) {
		if (p->n == SL_MTLS_SESS_PER_PEER) { /* drop the oldest */
			SSL_SESSION_free(p->s[0]);
			memmove(p->s, p->s + 1, (p->n - 1) * sizeof(p->s[0]));
			p->n--;
		}
		p->s[p->n++] = s;
		p->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->lock);
	return p != NULL;
}
