// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The hashed lookups that replaced linear ones (issue #17): same answers and same messages as
 * before, at a size where the old ones were quadratic. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define N_SVC 3000

/* N_SVC services s0..s{N-1} on 10.96.(i/250).(i%250+1):80, then extra. */
static char *gen(const char *extra)
{
	size_t cap = (size_t)N_SVC * 64 + strlen(extra) + 64, off = 0;
	char *y = malloc(cap);

	cr_assert_not_null(y);
	off +=
	    (size_t)snprintf(y + off, cap - off, "agent: {limits: {services: 4096}}\nservices:\n");
	for (int i = 0; i < N_SVC; i++)
		off += (size_t)snprintf(y + off, cap - off,
					"  - {name: s%d, frontend: '10.96.%d.%d:80'}\n", i, i / 250,
					i % 250 + 1);
	snprintf(y + off, cap - off, "%s", extra);
	return y;
}

static void expect_problems(const char *extra, size_t n, const char *const *msgs)
{
	struct sl_config cfg;
	struct sl_problems d = {0};
	char *y = gen(extra);
	int rc = sl_config_parse("t.yaml", y, strlen(y), &cfg, &d);

	cr_assert_eq(rc, n ? -1 : 0, "rc %d for:\n%s", rc, extra);
	cr_assert_eq(d.n, n, "%zu problems, want %zu (first: %s)", d.n, n,
		     d.n ? d.list[0].text : "none");
	for (size_t i = 0; i < n; i++)
		cr_assert(strstr(d.list[i].text, msgs[i]), "problem %zu is \"%s\", want \"%s\"", i,
			  d.list[i].text, msgs[i]);
	if (!rc)
		sl_config_free(&cfg);
	sl_problems_free(&d);
	free(y);
}

Test(scale_lookup, valid_large_config)
{
	/* Same frontend, other protocol: no clash. */
	expect_problems("  - {name: u, frontend: '10.96.1.1:80', protocol: udp}\n", 0, NULL);
}

Test(scale_lookup, frontend_before_name)
{
	const char *m[] = {"frontend of 's2700' is already used by service 's300' (tcp)",
			   "duplicate service name 's2700'"};

	expect_problems("  - {name: s2700, frontend: '10.96.1.51:80'}\n", 2, m);
}

Test(scale_lookup, name_before_frontend)
{
	const char *m[] = {"duplicate service name 's100'",
			   "frontend of 's100' is already used by service 's2900' (tcp)"};

	expect_problems("  - {name: s100, frontend: '10.96.11.151:80'}\n", 2, m);
}

Test(scale_lookup, same_service_twice)
{
	const char *m[] = {"duplicate service name 's1234'"};

	expect_problems("  - {name: s1234, frontend: '10.96.4.235:80'}\n", 1, m);
}

Test(scale_lookup, frontend_only)
{
	const char *m[] = {"frontend of 'new' is already used by service 's2999' (tcp)"};

	expect_problems("  - {name: new, frontend: '10.96.11.250:80'}\n", 1, m);
}

/* A dropped service is not indexed: a third one clashes with the first only. */
Test(scale_lookup, dropped_not_indexed)
{
	const char *m[] = {"duplicate service name 's5'", "duplicate service name 's5'"};

	expect_problems("  - {name: s5, frontend: '10.96.0.6:80'}\n"
			"  - {name: s5, frontend: '10.96.0.6:80'}\n",
			2, m);
}
