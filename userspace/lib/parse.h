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

/* An address prefix of either family. */
struct sl_cidr {
	union sluice_addr addr;
	uint8_t family;
	uint8_t prefix; /* 0..32 or 0..128 */
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
/* An order of addresses (family, port, address), for sorting and search trees: <0, 0, >0. */
int sl_sockaddr_cmp(const struct sl_sockaddr *a, const struct sl_sockaddr *b);

/* "198.18.1.0/24", "2001:db8:1::/64", or an address alone (/32, /128); no address bits beyond
 * the prefix. 0, or -1 with *why. */
int sl_parse_cidr(const char *s, struct sl_cidr *c, const char **why);

/* Formats as sl_parse_cidr reads, always with the prefix length. */
void sl_format_cidr(const struct sl_cidr *c, char *buf, size_t len);

/* Address a (of family 'family') lies in c: same family, same first c->prefix bits. */
int sl_cidr_contains(const struct sl_cidr *c, uint8_t family, const union sluice_addr *a);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d): 1, with its IPv4 form (port kept) in *v4
 * when v4 is not NULL. Such a frontend or backend is never reached: sockets of IPv4 peers
 * are IPv4 in the socket hooks. */
int sl_sockaddr_v4mapped(const struct sl_sockaddr *a, struct sl_sockaddr *v4);

/* The host of "http://HOST:PORT/..." or "https://[v6]:PORT" when it is an address literal:
 * 0 with *out (port 0), or -1 when it is a name or the URL is not of that form. */
int sl_url_host_addr(const char *url, struct sl_sockaddr *out);

#endif /* SLUICE_PARSE_H */
