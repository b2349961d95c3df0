// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The policy audit log: its JSON lines, file modes, token bucket, summary of drops, reopening
 * after logrotate, and write errors. Each test works in its own mkdtemp directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "audit.h"

#define SEC 1000000000ULL

/* 2026-11-26T21:40:55.123456789Z */
#define T0 1795729255123456789ULL

static char tmp_dir[] = "/tmp/sluice-audit-XXXXXX";
static char log_path[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
	snprintf(log_path, sizeof(log_path), "%s/audit.log", tmp_dir);
}

static void teardown(void)
{
	nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(audit, .init = setup, .fini = teardown);

static const struct sl_audit_record full_record = {
    .time_ns = T0,
    .verdict = "deny",
    .point = "connect",
    .identity = "frontend",
    .cgroup_id = 4242,
    .cgroup_path = "/sys/fs/cgroup/frontend.slice/app.service",
    .pid = 1234,
    .uid = 1000,
    .comm = "curl",
    .source = "198.18.1.2:41000",
    .service = "web",
    .frontend = "10.96.0.10:80",
    .protocol = "tcp",
};

/* What tc_ingress knows: no task, no cgroup, no identity. */
static const struct sl_audit_record tc_record = {
    .time_ns = T0,
    .verdict = "deny",
    .point = "tc_ingress",
    .identity = "",
    .cgroup_path = "",
    .comm = "",
    .source = "[2001:db8::2]:41000",
    .service = "web",
    .frontend = "[fd00::10]:80",
    .protocol = "udp",
};

/* The whole file, NUL-terminated (caller frees), or NULL. */
static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r"), *m;

	if (!f)
		return NULL;
	m = open_memstream(&text, &len);
	if (m) {
		char buf[4096];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	}
	fclose(f);
	return text;
}

/* Each line of the file parsed as JSON, in a JSON array; a line that does not parse is a JSON
 * null. NULL if the file cannot be read or does not end with a newline. */
static json_t *read_lines(const char *path)
{
	char *text = slurp(path), *line, *nl;
	json_t *lines, *v;

	if (!text)
		return NULL;
	lines = json_array();
	for (line = text; lines && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) {
			json_decref(lines);
			lines = NULL;
			break;
		}
		*nl = '\0';
		v = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
		json_array_append_new(lines, v ? v : json_null());
	}
	free(text);
	return lines;
}

static size_t count_lines(const char *path)
{
	json_t *lines = read_lines(path);
	size_t n = lines ? json_array_size(lines) : (size_t)-1;

	json_decref(lines);
	return n;
}

/* 1 if o's keys are exactly keys, in that order. */
static int keys_are(const json_t *o, const char *const *keys, size_t n)
{
	const char *key;
	json_t *v;
	size_t i = 0;

	json_object_foreach((json_t *)o, key, v)
	{
		if (i >= n || strcmp(key, keys[i]))
			return 0;
		i++;
	}
	return i == n;
}

static int is_rfc3339_ms(const char *s)
{
	regex_t re;
	int ok;

	if (regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
		    REG_EXTENDED | REG_NOSUB))
		return 0;
	ok = s && !regexec(&re, s, 0, NULL, 0);
	regfree(&re);
	return ok;
}

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static struct sl_audit *open_log(unsigned int rate, unsigned int burst)
{
	char err[256] = "";
	struct sl_audit *a = sl_audit_open(log_path, rate, burst, err, sizeof(err));

	cr_assert_not_null(a, "sl_audit_open %s: %s", log_path, err);
	return a;
}

