// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The merge of the config file and the registry into the effective config (registry.h). Every
 * rule between services is checked through a hash index, never by a scan of what was merged
 * before. The indexes hold only what the registry's entries can be checked against: the
 * backends of a service once a registration names it, and who has an address when a
 * registration (or, with registry services, any entry) uses it. One registration among 10 000
 * file services costs their clone, not an index of their 100 000 backends.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hidx.h"
#include "mem.h"
#include "registry_int.h"
#include "services.h"

/* A backend of service 'svc' (an index of out->services). */
struct be_key {
	size_t svc;
	struct sl_sockaddr addr;
};

/* Who has an address:port of a protocol: the key of sluice_policy_backends. */
struct users_key {
	struct sl_sockaddr addr;
	uint8_t proto;
	struct sl_be_users users;
};

/* A growable set of fixed-size elements with a hash index over them. */
struct ktab {
	char *v; /* n elements of 'size' bytes, room for cap */
	size_t size, n, cap;
	struct sl_hidx h; /* over v; sized for cap */
	uint64_t (*hash)(const void *elem);
	int (*eq)(const void *elem, const void *key);
};

struct merge {
	const struct sl_config *file;
	struct sl_config *out;	    /* out->services never moves once the merge began */
	size_t *caps;		    /* backends allocated per service of out */
	uint8_t *bes_on;	    /* per service of out: its backends are in 'bes' */
	size_t n_backends;	    /* of out, in all */
	struct sl_reg_skips *skips; /* NULL: etcd entries are left out unlisted */
	struct sl_svc_idx svcs;	    /* out's services by name and frontend */
	struct ktab bes;	    /* struct be_key, of the services in bes_on */
	struct ktab users;	    /* struct users_key, of the addresses in 'addrs' (or all) */
	struct ktab addrs;	    /* struct sl_sockaddr: the registrations' addresses */
	int all_users;		    /* 'users' has every address (there are registry services) */
};

static uint64_t addr_hash(const void *elem)
{
	return sl_hash_sockaddr(SL_HASH_INIT, elem);
}

static int addr_eq(const void *elem, const void *key)
{
	return sl_sockaddr_equal(elem, key);
}

static uint64_t be_hash(const void *elem)
{
	const struct be_key *k = elem;

	return sl_hash_sockaddr(sl_hash_bytes(SL_HASH_INIT, &k->svc, sizeof(k->svc)), &k->addr);
}

static int be_eq(const void *elem, const void *key)
{
	const struct be_key *x = elem, *y = key;

	return x->svc == y->svc && sl_sockaddr_equal(&x->addr, &y->addr);
}

static uint64_t users_hash(const void *elem)
{
	const struct users_key *k = elem;

	return sl_hash_sockaddr(sl_hash_bytes(SL_HASH_INIT, &k->proto, sizeof(k->proto)), &k->addr);
}

static int users_eq(const void *elem, const void *key)
{
	const struct users_key *x = elem, *y = key;

	return x->proto == y->proto && sl_sockaddr_equal(&x->addr, &y->addr);
}

static void ktab_init(struct ktab *t, size_t size, uint64_t (*hash)(const void *),
		      int (*eq)(const void *, const void *))
{
	memset(t, 0, sizeof(*t));
	t->size = size;
	t->hash = hash;
	t->eq = eq;
}

static void ktab_free(struct ktab *t)
{
	free(t->v);
	sl_hidx_free(&t->h);
}

struct ktab_probe {
	const struct ktab *t;
	const void *key;
};

static int ktab_pos_eq(const void *ctx, size_t pos)
{
	const struct ktab_probe *p = ctx;

	return p->t->eq(p->t->v + pos * p->t->size, p->key);
}

/* The element equal to key, or NULL. */
static void *ktab_find(const struct ktab *t, const void *key)
{
	struct ktab_probe p = {.t = t, .key = key};
	long pos = t->n ? sl_hidx_find(&t->h, t->hash(key), ktab_pos_eq, &p) : -1;

	return pos < 0 ? NULL : t->v + (size_t)pos * t->size;
}

/* A copy of elem (its key not there yet) added; NULL when out of memory. */
static void *ktab_add(struct ktab *t, const void *elem)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct sl_hidx h;
		char *v = realloc(t->v, cap * t->size);

		if (!v)
			return NULL;
		t->v = v;
		if (sl_hidx_init(&h, cap))
			return NULL;
		sl_hidx_free(&t->h);
		t->h = h;
		t->cap = cap;
		for (size_t i = 0; i < t->n; i++)
			sl_hidx_add(&t->h, t->hash(t->v + i * t->size), i);
	}
	memcpy(t->v + t->n * t->size, elem, t->size);
	sl_hidx_add(&t->h, t->hash(elem), t->n);
	return t->v + t->n++ * t->size;
}

