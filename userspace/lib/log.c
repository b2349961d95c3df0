// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "log.h"

/* The logger's threshold is process-wide configuration, set once from main(). */
static enum sl_log_level log_threshold = SL_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The output format, process-wide like the threshold. */
static enum sl_log_format log_format = SL_LOG_FMT_LOGFMT;

/* syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
static const int level_priorities[] = {7, 6, 4, 3};

static const char *const format_names[] = {"logfmt", "journal"};

void sl_log_set_level(enum sl_log_level level)
{
	log_threshold = level;
}

int sl_log_parse_level(const char *s, enum sl_log_level *out)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum sl_log_level)i;
			return 0;
		}
	}
	return -1;
}

void sl_log_set_format(enum sl_log_format fmt)
{
	log_format = fmt;
}

int sl_log_parse_format(const char *s, enum sl_log_format *out)
{
	for (unsigned int i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (!strcmp(s, format_names[i])) {
			*out = (enum sl_log_format)i;
			return 0;
		}
	}
	return -1;
}

int sl_log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets it for a service whose stderr is the journal; a child
	 * that inherited it with stderr redirected elsewhere must not match. */
	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void log_quoted(const char *s)
{
	fputc('"', stderr);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', stderr);
		if (*s == '\n') {
			fputs("\\n", stderr);
			continue;
		}
		fputc(*s, stderr);
	}
	fputc('"', stderr);
}

static void log_vemit(enum sl_log_level level, const char *msg, const char *fields, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	char when[32] = "";

	if (level < log_threshold)
		return;
	if (!clock_gettime(CLOCK_REALTIME, &ts) && gmtime_r(&ts.tv_sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One line, whole, even with the etcd client's thread logging too. */
	flockfile(stderr);
	if (log_format == SL_LOG_FMT_JOURNAL)
		fprintf(stderr, "<%d>", level_priorities[level]);
	fprintf(stderr, "ts=%s.%03ldZ level=%s msg=", when, ts.tv_nsec / 1000000,
		level_names[level]);
	log_quoted(msg);
	if (fields && *fields) {
		fputc(' ', stderr);
		vfprintf(stderr, fields, ap);
	}
	fputc('\n', stderr);
	funlockfile(stderr);
}

void sl_log(enum sl_log_level level, const char *msg, const char *fields, ...)
{
	va_list ap;

	va_start(ap, fields);
	log_vemit(level, msg, fields, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	enum sl_log_level level = lvl == LIBBPF_WARN ? SL_LOG_INFO : SL_LOG_DEBUG;
	char text[16384], *line, *save = NULL;

	if (level < log_threshold)
		return 0;
	vsnprintf(text, sizeof(text), fmt, ap);
	/* A verifier log is many lines: one log line each. */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		sl_log(level, line, "source=libbpf");
	return 0;
}

void sl_log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
