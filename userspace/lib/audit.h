/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy audit log (agent.audit_log): one JSON object per line, appended to a 0600 file,
 * rate-limited by a token bucket, reopened on SIGUSR1 for logrotate.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct sl_audit_record {	 /* one policy decision, as the agent saw it */
	uint64_t time_ns;	 /* CLOCK_REALTIME ns (the agent converts); 0 = now */
	const char *verdict;	 /* "deny" or "allow" */
	const char *point;	 /* enforcement point: "connect", "sendmsg", "tc_ingress" */
	const char *identity;	 /* source identity name, or "" when unknown */
	uint64_t cgroup_id;	 /* 0 when not known (tc_ingress) */
	const char *cgroup_path; /* "" when not known */
	uint32_t pid, uid;	 /* 0 when not known; uid is written whenever pid is (0 = root) */
	const char *comm;	 /* "" when not known */
	const char *source;	 /* "198.18.1.2:41000" or "[2001:db8::2]:41000", "" unknown */
	const char *service;	 /* destination service name */
	const char *frontend;	 /* the service's frontend "VIP:port" */
	const char *protocol;	 /* "tcp" | "udp" */
};

struct sl_audit;

/*
 * Open (create with mode 0600, O_APPEND|O_CLOEXEC; mkdir -p the parent with 0700 if missing)
 * the log at path. rate: lines per second allowed, burst: bucket size (e.g. 100/s, burst 200);
 * rate 0 turns the limit off, burst 0 means burst = rate. The bucket starts full.
 * NULL + errno on failure, with a message in err (if err_len > 0).
 */
struct sl_audit *sl_audit_open(const char *path, unsigned int rate, unsigned int burst, char *err,
			       size_t err_len);

/*
 * Write one JSON line, keys in this order: time (RFC 3339 UTC with ms,
 * "2026-11-26T21:40:55.123Z"), verdict, point, identity, cgroup_id, cgroup, pid, uid, comm,
 * source, service, frontend, protocol. Unknown (empty or 0) fields are omitted, except
 * verdict, point and service, which are always there; uid goes with pid. Bytes that are not
 * UTF-8 (a comm or cgroup name can hold any) are written as '?'.
 * Never blocks for long: a write that would exceed the rate is dropped and counted; a write
 * error (ENOSPC, EIO; a short write counts as -EIO) is counted and logged with sl_warn at most
 * once per 10 s. Returns 0 written, 1 dropped by the rate limit, -errno on a write error.
 * now_ns is CLOCK_MONOTONIC ns (passed in so tests control time), for the token bucket and
 * the warning's pacing.
 */
int sl_audit_write(struct sl_audit *a, const struct sl_audit_record *r, uint64_t now_ns);

/*
 * SIGUSR1 / logrotate: close and reopen the path (a rename by logrotate makes the next lines go
 * to a new file). 0 or -errno; on failure keep writing to the old fd.
 */
int sl_audit_reopen(struct sl_audit *a);

struct sl_audit_stats {
	uint64_t written;      /* records written (summary lines not included) */
	uint64_t dropped_rate; /* records dropped by the rate limit */
	uint64_t write_errors; /* lines lost to write(2) errors, short writes or ENOMEM */
};
void sl_audit_stats(const struct sl_audit *a, struct sl_audit_stats *out);

/*
 * When lines were dropped since the last reported summary, write one line
 * {"time": ..., "event": "audit_dropped", "dropped": N} (not rate-limited) and return N; else 0.
 * If that line cannot be written, return 0 and report the count in a later call.
 * The agent calls it once a second.
 */
uint64_t sl_audit_flush_dropped(struct sl_audit *a, uint64_t now_ns);

void sl_audit_close(struct sl_audit *a);

#endif /* SLUICE_AUDIT_H */
