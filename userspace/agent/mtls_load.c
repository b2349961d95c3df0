// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* mtls: loading the certificate set and logging what was found; the fd limit (mtls.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "mtls.h"
#include "mtls_certs.h"

/* File descriptors wanted: the engine's 4096 tunnels at 6 fds each, and the agent's own. */
#define NOFILE_WANT (4096 * 6 + 4096)

void agent_mtls_fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "unknown");
}

/* Load the set for cfg's identities; log each certificate. NULL after logging why. */
struct sl_mtls *agent_mtls_load(const struct sl_config *cfg, uint64_t *valid_ids)
{
	const struct sl_mtls_cfg *mc = &cfg->agent.mtls;
	const char *names[SL_MAX_IDENTITIES];
	char node[SLUICE_NAME_LEN], err[512] = "", exp[32];
	struct sl_mtls_opts o = {.trust_domain = mc->trust_domain,
				 .ca = mc->ca,
				 .certs = mc->certs,
				 .node = node,
				 .identities = names};
	struct sl_mtls *set;

	/* The node certificate must name agent.node (the host name by default). */
	snprintf(node, sizeof(node), "%s", sl_agent_node(&cfg->agent));
	for (size_t i = 0; i < cfg->n_identities && i < SL_MAX_IDENTITIES; i++)
		names[o.n_identities++] = cfg->identities[i].name;
	set = sl_mtls_load(&o, err, sizeof(err));
	if (!set) {
		sl_error("cannot load the mtls certificates", "ca=%s certs=%s error=\"%s\"", mc->ca,
			 mc->certs, err);
		return NULL;
	}
	*valid_ids = 0;
	for (size_t i = 0; i < sl_mtls_count(set); i++) {
		const struct sl_mtls_status *st = sl_mtls_status_at(set, i);

		agent_mtls_fmt_time(st->not_after, exp, sizeof(exp));
		if (st->valid)
			sl_info("mtls certificate valid", "%s=%s serial=%s expires=%s",
				st->is_node ? "node" : "identity", st->name, st->serial, exp);
		else
			sl_warn("mtls certificate invalid: its connections to strict services are "
				"refused",
				"%s=%s expires=%s error=\"%s\"", st->is_node ? "node" : "identity",
				st->name, exp, st->error);
		if (st->valid && !st->is_node && i < SLUICE_MAX_IDENTITIES)
			*valid_ids |= 1ULL << i; /* entry i is identity id i + 1 */
	}
	return set;
}

void agent_raise_nofile(void)
{
	struct rlimit r;
	rlim_t want = NOFILE_WANT;

	if (getrlimit(RLIMIT_NOFILE, &r)) {
		sl_warn("cannot read RLIMIT_NOFILE", "error=\"%s\"", strerror(errno));
		return;
	}
	if (r.rlim_cur >= want)
		return;
	if (r.rlim_max < want) {
		struct rlimit up = {want, want};

		if (!setrlimit(RLIMIT_NOFILE, &up))
			r = up;
	}
	r.rlim_cur = r.rlim_max < want ? r.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &r))
		sl_warn("cannot raise RLIMIT_NOFILE", "want=%llu error=\"%s\"",
			(unsigned long long)want, strerror(errno));
	else if (r.rlim_cur < want)
		sl_info("RLIMIT_NOFILE below what 4096 mtls tunnels need: fewer are allowed",
			"limit=%llu want=%llu", (unsigned long long)r.rlim_cur,
			(unsigned long long)want);
}

/* Tunnels that fit RLIMIT_NOFILE (6 fds each, 1024 kept for the agent), at most 4096. */
unsigned int agent_mtls_max_tunnels(void)
{
	struct rlimit r;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur == RLIM_INFINITY)
		return 4096;
	n = r.rlim_cur > 1024 + 6 * 16 ? (r.rlim_cur - 1024) / 6 : 16;
	return n < 4096 ? (unsigned int)n : 4096;
}
