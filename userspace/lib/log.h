/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One leveled logger: logfmt lines on stderr, optionally with syslog priorities. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum sl_log_level {
	SL_LOG_DEBUG = 0,
	SL_LOG_INFO = 1,
	SL_LOG_WARN = 2,
	SL_LOG_ERROR = 3,
};

void sl_log_set_level(enum sl_log_level level);
int sl_log_parse_level(const char *s, enum sl_log_level *out);

/* logfmt: plain lines. journal: each line starts with its syslog priority,
 * "<7>" debug, "<6>" info, "<4>" warn, "<3>" error, for journald. */
enum sl_log_format {
	SL_LOG_FMT_LOGFMT = 0,
	SL_LOG_FMT_JOURNAL = 1,
};

void sl_log_set_format(enum sl_log_format fmt);
int sl_log_parse_format(const char *s, enum sl_log_format *out);
/* 1 if stderr is the stream that $JOURNAL_STREAM ("DEV:INODE") names. */
int sl_log_stderr_is_journal(void);
/* Route libbpf's own output through the logger, one level lower. */
void sl_log_hook_libbpf(void);

/*
 * sl_log(level, "msg", "key=%s key2=\"%s\" n=%d", ...): 'msg' is quoted for
 * logfmt. Every %s value in the fields is escaped (quotes, backslashes,
 * control bytes): inside the caller's quotes as it is, and quoted when the
 * caller wrote key=%s and the value holds a space, '=', a quote or a control
 * byte. No value can forge a field or a line.
 */
void sl_log(enum sl_log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

#define sl_debug(msg, ...) sl_log(SL_LOG_DEBUG, msg, "" __VA_ARGS__)
#define sl_info(msg, ...)  sl_log(SL_LOG_INFO, msg, "" __VA_ARGS__)
#define sl_warn(msg, ...)  sl_log(SL_LOG_WARN, msg, "" __VA_ARGS__)
#define sl_error(msg, ...) sl_log(SL_LOG_ERROR, msg, "" __VA_ARGS__)

#endif /* SLUICE_LOG_H */