/* elem's key in t: the element there, or a copy of elem added; NULL when out of memory. */
static void *ktab_put(struct ktab *t, const void *elem)
{
	void *found = ktab_find(t, elem);

	return found ? found : ktab_add(t, elem);
}

static struct sl_service_cfg *by_name(struct merge *m, const char *name)
{
	return (struct sl_service_cfg *)sl_svc_idx_name(&m->svcs, name);
}

/* Who has addr of proto; a new, empty entry when 'add'. NULL when there is none (or, with
 * 'add', when out of memory). */
static struct users_key *users_of(struct merge *m, const struct sl_sockaddr *addr, uint8_t proto,
				  int add)
{
	struct users_key probe = {.addr = *addr, .proto = proto}, *k = ktab_find(&m->users, &probe);

	if (k || !add)
		return k;
	sl_be_users_init(&probe.users);
	return ktab_add(&m->users, &probe);
}

/* Backend addr of service idx into the indexes that want it. 0 or -ENOMEM. */
static int index_backend(struct merge *m, size_t idx, const struct sl_sockaddr *addr, int from_file)
{
	const struct sl_service_cfg *svc = &m->out->services[idx];
	struct be_key k = {.svc = idx, .addr = *addr};
	struct users_key *u;

	/* A duplicate is refused before it gets here; the file has none. */
	if (m->bes_on[idx] && !ktab_put(&m->bes, &k))
		return -ENOMEM;
	if (!m->all_users && !ktab_find(&m->addrs, addr))
		return 0; /* no registration can be checked against it */
	u = users_of(m, addr, svc->proto, 1);
	if (!u)
		return -ENOMEM;
	sl_be_users_add(&u->users, (int32_t)idx, svc->policy.on, from_file);
	return 0;
}

/* Service idx of out, with its backends, into the indexes. 0 or -ENOMEM. */
static int index_service(struct merge *m, size_t idx, int from_file)
{
	struct sl_service_cfg *svc = &m->out->services[idx];
	int err = 0;

	sl_svc_idx_add(&m->svcs, idx);
	for (size_t j = 0; j < svc->n_backends && !err; j++)
		err = index_backend(m, idx, &svc->backends[j].addr, from_file);
	return err;
}

/* The backends of service idx into 'bes', once: a registration to it is about to be
 * checked. 0 or -ENOMEM. */
static int index_bes(struct merge *m, size_t idx)
{
	const struct sl_service_cfg *svc = &m->out->services[idx];

	if (m->bes_on[idx])
		return 0;
	for (size_t j = 0; j < svc->n_backends; j++) {
		struct be_key k = {.svc = idx, .addr = svc->backends[j].addr};

		if (!ktab_put(&m->bes, &k))
			return -ENOMEM;
	}
	m->bes_on[idx] = 1;
	return 0;
}

/* addr, a backend of service idx (svc), takes over no policy entry. 0, or 1 with *p. */
static int check_users(struct merge *m, size_t idx, const struct sl_service_cfg *svc,
		       const struct sl_sockaddr *addr, struct sl_problem *p)
{
	const struct users_key *u = users_of(m, addr, svc->proto, 0);
	int32_t other;

	if (!u)
		return 0;
	other = sl_be_users_clash(&u->users, (int32_t)idx, svc->policy.on, 0);
	if (other < 0)
		return 0;
	sl_be_users_problem(svc, addr, &m->out->services[other], p);
	return 1;
}

/* svc, parsed into slot idx of out, may join it. 0, or 1 with *p. */
static int check_service(struct merge *m, size_t idx, const struct sl_service_cfg *svc,
			 uint8_t origin, struct sl_problem *p)
{
	const struct sl_config *out = m->out;
	const struct sl_service_cfg *other = sl_svc_idx_frontend_user(&m->svcs, svc);

	if (other) {
		sl_services_check_frontend(other, 1, svc, SL_SVC_REGISTRY, p);
		return 1;
	}
	for (size_t j = 0; j < svc->n_backends; j++)
		if (check_users(m, idx, svc, &svc->backends[j].addr, p))
			return 1;
	/* An etcd entry that would overflow the maps is left out alone; the local entries are
	 * counted whole at the end, as they always were. */
	if (origin == SL_REG_ETCD &&
	    sl_services_check_limits(&out->agent.limits, out->n_services + 1,
				     m->n_backends + svc->n_backends, svc->name, p))
		return 1;
	return 0;
}

