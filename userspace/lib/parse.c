// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int sl_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0])) {
		*why = "not an unsigned integer";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		*why = errno ? "number too large" : "not an unsigned integer";
		return -1;
	}
	if (v < min || v > max) {
		*why = "out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int sl_parse_duration(const char *s, uint64_t *ms, const char **why)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0])) {
		*why = "a duration is a number and a unit: 250ms, 2s, 5m, 1h";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno) {
		*why = "duration too large";
		return -1;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		if (v > UINT64_MAX / units[i].ms / 1000000) {
			*why = "duration too large";
			return -1;
		}
		*ms = v * units[i].ms;
		return 0;
	}
	*why = *end ? "unknown duration unit (use ms, s, m or h)"
		    : "a duration needs a unit: 250ms, 2s, 5m, 1h";
	return -1;
}

int sl_parse_hostport(const char *s, struct sl_sockaddr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs;
	uint64_t port;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (!s || !*s) {
		*why = "empty address";
		return -1;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			*why = "an IPv6 address is written [addr]:port";
			return -1;
		}
		hs = s + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
		out->family = SLUICE_AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "missing :port";
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			*why = "an IPv6 address is written [addr]:port";
			return -1;
		}
		hs = s;
		hl = (size_t)(colon - s);
		out->family = SLUICE_AF_INET;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "bad address";
		return -1;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (inet_pton(out->family == SLUICE_AF_INET ? AF_INET : AF_INET6, host, out->addr.a8) !=
	    1) {
		*why = out->family == SLUICE_AF_INET ? "bad IPv4 address" : "bad IPv6 address";
		return -1;
	}
	if (sl_parse_uint(colon + 1, 1, 65535, &port, why)) {
		*why = "port must be 1..65535";
		return -1;
	}
	out->port = (uint16_t)port;
	return 0;
}

void sl_format_hostport(const struct sl_sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (!inet_ntop(sa->family == SLUICE_AF_INET ? AF_INET : AF_INET6, sa->addr.a8, host,
		       sizeof(host))) {
		snprintf(buf, len, "?:%u", sa->port);
		return;
	}
	if (sa->family == SLUICE_AF_INET6)
		snprintf(buf, len, "[%s]:%u", host, sa->port);
	else
		snprintf(buf, len, "%s:%u", host, sa->port);
}

int sl_sockaddr_equal(const struct sl_sockaddr *a, const struct sl_sockaddr *b)
{
	return a->family == b->family && a->port == b->port &&
	       !memcmp(a->addr.a8, b->addr.a8, sizeof(a->addr.a8));
}

int sl_sockaddr_cmp(const struct sl_sockaddr *a, const struct sl_sockaddr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return memcmp(a->addr.a8, b->addr.a8, sizeof(a->addr.a8));
}

int sl_parse_cidr(const char *s, struct sl_cidr *c, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	uint64_t prefix;
	unsigned int max, bits;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf)) {
		*why = "too long";
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	if (slash)
		buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, c->addr.a8) == 1) {
		c->family = SLUICE_AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr.a8) == 1) {
		c->family = SLUICE_AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	prefix = max;
	if (slash && sl_parse_uint(slash + 1, 0, max, &prefix, why))
		return -1;
	c->prefix = (uint8_t)prefix;
	/* No bits beyond the prefix: "198.18.1.5/24" is most likely a mistake. */
	for (bits = (unsigned int)prefix; bits < max; bits++)
		if (c->addr.a8[bits / 8] & (0x80 >> (bits % 8))) {
			*why = "has address bits set beyond its prefix length";
			return -1;
		}
	return 0;
}

void sl_format_cidr(const struct sl_cidr *c, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family == SLUICE_AF_INET ? AF_INET : AF_INET6, c->addr.a8, host,
		       sizeof(host)))
		snprintf(host, sizeof(host), "?");
	snprintf(buf, len, "%s/%u", host, c->prefix);
}

int sl_cidr_contains(const struct sl_cidr *c, uint8_t family, const union sluice_addr *a)
{
	unsigned int whole = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr.a8, a->a8, whole))
		return 0;
	return !rest || !((c->addr.a8[whole] ^ a->a8[whole]) & (0xff00 >> rest));
}

int sl_sockaddr_v4mapped(const struct sl_sockaddr *a, struct sl_sockaddr *v4)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (a->family != SLUICE_AF_INET6 || memcmp(a->addr.a8, mapped, sizeof(mapped)))
		return 0;
	if (v4) {
		memset(v4, 0, sizeof(*v4));
		v4->family = SLUICE_AF_INET;
		v4->port = a->port;
		memcpy(v4->addr.a8, &a->addr.a8[12], 4);
	}
	return 1;
}

int sl_url_host_addr(const char *url, struct sl_sockaddr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h, *end;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!strncmp(url, "http://", 7))
		h = url + 7;
	else if (!strncmp(url, "https://", 8))
		h = url + 8;
	else
		return -1;
	if (*h == '[') {
		end = strchr(++h, ']');
		out->family = SLUICE_AF_INET6;
	} else {
		end = h + strcspn(h, ":/");
		out->family = SLUICE_AF_INET;
	}
	if (!end)
		return -1;
	len = (size_t)(end - h);
	if (!len || len >= sizeof(host))
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	return inet_pton(out->family == SLUICE_AF_INET ? AF_INET : AF_INET6, host, out->addr.a8) ==
		       1
		   ? 0
		   : -1;
}
