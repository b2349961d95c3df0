// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mtls: the certificates, the tunnel engine and what it asks of the agent (mtls.h).
 *
 * Threads. The engine's callbacks run in its relay thread. lookup() reads BPF maps only.
 * authorize() reads the policy snapshot, rebuilt at each apply and swapped under snap_lock
 * (it holds the lock for a short scan, never for I/O). on_event() bumps the per-service
 * counters under cnt_lock and writes one fixed-size record to a non-blocking pipe, which the
 * agent's loop reads: logs and the audit log are written by the loop's thread alone. A full
 * pipe drops the record (counted), it never blocks the relay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "localaddr.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "mtls.h"
#include "mtls_map.h"
#include "mtls_certs.h"
#include "plan.h"
#include "settings.h"
#include "tunnel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define CERTS_DEBOUNCE_MS 200
/* Distinct service labels of sluice_mtls_connections_total; more share service="". */
#define MTLS_SERIES_MAX 256

/* One service as authorize() sees it: policy masks as the datapath has them, local backends. */
struct snap_svc {
	char name[SLUICE_NAME_LEN];
	char frontend[SL_HOSTPORT_LEN];
	struct sluice_service sv;
	struct sl_sockaddr *local; /* its backends at this node's addresses */
	size_t n_local;
};

struct snap {
	struct snap_svc *svcs;
	size_t n_svcs;
	char (*ids)[SLUICE_NAME_LEN]; /* identity id i + 1 is ids[i] */
	size_t n_ids;
};

struct series {
	char service[SLUICE_NAME_LEN];
	uint64_t n[SL_TUNNEL_DIRS][SL_TUNNEL_RESULTS];
};

/* One result, from the relay thread to the loop. */
struct note {
	uint8_t dir, result;
	char service[SLUICE_NAME_LEN];
	char identity[SLUICE_NAME_LEN];
	char serial[SL_MTLS_SERIAL_LEN];
	char reason[160];
	struct sl_sockaddr peer, target;
	uint64_t handshake_ns;
};
_Static_assert(sizeof(struct note) <= PIPE_BUF, "a note is written atomically");

struct agent_mtls {
	struct agent *a;
	struct sl_mtls *certs;
	struct sl_tunnel *t;
	int ktls;
	uint64_t valid_ids;
	int inofd, debfd, pipefd[2];
	struct sl_loop_src ino_src, deb_src, pipe_src;
	pthread_mutex_t snap_lock, cnt_lock;
	struct snap *snap;
	struct series *series; /* [0] is service="" */
	size_t n_series, cap_series;
	uint64_t notes_dropped; /* relay thread only, read racily for a log */
	char last_serial[SL_TUNNEL_DIRS][SL_MTLS_SERIAL_LEN];
};

/* --- the policy snapshot ------------------------------------------------------------------- */

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_svcs; i++)
		free(s->svcs[i].local);
	free(s->svcs);
	free(s->ids);
	free(s);
}

static int snap_svc_fill(struct snap_svc *o, const struct sl_service_cfg *svc,
			 const struct sl_addrs *local)
{
	snprintf(o->name, sizeof(o->name), "%s", svc->name);
	sl_format_hostport(&svc->frontend, o->frontend, sizeof(o->frontend));
	sl_service_value(svc, &o->sv);
	o->local = calloc(svc->n_backends + 1, sizeof(*o->local));
	if (!o->local)
		return -ENOMEM;
	for (size_t j = 0; j < svc->n_backends; j++)
		if (svc->proto == SLUICE_PROTO_TCP && sl_addrs_has(local, &svc->backends[j].addr))
			o->local[o->n_local++] = svc->backends[j].addr;
	return 0;
}