/* A service of the registry. 0 (merged), 1 (refused: *p), -ENOMEM. */
static int add_service(struct merge *m, const struct sl_reg_service *rs, struct sl_problem *p)
{
	struct sl_config *out = m->out;
	size_t idx = out->n_services;
	struct sl_service_cfg *svc = &out->services[idx], *other = by_name(m, rs->name);
	struct sl_problems d = {0};

	if (other) {
		sl_services_check_name(other, 1, rs->name, SL_SVC_REGISTRY, p);
		return 1;
	}
	if (sl_config_parse_service("registry", rs->json, strlen(rs->json), m->file, svc, &d)) {
		sl_problem_http(p, 400, d.n ? d.list[0].field : "", "service '%s': %s", rs->name,
				d.n ? d.list[0].msg : "invalid");
		sl_problems_free(&d);
		return 1;
	}
	if (check_service(m, idx, svc, rs->origin, p)) {
		free(svc->backends);
		memset(svc, 0, sizeof(*svc));
		return 1;
	}
	m->caps[idx] = svc->n_backends;
	m->n_backends += svc->n_backends;
	out->n_services++;
	return index_service(m, idx, 0);
}

/* b, into service svc (index idx), checked as a backend of the file's would be. 0, or 1
 * with *p. */
static int check_registration(struct merge *m, size_t idx, const struct sl_reg_backend *b,
			      struct sl_problem *p)
{
	const struct sl_config *out = m->out;
	const struct sl_service_cfg *svc = &out->services[idx];
	struct be_key probe = {.svc = idx, .addr = b->addr};
	char hp[SL_HOSTPORT_LEN];
	uint8_t id;

	if (sl_service_check_address(svc, &b->addr, 1, SL_SVC_REGISTRY, p))
		return 1;
	if (ktab_find(&m->bes, &probe)) {
		sl_service_dup_problem(svc, &b->addr, SL_SVC_REGISTRY, p);
		return 1;
	}
	if (sl_service_check_room(svc->name, svc->n_backends + 1, SL_SVC_REGISTRY, p))
		return 1;
	if (b->identity[0]) {
		id = sl_identity_id(out->identities, out->n_identities, b->identity);
		if (!id) {
			sl_format_hostport(&b->addr, hp, sizeof(hp));
			sl_problem_http(
			    p, 400, "identity",
			    "identity '%s' of backend %s is not defined in 'identities'",
			    b->identity, hp);
			return 1;
		}
		if (sl_identity_check(out->identities, out->n_identities, id, &b->addr, p))
			return 1;
	}
	if (check_users(m, idx, svc, &b->addr, p))
		return 1;
	if (b->origin == SL_REG_ETCD &&
	    sl_services_check_limits(&out->agent.limits, out->n_services, m->n_backends + 1,
				     svc->name, p))
		return 1;
	return 0;
}

/* svc's backends its own (they were the file's, sl_config_borrow), with room for one more.
 * 0 or -ENOMEM. */
