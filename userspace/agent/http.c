// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "http_int.h"
#include "log.h"
#include "mem.h"

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	sl_warn(msg, "source=microhttpd");
}

/* Arm runfd to fire at once. */
static void arm_now(struct sl_http *h)
{
	struct itimerspec its = {.it_value = {.tv_nsec = 1}};

	if (h->runfd >= 0 && timerfd_settime(h->runfd, 0, &its, NULL))
		sl_warn("cannot arm the HTTP timer", "error=\"%s\"", strerror(errno));
}

/* Make the loop run MHD at its next turn. */
void sl_http_run_soon(struct sl_http *h)
{
	h->run_now = 1; /* arm_run, after the run under way, must not put it off */
	arm_now(h);
}

/* Feed a subscriber what is queued; park the connection when there is none. */
static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sub *s = cls;
	size_t n = s->len < max ? s->len : max;

	(void)pos;
	if (!n) {
		MHD_suspend_connection(s->conn);
		s->suspended = 1;
		return 0;
	}
	memcpy(buf, s->buf, n);
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	return (ssize_t)n;
}

static void sub_free(void *cls)
{
	struct sub *s = cls, **pp;

	for (pp = &s->h->subs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			s->h->n_subs--;
			break;
		}
	}
	if (s->dropped)
		sl_warn("a slow monitor client lost events", "events=%llu", s->dropped);
	free(s->buf);
	free(s);
}

/* A request body being received; then, for a change in a batch, its answer. */
struct upload {
	char *buf;
	size_t len, cap;
	int too_big;
	int answered;	     /* status and out hold the answer (in h->batch: suspended) */
	unsigned int status; /* ... */
	char *out;
	struct MHD_Connection *conn;
	struct upload *next; /* in h->batch */
};

/* The API is root's: the socket is 0600, and the peer's credentials
 * (SO_PEERCRED, as of its connect) are checked on every request too. */
static int peer_is_root(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!ci) {
		sl_warn("API request refused: no connection fd to check");
		return 0;
	}
	if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		sl_warn("API request refused: cannot read the peer's credentials", "error=\"%s\"",
			strerror(errno));
		return 0;
	}
	if (cred.uid == 0)
		return 1;
	sl_warn("API request refused: the peer is not root", "pid=%d uid=%u", (int)cred.pid,
		(unsigned int)cred.uid);
	return 0;
}

static enum MHD_Result on_events(struct sl_http *h, struct MHD_Connection *c, const char *method)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct sub *s;

	if (strcmp(method, "GET"))
		return sl_http_json_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
	s = calloc(1, sizeof(*s));
	if (!s)
		return MHD_NO;
	s->h = h;
	s->conn = c;
	/* A monitor may wait long for its next event: no idle timeout. */
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0U);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sub_read, s, sub_free);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	s->next = h->subs;
	h->subs = s;
	h->n_subs++;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_api(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **req)
{
	struct sl_http *h = cls;
	struct upload *u = *req;
	unsigned int status = 500;
	enum MHD_Result ret;
	char *out = NULL;

	(void)version;
	if (!u && !peer_is_root(c))
		return sl_http_json_error(c, MHD_HTTP_FORBIDDEN, "the API is root's only");
	if (!strcmp(url, "/v1/events"))
		return on_events(h, c, method);
	if (!u) { /* headers only so far */
		u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		*req = u;
		return MHD_YES;
	}
	if (*upload_len) {
		if (u->too_big || u->len + *upload_len > SL_API_BODY_MAX) {
			u->too_big = 1;
		} else {
			if (SL_ENSURE(&u->buf, &u->cap, u->len + *upload_len + 1))
				return MHD_NO;
			memcpy(u->buf + u->len, upload, *upload_len);
			u->len += *upload_len;
			u->buf[u->len] = '\0';
		}
		*upload_len = 0;
		return MHD_YES;
	}
	if (u->too_big) {
		char msg[64];

		snprintf(msg, sizeof(msg), "the body is over %d bytes", SL_API_BODY_MAX);
		return sl_http_json_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
	}
	if (u->answered) /* resumed after the batch's flush */
		return sl_http_reply(c, u->status, "application/json", u->out ? u->out : "{}\n");
	h->cbs.api(h->cbs.ctx, method, url, u->buf ? u->buf : "", u->len, &status, &out);
	if (h->cbs.api_joined && h->cbs.api_joined(h->cbs.ctx)) {
		u->answered = 1;
		u->status = status;
		u->out = out;
		u->conn = c;
		u->next = h->batch;
		h->batch = u;
		MHD_suspend_connection(c);
		return MHD_YES;
	}
	ret = sl_http_reply(c, status, "application/json", out ? out : "{}\n");
	free(out);
	return ret;
}

/* After a run of the API listener: save and apply the changes it took, then let their
 * requests be answered (each with its own answer, or all with the failure). */