static struct snap *snap_build(const struct sl_config *cfg)
{
	struct sl_addrs local = {0};
	struct snap *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	err = sl_local_addrs(&local);
	if (err)
		sl_warn("cannot read this node's addresses: no backend counts as local for mtls",
			"error=\"%s\"", strerror(-err));
	s->svcs = calloc(cfg->n_services + 1, sizeof(*s->svcs));
	s->ids = calloc(cfg->n_identities + 1, sizeof(*s->ids));
	err = s->svcs && s->ids ? 0 : -ENOMEM;
	for (size_t i = 0; i < cfg->n_services && !err; i++, s->n_svcs++)
		err = snap_svc_fill(&s->svcs[i], &cfg->services[i], &local);
	for (size_t i = 0; i < cfg->n_identities && !err; i++, s->n_ids++)
		snprintf(s->ids[i], sizeof(s->ids[i]), "%s", cfg->identities[i].name);
	sl_addrs_free(&local);
	if (err) {
		snap_free(s);
		return NULL;
	}
	return s;
}

/* --- the engine's callbacks (relay thread) ------------------------------------------------- */

static int on_lookup(void *arg, int fd, const struct sl_sockaddr *caller,
		     struct sl_tunnel_route *out)
{
	struct agent_mtls *m = arg;
	const struct sl_maps *maps = &m->a->dp.maps;
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);
	struct sl_mtls_orig o;
	struct sluice_svc_info svc;
	struct sluice_identity_info id;
	int err;

	(void)caller; /* the same address, as the engine parsed it */
	if (getpeername(fd, (struct sockaddr *)&peer, &peer_len))
		return -errno;
	err = sl_mtls_lookup(maps, (const struct sockaddr *)&peer, &o);
	if (err)
		return err;
	if (bpf_map_lookup_elem(maps->svc_info, &o.svc_id, &svc) ||
	    bpf_map_lookup_elem(maps->identities, &o.identity, &id))
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->target = o.backend;
	out->via = out->target; /* the backend's node, at mtls.port */
	out->via.port = m->a->cfg.agent.mtls.port;
	memcpy(out->service, svc.name, sizeof(out->service) - 1);
	memcpy(out->identity, id.name, sizeof(out->identity) - 1);
	return out->identity[0] ? 0 : -ENOENT;
}

static const struct snap_svc *snap_find(const struct snap *s, const char *service)
{
	for (size_t i = 0; s && i < s->n_svcs; i++)
		if (!strcmp(s->svcs[i].name, service))
			return &s->svcs[i];
	return NULL;
}

static uint32_t snap_identity(const struct snap *s, const char *name)
{
	for (size_t i = 0; i < s->n_ids; i++)
		if (!strcmp(s->ids[i], name))
			return (uint32_t)i + 1;
	return 0;
}

static void on_authorize(void *arg, const char *identity, const char *service,
			 const struct sl_sockaddr *target, const struct sl_sockaddr *peer,
			 struct sl_tunnel_decision *out)
{
	struct agent_mtls *m = arg;
	const struct snap_svc *s;
	int local = 0;

	(void)peer;
	pthread_mutex_lock(&m->snap_lock);
	s = snap_find(m->snap, service);
	for (size_t i = 0; s && i < s->n_local && !local; i++)
		local = sl_sockaddr_equal(&s->local[i], target);
	if (!s) {
		out->verdict = SL_TUNNEL_NO_TARGET;
		snprintf(out->reason, sizeof(out->reason), "no service %s here", service);
	} else if (!local) {
		out->verdict = SL_TUNNEL_NO_TARGET;
		snprintf(out->reason, sizeof(out->reason), "not a local backend of %s", service);
	} else if (sluice_policy_denies(&s->sv, snap_identity(m->snap, identity))) {
		out->verdict = SL_TUNNEL_DENY;
		snprintf(out->reason, sizeof(out->reason), "the policy of %s denies %s", service,
			 identity);
	} else {
		out->verdict = SL_TUNNEL_ALLOW;
	}
	pthread_mutex_unlock(&m->snap_lock);
}

/* The series of a service (cnt_lock held): a service of the snapshot has its own, up to
 * MTLS_SERIES_MAX; anything else counts under service="". */
static struct series *series_of(struct agent_mtls *m, const char *service)
{
	int known;

	for (size_t i = 0; i < m->n_series; i++)
		if (!strcmp(m->series[i].service, service))
			return &m->series[i];
	pthread_mutex_lock(&m->snap_lock);
	known = snap_find(m->snap, service) != NULL;
	pthread_mutex_unlock(&m->snap_lock);
	if (!known || m->n_series >= MTLS_SERIES_MAX ||
	    SL_ENSURE(&m->series, &m->cap_series, m->n_series + 1))
		return &m->series[0];
	snprintf(m->series[m->n_series].service, SLUICE_NAME_LEN, "%s", service);
	return &m->series[m->n_series++];
}

