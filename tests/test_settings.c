// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sl_settings_edit(): each part of the agent changes only its own fields of the one
 * sluice_settings entry, in a real BPF array map. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "settings.h"

static int map_fd = -1;

static void make_map(void)
{
	struct sluice_settings set = {.events = 1, .audit_all = 1, .mtls_outbound_port = 15008};
	__u32 zero = 0;

	map_fd =
	    bpf_map_create(BPF_MAP_TYPE_ARRAY, "sl_test_set", sizeof(zero), sizeof(set), 1, NULL);
	cr_assert_geq(map_fd, 0, "bpf_map_create: %s", strerror(errno));
	cr_assert(!bpf_map_update_elem(map_fd, &zero, &set, BPF_ANY));
}

static void close_map(void)
{
	if (map_fd >= 0)
		close(map_fd);
	map_fd = -1;
}

static struct sluice_settings read_back(void)
{
	struct sluice_settings set;
	__u32 zero = 0;

	cr_assert(!bpf_map_lookup_elem(map_fd, &zero, &set));
	return set;
}

static int set_trace(struct sluice_settings *set, const void *arg)
{
	__u32 on = *(const __u32 *)arg;

	if (set->trace_on == on)
		return 0;
	set->trace_on = on;
	set->trace_sample = on ? 42 : 0;
	return 1;
}

/* Changes a field but says it did not: the write must not happen. */
static int lies(struct sluice_settings *set, const void *arg)
{
	(void)arg;
	set->events = 0;
	return 0;
}

TestSuite(settings, .init = make_map, .fini = close_map);

Test(settings, edit_writes_its_fields_and_keeps_the_others)
{
	__u32 on = 1;
	struct sluice_settings got;

	cr_assert_eq(sl_settings_edit(map_fd, set_trace, &on), 1);
	got = read_back();
	cr_expect_eq(got.trace_on, 1);
	cr_expect_eq(got.trace_sample, 42);
	cr_expect_eq(got.events, 1, "another part's field kept");
	cr_expect_eq(got.audit_all, 1);
	cr_expect_eq(got.mtls_outbound_port, 15008);
}

Test(settings, no_change_no_write)
{
	__u32 on = 0;

	cr_assert_eq(sl_settings_edit(map_fd, set_trace, &on), 0, "trace_on is already 0");
	cr_assert_eq(sl_settings_edit(map_fd, lies, NULL), 0);
	cr_expect_eq(read_back().events, 1, "an edit that reports no change is not written");
}

Test(settings, bad_fd_is_an_error)
{
	__u32 on = 1;

	cr_expect_lt(sl_settings_edit(-1, set_trace, &on), 0);
	cr_expect_eq(read_back().trace_on, 0, "the entry is as it was");
}
