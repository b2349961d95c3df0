/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parsers for the small value types of the config and the CLI. */
#ifndef SLUICE_PARSE_H
#define SLUICE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

/* An address and port of either family; port in host order. */
struct sl_sockaddr {
	union sluice_addr addr;
	uint16_t port;
	uint8_t family; /* SLUICE_AF_INET or SLUICE_AF_INET6 */
};

/* Longest "[v6]:port" text, with its NUL. */
#define SL_HOSTPORT_LEN 56

/*
 * "250ms", "2s", "5m", "1h" (an integer and a unit) -> milliseconds.
 * Returns 0, or -1 with *why set to a static explanation.
 */
int sl_parse_duration(const char *s, uint64_t *ms, const char **why);

/* "198.18.1.2:8080" or "[2001:db8::2]:8080". Port 1..65535. */
int sl_parse_hostport(const char *s, struct sl_sockaddr *out, const char **why);

/* Unsigned decimal integer within [min, max]. */
int sl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why);

/* Formats as sl_parse_hostport reads. */
void sl_format_hostport(const struct sl_sockaddr *sa, char *buf, size_t len);

int sl_sockaddr_equal(const struct sl_sockaddr *a, const struct sl_sockaddr *b);

#endif /* SLUICE_PARSE_H */