static void on_event(void *arg, const struct sl_tunnel_event *ev)
{
	struct agent_mtls *m = arg;
	struct note n = {0};

	if (ev->kind != SL_TUNNEL_EV_RESULT || ev->dir >= SL_TUNNEL_DIRS ||
	    ev->result >= SL_TUNNEL_RESULTS)
		return;
	pthread_mutex_lock(&m->cnt_lock);
	series_of(m, ev->service)->n[ev->dir][ev->result]++;
	pthread_mutex_unlock(&m->cnt_lock);
	n.dir = (uint8_t)ev->dir;
	n.result = (uint8_t)ev->result;
	snprintf(n.service, sizeof(n.service), "%s", ev->service);
	snprintf(n.identity, sizeof(n.identity), "%s", ev->identity);
	snprintf(n.serial, sizeof(n.serial), "%s", ev->peer_serial);
	snprintf(n.reason, sizeof(n.reason), "%s", ev->reason);
	n.peer = ev->peer;
	n.target = ev->target;
	n.handshake_ns = ev->handshake_ns;
	if (write(m->pipefd[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
		m->notes_dropped++;
}

/* --- results, in the loop's thread --------------------------------------------------------- */

static void audit_denial(struct agent_mtls *m, const struct note *n)
{
	struct agent *a = m->a;
	char source[SL_HOSTPORT_LEN] = "", frontend[SL_HOSTPORT_LEN] = "";
	struct sl_audit_record r = {0};
	struct timespec ts;
	const struct snap_svc *s;

	sl_format_hostport(&n->peer, source, sizeof(source));
	pthread_mutex_lock(&m->snap_lock);
	s = snap_find(m->snap, n->service);
	if (s)
		snprintf(frontend, sizeof(frontend), "%s", s->frontend);
	pthread_mutex_unlock(&m->snap_lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	r.verdict = "deny";
	r.point = "mtls";
	r.identity = n->identity;
	r.source = source;
	r.service = n->service;
	r.frontend = frontend;
	r.protocol = "tcp";
	if (a->ident.audit)
		sl_audit_write(a->ident.audit, &r, sl_mono_ns());
}

static void on_notes(void *arg)
{
	struct agent_mtls *m = arg;
	char peer[SL_HOSTPORT_LEN], target[SL_HOSTPORT_LEN];
	struct note n;

	for (int i = 0; i < 256 && read(m->pipefd[0], &n, sizeof(n)) == (ssize_t)sizeof(n); i++) {
		n.service[sizeof(n.service) - 1] = n.identity[sizeof(n.identity) - 1] = '\0';
		n.serial[sizeof(n.serial) - 1] = n.reason[sizeof(n.reason) - 1] = '\0';
		sl_format_hostport(&n.peer, peer, sizeof(peer));
		sl_format_hostport(&n.target, target, sizeof(target));
		if (n.serial[0])
			memcpy(m->last_serial[n.dir], n.serial, sizeof(n.serial));
		if (n.result == SL_TUNNEL_DENIED && n.dir == SL_TUNNEL_INBOUND)
			audit_denial(m, &n);
		sl_log(n.result == SL_TUNNEL_OK ? SL_LOG_DEBUG : SL_LOG_INFO, "mtls tunnel",
		       "direction=%s result=%s service=%s identity=%s peer=%s target=%s "
		       "peer_serial=%s handshake_us=%llu reason=\"%s\"",
		       sl_tunnel_dir_name(n.dir), sl_tunnel_result_name(n.result), n.service,
		       n.identity, peer, target, n.serial,
		       (unsigned long long)(n.handshake_ns / 1000), n.reason);
	}
}

/* --- certificates -------------------------------------------------------------------------- */

static uint64_t netns_cookie(void)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0; /* before 5.14: any netns may use the listener */
	if (fd >= 0)
		close(fd);
	return cookie;
}

struct mtls_set {
	uint64_t valid_ids;
	uint16_t port;
};

static int edit_mtls(struct sluice_settings *set, const void *arg)
{
	const struct mtls_set *m = arg;

	if (set->mtls_valid_ids == m->valid_ids && set->mtls_outbound_port == m->port &&
	    set->mtls_netns)
		return 0;
	set->mtls_valid_ids = m->valid_ids;
	set->mtls_outbound_port = m->port;
	set->mtls_netns = netns_cookie(); /* a socket's worth of syscalls: only when written */
	return 1;
}

/* The datapath's mtls settings: which identities may be tunnelled, and where to. */
static void settings_write(struct agent *a, uint64_t valid_ids, uint16_t port)
{
	struct mtls_set m = {valid_ids, port};
	int err = sl_settings_edit(a->dp.settings_fd, edit_mtls, &m);

	if (err < 0)
		sl_warn("cannot write the datapath's mtls settings", "error=\"%s\"",
			strerror(-err));
}

static int start_engine(struct agent_mtls *m);

/* A new set for the engine and the datapath (the old one goes with its last tunnel); the
 * engine starts with the first set that loads. */
static void certs_swap(struct agent_mtls *m, const char *why)
{
	uint64_t valid = 0;
	struct sl_mtls *set = agent_mtls_load(&m->a->cfg, &valid);

	if (!set) {
		sl_warn("mtls certificates kept as they were", "why=%s", why);
		return;
	}
	if (m->t)
		sl_tunnel_set_certs(m->t, set);
	sl_mtls_unref(m->certs);
	m->certs = set;
	m->valid_ids = valid;
	if (!m->t && start_engine(m))
		valid = 0; /* no tunnels: nothing is sent to the listener */
	settings_write(m->a, valid, m->t ? m->a->cfg.agent.mtls.outbound_port : 0);
	sl_info("mtls certificates loaded", "why=%s valid_identities=%d", why,
		__builtin_popcountll(valid));
}

void agent_mtls_reload(struct agent *a, const char *why)
{
	if (a->mtls)
		certs_swap(a->mtls, why);
}

static void on_certs_changed(void *arg)
{
	struct agent_mtls *m = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(m->inofd, buf, sizeof(buf)) > 0)
		;
	if (sl_timer_arm(m->debfd, CERTS_DEBOUNCE_MS, 0))
		sl_warn("cannot arm the certificate reload timer", "error=\"%s\"", strerror(errno));
}

static void on_certs_debounce(void *arg)
{
	struct agent_mtls *m = arg;

	sl_timer_drain(m->debfd);
	certs_swap(m, "certs-changed");
}

/* --- start, apply, stop -------------------------------------------------------------------- */

static int watch_certs(struct agent_mtls *m)
{
	struct sl_loop *l = &m->a->loop;
	const char *dir = m->a->cfg.agent.mtls.certs;
	int err;

	m->inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	m->debfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->inofd < 0 || m->debfd < 0 || pipe2(m->pipefd, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	/* A directory that is not there yet is not fatal: SIGHUP still reloads. */
	if (inotify_add_watch(m->inofd, dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0)
		sl_warn("cannot watch the mtls certificates; SIGHUP reloads them",
			"dir=%s error=\"%s\"", dir, strerror(errno));
	err = sl_loop_add(l, &m->ino_src, m->inofd, on_certs_changed, m);
	if (!err)
		err = sl_loop_add(l, &m->deb_src, m->debfd, on_certs_debounce, m);
	if (!err)
		err = sl_loop_add(l, &m->pipe_src, m->pipefd[0], on_notes, m);
	return err;
}

static int start_engine(struct agent_mtls *m)
{
	const struct sl_mtls_cfg *mc = &m->a->cfg.agent.mtls;
	struct sl_sockaddr out[2] = {0}, in = {.family = SLUICE_AF_INET6, .port = mc->port};
	struct sl_tunnel_opts o = {.outbound = out,
				   .n_outbound = 2,
				   .inbound = &in,
				   .n_inbound = 1,
				   .peer_port = mc->port,
				   .certs = m->certs,
				   .max_tunnels = agent_mtls_max_tunnels(),
				   .lookup = on_lookup,
				   .authorize = on_authorize,
				   .on_event = on_event,
				   .arg = m};
	char err[256] = "";

	out[0].family = SLUICE_AF_INET;
	out[0].addr.a32[0] = htonl(INADDR_LOOPBACK);
	out[0].port = mc->outbound_port;
	out[1].family = SLUICE_AF_INET6;
	out[1].addr.a8[15] = 1;
	out[1].port = mc->outbound_port;
	m->t = sl_tunnel_new(&o, err, sizeof(err));
	if (!m->t) {
		sl_error("cannot start the mtls tunnels", "error=\"%s\"", err);
		return -EINVAL;
	}
	return 0;
}

int agent_mtls_start(struct agent *a)
{
	struct agent_mtls *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	m->a = a;
	m->inofd = m->debfd = m->pipefd[0] = m->pipefd[1] = -1;
	pthread_mutex_init(&m->snap_lock, NULL);
	pthread_mutex_init(&m->cnt_lock, NULL);
	a->mtls = m;
	m->ktls = sl_tunnel_ktls_supported() > 0;
	m->series = calloc(1, sizeof(*m->series));
	m->cap_series = m->series ? 1 : 0;
	m->n_series = m->cap_series;
	m->snap = snap_build(&a->eff);
	if (!m->series || !m->snap)
		return -ENOMEM;
	m->certs = agent_mtls_load(&a->cfg, &m->valid_ids);
	err = watch_certs(m);
	if (err)
		return err;
	if (!m->certs) {
		/* The agent keeps serving: no identity has a certificate, so strict
		 * services refuse at connect() and permissive ones go plaintext, until a
		 * SIGHUP or a change in mtls.certs loads a set. */
		settings_write(a, 0, 0);
		sl_warn("mtls tunnels down until the certificates load: strict services refuse, "
			"permissive ones send plaintext");
		return 0;
	}
	err = start_engine(m);
	if (err)
		return err;
	settings_write(a, m->valid_ids, a->cfg.agent.mtls.outbound_port);
	sl_info("mtls tunnels ready", "outbound=127.0.0.1,[::1]:%u inbound=[::]:%u ktls=%s",
		(unsigned int)a->cfg.agent.mtls.outbound_port, (unsigned int)a->cfg.agent.mtls.port,
		m->ktls ? "yes" : "no");
	return 0;
}

/* Does the set hold other identities than cfg names (its entries: identities, then node)? */
static int identities_changed(const struct sl_mtls *set, const struct sl_config *cfg)
{
	size_t n = set ? sl_mtls_count(set) : 0;

	if (!n || n - 1 != cfg->n_identities)
		return 1;
	for (size_t i = 0; i + 1 < n; i++)
		if (strcmp(sl_mtls_status_at(set, i)->name, cfg->identities[i].name))
			return 1;
	return 0;
}

void agent_mtls_apply(struct agent *a)
{
	struct agent_mtls *m = a->mtls;
	struct snap *s, *old;

	if (!m)
		return;
	s = snap_build(&a->eff);
	if (!s) {
		sl_warn("cannot rebuild the mtls policy snapshot: the old one stays",
			"error=\"%s\"", strerror(ENOMEM));
		return;
	}
	pthread_mutex_lock(&m->snap_lock);
	old = m->snap;
	m->snap = s;
	pthread_mutex_unlock(&m->snap_lock);
	snap_free(old);
	if (identities_changed(m->certs, &a->cfg))
		certs_swap(m, "identities-changed");
}

void agent_mtls_stop(struct agent *a)
{
	struct agent_mtls *m = a->mtls;

	if (!m)
		return;
	sl_tunnel_free(m->t); /* the thread is gone: no callback runs after this */
	if (m->t)
		settings_write(a, m->valid_ids, 0); /* no listener: strict refuses, permissive
						       goes plaintext */
	sl_mtls_unref(m->certs);
	snap_free(m->snap);
	free(m->series);
	if (m->inofd >= 0)
		close(m->inofd);
	if (m->debfd >= 0)
		close(m->debfd);
	for (int i = 0; i < 2; i++)
		if (m->pipefd[i] >= 0)
			close(m->pipefd[i]);
	pthread_mutex_destroy(&m->snap_lock);
	pthread_mutex_destroy(&m->cnt_lock);
	free(m);
	a->mtls = NULL;
}

/* --- metrics and status -------------------------------------------------------------------- */

void agent_mtls_render(struct agent *a, struct sl_prom *p)
{
	struct agent_mtls *m = a->mtls;
	struct sl_tunnel_stats st;

	if (!m || !m->t)
		return;
	sl_prom_family(p, "sluice_mtls_connections_total",
		       "mTLS tunnels by how their setup ended (service=\"\": not known).",
		       SL_PROM_COUNTER);
	pthread_mutex_lock(&m->cnt_lock);
	for (size_t i = 0; i < m->n_series; i++)
		for (int d = 0; d < SL_TUNNEL_DIRS; d++)
			for (int r = 0; r < SL_TUNNEL_RESULTS; r++) {
				const char *lv[] = {"service",	 m->series[i].service,
						    "direction", sl_tunnel_dir_name(d),
						    "result",	 sl_tunnel_result_name(r),
						    NULL};

				if (m->series[i].n[d][r] || (i && r == SL_TUNNEL_OK))
					sl_prom_sample(p, lv, (double)m->series[i].n[d][r]);
			}
	pthread_mutex_unlock(&m->cnt_lock);
	sl_tunnel_get_stats(m->t, &st);
	sl_prom_family(p, "sluice_mtls_resumed_total",
		       "mTLS tunnel handshakes that resumed a TLS session (no certificates sent).",
		       SL_PROM_COUNTER);
	for (int d = 0; d < SL_TUNNEL_DIRS; d++) {
		const char *lv[] = {"direction", sl_tunnel_dir_name(d), NULL};

		sl_prom_sample(p, lv, (double)st.resumed[d]);
	}
	sl_prom_family(p, "sluice_mtls_handshake_seconds", "TLS handshakes of mTLS tunnels.",
		       SL_PROM_HISTOGRAM);
	for (int d = 0; d < SL_TUNNEL_DIRS; d++) {
		const char *lv[] = {"direction", sl_tunnel_dir_name(d), NULL};

		sl_prom_hist(p, lv, &st.handshake[d]);
	}
}

static json_t *cert_json(const struct sl_mtls_status *st)
{
	char nb[32], na[32];

	agent_mtls_fmt_time(st->not_before, nb, sizeof(nb));
	agent_mtls_fmt_time(st->not_after, na, sizeof(na));
	return json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s}", "name", st->name, "kind",
			 st->is_node ? "node" : "identity", "valid", st->valid, "uri", st->uri,
			 "serial", st->serial, "not_before", nb, "not_after", na, "error",
			 st->error);
}

json_t *agent_mtls_json(struct agent *a)
{
	struct agent_mtls *m = a->mtls;
	json_t *certs, *o;

	if (!m || !m->certs)
		return NULL;
	certs = json_array();
	for (size_t i = 0; certs && i < sl_mtls_count(m->certs); i++)
		json_array_append_new(certs, cert_json(sl_mtls_status_at(m->certs, i)));
	o = json_pack("{s:s, s:b, s:i, s:i, s:o, s:{s:s, s:s}}", "trust_domain",
		      sl_mtls_trust_domain(m->certs), "ktls", m->ktls, "port",
		      (int)a->cfg.agent.mtls.port, "outbound_port",
		      (int)a->cfg.agent.mtls.outbound_port, "certificates", certs,
		      "last_peer_serial", "outbound", m->last_serial[SL_TUNNEL_OUTBOUND], "inbound",
		      m->last_serial[SL_TUNNEL_INBOUND]);
	if (o && m->t) { /* tunnels relayed with kTLS send / receive (splice), per direction */
		struct sl_tunnel_stats st;
		json_t *k = json_object();

		sl_tunnel_get_stats(m->t, &st);
		for (int d = 0; k && d < SL_TUNNEL_DIRS; d++)
			json_object_set_new(k, sl_tunnel_dir_name(d),
					    json_pack("{s:I, s:I}", "tx", (json_int_t)st.ktls_tx[d],
						      "rx", (json_int_t)st.ktls_rx[d]));
		json_object_set_new(o, "ktls_tunnels", k);
	}
	return o;
}
