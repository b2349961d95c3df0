// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The policy audit log: JSON lines, one write(2) each, behind a token bucket. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "log.h"

#define NSEC_PER_SEC	 1000000000ULL
#define WARN_INTERVAL_NS (10 * NSEC_PER_SEC)
#define DUMP_FLAGS	 (JSON_COMPACT | JSON_PRESERVE_ORDER)

struct sl_audit {
	char *path;
	int fd;
	/* Token bucket. One line costs NSEC_PER_SEC units, so refilling is elapsed_ns * rate
	 * units and no division is needed; burst * NSEC_PER_SEC < 2^64 for any unsigned int. */
	unsigned int rate; /* 0: no limit */
	uint64_t tokens, capacity;
	uint64_t last_ns; /* CLOCK_MONOTONIC of the last refill */
	/* A short write left a line without its '\n': the next line starts with one, so that
	 * only the broken line fails to parse. */
	int broken_line;
	/* sl_warn pacing for write errors. */
	int warned;
	uint64_t last_warn_ns;
	uint64_t written, dropped_rate, write_errors;
	uint64_t dropped_reported; /* dropped_rate as of the last summary line written */
};

/* Create dir and its missing ancestors, 0700 each; existing ones are left as they are. */
static int mkdir_p(char *dir)
{
	char *slash;
	int err;

	if (!mkdir(dir, 0700) || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -ENOENT;
	*slash = '\0';
	err = mkdir_p(dir);
	*slash = '/';
	if (err)
		return err;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int create_parent(const char *path)
{
	char *dir = strdup(path), *slash;
	int err = -ENOENT;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		err = mkdir_p(dir);
	}
	free(dir);
	return err;
}

/* Open path for appending, creating it and its directory; -errno with a message in err. */
static int open_log(const char *path, int *fd_out, struct stat *st, char *err, size_t err_len)
{
	/* O_NONBLOCK: no effect on a regular file, but a FIFO named as the log must neither
	 * block the agent's loop in open() (no reader) nor in write() (full pipe). O_NOFOLLOW:
	 * a symlink planted at the path is refused, not followed. */
	const int flags =
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
	int fd, ret;

	fd = open(path, flags, 0600);
	if (fd < 0 && errno == ENOENT) {
		ret = create_parent(path);
		if (ret) {
			snprintf(err, err_len, "create directory for audit log %s: %s", path,
				 strerror(-ret));
			return ret;
		}
		fd = open(path, flags, 0600);
	}
	if (fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "open audit log %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, st)) {
		ret = -errno;
		snprintf(err, err_len, "stat audit log %s: %s", path, strerror(-ret));
		goto fail;
	}
	/* The file may have existed with a wider mode (or the umask narrowed the new one):
	 * audit lines name processes and users, so the log is 0600 whatever it was. Only a
	 * regular file: a device such as /dev/null or /dev/full is not ours to change. */
	if (S_ISREG(st->st_mode) && (st->st_mode & 07777) != 0600 && fchmod(fd, 0600)) {
		ret = -errno;
		snprintf(err, err_len, "chmod 0600 audit log %s: %s", path, strerror(-ret));
		goto fail;
	}
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return ret;
}

struct sl_audit *sl_audit_open(const char *path, unsigned int rate, unsigned int burst, char *err,
			       size_t err_len)
{
	char msg[512];
	struct sl_audit *a;
	struct stat st;
	int ret;

	if (!err)
		err_len = 0;
	if (!path || !*path) {
		snprintf(err, err_len, "open audit log: empty path");
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a || !(a->path = strdup(path))) {
		snprintf(err, err_len, "open audit log %s: %s", path, strerror(ENOMEM));
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	ret = open_log(path, &a->fd, &st, msg, sizeof(msg));
	if (ret) {
		snprintf(err, err_len, "%s", msg);
		free(a->path);
		free(a);
		errno = -ret;
		return NULL;
	}
	a->rate = rate;
	a->capacity = (uint64_t)(burst ? burst : rate) * NSEC_PER_SEC;
	a->tokens = a->capacity;
	return a;
}

/* Take one token if there is one; refill first. 1 when the line may be written. */
static int take_token(struct sl_audit *a, uint64_t now_ns)
{
	if (!a->rate)
		return 1;
	if (now_ns > a->last_ns) {
		uint64_t elapsed = now_ns - a->last_ns, deficit = a->capacity - a->tokens;

		/* elapsed * rate <= deficit here, so the product cannot overflow. */
		if (elapsed > deficit / a->rate)
			a->tokens = a->capacity;
		else
			a->tokens += elapsed * a->rate;
		a->last_ns = now_ns;
	}
	/* A clock that went back refills nothing and keeps last_ns. */
	if (a->tokens < NSEC_PER_SEC)
		return 0;
	a->tokens -= NSEC_PER_SEC;
	return 1;
}

static int set_new(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return -ENOMEM;
	return json_object_set_new(o, key, v) ? -ENOMEM : 0;
}

/* A string value. json_string() refuses bytes that are not UTF-8 (a comm or a cgroup name may
 * hold any): those are replaced by '?' rather than losing the line. */
static int set_str(json_t *o, const char *key, const char *s)
{
	json_t *v;
	char *copy;

	s = s ? s : "";
	v = json_string(s);
	if (!v) {
		copy = strdup(s);
		if (!copy)
			return -ENOMEM;
		for (char *p = copy; *p; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
		v = json_string(copy);
		free(copy);
	}
	return set_new(o, key, v);
}

static int set_opt_str(json_t *o, const char *key, const char *s)
{
	return s && *s ? set_str(o, key, s) : 0;
}

static int set_opt_int(json_t *o, const char *key, uint64_t n)
{
	/* Cgroup ids (kernfs inode numbers), pids and uids are all below 2^63. */
	return n ? set_new(o, key, json_integer((json_int_t)n)) : 0;
}

/* "time": RFC 3339 UTC with milliseconds; time_ns 0 is now. */
static int set_time(json_t *o, uint64_t time_ns)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	time_t sec;

	if (!time_ns) {
		if (clock_gettime(CLOCK_REALTIME, &ts))
			return -errno;
		time_ns = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	}
	sec = (time_t)(time_ns / NSEC_PER_SEC);
	if (!gmtime_r(&sec, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm))
		return -EOVERFLOW;
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03uZ",
		 (unsigned int)(time_ns % NSEC_PER_SEC / 1000000));
	return set_new(o, "time", json_string(when));
}

static void count_error(struct sl_audit *a, int err, uint64_t now_ns)
{
	a->write_errors++;
	if (a->warned && now_ns >= a->last_warn_ns && now_ns - a->last_warn_ns < WARN_INTERVAL_NS)
		return;
	a->warned = 1;
	a->last_warn_ns = now_ns;
	sl_warn("cannot write audit log", "path=\"%s\" error=\"%s\" errors=%llu", a->path,
		strerror(-err), (unsigned long long)a->write_errors);
}

/* Serialise o as one line and append it with a single write(2). 0 or -errno (counted). */
static int write_line(struct sl_audit *a, const json_t *o, uint64_t now_ns)
{
	char stack[1024], *heap = NULL, *buf = stack;
	size_t lead = a->broken_line ? 1 : 0, n, len;
	ssize_t w;
	int ret = 0;

	n = json_dumpb(o, stack + lead, sizeof(stack) - lead - 1, DUMP_FLAGS);
	if (n > sizeof(stack) - lead - 1) {
		heap = malloc(lead + n + 1);
		if (heap && json_dumpb(o, heap + lead, n, DUMP_FLAGS) == n)
			buf = heap;
		else
			n = 0;
	}
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	if (lead)
		buf[0] = '\n';
	buf[lead + n] = '\n';
	len = lead + n + 1;
	do
		w = write(a->fd, buf, len);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		ret = -errno;
	} else if ((size_t)w != len) {
		/* Typically the disk filled up mid-line. */
		a->broken_line = 1;
		ret = -EIO;
	} else {
		a->broken_line = 0;
	}
out:
	free(heap);
	if (ret)
		count_error(a, ret, now_ns);
	return ret;
}