static void flush_batch(struct sl_http *h)
{
	unsigned int status = 0;
	char *out = NULL;
	int failed;

	if (!h->batch)
		return;
	failed = h->cbs.api_flush(h->cbs.ctx, &status, &out) != 0;
	for (struct upload *u = h->batch, *next; u; u = next) {
		next = u->next;
		u->next = NULL;
		if (failed) {
			free(u->out);
			u->status = status ? status : 500;
			u->out = out ? strdup(out) : NULL;
		}
		MHD_resume_connection(u->conn);
	}
	h->batch = NULL;
	free(out);
	sl_http_run_soon(h);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req,
			 enum MHD_RequestTerminationCode why)
{
	struct upload *u = *req;

	(void)cls, (void)c, (void)why;
	if (u) {
		free(u->buf);
		free(u->out);
		free(u);
		*req = NULL;
	}
}

void sl_http_publish(struct sl_http *h, const char *line, size_t len)
{
	int resumed = 0;

	for (struct sub *s = h ? h->subs : NULL; s; s = s->next) {
		if (s->len + len > SUB_BUFFER_MAX) {
			s->dropped++;
			continue;
		}
		if (SL_ENSURE(&s->buf, &s->cap, s->len + len)) {
			s->dropped++;
			continue;
		}
		memcpy(s->buf + s->len, line, len);
		s->len += len;
		if (s->suspended) {
			s->suspended = 0;
			MHD_resume_connection(s->conn);
			resumed = 1;
		}
	}
	/* A resumed connection is served by the next MHD_run(), and no fd says so: MHD
	 * (external epoll, no thread) wakes nothing. Without this, a monitor got its events
	 * only at the agent's next tick, up to a second late. */
	if (resumed)
		sl_http_run_soon(h);
}

size_t sl_http_subscribers(const struct sl_http *h)
{
	return h ? h->n_subs : 0;
}

