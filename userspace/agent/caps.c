// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Dropping capabilities with prctl(2) and capset(2) directly: sluiced needs
 * one call of each kind, which is not worth a dependency on libcap.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "caps.h"

static int capget2(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};

	return syscall(SYS_capget, &hdr, data) ? -errno : 0;
}

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

uint64_t sl_caps_effective(void)
{
	struct __user_cap_data_struct data[2] = {0};

	return capget2(data) ? 0 : join(data[0].effective, data[1].effective);
}

int sl_caps_keep_only(uint64_t keep, char *why, size_t len)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {0};
	uint64_t want;
	int err;

	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes next. Without CAP_SETPCAP (a unit's CapabilityBoundingSet= leaves
	 * it out) the bounding set stays: sluiced never calls execve(), so the
	 * permitted set alone bounds what it can use. A capability the kernel
	 * does not know ends the loop. */
	for (int cap = 0; (sl_caps_effective() & (1ULL << CAP_SETPCAP)) && cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (in < 0)
			break;
		if (!in || (keep & (1ULL << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
			err = -errno;
			snprintf(why, len, "drop capability %d from the bounding set: %s", cap,
				 strerror(errno));
			return err;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		err = -errno;
		snprintf(why, len, "clear the ambient capabilities: %s", strerror(errno));
		return err;
	}
	err = capget2(data);
	if (err) {
		snprintf(why, len, "capget: %s", strerror(-err));
		return err;
	}
	want = keep & join(data[0].permitted, data[1].permitted);
	data[0].effective = data[0].permitted = (uint32_t)want;
	data[1].effective = data[1].permitted = (uint32_t)(want >> 32);
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data)) {
		err = -errno;
		snprintf(why, len, "capset: %s", strerror(errno));
		return err;
	}
	return 0;
}

void sl_caps_format(uint64_t mask, char *buf, size_t len)
{
	static const char *const names[] = {
	    [CAP_NET_ADMIN] = "cap_net_admin",
	    [CAP_SYS_ADMIN] = "cap_sys_admin",
	    [CAP_PERFMON] = "cap_perfmon",
	    [CAP_BPF] = "cap_bpf",
	};
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int cap = 0; cap < 64 && off < len; cap++) {
		const char *name = cap < sizeof(names) / sizeof(names[0]) ? names[cap] : NULL;
		int n;

		if (!(mask & (1ULL << cap)))
			continue;
		n = name ? snprintf(buf + off, len - off, "%s%s", off ? "," : "", name)
			 : snprintf(buf + off, len - off, "%scap_%u", off ? "," : "", cap);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}