/* The record's keys in their order; the helpers other than set_time only fail with ENOMEM. */
static int build_record(json_t *o, const struct sl_audit_record *r)
{
	int ret = set_time(o, r->time_ns);

	if (ret)
		return ret;
	if (set_str(o, "verdict", r->verdict) || set_str(o, "point", r->point) ||
	    set_opt_str(o, "identity", r->identity) || set_opt_int(o, "cgroup_id", r->cgroup_id) ||
	    set_opt_str(o, "cgroup", r->cgroup_path) || set_opt_int(o, "pid", r->pid))
		return -ENOMEM;
	/* uid 0 is root, not unknown, when the pid says the task was known. */
	if (r->pid ? set_new(o, "uid", json_integer(r->uid)) : set_opt_int(o, "uid", r->uid))
		return -ENOMEM;
	if (set_opt_str(o, "comm", r->comm) || set_opt_str(o, "source", r->source) ||
	    set_str(o, "service", r->service) || set_opt_str(o, "frontend", r->frontend) ||
	    set_opt_str(o, "protocol", r->protocol))
		return -ENOMEM;
	return 0;
}

int sl_audit_write(struct sl_audit *a, const struct sl_audit_record *r, uint64_t now_ns)
{
	json_t *o;
	int ret;

	if (!a || !r)
		return -EINVAL;
	if (!take_token(a, now_ns)) {
		a->dropped_rate++;
		return 1;
	}
	o = json_object();
	ret = o ? build_record(o, r) : -ENOMEM;
	if (ret)
		count_error(a, ret, now_ns);
	else
		ret = write_line(a, o, now_ns);
	json_decref(o);
	if (!ret)
		a->written++;
	return ret;
}

