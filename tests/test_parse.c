// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit tests of userspace/lib/parse.c: durations, host:port, integers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "parse.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- durations ---------------------------------------------------------- */

Test(parse_duration, valid)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} cases[] = {
	    {"250ms", 250}, {"2s", 2000}, {"5m", 300000}, {"1h", 3600000},   {"0s", 0},
	    {"0ms", 0},	    {"1ms", 1},	  {"90s", 90000}, {"24h", 86400000}, {"007s", 7000},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why = NULL;
		uint64_t ms = 0xdeadbeef;
		int rc = sl_parse_duration(cases[i].in, &ms, &why);

		cr_assert_eq(rc, 0, "sl_parse_duration(\"%s\") = %d, want 0 (why: %s)", cases[i].in,
			     rc, why ? why : "(null)");
		cr_assert_eq(ms, cases[i].ms, "sl_parse_duration(\"%s\") = %llu ms, want %llu",
			     cases[i].in, (unsigned long long)ms, (unsigned long long)cases[i].ms);
	}
}

Test(parse_duration, invalid)
{
	static const struct {
		const char *in;
		const char *why; /* substring of the explanation */
	} cases[] = {
	    {"", "a duration is a number and a unit"},
	    {"5", "needs a unit"},
	    {"5x", "unknown duration unit"},
	    {"5 s", "unknown duration unit"},
	    {"5S", "unknown duration unit"},
	    {"1.5s", "unknown duration unit"},
	    {"5sec", "unknown duration unit"},
	    {"-1s", "a duration is a number and a unit"},
	    {"+1s", "a duration is a number and a unit"},
	    {" 1s", "a duration is a number and a unit"},
	    {"ms", "a duration is a number and a unit"},
	    {"99999999999999999999s", "too large"}, /* > UINT64_MAX: strtoull overflow */
	    {"18446744073709551615h", "too large"}, /* fits u64, product does not */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why = NULL;
		uint64_t ms = 12345;
		int rc = sl_parse_duration(cases[i].in, &ms, &why);

		cr_assert_eq(rc, -1, "sl_parse_duration(\"%s\") = %d (%llu ms), want -1",
			     cases[i].in, rc, (unsigned long long)ms);
		cr_assert_not_null(why, "sl_parse_duration(\"%s\") failed without a reason",
				   cases[i].in);
		cr_assert(strstr(why, cases[i].why),
			  "sl_parse_duration(\"%s\"): why = \"%s\", want \"%s\"", cases[i].in, why,
			  cases[i].why);
		cr_assert_eq(ms, 12345, "sl_parse_duration(\"%s\") wrote *ms on failure",
			     cases[i].in);
	}
}

/* Big values either fail or come back exact: never a wrapped product. */
Test(parse_duration, no_wraparound)
{
	static const struct {
		const char *num;
		const char *unit;
		uint64_t mult;
	} cases[] = {
	    {"5124095576030431", "h", 3600000ULL}, /* UINT64_MAX / 3600000: product fits */
	    {"5124095576030432", "h", 3600000ULL}, /* product wraps */
	    {"307445734561825861", "m", 60000ULL},
	    {"18446744073709552", "s", 1000ULL},
	    {"18446744073709", "ms", 1ULL},
	    {"1844674407370955", "s", 1000ULL},
	    {"10000000000000000000", "ms", 1ULL},
	    {"18446744073709551615", "ms", 1ULL}, /* UINT64_MAX itself */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char in[64];
		unsigned long long v = strtoull(cases[i].num, NULL, 10);
		const char *why = NULL;
		uint64_t ms = 0;
		int rc;

		snprintf(in, sizeof(in), "%s%s", cases[i].num, cases[i].unit);
		rc = sl_parse_duration(in, &ms, &why);
		if (v > UINT64_MAX / cases[i].mult)
			cr_assert_eq(rc, -1, "sl_parse_duration(\"%s\") = %llu ms: wrapped around",
				     in, (unsigned long long)ms);
		else if (rc == 0)
			cr_assert(ms / cases[i].mult == v && ms % cases[i].mult == 0,
				  "sl_parse_duration(\"%s\") = %llu ms, not %llu x %llu", in,
				  (unsigned long long)ms, v, (unsigned long long)cases[i].mult);
		else
			cr_assert(
			    why && strstr(why, "too large"),
			    "sl_parse_duration(\"%s\") refused with \"%s\", want \"too large\"", in,
			    why ? why : "(null)");
	}
}

