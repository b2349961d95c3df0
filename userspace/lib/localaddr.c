// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "localaddr.h"
#include "mem.h"

/* One interface address as an sl_sockaddr; 0 when it is not IPv4 or IPv6. */
static int from_ifaddr(const struct sockaddr *sa, struct sl_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		memcpy(out->addr.a8, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		out->family = SLUICE_AF_INET;
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out->addr.a8, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		out->family = SLUICE_AF_INET6;
		return 1;
	}
	return 0;
}

int sl_local_addrs(struct sl_addrs *out)
{
	struct ifaddrs *ifs, *i;
	size_t cap = 0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next) {
		struct sl_sockaddr a;

		if (!i->ifa_addr || !from_ifaddr(i->ifa_addr, &a) || sl_addrs_has(out, &a))
			continue;
		err = SL_ENSURE(&out->v, &cap, out->n + 1);
		if (err)
			break;
		out->v[out->n++] = a;
	}
	freeifaddrs(ifs);
	if (err)
		sl_addrs_free(out);
	return err;
}

int sl_addrs_has(const struct sl_addrs *s, const struct sl_sockaddr *a)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].family == a->family &&
		    !memcmp(&s->v[i].addr, &a->addr, sizeof(a->addr)))
			return 1;
	return 0;
}

void sl_addrs_free(struct sl_addrs *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