int sl_audit_reopen(struct sl_audit *a)
{
	char msg[512];
	struct stat st;
	int fd, ret;

	ret = open_log(a->path, &fd, &st, msg, sizeof(msg));
	if (ret) {
		sl_warn("cannot reopen audit log, still writing to the old file", "error=\"%s\"",
			msg);
		return ret;
	}
	/* close() of a regular file reports nothing actionable here: every line already had its
	 * own write(2) result. */
	close(a->fd);
	a->fd = fd;
	/* A new, empty file holds no broken line to terminate. */
	if (st.st_size == 0)
		a->broken_line = 0;
	return 0;
}

void sl_audit_stats(const struct sl_audit *a, struct sl_audit_stats *out)
{
	out->written = a->written;
	out->dropped_rate = a->dropped_rate;
	out->write_errors = a->write_errors;
}

uint64_t sl_audit_flush_dropped(struct sl_audit *a, uint64_t now_ns)
{
	uint64_t pending = a->dropped_rate - a->dropped_reported;
	json_t *o;
	int ret;

	if (!pending)
		return 0;
	o = json_object();
	ret = o ? set_time(o, 0) : -ENOMEM;
	if (!ret && (set_new(o, "event", json_string("audit_dropped")) ||
		     set_new(o, "dropped", json_integer((json_int_t)pending))))
		ret = -ENOMEM;
	if (ret)
		count_error(a, ret, now_ns);
	else
		ret = write_line(a, o, now_ns);
	json_decref(o);
	if (ret)
		return 0;
	a->dropped_reported += pending;
	return pending;
}

void sl_audit_close(struct sl_audit *a)
{
	if (!a)
		return;
	close(a->fd);
	free(a->path);
	free(a);
}
