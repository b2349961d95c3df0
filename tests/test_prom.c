// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of userspace/lib/prom.c, the Prometheus text format writer:
 * escaping, cumulative histogram buckets, value spelling, HELP/TYPE once per
 * family, the sticky failure flag on misuse, and an end-to-end check of the
 * output with `promtool check metrics` when promtool is installed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "prom.h"

#define PROMTOOL "/usr/bin/promtool"

/* Number of (possibly overlapping) occurrences of needle in s. */
static size_t count_of(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s++;
	}
	return n;
}

/* The writer's text; NULL when it failed. */
static const char *text_of(const struct sl_prom *p)
{
	size_t len;
	const char *s = sl_prom_data(p, &len);

	if (s && strlen(s) != len)
		return NULL;
	return s;
}

/* ---- escaping --------------------------------------------------------------- */

Test(prom, label_escaping)
{
	struct sl_prom *p = sl_prom_new();
	const char *const lv[] = {"service", "we\"b", "path", "C:\\dir", "note", "a\nb", NULL};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "x_total", "X.", SL_PROM_COUNTER);
	sl_prom_sample(p, lv, 1);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_str_eq(s, "# HELP x_total X.\n"
			    "# TYPE x_total counter\n"
			    "x_total{service=\"we\\\"b\",path=\"C:\\\\dir\",note=\"a\\nb\"} 1\n");
	sl_prom_free(p);
}

Test(prom, help_escaping)
{
	struct sl_prom *p = sl_prom_new();
	const char *s;

	cr_assert_not_null(p);
	/* Backslash and newline are escaped in HELP; a double quote is not. */
	sl_prom_family(p, "x", "a\\b\nc \"d\"", SL_PROM_GAUGE);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_str_eq(s, "# HELP x a\\\\b\\nc \"d\"\n# TYPE x gauge\n");
	sl_prom_free(p);
}

Test(prom, invalid_utf8_replaced)
{
	struct sl_prom *p = sl_prom_new();
	/* A stray continuation byte, a truncated sequence, an overlong '/', a
	 * surrogate; then valid "é" and "€" that must pass unchanged. */
	const char *const lv[] = {"interface",
				  "a\x80"
				  "b\xc3"
				  "c\xc0\xaf"
				  "d\xed\xa0\x80"
				  "e",
				  "name", "\xc3\xa9\xe2\x82\xac", NULL};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "x", "X.", SL_PROM_GAUGE);
	sl_prom_sample(p, lv, 1);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_str_eq(s, "# HELP x X.\n# TYPE x gauge\n"
			    "x{interface=\"a\xef\xbf\xbd"
			    "b\xef\xbf\xbd"
			    "c\xef\xbf\xbd\xef\xbf\xbd"
			    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			    "e\",name=\"\xc3\xa9\xe2\x82\xac\"} 1\n");
	sl_prom_free(p);
}

/* ---- histograms ------------------------------------------------------------- */

Test(prom, histogram_cumulative)
{
	struct sl_prom *p = sl_prom_new();
	const char *const lv[] = {"service", "web", NULL};
	const double bounds[] = {0.1, 0.5, 1};
	const uint64_t counts[] = {1, 2, 3};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "d_seconds", "D.", SL_PROM_HISTOGRAM);
	sl_prom_histogram(p, lv, bounds, counts, 3, 4, 7.25);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_str_eq(s, "# HELP d_seconds D.\n"
			    "# TYPE d_seconds histogram\n"
			    "d_seconds_bucket{service=\"web\",le=\"0.1\"} 1\n"
			    "d_seconds_bucket{service=\"web\",le=\"0.5\"} 3\n"
			    "d_seconds_bucket{service=\"web\",le=\"1\"} 6\n"
			    "d_seconds_bucket{service=\"web\",le=\"+Inf\"} 10\n"
			    "d_seconds_sum{service=\"web\"} 7.25\n"
			    "d_seconds_count{service=\"web\"} 10\n");
	sl_prom_free(p);
}