Test(audit, record_round_trip)
{
	static const char want[] =
	    "{\"time\":\"2026-11-26T21:40:55.123Z\",\"verdict\":\"deny\",\"point\":\"connect\","
	    "\"identity\":\"frontend\",\"cgroup_id\":4242,"
	    "\"cgroup\":\"/sys/fs/cgroup/frontend.slice/app.service\",\"pid\":1234,\"uid\":1000,"
	    "\"comm\":\"curl\",\"source\":\"198.18.1.2:41000\",\"service\":\"web\","
	    "\"frontend\":\"10.96.0.10:80\",\"protocol\":\"tcp\"}\n";
	static const char *const keys[] = {
	    "time", "verdict", "point",	 "identity", "cgroup_id", "cgroup",  "pid",
	    "uid",  "comm",    "source", "service",  "frontend",  "protocol"};
	struct sl_audit *a = open_log(100, 200);
	struct sl_audit_stats st;
	json_t *lines, *o;
	char *text;

	cr_assert_eq(sl_audit_write(a, &full_record, 1), 0);
	sl_audit_stats(a, &st);
	cr_expect_eq(st.written, 1);
	sl_audit_close(a);

	text = slurp(log_path);
	cr_assert_not_null(text);
	cr_expect_str_eq(text, want);
	free(text);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 1);
	o = json_array_get(lines, 0);
	cr_assert(json_is_object(o), "the line parses as a JSON object");
	cr_expect(keys_are(o, keys, sizeof(keys) / sizeof(keys[0])), "keys and their order");
	cr_expect(is_rfc3339_ms(str_of(o, "time")));
	cr_expect_str_eq(str_of(o, "time"), "2026-11-26T21:40:55.123Z");
	cr_expect_eq(json_integer_value(json_object_get(o, "cgroup_id")), 4242);
	cr_expect_eq(json_integer_value(json_object_get(o, "pid")), 1234);
	cr_expect_eq(json_integer_value(json_object_get(o, "uid")), 1000);
	cr_expect_str_eq(str_of(o, "cgroup"), "/sys/fs/cgroup/frontend.slice/app.service");
	cr_expect_str_eq(str_of(o, "comm"), "curl");
	json_decref(lines);
}

Test(audit, unknown_fields_are_omitted)
{
	static const char *const keys[] = {"time",    "verdict",  "point",   "source",
					   "service", "frontend", "protocol"};
	struct sl_audit_record bare = {.verdict = "allow", .point = "sendmsg", .service = "dns"};
	struct sl_audit *a = open_log(100, 200);
	json_t *lines, *o;

	cr_assert_eq(sl_audit_write(a, &tc_record, 1), 0);
	cr_assert_eq(sl_audit_write(a, &bare, 2), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 2);
	o = json_array_get(lines, 0);
	cr_expect(keys_are(o, keys, sizeof(keys) / sizeof(keys[0])), "tc_ingress keys");
	cr_expect_str_eq(str_of(o, "source"), "[2001:db8::2]:41000");
	cr_expect_str_eq(str_of(o, "frontend"), "[fd00::10]:80");
	cr_expect_str_eq(str_of(o, "protocol"), "udp");

	/* verdict, point and service are always there; time 0 means now. */
	o = json_array_get(lines, 1);
	cr_expect(keys_are(o, (const char *const[]){"time", "verdict", "point", "service"}, 4));
	cr_expect(is_rfc3339_ms(str_of(o, "time")), "time: %s", str_of(o, "time"));
	cr_expect_str_neq(str_of(o, "time"), "1970-01-01T00:00:00.000Z");
	json_decref(lines);
}

Test(audit, uid_zero_is_root_when_the_pid_is_known)
{
	struct sl_audit_record r = full_record;
	struct sl_audit *a = open_log(0, 0);
	json_t *lines, *o;

	r.uid = 0;
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	r.pid = 0;
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 2);
	o = json_object_get(json_array_get(lines, 0), "uid");
	cr_expect(json_is_integer(o) && json_integer_value(o) == 0, "uid 0 of a known task");
	cr_expect_null(json_object_get(json_array_get(lines, 1), "uid"), "no task, no uid");
	cr_expect_null(json_object_get(json_array_get(lines, 1), "pid"));
	json_decref(lines);
}

Test(audit, time_keeps_milliseconds_and_truncates)
{
	struct sl_audit_record r = tc_record;
	struct sl_audit *a = open_log(0, 0);
	json_t *lines;

	r.time_ns = 1795729255999999999ULL;
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	r.time_ns = 1795729255000000001ULL;
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 2);
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "time"), "2026-11-26T21:40:55.999Z");
	cr_expect_str_eq(str_of(json_array_get(lines, 1), "time"), "2026-11-26T21:40:55.000Z");
	json_decref(lines);
}

Test(audit, bytes_that_are_not_utf8_do_not_lose_the_line)
{
	struct sl_audit_record r = full_record;
	struct sl_audit *a = open_log(0, 0);
	json_t *lines;

	r.comm = "bad\xff\xfe";
	r.cgroup_path = "/sys/fs/cgroup/caf\xc3\xa9.slice"; /* valid UTF-8: kept */
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 1);
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "comm"), "bad??");
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "cgroup"),
			 "/sys/fs/cgroup/caf\xc3\xa9.slice");
	json_decref(lines);
}