/* ---- host:port ---------------------------------------------------------- */

Test(parse_hostport, ipv4)
{
	static const uint8_t want[16] = {198, 18, 1, 2};
	struct sl_sockaddr sa;
	const char *why = NULL;
	int rc;

	memset(&sa, 0xa5, sizeof(sa));
	rc = sl_parse_hostport("198.18.1.2:8080", &sa, &why);
	cr_assert_eq(rc, 0, "198.18.1.2:8080: rc %d (%s)", rc, why ? why : "(null)");
	cr_assert_eq(sa.family, SLUICE_AF_INET, "family %u, want %u", sa.family, SLUICE_AF_INET);
	cr_assert_eq(sa.port, 8080, "port %u, want 8080 (host order)", sa.port);
	cr_assert_arr_eq(sa.addr.a8, want, 16, "address bytes (IPv4 in a8[0..3], rest zero)");

	rc = sl_parse_hostport("0.0.0.0:1", &sa, &why);
	cr_assert_eq(rc, 0, "0.0.0.0:1: rc %d", rc);
	cr_assert_eq(sa.port, 1, "port %u, want 1", sa.port);
	rc = sl_parse_hostport("255.255.255.255:65535", &sa, &why);
	cr_assert_eq(rc, 0, "255.255.255.255:65535: rc %d", rc);
	cr_assert_eq(sa.port, 65535, "port %u, want 65535", sa.port);
	cr_assert_eq(sa.addr.a32[0], 0xffffffffu, "a32[0] = %#x", sa.addr.a32[0]);
}

Test(parse_hostport, ipv6)
{
	static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					 0,    0,    0,	   0,	 0, 0, 0, 2};
	static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct sl_sockaddr sa;
	const char *why = NULL;
	int rc;

	rc = sl_parse_hostport("[2001:db8::2]:8080", &sa, &why);
	cr_assert_eq(rc, 0, "[2001:db8::2]:8080: rc %d (%s)", rc, why ? why : "(null)");
	cr_assert_eq(sa.family, SLUICE_AF_INET6, "family %u, want %u", sa.family, SLUICE_AF_INET6);
	cr_assert_eq(sa.port, 8080, "port %u, want 8080", sa.port);
	cr_assert_arr_eq(sa.addr.a8, want, 16, "IPv6 address bytes");

	rc = sl_parse_hostport("[::1]:53", &sa, &why);
	cr_assert_eq(rc, 0, "[::1]:53: rc %d (%s)", rc, why ? why : "(null)");
	cr_assert_arr_eq(sa.addr.a8, loop, 16, "::1 bytes");
	cr_assert_eq(sa.port, 53, "port %u, want 53", sa.port);

	rc = sl_parse_hostport("[::ffff:10.0.0.1]:80", &sa, &why);
	cr_assert_eq(rc, 0, "v4-mapped v6: rc %d (%s)", rc, why ? why : "(null)");
	cr_assert_eq(sa.family, SLUICE_AF_INET6, "v4-mapped stays IPv6: family %u", sa.family);
}

