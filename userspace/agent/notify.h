/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET, a path or
 * an abstract socket ("@name"). A no-op when the variable is not set.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

/* Send 'state' ("READY=1", "STOPPING=1", "STATUS=...", lines joined by \n).
 * 0 when sent or when there is no $NOTIFY_SOCKET, a negative errno else. */
int sl_notify(const char *state);

/* printf-style convenience around sl_notify(). */
int sl_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SLUICE_NOTIFY_H */