Test(audit, a_long_line_is_written_whole)
{
	struct sl_audit_record r = full_record;
	struct sl_audit *a = open_log(0, 0);
	char path[3001];
	json_t *lines;

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	r.cgroup_path = path;
	cr_assert_eq(sl_audit_write(a, &r, 1), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 1);
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "cgroup"), path);
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "protocol"), "tcp");
	json_decref(lines);
}

Test(audit, new_file_is_0600_in_new_0700_directories)
{
	char err[256] = "", dir1[PATH_MAX], dir2[PATH_MAX];
	struct sl_audit *a;
	struct stat st;
	mode_t old = umask(0); /* the modes must not depend on the umask */

	snprintf(dir1, sizeof(dir1), "%s/var", tmp_dir);
	snprintf(dir2, sizeof(dir2), "%s/var/sluice", tmp_dir);
	snprintf(log_path, sizeof(log_path), "%s/var/sluice/audit.log", tmp_dir);
	a = sl_audit_open(log_path, 100, 200, err, sizeof(err));
	umask(old);
	cr_assert_not_null(a, "%s", err);
	sl_audit_close(a);

	cr_assert_eq(stat(log_path, &st), 0);
	cr_expect(S_ISREG(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0600, "file mode %o", st.st_mode & 07777);
	cr_assert_eq(stat(dir2, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700, "dir mode %o", st.st_mode & 07777);
	cr_assert_eq(stat(dir1, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700, "dir mode %o", st.st_mode & 07777);
	cr_assert_eq(stat(tmp_dir, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0700, "an existing directory is left as it was");
}

Test(audit, existing_0644_file_becomes_0600_and_is_appended_to)
{
	struct sl_audit *a;
	struct stat st;
	int fd;

	fd = open(log_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchmod(fd, 0644), 0);
	cr_assert_eq(write(fd, "{\"old\":1}\n", 10), 10);
	cr_assert_eq(close(fd), 0);

	a = open_log(100, 200);
	cr_assert_eq(stat(log_path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600, "file mode %o", st.st_mode & 07777);
	cr_assert_eq(sl_audit_write(a, &full_record, 1), 0);
	sl_audit_close(a);
	cr_expect_eq(count_lines(log_path), 2, "the old line is kept");
}

Test(audit, rate_limit_burst_then_refill)
{
	struct sl_audit *a = open_log(10, 5);
	struct sl_audit_stats st;
	int i, written = 0, dropped = 0, ret;

	for (i = 0; i < 20; i++) {
		ret = sl_audit_write(a, &full_record, 7 * SEC);
		written += ret == 0;
		dropped += ret == 1;
	}
	cr_expect_eq(written, 5, "the burst");
	cr_expect_eq(dropped, 15);

	/* A second later the bucket is full again: burst, not rate, lines at once. */
	written = dropped = 0;
	for (i = 0; i < 20; i++) {
		ret = sl_audit_write(a, &full_record, 8 * SEC);
		written += ret == 0;
		dropped += ret == 1;
	}
	cr_expect_eq(written, 5);
	cr_expect_eq(dropped, 15);

	/* Spread over a second, rate lines get through: one per 100 ms. */
	written = 0;
	for (i = 1; i <= 10; i++) {
		ret = sl_audit_write(a, &full_record, 8 * SEC + (uint64_t)i * SEC / 10);
		written += ret == 0;
	}
	cr_expect_eq(written, 10);
	cr_expect_eq(sl_audit_write(a, &full_record, 9 * SEC), 1, "the 11th in that second");

	sl_audit_stats(a, &st);
	cr_expect_eq(st.written, 20);
	cr_expect_eq(st.dropped_rate, 31);
	cr_expect_eq(st.write_errors, 0);
	sl_audit_close(a);
	cr_expect_eq(count_lines(log_path), 20);
}

Test(audit, token_bucket_arithmetic_does_not_overflow)
{
	struct sl_audit *a = open_log(1U << 31, 1);

	cr_expect_eq(sl_audit_write(a, &tc_record, 0), 0);
	cr_expect_eq(sl_audit_write(a, &tc_record, 0), 1);
	/* 2^33 ns * 2^31 lines/s overflows 64 bits to 0 in a naive product. */
	cr_expect_eq(sl_audit_write(a, &tc_record, 1ULL << 33), 0);
	cr_expect_eq(sl_audit_write(a, &tc_record, 1ULL << 33), 1);
	sl_audit_close(a);

	a = open_log(UINT_MAX, UINT_MAX);
	cr_expect_eq(sl_audit_write(a, &tc_record, UINT64_MAX), 0);
	sl_audit_close(a);

	/* A clock that goes back refills nothing, and does not wrap around. */
	a = open_log(1, 1);
	cr_expect_eq(sl_audit_write(a, &tc_record, 10 * SEC), 0);
	cr_expect_eq(sl_audit_write(a, &tc_record, 5 * SEC), 1);
	cr_expect_eq(sl_audit_write(a, &tc_record, 11 * SEC - 1), 1);
	cr_expect_eq(sl_audit_write(a, &tc_record, 11 * SEC), 0);
	sl_audit_close(a);
}

Test(audit, rate_zero_is_no_limit)
{
	struct sl_audit *a = open_log(0, 0);
	int i, written = 0;

	for (i = 0; i < 1000; i++)
		written += sl_audit_write(a, &tc_record, 1) == 0;
	cr_expect_eq(written, 1000);
	cr_expect_eq(sl_audit_flush_dropped(a, 1), 0);
	sl_audit_close(a);
	cr_expect_eq(count_lines(log_path), 1000);
}

Test(audit, flush_dropped_writes_a_summary_and_resets)
{
	static const char *const keys[] = {"time", "event", "dropped"};
	struct sl_audit *a = open_log(10, 5);
	struct sl_audit_stats st;
	json_t *lines, *o;
	int i;

	cr_expect_eq(sl_audit_flush_dropped(a, 1), 0, "nothing dropped yet");
	for (i = 0; i < 20; i++)
		sl_audit_write(a, &full_record, 1);
	cr_expect_eq(sl_audit_flush_dropped(a, 1), 15);
	cr_expect_eq(sl_audit_flush_dropped(a, 2), 0, "reset: nothing dropped since");
	sl_audit_write(a, &full_record, 3);
	cr_expect_eq(sl_audit_flush_dropped(a, 3), 1);
	sl_audit_stats(a, &st);
	cr_expect_eq(st.written, 5, "summary lines are not records");
	cr_expect_eq(st.dropped_rate, 16, "the total is not reset");
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 7);
	o = json_array_get(lines, 5);
	cr_expect(keys_are(o, keys, 3));
	cr_expect(is_rfc3339_ms(str_of(o, "time")));
	cr_expect_str_eq(str_of(o, "event"), "audit_dropped");
	cr_expect_eq(json_integer_value(json_object_get(o, "dropped")), 15);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(lines, 6), "dropped")), 1);
	json_decref(lines);
}

Test(audit, reopen_after_rename_starts_a_new_file)
{
	char rotated[PATH_MAX];
	struct sl_audit *a = open_log(100, 200);
	struct stat st;
	json_t *lines;

	snprintf(rotated, sizeof(rotated), "%s.1", log_path);
	cr_assert_eq(sl_audit_write(a, &full_record, 1), 0);
	cr_assert_eq(rename(log_path, rotated), 0);
	cr_assert_eq(sl_audit_write(a, &full_record, 2), 0, "still the renamed file");
	cr_assert_eq(sl_audit_reopen(a), 0);
	cr_assert_eq(sl_audit_write(a, &tc_record, 3), 0);
	sl_audit_close(a);

	cr_expect_eq(count_lines(rotated), 2);
	lines = read_lines(log_path);
	cr_assert_not_null(lines, "a new file at the path");
	cr_assert_eq(json_array_size(lines), 1);
	cr_expect_str_eq(str_of(json_array_get(lines, 0), "point"), "tc_ingress");
	json_decref(lines);
	cr_assert_eq(stat(log_path, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0600);
}

Test(audit, failed_reopen_keeps_the_old_file)
{
	char rotated[PATH_MAX];
	struct sl_audit *a = open_log(100, 200);

	snprintf(rotated, sizeof(rotated), "%s.1", log_path);
	cr_assert_eq(rename(log_path, rotated), 0);
	cr_assert_eq(mkdir(log_path, 0700), 0); /* the path cannot be opened for writing */
	cr_expect_eq(sl_audit_reopen(a), -EISDIR);
	cr_expect_eq(sl_audit_write(a, &full_record, 1), 0);
	sl_audit_close(a);
	cr_expect_eq(count_lines(rotated), 1);
}

Test(audit, open_failure_sets_errno_and_says_why)
{
	char err[256] = "", path[PATH_MAX];
	struct sl_audit *a;
	int fd;

	fd = open(log_path, O_WRONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/sub/audit.log", log_path); /* under a regular file */
	errno = 0;
	a = sl_audit_open(path, 1, 1, err, sizeof(err));
	cr_expect_null(a);
	cr_expect_eq(errno, ENOTDIR);
	cr_expect_not_null(strstr(err, path), "names the path: %s", err);
	cr_expect_not_null(strstr(err, strerror(ENOTDIR)), "says why: %s", err);
	sl_audit_close(a);
}

struct capture {
	FILE *file;
	int saved;
};

/* Point stderr at a temporary file; 0 or -1. */
static int capture_start(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	if (!c->file)
		return -1;
	c->saved = dup(STDERR_FILENO);
	if (c->saved < 0 || dup2(fileno(c->file), STDERR_FILENO) < 0) {
		fclose(c->file);
		return -1;
	}
	return 0;
}

/* Put stderr back; how many times needle was written. */
static int capture_count(struct capture *c, const char *needle)
{
	char line[1024];
	int n = 0;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->file);
	while (fgets(line, sizeof(line), c->file))
		n += strstr(line, needle) != NULL;
	fclose(c->file);
	return n;
}

Test(audit, write_error_is_counted_and_warned_once_per_10s)
{
	struct sl_audit *a;
	struct sl_audit_stats st;
	struct stat before, after;
	struct capture c;
	char err[256] = "";

	cr_assert_eq(stat("/dev/full", &before), 0);
	a = sl_audit_open("/dev/full", 100, 200, err, sizeof(err));
	cr_assert_not_null(a, "%s", err);
	cr_assert_eq(stat("/dev/full", &after), 0);
	cr_expect_eq(after.st_mode, before.st_mode, "a device's mode is left alone");

	cr_assert_eq(capture_start(&c), 0);
	cr_expect_eq(sl_audit_write(a, &full_record, 100 * SEC), -ENOSPC);
	cr_expect_eq(sl_audit_write(a, &full_record, 101 * SEC), -ENOSPC);
	cr_expect_eq(sl_audit_write(a, &full_record, 109 * SEC), -ENOSPC);
	cr_expect_eq(capture_count(&c, "cannot write audit log"), 1, "one warning in 10 s");

	cr_assert_eq(capture_start(&c), 0);
	cr_expect_eq(sl_audit_write(a, &full_record, 110 * SEC), -ENOSPC);
	cr_expect_eq(capture_count(&c, "errors=4"), 1, "warned again after 10 s, with the count");

	sl_audit_stats(a, &st);
	cr_expect_eq(st.write_errors, 4);
	cr_expect_eq(st.written, 0);
	cr_expect_eq(st.dropped_rate, 0);
	sl_audit_close(a);
}

Test(audit, flush_dropped_keeps_the_count_when_it_cannot_write)
{
	char err[256] = "";
	struct sl_audit *a = sl_audit_open("/dev/full", 1, 1, err, sizeof(err));
	struct sl_audit_stats st;
	struct capture c;

	cr_assert_not_null(a, "%s", err);
	cr_assert_eq(capture_start(&c), 0);
	cr_expect_eq(sl_audit_write(a, &full_record, 1), -ENOSPC);
	cr_expect_eq(sl_audit_write(a, &full_record, 1), 1);
	cr_expect_eq(sl_audit_flush_dropped(a, 1), 0);
	capture_count(&c, "");
	sl_audit_stats(a, &st);
	cr_expect_eq(st.dropped_rate, 1);
	cr_expect_eq(st.write_errors, 2, "the record and the summary line");
	sl_audit_close(a);
}

/* A short write (here: RLIMIT_FSIZE cuts the line) leaves a line without its newline; the next
 * line starts on a line of its own, so only the cut one fails to parse. */
Test(audit, a_short_write_breaks_only_its_own_line)
{
	struct sl_audit *a = open_log(0, 0);
	struct rlimit old, lim;
	struct capture c;
	struct stat st;
	json_t *lines;
	int ret;

	cr_assert_eq(sl_audit_write(a, &full_record, 1), 0);
	cr_assert_eq(stat(log_path, &st), 0);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 10;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	cr_assert_eq(capture_start(&c), 0);
	ret = sl_audit_write(a, &full_record, 2);
	capture_count(&c, "");
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	cr_expect_eq(ret, -EIO);
	cr_expect_eq(sl_audit_write(a, &tc_record, 3), 0);
	sl_audit_close(a);

	lines = read_lines(log_path);
	cr_assert_not_null(lines);
	cr_assert_eq(json_array_size(lines), 3);
	cr_expect(json_is_object(json_array_get(lines, 0)));
	cr_expect(json_is_null(json_array_get(lines, 1)), "the cut line");
	cr_expect_str_eq(str_of(json_array_get(lines, 2), "point"), "tc_ingress");
	json_decref(lines);
}
