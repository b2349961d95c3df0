/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hook verdicts of the cgroup sock_addr programs, from the negative errno
 * or 0 that the helpers return. Only the entry programs use these.
 */
#ifndef SLUICE_BPF_VERDICT_H
#define SLUICE_BPF_VERDICT_H

#include <bpf/bpf_helpers.h>

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef EPERM
#define EPERM 1
#endif

#define SL_VERDICT_REJECT 0
#define SL_VERDICT_PASS	  1

/* The call is to fail: no backend is usable, a limit or the policy says no.
 * Anything else (not a frontend, ...) passes untouched. */
static __always_inline int sl_refused(int err)
{
	return err == -ECONNREFUSED || err == -EPERM;
}

/* connect(): refuse at once, with ECONNREFUSED when no backend is usable or
 * a limit says no, with EPERM when the policy refuses the caller. */
static __always_inline int sl_connect_verdict(int err)
{
	if (!sl_refused(err))
		return SL_VERDICT_PASS;
	bpf_set_retval(err);
	return SL_VERDICT_REJECT;
}

/* sendmsg() with a destination: unconnected UDP. The kernel fails a refused
 * call with EPERM. */
static __always_inline int sl_sendmsg_verdict(int err)
{
	return sl_refused(err) ? SL_VERDICT_REJECT : SL_VERDICT_PASS;
}

#endif /* SLUICE_BPF_VERDICT_H */
