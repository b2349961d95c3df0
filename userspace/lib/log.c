// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

/* The logger's threshold is process-wide configuration, set once from main(). */
static enum sl_log_level log_threshold = SL_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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
	fprintf(stderr, "ts=%s.%03ldZ level=%s msg=", when, ts.tv_nsec / 1000000,
		level_names[level]);
	log_quoted(msg);
	if (fields && *fields) {
		fputc(' ', stderr);
		vfprintf(stderr, fields, ap);
	}
	fputc('\n', stderr);
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
