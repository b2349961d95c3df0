/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The datapath's one sluice_settings entry. Its fields belong to different parts of the
 * agent (events: the monitor, audit_all: identities, trace_*: tracing, mtls_*: mTLS); each
 * changes only its own, through sl_settings_edit().
 */
#ifndef SLUICE_SETTINGS_H
#define SLUICE_SETTINGS_H

#include <sluice/abi.h>

/* Changes the fields the caller owns in *set; nonzero when it changed one. */
typedef int (*sl_settings_edit_fn)(struct sluice_settings *set, const void *arg);

/* Read the entry from the array map fd, let edit() change it, and write it back only when it
 * says it changed something. 1 written, 0 nothing to write, -errno (the entry is as it was). */
int sl_settings_edit(int fd, sl_settings_edit_fn edit, const void *arg);

#endif /* SLUICE_SETTINGS_H */