Test(parse_hostport, invalid)
{
	static const struct {
		const char *in;
		const char *why;
	} cases[] = {
	    {"", "empty address"},
	    {"1.2.3.4", "missing :port"},
	    {"1.2.3.4:", "port must be 1..65535"},
	    {"1.2.3.4:0", "port must be 1..65535"},
	    {"1.2.3.4:65536", "port must be 1..65535"},
	    {"1.2.3.4:99999999999999999999", "port must be 1..65535"},
	    {"1.2.3.4:-1", "port must be 1..65535"},
	    {"1.2.3.4:80x", "port must be 1..65535"},
	    {"1.2.3.4: 80", "port must be 1..65535"},
	    {"1.2.3.256:80", "bad IPv4 address"},
	    {"1.2.3:80", "bad IPv4 address"},
	    {"example.com:80", "bad IPv4 address"},
	    {":80", "bad address"},
	    {"::1:80", "an IPv6 address is written [addr]:port"},
	    {"2001:db8::2:80", "an IPv6 address is written [addr]:port"},
	    {"[::1]8080", "an IPv6 address is written [addr]:port"},
	    {"[::1", "an IPv6 address is written [addr]:port"},
	    {"[::1]", "an IPv6 address is written [addr]:port"},
	    {"[::1]:", "port must be 1..65535"},
	    {"[::1]:0", "port must be 1..65535"},
	    {"[::1]:65536", "port must be 1..65535"},
	    {"[]:80", "bad address"},
	    {"[::g]:80", "bad IPv6 address"},
	    {"[1.2.3.4]:80", "bad IPv6 address"},
	    {"[2001:db8:::2]:80", "bad IPv6 address"},
	    {"[fe80::1%eth0]:80", "bad IPv6 address"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_sockaddr sa;
		const char *why = NULL;
		int rc = sl_parse_hostport(cases[i].in, &sa, &why);

		cr_assert_eq(rc, -1, "sl_parse_hostport(\"%s\") = %d, want -1", cases[i].in, rc);
		cr_assert_not_null(why, "sl_parse_hostport(\"%s\") failed without a reason",
				   cases[i].in);
		cr_assert(strstr(why, cases[i].why),
			  "sl_parse_hostport(\"%s\"): why = \"%s\", want \"%s\"", cases[i].in, why,
			  cases[i].why);
	}
}

Test(parse_hostport, format_round_trip)
{
	static const struct {
		const char *in;
		const char *out; /* canonical text */
	} cases[] = {
	    {"198.18.1.2:8080", "198.18.1.2:8080"},
	    {"10.96.0.10:80", "10.96.0.10:80"},
	    {"0.0.0.0:65535", "0.0.0.0:65535"},
	    {"1.2.3.4:080", "1.2.3.4:80"},
	    {"[2001:db8::2]:8080", "[2001:db8::2]:8080"},
	    {"[fd00::10]:80", "[fd00::10]:80"},
	    {"[2001:0db8:0000:0000:0000:0000:0000:0002]:1", "[2001:db8::2]:1"},
	    {"[FD00::AbCd]:443", "[fd00::abcd]:443"},
	    {"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_sockaddr a, b;
		char buf[SL_HOSTPORT_LEN];
		const char *why = NULL;
		int rc;

		rc = sl_parse_hostport(cases[i].in, &a, &why);
		cr_assert_eq(rc, 0, "parse \"%s\": %s", cases[i].in, why ? why : "(null)");
		memset(buf, 'X', sizeof(buf));
		sl_format_hostport(&a, buf, sizeof(buf));
		cr_assert_str_eq(buf, cases[i].out, "format(parse(\"%s\")) = \"%s\", want \"%s\"",
				 cases[i].in, buf, cases[i].out);
		rc = sl_parse_hostport(buf, &b, &why);
		cr_assert_eq(rc, 0, "reparse \"%s\": %s", buf, why ? why : "(null)");
		cr_assert(sl_sockaddr_equal(&a, &b), "parse(format(x)) != x for \"%s\"",
			  cases[i].in);
	}
}

Test(parse_hostport, sockaddr_equal)
{
	struct sl_sockaddr a, b;
	const char *why;

	cr_assert_eq(sl_parse_hostport("10.0.0.1:80", &a, &why), 0);
	cr_assert_eq(sl_parse_hostport("10.0.0.1:80", &b, &why), 0);
	cr_assert(sl_sockaddr_equal(&a, &b), "same text, not equal");
	cr_assert_eq(sl_parse_hostport("10.0.0.1:81", &b, &why), 0);
	cr_assert_not(sl_sockaddr_equal(&a, &b), "ports differ, yet equal");
	cr_assert_eq(sl_parse_hostport("10.0.0.2:80", &b, &why), 0);
	cr_assert_not(sl_sockaddr_equal(&a, &b), "addresses differ, yet equal");
	/* 10.0.0.1 and ::a00:1 (a v4-compatible v6) share no bytes layout-wise
	 * except through the family, which must tell them apart. */
	cr_assert_eq(sl_parse_hostport("[a00:1::]:80", &b, &why), 0);
	cr_assert_not(sl_sockaddr_equal(&a, &b), "IPv4 and IPv6 with same a8[0..3] equal");
}

/* ---- unsigned integers -------------------------------------------------- */

Test(parse_uint, ranges)
{
	static const struct {
		const char *in;
		uint64_t min, max;
		int rc;
		uint64_t val;	 /* when rc == 0 */
		const char *why; /* when rc == -1 */
	} cases[] = {
	    {"0", 0, 10, 0, 0, NULL},
	    {"10", 0, 10, 0, 10, NULL},
	    {"1", 1, 1, 0, 1, NULL},
	    {"1000", 1, 1000, 0, 1000, NULL},
	    {"0001000", 1, 1000, 0, 1000, NULL},
	    {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX, NULL},
	    {"0", 1, 1000, -1, 0, "out of range"},
	    {"1001", 1, 1000, -1, 0, "out of range"},
	    {"65536", 1, 65535, -1, 0, "out of range"},
	    {"4294967296", 0, UINT32_MAX, -1, 0, "out of range"},
	    {"18446744073709551616", 0, UINT64_MAX, -1, 0, "number too large"},
	    {"", 0, 10, -1, 0, "not an unsigned integer"},
	    {"-1", 0, 10, -1, 0, "not an unsigned integer"},
	    {"+1", 0, 10, -1, 0, "not an unsigned integer"},
	    {" 1", 0, 10, -1, 0, "not an unsigned integer"},
	    {"1 ", 0, 10, -1, 0, "not an unsigned integer"},
	    {"1.0", 0, 10, -1, 0, "not an unsigned integer"},
	    {"0x10", 0, 100, -1, 0, "not an unsigned integer"},
	    {"ten", 0, 100, -1, 0, "not an unsigned integer"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why = NULL;
		uint64_t v = 777;
		int rc = sl_parse_uint(cases[i].in, cases[i].min, cases[i].max, &v, &why);

		cr_assert_eq(rc, cases[i].rc, "sl_parse_uint(\"%s\", %llu, %llu) = %d, want %d",
			     cases[i].in, (unsigned long long)cases[i].min,
			     (unsigned long long)cases[i].max, rc, cases[i].rc);
		if (rc == 0) {
			cr_assert_eq(v, cases[i].val, "sl_parse_uint(\"%s\") = %llu, want %llu",
				     cases[i].in, (unsigned long long)v,
				     (unsigned long long)cases[i].val);
		} else {
			cr_assert(why && strstr(why, cases[i].why),
				  "sl_parse_uint(\"%s\"): why = \"%s\", want \"%s\"", cases[i].in,
				  why ? why : "(null)", cases[i].why);
			cr_assert_eq(v, 777, "sl_parse_uint(\"%s\") wrote *out on failure",
				     cases[i].in);
		}
	}
	cr_assert_eq(sl_parse_uint(NULL, 0, 1, &(uint64_t){0}, &(const char *){NULL}), -1,
		     "NULL input must fail");
}

/* ---- CIDRs, v4-mapped addresses, URL hosts ------------------------------ */

Test(parse_cidr, contains)
{
	static const struct {
		const char *cidr, *addr;
		int in;
	} cases[] = {
	    {"10.0.0.0/8", "10.255.255.255:1", 1},
	    {"10.0.0.0/8", "11.0.0.0:1", 0},
	    {"169.254.0.0/16", "169.254.1.1:1", 1},
	    {"169.254.0.0/16", "169.255.0.0:1", 0},
	    {"224.0.0.0/4", "239.255.255.255:1", 1},
	    {"224.0.0.0/4", "240.0.0.0:1", 0},
	    {"224.0.0.0/4", "223.255.255.255:1", 0},
	    {"0.0.0.0/0", "1.2.3.4:1", 1},
	    {"0.0.0.0/0", "[::1]:1", 0},
	    {"198.18.1.2", "198.18.1.2:1", 1},
	    {"198.18.1.2", "198.18.1.3:1", 0},
	    {"fe80::/10", "[febf:ffff::1]:1", 1},
	    {"fe80::/10", "[fec0::1]:1", 0},
	    {"::/0", "[2001:db8::1]:1", 1},
	    {"::1", "[::1]:1", 1},
	    {"::1", "[::2]:1", 0},
	    {"10.0.0.0/8", "[::ffff:10.0.0.1]:1", 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_cidr c;
		struct sl_sockaddr a;
		const char *why = NULL;

		cr_assert_eq(sl_parse_cidr(cases[i].cidr, &c, &why), 0, "%s: %s", cases[i].cidr,
			     why);
		cr_assert_eq(sl_parse_hostport(cases[i].addr, &a, &why), 0, "%s", cases[i].addr);
		cr_expect_eq(sl_cidr_contains(&c, a.family, &a.addr), cases[i].in, "%s in %s",
			     cases[i].addr, cases[i].cidr);
	}
}

Test(parse_cidr, invalid_and_format)
{
	static const char *const bad[] = {"10.0.0.1/8", "10.0.0.0/33", "::1/129",     "web",
					  "",		"10.0.0.0/",   "10.0.0.0/-1", "fe80::1/10"};
	char buf[64];
	struct sl_cidr c;
	const char *why;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(sl_parse_cidr(bad[i], &c, &why), -1, "%s was accepted", bad[i]);
	cr_assert_eq(sl_parse_cidr("fe80::/10", &c, &why), 0);
	sl_format_cidr(&c, buf, sizeof(buf));
	cr_expect_str_eq(buf, "fe80::/10");
	cr_assert_eq(sl_parse_cidr("198.18.1.2", &c, &why), 0);
	sl_format_cidr(&c, buf, sizeof(buf));
	cr_expect_str_eq(buf, "198.18.1.2/32");
}

Test(parse_hostport, v4_mapped)
{
	struct sl_sockaddr a, v4;
	char buf[SL_HOSTPORT_LEN];
	const char *why;

	cr_assert_eq(sl_parse_hostport("[::ffff:198.18.1.2]:8080", &a, &why), 0);
	cr_assert(sl_sockaddr_v4mapped(&a, &v4));
	sl_format_hostport(&v4, buf, sizeof(buf));
	cr_expect_str_eq(buf, "198.18.1.2:8080");
	cr_assert_eq(sl_parse_hostport("[::ffff:c612:102]:80", &a, &why), 0);
	cr_expect(sl_sockaddr_v4mapped(&a, NULL), "the same, in hex");
	cr_assert_eq(sl_parse_hostport("[::fffe:c612:102]:80", &a, &why), 0);
	cr_expect_not(sl_sockaddr_v4mapped(&a, NULL));
	cr_assert_eq(sl_parse_hostport("[::198.18.1.2]:80", &a, &why), 0);
	cr_expect_not(sl_sockaddr_v4mapped(&a, NULL), "v4-compatible is another thing");
	cr_assert_eq(sl_parse_hostport("198.18.1.2:80", &a, &why), 0);
	cr_expect_not(sl_sockaddr_v4mapped(&a, NULL));
}

Test(parse_hostport, order)
{
	struct sl_sockaddr a, b;
	const char *why;

	cr_assert_eq(sl_parse_hostport("198.18.1.2:80", &a, &why), 0);
	cr_assert_eq(sl_parse_hostport("198.18.1.2:80", &b, &why), 0);
	cr_expect_eq(sl_sockaddr_cmp(&a, &b), 0);
	cr_assert_eq(sl_parse_hostport("198.18.1.3:80", &b, &why), 0);
	cr_expect_lt(sl_sockaddr_cmp(&a, &b), 0);
	cr_expect_gt(sl_sockaddr_cmp(&b, &a), 0);
	cr_assert_eq(sl_parse_hostport("198.18.1.2:81", &b, &why), 0);
	cr_expect_neq(sl_sockaddr_cmp(&a, &b), 0);
	cr_assert_eq(sl_parse_hostport("[::1]:80", &b, &why), 0);
	cr_expect_neq(sl_sockaddr_cmp(&a, &b), 0);
}

Test(parse_url, host_addr)
{
	static const struct {
		const char *url, *host; /* host NULL: not an address literal */
	} cases[] = {
	    {"http://127.0.0.1:2379", "127.0.0.1:1"},
	    {"https://10.0.0.5:2379/", "10.0.0.5:1"},
	    {"http://10.0.0.5", "10.0.0.5:1"},
	    {"https://[fd00::99]:2379", "[fd00::99]:1"},
	    {"http://[::1]", "[::1]:1"},
	    {"http://localhost:2379", NULL},
	    {"http://etcd.example", NULL},
	    {"http://[fd00::99:2379", NULL},
	    {"ftp://10.0.0.5:21", NULL},
	    {"http://", NULL},
	    {"http://:2379", NULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sl_sockaddr got, want;
		const char *why;
		int rc = sl_url_host_addr(cases[i].url, &got);

		if (!cases[i].host) {
			cr_expect_eq(rc, -1, "%s", cases[i].url);
			continue;
		}
		cr_assert_eq(rc, 0, "%s", cases[i].url);
		cr_assert_eq(sl_parse_hostport(cases[i].host, &want, &why), 0);
		want.port = 0;
		cr_expect(sl_sockaddr_equal(&got, &want), "%s", cases[i].url);
	}
}
