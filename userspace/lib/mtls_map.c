// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <bpf/bpf.h>

#include "mtls_map.h"

/* The key sockops wrote: a v4-mapped IPv6 peer is keyed as IPv4. */
static int conn_key(const struct sockaddr *peer, struct sluice_mtls_conn_key *k)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(k, 0, sizeof(*k));
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

		memcpy(k->addr.a8, &in->sin_addr, 4);
		k->port = in->sin_port;
		k->family = SLUICE_AF_INET;
		return 0;
	}
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;

		k->port = in6->sin6_port;
		if (!memcmp(in6->sin6_addr.s6_addr, mapped, sizeof(mapped))) {
			memcpy(k->addr.a8, &in6->sin6_addr.s6_addr[12], 4);
			k->family = SLUICE_AF_INET;
		} else {
			memcpy(k->addr.a8, &in6->sin6_addr, 16);
			k->family = SLUICE_AF_INET6;
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

int sl_mtls_lookup(const struct sl_maps *m, const struct sockaddr *peer, struct sl_mtls_orig *out)
{
	struct sluice_mtls_conn_key k;
	struct sluice_mtls_orig v;
	int err = conn_key(peer, &k);

	memset(out, 0, sizeof(*out));
	if (err)
		return err;
	if (bpf_map_lookup_and_delete_elem(m->mtls_conn, &k, &v)) {
		/* Kernels before 5.14 have no lookup-and-delete for hashes. */
		if (errno != EINVAL && errno != 524 /* ENOTSUPP */ && errno != EOPNOTSUPP)
			return -errno;
		if (bpf_map_lookup_elem(m->mtls_conn, &k, &v))
			return -errno;
		if (bpf_map_delete_elem(m->mtls_conn, &k) && errno != ENOENT)
			return -errno;
	}
	out->backend.addr = v.addr;
	out->backend.port = ntohs(v.port);
	out->backend.family = v.family;
	out->frontend.addr = v.fe_addr;
	out->frontend.port = ntohs(v.fe_port);
	out->frontend.family = v.family;
	out->svc_id = v.svc_id;
	out->be_id = v.be_id;
	out->identity = v.identity;
	return 0;
}
