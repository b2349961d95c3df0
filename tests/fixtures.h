/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small helpers that several test files share: a config parsed from a string, its problems as
 * one line for failure messages, and whole lines of a text page. No asserts in here: the tests
 * decide (tests/world.h has the helpers for the real maps).
 */
#ifndef SLUICE_TESTS_FIXTURES_H
#define SLUICE_TESTS_FIXTURES_H

#include "config.h"

/* The file name test_config_parse gives the config: problems start "test.yaml:LINE:COL: ". */
#define TEST_CONFIG_FILE "test.yaml"

/* sl_config_parse of a NUL-terminated yaml, named TEST_CONFIG_FILE. */
int test_config_parse(const char *yaml, struct sl_config *cfg, struct sl_problems *d);

/* All of d's problems, each on a line of its own, or " (none)"; for failure messages. The
 * text is in a static buffer, good until the next call. */
const char *test_problems_text(const struct sl_problems *d);

/* 1 if text holds 'line' as a whole line (from a line start to a '\n'), else 0. */
int test_has_line(const char *text, const char *line);

/* Expect text to hold that whole line; a failure shows the text. */
#define EXPECT_LINE(text, line)                                                                    \
	cr_expect(test_has_line(text, line), "no line %s in:\n%s", line, text)

#endif /* SLUICE_TESTS_FIXTURES_H */