static int own_backends(struct sl_service_cfg *svc, size_t *cap)
{
	struct sl_backend_cfg *v;

	if (!svc->backends_borrowed)
		return 0;
	v = malloc((svc->n_backends + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (svc->n_backends)
		memcpy(v, svc->backends, svc->n_backends * sizeof(*v));
	svc->backends = v;
	svc->backends_borrowed = 0;
	*cap = svc->n_backends + 1;
	return 0;
}

/* A registration. 0 (merged), 1 (refused: *p), -ENOMEM. */
static int add_registration(struct merge *m, const struct sl_reg_backend *b, struct sl_problem *p)
{
	const struct sl_config *out = m->out;
	struct sl_service_cfg *svc = by_name(m, b->service);
	struct sl_backend_cfg *be;
	char hp[SL_HOSTPORT_LEN];
	size_t idx;

	if (!svc) {
		sl_format_hostport(&b->addr, hp, sizeof(hp));
		sl_problem_http(p, 404, "service", "no service '%s' for backend %s", b->service,
				hp);
		return 1;
	}
	idx = (size_t)(svc - out->services);
	if (index_bes(m, idx))
		return -ENOMEM;
	if (check_registration(m, idx, b, p))
		return 1;
	if (own_backends(svc, &m->caps[idx]) ||
	    SL_ENSURE(&svc->backends, &m->caps[idx], svc->n_backends + 1))
		return -ENOMEM;
	be = &svc->backends[svc->n_backends++];
	memset(be, 0, sizeof(*be));
	be->addr = b->addr;
	be->weight = b->weight;
	memcpy(be->subset, b->subset, sizeof(b->subset));
	memcpy(be->zone, b->zone, sizeof(b->zone));
	if (b->identity[0])
		be->identity = sl_identity_id(out->identities, out->n_identities, b->identity);
	m->n_backends++;
	return index_backend(m, idx, &b->addr, 0);
}

/* What became of one entry of 'origin' (rc of add_*): 0 to go on, or -1 to fail the merge
 * with *e. An etcd entry's problem is listed under its key (malloc'd, or NULL). */
static int settle(struct merge *m, int rc, uint8_t origin, char *key, const struct sl_problem *p,
		  struct sl_problem *e)
{
	int fail = 0;

	if (rc < 0) {
		sl_problem_http(e, 500, "", "out of memory");
		fail = -1;
	} else if (rc > 0 && origin != SL_REG_ETCD) {
		*e = *p;
		fail = -1;
	} else if (rc > 0 && m->skips) {
		sl_reg_skip_add(m->skips, key ? key : "?", p->msg);
	}
	free(key);
	return fail;
}

/* The registry's entries of one origin: services, then registrations. 0, or -1 with *e. */
static int merge_origin(struct merge *m, const struct sl_registry *r, uint8_t origin,
			struct sl_problem *e)
{
	const char *pfx = m->file->agent.etcd_prefix;
	struct sl_problem p;
	int rc;

	for (size_t i = 0; i < r->n_svcs; i++) {
		const struct sl_reg_service *rs = &r->svcs[i];

		if (rs->origin != origin)
			continue;
		rc = add_service(m, rs, &p);
		if (settle(m, rc, origin,
			   rc > 0 && m->skips ? sl_registry_service_key(pfx, rs->name) : NULL, &p,
			   e))
			return -1;
	}
	for (size_t i = 0; i < r->n_bes; i++) {
		const struct sl_reg_backend *b = &r->bes[i];

		if (b->origin != origin)
			continue;
		rc = add_registration(m, b, &p);
		if (settle(m, rc, origin,
			   rc > 0 && m->skips ? sl_registry_backend_key(pfx, b) : NULL, &p, e))
			return -1;
	}
	return 0;
}

/* The file's services into the indexes, room for the registry's. 0 or -ENOMEM. */
static int merge_begin(struct merge *m, const struct sl_registry *r)
{
	struct sl_config *out = m->out;
	size_t cap = out->n_services, need = out->n_services + r->n_svcs;
	int err = 0;

	ktab_init(&m->bes, sizeof(struct be_key), be_hash, be_eq);
	ktab_init(&m->users, sizeof(struct users_key), users_hash, users_eq);
	ktab_init(&m->addrs, sizeof(struct sl_sockaddr), addr_hash, addr_eq);
	if (SL_ENSURE(&out->services, &cap, need ? need : 1))
		return -ENOMEM;
	m->caps = calloc(need + 1, sizeof(*m->caps));
	m->bes_on = calloc(need + 1, sizeof(*m->bes_on));
	if (!m->caps || !m->bes_on || sl_svc_idx_init(&m->svcs, out->services, need))
		return -ENOMEM;
	/* A registry service's backends are known only once it is parsed: any address may be
	 * checked then. */
	m->all_users = r->n_svcs > 0;
	for (size_t i = 0; i < r->n_bes && !m->all_users; i++)
		if (!ktab_put(&m->addrs, &r->bes[i].addr))
			return -ENOMEM;
	for (size_t i = 0; i < out->n_services && !err; i++) {
		m->caps[i] = out->services[i].n_backends;
		m->n_backends += out->services[i].n_backends;
		err = index_service(m, i, 1);
	}
	return err;
}

static void merge_end(struct merge *m)
{
	sl_svc_idx_free(&m->svcs);
	ktab_free(&m->bes);
	ktab_free(&m->users);
	ktab_free(&m->addrs);
	free(m->caps);
	free(m->bes_on);
}

int sl_registry_merge_skips(const struct sl_config *file, const struct sl_registry *r,
			    struct sl_config *out, struct sl_reg_skips *skips, struct sl_problem *e)
{
	struct merge m = {.file = file, .out = out, .skips = skips};
	int err;

	if (sl_config_borrow(file, out)) {
		sl_problem_http(e, 500, "", "out of memory");
		return -1;
	}
	err = merge_begin(&m, r);
	if (err)
		sl_problem_http(e, 500, "", "out of memory");
	if (err || merge_origin(&m, r, SL_REG_ETCD, e) || merge_origin(&m, r, SL_REG_LOCAL, e) ||
	    sl_services_check_limits(&out->agent.limits, out->n_services, m.n_backends, NULL, e)) {
		merge_end(&m);
		sl_config_free(out);
		return -1;
	}
	merge_end(&m);
	return 0;
}

int sl_registry_merge(const struct sl_config *file, const struct sl_registry *r,
		      struct sl_config *out, struct sl_problem *e)
{
	return sl_registry_merge_skips(file, r, out, NULL, e);
}

void sl_reg_skip_add(struct sl_reg_skips *s, const char *key, const char *why)
{
	s->total++;
	if (s->n >= SL_REG_SKIPS_KEPT || SL_ENSURE(&s->v, &s->cap, s->n + 1))
		return;
	snprintf(s->v[s->n].key, sizeof(s->v[0].key), "%s", key);
	snprintf(s->v[s->n].why, sizeof(s->v[0].why), "%s", why);
	s->n++;
}

void sl_reg_skips_free(struct sl_reg_skips *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