Test(prom, histogram_without_labels_or_bounds)
{
	struct sl_prom *p = sl_prom_new();
	const double bounds[] = {0.005};
	const uint64_t counts[] = {UINT64_C(9007199254740993)};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "a", "A.", SL_PROM_HISTOGRAM);
	sl_prom_histogram(p, NULL, NULL, NULL, 0, 5, 0.5);
	sl_prom_family(p, "b", "B.", SL_PROM_HISTOGRAM);
	/* Counts are integers: exact beyond 2^53. */
	sl_prom_histogram(p, NULL, bounds, counts, 1, 0, 1);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_str_eq(s, "# HELP a A.\n# TYPE a histogram\n"
			    "a_bucket{le=\"+Inf\"} 5\n"
			    "a_sum 0.5\n"
			    "a_count 5\n"
			    "# HELP b B.\n# TYPE b histogram\n"
			    "b_bucket{le=\"0.005\"} 9007199254740993\n"
			    "b_bucket{le=\"+Inf\"} 9007199254740993\n"
			    "b_sum 1\n"
			    "b_count 9007199254740993\n");
	sl_prom_free(p);
}

/* ---- families and values ------------------------------------------------------ */

Test(prom, help_type_once_per_family)
{
	struct sl_prom *p = sl_prom_new();
	const char *const a[] = {"service", "a", NULL};
	const char *const b[] = {"service", "b", NULL};
	const double bounds[] = {1};
	const uint64_t counts[] = {1};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "c_total", "C.", SL_PROM_COUNTER);
	sl_prom_sample(p, a, 1);
	sl_prom_sample(p, b, 2);
	sl_prom_family(p, "h", "H.", SL_PROM_HISTOGRAM);
	sl_prom_histogram(p, a, bounds, counts, 1, 0, 1);
	sl_prom_histogram(p, b, bounds, counts, 1, 0, 1);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	cr_assert_eq(count_of(s, "# HELP "), 2, "%s", s);
	cr_assert_eq(count_of(s, "# TYPE "), 2, "%s", s);
	cr_assert_eq(count_of(s, "# HELP c_total C.\n# TYPE c_total counter\n"), 1, "%s", s);
	cr_assert_eq(count_of(s, "# HELP h H.\n# TYPE h histogram\n"), 1, "%s", s);
	/* Samples follow their own family's lines. */
	cr_assert(strstr(s, "c_total{service=\"b\"} 2\n") < strstr(s, "# HELP h "), "%s", s);
	cr_assert(strstr(s, "# HELP h ") < strstr(s, "h_bucket{service=\"a\""), "%s", s);
	cr_assert_eq(count_of(s, "h_count{"), 2, "%s", s);
	sl_prom_free(p);
}

Test(prom, value_formatting)
{
	struct sl_prom *p = sl_prom_new();
	const double v[] = {0,
			    1,
			    123456789012,
			    0.5,
			    0.1,
			    -2.5,
			    1e-9,
			    1e300,
			    1e15,
			    9007199254740992.0,
			    9007199254740994.0,
			    1e17,
			    NAN,
			    INFINITY,
			    -INFINITY};
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "g", "G.", SL_PROM_GAUGE);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		sl_prom_sample(p, NULL, v[i]);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	/* Integers up to 2^53 in full, even where %g would use an exponent (1e15). */
	cr_assert_str_eq(s, "# HELP g G.\n# TYPE g gauge\n"
			    "g 0\n"
			    "g 1\n"
			    "g 123456789012\n"
			    "g 0.5\n"
			    "g 0.1\n"
			    "g -2.5\n"
			    "g 1e-09\n"
			    "g 1e+300\n"
			    "g 1000000000000000\n"
			    "g 9007199254740992\n"
			    "g 9007199254740994\n"
			    "g 1e+17\n"
			    "g NaN\n"
			    "g +Inf\n"
			    "g -Inf\n");
	sl_prom_free(p);
}

