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

/* A value's bytes, escaped so that nothing in it can end the line, the quotes
 * around it or the field: \" \\ \n \r \t, other control bytes as \xNN. */
static void log_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(stderr, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\t')
			fputs("\\t", stderr);
		else if (c < 0x20 || c == 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
}

static void log_quoted(const char *s)
{
	fputc('"', stderr);
	log_escaped(s, strlen(s));
	fputc('"', stderr);
}

/* Does an unquoted value need quotes to stay one logfmt value? */
static int needs_quotes(const char *s, size_t n)
{
	if (!n)
		return 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == 0x7f)
			return 1;
	return 0;
}

/* One %s argument: escaped inside the caller's quotes, or quoted when the
 * caller wrote key=%s and the value would break the field. */
static void log_string_arg(const char *v, int prec, int quoted)
{
	size_t n;

	if (!v)
		v = "(null)";
	n = prec >= 0 ? strnlen(v, (size_t)prec) : strlen(v);
	if (quoted) {
		log_escaped(v, n);
	} else if (needs_quotes(v, n)) {
		fputc('"', stderr);
		log_escaped(v, n);
		fputc('"', stderr);
	} else {
		fwrite(v, 1, n, stderr);
	}
}

/* One numeric (or %c, %p) conversion, spec[0..len) such as "%-5llu", with its
 * argument taken by its length modifier. */
static void log_other_arg(const char *spec, size_t len, va_list *ap)
{
	char fmt[32];
	char conv = spec[len - 1];
	int l = 0, h = 0, z = 0, j = 0, t = 0, L = 0;

	if (len >= sizeof(fmt) || memchr(spec, '*', len))
		return;
	memcpy(fmt, spec, len);
	fmt[len] = '\0';
	for (size_t i = 1; i + 1 < len; i++) {
		l += spec[i] == 'l';
		h += spec[i] == 'h';
		z += spec[i] == 'z';
		j += spec[i] == 'j';
		t += spec[i] == 't';
		L += spec[i] == 'L';
	}
	if (strchr("fFeEgGaA", conv))
		L ? fprintf(stderr, fmt, va_arg(*ap, long double))
		  : fprintf(stderr, fmt, va_arg(*ap, double));
	else if (conv == 'p')
		fprintf(stderr, fmt, va_arg(*ap, void *));
	else if (l >= 2 || j)
		fprintf(stderr, fmt, va_arg(*ap, long long));
	else if (l || z || t)
		fprintf(stderr, fmt, va_arg(*ap, long));
	else
		fprintf(stderr, fmt, va_arg(*ap, int)); /* int, char, short: promoted */
	(void)h;
}

/* The fields, "key=%s key2=\"%s\" n=%zu", with every string value escaped
 * (see log_string_arg): no value can forge a field or a line. */
static void log_fields(const char *f, va_list ap)
{
	va_list args;

	va_copy(args, ap);
	for (const char *p = f; *p; p++) {
		const char *spec = p;
		int prec = -1;

		if (*p != '%') {
			fputc(*p, stderr);
			continue;
		}
		if (p[1] == '%') {
			fputc('%', stderr);
			p++;
			continue;
		}
		p++;
		while (*p && strchr("-+ #0", *p))
			p++;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			if (*p == '*') {
				prec = va_arg(args, int);
				p++;
			} else {
				prec = atoi(p);
				while (*p >= '0' && *p <= '9')
					p++;
			}
		}
		while (*p && strchr("hlzjtL", *p))
			p++;
		if (!*p)
			break;
		if (*p == 's')
			log_string_arg(va_arg(args, const char *), prec,
				       spec > f && spec[-1] == '"');
		else
			log_other_arg(spec, (size_t)(p - spec) + 1, &args);
	}
	va_end(args);
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
		log_fields(fields, ap);
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
