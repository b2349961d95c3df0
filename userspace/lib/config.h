/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The configuration: YAML (libyaml) -> validated struct sl_config. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <sluice/abi.h>

#include "parse.h"

/* Diagnostics, each "FILE:LINE:COL: message". */
struct sl_diag {
	char **msgs;
	size_t n;
};

void sl_diag_add(struct sl_diag *d, const char *file, unsigned int line, unsigned int col,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void sl_diag_free(struct sl_diag *d);

struct sl_backend_cfg {
	struct sl_sockaddr addr;
	uint16_t weight;
	char subset[SLUICE_SUBSET_LEN];
};

struct sl_service_cfg {
	char name[SLUICE_NAME_LEN];
	struct sl_sockaddr frontend;
	uint8_t proto; /* enum sluice_proto */
	uint8_t lb;    /* enum sluice_lb */
	struct sl_backend_cfg *backends;
	size_t n_backends;
};

/* Map capacities (agent.limits). Fixed once the maps exist. */
struct sl_limits {
	uint32_t services;
	uint32_t backends;
	uint32_t revnat;
};

#define SL_API_PATH_LEN	      108 /* sizeof(sun_path) */
#define SL_MAX_INTERFACES     32
#define SL_INTERFACE_GLOB_LEN 64

struct sl_config {
	char cgroup[PATH_MAX]; /* "" = the cgroup2 mount point */
	char bpffs[PATH_MAX];
	int metrics_on;		    /* agent.metrics is not "" */
	struct sl_sockaddr metrics; /* where GET /metrics is served */
	char api[SL_API_PATH_LEN];  /* control API socket; "" = none */
	char interfaces[SL_MAX_INTERFACES][SL_INTERFACE_GLOB_LEN]; /* fnmatch(3) globs */
	size_t n_interfaces;
	int redirect_local; /* agent.redirect: local */
	struct sl_limits limits;
	struct sl_service_cfg *services;
	size_t n_services;
};

/* Parse and validate. 0 when valid; -1 with every problem in *d otherwise.
 * 'file' names the input in diagnostics. */
int sl_config_parse(const char *file, const char *text, size_t len, struct sl_config *cfg,
		    struct sl_diag *d);
int sl_config_load(const char *path, struct sl_config *cfg, struct sl_diag *d);
void sl_config_free(struct sl_config *cfg);

const char *sl_lb_name(uint8_t lb);
const char *sl_proto_name(uint8_t proto);

#endif /* SLUICE_CONFIG_H */