Test(prom, values_round_trip)
{
	/* Values that need 16 or 17 digits must read back exactly. */
	const double v[] = {0.1 + 0.2, 1.0 / 3, 2.0 / 3 * 1e-300, 123456.789e10 + 0.5};
	struct sl_prom *p = sl_prom_new();
	const char *s;

	cr_assert_not_null(p);
	sl_prom_family(p, "g", "G.", SL_PROM_GAUGE);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		sl_prom_sample(p, NULL, v[i]);
	s = text_of(p);
	cr_assert_not_null(s, "writer failed");
	s = strstr(s, "\ng ");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *end;

		cr_assert_not_null(s, "sample %zu missing", i);
		cr_assert_eq(strtod(s + 3, &end), v[i], "sample %zu: %.20s", i, s + 3);
		cr_assert_eq(*end, '\n');
		s = strstr(end, "\ng ");
	}
	sl_prom_free(p);
}

Test(prom, buffer_grows)
{
	struct sl_prom *p = sl_prom_new();
	char value[64];
	const char *const lv[] = {"backend", value, NULL};
	const char *s;
	size_t len;

	cr_assert_not_null(p);
	sl_prom_family(p, "c_total", "C.", SL_PROM_COUNTER);
	for (int i = 0; i < 5000; i++) {
		snprintf(value, sizeof(value), "198.18.%d.%d:8080", i / 250, i % 250 + 1);
		sl_prom_sample(p, lv, i);
	}
	s = sl_prom_data(p, &len);
	cr_assert_not_null(s, "writer failed");
	cr_assert_eq(strlen(s), len);
	cr_assert_eq(count_of(s, "\n"), 5002);
	cr_assert_not_null(strstr(s, "\nc_total{backend=\"198.18.0.1:8080\"} 0\n"));
	cr_assert_not_null(strstr(s, "\nc_total{backend=\"198.18.19.250:8080\"} 4999\n"));
	sl_prom_free(p);
}

/* ---- misuse sets the sticky failure flag -------------------------------------- */

Test(prom, invalid_metric_names)
{
	const char *const bad[] = {"", "1abc", "a-b", "a b", "é", "a\n"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_prom *p = sl_prom_new();
		size_t len = 1;

		cr_assert_not_null(p);
		sl_prom_family(p, bad[i], "X.", SL_PROM_GAUGE);
		sl_prom_sample(p, NULL, 1);
		cr_expect(sl_prom_failed(p), "metric name \"%s\" accepted", bad[i]);
		cr_expect_null(sl_prom_data(p, &len), "data of a failed writer, name \"%s\"",
			       bad[i]);
		cr_expect_eq(len, 0);
		sl_prom_free(p);
	}
}

Test(prom, valid_names)
{
	struct sl_prom *p = sl_prom_new();
	const char *const lv[] = {"_x", "1", "Ab_9", "2", NULL};

	cr_assert_not_null(p);
	sl_prom_family(p, "_a:b_9", "X.", SL_PROM_GAUGE);
	sl_prom_sample(p, lv, 1);
	sl_prom_family(p, ":c", "X.", SL_PROM_COUNTER);
	cr_assert_not(sl_prom_failed(p));
	sl_prom_free(p);
}

