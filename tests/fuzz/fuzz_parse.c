// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the value parsers (sl_parse_uint, sl_parse_duration,
 * sl_parse_hostport) on arbitrary strings. What parses must format and parse
 * back to the same value; what does not must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_sockaddr sa, back;
	char hp[SL_HOSTPORT_LEN];
	const char *why = NULL;
	uint64_t v, ms;
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (sl_parse_uint(s, 0, UINT64_MAX, &v, &why)) {
		if (!why)
			abort();
	}
	why = NULL;
	if (!sl_parse_uint(s, 1, 65535, &v, &why) && (v < 1 || v > 65535))
		abort();
	why = NULL;
	if (sl_parse_duration(s, &ms, &why) && !why)
		abort();
	why = NULL;
	if (sl_parse_hostport(s, &sa, &why)) {
		if (!why)
			abort();
	} else {
		if (!sa.port || (sa.family != SLUICE_AF_INET && sa.family != SLUICE_AF_INET6))
			abort();
		sl_format_hostport(&sa, hp, sizeof(hp));
		if (sl_parse_hostport(hp, &back, &why) || !sl_sockaddr_equal(&sa, &back))
			abort();
	}
	free(s);
	return 0;
}
