// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A service's close_on_removal (README, "Configuration"): false by default, true or false
 * when given, anything else refused at its position.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "config.h"

static const char *const yaml_fmt = "services:\n"
				    "  - name: web\n"
				    "    frontend: 198.19.0.10:80\n"
				    "%s";

static int parse(const char *extra, struct sl_config *cfg, struct sl_problems *d)
{
	char yaml[512];

	snprintf(yaml, sizeof(yaml), yaml_fmt, extra);
	return sl_config_parse("t.yaml", yaml, strlen(yaml), cfg, d);
}

Test(config_close_on_removal, default_true_false)
{
	const char *extra[] = {"", "    close_on_removal: true\n", "    close_on_removal: false\n"};
	const int want[] = {0, 1, 0};

	for (size_t i = 0; i < 3; i++) {
		struct sl_problems d = {0};
		struct sl_config cfg;

		cr_assert_eq(parse(extra[i], &cfg, &d), 0, "case %zu: %s", i,
			     d.n ? d.list[0].text : "");
		cr_assert_eq(cfg.n_services, 1);
		cr_expect_eq(cfg.services[0].close_on_removal, want[i], "case %zu", i);
		sl_config_free(&cfg);
	}
}

Test(config_close_on_removal, refused_value)
{
	struct sl_problems d = {0};
	struct sl_config cfg;

	cr_assert_neq(parse("    close_on_removal: maybe\n", &cfg, &d), 0);
	cr_assert_geq(d.n, 1);
	cr_expect(strstr(d.list[0].text, "t.yaml:4:23: ") == d.list[0].text, "%s", d.list[0].text);
	cr_expect(strstr(d.list[0].text, "close_on_removal"), "%s", d.list[0].text);
	sl_problems_free(&d);
}
