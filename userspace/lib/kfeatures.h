/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What this build is and what the running kernel offers: `sluiced --version`
 * and `sluicectl version` print the same report. (Not named features.h:
 * -Iuserspace/lib would shadow glibc's <features.h>.)
 */
#ifndef SLUICE_KFEATURES_H
#define SLUICE_KFEATURES_H

#include <stdio.h>

#include <jansson.h>

enum sl_feat_state {
	SL_FEAT_UNKNOWN = -1, /* could not be probed (not privileged) */
	SL_FEAT_NO = 0,
	SL_FEAT_YES = 1,
};

struct sl_feature {
	const char *name;  /* stable key, also the JSON key */
	const char *about; /* what sluice uses it for */
	int required;	   /* sluiced cannot run without it */
	enum sl_feat_state state;
};

#define SL_FEATURES_MAX 12

struct sl_features {
	char kernel[128];  /* uname -r */
	char libbpf[32];   /* "1.1" */
	char unknown[128]; /* why some features are unknown; "" if none */
	size_t n;
	struct sl_feature f[SL_FEATURES_MAX];
};

/* The git commit this binary was built from, or "unknown". */
const char *sl_build_commit(void);

/* Does the kernel's BTF declare this kfunc? 1 yes, 0 no, -ENOENT without BTF. */
int sl_kfunc_exists(const char *name);

/* Probe the kernel. Never fails: what cannot be probed is SL_FEAT_UNKNOWN. */
void sl_features_probe(struct sl_features *f);

/* "sluiced 0.1.0" then commit, libbpf, kernel and one line per feature. */
void sl_version_print(FILE *out, const char *prog, const struct sl_features *f);

/* The same as a JSON object; features map to true, false or null. */
json_t *sl_version_json(const char *prog, const struct sl_features *f);

#endif /* SLUICE_KFEATURES_H */
