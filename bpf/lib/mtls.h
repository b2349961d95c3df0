/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * mtls outbound (sluice.yaml(5) MTLS): a TCP connect() to a service whose
 * mtls is not off, given a backend on another node, is sent to the agent's
 * outbound listener on loopback when the caller's identity has a valid
 * certificate; the original destination and the caller are kept in socket
 * storage, which sockops moves to sluice_mtls_conn once the source port is
 * known. Without a certificate, strict refuses and permissive goes on in
 * plaintext. Same-node backends and UDP are never tunnelled.
 */
#ifndef SLUICE_BPF_MTLS_H
#define SLUICE_BPF_MTLS_H

#include "lb.h"

/* What to do with a connection to a remote backend of an mtls service: 1
 * tunnel it (*port: the outbound listener's, host order), 0 plaintext,
 * -EPERM refuse. */
static __always_inline int sl_mtls_decide(struct sl_req *req, __u16 *port)
{
	struct sluice_settings *set;
	__u32 zero = 0, id;
	__u64 bit;

	if (!req->identity_known) {
		req->identity = sl_caller_identity();
		req->identity_known = 1;
	}
	id = req->identity;
	bit = id && id <= SLUICE_MAX_IDENTITIES ? 1ULL << (id - 1) : 0;
	set = bpf_map_lookup_elem(&sluice_settings, &zero);
	if (set && set->mtls_outbound_port && (set->mtls_valid_ids & bit) &&
	    (!set->mtls_netns || set->mtls_netns == req->netns)) {
		*port = set->mtls_outbound_port;
		return 1;
	}
	return req->mtls == SLUICE_MTLS_STRICT ? -EPERM : 0;
}

/* Remember where a tunnelled socket was going. 0 or a negative errno. */
static __always_inline int sl_mtls_remember(struct bpf_sock *sk, const struct sl_req *req,
					    const struct sluice_backend *be, __u32 be_id)
{
	struct sluice_mtls_orig *o;

	if (!sk)
		return -ENOENT;
	o = bpf_sk_storage_get(&sluice_mtls_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return -ENOENT;
	__builtin_memset(o, 0, sizeof(*o));
	o->addr = be->addr;
	o->port = be->port;
	o->family = be->family;
	o->fe_addr = req->fe.addr;
	o->fe_port = req->fe.port;
	o->svc_id = req->svc_id;
	o->be_id = be_id;
	o->identity = req->identity;
	return 0;
}

/* A caller refused for want of a certificate: counted and audited as a
 * policy denial at connect(). */
static __always_inline int sl_mtls_refuse(struct sl_req *req)
{
	struct sluice_audit_event *a = sl_audit_reserve(1);
	__u64 ug;

	if (a) {
		sl_event_req(&a->ev, req, req->svc_id);
		a->ev.reason = SLUICE_REASON_CONNECT;
		a->cgroup_id = bpf_get_current_cgroup_id();
		a->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
		ug = bpf_get_current_uid_gid();
		a->uid = (__u32)ug;
		a->identity = req->identity;
		bpf_get_current_comm(a->comm, sizeof(a->comm));
		bpf_ringbuf_submit(a, 0);
	}
	req->reason = SLUICE_DROP_POLICY;
	sl_count_policy_reject(req->svc_id);
	return -EPERM;
}

#endif /* SLUICE_BPF_MTLS_H */
