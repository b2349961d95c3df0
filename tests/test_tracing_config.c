// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tracing: block of the config (userspace/lib/config_tracing.c, README "Tracing"):
 * defaults, every key, each invalid value refused at its FILE:LINE:COL naming its key path
 * and why, what a reload may change (sample) and what needs a restart (the rest), and the
 * sample's threshold for the datapath.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "config.h"
#include "fixtures.h"

Test(config_tracing, absent_is_off)
{
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_eq(test_config_parse("services: []\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_expect_eq(cfg.agent.tracing.on, 0);
	cr_expect(cfg.trace_sample == 0);
	sl_config_free(&cfg);
}

Test(config_tracing, defaults)
{
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_eq(test_config_parse("tracing: {}\n", &cfg, &d), 0, "%s", test_problems_text(&d));
	cr_expect_eq(cfg.agent.tracing.on, 1);
	cr_expect_str_eq(cfg.agent.tracing.endpoint, "http://127.0.0.1:4318");
	cr_expect(cfg.trace_sample == 0);
	cr_expect_eq(cfg.agent.tracing.queue_size, 4096);
	cr_expect_eq(cfg.agent.tracing.batch_size, 512);
	cr_expect_eq(cfg.agent.tracing.batch_delay_ms, 1000);
	cr_expect_eq(cfg.agent.tracing.timeout_ms, 10000);
	sl_config_free(&cfg);
}

Test(config_tracing, every_key)
{
	static const char yaml[] = "tracing:\n"
				   "  endpoint: https://otel.example:4318/prefix/\n"
				   "  sample: 0.25\n"
				   "  queue_size: 100\n"
				   "  batch_size: 10\n"
				   "  batch_delay: 250ms\n"
				   "  timeout: 2s\n";
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "%s", test_problems_text(&d));
	cr_expect_str_eq(cfg.agent.tracing.endpoint, "https://otel.example:4318/prefix/");
	cr_expect(cfg.trace_sample == 0.25, "sample %g", cfg.trace_sample);
	cr_expect_eq(cfg.agent.tracing.queue_size, 100);
	cr_expect_eq(cfg.agent.tracing.batch_size, 10);
	cr_expect_eq(cfg.agent.tracing.batch_delay_ms, 250);
	cr_expect_eq(cfg.agent.tracing.timeout_ms, 2000);
	sl_config_free(&cfg);
}

Test(config_tracing, small_queue_cuts_the_default_batch)
{
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_eq(test_config_parse("tracing: {queue_size: 8}\n", &cfg, &d), 0, "%s",
		     test_problems_text(&d));
	cr_expect_eq(cfg.agent.tracing.batch_size, 8);
	sl_config_free(&cfg);
}

Test(config_tracing, sample_values)
{
	static const struct {
		const char *text;
		double want;
	} ok[] = {{"0", 0}, {"0.0", 0}, {"1", 1}, {"1.0", 1}, {"0.05", 0.05}, {"1e-3", 0.001}};
	char yaml[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sl_problems d = {0};
		struct sl_config cfg;

		snprintf(yaml, sizeof(yaml), "tracing: {sample: %s}\n", ok[i].text);
		cr_assert_eq(test_config_parse(yaml, &cfg, &d), 0, "sample %s: %s", ok[i].text,
			     test_problems_text(&d));
		cr_expect(cfg.trace_sample == ok[i].want, "sample %s: %g", ok[i].text,
			  cfg.trace_sample);
		sl_config_free(&cfg);
	}
}

struct bad {
	const char *yaml;
	unsigned int line, col;
	const char *field, *says;
};

static const struct bad bad_cases[] = {
    {"tracing: {sample: 1.5}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: -0.1}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: nan}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: inf}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: 0x1p-1}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: 10%}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: \"\"}\n", 1, 19, "tracing.sample", "from 0 to 1"},
    {"tracing: {sample: [1]}\n", 1, 19, "tracing.sample", "must be a scalar"},
    {"tracing: {endpoint: \"grpc://h:4317\"}\n", 1, 21, "tracing.endpoint",
     "must be an http:// or https:// URL"},
    {"tracing: {endpoint: \"ftp://h:4318\"}\n", 1, 21, "tracing.endpoint",
     "must be an http:// or https:// URL"},
    {"tracing: {endpoint: \"127.0.0.1:4318\"}\n", 1, 21, "tracing.endpoint", "http:// or https://"},
    {"tracing: {endpoint: \"http:///v1\"}\n", 1, 21, "tracing.endpoint", "has no host"},
    {"tracing: {endpoint: \"http://h:4318/?a=b\"}\n", 1, 21, "tracing.endpoint", "has a query"},
    {"tracing: {endpoint: \"http://h:4318/#x\"}\n", 1, 21, "tracing.endpoint", "has a fragment"},
    {"tracing: {endpoint: \"http://u:pw@h:4318\"}\n", 1, 21, "tracing.endpoint", "has credentials"},
    {"tracing: {endpoint: \"http://h :4318\"}\n", 1, 21, "tracing.endpoint", "not a URL"},
    {"tracing: {endpoint: \"http://h:99999\"}\n", 1, 21, "tracing.endpoint", "not a URL"},
    {"tracing: {queue_size: 0}\n", 1, 23, "tracing.queue_size", "1..1048576"},
    {"tracing: {queue_size: 1048577}\n", 1, 23, "tracing.queue_size", "1..1048576"},
    {"tracing: {batch_size: 0}\n", 1, 23, "tracing.batch_size", "1..1048576"},
    {"tracing: {queue_size: 10, batch_size: 11}\n", 1, 10, "tracing.batch_size",
     "tracing.batch_size 11 is larger than tracing.queue_size 10"},
    {"tracing: {batch_delay: 0s}\n", 1, 24, "tracing.batch_delay", "out of range"},
    {"tracing: {batch_delay: 2m}\n", 1, 24, "tracing.batch_delay", "out of range"},
    {"tracing: {timeout: 50ms}\n", 1, 20, "tracing.timeout", "out of range"},
    {"tracing: {timeout: soon}\n", 1, 20, "tracing.timeout", "'tracing.timeout'"},
    {"tracing: {sampel: 1}\n", 1, 11, "tracing.sampel", "tracing: unknown key 'sampel'"},
    {"tracing: {sample: 1, sample: 0}\n", 1, 22, "tracing.sample", "duplicate key"},
    {"tracing: on\n", 1, 10, "tracing", "tracing must be a mapping"},
    {"tracing:\n", 1, 9, "tracing", "tracing must be a mapping"},
};

/* Indices: the strings stay in the test's own copy of the table. */
ParameterizedTestParameters(config_tracing, refused)
{
	static size_t idx[sizeof(bad_cases) / sizeof(bad_cases[0])];

	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, sizeof(idx) / sizeof(idx[0]));
}

