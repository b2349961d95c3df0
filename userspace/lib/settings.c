// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>

#include <bpf/bpf.h>

#include "settings.h"

int sl_settings_edit(int fd, sl_settings_edit_fn edit, const void *arg)
{
	struct sluice_settings set;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &set))
		return -errno;
	if (!edit(&set, arg))
		return 0;
	return bpf_map_update_elem(fd, &zero, &set, BPF_ANY) ? -errno : 1;
}
