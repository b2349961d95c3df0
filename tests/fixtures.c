// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Helpers the test files share: see fixtures.h. */
#include <stdio.h>
#include <string.h>

#include "fixtures.h"

int test_config_parse(const char *yaml, struct sl_config *cfg, struct sl_problems *d)
{
	return sl_config_parse(TEST_CONFIG_FILE, yaml, strlen(yaml), cfg, d);
}

const char *test_problems_text(const struct sl_problems *d)
{
	static char buf[4096];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\n    %s", d->list[i].text);
	return d->n ? buf : " (none)";
}

int test_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}