static int unix_listener(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[SL_API_PATH_LEN];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0755) && errno != EEXIST) {
		snprintf(err, err_len, "mkdir for %s: %s", path, strerror(errno));
		return -errno;
	}
	/* Replace a stale socket left by a previous run; never anything else. */
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len, "%s exists and is not a socket", path);
			return -EEXIST;
		}
		if (unlink(path)) {
			snprintf(err, err_len, "unlink stale %s: %s", path, strerror(errno));
			return -errno;
		}
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, err_len, "socket for %s: %s", path, strerror(errno));
		return -errno;
	}
	/* Created 0600 from the start, by bind(2) itself (the socket's own mode,
	 * less the umask): no window where others may connect, and no chmod of
	 * a path that someone could have replaced meanwhile. */
	if (fchmod(fd, 0600)) {
		int e = errno;

		snprintf(err, err_len, "fchmod 0600 socket for %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));

	umask(old);
	if (rc || listen(fd, 64)) {
		int e = errno;

		snprintf(err, err_len, "listen on %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104. */
static int is_loopback(const struct sl_sockaddr *a)
{
	static const uint8_t v6_lo[16] = {[15] = 1};
	static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (a->family == SLUICE_AF_INET)
		return a->addr.a8[0] == 127;
	return !memcmp(a->addr.a8, v6_lo, 16) ||
	       (!memcmp(a->addr.a8, v4_mapped, 12) && a->addr.a8[12] == 127);
}

/* GET /metrics on agent.metrics (TCP). */
static int start_metrics(struct sl_http *h, const struct sl_config *cfg, char *err, size_t err_len)
{
	struct sockaddr_storage ss = {0};
	unsigned int f = DAEMON_FLAGS;

	if (cfg->agent.metrics.family == SLUICE_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(cfg->agent.metrics.port);
		memcpy(&s4->sin_addr, cfg->agent.metrics.addr.a8, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(cfg->agent.metrics.port);
		memcpy(&s6->sin6_addr, cfg->agent.metrics.addr.a8, 16);
		f |= MHD_USE_IPv6;
	}
	/* The logger first: MHD logs about options parsed before it. */
	h->metrics.d = MHD_start_daemon(
	    f, cfg->agent.metrics.port, NULL, NULL, sl_http_on_metrics, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss,
	    MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    METRICS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S, MHD_OPTION_END);
	if (!h->metrics.d) {
		char hp[SL_HOSTPORT_LEN];

		sl_format_hostport(&cfg->agent.metrics, hp, sizeof(hp));
		snprintf(err, err_len, "cannot serve metrics on %s (address in use?)", hp);
		return -EADDRINUSE;
	}
	if (!is_loopback(&cfg->agent.metrics)) {
		char hp[SL_HOSTPORT_LEN];

		sl_format_hostport(&cfg->agent.metrics, hp, sizeof(hp));
		sl_warn("agent.metrics is not a loopback address: whoever reaches it reads every "
			"service, backend and counter",
			"metrics=%s", hp);
	}
	return 0;
}

/* The control API on the Unix socket agent.api. */
static int start_api(struct sl_http *h, const struct sl_config *cfg, char *err, size_t err_len)
{
	int fd = unix_listener(cfg->agent.api, err, err_len);

	if (fd < 0)
		return fd;
	snprintf(h->api_path, sizeof(h->api_path), "%s", cfg->agent.api);
	h->api.d = MHD_start_daemon(
	    DAEMON_FLAGS, 0, NULL, NULL, on_api, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT,
	    MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, NULL, MHD_OPTION_END);
	if (!h->api.d) {
		close(fd);
		snprintf(err, err_len, "cannot serve the API on %s", cfg->agent.api);
		return -EIO;
	}
	return 0;
}

int sl_http_start(struct sl_http **out, const struct sl_config *cfg, const struct sl_http_cbs *cbs,
		  char *err, size_t err_len)
{
	struct sl_http *h = calloc(1, sizeof(*h));
	int rc = 0;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->cbs = *cbs;
	h->metrics.h = h->api.h = h;
	h->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->donefd < 0) {
		rc = -errno;
		snprintf(err, err_len, "eventfd: %s", strerror(-rc));
		free(h);
		return rc;
	}
	h->runfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (h->runfd < 0) {
		rc = -errno;
		snprintf(err, err_len, "timerfd_create: %s", strerror(-rc));
		close(h->donefd);
		free(h);
		return rc;
	}
	if (cfg->agent.metrics_on)
		rc = start_metrics(h, cfg, err, err_len);
	if (!rc && cfg->agent.api[0])
		rc = start_api(h, cfg, err, err_len);
	if (rc) {
		sl_http_stop(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* Arm runfd for the sooner of the two daemons' MHD_get_timeout(). A daemon with work left
 * that no fd will announce (after a resume, MHD processes the connection in one run and sends
 * in the next) answers 0: the loop runs it again at once, after the other sources' turn. */
static void arm_run(struct sl_http *h)
{
	const struct listener *ls[] = {&h->metrics, &h->api};
	MHD_UNSIGNED_LONG_LONG ms, best = 0;
	struct itimerspec its = {0};
	int any = 0;

	if (h->runfd < 0)
		return;
	if (h->run_now) { /* a resume during the run: MHD serves it in the next one */
		h->run_now = 0;
		arm_now(h);
		return;
	}
	for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
		if (!ls[i]->d || MHD_get_timeout(ls[i]->d, &ms) != MHD_YES)
			continue;
		if (!any || ms < best)
			best = ms;
		any = 1;
	}
	if (any && !best) {
		arm_now(h);
		return;
	}
	if (any) {
		its.it_value.tv_sec = (time_t)(best / 1000);
		its.it_value.tv_nsec = (long)(best % 1000) * 1000000L;
	}
	if (timerfd_settime(h->runfd, 0, &its, NULL))
		sl_warn("cannot arm the HTTP timer", "error=\"%s\"", strerror(errno));
}

static void ran(struct sl_http *h)
{
	arm_run(h);
	if (h->cbs.ran)
		h->cbs.ran(h->cbs.ctx);
}

static void on_listener(void *ctx)
{
	struct listener *l = ctx;

	MHD_run(l->d);
	if (l == &l->h->api)
		flush_batch(l->h);
	ran(l->h);
}

static void on_run_timer(void *ctx)
{
	struct sl_http *h = ctx;

	sl_timer_drain(h->runfd);
	sl_http_run(h);
}

static int watch_listener(struct listener *l, struct sl_loop *loop)
{
	const union MHD_DaemonInfo *info;

	if (!l->d)
		return 0;
	info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return -EINVAL;
	return sl_loop_add(loop, &l->src, info->epoll_fd, on_listener, l);
}

int sl_http_watch(struct sl_http *h, struct sl_loop *loop)
{
	int err;

	if (!h)
		return 0;
	err = watch_listener(&h->metrics, loop);
	if (!err)
		err = watch_listener(&h->api, loop);
	if (!err)
		err = sl_loop_add(loop, &h->run_src, h->runfd, on_run_timer, h);
	if (!err)
		err = sl_loop_add(loop, &h->done_src, h->donefd, sl_http_on_render_done, h);
	return err;
}

void sl_http_run(struct sl_http *h)
{
	if (!h)
		return;
	if (h->metrics.d)
		MHD_run(h->metrics.d);
	if (h->api.d) {
		MHD_run(h->api.d);
		flush_batch(h);
	}
	ran(h);
}

void sl_http_stop(struct sl_http *h)
{
	if (!h)
		return;
	sl_http_metrics_stop(h);
	/* Resume parked subscribers so that MHD can close them. */
	for (struct sub *s = h->subs; s; s = s->next)
		if (s->suspended) {
			s->suspended = 0;
			MHD_resume_connection(s->conn);
		}
	if (h->metrics.d)
		MHD_stop_daemon(h->metrics.d);
	if (h->api.d) {
		MHD_stop_daemon(h->api.d);
		unlink(h->api_path);
	}
	if (h->runfd >= 0)
		close(h->runfd);
	close(h->donefd);
	free(h->graph);
	free(h);
}