ParameterizedTest(size_t *ip, config_tracing, refused)
{
	const struct bad *c = &bad_cases[*ip];
	struct sl_problems d = {0};
	struct sl_config cfg;
	char where[64];

	cr_assert_eq(test_config_parse(c->yaml, &cfg, &d), -1, "accepted: %s", c->yaml);
	cr_assert_eq(d.n, 1, "%s: want one problem:%s", c->yaml, test_problems_text(&d));
	snprintf(where, sizeof(where), "%s:%u:%u: ", TEST_CONFIG_FILE, c->line, c->col);
	cr_expect(!strncmp(d.list[0].text, where, strlen(where)), "%s: \"%s\", want at %s", c->yaml,
		  d.list[0].text, where);
	cr_expect_str_eq(d.list[0].field, c->field, "%s: field \"%s\", want \"%s\"", c->yaml,
			 d.list[0].field, c->field);
	cr_expect(strstr(d.list[0].msg, c->says), "%s: \"%s\", want it to say \"%s\"", c->yaml,
		  d.list[0].msg, c->says);
	cr_expect_null(cfg.services);
	sl_problems_free(&d);
}

/* A reload may change tracing.sample; anything else of the block needs a restart. */
Test(config_tracing, reload_rules)
{
	static const struct {
		const char *yaml, *why;
	} cases[] = {
	    {"tracing: {sample: 0.5}\n", NULL},
	    {"services: []\n", "tracing cannot change while running"},
	    {"tracing: {endpoint: \"http://127.0.0.1:4319\"}\n",
	     "tracing.endpoint cannot change while running"},
	    {"tracing: {queue_size: 10}\n", "tracing.queue_size cannot change"},
	    {"tracing: {batch_size: 10}\n", "tracing.batch_size cannot change"},
	    {"tracing: {batch_delay: 2s}\n", "tracing.batch_delay cannot change"},
	    {"tracing: {timeout: 2s}\n", "tracing.timeout cannot change"},
	};
	struct sl_problems d = {0};
	struct sl_config base, next;

	cr_assert_eq(test_config_parse("tracing: {sample: 0.1}\n", &base, &d), 0, "%s",
		     test_problems_text(&d));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;

		cr_assert_eq(test_config_parse(cases[i].yaml, &next, &d), 0, "%s",
			     test_problems_text(&d));
		why = sl_agent_cfg_diff(&base.agent, &next.agent);
		if (!cases[i].why)
			cr_expect_null(why, "%s: refused: %s", cases[i].yaml, why);
		else
			cr_expect(why && strstr(why, cases[i].why), "%s: \"%s\", want \"%s\"",
				  cases[i].yaml, why ? why : "(allowed)", cases[i].why);
		sl_config_free(&next);
	}
	sl_config_free(&base);
}

Test(config_tracing, threshold)
{
	cr_expect_eq(sl_trace_threshold(0), 0);
	cr_expect_eq(sl_trace_threshold(-1), 0);
	cr_expect_eq(sl_trace_threshold(1), UINT32_MAX);
	cr_expect_eq(sl_trace_threshold(0.5), 1u << 31);
	cr_expect_eq(sl_trace_threshold(0.25), 1u << 30);
	cr_expect_eq(sl_trace_threshold(1e-12), 1, "any sample above 0 traces sometimes");
	cr_expect_eq(sl_trace_threshold(0.9999999999), UINT32_MAX - 1, "below 1 is not 'always'");
}