Test(prom, invalid_labels)
{
	const char *const bad[][5] = {
	    {"a:b", "v", NULL},
	    {"1x", "v", NULL},
	    {"a-b", "v", NULL},
	    {"", "v", NULL},
	    {"__name__", "v", NULL},
	    {"a", "v", "a", "w", NULL},
	    {"a", NULL, NULL, NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_prom *p = sl_prom_new();

		cr_assert_not_null(p);
		sl_prom_family(p, "x", "X.", SL_PROM_GAUGE);
		cr_assert_not(sl_prom_failed(p));
		sl_prom_sample(p, bad[i], 1);
		cr_expect(sl_prom_failed(p), "labels #%zu (\"%s\") accepted", i, bad[i][0]);
		cr_expect_null(sl_prom_data(p, NULL));
		sl_prom_free(p);
	}
}

Test(prom, invalid_histograms)
{
	const double good[] = {0.1, 1};
	const double unsorted[] = {1, 0.1};
	const double equal[] = {1, 1};
	const double nan_bound[] = {0.1, NAN};
	const double inf_bound[] = {0.1, INFINITY};
	const uint64_t counts[] = {1, 2};
	const uint64_t huge[] = {UINT64_MAX, 1};
	const char *const le[] = {"le", "1", NULL};
	struct {
		const char *what;
		const char *const *labels;
		const double *bounds;
		const uint64_t *counts;
		uint64_t overflow;
	} bad[] = {
	    {"le label", le, good, counts, 0},
	    {"unsorted bounds", NULL, unsorted, counts, 0},
	    {"equal bounds", NULL, equal, counts, 0},
	    {"NaN bound", NULL, nan_bound, counts, 0},
	    {"+Inf bound", NULL, inf_bound, counts, 0},
	    {"NULL bounds", NULL, NULL, counts, 0},
	    {"NULL counts", NULL, good, NULL, 0},
	    {"count overflow", NULL, good, huge, 0},
	    {"overflow overflow", NULL, good, counts, UINT64_MAX},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sl_prom *p = sl_prom_new();

		cr_assert_not_null(p);
		sl_prom_family(p, "h", "H.", SL_PROM_HISTOGRAM);
		sl_prom_histogram(p, bad[i].labels, bad[i].bounds, bad[i].counts, 2,
				  bad[i].overflow, 1);
		cr_expect(sl_prom_failed(p), "%s accepted", bad[i].what);
		sl_prom_free(p);
	}
}

Test(prom, sample_without_family)
{
	struct sl_prom *p = sl_prom_new();
	const double bounds[] = {1};
	const uint64_t counts[] = {1};

	cr_assert_not_null(p);
	cr_assert_not(sl_prom_failed(p));
	sl_prom_sample(p, NULL, 1);
	cr_expect(sl_prom_failed(p), "a sample without a family accepted");
	sl_prom_free(p);

	p = sl_prom_new();
	cr_assert_not_null(p);
	sl_prom_histogram(p, NULL, bounds, counts, 1, 0, 1);
	cr_expect(sl_prom_failed(p), "a histogram without a family accepted");
	sl_prom_free(p);
}

Test(prom, sample_of_wrong_type)
{
	struct sl_prom *p = sl_prom_new();
	const double bounds[] = {1};
	const uint64_t counts[] = {1};

	cr_assert_not_null(p);
	sl_prom_family(p, "h", "H.", SL_PROM_HISTOGRAM);
	sl_prom_sample(p, NULL, 1);
	cr_expect(sl_prom_failed(p), "a plain sample in a histogram family accepted");
	sl_prom_free(p);

	p = sl_prom_new();
	cr_assert_not_null(p);
	sl_prom_family(p, "c_total", "C.", SL_PROM_COUNTER);
	sl_prom_histogram(p, NULL, bounds, counts, 1, 0, 1);
	cr_expect(sl_prom_failed(p), "a histogram in a counter family accepted");
	sl_prom_free(p);
}

Test(prom, family_misuse)
{
	struct sl_prom *p = sl_prom_new();

	cr_assert_not_null(p);
	sl_prom_family(p, "x", "X.", SL_PROM_GAUGE);
	sl_prom_family(p, "y", "Y.", SL_PROM_GAUGE);
	cr_assert_not(sl_prom_failed(p));
	sl_prom_family(p, "x", "X again.", SL_PROM_GAUGE);
	cr_expect(sl_prom_failed(p), "a family started twice accepted");
	sl_prom_free(p);

	p = sl_prom_new();
	cr_assert_not_null(p);
	sl_prom_family(p, "x", NULL, SL_PROM_GAUGE);
	cr_expect(sl_prom_failed(p), "NULL help accepted");
	sl_prom_free(p);

	p = sl_prom_new();
	cr_assert_not_null(p);
	sl_prom_family(p, "x", "X.", (enum sl_prom_type)7);
	cr_expect(sl_prom_failed(p), "type 7 accepted");
	sl_prom_free(p);
}

Test(prom, failure_is_sticky)
{
	struct sl_prom *p = sl_prom_new();

	cr_assert_not_null(p);
	sl_prom_sample(p, NULL, 1);
	cr_assert(sl_prom_failed(p));
	sl_prom_family(p, "x", "X.", SL_PROM_GAUGE);
	sl_prom_sample(p, NULL, 1);
	cr_expect(sl_prom_failed(p), "a valid family cleared the failure");
	cr_expect_null(sl_prom_data(p, NULL));
	sl_prom_free(p);

	/* A NULL writer (sl_prom_new() out of memory) is failed and inert. */
	cr_expect(sl_prom_failed(NULL));
	sl_prom_family(NULL, "x", "X.", SL_PROM_GAUGE);
	sl_prom_sample(NULL, NULL, 1);
	sl_prom_histogram(NULL, NULL, NULL, NULL, 0, 0, 0);
	cr_expect_null(sl_prom_data(NULL, NULL));
	sl_prom_free(NULL);
}

/* ---- end to end: promtool ----------------------------------------------------- */

/* The families of the README's metrics table that matter for the format, with awkward labels. */
static void write_representative(struct sl_prom *p)
{
	const char *const web_a[] = {"service", "web", "backend", "198.18.1.2:8080", NULL};
	const char *const web_b[] = {"service", "web", "backend", "[2001:db8::1]:8080", NULL};
	const char *const odd[] = {"service", "we\"ird\\svc\nname", "backend", "198.18.1.3:80",
				   NULL};
	const char *const web[] = {"service", "web", NULL};
	const char *const oddsvc[] = {"service", "we\"ird\\svc\nname", NULL};
	const char *const rej[] = {"service", "web", "reason", "no_backend", NULL};
	const char *const version[] = {"version", "0.1.0", NULL};
	const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
	const uint64_t counts[] = {0, 3, 10, 42, 7, 1, 0, 0, 0, 2};

	sl_prom_family(p, "sluice_connections_total", "Connections balanced to a backend.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, web_a, 123456789012);
	sl_prom_sample(p, web_b, 0);
	sl_prom_sample(p, odd, 7);
	sl_prom_family(p, "sluice_active_connections",
		       "Connections open now.\nCounted by sockops \\ per backend.", SL_PROM_GAUGE);
	sl_prom_sample(p, web_a, 3);
	sl_prom_sample(p, odd, 0);
	sl_prom_family(p, "sluice_connect_duration_seconds", "Time from connect() to established.",
		       SL_PROM_HISTOGRAM);
	sl_prom_histogram(p, web, bounds, counts, 10, 5, 12.3456);
	sl_prom_histogram(p, oddsvc, bounds, counts, 10, 0, 0.25);
	sl_prom_family(p, "sluice_rejected_connections_total", "Connections refused.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, rej, 1);
	sl_prom_family(p, "sluice_events_lost_total", "Ring buffer records dropped.",
		       SL_PROM_COUNTER);
	sl_prom_sample(p, NULL, 0);
	sl_prom_family(p, "sluice_map_fill_ratio", "Odd values, as a gauge.", SL_PROM_GAUGE);
	sl_prom_sample(p, web, NAN);
	sl_prom_sample(p, oddsvc, INFINITY);
	sl_prom_sample(p, rej, -0.125);
	sl_prom_family(p, "sluice_build_info", "Version of sluice.", SL_PROM_GAUGE);
	sl_prom_sample(p, version, 1);
}

Test(prom, promtool_check_metrics)
{
	char path[] = "/tmp/sluice-prom-XXXXXX";
	char cmd[128], out[4096];
	struct sl_prom *p = NULL;
	const char *s;
	size_t len, got;
	FILE *f;
	int fd, status;

	if (access(PROMTOOL, X_OK) != 0)
		cr_skip_test("%s not installed (Debian package prometheus)", PROMTOOL);

	p = sl_prom_new();
	cr_assert_not_null(p);
	write_representative(p);
	s = sl_prom_data(p, &len);
	cr_assert_not_null(s, "writer failed");

	fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp");
	got = (size_t)write(fd, s, len);
	close(fd);
	cr_assert_eq(got, len, "write %s", path);

	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", PROMTOOL, path);
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s", cmd);
	got = fread(out, 1, sizeof(out) - 1, f);
	out[got] = '\0';
	status = pclose(f);
	unlink(path);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "promtool check metrics: status %d, output:\n%s\ninput:\n%s", status, out, s);
	cr_expect_eq(got, 0, "promtool check metrics said:\n%s\ninput:\n%s", out, s);
	sl_prom_free(p);
}
