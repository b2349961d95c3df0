/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's side of mutual TLS between nodes (mtls: in sluice.yaml; README, "Zero-trust
 * transport"): the certificates (loaded at start, on SIGHUP, on a change in mtls.certs and at
 * each apply), the tunnel engine (tunnel.h: its own thread), what the engine asks the agent
 * (where a redirected caller was going; whether a verified identity may reach a local backend),
 * and what it reports (audit lines with point=mtls, metrics, GET /v1/mtls). Internal to the
 * agent.
 */
#ifndef SLUICE_AGENT_MTLS_H
#define SLUICE_AGENT_MTLS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "prom.h"

struct agent;
struct agent_mtls;

/* Raise RLIMIT_NOFILE (soft and, while still privileged, hard) so the engine's tunnels fit
 * (tunnel.h, Bounds). Logged, never fatal. */
void agent_raise_nofile(void);

/* With mtls: configured, after the capabilities were dropped and the first apply: load the
 * certificates, start the engine, watch mtls.certs. 0, or -errno after logging why. */
int agent_mtls_start(struct agent *a);

/* After each apply: a new policy snapshot for the engine (services, their local backends,
 * identities), the certificates reloaded (identities may have changed), the datapath told
 * which identities hold a valid certificate. No-op without mtls:. */
void agent_mtls_apply(struct agent *a);

/* Reload the certificates (SIGHUP, a change in mtls.certs): new tunnels use the new set, held
 * ones keep theirs. No-op without mtls:. */
void agent_mtls_reload(struct agent *a, const char *why);

/* Stop the engine (held tunnels are reset), tell the datapath there is no listener. */
void agent_mtls_stop(struct agent *a);

/* sluice_mtls_connections_total, sluice_mtls_resumed_total and sluice_mtls_handshake_seconds. */
void agent_mtls_render(struct agent *a, struct sl_prom *p);

/* GET /v1/mtls: each certificate's status, kTLS, the last peer serials; NULL without mtls:. */
json_t *agent_mtls_json(struct agent *a);

/* mtls_load.c, for mtls.c: the set for cfg's identities and node, each certificate logged,
 * *valid_ids the identity ids (bit id - 1) whose certificate is valid; NULL after logging
 * why. A UNIX time as RFC 3339 ("unknown" for 0). Tunnels that fit RLIMIT_NOFILE. */
struct sl_config;
struct sl_mtls *agent_mtls_load(const struct sl_config *cfg, uint64_t *valid_ids);
void agent_mtls_fmt_time(int64_t t, char *buf, size_t len);
unsigned int agent_mtls_max_tunnels(void);

#endif /* SLUICE_AGENT_MTLS_H */
