// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The logger's formats: logfmt, and journal (syslog priority prefixes), and
 * how $JOURNAL_STREAM is recognised. Each test captures stderr in a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "log.h"

struct capture {
	FILE *file;
	int saved;
};

/* Point stderr (fd 2) at a fresh temporary file. */
static void capture_start(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	cr_assert_not_null(c->file);
	c->saved = dup(STDERR_FILENO);
	cr_assert_geq(c->saved, 0);
	cr_assert_geq(dup2(fileno(c->file), STDERR_FILENO), 0);
}

/* Put stderr back and return what was written (caller frees). */
static char *capture_end(struct capture *c)
{
	char *text;
	long len;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	len = ftell(c->file);
	cr_assert_geq(len, 0);
	text = calloc(1, (size_t)len + 1);
	cr_assert_not_null(text);
	rewind(c->file);
	cr_assert_eq(fread(text, 1, (size_t)len, c->file), (size_t)len);
	fclose(c->file);
	return text;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(log, logfmt_is_the_default)
{
	struct capture c;
	char *out;

	capture_start(&c);
	sl_info("service added", "service=%s backends=%d", "web", 3);
	out = capture_end(&c);
	cr_expect_eq(strncmp(out, "ts=", 3), 0, "a logfmt line starts with ts=: %s", out);
	cr_expect_not_null(
	    strstr(out, " level=info msg=\"service added\" service=web backends=3\n"), "got: %s",
	    out);
	cr_expect_eq(count_lines(out), 1);
	free(out);
}

Test(log, journal_prefixes_each_level_with_its_syslog_priority)
{
	static const struct {
		enum sl_log_level level;
		const char *prefix, *name;
	} want[] = {
	    {SL_LOG_DEBUG, "<7>ts=", "level=debug"},
	    {SL_LOG_INFO, "<6>ts=", "level=info"},
	    {SL_LOG_WARN, "<4>ts=", "level=warn"},
	    {SL_LOG_ERROR, "<3>ts=", "level=error"},
	};

	sl_log_set_level(SL_LOG_DEBUG);
	sl_log_set_format(SL_LOG_FMT_JOURNAL);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct capture c;
		char *out;

		capture_start(&c);
		sl_log(want[i].level, "event", "k=%d", (int)i);
		out = capture_end(&c);
		cr_expect_eq(strncmp(out, want[i].prefix, strlen(want[i].prefix)), 0,
			     "level %d: want prefix %s, got: %s", want[i].level, want[i].prefix,
			     out);
		cr_expect_not_null(strstr(out, want[i].name), "got: %s", out);
		cr_expect_eq(count_lines(out), 1, "got: %s", out);
		free(out);
	}
}

Test(log, journal_keeps_one_prefix_for_a_multi_line_message)
{
	struct capture c;
	char *out;

	sl_log_set_format(SL_LOG_FMT_JOURNAL);
	capture_start(&c);
	sl_warn("verifier said\nsomething", "source=libbpf");
	out = capture_end(&c);
	cr_expect_eq(strncmp(out, "<4>", 3), 0, "got: %s", out);
	cr_expect_null(strstr(out + 3, "<4>"), "one prefix only: %s", out);
	cr_expect_eq(count_lines(out), 1, "newlines in the message are escaped: %s", out);
	free(out);
}

Test(log, journal_honours_the_threshold)
{
	struct capture c;
	char *out;

	sl_log_set_format(SL_LOG_FMT_JOURNAL);
	sl_log_set_level(SL_LOG_WARN);
	capture_start(&c);
	sl_info("not shown");
	sl_error("shown");
	out = capture_end(&c);
	cr_expect_eq(count_lines(out), 1, "got: %s", out);
	cr_expect_eq(strncmp(out, "<3>", 3), 0, "got: %s", out);
	free(out);
}

Test(log, logfmt_after_journal_has_no_prefix)
{
	struct capture c;
	char *out;

	sl_log_set_format(SL_LOG_FMT_JOURNAL);
	sl_log_set_format(SL_LOG_FMT_LOGFMT);
	capture_start(&c);
	sl_error("plain");
	out = capture_end(&c);
	cr_expect_eq(strncmp(out, "ts=", 3), 0, "got: %s", out);
	free(out);
}

Test(log, parse_format)
{
	enum sl_log_format f = SL_LOG_FMT_LOGFMT;

	cr_expect_eq(sl_log_parse_format("journal", &f), 0);
	cr_expect_eq(f, SL_LOG_FMT_JOURNAL);
	cr_expect_eq(sl_log_parse_format("logfmt", &f), 0);
	cr_expect_eq(f, SL_LOG_FMT_LOGFMT);
	cr_expect_eq(sl_log_parse_format("json", &f), -1);
	cr_expect_eq(sl_log_parse_format("", &f), -1);
	cr_expect_eq(sl_log_parse_format("Journal", &f), -1);
}

Test(log, journal_stream_must_name_stderr)
{
	struct capture c;
	struct stat st;
	char env[64];
	int is, other, bad;

	capture_start(&c);
	cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	is = sl_log_stderr_is_journal();
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	other = sl_log_stderr_is_journal();
	setenv("JOURNAL_STREAM", "garbage", 1);
	bad = sl_log_stderr_is_journal();
	unsetenv("JOURNAL_STREAM");
	free(capture_end(&c));
	cr_expect_eq(is, 1, "JOURNAL_STREAM naming stderr's device and inode is the journal");
	cr_expect_eq(other, 0, "another inode (stderr redirected elsewhere) is not");
	cr_expect_eq(bad, 0, "an unparsable value is not");
	cr_expect_eq(sl_log_stderr_is_journal(), 0, "no JOURNAL_STREAM is not");
}

/* Every field value is escaped, not only msg: an etcd key, a URL path or a
 * peer's message cannot forge a line or a field. */
Test(log, field_values_cannot_forge)
{
	struct capture c;
	char *out;

	capture_start(&c);
	sl_log(SL_LOG_INFO, "m", "key=%s path=\"%s\" n=%zu err=%d pct=%.1f id=%llu",
	       "/a\nts=x level=error msg=\"forged\"", "x\" level=error fake=\"1", (size_t)7, -3,
	       2.5, 18446744073709551615ULL);
	sl_log(SL_LOG_INFO, "m", "plain=%s empty=%s cut=\"%.3s\" pc=100%%", "ok", "", "abcdef");
	out = capture_end(&c);
	cr_assert_eq(count_lines(out), 2, "no line forged:\n%s", out);
	cr_assert(strstr(out, "key=\"/a\\nts=x level=error msg=\\\"forged\\\"\""), "%s", out);
	cr_assert(strstr(out, "path=\"x\\\" level=error fake=\\\"1\""), "%s", out);
	cr_assert(strstr(out, " n=7 err=-3 pct=2.5 id=18446744073709551615\n"), "%s", out);
	cr_assert(strstr(out, "plain=ok empty=\"\" cut=\"abc\" pc=100%\n"), "%s", out);
	free(out);
}
